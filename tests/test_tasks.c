/* SPDX-License-Identifier: MIT */
/*
 * The task table's decisions, driven through its env with fakes (no rings,
 * no processes, no root): dispatch, pipelines, retries and poison,
 * deadlines, drain, retention, and exactly one final result per task.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tasks_fake.h"

static struct fake *f;
static struct sup_tasks *ts;

static void setup(void)
{
	struct sup_tasks_env env;

	f = fake_new();
	env = fake_env(f);
	ts = sup_tasks_new(&env);
	cr_assert_not_null(ts);
}

static void teardown(void)
{
	sup_tasks_free(ts);
	fake_free_agents(f);
	free(f);
}

TestSuite(tasks, .init = setup, .fini = teardown);

static bool on_done(struct sup_tasks *t, struct sup_task *task, void *arg)
{
	struct fake *fk = arg;
	struct sup_task_info i;

	(void)t;
	sup_task_info(task, &i);
	cr_assert_lt(i.id, FAKE_DONE);
	fk->done_count[i.id]++;
	fk->done_status[i.id] = i.status;
	snprintf(fk->done_error[i.id], sizeof(fk->done_error[0]), "%s", i.error ? i.error : "");
	return fk->keep;
}

static int64_t submit_to(const char *agent, int tier, int64_t timeout_ns)
{
	struct sup_task_spec s = {
		.agent = agent, .tier = tier, .type = "echo", .type_len = 4,
		.payload = "hi", .len = 2, .timeout_ns = timeout_ns,
		.done = on_done, .done_arg = f,
	};
	char err[256] = "";
	int64_t id = sup_tasks_submit(ts, &s, err, sizeof(err));

	cr_assert_gt(id, 0, "submit refused: %s", err);
	return id;
}

static struct fake_sent *sent_of(uint64_t id, unsigned attempt)
{
	for (size_t i = 0; i < f->nsent; i++)
		if (f->sent[i].id == id && f->sent[i].h.attempt == attempt)
			return &f->sent[i];
	return NULL;
}

Test(tasks, should_send_a_tier_task_to_the_least_loaded_ready_agent)
{
	struct sup_agent *a = fake_agent(f, "a", 2, NULL), *b = fake_agent(f, "b", 2, NULL);
	int64_t t1 = submit_to(NULL, 2, 0), t2 = submit_to(NULL, 2, 0);

	cr_assert_eq(f->nsent, 2);
	cr_assert_eq(sent_of((uint64_t)t1, 1)->ag, a);
	cr_assert_eq(sent_of((uint64_t)t2, 1)->ag, b, "the idle agent gets the second task");
	cr_assert_eq(sup_tasks_inflight(a), 1);
	cr_assert_eq(sup_tasks_inflight(b), 1);
	cr_assert_eq(memcmp(sent_of((uint64_t)t1, 1)->body, "echohi", 6), 0);
}

Test(tasks, should_prefer_the_agent_whose_result_came_last_among_idle_ones)
{
	struct sup_agent *a = fake_agent(f, "a", 3, NULL), *b = fake_agent(f, "b", 3, NULL);
	int64_t t1 = submit_to(NULL, 3, 0), t2 = submit_to(NULL, 3, 0), t3;

	cr_assert_eq(fake_result(ts, f, a, (uint64_t)t1, TIER_ST_OK, -1, "x"), 0);
	f->now += 10;
	cr_assert_eq(fake_result(ts, f, b, (uint64_t)t2, TIER_ST_OK, -1, "y"), 0);
	t3 = submit_to(NULL, 3, 0);
	cr_assert_eq(sent_of((uint64_t)t3, 1)->ag, b, "b answered last: its caches are warm");
}

Test(tasks, should_publish_each_ring_once_per_turn_however_many_tasks_went_in)
{
	fake_agent(f, "a", 1, NULL);
	for (int i = 0; i < 5; i++)
		submit_to("a", 0, 0);
	cr_assert_eq(f->nsent, 5);
	cr_assert_eq(f->publishes, 0, "nothing published before the end of the turn");
	fake_end_turn(f);
	cr_assert_eq(f->publishes, 1);
}

Test(tasks, should_queue_past_the_agents_pipeline_and_feed_it_as_results_come)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t1, t2, t3;

	a->max_inflight = 2;
	t1 = submit_to("a", 0, 0);
	t2 = submit_to("a", 0, 0);
	t3 = submit_to("a", 0, 0);
	cr_assert_eq(f->nsent, 2);
	cr_assert_eq(sup_tasks_queued(ts, a), 1);
	cr_assert_eq(fake_result(ts, f, a, (uint64_t)t1, TIER_ST_OK, 850, "done"), 0);
	sup_tasks_flush(ts, a); /* what the incarnation does after its results */
	cr_assert_not_null(sent_of((uint64_t)t3, 1));
	cr_assert_eq(f->done_count[t1], 1);
	cr_assert_eq(f->done_status[t1], TIER_ST_OK);
	cr_assert_eq(f->done_count[t2], 0);
}

