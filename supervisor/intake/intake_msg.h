/* SPDX-License-Identifier: MIT */
/*
 * intake_msg — the pure half of the NATS intake (docs/fleet.md): what a
 * task message's subject and headers mean, and how much a node may fetch.
 * No libnats, no loop: the fuzzer and the unit tests drive it directly.
 */
#ifndef SUP_INTAKE_MSG_H
#define SUP_INTAKE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUP_IN_NAME_MAX    64     /* an agent name or a run type token */
#define SUP_IN_TYPE_MAX    255    /* Tierd-Type */
#define SUP_IN_KEY_MAX     128    /* Nats-Msg-Id */
#define SUP_IN_CONTEXT_MAX (16u * 1024u)

enum sup_in_kind { SUP_IN_TIER, SUP_IN_AGENT, SUP_IN_RUN };

struct sup_in_msg {
	enum sup_in_kind kind;
	int         tier;                     /* SUP_IN_TIER: 1..4 */
	char        name[SUP_IN_NAME_MAX + 1]; /* agent, or the run's type */
	char        type[SUP_IN_TYPE_MAX + 1];
	size_t      type_len;
	int64_t     timeout_ns;               /* Tierd-Timeout, 0 = none */
	int64_t     deadline_ms;              /* Tierd-Deadline (Unix ms), 0 = none */
	char        key[SUP_IN_KEY_MAX + 1];  /* Nats-Msg-Id, "" = none */
	const char *context;                  /* Tierd-Context (borrowed), or NULL */
	size_t      context_len;
};

/* A subject token: 1..max bytes, printable, no '.', '*', '>' or space. */
bool sup_in_token_ok(const char *s, size_t len, size_t max);

/* The subject under prefix: <prefix>.task.tier.<N>, <prefix>.task.agent.<NAME>
 * or <prefix>.run.<TYPE>. Resets m. 0, or -EINVAL with why in err. */
int sup_in_parse_subject(const char *prefix, const char *subject, struct sup_in_msg *m,
			 char *err, size_t errlen);

/* One header (name NUL-terminated, value len bytes, not necessarily
 * terminated). Unknown headers are ignored. 0, or -EINVAL with why. */
int sup_in_parse_header(struct sup_in_msg *m, const char *name, const char *value,
			size_t len, char *err, size_t errlen);

/* The timeout the task gets at now_ms (Unix ms): the smaller of its
 * timeout and what is left to its deadline; 0 = none; -ETIME when the
 * deadline has passed. */
int64_t sup_in_timeout(const struct sup_in_msg *m, int64_t now_ms);

/* How many messages to ask one consumer for: the room its agents have
 * (ready agents x pipeline depth, minus what runs) minus what waits in its
 * queue and what was fetched but not yet taken, capped at batch_max. */
uint32_t sup_in_want(uint32_t room, uint32_t queued, uint32_t outstanding, uint32_t batch_max);

/* The tasks stream's sequence in <prefix>.result.<seq>: 0 if not one. */
uint64_t sup_in_result_seq(const char *prefix, const char *subject);

/* Is this a PubAck error that means "a result is already stored"? */
bool sup_in_is_duplicate_error(const char *text);

#endif
