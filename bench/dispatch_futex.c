/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_futex.h"

struct shared {
	_Alignas(128) uint32_t ping;
	_Alignas(128) uint32_t pong;
	_Alignas(128) struct disp_result res;
	int64_t lat[];
};

static void wait_for(uint32_t *w, uint32_t want)
{
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want)
		syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void post(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_RELEASE);
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void server(struct shared *s, uint64_t n)
{
	for (uint32_t i = 1; i <= n; i++) {
		wait_for(&s->ping, i);
		post(&s->pong, i);
	}
}

static void client(struct shared *s, uint64_t n, int64_t gap_ns)
{
	for (uint32_t i = 1; i <= n; i++) {
		int64_t t0;

		/* Sleep, not spin: nothing holds a CPU the other side could
		 * be scheduled on, and both sides are asleep when it starts. */
		disp_sleep_ns(gap_ns);
		t0 = bench_now_ns();
		post(&s->ping, i);
		wait_for(&s->pong, i);
		s->lat[i - 1] = bench_now_ns() - t0;
	}
	disp_lat_fill(&s->res, s->lat, n);
	s->res.tasks = n;
}

static pid_t start(struct shared *s, uint64_t n, int64_t gap_ns, int cpu, bool is_client)
{
	pid_t pid = disp_fork();

	if (pid == 0) {
		if (cpu >= 0)
			bench_pin(cpu);
		if (is_client)
			client(s, n, gap_ns);
		else
			server(s, n);
		_exit(0);
	}
	return pid;
}

int disp_futex_rt(uint64_t n, int64_t gap_ns, bool cross_cpu, struct disp_result *ret)
{
	size_t len = sizeof(struct shared) + n * sizeof(int64_t);
	struct shared *s = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t srv, cli;
	int r = 0, st;

	if (s == MAP_FAILED)
		return -errno;
	srv = start(s, n, gap_ns, cross_cpu ? 1 : -1, false);
	if (srv < 0) {
		r = srv;
		goto unmap;
	}
	cli = start(s, n, gap_ns, cross_cpu ? 0 : -1, true);
	if (cli < 0) {
		r = cli;
		disp_reap(srv, 1000000000LL);
		goto unmap;
	}
	st = disp_wait(cli, 60 * 1000000000LL);
	if (st < 0)
		disp_reap(cli, 1000000000LL);
	if (disp_wait(srv, 5 * 1000000000LL) < 0)
		disp_reap(srv, 1000000000LL);
	if (st != 0)
		r = st < 0 ? st : -EIO;
	else
		*ret = s->res;
unmap:
	munmap(s, len);
	return r;
}
