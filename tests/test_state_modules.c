/* SPDX-License-Identifier: MIT */
/*
 * The live-upgrade state of the workflow, the allocator, the event journal
 * and the monitor (supervisor/NAME_state.c): each module built up without a
 * daemon, saved into a state memfd, restored into a fresh object and
 * compared field by field; the restored object goes on as the old one
 * would have (a run finishes, followers see no gap, no alert is raised
 * twice). Every cut of a section, and values a writer could not have
 * written, are refused with a sentence, the object left as it was.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "state_test.h"
#include "tasks_fake.h"
#include "../supervisor/events.h"
#include "../supervisor/events_internal.h"
#include "../supervisor/handover/handover.h"
#include "../supervisor/workflow.h"
#include "../supervisor/workflow_internal.h"

/* ---- workflow --------------------------------------------------------------- */

/* Two worlds: the old process's (0), the new one's (1), each with its
 * fake agents (the same names), task table and workflow. */
static struct world {
	struct fake      *f;
	struct sup_tasks *ts;
	struct sup_wf    *wf;
} W[2];
static struct fake *f;          /* W[0]'s, where runs are started */
static struct sup_wf *wf, *wf2;
static size_t answered;
static unsigned runs_done;
static uint64_t run_a, run_b, run_c;

static void world_new(struct world *w)
{
	struct sup_tasks_env env;
	char name[8];

	w->f = fake_new();
	env = fake_env(w->f);
	w->ts = sup_tasks_new(&env);
	cr_assert_not_null(w->ts);
	fake_agent(w->f, "o1", 1, NULL);
	fake_agent(w->f, "p1", 2, NULL);
	fake_agent(w->f, "p2", 2, NULL);
	for (int i = 1; i <= 5; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		fake_agent(w->f, name, 3, NULL);
	}
	fake_agent(w->f, "s1", 4, "echo");
	w->wf = sup_wf_new(&env, w->ts);
	cr_assert_not_null(w->wf);
}

static void world_free(struct world *w)
{
	if (!w->f)
		return;
	sup_wf_free(w->wf);
	sup_tasks_free(w->ts);
	fake_free_agents(w->f);
	free(w->f);
	memset(w, 0, sizeof(*w));
}

static void wf_setup(void)
{
	world_new(&W[0]);
	world_new(&W[1]);
	f = W[0].f;
	wf = W[0].wf;
	wf2 = W[1].wf;
	answered = 0;
	runs_done = 0;
}

static void wf_teardown(void)
{
	world_free(&W[0]);
	world_free(&W[1]);
}

static void on_done(struct sup_wf *w, struct sup_run *run, json_t *agg, void *arg)
{
	(void)w;
	(void)run;
	(void)agg;
	(void)arg;
	runs_done++;
}

static uint64_t start(int batch, int64_t stagger, bool waiter)
{
	struct sup_run_opts o = {
		.type = "echo", .payload = "PAYLOAD", .len = 7, .batch_size = batch,
		.stagger_ns = stagger, .done = waiter ? on_done : NULL,
	};
	char err[256] = "";
	int64_t id = sup_wf_start(wf, &o, err, sizeof(err));

	cr_assert_gt(id, 0, "%s", err);
	return (uint64_t)id;
}

/* Every agent of world w answers what it was sent so far. */
static void answer_in(struct world *w)
{
	for (size_t end = w->f->nsent; answered < end; answered++) {
		struct fake_sent *s = &w->f->sent[answered];

		cr_assert_eq(fake_result(w->ts, w->f, s->ag, s->id, TIER_ST_OK, 650, s->ag->name), 0);
	}
}

static void answer_all(void)
{
	answer_in(&W[0]);
}

static struct sup_run *run_of(struct sup_wf *w, uint64_t id)
{
	for (struct sup_run *r = w->runs; r; r = r->next)
		if (r->id == id)
			return r;
	cr_assert_fail("no run %llu", (unsigned long long)id);
	return NULL;
}

/* Run A finished (with a waiting client), run B waiting the stagger before
 * its second tier-3 batch, run C waiting for tier 1 (o1's task pending). */
static void three_runs(void)
{
	run_a = start(5, 0, true);
	for (int i = 0; i < 4; i++)
		answer_all();
	cr_assert_eq(runs_done, 1);
	run_b = start(2, 1000, false);
	for (int i = 0; i < 3; i++)
		answer_all();
	run_c = start(2, 0, true);
	cr_assert_eq(run_of(wf, run_c)->pending, 1);
	/* As if journaled: C's RUN_START is in segment 7 (no journal here). */
	run_of(wf, run_c)->wal_seg = 7;
	cr_assert(sup_timer_armed(&run_of(wf, run_b)->stagger_timer));
	sup_wf_set_pacing(wf, 3, 777);
}

