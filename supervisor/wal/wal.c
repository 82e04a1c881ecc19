/* SPDX-License-Identifier: MIT */
/* The journal: see wal.h. Open and lock the directory, segments, appends,
 * references, deletion from the oldest end, the hand-over across a
 * re-exec. Durability is wal_sync.c, reading back wal_replay.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "walrec.h"

void sup_wal_seg_name(uint64_t no, char buf[32])
{
	snprintf(buf, 32, "%016" PRIx64 ".wal", no);
}

const char *sup_wal_sync_name(enum sup_wal_sync s)
{
	return s == SUP_WAL_SYNC_ALWAYS ? "always" : s == SUP_WAL_SYNC_OFF ? "off" : "batch";
}

/* Parents first, like mkdir -p; 0 or -errno. */
static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void parse_crash(struct sup_wal *w, const char *s)
{
	unsigned long long n;

	if (!s)
		return;
	if (sscanf(s, "rotate:%llu", &n) == 1)
		w->crash_kind = WAL_CRASH_ROTATE;
	else if (sscanf(s, "sync:%llu", &n) == 1)
		w->crash_kind = WAL_CRASH_SYNC;
	else
		return;
	w->crash_at = n;
}

static struct sup_wal *wal_alloc(const struct sup_wal_opts *o, struct sup_loop *l)
{
	struct sup_wal *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->dir = strdup(o->dir);
	if (!w->dir) {
		free(w);
		return NULL;
	}
	w->o = *o;
	w->o.dir = w->dir;
	w->o.crash = NULL;
	w->loop = l;
	w->dir_fd = w->lock_fd = -1;
	w->next_no = 1;
	parse_crash(w, o->crash);
	sup_wal_sync_init(w);
	return w;
}

struct sup_wal *sup_wal_open(const struct sup_wal_opts *o, struct sup_loop *l, char *err,
			     size_t errlen)
{
	struct sup_wal *w;
	int r;

	if (!o->dir || o->dir[0] != '/') {
		snprintf(err, errlen, "journal_dir must be an absolute path");
		errno = EINVAL;
		return NULL;
	}
	if (o->segment_bytes < 4096 || o->max_bytes < o->segment_bytes) {
		snprintf(err, errlen, "journal_segment_bytes must be at least 4K and at most "
			 "journal_max_bytes");
		errno = EINVAL;
		return NULL;
	}
	w = wal_alloc(o, l);
	if (!w) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r = mkdir_p(o->dir);
	if (r < 0) {
		snprintf(err, errlen, "cannot create journal_dir %s: %s", o->dir, strerror(-r));
		goto fail;
	}
	w->dir_fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open journal_dir %s: %s", o->dir, strerror(errno));
		goto fail;
	}
	w->lock_fd = openat(w->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->lock_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open %s/LOCK: %s", o->dir, strerror(errno));
		goto fail;
	}
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "journal_dir %s is in use by another tierd (its LOCK "
				 "is held); give each tierd its own journal_dir", o->dir);
		else
			snprintf(err, errlen, "cannot lock %s/LOCK: %s", o->dir, strerror(errno));
		goto fail;
	}
	return w;
fail:
	sup_wal_free(w);
	errno = -r;
	return NULL;
}

void sup_wal_set_opts(struct sup_wal *w, const struct sup_wal_opts *o)
{
	w->o.sync = o->sync;
	w->o.window_ns = o->window_ns;
	w->o.max_bytes = o->max_bytes;
	w->o.segment_bytes = o->segment_bytes < 4096 ? 4096 : o->segment_bytes;
}

static void segs_free(struct sup_wal *w, bool close_fds)
{
	struct wal_seg *s = w->oldest, *next;

	for (; s; s = next) {
		next = s->next;
		if (close_fds && s->fd >= 0)
			close(s->fd);
		free(s);
	}
	w->oldest = w->cur = NULL;
}

static void wal_release(struct sup_wal *w, bool close_fds)
{
	if (!w)
		return;
	sup_wal_sync_fini(w);
	segs_free(w, close_fds);
	free(w->buf);
	if (close_fds && w->lock_fd >= 0)
		close(w->lock_fd);
	if (close_fds && w->dir_fd >= 0)
		close(w->dir_fd);
	free(w->dir);
	free(w);
}

