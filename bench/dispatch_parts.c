/* SPDX-License-Identifier: MIT */
/*
 * The parts of the dispatch benchmark (dispatch_bench.c has the set-up and
 * the order): 1 dispatch, 2 the full-team workflow, 3 agentd, 4 parallel
 * efficiency. Each measures one repetition into the figures.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "dispatch_bench.h"
#include "dispatch_futex.h"
#include "dispatch_pool.h"
#include "dispatch_stdio.h"
#include "dispatch_zmq.h"

#define MAX_BATCHES 64

static double jnum(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

const char *const disp_contender_name[NC] = {
	"tierd inside (bench-dispatch)", "tierd, external client (socket)",
	"(a) ZeroMQ LRU broker, REQ workers", "(b) ZeroMQ PUSH/PULL + collector",
	"(c) pipe pool, pipelined, batched",
};

uint64_t disp_scaled(const struct disp_bench *B, uint64_t n)
{
	uint64_t v = (uint64_t)((double)n * B->scale);

	return v ? v : 1;
}

void disp_fail(struct disp_bench *B, const char *what, int err)
{
	B->f.failures++;
	fprintf(stderr, "dispatch_bench: %s failed: %s\n", what, strerror(err < 0 ? -err : err));
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double dpct(double *v, int n, double q)
{
	int i = (int)(q * (n - 1) + 0.5);

	qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
	return n ? v[i < n ? i : n - 1] : 0;
}

/* ---- 1. dispatch ---------------------------------------------------------------- */

static struct disp_load load_of(const struct disp_bench *B, enum disp_contender c, enum disp_loadkind l)
{
	/* Task counts sized for ~0.2-1 s each here; cold loads are gap-bound. */
	static const uint64_t tput[NC] = { 200000, 100000, 40000, 200000, 1000000 };
	static const uint64_t hot[NC] = { 20000, 5000, 2000, 5000, 10000 };
	struct disp_load ld = { .tier = 3, .type = "noop" };

	switch (l) {
	case L_TPUT:
		ld.n = disp_scaled(B, tput[c]);
		ld.window = B->window;
		break;
	case L_HOT:
		ld.n = disp_scaled(B, hot[c]);
		ld.window = 1;
		break;
	default:
		ld.n = disp_scaled(B, 400);
		ld.window = 1;
		ld.gap_ns = DISP_COLD_GAP_NS;
		break;
	}
	return ld;
}

int disp_bench_dispatch(struct disp_tierd *t, const char *agent, int tier, const struct disp_load *ld,
			struct disp_result *ret)
{
	json_t *args = json_pack("{s:I, s:I, s:I, s:i, s:s}", "n", (json_int_t)ld->n, "window",
				 (json_int_t)ld->window, "gap_us", (json_int_t)(ld->gap_ns / 1000),
				 "payload_len", 64, "type", ld->type[0] ? ld->type : "noop");
	char err[256];
	json_t *r;

	if (agent)
		json_object_set_new(args, "agent", json_string(agent));
	else
		json_object_set_new(args, "tier", json_integer(tier));
	r = disp_tierd_call(t, "bench-dispatch", args, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "dispatch_bench: %s\n", err);
		return -EIO;
	}
	memset(ret, 0, sizeof(*ret));
	ret->tasks = (uint64_t)jnum(r, "tasks");
	ret->failed = (uint64_t)jnum(r, "failed");
	ret->seconds = jnum(r, "seconds");
	/* Tasks that ended ok: bench-dispatch's own tasks_per_s counts the
	 * ones tierd refused (a window past its queues) as done. */
	ret->tasks_per_s = ret->seconds > 0 ? (double)(ret->tasks - ret->failed) / ret->seconds : 0;
	ret->p50_us = jnum(r, "p50_us");
	ret->p90_us = jnum(r, "p90_us");
	ret->p99_us = jnum(r, "p99_us");
	ret->disp_cpu_ns = jnum(r, "cpu_ns_per_task");
	ret->client_cpu_ns = -1;
	json_decref(r);
	if (ret->failed)
		fprintf(stderr, "dispatch_bench: bench-dispatch: %llu of %llu tasks failed\n",
			(unsigned long long)ret->failed, (unsigned long long)ret->tasks);
	return 0;
}

