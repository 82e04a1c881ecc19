/* SPDX-License-Identifier: MIT */
/*
 * The control commands' files: commands.c (targets, lifecycle, status,
 * the command table), commands_tasks.c (tasks, runs, rolling restarts:
 * what a client waits for), commands_tune.c (measure and adapt),
 * commands_bench.c (bench-dispatch: tasks generated inside tierd).
 */
#ifndef SUP_COMMANDS_INTERNAL_H
#define SUP_COMMANDS_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

struct sup_daemon;
struct sup_agent;
struct sup_ctl_client;

/* stagger_ms: the longest [tierN] stagger the config takes. */
#define CMD_STAGGER_MS_MAX (3600 * 1000.0)

/* Fills agents[] with the agents target names; returns how many or -errno
 * (after replying with the error). */
int sup_cmd_resolve_target(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args,
			   struct sup_agent ***ret);

#define SUP_CMD_FN(name) \
	void name(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)

SUP_CMD_FN(sup_cmd_submit);
SUP_CMD_FN(sup_cmd_rolling_restart);
SUP_CMD_FN(sup_cmd_result);
SUP_CMD_FN(sup_cmd_cancel);
SUP_CMD_FN(sup_cmd_run);
SUP_CMD_FN(sup_cmd_trace);
SUP_CMD_FN(sup_cmd_runs);

SUP_CMD_FN(sup_cmd_top);
SUP_CMD_FN(sup_cmd_history);
SUP_CMD_FN(sup_cmd_limits);
SUP_CMD_FN(sup_cmd_limit);
SUP_CMD_FN(sup_cmd_analyze);
SUP_CMD_FN(sup_cmd_optimiser);
SUP_CMD_FN(sup_cmd_allocator);

SUP_CMD_FN(sup_cmd_bench_dispatch);

SUP_CMD_FN(sup_cmd_fleet_status);
SUP_CMD_FN(sup_cmd_fleet_drain);
SUP_CMD_FN(sup_cmd_fleet_undrain);

#endif
