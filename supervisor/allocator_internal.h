/* SPDX-License-Identifier: MIT */
/*
 * The allocator's insides, shared by allocator.c and allocator_state.c (its
 * part of the live-upgrade state). Nothing else includes this.
 */
#ifndef SUP_ALLOCATOR_INTERNAL_H
#define SUP_ALLOCATOR_INTERNAL_H

#include "agent.h"
#include "alloc_math.h"
#include "allocator.h"
#include "cgroup/cg_knob.h"
#include "loop.h"

/* One knob of one tier, written through io_uring. */
struct slot {
	struct sup_allocator *a;
	int                   tier;
	enum sup_cg_knob      knob;
	int                   fd;
	struct sup_ev         ev;
	char                  buf[SUP_CG_VAL_MAX];
	char                  value[SUP_CG_VAL_MAX];  /* last written */
	double                last_num;
	int64_t               last_ns;
	bool                  written, inflight;
	int                   err;                    /* last write's -errno */
	const char           *skipped;                /* why it is not written */
};

enum { S_CPU_MAX, S_CPU_WEIGHT, S_MEM_HIGH, S_MEM_MAX, S_MEM_LOW, S_PIDS_MAX, S_IO_WEIGHT,
       S_SWAP_MAX, S_OOM_GROUP, S_CPU_IDLE, S_CPUSET, S_N };

struct sup_allocator {
	struct sup_allocator_deps dep;
	struct slot             s[SUP_NTIERS + 1][S_N];
	struct sup_alloc_input  cpu_in, mem_in;
	struct sup_alloc_result cpu, mem;
	double                  mem_high[SUP_NTIERS + 1]; /* current memory.high we set */
	double                  pin_cpu[SUP_NTIERS + 1], pin_mem[SUP_NTIERS + 1];
	double                  bias[SUP_NTIERS + 1];
	uint64_t                weight[SUP_NTIERS];
	bool                    idle[SUP_NTIERS + 1];
	int64_t                 idle_until[SUP_NTIERS + 1];
	char                    idle_why[SUP_NTIERS + 1][200];
	bool                    enabled;
	bool                    io_active;
	bool                    io_bfq;
	char                    io_why[160];
	int64_t                 ticks;
	/* A static limit's write was in flight at a live upgrade: the next
	 * tick writes the static limits again (allocator_state.c). */
	bool                    redo_static;
	struct sup_agent_observer obs;  /* hears of replaced leaves */
};

#endif
