/* SPDX-License-Identifier: MIT */
/*
 * echo-json — the one binary the agentd benchmark runs every way:
 *
 *   echo-json             one shot: copy stdin to stdout (agentd mode exec)
 *   echo-json --stdio     one JSON request per line in, one reply per line
 *                         out (agentd mode stdio, and the direct pipe driver)
 *   echo-json --arg A...  print the arguments as one line (xargs -n 1)
 *
 * stdio replies {"id":N,"status":"ok","payload":P} where N and P are the
 * request's id and payload copied verbatim (no decoding: a JSON string stays
 * valid JSON). Parsing is minimal on purpose: the benchmark measures the
 * drivers, not this program. Replies to everything one read() brought are
 * written with one write(), as any agent that wants throughput would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IN_CAP  (1u << 20)

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static ssize_t read_some(int fd, char *b, size_t n)
{
	ssize_t r;

	do
		r = read(fd, b, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* The value after "key": in line, as raw JSON text (a string keeps its
 * quotes). NULL when absent. */
static const char *json_value(const char *line, const char *end, const char *key, size_t *ret_len)
{
	size_t kl = strlen(key);
	const char *p = line, *v;

	for (; (p = memmem(p, (size_t)(end - p), key, kl)); p += kl) {
		/* A key: quoted, and not an escaped quote inside a string. */
		if (p == line || p[-1] != '"' || (p - line >= 2 && p[-2] == '\\') || p + kl >= end ||
		    p[kl] != '"')
			continue;
		v = p + kl + 1;
		while (v < end && (*v == ' ' || *v == ':'))
			v++;
		if (v >= end)
			return NULL;
		if (*v == '"') {
			const char *q = v + 1;

			while (q < end && *q != '"')
				q += *q == '\\' ? 2 : 1;
			if (q >= end)
				return NULL;
			*ret_len = (size_t)(q + 1 - v);
		} else {
			const char *q = v;

			while (q < end && *q != ',' && *q != '}' && *q != ' ')
				q++;
			*ret_len = (size_t)(q - v);
		}
		return v;
	}
	return NULL;
}

/* Append the reply to one request line to out: at most the line plus 64
 * bytes. */
static size_t reply(const char *line, const char *end, char *out)
{
	size_t il = 0, pl = 0;
	const char *id = json_value(line, end, "id", &il);
	const char *pay = json_value(line, end, "payload", &pl);
	const char *key = "payload";
	char *o = out;

	if (!pay) {
		pay = json_value(line, end, "payload_b64", &pl);
		key = "payload_b64";
	}
	if (!id || !il)
		return 0;
	o += sprintf(o, "{\"id\":%.*s,\"status\":\"ok\"", (int)il, id);
	if (pay) {
		o += sprintf(o, ",\"%s\":", key);
		memcpy(o, pay, pl);
		o += pl;
	}
	*o++ = '}';
	*o++ = '\n';
	return (size_t)(o - out);
}

static int run_stdio(void)
{
	/* A reply is at most its request line plus 64 bytes; out is flushed
	 * once past IN_CAP, so it never needs more than this. */
	char *in = malloc(IN_CAP), *out = malloc(2 * IN_CAP + 128);
	size_t len = 0;
	ssize_t r = -1;
	int ret = 1;

	if (!in || !out)
		goto free_bufs;
	while ((r = read_some(0, in + len, IN_CAP - len)) > 0) {
		char *p = in, *end = in + len + r, *nl;
		size_t olen = 0;

		while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
			olen += reply(p, nl, out + olen);
			p = nl + 1;
			if (olen > IN_CAP) {
				if (write_all(1, out, olen) < 0)
					goto free_bufs;
				olen = 0;
			}
		}
		if (olen && write_all(1, out, olen) < 0)
			goto free_bufs;
		len = (size_t)(end - p);
		if (len == IN_CAP) {
			ret = 2;   /* a line longer than the buffer: not ours */
			goto free_bufs;
		}
		memmove(in, p, len);
	}
	ret = r < 0;
free_bufs:
	free(in);
	free(out);
	return ret;
}

static int run_copy(void)
{
	char buf[65536];
	ssize_t r;

	while ((r = read_some(0, buf, sizeof(buf))) > 0)
		if (write_all(1, buf, (size_t)r) < 0)
			return 1;
	return r < 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--stdio"))
		return run_stdio();
	if (argc > 1 && !strcmp(argv[1], "--arg")) {
		for (int i = 2; i < argc; i++)
			printf("%s%s", argv[i], i + 1 < argc ? " " : "");
		printf("\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: echo-json [--stdio | --arg ARG...]\n");
		return 2;
	}
	return run_copy();
}
