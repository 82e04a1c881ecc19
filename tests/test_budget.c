/* SPDX-License-Identifier: MIT */
/* Per-agent budgets (supervisor/budget.c: pure arithmetic, times passed
 * in), their config keys, and agent text escaping (supervisor/textesc.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "../supervisor/budget.h"
#include "../supervisor/config/config.h"
#include "../supervisor/textesc.h"

#define SEC 1000000000LL

static struct sup_budget make(uint64_t records, uint64_t lines, int64_t kill_after)
{
	const uint64_t lim[SUP_BUDGET_NKINDS] = {
		[SUP_BUDGET_RECORDS] = records,
		[SUP_BUDGET_LINES] = lines,
		[SUP_BUDGET_BYTES] = 1000,
		[SUP_BUDGET_WAKES] = 10,
		[SUP_BUDGET_EVENTS] = 2,
	};
	struct sup_budget b;

	sup_budget_init(&b, lim, kill_after, 100 * SEC);
	return b;
}

Test(budget, charges_up_to_the_limit_pass_and_the_next_one_throttles)
{
	struct sup_budget b = make(100, 10, 0);

	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 60, 100 * SEC), SUP_BUDGET_OK);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 40, 100 * SEC + 1), SUP_BUDGET_OK);
	cr_assert(sup_budget_exhausted(&b, SUP_BUDGET_RECORDS, 100 * SEC + 2));
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 1, 100 * SEC + 3), SUP_BUDGET_THROTTLE);
	/* Other budgets are independent. */
	cr_assert_not(sup_budget_exhausted(&b, SUP_BUDGET_BYTES, 100 * SEC + 3));
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_BYTES, 1000, 100 * SEC + 3), SUP_BUDGET_OK);
}

Test(budget, a_paused_source_resumes_at_the_end_of_its_window)
{
	struct sup_budget b = make(10, 10, 0);

	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, 100 * SEC + SEC / 4),
		     SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_resume_at(&b), 101 * SEC);
	/* The next window starts afresh. */
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 10, 101 * SEC), SUP_BUDGET_OK);
	cr_assert_eq(sup_budget_resume_at(&b), 102 * SEC);
}

Test(budget, windows_stay_on_their_grid_after_an_idle_gap)
{
	struct sup_budget b = make(10, 10, 0);

	sup_budget_charge(&b, SUP_BUDGET_RECORDS, 1, 105 * SEC + SEC / 2);
	cr_assert_eq(sup_budget_resume_at(&b), 106 * SEC);
}

Test(budget, over_budget_in_every_window_for_kill_after_is_a_flooder)
{
	struct sup_budget b = make(10, 10, 3 * SEC);
	int64_t t = 100 * SEC;

	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_WAKES, 11, t), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_WAKES, 11, t + 1 * SEC), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_WAKES, 11, t + 2 * SEC), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_WAKES, 11, t + 3 * SEC), SUP_BUDGET_FLOODER);
	cr_assert_eq(b.flood_kind, SUP_BUDGET_WAKES);
	cr_assert_str_eq(sup_budget_kind_name(SUP_BUDGET_WAKES), "wakeups");
}

Test(budget, one_window_within_budget_breaks_a_flood_run)
{
	struct sup_budget b = make(10, 10, 3 * SEC);
	int64_t t = 100 * SEC;

	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, t), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, t + 1 * SEC), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 5, t + 2 * SEC), SUP_BUDGET_OK);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, t + 3 * SEC), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, t + 4 * SEC), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, t + 5 * SEC), SUP_BUDGET_THROTTLE);
	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, t + 6 * SEC), SUP_BUDGET_FLOODER);
}

Test(budget, kill_after_zero_never_names_a_flooder)
{
	struct sup_budget b = make(10, 10, 0);

	for (int i = 0; i < 100; i++)
		cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 11, 100 * SEC + i * SEC),
			     SUP_BUDGET_THROTTLE);
}

Test(budget, zero_means_unlimited)
{
	struct sup_budget b = make(0, 0, SEC);

	cr_assert_eq(sup_budget_charge(&b, SUP_BUDGET_RECORDS, 1u << 30, 100 * SEC), SUP_BUDGET_OK);
	for (int i = 0; i < 10000; i++)
		cr_assert(sup_budget_line(&b, SUP_BUDGET_LINES, 100 * SEC));
}

Test(budget, lines_past_the_budget_are_refused_and_counted)
{
	struct sup_budget b = make(100, 3, 0);

	for (int i = 0; i < 3; i++)
		cr_assert(sup_budget_line(&b, SUP_BUDGET_LINES, 100 * SEC + i));
	cr_assert_not(sup_budget_line(&b, SUP_BUDGET_LINES, 100 * SEC + 5));
	cr_assert_not(sup_budget_line(&b, SUP_BUDGET_LINES, 100 * SEC + 6));
	cr_assert_eq(b.dropped_lines, 2);
	cr_assert(sup_budget_line(&b, SUP_BUDGET_LINES, 101 * SEC));
}

