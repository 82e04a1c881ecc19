/* SPDX-License-Identifier: MIT */
/* Configuration: value parsers, defaults, every error message, users and
 * groups, dump round trips, reload comparisons, the bundled example. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "../supervisor/cgroup/cg_enforce.h"
#include "../supervisor/config.h"

/* Data files sit beside this source; tests run from the repository root
 * (make), where __FILE__ is relative to. */
static const char *data(const char *name)
{
	static char buf[8][PATH_MAX];
	static unsigned next;
	char *p = buf[next++ % 8];
	const char *slash = strrchr(__FILE__, '/');
	int dl = slash ? (int)(slash - __FILE__) : 1;

	snprintf(p, PATH_MAX, "%.*s/%s", dl, slash ? __FILE__ : ".", name);
	return p;
}

static struct sup_config *parse(const char *text, struct sup_config_errors *errs)
{
	return sup_config_parse("t.ini", "/etc/tierd", text, strlen(text), errs);
}

static void dump_errs(const struct sup_config_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "  %s\n", e->v[i].msg);
}

static bool has_msg(const struct sup_config_errors *e, const char *msg)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].msg, msg))
			return true;
	dump_errs(e);
	return false;
}

/* Load a sample that must be refused with exactly this message (after
 * "path:"). */
static void expect_refused(const char *file, const char *tail)
{
	struct sup_config_errors e = { 0 };
	const char *path = data(file);
	struct sup_config *c = sup_config_load(path, &e);
	char want[PATH_MAX + 512];

	cr_assert_null(c, "%s loaded", path);
	cr_assert_eq(errno, EINVAL, "%s: %s", path, strerror(errno));
	cr_assert_gt(e.n_errors, 0);
	snprintf(want, sizeof(want), "%s:%s", path, tail);
	cr_assert(has_msg(&e, want), "missing: %s", want);
	sup_config_errors_clear(&e);
}

static struct sup_config *load_ok(const char *path)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = sup_config_load(path, &e);

	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c, "%s: %s", path, strerror(errno));
	cr_assert_eq(e.n_errors, 0);
	sup_config_errors_clear(&e);
	return c;
}

static char *dump_to_string(const struct sup_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(sup_config_dump(c, f), 0);
	fclose(f);
	return buf;
}

static void assert_round_trip(const struct sup_config *c)
{
	struct sup_config_errors e = { 0 };
	char *text = dump_to_string(c);
	struct sup_config *again = sup_config_parse("dump.ini", c->dir, text, strlen(text), &e);

	if (!again)
		dump_errs(&e);
	cr_assert_not_null(again, "dump does not load:\n%s", text);
	cr_assert(sup_config_equal(c, again), "dump loads differently:\n%s", text);
	sup_config_free(again);
	sup_config_errors_clear(&e);
	free(text);
}

/* ---- durations ------------------------------------------------------------ */

Test(parse_duration, should_accept_every_unit)
{
	static const struct { const char *s; int64_t ns; } ok[] = {
		{ "0", 0 }, { "7ns", 7 }, { "100us", 100000 }, { "100\xc2\xb5s", 100000 },
		{ "200ms", 200000000 }, { "30s", 30000000000 }, { "1.5s", 1500000000 },
		{ "5min", 300000000000 }, { "1h", 3600000000000 }, { "2d", 172800000000000 },
		{ "0.25ms", 250000 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t ns = -1;

		cr_assert_eq(sup_parse_duration(ok[i].s, &ns), 0, "%s", ok[i].s);
		cr_assert_eq(ns, ok[i].ns, "%s: %lld", ok[i].s, (long long)ns);
	}
}

Test(parse_duration, should_refuse_malformed_durations)
{
	static const char *const bad[] = { "", "200", "-1s", "1.s", ".5s", "s", "1 s", "1e3ms",
					   "1S", "5m", "1sec", " 1s", "1s ", "1s2", "0x10s" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ns = 42;

		cr_assert_eq(sup_parse_duration(bad[i], &ns), -EINVAL, "'%s'", bad[i]);
		cr_assert_eq(ns, 42, "out-parameter touched on failure");
	}
}

Test(parse_duration, should_refuse_overflow)
{
	int64_t ns;

	cr_assert_eq(sup_parse_duration("300000d", &ns), -ERANGE);
	cr_assert_eq(sup_parse_duration("99999999999999999999999s", &ns), -ERANGE);
}

Test(parse_duration, should_format_in_the_largest_exact_unit)
{
	static const struct { int64_t ns; const char *s; } v[] = {
		{ 0, "0" }, { 1500000000, "1500ms" }, { 300000000000, "5min" },
		{ 50000, "50us" }, { 7, "7ns" }, { 86400000000000, "1d" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int64_t back;

		sup_format_duration(v[i].ns, buf, sizeof(buf));
		cr_assert_str_eq(buf, v[i].s);
		cr_assert_eq(sup_parse_duration(buf, &back), 0);
		cr_assert_eq(back, v[i].ns);
	}
}

/* ---- sizes, percentages, numbers ------------------------------------------ */

Test(parse_size, should_accept_binary_suffixes)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "256K", 262144 }, { "256KiB", 262144 },
		{ "1M", 1048576 }, { "1MiB", 1048576 }, { "2G", 2147483648ull },
		{ "1GiB", 1073741824 }, { "1T", 1099511627776ull }, { "1.5G", 1610612736 },
		{ "64k", 65536 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 1;

		cr_assert_eq(sup_parse_size(ok[i].s, &v), 0, "%s", ok[i].s);
		cr_assert_eq(v, ok[i].v, "%s", ok[i].s);
	}
}

Test(parse_size, should_refuse_malformed_sizes)
{
	static const char *const bad[] = { "", "K", "-1", "1.5", "1KB", "1 K", "1Ki", "1P", "max",
					   "0x100", "1e6" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 42;

		cr_assert_lt(sup_parse_size(bad[i], &v), 0, "'%s'", bad[i]);
		cr_assert_eq(v, 42);
	}
	cr_assert_eq(sup_parse_size("16777216T", &(uint64_t){ 0 }), -ERANGE);
}

