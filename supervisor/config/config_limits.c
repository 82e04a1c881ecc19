/* SPDX-License-Identifier: MIT */
/*
 * config_limits — the cgroup limit keys of [tierN] and [agent NAME]
 * sections. Each sets its bit in sup_limits.set, so that a limit nobody
 * configured stays distinguishable from any value.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"

#define PIDS_LIMIT 4194304u   /* the kernel's PID_MAX_LIMIT */
#define WEIGHT_MAX 10000

static int parse_max_or(const char *v, bool bytes, uint64_t lo, uint64_t hi, uint64_t *ret)
{
	uint64_t n;
	int r;

	if (!strcmp(v, "max")) {
		*ret = SUP_LIMIT_MAX;
		return 0;
	}
	r = bytes ? sup_parse_size(v, &n) : sup_parse_u64(v, &n);
	if (r < 0)
		return r;
	if (n < lo || n > hi)
		return -ERANGE;
	*ret = n;
	return 0;
}

static int parse_limit(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	struct sup_limits *l = base;
	uint64_t n = 0;
	bool b;
	int r = 0;

	switch (k->arg) {
	case SUP_LIM_CPU_WEIGHT:
	case SUP_LIM_IO_WEIGHT:
		r = sup_parse_u64(v, &n);
		if (r == 0 && (n < 1 || n > WEIGHT_MAX))
			r = -ERANGE;
		if (r == 0 && k->arg == SUP_LIM_CPU_WEIGHT)
			l->cpu_weight = (uint32_t)n;
		else if (r == 0)
			l->io_weight = (uint32_t)n;
		break;
	case SUP_LIM_CPU_MAX:
		r = sup_parse_cpu_max(v, &l->cpu_max_quota_us, &l->cpu_max_period_us);
		break;
	case SUP_LIM_CPU_IDLE:
	case SUP_LIM_MEMORY_OOM_GROUP:
		r = sup_parse_bool(v, &b);
		if (r == 0 && k->arg == SUP_LIM_CPU_IDLE)
			l->cpu_idle = b;
		else if (r == 0)
			l->memory_oom_group = b;
		break;
	case SUP_LIM_MEMORY_LOW:
		r = parse_max_or(v, true, 0, UINT64_MAX - 1, &l->memory_low);
		break;
	case SUP_LIM_MEMORY_HIGH:
		r = parse_max_or(v, true, 0, UINT64_MAX - 1, &l->memory_high);
		break;
	case SUP_LIM_MEMORY_MAX:
		r = parse_max_or(v, true, 0, UINT64_MAX - 1, &l->memory_max);
		break;
	case SUP_LIM_MEMORY_SWAP_MAX:
		r = parse_max_or(v, true, 0, UINT64_MAX - 1, &l->memory_swap_max);
		break;
	case SUP_LIM_PIDS_MAX:
		r = parse_max_or(v, false, 1, PIDS_LIMIT, &l->pids_max);
		break;
	case SUP_LIM_CPUSET_CPUS:
		r = sup_parse_cpus(v);
		if (r == 0)
			snprintf(l->cpuset_cpus, sizeof(l->cpuset_cpus), "%s", v);
		break;
	case SUP_LIM_IO_MAX: {
		struct sup_io_max io;

		r = sup_parse_io_max(v, &io);
		if (r < 0)
			break;
		for (uint32_t i = 0; i < l->n_io_max; i++)
			if (l->io_max[i].major == io.major && l->io_max[i].minor == io.minor) {
				cfg_key_error(x, k, "device %u:%u is limited twice", io.major,
					      io.minor);
				return 1;
			}
		if (l->n_io_max == SUP_IO_MAX_DEVICES) {
			cfg_key_error(x, k, "at most %d devices can be limited",
				      SUP_IO_MAX_DEVICES);
			return 1;
		}
		l->io_max[l->n_io_max++] = io;
		break;
	}
	}
	if (r == 0)
		l->set |= SUP_LIM_BIT(k->arg);
	return r;
}

static void format_max_or(uint64_t v, bool bytes, char *buf, size_t sz)
{
	if (v == SUP_LIMIT_MAX)
		snprintf(buf, sz, "max");
	else if (bytes)
		sup_format_size(v, buf, sz);
	else
		snprintf(buf, sz, "%" PRIu64, v);
}

static int dump_io_max(FILE *f, const char *name, const struct sup_io_max *io)
{
	const uint64_t vals[] = { io->rbps, io->wbps, io->riops, io->wiops };
	static const char *const keys[] = { "rbps", "wbps", "riops", "wiops" };

	if (fprintf(f, "%s = %u:%u", name, io->major, io->minor) < 0)
		return -EIO;
	for (int i = 0; i < 4; i++) {
		char buf[32];

		if (!vals[i])
			continue;
		format_max_or(vals[i], i < 2, buf, sizeof(buf));
		if (fprintf(f, " %s=%s", keys[i], buf) < 0)
			return -EIO;
	}
	return fputc('\n', f) == EOF ? -EIO : 0;
}

