/* SPDX-License-Identifier: MIT */
/* The control socket: listener, admission, reading and framing requests,
 * the public calls (output queues and a client's lifetime are in
 * ctl_queue.c, the file and the credential check in ctl_sock.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_internal.h"

/* A listener error that is about resources (EMFILE ...) does not clear by
 * retrying at once; pause instead of spinning on it. */
#define ACCEPT_RETRY_NS (100 * 1000 * 1000LL)

/* ---- input ------------------------------------------------------------- */

static int recv_arm(struct sup_ctl_client *c)
{
	char *p;
	size_t n;
	int r = sup_ctl_buf_space(&c->in, &p, &n);

	if (r < 0)
		return r;
	if (n > SEND_MAX)
		n = SEND_MAX;
	return sup_loop_recv(c->ctl->loop, &c->rev, c->fd, p, (unsigned)n);
}

static void process_lines(struct sup_ctl_client *c)
{
	struct sup_ctl *ctl = c->ctl;

	while (c->state == C_OPEN && !ctl->closing) {
		struct sup_ctl_req req;
		const char *line;
		char err[256];
		bool has_id;
		uint64_t id = 0;
		size_t len;
		int r = sup_ctl_buf_next(&c->in, &line, &len);

		if (r == 0)
			return;
		if (r < 0) {
			snprintf(err, sizeof(err), "request line longer than %zu bytes",
				 ctl->max_line);
			ctl_queue_msg(c, sup_ctl_msg_err(false, 0, EMSGSIZE, err));
			ctl_client_flush(c, err);
			return;
		}
		/* A whole line, not a trickle of bytes, keeps a client from
		 * counting as idle. */
		c->last_rx = sup_loop_time(ctl->loop);
		if (sup_ctl_parse_request(line, len, err, sizeof(err), &req, &has_id, &id) < 0) {
			ctl_queue_msg(c, sup_ctl_msg_err(has_id, id, EINVAL, err));
			continue;
		}
		ctl->h->request(ctl->ctx, c, req.id, req.cmd, req.args);
		json_decref(req.root);
	}
}

static void on_recv(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_ctl_client *c = ev->data;
	int r;

	c->busy++;
	if (c->state != C_OPEN)
		goto out;
	if (c->rpoll) {
		c->rpoll = false;
		if (res < 0) {
			ctl_client_kill(c, "poll: %s", strerror(-res));
			goto out;
		}
	} else if (res == -EAGAIN) {
		r = sup_loop_poll(l, &c->rev, c->fd, POLLIN, false);
		if (r < 0)
			ctl_client_kill(c, "poll: %s", strerror(-r));
		else
			c->rpoll = true;
		goto out;
	} else if (res == 0 || res == -ECONNRESET) {
		ctl_client_kill(c, NULL);
		goto out;
	} else if (res < 0) {
		ctl_client_kill(c, "recv: %s", strerror(-res));
		goto out;
	} else {
		sup_ctl_buf_commit(&c->in, (size_t)res);
		process_lines(c);
		if (c->state != C_OPEN || c->ctl->closing)
			goto out;
	}
	r = recv_arm(c);
	if (r < 0)
		ctl_client_kill(c, "recv: %s", strerror(-r));
out:
	c->busy--;
	ctl_client_reap(c);
}

/* ---- accept ------------------------------------------------------------ */

static void client_refuse(struct sup_ctl_client *c, int err, const char *why)
{
	json_t *m = sup_ctl_msg_err(false, 0, err, why);

	/* A refusal answers no request: it carries no id at all. */
	if (m)
		json_object_del(m, "id");
	ctl_queue_msg(c, m);
	ctl_client_flush(c, why);
}

/* A client counts as idle only with nothing in flight: one waiting for a
 * late reply (held) or still taking a long reply (queued) is busy. */
static void on_idle_timeout(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_ctl_client *c = t->data;
	int64_t due = c->last_rx + c->ctl->idle_ns, now = sup_loop_time(l);
	char why[REASON_MAX];

	if (c->state != C_OPEN)
		return;
	if (c->holds || c->queued || now < due) {
		sup_timer_arm(l, t, now < due ? due : now + c->ctl->idle_ns);
		return;
	}
	c->busy++;
	snprintf(why, sizeof(why), "idle for %lld ms with no request (control_idle_timeout); "
		 "closing", (long long)(c->ctl->idle_ns / 1000000));
	client_refuse(c, ETIMEDOUT, why);
	c->busy--;
	ctl_client_reap(c);
}

