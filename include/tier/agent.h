/* SPDX-License-Identifier: MIT */
/*
 * tier/agent.h — libtier: the agent's side of tierd's rings.
 *
 *   struct tier_agent *a = tier_agent_open(NULL);     // attach + HELLO
 *   struct tier_task t;
 *   while (tier_agent_next(a, &t, -1) == 1) {
 *       ... t.type, t.payload, t.len (valid until the next call) ...
 *       tier_agent_reply(a, &t, TIER_ST_OK, 8.5, out, out_len);
 *   }
 *   tier_agent_close(a);
 *
 * Returns: >= 0 success, -errno or -TIER_E_* (see tier/ring.h) on failure.
 */
#ifndef TIER_AGENT_H
#define TIER_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "tier/proto.h"
#include "tier/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct tier_agent;

struct tier_agent_opts {
	size_t   sz;            /* sizeof(struct tier_agent_opts) */
	int64_t  spin_ns;       /* spin window before sleeping; -1: TIER_SPIN_NS or 50 us */
	uint32_t max_inflight;  /* announced in HELLO; 0 = no limit */
	uint32_t flags;         /* TIER_AGENT_* */
};
/* Sleep on the SQ eventfd (tier_agent_fd) instead of the futex: for agents
 * with their own poll loop. tier_agent_next(…, 0) then never blocks. */
#define TIER_AGENT_EVENTFD 0x1u
/* Replies are published by tier_agent_flush() (or the next wait), not one
 * by one. */
#define TIER_AGENT_BATCH   0x2u

/* A task as delivered; type and payload point into the ring and stay valid
 * until the next tier_agent_next() call. */
struct tier_task {
	uint64_t    id;
	const char *type;       /* not NUL-terminated: type_len bytes */
	uint16_t    type_len;
	uint16_t    flags;      /* TIER_TASK_* */
	uint32_t    attempt;
	const void *payload;
	uint32_t    len;
	const char *context;     /* earlier workflow stages' results (text) */
	uint32_t    context_len; /* 0 outside workflows */
	int64_t     deadline_ns; /* CLOCK_MONOTONIC, 0 = none */
	int64_t     started_ns;  /* when tier_agent_next returned it */
};

/* Attach from the environment (TIER_* variables, fds 3-5) and say HELLO.
 * NULL with errno set on failure (ENOENT: not started by tierd). */
struct tier_agent *tier_agent_open(const struct tier_agent_opts *opts);
void tier_agent_close(struct tier_agent *a);

/* Next task: 1 and *t filled, 0 on timeout (timeout_ns; -1 waits forever,
 * 0 polls), negative on error. Cancels tierd sends for tasks not yet
 * delivered are skipped; for the task being processed see
 * tier_agent_cancelled(). */
int tier_agent_next(struct tier_agent *a, struct tier_task *t, int64_t timeout_ns);

/* Reply to t: status TIER_ST_OK, TIER_ST_ERROR or TIER_ST_TIMEOUT (for a
 * payload is then the reason, one sentence), quality 0..10 or < 0 for
 * none, payload (may be NULL/0). -EMSGSIZE if it does not fit a record,
 * -EAGAIN never (waits for ring space). */
int tier_agent_reply(struct tier_agent *a, const struct tier_task *t, int status,
		     double quality, const void *payload, uint32_t len);

/* Reply by writing the payload in place: reserve up to max bytes, fill
 * *ret_buf, then tier_agent_reply_commit with the real length. */
int tier_agent_reply_reserve(struct tier_agent *a, uint32_t max, void **ret_buf);
int tier_agent_reply_commit(struct tier_agent *a, const struct tier_task *t, int status,
			    double quality, uint32_t len);

/* Publish batched replies now, and hand consumed task space back to tierd
 * (also done every 32 tasks and whenever the task ring runs dry). */
int tier_agent_flush(struct tier_agent *a);
/* Tell tierd we are alive while working on something long. */
int tier_agent_heartbeat(struct tier_agent *a);
/* One log line through the ring (tierd logs it tagged with the agent). */
int tier_agent_log(struct tier_agent *a, const char *line);

/* Report an event (kind: short word like "child_died"; message: one
 * sentence) into tierd's event journal; task_id 0 if not about a task. */
int tier_agent_event(struct tier_agent *a, uint64_t task_id, const char *kind, const char *message);

/* Has tierd asked to cancel task id? (checked against CANCEL records seen) */
int tier_agent_cancelled(struct tier_agent *a, uint64_t id);

const char *tier_agent_name(const struct tier_agent *a);
int         tier_agent_tier(const struct tier_agent *a);
/* The SQ doorbell eventfd, for agents polling it (TIER_AGENT_EVENTFD). */
int         tier_agent_fd(const struct tier_agent *a);
uint32_t    tier_agent_max_payload(const struct tier_agent *a);

#ifdef __cplusplus
}
#endif
#endif
