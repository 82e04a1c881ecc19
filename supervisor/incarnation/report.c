/* SPDX-License-Identifier: MIT */
/* What an incarnation's protocol tells the daemon: the journal, the log
 * and its agent's state machine (see struct sup_inc_report). It reaches
 * only the fleet's journal and loop, not the daemon. */
#include <string.h>

#include "tier/ring.h"

#include "../agentrec.h"
#include "../journal.h"
#include "../textesc.h"
#include "internal.h"

static void report_fault(void *arg, struct sup_inc *inc, const char *what, int err)
{
	const struct sup_inc_owner *own = &inc->own;

	(void)arg;
	sup_journal_event(inc->fleet->env.journal, SUP_LOG_ERR, "protocol_violation",
			 json_pack("{s:s, s:i, s:s, s:s}", "agent", own->name, "incarnation", (int)inc->n,
				   "what", what, "error", err ? tier_strerror(err) : ""),
			 "agent %s: protocol violation: %s%s%s; killing it", own->name, what,
			 err ? ": " : "", err ? tier_strerror(err) : "");
	own->ops->faulted(inc->ag);
}

static void report_hello(void *arg, struct sup_inc *inc, uint32_t max_inflight)
{
	(void)arg;
	inc->own.ops->hello(inc->ag, max_inflight);
}

static void report_log(void *arg, struct sup_inc *inc, const void *text, uint32_t len)
{
	const struct sup_inc_owner *own = &inc->own;
	char raw[512], line[1024];
	size_t n = len < sizeof(raw) ? len : sizeof(raw);

	(void)arg;
	/* Refused lines are not even copied: a LOG flood costs a peek. */
	if (!sup_budget_line(own->budget, SUP_BUDGET_LINES, sup_loop_time(inc->fleet->env.loop))) {
		(*own->log_dropped)++;
		return;
	}
	memcpy(raw, text, n);
	sup_text_escape(line, sizeof(line), raw, n);
	sup_log(inc->fleet->env.journal->log, SUP_LOG_INFO, "agent %s[%d]: %s", own->name,
		(int)inc->pid, line);
}

static void report_event(void *arg, struct sup_inc *inc, const void *payload, uint32_t len,
			 uint64_t task_id)
{
	const struct sup_inc_owner *own = &inc->own;
	char raw[512], kind[256], msg[1024];
	size_t n = len < sizeof(raw) ? len : sizeof(raw);

	(void)arg;
	if (!sup_budget_line(own->budget, SUP_BUDGET_EVENTS, sup_loop_time(inc->fleet->env.loop))) {
		(*own->log_dropped)++;
		return;
	}
	memcpy(raw, payload, n);
	/* Escaped, not dropped: bytes that are not UTF-8 would make the
	 * event unrepresentable in JSON and vanish from the journal. */
	sup_agent_event_split(raw, n, kind, sizeof(kind), msg, sizeof(msg));
	sup_journal_event(inc->fleet->env.journal, SUP_LOG_WARNING, "agent_event",
			 json_pack("{s:s, s:s, s:s, s:I}", "agent", own->name, "event", kind,
				   "message", msg, "task", (json_int_t)task_id),
			 "agent %s: %s: %s", own->name, kind, msg);
}

const struct sup_inc_report sup_inc_daemon_report = {
	.fault = report_fault,
	.hello = report_hello,
	.log = report_log,
	.event = report_event,
};
