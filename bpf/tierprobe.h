/* SPDX-License-Identifier: MIT */
/*
 * tierprobe — the accounting probe: record layouts shared by the BPF side
 * (tierprobe.bpf.c) and the loader (tierprobe.c), and the loader's API.
 *
 * Maps (all sized by the loader before load):
 *   cgroups  PERCPU_HASH  cgroup id -> struct tierprobe_cg. Only userspace
 *            inserts (tierprobe__add_cgroup); the programs count only for
 *            cgroups found there, so an untracked cgroup costs one lookup.
 *   tasks    HASH (preallocated: safe under the runqueue lock)
 *            tid -> struct tierprobe_task, only for threads seen running in
 *            a tracked cgroup; removed at the thread's last switch.
 *   errors   PERCPU_ARRAY  enum tierprobe_err -> count.
 *
 * A cgroup id is the v2 cgroup's kernfs id: the inode number of its
 * directory, and what bpf_get_current_cgroup_id() and bpf_skb_cgroup_id()
 * return.
 */
#ifndef TIERPROBE_H
#define TIERPROBE_H

#ifndef __bpf__
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#endif

#define TIERPROBE_HIST 32 /* log2 buckets of a run-queue wait, ns: [2^i, 2^(i+1)) */

/* Defaults of the map sizes (struct tierprobe_opts). */
#define TIERPROBE_MAX_CGROUPS_DEFAULT 1024
#define TIERPROBE_MAX_TASKS_DEFAULT   16384

/* Counters of one cgroup, one copy per CPU. The scheduler fields are only
 * written with interrupts off on their CPU (sched_switch, the flush IPI);
 * the io and net fields can nest (softirq over a syscall exit) and are
 * added atomically. */
struct tierprobe_cg {
	__u64 cpu_ns;
	__u64 runq_delay_ns;
	__u64 runq_waits;
	__u64 vol_switches;
	__u64 invol_switches;
	__u64 read_bytes;
	__u64 write_bytes;
	__u64 net_rx_bytes;
	__u64 net_tx_bytes;
	__u64 runq_hist[TIERPROBE_HIST];
};

/* One thread seen in a tracked cgroup. */
struct tierprobe_task {
	__u64 last_exec_ns; /* se.sum_exec_runtime already charged */
	__u64 queued_ns;    /* runnable since (ktime), 0 when not waiting */
	__u64 cgid;         /* its cgroup when it last left a CPU or woke up */
};

enum tierprobe_err {
	TIERPROBE_ERR_TASKS_FULL, /* tasks map full: CPU charged per slice, waits lost */
	TIERPROBE_ERR_BUSY,       /* map update refused by a nested program (-EBUSY) */
	TIERPROBE_ERR_OTHER,
	TIERPROBE_NERR,
};

#ifndef __bpf__
/* ---- the loader (bpf/tierprobe.c) ------------------------------------------
 * Library code: -errno returns, constructors return NULL and set errno,
 * nothing is logged (libbpf's own messages go wherever the program pointed
 * libbpf_set_print()).
 */

enum tierprobe_mode {
	TIERPROBE_TP_BTF, /* BTF-typed tracepoints: direct field loads */
	TIERPROBE_RAW_TP, /* raw tracepoints: every field through probe_read */
};

struct tierprobe_opts {
	size_t      sz;            /* sizeof(struct tierprobe_opts) */
	bool        force_raw_tp;  /* do not try tp_btf */
	/* cgroup2 directories to attach the cgroup_skb programs to (the
	 * tiers); sockets of tracked cgroups below them are counted. */
	const int  *net_cgroup_fds;
	size_t      n_net_cgroup_fds;
	__u32       max_cgroups;   /* 0 = TIERPROBE_MAX_CGROUPS_DEFAULT */
	__u32       max_tasks;     /* 0 = TIERPROBE_MAX_TASKS_DEFAULT */
	/* On failure, what failed, per mode tried (optional). */
	char       *errbuf;
	size_t      errbuf_sz;
};

/* Programs whose kernel run-time statistics tierprobe__prog_stats reports. */
enum tierprobe_prog {
	TIERPROBE_PROG_SWITCH,
	TIERPROBE_PROG_WAKEUP,     /* sched_wakeup and sched_wakeup_new */
	TIERPROBE_PROG_IO,         /* every syscall exit program */
	TIERPROBE_PROG_NET,        /* cgroup_skb ingress and egress */
	TIERPROBE_NPROG,
};

