/* SPDX-License-Identifier: MIT */
/*
 * Ring benchmark: the ring against the physical floor and kernel IPC, in one
 * run, cross-core (client on CPU 0, server on CPU 1), repeated and
 * interleaved so machine noise hits every contender alike.
 *
 *   floor   cache-line ping-pong between two processes (shared memory)
 *   pipe / socketpair / eventfd / futex   round trips
 *   ring hot (both spinning), ring cold (spin window 0, futex doorbells)
 *   pipe one-way 64 B vs ring one-way 64 B throughput
 *   ring request/response with 16 outstanding
 *   wake syscalls per message: saturation, 25 % load, sparse
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "tier/ring.h"

#define WARM       0.1
#define N_HOT      200000
#define N_COLD     4000
#define N_TPUT     (8u * 1000 * 1000)
#define N_PIPE     (1u * 1000 * 1000)
#define N_PACED    200000
#define MSG        msg_size
static unsigned msg_size = 64;
#define SPIN_NS    50000
#define RING_CAP   ring_cap
static unsigned ring_cap = 256u * 1024;

/* Cold: the server (request consumer) has spin window 0, so it is asleep on
 * its futex when the request arrives; the client waits for the reply within
 * its normal spin window, as a caller expecting an answer does. "Both
 * asleep" gives the client spin window 0 too: two wakes per round trip, like
 * every kernel-IPC baseline. */
enum kind { K_FLOOR, K_PIPE, K_SOCK, K_EVENTFD, K_FUTEX, K_RING_HOT, K_RING_COLD,
	    K_RING_BOTH, K_NLAT };
static const char *const kind_name[K_NLAT] = {
	"cache-line floor", "pipe", "unix socketpair", "eventfd", "futex",
	"ring hot (both spinning)", "ring cold (server asleep)", "ring both asleep",
};

struct shared {
	_Alignas(128) volatile uint64_t a;
	_Alignas(128) volatile uint64_t b;
	_Alignas(128) uint32_t fa;
	_Alignas(128) uint32_t fb;
	_Alignas(128) volatile int go;
	uint64_t wakes;
	uint64_t done;
};

struct ctx {
	enum kind k;
	uint64_t n;
	int fd1[2], fd2[2];
	int e1, e2;
	struct shared *sh;
	struct tier_shm *sup;
	/* throughput variants */
	double pace_ns;  /* 0 = as fast as possible */
	int each;        /* publish every message instead of every 32 */
	int echo_batch;
};

static long futex(uint32_t *w, int op, uint32_t v)
{
	return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

static void futex_wait_for(uint32_t *w, uint32_t want)
{
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want)
		futex(w, FUTEX_WAIT, v);
}

static void xwrite(int fd, const void *b, size_t n)
{
	while (n) {
		ssize_t r = write(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			perror("write");
			exit(2);
		}
		b = (const char *)b + r;
		n -= (size_t)r;
	}
}

static void xread(int fd, void *b, size_t n)
{
	while (n) {
		ssize_t r = read(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			perror("read");
			exit(2);
		}
		b = (char *)b + r;
		n -= (size_t)r;
	}
}

/* ---- round trips ------------------------------------------------------- */

/* spin_ns < 0: spin forever (hot). */
static void ring_recv(struct tier_cons *c, int64_t spin_ns)
{
	struct tier_msg m;

	for (;;) {
		int r = tier_cons_peek(c, &m);

		if (r == 1)
			break;
		if (r < 0) {
			fprintf(stderr, "ring: %s\n", tier_strerror(r));
			exit(3);
		}
		if (spin_ns < 0)
			continue;
		r = tier_cons_wait(c, spin_ns, -1);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "ring wait: %s\n", tier_strerror(r));
			exit(3);
		}
	}
	tier_cons_advance(c);
	tier_cons_release(c);
}

static void ring_send(struct tier_prod *p, uint64_t id)
{
	uint64_t payload[128] = { id };

	if (tier_prod_write(p, 1, 0, id, payload, MSG) < 0)
		exit(4);
	tier_prod_publish(p);
}

