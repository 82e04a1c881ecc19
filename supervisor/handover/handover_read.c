/* SPDX-License-Identifier: MIT */
/* handover: the reader. The whole state is checked in sup_ho_r_open before
 * the caller reads a value; every read after is bounds-checked against the
 * entered section. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"

#define SEALS_NEEDED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

struct r_sect {
	uint32_t tag, version;
	size_t off, len;	/* of the section's bytes, in the mapping */
};

struct sup_ho_r {
	int memfd;
	const unsigned char *map;
	size_t size;
	const struct sup_ho_fdent *tab;	/* unaligned-safe: read with memcpy */
	uint32_t nfds;
	bool *claimed;
	struct r_sect *sects;
	size_t nsects;
	const struct r_sect *cur;	/* entered section, or NULL */
	size_t pos;			/* absolute offset inside cur */
	bool committed;
	char err[256];
};

static void sect_label(const struct r_sect *s, char *buf, size_t cap)
{
	const char *name = sup_ho_tag_name(s->tag);

	if (name)
		snprintf(buf, cap, "section '%s' v%u", name, s->version);
	else
		snprintf(buf, cap, "section %08x v%u", s->tag, s->version);
}

static void r_vfail(struct sup_ho_r *r, const char *fmt, va_list ap)
{
	char label[64];
	size_t n = 0;

	if (r->err[0])
		return;
	if (r->cur) {
		sect_label(r->cur, label, sizeof(label));
		n = (size_t)snprintf(r->err, sizeof(r->err), "%s: ", label);
	}
	vsnprintf(r->err + n, sizeof(r->err) - n, fmt, ap);
	if (!r->err[0])
		snprintf(r->err, sizeof(r->err), "error");
}

void sup_ho_r_fail(struct sup_ho_r *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r_vfail(r, fmt, ap);
	va_end(ap);
}

bool sup_ho_r_ok(const struct sup_ho_r *r)
{
	return !r->err[0];
}

const char *sup_ho_r_error(const struct sup_ho_r *r)
{
	return r->err;
}

static void fdent(const struct sup_ho_r *r, uint32_t i, struct sup_ho_fdent *e)
{
	memcpy(e, (const unsigned char *)r->tab + (size_t)i * sizeof(*e), sizeof(*e));
}

/* The section list, walked once: each header and length inside the state,
 * and the last one ending exactly at its end. */
static int index_sections(struct sup_ho_r *r, size_t off, char *err, size_t errlen)
{
	size_t cap = 0;

	while (off < r->size) {
		struct sup_ho_sect s;
		struct r_sect *rs;

		if (r->size - off < sizeof(s)) {
			snprintf(err, errlen, "handover state: truncated section header at offset %zu "
				 "(%zu of %zu bytes)", off, r->size - off, sizeof(s));
			return -EINVAL;
		}
		memcpy(&s, r->map + off, sizeof(s));
		off += sizeof(s);
		if (s.len > r->size - off) {
			snprintf(err, errlen, "handover state: section %08x at offset %zu says %llu "
				 "bytes, %zu are left", s.tag, off - sizeof(s),
				 (unsigned long long)s.len, r->size - off);
			return -EINVAL;
		}
		if (r->nsects == cap) {
			cap = cap ? cap * 2 : 16;
			rs = realloc(r->sects, cap * sizeof(*rs));
			if (!rs) {
				snprintf(err, errlen, "handover state: out of memory");
				return -ENOMEM;
			}
			r->sects = rs;
		}
		r->sects[r->nsects++] = (struct r_sect){ .tag = s.tag, .version = s.version,
							 .off = off, .len = (size_t)s.len };
		off += (size_t)s.len;
	}
	return 0;
}

