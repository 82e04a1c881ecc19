/* SPDX-License-Identifier: MIT */
/*
 * The monitor, driven through struct sup_monitor_deps with no cgroup tree
 * and no accounting source: per-agent and per-tier figures from the tasks
 * it is told of (response percentiles, successes, timeouts, errors,
 * quality), stability from the ticks an agent was ready, a bounded
 * response window and history, and thresholds turned into exactly one
 * alert event when crossed and one when cleared.
 *
 * Not reached here: CPU, run-queue, IO and memory rates (they need an
 * accounting source on a real leaf; tests/test_acct.c and the integration
 * tests cover them), and the tick's timing (the daemon's timer, not the
 * monitor, schedules it).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "tasks_fake.h"
#include "../supervisor/cgroup/cgroup.h"
#include "../supervisor/agent.h"
#include "../supervisor/events.h"
#include "../supervisor/fleet.h"
#include "../supervisor/journal.h"
#include "../supervisor/loop.h"
#include "../supervisor/monitor.h"
#include "../supervisor/workflow.h"

#define MS     1000000LL
#define NAGENT 2

static struct {
	struct fake               *fake;
	struct sup_tasks          *ts;
	struct sup_wf             *wf;        /* no run has finished */
	struct sup_loop           *loop;
	struct sup_events         *events;
	struct sup_logger          log;
	struct sup_journal         journal;
	struct sup_config          conf;
	struct sup_config         *cur;
	struct sup_agent_observers observers;
	struct sup_agent           ag[NAGENT];
	struct sup_agent          *list[NAGENT];
	struct sup_fleet           fleet;
	/* A cgroup tree with no directory, controller or tier
	 * (sup_cg_detached): the monitor's reads of it fail, as on a host
	 * whose files cannot be read. */
	struct sup_cg             *cg;
	struct sup_monitor        *m;
} M;

static void setup(void)
{
	struct sup_tasks_env tenv;
	char why[256];

	memset(&M, 0, sizeof(M));
	M.cg = sup_cg_detached();
	cr_assert_not_null(M.cg);
	M.fake = fake_new();
	tenv = fake_env(M.fake);
	M.ts = sup_tasks_new(&tenv);
	cr_assert_not_null(M.ts);
	M.wf = sup_wf_new(&tenv, M.ts);
	cr_assert_not_null(M.wf);
	M.loop = sup_loop_new(16, why, sizeof(why));
	cr_assert(M.loop, "%s", why);
	M.events = sup_events_new(1024);
	cr_assert(M.events);
	sup_logger_init(&M.log, 0);
	M.journal = (struct sup_journal){ .log = &M.log, .events = M.events };
	M.conf.sup.response_time_target_ns = 5000 * MS;
	M.conf.sup.utilisation_threshold = 1000;  /* a real machine's load never alerts */
	M.conf.sup.efficiency_target = 70;
	M.conf.sup.quality_threshold = 7.0;
	M.conf.sup.stability_target = 95;
	M.cur = &M.conf;
	for (int i = 0; i < NAGENT; i++) {
		snprintf(M.ag[i].name, sizeof(M.ag[i].name), "w%d", i + 1);
		M.ag[i].tier = 3;
		M.ag[i].state = SUP_AG_READY;
		M.list[i] = &M.ag[i];
	}
	M.fleet = (struct sup_fleet){ .agents = M.list, .n = NAGENT, .cap = NAGENT };
	{
		const struct sup_monitor_deps deps = {
			.loop = M.loop, .cg = M.cg, .conf = &M.cur,
			.fleet = &M.fleet, .journal = &M.journal, .observers = &M.observers,
			.wf = M.wf,
		};

		M.m = sup_monitor_new(&deps);
	}
	cr_assert_not_null(M.m);
	for (int i = 0; i < NAGENT; i++)
		cr_assert_eq(sup_monitor_add(M.m, &M.ag[i]), 0);
}

static void teardown(void)
{
	sup_monitor_free(M.m);
	sup_cg_close(M.cg);
	sup_events_free(M.events);
	sup_loop_free(M.loop);
	sup_wf_free(M.wf);
	sup_tasks_free(M.ts);
	free(M.fake);
}

TestSuite(monitor, .init = setup, .fini = teardown);

/* Alert events journaled so far for metric (NULL: any), of state
 * ("raised"/"cleared"). */
static unsigned alerts(const char *metric, const char *state)
{
	json_t *all = sup_events_since(M.events, 0, 1024), *ev;
	unsigned n = 0;
	size_t i;

	json_array_foreach(all, i, ev) {
		if (strcmp(json_string_value(json_object_get(ev, "kind")), "alert"))
			continue;
		if (metric && strcmp(json_string_value(json_object_get(ev, "metric")), metric))
			continue;
		n += !strcmp(json_string_value(json_object_get(ev, "state")), state);
	}
	json_decref(all);
	return n;
}