Test(tasks, should_reject_past_the_queue_limit_with_one_final_result)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t3;

	a->max_inflight = 1;
	f->conf.sup.task_queue_limit = 1;
	submit_to("a", 0, 0);   /* in flight */
	submit_to("a", 0, 0);   /* queued */
	t3 = submit_to("a", 0, 0);
	cr_assert_eq(f->done_count[t3], 1);
	cr_assert_eq(f->done_status[t3], TIER_ST_REJECTED);
	cr_assert(strstr(f->done_error[t3], "queue full"), "%s", f->done_error[t3]);
}

Test(tasks, should_refuse_bad_specs_with_a_sentence_naming_the_problem)
{
	struct sup_task_spec s = { .tier = 9, .type = "t", .type_len = 1 };
	char err[256];

	fake_agent(f, "a", 1, NULL);
	cr_assert_eq(sup_tasks_submit(ts, &s, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "tier must be 1..4"), "%s", err);
	s.tier = 1;
	s.len = 4096;
	cr_assert_eq(sup_tasks_submit(ts, &s, err, sizeof(err)), -EMSGSIZE);
	cr_assert(strstr(err, "max_payload"), "%s", err);
	s.len = 0;
	s.agent = "nobody";
	cr_assert_eq(sup_tasks_submit(ts, &s, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no agent named 'nobody'"), "%s", err);
}

Test(tasks, should_reject_a_task_that_can_never_fit_the_agents_ring)
{
	int64_t t;

	fake_agent(f, "a", 1, NULL);
	f->send_rc = -EMSGSIZE;
	t = submit_to("a", 0, 0);
	cr_assert_eq(f->done_status[t], TIER_ST_REJECTED);
	cr_assert(strstr(f->done_error[t], "does not fit agent a's ring"), "%s", f->done_error[t]);
}

Test(tasks, should_fault_an_agent_whose_ring_is_corrupt_and_keep_the_task_queued)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t;

	f->send_rc = -(TIER_E_BASE + 1);
	t = submit_to("a", 0, 0);
	cr_assert_eq(f->faults, 1);
	cr_assert_str_eq(f->last_fault, "task ring corrupt");
	cr_assert_eq(f->done_count[t], 0);
	cr_assert_eq(sup_tasks_queued(ts, a), 1);
}

Test(tasks, should_retry_a_tier_task_on_another_agent_when_its_agent_dies)
{
	struct sup_agent *a = fake_agent(f, "a", 2, NULL), *b = fake_agent(f, "b", 2, NULL);
	struct sup_tasks_stats st;
	int64_t t = submit_to(NULL, 2, 0);

	cr_assert_eq(sent_of((uint64_t)t, 1)->ag, a);
	fake_die(ts, a);
	cr_assert_eq(f->done_count[t], 0, "not finished: retried");
	cr_assert_not_null(sent_of((uint64_t)t, 2), "sent again as attempt 2");
	cr_assert_eq(sent_of((uint64_t)t, 2)->ag, b);
	sup_tasks_stats(ts, &st);
	cr_assert_eq(st.retries, 1);
}

Test(tasks, should_finish_a_poison_task_as_crashed_once_the_retry_budget_is_spent)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t = submit_to("a", 0, 0);

	snprintf(a->last_exit, sizeof(a->last_exit), "killed by SIGSEGV");
	/* Budget 1: one retry, then the second death is final. */
	fake_die(ts, a);
	cr_assert_eq(f->done_count[t], 0);
	cr_assert_null(sent_of((uint64_t)t, 2), "not into the ring of the dead one");
	fake_restart(ts, a);
	cr_assert_not_null(sent_of((uint64_t)t, 2), "to the replacement");
	fake_die(ts, a);
	cr_assert_eq(f->done_count[t], 1);
	cr_assert_eq(f->done_status[t], TIER_ST_CRASHED);
	cr_assert(strstr(f->done_error[t], "died while running it 2 times"), "%s", f->done_error[t]);
	cr_assert(strstr(f->done_error[t], "not retried"), "%s", f->done_error[t]);
}