void sup_wal_free(struct sup_wal *w)
{
	if (w && w->cur) {
		sup_wal_flush(w);
		sup_wal_trim(w->cur);
	}
	wal_release(w, true);
}

void sup_wal_abandon(struct sup_wal *w)
{
	wal_release(w, false);
}

/* ---- segments ------------------------------------------------------------ */

struct wal_seg *sup_wal_seg_add(struct sup_wal *w, uint64_t no, uint64_t size, int fd)
{
	struct wal_seg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->no = no;
	s->size = size;
	s->fd = fd;
	s->prev = w->cur;
	if (w->cur)
		w->cur->next = s;
	else
		w->oldest = s;
	w->cur = s;
	w->nsegs++;
	w->bytes += size;
	if (no >= w->next_no)
		w->next_no = no + 1;
	return s;
}

/* A new current segment: its header written, the directory to be synced
 * with the next batch (the file must survive with the records in it). */
int sup_wal_seg_create(struct sup_wal *w, char *err, size_t errlen)
{
	uint8_t hdr[SUP_WAL_SEG_HDR];
	struct wal_seg *old = w->cur;
	char name[32];
	uint64_t no = w->next_no;
	ssize_t n;
	int fd, r;

	sup_wal_flush(w);  /* the buffer belongs to the old one; a failure goes to its waiters */
	sup_wal_seg_name(no, name);
	fd = openat(w->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create journal segment %s/%s: %s", w->dir, name,
			 strerror(errno));
		return r;
	}
	sup_walrec_seg_header(hdr, no);
	do
		n = pwrite(fd, hdr, sizeof(hdr), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(hdr)) {
		r = n < 0 ? -errno : -ENOSPC;
		snprintf(err, errlen, "cannot write journal segment %s/%s: %s", w->dir, name,
			 strerror(-r));
		close(fd);
		unlinkat(w->dir_fd, name, 0);
		return r;
	}
	if (!sup_wal_seg_add(w, no, sizeof(hdr), fd)) {
		close(fd);
		unlinkat(w->dir_fd, name, 0);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->cur->filled = sizeof(hdr);
	/* Mode off: nothing waits for a sync, the old fd can go now. */
	w->cur->unsynced = w->o.sync != SUP_WAL_SYNC_OFF;
	w->dir_dirty = true;
	if (old)
		sup_wal_trim(old);
	/* The old one keeps its fd only until a sync has covered it. */
	if (old && old->fd >= 0 && !old->unsynced && !w->syncing) {
		close(old->fd);
		old->fd = -1;
	}
	/* The reservations first in every segment: old ones can then go
	 * once this is durable. If it fails, they stay. */
	sup_wal_restate(w);
	return 0;
}

static struct wal_seg *seg_find(struct sup_wal *w, uint64_t no)
{
	for (struct wal_seg *s = w->cur; s; s = s->prev)
		if (s->no == no)
			return s;
	return NULL;
}

/* Delete from the oldest end while nothing needs a segment. */
void sup_wal_collect(struct sup_wal *w)
{
	struct wal_seg *s;
	char name[32];

	/* Nor from the one with the newest durable id reservation on. */
	while ((s = w->oldest) && s != w->cur && !s->refs && s->fd < 0 &&
	       (!w->resv_seg || s->no < w->resv_seg)) {
		sup_wal_seg_name(s->no, name);
		unlinkat(w->dir_fd, name, 0);
		w->oldest = s->next;
		w->oldest->prev = NULL;
		w->bytes -= s->size;
		w->nsegs--;
		free(s);
	}
}

void sup_wal_ref(struct sup_wal *w, uint64_t no)
{
	struct wal_seg *s = seg_find(w, no);

	if (s) {
		s->refs++;
		w->refs++;
	}
}

void sup_wal_unref(struct sup_wal *w, uint64_t no)
{
	struct wal_seg *s = seg_find(w, no);

	if (!s || !s->refs)
		return;
	s->refs--;
	w->refs--;
	if (!s->refs && s == w->oldest)
		sup_wal_collect(w);
}

void sup_wal_stats(const struct sup_wal *w, struct sup_wal_stats *ret)
{
	*ret = w->st;
	ret->dir = w->dir;
	ret->sync = sup_wal_sync_name(w->o.sync);
	ret->window_ns = w->o.window_ns;
	ret->bytes = w->bytes;
	ret->max_bytes = w->o.max_bytes;
	ret->segments = w->nsegs;
	ret->live_refs = w->refs;
	ret->current_segment = w->cur ? w->cur->no : 0;
	if (w->cur && w->cur->filled > w->cur->size)
		ret->bytes += w->cur->filled - w->cur->size;  /* the zero fill is on disk too */
}

