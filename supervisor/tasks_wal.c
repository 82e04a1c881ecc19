/* SPDX-License-Identifier: MIT */
/*
 * The task table's journal (docs/journal.md): a SUBMIT record when a
 * journaled task is accepted (acknowledged once durable), a DONE record
 * when it ends (delivered once durable), and the replay at start that
 * turns the records back into pending tasks and retained results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "tasks_internal.h"
#include "wal/walrec.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sup_tasks_set_wal(struct sup_tasks *ts, struct sup_wal *w)
{
	ts->wal = w;
}

static void put_ref(struct sup_tasks *ts, uint64_t *seg)
{
	if (*seg && ts->wal)
		sup_wal_unref(ts->wal, *seg);
	*seg = 0;
}

void sup_tasks_wal_forget(struct sup_tasks *ts, struct sup_task *t)
{
	put_ref(ts, &t->wal_seg_submit);
	put_ref(ts, &t->wal_seg_done);
}

/* ---- SUBMIT ---------------------------------------------------------------- */

int sup_tasks_wal_submit(struct sup_tasks *ts, struct sup_task *t, char *err, size_t errlen)
{
	uint8_t fixed[SUP_WALREC_SUBMIT_FIXED];
	struct iovec iov[5];
	struct sup_wal_submit s = {
		.id = t->id, .group = t->group, .timeout_ns = t->timeout_ns,
		.attempts = t->crashes, .flags = t->flags, .tier = (uint8_t)t->tier,
		.agent = t->target ? t->target->name : "",
		.type = t->data, .type_len = t->type_len,
		.context = t->data + t->type_len, .context_len = t->context_len,
		.payload = t->data + t->type_len + t->context_len, .len = t->len,
	};
	size_t an = strlen(s.agent);
	uint64_t seg;
	int n, r;

	if (!t->submit_rt)
		t->submit_rt = realtime_ns();
	s.submit_rt_ns = t->submit_rt;
	s.agent_len = (uint8_t)(an > 255 ? 255 : an);
	/* Its id must not come back after a crash: reserved durably first. */
	r = sup_wal_reserve_ids(ts->wal, SUP_WAL_IDS_TASK, t->id, err, errlen);
	if (r < 0)
		return r;
	n = sup_walrec_submit(&s, fixed, iov);
	r = sup_wal_append(ts->wal, SUP_WAL_SUBMIT, iov, n, true, &seg, err, errlen);
	if (r < 0)
		return r;
	put_ref(ts, &t->wal_seg_submit);
	t->wal_seg_submit = seg;
	return 0;
}

static void acked(struct sup_wal_waiter *wt, int err)
{
	struct sup_task *t = container_of(wt, struct sup_task, wal_ack_w);

	if (t->ack)
		t->ack(t->ts, t->id, err, t->ack_arg, t->ack_tag);
	t->ack = NULL;
}

void sup_tasks_wal_acked(struct sup_tasks *ts, struct sup_task *t)
{
	if (t->ack)
		sup_wal_barrier(ts->wal, &t->wal_ack_w, acked);
}

/* ---- DONE ------------------------------------------------------------------ */

static int64_t after(int64_t base, int64_t x)
{
	return x && base && x >= base ? x - base : 0;
}

static void done_durable(struct sup_wal_waiter *wt, int err)
{
	struct sup_task *t = container_of(wt, struct sup_task, wal_done_w);
	struct sup_tasks *ts = t->ts;

	if (err < 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "task %llu: its result could not be made durable (%s); "
			 "delivered anyway", (unsigned long long)t->id, strerror(-err));
		ts->env.event(ts->env.ctx, "journal_error", json_pack("{s:I, s:s}", "task",
			      (json_int_t)t->id, "error", strerror(-err)), msg);
	}
	sup_tasks_deliver(ts, t);
}

