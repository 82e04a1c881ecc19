/* SPDX-License-Identifier: MIT */
/* Control protocol: line framing, message builders, validators. No I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"

/* A recv smaller than this is not worth a syscall: compact or grow first. */
#define BUF_RECV_MIN 4096
#define BUF_INITIAL  16384
/* An idle client keeps at most this much after a long line went through. */
#define BUF_KEEP     (4 * BUF_INITIAL)

/* ---- framing ----------------------------------------------------------- */

void sup_ctl_buf_init(struct sup_ctl_buf *b, size_t max_line)
{
	memset(b, 0, sizeof(*b));
	if (!max_line)
		max_line = SUP_CTL_MAX_LINE_DEFAULT;
	/* Keeps max_line + 1 and the doubling below from wrapping. */
	if (max_line > SIZE_MAX / 4)
		max_line = SIZE_MAX / 4;
	b->max_line = max_line;
}

void sup_ctl_buf_free(struct sup_ctl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->start = b->len = b->scanned = 0;
}

size_t sup_ctl_buf_pending(const struct sup_ctl_buf *b)
{
	return b->len - b->start;
}

int sup_ctl_buf_space(struct sup_ctl_buf *b, char **ret_ptr, size_t *ret_len)
{
	/* A full line and its '\n' is the most that must ever be held. */
	size_t limit = b->max_line + 1;

	if (b->overflow)
		return -EMSGSIZE;
	if (b->start == b->len) {
		b->start = b->len = b->scanned = 0;
		if (b->cap > BUF_KEEP) {
			free(b->data);
			b->data = NULL;
			b->cap = 0;
		}
	}
	if (b->cap - b->len < BUF_RECV_MIN && b->start > 0) {
		memmove(b->data, b->data + b->start, b->len - b->start);
		b->len -= b->start;
		b->start = 0;
	}
	if (b->cap - b->len < BUF_RECV_MIN && b->cap < limit) {
		size_t cap = b->cap ? b->cap * 2 : BUF_INITIAL;
		char *p;

		if (cap > limit)
			cap = limit;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	if (b->cap == b->len)
		return -ENOBUFS;
	*ret_ptr = b->data + b->len;
	*ret_len = b->cap - b->len;
	return 0;
}

void sup_ctl_buf_commit(struct sup_ctl_buf *b, size_t n)
{
	b->len += n;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

int sup_ctl_buf_next(struct sup_ctl_buf *b, const char **ret_line, size_t *ret_len)
{
	for (;;) {
		size_t pending = b->len - b->start, n;
		const char *line = b->data + b->start;
		const char *nl;

		if (b->overflow)
			return -EMSGSIZE;
		nl = pending ? memchr(line + b->scanned, '\n', pending - b->scanned) : NULL;
		if (!nl) {
			/* Remembered so a long line arriving in pieces is
			 * scanned once, not once per piece. */
			b->scanned = pending;
			if (pending > b->max_line) {
				b->overflow = true;
				return -EMSGSIZE;
			}
			return 0;
		}
		n = (size_t)(nl - line);
		b->start += n + 1;
		b->scanned = 0;
		if (n > b->max_line) {
			b->overflow = true;
			return -EMSGSIZE;
		}
		if (n && line[n - 1] == '\r')
			n--;
		if (blank(line, n))
			continue;
		*ret_line = line;
		*ret_len = n;
		return 1;
	}
}

/* ---- errno names ------------------------------------------------------- */

const char *sup_ctl_errno_name(int err)
{
	const char *name;

	if (err < 0)
		err = -err;
	name = err ? strerrorname_np(err) : NULL;
	return name ? name : "EIO";
}

int sup_ctl_errno_from_name(const char *name)
{
	/* errno values are small and dense; 4096 is MAX_ERRNO in the kernel. */
	for (int e = 1; e < 4096; e++) {
		const char *n = strerrorname_np(e);

		if (n && !strcmp(n, name))
			return e;
	}
	return 0;
}

/* ---- requests ---------------------------------------------------------- */

static bool cmd_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SUP_CTL_CMD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:  return "an object";
	case JSON_ARRAY:   return "an array";
	case JSON_STRING:  return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL:    return "a number";
	case JSON_TRUE:
	case JSON_FALSE:   return "a boolean";
	case JSON_NULL:    return "null";
	}
	return "something else";
}

