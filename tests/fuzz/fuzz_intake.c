/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what a NATS task message brings to the intake
 * (supervisor/intake/intake_msg.c), as the broker hands it over.
 *
 * Input = lines: the first is the message's subject, every other one a
 * header "Name: value" (a value may hold any byte but a newline). Every
 * accepted subject must give a valid target (tier 1..4, or a name that is
 * one subject token); every accepted header keeps its field in bounds; a
 * refusal always names the problem. The fetch arithmetic and the result
 * subject parser get the input's bytes as numbers too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../supervisor/intake/intake_msg.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

void shm_fuzz_mutate(volatile void *p, size_t n);
void shm_fuzz_mutate(volatile void *p, size_t n)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, *save = NULL, err[256];
	struct sup_in_msg m;
	bool ok;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	line = strtok_r(buf, "\n", &save);
	if (!line) {
		free(buf);
		return 0;
	}
	err[0] = 0;
	ok = sup_in_parse_subject("tierd", line, &m, err, sizeof(err)) == 0;
	CHECK(ok || err[0]);
	if (ok) {
		if (m.kind == SUP_IN_TIER)
			CHECK(m.tier >= 1 && m.tier <= 4);
		else
			CHECK((m.kind == SUP_IN_AGENT || m.kind == SUP_IN_RUN) &&
			      sup_in_token_ok(m.name, strlen(m.name), SUP_IN_NAME_MAX));
	}
	{
		uint64_t seq = sup_in_result_seq("tierd", line);

		(void)seq;
	}
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *colon = strchr(line, ':');
		const char *v;

		if (!colon)
			continue;
		*colon = 0;
		v = colon + 1 + (colon[1] == ' ');
		err[0] = 0;
		if (sup_in_parse_header(&m, line, v, strlen(v), err, sizeof(err)) < 0)
			CHECK(err[0]);
		CHECK(m.type_len <= SUP_IN_TYPE_MAX && strlen(m.type) == m.type_len);
		CHECK(strlen(m.key) <= SUP_IN_KEY_MAX);
		CHECK(m.timeout_ns >= 0 && m.deadline_ms >= 0);
		CHECK(m.context_len <= SUP_IN_CONTEXT_MAX);
	}
	{
		int64_t t = sup_in_timeout(&m, 1700000000000ll);

		CHECK(t == -ETIME || t >= 0);
	}
	if (size >= 4) {
		uint32_t room = data[0] * 7u, q = data[1], o = data[2], b = data[3] + 1u;
		uint32_t w = sup_in_want(room, q, o, b);

		CHECK(w <= b && (uint64_t)w + q + o <= (uint64_t)(room > q + o ? room : q + o));
		CHECK(w == 0 || (uint64_t)q + o < room);
	}
	free(buf);
	return 0;
}
