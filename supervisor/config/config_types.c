/* SPDX-License-Identifier: MIT */
/*
 * config_types — the generic key types (CT_STR … CT_FN) of the key tables:
 * parsing a value into its field, writing it back, and what a valid value
 * looks like in messages. The tables themselves are in config_keys.c and
 * config_limits.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

int cfg_str_take(char **p, char *s)
{
	if (!s)
		return -ENOMEM;
	free(*p);
	*p = s;
	return 0;
}

void cfg_expect(const struct cfg_key *k, char *buf, size_t sz)
{
	char lo[32], hi[32];
	size_t n;

	if (k->expect) {
		snprintf(buf, sz, "%s", k->expect);
		return;
	}
	switch (k->type) {
	case CT_STR:
		snprintf(buf, sz, "a non-empty value");
		break;
	case CT_PATH:
		snprintf(buf, sz, "a path (relative to the config file's directory)");
		break;
	case CT_DUR:
		sup_format_duration(k->min, lo, sizeof(lo));
		sup_format_duration(k->max, hi, sizeof(hi));
		snprintf(buf, sz, "a duration like 200ms, 30s or 5min, from %s to %s", lo, hi);
		break;
	case CT_U32:
		snprintf(buf, sz, "an integer %" PRId64 "..%" PRId64, k->min, k->max);
		break;
	case CT_PCT:
	case CT_DEC:
		sup_format_decimal(k->dmin, lo, sizeof(lo));
		sup_format_decimal(k->dmax, hi, sizeof(hi));
		snprintf(buf, sz, "%s %s..%s", k->type == CT_PCT ? "a percentage" : "a number", lo,
			 hi);
		break;
	case CT_BOOL:
		snprintf(buf, sz, "on or off (yes/no, true/false, 1/0)");
		break;
	case CT_ENUM:
		n = (size_t)snprintf(buf, sz, "one of");
		for (int i = 0; k->names[i] && n < sz; i++)
			n += (size_t)snprintf(buf + n, sz - n, "%s %s", i ? "," : "", k->names[i]);
		break;
	default:
		snprintf(buf, sz, "a valid value");
	}
}

int cfg_apply(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	void *p = (char *)base + k->off;
	uint64_t u;
	int64_t d;
	double f;
	bool b;
	int r;

	switch (k->type) {
	case CT_STR:
	case CT_PATH:
		if (!*v)
			return -EINVAL;
		return cfg_str_take((char **)p, k->type == CT_PATH ? cfg_path(x, v) : strdup(v));
	case CT_DUR:
		r = sup_parse_duration(v, &d);
		if (r == 0 && (d < k->min || d > k->max))
			r = -ERANGE;
		if (r == 0)
			*(int64_t *)p = d;
		return r;
	case CT_U32:
		r = sup_parse_u64(v, &u);
		if (r == 0 && (u < (uint64_t)k->min || u > (uint64_t)k->max))
			r = -ERANGE;
		if (r == 0)
			*(uint32_t *)p = (uint32_t)u;
		return r;
	case CT_PCT:
	case CT_DEC:
		r = k->type == CT_PCT ? sup_parse_percent(v, &f) : sup_parse_decimal(v, &f);
		if (r == 0 && (f < k->dmin || f > k->dmax))
			r = -ERANGE;
		if (r == 0)
			*(double *)p = f;
		return r;
	case CT_BOOL:
		r = sup_parse_bool(v, &b);
		if (r == 0)
			*(bool *)p = b;
		return r;
	case CT_ENUM:
		for (int i = 0; k->names[i]; i++)
			if (!strcmp(v, k->names[i])) {
				*(int *)p = i;
				return 0;
			}
		return -EINVAL;
	default:
		return k->parse(x, k, base, v);
	}
}

int cfg_dump_key(FILE *f, const struct cfg_key *k, const void *base)
{
	const void *p = (const char *)base + k->off;
	char buf[64];

	switch (k->type) {
	case CT_STR:
	case CT_PATH:
		if (!*(char *const *)p)
			return 0;
		return fprintf(f, "%s = %s\n", k->name, *(char *const *)p) < 0 ? -EIO : 0;
	case CT_DUR:
		sup_format_duration(*(const int64_t *)p, buf, sizeof(buf));
		break;
	case CT_U32:
		snprintf(buf, sizeof(buf), "%u", *(const uint32_t *)p);
		break;
	case CT_PCT:
	case CT_DEC:
		sup_format_decimal(*(const double *)p, buf, sizeof(buf) - 1);
		if (k->type == CT_PCT)
			strcat(buf, "%");
		break;
	case CT_BOOL:
		snprintf(buf, sizeof(buf), "%s", *(const bool *)p ? "on" : "off");
		break;
	case CT_ENUM:
		snprintf(buf, sizeof(buf), "%s", k->names[*(const int *)p]);
		break;
	default:
		return k->dump(f, k, base);
	}
	return fprintf(f, "%s = %s\n", k->name, buf) < 0 ? -EIO : 0;
}
