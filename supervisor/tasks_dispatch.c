/* SPDX-License-Identifier: MIT */
/*
 * The task table's decisions (see tasks.h): which agent gets a task, what
 * waits in which queue, deadlines, what happens to tasks when their agent
 * dies, stops, is removed or drains. The rings are reached only through
 * the table's env (tasks_env.h; the real ones in daemon_env.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "tasks_internal.h"

/* ---- dispatch ----------------------------------------------------------- */

static void schedule_flush(struct sup_tasks *ts, struct agent_tasks *at)
{
	if (!at->dirty) {
		at->dirty = true;
		at->dirty_next = ts->dirty;
		ts->dirty = at;
	}
	ts->env.defer(ts->env.ctx, &ts->flush);
}

/* Write one TASK record. 0 sent; 1 finished instead (it can never fit this
 * agent's ring); -EAGAIN ring full; or a ring error. */
static int send_task(struct sup_tasks *ts, struct sup_agent *ag, struct sup_task *t)
{
	struct tier_task_hdr h = {
		.deadline_ns = t->timer.slot ? sup_timer_deadline(&t->timer) : 0,
		.type_len = t->type_len,
		.flags = t->flags,
		.attempt = t->attempts + 1,
		.context_len = t->context_len,
	};
	uint32_t body = t->type_len + t->context_len + t->len;
	int r = ts->env.send(ts->env.ctx, ag, &h, t->id, t->data, body);

	if (r == -EMSGSIZE) {
		sup_tasks_finish(ts, t, TIER_ST_REJECTED, "task of %zu bytes does not fit agent %s's ring "
				 "(largest record %u bytes)", sizeof(h) + body, ag->name,
				 ts->env.max_record(ts->env.ctx, ag));
		return 1;
	}
	if (r < 0)
		return r;
	t->attempts++;
	t->state = TS_INFLIGHT;
	t->agent = ag;
	t->inc_n = ag->inc->n;
	memcpy(t->last_agent, ag->name, ag->name_len + 1);
	t->t.dispatched = sup_tasks_now(ts);
	sup_tq_push(&sup_tasks_at(ag)->inflight, t, false);
	ts->inflight++;
	ts->st.dispatched++;
	schedule_flush(ts, sup_tasks_at(ag));
	return 0;
}

/* Ready and not draining: it may be sent tasks (room aside). */
static bool can_take_state(const struct sup_agent *ag)
{
	const struct agent_tasks *at = ag->task_state;

	if (ag->state != SUP_AG_READY || !ag->inc || ag->inc->exited || ag->inc->faulted)
		return false;
	return !(at && at->draining);
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
	struct agent_tasks *at = sup_tasks_at(ag);

	while (can_take(ag)) {
		struct tqueue *q = at->queue.n ? &at->queue : &ts->tier_q[ag->tier];
		struct sup_task *t = sup_tq_pop(q);
		int r;

		if (!t)
			return;
		r = send_task(ts, ag, t);
		if (r >= 0)
			continue;
		sup_tq_push(q, t, true);
		if (r != -EAGAIN)
			ts->env.fault(ts->env.ctx, ag, "task ring corrupt", r);
		return;
	}
}

/* The ready agent of a tier with the fewest tasks in flight; among equals
 * the one whose last result came most recently: it is the likeliest to be
 * still inside its spin window, with its caches warm. */
static struct sup_agent *least_loaded(struct sup_tasks *ts, int tier)
{
	struct sup_agent *best = ts->hot[tier];
	uint32_t best_n = UINT32_MAX;
	int64_t best_t = -1;

