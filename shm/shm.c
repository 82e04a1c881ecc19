/* SPDX-License-Identifier: MIT */
/* The shared region: a sealed memfd holding the header and both rings. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm_internal.h"

#define SHM_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

_Static_assert(sizeof(struct tier_shm_hdr) <= TIER_SHM_LINE, "header fits a line");
_Static_assert(sizeof(struct tier_ring_ctl) == 3 * TIER_SHM_LINE, "ctl is three lines");
_Static_assert(sizeof(struct tier_rec_hdr) == 16, "record header is 16 bytes");

static const char *const shm_errs[TIER_E_MAX - TIER_E_BASE] = {
	[0]                                  = "unknown ring error",
	[TIER_E_MAGIC - TIER_E_BASE]         = "ring header has a bad magic",
	[TIER_E_VERSION - TIER_E_BASE]       = "ring layout version not supported",
	[TIER_E_GEOMETRY - TIER_E_BASE]      = "ring geometry invalid",
	[TIER_E_UNSEALED - TIER_E_BASE]      = "ring memfd is not sealed (needs SHRINK|GROW|SEAL)",
	[TIER_E_TOOSMALL - TIER_E_BASE]      = "ring memfd smaller than its declared geometry",
	[TIER_E_TAIL_BEHIND - TIER_E_BASE]   = "ring tail behind head",
	[TIER_E_TAIL_OVERRUN - TIER_E_BASE]  = "ring tail more than a capacity past head",
	[TIER_E_HEAD_PAST - TIER_E_BASE]     = "ring head past tail",
	[TIER_E_HEAD_BACK - TIER_E_BASE]     = "ring head moved backwards",
	[TIER_E_MISALIGNED - TIER_E_BASE]    = "ring index or record misaligned",
	[TIER_E_REC_LEN - TIER_E_BASE]       = "ring record length invalid",
	[TIER_E_REC_WRAP - TIER_E_BASE]      = "ring record crosses the wrap",
	[TIER_E_REC_SIZE - TIER_E_BASE]      = "ring record larger than max_record",
	[TIER_E_PADDING - TIER_E_BASE]       = "ring padding record invalid",
};

const char *tier_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err > TIER_E_BASE && err < TIER_E_MAX)
		return shm_errs[err - TIER_E_BASE];
	if (err == 0)
		return "success";
	return strerror(err);
}

static int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Geometry rules shared by create and attach. */
static int shm_geo_valid(const struct tier_shm_hdr *h)
{
	uint64_t sq_end = (uint64_t)h->sq_offset + h->sq_capacity;
	uint64_t cq_end = (uint64_t)h->cq_offset + h->cq_capacity;
	uint32_t min_cap = h->sq_capacity < h->cq_capacity ? h->sq_capacity : h->cq_capacity;

	if (!is_pow2(h->sq_capacity) || !is_pow2(h->cq_capacity))
		return 0;
	if (h->sq_capacity < TIER_RING_MIN_CAP || h->cq_capacity < TIER_RING_MIN_CAP ||
	    h->sq_capacity > TIER_RING_MAX_CAP || h->cq_capacity > TIER_RING_MAX_CAP)
		return 0;
	/* A record larger than half a ring could need more than the whole ring
	 * once a padding record is added in front of it. */
	if (h->max_record < TIER_REC_MIN_MAX || h->max_record > min_cap / 2 || h->max_record % 8)
		return 0;
	if (h->sq_offset < TIER_SHM_DATA_MIN || h->cq_offset < TIER_SHM_DATA_MIN ||
	    h->sq_offset % TIER_SHM_LINE || h->cq_offset % TIER_SHM_LINE)
		return 0;
	/* The two data areas must not overlap each other. */
	if (!(sq_end <= h->cq_offset || cq_end <= h->sq_offset))
		return 0;
	if (sq_end > h->total_size || cq_end > h->total_size)
		return 0;
	if (h->hdr_size != TIER_SHM_LINE)
		return 0;
	return 1;
}

