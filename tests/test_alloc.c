/* SPDX-License-Identifier: MIT */
/* The allocator's arithmetic on synthetic inputs. */
#include <criterion/criterion.h>
#include <math.h>

#include "../supervisor/alloc_math.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static struct sup_alloc_input seed_input(void)
{
	/* Two cores, the seed's CPU shares, 80 % threshold, 0.8 margin. */
	struct sup_alloc_input in = {
		.capacity = 2.0, .outside = 0, .threshold = 0.8, .margin = 0.8, .floor = 0.05,
		.share = { 15, 35, 40, 10 },
		.present = { true, true, true, true },
	};
	return in;
}

Test(waterfill, should_give_every_demand_when_the_budget_covers_them)
{
	double d[4] = { 0.1, 0.2, 0.3, 0.1 }, w[4] = { 15, 35, 40, 10 }, a[4];

	cr_assert(NEAR(sup_alloc_waterfill(d, w, 4, 1.6, a), 0.7));
	for (int i = 0; i < 4; i++)
		cr_assert(NEAR(a[i], d[i]), "tier %d got %f", i, a[i]);
}

Test(waterfill, should_split_by_weight_when_everyone_wants_more)
{
	double d[4] = { 9, 9, 9, 9 }, w[4] = { 15, 35, 40, 10 }, a[4];

	sup_alloc_waterfill(d, w, 4, 1.0, a);
	cr_assert(NEAR(a[0], 0.15) && NEAR(a[1], 0.35) && NEAR(a[2], 0.40) && NEAR(a[3], 0.10));
}

Test(waterfill, should_hand_what_one_leaves_to_the_others_max_min_fair)
{
	/* Tier 1 needs little; its unused part goes to 3 and 4 by weight. */
	double d[4] = { 0.1, 0, 9, 9 }, w[4] = { 15, 35, 40, 10 }, a[4];

	sup_alloc_waterfill(d, w, 4, 1.6, a);
	cr_assert(NEAR(a[0], 0.1));
	cr_assert(NEAR(a[1], 0));
	cr_assert(NEAR(a[2], 1.2), "%f", a[2]);
	cr_assert(NEAR(a[3], 0.3), "%f", a[3]);
}

Test(budget, should_be_the_threshold_of_capacity_on_an_idle_machine)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	sup_alloc_compute(&in, &r);
	cr_assert(NEAR(r.budget, 1.6));
	cr_assert(NEAR(r.guarantee[0], 0.24) && NEAR(r.guarantee[2], 0.64));
}

Test(budget, should_keep_a_margin_on_what_outside_load_leaves)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	in.outside = 1.0; /* a core used by something else: 0.8 x 1.0 left */
	sup_alloc_compute(&in, &r);
	cr_assert(NEAR(r.budget, 0.8), "%f", r.budget);
	in.outside = 3.0; /* more than the machine: nothing left, never negative */
	sup_alloc_compute(&in, &r);
	cr_assert(NEAR(r.budget, 0));
}

Test(ceilings, should_leave_higher_tiers_their_guarantees_under_a_burst_below)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	/* Tiers 3 and 4 burn everything, 1 and 2 are idle right now. */
	in.usage[2] = 2.0;
	in.usage[3] = 2.0;
	sup_alloc_compute(&in, &r);
	cr_assert_eq(r.ceiling[0], SUP_ALLOC_NO_CEILING, "tier 1 is never capped");
	/* Tier 3 may not use what tiers 1-2 are promised: 2 - 0.24 - 0.56. */
	cr_assert(r.ceiling[2] <= 2.0 - 0.24 - 0.56 + 1e-9, "%f", r.ceiling[2]);
	cr_assert(r.ceiling[3] <= 2.0 - 0.24 - 0.56 - 0.64 + 1e-9, "%f", r.ceiling[3]);
	/* So at least the top tier's guarantee stays free. */
	cr_assert(2.0 - r.ceiling[2] - r.ceiling[3] >= r.guarantee[0] - 1e-9);
}

Test(ceilings, should_share_spare_budget_by_weight)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	in.usage[0] = 0.05;
	in.usage[1] = 0.05;
	in.usage[2] = 0.2;
	in.usage[3] = 0.05;
	sup_alloc_compute(&in, &r);
	/* demands 0.35 in all, budget 1.6: spare 1.25 shared 15/35/40/10. */
	cr_assert(NEAR(r.ceiling[2], 0.2 + 1.25 * 0.40), "%f", r.ceiling[2]);
	/* Tier 2's 0.05 + 1.25 x 0.35 = 0.49 is under its guarantee. */
	cr_assert(NEAR(r.ceiling[1], 0.35 * 1.6), "%f", r.ceiling[1]);
}

