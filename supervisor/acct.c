/* SPDX-License-Identifier: MIT */
/*
 * acct — see acct.h. The probe path is here; the /proc path is in
 * acct_fallback.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "../bpf/tierprobe.h"
#include "acct.h"
#include "acct_internal.h"
#include "common/opts.h"
#include "common/tiers.h"

#define PARENTS_MAX 32 /* how far up a leaf is looked for a tier */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool sup_acct_is_cgroup2_dir(int fd, struct stat *ret)
{
	struct statfs sfs;

	return fd >= 0 && fstatfs(fd, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC &&
	       fstat(fd, ret) == 0 && S_ISDIR(ret->st_mode);
}

/* The cgroup id: the kernfs node id, which is what a cgroup2 file handle
 * holds and, on 64-bit, the directory's inode number. */
static int leaf_id(int leaf_fd, uint64_t *ret)
{
	struct { struct file_handle fh; unsigned char id[sizeof(uint64_t)]; } h;
	struct stat st;
	int mnt;

	if (!sup_acct_is_cgroup2_dir(leaf_fd, &st))
		return -ENOTDIR;
	h.fh.handle_bytes = sizeof(h.id);
	if (name_to_handle_at(leaf_fd, "", &h.fh, &mnt, AT_EMPTY_PATH) == 0 &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		memcpy(ret, h.fh.f_handle, sizeof(*ret));
		return 0;
	}
	*ret = (uint64_t)st.st_ino;
	return 0;
}

/* Is the cgroup at leaf_fd one of the net tiers or below one? */
static bool under_net_tier(const struct sup_acct *a, int leaf_fd)
{
	struct stat st;
	int fd = dup(leaf_fd);
	bool found = false;

	for (int depth = 0; fd >= 0 && depth < PARENTS_MAX && !found; depth++) {
		int up;

		if (!sup_acct_is_cgroup2_dir(fd, &st))
			break;
		for (size_t i = 0; i < a->nnet; i++)
			if (a->net_dirs[i].st_dev == st.st_dev && a->net_dirs[i].st_ino == st.st_ino)
				found = true;
		up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = up;
	}
	if (fd >= 0)
		close(fd);
	return found;
}

static void set_source(struct sup_acct *a, const char *why)
{
	const char *btf, *io, *net;

	if (!a->probe) {
		snprintf(a->source, sizeof(a->source), "fallback: cgroup cpu.stat + /proc (%s)", why);
		return;
	}
	btf = tierprobe__btf_note(a->probe);
	io = tierprobe__io_note(a->probe);
	net = tierprobe__net_note(a->probe);
	snprintf(a->source, sizeof(a->source), "bpf (%s%s%s%s%s%s%s)",
		 tierprobe__mode(a->probe) == TIERPROBE_TP_BTF ? "tp_btf" : "raw_tp",
		 btf ? "; " : "", btf ? btf : "",
		 io ? "; io bytes unavailable: " : "", io ? io : "",
		 net ? "; net bytes unavailable: " : "", net ? net : "");
}

struct sup_acct *sup_acct_open(const struct sup_acct_opts *opts)
{
	struct tierprobe_opts po = { .sz = sizeof(po) };
	char err[SOURCE_MAX / 2] = "";
	struct sup_acct_opts o;
	int net_fds[SUP_NTIERS];
	struct sup_acct *a;

	if (!opts || sup_opts_copy(&o, sizeof(o), opts) < 0) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	for (int t = 1; t <= SUP_NTIERS; t++)
		if (sup_acct_is_cgroup2_dir(o.tier_fds[t], &a->net_dirs[a->nnet]))
			net_fds[a->nnet++] = o.tier_fds[t];
	if (o.force_fallback) {
		set_source(a, "BPF disabled by the caller");
		return a;
	}
	po.force_raw_tp = o.force_raw_tp;
	po.net_cgroup_fds = net_fds;
	po.n_net_cgroup_fds = a->nnet;
	po.max_cgroups = o.max_cgroups;
	po.max_tasks = o.max_tasks;
	po.errbuf = err;
	po.errbuf_sz = sizeof(err);
	a->probe = tierprobe__open(&po);
	if (!a->probe) {
		char why[SOURCE_MAX / 2 + 64];

		snprintf(why, sizeof(why), "the probe did not load: %s",
			 err[0] ? err : strerror(errno));
		set_source(a, why);
		return a;
	}
	set_source(a, NULL);
	return a;
}

void sup_acct_close(struct sup_acct *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->ncgs; i++)
		sup_acct_fb_free(a->cgs[i].fb);
	free(a->cgs);
	tierprobe__destroy(a->probe);
	free(a);
}

