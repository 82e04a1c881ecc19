/* SPDX-License-Identifier: MIT */
/* Live upgrade: the modules' sections of the state, in the order the new
 * binary restores them (docs/handover.md). */
#include <errno.h>

#include "allocator.h"
#include "daemon.h"
#include "events.h"
#include "handover/handover.h"
#include "monitor.h"
#include "workflow.h"

bool sup_daemon_modules_quiet(struct sup_daemon *d)
{
	(void)d;
	return true;
}

int sup_daemon_save_modules(struct sup_daemon *d, struct sup_ho_w *w)
{
	int r = sup_wf_save(d->wf, w);

	if (r == 0)
		r = sup_allocator_save(d->alloc, w);
	if (r == 0)
		r = sup_monitor_save(d->monitor, w);
	if (r == 0)
		r = sup_events_save(d->events, w);
	if (r == 0)
		r = sup_monitor_handover(d->monitor, w);
	return r;
}

int sup_daemon_restore_modules(struct sup_daemon *d, struct sup_ho_r *r)
{
	if (sup_wf_restore(d->wf, r) < 0 || sup_allocator_restore(d->alloc, r) < 0 ||
	    sup_monitor_restore(d->monitor, r) < 0 || sup_events_restore(d->events, r) < 0)
		return -EINVAL;
	return 0;
}