static int server(void *arg)
{
	struct ctx *c = arg;
	struct tier_shm *a = NULL;
	uint64_t v = 0;

	if (c->k >= K_RING_HOT) {
		a = tier_shm_attach(tier_shm_fd(c->sup));
		if (!a)
			return 5;
	}
	for (uint64_t i = 1; i <= c->n; i++) {
		switch (c->k) {
		case K_FLOOR:
			while (c->sh->a != i)
				__builtin_ia32_pause();
			c->sh->b = i;
			break;
		case K_PIPE:
		case K_SOCK:
			xread(c->fd1[1], &v, 8);
			xwrite(c->fd2[1], &v, 8);
			break;
		case K_EVENTFD:
			xread(c->e1, &v, 8);
			xwrite(c->e2, &v, 8);
			break;
		case K_FUTEX:
			futex_wait_for(&c->sh->fa, (uint32_t)i);
			__atomic_store_n(&c->sh->fb, (uint32_t)i, __ATOMIC_RELEASE);
			futex(&c->sh->fb, FUTEX_WAKE, 1);
			break;
		case K_RING_HOT:
		case K_RING_COLD:
		case K_RING_BOTH:
			ring_recv(tier_shm_cons(a), c->k == K_RING_HOT ? -1 : 0);
			ring_send(tier_shm_prod(a), i);
			break;
		default:
			return 6;
		}
	}
	tier_shm_free(a);
	return 0;
}

static void client_rt(struct ctx *c, uint64_t i)
{
	uint64_t v = 1;

	switch (c->k) {
	case K_FLOOR:
		c->sh->a = i;
		while (c->sh->b != i)
			__builtin_ia32_pause();
		break;
	case K_PIPE:
	case K_SOCK:
		xwrite(c->fd1[0], &v, 8);
		xread(c->fd2[0], &v, 8);
		break;
	case K_EVENTFD:
		xwrite(c->e1, &v, 8);
		xread(c->e2, &v, 8);
		break;
	case K_FUTEX:
		__atomic_store_n(&c->sh->fa, (uint32_t)i, __ATOMIC_RELEASE);
		futex(&c->sh->fa, FUTEX_WAKE, 1);
		futex_wait_for(&c->sh->fb, (uint32_t)i);
		break;
	case K_RING_HOT:
	case K_RING_COLD:
	case K_RING_BOTH:
		ring_send(tier_shm_prod(c->sup), i);
		ring_recv(tier_shm_cons(c->sup), c->k == K_RING_HOT ? -1 :
				c->k == K_RING_COLD ? SPIN_NS : 0);
		break;
	default:
		break;
	}
}

/* One repetition of one round-trip kind: p50 and p99 in ns. */
static void run_rt(enum kind k, double *p50, double *p99)
{
	struct ctx c = { .k = k, .n = (k == K_FLOOR || k == K_RING_HOT) ? N_HOT : N_COLD };
	uint64_t *s = malloc(sizeof(*s) * c.n), warm = (uint64_t)((double)c.n * WARM);
	double tpn = bench_tsc_per_ns();
	pid_t pid;

	c.sh = bench_shared(sizeof(*c.sh));
	if (k == K_PIPE && (pipe2(c.fd1, O_CLOEXEC) || pipe2(c.fd2, O_CLOEXEC)))
		exit(1);
	if (k == K_PIPE) {
		/* Normalise: client writes fdX[0]-named slot, server reads [1]. */
		int r1 = c.fd1[0], w1 = c.fd1[1], r2 = c.fd2[0], w2 = c.fd2[1];

		c.fd1[0] = w1; c.fd1[1] = r1; c.fd2[0] = r2; c.fd2[1] = w2;
	}
	if (k == K_SOCK && (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.fd1) ||
			    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.fd2)))
		exit(1);
	if (k == K_EVENTFD) {
		c.e1 = eventfd(0, EFD_CLOEXEC);
		c.e2 = eventfd(0, EFD_CLOEXEC);
	}
	if (k >= K_RING_HOT) {
		struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = RING_CAP,
					   .cq_capacity = RING_CAP };
		c.sup = tier_shm_create(&o);
	}
	pid = bench_fork(1, server, &c);
	for (uint64_t i = 1; i <= c.n; i++) {
		uint64_t t0;

		/* Every kind but the spinning ones: leave the server 100 us
		 * (untimed) to fall asleep, so each sample is a cold wake. */
		if (k != K_FLOOR && k != K_RING_HOT) {
			t0 = bench_tsc() + (uint64_t)(100000 * tpn);
			while (bench_tsc() < t0)
				__builtin_ia32_pause();
		}
		t0 = bench_tsc();

		client_rt(&c, i);
		s[i - 1] = bench_tsc() - t0;
	}
	if (bench_wait(pid) != 0) {
		fprintf(stderr, "%s: server failed\n", kind_name[k]);
		exit(1);
	}
	*p50 = (double)bench_pct(s + warm, c.n - warm, 0.50) / tpn;
	*p99 = (double)bench_pct(s + warm, c.n - warm, 0.99) / tpn;
	if (getenv("BENCH_DIST"))
		fprintf(stderr, "%-28s p75 %6.0f p90 %6.0f p95 %6.0f p98 %6.0f p99.9 %6.0f\n", kind_name[k],
			(double)bench_pct(s + warm, c.n - warm, 0.75) / tpn,
			(double)bench_pct(s + warm, c.n - warm, 0.90) / tpn,
			(double)bench_pct(s + warm, c.n - warm, 0.95) / tpn,
			(double)bench_pct(s + warm, c.n - warm, 0.98) / tpn,
			(double)bench_pct(s + warm, c.n - warm, 0.999) / tpn);
	if (k == K_PIPE || k == K_SOCK) {
		close(c.fd1[0]); close(c.fd1[1]); close(c.fd2[0]); close(c.fd2[1]);
	}
	if (k == K_EVENTFD) {
		close(c.e1);
		close(c.e2);
	}
	tier_shm_free(c.sup);
	bench_unshare(c.sh, sizeof(*c.sh));
	free(s);
}