Test(parse_size, should_format_in_the_largest_exact_unit)
{
	char buf[32];

	sup_format_size(262144, buf, sizeof(buf));
	cr_assert_str_eq(buf, "256K");
	sup_format_size(1536, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1536");
	sup_format_size(3ull << 30, buf, sizeof(buf));
	cr_assert_str_eq(buf, "3G");
	sup_format_size(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0");
}

Test(parse_percent, should_accept_with_and_without_the_sign)
{
	double v;

	cr_assert_eq(sup_parse_percent("80%", &v), 0);
	cr_assert_float_eq(v, 80.0, 1e-12);
	cr_assert_eq(sup_parse_percent("80", &v), 0);
	cr_assert_float_eq(v, 80.0, 1e-12);
	cr_assert_eq(sup_parse_percent("12.5%", &v), 0);
	cr_assert_float_eq(v, 12.5, 1e-12);
}

Test(parse_percent, should_refuse_malformed_percentages)
{
	static const char *const bad[] = { "", "%", "-5%", "80%%", "eighty", "1e2%", "nan", "inf",
					   " 80%", "80 %" };
	double v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(sup_parse_percent(bad[i], &v), 0, "'%s'", bad[i]);
	cr_assert_float_eq(v, 42, 0);
}

Test(parse_decimal, should_format_back_to_the_same_double)
{
	static const double v[] = { 0.8, 7.0, 0.1, 12.345, 99.99, 0.000001, 1234567.5 };
	char buf[64];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		double back;

		sup_format_decimal(v[i], buf, sizeof(buf));
		cr_assert_eq(sup_parse_decimal(buf, &back), 0, "%s", buf);
		cr_assert(back == v[i], "%s", buf);
	}
	sup_format_decimal(0.8, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0.8");
}

Test(parse_bool, should_accept_the_usual_words)
{
	bool b;

	cr_assert_eq(sup_parse_bool("on", &b), 0);
	cr_assert(b);
	cr_assert_eq(sup_parse_bool("0", &b), 0);
	cr_assert_not(b);
	cr_assert_eq(sup_parse_bool("yes", &b), 0);
	cr_assert_eq(sup_parse_bool("false", &b), 0);
	cr_assert_eq(sup_parse_bool("On", &b), -EINVAL);
	cr_assert_eq(sup_parse_bool("2", &b), -EINVAL);
}

/* ---- cpu_max, cpus, io_max, rlimits ---------------------------------------- */

Test(parse_cpu_max, should_accept_max_quota_period_and_percent)
{
	uint64_t q, p;

	cr_assert_eq(sup_parse_cpu_max("max", &q, &p), 0);
	cr_assert_eq(q, SUP_LIMIT_MAX);
	cr_assert_eq(p, 100000);
	cr_assert_eq(sup_parse_cpu_max("max 50000", &q, &p), 0);
	cr_assert_eq(q, SUP_LIMIT_MAX);
	cr_assert_eq(p, 50000);
	cr_assert_eq(sup_parse_cpu_max("25000 100000", &q, &p), 0);
	cr_assert_eq(q, 25000);
	cr_assert_eq(p, 100000);
	cr_assert_eq(sup_parse_cpu_max("25%", &q, &p), 0);
	cr_assert_eq(q, 25000);
	cr_assert_eq(p, 100000);
	cr_assert_eq(sup_parse_cpu_max("250%", &q, &p), 0);
	cr_assert_eq(q, 250000);
	cr_assert_eq(sup_parse_cpu_max("5000", &q, &p), 0);
	cr_assert_eq(q, 5000);
	cr_assert_eq(p, 100000);
}

Test(parse_cpu_max, should_refuse_values_the_kernel_refuses)
{
	static const char *const bad[] = { "", "0.5%", "999 100000", "25000 999", "25000 1000001",
					   "25000  100000", "max max", "25%% ", "-1", "fast",
					   "25000 100000 7", "0%" };
	uint64_t q = 1, p = 1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(sup_parse_cpu_max(bad[i], &q, &p), 0, "'%s'", bad[i]);
	cr_assert_eq(q, 1);
	cr_assert_eq(p, 1);
}

Test(parse_cpus, should_accept_cpu_lists)
{
	static const char *const ok[] = { "0", "0-3", "0-1,3", "0,2,4-7", "8191" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert_eq(sup_parse_cpus(ok[i]), 0, "%s", ok[i]);
}

Test(parse_cpus, should_refuse_malformed_cpu_lists)
{
	static const char *const bad[] = { "", "3-1", "0,", ",0", "0-", "a", "0 1", "0--2", "8192",
					   "1.5", "0-3,,4" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(sup_parse_cpus(bad[i]), 0, "'%s'", bad[i]);
}

Test(parse_io_max, should_accept_any_subset_of_keys)
{
	struct sup_io_max io;

	cr_assert_eq(sup_parse_io_max("8:0 rbps=1048576 wbps=2M riops=100 wiops=max", &io), 0);
	cr_assert_eq(io.major, 8);
	cr_assert_eq(io.minor, 0);
	cr_assert_eq(io.rbps, 1048576);
	cr_assert_eq(io.wbps, 2097152);
	cr_assert_eq(io.riops, 100);
	cr_assert_eq(io.wiops, SUP_LIMIT_MAX);
	cr_assert_eq(sup_parse_io_max("259:1 wiops=50", &io), 0);
	cr_assert_eq(io.rbps, 0, "a key not given stays 0");
	cr_assert_eq(io.wiops, 50);
}

Test(parse_io_max, should_refuse_malformed_io_max)
{
	static const char *const bad[] = { "", "8:0", "8 rbps=1", "8:0 rbps", "8:0 rbps=",
					   "8:0 rbps=0", "8:0 xbps=1", "8:0 rbps=1 rbps=2",
					   "a:b rbps=1", "8:0 riops=1K", "4096:0 rbps=1",
					   "8:0 rbps=fast" };
	struct sup_io_max io = { .major = 77 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(sup_parse_io_max(bad[i], &io), 0, "'%s'", bad[i]);
	cr_assert_eq(io.major, 77);
}

Test(parse_rlimit, should_accept_soft_hard_and_infinity)
{
	uint64_t cur, max;

	cr_assert_eq(sup_parse_rlimit("1024:4096", false, &cur, &max), 0);
	cr_assert_eq(cur, 1024);
	cr_assert_eq(max, 4096);
	cr_assert_eq(sup_parse_rlimit("64", false, &cur, &max), 0);
	cr_assert_eq(cur, 64);
	cr_assert_eq(max, 64);
	cr_assert_eq(sup_parse_rlimit("8M:infinity", true, &cur, &max), 0);
	cr_assert_eq(cur, 8u << 20);
	cr_assert_eq(max, RLIM_INFINITY);
	cr_assert_eq(sup_parse_rlimit("unlimited", false, &cur, &max), 0);
	cr_assert_eq(cur, RLIM_INFINITY);
}

Test(parse_rlimit, should_refuse_soft_above_hard_and_junk)
{
	uint64_t cur, max;

	cr_assert_eq(sup_parse_rlimit("4096:1024", false, &cur, &max), -ERANGE);
	cr_assert_eq(sup_parse_rlimit("infinity:10", false, &cur, &max), -ERANGE);
	cr_assert_lt(sup_parse_rlimit("8M", false, &cur, &max), 0, "no suffix on counts");
	cr_assert_lt(sup_parse_rlimit("", false, &cur, &max), 0);
	cr_assert_lt(sup_parse_rlimit("1:", false, &cur, &max), 0);
	cr_assert_lt(sup_parse_rlimit("1:2:3", false, &cur, &max), 0);
}

/* ---- argv ----------------------------------------------------------------- */

static void assert_argv(const char *line, const char *const *want)
{
	char **argv;
	size_t argc, n = 0;

	cr_assert_eq(sup_parse_argv(line, &argv, &argc), 0, "%s", line);
	while (want[n])
		n++;
	cr_assert_eq(argc, n, "%s: %zu words", line, argc);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(argv[i], want[i], "%s: word %zu", line, i);
	cr_assert_null(argv[argc]);
	sup_argv_free(argv);
}

Test(parse_argv, should_split_on_blanks)
{
	assert_argv("a  b\tc", (const char *const[]){ "a", "b", "c", NULL });
	assert_argv("  lead trail  ", (const char *const[]){ "lead", "trail", NULL });
}

Test(parse_argv, should_keep_quoted_text_whole_and_literal)
{
	assert_argv("echo 'a b' \"c d\"", (const char *const[]){ "echo", "a b", "c d", NULL });
	assert_argv("x 'no $HOME \\n here'", (const char *const[]){ "x", "no $HOME \\n here", NULL });
	assert_argv("x \"say \\\"hi\\\" \\\\ \\n\"",
		    (const char *const[]){ "x", "say \"hi\" \\ \\n", NULL });
	assert_argv("x '' \"\"", (const char *const[]){ "x", "", "", NULL });
	assert_argv("pre'fix'\"ed\"", (const char *const[]){ "prefixed", NULL });
}

Test(parse_argv, should_take_the_next_character_after_a_backslash)
{
	assert_argv("a\\ b c\\'d \\\\", (const char *const[]){ "a b", "c'd", "\\", NULL });
}

Test(parse_argv, should_refuse_unterminated_quotes_and_empty_lines)
{
	static const char *const bad[] = { "", "   ", "a 'b", "a \"b", "a\\", "\"a\\\"" };
	char **argv = (char **)&argv;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(sup_parse_argv(bad[i], &argv, NULL), -EINVAL, "'%s'", bad[i]);
	cr_assert_eq(argv, (char **)&argv, "out-parameter touched on failure");
}

Test(parse_argv, should_format_words_that_split_back_the_same)
{
	char *words[] = { "plain", "", "a b", "it's", "tab\there", " ;comment", "x ;y", "end ",
			  "\\", "\"q\"", "semi;colon", "#hash", "\r", NULL };
	char **back;
	size_t n;
	char *line = sup_argv_format(words);

	cr_assert_not_null(line);
	cr_assert_eq(sup_parse_argv(line, &back, &n), 0, "%s", line);
	cr_assert_eq(n, sizeof(words) / sizeof(words[0]) - 1, "%s", line);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(back[i], words[i], "%s: word %zu", line, i);
	/* What an INI value can hold: no comment start, no blank at an end. */
	for (char *p = line; *p; p++)
		cr_assert_not(isspace((unsigned char)p[0]) && p[1] == ';', "%s", line);
	cr_assert_not(isspace((unsigned char)line[strlen(line) - 1]));
	sup_argv_free(back);
	free(line);
}

/* ---- defaults ------------------------------------------------------------- */

Test(defaults, should_apply_every_supervisor_default)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));
	const struct sup_supervisor_conf *s = &c->sup;

	cr_assert_str_eq(s->cgroup_root, SUP_DEF_CGROUP_ROOT);
	cr_assert_str_eq(s->control_socket, "/run/tierd/tierd.sock");
	cr_assert_null(s->control_group);
	cr_assert_eq(s->monitor_interval_ns, 1000000000);
	cr_assert_eq(s->log_level, 6);
	cr_assert_str_eq(s->metrics_address, "127.0.0.1:9464");
	cr_assert_eq(s->restart_backoff_base_ns, 100000000);
	cr_assert_eq(s->restart_backoff_cap_ns, 30000000000);
	cr_assert_eq(s->restart_stable_after_ns, 10000000000);
	cr_assert_eq(s->crash_loop_count, 5);
	cr_assert_eq(s->crash_loop_window_ns, 60000000000);
	cr_assert_eq(s->task_retry_budget, 3);
	cr_assert_eq(s->result_retention_ns, 300000000000);
	cr_assert_eq(s->task_queue_limit, 1024);
	cr_assert_eq(s->max_payload, 60 * 1024);
	cr_assert_eq(s->spin_window_ns, 50000);
	cr_assert_float_eq(s->utilisation_threshold, 80.0, 0);
	cr_assert_float_eq(s->safety_margin, 0.8, 0);
	cr_assert_float_eq(s->hysteresis, 5.0, 0);
	cr_assert(s->optimiser);
	cr_assert_eq(s->response_time_target_ns, 5000000000);
	cr_assert_float_eq(s->efficiency_target, 70.0, 0);
	cr_assert_float_eq(s->quality_threshold, 7.0, 0);
	cr_assert_float_eq(s->stability_target, 95.0, 0);
	cr_assert_null(s->agentd);
	cr_assert_null(s->admin_group);
	cr_assert_eq(s->result_retention_max, 10000);
	cr_assert_eq(s->result_retention_bytes, (uint64_t)64 << 20);
	cr_assert_eq(s->control_idle_timeout_ns, 60000000000);
	cr_assert_eq(s->control_max_per_uid, 32);
	sup_config_free(c);
}

Test(defaults, should_apply_the_seed_tier_allocations)
{
	static const double want[SUP_NRES][SUP_NTIERS] = {
		{ 15, 35, 40, 10 }, { 10, 30, 50, 10 }, { 20, 30, 40, 10 }, { 15, 35, 40, 10 },
	};
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));

	for (int t = 0; t < SUP_NTIERS; t++) {
		const struct sup_tier_conf *tc = &c->tiers[t];

		for (int r = 0; r < SUP_NRES; r++)
			cr_assert_float_eq(tc->share[r], want[r][t], 0, "tier %d resource %d", t + 1, r);
		cr_assert_eq(tc->batch_size, 4);
		cr_assert_eq(tc->stagger_ns, 200000000);
		cr_assert_eq(tc->processing_timeout_ns, 30000000000);
		cr_assert_eq(tc->limits.set, 0, "no limit unless configured");
	}
	sup_config_free(c);
}

