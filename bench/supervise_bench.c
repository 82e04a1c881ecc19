/* SPDX-License-Identifier: MIT */
/*
 * Supervision benchmark: tierd against s6 and runit, in one run, over the
 * same trivial agent binary (bench/agents/trivial-agent.c), repetitions
 * interleaved (tierd, s6, runit, tierd, …) so machine noise hits all alike.
 *
 *   cold start    24 agents, from starting the supervisor to all ready
 *   restart       SIGKILL of an agent up for >= 1.5 s to its replacement
 *                 ready (8 agents per repetition), and once per repetition
 *                 a second SIGKILL right after a restart (backoff / floor)
 *   fleet         1000 agents to all ready; stopped, timed until nothing
 *                 is left, and checked: no process, no cgroup, no service
 *                 directory
 *   idle CPU      supervisor CPU over 60 s with 24 idle agents, all three
 *                 running side by side
 *   sandbox       tierd's spawn primitive without the sandbox, joining the
 *                 shared namespace, and with a namespace per agent
 *                 (svb_sandbox.c); BENCH_SANDBOX=no runs every tierd above
 *                 with sandbox = no, to compare its cold start and restart
 *
 * Every start is timed from the exec of the supervisor (tierd, s6-svscan,
 * runsvdir), forked beforehand into its place (the baselines into a cgroup
 * of their own) and parked before exec, to the moment the poller sees the
 * last agent ready.
 *
 * Readiness: tierd — the agent's HELLO accepted (state "ready"), read over
 * one persistent control connection ("status" for all-ready, the event
 * journal for a replacement); s6 — the agent's line on its notification-fd,
 * read from supervise/status as s6-svstat does; runit (no readiness
 * protocol) — runsv's supervise/status saying "run" with the new pid, as
 * sv does (runsv writes it right after fork, before the agent's exec; the
 * time until the replacement has exec'd is shown beside it). All three are
 * polled alike: while waiting for all agents, one poll every 200 µs (a
 * sleep, so the poller leaves the CPUs to the supervisors); while waiting
 * for one replacement, back to back with sched_yield() (sleeping instead
 * made every contender slower: an idle vCPU's wake-up goes through the
 * hypervisor).
 *
 * Needs root (cgroups, a tmpfs). Knobs: BENCH_REPS (default 5),
 * BENCH_IDLE_S (default 60), BENCH_FLEET (default 1000), BENCH_POLL_US
 * (pause between all-ready polls, default 200), BENCH_RESTART_POLL_US
 * (pause between restart polls, default 0), BENCH_ONLY=NAME (one
 * contender alone), BENCH_KEEP=1 (keep configs and logs).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "svb_report.h"
#include "svb_sandbox.h"
#include "svb_svdir.h"
#include "svb_tierd.h"
#include "svb_util.h"

#define N_SMALL            24
#define SANDBOX_SPAWNS     200
#define N_FLEET_DEFAULT    1000
#define N_KILLS            8
#define MAX_REPS           32
/* s6 and runit hold back a restart until 1 s after the previous start:
 * agents killed for the restart figure have been up longer than that. */
#define LONG_RUN_NS        (1500 * SVB_MS)
#define KILL_GAP_NS        (20 * SVB_MS)
#define READY_TIMEOUT_NS   (60 * SVB_SEC)
#define RESTART_TIMEOUT_NS (10 * SVB_SEC)
#define STOP_TIMEOUT_NS    (60 * SVB_SEC)
#define IDLE_SETTLE_NS     (3 * SVB_SEC)
#define IDLE_DEFAULT_S     60

static volatile sig_atomic_t stop_flag;
/* Pauses between two polls (see the top): waiting for all agents, and for
 * one replacement (0: sched_yield()). */
#define POLL_ALL_NS_DEFAULT (200 * 1000)
static int64_t poll_all_ns = POLL_ALL_NS_DEFAULT;
static int64_t poll_one_ns;