/* ---- throughput -------------------------------------------------------- */

static int pipe_writer(void *arg)
{
	struct ctx *c = arg;
	char msg[1024] = { 1 };

	while (!c->sh->go)
		;
	for (uint64_t i = 0; i < c->n; i++)
		xwrite(c->fd1[1], msg, MSG);
	return 0;
}

static double run_pipe_tput(void)
{
	struct ctx c = { .n = N_PIPE };
	static char buf[1 << 16];
	uint64_t total = (uint64_t)N_PIPE * MSG, got = 0;
	int64_t t0;
	pid_t pid;

	c.sh = bench_shared(sizeof(*c.sh));
	if (pipe2(c.fd1, O_CLOEXEC))
		exit(1);
	pid = bench_fork(1, pipe_writer, &c);
	close(c.fd1[1]);
	t0 = bench_now_ns();
	c.sh->go = 1;
	while (got < total) {
		ssize_t r = read(c.fd1[0], buf, sizeof(buf));

		if (r <= 0)
			exit(2);
		got += (uint64_t)r;
	}
	double rate = (double)N_PIPE * 1e9 / (double)(bench_now_ns() - t0);
	bench_wait(pid);
	close(c.fd1[0]);
	bench_unshare(c.sh, sizeof(*c.sh));
	return rate;
}

/* Producer in the child: 64-byte records, published per batch, optionally
 * paced; counts its wake syscalls. */
static int ring_producer(void *arg)
{
	struct ctx *c = arg;
	struct tier_shm *a = tier_shm_attach(tier_shm_fd(c->sup));
	struct tier_prod *p;
	double tpn = bench_tsc_per_ns();
	uint64_t t_next = 0;

	if (!a)
		return 5;
	p = tier_shm_prod(a);
	while (!c->sh->go)
		;
	if (c->pace_ns > 0)
		t_next = bench_tsc();
	for (uint64_t i = 0; i < c->n;) {
		void *dst;
		int r;

		if (c->pace_ns > 0) {
			while (bench_tsc() < t_next)
				__builtin_ia32_pause();
			t_next += (uint64_t)(c->pace_ns * tpn);
		}
		r = tier_prod_reserve(p, MSG, &dst);
		if (r == -EAGAIN) {
			tier_prod_publish(p);
			__builtin_ia32_pause();
			continue;
		}
		if (r < 0)
			return 6;
		memset(dst, (int)i, MSG);
		tier_prod_commit(p, 1, 0, i, MSG);
		i++;
		if (c->each || (i & 31) == 0)
			tier_prod_publish(p);
	}
	tier_prod_publish(p);
	c->sh->wakes = tier_prod_wakes(p);
	tier_shm_free(a);
	return 0;
}

struct tput { double rate, wakes_per_msg; };

