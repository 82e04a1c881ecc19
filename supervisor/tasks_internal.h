/* SPDX-License-Identifier: MIT */
/*
 * The task table's insides, shared by its files: tasks.c (the table, its
 * ids, submission, the one place a task ends, retention), tasks_dispatch.c
 * (which agent gets a task, deadlines, agents that come and go, drain).
 * Nothing outside tasks*.c includes this.
 */
#ifndef SUP_TASKS_INTERNAL_H
#define SUP_TASKS_INTERNAL_H

#include "agent.h"
#include "config/config.h"
#include "loop.h"
#include "tasks.h"
#include "tasks_env.h"
#include "wal/wal.h"

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
	uint64_t          group;
	int64_t           expires;
	uint16_t          flags;
	uint16_t          type_len;
	uint32_t          context_len;
	uint32_t          len;
	/* The journal (tasks_wal.c), kept across an upgrade: the segment of
	 * its SUBMIT record while pending and of its DONE record while its
	 * result is retained (0 = none; each holds a reference), and what
	 * waits for each to be durable. */
	uint64_t          wal_seg_submit, wal_seg_done;
	struct sup_wal_waiter wal_ack_w, wal_done_w;
	sup_task_ack_fn   ack;
	void             *ack_arg;
	uint64_t          ack_tag;
	int64_t           timeout_ns;
	int64_t           submit_rt;       /* CLOCK_REALTIME ns */
	bool              journal;
	bool              wal_finishing;   /* DONE written, not yet durable: still pending */
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
	struct sup_tasks_env env;
	struct sup_task   **buckets;
	size_t              nbuckets, count;
	uint64_t            next_id;
	struct tqueue       tier_q[SUP_NTIERS + 1];
	struct sup_agent   *hot[SUP_NTIERS + 1]; /* per tier: the agent whose result came last */
	struct agent_tasks *dirty;
	struct sup_defer    flush;
	bool                shutting_down;
	struct sup_tasks_stats st;
	uint64_t            inflight;  /* tasks in some agent's ring */
	int64_t             rtt_ewma;  /* dispatch -> result, ns, smoothed */
	/* Finished tasks kept to be fetched by id, oldest first. */
	struct tqueue       retained;
	uint64_t            retained_bytes;
	/* Its hook in the daemon's agent observers (sup_tasks_observe). */
	struct sup_agent_observer  obs;
	struct sup_agent_observers *observing;
	struct sup_wal     *wal;
	struct tqueue       replay_q;   /* pending tasks a replay found */
};

static inline const struct sup_supervisor_conf *sup_tasks_sconf(const struct sup_tasks *ts)
{
	return &ts->env.conf(ts->env.ctx)->sup;
}

static inline int64_t sup_tasks_now(const struct sup_tasks *ts)
{
	return ts->env.now(ts->env.ctx);
}

/* Queues (tasks.c). */
void sup_tq_push(struct tqueue *q, struct sup_task *t, bool front);
void sup_tq_remove(struct sup_task *t);
struct sup_task *sup_tq_pop(struct tqueue *q);
struct agent_tasks *sup_tasks_at(struct sup_agent *ag);
struct sup_task *sup_tasks_find(const struct sup_tasks *ts, uint64_t id);
int sup_tasks_grow(struct sup_tasks *ts);
void sup_tasks_retain_restored(struct sup_tasks *ts, struct sup_task *t);

/* The one place a task ends (tasks.c): status, and why for non-ok ones. */
void sup_tasks_finish(struct sup_tasks *ts, struct sup_task *t, int status, const char *errfmt, ...)
	__attribute__((format(printf, 4, 5)));

void sup_tasks_drained_event(struct sup_tasks *ts, struct sup_agent *ag);
/* After a task's end is durable: its owner's callback, else retention. */
void sup_tasks_deliver(struct sup_tasks *ts, struct sup_task *t);
void sup_tasks_retain(struct sup_tasks *ts, struct sup_task *t);
void sup_tasks_hash_add(struct sup_tasks *ts, struct sup_task *t);
void sup_tasks_drop(struct sup_tasks *ts, struct sup_task *t);

/* Journal (tasks_wal.c). */
int  sup_tasks_wal_submit(struct sup_tasks *ts, struct sup_task *t, char *err, size_t errlen);
void sup_tasks_wal_acked(struct sup_tasks *ts, struct sup_task *t);
void sup_tasks_wal_done(struct sup_tasks *ts, struct sup_task *t);
void sup_tasks_wal_forget(struct sup_tasks *ts, struct sup_task *t);

/* Dispatch (tasks_dispatch.c). */
void sup_tasks_place(struct sup_tasks *ts, struct sup_task *t, bool front);
void sup_tasks_send_cancel(struct sup_tasks *ts, struct sup_task *t);
void sup_tasks_deadline_fired(struct sup_loop *l, struct sup_timer *tm);
void sup_tasks_flush_all(struct sup_loop *l, struct sup_defer *df);
void sup_tasks_reject_queue(struct sup_tasks *ts, struct tqueue *q, const char *why);

#endif