/* ---- across a re-exec ------------------------------------------------------ */

static int set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

int sup_wal_handover(struct sup_wal *w, struct sup_wal_state *st)
{
	uint32_t i = 0;
	int r;

	if (w->nsegs > SUP_WAL_STATE_SEGS)
		return -E2BIG;
	/* The reservations as the last record, where adopt finds them. */
	r = sup_wal_restate(w);
	if (r < 0)
		return r;
	r = sup_wal_flush_sync(w);
	if (r < 0)
		return r;
	memset(st, 0, sizeof(*st));
	st->version = SUP_WAL_VERSION;
	st->dir_fd = w->dir_fd;
	st->lock_fd = w->lock_fd;
	st->cur_fd = w->cur ? w->cur->fd : -1;
	st->next_no = w->next_no;
	for (struct wal_seg *s = w->oldest; s; s = s->next, i++)
		st->segs[i] = (struct sup_wal_state_seg){ .no = s->no, .size = s->size, .refs = s->refs };
	st->nsegs = i;
	if ((r = set_cloexec(w->dir_fd, false)) < 0 || (r = set_cloexec(w->lock_fd, false)) < 0 ||
	    (st->cur_fd >= 0 && (r = set_cloexec(st->cur_fd, false)) < 0))
		return r;
	return 0;
}

/* The current segment's file size (its fill) and, from its last record
 * (handover put it there), the id reservations: durable, in this segment. */
static void adopt_tail(struct sup_wal *w)
{
	uint8_t b[SUP_WAL_REC_HDR + SUP_WALREC_IDS_LEN];
	struct wal_seg *s = w->cur;
	struct sup_wal_rec rec;
	const char *why;
	struct stat sb;
	size_t next;
	char name[32];
	ssize_t n;
	int fd;

	s->filled = fstat(s->fd, &sb) == 0 && (uint64_t)sb.st_size > s->size ?
		    (uint64_t)sb.st_size : s->size;
	if (s->size < SUP_WAL_SEG_HDR + sizeof(b))
		return;
	/* Its fd is write-only: read it by name. */
	sup_wal_seg_name(s->no, name);
	fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = pread(fd, b, sizeof(b), (off_t)(s->size - sizeof(b)));
	close(fd);
	if (n == (ssize_t)sizeof(b) && sup_walrec_next(b, sizeof(b), 0, &rec, &next, &why) == 1 &&
	    sup_walrec_get_ids(&rec, w->resv) == 0)
		w->resv_seg = s->no;
}

struct sup_wal *sup_wal_adopt(const struct sup_wal_state *st, struct sup_loop *l,
			      const struct sup_wal_opts *o, char *err, size_t errlen)
{
	struct sup_wal *w;

	if (st->version != SUP_WAL_VERSION || !st->nsegs || st->nsegs > SUP_WAL_STATE_SEGS ||
	    st->dir_fd < 0 || st->lock_fd < 0 || st->cur_fd < 0) {
		snprintf(err, errlen, "journal hand-over state is not one this tierd reads "
			 "(version %u, %u segments)", st->version, st->nsegs);
		errno = EINVAL;
		return NULL;
	}
	w = wal_alloc(o, l);
	if (!w) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	w->dir_fd = st->dir_fd;
	w->lock_fd = st->lock_fd;
	for (uint32_t i = 0; i < st->nsegs; i++) {
		bool last = i + 1 == st->nsegs;
		struct wal_seg *s = sup_wal_seg_add(w, st->segs[i].no, st->segs[i].size,
						    last ? st->cur_fd : -1);

		if (!s) {
			sup_wal_abandon(w);
			snprintf(err, errlen, "out of memory");
			errno = ENOMEM;
			return NULL;
		}
		s->refs = st->segs[i].refs;
		w->refs += s->refs;
	}
	if (st->next_no > w->next_no)
		w->next_no = st->next_no;
	adopt_tail(w);
	set_cloexec(w->dir_fd, true);
	set_cloexec(w->lock_fd, true);
	set_cloexec(st->cur_fd, true);
	return w;
}
