/* SPDX-License-Identifier: MIT */
/*
 * Probe benchmark: what the accounting probe (bpf/tierprobe) costs.
 *
 *  1. End to end: a futex ping-pong between two processes in a tracked leaf,
 *     with the probe loaded vs not loaded, repetitions interleaved (the
 *     order alternates), medians. Two placements: cross-CPU (CPU 0 <-> 1,
 *     as ring_bench; every wake crosses CPUs) and both on CPU 1 (nothing
 *     but switches: the probe's worst case).
 *  2. Per program run: the kernel's run-time statistics (run_time_ns /
 *     run_cnt from bpf_prog_info) over the same workloads, with
 *     kernel.bpf_stats_enabled set to 1 for this phase only and put back as
 *     it was afterwards (also on an early exit). Phase 1 runs with
 *     statistics as they were (off by default): they cost two clock reads
 *     per program run.
 *
 * Needs root and a cgroup2 mount; prints "SKIPPED (why)" otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../bpf/tierprobe.h"
#include "../supervisor/cgroup/cgroup.h"
#include "../supervisor/cgroup/cg_proc.h"
#include "../supervisor/cgroup/cg_util.h"
#include "bench.h"

#define N_CROSS   4000u     /* round trips per repetition, cross-CPU */
#define N_SAME    100000u   /* round trips per repetition, one CPU */
#define WARM      0.1       /* leading fraction not timed */
#define N_IO      200000u   /* 1-byte writes for the syscall exit programs */
#define MAX_REPS  32

enum place { CROSS, SAME, NPLACE };
static const char *const place_name[NPLACE] = { "cross-CPU (0 <-> 1)", "one CPU (both on 1)" };

struct pp {
	_Alignas(128) uint32_t a;
	_Alignas(128) uint32_t b;
	_Alignas(128) int ready;
	int64_t ns;      /* timed part, measured by the pinger */
	uint64_t n;
	int leaf_fd;
	int failed;
};

struct ctx {
	int mnt_fd, tier_fd, leaf_fd;
	char name[64];
	uint64_t cgid;
};

static long futex(uint32_t *w, int op, uint32_t v)
{
	return syscall(SYS_futex, w, op, v, NULL, NULL, 0);
}

static void wait_for(uint32_t *w, uint32_t want)
{
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want)
		futex(w, FUTEX_WAIT, v);
}

/* Both sides join the leaf, then meet, so every timed switch is tracked. */
static int join(struct pp *p)
{
	if (sup_cg_move_pid(p->leaf_fd, 0) < 0) {
		p->failed = 1;
		return -1;
	}
	__atomic_add_fetch(&p->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&p->ready, __ATOMIC_ACQUIRE) < 2)
		;
	return 0;
}

static int pinger(void *arg)
{
	struct pp *p = arg;
	uint64_t warm = (uint64_t)((double)p->n * WARM);
	int64_t t0 = 0;

	if (join(p) < 0)
		return 1;
	for (uint64_t i = 1; i <= p->n; i++) {
		if (i == warm + 1)
			t0 = bench_now_ns();
		__atomic_store_n(&p->a, (uint32_t)i, __ATOMIC_RELEASE);
		futex(&p->a, FUTEX_WAKE, 1);
		wait_for(&p->b, (uint32_t)i);
	}
	p->ns = bench_now_ns() - t0;
	return 0;
}

static int ponger(void *arg)
{
	struct pp *p = arg;

	if (join(p) < 0)
		return 1;
	for (uint64_t i = 1; i <= p->n; i++) {
		wait_for(&p->a, (uint32_t)i);
		__atomic_store_n(&p->b, (uint32_t)i, __ATOMIC_RELEASE);
		futex(&p->b, FUTEX_WAKE, 1);
	}
	return 0;
}

/* One ping-pong run: ns per round trip. */
static double run_pp(const struct ctx *c, enum place pl)
{
	struct pp *p = bench_shared(sizeof(*p));
	uint64_t n = pl == CROSS ? N_CROSS : N_SAME;
	pid_t pong, ping;
	double rt;

	p->n = n;
	p->leaf_fd = c->leaf_fd;
	pong = bench_fork(1, ponger, p);
	ping = bench_fork(pl == CROSS ? 0 : 1, pinger, p);
	if (bench_wait(ping) != 0 || bench_wait(pong) != 0 || p->failed) {
		fprintf(stderr, "probe_bench: ping-pong failed\n");
		exit(1);
	}
	rt = (double)p->ns / ((double)n - (double)(uint64_t)((double)n * WARM));
	bench_unshare(p, sizeof(*p));
	return rt;
}

static int writer(void *arg)
{
	const struct ctx *c = arg;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char b = 0;

	if (fd < 0 || sup_cg_move_pid(c->leaf_fd, 0) < 0)
		return 1;
	for (unsigned i = 0; i < N_IO; i++)
		if (write(fd, &b, 1) != 1)
			return 2;
	return 0;
}