static int dump_limit(FILE *f, const struct cfg_key *k, const void *base)
{
	const struct sup_limits *l = base;
	char buf[64];

	if (!(l->set & SUP_LIM_BIT(k->arg)))
		return 0;
	switch (k->arg) {
	case SUP_LIM_CPU_WEIGHT:
		snprintf(buf, sizeof(buf), "%u", l->cpu_weight);
		break;
	case SUP_LIM_IO_WEIGHT:
		snprintf(buf, sizeof(buf), "%u", l->io_weight);
		break;
	case SUP_LIM_CPU_MAX:
		format_max_or(l->cpu_max_quota_us, false, buf, sizeof(buf));
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " %" PRIu64,
			 l->cpu_max_period_us);
		break;
	case SUP_LIM_CPU_IDLE:
		snprintf(buf, sizeof(buf), "%d", l->cpu_idle);
		break;
	case SUP_LIM_MEMORY_OOM_GROUP:
		snprintf(buf, sizeof(buf), "%d", l->memory_oom_group);
		break;
	case SUP_LIM_MEMORY_LOW:
		format_max_or(l->memory_low, true, buf, sizeof(buf));
		break;
	case SUP_LIM_MEMORY_HIGH:
		format_max_or(l->memory_high, true, buf, sizeof(buf));
		break;
	case SUP_LIM_MEMORY_MAX:
		format_max_or(l->memory_max, true, buf, sizeof(buf));
		break;
	case SUP_LIM_MEMORY_SWAP_MAX:
		format_max_or(l->memory_swap_max, true, buf, sizeof(buf));
		break;
	case SUP_LIM_PIDS_MAX:
		format_max_or(l->pids_max, false, buf, sizeof(buf));
		break;
	case SUP_LIM_CPUSET_CPUS:
		return fprintf(f, "%s = %s\n", k->name, l->cpuset_cpus) < 0 ? -EIO : 0;
	case SUP_LIM_IO_MAX:
		for (uint32_t i = 0; i < l->n_io_max; i++) {
			int r = dump_io_max(f, k->name, &l->io_max[i]);

			if (r < 0)
				return r;
		}
		return 0;
	}
	return fprintf(f, "%s = %s\n", k->name, buf) < 0 ? -EIO : 0;
}

#define L(n, lim, e) { .name = n, .type = CT_FN, .flags = KF_LIMIT, .arg = lim, .expect = e, \
		       .parse = parse_limit, .dump = dump_limit }
#define SIZE_OR_MAX "a size (bytes, or with a K, M, G or T suffix) or max"

/* In enum sup_limit order: sup_limit_key() indexes it. */
static const struct cfg_key limit_keys[] = {
	L("cpu_weight", SUP_LIM_CPU_WEIGHT, "an integer 1..10000"),
	L("cpu_max", SUP_LIM_CPU_MAX,
	  "max, QUOTA PERIOD in µs (quota >= 1000, period 1000..1000000), or a percentage of "
	  "one CPU like 25% (at least 1%)"),
	L("cpu_idle", SUP_LIM_CPU_IDLE, "0 or 1"),
	L("memory_low", SUP_LIM_MEMORY_LOW, SIZE_OR_MAX),
	L("memory_high", SUP_LIM_MEMORY_HIGH, SIZE_OR_MAX),
	L("memory_max", SUP_LIM_MEMORY_MAX, SIZE_OR_MAX),
	L("memory_swap_max", SUP_LIM_MEMORY_SWAP_MAX, SIZE_OR_MAX),
	L("memory_oom_group", SUP_LIM_MEMORY_OOM_GROUP, "0 or 1"),
	L("io_weight", SUP_LIM_IO_WEIGHT, "an integer 1..10000"),
	{ .name = "io_max", .type = CT_FN, .flags = KF_LIMIT | KF_REPEAT, .arg = SUP_LIM_IO_MAX,
	  .expect = "MAJ:MIN followed by rbps=, wbps=, riops= or wiops= limits (>= 1 or max)",
	  .parse = parse_limit, .dump = dump_limit },
	L("pids_max", SUP_LIM_PIDS_MAX, "an integer 1..4194304 or max"),
	L("cpuset_cpus", SUP_LIM_CPUSET_CPUS, "a CPU list like 0-3,6 (CPUs below 8192)"),
};
#undef L

const char *sup_limit_key(enum sup_limit l)
{
	return (unsigned)l < SUP_LIM_COUNT ? limit_keys[l].name : "?";
}

const struct cfg_table sup_cfg_limit_keys = { limit_keys, sizeof(limit_keys) / sizeof(limit_keys[0]) };
_Static_assert(sizeof(limit_keys) / sizeof(limit_keys[0]) == SUP_LIM_COUNT,
	       "a limit without a key");
