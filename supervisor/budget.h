/* SPDX-License-Identifier: MIT */
/*
 * budget — what one agent may make tierd do per second: records read from
 * its completion ring (results aside: tierd asked for those), log lines and
 * events written for it, bytes read from its stdout/stderr, doorbell
 * wake-ups that brought nothing. Fixed one-second windows; a source that
 * goes over its budget is paused (tierd stops reading it) until the window
 * ends. An agent over some budget in every window for `kill_after` is a
 * flooder. Pure arithmetic: the caller passes the time.
 */
#ifndef SUP_BUDGET_H
#define SUP_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

enum sup_budget_kind {
	SUP_BUDGET_RECORDS,   /* CQ records other than results */
	SUP_BUDGET_LINES,     /* lines into tierd's log */
	SUP_BUDGET_BYTES,     /* stdout + stderr bytes */
	SUP_BUDGET_WAKES,     /* doorbell wake-ups that brought no record */
	SUP_BUDGET_EVENTS,    /* its EVENT records into the journal and the log */
	SUP_BUDGET_NKINDS,
};

#define SUP_BUDGET_WINDOW_NS 1000000000LL

struct sup_budget {
	uint64_t limit[SUP_BUDGET_NKINDS];   /* per window; 0 = unlimited */
	uint64_t used[SUP_BUDGET_NKINDS];
	uint64_t dropped_lines;              /* lines refused, since last taken */
	int64_t  kill_after_ns;              /* 0 = never a flooder */
	int64_t  win_start;
	int64_t  flood_since;                /* first window of a throttled run; 0 none */
	bool     over;                       /* some budget exhausted this window */
	int      flood_kind;                 /* the budget that started the run */
};

enum sup_budget_verdict {
	SUP_BUDGET_OK,        /* go on */
	SUP_BUDGET_THROTTLE,  /* this source waits for sup_budget_resume_at() */
	SUP_BUDGET_FLOODER,   /* over budget for kill_after: kill it */
};

void sup_budget_init(struct sup_budget *b, const uint64_t limit[SUP_BUDGET_NKINDS],
		     int64_t kill_after_ns, int64_t now);

/* Charge n units of kind at time now. A verdict other than OK means the
 * charge went over: the caller pauses the source (or kills the agent). */
enum sup_budget_verdict sup_budget_charge(struct sup_budget *b, enum sup_budget_kind kind,
					  uint64_t n, int64_t now);

/* May one more log line (kind SUP_BUDGET_LINES) or event (SUP_BUDGET_EVENTS:
 * an allowance of its own, so a flood of lines cannot hide the agent's
 * events) be written? Counts a refusal in dropped_lines; never throttles (a
 * line always also costs records or bytes). */
bool sup_budget_line(struct sup_budget *b, enum sup_budget_kind kind, int64_t now);

/* Is kind exhausted in the current window? */
bool sup_budget_exhausted(struct sup_budget *b, enum sup_budget_kind kind, int64_t now);

/* When a paused source may be read again: the end of the current window. */
int64_t sup_budget_resume_at(const struct sup_budget *b);

const char *sup_budget_kind_name(enum sup_budget_kind kind);

#endif
