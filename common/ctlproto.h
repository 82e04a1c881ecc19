/* SPDX-License-Identifier: MIT */
/*
 * ctlproto — the control protocol without the sockets: JSON-line framing,
 * request and reply builders, and the validators both ends apply to what
 * the other sent. Shared by tierd (supervisor/ctl.c) and tierctl; no I/O,
 * no logging, no globals, so the fuzzer can drive all of it.
 *
 * Wire format (docs/control.md): one JSON object per line, UTF-8, '\n'
 * terminated ("\r\n" accepted); blank lines are ignored.
 *   request  {"id": N, "cmd": "name", "args": {...}}      args optional
 *   reply    {"id": N, "ok": true, "result": {...}}
 *            {"id": N, "ok": false, "error": "sentence", "code": "ENOENT"}
 *   partial  {"id": N, "ok": true, "more": true, "result": {...}}
 *            (a streaming request: any number precede its final reply)
 *   event    {"event": "kind", ...}                         unsolicited
 * A reply to a line whose id could not be read carries "id": null.
 */
#ifndef SUP_CTLPROTO_H
#define SUP_CTLPROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request line may carry a task payload as base64: the bound must exceed
 * the largest payload's encoding (see docs/control.md). */
#define SUP_CTL_MAX_LINE_DEFAULT ((size_t)4 << 20)
/* Longest command name; names are [a-z0-9_.-]. */
#define SUP_CTL_CMD_MAX 64
/* jansson integers are signed 64-bit: the largest id both ends can carry. */
#define SUP_CTL_ID_MAX ((uint64_t)INT64_MAX)

/* ---- framing ----------------------------------------------------------- */

/*
 * A byte buffer that yields complete lines. Data arrives in place:
 * sup_ctl_buf_space() hands out the free tail (for a recv straight into
 * it) and sup_ctl_buf_commit() accounts what arrived. The buffer moves
 * only inside sup_ctl_buf_space(), so a recv into the space it handed out
 * stays valid while pending, and a line from sup_ctl_buf_next() stays
 * valid until the next sup_ctl_buf_space().
 *
 * A line may hold at most max_line bytes before its '\n'; once more than
 * that has arrived without a '\n', sup_ctl_buf_next() returns -EMSGSIZE and
 * keeps returning it (the stream cannot be resynchronised: the caller
 * replies and closes). Memory grows with the longest line seen, up to
 * max_line + 1, and shrinks back when the buffer empties.
 */
struct sup_ctl_buf {
	char  *data;
	size_t cap;
	size_t start;     /* first byte not yet returned as a line */
	size_t len;       /* end of the data */
	size_t scanned;   /* bytes after start known to hold no '\n' */
	size_t max_line;
	bool   overflow;
};

/* max_line 0 = SUP_CTL_MAX_LINE_DEFAULT. Allocates nothing yet. */
void sup_ctl_buf_init(struct sup_ctl_buf *b, size_t max_line);
void sup_ctl_buf_free(struct sup_ctl_buf *b);
/* Free space at the end: at least one byte when every complete line has
 * been taken with sup_ctl_buf_next() first (else -ENOBUFS may come back);
 * -EMSGSIZE once a line was too long; -ENOMEM. */
int sup_ctl_buf_space(struct sup_ctl_buf *b, char **ret_ptr, size_t *ret_len);
void sup_ctl_buf_commit(struct sup_ctl_buf *b, size_t n);
/* The next non-blank line, without its "\n" or "\r\n": 1 and *ret_line,
 * *ret_len; 0 when no complete line is buffered; -EMSGSIZE. */
int sup_ctl_buf_next(struct sup_ctl_buf *b, const char **ret_line, size_t *ret_len);
/* Bytes buffered and not yet returned as lines. */
size_t sup_ctl_buf_pending(const struct sup_ctl_buf *b);

/* ---- requests (server side) -------------------------------------------- */

struct sup_ctl_req {
	json_t     *root;     /* owns everything below; json_decref when done */
	uint64_t    id;
	const char *cmd;
	json_t     *args;     /* an object, never NULL (empty when absent) */
};

/*
 * Parse and validate one request line. 0: *ret filled, caller decrefs
 * ret->root. -EINVAL: err holds a sentence naming what is wrong (bad JSON
 * with line/column, missing or mistyped id/cmd/args); *ret_has_id and
 * *ret_id say whether an id could still be read, so the error reply can
 * carry it. ret is untouched on failure.
 */
int sup_ctl_parse_request(const char *line, size_t len, char *err, size_t errlen,
			  struct sup_ctl_req *ret, bool *ret_has_id, uint64_t *ret_id);

/* ---- messages ---------------------------------------------------------- */

/* "ENOENT" for ENOENT or -ENOENT; "EIO" for 0 or an unknown number. */
const char *sup_ctl_errno_name(int err);
/* The inverse, for clients; 0 for a name it does not know. */
int sup_ctl_errno_from_name(const char *name);

/* Builders return a new object or NULL (out of memory). Stolen arguments
 * are released even on failure. */
json_t *sup_ctl_msg_request(uint64_t id, const char *cmd, json_t *args /* stolen; NULL = none */);
json_t *sup_ctl_msg_ok(uint64_t id, json_t *result /* stolen; NULL = {} */);
json_t *sup_ctl_msg_more(uint64_t id, json_t *result /* stolen; NULL = {} */);
/* has_id false: "id": null (the request's id was unreadable). Bytes of msg
 * that are not UTF-8 (a quote of what the peer sent) become '?'. */
json_t *sup_ctl_msg_err(bool has_id, uint64_t id, int err, const char *msg);

/* Encode msg as one line, '\n' included. *ret_len gets the line's length;
 * the line was written to buf only if *ret_len <= size (else call again
 * with a larger buffer; buf may be NULL with size 0 to measure). -EINVAL
 * when msg cannot be encoded (not an object, a key that is not UTF-8). */
int sup_ctl_encode(const json_t *msg, char *buf, size_t size, size_t *ret_len);

/* ---- replies and events (client side) ---------------------------------- */

enum sup_ctl_msg_kind {
	SUP_CTL_MSG_REPLY,     /* the final reply to request id */
	SUP_CTL_MSG_PARTIAL,   /* one item of a streaming reply */
	SUP_CTL_MSG_EVENT,     /* unsolicited, kind in event */
};

struct sup_ctl_msg {
	json_t               *root;   /* owns the rest; json_decref when done */
	enum sup_ctl_msg_kind kind;
	bool                  has_id; /* false: "id": null (a refused line) */
	uint64_t              id;
	bool                  ok;
	json_t               *result; /* ok: an object (empty when absent) */
	const char           *error;  /* !ok: the sentence, never NULL */
	const char           *code;   /* !ok: "ENOENT", never NULL */
	const char           *event;  /* EVENT: its kind */
};

/* Parse and validate one line from the server; same contract as
 * sup_ctl_parse_request(). A reply without "id" (the refusal a server
 * sends a peer it will not serve) is a REPLY with has_id false. */
int sup_ctl_parse_msg(const char *line, size_t len, char *err, size_t errlen,
		      struct sup_ctl_msg *ret);

#endif
