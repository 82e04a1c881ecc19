/* SPDX-License-Identifier: MIT */
/*
 * The control socket's insides, shared by its two halves and by nothing
 * else: ctl.c (listener, admission, reading and framing requests, the
 * public calls) and ctl_queue.c (a client's output queue and its
 * lifetime: kill, notify, reap, free).
 */
#ifndef SUP_CTL_INTERNAL_H
#define SUP_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ctl.h"
#include "ctl_sock.h"

/* Output chunks: small messages share one, so a burst of events costs one
 * send, not one per event. */
#define CHUNK_MIN 16384
/* One send never asks for more than this (sup_loop_send takes unsigned). */
#define SEND_MAX (1u << 30)
#define REASON_MAX 192

struct chunk {
	struct chunk *next;
	size_t        len;    /* bytes written into data */
	size_t        off;    /* bytes of data the kernel has taken */
	size_t        cap;
	char          data[];
};

enum client_state {
	C_OPEN,    /* reading requests, accepting messages */
	C_FLUSH,   /* no more reads or messages; closes once the queue is sent */
	C_DEAD,    /* shut down; waiting for its operations and holds */
};

struct sup_ctl_client {
	struct sup_ctl        *ctl;
	struct sup_ctl_client *prev, *next;
	int                    fd;
	enum client_state      state;
	bool                   allowed;    /* counted in nclients */
	bool                   handed_over; /* its socket goes on in the next binary */
	bool                   notified;   /* closed() has been called */
	bool                   rpoll;      /* rev waits in a poll after -EAGAIN */
	bool                   spoll;
	bool                   sending;
	bool                   has_reason;
	/* Inside one of its own callbacks (or the handler's closed()): the
	 * memory must survive until the outermost one returns. */
	unsigned               busy;
	unsigned               holds;
	uid_t                  uid;
	enum sup_ctl_role      role;
	int64_t                last_rx;    /* loop time of its last request line */
	struct sup_timer       idle_timer;
	struct sup_ev          rev, sev;
	struct sup_timer       flush_timer;
	struct sup_ctl_buf     in;
	struct chunk          *head, *tail;
	size_t                 queued;
	char                   reason[REASON_MAX];
};

struct sup_ctl {
	struct sup_loop              *loop;
	const struct sup_ctl_handler *h;
	void                         *ctx;
	int                           fd;
	char                          path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sup_ctl_sock_id        id;
	size_t                        max_line;
	size_t                        max_queue;
	unsigned                      max_clients;
	int                           flush_timeout_ms;
	struct sup_ctl_sock_groups    groups;
	unsigned                      max_per_uid;
	int64_t                       idle_ns;
	char                         *tree;
	struct sup_ev                 aev;
	struct sup_timer              retry;
	struct sup_ctl_client        *clients;   /* every client not yet freed */
	unsigned                      nclients;
	bool                          closing;
	bool                          quiescing;  /* a live upgrade: accept nothing */
	/* Inside sup_ctl_close() or the accept callback: not to be freed. */
	unsigned                      busy;
};

/* ---- ctl_queue.c ---------------------------------------------------------- */

/* Free ctl once it is closing and nothing refers to it any more. */
void ctl_maybe_free(struct sup_ctl *ctl);
/* Shut the connection down now; the caller reaps when it is safe to call
 * the handler. fmt NULL: an orderly end. */
void ctl_client_kill(struct sup_ctl_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Tell the handler the client is gone (once). */
void ctl_client_notify(struct sup_ctl_client *c);
/* Called where the handler may be called: at the end of the loop's
 * callbacks. Notifies once the client is dead and its operations are
 * done, frees it once nobody holds it. */
void ctl_client_reap(struct sup_ctl_client *c);
/* Encode msg (stolen) at the end of the queue and start sending. */
int ctl_queue_msg(struct sup_ctl_client *c, json_t *msg);
/* Stop reading; close once the queue is out (or the flush timeout). */
void ctl_client_flush(struct sup_ctl_client *c, const char *reason);
/* The loop callbacks of a client's send and of its flush timeout. */
void ctl_on_send(struct sup_loop *l, struct sup_ev *ev, int res, bool more);
void ctl_on_flush_timeout(struct sup_loop *l, struct sup_timer *t);

#endif
