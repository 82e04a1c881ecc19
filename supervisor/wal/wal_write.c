/* SPDX-License-Identifier: MIT */
/*
 * The journal's append path (see wal.h). Records are framed into a buffer
 * and written to the current segment in one pwrite at the end of the loop
 * turn (sup_wal_flush, from wal_sync.c's end-of-turn hook), and always
 * before a sync starts or a waiter is told its records are in the file: a
 * crash before that write loses only records nobody was told about.
 *
 * The current segment is zero-filled ahead of its tail in large chunks,
 * synchronously at append: a full disk refuses there (the submit is
 * refused, nothing half-written stays), the end-of-turn write lands in
 * blocks that exist already, and an fdatasync does not also commit a
 * growing file size on every batch. A zero frame header is the end of the
 * log (walrec.h); a clean close trims the fill off.
 *
 * Also the id reservations: an ID_RESERVE record states the task and run
 * ids up to which ids may have been handed out; a replay continues after
 * them. A reservation is made a block at a time and is durable (even in
 * mode off, where it forces a sync) before an id it covers is
 * acknowledged. Every new segment starts with a restatement, and no
 * segment from the one holding the newest durable statement on is
 * deleted, so the statement survives the deletion of old segments.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define WAL_FILL_CHUNK (128u << 10)
#define WAL_BUF_MIN    (64u << 10)

static const uint8_t zeros[64u << 10];

int sup_wal_write_all(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	struct iovec v[16];
	int n = iovcnt;

	memcpy(v, iov, (size_t)iovcnt * sizeof(*v));
	for (int i = 0; n > 0;) {
		ssize_t k = pwritev(fd, v + i, n, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ENOSPC;
		off += k;
		while (n > 0 && (size_t)k >= v[i].iov_len) {
			k -= (ssize_t)v[i].iov_len;
			i++;
			n--;
		}
		if (n > 0) {
			v[i].iov_base = (char *)v[i].iov_base + k;
			v[i].iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int zero_range(int fd, uint64_t from, uint64_t to)
{
	struct iovec v[16];

	while (from < to) {
		uint64_t n = 0;
		int c = 0, r;

		for (; c < 16 && from + n < to; c++) {
			uint64_t k = to - from - n;

			v[c].iov_base = (void *)zeros;
			v[c].iov_len = k > sizeof(zeros) ? sizeof(zeros) : (size_t)k;
			n += v[c].iov_len;
		}
		r = sup_wal_write_all(fd, v, c, (off_t)from);
		if (r < 0)
			return r;
		from += n;
	}
	return 0;
}

/* Zero-fill the current segment to at least need: a chunk when the
 * segment size and the cap leave room, else exactly need. 0, or -errno
 * with the file as it was. */
static int fill(struct sup_wal *w, uint64_t need)
{
	struct wal_seg *s = w->cur;
	uint64_t want = s->size + WAL_FILL_CHUNK, others = w->bytes - s->size, room;
	int r;

	if (need <= s->filled)
		return 0;
	if (want > w->o.segment_bytes)
		want = w->o.segment_bytes;
	room = w->o.max_bytes > others ? w->o.max_bytes - others : 0;
	if (want > room)
		want = room;
	if (want < need)
		want = need;
	for (;;) {
		r = zero_range(s->fd, s->filled, want);
		if (r == 0) {
			s->filled = want;
			return 0;
		}
		if (ftruncate(s->fd, (off_t)s->filled) < 0 && r != -ENOSPC)
			return -errno;
		if (want == need || (r != -ENOSPC && r != -EDQUOT))
			return r;
		want = need;
	}
}

void sup_wal_trim(struct wal_seg *s)
{
	if (s->fd >= 0 && s->filled > s->size && ftruncate(s->fd, (off_t)s->size) == 0)
		s->filled = s->size;
}

int sup_wal_flush(struct sup_wal *w)
{
	struct iovec v = { w->buf, w->buf_len };
	int r;

	if (!w->buf_len)
		return 0;
	r = sup_wal_write_all(w->cur->fd, &v, 1, (off_t)w->buf_off);
	if (r < 0) {
		/* Lost before anyone heard they were durable: their waiters
		 * get the error; a lost reservation is stated again. */
		w->cur->size -= w->buf_len;
		w->bytes -= w->buf_len;
		w->write_err = r;
		w->write_err_upto = w->lsn;
		w->st.sync_errors++;
	} else {
		w->buf_off += w->buf_len;
	}
	w->buf_len = 0;
	w->written = w->lsn;
	if (r < 0) {
		if (w->resv_lsn)
			sup_wal_restate(w);
		if (w->loop)
			sup_defer_queue(w->loop, &w->kick);
	}
	return r;
}

