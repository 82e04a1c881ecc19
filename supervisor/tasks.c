/* SPDX-License-Identifier: MIT */
/* The task table: see tasks.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "config.h"
#include "daemon.h"
#include "events.h"
#include "tasks.h"
#include "taskjson.h"
#include "monitor.h"
#include "incarnation/incarnation.h"

enum { TS_QUEUED, TS_INFLIGHT, TS_DONE };

/* Tasks in one agent's ring at once when it announced no limit: deep
 * enough to keep it busy across a loop turn, shallow enough that queued
 * work waits in its tier's queue, where whichever agent frees first takes
 * it (and an agent's death re-queues little). */
#define SUP_PIPELINE_DEPTH 64

struct tqueue {
	struct sup_task *head, *tail;
	uint32_t         n;
};

struct sup_task {
	struct sup_tasks *ts;
	uint64_t          id;
	struct sup_task  *hnext;
	struct sup_task  *prev, *next;     /* in a queue or an in-flight list */
	struct tqueue    *list;
	int               state;
	struct sup_agent *target;          /* agent-targeted, else NULL */
	int               tier;
	struct sup_agent *agent;           /* in flight on … */
	uint32_t          inc_n;           /* … this incarnation */
	char              last_agent[64];
	uint32_t          attempts, crashes;
	struct sup_task_times t;
	struct sup_timer  timer;
	int               status;
	double            quality;
	char             *error;
	void             *result;
	uint32_t          result_len;
	sup_task_done_fn  done;
	void             *done_arg;
	struct sup_ctl_client *client;
	uint64_t          req_id;
	uint64_t          group;
	int64_t           expires;
	uint16_t          flags;
	uint16_t          type_len;
	uint32_t          context_len;
	uint32_t          len;
	char              data[];          /* type, context, payload */
};

/* Per-agent bookkeeping, hung on sup_agent.task_state. */
struct agent_tasks {
	struct tqueue      queue;     /* tasks for this agent only */
	struct tqueue      inflight;
	bool               draining;
	bool               dirty;     /* records written, not yet published */
	int64_t            last_result; /* when its last result came (ns) */
	struct agent_tasks *dirty_next;
	struct sup_agent  *ag;
};

struct sup_tasks {
	struct sup_daemon  *d;
	struct sup_task   **buckets;
	size_t              nbuckets, count;
	uint64_t            next_id;
	struct tqueue       tier_q[5];
	struct sup_agent   *hot[5];    /* per tier: the agent whose result came last */
	struct agent_tasks *dirty;
	struct sup_defer    flush;
	bool                shutting_down;
	struct sup_tasks_stats st;
	uint64_t            inflight;  /* tasks in some agent's ring */
	int64_t             rtt_ewma;  /* dispatch -> result, ns, smoothed */
	/* Finished tasks kept to be fetched by id, oldest first. */
	struct tqueue       retained;
	uint64_t            retained_bytes;
};

/* ---- small helpers ---------------------------------------------------- */

static const struct sup_supervisor_conf *sconf(const struct sup_tasks *ts)
{
	return &ts->d->conf->sup;
}

static void q_push(struct tqueue *q, struct sup_task *t, bool front)
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

static void q_remove(struct sup_task *t)
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

static struct sup_task *q_pop(struct tqueue *q)
{
	struct sup_task *t = q->head;

	if (t)
		q_remove(t);
	return t;
}

static struct agent_tasks *at_of(struct sup_agent *ag)
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

static int hash_grow(struct sup_tasks *ts)
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

static struct sup_task *hash_find(const struct sup_tasks *ts, uint64_t id)
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
	ret->status = t->state == TS_DONE ? t->status : -1;
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

/* ---- finishing ---------------------------------------------------------- */

static void schedule_flush(struct sup_tasks *ts, struct agent_tasks *at)
{
	if (!at->dirty) {
		at->dirty = true;
		at->dirty_next = ts->dirty;
		ts->dirty = at;
	}
	sup_defer_queue(ts->d->loop, &ts->flush);
}

/* The one place a task ends. */
/* ---- retention: finished results kept for clients that left ------------ */

/* What a kept task costs tierd: itself, its payload, its result, its error. */
static uint64_t retained_cost(const struct sup_task *t)
{
	return sizeof(*t) + t->type_len + t->context_len + t->len + t->result_len +
	       (t->error ? strlen(t->error) + 1 : 0);
}

