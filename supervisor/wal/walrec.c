/* SPDX-License-Identifier: MIT */
/* The journal's records: see walrec.h. No I/O, no allocation. */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "walrec.h"

static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

static void putf64(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	put64(p, v);
}

static double getf64(const uint8_t *p)
{
	uint64_t v = get64(p);
	double d;

	memcpy(&d, &v, 8);
	return d;
}

uint32_t sup_walrec_crc(uint32_t len, uint16_t type, const struct iovec *iov, int iovcnt)
{
	uint8_t h[8];
	uLong c;

	put32(h, len);
	put16(h + 4, type);
	put16(h + 6, 0);
	c = crc32(0L, h, sizeof(h));
	for (int i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			c = crc32(c, iov[i].iov_base, (uInt)iov[i].iov_len);
	return (uint32_t)c;
}

void sup_walrec_frame(uint8_t hdr[12], uint16_t type, const struct iovec *iov, int iovcnt)
{
	uint32_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += (uint32_t)iov[i].iov_len;
	put32(hdr, len);
	put16(hdr + 4, type);
	put16(hdr + 6, 0);
	put32(hdr + 8, sup_walrec_crc(len, type, iov, iovcnt));
}

size_t sup_walrec_frame_into(uint8_t *dst, uint16_t type, const struct iovec *iov, int iovcnt)
{
	uint8_t *p = dst + SUP_WAL_REC_HDR;
	uint32_t len = 0;
	uLong c;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(p + len, iov[i].iov_base, iov[i].iov_len);
		len += (uint32_t)iov[i].iov_len;
	}
	put32(dst, len);
	put16(dst + 4, type);
	put16(dst + 6, 0);
	c = crc32(crc32(0L, dst, 8), p, (uInt)len);
	put32(dst + 8, (uint32_t)c);
	return SUP_WAL_REC_HDR + len;
}

void sup_walrec_seg_header(uint8_t hdr[24], uint64_t no)
{
	memcpy(hdr, SUP_WAL_MAGIC, 8);
	put32(hdr + 8, SUP_WAL_VERSION);
	put32(hdr + 12, 0);
	put64(hdr + 16, no);
}

int sup_walrec_check_seg_header(const void *buf, size_t len, uint64_t *ret_no, const char **why)
{
	const uint8_t *p = buf;

	if (len < SUP_WAL_SEG_HDR) {
		*why = "shorter than a segment header";
		return -EBADMSG;
	}
	if (memcmp(p, SUP_WAL_MAGIC, 8)) {
		*why = "not a tierd journal segment (bad magic)";
		return -EBADMSG;
	}
	if (get32(p + 8) != SUP_WAL_VERSION) {
		*why = "a journal segment of another format version";
		return -EBADMSG;
	}
	*ret_no = get64(p + 16);
	return 0;
}

int sup_walrec_next(const uint8_t *buf, size_t len, size_t off, struct sup_wal_rec *rec,
		    size_t *next, const char **why)
{
	struct iovec iov;
	uint32_t rlen, crc;
	uint16_t type;

	if (off == len)
		return 0;
	if (off > len || len - off < SUP_WAL_REC_HDR) {
		*why = "a torn record header";
		return -EBADMSG;
	}
	rlen = get32(buf + off);
	type = get16(buf + off + 4);
	crc = get32(buf + off + 8);
	if (!rlen && !type && !crc && !get16(buf + off + 6))
		return 0;  /* the zero fill ahead of the tail */
	if (rlen > SUP_WAL_RECORD_MAX || get16(buf + off + 6)) {
		*why = "a record header that makes no sense";
		return -EBADMSG;
	}
	if (len - off - SUP_WAL_REC_HDR < rlen) {
		*why = "a torn record (shorter than its length)";
		return -EBADMSG;
	}
	iov.iov_base = (void *)(buf + off + SUP_WAL_REC_HDR);
	iov.iov_len = rlen;
	if (sup_walrec_crc(rlen, type, &iov, 1) != crc) {
		*why = "a record whose CRC does not match";
		return -EBADMSG;
	}
	rec->type = type;
	rec->offset = off;
	rec->data = iov.iov_base;
	rec->len = rlen;
	*next = off + SUP_WAL_REC_HDR + rlen;
	return 1;
}

