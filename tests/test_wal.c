/* SPDX-License-Identifier: MIT */
/*
 * The task journal (supervisor/wal): records and their CRC, appends,
 * rotation, deletion from the oldest end, the size cap, a full disk,
 * replay with a torn tail and a corrupt record, the lock, the hand-over,
 * and each sync mode's barrier ordering through a real io_uring loop.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../supervisor/loop.h"
#include "../supervisor/wal/wal.h"
#include "../supervisor/wal/walrec.h"

static char dir[256];
static struct sup_loop *loop;

static void setup(void)
{
	char why[256];

	snprintf(dir, sizeof(dir), "/tmp/test-wal-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	loop = sup_loop_new(64, why, sizeof(why));
	cr_assert_not_null(loop, "io_uring: %s", why);
}

static void teardown(void)
{
	char cmd[300];

	sup_loop_free(loop);
	umount2(dir, MNT_DETACH); /* the disk-full test's tmpfs, if it failed midway */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(wal, .init = setup, .fini = teardown);

static struct sup_wal_opts opts(enum sup_wal_sync mode)
{
	return (struct sup_wal_opts){ .dir = dir, .sync = mode, .window_ns = 2000000,
				      .max_bytes = 1 << 20, .segment_bytes = 4096 };
}

static struct sup_wal *open_replayed(const struct sup_wal_opts *o, const struct sup_wal_replay_ops *ops)
{
	char err[512] = "";
	struct sup_wal *w = sup_wal_open(o, loop, err, sizeof(err));

	cr_assert_not_null(w, "open: %s", err);
	cr_assert_eq(sup_wal_replay(w, ops, err, sizeof(err)), 0, "replay: %s", err);
	return w;
}

static int append_str(struct sup_wal *w, const char *s, bool reserve, uint64_t *seg)
{
	struct iovec iov = { (void *)s, strlen(s) };
	char err[512];

	return sup_wal_append(w, SUP_WAL_SUBMIT, &iov, 1, reserve, seg, err, sizeof(err));
}

/* What a replay saw. */
struct seen {
	char     recs[64][64];
	uint64_t segs[64];
	unsigned n, truncs;
	uint64_t trunc_off, trunc_dropped;
};

static void on_rec(void *arg, const struct sup_wal_rec *r)
{
	struct seen *s = arg;

	if (s->n < 64) {
		snprintf(s->recs[s->n], sizeof(s->recs[0]), "%.*s", (int)r->len, (const char *)r->data);
		s->segs[s->n] = r->seg;
	}
	s->n++;
}

static void on_trunc(void *arg, uint64_t seg, uint64_t off, uint64_t dropped, const char *why)
{
	struct seen *s = arg;

	(void)seg;
	(void)why;
	s->truncs++;
	s->trunc_off = off;
	s->trunc_dropped = dropped;
}

static const struct sup_wal_replay_ops no_ops;

static void seg_path(uint64_t no, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%016llx.wal", dir, (unsigned long long)no);
}

Test(wal, should_replay_every_record_in_order_after_a_restart)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	struct seen s = { 0 };
	struct sup_wal_replay_ops ops = { .record = on_rec, .truncated = on_trunc, .arg = &s };
	uint64_t seg;

	cr_assert_eq(append_str(w, "one", true, &seg), 0);
	cr_assert_eq(append_str(w, "two", true, &seg), 0);
	cr_assert_eq(append_str(w, "three", true, &seg), 0);
	sup_wal_free(w);
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.recs[0], "one");
	cr_assert_str_eq(s.recs[2], "three");
	cr_assert_eq(s.truncs, 0);
	sup_wal_free(w);
}