static void retained_drop(struct sup_tasks *ts, struct sup_task *t)
{
	q_remove(t);
	ts->retained_bytes -= retained_cost(t);
	hash_del(ts, t);
	task_free(t);
}

/* Keep t until result_retention passes, or until result_retention_max or
 * result_retention_bytes push it out, oldest first: detached submissions
 * cost tierd at most the caps, whatever a client sends. */
static void retain(struct sup_tasks *ts, struct sup_task *t)
{
	const struct sup_supervisor_conf *s = sconf(ts);

	t->expires = sup_loop_time(ts->d->loop) + s->result_retention_ns;
	q_push(&ts->retained, t, false);
	ts->retained_bytes += retained_cost(t);
	while (ts->retained.n && (ts->retained.n > s->result_retention_max ||
				  ts->retained_bytes > s->result_retention_bytes)) {
		retained_drop(ts, ts->retained.head);
		ts->st.retention_dropped++;
	}
}

static void finish(struct sup_tasks *ts, struct sup_task *t, int status, const char *errfmt, ...)
	__attribute__((format(printf, 4, 5)));
static void finish(struct sup_tasks *ts, struct sup_task *t, int status, const char *errfmt, ...)
{
	struct sup_loop *l = ts->d->loop;

	if (t->state == TS_DONE)
		return;
	if (t->state == TS_INFLIGHT && t->agent) {
		struct agent_tasks *at = at_of(t->agent);

		sup_monitor_task_done(ts->d->monitor, t->agent, status,
				      sup_loop_time(l) - t->t.queued, t->quality);
		q_remove(t);
		ts->inflight--;
		if (at->draining && !at->inflight.n)
			sup_daemon_event(ts->d, SUP_LOG_INFO, "drained",
					 json_pack("{s:s}", "agent", t->agent->name),
					 "agent %s drained", t->agent->name);
	} else {
		q_remove(t);
	}
	t->agent = NULL;
	t->state = TS_DONE;
	t->status = status;
	if (!t->t.accepted)
		t->t.accepted = sup_loop_time(l);
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
	sup_timer_disarm(l, &t->timer);
	ts->st.finished[status]++;
	if (t->done) {
		t->done(ts, t, t->done_arg);
	} else if (t->client && sup_ctl_client_connected(t->client)) {
		sup_ctl_reply_ok(t->client, t->req_id, sup_task_json(t));
	} else {
		/* Nobody to tell now: keep it to be fetched by id. */
		if (t->client) {
			sup_ctl_client_release(t->client);
			t->client = NULL;
		}
		retain(ts, t);
		return;
	}
	if (t->client)
		sup_ctl_client_release(t->client);
	hash_del(ts, t);
	task_free(t);
}

/* ---- dispatch ----------------------------------------------------------- */

/* Write one TASK record. 0 sent; 1 finished instead (it can never fit this
 * agent's ring); -EAGAIN ring full; or a ring error (the incarnation is
 * faulted for it; the task waits in its queue like one that found the
 * ring full). */
static int send_task(struct sup_tasks *ts, struct sup_agent *ag, struct sup_task *t)
{
	const struct sup_inc_task v = {
		.id = t->id,
		.deadline_ns = t->timer.slot ? sup_timer_deadline(&t->timer) : 0,
		.attempt = t->attempts + 1,
		.flags = t->flags,
		.type_len = t->type_len,
		.context_len = t->context_len,
		.len = t->len,
		.data = t->data,
	};
	int r = sup_inc_send(ag->inc, &v);

	if (r == -EMSGSIZE) {
		finish(ts, t, TIER_ST_REJECTED, "task of %zu bytes does not fit agent %s's ring "
		       "(largest record %u bytes)",
		       sizeof(struct tier_task_hdr) + t->type_len + t->context_len + t->len, ag->name,
		       sup_inc_max_payload(ag->inc));
		return 1;
	}
	if (r < 0)
		return r;
	t->attempts++;
	t->state = TS_INFLIGHT;
	t->agent = ag;
	t->inc_n = ag->inc->n;
	memcpy(t->last_agent, ag->name, ag->name_len + 1);
	t->t.dispatched = sup_loop_time(ts->d->loop);
	q_push(&at_of(ag)->inflight, t, false);
	ts->inflight++;
	ts->st.dispatched++;
	schedule_flush(ts, at_of(ag));
	return 0;
}

