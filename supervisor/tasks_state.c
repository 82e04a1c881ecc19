/* SPDX-License-Identifier: MIT */
/*
 * The task table across a live upgrade (docs/handover.md, section
 * "tasks"): every task with its place (a tier's queue, an agent's queue,
 * in flight on an incarnation, retained), in queue order, and the table's
 * counters. Restored after the agents and their incarnations, before the
 * workflows (which re-bind their tasks with sup_tasks_rebind).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "handover/handover.h"
#include "tasks_internal.h"

#define SEC_VERSION 1

enum { AT_TIER_Q = 1, AT_AGENT_Q, AT_INFLIGHT, AT_RETAINED };

/* A restored task's payload, type and context; bounded so a corrupt state
 * cannot make the new binary allocate without limit. */
#define DATA_MAX   (1u << 30)
#define ERROR_MAX  4096u

static void save_task(struct sup_ho_w *w, const struct sup_task *t, uint8_t where, int tier,
		      const char *agent)
{
	sup_ho_w_u8(w, where);
	sup_ho_w_u8(w, (uint8_t)tier);
	sup_ho_w_str(w, agent);
	sup_ho_w_u64(w, t->id);
	sup_ho_w_str(w, t->target ? t->target->name : NULL);
	sup_ho_w_u8(w, (uint8_t)t->tier);
	sup_ho_w_u32(w, t->inc_n);
	sup_ho_w_str(w, t->last_agent);
	sup_ho_w_u32(w, t->attempts);
	sup_ho_w_u32(w, t->crashes);
	sup_ho_w_i64(w, t->t.queued);
	sup_ho_w_i64(w, t->t.dispatched);
	sup_ho_w_i64(w, t->t.started);
	sup_ho_w_i64(w, t->t.finished);
	sup_ho_w_i64(w, t->t.accepted);
	sup_ho_w_i64(w, sup_timer_armed(&t->timer) ? sup_timer_deadline(&t->timer) : 0);
	sup_ho_w_u32(w, (uint32_t)t->status);
	sup_ho_w_f64(w, t->quality);
	sup_ho_w_str(w, t->error);
	sup_ho_w_bytes(w, t->result, t->result_len);
	sup_ho_w_u8(w, t->done != NULL);
	sup_ho_w_u64(w, t->group);
	sup_ho_w_i64(w, t->expires);
	sup_ho_w_u16(w, t->flags);
	sup_ho_w_u16(w, t->type_len);
	sup_ho_w_u32(w, t->context_len);
	sup_ho_w_bytes(w, t->data, (size_t)t->type_len + t->context_len + t->len);
	sup_ho_w_u64(w, t->wal_seg_submit);
	sup_ho_w_u64(w, t->wal_seg_done);
	sup_ho_w_u8(w, t->journal);
	sup_ho_w_i64(w, t->timeout_ns);
	sup_ho_w_i64(w, t->submit_rt);
}

