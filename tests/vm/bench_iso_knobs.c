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
		int64_t rq[100], next = vt_now_ns();

		for (int i = 0; i < 100; i++)
			rq[i] = vt_tick(&next, 10000000, 1000000, NULL);
		qsort(rq, 100, sizeof(*rq), vt_cmp_i64);
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
	qsort(p50, n, sizeof(*p50), vt_cmp_i64);
	qsort(p99, n, sizeof(*p99), vt_cmp_i64);
	printf("VMTEST BENCH iso %-34s rq wait p50 %6lld us, p99 %6lld us (per-second p99s %lld..%lld)\n",
	       what, (long long)p50[n / 2] / 1000, (long long)p99[n / 2] / 1000,
	       (long long)p99[0] / 1000, (long long)p99[n - 1] / 1000);
	fflush(stdout);
}

/* The settings in order, each the knob writes ("FILE=VALUE", relative to
 * CG) that lead to it from the one before. */
static const struct setting {
	const char *name;
	const char *writes[6];
} SETTINGS[] = {
	{ "no hogs (frozen)", { "t3/cgroup.freeze=1", "t4/cgroup.freeze=1" } },
	{ "defaults (weight 100 each)", { "t3/cgroup.freeze=0", "t4/cgroup.freeze=0" } },
	{ "t3,t4 cpu.idle", { "t3/cpu.idle=1", "t4/cpu.idle=1" } },
	{ "cpu.idle + ceilings .94/.25", { "t3/cpu.max=18800 20000", "t4/cpu.max=5000 20000" } },
	{ "ceilings only", { "t3/cpu.idle=0", "t4/cpu.idle=0" } },
	{ "weights 10000/1/1", { "t3/cpu.max=max 100000", "t4/cpu.max=max 100000", "t1/cpu.weight=10000",
				 "t3/cpu.weight=1", "t4/cpu.weight=1" } },
	{ "idle + ceilings .5/.5 (1 cpu free)", { "t3/cpu.max=10000 20000", "t4/cpu.max=10000 20000",
						  "t3/cpu.idle=1", "t4/cpu.idle=1" } },
};
#define NSETTINGS (int)(sizeof(SETTINGS) / sizeof(SETTINGS[0]))

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
	for (int i = 0; i < NSETTINGS; i++) {
		for (int w = 0; SETTINGS[i].writes[w]; w++) {
			char rel[64];
			const char *eq = strchr(SETTINGS[i].writes[w], '=');

			snprintf(rel, sizeof(rel), "%.*s", (int)(eq - SETTINGS[i].writes[w]),
				 SETTINGS[i].writes[w]);
			put(rel, eq + 1);
		}
		measure(SETTINGS[i].name, pfd[0]);
	}
	for (int i = 0; i < 5; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	rmdir(CG "/t1");
	rmdir(CG "/t3");
	rmdir(CG "/t4");
	rmdir(CG);
	if (measured != NSETTINGS)
		return 1;
	printf("VMTEST PASS bench_iso_knobs: %d settings measured\n", measured);
	return 0;
}