struct contender {
	enum svb_kind    k;
	struct svb_tierd t;
	struct svb_svd   d;
};

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- one contender, whichever it is -------------------------------------- */

static int c_prepare(struct contender *c, enum svb_kind k, const struct svb_env *env, unsigned n,
		     unsigned seq)
{
	c->k = k;
	if (k == SVB_TIERD)
		return svb_tierd_prepare(&c->t, env, n, seq);
	return svb_svd_prepare(&c->d, k == SVB_S6 ? SVB_SVD_S6 : SVB_SVD_RUNIT, env, n, seq);
}

static int c_arm(struct contender *c)
{
	return c->k == SVB_TIERD ? svb_tierd_arm(&c->t) : svb_svd_arm(&c->d);
}

static int c_start(struct contender *c)
{
	return c->k == SVB_TIERD ? svb_tierd_start(&c->t) : svb_svd_start(&c->d);
}

static int c_ready_count(struct contender *c)
{
	return c->k == SVB_TIERD ? svb_tierd_ready_count(&c->t) : svb_svd_ready_count(&c->d);
}

static pid_t c_agent_pid(struct contender *c, unsigned i)
{
	int r;

	if (c->k != SVB_TIERD)
		return svb_svd_ready_pid(&c->d, i);
	r = svb_tierd_agents(&c->t);
	return r < 0 ? r : c->t.pids[i];
}

static int c_mark(struct contender *c)
{
	return c->k == SVB_TIERD ? svb_tierd_mark(&c->t) : 0;
}

/* 1 once agent i's replacement of old is ready. */
static int c_replaced(struct contender *c, unsigned i, pid_t old)
{
	pid_t p;

	if (c->k == SVB_TIERD)
		return svb_tierd_ready_since_mark(&c->t, i);
	p = svb_svd_ready_pid(&c->d, i);
	return p < 0 ? p : p > 0 && p != old;
}

static int c_stop(struct contender *c, int64_t *ret_ns, char *why, size_t whylen)
{
	if (c->k == SVB_TIERD)
		return svb_tierd_stop(&c->t, STOP_TIMEOUT_NS, ret_ns, why, whylen);
	return svb_svd_stop(&c->d, STOP_TIMEOUT_NS, ret_ns, why, whylen);
}

static void c_abandon(struct contender *c)
{
	if (c->k == SVB_TIERD)
		svb_tierd_abandon(&c->t);
	else
		svb_svd_abandon(&c->d);
}

/* ---- measurements --------------------------------------------------------- */

/* 0: sched_yield(), anything runnable on this CPU goes first; else sleep. */
static void poll_pause(int64_t ns)
{
	struct timespec ts = { 0, (long)ns };

	if (ns)
		nanosleep(&ts, NULL);
	else
		sched_yield();
}

static int wait_all_ready(struct contender *c, unsigned n, int64_t *ret_t)
{
	int64_t deadline = bench_now_ns() + READY_TIMEOUT_NS;

	for (;;) {
		int r = c_ready_count(c);

		if (r < 0)
			return r;
		if ((unsigned)r >= n) {
			*ret_t = bench_now_ns();
			return 0;
		}
		if (stop_flag)
			return -EINTR;
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		poll_pause(poll_all_ns);
	}
}

/* runit's "run" is written right after fork: time on until the
 * replacement has exec'd the agent (its comm turns from runsv to run). */
static int runit_exec_wait(pid_t pid, int64_t deadline)
{
	char comm[32];
	int r;

	while ((r = svb_pid_comm(pid, comm, sizeof(comm))) == 0 && strcmp(comm, "run")) {
		if (stop_flag)
			return -EINTR;
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		poll_pause(0);
	}
	return r;
}

/* SIGKILL agent i and time until its replacement is ready; phases (when
 * not NULL): for tierd, where the time went; for runit, [0] is the time
 * until the replacement had exec'd the agent. */