void sup_tasks_wal_done(struct sup_tasks *ts, struct sup_task *t)
{
	uint8_t fixed[SUP_WALREC_DONE_FIXED];
	struct iovec iov[4];
	struct sup_wal_done d = {
		.id = t->id, .group = t->group, .finish_rt_ns = realtime_ns(),
		.dispatched = after(t->t.queued, t->t.dispatched),
		.started = after(t->t.queued, t->t.started),
		.finished = after(t->t.queued, t->t.finished),
		.accepted = after(t->t.queued, t->t.accepted),
		.quality = t->quality, .attempts = t->attempts, .status = (uint8_t)t->status,
		.tier = (uint8_t)t->tier, .agent = t->last_agent,
		.agent_len = (uint8_t)strnlen(t->last_agent, sizeof(t->last_agent)),
		.error = t->error ? t->error : "",
		.error_len = t->error ? (uint32_t)strlen(t->error) : 0,
		.result = t->result, .result_len = t->result_len,
	};
	char err[256];
	uint64_t seg;
	int n = sup_walrec_done(&d, fixed, iov);
	int r = sup_wal_append(ts->wal, SUP_WAL_DONE, iov, n, false, &seg, err, sizeof(err));

	if (r < 0) {
		/* Its SUBMIT stays: a replay runs it again (at-least-once). */
		ts->env.event(ts->env.ctx, "journal_error", json_pack("{s:I, s:s}", "task",
			      (json_int_t)t->id, "error", err), err);
	} else {
		t->wal_seg_done = seg;
	}
	sup_wal_barrier(ts->wal, &t->wal_done_w, done_durable);
}

/* ---- replay ------------------------------------------------------------------ */

static struct sup_task *replay_new(struct sup_tasks *ts, uint64_t id, size_t data_len)
{
	struct sup_task *t = calloc(1, sizeof(*t) + data_len);

	if (!t)
		return NULL;
	t->ts = ts;
	t->id = id;
	t->quality = -1;
	t->journal = true;
	sup_timer_init(&t->timer, sup_tasks_deadline_fired, t);
	if (id > ts->next_id)
		ts->next_id = id;
	return t;
}

static void replay_submit(struct sup_tasks *ts, const struct sup_wal_rec *r)
{
	struct sup_wal_submit s;
	struct sup_task *t, *old;

	if (sup_walrec_get_submit(r, &s) < 0)
		return;
	old = sup_tasks_find(ts, s.id);
	if (old && old->state == TS_DONE)
		return;
	t = replay_new(ts, s.id, (size_t)s.type_len + s.context_len + s.len);
	if (!t)
		abort(); /* an acknowledged task would be lost; cannot go on */
	if (old) {
		sup_tq_remove(old);
		sup_tasks_drop(ts, old);
	}
	t->tier = s.tier;
	t->flags = s.flags;
	t->group = s.group;
	t->timeout_ns = s.timeout_ns;
	t->submit_rt = s.submit_rt_ns;
	t->crashes = s.attempts;
	t->type_len = s.type_len;
	t->context_len = s.context_len;
	t->len = s.len;
	memcpy(t->data, s.type, s.type_len);
	memcpy(t->data + s.type_len, s.context, s.context_len);
	memcpy(t->data + s.type_len + s.context_len, s.payload, s.len);
	snprintf(t->last_agent, sizeof(t->last_agent), "%.*s", (int)s.agent_len, s.agent);
	t->wal_seg_submit = r->seg;
	sup_wal_ref(ts->wal, r->seg);
	sup_tasks_hash_add(ts, t);
	sup_tq_push(&ts->replay_q, t, false);
}

static void replay_done(struct sup_tasks *ts, const struct sup_wal_rec *r)
{
	const struct sup_supervisor_conf *sc = sup_tasks_sconf(ts);
	int64_t age, now = sup_tasks_now(ts), base;
	struct sup_wal_done d;
	struct sup_task *t, *old;

	if (sup_walrec_get_done(r, &d) < 0 || d.status >= TIER_ST_COUNT)
		return;
	old = sup_tasks_find(ts, d.id);
	if (old && old->state == TS_DONE)
		return;
	if (old) {
		sup_tq_remove(old);
		sup_tasks_drop(ts, old);
	}
	if (d.id > ts->next_id)
		ts->next_id = d.id;
	age = realtime_ns() - d.finish_rt_ns;
	if (age < 0)
		age = 0;
	if (age >= sc->result_retention_ns)
		return;
	t = replay_new(ts, d.id, 0);
	if (!t)
		return;
	t->state = TS_DONE;
	t->status = d.status;
	t->tier = d.tier;
	t->group = d.group;
	t->quality = d.quality;
	t->attempts = d.attempts;
	snprintf(t->last_agent, sizeof(t->last_agent), "%.*s", (int)d.agent_len, d.agent);
	if (d.error_len)
		t->error = strndup(d.error, d.error_len);
	if (d.result_len && (t->result = malloc(d.result_len))) {
		memcpy(t->result, d.result, d.result_len);
		t->result_len = d.result_len;
	}
	base = now - age - d.accepted;
	t->t.queued = base;
	t->t.dispatched = d.dispatched ? base + d.dispatched : 0;
	t->t.started = d.started ? base + d.started : 0;
	t->t.finished = d.finished ? base + d.finished : 0;
	t->t.accepted = base + d.accepted;
	t->wal_seg_done = r->seg;
	sup_wal_ref(ts->wal, r->seg);
	sup_tasks_hash_add(ts, t);
	sup_tasks_retain(ts, t);
	/* Retention runs from the finish, not from this start. */
	t->expires = now - age + sc->result_retention_ns;
	ts->st.replayed_results++;
}

