/* SPDX-License-Identifier: MIT */
/*
 * SPSC byte rings: producer and consumer sides, doorbells.
 *
 * Positions are 64-bit byte counts that never wrap in practice; the offset in
 * the data area is position & mask. Each side keeps its own position in
 * private memory and publishes it with one release store per batch; it reads
 * the peer's position only when its cached copy says the ring is full
 * (producer) or empty (consumer), and validates it before use.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "shm_internal.h"

void shm_prod_init(struct tier_prod *p, const struct shm_ring_geo *g)
{
	*p = (struct tier_prod){ .g = *g, .efd = -1 };
}

void shm_cons_init(struct tier_cons *c, const struct shm_ring_geo *g)
{
	*c = (struct tier_cons){ .g = *g };
}

/* ---- producer ------------------------------------------------------------ */

static int prod_fail(struct tier_prod *p, int err)
{
	p->err = -err;
	return p->err;
}

/* Load and validate the consumer's head into head_cache. 0 or a protocol
 * error (sticky). */
static int prod_load_head(struct tier_prod *p)
{
	uint64_t head = SHM_LOAD_ACQUIRE(&p->g.ctl->head);

	if (head & 7)
		return prod_fail(p, TIER_E_MISALIGNED);
	/* The consumer can only have seen what we published. */
	if (head > p->published)
		return prod_fail(p, TIER_E_HEAD_PAST);
	if (head < p->head_cache || head < p->head_floor)
		return prod_fail(p, TIER_E_HEAD_BACK);
	p->head_cache = head;
	return 0;
}

/* Is there room for n more bytes? Reloads the consumer's head only when the
 * cached one says no. Returns 1, 0 (full) or a protocol error. */
static int prod_room(struct tier_prod *p, uint64_t n)
{
	int r;

	if (p->g.cap - (p->tail - p->head_cache) >= n)
		return 1;
	r = prod_load_head(p);
	if (r < 0)
		return r;
	return p->g.cap - (p->tail - p->head_cache) >= n;
}

int tier_prod_reserve(struct tier_prod *p, uint32_t max_payload, void **ret_payload)
{
	uint64_t need, off, pad;
	int r;

	if (p->err)
		return p->err;
	if (p->resv_len)
		return -EBUSY;
	if (max_payload > p->g.max_record - TIER_REC_HDR_SIZE)
		return -EMSGSIZE;
	need = TIER_REC_ALIGN(TIER_REC_HDR_SIZE + max_payload);
	off = p->tail & p->g.mask;
	pad = off + need > p->g.cap ? p->g.cap - off : 0;
	r = prod_room(p, pad + need);
	if (r <= 0)
		return r < 0 ? r : -EAGAIN;
	if (pad) {
		/* Only len and type of a pad are read, so 8 bytes suffice. */
		struct tier_rec_hdr *h = (struct tier_rec_hdr *)(p->g.data + off);
		h->len = (uint32_t)pad;
		h->type = TIER_REC_PAD;
		h->flags = 0;
		p->tail += pad;
		off = 0;
	}
	p->resv_pos = p->tail;
	p->resv_len = (uint32_t)need;
	*ret_payload = p->g.data + off + TIER_REC_HDR_SIZE;
	return 0;
}

int tier_prod_commit(struct tier_prod *p, uint16_t type, uint16_t flags,
		     uint64_t task_id, uint32_t payload_len)
{
	struct tier_rec_hdr *h;
	uint32_t len = TIER_REC_HDR_SIZE + payload_len;

	if (!p->resv_len || type == TIER_REC_PAD || TIER_REC_ALIGN(len) > p->resv_len)
		return -EINVAL;
	h = (struct tier_rec_hdr *)(p->g.data + (p->resv_pos & p->g.mask));
	h->len = len;
	h->type = type;
	h->flags = flags;
	h->task_id = task_id;
	p->tail = p->resv_pos + TIER_REC_ALIGN(len);
	p->resv_len = 0;
	return 0;
}

void tier_prod_abort(struct tier_prod *p)
{
	p->resv_len = 0;
}

int tier_prod_write(struct tier_prod *p, uint16_t type, uint16_t flags,
		    uint64_t task_id, const void *payload, uint32_t len)
{
	void *dst;
	int r;

	if (type == TIER_REC_PAD)
		return -EINVAL;
	r = tier_prod_reserve(p, len, &dst);
	if (r < 0)
		return r;
	if (len)
		memcpy(dst, payload, len);
	return tier_prod_commit(p, type, flags, task_id, len);
}