static bool can_take(struct sup_agent *ag)
{
	struct agent_tasks *at = ag->task_state;
	uint32_t cap = ag->max_inflight ? ag->max_inflight : SUP_PIPELINE_DEPTH;

	/* An incarnation that exited is still attached while its last results
	 * and lost tasks are handled: it takes nothing more. */
	if (ag->state != SUP_AG_READY || !ag->inc || ag->inc->exited || ag->inc->faulted)
		return false;
	if (at && at->draining)
		return false;
	return !at || at->inflight.n < cap;
}

/* Feed ag from its own queue, then its tier's. */
static void pump_agent(struct sup_tasks *ts, struct sup_agent *ag)
{
	struct agent_tasks *at = at_of(ag);

	while (can_take(ag)) {
		struct tqueue *q = at->queue.n ? &at->queue : &ts->tier_q[ag->tier];
		struct sup_task *t = q_pop(q);
		int r;

		if (!t)
			return;
		r = send_task(ts, ag, t);
		if (r >= 0)
			continue;
		q_push(q, t, true);
		return;
	}
}

/* The ready agent of a tier with the fewest tasks in flight; among equals
 * the one whose last result came most recently: it is the likeliest to be
 * still inside its spin window, with its caches warm. */
static struct sup_agent *least_loaded(struct sup_tasks *ts, int tier)
{
	struct sup_daemon *d = ts->d;
	struct sup_agent *best = ts->hot[tier];
	uint32_t best_n = UINT32_MAX;
	int64_t best_t = -1;

	/* The common cases in O(1): the agent that answered last is idle. */
	if (best && can_take(best) && !((struct agent_tasks *)best->task_state)->inflight.n)
		return best;
	best = NULL;
	for (size_t k = 0; k < d->nagents; k++) {
		struct sup_agent *ag = d->agents[k];
		const struct agent_tasks *at = ag->task_state;
		uint32_t inflight = at ? at->inflight.n : 0;
		int64_t last = at ? at->last_result : 0;

		if (ag->tier != tier || !can_take(ag))
			continue;
		if (inflight < best_n || (inflight == best_n && last > best_t)) {
			best = ag;
			best_n = inflight;
			best_t = last;
		}
	}
	return best;
}

static bool tier_can_ever_run(struct sup_tasks *ts, int tier)
{
	for (size_t i = 0; i < ts->d->nagents; i++) {
		struct sup_agent *ag = ts->d->agents[i];

		if (ag->tier == tier && ag->state != SUP_AG_FAILED && ag->state != SUP_AG_STOPPED &&
		    !ag->remove_when_stopped)
			return true;
	}
	return false;
}

/* Put a task where it will run: straight into a ring when an agent can
 * take it, else in its queue (bounded). */
static void place(struct sup_tasks *ts, struct sup_task *t, bool front)
{
	uint32_t limit = sconf(ts)->task_queue_limit;
	struct tqueue *q;

	t->state = TS_QUEUED;
	if (t->target && sup_tasks_draining(t->target)) {
		finish(ts, t, TIER_ST_REJECTED, "agent %s is draining", t->target->name);
		return;
	}
	if (t->target) {
		if (can_take(t->target) && !at_of(t->target)->queue.n &&
		    send_task(ts, t->target, t) >= 0)
			return;
		q = &at_of(t->target)->queue;
	} else {
		q = &ts->tier_q[t->tier];
		if (!q->n) {
			struct sup_agent *ag = least_loaded(ts, t->tier);

			if (ag && send_task(ts, ag, t) >= 0)
				return;
		}
		if (!tier_can_ever_run(ts, t->tier)) {
			finish(ts, t, TIER_ST_REJECTED, "no agent of tier %d can run (all stopped or failed)",
			       t->tier);
			return;
		}
	}
	if (!front && q->n >= limit) {
		if (t->target)
			finish(ts, t, TIER_ST_REJECTED, "queue full: %u tasks already waiting for agent %s",
			       q->n, t->target->name);
		else
			finish(ts, t, TIER_ST_REJECTED, "queue full: %u tasks already waiting for tier %d",
			       q->n, t->tier);
		return;
	}
	t->t.queued = t->t.queued ? t->t.queued : sup_loop_time(ts->d->loop);
	q_push(q, t, front);
}

static void flush_all(struct sup_loop *l, struct sup_defer *df)
{
	struct sup_tasks *ts = df->data;
	struct agent_tasks *at = ts->dirty;

	(void)l;
	ts->dirty = NULL;
	while (at) {
		struct agent_tasks *next = at->dirty_next;

		at->dirty = false;
		if (at->ag->inc) {
			int r = sup_inc_flush(at->ag->inc);

			if (r < 0)
				sup_log(&ts->d->log, SUP_LOG_ERR, "agent %s: waking it: %s", at->ag->name,
					tier_strerror(r));
		}
		at = next;
	}
}