Test(tasks, should_charge_a_death_only_to_the_task_the_agent_was_running)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t1, t2;

	f->conf.sup.task_retry_budget = 0;
	t1 = submit_to("a", 0, 0);
	t2 = submit_to("a", 0, 0);
	fake_die(ts, a);
	cr_assert_eq(f->done_status[t1], TIER_ST_CRASHED, "the oldest was running");
	cr_assert_eq(f->done_count[t2], 0, "the other only waited in the ring");
}

Test(tasks, should_not_charge_a_death_the_agent_was_killed_for_by_its_own_fault)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t;

	f->conf.sup.task_retry_budget = 0;
	t = submit_to("a", 0, 0);
	a->inc->faulted = true;
	fake_die(ts, a);
	cr_assert_eq(f->done_count[t], 0);
}

Test(tasks, should_time_out_a_queued_task_at_its_deadline)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t;

	a->state = SUP_AG_STARTING;  /* can run later, not now */
	t = submit_to(NULL, 1, 1000);
	cr_assert_eq(f->nsent, 0);
	fake_advance_to(f, f->now + 999);
	cr_assert_eq(f->done_count[t], 0);
	fake_advance_to(f, f->now + 1);
	cr_assert_eq(f->done_status[t], TIER_ST_TIMEOUT);
	cr_assert(strstr(f->done_error[t], "while queued"), "%s", f->done_error[t]);
}

Test(tasks, should_time_out_and_cancel_a_running_task_and_count_its_answer_late)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	struct sup_tasks_stats st;
	int64_t t = submit_to("a", 0, 1000);

	cr_assert_eq(sent_of((uint64_t)t, 1)->h.deadline_ns, f->now + 1000, "the agent sees the deadline");
	fake_advance_to(f, f->now + 1000);
	cr_assert_eq(f->done_status[t], TIER_ST_TIMEOUT);
	cr_assert(strstr(f->done_error[t], "while the agent was working on it"), "%s", f->done_error[t]);
	cr_assert_eq(f->ncancels, 1);
	cr_assert_eq(f->cancels[0], (uint64_t)t);
	cr_assert_eq(fake_result(ts, f, a, (uint64_t)t, TIER_ST_OK, -1, "late"), 0);
	sup_tasks_stats(ts, &st);
	cr_assert_eq(st.late_results, 1);
	cr_assert_eq(f->faults, 0, "a late answer is not a fault");
	cr_assert_eq(f->done_count[t], 1);
}

Test(tasks, should_fault_a_result_for_a_task_the_incarnation_does_not_hold)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL), *b = fake_agent(f, "b", 1, NULL);
	int64_t t = submit_to("a", 0, 0);

	cr_assert_lt(fake_result(ts, f, b, (uint64_t)t, TIER_ST_OK, -1, NULL), 0, "b does not hold it");
	cr_assert_eq(f->faults, 1);
	cr_assert_eq(f->done_count[t], 0);
	cr_assert_eq(fake_result(ts, f, a, (uint64_t)t, TIER_ST_OK, -1, NULL), 0);
	cr_assert_eq(f->done_count[t], 1);
	a->inc->faulted = false;
	cr_assert_lt(fake_result(ts, f, a, (uint64_t)t, TIER_ST_OK, -1, NULL), 0, "answered twice");
	cr_assert_eq(f->done_count[t], 1, "one final result, whatever the agent sends");
}

Test(tasks, should_end_a_task_whose_result_is_malformed_and_fault_the_agent)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t = submit_to("a", 0, 0);

	cr_assert_lt(fake_malformed_result(ts, f, a, (uint64_t)t, 3), 0);
	cr_assert_eq(f->done_status[t], TIER_ST_ERROR);
	cr_assert(strstr(f->done_error[t], "malformed result"), "%s", f->done_error[t]);
	cr_assert_eq(f->faults, 1);
}