Test(defaults, should_apply_every_agent_default)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));
	const struct sup_agent_conf *a = sup_config_agent(c, "solo");

	cr_assert_not_null(a);
	cr_assert_eq(a->tier, 2);
	cr_assert_eq(a->argc, 1);
	cr_assert_str_eq(a->argv[0], "solo-agent", "a bare name is left for PATH");
	cr_assert_eq(a->n_env, 0);
	cr_assert_null(a->workdir);
	/* A root tierd gives it its tier's user (default_user tests). */
	cr_assert_eq(a->has_uid, geteuid() == 0);
	cr_assert_eq(a->default_user, geteuid() == 0);
	cr_assert(a->sandbox);
	cr_assert_eq(a->has_gid, geteuid() == 0, "the tier user's primary group");
	cr_assert_eq(a->caps, 0);
	for (int i = 0; i < SUP_RLIMIT_COUNT; i++)
		cr_assert_not(a->rlimits[i].set);
	cr_assert_eq(a->restart, SUP_RESTART_ON_FAILURE);
	cr_assert_eq(a->start_timeout_ns, 5000000000);
	cr_assert_eq(a->stop_timeout_ns, 5000000000);
	cr_assert_eq(a->ring_size, 256 * 1024);
	cr_assert_eq(a->n_specialties, 0);
	cr_assert_eq(a->mode, SUP_MODE_NATIVE);
	cr_assert_eq(a->exec_timeout_ns, 30000000000);
	cr_assert_eq(a->limits.set, 0);
	cr_assert_eq(a->line, 2);
	sup_config_free(c);
}

