/* SPDX-License-Identifier: MIT */
/* tierctl: limits, limit, history, analyze, optimiser and allocator on|off. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/tiers.h"
#include "common/units.h"
#include "adapt.h"

#define DASH "-"
#define HISTORY_MAX 100000   /* more than the daemon keeps; a typo guard */

const char *tctl_fmt_bytes(double v, char *buf, size_t len)
{
	static const char units[] = "KMGTPE";
	int u = -1;

	if (!isfinite(v) || v < 0)
		return DASH;
	while (v >= 1024 && u < (int)sizeof(units) - 2) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
	return buf;
}

bool tctl_num(const json_t *o, const char *key, double *ret)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_number(v))
		return false;
	*ret = json_number_value(v);
	return true;
}

const char *tctl_fmt_fixed(const json_t *o, const char *key, double scale, int prec, char *buf,
			   size_t len)
{
	double v;

	if (!tctl_num(o, key, &v) || !isfinite(v))
		return DASH;
	snprintf(buf, len, "%.*f", prec, v * scale);
	return buf;
}

/* "tierN" with N in 1..4; 0 if it is not one. */
static int tier_arg(const char *a)
{
	if (!strncmp(a, "tier", 4) && a[4] >= '1' && a[4] <= '0' + SUP_NTIERS && !a[5])
		return a[4] - '0';
	return 0;
}

/* ---- arguments ---------------------------------------------------------------- */

int tctl_args_limits(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		     json_t **ret_args)
{
	bool explain = false;

	(void)cmd;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--explain") && strcmp(argv[i], "-e")) {
			snprintf(err, errlen, "unknown argument '%s' (only --explain)", argv[i]);
			return -EINVAL;
		}
		explain = true;
	}
	*ret_args = json_pack("{s:b}", "explain", explain);
	return *ret_args ? 0 : -ENOMEM;
}

/* cpu: "off", "N%" of the machine (0..100) or N cores. */
static int check_cpu(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	char num_part[64];
	double x;

	if (!strcmp(v, "off"))
		return 0;
	if (n && n < sizeof(num_part) && v[n - 1] == '%') {
		memcpy(num_part, v, n - 1);
		num_part[n - 1] = '\0';
		if (sup_parse_decimal(num_part, &x) == 0 && x <= 100)
			return 0;
	} else if (sup_parse_decimal(v, &x) == 0) {
		return 0;
	}
	snprintf(err, errlen, "cpu=%s: give a percent of the machine (cpu=30%%), cores (cpu=1.5) "
		 "or off", v);
	return -EINVAL;
}

static int check_memory(const char *v, char *err, size_t errlen)
{
	uint64_t bytes;

	if (!strcmp(v, "off") || sup_parse_size(v, &bytes) == 0)
		return 0;
	snprintf(err, errlen, "memory=%s: give a size (memory=2G, 512M) or off", v);
	return -EINVAL;
}

int tctl_args_limit(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		    json_t **ret_args)
{
	const char *cpu = NULL, *mem = NULL;
	json_t *args;
	int tier;

	(void)cmd;
	if (argc < 3) {
		snprintf(err, errlen, "needs tierN and cpu=VALUE and/or memory=VALUE");
		return -EINVAL;
	}
	tier = tier_arg(argv[1]);
	if (!tier) {
		snprintf(err, errlen, "'%s' is not a tier (tier1..tier%d)", argv[1], SUP_NTIERS);
		return -EINVAL;
	}
	for (int i = 2; i < argc; i++) {
		const char **slot = !strncmp(argv[i], "cpu=", 4) ? &cpu :
				    !strncmp(argv[i], "memory=", 7) ? &mem : NULL;

		if (!slot) {
			snprintf(err, errlen, "unknown limit '%s' (cpu=... or memory=...)", argv[i]);
			return -EINVAL;
		}
		if (*slot) {
			snprintf(err, errlen, "'%s': %s is given twice", argv[i],
				 slot == &cpu ? "cpu" : "memory");
			return -EINVAL;
		}
		*slot = strchr(argv[i], '=') + 1;
	}
	if ((cpu && check_cpu(cpu, err, errlen) < 0) || (mem && check_memory(mem, err, errlen) < 0))
		return -EINVAL;
	args = json_pack("{s:i}", "tier", tier);
	if (!args)
		return -ENOMEM;
	if (cpu)
		json_object_set_new(args, "cpu", json_string(cpu));
	if (mem)
		json_object_set_new(args, "memory", json_string(mem));
	*ret_args = args;
	return 0;
}

