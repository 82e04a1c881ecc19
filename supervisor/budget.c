/* SPDX-License-Identifier: MIT */
/* Per-agent budgets: see budget.h. */
#include "budget.h"

static const char *const kind_names[SUP_BUDGET_NKINDS] = {
	"records", "log_lines", "output_bytes", "wakeups", "events",
};

const char *sup_budget_kind_name(enum sup_budget_kind kind)
{
	return (unsigned)kind < SUP_BUDGET_NKINDS ? kind_names[kind] : "?";
}

void sup_budget_init(struct sup_budget *b, const uint64_t limit[SUP_BUDGET_NKINDS],
		     int64_t kill_after_ns, int64_t now)
{
	*b = (struct sup_budget){ .kill_after_ns = kill_after_ns, .win_start = now };
	for (int k = 0; k < SUP_BUDGET_NKINDS; k++)
		b->limit[k] = limit[k];
}

/* Start a new window if the current one is over. A window that ended
 * without going over breaks a flood run; so does a gap of more than one
 * window (the source was idle in between). */
static void roll(struct sup_budget *b, int64_t now)
{
	int64_t elapsed = now - b->win_start;

	if (elapsed < SUP_BUDGET_WINDOW_NS)
		return;
	if (!b->over || elapsed >= 2 * SUP_BUDGET_WINDOW_NS)
		b->flood_since = 0;
	b->win_start = now - elapsed % SUP_BUDGET_WINDOW_NS;
	b->over = false;
	for (int k = 0; k < SUP_BUDGET_NKINDS; k++)
		b->used[k] = 0;
}

enum sup_budget_verdict sup_budget_charge(struct sup_budget *b, enum sup_budget_kind kind,
					  uint64_t n, int64_t now)
{
	roll(b, now);
	b->used[kind] += n;
	if (!b->limit[kind] || b->used[kind] <= b->limit[kind])
		return SUP_BUDGET_OK;
	if (!b->over) {
		b->over = true;
		if (!b->flood_since) {
			b->flood_since = b->win_start;
			b->flood_kind = (int)kind;
		}
	}
	if (b->kill_after_ns && now - b->flood_since >= b->kill_after_ns)
		return SUP_BUDGET_FLOODER;
	return SUP_BUDGET_THROTTLE;
}

bool sup_budget_line(struct sup_budget *b, enum sup_budget_kind kind, int64_t now)
{
	roll(b, now);
	if (b->limit[kind] && b->used[kind] >= b->limit[kind]) {
		b->dropped_lines++;
		return false;
	}
	b->used[kind]++;
	return true;
}

bool sup_budget_exhausted(struct sup_budget *b, enum sup_budget_kind kind, int64_t now)
{
	roll(b, now);
	return b->limit[kind] && b->used[kind] >= b->limit[kind];
}

int64_t sup_budget_resume_at(const struct sup_budget *b)
{
	return b->win_start + SUP_BUDGET_WINDOW_NS;
}
