/* SPDX-License-Identifier: MIT */
/*
 * tierctl's command table. A command is one row: its name (the same on the
 * command line and on the wire), how its arguments become the request's
 * "args", and how its result is shown. Most commands are one request and
 * one reply and need nothing else; a command that is more than that
 * (events -f following a stream, top refreshing in place, submit waiting
 * for streamed results) sets run and drives the exchange itself with the
 * client.h calls.
 */
#ifndef TCTL_COMMANDS_H
#define TCTL_COMMANDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "render.h"

#define TCTL_EXIT_OK    0
#define TCTL_EXIT_FAIL  1   /* tierd refused, failed, or could not be reached */
#define TCTL_EXIT_USAGE 2   /* unknown command or bad arguments */

struct tctl_opts {
	const char *socket;
	bool        json;        /* print the result as one line of JSON */
	int         timeout_ms;  /* < 0: wait forever */
};

struct tctl_cmd;

/* argv[0] is the command's name. 0 with *ret_args (NULL = no args), or
 * -EINVAL with the problem in err: a usage error. */
typedef int (*tctl_args_fn)(const struct tctl_cmd *cmd, int argc, char **argv, char *err,
			    size_t errlen, json_t **ret_args);
/* The whole exchange; returns the exit code. */
typedef int (*tctl_run_fn)(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc,
			   char **argv);

struct tctl_cmd {
	const char    *name;
	const char    *synopsis;  /* the arguments, for usage */
	const char    *help;      /* one line */
	tctl_args_fn   args;      /* NULL: the command takes no arguments */
	tctl_render_fn render;    /* human output; NULL prints nothing */
	const char    *label;     /* passed to render */
	tctl_run_fn    run;       /* NULL: tctl_run_simple */
};

/* AGENT or tierN into args: {"agent": "NAME"} or {"tier": N}. */
int tctl_target_set(json_t *args, const char *a, char *err, size_t errlen);

const struct tctl_cmd *tctl_cmd_find(const char *name);
void tctl_usage(FILE *out);
/* Exit code of cmd: run, or one request and its reply. */
int tctl_cmd_run(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv);
/* The generic exchange: build args, connect, call, render or print JSON. */
int tctl_run_simple(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv);

#endif
