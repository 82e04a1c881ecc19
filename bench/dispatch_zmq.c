/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "dispatch_wire.h"
#include "dispatch_zmq.h"

#define FRAME_MAX     256
#define SEC           1000000000LL
#define READY_NS      (10 * SEC)
/* A reply that takes longer than this means the pool is broken. */
#define RECV_TIMEOUT_MS 10000
#define WARMUP_TASKS  2000

/* ---- sockets ----------------------------------------------------------------- */

static void *zsock(void *ctx, int type)
{
	void *s = zmq_socket(ctx, type);
	int zero = 0, to = RECV_TIMEOUT_MS;

	if (!s)
		return NULL;
	/* No high-water marks: the window is the only flow control, as for
	 * every other contender. */
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
	return s;
}

static int zrecv(void *s, void *buf, size_t cap, int flags, int *more)
{
	size_t ml = sizeof(*more);
	int n;

	do
		n = zmq_recv(s, buf, cap, flags);
	while (n < 0 && zmq_errno() == EINTR);
	if (n < 0)
		return -zmq_errno();
	if ((size_t)n > cap)
		return -EMSGSIZE;
	zmq_getsockopt(s, ZMQ_RCVMORE, more, &ml);
	return n;
}

static int zsend(void *s, const void *buf, size_t len, int flags)
{
	int n;

	do
		n = zmq_send(s, buf, len, flags);
	while (n < 0 && zmq_errno() == EINTR);
	return n < 0 ? -zmq_errno() : 0;
}

/* ---- (a) the broker ------------------------------------------------------------ */

struct ident {
	char   id[FRAME_MAX];
	size_t len;
};

/* zguide's lbbroker: poll the workers always, the clients only while a
 * worker is ready; a worker's first message is "READY", later ones carry a
 * client's reply. Ready workers queue first in, first out. */
static int broker_main(const char *front, const char *back, volatile unsigned *ready, unsigned max)
{
	void *ctx = zmq_ctx_new(), *f = zsock(ctx, ZMQ_ROUTER), *b = zsock(ctx, ZMQ_ROUTER);
	struct ident *q = calloc(max + 1, sizeof(*q)), client;
	unsigned head = 0, nq = 0, cap = max + 1;
	char empty[8], msg[FRAME_MAX];
	int forever = -1, more, n;

	if (!f || !b || !q)
		return 1;
	zmq_setsockopt(f, ZMQ_RCVTIMEO, &forever, sizeof(forever));
	zmq_setsockopt(b, ZMQ_RCVTIMEO, &forever, sizeof(forever));
	if (zmq_bind(f, front) < 0 || zmq_bind(b, back) < 0) {
		fprintf(stderr, "broker: bind: %s\n", zmq_strerror(zmq_errno()));
		return 1;
	}
	for (;;) {
		zmq_pollitem_t it[2] = { { b, 0, ZMQ_POLLIN, 0 }, { f, 0, ZMQ_POLLIN, 0 } };

		if (zmq_poll(it, nq ? 2 : 1, -1) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			return 1;
		}
		if (it[0].revents & ZMQ_POLLIN) {
			struct ident *w = &q[(head + nq) % cap];

			if ((n = zrecv(b, w->id, sizeof(w->id), 0, &more)) < 0 || !more)
				return 1;
			w->len = (size_t)n;
			if (zrecv(b, empty, sizeof(empty), 0, &more) < 0 || !more ||
			    (n = zrecv(b, client.id, sizeof(client.id), 0, &more)) < 0)
				return 1;
			nq++;
			if (!more && n == 5 && !memcmp(client.id, "READY", 5)) {
				(*ready)++;
			} else {
				client.len = (size_t)n;
				if (zrecv(b, empty, sizeof(empty), 0, &more) < 0 || !more ||
				    (n = zrecv(b, msg, sizeof(msg), 0, &more)) < 0 ||
				    zsend(f, client.id, client.len, ZMQ_SNDMORE) < 0 ||
				    zsend(f, "", 0, ZMQ_SNDMORE) < 0 || zsend(f, msg, (size_t)n, 0) < 0)
					return 1;
			}
		}
		if (nq && (it[1].revents & ZMQ_POLLIN)) {
			struct ident *w = &q[head];

			if ((n = zrecv(f, client.id, sizeof(client.id), 0, &more)) < 0 || !more)
				return 1;
			client.len = (size_t)n;
			if (zrecv(f, empty, sizeof(empty), 0, &more) < 0 || !more ||
			    (n = zrecv(f, msg, sizeof(msg), 0, &more)) < 0 ||
			    zsend(b, w->id, w->len, ZMQ_SNDMORE) < 0 || zsend(b, "", 0, ZMQ_SNDMORE) < 0 ||
			    zsend(b, client.id, client.len, ZMQ_SNDMORE) < 0 ||
			    zsend(b, "", 0, ZMQ_SNDMORE) < 0 || zsend(b, msg, (size_t)n, 0) < 0)
				return 1;
			head = (head + 1) % cap;
			nq--;
		}
	}
}

