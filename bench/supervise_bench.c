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
 *
 * Readiness: tierd — the agent's HELLO accepted (state "ready"), read over
 * one persistent control connection; s6 — the agent's line on its
 * notification-fd, read from supervise/status as s6-svstat does; runit (no
 * readiness protocol) — runsv's supervise/status saying "run" with the new
 * pid, as sv does. Every poll loop is the same: one poll (a control request
 * for tierd, status file reads for the others), sched_yield(), again.
 *
 * Needs root (cgroups, a tmpfs). Knobs: BENCH_REPS (default 5),
 * BENCH_IDLE_S (default 60), BENCH_FLEET (default 1000).
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
#include "svb_svdir.h"
#include "svb_tierd.h"
#include "svb_util.h"

#define N_SMALL            24
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

enum kind { K_TIERD, K_S6, K_RUNIT, K_N };
static const char *const kind_name[K_N] = { "tierd", "s6", "runit" };

static volatile sig_atomic_t stop_flag;
/* Pause between two polls: 0 = sched_yield() (a busy poll that lets
 * anything runnable on this CPU go first), else a sleep of that many µs. */
static int64_t poll_ns;

struct contender {
	enum kind        k;
	struct svb_tierd t;
	struct svb_svd   d;
};

struct series {
	double v[MAX_REPS * N_KILLS];
	int    n;
};

struct results {
	bool          have[K_N];
	struct series cold[K_N], restart[K_N], crash[K_N], fleet[K_N], stop[K_N];
	struct series tierd_sock, tierd_phase[3];
	int           clean[K_N], stops[K_N], failed[K_N];
	double        idle_pct[K_N], idle_sched_pct;
	unsigned      idle_nproc[K_N];
	bool          idle_ok[K_N];
};

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void add(struct series *s, double v)
{
	if ((size_t)s->n < sizeof(s->v) / sizeof(s->v[0]))
		s->v[s->n++] = v;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const struct series *s, double q)
{
	double v[sizeof(s->v) / sizeof(s->v[0])];
	size_t i;

	if (!s->n)
		return 0;
	memcpy(v, s->v, sizeof(double) * (size_t)s->n);
	qsort(v, (size_t)s->n, sizeof(double), cmp_dbl);
	if (q == 0.5 && s->n % 2 == 0)
		return (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
	i = (size_t)(q * (double)(s->n - 1) + 0.5);
	return v[i];
}

/* ---- one contender, whichever it is -------------------------------------- */

static int c_prepare(struct contender *c, enum kind k, const struct svb_env *env, unsigned n,
		     unsigned seq)
{
	c->k = k;
	if (k == K_TIERD)
		return svb_tierd_prepare(&c->t, env, n, seq);
	return svb_svd_prepare(&c->d, k == K_S6 ? SVB_SVD_S6 : SVB_SVD_RUNIT, env, n, seq);
}

static int c_start(struct contender *c)
{
	return c->k == K_TIERD ? svb_tierd_start(&c->t) : svb_svd_start(&c->d);
}

static int c_ready_count(struct contender *c)
{
	return c->k == K_TIERD ? svb_tierd_ready_count(&c->t) : svb_svd_ready_count(&c->d);
}

static pid_t c_agent_pid(struct contender *c, unsigned i)
{
	int r;

	if (c->k != K_TIERD)
		return svb_svd_ready_pid(&c->d, i);
	r = svb_tierd_agents(&c->t);
	return r < 0 ? r : c->t.pids[i];
}

static int c_mark(struct contender *c)
{
	return c->k == K_TIERD ? svb_tierd_mark(&c->t) : 0;
}

/* 1 once agent i's replacement of old is ready. */
static int c_replaced(struct contender *c, unsigned i, pid_t old)
{
	pid_t p;

	if (c->k == K_TIERD)
		return svb_tierd_ready_since_mark(&c->t, i);
	p = svb_svd_ready_pid(&c->d, i);
	return p < 0 ? p : p > 0 && p != old;
}

static int c_stop(struct contender *c, int64_t *ret_ns, char *why, size_t whylen)
{
	if (c->k == K_TIERD)
		return svb_tierd_stop(&c->t, STOP_TIMEOUT_NS, ret_ns, why, whylen);
	return svb_svd_stop(&c->d, STOP_TIMEOUT_NS, ret_ns, why, whylen);
}

static void c_abandon(struct contender *c)
{
	if (c->k == K_TIERD)
		svb_tierd_abandon(&c->t);
	else
		svb_svd_abandon(&c->d);
}

/* ---- measurements --------------------------------------------------------- */

static void poll_pause(void)
{
	struct timespec ts = { 0, (long)poll_ns };

	if (poll_ns)
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
		poll_pause();
	}
}

