/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "bench.h"

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t bench_tsc(void)
{
	/* lfence keeps the read from drifting before earlier loads complete. */
	_mm_lfence();
	uint64_t t = __rdtsc();
	_mm_lfence();
	return t;
}

double bench_tsc_per_ns(void)
{
	static double ratio;

	if (ratio == 0) {
		int64_t n0 = bench_now_ns();
		uint64_t t0 = bench_tsc();

		while (bench_now_ns() - n0 < 50 * 1000 * 1000)
			;
		ratio = (double)(bench_tsc() - t0) / (double)(bench_now_ns() - n0);
	}
	return ratio;
}

int bench_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

void bench_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % bench_ncpus(), &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		perror("sched_setaffinity");
}

void *bench_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

void bench_unshare(void *p, size_t len)
{
	munmap(p, len);
}

pid_t bench_fork(int cpu, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		bench_pin(cpu);
		_exit(fn(arg));
	}
	return pid;
}

int bench_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "bench: child %d killed by signal %d\n", (int)pid, WTERMSIG(st));
	return -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_pct(uint64_t *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_reps(int def)
{
	const char *s = getenv("BENCH_REPS");
	int n = s ? atoi(s) : def;

	return n > 0 ? n : def;
}

void bench_machine(char *buf, size_t len)
{
	char model[128] = "unknown CPU", line[256];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "model name", 10)) {
				char *c = strchr(line, ':');

				if (c) {
					snprintf(model, sizeof(model), "%s", c + 2);
					model[strcspn(model, "\n")] = 0;
				}
				break;
			}
		}
		fclose(f);
	}
	uname(&u);
	snprintf(buf, len, "%s, %d CPUs, Linux %s", model, bench_ncpus(), u.release);
}

int bench_ratio(const char *name, double ratio, const char *op, double target)
{
	int ok = op[0] == '<' ? ratio <= target : ratio >= target;

	printf("  %-44s %8.3f   target %s %-6g %s\n", name, ratio, op, target, ok ? "ok" : "MISS");
	return ok;
}

int64_t bench_pid_cpu_ns(pid_t pid)
{
	char path[64], buf[128];
	struct dirent *e;
	int64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char p2[512];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/schedstat", path, e->d_name);
		f = fopen(p2, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			sum += strtoll(buf, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return sum;
}

void bench_log_tail(const char *path)
{
	char buf[2048];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		fprintf(stderr, "--- tail of %s\n%s--- end\n", path, buf);
	}
}