Test(tasks, should_reject_quality_outside_0_to_10)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t = submit_to("a", 0, 0);

	cr_assert_eq(fake_result(ts, f, a, (uint64_t)t, TIER_ST_OK, 1001, NULL), 0);
	cr_assert_eq(f->done_status[t], TIER_ST_ERROR);
	cr_assert(strstr(f->done_error[t], "outside 0..10"), "%s", f->done_error[t]);
}

/* The finding: the comment said drained tasks go back to the tier; they
 * are rejected, as docs/control.md says, and the tier's queue is left. */
Test(tasks, should_reject_what_waits_for_a_draining_agent_and_leave_its_tier_queue)
{
	struct sup_agent *a = fake_agent(f, "a", 2, NULL);
	int64_t running, mine, tiers;
	struct sup_tasks_stats st;

	a->max_inflight = 1;
	running = submit_to("a", 0, 0);
	mine = submit_to("a", 0, 0);
	tiers = submit_to(NULL, 2, 0);
	sup_tasks_drain(ts, a);
	cr_assert_eq(f->done_status[mine], TIER_ST_REJECTED);
	cr_assert(strstr(f->done_error[mine], "agent a is draining"), "%s", f->done_error[mine]);
	cr_assert_eq(f->done_count[tiers], 0, "the tier's task waits for another agent");
	sup_tasks_stats(ts, &st);
	cr_assert_eq(st.queued, 1);
	cr_assert_eq(f->nevents, 0, "not drained while a task is in flight");
	cr_assert_eq(fake_result(ts, f, a, (uint64_t)running, TIER_ST_OK, -1, NULL), 0);
	cr_assert_eq(f->nevents, 1);
	cr_assert_str_eq(f->events[0], "drained: agent a drained");
	cr_assert_eq(f->done_status[submit_to("a", 0, 0)], TIER_ST_REJECTED, "new ones too");
	sup_tasks_undrain(ts, a);
	cr_assert_not_null(sent_of((uint64_t)tiers, 1), "undrained: it takes the tier's task");
}

Test(tasks, should_reject_queued_tasks_when_the_last_agent_of_a_tier_stops)
{
	struct sup_agent *a = fake_agent(f, "a", 4, NULL);
	int64_t t;

	a->state = SUP_AG_STARTING;
	t = submit_to(NULL, 4, 0);
	cr_assert_eq(f->done_count[t], 0);
	a->state = SUP_AG_FAILED;
	sup_tasks_agent_state(ts, a, SUP_AG_STARTING);
	cr_assert_eq(f->done_status[t], TIER_ST_REJECTED);
	cr_assert(strstr(f->done_error[t], "no agent of tier 4 can run"), "%s", f->done_error[t]);
}

Test(tasks, should_reject_queued_tasks_at_shutdown_and_refuse_new_ones)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	struct sup_task_spec s = { .tier = 1, .type = "t", .type_len = 1 };
	char err[128];
	int64_t t;

	a->state = SUP_AG_STARTING;
	t = submit_to(NULL, 1, 0);
	sup_tasks_shutdown(ts);
	cr_assert_eq(f->done_status[t], TIER_ST_REJECTED);
	cr_assert_eq(sup_tasks_submit(ts, &s, err, sizeof(err)), -ECANCELED);
	cr_assert_str_eq(err, "tierd is shutting down");
}

Test(tasks, should_keep_a_result_nobody_took_until_its_retention_passes)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	struct sup_task_spec s = { .agent = "a", .type = "t", .type_len = 1 };
	char err[128];
	int64_t detached = sup_tasks_submit(ts, &s, err, sizeof(err)), left;
	json_t *j;

	f->keep = true;   /* an owner whose client left */
	left = submit_to("a", 0, 0);
	cr_assert_eq(fake_result(ts, f, a, (uint64_t)detached, TIER_ST_OK, -1, "r1"), 0);
	cr_assert_eq(fake_result(ts, f, a, (uint64_t)left, TIER_ST_OK, -1, "r2"), 0);
	j = sup_tasks_lookup_json(ts, (uint64_t)detached);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
	json_decref(j);
	j = sup_tasks_lookup_json(ts, (uint64_t)left);
	cr_assert_not_null(j);
	json_decref(j);
	f->now += f->conf.sup.result_retention_ns;
	sup_tasks_tick(ts);
	cr_assert_null(sup_tasks_lookup_json(ts, (uint64_t)detached));
	cr_assert_null(sup_tasks_lookup_json(ts, (uint64_t)left));
}

