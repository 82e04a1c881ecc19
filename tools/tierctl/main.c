/* SPDX-License-Identifier: MIT */
/*
 * tierctl — talk to tierd over its control socket.
 *
 *   tierctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS]
 *
 * Commands live in commands.c; this file reads the global options only.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "commands.h"

/* Seconds (fractions allowed) to ms; 0 = no timeout (-1). */
static int parse_timeout(const char *s, int *ret_ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !isfinite(v) || v < 0 || v > INT32_MAX / 1000)
		return -1;
	*ret_ms = v == 0 ? -1 : (int)ceil(v * 1000);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket",  required_argument, NULL, 's' },
		{ "json",    no_argument,       NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env = getenv(TCTL_SOCKET_ENV);
	struct tctl_opts o = {
		.socket = env && *env ? env : TCTL_SOCKET_DEFAULT,
		.timeout_ms = TCTL_TIMEOUT_MS_DEFAULT,
	};
	const struct tctl_cmd *cmd;
	int c;

	/* "+": options end at the command, whose own flags (events -f ...)
	 * are its business. */
	while ((c = getopt_long(argc, argv, "+s:jt:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 't':
			if (parse_timeout(optarg, &o.timeout_ms) < 0) {
				fprintf(stderr, "tierctl: --timeout takes seconds (0 = none), not '%s'\n",
					optarg);
				tctl_usage(stderr);
				return TCTL_EXIT_USAGE;
			}
			break;
		case 'h':
			tctl_usage(stdout);
			return TCTL_EXIT_OK;
		default:
			tctl_usage(stderr);
			return TCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "tierctl: no command given\n");
		tctl_usage(stderr);
		return TCTL_EXIT_USAGE;
	}
	cmd = tctl_cmd_find(argv[optind]);
	if (!cmd) {
		fprintf(stderr, "tierctl: unknown command '%s'\n", argv[optind]);
		tctl_usage(stderr);
		return TCTL_EXIT_USAGE;
	}
	return tctl_cmd_run(cmd, &o, argc - optind, argv + optind);
}