const char *sup_acct_source(const struct sup_acct *a)
{
	return a->source;
}

bool sup_acct_is_bpf(const struct sup_acct *a)
{
	return a->probe != NULL;
}

static struct acct_cg *find(const struct sup_acct *a, uint64_t cgid)
{
	for (size_t i = 0; i < a->ncgs; i++)
		if (a->cgs[i].cgid == cgid)
			return &a->cgs[i];
	return NULL;
}

int sup_acct_track(struct sup_acct *a, int leaf_fd, uint64_t *ret_cgid)
{
	struct acct_cg c = { 0 };
	int err;

	err = leaf_id(leaf_fd, &c.cgid);
	if (err)
		return err;
	if (find(a, c.cgid)) {
		*ret_cgid = c.cgid;
		return 0;
	}
	if (a->ncgs == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		struct acct_cg *nv = realloc(a->cgs, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->cgs = nv;
		a->cap = nc;
	}
	if (a->probe) {
		err = tierprobe__add_cgroup(a->probe, c.cgid);
		if (err == -E2BIG) {
			a->cg_full++;
			return -ENOSPC;
		}
		if (err && err != -EEXIST)
			return err;
		c.has_net = a->nnet && !tierprobe__net_note(a->probe) && under_net_tier(a, leaf_fd);
	} else {
		err = sup_acct_fb_new(leaf_fd, &c.fb);
		if (err)
			return err;
	}
	a->cgs[a->ncgs++] = c;
	*ret_cgid = c.cgid;
	return 0;
}

int sup_acct_untrack(struct sup_acct *a, uint64_t cgid)
{
	struct acct_cg *c = find(a, cgid);

	if (!c)
		return -ENOENT;
	if (a->probe)
		tierprobe__del_cgroup(a->probe, cgid);
	sup_acct_fb_free(c->fb);
	*c = a->cgs[--a->ncgs];
	return 0;
}

int sup_acct_read(struct sup_acct *a, uint64_t cgid, int leaf_fd, struct sup_acct_sample *ret)
{
	struct acct_cg *c = find(a, cgid);
	struct sup_acct_sample s;
	struct tierprobe_cg v;
	int64_t now;
	int err;

	if (!c)
		return -ENOENT;
	if (!a->probe)
		return sup_acct_fb_read(c->fb, leaf_fd, ret);
	now = now_ns();
	if (now - a->flushed_ns >= SUP_ACCT_FLUSH_MIN_NS) {
		if (tierprobe__flush(a->probe) < 0)
			a->flush_errors++;
		a->flushed_ns = now;
	}
	err = tierprobe__read(a->probe, cgid, &v);
	if (err)
		return err;
	memset(&s, 0, sizeof(s));
	s.cpu_ns = v.cpu_ns;
	s.runq_delay_ns = v.runq_delay_ns;
	s.runq_waits = v.runq_waits;
	s.vol_switches = v.vol_switches;
	s.invol_switches = v.invol_switches;
	s.read_bytes = v.read_bytes;
	s.write_bytes = v.write_bytes;
	s.net_rx_bytes = v.net_rx_bytes;
	s.net_tx_bytes = v.net_tx_bytes;
	_Static_assert(SUP_ACCT_HIST == TIERPROBE_HIST, "histogram layouts differ");
	memcpy(s.runq_hist, v.runq_hist, sizeof(s.runq_hist));
	s.has_net = c->has_net;
	s.has_io = !tierprobe__io_note(a->probe);
	s.has_hist = true;
	*ret = s;
	return 0;
}

void sup_acct_errors(const struct sup_acct *a, struct sup_acct_errors *ret)
{
	__u64 e[TIERPROBE_NERR] = { 0 };
	struct sup_acct_errors r = { 0 };

	if (a->probe) {
		r.map_full = a->cg_full;
		r.other = a->flush_errors;
		if (tierprobe__errors(a->probe, e) == 0) {
			r.map_full += e[TIERPROBE_ERR_TASKS_FULL];
			r.missed += e[TIERPROBE_ERR_BUSY];
			r.other += e[TIERPROBE_ERR_OTHER];
		}
		for (int k = 0; k < TIERPROBE_NPROG; k++) {
			struct tierprobe_prog_stats st;

			if (tierprobe__prog_stats(a->probe, (enum tierprobe_prog)k, &st) == 0)
				r.missed += st.recursion_misses;
		}
	}
	*ret = r;
}
