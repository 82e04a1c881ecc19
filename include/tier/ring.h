/* SPDX-License-Identifier: MIT */
/*
 * tier/ring.h — shared-memory SPSC rings between tierd and one agent.
 *
 * One sealed memfd per agent incarnation holds a header and two byte rings:
 * SQ (supervisor -> agent, tasks) and CQ (agent -> supervisor, results).
 * Each side maps the same memfd. The side that creates it (tierd) keeps the
 * geometry in private memory; the side that attaches validates the geometry
 * once and then does the same. Neither side ever re-reads geometry or its own
 * index from shared memory.
 *
 * All fallible functions return >= 0 on success and a negative error code on
 * failure: either -errno or one of the -TIER_E* codes below, which describe
 * a ring whose peer broke the protocol. tier_strerror() names both.
 */
#ifndef TIER_RING_H
#define TIER_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- wire format (fixed-width, little-endian host layout) ------------- */

#define TIER_SHM_MAGIC   0x52524954u /* "TIRR" */
#define TIER_SHM_VERSION 1u

/* Record header. Every record starts 8-byte aligned and occupies
 * TIER_REC_ALIGN(len) bytes; len counts header plus payload. The first 8
 * bytes (len, type, flags) are all a padding record needs, so a pad fits in
 * the smallest gap (8 bytes) the alignment can leave at the end of a ring. */
struct tier_rec_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint64_t task_id;
};
#define TIER_REC_HDR_SIZE   ((uint32_t)sizeof(struct tier_rec_hdr))
#define TIER_REC_PAD_SIZE   8u
#define TIER_REC_ALIGN(n)   (((uint64_t)(n) + 7u) & ~(uint64_t)7u)

/* Record type 0 is reserved for padding at the wrap. The ring itself
 * carries any other type; which ones each side may send is the protocol's
 * business (tier/proto.h: tierd kills an agent that sends a type not listed
 * there, 16 and above included). */
#define TIER_REC_PAD        0u

/* Layout of the first 128 bytes of the memfd. Written once by the creator. */
struct tier_shm_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;      /* offset of the first ring control block */
	uint64_t total_size;    /* bytes of the memfd the geometry spans */
	uint32_t sq_offset;     /* SQ data area, from the start of the memfd */
	uint32_t sq_capacity;   /* power of two */
	uint32_t cq_offset;
	uint32_t cq_capacity;
	uint32_t max_record;    /* largest record (header + payload) accepted */
	uint32_t flags;
};

/* Per ring, three lines of 128 bytes (two 64-byte lines each, so adjacent-
 * line prefetch never couples them): the producer's tail, the consumer's
 * head, and the doorbell (sleeping flag + futex word). The doorbell is on a
 * line of its own so the producer's check after every publish hits a line
 * that changes only when the consumer goes to sleep. */
#define TIER_SHM_LINE 128u
struct tier_ring_ctl {
	uint64_t tail;
	uint8_t  pad0[TIER_SHM_LINE - 8];
	uint64_t head;
	uint8_t  pad1[TIER_SHM_LINE - 8];
	uint32_t sleeping;      /* 0 awake, TIER_SLEEP_FUTEX or TIER_SLEEP_EVENTFD */
	uint32_t bell;          /* futex word: bumped by the producer per wake */
	uint8_t  pad2[TIER_SHM_LINE - 8];
};

#define TIER_SLEEP_FUTEX   1u
#define TIER_SLEEP_EVENTFD 2u

/* Offsets of the control blocks inside the memfd. */
#define TIER_SHM_SQ_CTL   TIER_SHM_LINE
#define TIER_SHM_CQ_CTL   (TIER_SHM_LINE + sizeof(struct tier_ring_ctl))
#define TIER_SHM_DATA_MIN (TIER_SHM_CQ_CTL + sizeof(struct tier_ring_ctl))

/* Geometry bounds, checked by both sides. */
#define TIER_RING_MIN_CAP   1024u
#define TIER_RING_MAX_CAP   (1u << 30)
#define TIER_REC_MIN_MAX    64u        /* smallest max_record allowed */

