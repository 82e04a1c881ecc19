/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_pool.h"
#include "dispatch_wire.h"

#define MAX_WORKERS 256
#define RBUF        65536

struct worker {
	pid_t    pid;
	int      wfd, rfd;
	unsigned inflight;
	size_t   rlen;
	struct disp_pool_task  *out;   /* tasks batched for one write */
	size_t   nout;
	char     in[RBUF];
};

struct pool {
	unsigned       n;
	unsigned       rr;
	struct worker *w;
	struct pollfd *pfd;
};

static void pool_teardown(void *st)
{
	struct pool *p = st;

	for (unsigned i = 0; i < p->n; i++) {
		/* EOF on its stdin ends a worker; reap by pid. */
		if (p->w[i].wfd >= 0)
			close(p->w[i].wfd);
		if (p->w[i].rfd >= 0)
			close(p->w[i].rfd);
		if (p->w[i].pid > 0 && disp_wait(p->w[i].pid, 2000000000LL) < 0)
			disp_reap(p->w[i].pid, 1000000000LL);
		free(p->w[i].out);
	}
	free(p->w);
	free(p->pfd);
	free(p);
}

static void *pool_setup(void *arg)
{
	const struct disp_pool_arg *a = arg;
	struct pool *p = calloc(1, sizeof(*p));

	if (!p || a->nworkers > MAX_WORKERS)
		return NULL;
	p->w = calloc(a->nworkers, sizeof(*p->w));
	p->pfd = calloc(a->nworkers, sizeof(*p->pfd));
	if (!p->w || !p->pfd)
		return NULL;
	for (unsigned i = 0; i < a->nworkers; i++) {
		struct worker *w = &p->w[i];
		char *argv[] = { (char *)a->worker, NULL };
		int to[2], from[2];

		w->wfd = w->rfd = -1;
		p->n = i + 1;
		if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
			goto teardown_pool;
		w->pid = disp_spawn(argv, to[0], from[1]);
		close(to[0]);
		close(from[1]);
		w->wfd = to[1];
		w->rfd = from[0];
		w->out = malloc(sizeof(*w->out) * 1024);
		if (w->pid < 0 || !w->out) {
			fprintf(stderr, "pool: cannot start %s: %s\n", a->worker, strerror(-w->pid));
			goto teardown_pool;
		}
		p->pfd[i].fd = w->rfd;
		p->pfd[i].events = POLLIN;
	}
	return p;
teardown_pool:
	pool_teardown(p);
	return NULL;
}

static int pool_run(void *st, const struct disp_load *ld, struct disp_result *ret)
{
	struct pool *p = st;
	unsigned per = ld->window / p->n ? ld->window / p->n : 1;
	int64_t *t_send = calloc(ld->n, sizeof(*t_send)), *lat = calloc(ld->n, sizeof(*lat));
	uint64_t sent = 0, done = 0;
	int64_t t0, cpu0;
	char payload[DISP_PAYLOAD + 1];
	int r = 0;

	if (!t_send || !lat) {
		r = -ENOMEM;
		goto free_lat;
	}
	if (per > 1024)
		per = 1024;
	disp_payload(ld, payload, sizeof(payload));
	cpu0 = disp_self_cpu_ns();
	t0 = bench_now_ns();
	while (done < ld->n) {
		int64_t now = bench_now_ns();
		int np;

		/* Fill: round robin from a moving start, so one task in flight
		 * visits every worker in turn. */
		for (unsigned k = 0; k < p->n && sent < ld->n && sent - done < ld->window; k++) {
			struct worker *w = &p->w[(p->rr + k) % p->n];

			while (w->inflight < per && sent < ld->n && sent - done < ld->window) {
				struct disp_pool_task *t = &w->out[w->nout++];

				t->id = sent;
				t->len = DISP_PAYLOAD;
				memcpy(t->payload, payload, DISP_PAYLOAD);
				t_send[sent++] = now;
				w->inflight++;
			}
		}
		p->rr = (p->rr + 1) % p->n;
		for (unsigned i = 0; i < p->n; i++) {
			struct worker *w = &p->w[i];

			if (!w->nout)
				continue;
			/* At most per records are unread in a pipe: the write
			 * fits its buffer and never waits on the worker. */
			r = disp_write_all(w->wfd, w->out, w->nout * sizeof(*w->out));
			if (r < 0)
				goto free_lat;
			w->nout = 0;
		}
		np = poll(p->pfd, p->n, -1);
		if (np < 0 && errno != EINTR) {
			r = -errno;
			goto free_lat;
		}
		now = bench_now_ns();
		for (unsigned i = 0; i < p->n && np > 0; i++) {
			struct worker *w = &p->w[i];
			struct disp_pool_reply *rep;
			ssize_t got;
			size_t k, nrec;

			if (!p->pfd[i].revents)
				continue;
			np--;
			got = disp_read(w->rfd, w->in + w->rlen, sizeof(w->in) - w->rlen);
			if (got <= 0) {
				r = got ? (int)got : -EPIPE;
				goto free_lat;
			}
			w->rlen += (size_t)got;
			nrec = w->rlen / sizeof(*rep);
			rep = (struct disp_pool_reply *)w->in;
			for (k = 0; k < nrec; k++) {
				if (rep[k].id >= sent) {
					r = -EPROTO;
					goto free_lat;
				}
				lat[done++] = now - t_send[rep[k].id];
			}
			w->inflight -= (unsigned)nrec;
			w->rlen -= nrec * sizeof(*rep);
			memmove(w->in, w->in + nrec * sizeof(*rep), w->rlen);
		}
		if (ld->gap_ns && done == sent && done < ld->n)
			disp_sleep_ns(ld->gap_ns);
	}
	ret->tasks = done;
	ret->seconds = (double)(bench_now_ns() - t0) * 1e-9;
	ret->tasks_per_s = (double)done / ret->seconds;
	ret->disp_cpu_ns = (double)(disp_self_cpu_ns() - cpu0) / (double)done;
	disp_lat_fill(ret, lat, done);
free_lat:
	free(t_send);
	free(lat);
	return r;
}

const struct disp_proc_ops disp_pool_ops = {
	.setup = pool_setup,
	.run = pool_run,
	.teardown = pool_teardown,
};
