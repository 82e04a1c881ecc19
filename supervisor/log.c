/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "log.h"

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

void sup_logger_init(struct sup_logger *lg, int level)
{
	lg->level = level;
	lg->fd = 2;
	lg->timestamps = getenv("JOURNAL_STREAM") == NULL;
}

int sup_log_level_parse(const char *name)
{
	for (int i = 0; i < 8; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	if (!strcmp(name, "error"))
		return SUP_LOG_ERR;
	if (!strcmp(name, "warn"))
		return SUP_LOG_WARNING;
	return -1;
}

void sup_logv(const struct sup_logger *lg, int prio, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n = 0;
	int r;

	if (prio > lg->level)
		return;
	r = snprintf(line, sizeof(line), "<%d>", prio);
	n = (size_t)r;
	if (lg->timestamps) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n += strftime(line + n, sizeof(line) - n, "%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ld ", ts.tv_nsec / 1000000);
		n += (size_t)r;
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r < 0)
		return;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write so concurrent writers (agents share nothing with us, but
	 * journald may interleave) never split a line. */
	(void)sup_write(lg->fd, line, n);
}

void sup_log(const struct sup_logger *lg, int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sup_logv(lg, prio, fmt, ap);
	va_end(ap);
}

void sup_ratelimit_init(struct sup_ratelimit *r, double rate, double burst)
{
	r->rate = rate;
	r->burst = burst;
	r->tokens = burst;
	r->last_ns = 0;
	r->suppressed = 0;
}

bool sup_ratelimit_take(struct sup_ratelimit *r, int64_t now_ns)
{
	if (r->last_ns) {
		r->tokens += (double)(now_ns - r->last_ns) * 1e-9 * r->rate;
		if (r->tokens > r->burst)
			r->tokens = r->burst;
	}
	r->last_ns = now_ns;
	if (r->tokens >= 1.0) {
		r->tokens -= 1.0;
		return true;
	}
	r->suppressed++;
	return false;
}