/* Allowed connections of uid now. */
static unsigned uid_count(const struct sup_ctl *ctl, uid_t uid)
{
	unsigned n = 0;

	for (const struct sup_ctl_client *c = ctl->clients; c; c = c->next)
		if (c->allowed && c->state != C_DEAD && c->uid == uid)
			n++;
	return n;
}

/* 0: may connect; else the errno of the refusal, its sentence in why. */
static int admit(struct sup_ctl *ctl, struct sup_ctl_client *c, const struct ucred *cr,
		 char *why, size_t whylen)
{
	struct sup_ctl_sock_load load = {
		.uid = cr->uid,
		.clients = ctl->nclients,
		.uid_clients = uid_count(ctl, cr->uid),
		.max_clients = ctl->max_clients,
		.max_per_uid = ctl->max_per_uid,
		.reserve = SUP_CTL_ADMIN_RESERVE,
	};
	int r;

	r = sup_ctl_sock_peer_role(c->fd, cr, &ctl->groups, why, whylen);
	if (r == SUP_CTL_ROLE_NONE)
		return EPERM;
	c->role = (enum sup_ctl_role)r;
	/* Before the uid matters: an agent is refused even as root. */
	if (ctl->tree && sup_ctl_sock_peer_in_tree(c->fd, cr->pid, ctl->tree, why, whylen) != 0)
		return EPERM;
	load.role = c->role;
	return sup_ctl_sock_room(&load, why, whylen);
}

static void client_new(struct sup_ctl *ctl, int fd)
{
	struct sup_ctl_client *c;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char why[REASON_MAX];
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		r = -errno;
		close(fd);
		if (ctl->h->error)
			ctl->h->error(ctl->ctx, r, "SO_PEERCRED on a new control connection");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		if (ctl->h->error)
			ctl->h->error(ctl->ctx, -ENOMEM, "accepting a control connection");
		return;
	}
	c->ctl = ctl;
	c->fd = fd;
	c->uid = cr.uid;
	sup_ev_init(&c->rev, on_recv, c);
	sup_ev_init(&c->sev, ctl_on_send, c);
	sup_timer_init(&c->flush_timer, ctl_on_flush_timeout, c);
	sup_timer_init(&c->idle_timer, on_idle_timeout, c);
	c->last_rx = sup_loop_time(ctl->loop);
	sup_ctl_buf_init(&c->in, ctl->max_line);
	c->next = ctl->clients;
	if (ctl->clients)
		ctl->clients->prev = c;
	ctl->clients = c;

	c->busy++;
	r = admit(ctl, c, &cr, why, sizeof(why));
	if (r) {
		client_refuse(c, r, why);
	} else {
		c->allowed = true;
		ctl->nclients++;
		if (ctl->idle_ns)
			sup_timer_arm_in(ctl->loop, &c->idle_timer, ctl->idle_ns);
		r = recv_arm(c);
		if (r < 0)
			ctl_client_kill(c, "recv: %s", strerror(-r));
	}
	c->busy--;
	ctl_client_reap(c);
}

static bool accept_transient(int err)
{
	/* The connection died before we took it, or a signal: the listener
	 * itself is fine. */
	return err == -ECONNABORTED || err == -EINTR || err == -EAGAIN || err == -ECANCELED;
}

static void accept_arm(struct sup_ctl *ctl)
{
	int r = sup_loop_accept(ctl->loop, &ctl->aev, ctl->fd, true);

	if (r < 0) {
		if (ctl->h->error)
			ctl->h->error(ctl->ctx, r, "arming accept on the control socket");
		sup_timer_arm_in(ctl->loop, &ctl->retry, ACCEPT_RETRY_NS);
	}
}

static void on_accept_retry(struct sup_loop *l, struct sup_timer *t)
{
	accept_arm(t->data);
}

