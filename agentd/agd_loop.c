/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "agd_loop.h"

void agd_loop_reset(struct agd_loop *l)
{
	l->n = 0;
}

int agd_loop_add(struct agd_loop *l, int fd, short events, agd_handler_fn *fn, void *ctx)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct pollfd *pfd = realloc(l->pfd, cap * sizeof(*pfd));
		struct agd_watch *w;

		if (!pfd)
			return -ENOMEM;
		l->pfd = pfd;
		w = realloc(l->w, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		l->w = w;
		l->cap = cap;
	}
	l->pfd[l->n] = (struct pollfd){ .fd = fd, .events = events };
	l->w[l->n] = (struct agd_watch){ .fn = fn, .ctx = ctx };
	l->n++;
	return 0;
}

int agd_loop_run(struct agd_loop *l, int64_t deadline_ns, int64_t *now_ns)
{
	struct timespec ts, *tsp = NULL;
	int n;

	if (deadline_ns) {
		int64_t left = deadline_ns - *now_ns;

		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tsp = &ts;
	}
	/* The wait's own timeout serves as the deadline timer: the loop
	 * recomputes the earliest deadline every turn anyway, and a timerfd
	 * would cost a settime call each time it moves. */
	n = ppoll(l->pfd, l->n, tsp, NULL);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	*now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	for (size_t i = 0; i < l->n && n; i++) {
		if (!l->pfd[i].revents)
			continue;
		l->w[i].fn(l->w[i].ctx, l->pfd[i].fd, l->pfd[i].revents);
	}
	return n;
}

void agd_loop_free(struct agd_loop *l)
{
	free(l->pfd);
	free(l->w);
	*l = (struct agd_loop){ 0 };
}
