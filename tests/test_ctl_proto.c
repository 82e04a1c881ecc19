/* SPDX-License-Identifier: MIT */
/*
 * Control socket, the pure halves: framing, request validation and the
 * message builders (common/ctlproto.c), and the bounds on the numbers a
 * client sends (ctl_args.c).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../supervisor/ctl.h"
#include "../supervisor/ctl_args.h"

/* ---- framing ------------------------------------------------------------ */

static void feed(struct sup_ctl_buf *b, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		char *p;
		size_t room, k;

		cr_assert_eq(sup_ctl_buf_space(b, &p, &room), 0);
		k = n < room ? n : room;
		memcpy(p, s, k);
		sup_ctl_buf_commit(b, k);
		s += k;
		n -= k;
	}
}

static void expect_line(struct sup_ctl_buf *b, const char *want)
{
	const char *line;
	size_t len;

	cr_assert_eq(sup_ctl_buf_next(b, &line, &len), 1, "expected the line %s", want);
	cr_assert_eq(len, strlen(want), "got %.*s", (int)len, line);
	cr_assert(!memcmp(line, want, len));
}

static void expect_no_line(struct sup_ctl_buf *b)
{
	const char *line;
	size_t len;

	cr_assert_eq(sup_ctl_buf_next(b, &line, &len), 0);
}

Test(framing, should_yield_several_lines_from_one_read)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	expect_line(&b, "{\"a\":1}");
	expect_line(&b, "{\"b\":2}");
	expect_line(&b, "{\"c\":3}");
	expect_no_line(&b);
	sup_ctl_buf_free(&b);
}

Test(framing, should_join_a_line_split_across_reads)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "{\"id\":1,");
	expect_no_line(&b);
	feed(&b, "\"cmd\":");
	expect_no_line(&b);
	feed(&b, "\"status\"}\n{\"id\"");
	expect_line(&b, "{\"id\":1,\"cmd\":\"status\"}");
	expect_no_line(&b);
	cr_assert_eq(sup_ctl_buf_pending(&b), 5);
	sup_ctl_buf_free(&b);
}

Test(framing, should_refuse_a_line_longer_than_max_line)
{
	struct sup_ctl_buf b;
	const char *line;
	size_t len;

	sup_ctl_buf_init(&b, 16);
	feed(&b, "0123456789abcdef");
	expect_no_line(&b);
	feed(&b, "g");
	cr_assert_eq(sup_ctl_buf_next(&b, &line, &len), -EMSGSIZE);
	/* No resynchronising: the stream stays refused. */
	cr_assert_eq(sup_ctl_buf_next(&b, &line, &len), -EMSGSIZE);
	sup_ctl_buf_free(&b);
}

Test(framing, should_accept_a_line_of_exactly_max_line)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 16);
	feed(&b, "0123456789abcdef\n");
	expect_line(&b, "0123456789abcdef");
	feed(&b, "x\n");
	expect_line(&b, "x");
	sup_ctl_buf_free(&b);
}

Test(framing, should_ignore_blank_lines)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "\n\r\n  \t\n{}\n\n");
	expect_line(&b, "{}");
	expect_no_line(&b);
	sup_ctl_buf_free(&b);
}

Test(framing, should_strip_crlf)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "{\"x\":1}\r\n");
	expect_line(&b, "{\"x\":1}");
	sup_ctl_buf_free(&b);
}

Test(framing, should_carry_a_long_line_through_many_small_reads)
{
	struct sup_ctl_buf b;
	size_t n = 300000;
	char *big = malloc(n + 2);

	cr_assert(big);
	memset(big, 'x', n);
	big[n] = '\n';
	big[n + 1] = '\0';
	sup_ctl_buf_init(&b, n);
	for (size_t off = 0; off < n + 1; off += 1000) {
		char *p;
		size_t room, k = n + 1 - off < 1000 ? n + 1 - off : 1000;

		cr_assert_eq(sup_ctl_buf_space(&b, &p, &room), 0);
		cr_assert_geq(room, k);
		memcpy(p, big + off, k);
		sup_ctl_buf_commit(&b, k);
		if (off + k < n + 1)
			expect_no_line(&b);
	}
	big[n] = '\0';
	expect_line(&b, big);
	free(big);
	sup_ctl_buf_free(&b);
}

