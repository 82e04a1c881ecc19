/* SPDX-License-Identifier: MIT */
/*
 * acct across a live upgrade: the probe handed over as its fds and adopted
 * without loading, its CPU counter going on rather than restarting (twice in
 * a row), the fallback's baselines carried, a probe of another layout and a
 * state without the section refused. The exec is played in-process: the
 * state written, the old object closed with the state's fds kept under their
 * numbers (as execve keeps them), then the adoption.
 *
 * Scratch tree as test_acct.c's: <cgroup2>/tierd-acho-PID/agent-0; only
 * the children started here are killed, by pid.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "../bpf/tierprobe.h"
#include "../supervisor/acct.h"
#include "../supervisor/cgroup/cg_proc.h"
#include "../supervisor/cgroup/cg_spawn.h"
#include "../supervisor/cgroup/cg_stat.h"
#include "../supervisor/cgroup/cg_util.h"
#include "../supervisor/cgroup/cgroup.h"
#include "../supervisor/handover/handover.h"

static struct {
	int mnt_fd, tier_fd, leaf_fd;
	char name[64];
	struct sup_acct *a;
	pid_t kid;
} F;

static void setup(void)
{
	F.mnt_fd = F.tier_fd = F.leaf_fd = -1;
	F.a = NULL;
	F.kid = 0;
}

static void teardown(void)
{
	if (F.kid > 0) {
		kill(F.kid, SIGKILL);
		waitpid(F.kid, NULL, 0);
	}
	sup_acct_close(F.a);
	if (F.leaf_fd >= 0)
		close(F.leaf_fd);
	if (F.tier_fd >= 0)
		close(F.tier_fd);
	if (F.mnt_fd >= 0) {
		sup_cg_remove_tree(F.mnt_fd, F.name, 5000);
		close(F.mnt_fd);
	}
}

TestSuite(acct_handover, .init = setup, .fini = teardown, .timeout = 60);

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void need_tree(void)
{
	struct sup_cg_mount m;
	char buf[65536];
	ssize_t n;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root to create cgroups and load BPF");
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || sup_cg_parse_mountinfo(buf, (size_t)n, &m) < 0)
		cr_skip_test("no cgroup2 mount on this host");
	F.mnt_fd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(F.mnt_fd, 0);
	snprintf(F.name, sizeof(F.name), "tierd-acho-%d", (int)getpid());
	cr_assert_eq(mkdirat(F.mnt_fd, F.name, 0755), 0, "mkdir %s: %m", F.name);
	F.tier_fd = openat(F.mnt_fd, F.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(F.tier_fd, 0);
	cr_assert_eq(mkdirat(F.tier_fd, "agent-0", 0755), 0);
	F.leaf_fd = openat(F.tier_fd, "agent-0", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(F.leaf_fd, 0);
}

static struct sup_acct_opts opts(bool fallback)
{
	struct sup_acct_opts o = { .sz = sizeof(o), .force_fallback = fallback,
				   .tier_fds = { -1, -1, -1, -1, -1 } };

	o.tier_fds[1] = F.tier_fd;
	return o;
}

static void spinner(void)
{
	F.kid = sup_cg_fork_into(F.leaf_fd, 0, NULL);
	cr_assert_geq(F.kid, 0, "fork into the leaf: %s", strerror(-F.kid));
	if (F.kid == 0)
		for (;;)
			__asm__ __volatile__("" ::: "memory");
}

static uint64_t cpu_ns(uint64_t id)
{
	struct sup_acct_sample s;
	int r = sup_acct_read(F.a, id, F.leaf_fd, &s);

	cr_assert_eq(r, 0, "sup_acct_read: %s", strerror(-r));
	return s.cpu_ns;
}

static uint64_t usage_ns(void)
{
	struct sup_cg_cpu_stat cs;

	cr_assert_eq(sup_cg_read_cpu_stat(F.leaf_fd, &cs), 0);
	return cs.usage_usec * 1000;
}

/* The old binary's side of the exec: the state written, the object closed
 * while every fd of the state stays open under its number (the fds
 * sup_ho_w_finish made inheritable are exactly the table's). */
static int exec_over(struct sup_acct *old)
{
	struct sup_ho_w *w = sup_ho_w_new();
	int fds[128], keep[128], n = 0, state;
	char err[256];
	struct dirent *e;
	DIR *d;

	cr_assert_eq(sup_acct_handover(old, w), 0);
	state = sup_ho_w_finish(w, err, sizeof(err));
	cr_assert_geq(state, 0, "%s", err);
	sup_ho_w_free(w);
	d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	while ((e = readdir(d)) && n < 128) {
		int fd = atoi(e->d_name);

		if (fd > 2 && fd != state && fd != dirfd(d) && fcntl(fd, F_GETFD) == 0) {
			fds[n] = fd;
			keep[n] = fcntl(fd, F_DUPFD_CLOEXEC, 200);
			cr_assert_geq(keep[n], 0);
			n++;
		}
	}
	closedir(d);
	sup_acct_close(old);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(dup2(keep[i], fds[i]), fds[i]);
		close(keep[i]);
	}
	return state;
}

/* The new binary's side: read, adopt, commit. */
static struct sup_acct *adopt(int state, double *ms)
{
	struct sup_acct_opts o = opts(false);
	char err[512] = "";
	struct sup_ho_r *r;
	struct sup_acct *a;
	double t0 = now_ms();