/* ---- a full file ---------------------------------------------------------- */

Test(load, should_read_every_key_of_a_full_file)
{
	struct sup_config *c = load_ok(data("data/config/full.ini"));
	const struct sup_agent_conf *w = sup_config_agent(c, "worker-1");
	const struct sup_agent_conf *d = sup_config_agent(c, "spec.docs");
	const struct sup_tier_conf *t3 = &c->tiers[2];
	char exe[PATH_MAX + 32];

	cr_assert_str_eq(c->sup.cgroup_root, "fleet/tierd");
	cr_assert_str_eq(c->sup.metrics_address, "[::1]:9100");
	cr_assert_eq(c->sup.control_gid, 0);
	cr_assert_eq(c->sup.max_payload, 16384);
	cr_assert_float_eq(c->sup.hysteresis, 2.5, 0);
	cr_assert_not(c->sup.optimiser);
	snprintf(exe, sizeof(exe), "%s/../build/agentd", c->dir);
	cr_assert_str_eq(c->sup.agentd, exe);
	cr_assert_eq(t3->batch_size, 8);
	cr_assert_eq(t3->limits.cpu_max_quota_us, 50000);
	cr_assert_eq(t3->limits.memory_swap_max, 0);
	cr_assert(sup_limit_is_set(&t3->limits, SUP_LIM_MEMORY_SWAP_MAX), "0 is a value, not unset");
	cr_assert_eq(t3->limits.n_io_max, 2);
	cr_assert_eq(t3->limits.io_max[1].major, 259);
	cr_assert_str_eq(t3->limits.cpuset_cpus, "0-3,6");
	cr_assert_not_null(w);
	snprintf(exe, sizeof(exe), "%s/bin/worker", c->dir);
	cr_assert_str_eq(w->argv[0], exe, "./ is resolved against the file's directory");
	cr_assert_str_eq(w->argv[2], "worker one");
	cr_assert_str_eq(w->argv[4], "back slash");
	cr_assert_str_eq(w->env[0], "LANG=C.UTF-8");
	cr_assert(w->has_uid && w->uid == 0 && w->has_gid && w->gid == 0);
	cr_assert_eq(w->caps, (1ull << 10) | (1ull << 23)); /* net_bind_service, sys_nice */
	cr_assert(w->rlimits[RLIMIT_NOFILE].set);
	cr_assert_eq(w->rlimits[RLIMIT_NOFILE].max, 4096);
	cr_assert_eq(w->rlimits[RLIMIT_STACK].max, RLIM_INFINITY);
	cr_assert_eq(w->limits.pids_max, SUP_LIMIT_MAX);
	cr_assert_eq(w->limits.set, SUP_LIM_BIT(SUP_LIM_CPU_WEIGHT) | SUP_LIM_BIT(SUP_LIM_CPU_MAX) |
				      SUP_LIM_BIT(SUP_LIM_MEMORY_MAX) | SUP_LIM_BIT(SUP_LIM_PIDS_MAX));
	cr_assert_not_null(d);
	cr_assert_eq(d->mode, SUP_MODE_EXEC);
	cr_assert_eq(d->n_specialties, 3);
	cr_assert_str_eq(d->specialties[0], "docs", "sorted");
	cr_assert_str_eq(d->specialties[2], "review");
	sup_config_free(c);
}

Test(load, should_keep_agents_in_file_order)
{
	struct sup_config *c = load_ok(data("data/config/full.ini"));

	cr_assert_eq(c->n_agents, 2);
	cr_assert_str_eq(c->agents[0].name, "worker-1");
	cr_assert_str_eq(c->agents[1].name, "spec.docs");
	cr_assert_null(sup_config_agent(c, "nobody"));
	sup_config_free(c);
}

