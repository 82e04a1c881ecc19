/* SPDX-License-Identifier: MIT */
/* Private to shm/: handle layouts and the memory-ordering macros. */
#ifndef SHM_INTERNAL_H
#define SHM_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "tier/ring.h"

/*
 * Every access to memory the peer can write goes through these macros, so
 * the ordering of each one is stated where it is used and a fuzz build can
 * change shared memory between any two loads (double-fetch detection).
 *
 * SHM_LOAD_ACQUIRE: reading the peer's published index. Acquire pairs with
 *   the peer's SHM_STORE_RELEASE of that index, so everything the peer wrote
 *   before publishing (record bytes, or the consumer's reads of the slots it
 *   frees) is visible/complete once we see the index.
 * SHM_LOAD_RELAXED: a value whose ordering is given by a fence next to it.
 * SHM_STORE_RELEASE: publishing our index; release orders our record writes
 *   (producer) or our record reads (consumer) before the index store.
 * SHM_FENCE_FULL: StoreLoad barrier of the sleep protocol (Dekker pattern):
 *   producer "store tail; fence; load sleeping" against consumer "store
 *   sleeping; fence; load tail" — without it both could miss each other and
 *   the consumer would sleep on a non-empty ring.
 * SHM_COPY_IN: copying bytes out of shared memory before they are validated.
 */
#ifdef SHM_FUZZ_LOADS
/* Provided by the fuzz target: overwrite n bytes at p from fuzz input. */
void shm_fuzz_mutate(volatile void *p, size_t n);
#define SHM_LOAD_ACQUIRE(p) \
	(shm_fuzz_mutate((p), sizeof(*(p))), __atomic_load_n((p), __ATOMIC_ACQUIRE))
#define SHM_LOAD_RELAXED(p) \
	(shm_fuzz_mutate((p), sizeof(*(p))), __atomic_load_n((p), __ATOMIC_RELAXED))
#define SHM_COPY_IN(dst, src, n) \
	(shm_fuzz_mutate((void *)(src), (n)), memcpy((dst), (const void *)(src), (n)))
#else
#define SHM_LOAD_ACQUIRE(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define SHM_LOAD_RELAXED(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define SHM_COPY_IN(dst, src, n) memcpy((dst), (const void *)(src), (n))
#endif
#define SHM_STORE_RELEASE(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define SHM_STORE_RELAXED(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define SHM_FENCE_FULL()         __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* The producer takes the sleeping flag back with an exchange so that one
 * sleep costs at most one wake syscall even if it publishes many times
 * before the consumer runs. */
#define SHM_XCHG(p, v)           __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)

static inline void shm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Private view of one ring, shared by producer and consumer handles. */
struct shm_ring_geo {
	uint8_t              *data;      /* start of the data area */
	struct tier_ring_ctl *ctl;
	uint64_t              cap;       /* power of two */
	uint64_t              mask;
	uint32_t              max_record;
};

struct tier_prod {
	struct shm_ring_geo g;
	uint64_t tail;          /* next byte to write (private) */
	uint64_t published;     /* last tail stored to shared memory */
	uint64_t head_cache;    /* last validated head of the consumer */
	uint64_t head_floor;    /* the consumer is known to have read this far */
	uint64_t resv_pos;      /* position of the outstanding reservation */
	uint32_t resv_len;      /* its record length, 0 if none */
	int      err;           /* sticky protocol error */
	int      efd;
	uint64_t wakes;
};

struct tier_cons {
	struct shm_ring_geo g;
	uint64_t head;          /* next byte to read (private) */
	uint64_t released;      /* last head stored to shared memory */
	uint64_t tail_cache;    /* last validated tail of the producer */
	uint64_t peek_next;     /* head after the peeked record, 0 if none */
	int      err;           /* sticky protocol error */
};

struct tier_shm {
	uint8_t         *base;
	size_t           size;
	int              fd;
	int              owns_fd;
	struct tier_prod prod;
	struct tier_cons cons;
};

/* Point shm's producer and consumer at the rings h describes inside
 * shm->base (creator: produce SQ, consume CQ). h must have been validated. */
void shm_bind(struct tier_shm *shm, const struct tier_shm_hdr *h, int creator);
void shm_prod_init(struct tier_prod *p, const struct shm_ring_geo *g);
void shm_cons_init(struct tier_cons *c, const struct shm_ring_geo *g);

#endif
