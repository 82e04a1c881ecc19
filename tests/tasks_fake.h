/* SPDX-License-Identifier: MIT */
/*
 * A fake world for the task table and the workflow (tasks_env.h): a clock
 * the test moves, timers it fires, agents that are plain structs, rings that
 * record what was sent. Included by tests/test_tasks.c and test_workflow.c.
 */
#ifndef TESTS_TASKS_FAKE_H
#define TESTS_TASKS_FAKE_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../supervisor/agent.h"
#include "../supervisor/incarnation/incarnation.h"
#include "../supervisor/config/config.h"
#include "../supervisor/loop.h"
#include "../supervisor/tasks.h"
#include "../supervisor/tasks_env.h"
#include "tier/ring.h"

#define FAKE_AGENTS 16
#define FAKE_SENT   4096
#define FAKE_TIMERS 4096
#define FAKE_DONE   4096

struct fake_sent {
	struct sup_agent    *ag;
	uint64_t             id;
	struct tier_task_hdr h;
	uint32_t             body_len;
	char                 body[512];   /* type, context, payload (cut) */
};

struct fake {
	struct sup_config     conf;
	struct sup_agent_conf aconf[FAKE_AGENTS];
	struct sup_agent     *agents[FAKE_AGENTS];
	struct sup_inc        incs[FAKE_AGENTS];
	size_t                nagents;
	int64_t               now;
	struct sup_timer     *timers[FAKE_TIMERS];
	size_t                ntimers;
	struct sup_defer     *deferred[8];
	size_t                ndeferred;
	struct fake_sent      sent[FAKE_SENT];
	size_t                nsent;
	int                   send_rc;        /* forced result of send, 0 = take it */
	uint64_t              cancels[FAKE_SENT];
	size_t                ncancels;
	unsigned              publishes, faults;
	char                  last_fault[128];
	char                  events[64][128];
	size_t                nevents;
	uint64_t              cpu_ns;
	bool                  shutting_down;
	/* Done callbacks seen, per task id: exactly-once bookkeeping. */
	unsigned              done_count[FAKE_DONE];
	int                   done_status[FAKE_DONE];
	char                  done_error[FAKE_DONE][160];
	bool                  keep;           /* what the done callback answers */
};

static inline struct fake *F(void *ctx)
{
	return ctx;
}

static inline const struct sup_config *fk_conf(void *ctx)
{
	return &F(ctx)->conf;
}

static inline int64_t fk_now(void *ctx)
{
	return F(ctx)->now;
}

static inline void fk_timer_arm(void *ctx, struct sup_timer *t, int64_t deadline)
{
	struct fake *f = F(ctx);

	t->deadline = deadline;
	if (!t->slot) {
		cr_assert_lt(f->ntimers, FAKE_TIMERS);
		f->timers[f->ntimers++] = t;
		t->slot = (uint32_t)f->ntimers;
	}
}

static inline void fk_timer_disarm(void *ctx, struct sup_timer *t)
{
	struct fake *f = F(ctx);

	for (size_t i = 0; t->slot && i < f->ntimers; i++)
		if (f->timers[i] == t) {
			f->timers[i] = NULL;
			break;
		}
	t->slot = 0;
}

static inline void fk_defer(void *ctx, struct sup_defer *df)
{
	struct fake *f = F(ctx);

	if (df->queued)
		return;
	df->queued = true;
	f->deferred[f->ndeferred++] = df;
}

static inline size_t fk_nagents(void *ctx)
{
	return F(ctx)->nagents;
}

static inline struct sup_agent *fk_agent(void *ctx, size_t i)
{
	return F(ctx)->agents[i];
}

static inline struct sup_agent *fk_find_agent(void *ctx, const char *name)
{
	struct fake *f = F(ctx);

	for (size_t i = 0; i < f->nagents; i++)
		if (!strcmp(f->agents[i]->name, name))
			return f->agents[i];
	return NULL;
}

static inline int fk_send(void *ctx, struct sup_agent *ag, const struct tier_task_hdr *h, uint64_t id,
		   const void *body, uint32_t len)
{
	struct fake *f = F(ctx);
	struct fake_sent *s;

	if (f->send_rc)
		return f->send_rc;
	cr_assert_lt(f->nsent, FAKE_SENT);
	s = &f->sent[f->nsent++];
	s->ag = ag;
	s->id = id;
	s->h = *h;
	s->body_len = len;
	memcpy(s->body, body, len < sizeof(s->body) ? len : sizeof(s->body));
	return 0;
}