static int restart_one(struct contender *c, const struct svb_env *env, unsigned i, double *ret_ms,
		       double phases[3])
{
	pid_t old = c_agent_pid(c, i), now;
	int64_t t0, deadline;
	struct timespec rt;
	int r;

	if (old <= 0)
		return old < 0 ? old : -ESRCH;
	/* Only ever a process of this run. */
	if (svb_pid_in_cg(old, env->top_rel) != 1)
		return -EPERM;
	r = c_mark(c);
	if (r < 0)
		return r;
	clock_gettime(CLOCK_REALTIME, &rt);
	t0 = bench_now_ns();
	deadline = t0 + RESTART_TIMEOUT_NS;
	if (kill(old, SIGKILL) < 0)
		return -errno;
	while ((r = c_replaced(c, i, old)) == 0) {
		if (stop_flag)
			return -EINTR;
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		poll_pause(poll_one_ns);
	}
	if (r < 0)
		return r;
	*ret_ms = (double)(bench_now_ns() - t0) * 1e-6;
	if (phases && c->k == SVB_RUNIT) {
		now = svb_svd_ready_pid(&c->d, i);
		r = now > 0 ? runit_exec_wait(now, deadline) : -ESRCH;
		if (r < 0)
			return r;
		phases[0] = (double)(bench_now_ns() - t0) * 1e-6;
	}
	if (phases && c->k == SVB_TIERD &&
	    svb_tierd_restart_phases(&c->t, i, (int64_t)rt.tv_sec * SVB_SEC + rt.tv_nsec, phases) < 0)
		phases[0] = phases[1] = phases[2] = -1;
	now = c_agent_pid(c, i);
	return now > 0 && now != old ? 0 : -ESRCH;
}

static void fail(struct svb_results *R, enum svb_kind k, const char *what, int err)
{
	R->failed[k]++;
	fprintf(stderr, "supervise_bench: %s: %s: %s\n", svb_kind_name[k], what, strerror(-err));
}

static void record_stop(struct svb_results *R, struct contender *c, bool timed)
{
	char why[512];
	int64_t ns = 0;
	int r = c_stop(c, &ns, why, sizeof(why));

	R->stops[c->k]++;
	if (r == 0)
		R->clean[c->k]++;
	else
		fprintf(stderr, "supervise_bench: %s: stop: %s\n", svb_kind_name[c->k], why);
	if (timed)
		svb_add(&R->fleet_stop[c->k], (double)ns * 1e-9);
}

/* 24 agents: cold start, restarts of long-running agents, one crash right
 * after a restart. */
static void run_small(const struct svb_env *env, enum svb_kind k, unsigned seq,
		      struct svb_results *R)
{
	struct contender c;
	int64_t t0, t1;
	double ms;
	int r;

	r = c_prepare(&c, k, env, N_SMALL, seq);
	if (r >= 0)
		r = c_arm(&c);
	if (r < 0) {
		fail(R, k, "prepare", r);
		goto abandon;
	}
	t0 = bench_now_ns();
	r = c_start(&c);
	if (r >= 0)
		r = wait_all_ready(&c, N_SMALL, &t1);
	if (r < 0) {
		fail(R, k, "cold start", r);
		goto abandon;
	}
	svb_add(&R->cold[k], (double)(t1 - t0) * 1e-6);
	if (k == SVB_TIERD)
		svb_add(&R->tierd_sock, (double)(c.t.connected_ns - t0) * 1e-6);
	r = svb_sleep(env, t1 + LONG_RUN_NS - bench_now_ns());
	for (unsigned i = 0; r == 0 && i < N_KILLS; i++) {
		double ph[3];

		r = restart_one(&c, env, i, &ms, ph);
		if (r == 0)
			svb_add(&R->restart[k], ms);
		for (int p = 0; r == 0 && k == SVB_TIERD && p < 3; p++)
			if (ph[p] >= 0)
				svb_add(&R->tierd_phase[p], ph[p]);
		if (r == 0 && k == SVB_RUNIT)
			svb_add(&R->runit_exec, ph[0]);
		if (r == 0 && i + 1 < N_KILLS)
			r = svb_sleep(env, KILL_GAP_NS);
	}
	if (r == 0) {
		/* The last agent's replacement has just said it is ready. */
		r = restart_one(&c, env, N_KILLS - 1, &ms, NULL);
		if (r == 0)
			svb_add(&R->crash[k], ms);
	}
	if (r < 0) {
		fail(R, k, "restart", r);
		goto abandon;
	}
	record_stop(R, &c, false);
	return;
abandon:
	c_abandon(&c);
}

