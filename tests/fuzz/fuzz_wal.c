/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the journal's segment reader (supervisor/wal/walrec.c)
 * on whatever a crash, a bad disk or a hostile file leaves in a segment.
 *
 * Input = a segment file. The header is checked as replay checks it; then
 * records are walked until the clean end or the first bad one, and each
 * record is decoded as its type says. Every decoded string and payload
 * must lie inside the record (checked by touching each byte, so ASan sees
 * a read past it), and the walk must never go backwards or past the end.
 * Half of the runs re-frame the input's tail behind a valid header and
 * CRC, so the decoders see well-framed garbage, not only CRC failures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../supervisor/wal/walrec.h"

static volatile uint8_t sink;

/* The rings are linked into every fuzzer; this one does not race them. */
void shm_fuzz_mutate(volatile void *p, size_t n);
void shm_fuzz_mutate(volatile void *p, size_t n)
{
}

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		sink ^= b[i];
}

static void inside(const struct sup_wal_rec *r, const void *p, size_t n)
{
	const uint8_t *lo = r->data, *q = p;

	if (n && (q < lo || q + n > lo + r->len))
		abort();
	touch(p, n);
}

static void decode(const struct sup_wal_rec *r)
{
	struct sup_wal_submit s;
	struct sup_wal_done d;
	struct sup_wal_run run;
	uint64_t ids[SUP_WAL_ID_KINDS];

	if (sup_walrec_get_submit(r, &s) == 0) {
		inside(r, s.agent, s.agent_len);
		inside(r, s.type, s.type_len);
		inside(r, s.context, s.context_len);
		inside(r, s.payload, s.len);
	}
	if (sup_walrec_get_done(r, &d) == 0) {
		inside(r, d.agent, d.agent_len);
		inside(r, d.error, d.error_len);
		inside(r, d.result, d.result_len);
	}
	if (sup_walrec_get_run_start(r, &run) == 0) {
		inside(r, run.type, run.type_len);
		inside(r, run.payload, run.len);
	}
	sup_walrec_get_run_done(r, &run);
	if (sup_walrec_get_ids(r, ids) == 0 && r->len != SUP_WALREC_IDS_LEN)
		abort();
}

/* Records walked cleanly (0 at the end); -1 when a record was refused. */
static long walk(const uint8_t *buf, size_t len)
{
	long n = 0;
	struct sup_wal_rec rec;
	const char *why = NULL;
	size_t off = SUP_WAL_SEG_HDR, next;
	uint64_t no;
	int r;

	if (sup_walrec_check_seg_header(buf, len, &no, &why) < 0)
		return -1;
	while ((r = sup_walrec_next(buf, len, off, &rec, &next, &why)) > 0) {
		if (next <= off || next > len)
			abort();
		decode(&rec);
		off = next;
		n++;
	}
	if (r < 0 && !why)
		abort();
	return r < 0 ? -1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf, *copy;
	struct iovec iov;
	size_t body;

	walk(data, size);
	if (size < 3 || !(data[0] & 1))
		return 0;
	/* [odd byte][type byte][payload…] -> one framed record. */
	body = size - 2;
	buf = malloc(SUP_WAL_SEG_HDR + SUP_WAL_REC_HDR + body);
	if (!buf)
		return 0;
	sup_walrec_seg_header(buf, 1);
	memcpy(buf + SUP_WAL_SEG_HDR + SUP_WAL_REC_HDR, data + 2, body);
	iov.iov_base = buf + SUP_WAL_SEG_HDR + SUP_WAL_REC_HDR;
	iov.iov_len = body;
	sup_walrec_frame(buf + SUP_WAL_SEG_HDR, (uint16_t)(data[1] % 6), &iov, 1);
	if (body <= SUP_WAL_RECORD_MAX && walk(buf, SUP_WAL_SEG_HDR + SUP_WAL_REC_HDR + body) != 1)
		abort();
	/* The buffered framing gives the same bytes, and the zero fill after
	 * it (as a crash leaves the current segment) is the clean end. */
	copy = calloc(1, SUP_WAL_SEG_HDR + 2 * (SUP_WAL_REC_HDR + body) + 64);
	if (copy) {
		size_t at = SUP_WAL_SEG_HDR, k;
		struct iovec v[2] = { { (void *)(data + 2), body / 2 },
				      { (void *)(data + 2 + body / 2), body - body / 2 } };

		memcpy(copy, buf, SUP_WAL_SEG_HDR);
		k = sup_walrec_frame_into(copy + at, (uint16_t)(data[1] % 6), v, 2);
		if (k != SUP_WAL_REC_HDR + body || memcmp(copy + at, buf + at, k))
			abort();
		at += k;
		k = sup_walrec_frame_into(copy + at, SUP_WAL_ID_RESERVE, v, 2);
		at += k;
		if (body <= SUP_WAL_RECORD_MAX && walk(copy, at + 12 + data[0] % 50) != 2)
			abort();
		free(copy);
	}
	free(buf);
	return 0;
}
