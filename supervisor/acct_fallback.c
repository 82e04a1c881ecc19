/* SPDX-License-Identifier: MIT */
/* acct_fallback — accounting without BPF; see acct_internal.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acct_internal.h"
#include "handover/handover.h"
#include "cgroup/cg_stat.h"
#include "cgroup/cg_util.h"
#include "common/fdio.h"

enum { F_DELAY, F_WAITS, F_VOL, F_INVOL, F_RCHAR, F_WCHAR, F_N };

struct fb_thread {
	pid_t    tid;
	uint64_t v[F_N];
};

struct sup_acct_fb {
	uint64_t cpu_base_usec;
	uint64_t base[F_N];   /* totals when tracking started */
	uint64_t gone[F_N];   /* last values of threads no longer seen */
	struct fb_thread *th; /* threads seen at the last read, by tid */
	size_t n;
};

/* "key<sep>number" at the start of a line of buf. */
static int field_u64(const char *buf, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);

	for (const char *p = buf; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (!strncmp(p, key, klen)) {
			char *end;

			p += klen;
			while (*p == ' ' || *p == '\t')
				p++;
			*ret = strtoull(p, &end, 10);
			return end == p ? -EBADMSG : 0;
		}
	}
	return -ENOENT;
}

/* One thread's counters; -ENOENT/-ESRCH when it exited meanwhile. */
static int read_thread(int proc_fd, pid_t pid, pid_t tid, struct fb_thread *ret)
{
	char path[64], buf[4096];
	unsigned long long rt, delay, waits;
	ssize_t n;
	int err;

	snprintf(path, sizeof(path), "%d/task/%d/schedstat", (int)pid, (int)tid);
	n = sup_read_file_at(proc_fd, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (sscanf(buf, "%llu %llu %llu", &rt, &delay, &waits) != 3)
		return -EBADMSG;
	ret->tid = tid;
	ret->v[F_DELAY] = delay;
	ret->v[F_WAITS] = waits;
	snprintf(path, sizeof(path), "%d/task/%d/status", (int)pid, (int)tid);
	n = sup_read_file_at(proc_fd, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	err = field_u64(buf, "voluntary_ctxt_switches:", &ret->v[F_VOL]);
	if (!err)
		err = field_u64(buf, "nonvoluntary_ctxt_switches:", &ret->v[F_INVOL]);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%d/task/%d/io", (int)pid, (int)tid);
	n = sup_read_file_at(proc_fd, path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	err = field_u64(buf, "rchar:", &ret->v[F_RCHAR]);
	if (!err)
		err = field_u64(buf, "wchar:", &ret->v[F_WCHAR]);
	return err;
}

static int push(struct fb_thread **v, size_t *n, size_t *cap, const struct fb_thread *t)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct fb_thread *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *t;
	return 0;
}

static int scan_pid(int proc_fd, pid_t pid, struct fb_thread **v, size_t *n, size_t *cap)
{
	char path[32];
	struct dirent *de;
	DIR *d;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%d/task", (int)pid);
	fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while (!err && (de = readdir(d))) {
		struct fb_thread t;
		int r;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		r = read_thread(proc_fd, pid, (pid_t)atoi(de->d_name), &t);
		if (r == 0)
			err = push(v, n, cap, &t);
		else if (r != -ENOENT && r != -ESRCH)
			err = r;
	}
	closedir(d);
	return err;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = ((const struct fb_thread *)a)->tid, y = ((const struct fb_thread *)b)->tid;

	return x < y ? -1 : x > y;
}

/* Every thread of every process in the leaf, sorted by tid. */
static int scan(int leaf_fd, struct fb_thread **ret, size_t *ret_n)
{
	struct fb_thread *v = NULL;
	size_t n = 0, cap = 0, npids = 64;
	pid_t *pids = NULL;
	int listed, proc_fd = -1, err;

	for (;;) {
		pid_t *np = realloc(pids, npids * sizeof(*np));

		if (!np) {
			err = -ENOMEM;
			goto free;
		}
		pids = np;
		listed = sup_cg_list_pids(leaf_fd, pids, npids);
		if (listed < 0) {
			err = listed;
			goto free;
		}
		if ((size_t)listed <= npids)
			break;
		npids = (size_t)listed * 2;
	}
	proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0) {
		err = -errno;
		goto free;
	}
	err = 0;
	for (int i = 0; i < listed && !err; i++)
		err = scan_pid(proc_fd, pids[i], &v, &n, &cap);
	close(proc_fd);
	if (err)
		goto free;
	if (n)
		qsort(v, n, sizeof(*v), cmp_tid);
	*ret = v;
	*ret_n = n;
	v = NULL;
free:
	free(v);
	free(pids);
	return err;
}

/* A counter that went down: the tid belongs to a newer thread now. */
static bool reborn(const struct fb_thread *old, const struct fb_thread *now)
{
	for (int k = 0; k < F_N; k++)
		if (now->v[k] < old->v[k])
			return true;
	return false;
}

/* Retire the threads of the last read that are gone, keep the new list,
 * and return the running totals. */
static void merge(struct sup_acct_fb *f, struct fb_thread *now, size_t n, uint64_t total[F_N])
{
	size_t j = 0;

	for (size_t i = 0; i < f->n; i++) {
		const struct fb_thread *o = &f->th[i];

		while (j < n && now[j].tid < o->tid)
			j++;
		if (j < n && now[j].tid == o->tid && !reborn(o, &now[j]))
			continue;
		for (int k = 0; k < F_N; k++)
			f->gone[k] += o->v[k];
	}
	free(f->th);
	f->th = now;
	f->n = n;
	memcpy(total, f->gone, sizeof(f->gone));
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < F_N; k++)
			total[k] += now[i].v[k];
}

