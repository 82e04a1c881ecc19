/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the control protocol as tierd meets it from a client,
 * without sockets.
 *
 * Input = [line limit byte][chunking byte] then the byte stream a client
 * sends. The stream reaches the framing buffer in reads of varying size
 * (as recv would cut it); every line goes through the request validator,
 * the reply tierd would send (an echo of the request, or the error naming
 * what is wrong) is encoded, and the encoded line must be one line that
 * the client-side validator reads back with the same id. Lines are also
 * fed to the client-side validator directly (tierctl facing a hostile
 * server). An over-long line ends the "connection": a fresh buffer takes
 * the rest, as a new client would. Every argument of a valid request also
 * goes through the bounds the commands apply (ctl_args.h): what they
 * accept must be in range, and no value may overflow on the way (UBSan
 * aborts).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../supervisor/ctl_args.h"
#include "../../supervisor/ctl_roles.h"
#include "common/ctlproto.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* The fuzz rule links the ring library, load hook on, into every target;
 * this one never touches a ring. */
void shm_fuzz_mutate(volatile void *p, size_t n);
void shm_fuzz_mutate(volatile void *p, size_t n)
{
}

/* Encode m, check it is exactly one line, read it back as a reply. */
static void roundtrip(json_t *m, bool has_id, uint64_t id, bool ok)
{
	struct sup_ctl_msg back;
	char err[256], *buf;
	size_t n, n2;

	CHECK(m);
	CHECK(sup_ctl_encode(m, NULL, 0, &n) == 0);
	buf = malloc(n);
	CHECK(buf);
	CHECK(sup_ctl_encode(m, buf, n, &n2) == 0 && n2 == n);
	CHECK(buf[n - 1] == '\n' && !memchr(buf, '\n', n - 1));
	CHECK(sup_ctl_parse_msg(buf, n - 1, err, sizeof(err), &back) == 0);
	CHECK(back.kind == SUP_CTL_MSG_REPLY && back.ok == ok && back.has_id == has_id);
	CHECK(!has_id || back.id == id);
	CHECK(ok || (back.error && back.code));
	json_decref(back.root);
	free(buf);
	json_decref(m);
}

/* Whatever a client puts in an argument, the bounds hold. */
static void bounds(json_t *args)
{
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		int64_t ns, n;
		int t = sup_ctl_arg_tier(v, 0);

		CHECK(t >= -1 && t <= 4);
		if (sup_ctl_arg_ms(v, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns) == 0)
			CHECK(ns >= 0 && ns <= (int64_t)7 * 86400 * 1000000000LL);
		if (sup_ctl_arg_int(v, 1, 1000000, 0, &n) == 0)
			CHECK(n >= 1 && n <= 1000000);
	}
}

static void one_line(const char *line, size_t len)
{
	struct sup_ctl_req req;
	struct sup_ctl_msg msg;
	char err[256];
	bool has_id = false;
	uint64_t id = 0;

	if (sup_ctl_parse_request(line, len, err, sizeof(err), &req, &has_id, &id) == 0) {
		CHECK(req.cmd && req.args && json_is_object(req.args));
		CHECK(req.id <= SUP_CTL_ID_MAX);
		CHECK(sup_ctl_cmd_role(req.cmd) == SUP_CTL_ROLE_READ ||
		      sup_ctl_cmd_role(req.cmd) == SUP_CTL_ROLE_ADMIN);
		bounds(req.args);
		roundtrip(sup_ctl_msg_ok(req.id, json_pack("{s:s,s:O}", "cmd", req.cmd, "args",
							   req.args)), true, req.id, true);
		json_decref(req.root);
	} else {
		CHECK(memchr(err, '\0', sizeof(err)));
		roundtrip(sup_ctl_msg_err(has_id, id, EINVAL, err), has_id, id, false);
	}
	if (sup_ctl_parse_msg(line, len, err, sizeof(err), &msg) == 0) {
		if (msg.kind == SUP_CTL_MSG_EVENT)
			CHECK(msg.event);
		else
			CHECK(msg.ok ? json_is_object(msg.result) : msg.error && msg.code);
		json_decref(msg.root);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sup_ctl_buf b;
	size_t max_line, off = 0;
	uint32_t rng;

	if (size < 2)
		return 0;
	/* Small limits so over-long lines are common; 0 = the real default. */
	max_line = data[0] ? (size_t)data[0] * 4 : 0;
	rng = data[1] | 1u;
	data += 2;
	size -= 2;
	sup_ctl_buf_init(&b, max_line);
	while (off < size) {
		const char *line;
		size_t room, len, want;
		char *p;
		int r;

		rng = rng * 1103515245u + 12345u;
		want = 1 + (rng >> 16) % 97;
		r = sup_ctl_buf_space(&b, &p, &room);
		CHECK(r == 0 || r == -EMSGSIZE);
		if (r == 0) {
			CHECK(room > 0);
			if (want > room)
				want = room;
			if (want > size - off)
				want = size - off;
			memcpy(p, data + off, want);
			sup_ctl_buf_commit(&b, want);
			off += want;
		}
		while ((r = sup_ctl_buf_next(&b, &line, &len)) == 1) {
			CHECK(len <= b.max_line);
			CHECK(!memchr(line, '\n', len));
			one_line(line, len);
		}
		if (r == -EMSGSIZE) {
			sup_ctl_buf_free(&b);
			sup_ctl_buf_init(&b, max_line);
		}
	}
	sup_ctl_buf_free(&b);
	return 0;
}
