/* SPDX-License-Identifier: MIT */
/*
 * The journal's durability: barriers and group commit (see wal.h).
 *
 * One sync at a time covers everything appended before it started (its
 * target): an fdatasync of each segment with unsynced data (the current
 * one, and the one just rotated out), and an fsync of the directory when a
 * segment was made. They go through io_uring, so the loop never blocks on
 * the disk. Waiters queue in the order they came, so their targets never
 * decrease: a completed sync runs the waiters from the head while their
 * target is covered.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Run the waiters whose target is covered (err 0) or, after a failed sync,
 * every waiter the failed sync covered (err < 0). A callback may append
 * and wait again: its target is then past what is covered. */
static void run_waiters(struct sup_wal *w, uint64_t covered, int err)
{
	struct sup_wal_waiter *wt;

	while ((wt = w->wq_head) && wt->target <= covered) {
		w->wq_head = wt->next;
		if (!w->wq_head)
			w->wq_tail = NULL;
		wt->next = NULL;
		wt->cb(wt, err);
	}
}

/* What a waiter may be told is durable: synced, or in mode off what is in
 * the file, up to an id reservation that still waits for its sync. */
static uint64_t covered(const struct sup_wal *w)
{
	if (w->o.sync != SUP_WAL_SYNC_OFF)
		return w->synced;
	if (w->force_lsn > w->synced && w->force_from < w->written)
		return w->force_from;
	return w->written;
}

static void close_rotated(struct sup_wal *w)
{
	for (struct wal_seg *s = w->oldest; s && s != w->cur; s = s->next)
		if (s->fd >= 0 && !s->unsynced) {
			close(s->fd);
			s->fd = -1;
		}
	sup_wal_collect(w);
}

static void sync_done(struct sup_wal *w)
{
	int64_t lat = mono_ns() - w->sync_start;
	int err = w->sync_err;

	w->syncing = false;
	w->st.last_sync_ns = lat;
	if (lat > w->st.max_sync_ns)
		w->st.max_sync_ns = lat;
	if (err < 0)
		w->st.sync_errors++;
	else if (w->sync_target > w->synced)  /* a flush_sync may have gone further */
		w->synced = w->sync_target;
	if (w->force_lsn > w->synced && w->force_from < w->synced)
		w->force_from = w->synced;
	sup_wal_ids_synced(w);
	close_rotated(w);
	run_waiters(w, err < 0 ? w->sync_target : covered(w), err);
	/* What came in while it ran waits for the next one. */
	if (w->pending || w->wq_head || w->force_lsn > w->synced)
		sup_defer_queue(w->loop, &w->kick);
}

static void sync_cqe(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_wal *w = ev->data;

	(void)l;
	(void)more;
	if (res < 0 && !w->sync_err)
		w->sync_err = res;
	if (sup_ev_idle(ev))
		sync_done(w);
}

