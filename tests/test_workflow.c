/* SPDX-License-Identifier: MIT */
/*
 * The workflow's stage machine, driven with fakes (tasks_fake.h) over the
 * real task table: stage order, tier-3 batches and their stagger, timeouts,
 * tier-4 selection by specialty, the context passed forward.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tasks_fake.h"
#include "../supervisor/workflow.h"

static struct fake *f;
static struct sup_tasks *ts;
static struct sup_wf *wf;
static size_t answered;      /* f->sent[..answered) have been answered */
static json_t *agg;          /* the aggregate of the run that ended */
static unsigned runs_done;

static void setup(void)
{
	struct sup_tasks_env env;

	f = fake_new();
	env = fake_env(f);
	ts = sup_tasks_new(&env);
	cr_assert_not_null(ts);
	answered = 0;
	agg = NULL;
	runs_done = 0;
}

static void teardown(void)
{
	json_decref(agg);
	sup_wf_free(wf);
	sup_tasks_free(ts);
	fake_free_agents(f);
	free(f);
}

TestSuite(workflow, .init = setup, .fini = teardown);

static void on_run_done(struct sup_wf *w, struct sup_run *run, json_t *aggregate, void *arg)
{
	(void)w;
	(void)run;
	(void)arg;
	runs_done++;
	json_decref(agg);
	agg = json_incref(aggregate);
}

/* The team: tier 1 o1; tier 2 p1, p2; tier 3 w1..w5; tier 4 s1 (echo),
 * s2 (other). Then the workflow, which reads the pacing from the config. */
static void team(void)
{
	char name[8];

	fake_agent(f, "o1", 1, NULL);
	fake_agent(f, "p1", 2, NULL);
	fake_agent(f, "p2", 2, NULL);
	for (int i = 1; i <= 5; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		fake_agent(f, name, 3, NULL);
	}
	fake_agent(f, "s1", 4, "echo");
	fake_agent(f, "s2", 4, "other");
}

static void make_wf(void)
{
	struct sup_tasks_env env = fake_env(f);

	wf = sup_wf_new(&env, ts);
	cr_assert_not_null(wf);
}

static int64_t start(const char *type, int batch, int64_t stagger_ns, int64_t timeout_ns)
{
	struct sup_run_opts o = {
		.type = type, .payload = "P", .len = 1, .batch_size = batch,
		.stagger_ns = stagger_ns, .timeout_ns = timeout_ns, .done = on_run_done,
	};
	char err[256] = "";
	int64_t id = sup_wf_start(wf, &o, err, sizeof(err));

	cr_assert_gt(id, 0, "run refused: %s", err);
	return id;
}

/* Names of the agents sent a task since the last answer, in order. */
static void sent_names(char *out, size_t sz)
{
	size_t n = 0;

	out[0] = 0;
	for (size_t i = answered; i < f->nsent; i++)
		n += (size_t)snprintf(out + n, sz - n, "%s%s", n ? " " : "", f->sent[i].ag->name);
}

/* Every agent answers what it was sent so far: ok, with quality 7. */
static size_t answer_all(void)
{
	size_t end = f->nsent, n = 0;

	for (; answered < end; answered++, n++) {
		struct fake_sent *s = &f->sent[answered];

		cr_assert_eq(fake_result(ts, f, s->ag, s->id, TIER_ST_OK, 700, s->ag->name), 0);
	}
	return n;
}

static json_t *tier_of(int tier)
{
	return json_array_get(json_object_get(agg, "tiers"), (size_t)tier - 1);
}

static int tier_int(int tier, const char *key)
{
	return (int)json_integer_value(json_object_get(tier_of(tier), key));
}

Test(workflow, should_run_the_tiers_in_order_and_tier3_in_batches)
{
	char names[256];

	team();
	make_wf();
	start("echo", 2, 0, 0);
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "o1", "tier 1 alone first");
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "p1 p2", "then tier 2, in parallel");
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "w1 w2", "then tier 3, one batch of batch_size");
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "w3 w4");
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "w5", "the last batch holds the rest");
	cr_assert_eq(runs_done, 0);
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "s1", "tier 4: only the agent whose specialties include the type");
	answer_all();
	cr_assert_eq(runs_done, 1);
	cr_assert_eq(tier_int(3, "tasks"), 5);
	cr_assert_eq(tier_int(3, "batches"), 3);
	cr_assert_eq(tier_int(4, "tasks"), 1);
	cr_assert_eq(tier_int(2, "ok"), 2);
	cr_assert_float_eq(json_real_value(json_object_get(tier_of(1), "mean_quality")), 7.0, 1e-9);
}

