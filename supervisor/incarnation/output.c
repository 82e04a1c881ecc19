/* SPDX-License-Identifier: MIT */
/* An incarnation's stdout and stderr: read through the loop, logged line by
 * line, under the per-agent budgets of budget.c. */
#include <string.h>

#include "../journal.h"
#include "../textesc.h"
#include "internal.h"

static void out_line(struct sup_out *o, const char *line, size_t len)
{
	const struct sup_inc_owner *own = &o->inc->own;
	const struct sup_inc_fleet *f = o->inc->fleet;

	if (!o->inc->ag)
		return;
	/* What the budget drops is counted and reported by the daemon's tick. */
	if (!sup_budget_line(own->budget, SUP_BUDGET_LINES, sup_loop_time(f->env.loop))) {
		(*own->log_dropped)++;
		return;
	}
	{
		char text[1024];

		sup_text_escape(text, sizeof(text), line, len);
		sup_log(f->env.journal->log, o->stream == 2 ? SUP_LOG_NOTICE : SUP_LOG_INFO, "agent %s[%d]: %s",
			own->name, (int)o->inc->pid, text);
	}
}

void sup_inc_out_arm(struct sup_out *o)
{
	const struct sup_inc_fleet *f = o->inc->fleet;

	if (sup_loop_read(f->env.loop, &o->ev, o->fd, o->buf + o->len,
			  (unsigned)(SUP_OUT_BUF - o->len), (uint64_t)-1) < 0)
		sup_log(f->env.journal->log, SUP_LOG_ERR, "agent output: cannot queue a read");
}

void sup_inc_out_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_out *o = ev->data;
	struct sup_inc *inc = o->inc;
	enum sup_budget_verdict v;
	size_t start = 0;

	(void)more;
	if (inc->ag && inc->fleet->quiescing && res <= 0)
		return;   /* the partial line goes to the next binary */
	if (res <= 0 || !inc->ag) {
		/* EOF, error or cancelled: flush a partial line and stop. */
		if (o->len && inc->ag)
			out_line(o, o->buf, o->len);
		o->len = 0;
		if (!inc->ag)
			sup_inc_reap_dead(inc->fleet);
		return;
	}
	o->len += (size_t)res;
	/* Bytes are charged before the lines are looked at: a flood costs one
	 * read per window once it is over its budget. */
	v = sup_budget_charge(inc->own.budget, SUP_BUDGET_BYTES, (uint64_t)res, sup_loop_time(l));
	for (size_t i = 0; i < o->len; i++) {
		if (o->buf[i] == '\n') {
			out_line(o, o->buf + start, i - start);
			start = i + 1;
		}
	}
	if (start < o->len && start == 0 && o->len == SUP_OUT_BUF) {
		/* A line longer than the buffer: log it in pieces. */
		out_line(o, o->buf, o->len);
		start = o->len;
	}
	memmove(o->buf, o->buf + start, o->len - start);
	o->len -= start;
	if (v != SUP_BUDGET_OK) {
		/* Not read again before the window ends: the writer blocks on
		 * its full pipe instead of tierd paying for every byte. */
		inc->out_paused[o->stream - 1] = true;
		sup_inc_pause(inc, v, SUP_BUDGET_BYTES);
		return;
	}
	if (!inc->fleet->quiescing)
		sup_inc_out_arm(o);
}
