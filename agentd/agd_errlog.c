/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "agd_errlog.h"
#include "agd_proc.h"

void agd_errlog_init(struct agd_errlog *e, int64_t now)
{
	memset(e, 0, sizeof(*e));
	e->win_ns = now;
}

static void end_line(struct agd_errlog *e, struct agd *g)
{
	size_t n = e->len;

	while (n && (e->line[n - 1] == '\r' || e->line[n - 1] == ' '))
		n--;
	if (n) {
		size_t k = n < sizeof(e->last) - 1 ? n : sizeof(e->last) - 1;

		memcpy(e->last, e->line, k);
		e->last[k] = 0;
		for (size_t i = 0; i < k; i++)
			if (!e->last[i])
				e->last[i] = ' ';
		agd_forward(g, e->line, n);
	}
	e->len = 0;
	e->cut = false;
}

bool agd_errlog_feed(struct agd_errlog *e, struct agd *g, const char *buf, size_t n)
{
	const char *p = buf, *end = buf + n;

	if (g->now - e->win_ns >= 1000000000) {
		e->win_ns = g->now;
		e->win_bytes = 0;
	}
	e->win_bytes += n;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t chunk = (size_t)((nl ? nl : end) - p);

		if (!e->cut) {
			size_t room = sizeof(e->line) - e->len;
			size_t k = chunk < room ? chunk : room;

			memcpy(e->line + e->len, p, k);
			e->len += k;
			/* A line past the buffer: what fits goes out, the rest is
			 * skipped up to its newline. */
			if (k < chunk) {
				end_line(e, g);
				e->cut = true;
			}
		}
		if (!nl)
			break;
		if (e->cut)
			e->cut = false;
		else
			end_line(e, g);
		p = nl + 1;
	}
	if (g->o->flood_bytes && e->win_bytes > g->o->flood_bytes && !e->flooded) {
		e->flooded = true;
		return true;
	}
	return false;
}

void agd_errlog_eof(struct agd_errlog *e, struct agd *g)
{
	if (e->len && !e->cut)
		end_line(e, g);
}

int agd_errlog_drain(struct agd_errlog *e, struct agd *g, int *fd, size_t budget)
{
	char buf[65536];
	size_t got = 0;

	while (*fd >= 0 && got < budget) {
		ssize_t n = sup_read(*fd, buf, sizeof(buf));

		if (n == -EAGAIN)
			return 0;
		if (n <= 0) {
			agd_errlog_eof(e, g);
			agd_proc_close_fd(fd);
			return -1;
		}
		got += (size_t)n;
		if (agd_errlog_feed(e, g, buf, (size_t)n))
			return 1;
	}
	return 0;
}
