/* SPDX-License-Identifier: MIT */
/*
 * walrec — the journal's on-disk records, with no I/O: the segment header,
 * the record frame and its CRC, and the payload of each record type.
 * Integers are little-endian; strings are counted, not NUL-terminated.
 * Decoded records point into the buffer they came from.
 *
 *   SUBMIT  id u64, group u64, timeout_ns i64, submit_rt_ns i64,
 *           attempts u32, context_len u32, payload_len u32, flags u16,
 *           type_len u16, tier u8, agent_len u8, 0 u16;
 *           agent, type, context, payload
 *   DONE    id u64, group u64, finish_rt_ns i64, dispatched/started/
 *           finished/accepted ns after queued i64 x4, quality f64 (< 0:
 *           none), attempts u32, error_len u32, result_len u32, status u8,
 *           tier u8, agent_len u8, 0 u8; agent, error, result
 *   RUN_START run u64, start_rt_ns i64, timeout_ns i64, stagger_ns i64,
 *           batch_size i32, payload_len u32, type_len u16, 0 u16; type, payload
 *   RUN_DONE run u64, status u8 (0 completed, 1 interrupted, 2 re-run), 0 x7
 *   ID_RESERVE task ids u64, run ids u64: every id up to these may have been
 *           handed out; a replay continues after them (docs/journal.md)
 *
 * A frame header of twelve zero bytes is the end of the log: what follows
 * is the zero fill written ahead of the tail (no record has type 0).
 */
#ifndef SUP_WALREC_H
#define SUP_WALREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Record types. */
enum sup_wal_type {
	SUP_WAL_SUBMIT = 1,
	SUP_WAL_DONE = 2,
	SUP_WAL_RUN_START = 3,
	SUP_WAL_RUN_DONE = 4,
	SUP_WAL_ID_RESERVE = 5,
};

/* The id counters an ID_RESERVE record covers. */
enum { SUP_WAL_IDS_TASK, SUP_WAL_IDS_RUN, SUP_WAL_ID_KINDS };

#define SUP_WAL_MAGIC       "TIERWAL\0"
#define SUP_WAL_VERSION     1u
#define SUP_WAL_SEG_HDR     24u          /* magic 8, version 4, 0 4, number 8 */
#define SUP_WAL_REC_HDR     12u
#define SUP_WAL_RECORD_MAX  (1u << 20)   /* a longer length is corruption */
#define SUP_WALREC_SUBMIT_FIXED 56u
#define SUP_WALREC_DONE_FIXED   80u
#define SUP_WALREC_RUN_FIXED    48u
#define SUP_WALREC_RUN_DONE_LEN 16u
#define SUP_WALREC_IDS_LEN      16u

/* One framed record as the reader found it. */
struct sup_wal_rec {
	uint16_t    type;
	uint64_t    seg, offset;   /* where it starts (its frame) */
	const void *data;          /* payload */
	uint32_t    len;
};

struct sup_wal_submit {
	uint64_t    id, group;
	int64_t     timeout_ns, submit_rt_ns;
	uint32_t    attempts;
	uint16_t    flags;
	uint8_t     tier;
	const char *agent;      /* "" for a tier-targeted task */
	uint8_t     agent_len;
	const char *type;
	uint16_t    type_len;
	const char *context;
	uint32_t    context_len;
	const void *payload;
	uint32_t    len;
};

struct sup_wal_done {
	uint64_t    id, group;
	int64_t     finish_rt_ns;
	int64_t     dispatched, started, finished, accepted;  /* ns after queued, 0 none */
	double      quality;
	uint32_t    attempts;
	uint8_t     status, tier;
	const char *agent;
	uint8_t     agent_len;
	const char *error;
	uint32_t    error_len;
	const void *result;
	uint32_t    result_len;
};

struct sup_wal_run {
	uint64_t    run;
	int64_t     start_rt_ns, timeout_ns, stagger_ns;
	int32_t     batch_size;
	const char *type;
	uint16_t    type_len;
	const void *payload;
	uint32_t    len;
	uint8_t     status;     /* RUN_DONE */
};

/* The frame's CRC: over length, type and payload. */
uint32_t sup_walrec_crc(uint32_t len, uint16_t type, const struct iovec *iov, int iovcnt);
/* Frame header for a payload of len bytes gathered from iov. */
void sup_walrec_frame(uint8_t hdr[12], uint16_t type, const struct iovec *iov, int iovcnt);

/* The frame and the payload gathered from iov, contiguous at dst (room for
 * 12 + the payload); the CRC is taken over dst's copy in one pass. */
size_t sup_walrec_frame_into(uint8_t *dst, uint16_t type, const struct iovec *iov, int iovcnt);

void sup_walrec_seg_header(uint8_t hdr[24], uint64_t no);
/* 0 and *ret_no, or -EBADMSG with *why. */
int sup_walrec_check_seg_header(const void *buf, size_t len, uint64_t *ret_no, const char **why);

/* The record at off of buf[0..len): 1 (rec filled, *next after it), 0 at
 * the clean end (the end of buf, or a zero frame header), -EBADMSG (a torn or corrupt record: *why). */
int sup_walrec_next(const uint8_t *buf, size_t len, size_t off, struct sup_wal_rec *rec,
		    size_t *next, const char **why);

/* Encoders fill fixed[] and iov (up to 5 entries): return the count. */
int sup_walrec_submit(const struct sup_wal_submit *s, uint8_t fixed[SUP_WALREC_SUBMIT_FIXED],
		      struct iovec iov[5]);
int sup_walrec_done(const struct sup_wal_done *d, uint8_t fixed[SUP_WALREC_DONE_FIXED],
		    struct iovec iov[4]);
int sup_walrec_run_start(const struct sup_wal_run *r, uint8_t fixed[SUP_WALREC_RUN_FIXED],
			 struct iovec iov[3]);
int sup_walrec_run_done(uint64_t run, uint8_t status, uint8_t buf[SUP_WALREC_RUN_DONE_LEN],
			struct iovec iov[1]);
int sup_walrec_ids(const uint64_t upto[SUP_WAL_ID_KINDS], uint8_t buf[SUP_WALREC_IDS_LEN],
		   struct iovec iov[1]);

/* Decoders: 0, or -EBADMSG when the lengths do not add up. */
int sup_walrec_get_submit(const struct sup_wal_rec *r, struct sup_wal_submit *ret);
int sup_walrec_get_done(const struct sup_wal_rec *r, struct sup_wal_done *ret);
int sup_walrec_get_run_start(const struct sup_wal_rec *r, struct sup_wal_run *ret);
int sup_walrec_get_run_done(const struct sup_wal_rec *r, struct sup_wal_run *ret);
int sup_walrec_get_ids(const struct sup_wal_rec *r, uint64_t upto[SUP_WAL_ID_KINDS]);

#endif