/* ---- the client ---------------------------------------------------------------- */

struct zarg {
	enum disp_zmq_kind kind;
	unsigned           nworkers;
	const char        *front, *back;
};

struct zclient {
	enum disp_zmq_kind kind;
	unsigned           nworkers;
	void              *ctx, *out, *in;
	bool               warm;
};

static void zclient_teardown(void *st)
{
	struct zclient *c = st;

	if (c->out)
		zmq_close(c->out);
	if (c->in && c->in != c->out)
		zmq_close(c->in);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c);
}

static void *zclient_setup(void *arg)
{
	const struct zarg *a = arg;
	struct zclient *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = a->kind;
	c->nworkers = a->nworkers;
	c->ctx = zmq_ctx_new();
	if (!c->ctx)
		goto teardown_client;
	if (a->kind == DISP_ZMQ_LRU) {
		c->out = c->in = zsock(c->ctx, ZMQ_DEALER);
		if (!c->out || zmq_connect(c->out, a->front) < 0)
			goto teardown_client;
	} else {
		c->out = zsock(c->ctx, ZMQ_PUSH);
		c->in = zsock(c->ctx, ZMQ_PULL);
		if (!c->out || !c->in || zmq_bind(c->out, a->front) < 0 || zmq_bind(c->in, a->back) < 0)
			goto teardown_client;
	}
	return c;
teardown_client:
	fprintf(stderr, "zmq client: %s\n", zmq_strerror(zmq_errno()));
	zclient_teardown(c);
	return NULL;
}

static int send_task(struct zclient *c, const struct disp_zmq_req *req)
{
	if (c->kind == DISP_ZMQ_LRU) {
		int r = zsend(c->out, "", 0, ZMQ_SNDMORE);

		if (r < 0)
			return r;
	}
	return zsend(c->out, req, sizeof(*req), 0);
}

/* 1 and *rep, 0 when flags has ZMQ_DONTWAIT and nothing is there, -errno. */
static int recv_reply(struct zclient *c, struct disp_zmq_reply *rep, int flags)
{
	char empty[8];
	int more, n;

	if (c->kind == DISP_ZMQ_LRU) {
		n = zrecv(c->in, empty, sizeof(empty), flags, &more);
		if (n == -EAGAIN && (flags & ZMQ_DONTWAIT))
			return 0;
		if (n < 0 || !more)
			return n < 0 ? n : -EPROTO;
		flags = 0;
	}
	n = zrecv(c->in, rep, sizeof(*rep), flags, &more);
	if (n == -EAGAIN && (flags & ZMQ_DONTWAIT))
		return 0;
	if (n < 0)
		return n;
	return n == sizeof(*rep) && !more ? 1 : -EPROTO;
}

/* Run ld; lat (may be NULL) gets each task's latency; seen (may be NULL)
 * gets a mark per worker that answered. Ids start at base. */