Test(load, should_ignore_indentation_comments_bom_and_crlf)
{
	static const char text[] = "\xef\xbb\xbf; comment\r\n# another\r\n"
				   "[agent a]\r\n"
				   "    tier = 3 ; inline comment\r\n"
				   "\texec = /bin/true x;y\r\n";
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse(text, &e);

	cr_assert_not_null(c);
	cr_assert_eq(c->agents[0].tier, 3);
	cr_assert_eq(c->agents[0].argc, 2);
	cr_assert_str_eq(c->agents[0].argv[1], "x;y");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(load, should_read_lines_longer_than_inih_buffer)
{
	char text[4096], arg[1500];
	struct sup_config_errors e = { 0 };
	struct sup_config *c;

	memset(arg, 'z', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	snprintf(text, sizeof(text), "[agent %s]\ntier = 1\nexec = /bin/echo 'a b' %s ; comment\n"
		 "env = LONG=%s\n", "a-name-that-is-exactly-forty-eight-characters-xx", arg, arg);
	c = parse(text, &e);
	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->agents[0].name, "a-name-that-is-exactly-forty-eight-characters-xx");
	cr_assert_eq(c->agents[0].argc, 3);
	cr_assert_str_eq(c->agents[0].argv[2], arg);
	cr_assert_eq(strlen(c->agents[0].env[0]), 5 + strlen(arg));
	assert_round_trip(c);
	sup_config_free(c);
}

Test(load, should_refuse_a_missing_file)
{
	struct sup_config_errors e = { 0 };

	cr_assert_null(sup_config_load(data("data/config/no-such-file.ini"), &e));
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(e.n_errors, 1);
	sup_config_errors_clear(&e);
}

Test(load, should_refuse_a_nul_byte)
{
	static const char text[] = "[agent a]\ntier = 1\0\nexec = /bin/true\n";
	struct sup_config_errors e = { 0 };

	cr_assert_null(sup_config_parse("t.ini", "/", text, sizeof(text) - 1, &e));
	cr_assert(has_msg(&e, "t.ini:2: the line holds a NUL byte"));
	sup_config_errors_clear(&e);
}

Test(load, should_cap_the_number_of_messages)
{
	size_t n = 300 * 16 + 16;
	char *text = malloc(n), *p = text;
	struct sup_config_errors e = { 0 };

	p += sprintf(p, "[tier1]\n");
	for (int i = 0; i < 300; i++)
		p += sprintf(p, "bogus%d = 1\n", i);
	cr_assert_null(parse(text, &e));
	cr_assert_eq(e.n, SUP_CONFIG_MAX_DIAGS);
	cr_assert_eq(e.n_errors, 300);
	cr_assert_eq(e.dropped, 300 - SUP_CONFIG_MAX_DIAGS + 1, "the no-agent warning too");
	sup_config_errors_clear(&e);
	free(text);
}

/* ---- error messages -------------------------------------------------------- */

Test(errors, should_name_file_line_section_key_and_expectation)
{
	expect_refused("data/config/bad_tier.ini",
		       "2: [agent foo] key 'tier': expected an integer 1..4, got '7'");
}

Test(errors, should_suggest_a_close_key)
{
	expect_refused("data/config/unknown_key.ini",
		       "4: [agent foo] unknown key 'restrat' (did you mean 'restart'?)");
}

Test(errors, should_say_where_a_misplaced_key_belongs)
{
	expect_refused("data/config/wrong_section_key.ini",
		       "4: [agent foo] key 'batch_size' belongs in [tierN] sections");
}

Test(errors, should_refuse_unknown_sections)
{
	expect_refused("data/config/unknown_section.ini",
		       "4: unknown section [tier5]: expected [supervisor], [tier1]..[tier4] or "
		       "[agent NAME]");
	expect_refused("data/config/unknown_section.ini",
		       "7: unknown section [agents foo]: expected [supervisor], [tier1]..[tier4] or "
		       "[agent NAME]");
}

Test(errors, should_name_the_section_missing_a_required_key)
{
	expect_refused("data/config/missing_exec.ini",
		       "4: [agent lonely] missing required key 'exec'");
}

Test(errors, should_refuse_duplicate_agents)
{
	expect_refused("data/config/duplicate_agent.ini",
		       "5: [agent twin]: duplicate agent name (first defined at line 1)");
}

Test(errors, should_refuse_duplicate_keys)
{
	expect_refused("data/config/duplicate_key.ini",
		       "4: [agent foo] key 'tier': given twice (first at line 2)");
}

Test(errors, should_refuse_a_duration_without_unit)
{
	expect_refused("data/config/bad_duration.ini",
		       "2: [tier3] key 'stagger': expected a duration like 200ms, 30s or 5min, "
		       "from 0 to 1h, got '200'");
}

Test(errors, should_refuse_shares_above_100_percent)
{
	expect_refused("data/config/shares_sum.ini",
		       "8: [tier1]..[tier4] key 'cpu_share': the tiers' shares add up to 120%: "
		       "expected at most 100%");
}

Test(errors, should_refuse_a_ring_too_small_for_max_payload)
{
	expect_refused("data/config/ring_too_small.ini",
		       "4: [agent small] key 'ring_size': a 4K ring carries records of at most 2K "
		       "bytes, too small for max_payload 60K plus 80 bytes of headers: expected a "
		       "ring_size of at least 128K (or a smaller max_payload)");
}

Test(errors, should_refuse_a_ring_size_not_a_power_of_two)
{
	expect_refused("data/config/bad_ring_size.ini",
		       "4: [agent odd] key 'ring_size': expected a power of two from 4K to 1G "
		       "bytes, got '100000'");
}

Test(errors, should_refuse_an_unterminated_quote)
{
	expect_refused("data/config/bad_exec.ini",
		       "3: [agent quote] key 'exec': expected a command line (words, '…' or \"…\" "
		       "quotes, \\ escapes), got '/bin/echo \"unterminated'");
}

Test(errors, should_refuse_tier_variables_in_env)
{
	expect_refused("data/config/env_reserved.ini",
		       "4: [agent envy] key 'env': variables TIER_* are set by tierd for the agent, "
		       "got 'TIER_AGENT=other'");
}

Test(errors, should_report_every_malformed_line)
{
	expect_refused("data/config/bad_syntax.ini",
		       "1: expected a section header like [tier1], got '[supervisor'");
	expect_refused("data/config/bad_syntax.ini",
		       "3: expected 'key = value' or a [section], got 'this line has no equals sign'");
}

Test(errors, should_refuse_a_key_outside_any_section)
{
	expect_refused("data/config/key_outside.ini", "1: key 'log_level' comes before any [section]");
}

Test(errors, should_check_each_limit_and_their_order)
{
	const char *f = "data/config/bad_limits.ini";

	expect_refused(f, "2: [tier3] key 'cpu_max': expected max, QUOTA PERIOD in µs (quota >= "
		       "1000, period 1000..1000000), or a percentage of one CPU like 25% (at least "
		       "1%), got '0.5%'");
	expect_refused(f, "3: [tier3] key 'io_max': expected MAJ:MIN followed by rbps=, wbps=, "
		       "riops= or wiops= limits (>= 1 or max), got '8:0 rbps=fast'");
	expect_refused(f, "4: [tier3] key 'cpuset_cpus': expected a CPU list like 0-3,6 (CPUs "
		       "below 8192), got '3-1'");
	expect_refused(f, "5: [tier3] key 'memory_high': 2G is above memory_max 1G: expected at "
		       "most memory_max");
	expect_refused(f, "7: [tier3] key 'cpu_weight': expected an integer 1..10000, got '0'");
	expect_refused(f, "8: [tier3] key 'pids_max': expected an integer 1..4194304 or max, got "
		       "'lots'");
}

Test(errors, should_refuse_a_backoff_base_above_its_cap)
{
	expect_refused("data/config/backoff.ini",
		       "2: [supervisor] key 'restart_backoff_base': 1min is above "
		       "restart_backoff_cap 30s: expected at most the cap");
}

Test(errors, should_refuse_unknown_capabilities)
{
	expect_refused("data/config/bad_capability.ini",
		       "4: [agent capable] key 'capabilities': expected capability names like "
		       "cap_net_bind_service, got 'cap_make_coffee'");
}

Test(errors, should_refuse_bad_agent_names)
{
	expect_refused("data/config/bad_name.ini",
		       "1: section [agent NAME]: expected a NAME of 1..48 characters "
		       "[A-Za-z0-9_.-], not starting with '.', got '.hidden'");
}

Test(errors, should_report_all_errors_in_line_order)
{
	struct sup_config_errors e = { 0 };
	static const unsigned lines[] = { 2, 3, 4, 7, 9, 10 };

	cr_assert_null(sup_config_load(data("data/config/many_errors.ini"), &e));
	cr_assert_eq(e.n_errors, 6);
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(e.v[i].line, lines[i], "message %zu: %s", i, e.v[i].msg);
	sup_config_errors_clear(&e);
}

Test(errors, should_warn_without_failing)
{
	static const char text[] = "[agent s]\ntier = 4\nexec = x\n"
				   "[agent t]\ntier = 2\nexec = x\nspecialties = docs\n";
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse(text, &e);

	cr_assert_not_null(c);
	cr_assert_eq(e.n_errors, 0);
	cr_assert_eq(e.n, 2);
	cr_assert(e.v[0].warning && e.v[1].warning);
	cr_assert(has_msg(&e, "t.ini:1: warning: [agent s] a tier-4 agent without 'specialties' "
			  "matches no task type, so it takes part in no workflow"));
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

/* ---- users and groups ------------------------------------------------------ */

static struct sup_config *agent_with(const char *keys, struct sup_config_errors *e)
{
	char text[512];

	snprintf(text, sizeof(text), "[agent a]\ntier = 1\nexec = /bin/true\n%s\n", keys);
	return parse(text, e);
}

Test(ids, should_resolve_root_by_name)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = root", &e);

	cr_assert_not_null(c);
	cr_assert(c->agents[0].has_uid && c->agents[0].uid == 0);
	cr_assert(c->agents[0].has_gid && c->agents[0].gid == 0, "primary group by default");
	sup_config_free(c);
}

Test(ids, should_accept_numeric_ids)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = 4242\ngroup = 4343", &e);

	cr_assert_not_null(c);
	cr_assert_eq(c->agents[0].uid, 4242);
	cr_assert_eq(c->agents[0].gid, 4343);
	sup_config_free(c);
	c = agent_with("user = 0", &e);
	cr_assert_not_null(c);
	cr_assert(c->agents[0].has_gid && c->agents[0].gid == 0, "uid 0 has a passwd entry");
	sup_config_free(c);
}

