/* SPDX-License-Identifier: MIT */
/* handover: the writer, into a growable buffer and then one sealed memfd. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"

struct w_fd {
	int fd;
	uint32_t kind;
	uint64_t dev, ino;
	int flags;		/* F_GETFD before finish, for abort */
};

struct sup_ho_w {
	unsigned char *buf;	/* sections only; header and table are added at finish */
	size_t len, cap;
	size_t open;		/* offset of the open section's header, or SIZE_MAX */
	struct w_fd *fds;
	uint32_t nfds, fdcap;
	/* fd number -> table index + 1 (0: not in the table), grown on demand */
	uint32_t *byfd;
	size_t byfd_len;
	bool finished;
	int err;		/* sticky -errno */
	char why[200];
};

static const struct {
	uint32_t tag;
	const char *name;
} tag_names[] = {
	{ SUP_HO_TAG_DAEMON, "daemon" },	{ SUP_HO_TAG_AGENTS, "agents" },
	{ SUP_HO_TAG_TASKS, "tasks" },		{ SUP_HO_TAG_WORKFLOWS, "workflows" },
	{ SUP_HO_TAG_ALLOCATOR, "allocator" },	{ SUP_HO_TAG_EVENTS, "events" },
	{ SUP_HO_TAG_WAL, "wal" },		{ SUP_HO_TAG_ACCT, "acct" },
	{ SUP_HO_TAG_CTL, "ctl" },		{ SUP_HO_TAG_METRICS, "metrics" },
};

const char *sup_ho_tag_name(uint32_t tag)
{
	for (size_t i = 0; i < sizeof(tag_names) / sizeof(tag_names[0]); i++)
		if (tag_names[i].tag == tag)
			return tag_names[i].name;
	return NULL;
}

__attribute__((format(printf, 3, 4)))
static void w_fail(struct sup_ho_w *w, int err, const char *fmt, ...)
{
	va_list ap;

	if (w->err)
		return;
	w->err = err;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
}

struct sup_ho_w *sup_ho_w_new(void)
{
	struct sup_ho_w *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->open = SIZE_MAX;
	return w;
}

static bool w_reserve(struct sup_ho_w *w, size_t n)
{
	size_t cap;
	unsigned char *p;

	if (w->err)
		return false;
	if (w->len + n <= w->cap)
		return true;
	cap = w->cap ? w->cap : 4096;
	while (cap < w->len + n)
		cap *= 2;
	p = realloc(w->buf, cap);
	if (!p) {
		w_fail(w, -ENOMEM, "out of memory growing the state to %zu bytes", cap);
		return false;
	}
	w->buf = p;
	w->cap = cap;
	return true;
}

