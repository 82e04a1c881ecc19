/* SPDX-License-Identifier: MIT */
/*
 * wal — the task journal: an append-only write-ahead log of segment files
 * in one directory (docs/journal.md).
 *
 * A segment is a header (magic, version, its number) and records, each
 * [length u32][type u16][0 u16][crc32 u32][payload]: the CRC (zlib's)
 * covers the length, the type and the payload, so a torn or corrupt tail is
 * found on replay and cut there. Segments are NNNNNNNNNNNNNNNN.wal (hex
 * number); a new one starts when the current one would pass segment_bytes.
 *
 * References: whoever needs a record to survive a crash holds a reference
 * on its segment (sup_wal_append takes one; sup_wal_unref drops it). A
 * segment is deleted once it and every older segment hold none and it is
 * not the current one: deleting only from the oldest end means a record
 * that ends a task is never gone while the record that began it remains.
 *
 * Durability goes through the io_uring loop: appends are buffered and
 * written to the current segment in one write at the end of the loop turn
 * (the segment zero-filled ahead of the tail); sup_wal_barrier's callback runs once everything
 * appended before it is durable under the mode: batch (a sync at once when
 * none ran within the window, else at the window's end: at most one
 * fdatasync per window), always (a sync
 * as soon as none runs, so a turn's appends share one) or off (never
 * synced: survives a tierd crash through the page cache, not a power cut).
 */
#ifndef SUP_WAL_H
#define SUP_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "walrec.h"

struct sup_loop;
struct sup_wal;

enum sup_wal_sync { SUP_WAL_SYNC_BATCH, SUP_WAL_SYNC_ALWAYS, SUP_WAL_SYNC_OFF };

/* Room kept for each live reference's closing record (a DONE without its
 * result): a submit that would leave no room for its DONE is refused. */
#define SUP_WAL_DONE_RESERVE 512u

struct sup_wal_opts {
	const char        *dir;
	enum sup_wal_sync  sync;
	int64_t            window_ns;       /* batch */
	uint64_t           max_bytes;       /* the directory's cap */
	uint64_t           segment_bytes;
	/* Test hook (docs/journal.md): "rotate:N" or "sync:N" raises SIGKILL
	 * at the Nth rotation (new segment made, nothing in it) or sync (data
	 * written, fdatasync not yet done). NULL: none. */
	const char        *crash;
};

/* A wait for durability: embed it; cb runs once, from the loop. err is 0,
 * or the -errno of a failed write or sync (then nothing is promised). */
struct sup_wal_waiter;
typedef void (*sup_wal_cb)(struct sup_wal_waiter *wt, int err);
struct sup_wal_waiter {
	sup_wal_cb             cb;
	uint64_t               target;     /* durable once synced passes this */
	struct sup_wal_waiter *next;
};

/* Open (create) the directory, lock it (flock on LOCK), find its
 * segments. Nothing is written until sup_wal_replay (or adopt). NULL with
 * err filled: EWOULDBLOCK another tierd holds the lock; else the cause. */
struct sup_wal *sup_wal_open(const struct sup_wal_opts *o, struct sup_loop *l, char *err,
			     size_t errlen);
/* Frees; waiters still queued are dropped (not called). The segments stay. */
void sup_wal_free(struct sup_wal *w);
/* Mode, window and caps of a reloaded config (dir is fixed at open). */
void sup_wal_set_opts(struct sup_wal *w, const struct sup_wal_opts *o);

/* Replay: every valid record of every segment, oldest first, to fn, then
 * a fresh current segment. A record whose length or CRC is wrong ends its
 * segment: it is truncated there and trunc is called. fn may append (the
 * records it re-writes go to the new segment) and take references on the
 * segment a record came from. -errno with err filled. */
struct sup_wal_rec;
struct sup_wal_replay_ops {
	void (*record)(void *arg, const struct sup_wal_rec *r);
	void (*truncated)(void *arg, uint64_t seg, uint64_t offset, uint64_t dropped,
			  const char *why);
	void *arg;
};
int sup_wal_replay(struct sup_wal *w, const struct sup_wal_replay_ops *ops, char *err,
		   size_t errlen);