int sup_tasks_save(const struct sup_tasks *ts, struct sup_ho_w *w)
{
	size_t n = ts->env.nagents(ts->env.ctx);
	uint32_t total = (uint32_t)ts->count;

	/* Only tasks on a list can be saved; one finishing right now (its
	 * result waiting to be made durable) would be lost. */
	if (!sup_tasks_settled(ts))
		return -EBUSY;

	sup_ho_w_begin(w, SUP_HO_TAG_TASKS, SEC_VERSION);
	sup_ho_w_u64(w, ts->next_id);
	sup_ho_w_u64(w, ts->st.submitted);
	for (int s = 0; s < TIER_ST_COUNT; s++)
		sup_ho_w_u64(w, ts->st.finished[s]);
	sup_ho_w_u64(w, ts->st.late_results);
	sup_ho_w_u64(w, ts->st.retries);
	sup_ho_w_u64(w, ts->st.dispatched);
	sup_ho_w_u64(w, ts->st.retention_dropped);
	sup_ho_w_i64(w, ts->rtt_ewma);
	/* Per agent: what the table keeps on it besides its tasks. */
	sup_ho_w_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct sup_agent *ag = ts->env.agent(ts->env.ctx, i);
		const struct agent_tasks *at = ag->task_state;

		sup_ho_w_str(w, ag->name);
		sup_ho_w_u8(w, at && at->draining);
		sup_ho_w_i64(w, at ? at->last_result : 0);
	}
	sup_ho_w_u32(w, total);
	for (int tier = 1; tier <= SUP_NTIERS; tier++)
		for (const struct sup_task *t = ts->tier_q[tier].head; t; t = t->next)
			save_task(w, t, AT_TIER_Q, tier, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct sup_agent *ag = ts->env.agent(ts->env.ctx, i);
		const struct agent_tasks *at = ag->task_state;

		if (!at)
			continue;
		for (const struct sup_task *t = at->queue.head; t; t = t->next)
			save_task(w, t, AT_AGENT_Q, ag->tier, ag->name);
		for (const struct sup_task *t = at->inflight.head; t; t = t->next)
			save_task(w, t, AT_INFLIGHT, ag->tier, ag->name);
	}
	for (const struct sup_task *t = ts->retained.head; t; t = t->next)
		save_task(w, t, AT_RETAINED, 0, NULL);
	sup_ho_w_end(w);
	return 0;
}

/* ---- restore ------------------------------------------------------------ */

static struct sup_agent *agent_named(struct sup_tasks *ts, struct sup_ho_r *r, const char *name,
				     const char *what, uint64_t id)
{
	struct sup_agent *ag = ts->env.find_agent(ts->env.ctx, name);

	if (!ag)
		sup_ho_r_fail(r, "task %llu: %s agent '%s' is not in the configuration",
			      (unsigned long long)id, what, name);
	return ag;
}

static void hash_put(struct sup_tasks *ts, struct sup_task *t)
{
	size_t b = (size_t)((t->id * 0x9e3779b97f4a7c15ull) >> 32) & (ts->nbuckets - 1);

	t->hnext = ts->buckets[b];
	ts->buckets[b] = t;
	ts->count++;
}