void sup_tasks_replay_record(struct sup_tasks *ts, const struct sup_wal_rec *r)
{
	if (!ts->wal)
		return;
	if (ts->count + 1 > ts->nbuckets && sup_tasks_grow(ts) < 0)
		abort(); /* as in submit: losing the journal's tasks is not an option */
	if (r->type == SUP_WAL_SUBMIT)
		replay_submit(ts, r);
	else if (r->type == SUP_WAL_DONE)
		replay_done(ts, r);
}

unsigned sup_tasks_replay_cancel_group(struct sup_tasks *ts, uint64_t group, const char *why)
{
	struct sup_task *t, *next;
	unsigned n = 0;

	for (t = ts->replay_q.head; t; t = next) {
		next = t->next;
		if (t->group != group)
			continue;
		sup_tq_remove(t);
		sup_tasks_finish(ts, t, TIER_ST_CANCELLED, "%s", why);
		n++;
	}
	return n;
}

json_t *sup_tasks_group_json(struct sup_tasks *ts, uint64_t group)
{
	json_t *a = json_array();

	for (struct sup_task *t = ts->retained.head; t && a; t = t->next)
		if (t->group == group)
			json_array_append_new(a, sup_task_json(t));
	return a;
}

unsigned sup_tasks_replay_end(struct sup_tasks *ts, unsigned *ret_crashed, unsigned *ret_results)
{
	const struct sup_supervisor_conf *sc = sup_tasks_sconf(ts);
	unsigned requeued = 0, crashed = 0;
	struct sup_task *t;
	char err[256];

	/* Ids continue after every id ever reserved, not only after the
	 * highest one in the journal: acknowledged tasks lost in a power cut
	 * under mode off left no record, but their reservation is durable. */
	if (ts->wal && ts->next_id < sup_wal_reserved(ts->wal, SUP_WAL_IDS_TASK))
		ts->next_id = sup_wal_reserved(ts->wal, SUP_WAL_IDS_TASK);
	while ((t = sup_tq_pop(&ts->replay_q))) {
		t->crashes++;
		t->t.queued = sup_tasks_now(ts);
		if (t->last_agent[0]) {
			t->target = ts->env.find_agent(ts->env.ctx, t->last_agent);
			if (!t->target) {
				sup_tasks_finish(ts, t, TIER_ST_REJECTED, "agent %s is no longer "
						 "configured (task replayed from the journal)", t->last_agent);
				crashed++;
				continue;
			}
			t->tier = (int)t->target->tier;
		}
		t->last_agent[0] = '\0';
		if (t->crashes > sc->task_retry_budget) {
			sup_tasks_finish(ts, t, TIER_ST_CRASHED, "pending through %u tierd restarts "
					 "and agent deaths, past task_retry_budget (%u)", t->crashes,
					 sc->task_retry_budget);
			crashed++;
			continue;
		}
		/* A fresh SUBMIT in the new segment, so old ones can go. */
		if (sup_tasks_wal_submit(ts, t, err, sizeof(err)) < 0)
			ts->env.event(ts->env.ctx, "journal_error", json_pack("{s:I, s:s}", "task",
				      (json_int_t)t->id, "error", err), err);
		if (t->timeout_ns > 0)
			ts->env.timer_arm(ts->env.ctx, &t->timer, t->t.queued + t->timeout_ns);
		ts->st.replayed++;
		requeued++;
		sup_tasks_place(ts, t, false);
	}
	if (ret_crashed)
		*ret_crashed = crashed;
	if (ret_results)
		*ret_results = (unsigned)ts->st.replayed_results;
	return requeued;
}