static void run_fleet(const struct svb_env *env, enum svb_kind k, unsigned n, unsigned seq,
		      struct svb_results *R)
{
	struct contender c;
	int64_t t0, t1;
	int r;

	r = c_prepare(&c, k, env, n, seq);
	if (r >= 0)
		r = c_arm(&c);
	if (r < 0) {
		fail(R, k, "prepare the fleet", r);
		c_abandon(&c);
		return;
	}
	t0 = bench_now_ns();
	r = c_start(&c);
	if (r >= 0)
		r = wait_all_ready(&c, n, &t1);
	if (r < 0) {
		fail(R, k, "fleet start", r);
		c_abandon(&c);
		return;
	}
	svb_add(&R->fleet_start[k], (double)(t1 - t0) * 1e-9);
	record_stop(R, &c, true);
}

/* All three side by side with 24 idle agents each: supervisor CPU over the
 * window. tierd's figure is its supervisor leaf's cpu.stat (its threads'
 * schedstat beside it); the baselines' is the schedstat of their scanner
 * and supervisor processes. */
static void run_idle(const struct svb_env *env, int idle_s, unsigned seq, struct svb_results *R)
{
	struct contender c[SVB_NKINDS];
	int64_t cpu0[SVB_NKINDS], cpu1[SVB_NKINDS], sched0 = 0, sched1 = 0, w0, w1, t;
	bool up[SVB_NKINDS] = { false };
	int r;

	for (int k = 0; k < SVB_NKINDS; k++) {
		if (!R->have[k])
			continue;
		r = c_prepare(&c[k], (enum svb_kind)k, env, N_SMALL, seq);
		if (r >= 0)
			r = c_arm(&c[k]);
		if (r >= 0)
			r = c_start(&c[k]);
		if (r >= 0)
			r = wait_all_ready(&c[k], N_SMALL, &t);
		if (r < 0) {
			fail(R, (enum svb_kind)k, "idle start", r);
			c_abandon(&c[k]);
			continue;
		}
		up[k] = true;
	}
	if (svb_sleep(env, IDLE_SETTLE_NS) < 0)
		goto stop_fleets;
	w0 = bench_now_ns();
	for (int k = 0; k < SVB_NKINDS; k++) {
		if (!up[k])
			continue;
		if (k == SVB_TIERD)
			svb_tierd_cpu(&c[k].t, &cpu0[k], &sched0);
		else
			cpu0[k] = svb_svd_cpu_ns(&c[k].d, &R->idle_nproc[k]);
	}
	if (svb_sleep(env, (int64_t)idle_s * SVB_SEC) < 0)
		goto stop_fleets;
	w1 = bench_now_ns();
	for (int k = 0; k < SVB_NKINDS; k++) {
		if (!up[k])
			continue;
		if (k == SVB_TIERD) {
			svb_tierd_cpu(&c[k].t, &cpu1[k], &sched1);
			R->idle_nproc[k] = 1;
			R->idle_sched_pct = (double)(sched1 - sched0) * 100.0 / (double)(w1 - w0);
		} else {
			cpu1[k] = svb_svd_cpu_ns(&c[k].d, &R->idle_nproc[k]);
		}
		if (cpu0[k] >= 0 && cpu1[k] >= 0) {
			R->idle_pct[k] = (double)(cpu1[k] - cpu0[k]) * 100.0 / (double)(w1 - w0);
			R->idle_ok[k] = true;
		}
	}
stop_fleets:
	for (int k = 0; k < SVB_NKINDS; k++)
		if (up[k])
			record_stop(R, &c[k], false);
}

