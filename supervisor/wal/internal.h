/* SPDX-License-Identifier: MIT */
/*
 * The journal's insides, shared by its files: wal.c (open, segments,
 * appends, references, deletion, hand-over), wal_sync.c (barriers and
 * group commit through the loop), wal_replay.c (reading the segments back).
 * Nothing outside supervisor/wal/ includes this.
 */
#ifndef SUP_WAL_INTERNAL_H
#define SUP_WAL_INTERNAL_H

#include "../loop.h"
#include "wal.h"
#include "walrec.h"

struct wal_seg {
	uint64_t        no, size;
	uint64_t        filled;    /* the current one: its file's size (zero fill ahead) */
	uint32_t        refs;
	int             fd;        /* the current one, or one whose last sync is pending */
	bool            unsynced;  /* appended to since its last sync started */
	struct wal_seg *prev, *next;
};

enum { WAL_CRASH_NONE, WAL_CRASH_ROTATE, WAL_CRASH_SYNC };

struct sup_wal {
	struct sup_loop       *loop;
	struct sup_wal_opts    o;
	char                  *dir;
	int                    dir_fd, lock_fd;
	struct wal_seg        *oldest, *cur;
	uint64_t               nsegs, bytes, refs, next_no;
	bool                   dir_dirty;      /* a segment was made since the last sync */
	/* Durability: lsn counts every byte appended, written what is in the
	 * file (the rest is in buf), synced what an fdatasync made durable. */
	uint64_t               lsn, written, synced, sync_target;
	/* The records of this turn, for the current segment at buf_off. */
	uint8_t               *buf;
	size_t                 buf_len, buf_cap;
	uint64_t               buf_off;
	int                    write_err;      /* a flush failed: its waiters get it */
	uint64_t               write_err_upto;
	/* Id reservations (wal_write.c): what was stated, where the newest
	 * durable statement is (0: none needed), the newest one appended. */
	uint64_t               resv[SUP_WAL_ID_KINDS];
	uint64_t               resv_seg, resv_lsn, resv_lsn_seg;
	/* Mode off: appends past force_from wait for a real sync (an id
	 * reservation must be durable before its ids are handed out). */
	uint64_t               force_from, force_lsn;
	bool                   syncing, pending;
	int64_t                sync_start;     /* when the last sync started */
	int                    sync_err;
	struct sup_ev          sync_ev;
	struct sup_timer       window;
	struct sup_defer       kick;
	struct sup_wal_waiter *wq_head, *wq_tail;
	int                    crash_kind;
	uint64_t               crash_at, rotations, sync_starts;
	struct sup_wal_stats   st;
};

/* wal.c */
int sup_wal_write_all(int fd, const struct iovec *iov, int iovcnt, off_t off);
struct wal_seg *sup_wal_seg_add(struct sup_wal *w, uint64_t no, uint64_t size, int fd);
int sup_wal_seg_create(struct sup_wal *w, char *err, size_t errlen);
void sup_wal_collect(struct sup_wal *w);
void sup_wal_seg_name(uint64_t no, char buf[32]);

/* wal_write.c */
int sup_wal_flush(struct sup_wal *w);
int sup_wal_restate(struct sup_wal *w);
void sup_wal_trim(struct wal_seg *s);
void sup_wal_ids_synced(struct sup_wal *w);

/* wal_sync.c */
void sup_wal_sync_init(struct sup_wal *w);
void sup_wal_appended(struct sup_wal *w, uint64_t n);
void sup_wal_sync_fini(struct sup_wal *w);

#endif
