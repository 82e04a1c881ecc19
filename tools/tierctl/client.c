/* SPDX-License-Identifier: MIT */
/* tierctl: connection, requests and replies. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "client.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tctl_deadline(const struct tctl_conn *c)
{
	return c->timeout_ms < 0 ? -1 : now_ms() + c->timeout_ms;
}

static void group_name(gid_t gid, char *buf, size_t len)
{
	struct group *g = getgrgid(gid);

	if (g)
		snprintf(buf, len, "%s", g->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned)gid);
}

static void user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *p = getpwuid(uid);

	if (p)
		snprintf(buf, len, "%s", p->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

/* Turn a connect() failure into what the operator should do about it. */
static void explain(int e, const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct stat st;
	char grp[64], usr[64];

	switch (e) {
	case ENOENT:
	case ECONNREFUSED:
		snprintf(err, errlen, "tierd is not running (no socket at %s)", path);
		return;
	case EACCES:
	case EPERM:
		if (stat(path, &st) < 0) {
			snprintf(err, errlen, "permission denied on %s: cannot reach it (%s)", path,
				 strerror(errno));
			return;
		}
		group_name(st.st_gid, grp, sizeof(grp));
		if ((st.st_mode & 0060) == 0060) {
			snprintf(err, errlen, "permission denied on %s: it is owned by group %s with "
				 "mode %04o; run as root or join group %s", path, grp,
				 (unsigned)(st.st_mode & 07777), grp);
		} else {
			user_name(st.st_uid, usr, sizeof(usr));
			snprintf(err, errlen, "permission denied on %s: it is owned by %s:%s with mode "
				 "%04o (tierd admits no group); run as root", path, usr, grp,
				 (unsigned)(st.st_mode & 07777));
		}
		return;
	case EAGAIN:
		snprintf(err, errlen, "tierd did not accept the connection on %s within %d ms",
			 path, timeout_ms);
		return;
	case ENOTSOCK:
		snprintf(err, errlen, "%s is not a socket", path);
		return;
	default:
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
	}
}

int tctl_connect(struct tctl_conn *c, const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->path = path;
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	sup_ctl_buf_init(&c->in, TCTL_MAX_LINE);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	if (timeout_ms > 0) {
		/* Bounds connect() against a full backlog (Unix sockets
		 * wait for room using the send timeout) and each send. */
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	e = -sup_connect_unix(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (e) {
		close(fd);
		explain(e, path, timeout_ms, err, errlen);
		return -e;
	}
	c->fd = fd;
	return 0;
}

void tctl_close(struct tctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sup_ctl_buf_free(&c->in);
}

int tctl_send(struct tctl_conn *c, const char *cmd, json_t *args, char *err, size_t errlen,
	      uint64_t *ret_id)
{
	json_t *m = sup_ctl_msg_request(c->next_id, cmd, args);
	char *buf = NULL;
	size_t len, off = 0;
	int r;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = sup_ctl_encode(m, NULL, 0, &len);
	if (r == 0) {
		buf = malloc(len);
		r = buf ? sup_ctl_encode(m, buf, len, &len) : -ENOMEM;
	}
	json_decref(m);
	if (r < 0) {
		snprintf(err, errlen, "cannot encode the request: %s", strerror(-r));
		goto free_buf;
	}
	while (off < len) {
		/* MSG_NOSIGNAL: a server that hung up (a refusal) is an error
		 * to read about, not a signal to die of. */
		ssize_t n = sup_send(c->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			r = (int)n;
			snprintf(err, errlen, "cannot send to tierd: %s", strerror(-r));
			goto free_buf;
		}
		off += (size_t)n;
	}
	*ret_id = c->next_id++;
free_buf:
	free(buf);
	return r;
}

int tctl_read(struct tctl_conn *c, int64_t deadline_ms, char *err, size_t errlen,
	      struct sup_ctl_msg *ret)
{
	for (;;) {
		const char *line;
		size_t len, room;
		char *p;
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int r = sup_ctl_buf_next(&c->in, &line, &len);

		if (r > 0) {
			char why[256];

			if (sup_ctl_parse_msg(line, len, why, sizeof(why), ret) < 0) {
				snprintf(err, errlen, "tierd sent a bad message: %s", why);
				return -EPROTO;
			}
			return 0;
		}
		if (r == 0)
			r = sup_ctl_buf_space(&c->in, &p, &room);
		if (r < 0) {
			snprintf(err, errlen, r == -EMSGSIZE ? "a line from tierd is longer than %zu bytes"
				 : "out of memory reading from tierd", c->in.max_line);
			return r;
		}
		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - now_ms();

			if (left <= 0) {
				snprintf(err, errlen, "no reply from tierd within %d ms", c->timeout_ms);
				return -ETIMEDOUT;
			}
			r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
			if (r < 0 && errno != EINTR) {
				snprintf(err, errlen, "poll: %s", strerror(errno));
				return -errno;
			}
			if (r <= 0)
				continue;
		}
		n = sup_recv(c->fd, p, room, 0);
		if (n == 0 || n == -ECONNRESET) {
			snprintf(err, errlen, "tierd closed the connection");
			return -ECONNRESET;
		}
		if (n < 0) {
			r = (int)n;
			snprintf(err, errlen, "cannot read from tierd: %s", strerror(-r));
			return r;
		}
		sup_ctl_buf_commit(&c->in, (size_t)n);
	}
}

int tctl_call(struct tctl_conn *c, const char *cmd, json_t *args, tctl_partial_cb partial,
	      void *arg, char *err, size_t errlen, struct sup_ctl_msg *ret)
{
	int64_t deadline;
	uint64_t id = c->next_id;
	int r;

	r = tctl_send(c, cmd, args, err, errlen, &id);
	/* A server that refused us may have closed before our request went
	 * out; its refusal is still there to read. */
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		return r;
	deadline = tctl_deadline(c);
	for (;;) {
		struct sup_ctl_msg m;

		r = tctl_read(c, deadline, err, errlen, &m);
		if (r < 0)
			return r;
		if (m.kind == SUP_CTL_MSG_REPLY && (!m.has_id || m.id == id)) {
			*ret = m;
			return 0;
		}
		if (m.kind == SUP_CTL_MSG_PARTIAL && m.id == id && partial)
			partial(arg, m.result);
		json_decref(m.root);
	}
}
