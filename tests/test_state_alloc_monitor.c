/* SPDX-License-Identifier: MIT */
/*
 * The live-upgrade state of the allocator and the monitor (allocator_state.c,
 * monitor_state.c; the workflow's and the journal's are in
 * test_state_modules.c): both built through their deps with no cgroup tree
 * and no accounting source (as tests/test_monitor.c does), saved, restored
 * into a second allocator and monitor and compared field by field; every
 * cut of their sections and values no tierd writes are refused with a
 * sentence, the object left as it was.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "state_test.h"
#include "tasks_fake.h"
#include "../supervisor/allocator.h"
#include "../supervisor/allocator_internal.h"
#include "../supervisor/cgroup/cgroup.h"
#include "../supervisor/events.h"
#include "../supervisor/fleet.h"
#include "../supervisor/journal.h"
#include "../supervisor/monitor.h"
#include "../supervisor/monitor_internal.h"
#include "../supervisor/workflow.h"

#define MS 1000000LL

/* Two of everything: the old process's (0) and the new one's (1). The new
 * fleet has w1 and w3: w2 left the configuration, w3 is new. */
static struct {
	struct fake               *fake;
	struct sup_tasks          *ts;
	struct sup_wf             *wf;
	struct sup_loop           *loop;
	struct sup_events         *events;
	struct sup_logger          log;
	struct sup_journal         journal;
	struct sup_config          conf;
	struct sup_config         *cur;
	struct sup_agent_observers observers;
	struct sup_cg             *cg;
	struct sup_agent           ag[2][2];
	struct sup_agent          *list[2][2];
	struct sup_fleet           fleet[2];
	struct sup_monitor        *m[2];
	struct sup_allocator      *a[2];
} S;

static void setup(void)
{
	static const char *const names[2][2] = { { "w1", "w2" }, { "w1", "w3" } };
	struct sup_tasks_env tenv;
	char why[256];

	memset(&S, 0, sizeof(S));
	S.cg = sup_cg_detached();
	S.fake = fake_new();
	tenv = fake_env(S.fake);
	S.ts = sup_tasks_new(&tenv);
	S.wf = sup_wf_new(&tenv, S.ts);
	S.loop = sup_loop_new(16, why, sizeof(why));
	cr_assert(S.cg && S.ts && S.wf && S.loop, "%s", why);
	S.events = sup_events_new(1024);
	sup_logger_init(&S.log, 0);
	S.journal = (struct sup_journal){ .log = &S.log, .events = S.events };
	S.conf.sup.response_time_target_ns = 5000 * MS;
	S.conf.sup.utilisation_threshold = 1000;
	S.conf.sup.quality_threshold = 7.0;
	S.conf.sup.stability_target = 95;
	S.conf.sup.hysteresis = 5;
	S.cur = &S.conf;
	for (int p = 0; p < 2; p++) {
		const struct sup_monitor_deps md = {
			.loop = S.loop, .cg = S.cg, .conf = &S.cur, .fleet = &S.fleet[p],
			.journal = &S.journal, .observers = &S.observers, .wf = S.wf,
		};

		for (int i = 0; i < 2; i++) {
			snprintf(S.ag[p][i].name, sizeof(S.ag[p][i].name), "%s", names[p][i]);
			S.ag[p][i].tier = 3;
			S.ag[p][i].state = SUP_AG_READY;
			S.list[p][i] = &S.ag[p][i];
		}
		S.fleet[p] = (struct sup_fleet){ .agents = S.list[p], .n = 2, .cap = 2 };
		S.m[p] = sup_monitor_new(&md);
		cr_assert_not_null(S.m[p]);
		for (int i = 0; i < 2; i++)
			cr_assert_eq(sup_monitor_add(S.m[p], &S.ag[p][i]), 0);
		{
			const struct sup_allocator_deps ad = {
				.loop = S.loop, .cg = S.cg, .conf = &S.cur, .journal = &S.journal,
				.monitor = S.m[p], .observers = &S.observers,
			};

			S.a[p] = sup_allocator_new(&ad);
			cr_assert_not_null(S.a[p]);
		}
	}
}

static void teardown(void)
{
	for (int p = 0; p < 2; p++) {
		sup_allocator_free(S.a[p]);
		sup_monitor_free(S.m[p]);
	}
	sup_cg_close(S.cg);
	sup_events_free(S.events);
	sup_loop_free(S.loop);
	sup_wf_free(S.wf);
	sup_tasks_free(S.ts);
	free(S.fake);
}

TestSuite(state_alloc, .init = setup, .fini = teardown);
TestSuite(state_monitor, .init = setup, .fini = teardown);

