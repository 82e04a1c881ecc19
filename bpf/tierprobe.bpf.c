// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * tierprobe — per-cgroup CPU time, run-queue delay, context switches,
 * logical read/write bytes and network bytes, for the cgroups userspace put
 * in the `cgroups` map (tierprobe.h).
 *
 * The scheduler programs exist twice, one body each: tp_btf (fields loaded
 * directly, BTF-checked) and raw_tp (fields through bpf_probe_read_kernel);
 * the loader keeps the pair that loads. sched_switch's arguments on every
 * kernel we load on (5.18+, checked on 6.1 and 6.18) are
 *   (bool preempt, struct task_struct *prev, struct task_struct *next,
 *    unsigned int prev_state)
 * prev_state came last in 5.18; older kernels stop at next. The programs use
 * only the first three and read prev's state from the task itself, so the
 * order of the fourth does not matter to them.
 *
 * CPU: at every switch, prev's se.sum_exec_runtime minus what was already
 * charged (per-thread record in `tasks`), to prev's cgroup, which is the
 * current task's cgroup while the tracepoint runs. The flush program,
 * run by the loader on each CPU through BPF_PROG_TEST_RUN, charges the slice
 * running there so a read includes it.
 *
 * Run-queue delay, as schedstat counts it: a wait starts at sched_wakeup /
 * sched_wakeup_new, or at a switch that leaves prev runnable (preempted,
 * TASK_RUNNING), and ends when the thread is switched in.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tierprobe.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Not in vmlinux.h (macros): include/linux/sched.h, errno-base.h. */
#define TASK_RUNNING 0x0000
#define TASK_DEAD    0x0080
#define E2BIG        7
#define EBUSY        16
#define EEXIST       17

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TIERPROBE_MAX_CGROUPS_DEFAULT);
	__type(key, __u64);
	__type(value, struct tierprobe_cg);
} cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TIERPROBE_MAX_TASKS_DEFAULT);
	__type(key, __u32);
	__type(value, struct tierprobe_task);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TIERPROBE_NERR);
	__type(key, __u32);
	__type(value, __u64);
} errors SEC(".maps");

/* task_struct.state became __state in 5.14. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline void count_err(long err)
{
	__u32 kind = err == -E2BIG ? TIERPROBE_ERR_TASKS_FULL :
		     err == -EBUSY ? TIERPROBE_ERR_BUSY : TIERPROBE_ERR_OTHER;
	__u64 *v = bpf_map_lookup_elem(&errors, &kind);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* ---- field access: direct under tp_btf, probe_read under raw_tp ----------
 * `btf` is a constant in every caller, so each program keeps one branch. */

static __always_inline __u32 task_tid(struct task_struct *t, const bool btf)
{
	return btf ? (__u32)t->pid : (__u32)BPF_CORE_READ(t, pid);
}

static __always_inline unsigned int task_state(struct task_struct *t, const bool btf)
{
	struct task_struct___pre514 *old = (void *)t;

	if (bpf_core_field_exists(t->__state))
		return btf ? t->__state : BPF_CORE_READ(t, __state);
	return btf ? (unsigned int)old->state : (unsigned int)BPF_CORE_READ(old, state);
}

static __always_inline __u64 task_exec(struct task_struct *t, const bool btf)
{
	return btf ? t->se.sum_exec_runtime : BPF_CORE_READ(t, se.sum_exec_runtime);
}

/* Where the current slice started (set when the thread is picked). */
static __always_inline __u64 task_slice_start(struct task_struct *t, const bool btf)
{
	return btf ? t->se.prev_sum_exec_runtime : BPF_CORE_READ(t, se.prev_sum_exec_runtime);
}

static __always_inline __u64 task_cgid(struct task_struct *t, const bool btf)
{
	return btf ? t->cgroups->dfl_cgrp->kn->id : BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* ---- shared logic ------------------------------------------------------------ */

static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8)  { v >>= 8;  r += 8; }
	if (v >> 4)  { v >>= 4;  r += 4; }
	if (v >> 2)  { v >>= 2;  r += 2; }
	if (v >> 1)  r += 1;
	return r < TIERPROBE_HIST ? r : TIERPROBE_HIST - 1;
}