/* ---- deadlines ---------------------------------------------------------- */

static void send_cancel(struct sup_tasks *ts, struct sup_task *t)
{
	struct sup_agent *ag = t->agent;

	if (!ag || !ag->inc)
		return;
	if (sup_inc_cancel(ag->inc, t->id) == 0)
		schedule_flush(ts, at_of(ag));
}

static void deadline_fired(struct sup_loop *l, struct sup_timer *tm)
{
	struct sup_task *t = tm->data;

	(void)l;
	if (t->state == TS_INFLIGHT)
		send_cancel(t->ts, t);
	finish(t->ts, t, TIER_ST_TIMEOUT, "deadline passed %s", t->state == TS_INFLIGHT ?
	       "while the agent was working on it" : "while queued");
}

/* ---- submission ------------------------------------------------------------ */

int64_t sup_tasks_submit(struct sup_tasks *ts, const struct sup_task_spec *spec,
			 char *err, size_t errlen)
{
	const struct sup_supervisor_conf *s = sconf(ts);
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
		target = sup_daemon_find_agent(ts->d, spec->agent);
		if (!target) {
			snprintf(err, errlen, "no agent named '%s'", spec->agent);
			return -ENOENT;
		}
		tier = target->tier;
	} else if (tier < 1 || tier > 4) {
		snprintf(err, errlen, "tier must be 1..4, got %d", tier);
		return -EINVAL;
	}
	if (ts->count + 1 > ts->nbuckets && hash_grow(ts) < 0) {
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
	t->client = spec->client;
	t->req_id = spec->req_id;
	t->group = spec->group;
	if (t->client)
		sup_ctl_client_hold(t->client);
	t->t.queued = sup_loop_time(ts->d->loop);
	t->hnext = ts->buckets[bucket_of(ts, t->id)];
	ts->buckets[bucket_of(ts, t->id)] = t;
	ts->count++;
	ts->st.submitted++;
	sup_timer_init(&t->timer, deadline_fired, t);
	if (spec->timeout_ns > 0)
		sup_timer_arm(ts->d->loop, &t->timer, t->t.queued + spec->timeout_ns);
	/* t may be finished and freed from here on: keep its id. */
	id = t->id;
	if (target && (target->state == SUP_AG_FAILED || target->state == SUP_AG_STOPPED))
		finish(ts, t, TIER_ST_REJECTED, "agent %s is %s", target->name,
		       sup_agent_state_name(target->state));
	else
		place(ts, t, false);
	return (int64_t)id;
}

bool sup_tasks_spin_worthwhile(const struct sup_tasks *ts)
{
	return ts->inflight && ts->rtt_ewma < ts->d->conf->sup.spin_window_ns;
}

bool sup_tasks_is_pending(const struct sup_tasks *ts, uint64_t id)
{
	const struct sup_task *t = hash_find(ts, id);

	return t && t->state != TS_DONE;
}

int sup_tasks_cancel(struct sup_tasks *ts, uint64_t id)
{
	struct sup_task *t = hash_find(ts, id);

	if (!t || t->state == TS_DONE)
		return -ENOENT;
	if (t->state == TS_INFLIGHT)
		send_cancel(ts, t);
	finish(ts, t, TIER_ST_CANCELLED, "cancelled by an operator");
	return 0;
}

json_t *sup_tasks_lookup_json(struct sup_tasks *ts, uint64_t id)
{
	struct sup_task *t = hash_find(ts, id);

	return t ? sup_task_json(t) : NULL;
}

/* ---- results ---------------------------------------------------------------- */

/* A RESULT from inc (see struct sup_inc_hooks): taken only if the task is
 * in flight on that very incarnation; the incarnation judges the rest
 * (late or a fault). A malformed result still ends its task: it would
 * otherwise wait for a deadline it may not have. */
