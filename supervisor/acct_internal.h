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

#include "acct.h"

struct sup_acct_fb;

/* Baseline of the cgroup whose directory is leaf_fd: counters start at 0. */
int sup_acct_fb_new(int leaf_fd, struct sup_acct_fb **ret);
int sup_acct_fb_read(struct sup_acct_fb *f, int leaf_fd, struct sup_acct_sample *ret);
void sup_acct_fb_free(struct sup_acct_fb *f);

#endif
