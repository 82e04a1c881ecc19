/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemons: one line per write(2) to stderr, prefixed with
 * the syslog priority as "<N>" so journald files it right; a timestamp is
 * added only when stderr is not the journal (JOURNAL_STREAM unset).
 */
#ifndef SUP_LOG_H
#define SUP_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#define SUP_LOG_EMERG   0
#define SUP_LOG_ALERT   1
#define SUP_LOG_CRIT    2
#define SUP_LOG_ERR     3
#define SUP_LOG_WARNING 4
#define SUP_LOG_NOTICE  5
#define SUP_LOG_INFO    6
#define SUP_LOG_DEBUG   7

struct sup_logger {
	int  level;        /* lines above this priority are dropped */
	bool timestamps;
	int  fd;           /* usually 2 */
};

void sup_logger_init(struct sup_logger *lg, int level);
void sup_log(const struct sup_logger *lg, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sup_logv(const struct sup_logger *lg, int prio, const char *fmt, va_list ap);
/* Level name ("info") to number; -1 if unknown. */
int sup_log_level_parse(const char *name);

/* Token bucket: `rate` lines per second, bursts up to `burst`. */
struct sup_ratelimit {
	double   tokens;
	double   rate;
	double   burst;
	int64_t  last_ns;
	uint64_t suppressed;   /* dropped since the last report */
};

void sup_ratelimit_init(struct sup_ratelimit *r, double rate, double burst);
/* True if one more line may pass at time now_ns. */
bool sup_ratelimit_take(struct sup_ratelimit *r, int64_t now_ns);

#endif