static struct tput run_ring_tput(double pace_ns, int each, uint64_t n)
{
	struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = RING_CAP, .cq_capacity = RING_CAP };
	struct ctx c = { .n = n, .pace_ns = pace_ns, .each = each };
	struct tier_cons *cons;
	struct tput t;
	uint64_t got = 0, sum = 0;
	int64_t t0;
	pid_t pid;

	c.sh = bench_shared(sizeof(*c.sh));
	c.sup = tier_shm_create(&o);
	/* The creator consumes CQ; the child (attacher) produces on it. */
	cons = tier_shm_cons(c.sup);
	pid = bench_fork(1, ring_producer, &c);
	t0 = bench_now_ns();
	c.sh->go = 1;
	while (got < n) {
		struct tier_msg m;
		int r = tier_cons_wait(cons, SPIN_NS, -1);

		if (r < 0 && r != -EINTR)
			exit(3);
		while (tier_cons_peek(cons, &m) == 1) {
			sum += ((const uint8_t *)m.payload)[MSG - 1];
			tier_cons_advance(cons);
			got++;
		}
		tier_cons_release(cons);
	}
	t.rate = (double)n * 1e9 / (double)(bench_now_ns() - t0);
	if (bench_wait(pid) != 0)
		exit(1);
	t.wakes_per_msg = (double)c.sh->wakes / (double)n;
	(void)sum;
	tier_shm_free(c.sup);
	bench_unshare(c.sh, sizeof(*c.sh));
	return t;
}

/* Request/response with a window of 16: the child echoes every request. */
static int echo_server(void *arg)
{
	struct ctx *c = arg;
	struct tier_shm *a = tier_shm_attach(tier_shm_fd(c->sup));
	uint64_t done = 0;

	if (!a)
		return 5;
	while (done < c->n) {
		struct tier_msg m;

		if (tier_cons_wait(tier_shm_cons(a), SPIN_NS, -1) < 0)
			return 6;
		while (tier_cons_peek(tier_shm_cons(a), &m) == 1) {
			if (tier_prod_write(tier_shm_prod(a), 2, 0, m.task_id, m.payload, m.len) < 0)
				return 7;
			tier_cons_advance(tier_shm_cons(a));
			done++;
		}
		tier_cons_release(tier_shm_cons(a));
		tier_prod_publish(tier_shm_prod(a));
	}
	tier_shm_free(a);
	return 0;
}

static double run_reqresp(unsigned window)
{
	struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = RING_CAP, .cq_capacity = RING_CAP };
	struct ctx c = { .n = 2000000 };
	char msg[1024] = { 0 };
	uint64_t sent = 0, got = 0;
	int64_t t0;
	pid_t pid;

	c.sh = bench_shared(sizeof(*c.sh));
	c.sup = tier_shm_create(&o);
	pid = bench_fork(1, echo_server, &c);
	t0 = bench_now_ns();
	while (got < c.n) {
		struct tier_msg m;

		while (sent < c.n && sent - got < window) {
			if (tier_prod_write(tier_shm_prod(c.sup), 1, 0, sent, msg, MSG) < 0)
				exit(4);
			sent++;
		}
		tier_prod_publish(tier_shm_prod(c.sup));
		if (tier_cons_wait(tier_shm_cons(c.sup), SPIN_NS, -1) < 0)
			exit(3);
		while (tier_cons_peek(tier_shm_cons(c.sup), &m) == 1) {
			tier_cons_advance(tier_shm_cons(c.sup));
			got++;
		}
		tier_cons_release(tier_shm_cons(c.sup));
	}
	double rate = (double)c.n * 1e9 / (double)(bench_now_ns() - t0);
	if (bench_wait(pid) != 0)
		exit(1);
	tier_shm_free(c.sup);
	bench_unshare(c.sh, sizeof(*c.sh));
	return rate;
}

