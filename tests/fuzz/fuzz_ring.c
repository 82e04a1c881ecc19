/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: tierd's side of a ring facing a hostile agent.
 *
 * Input = [geometry byte][CQ tail (8)][image length (2)][CQ data image]
 * then a stream.
 * The stream drives operations (consume, read, release, sleep protocol on
 * the CQ; write and publish on the SQ) and, through shm_fuzz_mutate(), the
 * value of shared memory at every load the ring code makes: before each
 * SHM_LOAD_* / SHM_COPY_IN the target may overwrite the location, as a peer
 * racing the reader would. A reader that fetched a field twice and trusted
 * the second copy would be caught here.
 *
 * Every record peeked goes through tierd's record checks (agentrec.c) the
 * way supervisor/incarnation/channel.c uses them: a RESULT or HELLO
 * shorter than its header must be refused before its header is read, and
 * an EVENT's text must come out as escaped C strings. One operation
 * plants such short agent records at the CQ tail, so they are common in
 * the corpus and not left to chance.
 *
 * Each data area ends at a PROT_NONE guard page (ASan does not watch mmap'd
 * memory), so a read or write past a ring is a crash, not a silent pass.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../shm/shm_internal.h"
#include "../../supervisor/agentrec.h"
#include "tier/proto.h"

#define CAP   1024u
#define PAGE  4096u
/* page 0: header + controls; SQ data ends at page 2 (guard), CQ at page 4. */
#define SQ_OFF (2 * PAGE - CAP)
#define CQ_OFF (4 * PAGE - CAP)
#define MAP_LEN (5 * PAGE)

static const uint8_t *stream;
static size_t stream_left;

static int take(void *dst, size_t n)
{
	if (stream_left < n)
		return 0;
	memcpy(dst, stream, n);
	stream += n;
	stream_left -= n;
	return 1;
}

static uint8_t take_byte(void)
{
	uint8_t b = 0;

	take(&b, 1);
	return b;
}

void shm_fuzz_mutate(volatile void *p, size_t n)
{
	uint8_t sel = take_byte();

	/* One byte in four of the selectors rewrites the location. */
	if ((sel & 3) == 3) {
		uint8_t tmp[64];

		if (n > sizeof(tmp))
			n = sizeof(tmp);
		if (take(tmp, n))
			memcpy((void *)p, tmp, n);
	}
}

static uint8_t *region;

static void setup(void)
{
	region = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		abort();
	if (mprotect(region + 2 * PAGE, PAGE, PROT_NONE) ||
	    mprotect(region + 4 * PAGE, PAGE, PROT_NONE))
		abort();
}

/* What tierd does with a record it peeked, minus the daemon. */
static void check_agent_record(const struct tier_msg *m)
{
	char why[96], kind[256], msg[1024], raw[512];
	const char *fault = sup_agent_rec_fault(m->type, m->len, why, sizeof(why));

	if (m->type == TIER_MSG_RESULT && !fault) {
		struct tier_result res;

		if (m->len < sizeof(res))
			abort();
		SHM_COPY_IN(&res, m->payload, sizeof(res));
	} else if (m->type == TIER_MSG_HELLO && !fault) {
		struct tier_hello h;

		if (m->len < sizeof(h))
			abort();
		SHM_COPY_IN(&h, m->payload, sizeof(h));
	} else if (m->type == TIER_MSG_EVENT) {
		size_t n = m->len < sizeof(raw) ? m->len : sizeof(raw);

		if (fault)
			abort();
		SHM_COPY_IN(raw, m->payload, n);
		sup_agent_event_split(raw, n, kind, sizeof(kind), msg, sizeof(msg));
		for (const char *q = kind; *q; q++)
			if ((unsigned char)*q < 0x20)
				abort();
		for (const char *q = msg; *q; q++)
			if ((unsigned char)*q < 0x20)
				abort();
	} else if ((m->type < TIER_MSG_HELLO || m->type > TIER_MSG_EVENT) && !fault) {
		abort();
	}
}

/* Append one agent record with a payload of 0..31 bytes (short for a
 * RESULT or HELLO) at the CQ's published tail, as a hostile agent would. */
