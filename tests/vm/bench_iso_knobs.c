/* SPDX-License-Identifier: MIT */
/*
 * VM benchmark (run only when asked: TIERD_VM_ONLY=bench_iso): what the
 * kernel itself gives a periodic tier-1 task (1 ms of work every 10 ms)
 * against two CPU hogs each in tiers 3 and 4, under hand-set knobs and no
 * tierd: the floor and the ceiling for the isolation benchmark that
 * tierd_alloc runs with the allocator. Prints the run-queue wait after each
 * wake-up, p50 and p99 (medians of per-second figures), per setting.
 */
#include "vmtest.h"

#define CG "/sys/fs/cgroup/iso"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t run_delay_ns(void)
{
	long long on_cpu = 0, delay = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (f) {
		if (fscanf(f, "%lld %lld", &on_cpu, &delay) != 2)
			delay = 0;
		fclose(f);
	}
	return delay;
}

static int cmp(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

static void put(const char *rel, const char *v)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), CG "/%s", rel);
	fd = open(p, O_WRONLY);
	if (fd < 0 || write(fd, v, strlen(v)) < 0)
		printf("write %s=%s: %s\n", rel, v, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static pid_t spawn_in(const char *grp, int pipefd, bool tick)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	{
		char p[256], b[32];
		int fd;

		snprintf(p, sizeof(p), CG "/%s/cgroup.procs", grp);
		fd = open(p, O_WRONLY);
		snprintf(b, sizeof(b), "%d", getpid());
		if (fd < 0 || write(fd, b, strlen(b)) < 0)
			_exit(1);
		close(fd);
	}
	if (!tick)
		for (;;)
			;
	for (;;) {
		int64_t rq[100], next = now_ns();

		for (int i = 0; i < 100; i++) {
			struct timespec ts;
			int64_t rd, end;

			next += 10000000;
			ts.tv_sec = next / 1000000000;
			ts.tv_nsec = next % 1000000000;
			rd = run_delay_ns();
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			rq[i] = run_delay_ns() - rd;
			end = now_ns() + 1000000;
			while (now_ns() < end)
				;
		}
		qsort(rq, 100, sizeof(*rq), cmp);
		int64_t out[2] = { rq[50], rq[98] };
		if (write(pipefd, out, sizeof(out)) < 0)
			_exit(1);
	}
}

static int measured;

static void measure(const char *what, int rfd)
{
	int64_t p50[8], p99[8], o[2];
	int n = 0;

	/* drop what is queued */
	fcntl(rfd, F_SETFL, O_NONBLOCK);
	while (read(rfd, o, sizeof(o)) > 0)
		;
	fcntl(rfd, F_SETFL, 0);
	if (read(rfd, o, sizeof(o)) <= 0) /* settle one second */
		return;
	while (n < 8 && read(rfd, o, sizeof(o)) == sizeof(o)) {
		p50[n] = o[0];
		p99[n++] = o[1];
	}
	if (n == 0) {
		printf("VMTEST FAIL bench_iso_knobs: no figures for '%s'\n", what);
		return;
	}
	measured++;
	qsort(p50, n, sizeof(*p50), cmp);
	qsort(p99, n, sizeof(*p99), cmp);
	printf("VMTEST BENCH iso %-34s rq wait p50 %6lld us, p99 %6lld us (per-second p99s %lld..%lld)\n",
	       what, (long long)p50[n / 2] / 1000, (long long)p99[n / 2] / 1000,
	       (long long)p99[0] / 1000, (long long)p99[n - 1] / 1000);
	fflush(stdout);
}

int main(void)
{
	int pfd[2];
	pid_t kids[5];
	const char *g[] = { "t1", "t3", "t3", "t4", "t4" };

	if (pipe(pfd))
		return 1;
	mkdir(CG, 0755);
	put("../cgroup.subtree_control", "+cpu");
	put("cgroup.subtree_control", "+cpu");
	mkdir(CG "/t1", 0755);
	mkdir(CG "/t3", 0755);
	mkdir(CG "/t4", 0755);
	for (int i = 0; i < 5; i++)
		kids[i] = spawn_in(g[i], pfd[1], i == 0);
	put("t3/cgroup.freeze", "1");
	put("t4/cgroup.freeze", "1");
	measure("no hogs (frozen)", pfd[0]);
	put("t3/cgroup.freeze", "0");
	put("t4/cgroup.freeze", "0");
	measure("defaults (weight 100 each)", pfd[0]);
	put("t3/cpu.idle", "1");
	put("t4/cpu.idle", "1");
	measure("t3,t4 cpu.idle", pfd[0]);
	put("t3/cpu.max", "18800 20000");
	put("t4/cpu.max", "5000 20000");
	measure("cpu.idle + ceilings .94/.25", pfd[0]);
	put("t3/cpu.idle", "0");
	put("t4/cpu.idle", "0");
	measure("ceilings only", pfd[0]);
	put("t3/cpu.max", "max 100000");
	put("t4/cpu.max", "max 100000");
	put("t1/cpu.weight", "10000");
	put("t3/cpu.weight", "1");
	put("t4/cpu.weight", "1");
	measure("weights 10000/1/1", pfd[0]);
	put("t3/cpu.max", "10000 20000");
	put("t4/cpu.max", "10000 20000");
	put("t3/cpu.idle", "1");
	put("t4/cpu.idle", "1");
	measure("idle + ceilings .5/.5 (1 cpu free)", pfd[0]);
	for (int i = 0; i < 5; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	rmdir(CG "/t1");
	rmdir(CG "/t3");
	rmdir(CG "/t4");
	rmdir(CG);
	if (measured != 7)
		return 1;
	printf("VMTEST PASS bench_iso_knobs: 7 settings measured\n");
	return 0;
}