Test(tasks, should_free_a_result_its_owner_took)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t = submit_to("a", 0, 0);
	struct sup_tasks_stats st;

	cr_assert_eq(fake_result(ts, f, a, (uint64_t)t, TIER_ST_OK, -1, "r"), 0);
	cr_assert_null(sup_tasks_lookup_json(ts, (uint64_t)t));
	sup_tasks_stats(ts, &st);
	cr_assert_eq(st.retained, 0);
	cr_assert_eq(st.pending, 0);
}

Test(tasks, should_push_out_the_oldest_kept_result_past_result_retention_max)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t t[3];
	struct sup_tasks_stats st;

	f->conf.sup.result_retention_max = 2;
	f->keep = true;
	for (int i = 0; i < 3; i++)
		t[i] = submit_to("a", 0, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fake_result(ts, f, a, (uint64_t)t[i], TIER_ST_OK, -1, NULL), 0);
	cr_assert_null(sup_tasks_lookup_json(ts, (uint64_t)t[0]));
	sup_tasks_stats(ts, &st);
	cr_assert_eq(st.retained, 2);
	cr_assert_eq(st.retention_dropped, 1);
}

Test(tasks, should_cancel_a_pending_task_once_and_tell_the_agent)
{
	fake_agent(f, "a", 1, NULL);
	int64_t t = submit_to("a", 0, 0);

	cr_assert(sup_tasks_is_pending(ts, (uint64_t)t));
	cr_assert_eq(sup_tasks_cancel(ts, (uint64_t)t), 0);
	cr_assert_eq(f->done_status[t], TIER_ST_CANCELLED);
	cr_assert_eq(f->ncancels, 1);
	cr_assert_eq(sup_tasks_cancel(ts, (uint64_t)t), -ENOENT);
	cr_assert_eq(f->done_count[t], 1);
}

Test(tasks, should_reject_what_waits_for_and_crash_what_runs_on_a_removed_agent)
{
	struct sup_agent *a = fake_agent(f, "a", 1, NULL);
	int64_t running, waiting;

	a->max_inflight = 1;
	running = submit_to("a", 0, 0);
	waiting = submit_to("a", 0, 0);
	sup_tasks_agent_removed(ts, a);
	cr_assert_eq(f->done_status[running], TIER_ST_CRASHED);
	cr_assert_eq(f->done_status[waiting], TIER_ST_REJECTED);
	cr_assert_null(a->task_state);
}

/* Exactly once: whatever happens to a thousand tasks (results, deaths,
 * cancels, deadlines, duplicates), each accepted one ends once. */
Test(tasks, should_give_every_accepted_task_exactly_one_final_result)
{
	struct sup_agent *ag[3];
	uint64_t seed = 42;
	int64_t ids[1000];
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "w%d", i);
		ag[i] = fake_agent(f, name, 3, NULL);
		ag[i]->max_inflight = 4;
	}
	f->conf.sup.task_queue_limit = 50;
	for (int step = 0; step < 4000; step++) {
		unsigned r;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		r = (unsigned)(seed >> 33);
		if (r % 4 == 0 && n < 1000) {
			ids[n++] = submit_to(r % 8 ? NULL : "w1", 3, r % 3 ? 0 : 200);
		} else if (r % 4 == 1 && f->nsent) {
			struct fake_sent *s = &f->sent[r % f->nsent];

			fake_result(ts, f, s->ag, s->id, r % 5 ? TIER_ST_OK : TIER_ST_ERROR, -1, NULL);
			s->ag->inc->faulted = false;
		} else if (r % 4 == 2 && r % 97 == 0) {
			struct sup_agent *a = ag[r % 3];

			fake_die(ts, a);
			fake_restart(ts, a);
		} else if (r % 4 == 2 && n && r % 7 == 0) {
			sup_tasks_cancel(ts, (uint64_t)ids[r % n]);
		} else {
			fake_advance_to(f, f->now + 50);
			for (int i = 0; i < 3; i++)
				sup_tasks_flush(ts, ag[i]);
		}
	}
	/* Whatever is left ends at its agents' removal. */
	for (int i = 0; i < 3; i++)
		sup_tasks_agent_removed(ts, ag[i]);
	sup_tasks_shutdown(ts);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(f->done_count[ids[i]], 1, "task %lld ended %u times", (long long)ids[i],
			     f->done_count[ids[i]]);
}