static void done_ms(struct sup_agent *ag, int status, int64_t ms, double quality)
{
	sup_monitor_task_done(M.m, ag, status, ms * MS, quality);
}

Test(monitor, response_percentiles_and_counts_per_agent_after_a_tick)
{
	for (int ms = 1; ms <= 100; ms++)
		done_ms(&M.ag[0], TIER_ST_OK, ms, ms % 2 ? 8.0 : 9.0);
	done_ms(&M.ag[0], TIER_ST_TIMEOUT, 100, -1);
	done_ms(&M.ag[0], TIER_ST_CRASHED, 100, -1);
	done_ms(&M.ag[0], TIER_ST_ERROR, 100, -1);
	sup_monitor_tick(M.m);

	const struct sup_mon_agent_view *v = sup_monitor_agent(M.m, &M.ag[0]);

	cr_assert_not_null(v);
	/* 103 samples: 1..100 ms and three of 100 ms. */
	cr_assert_float_eq(v->p50_ms, 52.0, 1e-9, "p50 %f", v->p50_ms);
	cr_assert_float_eq(v->p95_ms, 98.0, 1e-9, "p95 %f", v->p95_ms);
	cr_assert_float_eq(v->p99_ms, 100.0, 1e-9, "p99 %f", v->p99_ms);
	cr_assert_eq(v->ok, 100);
	cr_assert_eq(v->timeouts, 1);
	cr_assert_eq(v->crashed, 1);
	cr_assert_eq(v->errors, 1);
	cr_assert_float_eq(v->quality, 8.5, 1e-6, "quality without the unrated: %f", v->quality);
	cr_assert_float_eq(v->stability, 1.0, 1e-9);
	v = sup_monitor_agent(M.m, &M.ag[1]);
	cr_assert_lt(v->p50_ms, 0, "no task: no percentile");
	cr_assert_lt(v->quality, 0, "no rated task: no quality");
	cr_assert_eq(v->r.cpu, 0, "no accounting source: no CPU figure");
}

Test(monitor, tier_sums_its_agents)
{
	done_ms(&M.ag[0], TIER_ST_OK, 10, 6.0);
	done_ms(&M.ag[1], TIER_ST_OK, 30, 8.0);
	done_ms(&M.ag[1], TIER_ST_TIMEOUT, 20, -1);
	done_ms(&M.ag[1], TIER_ST_CRASHED, 20, -1);
	M.ag[1].state = SUP_AG_BACKOFF;
	sup_monitor_tick(M.m);

	const struct sup_mon_tier_view *t = sup_monitor_tier(M.m, 3);

	cr_assert_eq(t->agents, 2);
	cr_assert_eq(t->ready, 1);
	cr_assert_eq(t->ok, 2);
	cr_assert_eq(t->timeouts, 1);
	cr_assert_eq(t->errors, 1, "a crash counts as an error of the tier");
	cr_assert_float_eq(t->p95_ms, 30.0, 1e-9);
	cr_assert_float_eq(t->quality, 7.0, 1e-6);
	cr_assert_lt(t->psi_some10, 0, "no tier cgroup: no pressure figure");
	cr_assert_eq(sup_monitor_tier(M.m, 1)->agents, 0);
	cr_assert_eq(sup_monitor_machine(M.m)->tick, 1);
}

Test(monitor, response_window_keeps_only_the_latest_tasks)
{
	for (int i = 0; i < SUP_MON_RESP_WINDOW; i++)
		done_ms(&M.ag[0], TIER_ST_OK, 1000, -1);
	for (int i = 0; i < SUP_MON_RESP_WINDOW; i++)
		done_ms(&M.ag[0], TIER_ST_OK, 2, -1);
	sup_monitor_tick(M.m);
	cr_assert_float_eq(sup_monitor_agent(M.m, &M.ag[0])->p99_ms, 2.0, 1e-9,
			   "the older 1000 ms responses left the window");
	cr_assert_eq(sup_monitor_agent(M.m, &M.ag[0])->ok, 2 * SUP_MON_RESP_WINDOW,
		     "counts are not windowed");
}

Test(monitor, stability_is_the_share_of_recent_ticks_ready)
{
	for (int i = 0; i < SUP_MON_STABILITY; i++) {
		M.ag[0].state = i < SUP_MON_STABILITY / 4 ? SUP_AG_BACKOFF : SUP_AG_READY;
		sup_monitor_tick(M.m);
	}
	cr_assert_float_eq(sup_monitor_agent(M.m, &M.ag[0])->stability, 0.75, 1e-9);
	for (int i = 0; i < SUP_MON_STABILITY; i++)
		sup_monitor_tick(M.m);
	cr_assert_float_eq(sup_monitor_agent(M.m, &M.ag[0])->stability, 1.0, 1e-9,
			   "only the last %d ticks count", SUP_MON_STABILITY);
}

