/* SPDX-License-Identifier: MIT */
/*
 * pipe-worker — a worker of the hand-rolled pool baseline (dispatch_pool.c).
 * Tasks arrive on stdin as fixed records (struct disp_pool_task), replies
 * leave on stdout (struct disp_pool_reply). Everything one read() brought is
 * answered with one write(): replies are batched exactly as deep as the
 * driver pipelines.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../dispatch_wire.h"

static ssize_t read_some(int fd, void *b, size_t n)
{
	ssize_t r;

	do
		r = read(fd, b, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static int write_all(int fd, const void *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b = (const char *)b + w;
		n -= (size_t)w;
	}
	return 0;
}

int main(void)
{
	static struct disp_pool_task in[1024];
	static struct disp_pool_reply out[1024];
	size_t have = 0;
	ssize_t r;

	while ((r = read_some(0, (char *)in + have, sizeof(in) - have)) > 0) {
		size_t n, i;

		have += (size_t)r;
		n = have / sizeof(in[0]);
		for (i = 0; i < n; i++) {
			out[i].id = in[i].id;
			out[i].status = 0;
			out[i].len = 0;
		}
		if (n && write_all(1, out, n * sizeof(out[0])) < 0)
			return 1;
		have -= n * sizeof(in[0]);
		memmove(in, (char *)in + n * sizeof(in[0]), have);
	}
	return r < 0;
}