/* The external client's load, with tierd's own CPU from its cgroup. */
static int tierd_external(struct disp_bench *B, const struct disp_load *ld, struct disp_result *ret)
{
	char cg[600];
	int64_t u0, u1;
	int r;

	disp_tierd_cg(&B->a, "supervisor", cg, sizeof(cg));
	u0 = disp_cg_usage_usec(cg);
	r = disp_proc_run(&B->client, ld, ret);
	u1 = disp_cg_usage_usec(cg);
	if (r < 0)
		return r;
	ret->disp_cpu_ns = u0 >= 0 && u1 >= 0 ? (double)(u1 - u0) * 1000.0 / (double)ret->tasks : -1;
	return 0;
}

void disp_part_dispatch(struct disp_bench *B, enum disp_contender c, int rep)
{
	/* Latency first, throughput last, each after a pause: the scheduler's
	 * load tracking (PELT, ~32 ms half-life) of a saturating load moves
	 * where the next wakes land. */
	static const enum disp_loadkind order[NL] = { L_COLD, L_HOT, L_TPUT };
	struct disp_pool_arg pa = { .worker = B->p.pipe_worker, .nworkers = DISP_NW };
	struct disp_zmq z;
	struct disp_proc pool;
	int r = 0;

	if (c == C_LRU || c == C_PUSH)
		r = disp_zmq_start(&z, c == C_LRU ? DISP_ZMQ_LRU : DISP_ZMQ_PUSH, B->p.dir, B->p.zmq_worker,
				   DISP_NW);
	else if (c == C_POOL)
		r = disp_proc_start(&pool, &disp_pool_ops, &pa);
	if (r < 0) {
		disp_fail(B, disp_contender_name[c], r);
		return;
	}
	for (int k = 0; k < NL; k++) {
		enum disp_loadkind l = order[k];
		struct disp_load ld = load_of(B, c, l);
		struct disp_result *res = &B->f.r[c][l][rep];

		disp_sleep_ns(DISP_SETTLE_NS);
		switch (c) {
		case C_IN:
			r = disp_bench_dispatch(&B->a, NULL, 3, &ld, res);
			break;
		case C_EXT:
			r = tierd_external(B, &ld, res);
			break;
		case C_LRU:
		case C_PUSH:
			r = disp_zmq_measure(&z, &ld, res);
			break;
		default:
			r = disp_proc_run(&pool, &ld, res);
			break;
		}
		if (r < 0)
			disp_fail(B, disp_contender_name[c], r);
		else if (res->failed)
			disp_fail(B, disp_contender_name[c], EIO);
	}
	if (c == C_LRU || c == C_PUSH)
		disp_zmq_stop(&z);
	else if (c == C_POOL)
		disp_proc_stop(&pool);
}

/* ---- 2. workflow ------------------------------------------------------------- */

/* The sequential steps of a run (tier 1, tier 2, each tier-3 batch, tier
 * 4), the slowest agent of each and how many tasks each had, from the
 * aggregate's "results". */
struct steps {
	double max_run_ms[5][MAX_BATCHES];
	int    tasks[5][MAX_BATCHES];
	int    n;
	bool   all_ok;
};

static void run_steps(json_t *agg, struct steps *s)
{
	json_t *res = json_object_get(agg, "results"), *x;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->all_ok = json_array_size(res) > 0;
	json_array_foreach(res, i, x) {
		int tier = (int)json_integer_value(json_object_get(x, "tier"));
		int batch = (int)json_integer_value(json_object_get(x, "batch"));  /* tier 3 only */
		double ms = jnum(x, "run_ms");

		s->all_ok &= !strcmp(json_string_value(json_object_get(x, "status")) ?: "", "ok");
		if (tier < 1 || tier > 4 || batch < 0 || batch >= MAX_BATCHES)
			continue;
		if (!s->tasks[tier][batch]++)
			s->n++;
		if (ms > s->max_run_ms[tier][batch])
			s->max_run_ms[tier][batch] = ms;
	}
}

static double steps_sum_ms(const struct steps *s)
{
	double sum = 0;

	for (int t = 1; t <= 4; t++)
		for (int b = 0; b < MAX_BATCHES; b++)
			sum += s->max_run_ms[t][b];
	return sum;
}

/* The best efficiency the shape allows with equal tasks: a step of k tasks
 * on c CPUs lasts at least max(1, k / c) task times (tier 1 alone leaves a
 * CPU idle). */
static double steps_bound(const struct steps *s, int cpus)
{
	double busy = 0, wall = 0;

	for (int t = 1; t <= 4; t++)
		for (int b = 0; b < MAX_BATCHES; b++)
			if (s->tasks[t][b]) {
				busy += s->tasks[t][b];
				wall += s->tasks[t][b] > cpus ? (double)s->tasks[t][b] / cpus : 1;
			}
	return wall > 0 ? busy / (wall * cpus) : 0;
}

