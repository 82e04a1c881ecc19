/* SPDX-License-Identifier: MIT */
/*
 * acct_internal — the acct module's private half: accounting without BPF,
 * for one cgroup (acct_fallback.c; used by acct.c only).
 *
 * CPU from the leaf's cpu.stat (usage_usec); run-queue delay and waits from
 * /proc/PID/task/TID/schedstat (fields 2 and 3); voluntary/involuntary
 * switches from .../status; read/write bytes from .../io (rchar, wchar) —
 * per thread, so a parent that reaps a child never counts the child twice.
 *
 * Threads come and go between reads: each thread's last values are kept,
 * and when it is gone (or its tid now names a newer thread, seen as a
 * counter that went down) they move into a per-cgroup total, so the sums
 * never go backwards. What a thread did between the last read and its exit
 * is lost (cpu.stat has it; the /proc counters do not).
 */
#ifndef SUP_ACCT_INTERNAL_H
#define SUP_ACCT_INTERNAL_H

#include <sys/stat.h>

#include "acct.h"

struct sup_acct_fb;
struct sup_ho_w;
struct sup_ho_r;
struct tierprobe;

#define SOURCE_MAX  1024

struct acct_cg {
	uint64_t cgid;
	bool     has_net;
	struct sup_acct_fb *fb;    /* fallback only */
};

/* acct.c and acct_handover.c (the hand-over across execve). */
struct sup_acct {
	struct tierprobe *probe;   /* NULL: fallback */
	struct stat net_dirs[SUP_NTIERS]; /* tiers the cgroup_skb programs are on */
	size_t nnet;
	struct acct_cg *cgs;
	size_t ncgs, cap;
	int64_t flushed_ns;
	uint64_t cg_full;          /* tracks refused: cgroups map full */
	uint64_t flush_errors;
	char source[SOURCE_MAX];
};

/* fd is a cgroup2 directory (its stat in *ret). */
bool sup_acct_is_cgroup2_dir(int fd, struct stat *ret);

/* Baseline of the cgroup whose directory is leaf_fd: counters start at 0. */
int sup_acct_fb_new(int leaf_fd, struct sup_acct_fb **ret);
int sup_acct_fb_read(struct sup_acct_fb *f, int leaf_fd, struct sup_acct_sample *ret);
void sup_acct_fb_free(struct sup_acct_fb *f);
/* A baseline into the open section of a hand-over state, and back (0 or
 * -errno; a bad state is reported through the reader's error). */
void sup_acct_fb_save(const struct sup_acct_fb *f, struct sup_ho_w *w);
int sup_acct_fb_load(struct sup_ho_r *r, struct sup_acct_fb **ret);

#endif