void shm_bind(struct tier_shm *shm, const struct tier_shm_hdr *h, int creator)
{
	struct shm_ring_geo sq = {
		.data = shm->base + h->sq_offset,
		.ctl = (struct tier_ring_ctl *)(shm->base + TIER_SHM_SQ_CTL),
		.cap = h->sq_capacity,
		.mask = (uint64_t)h->sq_capacity - 1,
		.max_record = h->max_record,
	};
	struct shm_ring_geo cq = {
		.data = shm->base + h->cq_offset,
		.ctl = (struct tier_ring_ctl *)(shm->base + TIER_SHM_CQ_CTL),
		.cap = h->cq_capacity,
		.mask = (uint64_t)h->cq_capacity - 1,
		.max_record = h->max_record,
	};

	shm_prod_init(&shm->prod, creator ? &sq : &cq);
	shm_cons_init(&shm->cons, creator ? &cq : &sq);
}

struct tier_shm *tier_shm_create(const struct tier_shm_opts *opts)
{
	struct tier_shm_hdr h = {
		.magic = TIER_SHM_MAGIC,
		.version = TIER_SHM_VERSION,
		.hdr_size = TIER_SHM_LINE,
		.sq_capacity = TIER_RING_DEFAULT_CAP,
		.cq_capacity = TIER_RING_DEFAULT_CAP,
		.max_record = TIER_RING_DEFAULT_MAX_REC,
	};
	long page = sysconf(_SC_PAGESIZE);
	struct tier_shm *shm;
	int err;

	if (opts) {
		if (opts->sz < sizeof(*opts)) {
			errno = EINVAL;
			return NULL;
		}
		if (opts->sq_capacity)
			h.sq_capacity = opts->sq_capacity;
		if (opts->cq_capacity)
			h.cq_capacity = opts->cq_capacity;
		if (opts->max_record)
			h.max_record = opts->max_record;
	}
	/* Defaults must never be invalid with a small ring: shrink the default
	 * max_record to fit when only the capacity was given. */
	if (!(opts && opts->max_record)) {
		uint32_t half = (h.sq_capacity < h.cq_capacity ? h.sq_capacity : h.cq_capacity) / 2;
		if (h.max_record > half)
			h.max_record = half & ~7u;
	}
	/* Data areas start page aligned so each ring's first record is too. */
	h.sq_offset = (uint32_t)page;
	h.cq_offset = h.sq_offset + h.sq_capacity;
	h.total_size = ((uint64_t)h.cq_offset + h.cq_capacity + page - 1) & ~(uint64_t)(page - 1);
	if (h.total_size > UINT32_MAX || !shm_geo_valid(&h)) {
		errno = TIER_E_GEOMETRY;
		return NULL;
	}

	shm = calloc(1, sizeof(*shm));
	if (!shm)
		return NULL;
	shm->fd = memfd_create("tier-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (shm->fd < 0)
		goto err_free;
	shm->owns_fd = 1;
	if (ftruncate(shm->fd, (off_t)h.total_size) < 0)
		goto err_close;
	shm->size = h.total_size;
	shm->base = mmap(NULL, shm->size, PROT_READ | PROT_WRITE, MAP_SHARED, shm->fd, 0);
	if (shm->base == MAP_FAILED)
		goto err_close;
	memcpy(shm->base, &h, sizeof(h));
	if (fcntl(shm->fd, F_ADD_SEALS, SHM_SEALS) < 0)
		goto err_unmap;
	shm_bind(shm, &h, 1);
	return shm;

err_unmap:
	err = errno;
	munmap(shm->base, shm->size);
	errno = err;
err_close:
	err = errno;
	close(shm->fd);
	errno = err;
err_free:
	err = errno;
	free(shm);
	errno = err;
	return NULL;
}

/* A handle on fd mapped shared, size bytes; NULL with errno set. */
static struct tier_shm *shm_map(int fd, uint64_t size)
{
	struct tier_shm *shm = calloc(1, sizeof(*shm));
	void *base;
	int err;

