/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_util.h"
#include "dispatch_wire.h"

/* Longest a single load may take before its process is declared hung. */
#define LOAD_TIMEOUT_NS  (180 * 1000000000LL)
#define SETUP_TIMEOUT_NS (30 * 1000000000LL)

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const int64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return n ? (double)v[i < n ? i : n - 1] / 1000.0 : 0;
}

void disp_lat_fill(struct disp_result *r, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	r->p50_us = pct_us(v, n, 0.50);
	r->p90_us = pct_us(v, n, 0.90);
	r->p99_us = pct_us(v, n, 0.99);
}

/* ---- small things ---------------------------------------------------------- */

void disp_sleep_ns(int64_t ns)
{
	struct timespec t;

	if (ns <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ns / 1000000000;
	t.tv_nsec += ns % 1000000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

int disp_write_all(int fd, const void *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		b = (const char *)b + w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t disp_read(int fd, void *b, size_t n)
{
	ssize_t r;

	do
		r = read(fd, b, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t disp_read_timeout(int fd, void *b, size_t n, int64_t timeout_ns)
{
	int64_t end = bench_now_ns() + timeout_ns;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - bench_now_ns();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left / 1000000 + 1));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return disp_read(fd, b, n);
	}
}

size_t disp_payload(const struct disp_load *ld, char *buf, size_t cap)
{
	size_t n = strlen(ld->payload);

	if (!n) {
		n = DISP_PAYLOAD < cap ? DISP_PAYLOAD : cap - 1;
		memset(buf, 'x', n);
	} else {
		n = n < cap ? n : cap - 1;
		memcpy(buf, ld->payload, n);
	}
	buf[n] = 0;
	return n;
}

/* ---- processes ----------------------------------------------------------- */

pid_t disp_fork(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	/* Die with the benchmark, whatever kills it; re-check the parent in
	 * case it died before the prctl. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	return 0;
}

pid_t disp_spawn(char *const argv[], int in_fd, int out_fd)
{
	int errp[2], err = 0;
	ssize_t r;
	pid_t pid;

	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	pid = disp_fork();
	if (pid < 0) {
		close(errp[0]);
		close(errp[1]);
		return pid;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(in_fd >= 0 ? in_fd : null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0)
			err = errno;
		if (!err)
			execv(argv[0], argv);
		err = err ? err : errno;
		(void)!write(errp[1], &err, sizeof(err));
		_exit(127);
	}
	close(errp[1]);
	r = disp_read(errp[0], &err, sizeof(err));
	close(errp[0]);
	if (r == sizeof(err)) {
		waitpid(pid, NULL, 0);
		return -err;
	}
	return pid;
}

int disp_wait(pid_t pid, int64_t timeout_ns)
{
	int64_t end = bench_now_ns() + timeout_ns;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (bench_now_ns() >= end)
			return -ETIMEDOUT;
		disp_sleep_ns(1000000);
	}
}

int disp_reap(pid_t pid, int64_t timeout_ns)
{
	int st;

	if (pid <= 0)
		return -EINVAL;
	kill(pid, SIGTERM);
	st = disp_wait(pid, timeout_ns);
	if (st != -ETIMEDOUT)
		return st;
	kill(pid, SIGKILL);
	return disp_wait(pid, 5 * 1000000000LL);
}

/* ---- a process that runs loads on command -------------------------------- */

struct slot {
	struct disp_load   ld;
	struct disp_result res;
	int                rc;
};

static _Noreturn void proc_child(int cmd, int ack, struct slot *s, const struct disp_proc_ops *ops, void *arg)
{
	void *st = ops->setup(arg);
	char c = st ? 'R' : 'E';

	if (disp_write_all(ack, &c, 1) < 0 || !st)
		_exit(1);
	while (disp_read(cmd, &c, 1) == 1) {
		struct disp_load ld = s->ld;
		struct disp_result res = { .disp_cpu_ns = -1, .client_cpu_ns = -1 };

		s->rc = ops->run(st, &ld, &res);
		s->res = res;
		c = 'D';
		if (disp_write_all(ack, &c, 1) < 0)
			break;
	}
	if (ops->teardown)
		ops->teardown(st);
	_exit(0);
}

int disp_proc_start(struct disp_proc *p, const struct disp_proc_ops *ops, void *arg)
{
	int cmd[2], ack[2], r;
	struct slot *s;
	char c;

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return -errno;
	if (pipe2(cmd, O_CLOEXEC) < 0) {
		r = -errno;
		goto unmap;
	}
	if (pipe2(ack, O_CLOEXEC) < 0) {
		r = -errno;
		goto close_cmd;
	}
	p->pid = disp_fork();
	if (p->pid < 0) {
		r = p->pid;
		goto close_ack;
	}
	if (p->pid == 0) {
		close(cmd[1]);
		close(ack[0]);
		proc_child(cmd[0], ack[1], s, ops, arg);
	}
	close(cmd[0]);
	close(ack[1]);
	p->cmd_fd = cmd[1];
	p->ack_fd = ack[0];
	p->slot = s;
	r = (int)disp_read_timeout(p->ack_fd, &c, 1, SETUP_TIMEOUT_NS);
	if (r == 1 && c == 'R')
		return 0;
	disp_proc_stop(p);
	return r < 0 ? r : -EIO;
close_ack:
	close(ack[0]);
	close(ack[1]);
close_cmd:
	close(cmd[0]);
	close(cmd[1]);
unmap:
	munmap(s, sizeof(*s));
	return r;
}

int disp_proc_run(struct disp_proc *p, const struct disp_load *ld, struct disp_result *ret)
{
	struct slot *s = p->slot;
	char c = 'L';
	ssize_t r;

	if (p->pid <= 0)
		return -ESRCH;
	s->ld = *ld;
	if (disp_write_all(p->cmd_fd, &c, 1) < 0)
		return -EPIPE;
	r = disp_read_timeout(p->ack_fd, &c, 1, LOAD_TIMEOUT_NS);
	if (r != 1) {
		fprintf(stderr, "dispatch_bench: process %d %s; stopping it\n", (int)p->pid,
			r == -ETIMEDOUT ? "hung" : "died");
		disp_proc_stop(p);
		return r < 0 ? (int)r : -EIO;
	}
	*ret = s->res;
	return s->rc;
}

void disp_proc_stop(struct disp_proc *p)
{
	if (p->pid <= 0)
		return;
	/* EOF on the command pipe: the child tears down and exits. */
	close(p->cmd_fd);
	close(p->ack_fd);
	if (disp_wait(p->pid, 10 * 1000000000LL) == -ETIMEDOUT)
		disp_reap(p->pid, 2 * 1000000000LL);
	munmap(p->slot, sizeof(struct slot));
	p->pid = 0;
}

/* ---- CPU counters ---------------------------------------------------------- */

int64_t disp_self_cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t disp_cg_usage_usec(const char *dir)
{
	char path[600], line[128];
	int64_t v = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cpu.stat", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "usage_usec ", 11)) {
			v = strtoll(line + 11, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

int64_t disp_steal_ns(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	long hz = sysconf(_SC_CLK_TCK);
	int n;

	if (!f)
		return 0;
	/* cpu user nice system idle iowait irq softirq steal */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8 || hz <= 0)
		return 0;
	return (int64_t)(v[7] * (1000000000ULL / (unsigned long long)hz));
}
