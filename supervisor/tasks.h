/* SPDX-License-Identifier: MIT */
/*
 * tasks — the task table: ids, queues, dispatch through the agents' rings,
 * results, deadlines, retries, cancellation, retention.
 *
 * Every accepted task gets exactly one final result: ok, error, timeout,
 * crashed, rejected or cancelled. A result is accepted only from the agent
 * incarnation the task is in flight on (anything else is counted as late
 * and dropped). A task whose agent dies is retried on another ready agent of
 * its tier (tier-targeted) or on the replacement (agent-targeted) until it
 * has been in flight on task_retry_budget dead agents; then it is finished
 * as crashed ("poison") and never retried again.
 */
#ifndef SUP_TASKS_H
#define SUP_TASKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "tier/proto.h"
#include "tier/ring.h"

struct sup_agent;
struct sup_inc;
struct sup_inc_hooks;
struct sup_inc_result;
struct sup_tasks;
struct sup_task;
struct sup_tasks_env;

/* Called once when a task finishes (any status): the only way a task
 * ends. Return true when nobody took the result (a client that left): the
 * task is then kept to be fetched by id (see retention); else it is freed
 * after the callback. Do not keep the pointer. */
typedef bool (*sup_task_done_fn)(struct sup_tasks *ts, struct sup_task *t, void *arg);

/* Called once when an accepted task is safe to acknowledge: a journaled
 * task once its SUBMIT record is durable (err < 0: the journal failed, the
 * task is not crash-safe), any other from inside sup_tasks_submit. Always
 * before its done callback. tag is the spec's ack_tag. */
typedef void (*sup_task_ack_fn)(struct sup_tasks *ts, uint64_t id, int err, void *arg,
				uint64_t tag);

struct sup_task_spec {
	const char   *agent;        /* target one agent, or */
	int           tier;         /* any agent of tier 1..4 (least loaded) */
	const char   *type;
	size_t        type_len;
	const void   *payload;
	size_t        len;
	const char   *context;      /* workflow context (text), may be NULL */
	size_t        context_len;
	int64_t       timeout_ns;   /* 0 = none */
	uint16_t      flags;        /* TIER_TASK_* passed to the agent */
	sup_task_done_fn done;      /* its owner; NULL: kept to be fetched by id */
	void         *done_arg;
	uint64_t      group;        /* workflow run id, 0 = none (for traces) */
	/* Journal it (docs/journal.md): control clients' tasks and workflow
	 * runs' are; tierd's own (bench-dispatch) and the broker's are not. */
	bool          journal;
	sup_task_ack_fn ack;        /* may be NULL */
	void         *ack_arg;
	uint64_t      ack_tag;
};

/* Timestamps of a task, CLOCK_MONOTONIC ns (0 = did not happen). */
struct sup_task_times {
	int64_t queued, dispatched, started, finished, accepted;
};

struct sup_task_info {
	uint64_t    id;
	int         status;        /* enum tier_status, -1 while pending */
	double      quality;       /* < 0 if none */
	const void *result;
	uint32_t    result_len;
	const char *error;         /* why, for non-ok statuses */
	const char *agent;         /* last agent it ran on, "" if none */
	int         tier;
	uint32_t    attempts;
	struct sup_task_times t;
};

/* env is copied; its ctx must outlive the table. */
struct sup_tasks *sup_tasks_new(const struct sup_tasks_env *env);
void sup_tasks_free(struct sup_tasks *ts);

/* Accept a task. Returns its id (> 0), or -errno with err filled: ENOENT
 * unknown agent/tier, EMSGSIZE payload too large, EINVAL bad spec, and
 * ECANCELED when shutting down. A full queue does not fail here: the task
 * is accepted and finished as rejected (so its owner sees one result). */
int64_t sup_tasks_submit(struct sup_tasks *ts, const struct sup_task_spec *spec,
			 char *err, size_t errlen);

/* Is it worth spinning for results: tasks in flight that recently came
 * back faster than the spin window? */
bool sup_tasks_spin_worthwhile(const struct sup_tasks *ts);

/* Still waiting for its result? */
bool sup_tasks_is_pending(const struct sup_tasks *ts, uint64_t id);

/* Cancel a pending task: -ENOENT if unknown or already finished. */
int sup_tasks_cancel(struct sup_tasks *ts, uint64_t id);

/* Finished results kept for a disconnected client (or still pending):
 * JSON of the task, or NULL if unknown/expired. */
json_t *sup_tasks_lookup_json(struct sup_tasks *ts, uint64_t id);

void sup_task_info(const struct sup_task *t, struct sup_task_info *ret);
json_t *sup_task_json(const struct sup_task *t);
/* The control protocol's form of a task (tasks_json.c):
 * {"task": id, "status": "...", "agent": "...", "tier": N, "quality": q|null,
 *  "payload": "text" | "payload_b64": "...", "error": "...", "attempts": N,
 *  "times_us": {"queue": …, "run": …, "validate": …, "total": …}} (integers) */
json_t *sup_task_info_json(const struct sup_task_info *i);
const char *sup_task_status_name(int status);

