/* SPDX-License-Identifier: MIT */
/*
 * The workflow's insides, shared by workflow.c (the stage machine, runs)
 * and workflow_report.c (aggregate, traces, the optimiser's statistics).
 * Nothing outside workflow*.c includes this.
 */
#ifndef SUP_WORKFLOW_INTERNAL_H
#define SUP_WORKFLOW_INTERNAL_H

#include "loop.h"
#include "tasks.h"
#include "tasks_env.h"
#include "workflow.h"

#define STAGE_DONE 5
/* Room kept for the truncation marker after the context's bound. */
#define CTX_MARKER_MAX 96

struct rec {
	struct sup_run       *run;
	char                  agent[64];
	int                   tier;
	int                   batch;       /* tier 3: batch number from 0; else -1 */
	int                   status;      /* -1 while pending */
	double                quality;
	uint64_t              task;
	struct sup_task_times t;
	char                 *result;      /* the first SUP_WF_LINE_MAX bytes */
	size_t                result_len;
	size_t                full_len;
};

struct sup_run {
	struct sup_wf    *wf;
	uint64_t          id;
	char             *type;
	void             *payload;
	size_t            len;
	int               stage;
	int               batch_size;
	int64_t           stagger_ns;
	int64_t           timeout_ns;      /* 0: per tier */
	struct rec      **recs;
	size_t            nrecs, cap;
	size_t            stage_first;     /* first record of the current stage */
	unsigned          pending;
	bool              launching;
	/* tier 3 */
	char            **t3;              /* agent names, in order */
	size_t            n_t3, next_t3;
	int               batch_no;
	int64_t           batch_done_ns;
	int64_t           stagger_total_ns;
	struct sup_timer  stagger_timer;
	/* context passed forward */
	char             *ctx;
	size_t            ctx_len;
	bool              ctx_truncated;
	size_t            ctx_dropped;
	size_t            ctx_max;         /* what fits every ring with the payload */
	int64_t           start_ns, end_ns;
	unsigned          cores;
	uint64_t          cpu0;            /* the agents' CPU time at the start (ns) */
	double            cpu_ms;          /* … used during the run */
	sup_run_done_fn   done;
	void             *done_arg;
	json_t           *aggregate;
	struct sup_wf_run_stats stats;
	struct sup_run   *next;            /* history, oldest first */
	uint64_t          wal_seg;         /* its RUN_START's segment while it runs (0: none) */
	bool              interrupted;     /* by a crash (workflow_wal.c): no statistics */
};

/* A run a replay found started and not done (workflow_wal.c). */
struct wf_replayed {
	uint64_t            run, seg;
	char               *type;
	void               *payload;
	size_t              len;
	int                 batch_size;
	int64_t             stagger_ns, timeout_ns;
	struct wf_replayed *next;
};

struct sup_wf {
	struct sup_tasks_env env;
	struct sup_tasks  *tasks;
	uint64_t           next_id;
	struct sup_run    *runs, *last;    /* running and kept, oldest first */
	size_t             nruns;
	int                batch_size;
	int64_t            stagger_ns;
	struct sup_wal    *wal;
	struct wf_replayed *replayed;
};

/* The journal (workflow_wal.c): RUN_START before a run starts (its id is
 * wf->next_id + 1; -errno with err filled: refused), RUN_DONE at its end. */
int  sup_wf_wal_start(struct sup_wf *wf, struct sup_run *run, char *err, size_t errlen);
void sup_wf_wal_done(struct sup_run *run, uint8_t status);
void sup_wf_replayed_free(struct sup_wf *wf);


/* The aggregate of a finished run (fills run->stats too). */
json_t *sup_wf_aggregate_run(struct sup_run *run);

/* What workflow_state.c re-binds after a live upgrade (workflow.c): a
 * record's task done callback (arg: the rec), the tier-3 stagger timer's
 * callback (data: the run), and a run's destructor (no timer disarmed). */
bool sup_wf_rec_done(struct sup_tasks *ts, struct sup_task *t, void *arg);
void sup_wf_stagger_fired(struct sup_loop *l, struct sup_timer *t);
void sup_wf_run_free(struct sup_run *run);

#endif