	/* The common cases in O(1): the agent that answered last is idle. */
	if (best && can_take(best) && !((struct agent_tasks *)best->task_state)->inflight.n)
		return best;
	best = NULL;
	for (size_t k = 0, n = ts->env.nagents(ts->env.ctx); k < n; k++) {
		struct sup_agent *ag = ts->env.agent(ts->env.ctx, k);
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
	for (size_t i = 0, n = ts->env.nagents(ts->env.ctx); i < n; i++) {
		struct sup_agent *ag = ts->env.agent(ts->env.ctx, i);

		if (ag->tier == tier && ag->state != SUP_AG_FAILED && ag->state != SUP_AG_STOPPED &&
		    !ag->remove_when_stopped)
			return true;
	}
	return false;
}

/* send_task, and an agent whose task ring is corrupt is killed for it
 * (the task then waits in its queue like one that found the ring full). */
static int send_or_fault(struct sup_tasks *ts, struct sup_agent *ag, struct sup_task *t)
{
	int r = send_task(ts, ag, t);

	if (r < 0 && r != -EAGAIN)
		ts->env.fault(ts->env.ctx, ag, "task ring corrupt", r);
	return r;
}

/* Put a task where it will run: straight into a ring when an agent can
 * take it, else in its queue (bounded). */
void sup_tasks_place(struct sup_tasks *ts, struct sup_task *t, bool front)
{
	uint32_t limit = sup_tasks_sconf(ts)->task_queue_limit;
	struct tqueue *q;

	t->state = TS_QUEUED;
	if (t->target && sup_tasks_draining(t->target)) {
		sup_tasks_finish(ts, t, TIER_ST_REJECTED, "agent %s is draining", t->target->name);
		return;
	}
	if (t->target) {
		if (can_take(t->target) && !sup_tasks_at(t->target)->queue.n &&
		    send_or_fault(ts, t->target, t) >= 0)
			return;
		q = &sup_tasks_at(t->target)->queue;
	} else {
		q = &ts->tier_q[t->tier];
		if (!q->n) {
			struct sup_agent *ag = least_loaded(ts, t->tier);

			if (ag && send_or_fault(ts, ag, t) >= 0)
				return;
		}
		if (!tier_can_ever_run(ts, t->tier)) {
			sup_tasks_finish(ts, t, TIER_ST_REJECTED, "no agent of tier %d can run (all stopped or failed)",
			       t->tier);
			return;
		}
	}
	if (!front && q->n >= limit) {
		if (t->target)
			sup_tasks_finish(ts, t, TIER_ST_REJECTED, "queue full: %u tasks already waiting for agent %s",
			       q->n, t->target->name);
		else
			sup_tasks_finish(ts, t, TIER_ST_REJECTED, "queue full: %u tasks already waiting for tier %d",
			       q->n, t->tier);
		return;
	}
	t->t.queued = t->t.queued ? t->t.queued : sup_tasks_now(ts);
	sup_tq_push(q, t, front);
}

/* End of the loop turn: publish what was written to each ring once. */
void sup_tasks_flush_all(struct sup_loop *l, struct sup_defer *df)
{
	struct sup_tasks *ts = df->data;
	struct agent_tasks *at = ts->dirty;

	(void)l;
	ts->dirty = NULL;
	while (at) {
		struct agent_tasks *next = at->dirty_next;

		at->dirty = false;
		if (at->ag->inc)
			ts->env.publish(ts->env.ctx, at->ag);
		at = next;
	}
}

void sup_tasks_flush(struct sup_tasks *ts, struct sup_agent *ag)
{
	pump_agent(ts, ag);
}

/* ---- deadlines ---------------------------------------------------------- */

/* The incarnation remembers the id it was told to give up: its RESULT for
 * it is then late, not a fault (sup_inc_cancel). */
void sup_tasks_send_cancel(struct sup_tasks *ts, struct sup_task *t)
{
	struct sup_agent *ag = t->agent;

	if (!ag || !ag->inc)
		return;
	if (ts->env.cancel(ts->env.ctx, ag, t->id) == 0)
		schedule_flush(ts, sup_tasks_at(ag));
}

void sup_tasks_deadline_fired(struct sup_loop *l, struct sup_timer *tm)
{
	struct sup_task *t = tm->data;

	(void)l;
	if (t->state == TS_INFLIGHT)
		sup_tasks_send_cancel(t->ts, t);
	sup_tasks_finish(t->ts, t, TIER_ST_TIMEOUT, "deadline passed %s", t->state == TS_INFLIGHT ?
	       "while the agent was working on it" : "while queued");
}

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
	while ((t = sup_tq_pop(&at->inflight))) {
		ts->inflight--;
		t->agent = NULL;
		/* An agent killed for a fault of its own did not die of its task. */
		t->crashes += head && !inc->faulted;
		head = false;
		t->state = TS_QUEUED;
		/* The budget counts retries: budget n allows n + 1 attempts. */
		if (t->crashes > sup_tasks_sconf(ts)->task_retry_budget) {
			sup_tasks_finish(ts, t, TIER_ST_CRASHED,
			       "its agent died while running it %u times (last: %s, %s); not retried",
			       t->crashes, ag->name, ag->last_exit);
			continue;
		}
		ts->st.retries++;
		sup_tasks_place(ts, t, true);
	}
}