static unsigned raised(void)
{
	json_t *all = sup_events_since(S.events, 0, 1024), *ev;
	unsigned n = 0;
	size_t i;

	json_array_foreach(all, i, ev)
		n += !strcmp(json_string_value(json_object_get(ev, "kind")), "alert") &&
		     !strcmp(json_string_value(json_object_get(ev, "state")), "raised");
	json_decref(all);
	return n;
}

/* ---- allocator ------------------------------------------------------------------ */

/* Pins, a bias, a round, and slots as a running allocator leaves them: one
 * written, one skipped (no controller), one static write in flight. */
static void busy_allocator(struct sup_allocator *a)
{
	sup_monitor_tick(S.m[0]);
	cr_assert_eq(sup_allocator_pin(a, 2, 1.5, 1e9), 0);
	sup_allocator_bias(a, 3, 0.5);
	sup_allocator_tick(a);
	a->s[1][S_CPU_WEIGHT] = (struct slot){ .a = a, .tier = 1, .knob = a->s[1][S_CPU_WEIGHT].knob,
		.fd = -1, .ev = a->s[1][S_CPU_WEIGHT].ev, .value = "250", .last_num = 250,
		.last_ns = 123456789, .written = true, .err = -EBUSY };
	a->s[2][S_MEM_HIGH].skipped = sup_cg_ctrl_name(SUP_CG_MEMORY);
	a->idle[4] = true;
	a->idle_until[4] = 99 * 1000000000LL;
	snprintf(a->idle_why[4], sizeof(a->idle_why[4]), "cpu.idle 1: held");
	a->mem_high[3] = 5e8;
	a->enabled = false;
}

static void same_allocator(const struct sup_allocator *a, const struct sup_allocator *b)
{
	for (int t = 0; t <= SUP_NTIERS; t++) {
		for (int k = 0; k < S_N; k++) {
			const struct slot *x = &a->s[t][k], *y = &b->s[t][k];

			cr_assert_eq(x->written, y->written, "tier%d slot %d", t, k);
			cr_assert_eq(x->err, y->err, "tier%d slot %d", t, k);
			cr_assert_eq(x->last_num, y->last_num, "tier%d slot %d", t, k);
			cr_assert_eq(x->last_ns, y->last_ns, "tier%d slot %d", t, k);
			cr_assert_str_eq(x->value, y->value, "tier%d slot %d", t, k);
			cr_assert_eq(!x->skipped, !y->skipped, "tier%d slot %d", t, k);
			if (x->skipped)
				cr_assert_str_eq(x->skipped, y->skipped);
			cr_assert_eq(y->a, b);
			cr_assert_eq(y->fd, -1, "no knob fd crosses: opened again at the next write");
		}
		cr_assert_eq(a->mem_high[t], b->mem_high[t]);
		cr_assert_eq(a->pin_cpu[t], b->pin_cpu[t]);
		cr_assert_eq(a->pin_mem[t], b->pin_mem[t]);
		cr_assert_eq(a->bias[t], b->bias[t]);
		cr_assert_eq(a->idle[t], b->idle[t]);
		cr_assert_eq(a->idle_until[t], b->idle_until[t]);
		cr_assert_str_eq(a->idle_why[t], b->idle_why[t]);
	}
	cr_assert_eq(memcmp(a->weight, b->weight, sizeof(a->weight)), 0);
	cr_assert_eq(memcmp(&a->cpu_in, &b->cpu_in, sizeof(a->cpu_in)), 0, "cpu input");
	cr_assert_eq(memcmp(&a->mem_in, &b->mem_in, sizeof(a->mem_in)), 0, "memory input");
	cr_assert_eq(memcmp(&a->cpu, &b->cpu, sizeof(a->cpu)), 0, "cpu result");
	cr_assert_eq(memcmp(&a->mem, &b->mem, sizeof(a->mem)), 0, "memory result");
	cr_assert_eq(a->enabled, b->enabled);
	cr_assert_eq(a->ticks, b->ticks);
}

Test(state_alloc, should_restore_pins_bias_squeeze_and_every_knob_written)
{
	struct sup_allocator *a = S.a[0], *b = S.a[1];
	int fd;
	struct sup_ho_r *r;

	busy_allocator(a);
	cr_assert_gt(a->ticks, 0);
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	cr_assert_eq(sup_allocator_restore(b, r), 0, "%s", sup_ho_r_error(r));
	same_allocator(a, b);
	cr_assert_eq(sup_allocator_get_bias(b, 3), 0.5);
	cr_assert(!sup_allocator_enabled(b));
	sup_ho_r_free(r);
	close(fd);
}