static int inc_result(void *arg, struct sup_inc *inc, const struct sup_inc_result *res)
{
	struct sup_tasks *ts = arg;
	struct sup_agent *ag = inc->ag;
	struct sup_task *t = hash_find(ts, res->id);
	const struct tier_result *r = &res->hdr;
	uint32_t plen = res->body_len;

	if (!t || t->state != TS_INFLIGHT || t->agent != ag || t->inc_n != inc->n)
		return -ENOENT;
	if (res->malformed) {
		finish(ts, t, TIER_ST_ERROR, "agent %s sent a malformed result (%u bytes, "
		       "shorter than its %zu-byte header)", ag->name, res->len, sizeof(*r));
		return 0;
	}
	if (plen) {
		t->result = malloc(plen);
		if (!t->result) {
			finish(ts, t, TIER_ST_ERROR, "out of memory storing its result");
			return 0;
		}
		memcpy(t->result, res->body, plen);
		t->result_len = plen;
	}
	if (r->has_quality)
		t->quality = r->quality_x100 > 1000 ? -1 : r->quality_x100 / 100.0;
	t->t.started = r->started_ns;
	t->t.finished = r->finished_ns;
	t->t.accepted = sup_loop_time(ts->d->loop);
	ts->rtt_ewma += (t->t.accepted - t->t.dispatched - ts->rtt_ewma) / 8;
	at_of(ag)->last_result = t->t.accepted;
	ts->hot[ag->tier] = ag;
	if (r->has_quality && r->quality_x100 > 1000)
		finish(ts, t, TIER_ST_ERROR, "agent reported quality %.2f, outside 0..10",
		       r->quality_x100 / 100.0);
	else if (r->status == TIER_ST_OK)
		finish(ts, t, TIER_ST_OK, NULL);
	else
		finish(ts, t, r->status == TIER_ST_TIMEOUT ? TIER_ST_TIMEOUT : TIER_ST_ERROR,
		       "agent reported %s%s%.*s", r->status == TIER_ST_TIMEOUT ? "a timeout" : "an error",
		       plen ? ": " : "", (int)(plen > 300 ? 300 : plen), plen ? (const char *)t->result : "");
	return 0;
}

static void inc_late(void *arg, struct sup_inc *inc, uint64_t id)
{
	struct sup_tasks *ts = arg;

	ts->st.late_results++;
}