static void same_rec(const struct rec *a, const struct rec *b)
{
	cr_assert_str_eq(a->agent, b->agent);
	cr_assert_eq(a->tier, b->tier);
	cr_assert_eq(a->batch, b->batch);
	cr_assert_eq(a->status, b->status);
	cr_assert_eq(a->quality, b->quality);
	cr_assert_eq(a->task, b->task);
	cr_assert_eq(memcmp(&a->t, &b->t, sizeof(a->t)), 0, "%s: times differ", a->agent);
	cr_assert_eq(a->result_len, b->result_len);
	cr_assert_eq(!a->result, !b->result);
	if (a->result)
		cr_assert_eq(memcmp(a->result, b->result, a->result_len), 0);
	cr_assert_eq(a->full_len, b->full_len);
}

static void same_run(const struct sup_run *a, const struct sup_run *b)
{
	cr_assert_eq(a->id, b->id);
	cr_assert_str_eq(a->type, b->type);
	cr_assert_eq(a->len, b->len);
	cr_assert_eq(!a->payload, !b->payload);
	if (a->payload)
		cr_assert_eq(memcmp(a->payload, b->payload, a->len), 0);
	cr_assert_eq(a->stage, b->stage);
	cr_assert_eq(a->batch_size, b->batch_size);
	cr_assert_eq(a->stagger_ns, b->stagger_ns);
	cr_assert_eq(a->timeout_ns, b->timeout_ns);
	cr_assert_eq(a->stage_first, b->stage_first);
	cr_assert_eq(a->pending, b->pending);
	cr_assert_eq(!a->t3, !b->t3);
	cr_assert_eq(a->n_t3, b->n_t3);
	for (size_t i = 0; i < a->n_t3; i++)
		cr_assert_str_eq(a->t3[i], b->t3[i]);
	cr_assert_eq(a->next_t3, b->next_t3);
	cr_assert_eq(a->batch_no, b->batch_no);
	cr_assert_eq(a->batch_done_ns, b->batch_done_ns);
	cr_assert_eq(a->stagger_total_ns, b->stagger_total_ns);
	cr_assert_eq(sup_timer_armed(&a->stagger_timer), sup_timer_armed(&b->stagger_timer));
	if (sup_timer_armed(&a->stagger_timer))
		cr_assert_eq(a->stagger_timer.deadline, b->stagger_timer.deadline);
	cr_assert_eq(b->stagger_timer.cb, sup_wf_stagger_fired);
	cr_assert_eq(b->stagger_timer.data, b);
	cr_assert_eq(a->ctx_len, b->ctx_len);
	cr_assert_eq(memcmp(a->ctx, b->ctx, a->ctx_len), 0);
	cr_assert_eq(a->ctx_truncated, b->ctx_truncated);
	cr_assert_eq(a->ctx_dropped, b->ctx_dropped);
	cr_assert_eq(a->ctx_max, b->ctx_max);
	cr_assert_eq(a->start_ns, b->start_ns);
	cr_assert_eq(a->end_ns, b->end_ns);
	cr_assert_eq(a->cores, b->cores);
	cr_assert_eq(a->cpu0, b->cpu0);
	cr_assert_eq(a->cpu_ms, b->cpu_ms);
	cr_assert_eq(a->wal_seg, b->wal_seg);
	cr_assert_null(b->done, "the waiting client was the old process's");
	cr_assert_eq(!a->aggregate, !b->aggregate);
	if (a->aggregate)
		cr_assert(json_equal(a->aggregate, b->aggregate), "aggregate of run %llu differs",
			  (unsigned long long)a->id);
	cr_assert_eq(memcmp(&a->stats, &b->stats, sizeof(a->stats)), 0);
	cr_assert_eq(a->nrecs, b->nrecs);
	for (size_t i = 0; i < a->nrecs; i++) {
		same_rec(a->recs[i], b->recs[i]);
		cr_assert_eq(b->recs[i]->run, b);
	}
	cr_assert_eq(b->wf, wf2);
}

/* The old world's tasks and runs in one state, as the daemon writes them. */
static int world_state(void)
{
	struct sup_ho_w *w = sup_ho_w_new();
	int fd;

	cr_assert_not_null(w);
	cr_assert_eq(sup_wf_save(wf, w), 0);
	cr_assert_eq(sup_tasks_save(W[0].ts, w), 0);
	fd = ho_finish(w);
	sup_ho_w_free(w);
	return fd;
}

