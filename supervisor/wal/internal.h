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

struct wal_seg {
	uint64_t        no, size;
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
	/* Durability: lsn counts every byte appended, synced what is durable. */
	uint64_t               lsn, synced, sync_target;
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
struct wal_seg *sup_wal_seg_add(struct sup_wal *w, uint64_t no, uint64_t size, int fd);
int sup_wal_seg_create(struct sup_wal *w, char *err, size_t errlen);
void sup_wal_collect(struct sup_wal *w);
void sup_wal_seg_name(uint64_t no, char buf[32]);

/* wal_sync.c */
void sup_wal_sync_init(struct sup_wal *w);
void sup_wal_appended(struct sup_wal *w, uint64_t n);
void sup_wal_sync_fini(struct sup_wal *w);

#endif