static int restore_task(struct sup_tasks *ts, struct sup_ho_r *r)
{
	char agent[64], target[64], last[64], *error = NULL;
	bool agent_null, target_null;
	uint8_t where, tier8, ttier, had_done, journal;
	uint32_t inc_n, attempts, crashes, status, ctx_len, res_len, data_len;
	uint64_t seg_submit, seg_done;
	int64_t timeout_ns, submit_rt;
	uint16_t flags, type_len;
	int64_t tq, td, tst, tf, ta, deadline, expires;
	uint64_t id, group;
	double quality;
	const void *res, *data;
	struct sup_agent *on = NULL, *tgt = NULL;
	struct sup_task *t;

	sup_ho_r_u8(r, &where);
	sup_ho_r_u8(r, &tier8);
	sup_ho_r_str(r, agent, sizeof(agent));
	sup_ho_r_u64(r, &id);
	sup_ho_r_str(r, target, sizeof(target));
	sup_ho_r_u8(r, &ttier);
	sup_ho_r_u32(r, &inc_n);
	sup_ho_r_str(r, last, sizeof(last));
	sup_ho_r_u32(r, &attempts);
	sup_ho_r_u32(r, &crashes);
	sup_ho_r_i64(r, &tq);
	sup_ho_r_i64(r, &td);
	sup_ho_r_i64(r, &tst);
	sup_ho_r_i64(r, &tf);
	sup_ho_r_i64(r, &ta);
	sup_ho_r_i64(r, &deadline);
	sup_ho_r_u32(r, &status);
	sup_ho_r_f64(r, &quality);
	sup_ho_r_strdup(r, &error, ERROR_MAX);
	sup_ho_r_bytes(r, &res, &res_len, DATA_MAX);
	sup_ho_r_u8(r, &had_done);
	sup_ho_r_u64(r, &group);
	sup_ho_r_i64(r, &expires);
	sup_ho_r_u16(r, &flags);
	sup_ho_r_u16(r, &type_len);
	sup_ho_r_u32(r, &ctx_len);
	sup_ho_r_bytes(r, &data, &data_len, DATA_MAX);
	sup_ho_r_u64(r, &seg_submit);
	sup_ho_r_u64(r, &seg_done);
	sup_ho_r_u8(r, &journal);
	sup_ho_r_i64(r, &timeout_ns);
	sup_ho_r_i64(r, &submit_rt);
	/* Agent names are never empty: "" is "none". */
	agent_null = !agent[0];
	target_null = !target[0];
	if (!sup_ho_r_ok(r))
		goto fail;
	if (!id || id > ts->next_id || sup_tasks_find(ts, id)) {
		sup_ho_r_fail(r, "task id %llu is 0, past the next id or twice", (unsigned long long)id);
		goto fail;
	}
	if (where < AT_TIER_Q || where > AT_RETAINED || ttier < 1 || ttier > SUP_NTIERS ||
	    (where == AT_TIER_Q && (tier8 < 1 || tier8 > SUP_NTIERS)) ||
	    (uint64_t)type_len + ctx_len > data_len ||
	    (where == AT_RETAINED ? status >= TIER_ST_COUNT : false)) {
		sup_ho_r_fail(r, "task %llu: place %u, tier %u, status %u or lengths out of range",
			      (unsigned long long)id, where, ttier, status);
		goto fail;
	}
	if (!target_null && !(tgt = agent_named(ts, r, target, "target", id)))
		goto fail;
	if (where == AT_AGENT_Q || where == AT_INFLIGHT) {
		if (agent_null) {
			sup_ho_r_fail(r, "task %llu: queued or in flight on no agent", (unsigned long long)id);
			goto fail;
		}
		if (!(on = agent_named(ts, r, agent, "its", id)))
			goto fail;
		if (where == AT_INFLIGHT && (!on->inc || on->inc->n != inc_n)) {
			sup_ho_r_fail(r, "task %llu: in flight on incarnation %u of agent %s, which "
				      "runs %u", (unsigned long long)id, inc_n, agent,
				      on->inc ? on->inc->n : 0);
			goto fail;
		}
	}
	if (ts->count + 1 > ts->nbuckets && sup_tasks_grow(ts) < 0)
		goto oom;
	t = calloc(1, sizeof(*t) + data_len);
	if (!t)
		goto oom;
	t->ts = ts;
	t->id = id;
	t->target = tgt;
	t->tier = ttier;
	t->inc_n = inc_n;
	memcpy(t->last_agent, last, sizeof(t->last_agent));
	t->attempts = attempts;
	t->crashes = crashes;
	t->t = (struct sup_task_times){ tq, td, tst, tf, ta };
	t->quality = quality;
	t->error = error;
	t->flags = flags;
	t->type_len = type_len;
	t->context_len = ctx_len;
	t->len = data_len - type_len - ctx_len;
	memcpy(t->data, data, data_len);
	t->group = group;
	t->expires = expires;
	/* Its journal references come back with the journal's counts. */
	t->wal_seg_submit = seg_submit;
	t->wal_seg_done = seg_done;
	t->journal = journal;
	t->timeout_ns = timeout_ns;
	t->submit_rt = submit_rt;
	/* Its owner is gone with the old process: a workflow re-binds its
	 * tasks, a client that waited reconnects and waits by id. */
	(void)had_done;
	if (res_len) {
		t->result = malloc(res_len);
		if (!t->result) {
			free(t);
			goto oom;
		}
		memcpy(t->result, res, res_len);
		t->result_len = res_len;
	}
	sup_timer_init(&t->timer, sup_tasks_deadline_fired, t);
	hash_put(ts, t);
	switch (where) {
	case AT_TIER_Q:
		t->state = TS_QUEUED;
		sup_tq_push(&ts->tier_q[tier8], t, false);
		break;
	case AT_AGENT_Q:
		t->state = TS_QUEUED;
		sup_tq_push(&sup_tasks_at(on)->queue, t, false);
		break;
	case AT_INFLIGHT:
		t->state = TS_INFLIGHT;
		t->agent = on;
		sup_tq_push(&sup_tasks_at(on)->inflight, t, false);
		ts->inflight++;
		break;
	default:
		t->state = TS_DONE;
		t->status = (int)status;
		sup_tasks_retain_restored(ts, t);
		break;
	}
	if (deadline && where != AT_RETAINED)
		ts->env.timer_arm(ts->env.ctx, &t->timer, deadline);
	return 0;
oom:
	sup_ho_r_fail(r, "out of memory restoring task %llu", (unsigned long long)id);
fail:
	free(error);
	return -EINVAL;
}

