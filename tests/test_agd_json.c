/* SPDX-License-Identifier: MIT */
/*
 * agentd's line protocol (agentd/agd_json.c): the reply parser, which reads
 * what an untrusted program writes, and the request encoder. The bridge as a
 * whole is tested in test_agentd_stdio.c and test_agentd_exec.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tier/proto.h"

#include "../agentd/agd_buf.h"
#include "../agentd/agd_json.h"

static int parse(const char *text, struct agd_reply *r, char *why)
{
	static char line[1 << 16];
	size_t n = strlen(text);

	cr_assert_lt(n, sizeof(line));
	memcpy(line, text, n);
	memset(r, 0xa5, sizeof(*r));
	return agd_json_parse_reply(line, n, r, why, 256);
}

static void expect_bad_line(const char *text, const char *reason)
{
	struct agd_reply r;
	char why[256] = "";

	cr_expect_eq(parse(text, &r, why), -EBADMSG, "accepted: %s", text);
	cr_expect(strstr(why, reason), "%s: reason '%s' lacks '%s'", text, why, reason);
}

static void expect_bad_field(const char *text, uint64_t id, const char *reason)
{
	struct agd_reply r;
	char why[256] = "";

	cr_expect_eq(parse(text, &r, why), -EPROTO, "%s: %s", text, why);
	cr_expect_eq(r.id, id);
	cr_expect(strstr(why, reason), "%s: reason '%s' lacks '%s'", text, why, reason);
}

Test(agd_json, should_parse_a_reply_with_every_field)
{
	struct agd_reply r;
	char why[256];

	cr_assert_eq(parse("{\"id\":42,\"status\":\"ok\",\"quality\":7.25,\"payload\":\"hi\"}", &r, why),
		     0, "%s", why);
	cr_expect_eq(r.id, 42);
	cr_expect_eq(r.status, TIER_ST_OK);
	cr_expect_float_eq(r.quality, 7.25, 1e-9);
	cr_expect_eq(r.len, 2);
	cr_expect_eq(memcmp(r.payload, "hi", 2), 0);
	cr_expect(!r.b64);
	cr_assert_eq(parse(" { \"status\" : \"error\" , \"id\" : 18446744073709551615 , "
			   "\"payload_b64\" : \"AAE=\" , \"extra\" : [1, {\"a\": null}, true] } ", &r, why),
		     0, "%s", why);
	cr_expect_eq(r.id, UINT64_MAX);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect_lt(r.quality, 0);
	cr_expect(r.b64);
	cr_assert_eq(parse("{\"id\":0,\"status\":\"ok\",\"quality\":null,\"payload\":null}", &r, why), 0);
	cr_expect_lt(r.quality, 0);
	cr_expect_null(r.payload);
}

Test(agd_json, should_unescape_strings_in_place)
{
	struct agd_reply r;
	char why[256];
	static const char want[] = "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z";

	cr_assert_eq(parse("{\"id\":1,\"status\":\"ok\",\"payload\":"
			   "\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\"}", &r, why), 0,
		     "%s", why);
	cr_assert_eq(r.len, sizeof(want) - 1);
	cr_expect_eq(memcmp(r.payload, want, r.len), 0);
	/* Escaped keys name the same fields. */
	cr_assert_eq(parse("{\"\\u0069d\":3,\"st\\u0061tus\":\"ok\"}", &r, why), 0, "%s", why);
	cr_expect_eq(r.id, 3);
}