static void on_accept(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_ctl *ctl = ev->data;

	ctl->busy++;
	if (res >= 0) {
		if (ctl->closing || ctl->quiescing)
			close(res);   /* the client retries, and the next binary answers */
		else
			client_new(ctl, res);
	} else if (!ctl->closing && !accept_transient(res) && ctl->h->error) {
		ctl->h->error(ctl->ctx, res, "accept on the control socket");
	}
	/* Multishot ends on an error, or after each connection when the
	 * kernel only has single-shot accept. */
	if (!more && !ctl->closing && !ctl->quiescing) {
		if (res >= 0 || accept_transient(res))
			accept_arm(ctl);
		else
			sup_timer_arm_in(l, &ctl->retry, ACCEPT_RETRY_NS);
	}
	ctl->busy--;
	ctl_maybe_free(ctl);
}

/* ---- open / close ------------------------------------------------------ */

struct sup_ctl *sup_ctl_open(struct sup_loop *l, const struct sup_ctl_opts *o,
			     const struct sup_ctl_handler *h, void *ctx, char *err, size_t errlen)
{
	struct sup_ctl *ctl;
	const char *path;
	int r;

	if (!l || !o || o->sz < sizeof(*o) || !h || !h->request || !h->closed) {
		if (err && errlen)
			snprintf(err, errlen, "sup_ctl_open: bad arguments");
		errno = EINVAL;
		return NULL;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	path = o->path ? o->path : SUP_CTL_SOCKET_DEFAULT;
	ctl->loop = l;
	ctl->h = h;
	ctl->ctx = ctx;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	ctl->groups.self_uid = geteuid();
	ctl->groups.read = o->group;
	ctl->groups.has_read = o->has_group;
	ctl->groups.admin = o->admin_group;
	ctl->groups.has_admin = o->has_admin_group;
	ctl->max_per_uid = o->max_per_uid;
	ctl->idle_ns = o->idle_timeout_ms > 0 ? (int64_t)o->idle_timeout_ms * 1000000 : 0;
	if (o->tree_cgroup) {
		ctl->tree = strdup(o->tree_cgroup);
		if (!ctl->tree) {
			r = -ENOMEM;
			if (err && errlen)
				snprintf(err, errlen, "out of memory");
			goto free_ctl;
		}
	}
	ctl->max_line = o->max_line ? o->max_line : SUP_CTL_MAX_LINE_DEFAULT;
	ctl->max_queue = o->max_queue ? o->max_queue : SUP_CTL_MAX_QUEUE_DEFAULT;
	ctl->max_clients = o->max_clients ? o->max_clients : SUP_CTL_MAX_CLIENTS_DEFAULT;
	ctl->flush_timeout_ms = o->flush_timeout_ms > 0 ? o->flush_timeout_ms
							: SUP_CTL_FLUSH_TIMEOUT_MS_DEFAULT;
	sup_ev_init(&ctl->aev, on_accept, ctl);
	sup_timer_init(&ctl->retry, on_accept_retry, ctl);

	/* path, not ctl->path: a path too long for ctl->path must be
	 * refused, not silently cut. */
	/* With only admin_group, admins reach the file through it. */
	if (o->inherit) {
		r = o->listen_fd;
		ctl->id.dev = o->listen_dev;
		ctl->id.ino = o->listen_ino;
	} else {
		r = sup_ctl_sock_listen(path, o->has_group || o->has_admin_group,
					o->has_group ? o->group : o->admin_group,
					o->backlog > 0 ? o->backlog : SUP_CTL_BACKLOG_DEFAULT, err,
					errlen, &ctl->id);
	}
	if (r < 0)
		goto free_ctl;
	ctl->fd = r;
	r = sup_loop_accept(l, &ctl->aev, ctl->fd, true);
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "cannot start accepting on %s: %s", ctl->path,
				 strerror(-r));
		goto close_fd;
	}
	return ctl;
close_fd:
	sup_ctl_sock_unlink(ctl->path, &ctl->id);
	close(ctl->fd);
free_ctl:
	free(ctl->tree);
	free(ctl);
	errno = -r;
	return NULL;
}