Test(monitor, history_is_bounded_and_served_oldest_first)
{
	json_t *h;

	for (int i = 0; i < SUP_MON_HISTORY + 10; i++)
		sup_monitor_tick(M.m);
	h = sup_monitor_history_json(M.m, 3, 100000);
	cr_assert_eq(json_array_size(h), SUP_MON_HISTORY);
	cr_assert_leq(json_real_value(json_object_get(json_array_get(h, 0), "t")),
		      json_real_value(json_object_get(json_array_get(h, SUP_MON_HISTORY - 1), "t")));
	json_decref(h);
	h = sup_monitor_history_json(M.m, 3, 5);
	cr_assert_eq(json_array_size(h), 5);
	json_decref(h);
	h = sup_monitor_history_json(M.m, SUP_NTIERS + 1, 5);
	cr_assert_eq(json_array_size(h), 0, "no such tier: empty");
	json_decref(h);
}

Test(monitor, slow_responses_raise_one_alert_and_fast_ones_clear_it_once)
{
	done_ms(&M.ag[0], TIER_ST_OK, 5000, -1);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("response_time", "raised"), 0, "5 s is the target, not over it");
	done_ms(&M.ag[0], TIER_ST_OK, 6000, -1);
	sup_monitor_tick(M.m);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("response_time", "raised"), 1, "raised once over two ticks");
	for (int i = 0; i < SUP_MON_RESP_WINDOW; i++)
		done_ms(&M.ag[0], TIER_ST_OK, 10, -1);
	sup_monitor_tick(M.m);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("response_time", "cleared"), 1);
	cr_assert_eq(alerts("response_time", "raised"), 1);
	cr_assert_eq(alerts(NULL, "raised"), 1, "no other alert");
}

Test(monitor, low_quality_raises_one_alert_and_good_quality_clears_it)
{
	done_ms(&M.ag[0], TIER_ST_OK, 10, 7.0);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("quality", "raised"), 0, "7.0 is the threshold, not under it");
	for (int i = 0; i < 3; i++)
		done_ms(&M.ag[1], TIER_ST_OK, 10, 5.0);
	sup_monitor_tick(M.m);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("quality", "raised"), 1);
	for (int i = 0; i < SUP_MON_RESP_WINDOW; i++)
		done_ms(&M.ag[1], TIER_ST_OK, 10, 9.0);
	sup_monitor_tick(M.m);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("quality", "cleared"), 1);
	cr_assert_eq(alerts(NULL, "raised"), 1, "no other alert");
}

Test(monitor, an_unready_agent_raises_one_stability_alert_until_it_recovers)
{
	M.ag[1].state = SUP_AG_BACKOFF;
	sup_monitor_tick(M.m);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("stability", "raised"), 1);
	M.ag[1].state = SUP_AG_READY;
	/* Cleared once the unready ticks have left the stability window. */
	for (int i = 0; i < SUP_MON_STABILITY; i++)
		sup_monitor_tick(M.m);
	cr_assert_eq(alerts("stability", "cleared"), 1);
	cr_assert_eq(alerts("stability", "raised"), 1);
}

Test(monitor, utilisation_alert_follows_the_threshold_of_the_current_config)
{
	static struct sup_config reloaded;

	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("utilisation", "raised"), 0);
	reloaded = M.conf;
	reloaded.sup.utilisation_threshold = -1;   /* any load is over it */
	M.cur = &reloaded;
	sup_monitor_tick(M.m);
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("utilisation", "raised"), 1);
	M.cur = &M.conf;
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("utilisation", "cleared"), 1);
}

Test(monitor, no_finished_run_no_efficiency_alert)
{
	M.conf.sup.efficiency_target = 100;
	sup_monitor_tick(M.m);
	cr_assert_eq(alerts("efficiency", "raised"), 0);
}

Test(monitor, json_names_each_agent_with_its_restarts_and_counts)
{
	json_t *j, *a;

	M.ag[1].restarts = 4;
	done_ms(&M.ag[1], TIER_ST_TIMEOUT, 10, -1);
	sup_monitor_tick(M.m);
	j = sup_monitor_json(M.m);
	cr_assert_not_null(j);
	a = json_object_get(j, "agents");
	cr_assert_eq(json_array_size(a), NAGENT);
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *o = json_array_get(a, i);

		if (strcmp(json_string_value(json_object_get(o, "name")), "w2"))
			continue;
		cr_assert_eq(json_integer_value(json_object_get(o, "restarts")), 4);
		cr_assert_eq(json_integer_value(json_object_get(o, "timeouts")), 1);
		cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "ready");
	}
	cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "not started yet");
	json_decref(j);
}

Test(monitor, removed_agent_is_no_longer_sampled)
{
	sup_monitor_remove(M.m, &M.ag[1]);
	cr_assert_null(sup_monitor_agent(M.m, &M.ag[1]));
	sup_monitor_task_done(M.m, &M.ag[1], TIER_ST_OK, MS, -1);   /* ignored */
	sup_monitor_tick(M.m);
	cr_assert_eq(sup_monitor_tier(M.m, 3)->agents, 1);
}