/* [tierN|machine] [N] in any order. */
int tctl_args_history(const struct tctl_cmd *cmd, int argc, char **argv, char *err,
		      size_t errlen, json_t **ret_args)
{
	long n = 0;
	int tier = -1;

	(void)cmd;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (tier < 0 && (tier_arg(a) || !strcmp(a, "machine"))) {
			tier = tier_arg(a);
			continue;
		}
		errno = 0;
		n = strtol(a, &end, 10);
		if (errno || end == a || *end || n < 1 || n > HISTORY_MAX || i + 1 < argc) {
			snprintf(err, errlen, "'%s': give [tierN|machine] [N], N a count of samples "
				 "(1..%d)", a, HISTORY_MAX);
			return -EINVAL;
		}
	}
	*ret_args = json_pack("{s:i}", "tier", tier < 0 ? 0 : tier);
	if (*ret_args && n)
		json_object_set_new(*ret_args, "n", json_integer(n));
	return *ret_args ? 0 : -ENOMEM;
}

int tctl_args_onoff(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		    json_t **ret_args)
{
	if (argc != 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off"))) {
		snprintf(err, errlen, "needs on or off");
		return -EINVAL;
	}
	(void)cmd;
	*ret_args = json_pack("{s:s}", "state", argv[1]);
	return *ret_args ? 0 : -ENOMEM;
}

/* ---- limits ------------------------------------------------------------------- */

enum slot_kind { SK_CPU_MAX, SK_BYTES, SK_PLAIN };

/* A knob as the allocator reports it: {"value": "…"|null, "skipped": ctrl,
 * "error": "…"}. "n/a" when its controller is not live, "-" when never
 * written (the kernel's default), a trailing "!" when the last write
 * failed. */
static const char *slot_cell(const json_t *tier, const char *key, enum slot_kind kind, char *buf,
			     size_t len)
{
	const json_t *s = json_object_get(tier, key);
	const char *v = json_string_value(json_object_get(s, "value"));
	const char *e = json_string_value(json_object_get(s, "error"));
	char tmp[64];
	double quota, period;

	if (!s)
		return DASH;
	if (json_is_string(json_object_get(s, "skipped")))
		return "n/a";
	if (!v)
		return DASH;
	if (!strncmp(v, "max", 3))
		snprintf(tmp, sizeof(tmp), "max");
	else if (kind == SK_CPU_MAX && sscanf(v, "%lf %lf", &quota, &period) == 2 && period > 0)
		snprintf(tmp, sizeof(tmp), "%.2f cores", quota / period);
	else if (kind == SK_BYTES)
		tctl_fmt_bytes(strtod(v, NULL), tmp, sizeof(tmp));
	else
		snprintf(tmp, sizeof(tmp), "%s", v);
	snprintf(buf, len, "%s%s", tmp, e && *e ? "!" : "");
	return buf;
}

static void knob_errors(FILE *out, const json_t *tier)
{
	static const char *const keys[] = { "cpu_max", "cpu_weight", "memory_high", "memory_max",
					    "memory_low", "pids_max", "io_weight" };
	const json_t *t = json_object_get(tier, "tier");

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *e = json_string_value(json_object_get(json_object_get(tier, keys[i]), "error"));

		if (e && *e)
			fprintf(out, "  tier%lld %s: last write failed: %s\n",
				(long long)json_integer_value(t), keys[i], e);
	}
}

static void explain_tier(FILE *out, const json_t *tier)
{
	const json_t *cpu = json_object_get(tier, "cpu"), *mem = json_object_get(tier, "memory");
	const char *why = json_string_value(json_object_get(tier, "why"));
	char a[7][32];
	double ceiling;

	fprintf(out, "tier%lld: %s\n", (long long)json_integer_value(json_object_get(tier, "tier")),
		why ? why : DASH);
	if (cpu)
		fprintf(out, "  cpu     usage %s  pressure %s  demand %s  guarantee %s  allocation %s  "
			"ceiling %s (cores)\n",
			tctl_fmt_fixed(cpu, "usage", 1, 2, a[0], 32),
			tctl_fmt_fixed(cpu, "pressure", 1, 2, a[1], 32),
			tctl_fmt_fixed(cpu, "demand", 1, 2, a[2], 32),
			tctl_fmt_fixed(cpu, "guarantee", 1, 2, a[3], 32),
			tctl_fmt_fixed(cpu, "allocation", 1, 2, a[4], 32),
			tctl_num(cpu, "ceiling", &ceiling) && ceiling < 0 ? "none" :
			tctl_fmt_fixed(cpu, "ceiling", 1, 2, a[5], 32));
	if (mem) {
		double u = NAN, t = NAN, h = NAN;

		tctl_num(mem, "usage", &u);
		tctl_num(mem, "target", &t);
		tctl_num(mem, "high", &h);
		fprintf(out, "  memory  usage %s  target %s  memory.high %s\n",
			tctl_fmt_bytes(u, a[0], 32), t < 0 ? "none" : tctl_fmt_bytes(t, a[1], 32),
			json_object_get(json_object_get(tier, "memory_high"), "skipped") ? "n/a" :
			tctl_fmt_bytes(h, a[2], 32));
	}
}

