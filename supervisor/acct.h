/* SPDX-License-Identifier: MIT */
/*
 * acct — what each agent really uses, per cgroup (the agent's leaf).
 *
 * Two sources behind one interface:
 *  - the eBPF probe (bpf/tierprobe.*): CPU ns from sched_switch
 *    (sum_exec_runtime deltas, plus the slice running now when read),
 *    run-queue delay as schedstat counts it (after wakeup and after
 *    preemption) with a log2 histogram, voluntary/involuntary switches,
 *    logical read/write bytes (syscalls read/write exit tracepoints), and
 *    network bytes in/out (cgroup_skb on the tier cgroups);
 *  - the fallback when BPF cannot load: cpu.stat of the leaf, and for every
 *    thread in it /proc/PID/task/TID/{schedstat,status,io}; no network
 *    bytes (reported as unavailable, not as zero), no histogram, and what a
 *    thread did between the last read and its exit is lost (except CPU).
 * The source in use, and why, is in sup_acct_source(); tierctl status
 * shows it.
 *
 * Counters are cumulative since the cgroup was tracked; callers diff them.
 * Library code: -errno returns, no logging.
 */
#ifndef SUP_ACCT_H
#define SUP_ACCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tiers.h"

#define SUP_ACCT_HIST 32   /* log2 buckets of run-queue delay, ns: [2^i, 2^(i+1)) */

struct sup_acct_sample {
	uint64_t cpu_ns;
	uint64_t runq_delay_ns;     /* total time runnable but not running */
	uint64_t runq_waits;        /* how many such waits */
	uint64_t vol_switches;      /* switched out while blocking (or exiting) */
	uint64_t invol_switches;    /* switched out while runnable (preempted, yield) */
	uint64_t read_bytes;        /* returned by read-family syscalls (only with */
	uint64_t write_bytes;       /* has_io; the fallback: rchar/wchar) */
	uint64_t net_rx_bytes;      /* only with has_net */
	uint64_t net_tx_bytes;
	uint64_t runq_hist[SUP_ACCT_HIST];
	bool     has_net;
	bool     has_io;            /* read/write bytes are counted */
	bool     has_hist;          /* runq_hist is filled (the probe only) */
};

struct sup_acct_opts {
	size_t sz;                  /* sizeof(struct sup_acct_opts) */
	bool   force_fallback;      /* do not try BPF (tests, operators) */
	bool   force_raw_tp;        /* skip tp_btf even where it would load */
	int    tier_fds[SUP_NTIERS + 1]; /* tier cgroup dir fds (index 1..4) for cgroup_skb; -1 none
				     * (an fd that is not a cgroup2 directory counts as none) */
	uint32_t max_cgroups;       /* probe map sizes; 0 = defaults (1024 cgroups, */
	uint32_t max_tasks;         /* 16384 threads in tracked cgroups) */
};

/* sup_acct_read folds the slices running on every CPU into the probe's CPU
 * counter (an IPI per CPU), at most once per this many ns: a monitor tick
 * reading every agent pays it once. */
#define SUP_ACCT_FLUSH_MIN_NS 1000000

struct sup_acct;

/* Open the best available source. Never fails for lack of BPF (falls back
 * and says why in sup_acct_source); NULL + errno only for ENOMEM, or
 * EINVAL when opts is NULL or opts->sz is not set (a larger sz from a newer
 * caller is accepted if the fields we do not know are zero). */
struct sup_acct *sup_acct_open(const struct sup_acct_opts *opts);
void sup_acct_close(struct sup_acct *a);

/* "bpf (tp_btf)", "bpf (raw_tp)", or "fallback: cgroup cpu.stat + /proc
 * (why BPF is not used)". A probe that runs but lacks a part says so after
 * a semicolon inside the parentheses: "bpf (raw_tp; tp_btf load: ...)",
 * "bpf (tp_btf; io bytes unavailable: ...; net bytes unavailable: ...)". */
const char *sup_acct_source(const struct sup_acct *a);
bool sup_acct_is_bpf(const struct sup_acct *a);

/* Start/stop accounting the cgroup whose directory is leaf_fd (its id is
 * the directory's inode, as bpf_get_current_cgroup_id() reports it).
 * Tracking a cgroup already tracked returns its id and keeps its counters.
 * -ENOSPC when the probe's cgroup map is full (counted in map_full). */
int sup_acct_track(struct sup_acct *a, int leaf_fd, uint64_t *ret_cgid);
int sup_acct_untrack(struct sup_acct *a, uint64_t cgid);

/* Cumulative counters of a tracked cgroup (leaf_fd is used by the fallback
 * to find its processes). -ENOENT if cgid is not tracked. */
int sup_acct_read(struct sup_acct *a, uint64_t cgid, int leaf_fd, struct sup_acct_sample *ret);

/* The probe's own failures (map full, missed updates …), cumulative; all
 * zero in the fallback. */
struct sup_acct_errors {
	uint64_t map_full;  /* a cgroup refused (cgroups map) or a thread not
			     * recorded (tasks map): its waits are lost, its
			     * CPU is still charged slice by slice */
	uint64_t missed;    /* program runs the kernel skipped (recursion) and
			     * map updates refused by a nested program */
	uint64_t other;     /* any other map error; failed flushes */
};
void sup_acct_errors(const struct sup_acct *a, struct sup_acct_errors *ret);

/* ---- live upgrade (supervisor/handover) ------------------------------------
 * The accounting object across execve, without reloading the probe (about
 * 20 ms) or resetting any counter: its 'acct' section holds the source, the
 * probe's map, program and link fds (the probe keeps running through the
 * exec) or the fallback's baselines, and the tracked cgroups. */
struct sup_ho_w;
struct sup_ho_r;

/* Write the 'acct' section. a goes on unchanged (the exec may fail). 0;
 * write errors surface at sup_ho_w_finish. */
int sup_acct_handover(struct sup_acct *a, struct sup_ho_w *w);
/* Rebuild from the 'acct' section, loading and attaching nothing; the
 * source is the one handed over (opts->force_* are not looked at; the tier
 * fds are, for has_net of cgroups tracked later). NULL with errno and err
 * filled when the section is absent or bad or the probe's maps do not have
 * this binary's layout: the caller refuses the upgrade, or closes the state's
 * probe fds and opens afresh (counters reset). */
struct sup_acct *sup_acct_adopt(struct sup_ho_r *r, const struct sup_acct_opts *opts,
				char *err, size_t errlen);
/* Free an adopted object closing none of the probe's fds: for the rollback
 * (the state goes back to the old binary), before sup_ho_r_commit. */
void sup_acct_abandon(struct sup_acct *a);

#endif
