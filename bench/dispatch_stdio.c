/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_stdio.h"

#define SEC  1000000000LL
#define RBUF (1u << 20)
#define LINE_MAX_REQ 256

int disp_stdio_direct(const char *echo_json, const struct disp_load *ld, struct disp_result *ret)
{
	char *argv[] = { (char *)echo_json, "--stdio", NULL };
	char payload[128], *wbuf = malloc((size_t)ld->window * LINE_MAX_REQ), *rbuf = malloc(RBUF);
	uint64_t sent = 0, done = 0, failed = 0;
	int to[2] = { -1, -1 }, from[2] = { -1, -1 }, r = 0;
	size_t rlen = 0;
	int64_t t0;
	pid_t pid = -1;

	if (!wbuf || !rbuf) {
		r = -ENOMEM;
		goto stop_child;
	}
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
		r = -errno;
		goto stop_child;
	}
	pid = disp_spawn(argv, to[0], from[1]);
	close(to[0]);
	close(from[1]);
	to[0] = from[1] = -1;
	if (pid < 0) {
		r = pid;
		goto stop_child;
	}
	disp_payload(ld, payload, sizeof(payload));
	t0 = bench_now_ns();
	while (done < ld->n) {
		size_t wl = 0;
		ssize_t got;
		char *p, *nl, *end;

		/* The request line agentd writes for a task (docs/protocol.md). */
		while (sent < ld->n && sent - done < ld->window)
			wl += (size_t)sprintf(wbuf + wl, "{\"id\":%" PRIu64 ",\"type\":\"noop\",\"payload\":\"%s\"}\n",
					      ++sent, payload);
		if (wl && (r = disp_write_all(to[1], wbuf, wl)) < 0)
			goto stop_child;
		got = disp_read_timeout(from[0], rbuf + rlen, RBUF - rlen, 30 * SEC);
		if (got <= 0) {
			r = got ? (int)got : -EPIPE;
			goto stop_child;
		}
		rlen += (size_t)got;
		p = rbuf;
		end = rbuf + rlen;
		while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
			done++;
			failed += !memmem(p, (size_t)(nl - p), "\"status\":\"ok\"", 13);
			p = nl + 1;
		}
		rlen = (size_t)(end - p);
		memmove(rbuf, p, rlen);
	}
	ret->tasks = done;
	ret->failed = failed;
	ret->seconds = (double)(bench_now_ns() - t0) * 1e-9;
	ret->tasks_per_s = (double)done / ret->seconds;
stop_child:
	if (to[1] >= 0)
		close(to[1]);   /* EOF: the child exits */
	if (from[0] >= 0)
		close(from[0]);
	if (pid > 0 && disp_wait(pid, 5 * SEC) < 0)
		disp_reap(pid, SEC);
	free(wbuf);
	free(rbuf);
	return r;
}

int disp_xargs(const char *echo_json, const char *dir, uint64_t n, unsigned par, struct disp_result *ret)
{
	char in_path[300], parg[16], buf[65536];
	char *argv[] = { "/usr/bin/xargs", "-P", parg, "-n", "1", (char *)echo_json, "--arg", NULL };
	uint64_t lines = 0;
	int in, out[2], r = 0, st;
	FILE *f;
	int64_t t0;
	pid_t pid;
	ssize_t got;

	/* From a file, so feeding xargs cannot deadlock against reading it. */
	snprintf(in_path, sizeof(in_path), "%s/xargs.in", dir);
	snprintf(parg, sizeof(parg), "%u", par);
	f = fopen(in_path, "we");
	if (!f)
		return -errno;
	for (uint64_t i = 0; i < n; i++)
		fprintf(f, "%.64s\n", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	if (fclose(f))
		return -errno;
	in = open(in_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in);
		return -errno;
	}
	t0 = bench_now_ns();
	pid = disp_spawn(argv, in, out[1]);
	close(in);
	close(out[1]);
	if (pid < 0) {
		close(out[0]);
		return pid;
	}
	while ((got = disp_read_timeout(out[0], buf, sizeof(buf), 60 * SEC)) > 0)
		for (ssize_t i = 0; i < got; i++)
			lines += buf[i] == '\n';
	close(out[0]);
	if (got < 0)
		r = (int)got;
	st = disp_wait(pid, 60 * SEC);
	ret->seconds = (double)(bench_now_ns() - t0) * 1e-9;
	ret->tasks = lines;
	ret->failed = n - lines;
	ret->tasks_per_s = (double)lines / ret->seconds;
	unlink(in_path);
	if (st < 0)
		disp_reap(pid, SEC);
	if (!r && (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) || lines != n))
		r = -EIO;
	return r;
}