Test(state_alloc, should_write_again_what_was_in_flight_and_the_static_limits_if_one_was)
{
	struct sup_allocator *a = S.a[0], *b = S.a[1];
	struct slot *pids = &b->s[3][S_PIDS_MAX];
	int fd;
	struct sup_ho_r *r;

	busy_allocator(a);
	a->s[2][S_CPU_MAX].written = a->s[2][S_CPU_MAX].inflight = true;
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	cr_assert_eq(sup_allocator_restore(b, r), 0, "%s", sup_ho_r_error(r));
	cr_assert(!b->s[2][S_CPU_MAX].written && !b->s[2][S_CPU_MAX].inflight,
		  "a dynamic knob in flight is written again by the next round");
	cr_assert_str_eq(b->s[2][S_CPU_MAX].value, a->s[2][S_CPU_MAX].value);
	cr_assert(!b->redo_static);
	sup_ho_r_free(r);
	close(fd);
	a->s[3][S_PIDS_MAX].written = a->s[3][S_PIDS_MAX].inflight = true;
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	cr_assert_eq(sup_allocator_restore(b, r), 0, "%s", sup_ho_r_error(r));
	cr_assert(!pids->written && b->redo_static, "pids.max was in flight: static limits again");
	sup_ho_r_free(r);
	close(fd);
	/* The next tick writes them: tier 3's pids.max (the detached tree has
	 * no pids controller, so the write ends as skipped, which shows it ran). */
	S.conf.tiers[2].limits.set |= SUP_LIM_BIT(SUP_LIM_PIDS_MAX);
	S.conf.tiers[2].limits.pids_max = 64;
	cr_assert_null(pids->skipped);
	sup_allocator_tick(b);
	cr_assert(!b->redo_static);
	cr_assert(pids->skipped || pids->err || pids->written, "tier3 pids.max not attempted");
}

static int alloc_restore_fresh(struct sup_ho_r *r)
{
	struct sup_allocator *b = S.a[1];
	double bias = b->bias[3];
	int rc = sup_allocator_restore(b, r);

	if (rc < 0)
		cr_assert(b->bias[3] == bias && b->enabled && !b->ticks, "a refused state changed it");
	return rc;
}

Test(state_alloc, should_refuse_every_cut_and_values_no_allocator_holds)
{
	struct sup_allocator *a = S.a[0];
	int fd;
	struct sup_ho_r *r;

	busy_allocator(a);
	fd = STATE_OF(sup_allocator_save, a);
	st_every_cut(fd, alloc_restore_fresh);
	close(fd);
	a->bias[2] = 3;
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	ST_REFUSED(r, alloc_restore_fresh(r), "tier2 bias 3 is outside 0.1..1");
	sup_ho_r_free(r);
	close(fd);
	a->bias[2] = 1;
	a->mem_high[4] = INFINITY;
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	ST_REFUSED(r, alloc_restore_fresh(r), "memory.high is not a finite number");
	sup_ho_r_free(r);
	close(fd);
	a->mem_high[4] = 1e9;
	a->s[1][S_CPUSET].skipped = "floppy";
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	ST_REFUSED(r, alloc_restore_fresh(r), "skipped for 'floppy', not a controller");
	sup_ho_r_free(r);
	close(fd);
	a->s[1][S_CPUSET].skipped = NULL;
	a->s[1][S_CPUSET].err = 7;
	fd = STATE_OF(sup_allocator_save, a);
	r = st_open(fd);
	ST_REFUSED(r, alloc_restore_fresh(r), "error 7 is not an -errno");
	sup_ho_r_free(r);
	close(fd);
}

Test(state_alloc, should_refuse_another_shape_of_tiers_and_knobs)
{
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	int fd;

	sup_ho_w_begin(w, SUP_HO_TAG_ALLOCATOR, 1);
	sup_ho_w_u32(w, SUP_NTIERS + 1);
	sup_ho_w_u32(w, S_N + 1);
	sup_ho_w_end(w);
	fd = ho_finish(w);
	sup_ho_w_free(w);
	r = st_open(fd);
	ST_REFUSED(r, alloc_restore_fresh(r), "5 tiers of 12 knobs, this tierd has 5 of 11");
	sup_ho_r_free(r);
	close(fd);
}

/* ---- monitor ------------------------------------------------------------------- */

static void done_ms(struct sup_agent *ag, int status, int64_t ms, double quality)
{
	sup_monitor_task_done(S.m[0], ag, status, ms * MS, quality);
}

/* w1 with a full response window, poor quality (an alert raised) and an
 * unready tick; w2 with a few results; three ticks of history. */
