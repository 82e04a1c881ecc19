/* SPDX-License-Identifier: MIT */
/* The journal view: see journal.h. */
#include <stdarg.h>

#include "events.h"
#include "journal.h"

void sup_journal_eventv(const struct sup_journal *j, int prio, const char *kind, json_t *ev,
			const char *fmt, va_list ap)
{
	if (prio >= 0 && fmt)
		sup_logv(j->log, prio, fmt, ap);
	if (ev)
		sup_events_add(j->events, kind, ev);
}

void sup_journal_event(const struct sup_journal *j, int prio, const char *kind, json_t *ev,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sup_journal_eventv(j, prio, kind, ev, fmt, ap);
	va_end(ap);
}
