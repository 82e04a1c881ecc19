/* SPDX-License-Identifier: MIT */
/* The task table: see tasks.h. Ids, queues, submission, results, the one
 * place a task ends, and retention. Which agent gets a task, deadlines and
 * agents that come and go are in tasks_dispatch.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "tasks_internal.h"

/* ---- small helpers ---------------------------------------------------- */

void sup_tq_push(struct tqueue *q, struct sup_task *t, bool front)
{
	t->list = q;
	if (front) {
		t->prev = NULL;
		t->next = q->head;
		if (q->head)
			q->head->prev = t;
		else
			q->tail = t;
		q->head = t;
	} else {
		t->next = NULL;
		t->prev = q->tail;
		if (q->tail)
			q->tail->next = t;
		else
			q->head = t;
		q->tail = t;
	}
	q->n++;
}

void sup_tq_remove(struct sup_task *t)
{
	struct tqueue *q = t->list;

	if (!q)
		return;
	if (t->prev)
		t->prev->next = t->next;
	else
		q->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		q->tail = t->prev;
	q->n--;
	t->list = NULL;
	t->prev = t->next = NULL;
}

struct sup_task *sup_tq_pop(struct tqueue *q)
{
	struct sup_task *t = q->head;

	if (t)
		sup_tq_remove(t);
	return t;
}

struct agent_tasks *sup_tasks_at(struct sup_agent *ag)
{
	struct agent_tasks *at = ag->task_state;

	if (!at) {
		at = calloc(1, sizeof(*at));
		if (!at)
			abort(); /* a lost task would break exactly-once; cannot go on */
		at->ag = ag;
		ag->task_state = at;
	}
	return at;
}

static size_t bucket_of(const struct sup_tasks *ts, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (ts->nbuckets - 1);
}

int sup_tasks_grow(struct sup_tasks *ts)
{
	size_t n = ts->nbuckets ? ts->nbuckets * 2 : 1024;
	struct sup_task **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < ts->nbuckets; i++) {
		struct sup_task *t = ts->buckets[i];

		while (t) {
			struct sup_task *next = t->hnext;
			size_t k = (size_t)((t->id * 0x9e3779b97f4a7c15ull) >> 32) & (n - 1);

			t->hnext = b[k];
			b[k] = t;
			t = next;
		}
	}
	free(ts->buckets);
	ts->buckets = b;
	ts->nbuckets = n;
	return 0;
}

struct sup_task *sup_tasks_find(const struct sup_tasks *ts, uint64_t id)
{
	struct sup_task *t;

	if (!ts->nbuckets)
		return NULL;
	for (t = ts->buckets[bucket_of(ts, id)]; t; t = t->hnext)
		if (t->id == id)
			return t;
	return NULL;
}

static void hash_del(struct sup_tasks *ts, struct sup_task *t)
{
	struct sup_task **pp = &ts->buckets[bucket_of(ts, t->id)];

	while (*pp && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = t->hnext;
		ts->count--;
	}
}

static void task_free(struct sup_task *t)
{
	free(t->error);
	free(t->result);
	free(t);
}

void sup_tasks_hash_add(struct sup_tasks *ts, struct sup_task *t)
{
	t->hnext = ts->buckets[bucket_of(ts, t->id)];
	ts->buckets[bucket_of(ts, t->id)] = t;
	ts->count++;
}

/* Out of the table for good: its journal references go with it. */
void sup_tasks_drop(struct sup_tasks *ts, struct sup_task *t)
{
	hash_del(ts, t);
	sup_tasks_wal_forget(ts, t);
	task_free(t);
}

const char *sup_task_status_name(int status)
{
	static const char *const names[TIER_ST_COUNT] = {
		"ok", "error", "timeout", "crashed", "rejected", "cancelled",
	};

	return status >= 0 && status < TIER_ST_COUNT ? names[status] : "pending";
}

void sup_task_info(const struct sup_task *t, struct sup_task_info *ret)
{
	ret->id = t->id;
	/* Until its end is durable nobody may see it. */
	ret->status = t->state == TS_DONE && !t->wal_finishing ? t->status : -1;
	ret->quality = t->quality;
	ret->result = t->result;
	ret->result_len = t->result_len;
	ret->error = t->error;
	ret->agent = t->last_agent;
	ret->tier = t->tier;
	ret->attempts = t->attempts;
	ret->t = t->t;
}

json_t *sup_task_json(const struct sup_task *t)
{
	struct sup_task_info i;

	sup_task_info(t, &i);
	return sup_task_info_json(&i);
}

/* ---- retention: finished results kept for clients that left ------------ */

/* What a kept task costs tierd: itself, its payload, its result, its error. */
static uint64_t retained_cost(const struct sup_task *t)
{
	return sizeof(*t) + t->type_len + t->context_len + t->len + t->result_len +
	       (t->error ? strlen(t->error) + 1 : 0);
}