Test(wal, should_rotate_and_delete_only_unreferenced_segments_from_the_oldest)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	struct sup_wal_stats st;
	char big[1500], path[300];
	uint64_t segs[8], freed = 0;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 8; i++)
		cr_assert_eq(append_str(w, big, true, &segs[i]), 0);
	sup_wal_stats(w, &st);
	cr_assert_gt(st.segments, 3, "4K segments must have rotated (got %llu)",
		     (unsigned long long)st.segments);
	cr_assert_eq(st.live_refs, 8);
	/* The newer segment freed first: the oldest still holds a reference,
	 * so nothing goes. */
	cr_assert_neq(segs[0], segs[2]);
	for (int i = 0; i < 8; i++)
		if (segs[i] == segs[2] && ++freed)
			sup_wal_unref(w, segs[i]);
	seg_path(segs[2], path, sizeof(path));
	cr_assert_eq(access(path, F_OK), 0, "a segment newer than a referenced one was deleted");
	for (int i = 0; i < 8; i++)
		if (segs[i] == segs[0] && ++freed)
			sup_wal_unref(w, segs[i]);
	seg_path(segs[0], path, sizeof(path));
	cr_assert_neq(access(path, F_OK), 0, "the oldest segment, unreferenced, is still there");
	seg_path(segs[2], path, sizeof(path));
	cr_assert_neq(access(path, F_OK), 0, "the freed prefix was not deleted");
	sup_wal_stats(w, &st);
	cr_assert_eq(st.live_refs, 8 - freed);
	seg_path(segs[7], path, sizeof(path));
	cr_assert_eq(access(path, F_OK), 0, "the current segment was deleted");
	sup_wal_free(w);
}

Test(wal, should_refuse_an_append_past_the_cap_with_a_clear_error)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w;
	char big[1000], err[512] = "";
	struct iovec iov = { big, sizeof(big) };
	uint64_t seg;
	int r = 0, n = 0;

	o.max_bytes = 16384;
	w = open_replayed(&o, &no_ops);
	memset(big, 'y', sizeof(big));
	while (n < 100 && (r = sup_wal_append(w, SUP_WAL_SUBMIT, &iov, 1, true, &seg, err,
					      sizeof(err))) == 0)
		n++;
	cr_assert_eq(r, -ENOSPC);
	cr_assert_gt(n, 5);
	cr_assert(strstr(err, "task journal full") && strstr(err, "journal_max_bytes"), "%s", err);
	cr_assert(strstr(err, "live tasks"), "%s", err);
	/* A closing record is never refused for the cap. */
	cr_assert_eq(sup_wal_append(w, SUP_WAL_DONE, &iov, 1, false, &seg, err, sizeof(err)), 0);
	sup_wal_free(w);
}

Test(wal, should_cut_a_torn_tail_and_report_where)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	struct seen s = { 0 };
	struct sup_wal_replay_ops ops = { .record = on_rec, .truncated = on_trunc, .arg = &s };
	char path[300];
	struct stat sb;
	uint64_t seg;
	off_t good;
	int fd;

	cr_assert_eq(append_str(w, "kept", true, &seg), 0);
	sup_wal_free(w);
	seg_path(seg, path, sizeof(path));
	cr_assert_eq(stat(path, &sb), 0);
	good = sb.st_size;
	/* Half a record: a header promising 100 bytes, 5 of them. */
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "\x64\0\0\0\1\0\0\0\0\0\0\0hello", 17), 17);
	close(fd);
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.recs[0], "kept");
	cr_assert_eq(s.truncs, 1);
	cr_assert_eq(s.trunc_off, (uint64_t)good);
	cr_assert_eq(s.trunc_dropped, 17);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_size, good, "the torn tail was not truncated");
	sup_wal_free(w);
}

Test(wal, should_stop_at_a_record_whose_crc_does_not_match)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	struct seen s = { 0 };
	struct sup_wal_replay_ops ops = { .record = on_rec, .truncated = on_trunc, .arg = &s };
	char path[300];
	uint64_t seg;
	int fd;

	cr_assert_eq(append_str(w, "first", true, &seg), 0);
	cr_assert_eq(append_str(w, "second", true, &seg), 0);
	cr_assert_eq(append_str(w, "third", true, &seg), 0);
	sup_wal_free(w);
	seg_path(seg, path, sizeof(path));
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	/* One bit of "second"'s payload: header 24, record 12 + 5, then 12. */
	cr_assert_eq(pwrite(fd, "S", 1, SUP_WAL_SEG_HDR + 12 + 5 + 12), 1);
	close(fd);
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.recs[0], "first");
	cr_assert_eq(s.truncs, 1);
	cr_assert_eq(s.trunc_off, SUP_WAL_SEG_HDR + 12 + 5);
	sup_wal_free(w);
}

