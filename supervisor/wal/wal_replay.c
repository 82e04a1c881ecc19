/* SPDX-License-Identifier: MIT */
/*
 * Reading the journal back at start (see wal.h): the segments in number
 * order, each checked record by record (walrec.c); a record that does not
 * check ends its segment, which is truncated there so the next replay
 * sees the same journal; the zero fill after the last record is cut off
 * without a word. Then a new current segment: nothing is ever
 * appended to a segment written by an earlier tierd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "walrec.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Segment numbers in the directory, sorted: 0 and *ret (malloc'd). */
static int list_segments(struct sup_wal *w, uint64_t **ret, size_t *ret_n)
{
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = dup(w->dir_fd);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		char name[32];
		unsigned long long no;
		int end = 0;

		if (sscanf(de->d_name, "%16llx.wal%n", &no, &end) != 1 || !no ||
		    (size_t)end != strlen(de->d_name))
			continue;
		sup_wal_seg_name(no, name);
		if (strcmp(name, de->d_name))
			continue;
		if (n == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = no;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	*ret = v;
	*ret_n = n;
	return 0;
}

static int read_file(int dir_fd, const char *name, uint8_t **ret, size_t *ret_len)
{
	struct stat sb;
	uint8_t *buf;
	size_t got = 0;
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -errno;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t k = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	*ret = buf;
	*ret_len = got;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];

	for (size_t k; n; p += k, n -= k) {
		k = n < sizeof(z) ? n : sizeof(z);
		if (memcmp(p, z, k))
			return false;
	}
	return true;
}

static int cut(struct sup_wal *w, const char *name, uint64_t at)
{
	int fd = openat(w->dir_fd, name, O_WRONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)at) < 0 || fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int replay_one(struct sup_wal *w, uint64_t no, const struct sup_wal_replay_ops *ops,
		      char *err, size_t errlen)
{
	char name[32];
	uint8_t *buf = NULL;
	size_t len = 0, off = SUP_WAL_SEG_HDR, next;
	uint64_t hno;
	const char *why = NULL;
	struct sup_wal_rec rec;
	int r;

	sup_wal_seg_name(no, name);
	r = read_file(w->dir_fd, name, &buf, &len);
	if (r < 0) {
		snprintf(err, errlen, "cannot read journal segment %s/%s: %s", w->dir, name,
			 strerror(-r));
		return r;
	}
	if (len < SUP_WAL_SEG_HDR) {
		/* Made, then cut off before its header was whole: a rotation
		 * that a crash interrupted. Nothing in it. */
		if (ops->truncated)
			ops->truncated(ops->arg, no, 0, len, "a segment shorter than its header");
		unlinkat(w->dir_fd, name, 0);
		free(buf);
		return 0;
	}
	if (sup_walrec_check_seg_header(buf, len, &hno, &why) < 0 || hno != no) {
		snprintf(err, errlen, "journal segment %s/%s: %s; move it away to start", w->dir,
			 name, why ? why : "its number does not match its name");
		free(buf);
		return -EBADMSG;
	}
	if (!sup_wal_seg_add(w, no, 0, -1)) {
		free(buf);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while ((r = sup_walrec_next(buf, len, off, &rec, &next, &why)) > 0) {
		uint64_t ids[SUP_WAL_ID_KINDS];

		rec.seg = no;
		if (sup_walrec_get_ids(&rec, ids) == 0) {
			/* Statements only grow: the newest is where they are. */
			for (int k = 0; k < SUP_WAL_ID_KINDS; k++)
				if (ids[k] > w->resv[k])
					w->resv[k] = ids[k];
			w->resv_seg = no;
		}
		if (ops->record)
			ops->record(ops->arg, &rec);
		off = next;
	}
	if (r == 0 && off < len && !all_zero(buf + off, len - off)) {
		/* The fill is zeros to the end; anything else there is damage
		 * (or a tail written past the fill): reported like a torn one. */
		r = -EBADMSG;
		why = "data after the zero fill that ends the log";
	}
	if (r < 0) {
		r = cut(w, name, off);
		if (r < 0) {
			snprintf(err, errlen, "cannot truncate journal segment %s/%s at %zu: %s",
				 w->dir, name, off, strerror(-r));
			free(buf);
			return r;
		}
		if (ops->truncated)
			ops->truncated(ops->arg, no, off, len - off, why);
	} else if (off < len) {
		/* The zero fill ahead of the tail: the clean end, cut off. */
		r = cut(w, name, off);
		if (r < 0) {
			snprintf(err, errlen, "cannot truncate journal segment %s/%s at %zu: %s",
				 w->dir, name, off, strerror(-r));
			free(buf);
			return r;
		}
	}
	w->cur->size = off;
	w->bytes += off;
	free(buf);
	return 0;
}

int sup_wal_replay(struct sup_wal *w, const struct sup_wal_replay_ops *ops, char *err,
		   size_t errlen)
{
	uint64_t *nos = NULL;
	size_t n = 0;
	int r;

	r = list_segments(w, &nos, &n);
	if (r < 0) {
		snprintf(err, errlen, "cannot list journal_dir %s: %s", w->dir, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < n && r >= 0; i++)
		r = replay_one(w, nos[i], ops, err, errlen);
	free(nos);
	if (r < 0)
		return r;
	r = sup_wal_seg_create(w, err, errlen);
	if ((r == -ENOSPC || r == -EDQUOT) && w->cur) {
		/* A full disk must not keep tierd from starting: go on in the
		 * last segment (submits are refused until there is room). */
		char name[32];
		int fd;

		sup_wal_seg_name(w->cur->no, name);
		fd = openat(w->dir_fd, name, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return r;
		w->cur->fd = fd;
		w->cur->filled = w->cur->size;
		r = 0;
	}
	return r;
}

void sup_wal_replay_end(struct sup_wal *w)
{
	sup_wal_collect(w);
}
