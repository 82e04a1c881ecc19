/* SPDX-License-Identifier: MIT */
/*
 * tasks_env — everything the task table and the workflow need from the rest
 * of tierd, as one table of functions: the clock and timers, the agents,
 * the agents' task rings, and where events and outcomes go.
 *
 * The daemon fills it from itself (sup_daemon_tasks_env, daemon_env.c);
 * the unit tests (tests/test_tasks.c, tests/test_workflow.c) fill it with
 * fakes, so dispatch, retries, deadlines and the workflow's stages can be
 * driven without processes, rings or cgroups. Nothing here knows of the
 * control socket: a task or a run ends through its owner's done callback.
 */
#ifndef SUP_TASKS_ENV_H
#define SUP_TASKS_ENV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier/proto.h"

struct sup_config;
struct sup_agent;
struct sup_timer;
struct sup_defer;

struct sup_tasks_env {
	void *ctx;                /* passed to every function below */

	/* The configuration in force (a reload replaces it). */
	const struct sup_config *(*conf)(void *ctx);
	/* Monotonic ns: the loop's cached time, and a fresh reading. */
	int64_t (*now)(void *ctx);
	int64_t (*now_fresh)(void *ctx);
	/* Timers and end-of-turn work of the event loop. */
	void (*timer_arm)(void *ctx, struct sup_timer *t, int64_t deadline);
	void (*timer_disarm)(void *ctx, struct sup_timer *t);
	void (*defer)(void *ctx, struct sup_defer *df);

	/* The fleet, in configuration order. */
	size_t (*nagents)(void *ctx);
	struct sup_agent *(*agent)(void *ctx, size_t i);
	struct sup_agent *(*find_agent)(void *ctx, const char *name);

	/* An agent's task ring (daemon_env.c for the real ones). send writes
	 * one TASK record: 0, -EMSGSIZE (can never fit), -EAGAIN (full) or a
	 * ring error; cancel writes a CANCEL record (0 or < 0); publish makes
	 * what was written visible and wakes the agent; max_record is the
	 * largest record its ring takes; fault kills the incarnation for a
	 * protocol fault of its own. */
	int (*send)(void *ctx, struct sup_agent *ag, const struct tier_task_hdr *h, uint64_t id,
		    const void *body, uint32_t len);
	int (*cancel)(void *ctx, struct sup_agent *ag, uint64_t id);
	void (*publish)(void *ctx, struct sup_agent *ag);
	uint32_t (*max_record)(void *ctx, struct sup_agent *ag);
	void (*fault)(void *ctx, struct sup_agent *ag, const char *what, int err);

	/* Outcomes: a task finished on ag (for the monitor), an event for the
	 * journal (data is taken over), the agents' CPU time so far. */
	void (*task_done)(void *ctx, struct sup_agent *ag, int status, int64_t latency_ns,
			  double quality);
	void (*event)(void *ctx, const char *kind, json_t *data, const char *msg);
	uint64_t (*fleet_cpu_ns)(void *ctx);
	/* Is tierd shutting down (no new runs)? */
	bool (*shutting_down)(void *ctx);
};

#endif