Test(wal, should_refuse_a_second_tierd_on_the_same_directory)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops), *w2;
	char err[512] = "";

	w2 = sup_wal_open(&o, loop, err, sizeof(err));
	cr_assert_null(w2);
	cr_assert_eq(errno, EWOULDBLOCK);
	cr_assert(strstr(err, "in use by another tierd"), "%s", err);
	sup_wal_free(w);
}

/* ---- barriers ----------------------------------------------------------- */

struct probe {
	struct sup_wal_waiter wt;
	int                   calls, err;
	int64_t               at;
	unsigned              order, *next_order;
};

static void probe_cb(struct sup_wal_waiter *wt, int err)
{
	struct probe *p = (struct probe *)wt;

	p->calls++;
	p->err = err;
	p->at = sup_loop_now(loop);
	p->order = (*p->next_order)++;
}

static void guard_fired(struct sup_loop *l, struct sup_timer *t)
{
	(void)l;
	(void)t;
}

static void turn_until(struct probe *p, int64_t max_ns)
{
	int64_t end = sup_loop_now(loop) + max_ns;
	struct sup_timer guard;

	/* A timer so a turn never blocks past the end. */
	sup_timer_init(&guard, guard_fired, NULL);
	while (!p->calls && sup_loop_now(loop) < end) {
		sup_timer_arm(loop, &guard, sup_loop_now(loop) + 1000000);
		cr_assert_geq(sup_loop_turn(loop), 0);
	}
	sup_timer_disarm(loop, &guard);
}

Test(wal, should_run_an_off_mode_barrier_after_the_call_returns_with_no_sync)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	unsigned order = 0;
	struct probe p = { .next_order = &order };
	struct sup_wal_stats st;
	uint64_t seg;

	cr_assert_eq(append_str(w, "r", true, &seg), 0);
	sup_wal_barrier(w, &p.wt, probe_cb);
	cr_assert_eq(p.calls, 0, "a barrier must not call back from inside itself");
	turn_until(&p, 100000000);
	cr_assert_eq(p.calls, 1);
	cr_assert_eq(p.err, 0);
	sup_wal_stats(w, &st);
	cr_assert_eq(st.syncs, 0, "mode off synced");
	sup_wal_free(w);
}

Test(wal, should_sync_a_lone_batch_append_at_once_and_the_next_ones_a_window_later)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_BATCH);
	struct sup_wal *w;
	unsigned order = 0;
	struct probe first = { .next_order = &order };
	struct probe p[3] = { { .next_order = &order }, { .next_order = &order },
			      { .next_order = &order } };
	struct sup_wal_stats st;
	uint64_t seg;
	int64_t t0;

	o.window_ns = 200000000;
	w = open_replayed(&o, &no_ops);
	t0 = sup_loop_now(loop);
	cr_assert_eq(append_str(w, "a", true, &seg), 0);
	sup_wal_barrier(w, &first.wt, probe_cb);
	turn_until(&first, 2000000000);
	cr_assert_eq(first.calls, 1);
	cr_assert_lt(first.at - t0, o.window_ns / 2,
		     "an idle journal waited out its window (%lld ns)", (long long)(first.at - t0));
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(append_str(w, "b", true, &seg), 0);
		sup_wal_barrier(w, &p[i].wt, probe_cb);
	}
	turn_until(&p[2], 2000000000);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(p[i].calls, 1);
		cr_assert_eq(p[i].order, (unsigned)i + 1, "waiters out of order");
		cr_assert_geq(p[i].at - t0, o.window_ns - 1000000,
			      "a second sync started within the window of the first");
	}
	sup_wal_stats(w, &st);
	cr_assert_eq(st.syncs, 2, "one fdatasync for the lone append, one for the batch (got %llu)",
		     (unsigned long long)st.syncs);
	sup_wal_free(w);
}

