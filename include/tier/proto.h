/* SPDX-License-Identifier: MIT */
/*
 * tier/proto.h — what travels in the rings between tierd and an agent, and
 * how an agent finds its rings.
 *
 * An agent process starts with:
 *   fd TIER_FD_RING     the sealed ring memfd (attach with tier_shm_attach)
 *   fd TIER_FD_CQ_BELL  eventfd tierd polls; the agent's CQ producer writes it
 *                       when tierd sleeps (tier_prod_set_eventfd)
 *   fd TIER_FD_SQ_BELL  eventfd tierd writes when the agent sleeps on
 *                       TIER_SLEEP_EVENTFD (for agents with their own poll
 *                       loop, e.g. agentd); futex sleepers ignore it
 * and environment TIER_AGENT (name), TIER_TIER (1..4), TIER_INCARNATION,
 * TIER_PROTO (protocol version), TIER_SPIN_NS (suggested spin window).
 *
 * All multi-byte fields are host-endian (both ends are on one machine).
 */
#ifndef TIER_PROTO_H
#define TIER_PROTO_H

#include <stdint.h>

#define TIER_PROTO_VERSION 1u

#define TIER_FD_RING    3
#define TIER_FD_CQ_BELL 4
#define TIER_FD_SQ_BELL 5

/* Record types (struct tier_rec_hdr.type). 0 is the ring's padding. An
 * agent may send only HELLO, RESULT, HEARTBEAT, LOG and EVENT; any other
 * type on its completion ring (the tierd -> agent types, 6, 7, 11..65535)
 * is a protocol violation: tierd kills that incarnation with one
 * protocol_violation event. See docs/rings.md, "What tierd does with a
 * broken agent". */
enum tier_msg_type {
	/* agent -> tierd */
	TIER_MSG_HELLO     = 1,  /* payload: struct tier_hello; task_id 0 */
	TIER_MSG_RESULT    = 2,  /* payload: struct tier_result + bytes */
	TIER_MSG_HEARTBEAT = 3,  /* no payload */
	TIER_MSG_LOG       = 4,  /* payload: one line of text (no newline) */
	TIER_MSG_EVENT     = 5,  /* payload: "kind" NUL "message"; task_id or 0 */
	/* tierd -> agent */
	TIER_MSG_TASK      = 8,  /* payload: struct tier_task + type + bytes */
	TIER_MSG_CANCEL    = 9,  /* task_id to give up; no payload */
	TIER_MSG_WELCOME   = 10, /* answer to HELLO; payload: struct tier_welcome */
};

struct tier_hello {
	uint32_t proto;      /* TIER_PROTO_VERSION the agent speaks */
	uint32_t pid;        /* getpid() of the agent, for the log */
	uint32_t flags;      /* TIER_HELLO_* */
	uint32_t max_inflight; /* tasks it accepts at once; 0 = tierd's default
			        * (64, SUP_PIPELINE_DEPTH); any other value is
			        * the cap. Fewer are in flight when the ring is
			        * full. */
};
#define TIER_HELLO_BATCH  0x1u  /* agent batches replies */

/* The agent counts as ready (state `ready`, tasks dispatched to it) from
 * the moment tierd has taken a valid HELLO: payload at least a struct
 * tier_hello, proto >= 1, the first HELLO of the incarnation. tierd answers
 * with WELCOME. A RESULT before it, a second HELLO or no HELLO within
 * start_timeout gets the agent killed. */
struct tier_welcome {
	uint32_t proto;      /* version tierd will speak (<= agent's) */
	uint32_t flags;
};

/* Task: struct tier_task_hdr, then type_len bytes of type name (not
 * NUL-terminated), then context_len bytes of context (the results of earlier
 * workflow stages, text, one line per result), then the payload (the rest
 * of the record). */
struct tier_task_hdr {
	int64_t  deadline_ns;  /* CLOCK_MONOTONIC; 0 = none */
	uint16_t type_len;
	uint16_t flags;        /* TIER_TASK_* */
	uint32_t attempt;      /* 1 for the first try, 2… for retries */
	uint32_t context_len;
	uint32_t reserved;
};
#define TIER_TASK_CONTEXT_TRUNCATED 0x1u /* workflow context was cut to fit */

enum tier_status {
	TIER_ST_OK        = 0,
	TIER_ST_ERROR     = 1,
	TIER_ST_TIMEOUT   = 2,
	TIER_ST_CRASHED   = 3,
	TIER_ST_REJECTED  = 4,
	TIER_ST_CANCELLED = 5,
};
#define TIER_ST_COUNT 6

/* Result: header then payload (the rest of the record). The task_id must
 * be a task this incarnation holds; a record shorter than the header, or
 * for any other id (never issued, answered already, another agent's), is a
 * violation (the task, if held, fails). An answer to a task tierd gave up
 * (deadline, cancel: it sent CANCEL) is late: counted, dropped. */
struct tier_result {
	uint8_t  status;       /* enum tier_status (agents send OK or ERROR) */
	uint8_t  has_quality;  /* 1 if quality is set */
	uint16_t quality_x100; /* 0..1000 = quality 0.00..10.00 */
	uint32_t reserved;
	int64_t  started_ns;   /* CLOCK_MONOTONIC when the agent began the task */
	int64_t  finished_ns;  /* … and when it finished */
};

#endif