static json_t *run_args(const char *type, const char *payload)
{
	return json_pack("{s:s, s:s, s:i, s:i}", "type", type, "payload", payload, "stagger_ms", 0,
			 "batch_size", 4);
}

/* CPU of the team's four tiers, usec. */
static int64_t tiers_usec(const struct disp_tierd *t)
{
	int64_t sum = 0;

	for (int i = 1; i <= 4; i++) {
		char sub[16], cg[600];
		int64_t u;

		snprintf(sub, sizeof(sub), "tier%d", i);
		disp_tierd_cg(t, sub, cg, sizeof(cg));
		u = disp_cg_usage_usec(cg);
		sum += u > 0 ? u : 0;
	}
	return sum;
}

static void futex_refs(struct disp_bench *B, int rep)
{
	struct disp_result fx = { 0 };
	int r;

	r = disp_futex_rt(disp_scaled(B, 1000), 200 * 1000, true, &fx);
	if (r < 0)
		disp_fail(B, "futex round trip (2 CPUs)", r);
	B->f.fx50[rep] = fx.p50_us;
	B->f.fx99[rep] = fx.p99_us;
	r = disp_futex_rt(disp_scaled(B, 1000), 200 * 1000, false, &fx);
	if (r < 0)
		disp_fail(B, "futex round trip (unpinned)", r);
	B->f.fxu50[rep] = fx.p50_us;
	B->f.fxu99[rep] = fx.p99_us;
}

/* No-op runs: latency, and overhead per step. */
static void workflow_noop(struct disp_bench *B, int rep)
{
	static double rt[DISP_WF_MAX_RUNS], wall[DISP_WF_MAX_RUNS], ovh[DISP_WF_MAX_RUNS];
	int runs = (int)disp_scaled(B, DISP_WF_RUNS);
	char payload[65], err[256];
	struct steps s;

	if (runs > DISP_WF_MAX_RUNS)
		runs = DISP_WF_MAX_RUNS;
	memset(payload, 'x', 64);
	payload[64] = 0;
	for (int k = 0; k < runs; k++) {
		json_t *agg;
		int64_t ns;

		agg = disp_tierd_call_timed(&B->b, "run", run_args("noop", payload), &ns, err, sizeof(err));
		if (!agg) {
			disp_fail(B, err, EIO);
			return;
		}
		run_steps(agg, &s);
		if (!s.all_ok)
			disp_fail(B, "a workflow run (tasks not ok)", EIO);
		rt[k] = (double)ns * 1e-6;
		wall[k] = jnum(agg, "wall_ms");
		ovh[k] = (wall[k] - steps_sum_ms(&s)) * 1000.0 / s.n;
		B->f.wf_steps[rep] = s.n;
		json_decref(agg);
	}
	B->f.wf_rt50[rep] = dpct(rt, runs, 0.5);
	B->f.wf_rt99[rep] = dpct(rt, runs, 0.99);
	B->f.wf_wall50[rep] = dpct(wall, runs, 0.5);
	B->f.wf_wall99[rep] = dpct(wall, runs, 0.99);
	B->f.wf_ovh50[rep] = dpct(ovh, runs, 0.5);
	B->f.wf_ovh99[rep] = dpct(ovh, runs, 0.99);
}

/* CPU-bound runs: the aggregate's "efficiency", the bound the shape sets,
 * and CPU time from the tiers' cgroups over the same runs. */
static void workflow_burn(struct disp_bench *B, int rep)
{
	int runs = (int)disp_scaled(B, 3);
	int64_t u0, u1, s0, s1, t0, t1;
	double eff = 0, bound = 0;
	char payload[16], err[256];
	struct steps s;

	snprintf(payload, sizeof(payload), "%d", DISP_BURN_MS);
	s0 = disp_steal_ns();
	u0 = tiers_usec(&B->b);
	t0 = bench_now_ns();
	for (int k = 0; k < runs; k++) {
		json_t *agg = disp_tierd_call(&B->b, "run", run_args("burn", payload), err, sizeof(err));

		if (!agg) {
			disp_fail(B, err, EIO);
			return;
		}
		run_steps(agg, &s);
		if (!s.all_ok)
			disp_fail(B, "a workflow run (tasks not ok)", EIO);
		eff += jnum(agg, "efficiency");
		bound = steps_bound(&s, (int)jnum(agg, "cores"));
		json_decref(agg);
	}
	t1 = bench_now_ns();
	u1 = tiers_usec(&B->b);
	s1 = disp_steal_ns();
	B->f.wfb_eff[rep] = eff / runs;
	B->f.wfb_bound[rep] = bound;
	B->f.wfb_wall[rep] = (double)(t1 - t0) * 1e-6 / runs;
	B->f.wfb_cpu_eff[rep] = (double)(u1 - u0) * 1000.0 /
				((double)(t1 - t0) * B->ncpus - (double)(s1 - s0));
}