void tctl_render_limits(FILE *out, const char *label, const json_t *r)
{
	const json_t *tiers = json_object_get(r, "tiers"), *t;
	const char *io_why = json_string_value(json_object_get(r, "io_why"));
	const json_t *on = json_object_get(r, "enabled");
	struct tctl_table tab;
	char b1[32], b2[32];
	double mb = NAN;
	size_t i;

	(void)label;
	tctl_num(r, "memory_budget", &mb);
	fprintf(out, "allocator %s; budget %s cores, %s memory; io weights %s%s%s\n",
		!json_is_boolean(on) ? DASH : json_is_true(on) ? "on" : "off (limits stay as they are)",
		tctl_fmt_fixed(r, "cpu_budget", 1, 2, b1, sizeof(b1)), tctl_fmt_bytes(mb, b2, sizeof(b2)),
		tctl_fmt_bool(r, "io_weights"), io_why && *io_why ? ": " : "", io_why ? io_why : "");
	tctl_table_init(&tab, 10);
	tctl_table_add(&tab, (const char *const[]){ "TIER", "CPU.MAX", "CPU.WEIGHT", "MEMORY.HIGH",
						    "MEMORY.MAX", "MEMORY.LOW", "PIDS.MAX", "IO.WEIGHT",
						    "PINS", "BIAS" });
	json_array_foreach(tiers, i, t) {
		char c[10][72];
		bool pc = json_is_true(json_object_get(t, "cpu_pinned"));
		bool pm = json_is_true(json_object_get(t, "memory_pinned"));
		const char *row[10] = {
			tctl_fmt_int(t, "tier", c[0], sizeof(c[0])),
			slot_cell(t, "cpu_max", SK_CPU_MAX, c[1], sizeof(c[1])),
			slot_cell(t, "cpu_weight", SK_PLAIN, c[2], sizeof(c[2])),
			slot_cell(t, "memory_high", SK_BYTES, c[3], sizeof(c[3])),
			slot_cell(t, "memory_max", SK_BYTES, c[4], sizeof(c[4])),
			slot_cell(t, "memory_low", SK_BYTES, c[5], sizeof(c[5])),
			slot_cell(t, "pids_max", SK_PLAIN, c[6], sizeof(c[6])),
			slot_cell(t, "io_weight", SK_PLAIN, c[7], sizeof(c[7])),
			pc && pm ? "cpu,memory" : pc ? "cpu" : pm ? "memory" : DASH,
			tctl_fmt_fixed(t, "bias", 1, 2, c[9], sizeof(c[9])),
		};

		tctl_table_add(&tab, row);
	}
	tctl_table_print(&tab, out);
	tctl_table_free(&tab);
	fputs("(n/a: that controller is not live, the limit is not enforced; -: not written, the "
	      "kernel default)\n", out);
	json_array_foreach(tiers, i, t)
		knob_errors(out, t);
	json_array_foreach(tiers, i, t)
		if (json_object_get(t, "why")) {
			fputc('\n', out);
			explain_tier(out, t);
		}
}

/* ---- history ------------------------------------------------------------------- */

void tctl_render_history(FILE *out, const char *label, const json_t *r)
{
	const json_t *pts = json_object_get(r, "points"), *p;
	long long tier = json_integer_value(json_object_get(r, "tier"));
	size_t n = json_array_size(pts), i;
	struct tctl_table tab;
	double last = 0;

	(void)label;
	if (!n) {
		fputs("no samples yet\n", out);
		return;
	}
	tctl_num(json_array_get(pts, n - 1), "t", &last);
	if (tier)
		fprintf(out, "tier%lld, last %zu samples (CPU and memory summed over its agents)\n", tier, n);
	else
		fprintf(out, "machine, last %zu samples (CPU busy, memory in use)\n", n);
	tctl_table_init(&tab, 6);
	tctl_table_add(&tab, (const char *const[]){ "AGE", "CPU", "RUNQ ms/s", "MEM", "P95 ms",
						    "QUALITY" });
	json_array_foreach(pts, i, p) {
		char c[6][32];
		double t = last, mem = NAN;
		const char *row[6];

		tctl_num(p, "t", &t);
		tctl_num(p, "mem", &mem);
		if (last - t < 0.05)
			snprintf(c[0], sizeof(c[0]), "now");
		else
			snprintf(c[0], sizeof(c[0]), "-%.1fs", last - t);
		row[0] = c[0];
		row[1] = tctl_fmt_fixed(p, "cpu", 1, 2, c[1], sizeof(c[1]));
		row[2] = tctl_fmt_fixed(p, "runq", 1000, 1, c[2], sizeof(c[2]));
		row[3] = tctl_fmt_bytes(mem, c[3], sizeof(c[3]));
		row[4] = tctl_fmt_fixed(p, "p95_ms", 1, 1, c[4], sizeof(c[4]));
		row[5] = tctl_fmt_fixed(p, "quality", 1, 2, c[5], sizeof(c[5]));
		tctl_table_add(&tab, row);
	}
	tctl_table_print(&tab, out);
	tctl_table_free(&tab);
}