static struct tierprobe *load(const struct ctx *c)
{
	char err[512] = "";
	struct tierprobe_opts o = { .sz = sizeof(o), .net_cgroup_fds = &c->tier_fd,
				    .n_net_cgroup_fds = 1, .errbuf = err, .errbuf_sz = sizeof(err) };
	struct tierprobe *p = tierprobe__open(&o);

	if (!p) {
		printf("probe_bench: SKIPPED (the probe does not load: %s)\n", err);
		exit(0);
	}
	if (tierprobe__add_cgroup(p, c->cgid) < 0) {
		fprintf(stderr, "probe_bench: add cgroup failed\n");
		exit(1);
	}
	return p;
}

static int setup(struct ctx *c)
{
	struct sup_cg_mount m;
	char buf[65536];
	struct stat st;
	ssize_t n;
	int fd;

	if (geteuid() != 0) {
		printf("probe_bench: SKIPPED (needs root: cgroups and BPF)\n");
		return -1;
	}
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || sup_cg_parse_mountinfo(buf, (size_t)n, &m) < 0) {
		printf("probe_bench: SKIPPED (no cgroup2 mount)\n");
		return -1;
	}
	c->mnt_fd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(c->name, sizeof(c->name), "tierd-probebench-%d", (int)getpid());
	if (c->mnt_fd < 0 || mkdirat(c->mnt_fd, c->name, 0755) < 0) {
		perror("probe_bench: scratch cgroup");
		return -1;
	}
	c->tier_fd = openat(c->mnt_fd, c->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->tier_fd < 0 || mkdirat(c->tier_fd, "agent-pp", 0755) < 0 ||
	    (c->leaf_fd = openat(c->tier_fd, "agent-pp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(c->leaf_fd, &st) < 0) {
		perror("probe_bench: scratch leaf");
		return -1;
	}
	c->cgid = (uint64_t)st.st_ino;
	return 0;
}

static void cleanup(struct ctx *c)
{
	if (c->leaf_fd >= 0)
		close(c->leaf_fd);
	if (c->tier_fd >= 0)
		close(c->tier_fd);
	if (c->mnt_fd >= 0) {
		sup_cg_remove_tree(c->mnt_fd, c->name, 5000);
		close(c->mnt_fd);
	}
}

#define STATS_SYSCTL "/proc/sys/kernel/bpf_stats_enabled"

static int stats_sysctl(void)
{
	char b[8] = "";
	int fd = open(STATS_SYSCTL, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, b, sizeof(b) - 1) < 0)
			b[0] = '\0';
		close(fd);
	}
	return b[0] ? atoi(b) : -1;
}

static int stats_set(int v)
{
	char b[4];
	int fd = open(STATS_SYSCTL, O_WRONLY | O_CLOEXEC), n, err = 0;

	if (fd < 0)
		return -errno;
	n = snprintf(b, sizeof(b), "%d\n", v);
	if (write(fd, b, (size_t)n) != n)
		err = -errno;
	close(fd);
	return err;
}

/* The sysctl's value before we set it; restored at exit, however we exit. */
static int stats_saved = -1;

static void stats_restore(void)
{
	if (stats_saved >= 0)
		stats_set(stats_saved);
	stats_saved = -1;
}

struct cost {
	double per_run[TIERPROBE_NPROG];
	uint64_t runs[TIERPROBE_NPROG];
};

static void snap(const struct tierprobe *p, struct tierprobe_prog_stats s[TIERPROBE_NPROG])
{
	for (int k = 0; k < TIERPROBE_NPROG; k++)
		if (tierprobe__prog_stats(p, (enum tierprobe_prog)k, &s[k]) < 0)
			memset(&s[k], 0, sizeof(s[k]));
}

static void diff(const struct tierprobe_prog_stats a[TIERPROBE_NPROG],
		 const struct tierprobe_prog_stats b[TIERPROBE_NPROG], struct cost *ret)
{
	for (int k = 0; k < TIERPROBE_NPROG; k++) {
		ret->runs[k] = b[k].run_cnt - a[k].run_cnt;
		ret->per_run[k] = ret->runs[k] ? (double)(b[k].run_time_ns - a[k].run_time_ns) /
				  (double)ret->runs[k] : 0;
	}
}

