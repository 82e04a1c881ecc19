/* SPDX-License-Identifier: MIT */
/*
 * tierctl's side of the control socket: connect (explaining why not),
 * send requests, read replies, partial results and events with a deadline.
 * Blocking I/O bounded by poll(): tierctl does one thing at a time.
 */
#ifndef TCTL_CLIENT_H
#define TCTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ctlproto.h"

#define TCTL_SOCKET_DEFAULT  "/run/tierd/tierd.sock"
#define TCTL_SOCKET_ENV      "TIERD_SOCKET"
#define TCTL_TIMEOUT_MS_DEFAULT 30000
/* Replies are bounded by the server's output queue (16 MiB by default); a
 * larger bound here costs nothing until a line needs it. */
#define TCTL_MAX_LINE ((size_t)1 << 30)

struct tctl_conn {
	int                fd;
	const char        *path;
	int                timeout_ms;   /* per call; < 0 = none */
	uint64_t           next_id;
	struct sup_ctl_buf in;
};

/*
 * Connect to path. On failure returns -errno and writes the sentence an
 * operator needs into err: "tierd is not running (no socket at PATH)",
 * "permission denied on PATH: it is owned by group G with mode 0660; run
 * as root or join group G", ...
 */
int tctl_connect(struct tctl_conn *c, const char *path, int timeout_ms, char *err, size_t errlen);
void tctl_close(struct tctl_conn *c);

/* Send one request (args stolen, NULL = none); its id in *ret_id. */
int tctl_send(struct tctl_conn *c, const char *cmd, json_t *args, char *err, size_t errlen,
	      uint64_t *ret_id);

/* The next message of any kind, waiting until deadline_ms (a CLOCK_MONOTONIC
 * time from tctl_deadline(); < 0 = forever). -ETIMEDOUT, -ECONNRESET (tierd
 * closed the connection), -EPROTO (a line that is not a valid message),
 * -EMSGSIZE; err says which. The caller decrefs ret->root. */
int tctl_read(struct tctl_conn *c, int64_t deadline_ms, char *err, size_t errlen,
	      struct sup_ctl_msg *ret);

/* Called for each partial result of a streaming request. */
typedef void (*tctl_partial_cb)(void *arg, const json_t *result);

/*
 * Send a request and wait for its final reply within the connection's
 * timeout. Partial results go to partial (may be NULL); events are
 * skipped. A reply without an id (the server refused this client) counts
 * as the reply. 0 with *ret filled (ok or not: look at ret->ok); -errno as
 * tctl_read.
 */
int tctl_call(struct tctl_conn *c, const char *cmd, json_t *args, tctl_partial_cb partial,
	      void *arg, char *err, size_t errlen, struct sup_ctl_msg *ret);

/* tctl_call for a command that may wait for a task or a run (submit,
 * run without detach): asks for the id first, and when tierd goes away
 * (an upgrade's "reconnect", or a closed connection) connects again to
 * socket and waits for the same id (resume.c). */
int tctl_call_resumable(struct tctl_conn *conn, const char *socket, int timeout_ms, const char *cmd,
			json_t *args, char *err, size_t errlen, struct sup_ctl_msg *ret);

/* Close conn and connect again to socket, retrying for up to a minute
 * (tierd is being upgraded or restarted). */
int tctl_reconnect(struct tctl_conn *conn, const char *socket, int timeout_ms, char *err,
		   size_t errlen);

/* Now + the connection's timeout, for tctl_read; -1 when there is none. */
int64_t tctl_deadline(const struct tctl_conn *c);

#endif
