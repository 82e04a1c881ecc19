/* SPDX-License-Identifier: MIT */
/*
 * agent — one supervised agent: its cgroup leaf, its current incarnation
 * (process, rings, doorbells, captured output) and the state machine that
 * decides what happens on each event.
 *
 * States × events (anything not listed is ignored and logged at debug):
 *
 *   stopped   start/restart -> spawn -> starting        (spawn error -> backoff|failed)
 *   starting  hello -> ready; start-timeout/protocol/flood -> kill -> stopping(restart)
 *             exit -> backoff|failed|stopped (policy); stop -> term -> stopping
 *   ready     exit -> backoff|failed|stopped (policy); stop -> term -> stopping
 *             restart -> term -> stopping(restart); protocol/flood -> kill -> stopping(restart)
 *   stopping  exit -> stopped, or spawn if a restart is pending; stop-timeout -> kill
 *   backoff   timer -> spawn -> starting; stop -> stopped; restart -> spawn now
 *   failed    start/restart -> spawn (crash history cleared); stop -> stopped
 *
 * A crash loop (crash_loop_count deaths within crash_loop_window) moves the
 * agent to failed with an event, until an operator restarts it.
 */
#ifndef SUP_AGENT_H
#define SUP_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "budget.h"
#include "incarnation/incarnation.h"
#include "log.h"
#include "loop.h"

struct sup_daemon;
struct sup_agent_conf;
struct sup_cg;
struct sup_cg_leaf;
struct sup_config;
struct sup_inc_fleet;
struct sup_journal;
struct sup_agent_observers;

/* What an agent reaches of the daemon, instead of the daemon: set once by
 * its owner, shared by every agent, and outliving them all. */
struct sup_agent_env {
	struct sup_config *const         *conf;      /* the current config: reloads replace it */
	struct sup_loop                  *loop;      /* its timers, the time */
	struct sup_cg                    *cg;        /* where its leaf lives */
	const struct sup_journal         *journal;   /* its events and log lines */
	struct sup_inc_fleet             *incs;      /* spawns its incarnations */
	const struct sup_agent_observers *observers; /* who hears of its changes */
};

enum sup_agent_state {
	SUP_AG_STOPPED,
	SUP_AG_STARTING,
	SUP_AG_READY,
	SUP_AG_STOPPING,
	SUP_AG_BACKOFF,
	SUP_AG_FAILED,
	SUP_AG_NSTATES,
};

enum sup_agent_event {
	SUP_EV_START,
	SUP_EV_RESTART,
	SUP_EV_STOP,
	SUP_EV_HELLO,
	SUP_EV_EXIT,
	SUP_EV_START_TIMEOUT,
	SUP_EV_STOP_TIMEOUT,
	SUP_EV_BACKOFF_DONE,
	SUP_EV_PROTOCOL,
	SUP_EV_FLOOD,
	SUP_EV_NEVENTS,
};

const char *sup_agent_state_name(enum sup_agent_state s);
const char *sup_agent_event_name(enum sup_agent_event e);

#define SUP_MAX_DEATHS 64

struct sup_agent {
	const struct sup_agent_env   *env;
	/* Set by the daemon for the modules that still reach it through the
	 * agent; the agent's own code does not use it. */
	struct sup_daemon            *d;
	const struct sup_agent_conf  *conf;
	char                          name[64];
	size_t                        name_len;
	int                           tier;
	struct sup_cg_leaf           *leaf;
	enum sup_agent_state          state;
	struct sup_inc               *inc;       /* NULL when no process */
	uint32_t                      incarnations;
	struct sup_timer              timer;     /* start, stop or backoff */
	int64_t                       ready_ns;
	uint64_t                      restarts;
	unsigned                      backoff_level;
	int64_t                       backoff_until;
	int64_t                       deaths[SUP_MAX_DEATHS];
	unsigned                      ndeaths;
	bool                          restart_pending;  /* spawn again once stopped */
	bool                          stop_requested;   /* exit is expected */
	bool                          remove_when_stopped;
	bool                          exit_clean;
	const struct sup_agent_conf  *replacement;      /* added once this one is removed */
	const char                   *kill_reason;      /* why we killed it, if we did */
	int64_t                       last_spawn_ns;
	char                          last_exit[320];
	struct sup_budget             budget;    /* what it may cost tierd per second */
	uint64_t                      log_dropped; /* lines refused by the budget, ever */
	/* dispatch (tasks) */
	uint32_t                      max_inflight;
	void                         *task_state;   /* owned by the task module */
	void                         *mon_state;    /* owned by the monitor */
};

