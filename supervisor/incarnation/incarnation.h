/* SPDX-License-Identifier: MIT */
/*
 * incarnation — one run of an agent's process, seen by tierd as a channel:
 * tasks go in (send, then flush publishes the batch), cancels go in,
 * results come out through the hooks of the fleet it belongs to, and it
 * ends on its own (exit) or through a fault of its agent's making.
 *
 * The module owns everything that touches an incarnation's rings, doorbells
 * and pipes; its callers see the interface below and the read-only fields
 * of struct sup_inc (n, pid, spawned_ns, exited, faulted, ag).
 *
 * Files: spawn.c (argv, environment, spawn, signal), output.c (stdout and
 * stderr capture under the per-agent budgets), channel.c (the result-ring
 * protocol: records, checks, the fault latch, send/flush/cancel), wake.c
 * (doorbells, idle spin, budget pauses), exit.c (exit, detach, reap, the
 * fleet), report.c (what the daemon is told: events, log, agent state).
 */
#ifndef SUP_INCARNATION_H
#define SUP_INCARNATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tier/proto.h"

#include "../loop.h"
#include "../spawn.h"

struct sup_agent;
struct sup_agent_conf;
struct sup_budget;
struct sup_cg;
struct sup_cg_leaf;
struct sup_config;
struct sup_inc;
struct sup_inc_fleet;
struct sup_journal;
struct tier_shm;

#define SUP_OUT_BUF 4096

/* Task ids one incarnation gave up (deadline, cancel) while it held them:
 * a RESULT for one of these is late, not a fault. Enough for 16 full
 * pipelines abandoned without an answer. */
#define SUP_INC_ABANDONED 1024

/* Captured stdout/stderr of one incarnation. */
struct sup_out {
	struct sup_inc *inc;
	int             fd;
	int             stream;     /* 1 stdout, 2 stderr */
	struct sup_ev   ev;
	size_t          len;        /* bytes of an unfinished line */
	char            buf[SUP_OUT_BUF];
};

/* What an incarnation tells its agent (agent.c implements them; ag is the
 * owner's, passed through untouched). */
struct sup_inc_owner_ops {
	/* It runs: inc is the agent's current incarnation. */
	void (*spawned)(struct sup_agent *ag, struct sup_inc *inc);
	/* Its leaf was replaced by a fresh directory before the spawn. */
	void (*leaf_recreated)(struct sup_agent *ag);
	/* A valid first HELLO (the WELCOME is written already). */
	void (*hello)(struct sup_agent *ag, uint32_t max_inflight);
	/* Its first protocol violation (journaled already): kill it. */
	void (*faulted)(struct sup_agent *ag);
	/* Over a budget for too long (journaled already): kill it. */
	void (*flooded)(struct sup_agent *ag);
	/* The process ended, its last results taken, inc detached and soon
	 * freed: the agent has no incarnation any more. */
	void (*exited)(struct sup_agent *ag, bool clean);
};

/* The agent an incarnation belongs to, as a view its agent fills for each
 * spawn: what the incarnation reads, and the few agent fields it keeps up
 * (budgets, dropped lines, the last exit). conf is read by the spawn only:
 * a reload may replace it while the process runs. */
struct sup_inc_owner {
	struct sup_agent                *ag;
	const struct sup_inc_owner_ops  *ops;
	const char                      *name;
	int                              tier;
	uint32_t                         n;          /* incarnation number */
	const struct sup_agent_conf     *conf;
	struct sup_cg_leaf              *leaf;
	struct sup_budget               *budget;     /* what it may cost tierd */
	uint64_t                        *log_dropped; /* lines its budget refused */
	const bool                      *stop_requested; /* is its exit expected? */
	char                            *last_exit;  /* how it ended, for status */
	size_t                           last_exit_len;
};

/* One run of the agent's process. Outlives the process until every io_uring
 * operation on its fds has completed. */