/* After the replay's references are taken: delete what nothing needs. */
void sup_wal_replay_end(struct sup_wal *w);

/* Append one record (gathered from iov) and take a reference on its
 * segment (*ret_seg). reserve: refuse it (-ENOSPC, err says why) if it
 * would pass max_bytes with room for every live reference's closing
 * record; else only the disk refuses. -ENOSPC/-EDQUOT from the disk leave
 * the segment as it was. */
int sup_wal_append(struct sup_wal *w, uint16_t type, const struct iovec *iov, int iovcnt,
		   bool reserve, uint64_t *ret_seg, char *err, size_t errlen);
void sup_wal_ref(struct sup_wal *w, uint64_t seg);

/* Ids are never reused across a crash (docs/journal.md): call before
 * journaling a record that hands out id (kind SUP_WAL_IDS_TASK or _RUN).
 * Past the last reservation it appends an ID_RESERVE record for the next
 * SUP_WAL_ID_BLOCK ids, which every later barrier waits for (in mode off
 * too: one sync per block). -errno with err filled: refused as an append. */
#define SUP_WAL_ID_BLOCK 10000u
int sup_wal_reserve_ids(struct sup_wal *w, unsigned kind, uint64_t id, char *err, size_t errlen);
/* The highest id of kind the journal has reserved (after a replay: where
 * its ids continue), 0 for none. */
uint64_t sup_wal_reserved(const struct sup_wal *w, unsigned kind);
void sup_wal_unref(struct sup_wal *w, uint64_t seg);

/* cb runs once all appended so far is durable (deferred to the end of the
 * turn in mode off, or when it already is). */
void sup_wal_barrier(struct sup_wal *w, struct sup_wal_waiter *wt, sup_wal_cb cb);
/* Forget every queued waiter without calling it (its owner is going). */
void sup_wal_drop_waiters(struct sup_wal *w);
/* Make everything durable now, blocking (the upgrade path, shutdown);
 * waiters it covers run. 0 or -errno. */
int sup_wal_flush_sync(struct sup_wal *w);

struct sup_wal_stats {
	const char *dir;
	const char *sync;               /* "batch", "always", "off" */
	int64_t     window_ns;
	uint64_t    bytes, max_bytes, segments, live_refs;
	uint64_t    appends, syncs, sync_errors, refused;
	int64_t     last_sync_ns, max_sync_ns;
	uint64_t    current_segment;
};
void sup_wal_stats(const struct sup_wal *w, struct sup_wal_stats *ret);
const char *sup_wal_sync_name(enum sup_wal_sync s);

/* ---- across a re-exec (the lead's upgrade) ---------------------------- */

#define SUP_WAL_STATE_SEGS 4096
struct sup_wal_state_seg {
	uint64_t no, size;
	uint32_t refs;
};
struct sup_wal_state {
	uint32_t version;               /* SUP_WAL_VERSION */
	int      dir_fd, lock_fd, cur_fd;
	uint64_t next_no;               /* the next segment's number */
	uint32_t nsegs;
	struct sup_wal_state_seg segs[SUP_WAL_STATE_SEGS];  /* oldest first; last = current */
};
/* Flush (blocking), then describe w in st and clear FD_CLOEXEC on its fds.
 * w must not be used after, except to free it with sup_wal_abandon.
 * -E2BIG: more segments than the state holds. */
int sup_wal_handover(struct sup_wal *w, struct sup_wal_state *st);
/* Free after a handover without closing the handed fds. */
void sup_wal_abandon(struct sup_wal *w);
/* Continue from st in the new image, without replay; sets FD_CLOEXEC
 * again. The segments' reference counts come back as they were: whoever
 * restores a task restores its wal_seg_* numbers without sup_wal_ref. */
struct sup_wal *sup_wal_adopt(const struct sup_wal_state *st, struct sup_loop *l,
			      const struct sup_wal_opts *o, char *err, size_t errlen);

#endif