Test(ceilings, should_never_hold_a_tier_under_its_guarantee)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	/* Tier 3 squeezed to nothing a moment ago (usage 0) while tier 1
	 * wants every core: its ceiling stays at its guarantee, so it can
	 * climb back; ceilings made from its usage alone would keep it at
	 * the floor. */
	in.present[1] = false;
	in.usage[0] = 2.0;
	in.pressure[0] = 0.5;
	in.usage[2] = 0;
	in.usage[3] = 0.01;
	sup_alloc_compute(&in, &r);
	for (int t = 2; t < 4; t++) {
		cr_assert(r.ceiling[t] >= r.guarantee[t] - 1e-9, "tier %d: %f < %f", t + 1, r.ceiling[t],
			  r.guarantee[t]);
		cr_assert(NEAR(sup_alloc_ceiling_floor(&in, &r, t), r.guarantee[t]));
	}
	cr_assert(NEAR(r.guarantee[2], 0.40 * 1.6));
}

Test(ceilings, should_grow_a_tier_under_pressure)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result calm, pressed;

	in.usage[1] = 0.4;
	in.usage[2] = 2.0;
	in.usage[3] = 2.0;
	sup_alloc_compute(&in, &calm);
	in.pressure[1] = 1.0; /* tier 2's agents waited half their time */
	sup_alloc_compute(&in, &pressed);
	cr_assert(pressed.demand[1] > calm.demand[1]);
	cr_assert(pressed.alloc[1] > calm.alloc[1]);
	cr_assert(pressed.ceiling[2] < calm.ceiling[2], "the lower tier gives way");
}

Test(ceilings, should_obey_pins_and_floors)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	in.usage[2] = 2.0;
	in.pinned[2] = true;
	in.pin[2] = 0.3;
	in.usage[3] = 0;
	sup_alloc_compute(&in, &r);
	cr_assert(NEAR(r.ceiling[2], 0.3), "a pin wins");
	cr_assert(r.ceiling[3] >= in.floor, "never below the floor");
	in.present[3] = false;
	sup_alloc_compute(&in, &r);
	cr_assert_eq(r.ceiling[3], SUP_ALLOC_NO_CEILING, "no agents, no ceiling");
}

Test(memory, should_move_by_small_steps_and_never_far_below_usage)
{
	const double G = 1024.0 * 1024 * 1024;

	cr_assert(NEAR(sup_alloc_memory_step(4 * G, 1 * G, 0.5 * G, 0.05), 4 * G * 0.95));
	cr_assert(NEAR(sup_alloc_memory_step(4 * G, 8 * G, 0.5 * G, 0.05), 4 * G * 1.05));
	cr_assert(NEAR(sup_alloc_memory_step(4 * G, 4.1 * G, 0.5 * G, 0.05), 4.1 * G));
	/* Usage right at the limit: a shrink stops one step below usage. */
	cr_assert(sup_alloc_memory_step(4 * G, 1 * G, 4 * G, 0.05) >= 4 * G - 4 * G * 0.05 - 1);
}

Test(hysteresis, should_skip_small_moves)
{
	cr_assert_not(sup_alloc_should_write(1.0, 1.04, 0.05));
	cr_assert(sup_alloc_should_write(1.0, 1.06, 0.05));
	cr_assert(sup_alloc_should_write(1.0, 0.9, 0.05));
	cr_assert(sup_alloc_should_write(0, 0.5, 0.05));
}

Test(weights, should_never_rank_a_higher_tier_below_a_lower_one)
{
	double share[4] = { 15, 35, 40, 10 };
	bool all[4] = { true, true, true, true }, no3[4] = { true, true, false, true };
	uint64_t w[4];

	sup_alloc_rank_weights(share, all, w);
	cr_assert(w[0] == 400 && w[1] == 400 && w[2] == 400 && w[3] == 100,
		  "%lu %lu %lu %lu", w[0], w[1], w[2], w[3]);
	sup_alloc_rank_weights(share, no3, w);
	cr_assert(w[0] == 350 && w[1] == 350 && w[3] == 100, "an empty tier does not lift the others");
}