/*
 * Who hears of an agent's changes. Every module that reacts to them (the
 * journal, the task table, readiness, the monitor, the allocator) registers
 * one observer at init; the state machine notifies the list, in
 * registration order, and knows none of them.
 */
struct sup_agent_observer {
	/* ag->state is the new state, from the one it left. NULL: not heard. */
	void (*state)(void *arg, struct sup_agent *ag, enum sup_agent_state from);
	/* Its leaf was replaced by a fresh directory. NULL: not heard. */
	void (*leaf)(void *arg, struct sup_agent *ag);
	void *arg;
	struct sup_agent_observer *next;   /* the list's */
};

struct sup_agent_observers {
	struct sup_agent_observer *head;
};

/* Appends o: it hears of changes after everyone registered before it. */
void sup_agent_observe(struct sup_agent_observers *l, struct sup_agent_observer *o);
/* Takes o off the list (no-op if it is not on it). */
void sup_agent_unobserve(struct sup_agent_observers *l, struct sup_agent_observer *o);

void sup_agent_notify_state(const struct sup_agent_observers *l, struct sup_agent *ag,
			    enum sup_agent_state from);
void sup_agent_notify_leaf(const struct sup_agent_observers *l, struct sup_agent *ag);

/* Creates its cgroup leaf in env->cg; NULL with err filled on failure. */
struct sup_agent *sup_agent_new(const struct sup_agent_env *env,
				const struct sup_agent_conf *conf, char *err, size_t errlen);
/* Only when no process runs (stopped, backoff, failed). */
void sup_agent_free(struct sup_agent *ag, bool remove_leaf);

/* Delay before restart number `level` (0: immediate, then base, 2*base, …,
 * capped). */
int64_t sup_agent_backoff_delay(unsigned level, int64_t base, int64_t cap);

/* Feed an event to the state machine. */
void sup_agent_event(struct sup_agent *ag, enum sup_agent_event ev);

/* Is a process running for it (starting, ready or stopping)? */
bool sup_agent_running(const struct sup_agent *ag);
double sup_agent_uptime_s(const struct sup_agent *ag);

/* Its leaf was replaced by a fresh directory: per-agent knobs go again. */
void sup_agent_leaf_recreated(struct sup_agent *ag);

/* The process ended (its incarnation, once reaped, tells agent.c). */
void sup_agent_exited(struct sup_agent *ag, bool clean);

/* Live upgrade (agent_state.c; docs/handover.md). save: -EBUSY while a
 * reload is still replacing or removing it. restore: the next agent of
 * the state, matched by name to conf (hint: the index to look at first),
 * with its incarnation (not watched
 * until sup_inc_restored); NULL: the error is in r, no fd closed. */
struct sup_ho_w;
struct sup_ho_r;
struct sup_inc_owner;
int  sup_agent_save(const struct sup_agent *ag, struct sup_ho_w *w);
struct sup_agent *sup_agent_restore(const struct sup_agent_env *env, const struct sup_config *conf,
				    size_t hint, struct sup_ho_r *r);
/* What its incarnation number n sees of it (agent.c). */
void sup_agent_owner(struct sup_agent *ag, uint32_t n, struct sup_inc_owner *own);
void sup_agent_timer_fired(struct sup_loop *l, struct sup_timer *t);

#endif
