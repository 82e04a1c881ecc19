/* SPDX-License-Identifier: MIT */
/*
 * record-agent: answers every task ok with "done <id>" as its result and
 * appends each task id it is given to a file (--ids PATH), one per line,
 * written before the reply. test_crash.py reads the file to see which
 * tasks ran more than once (at-least-once execution) while checking that
 * each id still has exactly one final result.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tier/agent.h"

int main(int argc, char **argv)
{
	struct tier_agent_opts ao = { .sz = sizeof(ao), .spin_ns = -1, .flags = TIER_AGENT_BATCH };
	struct tier_agent *a;
	struct tier_task t;
	int fd = -1, r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ids") && i + 1 < argc) {
			fd = open(argv[++i], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (fd < 0) {
				fprintf(stderr, "record-agent: %s: %s\n", argv[i], strerror(errno));
				return 1;
			}
		} else {
			fprintf(stderr, "usage: record-agent --ids PATH\n");
			return 2;
		}
	}
	a = tier_agent_open(&ao);
	if (!a) {
		fprintf(stderr, "record-agent: cannot attach to tierd: %s\n", tier_strerror(errno));
		return 1;
	}
	while ((r = tier_agent_next(a, &t, -1)) >= 0 || r == -EINTR) {
		char line[32], out[32];
		int n;

		if (r != 1)
			continue;
		n = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)t.id);
		if (fd >= 0 && write(fd, line, (size_t)n) != n)
			fprintf(stderr, "record-agent: write: %s\n", strerror(errno));
		n = snprintf(out, sizeof(out), "done %llu", (unsigned long long)t.id);
		r = tier_agent_reply(a, &t, TIER_ST_OK, -1, out, (uint32_t)n);
		if (r < 0)
			break;
	}
	tier_agent_close(a);
	return r < 0 && r != -EINTR ? 1 : 0;
}