static void plant_short_record(struct tier_ring_ctl *cq, uint8_t *data)
{
	uint8_t sel = take_byte(), plen = take_byte() & 31;
	uint64_t tail = cq->tail, off = tail & (CAP - 1);
	uint32_t len = TIER_REC_HDR_SIZE + plen;
	struct tier_rec_hdr h = { .len = len, .type = (uint16_t)(1 + sel % 6), .task_id = sel };

	if (off + TIER_REC_ALIGN(len) > CAP)
		return;
	memcpy(data + off, &h, sizeof(h));
	memset(data + off + sizeof(h), sel, plen);
	cq->tail = tail + TIER_REC_ALIGN(len);
}

static int known_error(int r)
{
	return r == -EAGAIN || r == -EMSGSIZE || r == -EBUSY || r == -EINVAL ||
	       (r < -TIER_E_BASE && r > -TIER_E_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tier_shm shm = { 0 };
	struct tier_shm_hdr h;
	struct tier_ring_ctl *cq;
	struct tier_prod *p;
	struct tier_cons *c;
	uint8_t buf[CAP];
	uint8_t geo;

	if (!region)
		setup();
	if (size < 1)
		return 0;
	geo = data[0];
	memset(region, 0, 2 * PAGE);
	memset(region + 3 * PAGE, 0, PAGE);
	h = (struct tier_shm_hdr){
		.magic = TIER_SHM_MAGIC, .version = TIER_SHM_VERSION, .hdr_size = TIER_SHM_LINE,
		.sq_offset = SQ_OFF, .sq_capacity = CAP, .cq_offset = CQ_OFF, .cq_capacity = CAP,
		/* 64..512 in steps of 64 */
		.max_record = 64u * (1u + (geo & 7)), .total_size = MAP_LEN,
	};
	shm.base = region;
	shm.size = MAP_LEN;
	shm.fd = -1;
	shm_bind(&shm, &h, 1);
	p = &shm.prod;
	c = &shm.cons;
	cq = (struct tier_ring_ctl *)(region + TIER_SHM_CQ_CTL);

	stream = data + 1;
	stream_left = size - 1;
	uint16_t img = 0;

	take(&cq->tail, sizeof(cq->tail));
	take(&img, sizeof(img));
	img %= CAP + 1;
	if (img > stream_left)
		img = (uint16_t)stream_left;
	take(region + CQ_OFF, img);

	for (int step = 0; step < 256 && stream_left; step++) {
		struct tier_msg m;
		int r;

		switch (take_byte() % 8) {
		case 0:
			r = tier_cons_peek(c, &m);
			if (r == 1) {
				const uint8_t *pl = m.payload;

				if (pl < region + CQ_OFF || pl + m.len > region + CQ_OFF + CAP ||
				    m.len > h.max_record - TIER_REC_HDR_SIZE)
					abort();
				/* Touch the payload as a caller would, via the copy macro. */
				SHM_COPY_IN(buf, pl, m.len);
				check_agent_record(&m);
				tier_cons_advance(c);
			} else if (r != 0 && !known_error(r)) {
				abort();
			}
			break;
		case 1:
			r = tier_cons_read(c, &m, buf, take_byte() * 4u);
			if (r < 0 && !known_error(r))
				abort();
			if (r == 1 && m.payload != buf)
				abort();
			break;
		case 2:
			tier_cons_release(c);
			break;
		case 3: {
			uint32_t bell;

			r = tier_cons_prepare_sleep(c, TIER_SLEEP_EVENTFD, &bell);
			if (r < 0 && !known_error(r))
				abort();
			tier_cons_awake(c);
			break;
		}
		case 4:
			(void)tier_cons_pending(c);
			break;
		case 5: {
			uint16_t len = 0;

			take(&len, sizeof(len));
			memset(buf, 0xab, sizeof(buf));
			r = tier_prod_write(p, 1 + (len & 7), 0, step, buf, len % 600);
			if (r < 0 && !known_error(r))
				abort();
			break;
		}
		case 6:
			/* Producer publish; no eventfd set, so a "sleeping" flag the
			 * fuzzer plants is answered with a futex wake on our own
			 * private page, which is harmless. */
			r = tier_prod_publish(p);
			if (r < 0 && !known_error(r) && r != -EFAULT)
				abort();
			break;
		case 7:
			plant_short_record(cq, region + CQ_OFF);
			break;
		}
	}
	return 0;
}