/* ---- error codes for a peer that broke the protocol ------------------- */
enum {
	TIER_E_BASE = 4000,
	TIER_E_MAGIC,        /* header magic is not TIER_SHM_MAGIC */
	TIER_E_VERSION,      /* layout version not supported */
	TIER_E_GEOMETRY,     /* capacities/offsets/max_record invalid */
	TIER_E_UNSEALED,     /* memfd lacks SHRINK|GROW|SEAL seals */
	TIER_E_TOOSMALL,     /* memfd smaller than its declared geometry */
	TIER_E_TAIL_BEHIND,  /* consumer: tail behind head */
	TIER_E_TAIL_OVERRUN, /* consumer: tail more than a capacity past head */
	TIER_E_HEAD_PAST,    /* producer: head past tail */
	TIER_E_HEAD_BACK,    /* producer: head moved backwards */
	TIER_E_MISALIGNED,   /* an index or record not 8-byte aligned */
	TIER_E_REC_LEN,      /* record length below header or past published data */
	TIER_E_REC_WRAP,     /* record crosses the end of the ring */
	TIER_E_REC_SIZE,     /* record larger than max_record */
	TIER_E_PADDING,      /* padding record not ending exactly at the wrap */
	TIER_E_MAX,
};

/* Names -errno and -TIER_E* codes alike. Never NULL. */
const char *tier_strerror(int err);

/* ---- the shared region ------------------------------------------------ */

struct tier_shm;
struct tier_prod;
struct tier_cons;

struct tier_shm_opts {
	size_t   sz;            /* sizeof(struct tier_shm_opts) */
	uint32_t sq_capacity;   /* bytes, power of two; 0 = default */
	uint32_t cq_capacity;   /* bytes, power of two; 0 = default */
	uint32_t max_record;    /* bytes, header included; 0 = default */
};
#define TIER_RING_DEFAULT_CAP     (256u * 1024u)
#define TIER_RING_DEFAULT_MAX_REC (64u * 1024u)

/* Create a sealed memfd (MFD_CLOEXEC) with both rings, map it, initialise
 * the header. Returns NULL and sets errno (EINVAL or TIER_E_GEOMETRY for bad
 * options). The creator produces on SQ and consumes CQ. */
struct tier_shm *tier_shm_create(const struct tier_shm_opts *opts);

/* Map an existing memfd after checking seals, size and geometry. Does not
 * take ownership of fd. The attacher produces on CQ and consumes SQ.
 * Returns NULL with errno set (TIER_E_* codes included). */
struct tier_shm *tier_shm_attach(int fd);

/* Unmap, close the fd if the handle owns it (creator), free. NULL is fine. */
void tier_shm_free(struct tier_shm *shm);

/* ---- hand-over across execve (tierd's live upgrade) --------------------
 * What the creator keeps privately about one region, to map it again as its
 * creator in the next binary without trusting anything the agent could have
 * written: the geometry it chose and every private index, cache, sticky
 * error, the doorbell eventfd's number and the wake counter of both sides. */
struct tier_shm_owner_state {
	uint64_t total_size;
	uint32_t sq_offset, cq_offset;
	uint32_t sq_capacity, cq_capacity, max_record;
	/* SQ, this side producing */
	uint64_t sq_tail;        /* after the last committed record */
	uint64_t sq_published;   /* last tail stored to shared memory */
	uint64_t sq_head_seen;   /* last validated head of the agent */
	uint64_t sq_head_floor;  /* the agent is known to have read this far */
	uint64_t sq_wakes;
	int32_t  sq_err;         /* sticky protocol error, 0 if none */
	int32_t  sq_efd;         /* doorbell eventfd number, -1 if none */
	/* CQ, this side consuming */
	uint64_t cq_head;        /* next byte to read */
	uint64_t cq_released;    /* last head stored to shared memory */
	uint64_t cq_tail_seen;   /* last validated tail of the agent */
	uint64_t cq_peek_next;   /* head after a peeked record, 0 if none */
	int32_t  cq_err;
	int32_t  pad;
};

/* Fill *st from a creator's handle. -EBUSY if a reservation is outstanding
 * (commit or abort it first), -EINVAL for an attacher's handle; 0 else. */
int tier_shm_owner_state(const struct tier_shm *shm, struct tier_shm_owner_state *st);

/* Map fd as its creator again: checks the seals, that the memfd's size and
 * the header in it still say what st says (else TIER_E_UNSEALED,
 * TIER_E_TOOSMALL or TIER_E_GEOMETRY) and that st is consistent in itself
 * (EINVAL); then takes ownership of fd (tier_shm_free closes it) and
 * restores the producer's and consumer's private state from st. The
 * doorbell eventfd number in st must still be open in this process (it is
 * not checked: the caller hands it over beside the memfd). NULL with errno
 * set on failure; fd is then not taken. */
struct tier_shm *tier_shm_adopt(int fd, const struct tier_shm_owner_state *st);

int      tier_shm_fd(const struct tier_shm *shm);
size_t   tier_shm_size(const struct tier_shm *shm);
uint32_t tier_shm_max_record(const struct tier_shm *shm);
/* Largest payload one record may carry. */
uint32_t tier_shm_max_payload(const struct tier_shm *shm);

