/* SPDX-License-Identifier: MIT */
/* The optimiser's decisions on synthetic inputs. */
#include <criterion/criterion.h>
#include <string.h>

#include "../supervisor/optimiser.h"

static struct sup_opt_input calm(void)
{
	struct sup_opt_input in = {
		.runs = 5, .p95_ms = 900, .stagger_share = 0, .utilisation = 0.3, .threshold = 0.8,
		.top_pressure = 0.0, .batch_size = 4, .tier3_agents = 16, .stagger_ns = 0,
		.bias3 = 1, .bias4 = 1,
	};
	return in;
}

Test(optimiser, should_do_nothing_when_nothing_is_wrong)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	sup_opt_decide(&in, &a);
	cr_assert_null(a.bottleneck, "%s", a.bottleneck);
}

Test(optimiser, should_squeeze_the_lowest_tier_first_under_overload)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	in.utilisation = 0.95;
	sup_opt_decide(&in, &a);
	cr_assert_str_eq(a.bottleneck, "resource_contention");
	cr_assert_eq(a.knob, SUP_OPT_BIAS4);
	cr_assert_float_eq(a.after, 0.9, 1e-9);
}

Test(optimiser, should_react_to_top_tiers_waiting_even_below_the_threshold)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	in.top_pressure = 0.4;
	in.bias4 = 0.5;
	sup_opt_decide(&in, &a);
	cr_assert_str_eq(a.bottleneck, "resource_contention");
	cr_assert_eq(a.knob, SUP_OPT_BIAS3, "tier 4 is at its floor, so tier 3 next");
}

Test(optimiser, should_slow_tier_3_when_ceilings_are_exhausted)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	in.utilisation = 0.95;
	in.bias3 = in.bias4 = 0.5;
	sup_opt_decide(&in, &a);
	cr_assert_eq(a.knob, SUP_OPT_BATCH);
	cr_assert_float_eq(a.after, 3, 1e-9);
	in.batch_size = 1;
	sup_opt_decide(&in, &a);
	cr_assert_eq(a.knob, SUP_OPT_STAGGER);
	cr_assert(a.after > a.before);
}

Test(optimiser, should_relax_ceilings_when_the_overload_is_gone)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	in.bias3 = 0.7;
	in.bias4 = 0.5;
	sup_opt_decide(&in, &a);
	cr_assert_str_eq(a.bottleneck, "idle");
	cr_assert_eq(a.knob, SUP_OPT_BIAS3);
	cr_assert_float_eq(a.after, 0.8, 1e-9);
}

Test(optimiser, should_shorten_the_stagger_when_runs_mostly_wait_between_batches)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	in.stagger_ns = 200LL * 1000 * 1000;
	in.stagger_share = 0.98;
	sup_opt_decide(&in, &a);
	cr_assert_str_eq(a.bottleneck, "sequential_processing");
	cr_assert_eq(a.knob, SUP_OPT_STAGGER);
	cr_assert_float_eq(a.after, 100e6, 1, "halved");
	in.stagger_ns = 0;
	sup_opt_decide(&in, &a);
	cr_assert_eq(a.knob, SUP_OPT_BATCH, "then widen the batches");
	cr_assert_float_eq(a.after, 5, 1e-9);
	in.batch_size = 16;
	sup_opt_decide(&in, &a);
	cr_assert_null(a.bottleneck, "nothing left to widen");
}

Test(optimiser, should_not_speed_up_pacing_on_a_busy_machine)
{
	struct sup_opt_input in = calm();
	struct sup_opt_action a;

	in.stagger_ns = 200LL * 1000 * 1000;
	in.stagger_share = 0.9;
	in.utilisation = 0.7; /* under the threshold, but not idle */
	sup_opt_decide(&in, &a);
	cr_assert_null(a.bottleneck);
}