/* The new world restores it: the task table first, then the runs. */
static void world_restore(int fd)
{
	struct sup_ho_r *r = st_open(fd);

	cr_assert_eq(sup_tasks_restore(W[1].ts, r), 0, "%s", sup_ho_r_error(r));
	cr_assert_eq(sup_wf_restore(wf2, r), 0, "%s", sup_ho_r_error(r));
	cr_assert(sup_ho_r_ok(r));
	sup_ho_r_free(r);
}

static int wf2_restore(struct sup_ho_r *r)
{
	int rc = sup_wf_restore(wf2, r);

	if (rc < 0)
		cr_assert(!wf2->runs && !wf2->nruns && !wf2->next_id, "a refused state left runs");
	return rc;
}

Test(state_wf, should_restore_every_run_field_by_field, .init = wf_setup, .fini = wf_teardown)
{
	int fd;
	const struct sup_run *a, *b;

	three_runs();
	fd = world_state();
	world_restore(fd);
	cr_assert_eq(wf2->next_id, wf->next_id);
	cr_assert_eq(wf2->nruns, 3);
	cr_assert_eq(sup_wf_batch_size(wf2), 3, "the optimiser's pacing is kept");
	cr_assert_eq(sup_wf_stagger(wf2), 777);
	for (a = wf->runs, b = wf2->runs; a; a = a->next, b = b->next) {
		cr_assert_not_null(b);
		same_run(a, b);
	}
	cr_assert_null(b);
	cr_assert_eq(wf2->last, run_of(wf2, run_c));
	close(fd);
}

Test(state_wf, should_go_on_with_the_restored_runs_as_the_old_ones_would,
     .init = wf_setup, .fini = wf_teardown)
{
	struct world *nw = &W[1];
	struct sup_run *c;
	char names[128] = "";
	size_t n = 0;
	json_t *agg;
	int fd;

	three_runs();
	fd = world_state();
	/* The old process is gone, with its agents' structs, tasks and runs. */
	world_free(&W[0]);
	wf = NULL;
	world_restore(fd);
	close(fd);
	answered = 0;
	/* o1 answers C's task, in flight across the upgrade, in the new world. */
	c = run_of(wf2, run_c);
	cr_assert_eq(c->recs[0]->status, -1);
	cr_assert_eq(fake_result(nw->ts, nw->f, nw->f->agents[0], c->recs[0]->task, TIER_ST_OK, 650,
				 "o1"), 0);
	for (size_t i = 0; i < nw->f->nsent; i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s ", nw->f->sent[i].ag->name);
	cr_assert_str_eq(names, "p1 p2 ", "run C's tier 2 after its re-bound tier-1 result");
	for (int i = 0; i < 5; i++)
		answer_in(nw);      /* p1 p2, three tier-3 batches, s1 */
	cr_assert_eq(c->stage, STAGE_DONE, "run C: stage %d", c->stage);
	cr_assert_neq(run_of(wf2, run_b)->stage, STAGE_DONE, "B still waits for its stagger");
	for (int i = 0; i < 4; i++) {
		fake_advance_to(nw->f, nw->f->now + 1000);
		answer_in(nw);
	}
	cr_assert_eq(run_of(wf2, run_b)->stage, STAGE_DONE, "run B finished after its re-armed stagger");
	cr_assert_eq(runs_done, 1, "no done callback of the old process was called");
	agg = sup_wf_aggregate(wf2, run_c);
	cr_assert_not_null(agg, "C's result is kept to be fetched by id");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(agg, "tiers"), 2),
							"tasks")), 5);
	json_decref(agg);
	agg = sup_wf_aggregate(wf2, run_b);
	cr_assert_float_eq(json_real_value(json_object_get(agg, "stagger_ms")), 1000 * 1e-6, 1e-12);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(agg, "tiers"), 2),
							"batches")), 3);
	json_decref(agg);
}

Test(state_wf, should_refuse_every_cut_of_its_section, .init = wf_setup, .fini = wf_teardown)
{
	int fd;

	three_runs();
	fd = STATE_OF(sup_wf_save, wf);
	st_every_cut(fd, wf2_restore);
	close(fd);
}