Test(ids, should_resolve_a_group_name)
{
	struct sup_config_errors e = { 0 };
	struct group *g = getgrgid(0);
	struct sup_config *c;
	char keys[128];

	cr_assert_not_null(g, "no group 0 on this system");
	snprintf(keys, sizeof(keys), "user = root\ngroup = %s", g->gr_name);
	c = agent_with(keys, &e);
	cr_assert_not_null(c);
	cr_assert_eq(c->agents[0].gid, 0);
	sup_config_free(c);
}

Test(ids, should_refuse_an_unknown_user)
{
	expect_refused("data/config/bad_user.ini",
		       "4: [agent ghost] key 'user': expected a user name or id, got "
		       "'no-such-user-tierd': no such user on this system");
}

Test(ids, should_refuse_an_unknown_group)
{
	expect_refused("data/config/bad_group.ini",
		       "5: [agent ghost] key 'group': expected a group name or id, got "
		       "'no-such-group-tierd': no such group on this system");
}

Test(ids, should_want_a_group_for_a_uid_without_passwd_entry)
{
	if (getpwuid(4242))
		cr_skip_test("uid 4242 exists on this system");
	expect_refused("data/config/uid_without_group.ini",
		       "4: [agent numeric] key 'user': uid 4242 has no passwd entry, so no primary "
		       "group: set 'group' too");
}

/* ---- dump and reload -------------------------------------------------------- */

Test(dump, should_load_back_equal_from_a_full_file)
{
	struct sup_config *c = load_ok(data("data/config/full.ini"));

	assert_round_trip(c);
	sup_config_free(c);
}

Test(dump, should_load_back_equal_from_defaults)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));

	assert_round_trip(c);
	sup_config_free(c);
}

Test(dump, should_write_defaults_explicitly)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));
	char *text = dump_to_string(c);

	cr_assert_not_null(strstr(text, "\nmonitor_interval = 1s\n"));
	cr_assert_not_null(strstr(text, "\nmax_payload = 60K\n"));
	cr_assert_not_null(strstr(text, "\n[tier3]\ncpu_share = 40%\n"));
	cr_assert_not_null(strstr(text, "\n[agent solo]\ntier = 2\nexec = solo-agent\n"));
	cr_assert_not_null(strstr(text, "\nmetrics_address = 127.0.0.1:9464\n"));
	free(text);
	sup_config_free(c);
}

static struct sup_config *reload_pair(const char *a_keys, const char *b_keys,
				      struct sup_config **ret_b)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *a = agent_with(a_keys, &e);

	*ret_b = agent_with(b_keys, &e);
	cr_assert_not_null(a);
	cr_assert_not_null(*ret_b);
	return a;
}

