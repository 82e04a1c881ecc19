/* SPDX-License-Identifier: MIT */
/*
 * config_parse — value parsers and formatters of the config module: pure
 * functions on strings, shared by the loader, the dumper and the tests.
 * Numbers, durations and sizes, which tierctl reads too, are in
 * common/units.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CPU_QUOTA_MAX_US   ((1ull << 44) - 1) /* the kernel's MAX_BW */
#define CPU_PERIOD_MIN_US  1000u
#define CPU_PERIOD_MAX_US  1000000u
#define CPU_PERIOD_DEF_US  100000u
#define CPU_QUOTA_MIN_US   1000u
#define CPUS_LIMIT         8192u              /* the kernel's largest NR_CPUS */

/* "max" or an integer. */
static int parse_num_or_max(const char *s, size_t len, bool bytes, uint64_t *ret)
{
	char buf[32];

	if (len == 3 && !memcmp(s, "max", 3)) {
		*ret = SUP_LIMIT_MAX;
		return 0;
	}
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return bytes ? sup_parse_size(buf, ret) : sup_parse_u64(buf, ret);
}

int sup_parse_cpu_max(const char *s, uint64_t *ret_quota_us, uint64_t *ret_period_us)
{
	uint64_t quota, period = CPU_PERIOD_DEF_US;
	const char *sp = strchr(s, ' ');
	size_t n = strlen(s);
	int r;

	if (n && s[n - 1] == '%') {
		double pct;

		r = sup_parse_percent(s, &pct);
		if (r < 0)
			return r;
		if (pct * 1000.0 >= (double)CPU_QUOTA_MAX_US)
			return -ERANGE;
		quota = (uint64_t)llround(pct * (CPU_PERIOD_DEF_US / 100));
		if (quota < CPU_QUOTA_MIN_US)
			return -ERANGE;
		*ret_quota_us = quota;
		*ret_period_us = period;
		return 0;
	}
	r = parse_num_or_max(s, sp ? (size_t)(sp - s) : n, false, &quota);
	if (r < 0)
		return r;
	if (sp) {
		r = sup_parse_u64(sp + 1, &period);
		if (r < 0)
			return r;
		if (period < CPU_PERIOD_MIN_US || period > CPU_PERIOD_MAX_US)
			return -ERANGE;
	}
	if (quota != SUP_LIMIT_MAX && (quota < CPU_QUOTA_MIN_US || quota > CPU_QUOTA_MAX_US))
		return -ERANGE;
	*ret_quota_us = quota;
	*ret_period_us = period;
	return 0;
}

int sup_parse_cpus(const char *s)
{
	if (!*s)
		return -EINVAL;
	if (strlen(s) >= SUP_CPUSET_MAX)
		return -ERANGE;
	for (;;) {
		uint64_t lo, hi;
		struct sup_dec d;
		int r;

		r = sup_scan_dec(&s, &d);
		if (r < 0 || d.fdigits)
			return r < 0 ? r : -EINVAL;
		lo = hi = d.ip;
		if (*s == '-') {
			s++;
			r = sup_scan_dec(&s, &d);
			if (r < 0 || d.fdigits)
				return r < 0 ? r : -EINVAL;
			hi = d.ip;
		}
		if (lo > hi)
			return -EINVAL;
		if (hi >= CPUS_LIMIT)
			return -ERANGE;
		if (!*s)
			return 0;
		if (*s++ != ',')
			return -EINVAL;
	}
}

int sup_parse_io_max(const char *s, struct sup_io_max *ret)
{
	static const char *const keys[] = { "rbps", "wbps", "riops", "wiops" };
	struct sup_io_max io = { 0 };
	uint64_t *vals[] = { &io.rbps, &io.wbps, &io.riops, &io.wiops };
	uint64_t maj, min;
	char dev[32];
	const char *sp = strchr(s, ' '), *colon;
	size_t n = sp ? (size_t)(sp - s) : strlen(s);
	int r;

	if (!sp || n >= sizeof(dev))
		return -EINVAL;
	memcpy(dev, s, n);
	dev[n] = '\0';
	colon = strchr(dev, ':');
	if (!colon)
		return -EINVAL;
	dev[colon - dev] = '\0';
	if (sup_parse_u64(dev, &maj) < 0 || sup_parse_u64(colon + 1, &min) < 0)
		return -EINVAL;
	/* The kernel's MINORBITS is 20, MAJOR below 4096. */
	if (maj >= 4096 || min >= (1u << 20))
		return -ERANGE;
	io.major = (uint32_t)maj;
	io.minor = (uint32_t)min;
	s = sp;
	while (*s) {
		const char *eq, *end;
		size_t klen;
		size_t k;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		end = strchr(s, ' ');
		if (!end)
			end = s + strlen(s);
		eq = memchr(s, '=', (size_t)(end - s));
		if (!eq)
			return -EINVAL;
		klen = (size_t)(eq - s);
		for (k = 0; k < 4; k++)
			if (strlen(keys[k]) == klen && !memcmp(s, keys[k], klen))
				break;
		if (k == 4 || *vals[k])
			return -EINVAL;
		r = parse_num_or_max(eq + 1, (size_t)(end - eq - 1), k < 2, vals[k]);
		if (r < 0)
			return r;
		/* 0 is how the struct says "not given"; the kernel wants >= 1. */
		if (*vals[k] == 0)
			return -ERANGE;
		s = end;
	}
	if (!io.rbps && !io.wbps && !io.riops && !io.wiops)
		return -EINVAL;
	*ret = io;
	return 0;
}