/* Blocking fallback: no loop, or no room in its submission queue. */
static int sync_fd_now(int fd, bool data)
{
	return (data ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}

static void sync_start(struct sup_wal *w)
{
	bool blocking = !w->loop;
	int r;

	if (w->syncing)
		return;
	sup_wal_flush(w);
	w->syncing = true;
	w->pending = false;
	w->sync_err = 0;
	w->sync_target = w->lsn;
	w->sync_start = mono_ns();
	w->st.syncs++;
	if (w->loop)
		sup_timer_disarm(w->loop, &w->window);
	if (w->crash_kind == WAL_CRASH_SYNC && ++w->sync_starts == w->crash_at)
		raise(SIGKILL);
	for (struct wal_seg *s = w->oldest; s; s = s->next) {
		if (s->fd < 0 || !s->unsynced)
			continue;
		s->unsynced = false;
		r = blocking ? -EBUSY : sup_loop_fsync(w->loop, &w->sync_ev, s->fd, true);
		if (r < 0 && (r = sync_fd_now(s->fd, true)) < 0 && !w->sync_err)
			w->sync_err = r;
	}
	if (w->dir_dirty) {
		w->dir_dirty = false;
		r = blocking ? -EBUSY : sup_loop_fsync(w->loop, &w->sync_ev, w->dir_fd, false);
		if (r < 0 && (r = sync_fd_now(w->dir_fd, false)) < 0 && !w->sync_err)
			w->sync_err = r;
	}
	if (sup_ev_idle(&w->sync_ev))
		sync_done(w);
}

static void window_fired(struct sup_loop *l, struct sup_timer *t)
{
	(void)l;
	sync_start(t->data);
}

/* End of the turn: what is durable already runs; then a sync starts or is
 * scheduled. always: as soon as none runs. batch: at once if none runs and
 * none started within the last window, else when the window since the last
 * sync's start ends; appends made while a sync runs wait for the next one.
 * So an idle disk syncs a lone append at once, a busy one at most once per
 * window. */
static void kick(struct sup_loop *l, struct sup_defer *df)
{
	struct sup_wal *w = df->data;
	int64_t due;

	sup_wal_flush(w);
	if (w->write_err) {
		int err = w->write_err;

		w->write_err = 0;
		run_waiters(w, w->write_err_upto, err);
	}
	run_waiters(w, covered(w), 0);
	if (w->syncing)
		return;
	if (w->o.sync == SUP_WAL_SYNC_OFF) {
		if (w->force_lsn > w->synced)
			sync_start(w);
		return;
	}
	if (!w->pending)
		return;
	due = w->sync_start + w->o.window_ns;
	if (w->o.sync == SUP_WAL_SYNC_ALWAYS || !w->st.syncs || due <= sup_loop_time(l))
		sync_start(w);
	else if (!sup_timer_armed(&w->window))
		sup_timer_arm(l, &w->window, due);
}

void sup_wal_sync_init(struct sup_wal *w)
{
	sup_ev_init(&w->sync_ev, sync_cqe, w);
	sup_timer_init(&w->window, window_fired, w);
	sup_defer_init(&w->kick, kick, w);
}

void sup_wal_sync_fini(struct sup_wal *w)
{
	if (w->loop)
		sup_timer_disarm(w->loop, &w->window);
}

void sup_wal_appended(struct sup_wal *w, uint64_t n)
{
	w->lsn += n;
	if (w->o.sync != SUP_WAL_SYNC_OFF)
		w->pending = true;
	if (w->loop)
		sup_defer_queue(w->loop, &w->kick);
}

void sup_wal_barrier(struct sup_wal *w, struct sup_wal_waiter *wt, sup_wal_cb cb)
{
	wt->cb = cb;
	wt->target = w->lsn;
	wt->next = NULL;
	if (w->wq_tail)
		w->wq_tail->next = wt;
	else
		w->wq_head = wt;
	w->wq_tail = wt;
	if (w->loop && wt->target <= covered(w))
		sup_defer_queue(w->loop, &w->kick);
}

void sup_wal_drop_waiters(struct sup_wal *w)
{
	w->wq_head = w->wq_tail = NULL;
}

int sup_wal_flush_sync(struct sup_wal *w)
{
	int err = 0, r;

	r = sup_wal_flush(w);
	if (r < 0)
		err = r;
	/* A sync in flight through the ring: ours below covers its target. */
	for (struct wal_seg *s = w->oldest; s; s = s->next) {
		if (s->fd < 0)
			continue;
		s->unsynced = false;
		if ((r = sync_fd_now(s->fd, true)) < 0 && !err)
			err = r;
	}
	if (w->dir_fd >= 0 && (r = sync_fd_now(w->dir_fd, false)) < 0 && !err)
		err = r;
	w->dir_dirty = false;
	if (err < 0) {
		w->st.sync_errors++;
		return err;
	}
	w->st.syncs++;
	w->pending = false;
	w->synced = w->sync_target = w->lsn;
	sup_wal_ids_synced(w);
	if (!w->syncing)
		close_rotated(w);
	if (w->write_err) {
		err = w->write_err;
		w->write_err = 0;
		run_waiters(w, w->write_err_upto, err);
	}
	run_waiters(w, w->synced, 0);
	return 0;
}