struct tierprobe_prog_stats {
	__u64 run_cnt;
	__u64 run_time_ns;       /* needs BPF_ENABLE_STATS or kernel.bpf_stats_enabled */
	__u64 recursion_misses;  /* runs the kernel skipped */
};

struct tierprobe;

/* Open, load and attach: tp_btf first, raw_tp when tp_btf does not load or
 * attach (or opts->force_raw_tp). The scheduler programs are required; the
 * syscall exit tracepoints and cgroup_skb programs are not: when they do
 * not attach, tierprobe__io_note/__net_note say why. NULL + errno when
 * neither mode works (opts->errbuf says why). */
struct tierprobe *tierprobe__open(const struct tierprobe_opts *opts);
void tierprobe__destroy(struct tierprobe *p);

enum tierprobe_mode tierprobe__mode(const struct tierprobe *p);
/* Why tp_btf is not used (NULL when it is, or when raw_tp was forced). */
const char *tierprobe__btf_note(const struct tierprobe *p);
/* NULL when read/write bytes are counted, else why not. */
const char *tierprobe__io_note(const struct tierprobe *p);
/* NULL when network bytes are counted below the given cgroups, else why not. */
const char *tierprobe__net_note(const struct tierprobe *p);

/* Start counting for cgroup id (counters from zero). -EEXIST if already
 * there, -E2BIG when the cgroups map is full. */
int tierprobe__add_cgroup(struct tierprobe *p, __u64 cgid);
int tierprobe__del_cgroup(struct tierprobe *p, __u64 cgid);

/* Charge the slices running right now (up to each CPU's last scheduler
 * tick, as cpu.stat does): runs the flush program on every online CPU. */
int tierprobe__flush(struct tierprobe *p);

/* The counters of cgroup id, summed over CPUs. -ENOENT if not added. */
int tierprobe__read(const struct tierprobe *p, __u64 cgid, struct tierprobe_cg *ret);

/* Per-kind error counts, summed over CPUs. */
int tierprobe__errors(const struct tierprobe *p, __u64 ret[TIERPROBE_NERR]);

/* Kernel statistics of the programs of one kind, summed. */
int tierprobe__prog_stats(const struct tierprobe *p, enum tierprobe_prog which,
			  struct tierprobe_prog_stats *ret);

/* ---- hand-over across execve ------------------------------------------------
 * A running probe is its fds: the maps userspace reads, the programs it runs
 * or asks statistics of, and the links that keep the programs attached. The
 * next binary rebuilds the probe from them without loading or attaching
 * anything, so no counter resets. */
#define TIERPROBE_NPROGFD  15 /* switch, wakeup, wakeup_new, 10 syscall exits, 2 cgroup_skb */
#define TIERPROBE_MAX_LINKS 32

struct tierprobe_fds {
	enum tierprobe_mode mode;
	int    cgroups, tasks, errors;          /* maps */
	int    flush;                           /* the program tierprobe__flush runs */
	int    progs[TIERPROBE_NPROGFD];        /* -1: not loaded */
	int    links[TIERPROBE_MAX_LINKS];
	size_t nlinks;
};

/* The probe's fds (still owned by p). */
void tierprobe__fds(const struct tierprobe *p, struct tierprobe_fds *ret);

/* A probe from the fds of a running one (another binary's, across execve).
 * Checks each map's type and key and value sizes against this binary's
 * layout and that every program and link fd is one; takes ownership of all
 * the fds on success (tierprobe__destroy closes them, which detaches the
 * links), none on failure. The notes are what the probe's
 * tierprobe__*_note said (NULL for none). NULL + errno, errbuf saying why. */
struct tierprobe *tierprobe__adopt(const struct tierprobe_fds *fds, const char *btf_note,
				   const char *io_note, const char *net_note,
				   char *errbuf, size_t errbuf_sz);
/* Free an adopted probe's memory and close none of its fds (they go back to
 * the state they came from: the upgrade rolled back). A loaded probe is
 * destroyed as by tierprobe__destroy. NULL is fine. */
void tierprobe__forget(struct tierprobe *p);
#endif

#endif
