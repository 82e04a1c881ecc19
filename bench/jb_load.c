/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "jb_load.h"

#define JB_BUF 4096

struct jb_conn {
	int      fd;
	int64_t  sent_ns;   /* when the outstanding request went out; 0: none */
	size_t   len;       /* bytes of reply buffered */
	char     buf[JB_BUF];
};

struct jb_run {
	enum jb_proto proto;
	const char   *args, *payload;
	size_t        n, issued, answered;
	uint64_t     *lat;
	uint64_t      seq;
	struct jb_result *res;
};

int jb_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t until = bench_now_ns() + (int64_t)timeout_ms * 1000000;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct timespec ts = { 0, 10 * 1000000 };
		int err;

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		err = errno;
		close(fd);
		if (bench_now_ns() > until)
			return -err;
		nanosleep(&ts, NULL);
	}
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int issue(struct jb_run *r, struct jb_conn *c)
{
	char req[1024];
	int len;

	if (r->issued == r->n) {
		c->sent_ns = 0;
		return 0;
	}
	if (r->proto == JB_TIERD)
		len = snprintf(req, sizeof(req),
			       "{\"id\":%llu,\"cmd\":\"submit\",\"args\":{%s,\"type\":\"bench\","
			       "\"payload\":\"%s\",\"detach\":true}}\n",
			       (unsigned long long)++r->seq, r->args, r->payload);
	else
		len = snprintf(req, sizeof(req), "put 0 0 60 %zu\r\n%s\r\n", strlen(r->payload),
			       r->payload);
	if (len < 0 || (size_t)len >= sizeof(req))
		return -EMSGSIZE;
	r->issued++;
	c->sent_ns = bench_now_ns();
	return send_all(c->fd, req, (size_t)len);
}

/* One complete reply line at the head of c->buf: its length, 0 if none yet. */
static size_t reply_line(const struct jb_run *r, const struct jb_conn *c)
{
	const char *nl = memchr(c->buf, '\n', c->len);

	(void)r;
	return nl ? (size_t)(nl - c->buf) + 1 : 0;
}

static void note_reply(struct jb_run *r, struct jb_conn *c, const char *line, size_t len)
{
	int ok;

	if (r->proto == JB_TIERD)
		ok = memmem(line, len, "\"ok\":true", 9) != NULL;
	else
		ok = len > 9 && !memcmp(line, "INSERTED ", 9);
	if (!ok && r->res->errors++ == 0) {
		size_t k = len < sizeof(r->res->first_error) - 1 ? len : sizeof(r->res->first_error) - 1;

		memcpy(r->res->first_error, line, k);
		r->res->first_error[k] = 0;
		while (k && (r->res->first_error[k - 1] == '\n' || r->res->first_error[k - 1] == '\r'))
			r->res->first_error[--k] = 0;
	}
	r->lat[r->answered++] = (uint64_t)(bench_now_ns() - c->sent_ns);
}

/* Read what c has; answer each complete reply with the next request. */
static int on_readable(struct jb_run *r, struct jb_conn *c)
{
	ssize_t got = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	size_t line;

	if (got < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (got == 0)
		return -ECONNRESET;
	c->len += (size_t)got;
	while ((line = reply_line(r, c)) > 0) {
		int err;

		if (!c->sent_ns)
			return -EPROTO; /* a line nobody asked for */
		note_reply(r, c, c->buf, line);
		memmove(c->buf, c->buf + line, c->len - line);
		c->len -= line;
		err = issue(r, c);
		if (err < 0)
			return err;
	}
	return c->len == sizeof(c->buf) ? -EMSGSIZE : 0;
}

int jb_load_run(enum jb_proto proto, const char *path, int conns, size_t n, const char *submit_args,
		const char *payload, struct jb_result *ret)
{
	struct jb_result res = { 0 };
	struct jb_run r = { .proto = proto, .args = submit_args, .payload = payload, .n = n, .res = &res };
	struct jb_conn *c = calloc((size_t)conns, sizeof(*c));
	int ep = epoll_create1(EPOLL_CLOEXEC), err = 0;
	int64_t t0, t1;

	r.lat = calloc(n ? n : 1, sizeof(*r.lat));
	if (!c || !r.lat || ep < 0) {
		err = ep < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (int i = 0; i < conns; i++)
		c[i].fd = -1;
	for (int i = 0; i < conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c[i] };

		c[i].fd = jb_connect(path, 2000);
		if (c[i].fd < 0) {
			err = c[i].fd;
			goto out;
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev) < 0) {
			err = -errno;
			goto out;
		}
	}
	t0 = bench_now_ns();
	for (int i = 0; i < conns && !err; i++)
		err = issue(&r, &c[i]);
	while (!err && r.answered < n) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, 30000);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			err = k < 0 ? -errno : -ETIMEDOUT;
			break;
		}
		for (int i = 0; i < k && !err; i++)
			err = on_readable(&r, evs[i].data.ptr);
	}
	t1 = bench_now_ns();
	if (err)
		goto out;
	res.per_s = (double)n / ((double)(t1 - t0) * 1e-9);
	res.max_ns = bench_pct(r.lat, n, 1.0);
	res.p50_ns = bench_pct(r.lat, n, 0.50);
	res.p99_ns = bench_pct(r.lat, n, 0.99);
	*ret = res;
out:
	for (int i = 0; c && i < conns; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	if (ep >= 0)
		close(ep);
	free(c);
	free(r.lat);
	return err;
}