static int parse_rlim_value(const char *s, size_t len, bool bytes, uint64_t *ret)
{
	char buf[32];

	if ((len == 8 && !memcmp(s, "infinity", 8)) || (len == 9 && !memcmp(s, "unlimited", 9))) {
		*ret = RLIM_INFINITY;
		return 0;
	}
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return bytes ? sup_parse_size(buf, ret) : sup_parse_u64(buf, ret);
}

int sup_parse_rlimit(const char *s, bool bytes, uint64_t *ret_cur, uint64_t *ret_max)
{
	const char *colon = strchr(s, ':');
	uint64_t cur, max;
	int r;

	r = parse_rlim_value(s, colon ? (size_t)(colon - s) : strlen(s), bytes, &cur);
	if (r < 0)
		return r;
	max = cur;
	if (colon) {
		r = parse_rlim_value(colon + 1, strlen(colon + 1), bytes, &max);
		if (r < 0)
			return r;
	}
	if (cur > max)
		return -ERANGE;
	*ret_cur = cur;
	*ret_max = max;
	return 0;
}

void sup_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int sup_parse_argv(const char *s, char ***ret_argv, size_t *ret_argc)
{
	size_t len = strlen(s), argc = 0, cap = 0;
	char **argv = NULL, *word = NULL;
	int r = -EINVAL;

	for (;;) {
		size_t n = 0;

		while (is_blank(*s))
			s++;
		if (!*s)
			break;
		/* A word is never longer than what is left of the line. */
		word = malloc(len + 1);
		if (!word) {
			r = -ENOMEM;
			goto err_free;
		}
		while (*s && !is_blank(*s)) {
			if (*s == '\'') {
				const char *q = strchr(s + 1, '\'');

				if (!q)
					goto err_free_word;
				memcpy(word + n, s + 1, (size_t)(q - s - 1));
				n += (size_t)(q - s - 1);
				s = q + 1;
			} else if (*s == '"') {
				for (s++; *s != '"'; s++) {
					if (!*s)
						goto err_free_word;
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					word[n++] = *s;
				}
				s++;
			} else if (*s == '\\') {
				if (!s[1])
					goto err_free_word;
				word[n++] = s[1];
				s += 2;
			} else {
				word[n++] = *s++;
			}
		}
		word[n] = '\0';
		if (argc + 2 > cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char **na = realloc(argv, ncap * sizeof(*na));

			if (!na) {
				r = -ENOMEM;
				goto err_free_word;
			}
			argv = na;
			cap = ncap;
		}
		argv[argc++] = word;
		argv[argc] = NULL;
		word = NULL;
	}
	if (argc == 0)
		goto err_free;
	*ret_argv = argv;
	if (ret_argc)
		*ret_argc = argc;
	return 0;

err_free_word:
	free(word);
err_free:
	sup_argv_free(argv);
	return r;
}

static bool is_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || strchr("_-./:=,+@%^~", c);
}

/* Blanks as the INI reader sees them (C isspace). */
static bool is_ini_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Can w go inside '…' whole? Not with a quote, nor with a blank before a
 * ';' (inih would start a comment there). */
static bool single_quotable(const char *w)
{
	for (; *w; w++)
		if (*w == '\'' || (is_ini_space(*w) && w[1] == ';'))
			return false;
	return true;
}

static bool all_safe(const char *w)
{
	for (; *w; w++)
		if (!is_safe((unsigned char)*w))
			return false;
	return true;
}

char *sup_argv_format(char *const *argv)
{
	size_t cap = 1;
	char *out, *o;

	/* Worst case: every character escaped or quoted alone ('x' = 3). */
	for (char *const *a = argv; *a; a++)
		cap += 3 * strlen(*a) + 3;
	out = malloc(cap);
	if (!out)
		return NULL;
	o = out;
	for (char *const *a = argv; *a; a++) {
		const char *w = *a;

		if (a != argv)
			*o++ = ' ';
		if (!*w || (!all_safe(w) && single_quotable(w))) {
			size_t n = strlen(w);

			*o++ = '\'';
			memcpy(o, w, n);
			o += n;
			*o++ = '\'';
			continue;
		}
		while (*w) {
			/* Blanks go inside quotes, so no blank is ever followed by
			 * ';' (an INI comment) or ends the line (stripped). */
			if (is_ini_space(*w)) {
				*o++ = '\'';
				while (is_ini_space(*w))
					*o++ = *w++;
				*o++ = '\'';
			} else {
				if (!is_safe((unsigned char)*w))
					*o++ = '\\';
				*o++ = *w++;
			}
		}
	}
	*o = '\0';
	return out;
}