static void iov_set(struct iovec *v, const void *p, size_t n)
{
	v->iov_base = (void *)p;
	v->iov_len = n;
}

int sup_walrec_submit(const struct sup_wal_submit *s, uint8_t f[SUP_WALREC_SUBMIT_FIXED],
		      struct iovec iov[5])
{
	put64(f, s->id);
	put64(f + 8, s->group);
	put64(f + 16, (uint64_t)s->timeout_ns);
	put64(f + 24, (uint64_t)s->submit_rt_ns);
	put32(f + 32, s->attempts);
	put32(f + 36, s->context_len);
	put32(f + 40, s->len);
	put16(f + 44, s->flags);
	put16(f + 46, s->type_len);
	f[48] = s->tier;
	f[49] = s->agent_len;
	memset(f + 50, 0, 6);
	iov_set(&iov[0], f, SUP_WALREC_SUBMIT_FIXED);
	iov_set(&iov[1], s->agent, s->agent_len);
	iov_set(&iov[2], s->type, s->type_len);
	iov_set(&iov[3], s->context, s->context_len);
	iov_set(&iov[4], s->payload, s->len);
	return 5;
}

int sup_walrec_get_submit(const struct sup_wal_rec *r, struct sup_wal_submit *s)
{
	const uint8_t *p = r->data;
	uint64_t need;

	if (r->type != SUP_WAL_SUBMIT || r->len < SUP_WALREC_SUBMIT_FIXED)
		return -EBADMSG;
	s->id = get64(p);
	s->group = get64(p + 8);
	s->timeout_ns = (int64_t)get64(p + 16);
	s->submit_rt_ns = (int64_t)get64(p + 24);
	s->attempts = get32(p + 32);
	s->context_len = get32(p + 36);
	s->len = get32(p + 40);
	s->flags = get16(p + 44);
	s->type_len = get16(p + 46);
	s->tier = p[48];
	s->agent_len = p[49];
	need = (uint64_t)SUP_WALREC_SUBMIT_FIXED + s->agent_len + s->type_len + s->context_len + s->len;
	if (need != r->len || !s->id)
		return -EBADMSG;
	p += SUP_WALREC_SUBMIT_FIXED;
	s->agent = (const char *)p;
	s->type = s->agent + s->agent_len;
	s->context = s->type + s->type_len;
	s->payload = s->context + s->context_len;
	return 0;
}

int sup_walrec_done(const struct sup_wal_done *d, uint8_t f[SUP_WALREC_DONE_FIXED],
		    struct iovec iov[4])
{
	put64(f, d->id);
	put64(f + 8, d->group);
	put64(f + 16, (uint64_t)d->finish_rt_ns);
	put64(f + 24, (uint64_t)d->dispatched);
	put64(f + 32, (uint64_t)d->started);
	put64(f + 40, (uint64_t)d->finished);
	put64(f + 48, (uint64_t)d->accepted);
	putf64(f + 56, d->quality);
	put32(f + 64, d->attempts);
	put32(f + 68, d->error_len);
	put32(f + 72, d->result_len);
	f[76] = d->status;
	f[77] = d->tier;
	f[78] = d->agent_len;
	f[79] = 0;
	iov_set(&iov[0], f, SUP_WALREC_DONE_FIXED);
	iov_set(&iov[1], d->agent, d->agent_len);
	iov_set(&iov[2], d->error, d->error_len);
	iov_set(&iov[3], d->result, d->result_len);
	return 4;
}

