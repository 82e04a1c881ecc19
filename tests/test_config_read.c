/* SPDX-License-Identifier: MIT */
/* Configuration files: loading whole files, the line reader, and every
 * error message with its file:line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../supervisor/config/config.h"
#include "config_test.h"

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
		       "4: unknown section [tier5]: expected [supervisor], [tier1]..[tier4], "
		       "[agent NAME] or [fleet]");
	expect_refused("data/config/unknown_section.ini",
		       "7: unknown section [agents foo]: expected [supervisor], [tier1]..[tier4], "
		       "[agent NAME] or [fleet]");
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

/* ---- the line reader: every message keeps its file:line ------------------ */

/* text must be refused with msg among the messages. */
static void refused_with(const char *text, size_t len, const char *msg)
{
	struct sup_config_errors e = { 0 };

	cr_assert_null(sup_config_parse("t.ini", "/etc/tierd", text, len, &e), "loaded: %s", msg);
	cr_assert_eq(errno, EINVAL);
	cr_assert(has_msg(&e, msg), "missing: %s", msg);
	sup_config_errors_clear(&e);
}

#define REFUSED(text, msg) refused_with(text, sizeof(text) - 1, msg)

Test(reader, should_name_the_line_of_an_error_in_a_long_line)
{
	char text[2048], zs[700], want[512];

	memset(zs, 'z', sizeof(zs) - 1);
	zs[sizeof(zs) - 1] = '\0';
	snprintf(text, sizeof(text), "[agent a]\nuser = 0\ntier = 1\nexec = /bin/echo \"%s\n", zs);
	snprintf(want, sizeof(want), "t.ini:4: [agent a] key 'exec': expected a command line "
		 "(words, '…' or \"…\" quotes, \\ escapes), got '/bin/echo \"%.37s...'", zs);
	refused_with(text, strlen(text), want);
	snprintf(text, sizeof(text), "[agent a]\nuser = 0\nexec = /bin/true\ntier = 1\ntier = %s\n",
		 zs);
	refused_with(text, strlen(text),
		     "t.ini:5: [agent a] key 'tier': given twice (first at line 4)");
	snprintf(text, sizeof(text), "[agent a]\nuser = 0\nexec = /bin/true\n%s\ntier = 1\n", zs);
	snprintf(want, sizeof(want), "t.ini:4: expected 'key = value' or a [section], got '%.48s...'",
		 zs);
	refused_with(text, strlen(text), want);
	snprintf(text, sizeof(text), "[agent a]\nuser = 0\nexec = /bin/true\ntier = 1\n%s = 1\n", zs);
	snprintf(want, sizeof(want), "t.ini:5: [agent a] unknown key '%.48s...'", zs);
	refused_with(text, strlen(text), want);
}

Test(reader, should_read_an_indented_line_as_a_line_of_its_own)
{
	/* inih would take "  tier = 2" as more of exec's value. */
	REFUSED("[agent a]\n  user = 0\n  exec = /bin/true\n  tier = 1\n  tier = 2\n",
		"t.ini:5: [agent a] key 'tier': given twice (first at line 4)");
	REFUSED("  [agent a]\n\ttier = 9\n",
		"t.ini:2: [agent a] key 'tier': expected an integer 1..4, got '9'");
}

Test(reader, should_end_a_value_at_a_semicolon_after_a_blank_only)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse("[agent a]\nuser = 0\ntier = 2\t; why\n"
				     "exec = /bin/echo a;b #c\n", &e);

	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c);
	cr_assert_eq(c->agents[0].tier, 2);
	cr_assert_eq(c->agents[0].argc, 3);
	cr_assert_str_eq(c->agents[0].argv[1], "a;b");
	cr_assert_str_eq(c->agents[0].argv[2], "#c", "'#' starts a comment only at the line's start");
	sup_config_free(c);
	sup_config_errors_clear(&e);
	REFUSED("[agent a]\nuser = 0\nexec = /bin/true\ntier = 2;3\n",
		"t.ini:4: [agent a] key 'tier': expected an integer 1..4, got '2;3'");
	REFUSED("[agent a]\nuser = 0\nexec = /bin/true\ntier = ; nothing\n",
		"t.ini:4: [agent a] key 'tier': expected an integer 1..4, got ''");
}

Test(reader, should_take_a_colon_as_the_separator_too)
{
	REFUSED("[agent a]\nuser = 0\nexec = /bin/true\ntier: 1\ntier = 2\n",
		"t.ini:5: [agent a] key 'tier': given twice (first at line 4)");
	/* The first '=' or ':' splits; the rest belongs to the value. */
	REFUSED("[agent a]\nuser = 0\nexec = /bin/true\ntier = 1:2\n",
		"t.ini:4: [agent a] key 'tier': expected an integer 1..4, got '1:2'");
}

Test(reader, should_count_crlf_lines_and_strip_their_cr)
{
	REFUSED("[agent a]\r\nuser = 0\r\nexec = /bin/true\r\n\r\ntier = 9\r\n",
		"t.ini:5: [agent a] key 'tier': expected an integer 1..4, got '9'");
	REFUSED("[agent a]\r\nuser = 0\r\nexec = /bin/true\r\ntier = 1\r\n[agent a]\r\n",
		"t.ini:5: [agent a]: duplicate agent name (first defined at line 1)");
}

Test(reader, should_skip_a_bom_on_the_first_line_only)
{
	REFUSED("\xef\xbb\xbf[agentx a]\n",
		"t.ini:1: unknown section [agentx a]: expected [supervisor], [tier1]..[tier4], "
		"[agent NAME] or [fleet]");
	REFUSED("[tier1]\n\xef\xbb\xbf[tier2]\n",
		"t.ini:2: expected 'key = value' or a [section], got '\xef\xbb\xbf[tier2]'");
}

Test(reader, should_check_the_text_around_a_section_header)
{
	REFUSED("[tier1] ; fine\n[tier2] trailing\n",
		"t.ini:2: unexpected text 'trailing' after the section header");
	REFUSED("[tier1 ; not a name]\n",
		"t.ini:1: expected a section header like [tier1], got '[tier1 ; not a name]'");
	REFUSED("[tier1]\nbatch_size = 4\n[ tier1 ]\n",
		"t.ini:3: [tier1] section given twice (first at line 1)");
}

Test(reader, should_name_both_lines_of_a_duplicate_key_in_every_section)
{
	REFUSED("[supervisor]\nlog_level = info\n; between\n\nlog_level = debug\n",
		"t.ini:5: [supervisor] key 'log_level': given twice (first at line 2)");
	REFUSED("[tier2]\nbatch_size = 4\n[tier3]\nbatch_size = 4\n[tier2]\nbatch_size = 5\n",
		"t.ini:6: [tier2] key 'batch_size': given twice (first at line 2)");
}