static int zloop(struct zclient *c, const struct disp_load *ld, uint64_t base, int64_t *lat,
		 unsigned char *seen, struct disp_result *ret)
{
	int64_t *t_send = calloc(ld->n, sizeof(*t_send)), t0, cpu0;
	struct disp_zmq_req req;
	uint64_t sent = 0, done = 0;
	int r = 0;

	if (!t_send)
		return -ENOMEM;
	memset(req.payload, 'x', sizeof(req.payload));
	cpu0 = disp_self_cpu_ns();
	t0 = bench_now_ns();
	while (done < ld->n) {
		struct disp_zmq_reply rep;
		int64_t now = bench_now_ns();
		int flags = 0;

		while (sent < ld->n && sent - done < ld->window) {
			req.id = base + sent;
			t_send[sent++] = now;
			r = send_task(c, &req);
			if (r < 0)
				goto free_sends;
		}
		/* Block for one reply, then take whatever else has come. */
		while ((r = recv_reply(c, &rep, flags)) == 1) {
			uint64_t k = rep.id - base;

			if (rep.id < base || k >= sent) {
				r = -EPROTO;
				goto free_sends;
			}
			if (lat)
				lat[done] = bench_now_ns() - t_send[k];
			if (seen && rep.worker < DISP_ZMQ_MAX_WORKERS)
				seen[rep.worker] = 1;
			done++;
			flags = ZMQ_DONTWAIT;
		}
		if (r < 0)
			goto free_sends;
		if (ld->gap_ns && done == sent && done < ld->n)
			disp_sleep_ns(ld->gap_ns);
	}
	ret->tasks = done;
	ret->seconds = (double)(bench_now_ns() - t0) * 1e-9;
	ret->tasks_per_s = (double)done / ret->seconds;
	ret->client_cpu_ns = (double)(disp_self_cpu_ns() - cpu0) / (double)done;
free_sends:
	if (r < 0)
		fprintf(stderr, "zmq client: %s\n", strerror(-r));
	free(t_send);
	return r < 0 ? r : 0;
}

/* Until every worker has answered: PUSH spreads only over the workers
 * connected when it sends. */
static int warm_up(struct zclient *c)
{
	struct disp_load ld = { .n = WARMUP_TASKS, .window = 2 * c->nworkers };
	unsigned char seen[DISP_ZMQ_MAX_WORKERS] = { 0 };
	int64_t end = bench_now_ns() + READY_NS;
	uint64_t base = 1ull << 62;

	for (;;) {
		struct disp_result res;
		unsigned n = 0;
		int r = zloop(c, &ld, base, NULL, seen, &res);

		if (r < 0)
			return r;
		base += ld.n;
		for (unsigned i = 0; i < c->nworkers; i++)
			n += seen[i];
		if (n == c->nworkers)
			return 0;
		if (bench_now_ns() > end) {
			fprintf(stderr, "zmq client: only %u of %u workers answered\n", n, c->nworkers);
			return -ETIMEDOUT;
		}
		disp_sleep_ns(20 * 1000000);
	}
}

static int zclient_run(void *st, const struct disp_load *ld, struct disp_result *ret)
{
	struct zclient *c = st;
	int64_t *lat;
	int r;

	if (!c->warm) {
		r = warm_up(c);
		if (r < 0)
			return r;
		c->warm = true;
		if (!ld->n)
			return 0;
	}
	lat = calloc(ld->n, sizeof(*lat));
	if (!lat)
		return -ENOMEM;
	r = zloop(c, ld, 0, lat, NULL, ret);
	if (!r)
		disp_lat_fill(ret, lat, ret->tasks);
	free(lat);
	return r;
}

static const struct disp_proc_ops zclient_ops = {
	.setup = zclient_setup,
	.run = zclient_run,
	.teardown = zclient_teardown,
};

/* ---- the pool ------------------------------------------------------------------ */

