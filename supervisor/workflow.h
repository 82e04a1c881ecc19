/* SPDX-License-Identifier: MIT */
/*
 * workflow — the seed's full-team run.
 *
 *   1. tier 1 (orchestrator) agents;
 *   2. tier 2 agents, all in parallel;
 *   3. tier 3 agents in batches of batch_size, one batch after another: the
 *      next batch starts `stagger` after the previous one finished; each
 *      batch is bounded by processing_timeout (a task still running then
 *      ends as `timeout`, never a hang);
 *   4. tier 4 agents whose specialties include the task type.
 * Every stage's tasks carry the task's payload and, as context, the earlier
 * stages' results: one line per result, each cut at SUP_WF_LINE_MAX bytes
 * and the whole at SUP_WF_CONTEXT_MAX; any cut is marked in the text and
 * flagged (TIER_TASK_CONTEXT_TRUNCATED), never silent.
 *
 * The aggregate reports per tier: response time, successes, errors,
 * timeouts, mean quality; and the run's parallel efficiency: the sum of the
 * agents' busy time over wall time x usable cores. Runs are kept (the last
 * SUP_WF_HISTORY) for traces.
 */
#ifndef SUP_WORKFLOW_H
#define SUP_WORKFLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tiers.h"

#define SUP_WF_CONTEXT_MAX (16u * 1024u)
#define SUP_WF_LINE_MAX    1024u
#define SUP_WF_HISTORY     64

struct sup_tasks;
struct sup_tasks_env;
struct sup_wf;
struct sup_run;

/* Called when a run completes, with its aggregate (borrowed). */
typedef void (*sup_run_done_fn)(struct sup_wf *wf, struct sup_run *run, json_t *aggregate,
				void *arg);

struct sup_run_opts {
	const char *type;
	const void *payload;
	size_t      len;
	int         batch_size;   /* 0: the current value */
	int64_t     stagger_ns;   /* < 0: the current value */
	int64_t     timeout_ns;   /* 0: tier processing_timeout */
	sup_run_done_fn done;     /* its owner (NULL: fetched by id) */
	void       *done_arg;
};

/* Runs submit their tasks to tasks; env is copied (see tasks_env.h). */
struct sup_wf *sup_wf_new(const struct sup_tasks_env *env, struct sup_tasks *tasks);
void sup_wf_free(struct sup_wf *wf);

/* Start a run; returns its id (> 0) or -errno with err filled. */
int64_t sup_wf_start(struct sup_wf *wf, const struct sup_run_opts *o, char *err, size_t errlen);

/* Chrome/Perfetto trace JSON of a run (current or kept); NULL if unknown. */
json_t *sup_wf_trace(struct sup_wf *wf, uint64_t run);
/* Aggregate of a finished run; NULL if unknown or still running. */
json_t *sup_wf_aggregate(struct sup_wf *wf, uint64_t run);
/* Summary of the kept runs (newest last). */
json_t *sup_wf_list(struct sup_wf *wf);

/* The pacing the optimiser may change at run time (applies to new runs). */
int     sup_wf_batch_size(const struct sup_wf *wf);
int64_t sup_wf_stagger(const struct sup_wf *wf);
void    sup_wf_set_pacing(struct sup_wf *wf, int batch_size, int64_t stagger_ns);

/* Per-stage timing of recent runs, for the optimiser's bottleneck analysis. */
struct sup_wf_stage_stats {
	double wall_ms;          /* dispatch of the first task to acceptance of the last */
	double busy_ms;          /* sum of agents' run time */
	double dispatch_ms;      /* mean queued -> dispatched (coordination) */
	double validate_ms;      /* mean finished -> accepted (validation delay) */
	double stagger_ms;       /* time spent waiting between batches */
	unsigned tasks, ok, timeouts, errors;
};
struct sup_wf_run_stats {
	uint64_t run;
	double   wall_ms, efficiency;
	struct sup_wf_stage_stats tier[SUP_NTIERS + 1]; /* [1..SUP_NTIERS]; [0] unused */
};
/* Up to max most recent finished runs, newest first; returns how many. */
size_t sup_wf_recent(const struct sup_wf *wf, struct sup_wf_run_stats *out, size_t max);

/* A running run without an owner (its client left, or the previous
 * binary's did) gets done: -ENOENT not running, -EBUSY it has one. */
int sup_wf_rebind(struct sup_wf *wf, uint64_t id, sup_run_done_fn done, void *arg);
bool sup_wf_running(struct sup_wf *wf, uint64_t id);

/* live upgrade (workflow_state.c): the runs, running and kept, into the
 * state's SUP_HO_TAG_WORKFLOWS section, and back into a new, empty wf
 * whose task table was restored first (each pending record is re-bound to
 * its task; stagger timers re-armed at their deadlines). A restored run has
 * no done callback (its waiting client was the old process's): its
 * aggregate is kept to be fetched by id. 0 or -errno; restore names what it
 * refused through sup_ho_r_fail and leaves wf untouched then. */
struct sup_ho_w;
struct sup_ho_r;
int sup_wf_save(const struct sup_wf *wf, struct sup_ho_w *w);
int sup_wf_restore(struct sup_wf *wf, struct sup_ho_r *r);

/* ---- the journal (workflow_wal.c) ---------------------------------------- */
struct sup_wal;
struct sup_wal_rec;
/* Journal runs and their tasks in w from now on (NULL: none). */
void sup_wf_set_wal(struct sup_wf *wf, struct sup_wal *w);
/* Replay: RUN_START and RUN_DONE records (others are ignored). */
void sup_wf_replay_record(struct sup_wf *wf, const struct sup_wal_rec *r);
/* Runs that were in progress: finished as "interrupted" with what
 * completed (their pending tasks cancelled), or, with rerun, started
 * again as new runs. Before sup_tasks_replay_end. Returns how many. */
unsigned sup_wf_replay_end(struct sup_wf *wf, bool rerun);

#endif