/* SIGKILL agent i and time until its replacement is ready; for tierd,
 * where the time went (phases, when not NULL). */
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
		poll_pause();
	}
	if (r < 0)
		return r;
	*ret_ms = (double)(bench_now_ns() - t0) * 1e-6;
	if (phases && c->k == K_TIERD &&
	    svb_tierd_restart_phases(&c->t, i, (int64_t)rt.tv_sec * SVB_SEC + rt.tv_nsec, phases) < 0)
		phases[0] = phases[1] = phases[2] = -1;
	now = c_agent_pid(c, i);
	return now > 0 && now != old ? 0 : -ESRCH;
}

static void fail(struct results *R, enum kind k, const char *what, int err)
{
	R->failed[k]++;
	fprintf(stderr, "supervise_bench: %s: %s: %s\n", kind_name[k], what, strerror(-err));
}

static void record_stop(struct results *R, struct contender *c, bool timed)
{
	char why[512];
	int64_t ns = 0;
	int r = c_stop(c, &ns, why, sizeof(why));

	R->stops[c->k]++;
	if (r == 0)
		R->clean[c->k]++;
	else
		fprintf(stderr, "supervise_bench: %s: stop: %s\n", kind_name[c->k], why);
	if (timed)
		add(&R->stop[c->k], (double)ns * 1e-9);
}

/* 24 agents: cold start, restarts of long-running agents, one crash right
 * after a restart. */
