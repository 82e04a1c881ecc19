/* SPDX-License-Identifier: MIT */
/*
 * units — numbers, durations and sizes as config files and tierctl's
 * arguments write them: pure functions on strings.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define DEC_DIGITS_MAX     18                 /* fraction digits kept exact */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int sup_scan_dec(const char **sp, struct sup_dec *ret)
{
	const char *s = *sp;
	struct sup_dec d = { 0, 0, 0 };

	if (!is_digit(*s))
		return -EINVAL;
	for (; is_digit(*s); s++) {
		if (d.ip > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		d.ip = d.ip * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		s++;
		if (!is_digit(*s))
			return -EINVAL;
		for (; is_digit(*s); s++) {
			if (d.fdigits == DEC_DIGITS_MAX)
				return -ERANGE;
			d.frac = d.frac * 10 + (uint64_t)(*s - '0');
			d.fdigits++;
		}
	}
	*sp = s;
	*ret = d;
	return 0;
}

static unsigned __int128 pow10_u128(unsigned n)
{
	unsigned __int128 p = 1;

	while (n--)
		p *= 10;
	return p;
}

/* d × unit, the fraction truncated; -ERANGE above max. */
static int dec_scale(const struct sup_dec *d, uint64_t unit, uint64_t max, uint64_t *ret)
{
	unsigned __int128 v = (unsigned __int128)d->ip * unit;

	v += (unsigned __int128)d->frac * unit / pow10_u128(d->fdigits);
	if (v > max)
		return -ERANGE;
	*ret = (uint64_t)v;
	return 0;
}

int sup_parse_u64(const char *s, uint64_t *ret)
{
	struct sup_dec d;
	int r;

	r = sup_scan_dec(&s, &d);
	if (r < 0)
		return r;
	if (d.fdigits || *s)
		return -EINVAL;
	*ret = d.ip;
	return 0;
}

int sup_parse_decimal(const char *s, double *ret)
{
	const char *p = s;
	struct sup_dec d;
	double v;
	int r;

	r = sup_scan_dec(&p, &d);
	if (r < 0)
		return r;
	if (*p)
		return -EINVAL;
	/* The syntax is checked above (no sign, exponent, hex or inf), so
	 * strtod only does the correctly rounded conversion. tierd never sets
	 * LC_NUMERIC, so the decimal point is '.'. */
	v = strtod(s, NULL);
	if (!isfinite(v))
		return -ERANGE;
	*ret = v;
	return 0;
}

int sup_parse_percent(const char *s, double *ret_pct)
{
	size_t n = strlen(s);
	char buf[64];

	if (n && s[n - 1] == '%')
		n--;
	if (n == 0 || n >= sizeof(buf))
		return n ? -ERANGE : -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return sup_parse_decimal(buf, ret_pct);
}

int sup_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i])) {
			*ret = true;
			return 0;
		}
		if (!strcmp(s, no[i])) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

struct unit {
	const char *name;
	uint64_t    mult;
};

/* The unit of n whose suffix is exactly name, or NULL. */
static const struct unit *unit_named(const struct unit *u, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, u[i].name))
			return &u[i];
	return NULL;
}

static const struct unit duration_units[] = {
	{ "d", 86400ull * SUP_NS_PER_SEC },
	{ "h", 3600ull * SUP_NS_PER_SEC },
	{ "min", 60ull * SUP_NS_PER_SEC },
	{ "s", SUP_NS_PER_SEC },
	{ "ms", SUP_NS_PER_MS },
	{ "us", SUP_NS_PER_US },
	{ "\xc2\xb5s", SUP_NS_PER_US },  /* µs */
	{ "ns", 1 },
};
#define N_DURATION_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

int sup_parse_duration(const char *s, int64_t *ret_ns)
{
	const struct unit *u;
	struct sup_dec d;
	uint64_t v;
	int r;

	r = sup_scan_dec(&s, &d);
	if (r < 0)
		return r;
	/* A bare number has no unit anyone agrees on; only zero is safe. */
	if (!*s) {
		if (d.ip || d.frac)
			return -EINVAL;
		*ret_ns = 0;
		return 0;
	}
	u = unit_named(duration_units, N_DURATION_UNITS, s);
	if (!u)
		return -EINVAL;
	r = dec_scale(&d, u->mult, INT64_MAX, &v);
	if (r < 0)
		return r;
	*ret_ns = (int64_t)v;
	return 0;
}

int sup_format_duration(int64_t ns, char *buf, size_t sz)
{
	if (ns == 0)
		return snprintf(buf, sz, "0");
	for (size_t i = 0; i < N_DURATION_UNITS; i++) {
		uint64_t m = duration_units[i].mult;

		/* "us" comes before "µs" in the table, so output stays ASCII. */
		if (ns > 0 && (uint64_t)ns % m == 0)
			return snprintf(buf, sz, "%" PRIu64 "%s", (uint64_t)ns / m,
					duration_units[i].name);
	}
	return snprintf(buf, sz, "%" PRId64 "ns", ns);
}

static const struct unit size_units[] = {
	{ "T", 1ull << 40 }, { "TiB", 1ull << 40 }, { "t", 1ull << 40 },
	{ "G", 1ull << 30 }, { "GiB", 1ull << 30 }, { "g", 1ull << 30 },
	{ "M", 1ull << 20 }, { "MiB", 1ull << 20 }, { "m", 1ull << 20 },
	{ "K", 1ull << 10 }, { "KiB", 1ull << 10 }, { "k", 1ull << 10 },
	{ "", 1 },
};

int sup_parse_size(const char *s, uint64_t *ret_bytes)
{
	const struct unit *u;
	struct sup_dec d;
	uint64_t v;
	int r;

	r = sup_scan_dec(&s, &d);
	if (r < 0)
		return r;
	u = unit_named(size_units, sizeof(size_units) / sizeof(size_units[0]), s);
	/* "1.5" bytes is a typo, not a size. */
	if (!u || (u->mult == 1 && d.fdigits))
		return -EINVAL;
	r = dec_scale(&d, u->mult, UINT64_MAX, &v);
	if (r < 0)
		return r;
	*ret_bytes = v;
	return 0;
}

int sup_format_size(uint64_t bytes, char *buf, size_t sz)
{
	static const struct unit out[] = {
		{ "T", 1ull << 40 }, { "G", 1ull << 30 }, { "M", 1ull << 20 }, { "K", 1ull << 10 },
	};

	for (size_t i = 0; bytes && i < sizeof(out) / sizeof(out[0]); i++)
		if (bytes % out[i].mult == 0)
			return snprintf(buf, sz, "%" PRIu64 "%s", bytes / out[i].mult, out[i].name);
	return snprintf(buf, sz, "%" PRIu64, bytes);
}

int sup_format_decimal(double v, char *buf, size_t sz)
{
	int n = 0;

	/* "%.17g" would round-trip too, but may print an exponent, which the
	 * parser (rightly) refuses. */
	for (int prec = 0; prec <= 40; prec++) {
		double back;

		n = snprintf(buf, sz, "%.*f", prec, v);
		if (n < 0 || (size_t)n >= sz)
			return n;
		if (sup_parse_decimal(buf, &back) == 0 && back == v)
			return n;
	}
	return n;
}