Test(state_wf, should_refuse_tasks_another_owner_holds_and_keep_what_it_bound,
     .init = wf_setup, .fini = wf_teardown)
{
	struct sup_tasks_env env;
	struct sup_wf *third;
	struct sup_ho_r *r;
	int fd;

	three_runs();
	fd = world_state();
	world_restore(fd);
	/* A second workflow over the same table: C's task has an owner now. */
	env = fake_env(W[1].f);
	third = sup_wf_new(&env, W[1].ts);
	r = st_open(fd);
	ST_REFUSED(r, sup_wf_restore(third, r), "cannot be re-bound");
	cr_assert_eq(third->nruns, 3, "kept, so that nothing bound points at freed records");
	sup_ho_r_free(r);
	sup_wf_free(third);
	close(fd);
}

/* Save wf as it is (tampered by the caller), restore into wf2: refused
 * with what. */
static void wf_refused(const char *what)
{
	int fd = STATE_OF(sup_wf_save, wf);
	struct sup_ho_r *r = st_open(fd);

	ST_REFUSED(r, wf2_restore(r), what);
	sup_ho_r_free(r);
	close(fd);
}

Test(state_wf, should_refuse_runs_the_stage_machine_could_not_be_in, .init = wf_setup,
     .fini = wf_teardown)
{
	struct sup_run *c;
	uint64_t task;

	three_runs();
	c = run_of(wf, run_c);
	c->pending++;
	wf_refused("1 records wait");
	c->pending--;
	c->stage = 2;
	wf_refused("stage 2 with 1 tasks pending");
	c->stage = -1;
	task = c->recs[0]->task;
	c->recs[0]->task = 4000;
	wf_refused("task 4000 of agent o1 is not pending");
	c->recs[0]->task = task;
	c->next_t3 = 9;
	wf_refused("tier-3 position 9 of 0");
	c->next_t3 = 0;
	c->batch_size = 0;
	wf_refused("batch_size 0 is out of range");
	c->batch_size = 2;
	{
		size_t len = c->ctx_len;

		c->ctx_len = c->ctx_max + 1;
		wf_refused("context of");
		c->ctx_len = len;
	}
	{
		struct sup_run *b = run_of(wf, run_b);
		int64_t dl = b->stagger_timer.deadline;

		fk_timer_disarm(f, &b->stagger_timer);
		wf_refused("stage 3 waits for no task and no stagger");
		fk_timer_arm(f, &b->stagger_timer, dl);
	}
	run_of(wf, run_a)->wal_seg = 3;
	wf_refused("run 1: done, but still holds journal segment 3");
	run_of(wf, run_a)->wal_seg = 0;
	c = run_of(wf, run_b);
	c->id = run_a;
	wf_refused("run id 1 after 1");
	c->id = run_b;
	/* Untampered, the same state is taken. */
	{
		int fd = world_state();

		world_restore(fd);
		close(fd);
	}
}

/* A hand-written section: what no tierd writes. */
static int wf_section(uint32_t version, uint32_t nruns)
{
	struct sup_ho_w *w = sup_ho_w_new();
	int fd;

	sup_ho_w_begin(w, SUP_HO_TAG_WORKFLOWS, version);
	sup_ho_w_u64(w, 5);
	sup_ho_w_i64(w, 2);
	sup_ho_w_i64(w, 0);
	sup_ho_w_u32(w, nruns);
	sup_ho_w_end(w);
	fd = ho_finish(w);
	sup_ho_w_free(w);
	return fd;
}

Test(state_wf, should_refuse_a_foreign_version_a_huge_count_or_no_section, .init = wf_setup,
     .fini = wf_teardown)
{
	struct {
		int fd;
		const char *what;
	} c[] = {
		{ wf_section(2, 0), "version 2, this tierd reads 1" },
		{ wf_section(1, 1u << 30), "1073741824 runs (at most 65536)" },
	};
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	int fd;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		r = st_open(c[i].fd);
		ST_REFUSED(r, wf2_restore(r), c[i].what);
		sup_ho_r_free(r);
		close(c[i].fd);
	}
	sup_ho_w_begin(w, SUP_HO_TAG_EVENTS, 1);
	sup_ho_w_end(w);
	fd = ho_finish(w);
	sup_ho_w_free(w);
	r = st_open(fd);
	ST_REFUSED(r, wf2_restore(r), "no workflows section");
	sup_ho_r_free(r);
	close(fd);
}

/* ---- events ------------------------------------------------------------------ */

static struct sup_events *ev_old, *ev_new;

static void fill_events(struct sup_events *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sup_events_add(e, i % 2 ? "agent_state" : "alert",
			       json_pack("{s:i, s:s}", "i", (int)i, "msg", "x"));
}

static void ev_teardown(void)
{
	sup_events_free(ev_old);
	sup_events_free(ev_new);
	ev_old = ev_new = NULL;
}

