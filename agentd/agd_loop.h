/* SPDX-License-Identifier: MIT */
/*
 * agd_loop — the set of fds agentd waits on, rebuilt every turn from the
 * state of the modes (an fd is in it only while it is worth waking for:
 * a child's stdin only with bytes pending, the SQ doorbell only while
 * there is room for tasks), then one ppoll and a dispatch to handlers.
 *
 * Handlers may close fds but must not create any: an fd number freed in a
 * turn must not come back to a later entry of the same turn. Each handler
 * checks that the fd it is given is still the one it owns.
 */
#ifndef AGD_LOOP_H
#define AGD_LOOP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

typedef void agd_handler_fn(void *ctx, int fd, short revents);

struct agd_loop {
	struct pollfd *pfd;
	struct agd_watch {
		agd_handler_fn *fn;
		void           *ctx;
	} *w;
	size_t n, cap;
};

void agd_loop_reset(struct agd_loop *l);
/* Watch fd for events this turn. -ENOMEM. */
int agd_loop_add(struct agd_loop *l, int fd, short events, agd_handler_fn *fn, void *ctx);
/* Wait until an fd is ready or until deadline_ns (CLOCK_MONOTONIC; 0 = no
 * deadline; *now_ns is the current time), refresh *now_ns, then call the
 * handlers of the ready fds. Returns the number of ready fds (0 on timeout
 * or a signal) or -errno. */
int agd_loop_run(struct agd_loop *l, int64_t deadline_ns, int64_t *now_ns);
void agd_loop_free(struct agd_loop *l);

#endif