/* ---- analyze -------------------------------------------------------------------- */

static void print_bottleneck(FILE *out, const json_t *b)
{
	const char *name = json_string_value(json_object_get(b, "bottleneck"));
	const char *detail = json_string_value(json_object_get(b, "detail"));
	double v, w;

	fprintf(out, "  %-22s", name ? name : "?");
	if (tctl_num(b, "share", &v))
		fprintf(out, " %.1f%%", v * 100);
	if (tctl_num(b, "mean_ms", &v))
		fprintf(out, " %.2f ms on average", v);
	if (tctl_num(b, "utilisation", &v) && tctl_num(b, "top_pressure", &w))
		fprintf(out, " utilisation %.0f%%, tiers 1-2 waiting %.0f%% of their runnable time",
			v * 100, w * 100);
	if (detail)
		fprintf(out, " (%s)", detail);
	fputc('\n', out);
}

void tctl_render_analyze(FILE *out, const char *label, const json_t *r)
{
	const json_t *runs = json_object_get(r, "runs"), *run, *b;
	const char *next = json_string_value(json_object_get(r, "next_change"));
	const char *why = json_string_value(json_object_get(r, "next_why"));
	char a[4][32];
	size_t i, j;

	(void)label;
	fprintf(out, "recent runs %zu, p95 %s ms, utilisation %s%%, time between batches %s%%, "
		"validation delay %s ms; optimiser %s\n", json_array_size(runs),
		tctl_fmt_fixed(r, "p95_ms", 1, 1, a[0], 32),
		tctl_fmt_fixed(r, "utilisation", 100, 0, a[1], 32),
		tctl_fmt_fixed(r, "stagger_share", 100, 1, a[2], 32),
		tctl_fmt_fixed(r, "validate_ms", 1, 2, a[3], 32),
		json_is_true(json_object_get(r, "optimiser")) ? "on" : "off");
	json_array_foreach(runs, i, run) {
		struct tctl_table tab;
		const json_t *st;

		fprintf(out, "\nrun %lld: %s ms, parallel efficiency %s%%\n",
			(long long)json_integer_value(json_object_get(run, "run")),
			tctl_fmt_fixed(run, "wall_ms", 1, 1, a[0], 32),
			tctl_fmt_fixed(run, "efficiency", 100, 1, a[1], 32));
		tctl_table_init(&tab, 7);
		tctl_table_add(&tab, (const char *const[]){ "  TIER", "TASKS", "WALL ms", "BUSY ms",
							    "DISPATCH ms", "VALIDATE ms", "STAGGER ms" });
		json_array_foreach(json_object_get(run, "stages"), j, st) {
			char c[7][32];
			const char *row[7];

			snprintf(c[0], sizeof(c[0]), "  %lld",
				 (long long)json_integer_value(json_object_get(st, "tier")));
			row[0] = c[0];
			row[1] = tctl_fmt_int(st, "tasks", c[1], sizeof(c[1]));
			row[2] = tctl_fmt_fixed(st, "wall_ms", 1, 1, c[2], sizeof(c[2]));
			row[3] = tctl_fmt_fixed(st, "busy_ms", 1, 1, c[3], sizeof(c[3]));
			row[4] = tctl_fmt_fixed(st, "dispatch_ms", 1, 2, c[4], sizeof(c[4]));
			row[5] = tctl_fmt_fixed(st, "validate_ms", 1, 2, c[5], sizeof(c[5]));
			row[6] = tctl_fmt_fixed(st, "stagger_ms", 1, 1, c[6], sizeof(c[6]));
			tctl_table_add(&tab, row);
		}
		tctl_table_print(&tab, out);
		tctl_table_free(&tab);
	}
	fputs("\nbottlenecks:\n", out);
	json_array_foreach(json_object_get(r, "bottlenecks"), i, b)
		print_bottleneck(out, b);
	if (!json_array_size(json_object_get(r, "bottlenecks")))
		fputs("  none found\n", out);
	if (next)
		fprintf(out, "\nnext change: %s (%s)\n", next, why ? why : DASH);
	else
		fputs("\nnext change: none\n", out);
}

void tctl_render_onoff(FILE *out, const char *label, const json_t *r)
{
	const json_t *v = json_object_get(r, label);

	fprintf(out, "%s %s\n", label, !json_is_boolean(v) ? DASH : json_is_true(v) ? "on" : "off");
}