/* This side's producer and consumer (owned by the handle). */
struct tier_prod *tier_shm_prod(struct tier_shm *shm);
struct tier_cons *tier_shm_cons(struct tier_shm *shm);

/* ---- producer --------------------------------------------------------- */

/* Reserve room for a record with up to max_payload bytes of payload; insert
 * a padding record first if it does not fit before the wrap. Returns 0 and a
 * pointer to the payload area, -EAGAIN if the ring is full, -EMSGSIZE if the
 * record would exceed max_record, -EBUSY if a reservation is outstanding,
 * -TIER_E_HEAD_* if the consumer's index is corrupt (sticky). */
int tier_prod_reserve(struct tier_prod *p, uint32_t max_payload, void **ret_payload);

/* Finish the outstanding reservation with its real payload length
 * (<= reserved). Not yet visible to the consumer. -EINVAL if there is no
 * reservation, payload_len exceeds it, or type is TIER_REC_PAD. */
int tier_prod_commit(struct tier_prod *p, uint16_t type, uint16_t flags,
		     uint64_t task_id, uint32_t payload_len);

/* Drop the outstanding reservation. */
void tier_prod_abort(struct tier_prod *p);

/* Make every committed record visible with one release store, then ring the
 * consumer's doorbell only if it said it is sleeping. Before publishing it
 * checks the consumer's head (one load), so a corrupt head is found on the
 * next publish even while the ring has room. Returns 1 if a wake syscall was
 * made, 0 if not, -errno if the wake failed, -TIER_E_HEAD_* or
 * -TIER_E_MISALIGNED (sticky) for a corrupt head: nothing is published. */
int tier_prod_publish(struct tier_prod *p);

/* Reserve + copy + commit in one call (no publish). */
int tier_prod_write(struct tier_prod *p, uint16_t type, uint16_t flags,
		    uint64_t task_id, const void *payload, uint32_t len);

/* eventfd to write when the consumer sleeps on TIER_SLEEP_EVENTFD (-1 none). */
void tier_prod_set_eventfd(struct tier_prod *p, int efd);

/* Ring position after the last committed record (private; no shared load). */
uint64_t tier_prod_tail(const struct tier_prod *p);
/* The consumer is known to have read up to pos (it answered a record that
 * ends there) even if the producer never saw its head get there: a head
 * below pos later is TIER_E_HEAD_BACK. Ignored beyond what was published. */
void tier_prod_head_floor(struct tier_prod *p, uint64_t pos);
/* Bytes free as of the producer's last look at the head (no shared load). */
uint64_t tier_prod_free_hint(const struct tier_prod *p);
/* Wake syscalls made by this producer so far. */
uint64_t tier_prod_wakes(const struct tier_prod *p);

/* ---- consumer --------------------------------------------------------- */

struct tier_msg {
	uint64_t    task_id;
	uint16_t    type;
	uint16_t    flags;
	uint32_t    len;      /* payload bytes */
	const void *payload;  /* inside the shared mapping; bounded by len */
};

/* Look at the next record. Returns 1 and fills *m (header copied out and
 * validated; payload left in place), 0 if the ring is empty, or a negative
 * error (sticky) if the producer broke the protocol. Skips padding. The
 * payload may change under the reader: copy it out before trusting it. */
int tier_cons_peek(struct tier_cons *c, struct tier_msg *m);

/* Consume the record returned by the last peek (private; see release). */
void tier_cons_advance(struct tier_cons *c);

/* Publish the consumed position to the producer (one release store). */
void tier_cons_release(struct tier_cons *c);

/* peek + copy the payload into buf (up to cap bytes; -EMSGSIZE if larger,
 * record left unread) + advance. m->payload points at buf. */
int tier_cons_read(struct tier_cons *c, struct tier_msg *m, void *buf, size_t cap);

/* Sleep protocol. prepare: set the sleeping flag (kind), full fence, look
 * again. Returns 0 if the caller may sleep (and *ret_bell holds the futex
 * value to wait on), 1 if records arrived meanwhile (flag cleared), or a
 * negative error. After waking, call tier_cons_awake(). */
int  tier_cons_prepare_sleep(struct tier_cons *c, uint32_t kind, uint32_t *ret_bell);
void tier_cons_awake(struct tier_cons *c);

/* Block until a record is available: spin for spin_ns, then sleep on the
 * futex doorbell. timeout_ns < 0 waits forever. Returns 1 when a record is
 * ready, 0 on timeout, negative on error (-EINTR passes through). */
int tier_cons_wait(struct tier_cons *c, int64_t spin_ns, int64_t timeout_ns);

/* True if records are visible right now (one acquire load at most). */
int tier_cons_pending(struct tier_cons *c);

#ifdef __cplusplus
}
#endif
#endif
