/* SPDX-License-Identifier: MIT */
/*
 * agd_stdio — mode stdio: one long-lived child reads a JSON request per
 * line on stdin and writes a JSON reply per line on stdout; up to
 * --pipeline requests are outstanding, answered in any order. Everything
 * the child does wrong fails the tasks it affects with a one-sentence
 * reason, raises an event, and (when the stream cannot be trusted any
 * more) restarts it within a budget, after which agentd gives up.
 */
#ifndef AGD_STDIO_H
#define AGD_STDIO_H

#include <stdint.h>

#include "agd_bridge.h"
#include "agd_loop.h"

struct agd_stdio;

/* NULL with errno on failure. The child starts on the first turn. */
struct agd_stdio *agd_stdio_new(struct agd *g);
/* Kills and reaps a child still running. NULL is fine. */
void agd_stdio_free(struct agd_stdio *s);

/* One loop turn before the wait: expire deadlines, detect a hung child,
 * (re)start it, take tasks from the ring while there is room, write
 * requests; then watch the fds that matter. *ret_deadline gets the next
 * time something is due (0: nothing), *ret_want_tasks whether the SQ
 * doorbell should wake the loop. -ENOMEM. */
int agd_stdio_turn(struct agd_stdio *s, struct agd_loop *l, int64_t *ret_deadline,
		   int *ret_want_tasks);

#endif