static struct sup_events *ev_restored(size_t cap)
{
	int fd = STATE_OF(sup_events_save, ev_old);
	struct sup_ho_r *r = st_open(fd);
	struct sup_events *e = sup_events_new(cap);

	cr_assert_not_null(e);
	cr_assert_eq(sup_events_restore(e, r), 0, "%s", sup_ho_r_error(r));
	sup_ho_r_free(r);
	close(fd);
	return e;
}

Test(state_events, should_go_on_from_the_same_seq_with_the_same_events, .fini = ev_teardown)
{
	json_t *a, *b;

	ev_old = sup_events_new(8);
	fill_events(ev_old, 20);
	ev_new = ev_restored(8);
	cr_assert_eq(sup_events_last_seq(ev_new), 20);
	a = sup_events_since(ev_old, 0, 100);
	b = sup_events_since(ev_new, 0, 100);
	cr_assert_eq(json_array_size(b), 8);
	cr_assert(json_equal(a, b), "the kept events differ");
	json_decref(a);
	json_decref(b);
	cr_assert_eq(sup_events_add(ev_new, "x", json_object()), 21, "no gap, no reset");
	b = sup_events_since(ev_new, 20, 100);
	cr_assert_eq(json_array_size(b), 1);
	json_decref(b);
}

Test(state_events, should_keep_the_newest_that_fit_a_smaller_or_larger_journal, .fini = ev_teardown)
{
	json_t *a, *b;
	struct sup_events *big;

	ev_old = sup_events_new(8);
	fill_events(ev_old, 20);
	ev_new = ev_restored(3);
	a = sup_events_since(ev_old, 17, 100);
	b = sup_events_since(ev_new, 0, 100);
	cr_assert_eq(json_array_size(b), 3);
	cr_assert(json_equal(a, b), "a smaller journal keeps events 18..20");
	json_decref(a);
	json_decref(b);
	big = ev_restored(64);
	a = sup_events_since(ev_old, 0, 100);
	b = sup_events_since(big, 0, 100);
	cr_assert(json_equal(a, b), "a larger one keeps all 8 (13..20)");
	json_decref(a);
	json_decref(b);
	sup_events_free(big);
}

static int ev_restore_fresh(struct sup_ho_r *r)
{
	struct sup_events *e = sup_events_new(8);
	int rc = sup_events_restore(e, r);

	if (rc < 0)
		cr_assert_eq(sup_events_last_seq(e), 0, "a refused state moved the seq");
	sup_events_free(e);
	return rc;
}

Test(state_events, should_refuse_every_cut_and_events_no_journal_wrote, .fini = ev_teardown)
{
	struct {
		uint64_t seq, ev_seq;
		const char *text, *what;
	} c[] = {
		{ 5, 3, "{\"seq\":3", "event 3 is not JSON" },
		{ 5, 3, "{\"seq\":4}", "event 3 is not an object carrying its seq" },
		{ 5, 3, "[3]", "event 3 is not an object" },
		{ 2, 3, "{\"seq\":3}", "event 3 after 0 (last seq 2)" },
		{ UINT64_MAX, 3, "{\"seq\":3}", "last seq 18446744073709551615 is past 2^63 - 1" },
	};
	int fd;

	ev_old = sup_events_new(8);
	fill_events(ev_old, 11);
	fd = STATE_OF(sup_events_save, ev_old);
	st_every_cut(fd, ev_restore_fresh);
	close(fd);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sup_ho_w *w = sup_ho_w_new();
		struct sup_ho_r *r;

		sup_ho_w_begin(w, SUP_HO_TAG_EVENTS, 1);
		sup_ho_w_u64(w, c[i].seq);
		sup_ho_w_u32(w, 1);
		sup_ho_w_u64(w, c[i].ev_seq);
		sup_ho_w_str(w, c[i].text);
		sup_ho_w_end(w);
		fd = ho_finish(w);
		sup_ho_w_free(w);
		r = st_open(fd);
		ST_REFUSED(r, ev_restore_fresh(r), c[i].what);
		sup_ho_r_free(r);
		close(fd);
	}
	/* Into a journal that has events of its own: refused. */
	fd = STATE_OF(sup_events_save, ev_old);
	{
		struct sup_ho_r *r = st_open(fd);

		ev_new = sup_events_new(8);
		fill_events(ev_new, 1);
		ST_REFUSED(r, sup_events_restore(ev_new, r), "already has events");
		sup_ho_r_free(r);
	}
	close(fd);
}