/* ---- requests ------------------------------------------------------------ */

static int parse(const char *s, struct sup_ctl_req *req, char *err, bool *has_id, uint64_t *id)
{
	return sup_ctl_parse_request(s, strlen(s), err, 256, req, has_id, id);
}

Test(request, should_parse_a_valid_request)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":7,\"cmd\":\"start\",\"args\":{\"agent\":\"a\"}}", &req, err,
			   &has_id, &id), 0);
	cr_assert_eq(req.id, 7);
	cr_assert_str_eq(req.cmd, "start");
	cr_assert_str_eq(json_string_value(json_object_get(req.args, "agent")), "a");
	json_decref(req.root);
}

Test(request, should_default_args_to_an_empty_object)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,\"cmd\":\"status\"}", &req, err, &has_id, &id), 0);
	cr_assert(json_is_object(req.args));
	cr_assert_eq(json_object_size(req.args), 0);
	json_decref(req.root);
	cr_assert_eq(parse("{\"id\":1,\"cmd\":\"status\",\"args\":null}", &req, err, &has_id, &id), 0);
	cr_assert(json_is_object(req.args));
	json_decref(req.root);
}

Test(request, should_name_invalid_json)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "invalid JSON"), "%s", err);
	cr_assert(!has_id);
}

Test(request, should_name_a_missing_id)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"cmd\":\"status\"}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "no id"), "%s", err);
	cr_assert(!has_id);
	cr_assert_eq(parse("{\"id\":-1,\"cmd\":\"status\"}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "bad id"), "%s", err);
	cr_assert_eq(parse("{\"id\":1.5,\"cmd\":\"status\"}", &req, err, &has_id, &id), -EINVAL);
}

Test(request, should_name_a_missing_cmd_and_keep_the_id)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":42}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "no cmd"), "%s", err);
	cr_assert(has_id);
	cr_assert_eq(id, 42);
	cr_assert_eq(parse("{\"id\":42,\"cmd\":7}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "bad cmd"), "%s", err);
	cr_assert_eq(parse("{\"id\":42,\"cmd\":\"Bad Name\"}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "bad cmd"), "%s", err);
}

Test(request, should_refuse_args_that_are_not_an_object)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,\"cmd\":\"x\",\"args\":[1]}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "args"), "%s", err);
}

Test(request, should_refuse_a_line_that_is_not_an_object)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("[1,2]", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "must be a JSON object"), "%s", err);
}

Test(request, should_refuse_duplicate_keys)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,\"id\":2,\"cmd\":\"x\"}", &req, err, &has_id, &id), -EINVAL);
}

/* ---- messages ------------------------------------------------------------ */

static char *encode(json_t *m)
{
	size_t n;
	char *buf;

	cr_assert_eq(sup_ctl_encode(m, NULL, 0, &n), 0);
	buf = malloc(n + 1);
	cr_assert_eq(sup_ctl_encode(m, buf, n, &n), 0);
	buf[n] = '\0';
	json_decref(m);
	return buf;
}

Test(message, should_encode_one_line_per_message)
{
	char *s = encode(sup_ctl_msg_ok(3, json_pack("{s:s}", "text", "two\nlines")));

	cr_assert_eq(strchr(s, '\n'), s + strlen(s) - 1, "%s", s);
	cr_assert_str_eq(s, "{\"id\":3,\"ok\":true,\"result\":{\"text\":\"two\\nlines\"}}\n");
	free(s);
}

Test(message, should_carry_the_errno_name_as_code)
{
	char *s = encode(sup_ctl_msg_err(true, 9, -ENOENT, "no agent named x"));

	cr_assert_str_eq(s, "{\"id\":9,\"ok\":false,\"error\":\"no agent named x\",\"code\":\"ENOENT\"}\n");
	free(s);
	cr_assert_str_eq(sup_ctl_errno_name(EPERM), "EPERM");
	cr_assert_str_eq(sup_ctl_errno_name(-EBUSY), "EBUSY");
	cr_assert_eq(sup_ctl_errno_from_name("EINVAL"), EINVAL);
	cr_assert_eq(sup_ctl_errno_from_name("ENOSUCH"), 0);
}