int main(void)
{
	int reps = bench_reps(5), met = 0, total = 0;
	double p50[K_NLAT][32], p99[K_NLAT][32];
	double pipe_t[32], ring_t[32], rr_t[32], w_sat[32], w_25[32], w_sparse[32], r25[32];
	double each_t[32], w_each[32];
	double m50[K_NLAT], m99[K_NLAT];
	char mach[256];

	if (reps > 32)
		reps = 32;
	if (getenv("BENCH_CAP"))
		ring_cap = (unsigned)atoi(getenv("BENCH_CAP"));
	if (getenv("BENCH_MSG"))
		msg_size = (unsigned)atoi(getenv("BENCH_MSG"));
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_machine(mach, sizeof(mach));
	bench_pin(0);
	bench_tsc_per_ns();
	printf("ring benchmark: %s\n", mach);
	printf("client on CPU 0, server on CPU 1; %d repetitions, interleaved; medians of per-run figures\n\n",
	       reps);
	for (int r = 0; r < reps; r++) {
		fprintf(stderr, "  repetition %d/%d\r", r + 1, reps);
		for (int k = 0; k < K_NLAT; k++)
			run_rt((enum kind)k, &p50[k][r], &p99[k][r]);
		pipe_t[r] = run_pipe_tput();
		struct tput sat = run_ring_tput(0, 0, N_TPUT);
		ring_t[r] = sat.rate;
		w_sat[r] = sat.wakes_per_msg;
		/* A paced producer publishes every message, so its saturation
		 * point is that of publish-per-message; 25 % load is one message
		 * every 4 / that rate. */
		struct tput each = run_ring_tput(0, 1, N_TPUT / 4);
		each_t[r] = each.rate;
		w_each[r] = each.wakes_per_msg;
		struct tput q = run_ring_tput(4e9 / each.rate, 1, N_PACED);
		r25[r] = q.rate;
		w_25[r] = q.wakes_per_msg;
		/* Sparse: one message every 200 us, past the 50 us spin window. */
		w_sparse[r] = run_ring_tput(200000, 1, 2000).wakes_per_msg;
		rr_t[r] = run_reqresp(16);
	}
	fprintf(stderr, "%30s\r", "");
	printf("round trips (ns)                       p50        p99\n");
	for (int k = 0; k < K_NLAT; k++) {
		m50[k] = bench_median(p50[k], (size_t)reps);
		m99[k] = bench_median(p99[k], (size_t)reps);
		printf("  %-32s %9.0f  %9.0f\n", kind_name[k], m50[k], m99[k]);
	}
	double mp = bench_median(pipe_t, (size_t)reps), mr = bench_median(ring_t, (size_t)reps);
	double mrr = bench_median(rr_t, (size_t)reps), mr25 = bench_median(r25, (size_t)reps);
	printf("\nthroughput (messages/s, 64-byte payload)\n");
	printf("  %-32s %12.0f\n", "pipe one-way (write per message)", mp);
	printf("  %-32s %12.0f\n", "ring one-way (publish per 32)", mr);
	printf("  %-32s %12.0f\n", "ring one-way (publish each)", bench_median(each_t, (size_t)reps));
	printf("  %-32s %12.0f\n", "ring request/response, 16 out", mrr);
	printf("  %-32s %12.0f\n", "ring paced at 25 % load", mr25);
	printf("\nwake syscalls per message (consumer spin window %d us)\n", SPIN_NS / 1000);
	printf("  %-32s %12.5f\n", "saturation (publish per 32)", bench_median(w_sat, (size_t)reps));
	printf("  %-32s %12.5f\n", "saturation (publish each)", bench_median(w_each, (size_t)reps));
	printf("  %-32s %12.5f\n", "25 % load", bench_median(w_25, (size_t)reps));
	printf("  %-32s %12.5f\n", "sparse (1 per 200 us)", bench_median(w_sparse, (size_t)reps));
	printf("\nratios (same run)\n");
	total += 6;
	met += bench_ratio("ring hot p50 / floor p50", m50[K_RING_HOT] / m50[K_FLOOR], "<=", 1.5);
	met += bench_ratio("ring hot p99 / floor p50", m99[K_RING_HOT] / m50[K_FLOOR], "<=", 2.5);
	met += bench_ratio("ring cold p50 / pipe p50", m50[K_RING_COLD] / m50[K_PIPE], "<=", 0.6);
	met += bench_ratio("ring cold p50 / futex p50", m50[K_RING_COLD] / m50[K_FUTEX], "<=", 1.1);
	printf("  %-44s %8.3f   (two wakes, as futex)\n", "ring both asleep p50 / futex p50",
	       m50[K_RING_BOTH] / m50[K_FUTEX]);
	met += bench_ratio("ring one-way / pipe one-way", mr / mp, ">=", 10);
	met += bench_ratio("wakes per message at saturation", bench_median(w_sat, (size_t)reps), "<=", 0.01);
	printf("\ntargets met: %d of %d\n", met, total);
	return 0;
}