Test(agd_json, should_refuse_lines_that_are_not_json)
{
	const char *bad[] = {
		"hello", "{", "}", "{\"id\":1,\"status\":\"ok\"", "{\"id\":1,\"status\":\"ok\"} x",
		"{\"id\":1,}", "{\"id\" 1}", "{id:1}", "{\"id\":01,\"status\":\"ok\"}",
		"{\"id\":1,\"status\":\"ok\",\"x\":1.}", "{\"id\":1,\"status\":\"ok\",\"x\":.5}",
		"{\"id\":1,\"status\":\"ok\",\"x\":1e}", "{\"id\":1,\"status\":\"ok\",\"x\":+1}",
		"{\"id\":1,\"status\":\"ok\",\"x\":-}", "{\"id\":1,\"status\":\"ok\",\"x\":tru}",
		"{\"id\":1,\"status\":\"o\\x\"}", "{\"id\":1,\"status\":\"\\ud800\"}",
		"{\"id\":1,\"status\":\"\\udc00\"}", "{\"id\":1,\"status\":\"\\ud800\\u0041\"}",
		"{\"id\":1,\"status\":\"\\u12\"}", "{\"id\":1,\"status\":\"a\tb\"}",
		"{\"id\":1,\"status\":\"ok\",\"x\":[1,]}", "{\"id\":1,\"status\":\"ok\",\"x\":[}",
		"{\"id\":1,\"status\":\"ok\",\"x\":{\"a\"}}", "[1,2", "\"unterminated",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_line(bad[i], "not JSON");
}

Test(agd_json, should_name_what_else_is_wrong_with_a_line)
{
	char deep[512];
	size_t n = 0;

	expect_bad_line("[1, 2, 3]", "not an object");
	expect_bad_line("\"a string\"", "not an object");
	expect_bad_line("12", "not an object");
	expect_bad_line("{\"status\":\"ok\"}", "without an id");
	expect_bad_line("{\"id\":-1,\"status\":\"ok\"}", "non-negative");
	expect_bad_line("{\"id\":1.5,\"status\":\"ok\"}", "non-negative");
	expect_bad_line("{\"id\":\"7\",\"status\":\"ok\"}", "non-negative");
	expect_bad_line("{\"id\":18446744073709551616,\"status\":\"ok\"}", "64 bits");
	expect_bad_line("{\"id\":1,\"id\":2,\"status\":\"ok\"}", "twice");
	expect_bad_line("{\"id\":1,\"status\":\"\xff\"}", "UTF-8");
	expect_bad_line("{\"id\":1,\"status\":\"\xc0\x80\"}", "UTF-8");       /* overlong */
	expect_bad_line("{\"id\":1,\"status\":\"\xed\xa0\x80\"}", "UTF-8");   /* surrogate */
	n += (size_t)sprintf(deep, "{\"id\":1,\"status\":\"ok\",\"x\":");
	for (int i = 0; i < 40; i++)
		deep[n++] = '[';
	for (int i = 0; i < 40; i++)
		deep[n++] = ']';
	strcpy(deep + n, "}");
	expect_bad_line(deep, "nested too deeply");
}

Test(agd_json, should_tie_a_bad_field_to_its_task)
{
	expect_bad_field("{\"id\":5}", 5, "no status");
	expect_bad_field("{\"id\":5,\"status\":1}", 5, "no status");
	expect_bad_field("{\"id\":5,\"status\":\"OK\"}", 5, "other than");
	expect_bad_field("{\"id\":5,\"status\":\"ok\",\"quality\":10.01}", 5, "quality");
	expect_bad_field("{\"id\":5,\"status\":\"ok\",\"quality\":-0.5}", 5, "quality");
	expect_bad_field("{\"id\":5,\"status\":\"ok\",\"quality\":1e999}", 5, "quality");
	expect_bad_field("{\"id\":5,\"status\":\"ok\",\"quality\":\"9\"}", 5, "quality");
	expect_bad_field("{\"id\":5,\"status\":\"ok\",\"payload\":7}", 5, "not a string");
	expect_bad_field("{\"id\":5,\"status\":\"ok\",\"payload\":\"a\",\"payload_b64\":\"YQ==\"}", 5,
			 "both");
}

Test(agd_json, should_encode_a_task_as_one_line)
{
	struct agd_buf b = { 0 };
	struct tier_task t = {
		.id = 77, .type = "summarise", .type_len = 9, .payload = "line\none\t\"q\"\x01",
		.len = 13, .context = "prev", .context_len = 4, .attempt = 2,
		.flags = TIER_TASK_CONTEXT_TRUNCATED, .deadline_ns = 5 * 1000000000LL,
	};
	static const char want[] = "{\"id\":77,\"type\":\"summarise\",\"deadline_ms\":1500,"
				   "\"attempt\":2,\"context\":\"prev\",\"context_truncated\":true,"
				   "\"payload\":\"line\\none\\t\\\"q\\\"\\u0001\"}\n";

	cr_assert_eq(agd_json_encode_task(&t, 3500 * 1000000LL, &b), 0);
	cr_expect_eq(agd_buf_size(&b), sizeof(want) - 1);
	cr_expect_eq(memcmp(agd_buf_data(&b), want, sizeof(want) - 1), 0, "%.*s",
		     (int)agd_buf_size(&b), agd_buf_data(&b));
	agd_buf_reset(&b);
	t = (struct tier_task){ .id = 1, .type = "x", .type_len = 1, .payload = "\xff\x00", .len = 2 };
	cr_assert_eq(agd_json_encode_task(&t, 0, &b), 0);
	cr_expect_eq(memcmp(agd_buf_data(&b), "{\"id\":1,\"type\":\"x\",\"payload_b64\":\"/wA=\"}\n",
			    agd_buf_size(&b)), 0);
	t.type = "\xff";
	cr_expect_eq(agd_json_encode_task(&t, 0, &b), -EINVAL);
	agd_buf_free(&b);
}

/* Random mutations of valid replies: the parser must never read past the
 * line (the sanitizer build checks), and it must agree with jansson on what
 * is JSON, except where jansson refuses numbers for their size alone. */
Test(agd_json, should_agree_with_jansson_on_random_mutations)
{
	static const char *seeds[] = {
		"{\"id\":12,\"status\":\"ok\",\"quality\":9.5,\"payload\":\"caf\\u00e9 \\ud83d\\ude00\"}",
		"{\"id\":3,\"status\":\"error\",\"payload_b64\":\"AAEC\",\"x\":[true,false,null,{\"k\":-1.5e3}]}",
		" {\"status\" : \"ok\", \"id\" : 0 } ",
	};
	static const char alphabet[] = "{}[]\":,\\ \tu0123456789.eE+-aflnrstux\xc3\xa9\xff\x80";
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	char line[512], copy[512];

	for (int round = 0; round < 200000; round++) {
		const char *src = seeds[round % 3];
		size_t n = strlen(src);
		int edits = 1 + round % 4;
		struct agd_reply r;
		json_error_t jerr;
		json_t *j;
		char why[256];
		int res;

		memcpy(line, src, n);
		for (int e = 0; e < edits; e++) {
			size_t at;
			char ch;

			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			at = (size_t)(seed % (n + 1));
			ch = alphabet[(seed >> 32) % (sizeof(alphabet) - 1)];
			switch ((seed >> 48) % 3) {
			case 0:
				if (at < n)
					line[at] = ch;
				break;
			case 1:
				if (n + 1 < sizeof(line)) {
					memmove(line + at + 1, line + at, n - at);
					line[at] = ch;
					n++;
				}
				break;
			default:
				if (at < n) {
					memmove(line + at, line + at + 1, n - at - 1);
					n--;
				}
			}
		}
		memcpy(copy, line, n);
		res = agd_json_parse_reply(copy, n, &r, why, sizeof(why));
		cr_assert(res == 0 || res == -EBADMSG || res == -EPROTO);
		j = json_loadb(line, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (j) {
			cr_assert(!strstr(why, "not JSON") || res != -EBADMSG,
				  "jansson takes what we call not JSON: %.*s (%s)", (int)n, line, why);
			json_decref(j);
		} else if (!strstr(jerr.text, "too big") && !strstr(jerr.text, "overflow")) {
			cr_assert_eq(res, -EBADMSG, "jansson refuses (%s) what we take: %.*s", jerr.text,
				     (int)n, line);
		}
	}
}
