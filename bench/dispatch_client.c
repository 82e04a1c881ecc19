/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_client.h"

#define RBUF (1u << 20)
#define LINE_MAX_REQ 512

struct client {
	int   fd;
	char *rbuf;
	size_t rlen;
};

static void client_teardown(void *st)
{
	struct client *c = st;

	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c);
}

static void *client_setup(void *arg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->rbuf = malloc(RBUF);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", (const char *)arg);
	if (!c->rbuf || c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "dispatch client: connect %s: %m\n", (const char *)arg);
		client_teardown(c);
		return NULL;
	}
	return c;
}

/* The value of "key" at the top of a reply line, spaces skipped (tierd
 * writes `"key": value`). Replies are tierd's own JSON, so the first "id"
 * is the request id and "status" appears only in the result. */
static const char *value_of(const char *line, const char *end, const char *key)
{
	size_t kl = strlen(key);
	const char *p = memmem(line, (size_t)(end - line), key, kl);

	if (!p)
		return NULL;
	p += kl;
	while (p < end && (*p == ' ' || *p == ':'))
		p++;
	return p < end ? p : NULL;
}

/* One reply line: 1 = final reply to id (*ok says whether the task ended
 * "ok"), 0 = something else (a partial, an event). */
static int parse_reply(const char *line, const char *end, uint64_t *id, int *ok)
{
	const char *v = value_of(line, end, "\"id\"");
	const char *m = value_of(line, end, "\"more\"");
	const char *s;

	if (!v || *v < '0' || *v > '9' || (m && !strncmp(m, "true", 4)))
		return 0;
	*id = strtoull(v, NULL, 10);
	s = value_of(line, end, "\"status\"");
	*ok = s && !strncmp(s, "\"ok\"", 4);
	return 1;
}

static int client_run(void *st, const struct disp_load *ld, struct disp_result *ret)
{
	struct client *c = st;
	char payload[128], tail[256], *wbuf;
	uint64_t sent = 0, done = 0, failed = 0;
	int64_t *t_send = calloc(ld->n, sizeof(*t_send)), *lat = calloc(ld->n, sizeof(*lat));
	int64_t t0, t1, cpu0;
	size_t nlat = 0, tl;
	int r = 0;

	wbuf = malloc((size_t)ld->window * LINE_MAX_REQ + LINE_MAX_REQ);
	if (!t_send || !lat || !wbuf) {
		r = -ENOMEM;
		goto free_bufs;
	}
	disp_payload(ld, payload, sizeof(payload));
	tl = (size_t)snprintf(tail, sizeof(tail),
			      ",\"cmd\":\"submit\",\"args\":{\"tier\":%d,\"type\":\"%s\",\"payload\":\"%s\"}}\n",
			      ld->tier, ld->type, payload);
	cpu0 = disp_self_cpu_ns();
	t0 = bench_now_ns();
	while (done < ld->n) {
		size_t wl = 0;
		uint64_t first = sent;
		ssize_t got;
		char *p, *nl, *end;
		int64_t now;

		while (sent < ld->n && sent - done < ld->window) {
			wl += (size_t)sprintf(wbuf + wl, "{\"id\":%" PRIu64, sent + 1);
			memcpy(wbuf + wl, tail, tl);
			wl += tl;
			sent++;
		}
		if (wl) {
			now = bench_now_ns();
			for (uint64_t i = first; i < sent; i++)
				t_send[i] = now;
			r = disp_write_all(c->fd, wbuf, wl);
			if (r < 0)
				goto free_bufs;
		}
		got = disp_read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
		if (got <= 0) {
			r = got ? (int)got : -ECONNRESET;
			goto free_bufs;
		}
		now = bench_now_ns();
		c->rlen += (size_t)got;
		p = c->rbuf;
		end = c->rbuf + c->rlen;
		while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
			uint64_t id;
			int ok;

			if (parse_reply(p, nl, &id, &ok) && id >= 1 && id <= sent) {
				done++;
				if (ok)
					lat[nlat++] = now - t_send[id - 1];
				else
					failed++;
			}
			p = nl + 1;
		}
		c->rlen = (size_t)(end - p);
		memmove(c->rbuf, p, c->rlen);
		if (c->rlen == RBUF) {
			r = -EMSGSIZE;
			goto free_bufs;
		}
		if (ld->gap_ns && done == sent && done < ld->n)
			disp_sleep_ns(ld->gap_ns);
	}
	t1 = bench_now_ns();
	ret->tasks = done;
	ret->failed = failed;
	ret->seconds = (double)(t1 - t0) * 1e-9;
	ret->tasks_per_s = (double)(done - failed) / ret->seconds;
	ret->client_cpu_ns = (double)(disp_self_cpu_ns() - cpu0) / (double)done;
	disp_lat_fill(ret, lat, nlat);
	if (failed)
		fprintf(stderr, "dispatch client: %" PRIu64 " of %" PRIu64 " tasks did not end ok\n",
			failed, done);
free_bufs:
	free(wbuf);
	free(t_send);
	free(lat);
	return r;
}

const struct disp_proc_ops disp_client_ops = {
	.setup = client_setup,
	.run = client_run,
	.teardown = client_teardown,
};