int sup_tasks_restore(struct sup_tasks *ts, struct sup_ho_r *r)
{
	uint32_t version, nag, n;

	if (!sup_ho_r_section(r, SUP_HO_TAG_TASKS, &version)) {
		sup_ho_r_fail(r, "no tasks section");
		return -EINVAL;
	}
	if (version != SEC_VERSION) {
		sup_ho_r_fail(r, "tasks section version %u, this tierd reads %u", version, SEC_VERSION);
		return -EINVAL;
	}
	sup_ho_r_u64(r, &ts->next_id);
	sup_ho_r_u64(r, &ts->st.submitted);
	for (int s = 0; s < TIER_ST_COUNT; s++)
		sup_ho_r_u64(r, &ts->st.finished[s]);
	sup_ho_r_u64(r, &ts->st.late_results);
	sup_ho_r_u64(r, &ts->st.retries);
	sup_ho_r_u64(r, &ts->st.dispatched);
	sup_ho_r_u64(r, &ts->st.retention_dropped);
	sup_ho_r_i64(r, &ts->rtt_ewma);
	sup_ho_r_u32(r, &nag);
	for (uint32_t i = 0; i < nag && sup_ho_r_ok(r); i++) {
		char name[64];
		uint8_t draining;
		int64_t last;
		struct sup_agent *ag;

		sup_ho_r_str(r, name, sizeof(name));
		sup_ho_r_u8(r, &draining);
		sup_ho_r_i64(r, &last);
		if (!sup_ho_r_ok(r))
			break;
		ag = ts->env.find_agent(ts->env.ctx, name);
		if (!ag)
			continue;   /* checked where it matters: its tasks */
		sup_tasks_at(ag)->draining = draining;
		sup_tasks_at(ag)->last_result = last;
	}
	sup_ho_r_u32(r, &n);
	for (uint32_t i = 0; i < n && sup_ho_r_ok(r); i++)
		if (restore_task(ts, r) < 0)
			break;
	return sup_ho_r_ok(r) ? 0 : -EINVAL;
}

int sup_tasks_rebind(struct sup_tasks *ts, uint64_t id, sup_task_done_fn done, void *arg)
{
	struct sup_task *t = sup_tasks_find(ts, id);

	if (!t || (t->state == TS_DONE && !t->wal_finishing))
		return -ENOENT;
	if (t->done)
		return -EBUSY;
	t->done = done;
	t->done_arg = arg;
	return 0;
}

/* After a restore: agents with room take work again (their rings may
 * have been emptied while the old binary handed over). */
void sup_tasks_resume(struct sup_tasks *ts)
{
	for (size_t i = 0, n = ts->env.nagents(ts->env.ctx); i < n; i++)
		sup_tasks_flush(ts, ts->env.agent(ts->env.ctx, i));
}

/* Before saving: what was written into rings and not yet published goes
 * out now (the end-of-turn flush will not run again in this process). */
void sup_tasks_publish_pending(struct sup_tasks *ts)
{
	sup_tasks_flush_all(NULL, &ts->flush);
}

/* Every task on a list (none between its DONE record and its delivery). */
bool sup_tasks_settled(const struct sup_tasks *ts)
{
	uint64_t n = ts->retained.n;

	for (int tier = 1; tier <= SUP_NTIERS; tier++)
		n += ts->tier_q[tier].n;
	for (size_t i = 0, k = ts->env.nagents(ts->env.ctx); i < k; i++) {
		const struct agent_tasks *at = ts->env.agent(ts->env.ctx, i)->task_state;

		if (at)
			n += at->queue.n + at->inflight.n;
	}
	return n == ts->count;
}
