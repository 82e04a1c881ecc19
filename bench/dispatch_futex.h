/* SPDX-License-Identifier: MIT */
/*
 * The futex ping-pong the workflow's per-step overhead is held against: two
 * processes, and before each timed round trip an untimed sleep that lets
 * both sides fall asleep, so every round trip pays two wakes, as a workflow
 * step does (tierd wakes sleeping agents, the last reply wakes tierd).
 *
 * Unpinned, the scheduler may run both ends on one CPU and a round trip is
 * two context switches; pinned to two CPUs (as the ring benchmark does),
 * each wake is a wake of an idle CPU, which is what a step whose agents run
 * on both CPUs pays. Both sides are children: the caller is never pinned.
 */
#ifndef DISPATCH_FUTEX_H
#define DISPATCH_FUTEX_H

#include <stdbool.h>

#include "dispatch_util.h"

/* p50/p90/p99 of n round trips into ret; cross_cpu pins the ends to CPUs 0
 * and 1. */
int disp_futex_rt(uint64_t n, int64_t gap_ns, bool cross_cpu, struct disp_result *ret);

#endif