Test(budget, events_have_their_own_allowance_beside_lines)
{
	struct sup_budget b = make(100, 3, 0);

	for (int i = 0; i < 3; i++)
		cr_assert(sup_budget_line(&b, SUP_BUDGET_LINES, 100 * SEC));
	cr_assert_not(sup_budget_line(&b, SUP_BUDGET_LINES, 100 * SEC));
	cr_assert(sup_budget_line(&b, SUP_BUDGET_EVENTS, 100 * SEC));
	cr_assert(sup_budget_line(&b, SUP_BUDGET_EVENTS, 100 * SEC));
	cr_assert_not(sup_budget_line(&b, SUP_BUDGET_EVENTS, 100 * SEC));
	cr_assert_eq(b.dropped_lines, 2);
}

static const char *esc(const void *src, size_t len, size_t cap)
{
	static char buf[256];

	sup_text_escape(buf, cap, src, len);
	return buf;
}

Test(textesc, valid_utf8_is_kept)
{
	cr_assert_str_eq(esc("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15, 256),
			 "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

Test(textesc, bad_bytes_and_controls_become_hex_escapes)
{
	cr_assert_str_eq(esc("a\xff" "b\n\x7f" "c", 6, 256), "a\\xffb\\x0a\\x7fc");
	cr_assert_str_eq(esc("x\0y", 3, 256), "x\\x00y");
	/* Truncated, overlong, surrogate, past U+10FFFF. */
	cr_assert_str_eq(esc("\xc3", 1, 256), "\\xc3");
	cr_assert_str_eq(esc("\xc0\xaf", 2, 256), "\\xc0\\xaf");
	cr_assert_str_eq(esc("\xed\xa0\x80", 3, 256), "\\xed\\xa0\\x80");
	cr_assert_str_eq(esc("\xf4\x90\x80\x80", 4, 256), "\\xf4\\x90\\x80\\x80");
}

Test(textesc, output_is_cut_between_pieces_never_inside_one)
{
	cr_assert_str_eq(esc("ab\xff", 3, 6), "ab");
	cr_assert_str_eq(esc("a\xe2\x82\xac", 4, 4), "a");
	cr_assert_str_eq(esc("abc", 3, 1), "");
}

/* ---- the budget keys of [supervisor] (docs/config.md) ---------------- */

static const char agent_section[] = "[agent a]\ntier = 1\nexec = /bin/true\n";

static struct sup_config *parse_sup(const char *keys, struct sup_config_errors *e)
{
	char text[1024];

	snprintf(text, sizeof(text), "[supervisor]\n%s%s", keys, agent_section);
	return sup_config_parse("t.ini", "/etc/tierd", text, strlen(text), e);
}

Test(budget_config, defaults_are_the_documented_ones)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse_sup("", &e);

	cr_assert_not_null(c);
	cr_assert_eq(c->sup.agent_record_rate, 100000);
	cr_assert_eq(c->sup.agent_log_rate, 100);
	cr_assert_eq(c->sup.agent_output_rate, 1024 * 1024);
	cr_assert_eq(c->sup.agent_wake_rate, 10000);
	cr_assert_eq(c->sup.agent_flood_kill_after_ns, 10 * SEC);
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(budget_config, keys_are_parsed_with_units_and_survive_a_dump)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse_sup("agent_record_rate = 5000\nagent_log_rate = 0\n"
					 "agent_output_rate = 64K\nagent_wake_rate = 7\n"
					 "agent_flood_kill_after = 0\n", &e), *back;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_not_null(c);
	cr_assert_eq(c->sup.agent_record_rate, 5000);
	cr_assert_eq(c->sup.agent_log_rate, 0);
	cr_assert_eq(c->sup.agent_output_rate, 64 * 1024);
	cr_assert_eq(c->sup.agent_wake_rate, 7);
	cr_assert_eq(c->sup.agent_flood_kill_after_ns, 0);
	f = open_memstream(&buf, &len);
	cr_assert_eq(sup_config_dump(c, f), 0);
	fclose(f);
	back = sup_config_parse("dump.ini", "/etc/tierd", buf, len, &e);
	cr_assert_not_null(back, "%s", buf);
	cr_assert_eq(back->sup.agent_output_rate, 64 * 1024);
	cr_assert_eq(back->sup.agent_wake_rate, 7);
	cr_assert_eq(back->sup.agent_flood_kill_after_ns, 0);
	free(buf);
	sup_config_free(back);
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(budget_config, out_of_range_values_are_refused_naming_the_key)
{
	static const char *const bad[] = {
		"agent_output_rate = 2G\n", "agent_log_rate = 2000000\n", "agent_record_rate = -1\n",
		"agent_flood_kill_after = 2d\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sup_config_errors e = { 0 };
		struct sup_config *c = parse_sup(bad[i], &e);
		char key[64];
		bool named = false;

		cr_assert_null(c, "accepted: %s", bad[i]);
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(bad[i], " "), bad[i]);
		for (size_t k = 0; k < e.n; k++)
			named |= strstr(e.v[k].msg, key) != NULL;
		cr_assert(named, "no message names %s", key);
		sup_config_errors_clear(&e);
	}
}