static void busy_monitor(void)
{
	struct mon_agent *w1 = S.ag[0][0].mon_state;

	for (int i = 0; i < SUP_MON_RESP_WINDOW + 40; i++)
		done_ms(&S.ag[0][0], i % 7 ? TIER_ST_OK : TIER_ST_TIMEOUT, 10 + i % 50, 5.0 + i % 3);
	done_ms(&S.ag[0][1], TIER_ST_OK, 30, 8.0);
	done_ms(&S.ag[0][1], TIER_ST_CRASHED, 20, -1);
	sup_monitor_tick(S.m[0]);
	S.ag[0][0].state = SUP_AG_BACKOFF;
	sup_monitor_tick(S.m[0]);
	S.ag[0][0].state = SUP_AG_READY;
	sup_monitor_tick(S.m[0]);
	/* A baseline as an accounting source leaves it. */
	w1->have_last = true;
	w1->last.cpu_ns = 5000000000ULL;
	w1->last.runq_hist[3] = 17;
	w1->last.has_hist = true;
	cr_assert_gt(raised(), 0, "quality 6 under 7 raises an alert");
}

/* Field by field: a struct copy need not copy padding. */
static void same_sample(const struct sup_acct_sample *x, const struct sup_acct_sample *y)
{
	cr_assert_eq(x->cpu_ns, y->cpu_ns);
	cr_assert_eq(x->runq_delay_ns, y->runq_delay_ns);
	cr_assert_eq(x->runq_waits, y->runq_waits);
	cr_assert_eq(x->vol_switches, y->vol_switches);
	cr_assert_eq(x->invol_switches, y->invol_switches);
	cr_assert_eq(x->read_bytes, y->read_bytes);
	cr_assert_eq(x->write_bytes, y->write_bytes);
	cr_assert_eq(x->net_rx_bytes, y->net_rx_bytes);
	cr_assert_eq(x->net_tx_bytes, y->net_tx_bytes);
	cr_assert_eq(memcmp(x->runq_hist, y->runq_hist, sizeof(x->runq_hist)), 0);
	cr_assert_eq(x->has_net, y->has_net);
	cr_assert_eq(x->has_io, y->has_io);
	cr_assert_eq(x->has_hist, y->has_hist);
}

static void same_agent(const struct mon_agent *x, const struct mon_agent *y)
{
	cr_assert_eq(x->have_last, y->have_last);
	same_sample(&x->last, &y->last);
	cr_assert_eq(memcmp(&x->view.r, &y->view.r, offsetof(struct sup_mon_rates, has_net)), 0);
	cr_assert_eq(x->view.r.has_net, y->view.r.has_net);
	cr_assert_eq(x->view.p50_ms, y->view.p50_ms);
	cr_assert_eq(x->view.p95_ms, y->view.p95_ms);
	cr_assert_eq(x->view.p99_ms, y->view.p99_ms);
	cr_assert_eq(x->view.ok, y->view.ok);
	cr_assert_eq(x->view.errors, y->view.errors);
	cr_assert_eq(x->view.timeouts, y->view.timeouts);
	cr_assert_eq(x->view.crashed, y->view.crashed);
	cr_assert_eq(x->view.quality, y->view.quality);
	cr_assert_eq(x->view.stability, y->view.stability);
	same_sample(&x->view.total, &y->view.total);
	cr_assert_eq(x->nresp, y->nresp);
	cr_assert_eq(x->resp_pos, y->resp_pos);
	cr_assert_eq(memcmp(x->resp, y->resp, x->nresp * sizeof(x->resp[0])), 0);
	cr_assert_eq(x->nqual, y->nqual);
	cr_assert_eq(x->qual_pos, y->qual_pos);
	cr_assert_eq(memcmp(x->qual, y->qual, x->nqual * sizeof(x->qual[0])), 0);
	cr_assert_eq(x->nready, y->nready);
	cr_assert_eq(x->ready_pos, y->ready_pos);
	cr_assert_eq(memcmp(x->ready, y->ready, x->nready), 0);
}

