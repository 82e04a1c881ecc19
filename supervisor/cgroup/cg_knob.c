/* SPDX-License-Identifier: MIT */
/* Knob table, value parsing, validation, formatting and writes. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cg_knob.h"
#include "cgroup.h"
#include "cg_stat.h"
#include "cg_util.h"

enum kind {
	K_NUM,       /* num within [min, max], or "max" when allow_max */
	K_CPU_MAX,   /* "QUOTA PERIOD" */
	K_IO_WEIGHT, /* "default N" or "MAJ:MIN N", N within [min, max] */
	K_IO_MAX,    /* "MAJ:MIN key=val..." */
	K_CPUS,      /* cpu list */
};

struct knob_info {
	const char      *file;
	enum sup_cg_ctrl ctrl;
	enum kind        kind;
	uint64_t         min, max;
	bool             allow_max;
	bool             bytes;  /* accepts K/M/G/T suffixes when parsed */
	bool             stall;  /* the write may reclaim memory */
};

/* Bounds are the kernel's own, so a value that passes here is refused by
 * the kernel only for reasons of state (a cpu not present, a device gone). */
#define CPU_QUOTA_MIN   1000u               /* 1 ms, min_cfs_quota_period */
#define CPU_QUOTA_MAX   ((1ull << 44) - 1)  /* MAX_BW in µs */
#define CPU_PERIOD_MIN  1000u
#define CPU_PERIOD_MAX  1000000u            /* max_cfs_quota_period, 1 s */
#define PIDS_LIMIT_MAX  4194304u            /* PID_MAX_LIMIT: PIDS_MAX - 1 */
#define CPUSET_CPU_MAX  65535u

static const struct knob_info knobs[SUP_CG_K_COUNT] = {
	[SUP_CG_K_CPU_WEIGHT]       = { "cpu.weight", SUP_CG_CPU, K_NUM, 1, 10000, false, false, false },
	[SUP_CG_K_CPU_MAX]          = { "cpu.max", SUP_CG_CPU, K_CPU_MAX, 0, 0, true, false, false },
	[SUP_CG_K_CPU_IDLE]         = { "cpu.idle", SUP_CG_CPU, K_NUM, 0, 1, false, false, false },
	[SUP_CG_K_MEMORY_LOW]       = { "memory.low", SUP_CG_MEMORY, K_NUM, 0, SUP_CG_MAX - 1, true, true, false },
	[SUP_CG_K_MEMORY_HIGH]      = { "memory.high", SUP_CG_MEMORY, K_NUM, 0, SUP_CG_MAX - 1, true, true, true },
	[SUP_CG_K_MEMORY_MAX]       = { "memory.max", SUP_CG_MEMORY, K_NUM, 0, SUP_CG_MAX - 1, true, true, true },
	[SUP_CG_K_MEMORY_SWAP_MAX]  = { "memory.swap.max", SUP_CG_MEMORY, K_NUM, 0, SUP_CG_MAX - 1, true, true, false },
	[SUP_CG_K_MEMORY_OOM_GROUP] = { "memory.oom.group", SUP_CG_MEMORY, K_NUM, 0, 1, false, false, false },
	[SUP_CG_K_IO_WEIGHT]        = { "io.weight", SUP_CG_IO, K_IO_WEIGHT, 1, 10000, false, false, false },
	[SUP_CG_K_IO_BFQ_WEIGHT]    = { "io.bfq.weight", SUP_CG_IO, K_IO_WEIGHT, 1, 1000, false, false, false },
	[SUP_CG_K_IO_MAX]           = { "io.max", SUP_CG_IO, K_IO_MAX, 0, 0, true, false, false },
	[SUP_CG_K_PIDS_MAX]         = { "pids.max", SUP_CG_PIDS, K_NUM, 0, PIDS_LIMIT_MAX, true, false, false },
	[SUP_CG_K_CPUSET_CPUS]      = { "cpuset.cpus", SUP_CG_CPUSET, K_CPUS, 0, 0, false, false, false },
};

