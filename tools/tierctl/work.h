/* SPDX-License-Identifier: MIT */
/* tierctl commands about work: tasks, runs, traces, events. */
#ifndef TCTL_WORK_H
#define TCTL_WORK_H

#include "commands.h"

int tctl_args_submit(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		     json_t **ret_args);
int tctl_args_run(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		  json_t **ret_args);
int tctl_args_task(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		   json_t **ret_args);
int tctl_args_run_id(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		     json_t **ret_args);
int tctl_args_runs(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		   json_t **ret_args);

void tctl_render_task(FILE *out, const char *label, const json_t *r);
void tctl_render_task_id(FILE *out, const char *label, const json_t *r);
void tctl_render_run(FILE *out, const char *label, const json_t *r);
void tctl_render_runs(FILE *out, const char *label, const json_t *r);
void tctl_render_json(FILE *out, const char *label, const json_t *r);

int tctl_run_events(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv);

#endif