	if (!shm)
		return NULL;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		err = errno;
		free(shm);
		errno = err;
		return NULL;
	}
	shm->base = base;
	shm->size = size;
	shm->fd = fd;
	return shm;
}

struct tier_shm *tier_shm_attach(int fd)
{
	struct tier_shm_hdr h;
	struct tier_shm *shm;
	struct stat st;
	int seals;

	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		/* EINVAL: not a memfd (no sealing support at all). */
		if (errno == EINVAL)
			errno = TIER_E_UNSEALED;
		return NULL;
	}
	if ((seals & SHM_SEALS) != SHM_SEALS) {
		errno = TIER_E_UNSEALED;
		return NULL;
	}
	if (fstat(fd, &st) < 0)
		return NULL;
	if ((uint64_t)st.st_size < TIER_SHM_DATA_MIN) {
		errno = TIER_E_TOOSMALL;
		return NULL;
	}
	/* Read the header once through pread so nothing is mapped before the
	 * geometry has been checked against the file's real size. */
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		if (errno == 0 || errno == EINTR)
			errno = TIER_E_TOOSMALL;
		return NULL;
	}
	if (h.magic != TIER_SHM_MAGIC) {
		errno = TIER_E_MAGIC;
		return NULL;
	}
	if (h.version != TIER_SHM_VERSION) {
		errno = TIER_E_VERSION;
		return NULL;
	}
	if (!shm_geo_valid(&h)) {
		errno = TIER_E_GEOMETRY;
		return NULL;
	}
	if (h.total_size > (uint64_t)st.st_size) {
		errno = TIER_E_TOOSMALL;
		return NULL;
	}

	shm = shm_map(fd, h.total_size);
	if (!shm)
		return NULL;
	shm->owns_fd = 0;
	shm->prod.efd = -1;
	shm_bind(shm, &h, 0);
	return shm;
}

void tier_shm_free(struct tier_shm *shm)
{
	if (!shm)
		return;
	munmap(shm->base, shm->size);
	if (shm->owns_fd)
		close(shm->fd);
	free(shm);
}

int tier_shm_fd(const struct tier_shm *shm)
{
	return shm->fd;
}

size_t tier_shm_size(const struct tier_shm *shm)
{
	return shm->size;
}

uint32_t tier_shm_max_record(const struct tier_shm *shm)
{
	return shm->prod.g.max_record;
}

uint32_t tier_shm_max_payload(const struct tier_shm *shm)
{
	return shm->prod.g.max_record - TIER_REC_HDR_SIZE;
}

struct tier_prod *tier_shm_prod(struct tier_shm *shm)
{
	return &shm->prod;
}

struct tier_cons *tier_shm_cons(struct tier_shm *shm)
{
	return &shm->cons;
}

/* ---- hand-over ------------------------------------------------------------ */

int tier_shm_owner_state(const struct tier_shm *shm, struct tier_shm_owner_state *st)
{
	const struct tier_prod *p = &shm->prod;
	const struct tier_cons *c = &shm->cons;

	if (!shm->owns_fd)
		return -EINVAL;
	if (p->resv_len)
		return -EBUSY;
	*st = (struct tier_shm_owner_state){
		.total_size = shm->size,
		.sq_offset = (uint32_t)(p->g.data - shm->base),
		.cq_offset = (uint32_t)(c->g.data - shm->base),
		.sq_capacity = (uint32_t)p->g.cap,
		.cq_capacity = (uint32_t)c->g.cap,
		.max_record = p->g.max_record,
		.sq_tail = p->tail,
		.sq_published = p->published,
		.sq_head_seen = p->head_cache,
		.sq_head_floor = p->head_floor,
		.sq_wakes = p->wakes,
		.sq_err = p->err,
		.sq_efd = p->efd,
		.cq_head = c->head,
		.cq_released = c->released,
		.cq_tail_seen = c->tail_cache,
		.cq_peek_next = c->peek_next,
		.cq_err = c->err,
	};
	return 0;
}