void sup_tasks_reject_queue(struct sup_tasks *ts, struct tqueue *q, const char *why)
{
	struct sup_task *t;

	while ((t = sup_tq_pop(q)))
		sup_tasks_finish(ts, t, TIER_ST_REJECTED, "%s", why);
}

static void observed_state(void *arg, struct sup_agent *ag, enum sup_agent_state from)
{
	sup_tasks_agent_state(arg, ag, (int)from);
}

void sup_tasks_observe(struct sup_tasks *ts, struct sup_agent_observers *l)
{
	ts->obs = (struct sup_agent_observer){ .state = observed_state, .arg = ts };
	ts->observing = l;
	sup_agent_observe(l, &ts->obs);
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
			sup_tasks_reject_queue(ts, &sup_tasks_at(ag)->queue, why);
		snprintf(why, sizeof(why), "no agent of tier %d can run (all stopped or failed)", ag->tier);
		if (!tier_can_ever_run(ts, ag->tier))
			sup_tasks_reject_queue(ts, &ts->tier_q[ag->tier], why);
	}
}

void sup_tasks_agent_removed(struct sup_tasks *ts, struct sup_agent *ag)
{
	struct agent_tasks *at = ag->task_state;
	struct agent_tasks **pp;
	struct sup_task *t;

	for (int tier = 0; tier <= SUP_NTIERS; tier++)
		if (ts->hot[tier] == ag)
			ts->hot[tier] = NULL;
	if (!at)
		return;
	char why[128];

	snprintf(why, sizeof(why), "agent %s was removed", ag->name);
	sup_tasks_reject_queue(ts, &at->queue, why);
	while ((t = sup_tq_pop(&at->inflight))) {
		ts->inflight--;
		t->state = TS_QUEUED;
		sup_tasks_finish(ts, t, TIER_ST_CRASHED, "agent %s was removed", ag->name);
	}
	for (pp = &ts->dirty; *pp; pp = &(*pp)->dirty_next)
		if (*pp == at) {
			*pp = at->dirty_next;
			break;
		}
	free(at);
	ag->task_state = NULL;
}

void sup_tasks_shutdown(struct sup_tasks *ts)
{
	ts->shutting_down = true;
	for (int tier = 1; tier <= SUP_NTIERS; tier++)
		sup_tasks_reject_queue(ts, &ts->tier_q[tier], "tierd is shutting down");
	for (size_t i = 0, n = ts->env.nagents(ts->env.ctx); i < n; i++) {
		struct sup_agent *ag = ts->env.agent(ts->env.ctx, i);

		if (ag->task_state)
			sup_tasks_reject_queue(ts, &sup_tasks_at(ag)->queue, "tierd is shutting down");
	}
}

void sup_tasks_drain(struct sup_tasks *ts, struct sup_agent *ag)
{
	struct agent_tasks *at = sup_tasks_at(ag);

	at->draining = true;
	/* What was queued for it alone is rejected, as docs/control.md says:
	 * it named this agent, so no other may run it. */
	while (at->queue.n) {
		struct sup_task *t = sup_tq_pop(&at->queue);

		sup_tasks_finish(ts, t, TIER_ST_REJECTED, "agent %s is draining", ag->name);
	}
	if (!at->inflight.n)
		sup_tasks_drained_event(ts, ag);
}

void sup_tasks_undrain(struct sup_tasks *ts, struct sup_agent *ag)
{
	sup_tasks_at(ag)->draining = false;
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

uint32_t sup_tasks_tier_queued(const struct sup_tasks *ts, int tier)
{
	return tier >= 1 && tier <= SUP_NTIERS ? ts->tier_q[tier].n : 0;
}

uint32_t sup_tasks_room(const struct sup_agent *ag)
{
	const struct agent_tasks *at = ag->task_state;
	uint32_t cap = ag->max_inflight ? ag->max_inflight : SUP_PIPELINE_DEPTH;
	uint32_t used = at ? at->inflight.n + at->queue.n : 0;

	if (!can_take_state(ag))
		return 0;
	return used < cap ? cap - used : 0;
}

bool sup_tasks_draining(const struct sup_agent *ag)
{
	const struct agent_tasks *at = ag->task_state;

	return at && at->draining;
}

