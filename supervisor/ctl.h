/* SPDX-License-Identifier: MIT */
/*
 * ctl — tierd's control socket: a Unix stream socket speaking JSON lines
 * (the protocol is in ctlproto.h and docs/control.md).
 *
 * The module owns the listening socket and its peers: it accepts through
 * the loop (multishot), checks each peer's credentials, reads and frames
 * requests, validates them, and answers malformed ones itself; every
 * well-formed request goes to handler->request. Replies, streamed partial
 * results and events are queued per client and written as the peer reads
 * them. Nothing here blocks or logs: what the daemon should log arrives
 * through the handler (closed's reason, error). The socket file and the
 * credential check live in ctl_sock.h, the wire format in ctlproto.h.
 *
 * Who may connect: uid 0, the server's own uid, and peers whose primary or
 * supplementary groups (SO_PEERCRED, SO_PEERGROUPS) include opts.group
 * (the read role) or opts.admin_group (the admin role); see ctl_roles.h.
 * A peer whose process runs inside opts.tree_cgroup is refused whatever
 * its uid. The socket file is 0660 root:<group> with a group, 0600
 * without. Anyone else gets one refusal line with code EPERM and is
 * closed; so is a peer over its uid's connection cap, or over max_clients
 * (EBUSY; SUP_CTL_ADMIN_RESERVE of the slots only admins may take), and a
 * client idle past idle_timeout_ms (ETIMEDOUT).
 *
 * Lifetimes. A client lives from accept until it has disconnected, its
 * operations have completed and the handler released every hold. After
 * the disconnect (closed() has been called) it stays valid for holders,
 * but sup_ctl_client_connected() is false and sends fail with -ENOTCONN.
 * The handler is never called from inside a sup_ctl_* function it called,
 * with one exception: sup_ctl_close() calls closed() for each client.
 */
#ifndef SUP_CTL_H
#define SUP_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/ctlproto.h"
#include "loop.h"

#define SUP_CTL_SOCKET_DEFAULT      "/run/tierd/tierd.sock"
/* Replies the client does not read pile up here; beyond it, it is cut. */
#define SUP_CTL_MAX_QUEUE_DEFAULT   ((size_t)16 << 20)
#define SUP_CTL_MAX_CLIENTS_DEFAULT 256
#define SUP_CTL_BACKLOG_DEFAULT     64
/* How long a client being closed (refused, sent an over-long line) gets to
 * read its last line. */
#define SUP_CTL_FLUSH_TIMEOUT_MS_DEFAULT 5000
/* Of max_clients, this many are kept for admins (root, the server's uid,
 * admin_group): a crowd of read-only peers cannot lock them out. */
#define SUP_CTL_ADMIN_RESERVE 16

struct sup_ctl;
struct sup_ctl_client;

struct sup_ctl_handler {
	/*
	 * One well-formed request. cmd and args (an object, empty when the
	 * request had none) are borrowed for the call: copy cmd and
	 * json_incref args to keep them. Reply
	 * now or later, exactly once (plus any sup_ctl_reply_more before);
	 * to reply later, sup_ctl_client_hold(c) now and release after.
	 */
	void (*request)(void *ctx, struct sup_ctl_client *c, uint64_t id, const char *cmd,
			json_t *args);
	/*
	 * Every accepted connection ends here exactly once, refused peers
	 * included. reason is NULL for an orderly end (the peer hung up,
	 * sup_ctl_client_close(), sup_ctl_close()) and otherwise says why
	 * the module cut it, for the log: "permission denied: uid 1000 is
	 * not root and not in group 998", "not reading: 16777216 bytes
	 * queued (limit 16777216)", "request line longer than 4194304
	 * bytes", "recv: Connection reset by peer" ...
	 */
	void (*closed)(void *ctx, struct sup_ctl_client *c, const char *reason);
	/* Optional: the listener hit an error (EMFILE ...); accepting
	 * resumes by itself after a pause. For the log. */
	void (*error)(void *ctx, int err, const char *what);
};