Test(state_monitor, should_restore_windows_counters_history_alerts_and_baselines)
{
	const struct sup_monitor *a = S.m[0], *b = S.m[1];
	const struct mon_agent *w3 = S.ag[1][1].mon_state;
	int fd;
	struct sup_ho_r *r;

	busy_monitor();
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	r = st_open(fd);
	cr_assert_eq(sup_monitor_restore(S.m[1], r), 0, "%s", sup_ho_r_error(r));
	same_agent(S.ag[0][0].mon_state, S.ag[1][0].mon_state);
	cr_assert_eq(w3->nresp + w3->view.ok + w3->nready, 0, "w3 was not in the state: untouched");
	cr_assert_eq(memcmp(&a->m.busy, &b->m.busy, sizeof(a->m) - offsetof(struct sup_mon_machine, busy)),
		     0, "machine figures");
	cr_assert_eq(b->m.tick, 3);
	for (int t = 0; t <= SUP_NTIERS; t++) {
		const struct sup_mon_tier_view *x = &a->tiers[t], *y = &b->tiers[t];

		cr_assert_eq(memcmp(&x->r, &y->r, offsetof(struct sup_mon_rates, has_net)), 0);
		cr_assert_eq(x->r.has_net, y->r.has_net);
		cr_assert(x->p95_ms == y->p95_ms && x->ok == y->ok && x->errors == y->errors &&
			  x->timeouts == y->timeouts && x->quality == y->quality &&
			  x->pressure == y->pressure && x->psi_some10 == y->psi_some10 &&
			  x->agents == y->agents && x->ready == y->ready, "tier %d view", t);
		for (int i = 0; i < SUP_MON_HISTORY; i++) {
			const struct hist_point *p = &a->hist[t][i], *q = &b->hist[t][i];

			cr_assert(p->ts_ns == q->ts_ns && p->cpu == q->cpu && p->runq == q->runq &&
				  p->p95_ms == q->p95_ms && p->mem == q->mem && p->quality == q->quality,
				  "tier %d history point %d", t, i);
		}
	}
	cr_assert_gt(b->tiers[3].agents, 0);
	cr_assert_eq(a->nhist, b->nhist);
	cr_assert_eq(a->hist_pos, b->hist_pos);
	cr_assert_eq(a->last_ns, b->last_ns);
	cr_assert_eq(a->stat_busy, b->stat_busy);
	cr_assert_eq(a->stat_steal, b->stat_steal);
	cr_assert_eq(a->stat_total, b->stat_total);
	cr_assert_eq(a->self_usec, b->self_usec);
	cr_assert_eq(memcmp(a->alert, b->alert, sizeof(a->alert)), 0, "alert state");
	sup_ho_r_free(r);
	close(fd);
}

Test(state_monitor, should_not_raise_again_an_alert_the_old_process_raised)
{
	unsigned before;
	int fd;
	struct sup_ho_r *r;

	busy_monitor();
	before = raised();
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	r = st_open(fd);
	cr_assert_eq(sup_monitor_restore(S.m[1], r), 0, "%s", sup_ho_r_error(r));
	/* w3 is ready and unrated: only w1's poor quality could alert. */
	sup_monitor_tick(S.m[1]);
	cr_assert_eq(raised(), before, "the quality alert is raised once across the upgrade");
	cr_assert_eq(sup_monitor_machine(S.m[1])->tick, 4, "ticks count on");
	sup_ho_r_free(r);
	close(fd);
}

static int mon_restore_fresh(struct sup_ho_r *r)
{
	int rc = sup_monitor_restore(S.m[1], r);

	if (rc < 0)
		cr_assert(!S.m[1]->m.tick && !S.m[1]->nhist &&
			  !((struct mon_agent *)S.ag[1][0].mon_state)->nresp, "a refused state changed it");
	return rc;
}

Test(state_monitor, should_refuse_every_cut_and_windows_no_monitor_fills)
{
	struct mon_agent *w1 = S.ag[0][0].mon_state;
	int fd;
	struct sup_ho_r *r;

	busy_monitor();
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	st_every_cut(fd, mon_restore_fresh);
	close(fd);
	w1->nqual = 3;
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	r = st_open(fd);
	ST_REFUSED(r, mon_restore_fresh(r), "quality window holds 3 at position");
	sup_ho_r_free(r);
	close(fd);
	w1->nqual = SUP_MON_RESP_WINDOW;
	w1->ready[0] = 2;
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	r = st_open(fd);
	ST_REFUSED(r, mon_restore_fresh(r), "agent w1: a stability tick holds 2");
	sup_ho_r_free(r);
	close(fd);
	w1->ready[0] = 1;
	w1->view.quality = NAN;
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	r = st_open(fd);
	ST_REFUSED(r, mon_restore_fresh(r), "a figure is not a finite number");
	sup_ho_r_free(r);
	close(fd);
	w1->view.quality = 6;
	snprintf(S.ag[0][1].name, sizeof(S.ag[0][1].name), "w1");
	fd = STATE_OF(sup_monitor_save, S.m[0]);
	r = st_open(fd);
	ST_REFUSED(r, mon_restore_fresh(r), "agent w1 is in the state twice");
	sup_ho_r_free(r);
	close(fd);
}