static inline int fk_cancel(void *ctx, struct sup_agent *ag, uint64_t id)
{
	struct fake *f = F(ctx);

	(void)ag;
	f->cancels[f->ncancels++] = id;
	return 0;
}

static inline void fk_publish(void *ctx, struct sup_agent *ag)
{
	(void)ag;
	F(ctx)->publishes++;
}

static inline uint32_t fk_max_record(void *ctx, struct sup_agent *ag)
{
	(void)ctx;
	(void)ag;
	return 4096;
}

static inline void fk_fault(void *ctx, struct sup_agent *ag, const char *what, int err)
{
	struct fake *f = F(ctx);

	(void)err;
	f->faults++;
	snprintf(f->last_fault, sizeof(f->last_fault), "%s", what);
	ag->inc->faulted = true;
}

static inline void fk_task_done(void *ctx, struct sup_agent *ag, int status, int64_t latency_ns,
			 double quality)
{
	(void)ctx;
	(void)ag;
	(void)status;
	(void)latency_ns;
	(void)quality;
}

static inline void fk_event(void *ctx, const char *kind, json_t *data, const char *msg)
{
	struct fake *f = F(ctx);

	json_decref(data);
	if (f->nevents < 64)
		snprintf(f->events[f->nevents++], sizeof(f->events[0]), "%s: %s", kind, msg);
}

static inline uint64_t fk_fleet_cpu_ns(void *ctx)
{
	return F(ctx)->cpu_ns;
}

static inline bool fk_shutting_down(void *ctx)
{
	return F(ctx)->shutting_down;
}

static inline struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	cr_assert_not_null(f);
	f->now = 1000000000;
	f->conf.sup.task_retry_budget = 1;
	f->conf.sup.task_queue_limit = 100;
	f->conf.sup.max_payload = 1024;
	f->conf.sup.result_retention_ns = 60 * 1000000000LL;
	f->conf.sup.result_retention_max = 1000;
	f->conf.sup.result_retention_bytes = 1 << 20;
	for (int t = 0; t < SUP_NTIERS; t++) {
		f->conf.tiers[t].processing_timeout_ns = 5 * 1000000000LL;
		f->conf.tiers[t].batch_size = 2;
	}
	return f;
}

static inline struct sup_tasks_env fake_env(struct fake *f)
{
	return (struct sup_tasks_env){
		.ctx = f, .conf = fk_conf, .now = fk_now, .now_fresh = fk_now,
		.timer_arm = fk_timer_arm, .timer_disarm = fk_timer_disarm, .defer = fk_defer,
		.nagents = fk_nagents, .agent = fk_agent, .find_agent = fk_find_agent,
		.send = fk_send, .cancel = fk_cancel, .publish = fk_publish,
		.max_record = fk_max_record, .fault = fk_fault, .task_done = fk_task_done,
		.event = fk_event, .fleet_cpu_ns = fk_fleet_cpu_ns, .shutting_down = fk_shutting_down,
	};
}

/* A ready agent of tier with an incarnation (number 1) and, for tier 4,
 * the given specialty (or none). */
static inline struct sup_agent *fake_agent(struct fake *f, const char *name, int tier, const char *specialty)
{
	size_t i = f->nagents++;
	struct sup_agent *ag = calloc(1, sizeof(*ag));
	struct sup_agent_conf *c = &f->aconf[i];

	cr_assert_lt(i, FAKE_AGENTS);
	cr_assert_not_null(ag);
	c->ring_size = 1u << 20;
	if (specialty) {
		c->specialties = calloc(2, sizeof(char *));
		c->specialties[0] = strdup(specialty);
		c->n_specialties = 1;
	}
	ag->conf = c;
	snprintf(ag->name, sizeof(ag->name), "%s", name);
	ag->name_len = strlen(ag->name);
	ag->tier = tier;
	ag->state = SUP_AG_READY;
	f->incs[i].n = 1;
	f->incs[i].ag = ag;
	ag->inc = &f->incs[i];
	f->agents[i] = ag;
	return ag;
}