int main(void)
{
	struct ctx c = { .mnt_fd = -1, .tier_fd = -1, .leaf_fd = -1 };
	double off[NPLACE][MAX_REPS], on[NPLACE][MAX_REPS], moff[NPLACE], mon[NPLACE];
	double sw[NPLACE][MAX_REPS], wk[NPLACE][MAX_REPS], io[MAX_REPS];
	int reps = bench_reps(7), met = 0, total = 0, sysctl_before, sysctl_during = -1;
	bool stats_ok;
	const char *mode = "?";
	char mach[256];

	if (reps > MAX_REPS)
		reps = MAX_REPS;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (setup(&c) < 0) {
		cleanup(&c);
		return 0;
	}
	bench_machine(mach, sizeof(mach));
	printf("probe benchmark: %s\n", mach);
	printf("futex ping-pong in a tracked leaf, %u (cross-CPU) / %u (one CPU) round trips per run;\n"
	       "%d repetitions, loaded and unloaded interleaved (order alternating); medians\n\n",
	       N_CROSS, N_SAME, reps);

	/* ---- 1. end to end, statistics off ---- */
	for (int r = 0; r < reps; r++) {
		fprintf(stderr, "  repetition %d/%d (end to end)\r", r + 1, reps);
		for (int half = 0; half < 2; half++) {
			bool loaded = (half == 0) == (r % 2 == 0);
			struct tierprobe *p = loaded ? load(&c) : NULL;

			if (p)
				mode = tierprobe__mode(p) == TIERPROBE_TP_BTF ? "tp_btf" : "raw_tp";
			for (int pl = 0; pl < NPLACE; pl++)
				(loaded ? on : off)[pl][r] = run_pp(&c, (enum place)pl);
			tierprobe__destroy(p);
		}
	}

	/* ---- 2. per program run, statistics on ---- */
	sysctl_before = stats_sysctl();
	stats_saved = sysctl_before;
	atexit(stats_restore);
	stats_ok = sysctl_before >= 0 && stats_set(1) == 0;
	if (!stats_ok) {
		printf("probe_bench: cannot set kernel.bpf_stats_enabled: no per-run costs\n");
	} else {
		struct tierprobe *p = load(&c);

		sysctl_during = stats_sysctl();
		for (int r = 0; r < reps; r++) {
			struct tierprobe_prog_stats a[TIERPROBE_NPROG], b[TIERPROBE_NPROG];
			struct cost k;

			fprintf(stderr, "  repetition %d/%d (per run)  \r", r + 1, reps);
			for (int pl = 0; pl < NPLACE; pl++) {
				snap(p, a);
				run_pp(&c, (enum place)pl);
				snap(p, b);
				diff(a, b, &k);
				sw[pl][r] = k.per_run[TIERPROBE_PROG_SWITCH];
				wk[pl][r] = k.per_run[TIERPROBE_PROG_WAKEUP];
			}
			snap(p, a);
			if (bench_wait(bench_fork(0, writer, &c)) != 0) {
				fprintf(stderr, "probe_bench: writer failed\n");
				exit(1);
			}
			snap(p, b);
			diff(a, b, &k);
			io[r] = k.per_run[TIERPROBE_PROG_IO];
		}
		tierprobe__destroy(p);
		stats_restore();
	}
	fprintf(stderr, "%40s\r", "");

	printf("round trip, ns (median)          unloaded     loaded   (probe: %s)\n", mode);
	for (int pl = 0; pl < NPLACE; pl++) {
		moff[pl] = bench_median(off[pl], (size_t)reps);
		mon[pl] = bench_median(on[pl], (size_t)reps);
		printf("  %-28s %10.0f %10.0f\n", place_name[pl], moff[pl], mon[pl]);
	}
	if (stats_ok) {
		printf("\nprobe program run time, ns per run (median; kernel.bpf_stats_enabled %d before, "
		       "%d while measuring, %d after)\n", sysctl_before, sysctl_during, stats_sysctl());
		for (int pl = 0; pl < NPLACE; pl++) {
			printf("  %-28s sched_switch %6.0f   sched_wakeup %6.0f\n", place_name[pl],
			       bench_median(sw[pl], (size_t)reps), bench_median(wk[pl], (size_t)reps));
		}
		printf("  %-28s sys_exit_write %6.0f\n", "1-byte writes to /dev/null",
		       bench_median(io, (size_t)reps));
	}
	printf("\nratios (same run)\n");
	for (int pl = 0; pl < NPLACE; pl++) {
		char name[64];

		snprintf(name, sizeof(name), "ping-pong %s loaded / unloaded", pl == CROSS ?
			 "cross-CPU" : "one CPU");
		total++;
		met += bench_ratio(name, mon[pl] / moff[pl], "<=", 1.10);
	}
	if (stats_ok) {
		total += 2;
		met += bench_ratio("sched_switch program, ns per run (cross-CPU)",
				   bench_median(sw[CROSS], (size_t)reps), "<=", 600);
		met += bench_ratio("sched_wakeup program, ns per run (cross-CPU)",
				   bench_median(wk[CROSS], (size_t)reps), "<=", 600);
	}
	printf("\ntargets met: %d of %d\n", met, total);
	cleanup(&c);
	return 0;
}