	r = sup_ho_r_open(state, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	a = sup_acct_adopt(r, &o, err, sizeof(err));
	cr_assert_not_null(a, "adopt: %s", err);
	sup_ho_r_commit(r);
	*ms = now_ms() - t0;
	sup_ho_r_free(r);
	return a;
}

Test(acct_handover, should_keep_the_probe_counting_across_two_upgrades)
{
	struct sup_acct_opts o;
	uint64_t id = 0, before, after, end, usage;
	double t0, open_ms, adopt_ms[2];
	char source[1024];

	need_tree();
	o = opts(false);
	t0 = now_ms();
	F.a = sup_acct_open(&o);
	open_ms = now_ms() - t0;
	cr_assert_not_null(F.a);
	if (!sup_acct_is_bpf(F.a))
		cr_skip_test("the eBPF probe is unavailable here: %s", sup_acct_source(F.a));
	snprintf(source, sizeof(source), "%s", sup_acct_source(F.a));
	cr_assert_eq(sup_acct_track(F.a, F.leaf_fd, &id), 0);
	spinner();
	for (int round = 0; round < 2; round++) {
		sleep_ms(300);
		before = cpu_ns(id);
		cr_assert_gt(before, 100000000ull * (round + 1), "round %d: %llu ns burnt", round,
			     (unsigned long long)before);
		F.a = adopt(exec_over(F.a), &adopt_ms[round]);
		cr_expect(sup_acct_is_bpf(F.a));
		cr_expect_str_eq(sup_acct_source(F.a), source);
		after = cpu_ns(id);
		cr_expect_geq(after, before, "round %d: the counter restarted (%llu after %llu)",
			      round, (unsigned long long)after, (unsigned long long)before);
	}
	sleep_ms(300);
	end = cpu_ns(id);
	usage = usage_ns();
	cr_expect_gt(end, after + 100000000ull, "the adopted probe counts on");
	/* since tracking began the leaf's own cpu.stat counted the same CPU:
	 * a probe restarted at an upgrade would be short by what came before */
	cr_expect(end > usage * 8 / 10 && end < usage * 12 / 10,
		  "probe %llu ns, cpu.stat %llu ns", (unsigned long long)end,
		  (unsigned long long)usage);
	fprintf(stderr, "acct hand-over: sup_acct_open (load + attach) %.2f ms; "
		"state read + adopt + commit %.2f ms, %.2f ms\n", open_ms, adopt_ms[0], adopt_ms[1]);
}

Test(acct_handover, should_carry_the_fallback_baselines)
{
	struct sup_acct_opts o;
	uint64_t id = 0, before, after;
	double ms;

	need_tree();
	o = opts(true);
	F.a = sup_acct_open(&o);
	cr_assert_not_null(F.a);
	cr_assert_eq(sup_acct_track(F.a, F.leaf_fd, &id), 0);
	spinner();
	sleep_ms(200);
	before = cpu_ns(id);
	cr_assert_gt(before, 0);
	F.a = adopt(exec_over(F.a), &ms);
	cr_expect_not(sup_acct_is_bpf(F.a));
	cr_expect(strstr(sup_acct_source(F.a), "fallback"), "%s", sup_acct_source(F.a));
	after = cpu_ns(id);
	cr_expect_geq(after, before);
	cr_expect_lt(after, usage_ns() + 1, "the baseline came across (no double count)");
}

Test(acct_handover, should_refuse_a_state_without_the_section)
{
	struct sup_acct_opts o = { .sz = sizeof(o), .tier_fds = { -1, -1, -1, -1, -1 } };
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	char err[256];
	int st;

	sup_ho_w_begin(w, SUP_HO_TAG_DAEMON, 1);
	sup_ho_w_end(w);
	st = sup_ho_w_finish(w, err, sizeof(err));
	cr_assert_geq(st, 0);
	r = sup_ho_r_open(st, err, sizeof(err));
	cr_assert_not_null(r);
	errno = 0;
	cr_expect_null(sup_acct_adopt(r, &o, err, sizeof(err)));
	cr_expect_str_eq(err, "acct: no 'acct' section in the state");
	sup_ho_r_free(r);
	sup_ho_w_free(w);
	close(st);
}

Test(acct_handover, should_refuse_a_probe_of_another_layout)
{
	struct tierprobe_fds f;
	struct tierprobe *p;
	char why[512] = "";
	int bad;

	need_tree();
	F.a = sup_acct_open(&(struct sup_acct_opts){ .sz = sizeof(struct sup_acct_opts),
						     .tier_fds = { -1, -1, -1, -1, -1 } });
	cr_assert_not_null(F.a);
	if (!sup_acct_is_bpf(F.a))
		cr_skip_test("the eBPF probe is unavailable here: %s", sup_acct_source(F.a));
	/* a cgroups map whose values are not this binary's struct tierprobe_cg */
	bad = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "old_cgroups", 8, 16, 16, NULL);
	cr_assert_geq(bad, 0, "map: %m");
	memset(&f, 0xff, sizeof(f));
	f.mode = TIERPROBE_RAW_TP;
	f.cgroups = bad;
	f.nlinks = 0;
	errno = 0;
	p = tierprobe__adopt(&f, NULL, NULL, NULL, why, sizeof(why));
	cr_expect_null(p);
	cr_expect_eq(errno, EPROTO);
	cr_expect(strstr(why, "map cgroups") && strstr(why, "value 16 bytes"), "%s", why);
	cr_expect_geq(fcntl(bad, F_GETFD), 0, "a refused adoption closes nothing");
	close(bad);
}