Test(reload, should_find_an_unchanged_agent_equal)
{
	struct sup_config *b, *a = reload_pair("env = A=1\nenv = B=2\nuser = root",
					       "env = B=2\nenv = A=1\nuser = 0", &b);

	cr_assert(sup_agent_conf_equal(&a->agents[0], &b->agents[0]),
		  "env order and user spelling do not matter");
	cr_assert(sup_config_equal(a, b));
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_want_a_respawn_when_the_command_changes)
{
	struct sup_config *b, *a = reload_pair("", "env = A=1", &b);

	cr_assert_not(sup_agent_conf_equal(&a->agents[0], &b->agents[0]));
	cr_assert_eq(sup_agent_conf_diff(&a->agents[0], &b->agents[0]), SUP_AGENT_DIFF_PROCESS);
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_apply_limits_in_place)
{
	struct sup_config *b, *a = reload_pair("cpu_weight = 100", "cpu_weight = 200", &b);

	cr_assert_eq(sup_agent_conf_diff(&a->agents[0], &b->agents[0]), SUP_AGENT_DIFF_LIMITS);
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_tell_policy_changes_apart)
{
	struct sup_config *b, *a = reload_pair("restart = always", "restart = never", &b);

	cr_assert_eq(sup_agent_conf_diff(&a->agents[0], &b->agents[0]), SUP_AGENT_DIFF_POLICY);
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_tell_an_unset_limit_from_a_set_one)
{
	struct sup_config *b, *a = reload_pair("", "memory_swap_max = 0", &b);

	cr_assert_not(sup_limits_equal(&a->agents[0].limits, &b->agents[0].limits));
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_compare_tiers)
{
	struct sup_config *a = load_ok(data("data/config/minimal.ini"));
	struct sup_config *b = load_ok(data("data/config/minimal.ini"));

	cr_assert(sup_tier_conf_equal(&a->tiers[2], &b->tiers[2]));
	b->tiers[2].batch_size = 8;
	cr_assert_not(sup_tier_conf_equal(&a->tiers[2], &b->tiers[2]));
	cr_assert_not(sup_config_equal(a, b));
	sup_config_free(a);
	sup_config_free(b);
}

/* ---- the bundled example ---------------------------------------------------- */

Test(example, should_load_team24_with_1_3_16_4_agents)
{
	struct sup_config *c = load_ok(data("../examples/team24.ini"));
	unsigned per_tier[SUP_NTIERS + 1] = { 0 };

	cr_assert_eq(c->n_agents, 24);
	for (size_t i = 0; i < c->n_agents; i++) {
		const struct sup_agent_conf *a = &c->agents[i];

		per_tier[a->tier]++;
		cr_assert_eq(a->mode, SUP_MODE_NATIVE);
		cr_assert_eq(a->restart, SUP_RESTART_ALWAYS);
		cr_assert_not_null(strstr(a->argv[0], "/build/examples/team-agent"));
		cr_assert_eq(a->argv[0][0], '/');
		if (a->tier == 4)
			cr_assert_gt(a->n_specialties, 0, "%s", a->name);
	}
	cr_assert_eq(per_tier[1], 1);
	cr_assert_eq(per_tier[2], 3);
	cr_assert_eq(per_tier[3], 16);
	cr_assert_eq(per_tier[4], 4);
	cr_assert_str_eq(c->sup.control_socket, "/run/tierd/team24.sock");
	cr_assert_str_eq(c->sup.cgroup_root, "tierd-team24");
	cr_assert_not_null(sup_config_agent(c, "orchestrator"));
	assert_round_trip(c);
	sup_config_free(c);
}

Test(example, should_give_each_specialist_distinct_task_types)
{
	struct sup_config *c = load_ok(data("../examples/team24.ini"));

	for (size_t i = 0; i < c->n_agents; i++)
		for (size_t j = i + 1; j < c->n_agents; j++) {
			const struct sup_agent_conf *a = &c->agents[i], *b = &c->agents[j];

			for (size_t x = 0; x < a->n_specialties; x++)
				for (size_t y = 0; y < b->n_specialties; y++)
					cr_assert_str_neq(a->specialties[x], b->specialties[y]);
		}
	sup_config_free(c);
}

/* ---- control socket and retention bounds ------------------------------------ */

Test(control_keys, should_parse_admin_group_and_the_client_bounds)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse("[supervisor]\nadmin_group = 0\nresult_retention_max = 50\n"
				     "result_retention_bytes = 2M\ncontrol_idle_timeout = 90s\n"
				     "control_max_clients_per_uid = 4\n"
				     "[agent a]\ntier = 1\nexec = /bin/true\n", &e);

	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->sup.admin_group, "0");
	cr_assert_eq(c->sup.admin_gid, 0);
	cr_assert_eq(c->sup.result_retention_max, 50);
	cr_assert_eq(c->sup.result_retention_bytes, 2u << 20);
	cr_assert_eq(c->sup.control_idle_timeout_ns, 90000000000);
	cr_assert_eq(c->sup.control_max_per_uid, 4);
	assert_round_trip(c);
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(control_keys, should_refuse_bounds_out_of_range_and_unknown_groups)
{
	static const char *const bad[] = {
		"result_retention_max = 2000000", "result_retention_bytes = 2T",
		"result_retention_bytes = lots", "control_max_clients_per_uid = 5000",
		"control_idle_timeout = 2d", "admin_group = no-such-group-tierd-test",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sup_config_errors e = { 0 };
		char text[256];
		struct sup_config *c;

		snprintf(text, sizeof(text), "[supervisor]\n%s\n[agent a]\ntier = 1\nexec = /bin/true\n",
			 bad[i]);
		c = parse(text, &e);
		cr_assert_null(c, "accepted: %s", bad[i]);
		cr_assert_gt(e.n_errors, 0);
		cr_assert_not_null(strstr(e.v[0].msg, "[supervisor]"), "%s: %s", bad[i], e.v[0].msg);
		sup_config_errors_clear(&e);
	}
}

/* ---- default users and root agents ---------------------------------------- */

static bool has_substr(const struct sup_config_errors *e, const char *s, bool warning)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].warning == warning && strstr(e->v[i].msg, s))
			return true;
	dump_errs(e);
	return false;
}

Test(default_user, should_name_one_user_per_tier)
{
	char buf[32];

	sup_default_user(3, buf, sizeof(buf));
	cr_assert_str_eq(buf, "tierd-t3");
}

