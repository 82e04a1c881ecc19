/* SPDX-License-Identifier: MIT */
/* The fleet view: agents kept in the order added, found by name, removed
 * without disturbing the others' order. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "../supervisor/agent.h"
#include "../supervisor/fleet.h"

static struct sup_agent ags[40];

static void add_all(struct sup_fleet *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(ags[i].name, sizeof(ags[i].name), "a%zu", i);
		cr_assert_eq(sup_fleet_add(f, &ags[i]), 0);
	}
}

Test(fleet, keeps_agents_in_the_order_added_past_its_first_growth)
{
	struct sup_fleet f = { 0 };

	add_all(&f, 40);
	cr_assert_eq(f.n, 40);
	for (size_t i = 0; i < f.n; i++)
		cr_assert_eq(f.agents[i], &ags[i]);
	sup_fleet_fini(&f);
	cr_assert_eq(f.n, 0);
	cr_assert_null(f.agents);
}

Test(fleet, finds_an_agent_by_name_and_null_for_an_unknown_one)
{
	struct sup_fleet f = { 0 };

	add_all(&f, 5);
	cr_assert_eq(sup_fleet_find(&f, "a3"), &ags[3]);
	cr_assert_null(sup_fleet_find(&f, "a5"));
	cr_assert_null(sup_fleet_find(&f, "a"));
	sup_fleet_fini(&f);
}

Test(fleet, removing_one_keeps_the_others_in_order)
{
	struct sup_fleet f = { 0 };
	const size_t left[] = { 0, 2, 3 };

	add_all(&f, 4);
	sup_fleet_remove_at(&f, 1);
	cr_assert_eq(f.n, 3);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(f.agents[i], &ags[left[i]]);
	cr_assert_null(sup_fleet_find(&f, "a1"));
	sup_fleet_remove_at(&f, 2);
	cr_assert_eq(f.n, 2);
	cr_assert_eq(f.agents[1], &ags[2]);
	sup_fleet_fini(&f);
}

Test(fleet, reserve_makes_room_so_the_next_add_cannot_fail)
{
	struct sup_fleet f = { 0 };

	cr_assert_eq(sup_fleet_reserve(&f), 0);
	cr_assert_gt(f.cap, f.n);
	sup_fleet_fini(&f);
}