/* The loop's end of turn: run what was deferred (the rings' flush). */
static inline void fake_end_turn(struct fake *f)
{
	while (f->ndeferred) {
		struct sup_defer *df = f->deferred[--f->ndeferred];

		df->queued = false;
		df->cb(NULL, df);
	}
}

/* Move the clock to t and fire every timer due by then, earliest first. */
static inline void fake_advance_to(struct fake *f, int64_t t)
{
	for (;;) {
		struct sup_timer *due = NULL;
		size_t at = 0;

		for (size_t i = 0; i < f->ntimers; i++)
			if (f->timers[i] && f->timers[i]->deadline <= t &&
			    (!due || f->timers[i]->deadline < due->deadline)) {
				due = f->timers[i];
				at = i;
			}
		if (!due)
			break;
		f->timers[at] = NULL;
		due->slot = 0;
		if (due->deadline > f->now)
			f->now = due->deadline;
		due->cb(NULL, due);
	}
	f->now = t;
	fake_end_turn(f);
}

/* What the incarnation does with a RESULT the task table did not take
 * (incarnation/channel.c, tested in test_incarnation.c): late once if it
 * had cancelled that id, else a fault of the agent's. */
static inline int fake_not_held(struct sup_tasks *ts, struct fake *f, struct sup_agent *ag,
				uint64_t id)
{
	for (size_t i = 0; i < f->ncancels; i++)
		if (f->cancels[i] == id) {
			f->cancels[i] = 0;
			sup_tasks_late_result(ts);
			return 0;
		}
	fk_fault(f, ag, "RESULT for a task this incarnation does not hold", 0);
	return -1;
}

/* The agent answers task id with status (and quality x100, or -1). */
static inline int fake_result(struct sup_tasks *ts, struct fake *f, struct sup_agent *ag, uint64_t id,
		       int status, int quality_x100, const char *text)
{
	struct sup_inc_result res = {
		.id = id,
		.hdr = {
			.status = (uint8_t)status,
			.has_quality = quality_x100 >= 0,
			.quality_x100 = (uint16_t)(quality_x100 >= 0 ? quality_x100 : 0),
			.started_ns = f->now - 10,
			.finished_ns = f->now - 5,
		},
		.body = text,
		.body_len = text ? (uint32_t)strlen(text) : 0,
	};
	int r;

	res.len = (uint32_t)sizeof(res.hdr) + res.body_len;
	r = sup_tasks_result(ts, ag, ag->inc->n, &res);
	return r == -ENOENT ? fake_not_held(ts, f, ag, id) : r;
}

/* The agent sends a RESULT of len bytes, shorter than its header: the task
 * it held fails, and the incarnation faults the agent for it. */
static inline int fake_malformed_result(struct sup_tasks *ts, struct fake *f, struct sup_agent *ag,
					uint64_t id, uint32_t len)
{
	struct sup_inc_result res = { .id = id, .len = len, .malformed = true };

	sup_tasks_result(ts, ag, ag->inc->n, &res);
	fk_fault(f, ag, "RESULT shorter than its header", 0);
	return -1;
}

/* The agent's process died: the incarnation is still attached while its
 * lost tasks are handled, and takes nothing more. */
static inline void fake_die(struct sup_tasks *ts, struct sup_agent *ag)
{
	ag->inc->exited = true;
	sup_tasks_agent_lost(ts, ag, ag->inc);
	ag->state = SUP_AG_BACKOFF;
}

/* A new incarnation is ready. */
static inline void fake_restart(struct sup_tasks *ts, struct sup_agent *ag)
{
	ag->inc->n++;
	ag->inc->exited = false;
	ag->inc->faulted = false;
	ag->state = SUP_AG_READY;
	sup_tasks_agent_state(ts, ag, SUP_AG_STARTING);
}

static inline void fake_free_agents(struct fake *f)
{
	for (size_t i = 0; i < f->nagents; i++) {
		if (f->aconf[i].specialties) {
			free(f->aconf[i].specialties[0]);
			free(f->aconf[i].specialties);
		}
		free(f->agents[i]->task_state);
		free(f->agents[i]);
	}
}

#endif
