/* SPDX-License-Identifier: MIT */
/* Live upgrade: the modules' sections of the state, in the order the new
 * binary restores them (docs/handover.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "allocator.h"
#include "config/config.h"
#include "daemon.h"
#include "events.h"
#include "handover/handover.h"
#include "intake/intake.h"
#include "daemon_internal.h"
#include "monitor.h"
#include "tasks.h"
#include "wal/wal.h"
#include "workflow.h"

#define WAL_SEC_VERSION 1

bool sup_daemon_modules_quiet(struct sup_daemon *d)
{
	/* What waits for the journal (acks, results) is made durable and
	 * delivered now rather than after the exec. */
	if (d->wal)
		sup_wal_flush_sync(d->wal);
	/* The intake parks its thread and flushes its acks (a no-op when off). */
	if (d->intake && !sup_intake_quiet(d->intake))
		return false;
	return sup_tasks_settled(d->tasks);
}

/* The journal last: once handed over it is not used again here. */
static int save_wal(struct sup_daemon *d, struct sup_ho_w *w)
{
	struct sup_wal_state *st;
	int r;

	if (!d->wal)
		return 0;
	st = malloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	r = sup_wal_handover(d->wal, st);
	if (r == 0) {
		sup_ho_w_begin(w, SUP_HO_TAG_WAL, WAL_SEC_VERSION);
		sup_ho_w_u32(w, st->version);
		sup_ho_w_fd(w, st->dir_fd, SUP_HO_FD_DIR);
		sup_ho_w_fd(w, st->lock_fd, SUP_HO_FD_ANY);
		sup_ho_w_fd(w, st->cur_fd, SUP_HO_FD_FILE);
		sup_ho_w_u64(w, st->next_no);
		sup_ho_w_u32(w, st->nsegs);
		for (uint32_t i = 0; i < st->nsegs; i++) {
			sup_ho_w_u64(w, st->segs[i].no);
			sup_ho_w_u64(w, st->segs[i].size);
			sup_ho_w_u32(w, st->segs[i].refs);
		}
		sup_ho_w_end(w);
		d->wal_handed = st;
		return 0;
	}
	free(st);
	return r;
}

/* The hand-over failed after the journal was described: take it back. */
int sup_daemon_wal_take_back(struct sup_daemon *d)
{
	struct sup_wal_opts o;
	struct sup_wal *nw;
	char err[256];

	if (!d->wal_handed)
		return 0;
	sup_daemon_wal_opts(d->conf, &o);
	nw = sup_wal_adopt(d->wal_handed, d->loop, &o, err, sizeof(err));
	free(d->wal_handed);
	d->wal_handed = NULL;
	if (!nw) {
		sup_log(&d->log, SUP_LOG_CRIT, "task journal: taking it back after a failed upgrade: %s",
			err);
		return -EIO;
	}
	sup_wal_abandon(d->wal);
	d->wal = nw;
	sup_tasks_set_wal(d->tasks, nw);
	sup_wf_set_wal(d->wf, nw);
	return 0;
}

static int restore_wal(struct sup_daemon *d, struct sup_ho_r *r)
{
	struct sup_wal_state *st;
	struct sup_wal_opts o;
	uint32_t version;
	char err[256];

	if (!sup_ho_r_section(r, SUP_HO_TAG_WAL, &version)) {
		if (d->conf->sup.journal) {
			sup_ho_r_fail(r, "the configuration journals tasks, the state has no journal");
			return -EINVAL;
		}
		return 0;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		sup_ho_r_fail(r, "out of memory");
		return -ENOMEM;
	}
	sup_ho_r_u32(r, &st->version);
	sup_ho_r_fd(r, SUP_HO_FD_DIR, &st->dir_fd);
	sup_ho_r_fd(r, SUP_HO_FD_ANY, &st->lock_fd);
	sup_ho_r_fd(r, SUP_HO_FD_FILE, &st->cur_fd);
	sup_ho_r_u64(r, &st->next_no);
	sup_ho_r_u32(r, &st->nsegs);
	if (sup_ho_r_ok(r) && (version != WAL_SEC_VERSION || st->nsegs > SUP_WAL_STATE_SEGS))
		sup_ho_r_fail(r, "journal section version %u, %u segments", version, st->nsegs);
	for (uint32_t i = 0; i < st->nsegs && sup_ho_r_ok(r); i++) {
		sup_ho_r_u64(r, &st->segs[i].no);
		sup_ho_r_u64(r, &st->segs[i].size);
		sup_ho_r_u32(r, &st->segs[i].refs);
	}
	if (!sup_ho_r_ok(r)) {
		free(st);
		return -EINVAL;
	}
	sup_daemon_wal_opts(d->conf, &o);
	d->wal = sup_wal_adopt(st, d->loop, &o, err, sizeof(err));
	free(st);
	if (!d->wal) {
		sup_ho_r_fail(r, "task journal: %s", err);
		return -EINVAL;
	}
	sup_tasks_set_wal(d->tasks, d->wal);
	sup_wf_set_wal(d->wf, d->wal);
	return 0;
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
	if (r == 0)
		r = sup_intake_save(d->intake, w);
	if (r == 0)
		r = save_wal(d, w);
	return r;
}

int sup_daemon_restore_modules(struct sup_daemon *d, struct sup_ho_r *r)
{
	if (sup_wf_restore(d->wf, r) < 0 || sup_allocator_restore(d->alloc, r) < 0 ||
	    sup_monitor_restore(d->monitor, r) < 0 || sup_events_restore(d->events, r) < 0 ||
	    restore_wal(d, r) < 0)
		return -EINVAL;
	/* After the tasks and the runs: its leases rebind to them. */
	sup_daemon_intake_open(d);
	if (sup_intake_restore(d->intake, r) < 0)
		return -EINVAL;
	return 0;
}