/* The thread's record, created with `charged` as what was already charged
 * when create is set. NULL when absent (or the map refused it). */
static __always_inline struct tierprobe_task *task_rec(__u32 tid, bool create, __u64 charged,
						       __u64 cgid)
{
	struct tierprobe_task *t = bpf_map_lookup_elem(&tasks, &tid);
	struct tierprobe_task init = { .last_exec_ns = charged, .cgid = cgid };
	long err;

	if (t || !create)
		return t;
	err = bpf_map_update_elem(&tasks, &tid, &init, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count_err(err);
		return NULL;
	}
	return bpf_map_lookup_elem(&tasks, &tid);
}

/* Charge a thread's run time up to exec (its sum_exec_runtime now). Without
 * a record (map full) only the current slice is known. */
static __always_inline void charge(struct tierprobe_cg *cg, struct tierprobe_task *t, __u64 exec,
				   __u64 slice_start)
{
	__u64 from = slice_start;

	/* In a register now: clang would otherwise load through a select of
	 * two pointers (map value, task_struct), which the verifier refuses. */
	barrier_var(from);
	if (t)
		from = t->last_exec_ns;
	if (exec > from)
		cg->cpu_ns += exec - from;
	if (t)
		t->last_exec_ns = exec;
}

static __always_inline void switch_out(struct task_struct *prev, __u64 now, const bool btf)
{
	__u32 tid = task_tid(prev, btf);
	__u64 cgid = bpf_get_current_cgroup_id();
	struct tierprobe_cg *cg;
	struct tierprobe_task *t;
	unsigned int state;

	if (!tid)
		return; /* the idle task */
	cg = bpf_map_lookup_elem(&cgroups, &cgid);
	if (!cg) {
		/* Not (or no longer) in a tracked cgroup: forget the thread, so
		 * time spent here is never charged if it comes back. */
		if (bpf_map_lookup_elem(&tasks, &tid))
			bpf_map_delete_elem(&tasks, &tid);
		return;
	}
	state = task_state(prev, btf);
	t = task_rec(tid, state != TASK_DEAD, task_slice_start(prev, btf), cgid);
	charge(cg, t, task_exec(prev, btf), task_slice_start(prev, btf));
	if (t)
		t->cgid = cgid;
	if (state == TASK_RUNNING) {
		cg->invol_switches++;
		if (t)
			t->queued_ns = now;
		return;
	}
	cg->vol_switches++;
	if (t)
		t->queued_ns = 0;
	if (state == TASK_DEAD)
		bpf_map_delete_elem(&tasks, &tid);
}

/* The wait ends; it is charged to the cgroup the thread waited in, as the
 * record has it (set where the wait began), which spares reading
 * next->cgroups->dfl_cgrp->kn->id: four cache lines of a task that has
 * not run for a while. */
static __always_inline void switch_in(struct task_struct *next, __u64 now, const bool btf)
{
	__u32 tid = task_tid(next, btf);
	struct tierprobe_task *t;
	struct tierprobe_cg *cg;
	__u64 since, delay;

	if (!tid)
		return;
	t = bpf_map_lookup_elem(&tasks, &tid);
	if (!t || !t->queued_ns)
		return;
	since = t->queued_ns;
	t->queued_ns = 0;
	cg = bpf_map_lookup_elem(&cgroups, &t->cgid);
	if (!cg)
		return;
	delay = now > since ? now - since : 0;
	cg->runq_delay_ns += delay;
	cg->runq_waits++;
	cg->runq_hist[log2_bucket(delay)]++;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next,
				     const bool btf)
{
	__u64 now = bpf_ktime_get_ns();

	switch_out(prev, now, btf);
	switch_in(next, now, btf);
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *p, const bool btf)
{
	__u64 cgid = task_cgid(p, btf);
	struct tierprobe_task *t;

	if (!bpf_map_lookup_elem(&cgroups, &cgid))
		return 0;
	/* A sleeping thread's sum_exec_runtime is final: nothing uncharged. */
	t = task_rec(task_tid(p, btf), true, task_exec(p, btf), cgid);
	if (!t)
		return 0;
	t->cgid = cgid;
	/* A wake-up of a thread already queued does not restart its wait. */
	if (!t->queued_ns)
		t->queued_ns = bpf_ktime_get_ns();
	return 0;
}