/* The header the creator wrote for st's geometry. */
static void owner_hdr(const struct tier_shm_owner_state *st, struct tier_shm_hdr *h)
{
	*h = (struct tier_shm_hdr){
		.magic = TIER_SHM_MAGIC,
		.version = TIER_SHM_VERSION,
		.hdr_size = TIER_SHM_LINE,
		.total_size = st->total_size,
		.sq_offset = st->sq_offset,
		.sq_capacity = st->sq_capacity,
		.cq_offset = st->cq_offset,
		.cq_capacity = st->cq_capacity,
		.max_record = st->max_record,
	};
}

/* The private indices as the ring code leaves them: aligned, published
 * behind written, what was seen of the peer within one capacity. */
static int owner_state_valid(const struct tier_shm_owner_state *st)
{
	uint64_t any = st->sq_tail | st->sq_published | st->sq_head_seen | st->sq_head_floor |
		       st->cq_head | st->cq_released | st->cq_tail_seen | st->cq_peek_next;

	if (any & 7)
		return 0;
	if (st->sq_published > st->sq_tail || st->sq_head_seen > st->sq_published ||
	    st->sq_head_floor > st->sq_published || st->sq_tail - st->sq_head_seen > st->sq_capacity)
		return 0;
	if (st->cq_released > st->cq_head || st->cq_head > st->cq_tail_seen ||
	    st->cq_tail_seen - st->cq_head > st->cq_capacity)
		return 0;
	if (st->cq_peek_next && (st->cq_peek_next <= st->cq_head ||
				 st->cq_peek_next > st->cq_tail_seen))
		return 0;
	return st->sq_err <= 0 && st->cq_err <= 0 && st->sq_efd >= -1;
}

struct tier_shm *tier_shm_adopt(int fd, const struct tier_shm_owner_state *st)
{
	struct tier_shm_hdr want, h;
	struct tier_shm *shm;
	struct stat sb;
	int seals;

	owner_hdr(st, &want);
	if (!shm_geo_valid(&want) || !owner_state_valid(st)) {
		errno = EINVAL;
		return NULL;
	}
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & SHM_SEALS) != SHM_SEALS) {
		errno = seals < 0 && errno != EINVAL ? errno : TIER_E_UNSEALED;
		return NULL;
	}
	if (fstat(fd, &sb) < 0)
		return NULL;
	if ((uint64_t)sb.st_size != st->total_size) {
		errno = (uint64_t)sb.st_size < st->total_size ? TIER_E_TOOSMALL : TIER_E_GEOMETRY;
		return NULL;
	}
	/* The agent can write the header: it must still be the one we wrote,
	 * byte for byte, though nothing below reads it again. */
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(&h, &want, sizeof(h))) {
		errno = TIER_E_GEOMETRY;
		return NULL;
	}
	shm = shm_map(fd, st->total_size);
	if (!shm)
		return NULL;
	shm->owns_fd = 1;
	shm_bind(shm, &want, 1);
	shm->prod.tail = st->sq_tail;
	shm->prod.published = st->sq_published;
	shm->prod.head_cache = st->sq_head_seen;
	shm->prod.head_floor = st->sq_head_floor;
	shm->prod.wakes = st->sq_wakes;
	shm->prod.err = st->sq_err;
	shm->prod.efd = st->sq_efd;
	shm->cons.head = st->cq_head;
	shm->cons.released = st->cq_released;
	shm->cons.tail_cache = st->cq_tail_seen;
	shm->cons.peek_next = st->cq_peek_next;
	shm->cons.err = st->cq_err;
	return shm;
}