int sup_acct_fb_new(int leaf_fd, struct sup_acct_fb **ret)
{
	struct sup_cg_cpu_stat cs;
	struct sup_acct_fb *f = calloc(1, sizeof(*f));
	struct fb_thread *now;
	size_t n;
	int err;

	if (!f)
		return -ENOMEM;
	err = sup_cg_read_cpu_stat(leaf_fd, &cs);
	if (!err)
		err = scan(leaf_fd, &now, &n);
	if (err) {
		free(f);
		return err;
	}
	f->cpu_base_usec = cs.usage_usec;
	merge(f, now, n, f->base);
	*ret = f;
	return 0;
}

int sup_acct_fb_read(struct sup_acct_fb *f, int leaf_fd, struct sup_acct_sample *ret)
{
	struct sup_cg_cpu_stat cs;
	struct sup_acct_sample s;
	uint64_t total[F_N];
	struct fb_thread *now;
	size_t n;
	int err;

	err = sup_cg_read_cpu_stat(leaf_fd, &cs);
	if (!err)
		err = scan(leaf_fd, &now, &n);
	if (err)
		return err;
	merge(f, now, n, total);
	memset(&s, 0, sizeof(s));
	s.cpu_ns = (cs.usage_usec - f->cpu_base_usec) * 1000;
	s.runq_delay_ns = total[F_DELAY] - f->base[F_DELAY];
	s.runq_waits = total[F_WAITS] - f->base[F_WAITS];
	s.vol_switches = total[F_VOL] - f->base[F_VOL];
	s.invol_switches = total[F_INVOL] - f->base[F_INVOL];
	s.read_bytes = total[F_RCHAR] - f->base[F_RCHAR];
	s.write_bytes = total[F_WCHAR] - f->base[F_WCHAR];
	s.has_io = true;
	*ret = s;
	return 0;
}

void sup_acct_fb_free(struct sup_acct_fb *f)
{
	if (!f)
		return;
	free(f->th);
	free(f);
}

/* More threads than this in one leaf's baseline is a bad state, not a
 * leaf: the probe's own default limit is 16384 threads in all of them. */
#define FB_MAX_THREADS (1u << 20)

void sup_acct_fb_save(const struct sup_acct_fb *f, struct sup_ho_w *w)
{
	sup_ho_w_u64(w, f->cpu_base_usec);
	for (int k = 0; k < F_N; k++) {
		sup_ho_w_u64(w, f->base[k]);
		sup_ho_w_u64(w, f->gone[k]);
	}
	sup_ho_w_u32(w, (uint32_t)f->n);
	for (size_t i = 0; i < f->n; i++) {
		sup_ho_w_u32(w, (uint32_t)f->th[i].tid);
		for (int k = 0; k < F_N; k++)
			sup_ho_w_u64(w, f->th[i].v[k]);
	}
}

int sup_acct_fb_load(struct sup_ho_r *r, struct sup_acct_fb **ret)
{
	struct sup_acct_fb *f = calloc(1, sizeof(*f));
	uint32_t n = 0, tid;

	if (!f)
		return -ENOMEM;
	sup_ho_r_u64(r, &f->cpu_base_usec);
	for (int k = 0; k < F_N; k++) {
		sup_ho_r_u64(r, &f->base[k]);
		sup_ho_r_u64(r, &f->gone[k]);
	}
	if (!sup_ho_r_u32(r, &n))
		goto fail;
	/* each thread is 4 + 8 * F_N bytes: a count the section cannot hold
	 * is refused before it is allocated */
	if (n > FB_MAX_THREADS || n > sup_ho_r_left(r) / (4 + 8 * F_N)) {
		sup_ho_r_fail(r, "fallback baseline of %u threads", n);
		goto fail;
	}
	f->th = calloc(n ? n : 1, sizeof(*f->th));
	if (!f->th) {
		sup_acct_fb_free(f);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		sup_ho_r_u32(r, &tid);
		f->th[i].tid = (pid_t)tid;
		for (int k = 0; k < F_N; k++)
			sup_ho_r_u64(r, &f->th[i].v[k]);
		/* merge() walks them sorted by tid */
		if (sup_ho_r_ok(r) && (f->th[i].tid <= 0 || (i && f->th[i].tid <= f->th[i - 1].tid))) {
			sup_ho_r_fail(r, "fallback baseline: thread %u has tid %d out of order", i,
				      (int)f->th[i].tid);
			break;
		}
	}
	f->n = n;
	if (!sup_ho_r_ok(r))
		goto fail;
	*ret = f;
	return 0;
fail:
	sup_acct_fb_free(f);
	return -EINVAL;
}