void sup_ctl_close(struct sup_ctl *ctl)
{
	struct sup_ctl_client *c, *next;

	if (!ctl)
		return;
	ctl->closing = true;
	ctl->busy++;
	sup_timer_disarm(ctl->loop, &ctl->retry);
	sup_loop_cancel(ctl->loop, &ctl->aev);
	/* The pending accept holds its own reference to the socket; closing
	 * our fd now lets a successor bind the path at once. */
	close(ctl->fd);
	ctl->fd = -1;
	sup_ctl_sock_unlink(ctl->path, &ctl->id);
	/* The handler may release other clients from closed(): rescan from
	 * the head each time rather than trust a saved next pointer. */
	for (;;) {
		for (c = ctl->clients; c && c->notified; c = c->next)
			;
		if (!c)
			break;
		ctl_client_kill(c, NULL);
		ctl_client_notify(c);
	}
	for (c = ctl->clients; c; c = next) {
		next = c->next;
		ctl_client_reap(c);
	}
	ctl->busy--;
	ctl_maybe_free(ctl);
}

void sup_ctl_quiesce(struct sup_ctl *ctl, const char *reason)
{
	ctl->quiescing = true;
	sup_timer_disarm(ctl->loop, &ctl->retry);
	sup_loop_cancel(ctl->loop, &ctl->aev);
	for (struct sup_ctl_client *c = ctl->clients; c; c = c->next) {
		c->busy++;
		ctl_client_flush(c, reason);
		c->busy--;
	}
	for (struct sup_ctl_client *c = ctl->clients, *next; c; c = next) {
		next = c->next;
		ctl_client_reap(c);
	}
}

bool sup_ctl_quiet(const struct sup_ctl *ctl)
{
	return sup_ev_idle(&ctl->aev) && !ctl->nclients;
}

void sup_ctl_resume(struct sup_ctl *ctl)
{
	ctl->quiescing = false;
	if (sup_ev_idle(&ctl->aev))
		accept_arm(ctl);
}

int sup_ctl_listen_fd(const struct sup_ctl *ctl, dev_t *dev, ino_t *ino)
{
	*dev = ctl->id.dev;
	*ino = ctl->id.ino;
	return ctl->fd;
}

int sup_ctl_client_hand_over(struct sup_ctl_client *c)
{
	int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);

	if (fd >= 0)
		c->handed_over = true;
	return fd < 0 ? -errno : fd;
}

unsigned sup_ctl_nclients(const struct sup_ctl *ctl)
{
	return ctl->nclients;
}

/* ---- messages ---------------------------------------------------------- */

int sup_ctl_send(struct sup_ctl_client *c, json_t *msg)
{
	if (c->state != C_OPEN) {
		json_decref(msg);
		return -ENOTCONN;
	}
	return ctl_queue_msg(c, msg);
}

int sup_ctl_reply_ok(struct sup_ctl_client *c, uint64_t id, json_t *result)
{
	if (c->state != C_OPEN) {
		json_decref(result);
		return -ENOTCONN;
	}
	return ctl_queue_msg(c, sup_ctl_msg_ok(id, result));
}

int sup_ctl_reply_more(struct sup_ctl_client *c, uint64_t id, json_t *result)
{
	if (c->state != C_OPEN) {
		json_decref(result);
		return -ENOTCONN;
	}
	return ctl_queue_msg(c, sup_ctl_msg_more(id, result));
}

int sup_ctl_reply_err(struct sup_ctl_client *c, uint64_t id, int err, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int r;

	if (c->state != C_OPEN)
		return -ENOTCONN;
	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return ctl_queue_msg(c, NULL);
	r = ctl_queue_msg(c, sup_ctl_msg_err(true, id, err, msg));
	free(msg);
	return r;
}

/* ---- clients ----------------------------------------------------------- */

void sup_ctl_client_close(struct sup_ctl_client *c)
{
	ctl_client_flush(c, NULL);
}

void sup_ctl_client_hold(struct sup_ctl_client *c)
{
	c->holds++;
}

void sup_ctl_client_release(struct sup_ctl_client *c)
{
	if (!c || !c->holds)
		return;
	c->holds--;
	ctl_client_reap(c);
}

bool sup_ctl_client_connected(const struct sup_ctl_client *c)
{
	return c->state == C_OPEN;
}

uid_t sup_ctl_client_uid(const struct sup_ctl_client *c)
{
	return c->uid;
}

enum sup_ctl_role sup_ctl_client_role(const struct sup_ctl_client *c)
{
	return c->role;
}