static void run_small(const struct svb_env *env, enum kind k, unsigned seq, struct results *R)
{
	struct contender c;
	int64_t t0, t1;
	double ms;
	int r;

	r = c_prepare(&c, k, env, N_SMALL, seq);
	if (r < 0) {
		fail(R, k, "prepare", r);
		c_abandon(&c);
		return;
	}
	t0 = bench_now_ns();
	r = c_start(&c);
	if (r >= 0)
		r = wait_all_ready(&c, N_SMALL, &t1);
	if (r < 0) {
		fail(R, k, "cold start", r);
		goto abandon;
	}
	add(&R->cold[k], (double)(t1 - t0) * 1e-6);
	if (k == K_TIERD)
		add(&R->tierd_sock, (double)(c.t.connected_ns - t0) * 1e-6);
	r = svb_sleep(env, t1 + LONG_RUN_NS - bench_now_ns());
	for (unsigned i = 0; r == 0 && i < N_KILLS; i++) {
		double ph[3];

		r = restart_one(&c, env, i, &ms, ph);
		if (r == 0)
			add(&R->restart[k], ms);
		for (int p = 0; r == 0 && k == K_TIERD && p < 3; p++)
			if (ph[p] >= 0)
				add(&R->tierd_phase[p], ph[p]);
		if (r == 0 && i + 1 < N_KILLS)
			r = svb_sleep(env, KILL_GAP_NS);
	}
	if (r == 0) {
		/* The last agent's replacement has just said it is ready. */
		r = restart_one(&c, env, N_KILLS - 1, &ms, NULL);
		if (r == 0)
			add(&R->crash[k], ms);
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

static void run_fleet(const struct svb_env *env, enum kind k, unsigned n, unsigned seq,
		      struct results *R)
{
	struct contender c;
	int64_t t0, t1;
	int r;

	r = c_prepare(&c, k, env, n, seq);
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
	add(&R->fleet[k], (double)(t1 - t0) * 1e-9);
	record_stop(R, &c, true);
}

/* All three side by side with 24 idle agents each: supervisor CPU over the
 * window. tierd's figure is its supervisor leaf's cpu.stat (its threads'
 * schedstat beside it); the baselines' is the schedstat of their scanner
 * and supervisor processes. */
static void run_idle(const struct svb_env *env, int idle_s, unsigned seq, struct results *R)
{
	struct contender c[K_N];
	int64_t cpu0[K_N], cpu1[K_N], sched0 = 0, sched1 = 0, w0, w1, t;
	bool up[K_N] = { false };
	int r;

	for (int k = 0; k < K_N; k++) {
		if (!R->have[k])
			continue;
		r = c_prepare(&c[k], (enum kind)k, env, N_SMALL, seq);
		if (r >= 0)
			r = c_start(&c[k]);
		if (r >= 0)
			r = wait_all_ready(&c[k], N_SMALL, &t);
		if (r < 0) {
			fail(R, (enum kind)k, "idle start", r);
			c_abandon(&c[k]);
			continue;
		}
		up[k] = true;
	}
	if (svb_sleep(env, IDLE_SETTLE_NS) < 0)
		goto out;
	w0 = bench_now_ns();
	for (int k = 0; k < K_N; k++) {
		if (!up[k])
			continue;
		if (k == K_TIERD)
			svb_tierd_cpu(&c[k].t, &cpu0[k], &sched0);
		else
			cpu0[k] = svb_svd_cpu_ns(&c[k].d, &R->idle_nproc[k]);
	}
	if (svb_sleep(env, (int64_t)idle_s * SVB_SEC) < 0)
		goto out;
	w1 = bench_now_ns();
	for (int k = 0; k < K_N; k++) {
		if (!up[k])
			continue;
		if (k == K_TIERD) {
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
out:
	for (int k = 0; k < K_N; k++)
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

static void row(const char *name, const struct series *s, const char *unit, double scale)
{
	if (!s->n) {
		printf("  %-44s %10s\n", name, "failed");
		return;
	}
	printf("  %-44s %10.3f %10.3f %s  (n=%d)\n", name, pct(s, 0.5) * scale, pct(s, 0.9) * scale,
	       unit, s->n);
}

static double faster(const struct results *R, const struct series *s)
{
	double best = 0;

	for (int k = K_S6; k < K_N; k++)
		if (R->have[k] && s[k].n && (best == 0 || pct(&s[k], 0.5) < best))
			best = pct(&s[k], 0.5);
	return best;
}

static int report(const struct results *R, unsigned fleet, int idle_s)
{
	char name[96];
	int met = 0, total = 0;
	double b;

	printf("cold start, %d agents to all ready          median        p90\n", N_SMALL);
	for (int k = 0; k < K_N; k++)
		if (R->have[k])
			row(kind_name[k], &R->cold[k], "ms", 1);
	row("  tierd: its control socket answering", &R->tierd_sock, "ms", 1);
	printf("restart: SIGKILL of an agent up >= %.1f s to its replacement ready\n",
	       (double)LONG_RUN_NS * 1e-9);
	for (int k = 0; k < K_N; k++)
		if (R->have[k])
			row(kind_name[k], &R->restart[k], "ms", 1);
	row("  tierd, its journal: exit seen", &R->tierd_phase[0], "ms", 1);
	row("  tierd, its journal: replacement spawned", &R->tierd_phase[1], "ms", 1);
	row("  tierd, its journal: replacement ready", &R->tierd_phase[2], "ms", 1);
	printf("crash right after a restart: SIGKILL to the next replacement ready\n");
	for (int k = 0; k < K_N; k++) {
		static const char *const why[K_N] = {
			"tierd (2nd death: backoff 100 ms)", "s6 (1 s floor since the last start)",
			"runit (1 s floor since the last start)",
		};

		if (R->have[k])
			row(why[k], &R->crash[k], "ms", 1);
	}
	printf("fleet: %u agents to all ready\n", fleet);
	for (int k = 0; k < K_N; k++)
		if (R->have[k])
			row(kind_name[k], &R->fleet[k], "s", 1);
	printf("fleet: stop until nothing is left (stopped clean / stops, all runs)\n");
	for (int k = 0; k < K_N; k++) {
		if (!R->have[k])
			continue;
		snprintf(name, sizeof(name), "%s (clean %d/%d)", kind_name[k], R->clean[k],
			 R->stops[k]);
		row(name, &R->stop[k], "s", 1);
	}
	printf("supervisor CPU, %d s, %d idle agents each, side by side (%% of one core)\n",
	       idle_s, N_SMALL);
	for (int k = 0; k < K_N; k++) {
		static const char *const what[K_N] = {
			"tierd: supervisor leaf cpu.stat", "s6: s6-svscan + s6-supervise",
			"runit: runsvdir + runsv",
		};

		if (!R->have[k])
			continue;
		if (!R->idle_ok[k]) {
			printf("  %-44s %10s\n", what[k], "failed");
			continue;
		}
		printf("  %-44s %10.4f %%  (%u processes)\n", what[k], R->idle_pct[k], R->idle_nproc[k]);
		if (k == K_TIERD)
			printf("  %-44s %10.4f %%\n", "tierd: its threads' schedstat", R->idle_sched_pct);
	}
	for (int k = 0; k < K_N; k++)
		if (R->failed[k])
			printf("  %s: %d measurements failed (see stderr)\n", kind_name[k], R->failed[k]);

	printf("\nratios (same run)\n");
	b = faster(R, R->cold);
	total++;
	if (b > 0 && R->cold[K_TIERD].n)
		met += bench_ratio("cold start: faster baseline / tierd", b / pct(&R->cold[K_TIERD], 0.5),
				   ">=", 2);
	else
		printf("  %-44s %8s\n", "cold start: faster baseline / tierd", "n/a  MISS");
	total += 2;
	if (R->restart[K_TIERD].n)
		met += bench_ratio("restart: tierd median (ms)", pct(&R->restart[K_TIERD], 0.5), "<=", 1);
	else
		printf("  %-44s %8s\n", "restart: tierd median (ms)", "n/a  MISS");
	b = faster(R, R->restart);
	if (b > 0 && R->restart[K_TIERD].n)
		met += bench_ratio("restart: tierd / faster baseline", pct(&R->restart[K_TIERD], 0.5) / b,
				   "<=", 1);
	else
		printf("  %-44s %8s\n", "restart: tierd / faster baseline", "n/a  MISS");
	total += 2;
	if (R->fleet[K_TIERD].n)
		met += bench_ratio("fleet: tierd all ready (s)", pct(&R->fleet[K_TIERD], 0.5), "<=", 0.5);
	else
		printf("  %-44s %8s\n", "fleet: tierd all ready (s)", "n/a  MISS");
	b = faster(R, R->fleet);
	if (b > 0 && R->fleet[K_TIERD].n)
		printf("  %-44s %8.3f   (no target)\n", "fleet: tierd / faster baseline",
		       pct(&R->fleet[K_TIERD], 0.5) / b);
	met += bench_ratio("fleet: tierd stopped clean (share of stops)",
			   R->stops[K_TIERD] ? (double)R->clean[K_TIERD] / R->stops[K_TIERD] : 0, ">=", 1);
	total++;
	if (R->idle_ok[K_TIERD])
		met += bench_ratio("idle: tierd CPU (% of a core)", R->idle_pct[K_TIERD], "<=", 0.1);
	else
		printf("  %-44s %8s\n", "idle: tierd CPU (% of a core)", "n/a  MISS");
	printf("\ntargets met: %d of %d\n", met, total);
	return 0;
}

int main(void)
{
	int reps = bench_reps(5), idle_s = IDLE_DEFAULT_S;
	unsigned fleet = N_FLEET_DEFAULT, seq = 0;
	const char *s = getenv("BENCH_IDLE_S");
	struct sigaction sa = { .sa_handler = on_signal };
	struct results *R = calloc(1, sizeof(*R));
	struct svb_env env;
	double load0, load1;
	char mach[256];
	int r;

	if (!R)
		return 1;
	if (reps > MAX_REPS)
		reps = MAX_REPS;
	if (s && atoi(s) > 0)
		idle_s = atoi(s);
	s = getenv("BENCH_POLL_US");
	if (s && atoi(s) >= 0)
		poll_ns = (int64_t)atoi(s) * 1000;
	/* Sleeps as short as asked: no 50 µs default slack. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	s = getenv("BENCH_FLEET");
	if (s && atoi(s) > 0)
		fleet = (unsigned)atoi(s);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		printf("supervise_bench: skipped: needs root (cgroups, a tmpfs)\n");
		return 0;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	unsetenv("SVB_NOTIFY_FD");
	r = setup(&env);
	if (r < 0)
		return 1;
	R->have[K_TIERD] = true;
	R->have[K_S6] = in_path("s6-svscan") && in_path("s6-supervise");
	R->have[K_RUNIT] = in_path("runsvdir") && in_path("runsv");
	for (int k = K_S6; k < K_N; k++)
		if (!R->have[k])
			printf("supervise_bench: %s is not installed: NOT MEASURED (apt-get install %s)\n",
			       kind_name[k], kind_name[k]);

	bench_machine(mach, sizeof(mach));
	load0 = loadavg();
	printf("supervision benchmark: %s\n", mach);
	printf("%d repetitions, interleaved tierd, s6, runit; the same trivial agent under all three;\n"
	       "medians and p90 of all samples; service directories on a tmpfs\n\n", reps);
	for (int rep = 0; rep < reps && !stop_flag; rep++) {
		fprintf(stderr, "  repetition %d/%d\r", rep + 1, reps);
		for (int k = 0; k < K_N && !stop_flag; k++)
			if (R->have[k])
				run_small(&env, (enum kind)k, seq++, R);
		for (int k = 0; k < K_N && !stop_flag; k++)
			if (R->have[k])
				run_fleet(&env, (enum kind)k, fleet, seq++, R);
	}
	if (!stop_flag) {
		fprintf(stderr, "  repetition: idle CPU for %d s   \r", idle_s);
		run_idle(&env, idle_s, seq++, R);
	}
	fprintf(stderr, "%40s\r", "");
	load1 = loadavg();
	teardown(&env);
	if (stop_flag) {
		fprintf(stderr, "supervise_bench: interrupted; everything it started is stopped\n");
		return 1;
	}
	report(R, fleet, idle_s);
	printf("load average (1 min) before %.2f, after %.2f\n", load0, load1);
	free(R);
	return 0;
}