Test(wal, should_make_appends_during_a_sync_wait_for_the_next_one)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_ALWAYS);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	unsigned order = 0;
	struct probe a = { .next_order = &order }, b = { .next_order = &order };
	struct sup_wal_stats st;
	uint64_t seg;

	cr_assert_eq(append_str(w, "a", true, &seg), 0);
	sup_wal_barrier(w, &a.wt, probe_cb);
	/* One turn: the end-of-turn hook starts the sync (always: no window). */
	while (!a.calls) {
		sup_wal_stats(w, &st);
		if (st.syncs && !b.wt.cb) {
			cr_assert_eq(append_str(w, "b", true, &seg), 0);
			sup_wal_barrier(w, &b.wt, probe_cb);
		}
		cr_assert_geq(sup_loop_turn(loop), 0);
	}
	cr_assert_not_null(b.wt.cb, "the sync completed within the turn that started it");
	cr_assert_eq(b.calls, 0, "an append made during a sync was called durable by it");
	turn_until(&b, 2000000000);
	cr_assert_eq(b.calls, 1);
	cr_assert_gt(b.order, a.order);
	sup_wal_stats(w, &st);
	cr_assert_eq(st.syncs, 2);
	sup_wal_free(w);
}

Test(wal, should_flush_synchronously_and_run_the_waiters_it_covers)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_BATCH);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	unsigned order = 0;
	struct probe p = { .next_order = &order };
	uint64_t seg;

	cr_assert_eq(append_str(w, "f", true, &seg), 0);
	sup_wal_barrier(w, &p.wt, probe_cb);
	cr_assert_eq(sup_wal_flush_sync(w), 0);
	cr_assert_eq(p.calls, 1);
	sup_wal_free(w);
}

Test(wal, should_continue_after_a_handover_without_replaying)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops), *w2;
	struct sup_wal_state *st = calloc(1, sizeof(*st));
	struct seen s = { 0 };
	struct sup_wal_replay_ops ops = { .record = on_rec, .arg = &s };
	struct sup_wal_stats a, b;
	char err[512] = "";
	uint64_t seg;

	cr_assert_eq(append_str(w, "before", true, &seg), 0);
	sup_wal_stats(w, &a);
	cr_assert_eq(sup_wal_handover(w, st), 0);
	cr_assert_eq(fcntl(st->lock_fd, F_GETFD) & FD_CLOEXEC, 0, "the lock fd would not survive exec");
	sup_wal_abandon(w);
	w2 = sup_wal_adopt(st, loop, &o, err, sizeof(err));
	cr_assert_not_null(w2, "%s", err);
	sup_wal_stats(w2, &b);
	cr_assert_eq(a.bytes, b.bytes);
	cr_assert_eq(a.live_refs, b.live_refs);
	cr_assert_eq(append_str(w2, "after", true, &seg), 0);
	sup_wal_free(w2);
	free(st);
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.recs[1], "after");
	sup_wal_free(w);
}

Test(wal, should_refuse_cleanly_when_the_disk_is_full)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w;
	struct seen s = { 0 };
	struct sup_wal_replay_ops ops = { .record = on_rec, .truncated = on_trunc, .arg = &s };
	char big[3000], err[512] = "";
	struct iovec iov = { big, sizeof(big) };
	uint64_t seg;
	int r = 0, n = 0;

	if (mount("tmpfs", dir, "tmpfs", 0, "size=32k") < 0)
		cr_skip_test("needs a tiny tmpfs (mount: %s)", strerror(errno));
	o.segment_bytes = 1 << 20;
	w = open_replayed(&o, &no_ops);
	memset(big, 'z', sizeof(big));
	while (n < 100 && (r = sup_wal_append(w, SUP_WAL_SUBMIT, &iov, 1, true, &seg, err,
					      sizeof(err))) == 0)
		n++;
	cr_assert(r == -ENOSPC, "got %d (%s)", r, err);
	cr_assert(strstr(err, "disk") && strstr(err, "refused"), "%s", err);
	sup_wal_free(w);
	/* Nothing half-written: every accepted record comes back, no tail cut. */
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, (unsigned)n);
	cr_assert_eq(s.truncs, 0);
	sup_wal_free(w);
	cr_assert_eq(umount(dir), 0);
}

/* ---- zero fill, coalescing, id reservations ------------------------------- */