struct sup_inc {
	struct sup_inc_fleet *fleet;
	struct sup_agent *ag;       /* NULL once detached; opaque here, see own */
	struct sup_inc_owner own;   /* its agent, as this module sees it */
	uint32_t          n;        /* incarnation number */
	pid_t             pid;
	int               pidfd;
	struct sup_ev     pid_ev;
	struct tier_shm  *shm;
	int               cq_bell, sq_bell;
	struct sup_ev     bell_ev;
	struct sup_defer  drain;
	struct sup_out    out[2];
	int64_t           spawned_ns;
	uint64_t          oom_kills_at_spawn;
	bool              exited;
	bool              hello;
	bool              cq_awake;    /* on the fleet's awake list, not asleep */
	struct sup_inc   *next_awake;
	struct sup_inc   *next_dead;
	/* Containment: the first fault or flood of an incarnation is reported
	 * once and ends it; nothing more is read from it. */
	bool              faulted;
	bool              bell_rang;   /* the drain was queued by the doorbell */
	bool              cq_paused;   /* over budget: CQ not read till resume */
	bool              out_paused[2];
	struct sup_timer  resume;      /* end of the window that paused it */
	uint64_t          abandoned[SUP_INC_ABANDONED]; /* ring of ids, 0 = free */
	uint32_t          nabandoned;
	uint64_t          welcome_end;  /* task-ring position after the WELCOME */
};

/* A task as it goes into the ring. */
struct sup_inc_task {
	uint64_t    id;
	int64_t     deadline_ns;   /* CLOCK_MONOTONIC; 0 = none */
	uint32_t    attempt;       /* 1 for the first try */
	uint16_t    flags;         /* TIER_TASK_* */
	uint16_t    type_len;
	uint32_t    context_len;
	uint32_t    len;
	const void *data;          /* type, context, payload, back to back */
};

/* A RESULT as the ring brought it; the header is copied, the payload is
 * still in shared memory and may change under the reader: copy it first. */
struct sup_inc_result {
	uint64_t           id;
	uint32_t           len;        /* payload bytes of the record */
	bool               malformed;  /* shorter than its header: hdr unset */
	struct tier_result hdr;
	const void        *body;       /* after the header */
	uint32_t           body_len;
};

/* What the incarnations of a fleet hand upwards (the task table). */
struct sup_inc_hooks {
	/* A RESULT for res->id: 0 if inc held that task (it is now answered,
	 * or failed if res->malformed), -ENOENT if it did not. */
	int  (*result)(void *arg, struct sup_inc *inc, const struct sup_inc_result *res);
	/* A RESULT for a task inc had given up (see sup_inc_cancel). */
	void (*late)(void *arg, struct sup_inc *inc, uint64_t id);
	/* A drain pass ended with inc still open: room for more tasks. */
	void (*drained)(void *arg, struct sup_inc *inc);
	/* inc's process ended (its last results are taken): what it held is
	 * the caller's again. Called once, while inc->ag is still set. */
	void (*lost)(void *arg, struct sup_inc *inc);
	/* Is polling the rings before the loop blocks worth it now? */
	bool (*spin_worthwhile)(void *arg);
};

/* What the fleet needs of the daemon, copied at sup_inc_fleet_new. What
 * changes later is reached through pointers: the configuration (a reload
 * replaces it) and the sandbox (prepared once the control socket exists). */
struct sup_inc_env {
	struct sup_loop                 *loop;
	const struct sup_journal        *journal;   /* protocol reports, output */
	struct sup_cg                   *cg;        /* the tree of the agents' leaves */
	bool                             kill_taints_clone3; /* see sup_cg_probe_kill_taint */
	const char                      *agentd_path;
	int                              devnull;   /* the agents' stdin */
	const struct sup_config *const  *conf;
	const int                       *sandbox_fd;  /* mount namespace, or -1 */
	const int                       *sandbox_err; /* why it is -1 */
	const enum sup_spawn_step       *sandbox_step;
};

/* The daemon's incarnations: the ones polled while tierd spins and the
 * detached ones waiting for their last io_uring operations; what their
 * protocol reports (faults, LOG, EVENT) goes to env->journal. NULL, errno. */
struct sup_inc_fleet *sup_inc_fleet_new(const struct sup_inc_env *env,
					const struct sup_inc_hooks *h, void *arg);
