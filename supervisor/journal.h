/* SPDX-License-Identifier: MIT */
/*
 * journal — where a module reports what happened: the log and the event
 * journal (events.h), as one view handed to modules instead of the whole
 * daemon. Owned by the daemon, which points it at its logger (whose level
 * a reload changes in place) and its events.
 */
#ifndef SUP_JOURNAL_H
#define SUP_JOURNAL_H

#include <jansson.h>

#include "log.h"

struct sup_events;

struct sup_journal {
	const struct sup_logger *log;
	struct sup_events       *events;
};

/* Journals ev under kind (stolen; NULL: nothing journaled) and logs fmt at
 * prio (unless prio < 0 or fmt is NULL). */
void sup_journal_event(const struct sup_journal *j, int prio, const char *kind, json_t *ev,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void sup_journal_eventv(const struct sup_journal *j, int prio, const char *kind, json_t *ev,
			const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