Test(wal, should_take_the_zero_fill_after_the_tail_as_the_clean_end)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	struct seen s = { 0 };
	struct sup_wal_replay_ops ops = { .record = on_rec, .truncated = on_trunc, .arg = &s };
	static const char zero[3000];
	char path[300];
	struct stat sb;
	uint64_t seg;
	off_t good;
	int fd;

	cr_assert_eq(append_str(w, "one", true, &seg), 0);
	cr_assert_eq(append_str(w, "two", true, &seg), 0);
	sup_wal_free(w);
	seg_path(seg, path, sizeof(path));
	cr_assert_eq(stat(path, &sb), 0);
	good = sb.st_size;
	cr_assert_eq(good, SUP_WAL_SEG_HDR + 2 * 15, "a clean close left the fill (%lld bytes)",
		     (long long)good);
	/* As a crash leaves it: the fill still after the records. */
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, zero, sizeof(zero)), (ssize_t)sizeof(zero));
	close(fd);
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.recs[1], "two");
	cr_assert_eq(s.truncs, 0, "the fill was reported as a torn tail");
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_size, good, "the fill was not cut off");
	sup_wal_free(w);
	/* Something after the fill is damage: cut and reported. */
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, zero, sizeof(zero)), (ssize_t)sizeof(zero));
	cr_assert_eq(write(fd, "junk", 4), 4);
	close(fd);
	s = (struct seen){ 0 };
	w = open_replayed(&o, &ops);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.truncs, 1, "bytes after the fill were not reported");
	cr_assert_eq(s.trunc_off, (uint64_t)good);
	cr_assert_eq(s.trunc_dropped, sizeof(zero) + 4);
	sup_wal_free(w);
}

Test(wal, should_write_a_turns_records_at_its_end_and_fill_ahead)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w;
	unsigned order = 0;
	struct probe p = { .next_order = &order };
	struct sup_wal_stats st;
	char path[300], buf[64];
	uint64_t seg;
	int fd;

	o.segment_bytes = 1 << 16;
	w = open_replayed(&o, &no_ops);
	cr_assert_eq(append_str(w, "aaaa", true, &seg), 0);
	cr_assert_eq(append_str(w, "bbbb", true, &seg), 0);
	sup_wal_barrier(w, &p.wt, probe_cb);
	seg_path(seg, path, sizeof(path));
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, 4, SUP_WAL_SEG_HDR + 12), 4);
	cr_assert_eq(memcmp(buf, "\0\0\0\0", 4), 0, "written before the end of the turn");
	sup_wal_stats(w, &st);
	cr_assert_eq(st.bytes, o.segment_bytes, "not filled ahead to the segment's size");
	turn_until(&p, 100000000);
	cr_assert_eq(p.calls, 1);
	cr_assert_eq(pread(fd, buf, 4, SUP_WAL_SEG_HDR + 12), 4);
	cr_assert_eq(memcmp(buf, "aaaa", 4), 0, "an off-mode waiter ran before its record was written");
	cr_assert_eq(pread(fd, buf, 4, SUP_WAL_SEG_HDR + 16 + 12), 4);
	cr_assert_eq(memcmp(buf, "bbbb", 4), 0);
	close(fd);
	sup_wal_free(w);
}

Test(wal, should_sync_an_id_reservation_before_an_off_mode_barrier_after_it)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	unsigned order = 0;
	struct probe a = { .next_order = &order }, b = { .next_order = &order };
	struct sup_wal_stats st;
	char err[256];
	uint64_t seg;

	cr_assert_eq(append_str(w, "before", true, &seg), 0);
	sup_wal_barrier(w, &a.wt, probe_cb);
	cr_assert_eq(sup_wal_reserve_ids(w, SUP_WAL_IDS_TASK, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sup_wal_reserved(w, SUP_WAL_IDS_TASK), SUP_WAL_ID_BLOCK);
	cr_assert_eq(append_str(w, "after", true, &seg), 0);
	sup_wal_barrier(w, &b.wt, probe_cb);
	turn_until(&b, 2000000000);
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(b.calls, 1);
	sup_wal_stats(w, &st);
	cr_assert_eq(st.syncs, 1, "mode off: the reservation was not synced before the "
		     "barrier after it ran (syncs %llu)", (unsigned long long)st.syncs);
	/* Within the block: no record, no sync. */
	cr_assert_eq(sup_wal_reserve_ids(w, SUP_WAL_IDS_TASK, SUP_WAL_ID_BLOCK, err, sizeof(err)), 0);
	sup_wal_stats(w, &st);
	cr_assert_eq(st.appends, 2);
	sup_wal_free(w);
}