Test(workflow, should_pass_the_earlier_stages_results_forward_as_context)
{
	const struct fake_sent *s;
	const char *ctx;

	team();
	make_wf();
	start("echo", 2, 0, 0);
	answer_all();   /* o1 */
	s = &f->sent[answered];
	cr_assert_eq(s->h.type_len, 4);
	cr_assert_gt(s->h.context_len, 0);
	ctx = s->body + s->h.type_len;
	cr_assert(!strncmp(ctx, "tier1 o1 ok q=7.00: o1\n", s->h.context_len),
		  "%.*s", (int)s->h.context_len, ctx);
	cr_assert_eq(memcmp(ctx + s->h.context_len, "P", 1), 0, "the payload follows");
	cr_assert_eq(s->h.flags & TIER_TASK_CONTEXT_TRUNCATED, 0);
}

Test(workflow, should_wait_the_stagger_between_tier3_batches)
{
	char names[256];
	int64_t t0;

	team();
	make_wf();
	start("echo", 2, 1000, 0);
	answer_all();
	answer_all();
	answer_all();   /* first batch: w1 w2 */
	t0 = f->now;
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "", "the next batch waits");
	fake_advance_to(f, t0 + 999);
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "");
	fake_advance_to(f, t0 + 1000);
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "w3 w4", "stagger after the previous batch finished");
	answer_all();
	fake_advance_to(f, f->now + 1000);
	answer_all();   /* w5 */
	answer_all();   /* s1 */
	cr_assert_eq(runs_done, 1);
	cr_assert_float_eq(json_real_value(json_object_get(agg, "stagger_ms")), 1000 * 1e-6, 1e-12);
}

Test(workflow, should_end_a_stage_whose_task_hangs_at_the_timeout_and_go_on)
{
	char names[256];

	team();
	make_wf();
	start("echo", 2, 0, 500);
	answered = f->nsent;       /* o1 never answers */
	fake_advance_to(f, f->now + 499);
	cr_assert_eq(f->nsent, 1, "tier 2 waits for tier 1");
	fake_advance_to(f, f->now + 1);
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "p1 p2", "the timeout ends the stage, never a hang");
	answer_all();
	answer_all();
	answer_all();
	answer_all();
	answer_all();
	cr_assert_eq(runs_done, 1);
	cr_assert_eq(tier_int(1, "timeouts"), 1);
	cr_assert_eq(tier_int(1, "ok"), 0);
}

Test(workflow, should_skip_tier4_when_no_specialty_matches_the_type)
{
	team();
	make_wf();
	start("translate", 5, 0, 0);
	answer_all();
	answer_all();
	answer_all();     /* all of tier 3 in one batch */
	cr_assert_eq(runs_done, 1, "nothing for tier 4: the run ends after tier 3");
	cr_assert_eq(tier_int(4, "tasks"), 0);
	cr_assert_eq(tier_int(3, "batches"), 1);
}

Test(workflow, should_leave_out_agents_being_removed)
{
	char names[256];

	team();
	f->agents[2]->remove_when_stopped = true;   /* p2 */
	make_wf();
	start("echo", 2, 0, 0);
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "p1");
}

Test(workflow, should_take_the_pacing_from_the_config_and_the_optimiser)
{
	char names[256];

	team();
	f->conf.tiers[2].batch_size = 3;
	make_wf();
	cr_assert_eq(sup_wf_batch_size(wf), 3);
	sup_wf_set_pacing(wf, 4, -1);
	start("echo", 0, -1, 0);
	answer_all();
	answer_all();
	sent_names(names, sizeof(names));
	cr_assert_str_eq(names, "w1 w2 w3 w4", "batch_size 0: the current value");
}

Test(workflow, should_refuse_bad_runs_with_a_sentence_naming_the_problem)
{
	struct sup_run_opts o = { .type = "", .stagger_ns = -1 };
	char err[256];

	team();
	make_wf();
	cr_assert_eq(sup_wf_start(wf, &o, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "task type of 1 to 255 bytes"), "%s", err);
	o.type = "echo";
	o.len = 4096;
	cr_assert_eq(sup_wf_start(wf, &o, err, sizeof(err)), -EMSGSIZE);
	cr_assert(strstr(err, "max_payload"), "%s", err);
	o.len = 0;
	f->shutting_down = true;
	cr_assert_eq(sup_wf_start(wf, &o, err, sizeof(err)), -ECANCELED);
}

Test(workflow, should_report_a_finished_run_in_recent_stats_and_its_trace)
{
	struct sup_wf_run_stats st[2];
	int64_t run;
	json_t *tr;

	team();
	make_wf();
	run = start("echo", 5, 0, 0);
	for (int i = 0; i < 4; i++)
		answer_all();
	cr_assert_eq(runs_done, 1);
	cr_assert_eq(sup_wf_recent(wf, st, 2), 1);
	cr_assert_eq(st[0].run, (uint64_t)run);
	cr_assert_eq(st[0].tier[3].tasks, 5);
	cr_assert_eq(st[0].tier[3].ok, 5);
	tr = sup_wf_trace(wf, (uint64_t)run);
	cr_assert_not_null(tr);
	cr_assert_gt(json_array_size(json_object_get(tr, "traceEvents")), 9);
	json_decref(tr);
}