static void retained_drop(struct sup_tasks *ts, struct sup_task *t)
{
	sup_tq_remove(t);
	ts->retained_bytes -= retained_cost(t);
	sup_tasks_drop(ts, t);
}

/* Keep t until result_retention passes, or until result_retention_max or
 * result_retention_bytes push it out, oldest first: detached submissions
 * cost tierd at most the caps, whatever a client sends. */
void sup_tasks_retain(struct sup_tasks *ts, struct sup_task *t)
{
	const struct sup_supervisor_conf *s = sup_tasks_sconf(ts);

	t->expires = sup_tasks_now(ts) + s->result_retention_ns;
	sup_tq_push(&ts->retained, t, false);
	ts->retained_bytes += retained_cost(t);
	while (ts->retained.n && (ts->retained.n > s->result_retention_max ||
				  ts->retained_bytes > s->result_retention_bytes)) {
		retained_drop(ts, ts->retained.head);
		ts->st.retention_dropped++;
	}
}

/* A retained task handed over by the previous binary: its expiry stands. */
void sup_tasks_retain_restored(struct sup_tasks *ts, struct sup_task *t)
{
	sup_tq_push(&ts->retained, t, false);
	ts->retained_bytes += retained_cost(t);
}

/* Tell the journal once nothing is in flight on a draining agent. */
void sup_tasks_drained_event(struct sup_tasks *ts, struct sup_agent *ag)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "agent %s drained", ag->name);
	ts->env.event(ts->env.ctx, "drained", json_pack("{s:s}", "agent", ag->name), msg);
}