Test(message, should_replace_bytes_that_are_not_utf8_in_an_error)
{
	char *s = encode(sup_ctl_msg_err(false, 0, EINVAL, "bad \xff\xc3 near \xe2\x82 end"));

	cr_assert_str_eq(s, "{\"id\":null,\"ok\":false,\"error\":\"bad ?? near ?? end\",\"code\":\"EINVAL\"}\n");
	free(s);
	s = encode(sup_ctl_msg_err(true, 1, EINVAL, "caf\xc3\xa9"));
	cr_assert(strstr(s, "caf\xc3\xa9"), "%s", s);
	free(s);
}

Test(message, should_tell_replies_partials_and_events_apart)
{
	static const char *lines[] = {
		"{\"id\":1,\"ok\":true,\"result\":{\"a\":1}}",
		"{\"id\":1,\"ok\":true,\"more\":true,\"result\":{}}",
		"{\"event\":\"agent_exit\",\"agent\":\"a\"}",
		"{\"ok\":false,\"error\":\"permission denied\",\"code\":\"EPERM\"}",
	};
	struct sup_ctl_msg m;
	char err[256];

	cr_assert_eq(sup_ctl_parse_msg(lines[0], strlen(lines[0]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_REPLY);
	cr_assert(m.ok && m.has_id && m.id == 1);
	json_decref(m.root);
	cr_assert_eq(sup_ctl_parse_msg(lines[1], strlen(lines[1]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_PARTIAL);
	json_decref(m.root);
	cr_assert_eq(sup_ctl_parse_msg(lines[2], strlen(lines[2]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_EVENT);
	cr_assert_str_eq(m.event, "agent_exit");
	json_decref(m.root);
	cr_assert_eq(sup_ctl_parse_msg(lines[3], strlen(lines[3]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_REPLY);
	cr_assert(!m.ok && !m.has_id);
	cr_assert_str_eq(m.code, "EPERM");
	json_decref(m.root);
}

/* ---- bounds on client numbers ------------------------------------------------ */

Test(args, should_refuse_a_timeout_that_would_overflow_a_deadline)
{
	json_t *big = json_integer(9223372036854LL), *huge = json_real(1e300), *ok = json_integer(1500);
	json_t *neg = json_integer(-1), *text = json_string("5");
	int64_t ns = 7;

	cr_assert_eq(sup_ctl_arg_ms(big, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(huge, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(neg, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(text, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -EINVAL);
	cr_assert_eq(ns, 7, "a refused value is not stored");
	cr_assert_eq(sup_ctl_arg_ms(ok, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), 0);
	cr_assert_eq(ns, 1500000000);
	cr_assert_eq(sup_ctl_arg_ms(NULL, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, -1, &ns), 0);
	cr_assert_eq(ns, -1, "absent: the default");
	json_decref(big);
	json_decref(huge);
	json_decref(ok);
	json_decref(neg);
	json_decref(text);
}

Test(args, should_take_the_longest_timeout_and_refuse_zero_when_open)
{
	json_t *max = json_real(SUP_CTL_TIMEOUT_MS_MAX), *zero = json_integer(0);
	int64_t ns;

	cr_assert_eq(sup_ctl_arg_ms(max, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), 0);
	cr_assert_eq(ns, (int64_t)7 * 86400 * 1000000000LL);
	cr_assert_eq(sup_ctl_arg_ms(zero, 0, 1, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(zero, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), 0);
	json_decref(max);
	json_decref(zero);
}

Test(args, should_bound_integers_and_not_wrap_a_tier)
{
	json_t *wrap = json_integer(4294967297LL), *two = json_integer(2), *real = json_real(2.0);
	int64_t v;

	cr_assert_eq(sup_ctl_arg_tier(wrap, 0), -1, "2^32 + 1 is not tier 1");
	cr_assert_eq(sup_ctl_arg_tier(two, 0), 2);
	cr_assert_eq(sup_ctl_arg_tier(real, 0), -1);
	cr_assert_eq(sup_ctl_arg_tier(NULL, 9), 9);
	cr_assert_eq(sup_ctl_arg_int(wrap, 1, 1000000, 0, &v), -ERANGE);
	cr_assert_eq(sup_ctl_arg_int(real, 1, 10, 0, &v), -EINVAL);
	cr_assert_eq(sup_ctl_arg_int(two, 1, 10, 0, &v), 0);
	cr_assert_eq(v, 2);
	json_decref(wrap);
	json_decref(two);
	json_decref(real);
}
