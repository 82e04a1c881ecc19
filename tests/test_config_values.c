/* SPDX-License-Identifier: MIT */
/* Configuration values: every parser and formatter (durations, sizes,
 * percentages, cpu_max, cpus, io_max, rlimits, argv). */
#include <ctype.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../supervisor/config/config.h"
#include "config_test.h"

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