void disp_part_workflow(struct disp_bench *B, int rep)
{
	futex_refs(B, rep);
	disp_sleep_ns(DISP_SETTLE_NS);
	workflow_noop(B, rep);
	disp_sleep_ns(DISP_SETTLE_NS);
	workflow_burn(B, rep);
}

/* ---- 3. agentd ------------------------------------------------------------- */

void disp_part_agentd(struct disp_bench *B, int rep)
{
	/* The same window for agentd (its own pipeline is 64 by default) and
	 * the direct driver; exec mode runs one process at a time. */
	struct disp_load st = { .n = disp_scaled(B, 40000), .window = 64, .type = "noop" };
	struct disp_load ex = { .n = disp_scaled(B, 300), .window = 4, .type = "noop" };
	struct disp_load dir = { .n = disp_scaled(B, 200000), .window = 64, .type = "noop" };
	struct disp_result res;
	int r;

	if (B->have_agentd) {
		disp_sleep_ns(DISP_SETTLE_NS);
		r = disp_bench_dispatch(&B->c, "echo-stdio", 0, &st, &res);
		if (r < 0 || res.failed)
			disp_fail(B, "agentd stdio", r < 0 ? r : EIO);
		B->f.ag_stdio[rep] = r < 0 ? 0 : res.tasks_per_s;
		r = disp_bench_dispatch(&B->c, "echo-exec", 0, &ex, &res);
		if (r < 0 || res.failed)
			disp_fail(B, "agentd exec", r < 0 ? r : EIO);
		B->f.ag_exec[rep] = r < 0 ? 0 : res.tasks_per_s;
	}
	disp_sleep_ns(DISP_SETTLE_NS);
	memset(&res, 0, sizeof(res));
	r = disp_stdio_direct(B->p.echo_json, &dir, &res);
	if (r < 0 || res.failed)
		disp_fail(B, "direct pipe driver", r < 0 ? r : EIO);
	B->f.ag_direct[rep] = res.tasks_per_s;
	memset(&res, 0, sizeof(res));
	r = disp_xargs(B->p.echo_json, B->p.dir, disp_scaled(B, 600), 2, &res);
	if (r < 0)
		disp_fail(B, "xargs", r);
	B->f.ag_xargs[rep] = res.tasks_per_s;
}

/* ---- 4. parallel efficiency --------------------------------------------------- */

/* Burn tasks to tier 3 through the external client, two per agent in
 * flight so none waits for its next task; agent CPU from the tier's
 * cgroup. (bench-dispatch would keep the client out, but it fills payloads
 * with 'x', and "burn" reads its milliseconds from the payload.) */
void disp_part_efficiency(struct disp_bench *B, int rep)
{
	struct disp_load ld = { .n = disp_scaled(B, 720), .window = 2 * DISP_NW, .tier = 3, .type = "burn" };
	struct disp_result res = { 0 };
	int64_t u0, u1, s0, s1, t0, t1;
	char cg[600];
	int r;

	snprintf(ld.payload, sizeof(ld.payload), "%d", DISP_BURN_MS);
	disp_tierd_cg(&B->a, "tier3", cg, sizeof(cg));
	disp_sleep_ns(DISP_SETTLE_NS);
	s0 = disp_steal_ns();
	u0 = disp_cg_usage_usec(cg);
	t0 = bench_now_ns();
	r = disp_proc_run(&B->client, &ld, &res);
	t1 = bench_now_ns();
	u1 = disp_cg_usage_usec(cg);
	s1 = disp_steal_ns();
	if (r < 0 || u0 < 0 || u1 < 0 || res.failed) {
		disp_fail(B, "burn stream", r < 0 ? r : EIO);
		return;
	}
	B->f.eff_wall[rep] = (double)(t1 - t0) * 1e-9;
	B->f.eff_cpu[rep] = (double)(u1 - u0) * 1e-6;
	B->f.eff_steal[rep] = (double)(s1 - s0) * 1e-9;
	B->f.eff[rep] = B->f.eff_cpu[rep] / (B->f.eff_wall[rep] * B->ncpus - B->f.eff_steal[rep]);
}