struct sup_ctl_opts {
	size_t      sz;           /* sizeof(struct sup_ctl_opts) */
	const char *path;         /* NULL = SUP_CTL_SOCKET_DEFAULT */
	gid_t       group;        /* with has_group: the group allowed in */
	bool        has_group;
	size_t      max_line;     /* 0 = SUP_CTL_MAX_LINE_DEFAULT */
	size_t      max_queue;    /* 0 = SUP_CTL_MAX_QUEUE_DEFAULT */
	unsigned    max_clients;  /* 0 = SUP_CTL_MAX_CLIENTS_DEFAULT */
	int         backlog;      /* 0 = SUP_CTL_BACKLOG_DEFAULT */
	int         flush_timeout_ms; /* 0 = SUP_CTL_FLUSH_TIMEOUT_MS_DEFAULT */
	/* Roles (ctl_roles.h): members of group get the read role, members
	 * of admin_group the admin role, as do uid 0 and the server's uid. */
	gid_t       admin_group;
	bool        has_admin_group;
	/* Connections one uid other than root may hold; 0 = no cap. */
	unsigned    max_per_uid;
	/* A client with nothing in flight that sends no request for this
	 * long is told so and closed; 0 = never. */
	int         idle_timeout_ms;
	/* A /proc/PID/cgroup path ("/tierd"): peers inside it or below are
	 * refused whatever their uid; NULL = no check. Copied. */
	const char *tree_cgroup;
	/* A live upgrade: listen on this socket, already bound at path (the
	 * file is id), instead of binding. */
	bool        inherit;
	int         listen_fd;
	dev_t       listen_dev;
	ino_t       listen_ino;
};

/*
 * Create the socket's directory (0755) if missing, take over a stale
 * socket file (nothing accepts on it), bind, set owner and mode, listen,
 * and start accepting on l. NULL with errno set and a sentence in err on
 * failure: EADDRINUSE (another tierd answers on the path), EEXIST (the
 * path is not a socket), EINVAL (bad options), or what the kernel said.
 * h and ctx must outlive the handle.
 */
struct sup_ctl *sup_ctl_open(struct sup_loop *l, const struct sup_ctl_opts *o,
			     const struct sup_ctl_handler *h, void *ctx, char *err, size_t errlen);
/*
 * Stop accepting, remove the socket file (if it is still the one bound
 * here), disconnect every client (closed(c, NULL) for each, before this
 * returns; the handler is not called afterwards). Memory still referenced
 * by operations in flight, and clients still held, are freed when their
 * completions arrive and the holds are released: turn the loop a little
 * before sup_loop_free(). NULL is fine.
 */
void sup_ctl_close(struct sup_ctl *ctl);

/* Clients connected and allowed in (refused peers do not count). */
/* Live upgrade: stop accepting and end every client once its queued
 * output is out (or the flush timeout); quiet once none is left and no
 * accept is pending. resume undoes quiesce (the upgrade did not happen).
 * listen_fd: the socket and its file, for the next binary. */
void sup_ctl_quiesce(struct sup_ctl *ctl, const char *reason);
bool sup_ctl_quiet(const struct sup_ctl *ctl);
void sup_ctl_resume(struct sup_ctl *ctl);
int  sup_ctl_listen_fd(const struct sup_ctl *ctl, dev_t *dev, ino_t *ino);
/* A copy of the connection's socket, for the next binary to answer the
 * request on (the upgrade's): closing the client here no longer shuts
 * the connection down. The fd, or -errno. */
int  sup_ctl_client_hand_over(struct sup_ctl_client *c);

unsigned sup_ctl_nclients(const struct sup_ctl *ctl);

/*
 * Queue messages. Each returns 0 or -errno: -ENOTCONN (the client is gone
 * or closing), -EMSGSIZE (this one message is larger than max_queue; the
 * client stays), -ENOBUFS (the queue overflowed: the client does not read
 * and is being disconnected), -ENOMEM, -EINVAL (cannot be encoded).
 * Stolen references are released in every case.
 */
int sup_ctl_reply_ok(struct sup_ctl_client *c, uint64_t id, json_t *result /* stolen; NULL = {} */);
/* err: -errno or errno, sent as its name ("ENOENT"); fmt: the sentence. */
int sup_ctl_reply_err(struct sup_ctl_client *c, uint64_t id, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* One partial result of a streaming request; the final reply follows. */
int sup_ctl_reply_more(struct sup_ctl_client *c, uint64_t id, json_t *result /* stolen */);
/* Any message: events ({"event": kind, ...}). */
int sup_ctl_send(struct sup_ctl_client *c, json_t *msg /* stolen */);

/* Flush what is queued, then disconnect; closed(c, NULL) follows (with a
 * reason if the peer does not take its last bytes within the flush
 * timeout). */
void sup_ctl_client_close(struct sup_ctl_client *c);

void sup_ctl_client_hold(struct sup_ctl_client *c);
void sup_ctl_client_release(struct sup_ctl_client *c);
bool sup_ctl_client_connected(const struct sup_ctl_client *c);
/* The peer's credentials as the kernel saw them at connect(). */
uid_t sup_ctl_client_uid(const struct sup_ctl_client *c);
/* Its role (enum sup_ctl_role), fixed at connect. */
enum sup_ctl_role sup_ctl_client_role(const struct sup_ctl_client *c);

#endif