static int spawn_workers(struct disp_zmq *z, const char *worker)
{
	for (unsigned i = 0; i < z->nworkers; i++) {
		char idx[16];
		char *lru[] = { (char *)worker, "lru", idx, z->back, NULL };
		char *push[] = { (char *)worker, "push", idx, z->front, z->back, NULL };

		snprintf(idx, sizeof(idx), "%u", i);
		z->workers[i] = disp_spawn(z->kind == DISP_ZMQ_LRU ? lru : push, -1, -1);
		if (z->workers[i] < 0) {
			fprintf(stderr, "zmq: cannot start %s: %s\n", worker, strerror(-z->workers[i]));
			return z->workers[i];
		}
	}
	return 0;
}

int disp_zmq_start(struct disp_zmq *z, enum disp_zmq_kind kind, const char *dir, const char *worker,
		   unsigned nworkers)
{
	struct zarg a = { .kind = kind, .nworkers = nworkers, .front = z->front, .back = z->back };
	struct disp_load warm = { .n = 0, .window = 1 };
	struct disp_result res;
	int r;

	memset(z, 0, sizeof(*z));
	if (nworkers > DISP_ZMQ_MAX_WORKERS)
		return -EINVAL;
	z->kind = kind;
	z->nworkers = nworkers;
	snprintf(z->front, sizeof(z->front), "ipc://%s/zmq-%s-front", dir, kind == DISP_ZMQ_LRU ? "lru" : "push");
	snprintf(z->back, sizeof(z->back), "ipc://%s/zmq-%s-back", dir, kind == DISP_ZMQ_LRU ? "lru" : "push");
	z->ready = mmap(NULL, sizeof(*z->ready), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (z->ready == MAP_FAILED) {
		z->ready = NULL;
		return -errno;
	}
	if (kind == DISP_ZMQ_LRU) {
		int64_t end = bench_now_ns() + READY_NS;

		z->broker = disp_fork();
		if (z->broker == 0)
			_exit(broker_main(z->front, z->back, z->ready, nworkers));
		if (z->broker < 0) {
			r = z->broker;
			goto stop_zmq;
		}
		r = spawn_workers(z, worker);
		if (r < 0)
			goto stop_zmq;
		while (*z->ready < nworkers) {
			if (bench_now_ns() > end) {
				fprintf(stderr, "zmq broker: %u of %u workers ready\n", *z->ready, nworkers);
				r = -ETIMEDOUT;
				goto stop_zmq;
			}
			disp_sleep_ns(5 * 1000000);
		}
		r = disp_proc_start(&z->client, &zclient_ops, &a);
	} else {
		/* The client binds; workers connect to it. */
		r = disp_proc_start(&z->client, &zclient_ops, &a);
		if (!r)
			r = spawn_workers(z, worker);
	}
	if (!r)
		r = disp_proc_run(&z->client, &warm, &res);
	if (!r)
		return 0;
stop_zmq:
	disp_zmq_stop(z);
	return r;
}

int disp_zmq_measure(struct disp_zmq *z, const struct disp_load *ld, struct disp_result *ret)
{
	int64_t b0 = z->broker > 0 ? bench_pid_cpu_ns(z->broker) : 0;
	int r = disp_proc_run(&z->client, ld, ret);

	if (r < 0)
		return r;
	if (z->broker > 0)
		ret->disp_cpu_ns = (double)(bench_pid_cpu_ns(z->broker) - b0) / (double)ret->tasks;
	else
		ret->disp_cpu_ns = ret->client_cpu_ns;
	return 0;
}

void disp_zmq_stop(struct disp_zmq *z)
{
	disp_proc_stop(&z->client);
	for (unsigned i = 0; i < z->nworkers; i++)
		if (z->workers[i] > 0)
			disp_reap(z->workers[i], 2 * SEC);
	if (z->broker > 0)
		disp_reap(z->broker, 2 * SEC);
	z->broker = 0;
	memset(z->workers, 0, sizeof(z->workers));
	if (z->ready)
		munmap((void *)z->ready, sizeof(*z->ready));
	z->ready = NULL;
}
