/* SPDX-License-Identifier: MIT */
/* Inside the incarnation module (and its unit tests): see incarnation.h. */
#ifndef SUP_INC_INTERNAL_H
#define SUP_INC_INTERNAL_H

#include "incarnation.h"

#include "../budget.h"

/* Records handled per agent per loop turn, so one busy agent cannot starve
 * the rest of the fleet. */
#define SUP_INC_DRAIN_BUDGET 256

/* What the protocol tells the daemon; report.c has the daemon's, the unit
 * tests their own, so the result protocol runs without a daemon. */
struct sup_inc_report {
	/* The first fault of inc (called once per incarnation). */
	void (*fault)(void *arg, struct sup_inc *inc, const char *what, int err);
	/* A valid first HELLO; the WELCOME is written already. */
	void (*hello)(void *arg, struct sup_inc *inc, uint32_t max_inflight);
	/* A LOG record (len bytes in shared memory, not checked). */
	void (*log)(void *arg, struct sup_inc *inc, const void *text, uint32_t len);
	/* An EVENT record ("kind" NUL "message", in shared memory). */
	void (*event)(void *arg, struct sup_inc *inc, const void *payload, uint32_t len,
		      uint64_t task_id);
};

struct sup_inc_fleet {
	struct sup_inc_env           env;
	const struct sup_inc_hooks  *hooks;
	void                        *arg;
	const struct sup_inc_report *report;
	void                        *report_arg;
	struct sup_inc              *awake;   /* CQs polled while tierd spins */
	struct sup_inc              *dead;    /* detached incarnations */
	/* A live upgrade is handing the fleet over: completions re-arm
	 * nothing and exits are left for the next binary to see. */
	bool                         quiescing;
};

extern const struct sup_inc_report sup_inc_daemon_report;

/* Is inc still the one its agent runs, and still read? */
bool sup_inc_live(const struct sup_inc *inc);

/* output.c */
void sup_inc_out_arm(struct sup_out *o);
void sup_inc_out_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more);

/* wake.c */
void sup_inc_drain_fired(struct sup_loop *l, struct sup_defer *dfr);
void sup_inc_bell_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more);
void sup_inc_resume_fired(struct sup_loop *l, struct sup_timer *t);
/* Drain up to budget records and charge what the agent sent of its own
 * accord; true if more may be waiting. */
bool sup_inc_drain_charged(struct sup_inc *inc, unsigned budget);
/* A source went over budget (the caller stopped reading it). */
void sup_inc_pause(struct sup_inc *inc, enum sup_budget_verdict v, enum sup_budget_kind kind);
void sup_inc_awake_unlink(struct sup_inc *inc);

/* spawn.c */
void sup_inc_budget_init(const struct sup_inc_fleet *f, const struct sup_inc_owner *own, int64_t now);

/* state.c */
void sup_inc_rearm(struct sup_inc *inc);

/* exit.c */
void sup_inc_pid_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more);
void sup_inc_free(struct sup_inc *inc);

#endif
