/* SPDX-License-Identifier: MIT */
/*
 * units — numbers, durations and sizes in the forms config files and
 * tierctl's arguments use (docs/config.md). Whole-string parsers: no
 * surrounding spaces, nothing trailing. Return 0, -EINVAL (not of that
 * form) or -ERANGE (overflow, out of bounds); the out-parameter is
 * untouched on failure.
 */
#ifndef SUP_UNITS_H
#define SUP_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUP_NS_PER_US  1000LL
#define SUP_NS_PER_MS  1000000LL
#define SUP_NS_PER_SEC 1000000000LL

/* "D+[.D+]" at *sp: integer part and fraction as integers, so durations
 * and sizes come out exact. Advances *sp past the number. */
struct sup_dec {
	uint64_t ip;
	uint64_t frac;
	unsigned fdigits;
};
int sup_scan_dec(const char **sp, struct sup_dec *ret);

/* "200ms", "30s", "1.5s", "100us", "5min", "1h", "2d" (also ns, µs); "0". */
int sup_parse_duration(const char *s, int64_t *ret_ns);
/* "4096", "256K", "256KiB", "1.5G", K/M/G/T binary (KiB..TiB alike). */
int sup_parse_size(const char *s, uint64_t *ret_bytes);
/* "80%" or "80" (decimals allowed), >= 0. */
int sup_parse_percent(const char *s, double *ret_pct);
/* Non-negative decimal: "0.8", "7", "7.0". */
int sup_parse_decimal(const char *s, double *ret);
/* Decimal integer without sign. */
int sup_parse_u64(const char *s, uint64_t *ret);
/* 1/0, yes/no, true/false, on/off. */
int sup_parse_bool(const char *s, bool *ret);

/* Formatters, the inverse of the parsers, in the largest exact unit.
 * Return what snprintf does. */
int sup_format_duration(int64_t ns, char *buf, size_t sz);
int sup_format_size(uint64_t bytes, char *buf, size_t sz);
/* The shortest "%.Nf" that sup_parse_decimal reads back as exactly v. */
int sup_format_decimal(double v, char *buf, size_t sz);

#endif