static int prod_ring(struct tier_prod *p, uint32_t kind)
{
	p->wakes++;
	if (kind == TIER_SLEEP_EVENTFD && p->efd >= 0) {
		uint64_t one = 1;
		ssize_t n;

		do
			n = write(p->efd, &one, sizeof(one));
		while (n < 0 && errno == EINTR);
		/* EAGAIN: the counter is saturated, so the reader is woken anyway. */
		if (n < 0 && errno != EAGAIN)
			return -errno;
		return 1;
	}
	/* Bump before waking so a consumer that read the old value before it
	 * set `sleeping` fails its FUTEX_WAIT with EAGAIN instead of sleeping. */
	__atomic_fetch_add(&p->g.ctl->bell, 1, __ATOMIC_RELEASE);
	if (syscall(SYS_futex, &p->g.ctl->bell, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
		return -errno;
	return 1;
}

int tier_prod_publish(struct tier_prod *p)
{
	uint32_t kind;

	if (p->err)
		return p->err;
	if (p->tail == p->published)
		return 0;
	/* Check the consumer's head on every publish, not only when the ring
	 * looks full: a consumer that moved it back (or far ahead) and stopped
	 * reading would otherwise go unnoticed while the ring has room. One
	 * load of a line the consumer writes once per batch. */
	if (prod_load_head(p) < 0)
		return p->err;
	SHM_STORE_RELEASE(&p->g.ctl->tail, p->tail);
	p->published = p->tail;
	SHM_FENCE_FULL();
	if (!SHM_LOAD_RELAXED(&p->g.ctl->sleeping))
		return 0;
	kind = SHM_XCHG(&p->g.ctl->sleeping, 0);
	if (!kind)
		return 0;
	return prod_ring(p, kind);
}

void tier_prod_set_eventfd(struct tier_prod *p, int efd)
{
	p->efd = efd;
}

uint64_t tier_prod_tail(const struct tier_prod *p)
{
	return p->tail;
}

void tier_prod_head_floor(struct tier_prod *p, uint64_t pos)
{
	if (pos > p->head_floor && pos <= p->published)
		p->head_floor = pos;
}

uint64_t tier_prod_free_hint(const struct tier_prod *p)
{
	return p->g.cap - (p->tail - p->head_cache);
}

uint64_t tier_prod_wakes(const struct tier_prod *p)
{
	return p->wakes;
}

/* ---- consumer ------------------------------------------------------------ */

static int cons_fail(struct tier_cons *c, int err)
{
	c->err = -err;
	return c->err;
}

/* Refresh the cached tail. Returns bytes available or a protocol error. */
static int64_t cons_refresh(struct tier_cons *c)
{
	uint64_t tail = SHM_LOAD_ACQUIRE(&c->g.ctl->tail);

	if (tail & 7)
		return cons_fail(c, TIER_E_MISALIGNED);
	if ((int64_t)(tail - c->head) < 0)
		return cons_fail(c, TIER_E_TAIL_BEHIND);
	if (tail - c->head > c->g.cap)
		return cons_fail(c, TIER_E_TAIL_OVERRUN);
	c->tail_cache = tail;
	return (int64_t)(tail - c->head);
}

int tier_cons_peek(struct tier_cons *c, struct tier_msg *m)
{
	struct tier_rec_hdr h;
	uint64_t avail, off, room, rlen;
	int skipped_pad = 0;

	if (c->err)
		return c->err;
again:
	avail = c->tail_cache - c->head;
	if (!avail) {
		int64_t a = cons_refresh(c);

		if (a <= 0)
			return (int)a;
		avail = (uint64_t)a;
	}
	off = c->head & c->g.mask;
	room = c->g.cap - off;
	/* Copy the header out once; every check below is on the copy. */
	SHM_COPY_IN(&h, c->g.data + off, room < TIER_REC_HDR_SIZE || avail < TIER_REC_HDR_SIZE ?
			TIER_REC_PAD_SIZE : TIER_REC_HDR_SIZE);
	if (h.type == TIER_REC_PAD) {
		/* A pad ends exactly at the wrap and is never at offset 0 (a
		 * record no larger than half the ring always fits there), so at
		 * most one pad is skipped per call. */
		if (h.len != room || off == 0 || skipped_pad)
			return cons_fail(c, TIER_E_PADDING);
		if (room > avail)
			return cons_fail(c, TIER_E_PADDING);
		c->head += room;
		skipped_pad = 1;
		goto again;
	}
	if (room < TIER_REC_HDR_SIZE)
		return cons_fail(c, TIER_E_REC_WRAP);
	if (avail < TIER_REC_HDR_SIZE || h.len < TIER_REC_HDR_SIZE)
		return cons_fail(c, TIER_E_REC_LEN);
	if (h.len > c->g.max_record)
		return cons_fail(c, TIER_E_REC_SIZE);
	rlen = TIER_REC_ALIGN(h.len);
	if (rlen > room)
		return cons_fail(c, TIER_E_REC_WRAP);
	if (rlen > avail)
		return cons_fail(c, TIER_E_REC_LEN);
	m->task_id = h.task_id;
	m->type = h.type;
	m->flags = h.flags;
	m->len = h.len - TIER_REC_HDR_SIZE;
	m->payload = c->g.data + off + TIER_REC_HDR_SIZE;
	c->peek_next = c->head + rlen;
	return 1;
}

void tier_cons_advance(struct tier_cons *c)
{
	if (c->peek_next) {
		c->head = c->peek_next;
		c->peek_next = 0;
	}
}

void tier_cons_release(struct tier_cons *c)
{
	if (c->head != c->released) {
		SHM_STORE_RELEASE(&c->g.ctl->head, c->head);
		c->released = c->head;
	}
}

int tier_cons_read(struct tier_cons *c, struct tier_msg *m, void *buf, size_t cap)
{
	int r = tier_cons_peek(c, m);

	if (r <= 0)
		return r;
	if (m->len > cap) {
		c->peek_next = 0;
		return -EMSGSIZE;
	}
	if (m->len)
		SHM_COPY_IN(buf, m->payload, m->len);
	m->payload = buf;
	tier_cons_advance(c);
	return 1;
}

int tier_cons_pending(struct tier_cons *c)
{
	if (c->err)
		return 1; /* let the caller's next peek report it */
	if (c->tail_cache != c->head)
		return 1;
	return SHM_LOAD_ACQUIRE(&c->g.ctl->tail) != c->head;
}

int tier_cons_prepare_sleep(struct tier_cons *c, uint32_t kind, uint32_t *ret_bell)
{
	uint32_t bell;

	if (c->err)
		return c->err;
	bell = SHM_LOAD_RELAXED(&c->g.ctl->bell);
	SHM_STORE_RELAXED(&c->g.ctl->sleeping, kind);
	SHM_FENCE_FULL();
	if (tier_cons_pending(c)) {
		SHM_STORE_RELAXED(&c->g.ctl->sleeping, 0);
		return 1;
	}
	if (ret_bell)
		*ret_bell = bell;
	return 0;
}

void tier_cons_awake(struct tier_cons *c)
{
	/* Read first: the producer usually cleared it already, and a store
	 * would pull the doorbell line over for nothing. */
	if (SHM_LOAD_RELAXED(&c->g.ctl->sleeping))
		SHM_STORE_RELAXED(&c->g.ctl->sleeping, 0);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tier_cons_wait(struct tier_cons *c, int64_t spin_ns, int64_t timeout_ns)
{
	int64_t start, now, deadline;

	if (tier_cons_pending(c))
		return 1;
	start = mono_ns();
	deadline = timeout_ns < 0 ? INT64_MAX : start + timeout_ns;
	if (spin_ns > 0) {
		int64_t spin_end = start + spin_ns;

		do {
			for (int i = 0; i < 64; i++) {
				if (tier_cons_pending(c))
					return 1;
				shm_cpu_relax();
			}
			/* Spin politely: on a CPU shared with other runnable work
			 * (many agents, few cores) let it run instead of burning
			 * the slice; alone on the CPU this returns at once. */
			sched_yield();
			now = mono_ns();
		} while (now < spin_end && now < deadline);
	}
	for (;;) {
		struct timespec ts, *tsp = NULL;
		uint32_t bell;
		long r;
		int p = tier_cons_prepare_sleep(c, TIER_SLEEP_FUTEX, &bell);

		if (p != 0)
			return p < 0 ? p : 1;
		if (deadline != INT64_MAX) {
			int64_t left = deadline - mono_ns();

			if (left <= 0) {
				tier_cons_awake(c);
				return tier_cons_pending(c);
			}
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
			tsp = &ts;
		}
		/* Shared (not private) futex: the word lives in a memfd mapped by
		 * two processes. EAGAIN means the bell rang before we slept. */
		r = syscall(SYS_futex, &c->g.ctl->bell, FUTEX_WAIT, bell, tsp, NULL, 0);
		tier_cons_awake(c);
		if (tier_cons_pending(c))
			return 1;
		if (r < 0 && errno == EINTR)
			return -EINTR;
		if (r < 0 && errno == ETIMEDOUT)
			return 0;
	}
}