Test(wal, should_keep_the_id_reservation_when_old_segments_are_deleted)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_OFF);
	struct sup_wal *w = open_replayed(&o, &no_ops);
	struct sup_wal_stats st;
	unsigned order = 0;
	struct probe p = { .next_order = &order };
	char big[1500], err[256];
	uint64_t seg;

	cr_assert_eq(sup_wal_reserve_ids(w, SUP_WAL_IDS_RUN, 7, err, sizeof(err)), 0, "%s", err);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 12; i++) {
		cr_assert_eq(append_str(w, big, true, &seg), 0);
		sup_wal_unref(w, seg);
		p.calls = 0;
		sup_wal_barrier(w, &p.wt, probe_cb);
		turn_until(&p, 2000000000);
	}
	sup_wal_stats(w, &st);
	cr_assert_lt(st.segments, 4, "old segments were not deleted (%llu)",
		     (unsigned long long)st.segments);
	sup_wal_free(w);
	w = open_replayed(&o, &no_ops);
	cr_assert_eq(sup_wal_reserved(w, SUP_WAL_IDS_RUN), 6 + SUP_WAL_ID_BLOCK,
		     "the reservation went with the deleted segments");
	cr_assert_eq(sup_wal_reserved(w, SUP_WAL_IDS_TASK), 0);
	sup_wal_free(w);
}

Test(wal, should_hand_the_id_reservation_over)
{
	struct sup_wal_opts o = opts(SUP_WAL_SYNC_BATCH);
	struct sup_wal *w = open_replayed(&o, &no_ops), *w2;
	struct sup_wal_state *st = calloc(1, sizeof(*st));
	char err[512] = "";

	cr_assert_eq(sup_wal_reserve_ids(w, SUP_WAL_IDS_TASK, 5, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sup_wal_handover(w, st), 0);
	sup_wal_abandon(w);
	w2 = sup_wal_adopt(st, loop, &o, err, sizeof(err));
	cr_assert_not_null(w2, "%s", err);
	cr_assert_eq(sup_wal_reserved(w2, SUP_WAL_IDS_TASK), 4 + SUP_WAL_ID_BLOCK);
	sup_wal_free(w2);
	free(st);
}

/* ---- records ---------------------------------------------------------------- */

Test(wal, should_decode_what_it_encodes)
{
	struct sup_wal_submit s = {
		.id = 42, .group = 7, .timeout_ns = 5, .submit_rt_ns = 6, .attempts = 2, .flags = 1,
		.tier = 3, .agent = "w1", .agent_len = 2, .type = "echo", .type_len = 4,
		.context = "ctx", .context_len = 3, .payload = "pay", .len = 3,
	}, g;
	struct sup_wal_done d = {
		.id = 42, .status = 1, .tier = 3, .quality = 7.5, .agent = "w1", .agent_len = 2,
		.error = "bad", .error_len = 3, .result = "res", .result_len = 3, .accepted = 9,
	}, dg;
	uint8_t fixed[SUP_WALREC_DONE_FIXED], buf[512], hdr[12];
	struct iovec iov[5];
	struct sup_wal_rec r = { .type = SUP_WAL_SUBMIT, .data = buf };
	size_t off = 0;
	int n = sup_walrec_submit(&s, fixed, iov);

	for (int i = 0; i < n; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	r.len = (uint32_t)off;
	cr_assert_eq(sup_walrec_get_submit(&r, &g), 0);
	cr_assert_eq(g.id, 42);
	cr_assert_eq(g.attempts, 2);
	cr_assert_eq(memcmp(g.context, "ctx", 3), 0);
	cr_assert_eq(memcmp(g.payload, "pay", 3), 0);
	r.len--;
	cr_assert_eq(sup_walrec_get_submit(&r, &g), -EBADMSG, "a short record decoded");
	n = sup_walrec_done(&d, fixed, iov);
	sup_walrec_frame(hdr, SUP_WAL_DONE, iov, n);
	off = 0;
	for (int i = 0; i < n; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	r = (struct sup_wal_rec){ .type = SUP_WAL_DONE, .data = buf, .len = (uint32_t)off };
	cr_assert_eq(sup_walrec_get_done(&r, &dg), 0);
	cr_assert_eq(dg.status, 1);
	cr_assert_float_eq(dg.quality, 7.5, 1e-9);
	cr_assert_eq(memcmp(dg.result, "res", 3), 0);
	cr_assert_eq(dg.accepted, 9);
}