/* Frame a record into the buffer, the segment filled ahead for it. */
static int buffer_record(struct sup_wal *w, uint16_t type, const struct iovec *iov, int iovcnt,
			 uint64_t len, char *err, size_t errlen)
{
	uint64_t rec = SUP_WAL_REC_HDR + len;
	int r = fill(w, w->cur->size + rec);

	if (r < 0) {
		w->st.refused++;
		if (r == -ENOSPC || r == -EDQUOT)
			snprintf(err, errlen, "task journal full: the disk of %s refused %" PRIu64
				 " bytes (%s); free space there or move journal_dir", w->dir, rec,
				 strerror(-r));
		else
			snprintf(err, errlen, "cannot write the task journal in %s: %s", w->dir,
				 strerror(-r));
		return r;
	}
	if (w->buf_len + rec > w->buf_cap) {
		sup_wal_flush(w);
		if (rec > w->buf_cap) {
			size_t cap = rec > WAL_BUF_MIN ? (size_t)rec : WAL_BUF_MIN;
			uint8_t *nb = realloc(w->buf, cap);

			if (!nb) {
				w->st.refused++;
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			w->buf = nb;
			w->buf_cap = cap;
		}
	}
	if (!w->buf_len)
		w->buf_off = w->cur->size;
	sup_walrec_frame_into(w->buf + w->buf_len, type, iov, iovcnt);
	w->buf_len += rec;
	w->cur->size += rec;
	w->bytes += rec;
	if (w->o.sync != SUP_WAL_SYNC_OFF)
		w->cur->unsynced = true;
	sup_wal_appended(w, rec);
	return 0;
}

/* Checks, rotation, then into the buffer. */
static int append_rec(struct sup_wal *w, uint16_t type, const struct iovec *iov, int iovcnt,
		      bool reserve, char *err, size_t errlen)
{
	uint64_t len = 0, rec;
	int r;

	if (iovcnt > 7 || !w->cur) {
		snprintf(err, errlen, "journal not ready");
		return -EINVAL;
	}
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > SUP_WAL_RECORD_MAX) {
		snprintf(err, errlen, "a journal record of %" PRIu64 " bytes is over the %u-byte limit",
			 len, SUP_WAL_RECORD_MAX);
		return -EMSGSIZE;
	}
	rec = SUP_WAL_REC_HDR + len;
	if (reserve && w->bytes + rec + SUP_WAL_SEG_HDR + (w->refs + 1) * SUP_WAL_DONE_RESERVE >
			       w->o.max_bytes) {
		w->st.refused++;
		snprintf(err, errlen, "task journal full: %" PRIu64 " of %" PRIu64 " bytes used by "
			 "%" PRIu64 " live tasks; raise journal_max_bytes, or let retained results "
			 "expire (result_retention)", w->bytes, w->o.max_bytes, w->refs);
		return -ENOSPC;
	}
	if (w->cur->size > SUP_WAL_SEG_HDR && w->cur->size + rec > w->o.segment_bytes) {
		r = sup_wal_seg_create(w, err, errlen);
		if (r < 0) {
			w->st.refused++;
			return r;
		}
		if (w->crash_kind == WAL_CRASH_ROTATE && ++w->rotations == w->crash_at)
			raise(SIGKILL);
	}
	return buffer_record(w, type, iov, iovcnt, len, err, errlen);
}

int sup_wal_append(struct sup_wal *w, uint16_t type, const struct iovec *iov, int iovcnt,
		   bool reserve, uint64_t *ret_seg, char *err, size_t errlen)
{
	int r = append_rec(w, type, iov, iovcnt, reserve, err, errlen);

	if (r < 0)
		return r;
	w->cur->refs++;
	w->refs++;
	w->st.appends++;
	*ret_seg = w->cur->no;
	return 0;
}

/* ---- id reservations ------------------------------------------------------ */

/* The statement just appended (ending at lsn): remember it; in mode off,
 * what comes after it waits for a real sync. */
static void stated(struct sup_wal *w, uint64_t from)
{
	w->resv_lsn = w->lsn;
	w->resv_lsn_seg = w->cur->no;
	if (w->o.sync != SUP_WAL_SYNC_OFF)
		return;
	if (w->force_lsn <= w->synced)
		w->force_from = from;
	w->force_lsn = w->lsn;
	w->cur->unsynced = true;
}

int sup_wal_restate(struct sup_wal *w)
{
	uint8_t buf[SUP_WALREC_IDS_LEN];
	struct iovec iov[1];
	uint64_t from = w->lsn;
	char err[160];
	int n, r;

	if (!w->resv[SUP_WAL_IDS_TASK] && !w->resv[SUP_WAL_IDS_RUN])
		return 0;
	n = sup_walrec_ids(w->resv, buf, iov);
	r = buffer_record(w, SUP_WAL_ID_RESERVE, iov, n, SUP_WALREC_IDS_LEN, err, sizeof(err));
	if (r == 0)
		stated(w, from);
	return r;
}

int sup_wal_reserve_ids(struct sup_wal *w, unsigned kind, uint64_t id, char *err, size_t errlen)
{
	uint8_t buf[SUP_WALREC_IDS_LEN];
	struct iovec iov[1];
	uint64_t old, from;
	int n, r;

	if (kind >= SUP_WAL_ID_KINDS || id <= w->resv[kind])
		return 0;
	old = w->resv[kind];
	w->resv[kind] = id - 1 > UINT64_MAX - SUP_WAL_ID_BLOCK ? UINT64_MAX : id - 1 + SUP_WAL_ID_BLOCK;
	n = sup_walrec_ids(w->resv, buf, iov);
	from = w->lsn;
	r = append_rec(w, SUP_WAL_ID_RESERVE, iov, n, true, err, errlen);
	if (r < 0) {
		w->resv[kind] = old;
		return r;
	}
	stated(w, from);
	return 0;
}

uint64_t sup_wal_reserved(const struct sup_wal *w, unsigned kind)
{
	return kind < SUP_WAL_ID_KINDS ? w->resv[kind] : 0;
}

void sup_wal_ids_synced(struct sup_wal *w)
{
	if (w->resv_lsn && w->resv_lsn <= w->synced) {
		w->resv_seg = w->resv_lsn_seg;
		w->resv_lsn = 0;
	}
}