Test(squeeze, should_squeeze_the_lower_tiers_under_a_light_waiting_tier_1)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	in.present[1] = false;
	in.usage[0] = 0.1; /* 1 ms of work every 10 ms, waiting as long again */
	in.pressure[0] = 0.5;
	in.runnable[0] = 0.2;
	in.usage[2] = in.usage[3] = 1.0;
	in.pressure[2] = in.pressure[3] = 0.5;
	in.runnable[2] = in.runnable[3] = 2.0;
	sup_alloc_compute(&in, &r);
	cr_assert(sup_alloc_may_squeeze(&in, &r, 2), "tier 3");
	cr_assert(sup_alloc_may_squeeze(&in, &r, 3), "tier 4");
}

Test(squeeze, should_not_starve_the_lower_tiers_under_a_cpu_bound_tier_1)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	/* One core, tier 1 would run on all of it: idle groups would get
	 * nothing, under their guarantees (40 % and 10 % of the budget). */
	in.capacity = 1.0;
	in.present[1] = false;
	in.usage[0] = 0.5;
	in.pressure[0] = 0.5;
	in.runnable[0] = 1.0;
	in.usage[2] = 0.4;
	in.usage[3] = 0.1;
	in.runnable[2] = 0.8;
	in.runnable[3] = 0.2;
	sup_alloc_compute(&in, &r);
	cr_assert_not(sup_alloc_may_squeeze(&in, &r, 2), "tier 3 keeps its share");
	cr_assert_not(sup_alloc_may_squeeze(&in, &r, 3), "tier 4 keeps its share");
	/* Outside load counts too: a light tier 1 on a machine whose other
	 * load leaves it alone, nothing for the guarantees of the rest. */
	in.usage[0] = in.runnable[0] = 0.05;
	in.pressure[0] = 0;
	sup_alloc_compute(&in, &r);
	cr_assert(sup_alloc_may_squeeze(&in, &r, 2));
	in.outside = 0.95;
	sup_alloc_compute(&in, &r);
	cr_assert_not(sup_alloc_may_squeeze(&in, &r, 2));
}

Test(squeeze, should_give_one_verdict_squeezed_or_not)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;

	/* Two CPU-bound tier-1 agents on two cores. Squeezing the rest lets
	 * them run all the time; not squeezed they run half of it and wait
	 * the other half. Both states must refuse, or the squeeze flips. */
	in.present[1] = false;
	in.usage[0] = 2.0;
	in.runnable[0] = 2.0;
	in.usage[2] = 0.02;
	in.runnable[2] = 2.0;
	sup_alloc_compute(&in, &r);
	cr_assert_not(sup_alloc_may_squeeze(&in, &r, 2), "squeezed");
	in.usage[0] = 1.0;
	in.pressure[0] = 0.5;
	in.usage[2] = 0.8;
	in.pressure[2] = 0.6;
	sup_alloc_compute(&in, &r);
	cr_assert_not(sup_alloc_may_squeeze(&in, &r, 2), "not squeezed");
}

Test(squeeze, should_never_squeeze_tier_3_and_spare_tier_4)
{
	struct sup_alloc_input in = seed_input();
	struct sup_alloc_result r;
	unsigned squeezed3 = 0, squeezed4_only = 0;

	for (int i = 0; i <= 20; i++)
		for (int j = 0; j <= 20; j++)
			for (int k = 0; k <= 10; k++) {
				in.usage[0] = 0.1 * i;
				in.usage[2] = 0.1 * j;
				in.pressure[0] = in.pressure[2] = 0.08 * k;
				in.runnable[0] = in.usage[0] * (1 + in.pressure[0]);
				in.runnable[2] = in.usage[2] * (1 + in.pressure[2]);
				sup_alloc_compute(&in, &r);
				if (sup_alloc_may_squeeze(&in, &r, 2)) {
					squeezed3++;
					cr_assert(sup_alloc_may_squeeze(&in, &r, 3),
						  "tier 3 idle over a tier 4 that is not (u1 %.1f u3 %.1f p %.2f)",
						  in.usage[0], in.usage[2], in.pressure[0]);
				} else if (sup_alloc_may_squeeze(&in, &r, 3)) {
					squeezed4_only++;
				}
			}
	/* The grid covers all three outcomes. */
	cr_assert(squeezed3 > 0);
	cr_assert(squeezed4_only > 0);
}