/* ---- tp_btf ------------------------------------------------------------------ */

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, true);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(tp_btf_wakeup, struct task_struct *p)
{
	return on_wakeup(p, true);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(tp_btf_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p, true);
}

/* ---- raw_tp ------------------------------------------------------------------ */

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next, false);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_tp_wakeup, struct task_struct *p)
{
	return on_wakeup(p, false);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_tp_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p, false);
}

/* ---- flush: never attached; the loader runs it on each CPU -------------------
 * BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU runs it in an IPI on that
 * CPU, so the current task is whatever runs there (with interrupts off, so
 * it cannot interleave with a sched_switch of that CPU). sum_exec_runtime
 * is current as of the last tick, as cpu.stat is. */
SEC("raw_tp")
int flush(void *ctx)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	__u64 cgid = bpf_get_current_cgroup_id();
	__u32 tid = BPF_CORE_READ(cur, pid);
	__u64 start = BPF_CORE_READ(cur, se.prev_sum_exec_runtime);
	struct tierprobe_task *t;
	struct tierprobe_cg *cg;

	if (!tid)
		return 0;
	cg = bpf_map_lookup_elem(&cgroups, &cgid);
	if (!cg)
		return 0;
	/* Without a record the slice is charged whole at switch-out. */
	t = task_rec(tid, true, start, cgid);
	if (t)
		charge(cg, t, BPF_CORE_READ(cur, se.sum_exec_runtime), start);
	return 0;
}

/* ---- logical IO: the read/write family's exit tracepoints -------------------- */

static __always_inline int count_io(long ret, bool write)
{
	__u64 cgid;
	struct tierprobe_cg *cg;

	if (ret <= 0)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	cg = bpf_map_lookup_elem(&cgroups, &cgid);
	if (!cg)
		return 0;
	if (write)
		__sync_fetch_and_add(&cg->write_bytes, (__u64)ret);
	else
		__sync_fetch_and_add(&cg->read_bytes, (__u64)ret);
	return 0;
}

#define IO_EXIT(name, write)                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                        \
	int io_##name(struct trace_event_raw_sys_exit *ctx)               \
	{                                                                 \
		return count_io(ctx->ret, write);                         \
	}

IO_EXIT(read, false)
IO_EXIT(readv, false)
IO_EXIT(pread64, false)
IO_EXIT(preadv, false)
IO_EXIT(preadv2, false)
IO_EXIT(write, true)
IO_EXIT(writev, true)
IO_EXIT(pwrite64, true)
IO_EXIT(pwritev, true)
IO_EXIT(pwritev2, true)

/* ---- network: cgroup_skb on the tiers, charged to the socket's cgroup -------
 * skb->len is the IP packet (headers included) as the hook sees it: one
 * GSO packet on egress counts once, with its headers once. */

static __always_inline int count_net(struct __sk_buff *skb, bool egress)
{
	__u64 cgid = bpf_skb_cgroup_id(skb);
	struct tierprobe_cg *cg = bpf_map_lookup_elem(&cgroups, &cgid);

	if (cg) {
		if (egress)
			__sync_fetch_and_add(&cg->net_tx_bytes, (__u64)skb->len);
		else
			__sync_fetch_and_add(&cg->net_rx_bytes, (__u64)skb->len);
	}
	return 1; /* never drop */
}

SEC("cgroup_skb/ingress")
int net_ingress(struct __sk_buff *skb)
{
	return count_net(skb, false);
}

SEC("cgroup_skb/egress")
int net_egress(struct __sk_buff *skb)
{
	return count_net(skb, true);
}