static void w_put(struct sup_ho_w *w, const void *p, size_t n)
{
	if (w->open == SIZE_MAX) {
		w_fail(w, -EINVAL, "a value written outside any section");
		return;
	}
	if (!w_reserve(w, n))
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void sup_ho_w_begin(struct sup_ho_w *w, uint32_t tag, uint32_t version)
{
	struct sup_ho_sect s = { .tag = tag, .version = version };

	if (w->open != SIZE_MAX) {
		w_fail(w, -EINVAL, "section %08x begun inside another one", tag);
		return;
	}
	if (!w_reserve(w, sizeof(s)))
		return;
	w->open = w->len;
	memcpy(w->buf + w->len, &s, sizeof(s));
	w->len += sizeof(s);
}

void sup_ho_w_end(struct sup_ho_w *w)
{
	uint64_t len;

	if (w->open == SIZE_MAX) {
		w_fail(w, -EINVAL, "a section ended that was not begun");
		return;
	}
	if (!w->err) {
		len = w->len - w->open - sizeof(struct sup_ho_sect);
		memcpy(w->buf + w->open + offsetof(struct sup_ho_sect, len), &len, sizeof(len));
	}
	w->open = SIZE_MAX;
}

void sup_ho_w_u8(struct sup_ho_w *w, uint8_t v) { w_put(w, &v, sizeof(v)); }
void sup_ho_w_u16(struct sup_ho_w *w, uint16_t v) { w_put(w, &v, sizeof(v)); }
void sup_ho_w_u32(struct sup_ho_w *w, uint32_t v) { w_put(w, &v, sizeof(v)); }
void sup_ho_w_u64(struct sup_ho_w *w, uint64_t v) { w_put(w, &v, sizeof(v)); }
void sup_ho_w_i64(struct sup_ho_w *w, int64_t v) { w_put(w, &v, sizeof(v)); }
void sup_ho_w_f64(struct sup_ho_w *w, double v) { w_put(w, &v, sizeof(v)); }

void sup_ho_w_bytes(struct sup_ho_w *w, const void *p, size_t n)
{
	uint32_t len = (uint32_t)n;

	if (n >= SUP_HO_STR_NULL) {
		w_fail(w, -EOVERFLOW, "a %zu-byte value (limit 4 GiB)", n);
		return;
	}
	w_put(w, &len, sizeof(len));
	if (n)
		w_put(w, p, n);
}

void sup_ho_w_str(struct sup_ho_w *w, const char *s)
{
	if (!s)
		sup_ho_w_u32(w, SUP_HO_STR_NULL);
	else
		sup_ho_w_bytes(w, s, strlen(s));
}

static bool w_grow_byfd(struct sup_ho_w *w, int fd)
{
	size_t n = w->byfd_len ? w->byfd_len : 64;
	uint32_t *p;

	while (n <= (size_t)fd)
		n *= 2;
	p = realloc(w->byfd, n * sizeof(*p));
	if (!p) {
		w_fail(w, -ENOMEM, "out of memory for the fd table");
		return false;
	}
	memset(p + w->byfd_len, 0, (n - w->byfd_len) * sizeof(*p));
	w->byfd = p;
	w->byfd_len = n;
	return true;
}

void sup_ho_w_fd(struct sup_ho_w *w, int fd, enum sup_ho_fd_kind kind)
{
	struct stat st;
	struct w_fd *e;
	uint32_t idx;

	if (w->err)
		return;
	if (fd < 0) {
		sup_ho_w_u32(w, SUP_HO_FD_NONE);
		return;
	}
	if ((unsigned)kind == 0 || kind >= SUP_HO_FD_KIND_END) {
		w_fail(w, -EINVAL, "fd %d written with unknown kind %u", fd, (unsigned)kind);
		return;
	}
	if ((size_t)fd >= w->byfd_len && !w_grow_byfd(w, fd))
		return;
	if (w->byfd[fd]) {
		idx = w->byfd[fd] - 1;
		if (w->fds[idx].kind != (uint32_t)kind)
			w_fail(w, -EINVAL, "fd %d written as a %s and as a %s", fd,
			       sup_ho_fd_kind_name(w->fds[idx].kind), sup_ho_fd_kind_name(kind));
		sup_ho_w_u32(w, idx);
		return;
	}
	if (fstat(fd, &st) < 0) {
		w_fail(w, -errno, "fd %d (%s): %m", fd, sup_ho_fd_kind_name(kind));
		return;
	}
	if (w->nfds == w->fdcap) {
		uint32_t cap = w->fdcap ? w->fdcap * 2 : 64;
		struct w_fd *p = realloc(w->fds, cap * sizeof(*p));

		if (!p) {
			w_fail(w, -ENOMEM, "out of memory for the fd table");
			return;
		}
		w->fds = p;
		w->fdcap = cap;
	}
	e = &w->fds[w->nfds];
	*e = (struct w_fd){ .fd = fd, .kind = kind, .dev = st.st_dev, .ino = st.st_ino, .flags = -1 };
	w->byfd[fd] = ++w->nfds;
	sup_ho_w_u32(w, w->nfds - 1);
}

size_t sup_ho_w_size(const struct sup_ho_w *w)
{
	return w->len;
}

/* Put every table fd's flags back as they were (those changed so far). */
static void w_restore_flags(struct sup_ho_w *w)
{
	for (uint32_t i = 0; i < w->nfds; i++)
		if (w->fds[i].flags >= 0)
			fcntl(w->fds[i].fd, F_SETFD, w->fds[i].flags);
}

/* pwritev until all of iov is out. */
static int write_all(int fd, struct iovec *iov, int n)
{
	off_t off = 0;

	while (n > 0) {
		ssize_t k = pwritev(fd, iov, n, off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += k;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int w_write_memfd(struct sup_ho_w *w, int *ret_fd)
{
	struct sup_ho_hdr h = { .format = SUP_HO_FORMAT, .hdr_size = sizeof(h), .nfds = w->nfds };
	size_t tab = (size_t)w->nfds * sizeof(struct sup_ho_fdent);
	struct sup_ho_fdent *ents;
	struct iovec iov[3];
	uLong crc;
	int fd, rc;

	ents = malloc(tab ? tab : 1);
	if (!ents) {
		snprintf(w->why, sizeof(w->why), "out of memory for the fd table");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < w->nfds; i++)
		ents[i] = (struct sup_ho_fdent){ .fd = w->fds[i].fd, .kind = w->fds[i].kind,
						 .dev = w->fds[i].dev, .ino = w->fds[i].ino };
	memcpy(h.magic, SUP_HO_MAGIC, sizeof(h.magic));
	h.total_size = sizeof(h) + tab + w->len;
	crc = crc32_z(crc32(0L, Z_NULL, 0), (const Bytef *)ents, tab);
	h.crc = (uint32_t)crc32_z(crc, w->buf, w->len);
	iov[0] = (struct iovec){ &h, sizeof(h) };
	iov[1] = (struct iovec){ ents, tab };
	iov[2] = (struct iovec){ w->buf, w->len };
	fd = memfd_create(SUP_HO_MEMFD_NAME, MFD_ALLOW_SEALING);
	if (fd < 0) {
		rc = -errno;
		snprintf(w->why, sizeof(w->why), "memfd_create: %s", strerror(-rc));
		goto free_ents;
	}
	rc = write_all(fd, iov, 3);
	if (rc < 0) {
		snprintf(w->why, sizeof(w->why), "writing %llu bytes of state: %s",
			 (unsigned long long)h.total_size, strerror(-rc));
		goto close_fd;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		rc = -errno;
		snprintf(w->why, sizeof(w->why), "sealing the state memfd: %s", strerror(-rc));
		goto close_fd;
	}
	free(ents);
	*ret_fd = fd;
	return 0;
close_fd:
	close(fd);
free_ents:
	free(ents);
	return rc;
}

int sup_ho_w_finish(struct sup_ho_w *w, char *err, size_t errlen)
{
	int fd = -1, rc;

	if (!w->err && w->open != SIZE_MAX)
		w_fail(w, -EINVAL, "finished with a section still open");
	if (!w->err && w->finished)
		w_fail(w, -EALREADY, "finished twice");
	if (w->err) {
		snprintf(err, errlen, "handover state: %s", w->why);
		return w->err;
	}
	for (uint32_t i = 0; i < w->nfds; i++) {
		int fl = fcntl(w->fds[i].fd, F_GETFD);

		if (fl < 0 || fcntl(w->fds[i].fd, F_SETFD, fl & ~FD_CLOEXEC) < 0) {
			rc = -errno;
			snprintf(err, errlen, "handover state: fd %d: clearing close-on-exec: %s",
				 w->fds[i].fd, strerror(-rc));
			w_restore_flags(w);
			return rc;
		}
		w->fds[i].flags = fl;
	}
	rc = w_write_memfd(w, &fd);
	if (rc < 0) {
		snprintf(err, errlen, "handover state: %s", w->why);
		w_restore_flags(w);
		return rc;
	}
	w->finished = true;
	return fd;
}

void sup_ho_w_abort(struct sup_ho_w *w)
{
	if (!w || !w->finished)
		return;
	w_restore_flags(w);
	w->finished = false;
}

void sup_ho_w_free(struct sup_ho_w *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w->fds);
	free(w->byfd);
	free(w);
}
