/* SPDX-License-Identifier: MIT */
/*
 * Baseline (c): a hand-rolled pool of worker processes over pipes. The
 * driver keeps up to window tasks in flight, spread over the workers (round
 * robin, window / workers each), writes each worker's tasks with one write
 * and reads each worker's batched replies with one read. It is the
 * dispatcher, like tierd running bench-dispatch: no separate client. Run it
 * with disp_proc_start(&p, &disp_pool_ops, &(struct disp_pool_arg){...}).
 */
#ifndef DISPATCH_POOL_H
#define DISPATCH_POOL_H

#include "dispatch_util.h"

struct disp_pool_arg {
	const char *worker;     /* bench/agents/pipe-worker */
	unsigned    nworkers;
};

extern const struct disp_proc_ops disp_pool_ops;

#endif
