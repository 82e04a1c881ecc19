/* SPDX-License-Identifier: MIT */
/*
 * agd_json — the line protocol of stdio mode (docs/protocol.md): a task
 * becomes one JSON request line, one line from the child becomes a reply.
 *
 * Everything the child writes is untrusted. Replies are read by a small
 * parser of its own (RFC 8259, strict) rather than a general JSON library:
 * no allocation, strings unescaped in place inside the line, nesting of
 * ignored fields bounded, UTF-8 checked, numbers range-checked. It is the
 * bridge's hottest code, and a reply is one flat object.
 */
#ifndef AGD_JSON_H
#define AGD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier/agent.h"

#include "agd_buf.h"

/* Deepest nesting accepted in a reply (inside fields agentd ignores). */
#define AGD_JSON_MAX_DEPTH 32

/* Append the request line for t (newline included) to out. now_ns turns the
 * deadline into the remaining milliseconds. -EINVAL if the task type is not
 * valid UTF-8, -ENOMEM. */
int agd_json_encode_task(const struct tier_task *t, int64_t now_ns, struct agd_buf *out);

struct agd_reply {
	uint64_t    id;
	int         status;      /* TIER_ST_OK or TIER_ST_ERROR */
	double      quality;     /* < 0: none */
	const char *payload;     /* inside the line; text, or base64 text if b64 */
	size_t      len;
	bool        b64;
};

/* Parse one line (without its newline); the line is modified (strings are
 * unescaped in place) and ret->payload points into it. Returns 0 with *ret
 * filled; -EBADMSG if the line cannot be tied to a task (not JSON, not an
 * object, no usable id, too deep, bad UTF-8); -EPROTO if it names task
 * ret->id but a field is wrong. why gets one sentence in both cases. */
int agd_json_parse_reply(char *line, size_t len, struct agd_reply *ret, char *why, size_t whylen);

/* Bytes of JSON a payload of n bytes needs at most as a string (escapes
 * included), to bound reply lines. */
size_t agd_json_string_max(size_t n);

#endif
