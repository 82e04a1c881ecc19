/* SPDX-License-Identifier: MIT */
/*
 * trivial-agent — the one agent binary of the supervision benchmark
 * (bench/supervise_bench.c), run unchanged by tierd, s6 and runit.
 *
 *   started by tierd (TIER_* in the environment): tier_agent_open() says
 *       HELLO, which is tierd's readiness; then it waits for tasks forever
 *       and answers each with an empty "ok";
 *   started by s6 (SVB_NOTIFY_FD=N in the environment, N the service's
 *       notification-fd): writes "\n" to fd N, which is s6's readiness,
 *       closes it and pauses;
 *   otherwise (runit, which has no readiness protocol): pauses.
 *
 * It installs no signal handler: SIGTERM and SIGKILL end it at once under
 * all three supervisors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tier/agent.h"

static int serve_tierd(void)
{
	struct tier_agent *a = tier_agent_open(NULL);
	struct tier_task t;
	int r;

	if (!a) {
		fprintf(stderr, "trivial-agent: tier_agent_open: %s\n", strerror(errno));
		return 1;
	}
	while ((r = tier_agent_next(a, &t, -1)) >= 0)
		if (r == 1 && tier_agent_reply(a, &t, TIER_ST_OK, -1, NULL, 0) < 0)
			break;
	tier_agent_close(a);
	return r < 0 ? 1 : 0;
}

static int notify_s6(const char *fdstr)
{
	char *end;
	long fd = strtol(fdstr, &end, 10);
	ssize_t w;

	if (*fdstr == 0 || *end != 0 || fd < 3 || fd > 1 << 20) {
		fprintf(stderr, "trivial-agent: SVB_NOTIFY_FD='%s' is not a descriptor >= 3\n", fdstr);
		return -EINVAL;
	}
	do
		w = write((int)fd, "\n", 1);
	while (w < 0 && errno == EINTR);
	if (w != 1) {
		fprintf(stderr, "trivial-agent: notification fd %ld: %s\n", fd, strerror(errno));
		return -errno;
	}
	close((int)fd);
	return 0;
}

int main(void)
{
	const char *nfd = getenv("SVB_NOTIFY_FD");

	if (getenv("TIER_AGENT"))
		return serve_tierd();
	if (nfd && notify_s6(nfd) < 0)
		return 1;
	for (;;)
		pause();
}