/* The one place a task ends. */
void sup_tasks_finish(struct sup_tasks *ts, struct sup_task *t, int status, const char *errfmt, ...)
{
	if (t->state == TS_DONE)
		return;
	if (t->state == TS_INFLIGHT && t->agent) {
		struct agent_tasks *at = sup_tasks_at(t->agent);

		ts->env.task_done(ts->env.ctx, t->agent, status, sup_tasks_now(ts) - t->t.queued,
				  t->quality);
		sup_tq_remove(t);
		ts->inflight--;
		if (at->draining && !at->inflight.n)
			sup_tasks_drained_event(ts, t->agent);
	} else {
		sup_tq_remove(t);
	}
	t->agent = NULL;
	t->state = TS_DONE;
	t->status = status;
	if (!t->t.accepted)
		t->t.accepted = sup_tasks_now(ts);
	if (errfmt) {
		va_list ap;

		va_start(ap, errfmt);
		if (vasprintf(&t->error, errfmt, ap) < 0)
			t->error = NULL;
		va_end(ap);
		/* Parts come from agents: keep the sentence printable ASCII. */
		for (char *p = t->error; p && *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
	}
	ts->env.timer_disarm(ts->env.ctx, &t->timer);
	ts->st.finished[status]++;
	if (t->journal && ts->wal) {
		/* Its DONE record first: delivered once that is durable, so a
		 * replay never re-runs what a client already holds. */
		t->wal_finishing = true;
		sup_tasks_wal_done(ts, t);
		return;
	}
	sup_tasks_deliver(ts, t);
}

void sup_tasks_deliver(struct sup_tasks *ts, struct sup_task *t)
{
	t->wal_finishing = false;
	if (t->wal_seg_submit) {
		sup_wal_unref(ts->wal, t->wal_seg_submit);
		t->wal_seg_submit = 0;
	}
	/* Nobody took the result (no owner, or one that left): keep it to be
	 * fetched by id. */
	if (!t->done || t->done(ts, t, t->done_arg)) {
		sup_tasks_retain(ts, t);
		return;
	}
	sup_tasks_drop(ts, t);
}

/* ---- submission ------------------------------------------------------------ */

int64_t sup_tasks_submit(struct sup_tasks *ts, const struct sup_task_spec *spec,
			 char *err, size_t errlen)
{
	const struct sup_supervisor_conf *s = sup_tasks_sconf(ts);
	struct sup_agent *target = NULL;
	struct sup_task *t;
	int tier = spec->tier;
	uint64_t id;

	if (ts->shutting_down) {
		snprintf(err, errlen, "tierd is shutting down");
		return -ECANCELED;
	}
	if (!spec->type || !spec->type_len || spec->type_len > 255) {
		snprintf(err, errlen, "a task needs a type of 1 to 255 bytes");
		return -EINVAL;
	}
	if (spec->len > s->max_payload) {
		snprintf(err, errlen, "payload of %zu bytes exceeds max_payload (%u bytes)",
			 spec->len, s->max_payload);
		return -EMSGSIZE;
	}
	if (spec->context_len > SUP_RING_RECORD_MAX) {
		snprintf(err, errlen, "context of %zu bytes is too large", spec->context_len);
		return -EMSGSIZE;
	}
	if (spec->agent) {
		target = ts->env.find_agent(ts->env.ctx, spec->agent);
		if (!target) {
			snprintf(err, errlen, "no agent named '%s'", spec->agent);
			return -ENOENT;
		}
		tier = target->tier;
	} else if (tier < 1 || tier > 4) {
		snprintf(err, errlen, "tier must be 1..4, got %d", tier);
		return -EINVAL;
	}
	if (ts->count + 1 > ts->nbuckets && sup_tasks_grow(ts) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t = calloc(1, sizeof(*t) + spec->type_len + spec->context_len + spec->len);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->ts = ts;
	t->id = ++ts->next_id;
	t->target = target;
	t->tier = tier;
	t->quality = -1;
	t->flags = spec->flags;
	t->type_len = (uint16_t)spec->type_len;
	t->context_len = (uint32_t)spec->context_len;
	t->len = (uint32_t)spec->len;
	memcpy(t->data, spec->type, spec->type_len);
	if (spec->context_len)
		memcpy(t->data + spec->type_len, spec->context, spec->context_len);
	if (spec->len)
		memcpy(t->data + spec->type_len + spec->context_len, spec->payload, spec->len);
	t->done = spec->done;
	t->done_arg = spec->done_arg;
	t->group = spec->group;
	t->ack = spec->ack;
	t->ack_arg = spec->ack_arg;
	t->ack_tag = spec->ack_tag;
	t->timeout_ns = spec->timeout_ns;
	t->journal = spec->journal && ts->wal;
	if (t->journal) {
		int r = sup_tasks_wal_submit(ts, t, err, errlen);

		if (r < 0) {
			free(t);
			return r;
		}
	}
	t->t.queued = sup_tasks_now(ts);
	sup_tasks_hash_add(ts, t);
	ts->st.submitted++;
	sup_timer_init(&t->timer, sup_tasks_deadline_fired, t);
	if (spec->timeout_ns > 0)
		ts->env.timer_arm(ts->env.ctx, &t->timer, t->t.queued + spec->timeout_ns);
	/* t may be finished and freed from here on: keep its id. */
	id = t->id;
	if (t->journal)
		sup_tasks_wal_acked(ts, t);
	else if (t->ack)
		t->ack(ts, id, 0, t->ack_arg, t->ack_tag);
	if (target && (target->state == SUP_AG_FAILED || target->state == SUP_AG_STOPPED))
		sup_tasks_finish(ts, t, TIER_ST_REJECTED, "agent %s is %s", target->name,
		       sup_agent_state_name(target->state));
	else
		sup_tasks_place(ts, t, false);
	return (int64_t)id;
}

bool sup_tasks_spin_worthwhile(const struct sup_tasks *ts)
{
	return ts->inflight && ts->rtt_ewma < sup_tasks_sconf(ts)->spin_window_ns;
}

bool sup_tasks_is_pending(const struct sup_tasks *ts, uint64_t id)
{
	const struct sup_task *t = sup_tasks_find(ts, id);

	/* Finished but its DONE record not yet durable: nobody has its result. */
	return t && (t->state != TS_DONE || t->wal_finishing);
}

int sup_tasks_cancel(struct sup_tasks *ts, uint64_t id)
{
	struct sup_task *t = sup_tasks_find(ts, id);

	if (!t || t->state == TS_DONE)
		return -ENOENT;
	if (t->state == TS_INFLIGHT)
		sup_tasks_send_cancel(ts, t);
	sup_tasks_finish(ts, t, TIER_ST_CANCELLED, "cancelled by an operator");
	return 0;
}

json_t *sup_tasks_lookup_json(struct sup_tasks *ts, uint64_t id)
{
	struct sup_task *t = sup_tasks_find(ts, id);

	return t ? sup_task_json(t) : NULL;
}

/* ---- results ---------------------------------------------------------------- */

/* Accepted only from the incarnation the task is in flight on; the
 * incarnation judges any other id (late if it gave the task up, else a
 * fault of the agent's). A malformed result still ends its task: it would
 * otherwise wait for a deadline it may not have. */
int sup_tasks_result(struct sup_tasks *ts, struct sup_agent *ag, uint32_t inc_n,
		     const struct sup_inc_result *res)
{
	struct sup_task *t = sup_tasks_find(ts, res->id);
	const struct tier_result *r = &res->hdr;
	uint32_t plen = res->body_len;

	if (!t || t->state != TS_INFLIGHT || t->agent != ag || t->inc_n != inc_n)
		return -ENOENT;
	if (res->malformed) {
		sup_tasks_finish(ts, t, TIER_ST_ERROR, "agent %s sent a malformed result (%u bytes, "
		       "shorter than its %zu-byte header)", ag->name, res->len, sizeof(*r));
		return 0;
	}
	if (plen) {
		t->result = malloc(plen);
		if (!t->result) {
			sup_tasks_finish(ts, t, TIER_ST_ERROR, "out of memory storing its result");
			return 0;
		}
		memcpy(t->result, res->body, plen);
		t->result_len = plen;
	}
	if (r->has_quality)
		t->quality = r->quality_x100 > 1000 ? -1 : r->quality_x100 / 100.0;
	t->t.started = r->started_ns;
	t->t.finished = r->finished_ns;
	t->t.accepted = sup_tasks_now(ts);
	ts->rtt_ewma += (t->t.accepted - t->t.dispatched - ts->rtt_ewma) / 8;
	sup_tasks_at(ag)->last_result = t->t.accepted;
	ts->hot[ag->tier] = ag;
	if (r->has_quality && r->quality_x100 > 1000)
		sup_tasks_finish(ts, t, TIER_ST_ERROR, "agent reported quality %.2f, outside 0..10",
		       r->quality_x100 / 100.0);
	else if (r->status == TIER_ST_OK)
		sup_tasks_finish(ts, t, TIER_ST_OK, NULL);
	else
		sup_tasks_finish(ts, t, r->status == TIER_ST_TIMEOUT ? TIER_ST_TIMEOUT : TIER_ST_ERROR,
		       "agent reported %s%s%.*s", r->status == TIER_ST_TIMEOUT ? "a timeout" : "an error",
		       plen ? ": " : "", (int)(plen > 300 ? 300 : plen), plen ? (const char *)t->result : "");
	return 0;
}

void sup_tasks_late_result(struct sup_tasks *ts)
{
	ts->st.late_results++;
}

/* ---- the task table's side of its agents' incarnations ------------------------ */

static int inc_result(void *arg, struct sup_inc *inc, const struct sup_inc_result *res)
{
	return sup_tasks_result(arg, inc->ag, inc->n, res);
}

static void inc_late(void *arg, struct sup_inc *inc, uint64_t id)
{
	(void)inc;
	(void)id;
	sup_tasks_late_result(arg);
}

/* The ring has room again: feed the agent from its queues. */
static void inc_drained(void *arg, struct sup_inc *inc)
{
	sup_tasks_flush(arg, inc->ag);
}

static void inc_lost(void *arg, struct sup_inc *inc)
{
	sup_tasks_agent_lost(arg, inc->ag, inc);
}

static bool inc_spin_worthwhile(void *arg)
{
	return sup_tasks_spin_worthwhile(arg);
}

const struct sup_inc_hooks sup_tasks_inc_hooks = {
	.result = inc_result,
	.late = inc_late,
	.drained = inc_drained,
	.lost = inc_lost,
	.spin_worthwhile = inc_spin_worthwhile,
};

void sup_tasks_tick(struct sup_tasks *ts)
{
	int64_t now = sup_tasks_now(ts);
	struct sup_task *t, *next;

	/* Not only from the head: a reload may have shortened the retention
	 * of what came after. */
	for (t = ts->retained.head; t; t = next) {
		next = t->next;
		if (t->expires <= now)
			retained_drop(ts, t);
	}
}

void sup_tasks_stats(const struct sup_tasks *ts, struct sup_tasks_stats *ret)
{
	*ret = ts->st;
	ret->retained = ts->retained.n;
	ret->retained_bytes = ts->retained_bytes;
	ret->pending = ts->count - ts->retained.n;
	ret->queued = 0;
	for (int tier = 1; tier <= SUP_NTIERS; tier++)
		ret->queued += ts->tier_q[tier].n;
}

struct sup_tasks *sup_tasks_new(const struct sup_tasks_env *env)
{
	struct sup_tasks *ts = calloc(1, sizeof(*ts));

	if (!ts)
		return NULL;
	ts->env = *env;
	if (sup_tasks_grow(ts) < 0) {
		free(ts);
		return NULL;
	}
	sup_defer_init(&ts->flush, sup_tasks_flush_all, ts);
	return ts;
}

void sup_tasks_free(struct sup_tasks *ts)
{
	if (!ts)
		return;
	if (ts->observing)
		sup_agent_unobserve(ts->observing, &ts->obs);
	/* The journal may outlive the table: it must not call into it. */
	if (ts->wal)
		sup_wal_drop_waiters(ts->wal);
	for (size_t i = 0; i < ts->nbuckets; i++) {
		struct sup_task *t = ts->buckets[i];

		while (t) {
			struct sup_task *next = t->hnext;

			ts->env.timer_disarm(ts->env.ctx, &t->timer);
			task_free(t);
			t = next;
		}
	}
	free(ts->buckets);
	free(ts);
}
