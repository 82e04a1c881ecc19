/* SPDX-License-Identifier: MIT */
/*
 * intake_msg — subjects, headers and the fetch arithmetic of the NATS
 * intake (intake_msg.h). Pure: every input comes from the broker and is
 * checked here, so this is what tests/fuzz/fuzz_intake.c drives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "intake_msg.h"

bool sup_in_token_ok(const char *s, size_t len, size_t max)
{
	if (!len || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>')
			return false;
	}
	return true;
}

#define CUT(n) ((int)((n) > 64 ? 64 : (n)))
#define fail(err, errlen, fmt, what, n) (snprintf(err, errlen, fmt, CUT(n), what), -EINVAL)

int sup_in_parse_subject(const char *prefix, const char *subject, struct sup_in_msg *m,
			 char *err, size_t errlen)
{
	size_t pl = strlen(prefix), sl = strlen(subject), n;
	const char *s;

	memset(m, 0, sizeof(*m));
	if (sl <= pl || strncmp(subject, prefix, pl) || subject[pl] != '.')
		return fail(err, errlen, "subject '%.*s' is not under the intake's prefix",
			    subject, sl);
	s = subject + pl + 1;
	if (!strncmp(s, "task.tier.", 10)) {
		s += 10;
		if (strlen(s) != 1 || s[0] < '1' || s[0] > '4')
			return fail(err, errlen, "subject '%.*s': the tier must be 1..4", subject,
				    sl);
		m->kind = SUP_IN_TIER;
		m->tier = s[0] - '0';
		return 0;
	}
	if (!strncmp(s, "task.agent.", 11)) {
		s += 11;
		m->kind = SUP_IN_AGENT;
	} else if (!strncmp(s, "run.", 4)) {
		s += 4;
		m->kind = SUP_IN_RUN;
	} else {
		return fail(err, errlen, "subject '%.*s': expected task.tier.N, task.agent.NAME "
			    "or run.TYPE after the prefix", subject, sl);
	}
	n = strlen(s);
	if (!sup_in_token_ok(s, n, SUP_IN_NAME_MAX))
		return fail(err, errlen, "subject '%.*s': the name must be one token of 1..64 "
			    "printable characters", subject, sl);
	memcpy(m->name, s, n);
	m->name[n] = 0;
	return 0;
}

/* A whole decimal number in [0, 2^62]: 0, or -EINVAL. */
static int parse_int(const char *v, size_t len, int64_t *ret)
{
	int64_t x = 0;

	if (!len || len > 18)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		x = x * 10 + (v[i] - '0');
	}
	if (x > ((int64_t)1 << 62))
		return -EINVAL;
	*ret = x;
	return 0;
}

static bool printable(const char *v, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < ' ' || v[i] == 0x7f)
			return false;
	return true;
}

int sup_in_parse_header(struct sup_in_msg *m, const char *name, const char *value,
			size_t len, char *err, size_t errlen)
{
	char buf[32];
	int64_t x;

	if (!strcmp(name, "Tierd-Type")) {
		if (len > SUP_IN_TYPE_MAX || !printable(value, len))
			return fail(err, errlen, "header Tierd-Type: expected at most 255 printable "
				    "characters, got '%.*s'", value, len);
		memcpy(m->type, value, len);
		m->type[len] = 0;
		m->type_len = len;
	} else if (!strcmp(name, "Tierd-Timeout")) {
		if (parse_int(value, len, &x) == 0) {
			if (x == 0 || x > (int64_t)1 << 40)
				return fail(err, errlen, "header Tierd-Timeout: '%.*s' ms: expected 1 "
					    "to 2^40", value, len);
			m->timeout_ns = x * SUP_NS_PER_MS;
		} else {
			if (len >= sizeof(buf))
				return fail(err, errlen, "header Tierd-Timeout: expected a duration "
					    "(30s, 500ms) or milliseconds, got '%.*s'", value, len);
			memcpy(buf, value, len);
			buf[len] = 0;
			if (sup_parse_duration(buf, &m->timeout_ns) < 0 || m->timeout_ns <= 0)
				return fail(err, errlen, "header Tierd-Timeout: expected a duration "
					    "(30s, 500ms) or milliseconds, got '%.*s'", value, len);
		}
	} else if (!strcmp(name, "Tierd-Deadline")) {
		if (parse_int(value, len, &x) < 0 || x == 0)
			return fail(err, errlen, "header Tierd-Deadline: expected Unix time in "
				    "milliseconds, got '%.*s'", value, len);
		m->deadline_ms = x;
	} else if (!strcmp(name, "Nats-Msg-Id")) {
		if (len > SUP_IN_KEY_MAX || !printable(value, len))
			return fail(err, errlen, "header Nats-Msg-Id: expected at most 128 printable "
				    "characters, got '%.*s'", value, len);
		memcpy(m->key, value, len);
		m->key[len] = 0;
	} else if (!strcmp(name, "Tierd-Context")) {
		if (len > SUP_IN_CONTEXT_MAX || memchr(value, 0, len))
			return fail(err, errlen, "header Tierd-Context: expected at most 16 KiB of "
				    "text (%.*s)", "no NUL", 6);
		m->context = value;
		m->context_len = len;
	}
	return 0;
}

int64_t sup_in_timeout(const struct sup_in_msg *m, int64_t now_ms)
{
	int64_t t = m->timeout_ns;

	if (m->deadline_ms) {
		int64_t left;

		if (now_ms >= m->deadline_ms)
			return -ETIME;
		left = m->deadline_ms - now_ms;
		/* Past 2^40 ms (35 years) the deadline bounds nothing. */
		if (left > ((int64_t)1 << 40))
			return t;
		left *= SUP_NS_PER_MS;
		if (!t || left < t)
			t = left;
	}
	return t;
}

uint32_t sup_in_want(uint32_t room, uint32_t queued, uint32_t outstanding, uint32_t batch_max)
{
	uint64_t used = (uint64_t)queued + outstanding;
	uint32_t n;

	if (used >= room)
		return 0;
	n = room - (uint32_t)used;
	return n < batch_max ? n : batch_max;
}

uint64_t sup_in_result_seq(const char *prefix, const char *subject)
{
	size_t pl = strlen(prefix);
	const char *s;
	int64_t x;

	if (strncmp(subject, prefix, pl) || strncmp(subject + pl, ".result.", 8))
		return 0;
	s = subject + pl + 8;
	if (parse_int(s, strlen(s), &x) < 0)
		return 0;
	return (uint64_t)x;
}

bool sup_in_is_duplicate_error(const char *text)
{
	return text && strstr(text, "maximum messages per subject exceeded") != NULL;
}