static int check_header(struct sup_ho_r *r, struct sup_ho_hdr *h, char *err, size_t errlen)
{
	uLong crc;

	if (r->size < sizeof(*h)) {
		snprintf(err, errlen, "handover state: %zu bytes, shorter than its %zu-byte header",
			 r->size, sizeof(*h));
		return -EINVAL;
	}
	memcpy(h, r->map, sizeof(*h));
	if (memcmp(h->magic, SUP_HO_MAGIC, sizeof(h->magic)) != 0) {
		snprintf(err, errlen, "handover state: bad magic (not a tierd state)");
		return -EINVAL;
	}
	if (h->format != SUP_HO_FORMAT) {
		snprintf(err, errlen, "handover state: format %u, this binary reads only format %u",
			 h->format, (unsigned)SUP_HO_FORMAT);
		return -EPROTO;
	}
	if (h->hdr_size != sizeof(*h)) {
		snprintf(err, errlen, "handover state: header of %u bytes, format %u has %zu",
			 h->hdr_size, (unsigned)SUP_HO_FORMAT, sizeof(*h));
		return -EINVAL;
	}
	if (h->total_size != r->size) {
		snprintf(err, errlen, "handover state: header says %llu bytes, the memfd holds %zu",
			 (unsigned long long)h->total_size, r->size);
		return -EINVAL;
	}
	if (h->nfds > (r->size - sizeof(*h)) / sizeof(struct sup_ho_fdent)) {
		snprintf(err, errlen, "handover state: %u fds do not fit in %zu bytes",
			 h->nfds, r->size - sizeof(*h));
		return -EINVAL;
	}
	crc = crc32_z(crc32(0L, Z_NULL, 0), r->map + sizeof(*h), r->size - sizeof(*h));
	if ((uint32_t)crc != h->crc) {
		snprintf(err, errlen, "handover state: crc mismatch (stored %08x, computed %08x)",
			 h->crc, (uint32_t)crc);
		return -EINVAL;
	}
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* No fd twice: sorted, in O(n log n), as the table may hold thousands. */
static int check_dups(struct sup_ho_r *r, char *err, size_t errlen)
{
	int *v = malloc((r->nfds ? r->nfds : 1) * sizeof(*v));
	int rc = 0;

	if (!v) {
		snprintf(err, errlen, "handover state: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < r->nfds; i++) {
		struct sup_ho_fdent e;

		fdent(r, i, &e);
		v[i] = e.fd;
	}
	qsort(v, r->nfds, sizeof(*v), cmp_int);
	for (uint32_t i = 1; i < r->nfds; i++)
		if (v[i] == v[i - 1]) {
			snprintf(err, errlen, "handover state: fd %d is in the table twice", v[i]);
			rc = -EINVAL;
			break;
		}
	free(v);
	return rc;
}

static int check_fds(struct sup_ho_r *r, char *err, size_t errlen)
{
	char why[200];
	int rc;

	for (uint32_t i = 0; i < r->nfds; i++) {
		struct sup_ho_fdent e;

		fdent(r, i, &e);
		if (e.fd < 0 || e.fd == r->memfd) {
			snprintf(err, errlen, "handover state: fd table entry %u: fd %d is %s", i, e.fd,
				 e.fd < 0 ? "negative" : "the state memfd itself");
			return -EINVAL;
		}
		rc = sup_ho_fd_check(e.fd, e.kind, e.dev, e.ino, why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "handover state: fd table entry %u: %s", i, why);
			return rc;
		}
	}
	return check_dups(r, err, errlen);
}

struct sup_ho_r *sup_ho_r_open(int memfd, char *err, size_t errlen)
{
	struct sup_ho_r *r;
	struct sup_ho_hdr h;
	struct stat st;
	void *map;
	int seals, rc;

	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0) {
		rc = -errno;
		snprintf(err, errlen, "handover state: fd %d is not a sealable memfd: %s", memfd,
			 strerror(-rc));
		goto fail;
	}
	if ((seals & SEALS_NEEDED) != SEALS_NEEDED) {
		snprintf(err, errlen, "handover state: memfd seals %#x, expected %#x", seals,
			 SEALS_NEEDED);
		rc = -EINVAL;
		goto fail;
	}
	if (fstat(memfd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "handover state: fstat: %s", strerror(-rc));
		goto fail;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		snprintf(err, errlen, "handover state: out of memory");
		goto fail;
	}
	r->memfd = memfd;
	r->size = (size_t)st.st_size;
	if (r->size) {
		map = mmap(NULL, r->size, PROT_READ, MAP_SHARED, memfd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			snprintf(err, errlen, "handover state: mapping %zu bytes: %s", r->size,
				 strerror(-rc));
			goto free_r;
		}
		r->map = map;
	}
	rc = check_header(r, &h, err, errlen);
	if (rc < 0)
		goto free_r;
	r->nfds = h.nfds;
	r->tab = (const struct sup_ho_fdent *)(r->map + sizeof(h));
	rc = index_sections(r, sizeof(h) + (size_t)h.nfds * sizeof(struct sup_ho_fdent), err, errlen);
	if (rc < 0)
		goto free_r;
	rc = check_fds(r, err, errlen);
	if (rc < 0)
		goto free_r;
	r->claimed = calloc(r->nfds ? r->nfds : 1, sizeof(*r->claimed));
	if (!r->claimed) {
		rc = -ENOMEM;
		snprintf(err, errlen, "handover state: out of memory");
		goto free_r;
	}
	return r;
free_r:
	sup_ho_r_free(r);
fail:
	errno = -rc;
	return NULL;
}