const char *sup_cg_knob_file(enum sup_cg_knob k)
{
	return (unsigned)k < SUP_CG_K_COUNT ? knobs[k].file : NULL;
}

enum sup_cg_ctrl sup_cg_knob_ctrl(enum sup_cg_knob k)
{
	return (unsigned)k < SUP_CG_K_COUNT ? knobs[k].ctrl : SUP_CG_NCTRL;
}

bool sup_cg_knob_may_stall(enum sup_cg_knob k)
{
	return (unsigned)k < SUP_CG_K_COUNT && knobs[k].stall;
}

int sup_cg_knob_lookup(const char *file)
{
	for (int k = 0; k < SUP_CG_K_COUNT; k++)
		if (!strcmp(knobs[k].file, file))
			return k;
	return -ENOENT;
}

/* ---- parsing --------------------------------------------------------------- */

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	return s;
}

/* Decimal with an optional binary suffix; advances *s past it. */
static int parse_num(const char **s, bool allow_max, bool bytes, uint64_t *ret)
{
	const char *p = *s;
	uint64_t v = 0, mul = 1;

	if (allow_max && !strncmp(p, "max", 3)) {
		*s = p + 3;
		*ret = SUP_CG_MAX;
		return 0;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (bytes) {
		switch (*p) {
		case 'k': case 'K': mul = 1ull << 10; p++; break;
		case 'm': case 'M': mul = 1ull << 20; p++; break;
		case 'g': case 'G': mul = 1ull << 30; p++; break;
		case 't': case 'T': mul = 1ull << 40; p++; break;
		default: break;
		}
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*s = p;
	*ret = v * mul;
	return 0;
}

static int parse_devno(const char **s, uint32_t *ret_major, uint32_t *ret_minor)
{
	uint64_t maj, min;
	int r;

	r = parse_num(s, false, false, &maj);
	if (r < 0)
		return r;
	if (**s != ':')
		return -EINVAL;
	(*s)++;
	r = parse_num(s, false, false, &min);
	if (r < 0)
		return r;
	if (maj > UINT32_MAX || min > UINT32_MAX)
		return -ERANGE;
	*ret_major = (uint32_t)maj;
	*ret_minor = (uint32_t)min;
	return 0;
}

static int parse_io_max(const char *s, struct sup_cg_val *v)
{
	static const struct { const char *key; size_t off; } keys[] = {
		{ "rbps=", offsetof(struct sup_cg_val, rbps) },
		{ "wbps=", offsetof(struct sup_cg_val, wbps) },
		{ "riops=", offsetof(struct sup_cg_val, riops) },
		{ "wiops=", offsetof(struct sup_cg_val, wiops) },
	};
	int r = parse_devno(&s, &v->major, &v->minor);

	if (r < 0)
		return r;
	for (s = skip_ws(s); *s; s = skip_ws(s)) {
		size_t i;

		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strncmp(s, keys[i].key, strlen(keys[i].key)))
				break;
		if (i == sizeof(keys) / sizeof(keys[0]))
			return -EINVAL;
		s += strlen(keys[i].key);
		r = parse_num(&s, true, false, (uint64_t *)((char *)v + keys[i].off));
		if (r < 0)
			return r;
		/* 0 means "leave unchanged" in sup_cg_val; a literal 0 limit
		 * would stop all IO and is never what an operator wants. */
		if (*(uint64_t *)((char *)v + keys[i].off) == 0)
			return -ERANGE;
		if (*s && *s != ' ' && *s != '\t' && *s != '\n')
			return -EINVAL;
	}
	return 0;
}

int sup_cg_knob_parse(enum sup_cg_knob k, const char *text, struct sup_cg_val *ret)
{
	struct sup_cg_val v = { 0 };
	const struct knob_info *ki;
	const char *s;
	size_t n;
	int r;

	if ((unsigned)k >= SUP_CG_K_COUNT || !text)
		return -EINVAL;
	ki = &knobs[k];
	s = skip_ws(text);
	switch (ki->kind) {
	case K_NUM:
		r = parse_num(&s, ki->allow_max, ki->bytes, &v.num);
		break;
	case K_CPU_MAX:
		r = parse_num(&s, true, false, &v.num);
		if (r == 0 && (*s == ' ' || *s == '\t')) {
			s = skip_ws(s);
			if (*s)
				r = parse_num(&s, false, false, &v.period);
		}
		break;
	case K_IO_WEIGHT:
		if (!strncmp(s, "default", 7) && (s[7] == ' ' || s[7] == '\t')) {
			s = skip_ws(s + 7);
		} else if (strchr(s, ':')) {
			r = parse_devno(&s, &v.major, &v.minor);
			if (r < 0)
				return r;
			if (v.major == 0 && v.minor == 0)
				return -EINVAL;
			s = skip_ws(s);
		}
		r = parse_num(&s, false, false, &v.num);
		break;
	case K_IO_MAX:
		r = parse_io_max(s, &v);
		s += strlen(s);
		break;
	case K_CPUS:
		n = strlen(s);
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
			n--;
		if (n >= sizeof(v.cpus))
			return -ERANGE;
		memcpy(v.cpus, s, n);
		v.cpus[n] = '\0';
		s += strlen(s);
		r = 0;
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;
	if (*skip_ws(s))
		return -EINVAL;
	r = sup_cg_knob_validate(k, &v);
	if (r < 0)
		return r;
	*ret = v;
	return 0;
}

/* ---- validation ------------------------------------------------------------ */

/* "0-3,6,8-9": ascending ranges of cpu numbers; "" inherits the parent's. */
static int cpus_valid(const char *s)
{
	const char *end = memchr(s, '\0', SUP_CG_CPUS_MAX);

	if (!end)
		return -ERANGE;
	while (*s) {
		uint64_t lo, hi;
		int r = parse_num(&s, false, false, &lo);

		if (r < 0)
			return -EINVAL;
		hi = lo;
		if (*s == '-') {
			s++;
			if (parse_num(&s, false, false, &hi) < 0)
				return -EINVAL;
		}
		if (lo > hi)
			return -EINVAL;
		if (hi > CPUSET_CPU_MAX)
			return -ERANGE;
		if (*s == ',') {
			s++;
			if (!*s)
				return -EINVAL;
		} else if (*s) {
			return -EINVAL;
		}
	}
	return 0;
}

static int io_limit_valid(uint64_t x)
{
	return x == SUP_CG_UNSET || x == SUP_CG_MAX || x > 0;
}

int sup_cg_knob_validate(enum sup_cg_knob k, const struct sup_cg_val *v)
{
	const struct knob_info *ki;

	if ((unsigned)k >= SUP_CG_K_COUNT || !v)
		return -EINVAL;
	ki = &knobs[k];
	switch (ki->kind) {
	case K_NUM:
		if (v->num == SUP_CG_MAX)
			return ki->allow_max ? 0 : -ERANGE;
		return v->num < ki->min || v->num > ki->max ? -ERANGE : 0;
	case K_CPU_MAX: {
		uint64_t period = v->period ? v->period : SUP_CG_CPU_PERIOD_DEFAULT;

		if (period < CPU_PERIOD_MIN || period > CPU_PERIOD_MAX)
			return -ERANGE;
		if (v->num != SUP_CG_MAX && (v->num < CPU_QUOTA_MIN || v->num > CPU_QUOTA_MAX))
			return -ERANGE;
		return 0;
	}
	case K_IO_WEIGHT:
		return v->num < ki->min || v->num > ki->max ? -ERANGE : 0;
	case K_IO_MAX:
		if (v->major == 0 && v->minor == 0)
			return -EINVAL;
		if (!io_limit_valid(v->rbps) || !io_limit_valid(v->wbps) ||
		    !io_limit_valid(v->riops) || !io_limit_valid(v->wiops))
			return -ERANGE;
		if (!v->rbps && !v->wbps && !v->riops && !v->wiops)
			return -EINVAL;
		return 0;
	case K_CPUS:
		return cpus_valid(v->cpus);
	}
	return -EINVAL;
}

/* ---- formatting ------------------------------------------------------------ */

struct out {
	char  *buf;
	size_t sz, len;
	bool   overflow;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->sz - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->sz - o->len)
		o->overflow = true;
	else
		o->len += (size_t)n;
}

static void out_num(struct out *o, uint64_t x)
{
	if (x == SUP_CG_MAX)
		outf(o, "max");
	else
		outf(o, "%llu", (unsigned long long)x);
}

int sup_cg_knob_format(enum sup_cg_knob k, const struct sup_cg_val *v, char *buf, size_t sz)
{
	struct out o = { buf, sz, 0, false };
	int r;

	if (!buf || sz == 0)
		return -ENOBUFS;
	r = sup_cg_knob_validate(k, v);
	if (r < 0)
		return r;
	switch (knobs[k].kind) {
	case K_NUM:
		out_num(&o, v->num);
		break;
	case K_CPU_MAX:
		out_num(&o, v->num);
		outf(&o, " %llu",
		     (unsigned long long)(v->period ? v->period : SUP_CG_CPU_PERIOD_DEFAULT));
		break;
	case K_IO_WEIGHT:
		if (v->major || v->minor)
			outf(&o, "%u:%u %llu", v->major, v->minor, (unsigned long long)v->num);
		else
			outf(&o, "default %llu", (unsigned long long)v->num);
		break;
	case K_IO_MAX: {
		const struct { const char *key; uint64_t x; } lim[] = {
			{ "rbps", v->rbps }, { "wbps", v->wbps },
			{ "riops", v->riops }, { "wiops", v->wiops },
		};

		outf(&o, "%u:%u", v->major, v->minor);
		for (size_t i = 0; i < 4; i++) {
			if (lim[i].x == SUP_CG_UNSET)
				continue;
			outf(&o, " %s=", lim[i].key);
			out_num(&o, lim[i].x);
		}
		break;
	}
	case K_CPUS:
		outf(&o, "%s", v->cpus[0] ? v->cpus : "\n");
		break;
	}
	if (o.overflow)
		return -ENOBUFS;
	return (int)o.len;
}

/* ---- applying -------------------------------------------------------------- */

int sup_cg_knob_prepare(const struct sup_cg *cg, int dirfd, enum sup_cg_knob k,
			const struct sup_cg_val *v, struct sup_cg_write *ret)
{
	char buf[SUP_CG_VAL_MAX];
	int n;

	if ((unsigned)k >= SUP_CG_K_COUNT || dirfd < 0)
		return -EINVAL;
	if (cg && !sup_cg_ctrl_live(cg, knobs[k].ctrl))
		return -EOPNOTSUPP;
	n = sup_cg_knob_format(k, v, buf, sizeof(buf));
	if (n < 0)
		return n;
	ret->dirfd = dirfd;
	ret->file = knobs[k].file;
	ret->len = (size_t)n;
	memcpy(ret->buf, buf, (size_t)n);
	ret->buf[n] = '\0';
	return 0;
}

int sup_cg_knob_write(const struct sup_cg *cg, int dirfd, enum sup_cg_knob k,
		      const struct sup_cg_val *v)
{
	struct sup_cg_write w;
	int r = sup_cg_knob_prepare(cg, dirfd, k, v, &w);

	if (r < 0)
		return r;
	return sup_cg_write_file(w.dirfd, w.file, w.buf, w.len);
}

int sup_cg_knob_present(int dirfd, enum sup_cg_knob k)
{
	if ((unsigned)k >= SUP_CG_K_COUNT)
		return -EINVAL;
	if (faccessat(dirfd, knobs[k].file, F_OK, 0) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}