Test(default_user, should_run_an_agent_without_user_as_its_tiers_user)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse("[agent a]\ntier = 2\nexec = /bin/true\n", &e);
	struct passwd *pw;

	cr_assert_not_null(c);
	if (geteuid() != 0) {
		cr_assert(!c->agents[0].has_uid, "a tierd that is not root runs agents as itself");
		sup_config_free(c);
		return;
	}
	pw = getpwnam("tierd-t2");
	cr_assert_not_null(pw, "scripts/setup-deps.sh creates tierd-t2");
	cr_assert(c->agents[0].has_uid && c->agents[0].default_user);
	cr_assert_eq(c->agents[0].uid, pw->pw_uid);
	cr_assert_eq(c->agents[0].gid, pw->pw_gid, "the user's primary group");
	cr_assert_null(c->agents[0].user, "nothing written, nothing dumped");
	sup_config_free(c);
}

/* A passwd without the tiers' users, in a mount namespace of this test's
 * own (criterion runs each test in a process of its own). */
Test(default_user, should_refuse_an_agent_without_user_when_its_tiers_user_is_missing)
{
	struct sup_config_errors e = { 0 };
	char path[] = "/tmp/tierd-test-passwd-XXXXXX";
	struct sup_config *c;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root: a mount namespace to hide the tiers' users");
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL), 0);
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, "root:x:0:0:root:/root:/bin/sh\n", 30) == 30);
	close(fd);
	cr_assert_eq(mount(path, "/etc/passwd", NULL, MS_BIND, NULL), 0, "%s", strerror(errno));
	unlink(path);
	c = parse("[agent a]\ntier = 1\nexec = /bin/true\n", &e);
	cr_assert_null(c);
	cr_assert(has_msg(&e, "t.ini:1: [agent a] no key 'user', and the default user of tier 1, "
			  "tierd-t1, does not exist on this system: create it with "
			  "scripts/setup-deps.sh (useradd --system --no-create-home --shell "
			  "/usr/sbin/nologin tierd-t1), or set 'user' (user = root runs the agent as "
			  "root)"));
	sup_config_errors_clear(&e);
	c = parse("[agent a]\ntier = 1\nexec = /bin/true\nuser = root\n", &e);
	cr_assert_not_null(c, "user = root needs no tier user");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(default_user, should_warn_about_a_root_agent_and_its_useless_nproc_limit)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = root\nrlimit_nproc = 64", &e);

	cr_assert_not_null(c);
	cr_assert(has_substr(&e, "4: warning: [agent a] key 'user': the agent runs as root", true));
	cr_assert(has_substr(&e, "5: warning: [agent a] key 'rlimit_nproc' does nothing for uid 0", true));
	sup_config_free(c);
	sup_config_errors_clear(&e);
	c = agent_with("rlimit_nproc = 64", &e);
	cr_assert_not_null(c);
	if (geteuid() == 0)
		cr_assert_eq(e.n, 0, "a tier user's nproc limit holds: no warning");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(default_user, should_keep_the_sandbox_on_unless_turned_off)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = 0", &e), *d;

	cr_assert_not_null(c);
	cr_assert(c->agents[0].sandbox);
	d = agent_with("user = 0\nsandbox = no", &e);
	cr_assert_not_null(d);
	cr_assert(!d->agents[0].sandbox);
	cr_assert(sup_agent_conf_diff(&c->agents[0], &d->agents[0]) & SUP_AGENT_DIFF_PROCESS,
		  "turning it off respawns the agent");
	sup_config_free(c);
	sup_config_free(d);
	sup_config_errors_clear(&e);
}

/* ---- limits this host cannot enforce (cg_enforce.h) ------------------------ */

Test(unenforced, should_name_the_limits_whose_controller_is_not_in_cgroup2)
{
	struct sup_limits l = { 0 };
	char buf[128];
	unsigned bits;

	l.set = SUP_LIM_BIT(SUP_LIM_PIDS_MAX) | SUP_LIM_BIT(SUP_LIM_MEMORY_MAX) |
		SUP_LIM_BIT(SUP_LIM_CPU_WEIGHT);
	bits = sup_limits_unenforced(&l, 1u << SUP_CG_CPU);
	cr_assert_eq(bits, SUP_LIM_BIT(SUP_LIM_PIDS_MAX) | SUP_LIM_BIT(SUP_LIM_MEMORY_MAX));
	sup_limits_format(bits, buf, sizeof(buf));
	cr_assert_str_eq(buf, "memory_max, pids_max");
	cr_assert_eq(sup_limits_unenforced(&l, ~0u), 0, "every controller live: all enforced");
	cr_assert_eq(sup_limit_ctrl(SUP_LIM_IO_MAX), SUP_CG_IO);
	cr_assert_eq(sup_limit_ctrl(SUP_LIM_CPUSET_CPUS), SUP_CG_CPUSET);
}

Test(unenforced, should_warn_per_agent_and_per_tier_with_the_reason)
{
	struct sup_config_errors e = { 0 };
	char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX] = { { 0 } };
	struct sup_config *c = parse("[tier3]\npids_max = 100\n[agent a]\ntier = 1\nexec = /bin/true\n"
				     "user = 0\nmemory_max = 1G\ncpu_weight = 50\n"
				     "[agent b]\ntier = 2\nexec = /bin/true\nuser = 0\n", &e);

	cr_assert_not_null(c);
	sup_config_errors_clear(&e);
	snprintf(why[SUP_CG_PIDS], SUP_CG_WHY_MAX, "bound to v1");
	snprintf(why[SUP_CG_MEMORY], SUP_CG_WHY_MAX, "bound to v1 too");
	sup_config_check_host(c, 1u << SUP_CG_CPU, why, &e);
	cr_assert_eq(e.n, 2, "tier3 and agent a; agent b has no limits");
	cr_assert(has_msg(&e, "t.ini: warning: [tier3] not enforceable on this host: pids_max "
			  "(pids: bound to v1)"));
	cr_assert(has_msg(&e, "t.ini:3: warning: [agent a] not enforceable on this host: "
			  "memory_max (memory: bound to v1 too)"));
	cr_assert_eq(e.n_errors, 0, "warnings only");
	sup_config_errors_clear(&e);
	sup_config_check_host(c, ~0u, why, &e);
	cr_assert_eq(e.n, 0, "a pure v2 host with every controller: nothing to say");
	sup_config_free(c);
}