int sup_walrec_get_done(const struct sup_wal_rec *r, struct sup_wal_done *d)
{
	const uint8_t *p = r->data;
	uint64_t need;

	if (r->type != SUP_WAL_DONE || r->len < SUP_WALREC_DONE_FIXED)
		return -EBADMSG;
	d->id = get64(p);
	d->group = get64(p + 8);
	d->finish_rt_ns = (int64_t)get64(p + 16);
	d->dispatched = (int64_t)get64(p + 24);
	d->started = (int64_t)get64(p + 32);
	d->finished = (int64_t)get64(p + 40);
	d->accepted = (int64_t)get64(p + 48);
	d->quality = getf64(p + 56);
	d->attempts = get32(p + 64);
	d->error_len = get32(p + 68);
	d->result_len = get32(p + 72);
	d->status = p[76];
	d->tier = p[77];
	d->agent_len = p[78];
	need = (uint64_t)SUP_WALREC_DONE_FIXED + d->agent_len + d->error_len + d->result_len;
	if (need != r->len || !d->id)
		return -EBADMSG;
	p += SUP_WALREC_DONE_FIXED;
	d->agent = (const char *)p;
	d->error = d->agent + d->agent_len;
	d->result = d->error + d->error_len;
	return 0;
}

int sup_walrec_run_start(const struct sup_wal_run *r, uint8_t f[SUP_WALREC_RUN_FIXED],
			 struct iovec iov[3])
{
	put64(f, r->run);
	put64(f + 8, (uint64_t)r->start_rt_ns);
	put64(f + 16, (uint64_t)r->timeout_ns);
	put64(f + 24, (uint64_t)r->stagger_ns);
	put32(f + 32, (uint32_t)r->batch_size);
	put32(f + 36, r->len);
	put16(f + 40, r->type_len);
	memset(f + 42, 0, 6);
	iov_set(&iov[0], f, SUP_WALREC_RUN_FIXED);
	iov_set(&iov[1], r->type, r->type_len);
	iov_set(&iov[2], r->payload, r->len);
	return 3;
}

int sup_walrec_get_run_start(const struct sup_wal_rec *rec, struct sup_wal_run *r)
{
	const uint8_t *p = rec->data;

	if (rec->type != SUP_WAL_RUN_START || rec->len < SUP_WALREC_RUN_FIXED)
		return -EBADMSG;
	r->run = get64(p);
	r->start_rt_ns = (int64_t)get64(p + 8);
	r->timeout_ns = (int64_t)get64(p + 16);
	r->stagger_ns = (int64_t)get64(p + 24);
	r->batch_size = (int32_t)get32(p + 32);
	r->len = get32(p + 36);
	r->type_len = get16(p + 40);
	r->status = 0;
	if ((uint64_t)SUP_WALREC_RUN_FIXED + r->type_len + r->len != rec->len || !r->run)
		return -EBADMSG;
	r->type = (const char *)p + SUP_WALREC_RUN_FIXED;
	r->payload = r->type + r->type_len;
	return 0;
}

int sup_walrec_run_done(uint64_t run, uint8_t status, uint8_t buf[SUP_WALREC_RUN_DONE_LEN],
			struct iovec iov[1])
{
	put64(buf, run);
	memset(buf + 8, 0, 8);
	buf[8] = status;
	iov_set(&iov[0], buf, SUP_WALREC_RUN_DONE_LEN);
	return 1;
}

int sup_walrec_get_run_done(const struct sup_wal_rec *rec, struct sup_wal_run *r)
{
	const uint8_t *p = rec->data;

	if (rec->type != SUP_WAL_RUN_DONE || rec->len != SUP_WALREC_RUN_DONE_LEN)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->run = get64(p);
	r->status = p[8];
	return r->run ? 0 : -EBADMSG;
}

int sup_walrec_ids(const uint64_t upto[SUP_WAL_ID_KINDS], uint8_t buf[SUP_WALREC_IDS_LEN],
		   struct iovec iov[1])
{
	put64(buf, upto[SUP_WAL_IDS_TASK]);
	put64(buf + 8, upto[SUP_WAL_IDS_RUN]);
	iov_set(&iov[0], buf, SUP_WALREC_IDS_LEN);
	return 1;
}

int sup_walrec_get_ids(const struct sup_wal_rec *rec, uint64_t upto[SUP_WAL_ID_KINDS])
{
	const uint8_t *p = rec->data;

	if (rec->type != SUP_WAL_ID_RESERVE || rec->len != SUP_WALREC_IDS_LEN)
		return -EBADMSG;
	upto[SUP_WAL_IDS_TASK] = get64(p);
	upto[SUP_WAL_IDS_RUN] = get64(p + 8);
	return 0;
}