/* The ring has room again: feed the agent from its queues. */
static void inc_drained(void *arg, struct sup_inc *inc)
{
	pump_agent(arg, inc->ag);
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

/* ---- agents come and go --------------------------------------------------- */

void sup_tasks_agent_lost(struct sup_tasks *ts, struct sup_agent *ag, struct sup_inc *inc)
{
	struct agent_tasks *at = ag->task_state;
	struct sup_task *t;

	bool head = true;

	if (!at)
		return;
	/* Agents work through their ring in order: the oldest task in flight
	 * is the one it was running. Only that one is charged with the death;
	 * the others only waited in a ring that went away. */
	while ((t = q_pop(&at->inflight))) {
		ts->inflight--;
		t->agent = NULL;
		/* An agent killed for a fault of its own did not die of its task. */
		t->crashes += head && !inc->faulted;
		head = false;
		t->state = TS_QUEUED;
		/* The budget counts retries: budget n allows n + 1 attempts. */
		if (t->crashes > sconf(ts)->task_retry_budget) {
			finish(ts, t, TIER_ST_CRASHED,
			       "its agent died while running it %u times (last: %s, %s); not retried",
			       t->crashes, ag->name, ag->last_exit);
			continue;
		}
		ts->st.retries++;
		place(ts, t, true);
	}
}

static void reject_queue(struct sup_tasks *ts, struct tqueue *q, const char *why)
{
	struct sup_task *t;

	while ((t = q_pop(q)))
		finish(ts, t, TIER_ST_REJECTED, "%s", why);
}

void sup_tasks_agent_state(struct sup_tasks *ts, struct sup_agent *ag, int from)
{
	(void)from;
	if (ag->state == SUP_AG_READY) {
		pump_agent(ts, ag);
		return;
	}
	if (ag->state == SUP_AG_FAILED || ag->state == SUP_AG_STOPPED) {
		char why[128];

		snprintf(why, sizeof(why), "agent %s is %s", ag->name, sup_agent_state_name(ag->state));
		if (ag->task_state)
			reject_queue(ts, &at_of(ag)->queue, why);
		snprintf(why, sizeof(why), "no agent of tier %d can run (all stopped or failed)", ag->tier);
		if (!tier_can_ever_run(ts, ag->tier))
			reject_queue(ts, &ts->tier_q[ag->tier], why);
	}
}

void sup_tasks_agent_removed(struct sup_tasks *ts, struct sup_agent *ag)
{
	struct agent_tasks *at = ag->task_state;
	struct agent_tasks **pp;
	struct sup_task *t;

	for (int tier = 0; tier < 5; tier++)
		if (ts->hot[tier] == ag)
			ts->hot[tier] = NULL;
	if (!at)
		return;
	char why[128];

	snprintf(why, sizeof(why), "agent %s was removed", ag->name);
	reject_queue(ts, &at->queue, why);
	while ((t = q_pop(&at->inflight))) {
		ts->inflight--;
		t->state = TS_QUEUED;
		finish(ts, t, TIER_ST_CRASHED, "agent %s was removed", ag->name);
	}
	for (pp = &ts->dirty; *pp; pp = &(*pp)->dirty_next)
		if (*pp == at) {
			*pp = at->dirty_next;
			break;
		}
	free(at);
	ag->task_state = NULL;
}

void sup_tasks_client_gone(struct sup_tasks *ts, struct sup_ctl_client *c)
{
	for (size_t i = 0; i < ts->nbuckets; i++)
		for (struct sup_task *t = ts->buckets[i]; t; t = t->hnext)
			if (t->client == c) {
				sup_ctl_client_release(c);
				t->client = NULL;
			}
}

void sup_tasks_shutdown(struct sup_tasks *ts)
{
	ts->shutting_down = true;
	for (int tier = 1; tier <= 4; tier++)
		reject_queue(ts, &ts->tier_q[tier], "tierd is shutting down");
	for (size_t i = 0; i < ts->d->nagents; i++)
		if (ts->d->agents[i]->task_state)
			reject_queue(ts, &at_of(ts->d->agents[i])->queue, "tierd is shutting down");
}

void sup_tasks_tick(struct sup_tasks *ts)
{
	int64_t now = sup_loop_time(ts->d->loop);
	struct sup_task *t, *next;

	/* Not only from the head: a reload may have shortened the retention
	 * of what came after. */
	for (t = ts->retained.head; t; t = next) {
		next = t->next;
		if (t->expires <= now)
			retained_drop(ts, t);
	}
}

void sup_tasks_drain(struct sup_tasks *ts, struct sup_agent *ag)
{
	struct agent_tasks *at = at_of(ag);

	at->draining = true;
	/* What was queued for it alone goes back to its tier. */
	while (at->queue.n) {
		struct sup_task *t = q_pop(&at->queue);

		finish(ts, t, TIER_ST_REJECTED, "agent %s is draining", ag->name);
	}
	if (!at->inflight.n)
		sup_daemon_event(ts->d, SUP_LOG_INFO, "drained", json_pack("{s:s}", "agent", ag->name),
				 "agent %s drained", ag->name);
}

void sup_tasks_undrain(struct sup_tasks *ts, struct sup_agent *ag)
{
	at_of(ag)->draining = false;
	pump_agent(ts, ag);
}

uint32_t sup_tasks_inflight(const struct sup_agent *ag)
{
	const struct agent_tasks *at = ag->task_state;

	return at ? at->inflight.n : 0;
}

uint32_t sup_tasks_queued(const struct sup_tasks *ts, const struct sup_agent *ag)
{
	const struct agent_tasks *at = ag->task_state;

	(void)ts;
	return at ? at->queue.n : 0;
}

bool sup_tasks_draining(const struct sup_agent *ag)
{
	const struct agent_tasks *at = ag->task_state;

	return at && at->draining;
}

void sup_tasks_stats(const struct sup_tasks *ts, struct sup_tasks_stats *ret)
{
	*ret = ts->st;
	ret->retained = ts->retained.n;
	ret->retained_bytes = ts->retained_bytes;
	ret->pending = ts->count - ts->retained.n;
	ret->queued = 0;
	for (int tier = 1; tier <= 4; tier++)
		ret->queued += ts->tier_q[tier].n;
}

struct sup_tasks *sup_tasks_new(struct sup_daemon *d)
{
	struct sup_tasks *ts = calloc(1, sizeof(*ts));

	if (!ts)
		return NULL;
	ts->d = d;
	if (hash_grow(ts) < 0) {
		free(ts);
		return NULL;
	}
	sup_defer_init(&ts->flush, flush_all, ts);
	return ts;
}

void sup_tasks_free(struct sup_tasks *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < ts->nbuckets; i++) {
		struct sup_task *t = ts->buckets[i];

		while (t) {
			struct sup_task *next = t->hnext;

			sup_timer_disarm(ts->d->loop, &t->timer);
			if (t->client)
				sup_ctl_client_release(t->client);
			task_free(t);
			t = next;
		}
	}
	free(ts->buckets);
	free(ts);
}
