/* SPDX-License-Identifier: MIT */
/*
 * agd_bridge — what both modes of agentd share: options, the ring handle,
 * the clock of the current loop turn, replies, events and agentd's own log.
 */
#ifndef AGD_BRIDGE_H
#define AGD_BRIDGE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier/agent.h"

enum agd_mode { AGD_MODE_STDIO, AGD_MODE_EXEC };

/* Exit codes: tierd restarts agentd by its own policy after any but 0. */
enum {
	AGD_EXIT_OK = 0,        /* stopped by SIGTERM/SIGINT */
	AGD_EXIT_USAGE = 1,     /* bad options, not started by tierd, setup failed */
	AGD_EXIT_GAVE_UP = 2,   /* the child kept failing: restart budget spent */
	AGD_EXIT_RING = 3,      /* the rings failed (tierd broke the protocol) */
};

struct agd_opts {
	enum agd_mode mode;
	int64_t   timeout_ns;        /* per task; 0 = only tierd's deadline */
	int64_t   hang_ns;           /* stdio: silence with tasks out = hung; 0 = off */
	unsigned  jobs;              /* exec: processes at once */
	unsigned  pipeline;          /* stdio: requests outstanding at once */
	int64_t   grace_ns;          /* on SIGTERM: to finish, then after SIGTERM */
	unsigned  restart_max;       /* restarts within the window before giving up */
	int64_t   restart_window_ns;
	int64_t   restart_delay_ns;  /* first backoff step (the first restart is immediate) */
	double    log_rate;          /* stderr lines per second forwarded */
	uint64_t  flood_bytes;       /* stderr bytes per second that count as a flood; 0 = off */
	char    **argv;              /* the binary and its arguments */
};

struct agd_stats {
	uint64_t tasks, ok, errors, timeouts, events, restarts, log_dropped;
};

struct agd {
	struct tier_agent      *a;
	const struct agd_opts  *o;
	int64_t                 now;          /* CLOCK_MONOTONIC at this loop turn */
	uint32_t                max_payload;  /* largest result payload */
	char                    path[PATH_MAX]; /* the binary, resolved */
	char                  **env;          /* base environment of children */
	bool                    stopping;     /* SIGTERM seen: no new tasks */
	int64_t                 stop_ns;
	bool                    done;
	int                     exit_code;
	struct agd_stats        st;
	/* Token bucket shared by every child's stderr (agd_forward). */
	double                  log_tokens;
	int64_t                 log_refill_ns;
	uint64_t                log_unreported;  /* dropped, not yet said so */
};

int64_t agd_clock(void);

/* agentd's own log line on stderr (tierd captures it), with a <prio>
 * prefix for journald. */
void agd_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Result for task id. A ring failure ends agentd (AGD_EXIT_RING). */
void agd_reply(struct agd *g, uint64_t id, int64_t started_ns, int status, double quality,
	       const void *payload, uint32_t len);
/* Result with a formatted one-sentence reason as payload. */
void agd_fail(struct agd *g, uint64_t id, int64_t started_ns, int status, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* EVENT record (kind: one word) into tierd's journal. */
void agd_event(struct agd *g, uint64_t task_id, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Forward one line of a child's stderr as a LOG record, within the rate
 * limit; the first line let through after drops says how many went. */
void agd_forward(struct agd *g, const char *line, size_t len);
/* Stop the loop with this exit code. */
void agd_quit(struct agd *g, int code);
/* The next task without waiting: 1 and *t, 0 if the ring is empty (its
 * doorbell armed), or 0 after quitting when the ring is broken. */
int agd_next_task(struct agd *g, struct tier_task *t);

/* When a task must be answered by: tierd's deadline or --timeout-ms from
 * now, whichever comes first; 0 = never. */
int64_t agd_deadline(const struct agd *g, const struct tier_task *t);

/* The environment children get: agentd's, without the ring's variables
 * (TIER_PROTO, TIER_SPIN_NS: the child has no ring), with TIER_BRIDGE set
 * to the mode. NULL and errno on failure; free with agd_env_free. */
char **agd_env_base(enum agd_mode mode);
/* n "KEY=value" strings (copied) ahead of base; free with
 * agd_env_free_extra(env, n), which leaves base's strings alone. */
char **agd_env_extend(char **base, char *const extra[], size_t n);
void agd_env_free(char **env);
void agd_env_free_extra(char **env, size_t n);

#endif