/* ---- set-up and report ------------------------------------------------------ */

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
		if (access(buf, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

static int setup(struct svb_env *env)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int r;

	memset(env, 0, sizeof(*env));
	env->stop = &stop_flag;
	if (n <= 0)
		return -errno;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	*slash = 0;
	/* build/bench/supervise_bench: build/bench/agents/, build/tierd. */
	if (svb_path(env->agent, sizeof(env->agent), "%s/agents/trivial-agent", exe) < 0 ||
	    svb_path(env->tierd, sizeof(env->tierd), "%.*s/tierd", (int)(strrchr(exe, '/') - exe), exe) < 0)
		return -ENAMETOOLONG;
	if (access(env->agent, X_OK) < 0 || access(env->tierd, X_OK) < 0) {
		fprintf(stderr, "supervise_bench: %s or %s missing (make bench builds them)\n",
			env->agent, env->tierd);
		return -ENOENT;
	}
	r = svb_cg_mount(env->mount, sizeof(env->mount));
	if (r < 0) {
		fprintf(stderr, "supervise_bench: no cgroup2 mount\n");
		return r;
	}
	snprintf(env->top_rel, sizeof(env->top_rel), "svbench-%d", (int)getpid());
	snprintf(env->top, sizeof(env->top), "%s/%s", env->mount, env->top_rel);
	if (mkdir(env->top, 0755) < 0) {
		fprintf(stderr, "supervise_bench: mkdir %s: %m\n", env->top);
		return -errno;
	}
	snprintf(env->dir, sizeof(env->dir), "/tmp/svbench-XXXXXX");
	if (!mkdtemp(env->dir)) {
		r = -errno;
		rmdir(env->top);
		return r;
	}
	snprintf(env->svc, sizeof(env->svc), "%s/svc", env->dir);
	if (mkdir(env->svc, 0755) < 0 ||
	    mount("svbench", env->svc, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755") < 0) {
		r = -errno;
		fprintf(stderr, "supervise_bench: tmpfs on %s: %m\n", env->svc);
		svb_rm_rf(env->dir);
		rmdir(env->top);
		return r;
	}
	return 0;
}

static void teardown(const struct svb_env *env)
{
	svb_cg_kill(env->top, 10 * SVB_SEC);
	if (svb_cg_remove(env->top) < 0)
		fprintf(stderr, "supervise_bench: cannot remove %s: %m\n", env->top);
	if (umount2(env->svc, MNT_DETACH) < 0)
		fprintf(stderr, "supervise_bench: umount %s: %m\n", env->svc);
	/* BENCH_KEEP=1 keeps the configs and logs for a look afterwards. */
	if (getenv("BENCH_KEEP")) {
		rmdir(env->svc);
		fprintf(stderr, "supervise_bench: configs and logs kept in %s\n", env->dir);
		return;
	}
	svb_rm_rf(env->dir);
}

static double loadavg(void)
{
	char buf[64];
	ssize_t n = svb_read_file("/proc/loadavg", buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtod(buf, NULL);
}

/* All CPUs' time and the part the hypervisor stole (/proc/stat ticks). */
static void cpu_ticks(unsigned long long *ret_total, unsigned long long *ret_steal)
{
	unsigned long long v[8] = { 0 };
	char buf[256];
	ssize_t n = svb_read_file("/proc/stat", buf, sizeof(buf) - 1);

	*ret_total = *ret_steal = 0;
	if (n <= 0)
		return;
	buf[n] = 0;
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) != 8)
		return;
	for (int i = 0; i < 8; i++)
		*ret_total += v[i];
	*ret_steal = v[7];
}

int main(void)
{
	int reps = bench_reps(5), code = 1;
	unsigned seq = 0;
	const char *s;
	struct sigaction sa = { .sa_handler = on_signal };
	struct svb_results *R = calloc(1, sizeof(*R));
	unsigned long long tot0, tot1, steal0, steal1;
	bool installed[SVB_NKINDS];
	struct svb_env env;
	double load0;
	char mach[256];

	if (!R)
		return 1;
	if (reps > MAX_REPS)
		reps = MAX_REPS;
	R->n_small = N_SMALL;
	R->fleet = N_FLEET_DEFAULT;
	R->idle_s = IDLE_DEFAULT_S;
	R->long_run_s = (double)LONG_RUN_NS * 1e-9;
	s = getenv("BENCH_IDLE_S");
	if (s && atoi(s) > 0)
		R->idle_s = atoi(s);
	s = getenv("BENCH_FLEET");
	if (s && atoi(s) > 0)
		R->fleet = (unsigned)atoi(s);
	s = getenv("BENCH_POLL_US");
	if (s && atoi(s) >= 0)
		poll_all_ns = (int64_t)atoi(s) * 1000;
	s = getenv("BENCH_RESTART_POLL_US");
	if (s && atoi(s) >= 0)
		poll_one_ns = (int64_t)atoi(s) * 1000;
	/* Sleeps as short as asked: no 50 µs default slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		printf("supervise_bench: skipped: needs root (cgroups, a tmpfs)\n");
		code = 0;
		goto free_run;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	unsetenv("SVB_NOTIFY_FD");
	if (setup(&env) < 0)
		goto free_run;
	installed[SVB_TIERD] = true;
	installed[SVB_S6] = in_path("s6-svscan") && in_path("s6-supervise");
	installed[SVB_RUNIT] = in_path("runsvdir") && in_path("runsv");
	s = getenv("BENCH_ONLY");
	for (int k = 0; k < SVB_NKINDS; k++) {
		if (!installed[k])
			printf("supervise_bench: %s is not installed: NOT MEASURED (apt-get install %s)\n",
			       svb_kind_name[k], svb_kind_name[k]);
		R->have[k] = installed[k] && (!s || !*s || !strcmp(s, svb_kind_name[k]));
	}

	bench_machine(mach, sizeof(mach));
	load0 = loadavg();
	cpu_ticks(&tot0, &steal0);
	printf("supervision benchmark: %s\n", mach);
	printf("%d repetitions, interleaved tierd, s6, runit; the same trivial agent under all three;\n"
	       "medians and p90 of all samples; service directories on a tmpfs\n\n", reps);
	for (int rep = 0; rep < reps && !stop_flag; rep++) {
		fprintf(stderr, "  repetition %d/%d\n", rep + 1, reps);
		for (int k = 0; k < SVB_NKINDS && !stop_flag; k++)
			if (R->have[k])
				run_small(&env, (enum svb_kind)k, seq++, R);
		for (int k = 0; k < SVB_NKINDS && !stop_flag; k++)
			if (R->have[k])
				run_fleet(&env, (enum svb_kind)k, R->fleet, seq++, R);
	}
	if (!stop_flag && R->have[SVB_TIERD]) {
		fprintf(stderr, "  repetition: sandbox spawn cost\n");
		svb_sandbox_run(&env, SANDBOX_SPAWNS);
	}
	if (!stop_flag) {
		fprintf(stderr, "  repetition: idle CPU for %d s\n", R->idle_s);
		run_idle(&env, R->idle_s, seq++, R);
	}
	cpu_ticks(&tot1, &steal1);
	teardown(&env);
	if (stop_flag) {
		fprintf(stderr, "supervise_bench: interrupted; everything it started is stopped\n");
		goto free_run;
	}
	svb_report(R);
	printf("load average (1 min) before the run %.2f; CPU time stolen by the hypervisor during "
	       "the run %.2f %%\n", load0,
	       tot1 > tot0 ? (double)(steal1 - steal0) * 100.0 / (double)(tot1 - tot0) : 0.0);
	code = 0;
free_run:
	free(R);
	return code;
}