static bool enter(struct sup_ho_r *r, const struct r_sect *s, uint32_t *version)
{
	r->cur = s;
	r->pos = s->off;
	if (version)
		*version = s->version;
	return true;
}

bool sup_ho_r_section(struct sup_ho_r *r, uint32_t tag, uint32_t *version)
{
	if (r->err[0])
		return false;
	for (size_t i = 0; i < r->nsects; i++)
		if (r->sects[i].tag == tag)
			return enter(r, &r->sects[i], version);
	return false;
}

bool sup_ho_r_next_section(struct sup_ho_r *r, size_t *it, uint32_t *tag, uint32_t *version)
{
	if (r->err[0] || *it >= r->nsects)
		return false;
	*tag = r->sects[*it].tag;
	return enter(r, &r->sects[(*it)++], version);
}

size_t sup_ho_r_left(const struct sup_ho_r *r)
{
	return r->cur ? r->cur->off + r->cur->len - r->pos : 0;
}

/* n bytes of the entered section, or NULL with the error set. */
static const void *take(struct sup_ho_r *r, size_t n, const char *what)
{
	const void *p;

	if (r->err[0])
		return NULL;
	if (!r->cur) {
		sup_ho_r_fail(r, "reading %s outside any section", what);
		return NULL;
	}
	if (sup_ho_r_left(r) < n) {
		sup_ho_r_fail(r, "truncated at offset %zu reading %s (%zu bytes left)",
			      r->pos - r->cur->off, what, sup_ho_r_left(r));
		return NULL;
	}
	p = r->map + r->pos;
	r->pos += n;
	return p;
}

#define R_SCALAR(name, T, what)						\
bool sup_ho_r_##name(struct sup_ho_r *r, T *v)				\
{									\
	const void *p = take(r, sizeof(T), what);			\
									\
	if (!p) {							\
		memset(v, 0, sizeof(*v));				\
		return false;						\
	}								\
	memcpy(v, p, sizeof(T));					\
	return true;							\
}
R_SCALAR(u8, uint8_t, "a u8")
R_SCALAR(u16, uint16_t, "a u16")
R_SCALAR(u32, uint32_t, "a u32")
R_SCALAR(u64, uint64_t, "a u64")
R_SCALAR(i64, int64_t, "an i64")
R_SCALAR(f64, double, "an f64")

