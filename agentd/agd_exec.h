/* SPDX-License-Identifier: MIT */
/*
 * agd_exec — mode exec: one process per task, up to --jobs at once. The
 * payload goes to its stdin, its stdout becomes the result, its exit
 * status the task's status (non-zero: an error whose reason is the last
 * line on stderr), and a task that outlives its deadline has its process
 * group killed and is answered with a timeout.
 */
#ifndef AGD_EXEC_H
#define AGD_EXEC_H

#include <stdint.h>

#include "agd_bridge.h"
#include "agd_loop.h"

struct agd_exec;

struct agd_exec *agd_exec_new(struct agd *g);
/* Kills and reaps whatever still runs. NULL is fine. */
void agd_exec_free(struct agd_exec *x);

/* Same contract as agd_stdio_turn. */
int agd_exec_turn(struct agd_exec *x, struct agd_loop *l, int64_t *ret_deadline,
		  int *ret_want_tasks);

#endif