static json_t *load_object(const char *line, size_t len, const char *what, char *err,
			   size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	/* Duplicate keys are refused: two "id"s would make the reply's id a
	 * guess. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "invalid JSON at column %d: %s", jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "a %s must be a JSON object, not %s", what, type_name(root));
		json_decref(root);
		return NULL;
	}
	return root;
}

/* 1: a valid id; 0: absent or null; -EINVAL: present but not an id. */
static int read_id(const json_t *root, uint64_t *ret)
{
	const json_t *v = json_object_get(root, "id");

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*ret = (uint64_t)json_integer_value(v);
	return 1;
}

int sup_ctl_parse_request(const char *line, size_t len, char *err, size_t errlen,
			  struct sup_ctl_req *ret, bool *ret_has_id, uint64_t *ret_id)
{
	json_t *root, *cmd, *args;
	uint64_t id = 0;
	int r;

	*ret_has_id = false;
	root = load_object(line, len, "request", err, errlen);
	if (!root)
		return -EINVAL;
	r = read_id(root, &id);
	if (r <= 0) {
		snprintf(err, errlen, "%s: \"id\" must be an integer from 0 to %llu",
			 r == 0 ? "the request has no id" : "bad id",
			 (unsigned long long)SUP_CTL_ID_MAX);
		goto decref_root;
	}
	*ret_has_id = true;
	*ret_id = id;
	cmd = json_object_get(root, "cmd");
	if (!cmd || !json_is_string(cmd)) {
		snprintf(err, errlen, "%s: \"cmd\" must be a string naming the command",
			 cmd ? "bad cmd" : "the request has no cmd");
		goto decref_root;
	}
	if (!cmd_valid(json_string_value(cmd))) {
		snprintf(err, errlen, "bad cmd: a command name is 1 to %d characters of "
			 "a-z, 0-9, '_', '-' and '.'", SUP_CTL_CMD_MAX);
		goto decref_root;
	}
	args = json_object_get(root, "args");
	if (args && !json_is_null(args) && !json_is_object(args)) {
		snprintf(err, errlen, "bad args: \"args\" must be an object, not %s",
			 type_name(args));
		goto decref_root;
	}
	if (!args || json_is_null(args)) {
		/* Handlers always get an object; keeping it in root ties its
		 * lifetime to the request's. */
		if (json_object_set_new(root, "args", json_object()) < 0) {
			snprintf(err, errlen, "out of memory");
			goto decref_root;
		}
		args = json_object_get(root, "args");
		if (!args) {
			snprintf(err, errlen, "out of memory");
			goto decref_root;
		}
	}
	ret->root = root;
	ret->id = id;
	ret->cmd = json_string_value(cmd);
	ret->args = args;
	return 0;
decref_root:
	json_decref(root);
	return -EINVAL;
}

/* ---- builders ---------------------------------------------------------- */

static json_t *msg_reply(uint64_t id, json_t *result, bool more)
{
	json_t *m;

	if (!result)
		result = json_object();
	m = json_object();
	if (!m || !result || id > SUP_CTL_ID_MAX ||
	    json_object_set_new(m, "id", json_integer((json_int_t)id)) < 0 ||
	    json_object_set_new(m, "ok", json_true()) < 0 ||
	    (more && json_object_set_new(m, "more", json_true()) < 0) ||
	    json_object_set(m, "result", result) < 0) {
		json_decref(m);
		json_decref(result);
		return NULL;
	}
	json_decref(result);
	return m;
}

json_t *sup_ctl_msg_ok(uint64_t id, json_t *result)
{
	return msg_reply(id, result, false);
}

json_t *sup_ctl_msg_more(uint64_t id, json_t *result)
{
	return msg_reply(id, result, true);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates, beyond Unicode. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* A JSON string of msg, with every byte that is not valid UTF-8 replaced
 * by '?': error sentences quote what the peer sent (jansson's messages
 * do), and may have been cut inside a character. */
static json_t *string_lossy(const char *msg)
{
	size_t n = strlen(msg), i = 0, k;
	json_t *v = json_stringn(msg, n);
	char *copy;

	if (v)
		return v;
	copy = malloc(n + 1);
	if (!copy)
		return NULL;
	memcpy(copy, msg, n + 1);
	while (i < n) {
		k = utf8_seq((const unsigned char *)copy + i, n - i);
		if (!k) {
			copy[i] = '?';
			k = 1;
		}
		i += k;
	}
	v = json_stringn(copy, n);
	free(copy);
	return v;
}

json_t *sup_ctl_msg_err(bool has_id, uint64_t id, int err, const char *msg)
{
	json_t *m = json_object();

	if (!m || (has_id && id > SUP_CTL_ID_MAX) ||
	    json_object_set_new(m, "id", has_id ? json_integer((json_int_t)id) : json_null()) < 0 ||
	    json_object_set_new(m, "ok", json_false()) < 0 ||
	    json_object_set_new(m, "error", string_lossy(msg ? msg : "error")) < 0 ||
	    json_object_set_new(m, "code", json_string(sup_ctl_errno_name(err))) < 0) {
		json_decref(m);
		return NULL;
	}
	return m;
}

json_t *sup_ctl_msg_request(uint64_t id, const char *cmd, json_t *args)
{
	json_t *m = json_object();

	if (!m || id > SUP_CTL_ID_MAX ||
	    json_object_set_new(m, "id", json_integer((json_int_t)id)) < 0 ||
	    json_object_set_new(m, "cmd", json_string(cmd)) < 0 ||
	    (args && json_object_set(m, "args", args) < 0)) {
		json_decref(m);
		json_decref(args);
		return NULL;
	}
	json_decref(args);
	return m;
}

int sup_ctl_encode(const json_t *msg, char *buf, size_t size, size_t *ret_len)
{
	size_t n;

	if (!json_is_object(msg))
		return -EINVAL;
	/* Compact output escapes every control character inside strings,
	 * so the only '\n' in the line is the one added here. */
	n = json_dumpb(msg, buf, size, JSON_COMPACT);
	if (n == 0)
		return -EINVAL;
	if (n < size)
		buf[n] = '\n';
	*ret_len = n + 1;
	return 0;
}

/* ---- replies and events ------------------------------------------------ */

int sup_ctl_parse_msg(const char *line, size_t len, char *err, size_t errlen,
		      struct sup_ctl_msg *ret)
{
	struct sup_ctl_msg m = { 0 };
	json_t *v;
	int r;

	m.root = load_object(line, len, "message from tierd", err, errlen);
	if (!m.root)
		return -EINVAL;
	r = read_id(m.root, &m.id);
	if (r < 0) {
		snprintf(err, errlen, "bad id in a message from tierd");
		goto decref_root;
	}
	m.has_id = r > 0;
	v = json_object_get(m.root, "event");
	if (v && !json_object_get(m.root, "id")) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "an event's \"event\" must be a string");
			goto decref_root;
		}
		m.kind = SUP_CTL_MSG_EVENT;
		m.event = json_string_value(v);
		*ret = m;
		return 0;
	}
	v = json_object_get(m.root, "ok");
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "a reply from tierd has no boolean \"ok\"");
		goto decref_root;
	}
	m.ok = json_is_true(v);
	if (m.ok) {
		m.result = json_object_get(m.root, "result");
		if (m.result && !json_is_null(m.result) && !json_is_object(m.result)) {
			snprintf(err, errlen, "a reply's \"result\" must be an object, not %s",
				 type_name(m.result));
			goto decref_root;
		}
		if (!m.result || json_is_null(m.result)) {
			if (json_object_set_new(m.root, "result", json_object()) < 0 ||
			    !(m.result = json_object_get(m.root, "result"))) {
				snprintf(err, errlen, "out of memory");
				goto decref_root;
			}
		}
		m.kind = json_is_true(json_object_get(m.root, "more")) ? SUP_CTL_MSG_PARTIAL
								       : SUP_CTL_MSG_REPLY;
	} else {
		v = json_object_get(m.root, "error");
		m.error = json_is_string(v) ? json_string_value(v) : "tierd gave no reason";
		v = json_object_get(m.root, "code");
		m.code = json_is_string(v) ? json_string_value(v) : "EIO";
		m.kind = SUP_CTL_MSG_REPLY;
	}
	*ret = m;
	return 0;
decref_root:
	json_decref(m.root);
	return -EINVAL;
}