bool sup_ho_r_bytes(struct sup_ho_r *r, const void **p, uint32_t *len, uint32_t max)
{
	uint32_t n;

	*p = NULL;
	*len = 0;
	if (!sup_ho_r_u32(r, &n))
		return false;
	if (n > max) {
		sup_ho_r_fail(r, "a %u-byte value at offset %zu, at most %u allowed", n,
			      r->pos - 4 - r->cur->off, max);
		return false;
	}
	*p = take(r, n, "bytes");
	if (!*p)
		return false;
	*len = n;
	return true;
}

/* The string's bytes (not terminated) or NULL for a NULL written; *ok false
 * on an error. */
static const char *r_strbytes(struct sup_ho_r *r, uint32_t *len, size_t max, bool *ok)
{
	const char *p;
	uint32_t n;

	*ok = false;
	*len = 0;
	if (!sup_ho_r_u32(r, &n))
		return NULL;
	if (n == SUP_HO_STR_NULL) {
		*ok = true;
		return NULL;
	}
	if (n > max) {
		sup_ho_r_fail(r, "a %u-byte string at offset %zu, at most %zu allowed", n,
			      r->pos - 4 - r->cur->off, max);
		return NULL;
	}
	p = take(r, n, "a string");
	if (!p)
		return NULL;
	if (memchr(p, '\0', n)) {
		sup_ho_r_fail(r, "a string at offset %zu with a NUL inside", r->pos - n - r->cur->off);
		return NULL;
	}
	*len = n;
	*ok = true;
	return p;
}

bool sup_ho_r_str(struct sup_ho_r *r, char *buf, size_t cap)
{
	uint32_t n;
	bool ok;
	const char *p = r_strbytes(r, &n, cap ? cap - 1 : 0, &ok);

	if (cap)
		buf[0] = '\0';
	if (!ok || !cap)
		return ok && cap;
	if (p) {
		memcpy(buf, p, n);
		buf[n] = '\0';
	}
	return true;
}

bool sup_ho_r_strdup(struct sup_ho_r *r, char **s, size_t max)
{
	uint32_t n;
	bool ok;
	const char *p = r_strbytes(r, &n, max, &ok);

	*s = NULL;
	if (!ok || !p)
		return ok;
	*s = strndup(p, n);
	if (!*s) {
		sup_ho_r_fail(r, "out of memory for a %u-byte string", n);
		return false;
	}
	return true;
}

bool sup_ho_r_fd(struct sup_ho_r *r, enum sup_ho_fd_kind kind, int *fd)
{
	struct sup_ho_fdent e;
	uint32_t idx;

	*fd = -1;
	if (!sup_ho_r_u32(r, &idx))
		return false;
	if (idx == SUP_HO_FD_NONE)
		return true;
	if (idx >= r->nfds) {
		sup_ho_r_fail(r, "fd reference %u at offset %zu, the table has %u", idx,
			      r->pos - 4 - r->cur->off, r->nfds);
		return false;
	}
	fdent(r, idx, &e);
	if (e.kind != (uint32_t)kind) {
		sup_ho_r_fail(r, "fd %d at offset %zu is a %s, expected a %s", e.fd,
			      r->pos - 4 - r->cur->off, sup_ho_fd_kind_name(e.kind),
			      sup_ho_fd_kind_name(kind));
		return false;
	}
	r->claimed[idx] = true;
	*fd = e.fd;
	return true;
}

void sup_ho_r_commit(struct sup_ho_r *r)
{
	if (r->committed)
		return;
	for (uint32_t i = 0; i < r->nfds; i++) {
		struct sup_ho_fdent e;
		int fl;

		fdent(r, i, &e);
		if (!r->claimed[i]) {
			close(e.fd);
			continue;
		}
		fl = fcntl(e.fd, F_GETFD);
		if (fl >= 0)
			fcntl(e.fd, F_SETFD, fl | FD_CLOEXEC);
	}
	close(r->memfd);
	r->committed = true;
}

void sup_ho_r_free(struct sup_ho_r *r)
{
	if (!r)
		return;
	if (r->map)
		munmap((void *)r->map, r->size);
	free(r->claimed);
	free(r->sects);
	free(r);
}