/* Hooks from the daemon and the agents. */
/* A RESULT from incarnation inc_n of ag: 0 if that incarnation held the
 * task (now answered, or failed when res->malformed), -ENOENT if not. */
int  sup_tasks_result(struct sup_tasks *ts, struct sup_agent *ag, uint32_t inc_n,
		      const struct sup_inc_result *res);
/* A RESULT for a task an incarnation had given up: counted. */
void sup_tasks_late_result(struct sup_tasks *ts);
/* The task table's side of its agents' incarnations (arg: the table). */
extern const struct sup_inc_hooks sup_tasks_inc_hooks;
void sup_tasks_flush(struct sup_tasks *ts, struct sup_agent *ag);
void sup_tasks_agent_lost(struct sup_tasks *ts, struct sup_agent *ag, struct sup_inc *inc);
void sup_tasks_agent_state(struct sup_tasks *ts, struct sup_agent *ag, int from);
/* Hears of agents' state changes through l from now until freed. */
struct sup_agent_observers;
void sup_tasks_observe(struct sup_tasks *ts, struct sup_agent_observers *l);
void sup_tasks_agent_removed(struct sup_tasks *ts, struct sup_agent *ag);
void sup_tasks_shutdown(struct sup_tasks *ts);
void sup_tasks_tick(struct sup_tasks *ts);

/* Drain: no new tasks go to ag; what waits in its own queue, and what is
 * submitted for it while it drains, is rejected (its tier's queue is not
 * touched: other agents take that). A "drained" event goes out once nothing
 * is in flight on it any more. undrain lifts it. */
void sup_tasks_drain(struct sup_tasks *ts, struct sup_agent *ag);
void sup_tasks_undrain(struct sup_tasks *ts, struct sup_agent *ag);
uint32_t sup_tasks_inflight(const struct sup_agent *ag);
bool sup_tasks_draining(const struct sup_agent *ag);
uint32_t sup_tasks_queued(const struct sup_tasks *ts, const struct sup_agent *ag);
/* What waits in tier's own queue (1..4). */
uint32_t sup_tasks_tier_queued(const struct sup_tasks *ts, int tier);
/* How many more tasks ag could take now: 0 unless ready and not draining,
 * else its pipeline depth minus what it runs and what waits for it. */
uint32_t sup_tasks_room(const struct sup_agent *ag);

struct sup_tasks_stats {
	uint64_t submitted, finished[TIER_ST_COUNT], late_results, retries, dispatched;
	uint64_t pending, queued;
	/* Finished results kept for clients that left, and those pushed out
	 * by result_retention_max / result_retention_bytes before expiry. */
	uint64_t retained, retained_bytes, retention_dropped;
	/* From the journal at start: tasks re-queued, results kept. */
	uint64_t replayed, replayed_results;
};
void sup_tasks_stats(const struct sup_tasks *ts, struct sup_tasks_stats *ret);

/* Live upgrade (tasks_state.c; docs/handover.md). save: -EBUSY if a task
 * is between lists (finishing). restore: after the agents and their
 * incarnations; errors go to r. rebind: give a pending task without an
 * owner the done callback (a workflow's, a client waiting again): -ENOENT
 * not pending, -EBUSY it has one. resume: feed every agent with room. */
struct sup_ho_w;
struct sup_ho_r;
int  sup_tasks_save(const struct sup_tasks *ts, struct sup_ho_w *w);
int  sup_tasks_restore(struct sup_tasks *ts, struct sup_ho_r *r);
int  sup_tasks_rebind(struct sup_tasks *ts, uint64_t id, sup_task_done_fn done, void *arg);
void sup_tasks_resume(struct sup_tasks *ts);
void sup_tasks_publish_pending(struct sup_tasks *ts);
bool sup_tasks_settled(const struct sup_tasks *ts);

/* ---- the journal (tasks_wal.c) ------------------------------------------ */
struct sup_wal;
struct sup_wal_rec;
/* Journal the tasks whose spec asks for it in w (NULL: none) from now on. */
void sup_tasks_set_wal(struct sup_tasks *ts, struct sup_wal *w);
/* Replay, between sup_wal_replay's records and the first agent's work: a
 * SUBMIT or DONE record (others are ignored). */
void sup_tasks_replay_record(struct sup_tasks *ts, const struct sup_wal_rec *r);
/* The tasks of workflow run group that the replay left pending are
 * finished as cancelled (why); returns how many. */
unsigned sup_tasks_replay_cancel_group(struct sup_tasks *ts, uint64_t group, const char *why);
/* Tasks of group that a replay found finished, as JSON (sup_task_json each). */
json_t *sup_tasks_group_json(struct sup_tasks *ts, uint64_t group);
/* Re-queue what is still pending (re-journaled as fresh SUBMITs, one more
 * attempt against task_retry_budget; past it: crashed). Returns how many
 * were re-queued; *ret_crashed, *ret_results how many ended and how many
 * results came back. */
unsigned sup_tasks_replay_end(struct sup_tasks *ts, unsigned *ret_crashed, unsigned *ret_results);

#endif