/* Frees what has been reaped; call once the loop has ended. NULL is fine. */
void sup_inc_fleet_free(struct sup_inc_fleet *f);

/* Spawn a new incarnation of own's agent into its leaf, in fleet f; on
 * success own->ops->spawned has been told and its exit, doorbell and output
 * are watched. On failure err says which step failed and why (e.g.
 * "…/bin/x: execve: No such file or directory"). */
int sup_inc_spawn(struct sup_inc_fleet *f, const struct sup_inc_owner *own, char *err,
		  size_t errlen);

/* Send a signal through the pidfd (0 if it already exited). */
int sup_inc_signal(struct sup_inc *inc, int sig);

/* Write one TASK record, not yet visible: 0; -EAGAIN ring full; -EMSGSIZE
 * it can never fit this ring (see sup_inc_max_payload); another negative
 * value when the ring is corrupt, and inc is then faulted. */
int sup_inc_send(struct sup_inc *inc, const struct sup_inc_task *t);
/* Make what was sent visible and wake the agent if it sleeps: 0, or -errno
 * if the wake failed (the records are published anyway). A corrupt ring
 * faults inc and returns 0: the fault is the report. */
int sup_inc_flush(struct sup_inc *inc);
/* Tell the agent to give up task id; its RESULT for id is then late, not
 * a fault. 0 if the CANCEL was written (flush to send it), else -errno. */
int sup_inc_cancel(struct sup_inc *inc, uint64_t id);
/* Largest record payload its task ring takes. */
uint32_t sup_inc_max_payload(const struct sup_inc *inc);

/* What one drain pass took from a completion ring. */
struct sup_inc_drained {
	unsigned records;
	unsigned unsolicited;  /* records that were not RESULTs */
};

/* Drain up to budget records of inc's completion ring into the fleet's
 * hooks; the consumer position is released whatever happens. 1 if the
 * budget was spent (more may be waiting), 0 if the ring is empty, -1 if inc
 * stopped being read (fault, detach: *ret is then zero). */
int sup_inc_drain(struct sup_inc *inc, unsigned budget, struct sup_inc_drained *ret);

/* inc broke the protocol (what: a sentence naming the fault; err: a ring
 * error or 0): the first call per incarnation records one
 * protocol_violation event and kills it, later ones do nothing. */
void sup_inc_fault(struct sup_inc *inc, const char *what, int err);

/* The loop's idle hook (see sup_idle_hook), arg the fleet: poll the
 * completion rings of agents with tasks in flight, then put them to sleep
 * on their doorbells. */
int sup_inc_idle_spin(void *arg);
int sup_inc_before_sleep(void *arg);

/* Free detached incarnations whose io_uring operations have all ended
 * (NULL is fine: a daemon that failed before it had a fleet). */
void sup_inc_reap_dead(struct sup_inc_fleet *f);

/* Live upgrade (state.c; docs/handover.md). quiesce: cancel every
 * operation of the n incarnations and re-arm nothing until unquiesce (a
 * failed hand-over); quiet: nothing of theirs is left in io_uring and no
 * detached one waits. save: one incarnation's process, ring and pipes
 * (-EBUSY if it exited and is being taken apart). restore: the new
 * binary's copy for own's agent, watching nothing yet (NULL: the error is
 * in r, no fd closed); restored: the hand-over is committed, watch it and
 * tell its agent. */
struct sup_ho_w;
struct sup_ho_r;
void sup_inc_fleet_quiesce(struct sup_inc_fleet *f, struct sup_inc *const *incs, size_t n);
bool sup_inc_fleet_quiet(const struct sup_inc_fleet *f, struct sup_inc *const *incs, size_t n);
void sup_inc_fleet_unquiesce(struct sup_inc_fleet *f, struct sup_inc *const *incs, size_t n);
int  sup_inc_save(const struct sup_inc *inc, struct sup_ho_w *w);
struct sup_inc *sup_inc_restore(struct sup_inc_fleet *f, const struct sup_inc_owner *own,
				struct sup_ho_r *r);
void sup_inc_restored(struct sup_inc *inc);

#endif
