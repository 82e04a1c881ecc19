/* SPDX-License-Identifier: MIT */
/*
 * An incarnation's reports to the daemon and its agent, without either:
 * the fleet has a real journal (an event ring and a logger) in its
 * struct sup_inc_env, the agent is a fake behind struct sup_inc_owner_ops.
 * What is checked: the fault latch and the flooder kill report once, to
 * the journal and to the owner.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../supervisor/config/config.h"
#include "../supervisor/events.h"
#include "../supervisor/journal.h"
#include "../supervisor/incarnation/internal.h"

/* What the fake agent was told. */
struct told {
	unsigned faulted, flooded;
};

static struct told told;

static void fake_faulted(struct sup_agent *ag)
{
	cr_assert_eq((void *)ag, (void *)&told, "the owner's pointer comes back untouched");
	told.faulted++;
}

static void fake_flooded(struct sup_agent *ag)
{
	cr_assert_eq((void *)ag, (void *)&told);
	told.flooded++;
}

static const struct sup_inc_owner_ops ops = {
	.faulted = fake_faulted,
	.flooded = fake_flooded,
};

static struct sup_logger lg;
static struct sup_events *events;
static struct sup_journal journal;
static struct sup_config conf;
static const struct sup_config *cur_conf = &conf;
static struct sup_inc_fleet *fleet;
static struct sup_budget budget;
static uint64_t dropped;
static bool stop_requested;
static char last_exit[64];
static struct sup_inc inc;

static void setup(void)
{
	memset(&told, 0, sizeof(told));
	lg = (struct sup_logger){ .level = SUP_LOG_DEBUG, .fd = open("/dev/null", O_WRONLY | O_CLOEXEC) };
	cr_assert_geq(lg.fd, 0);
	events = sup_events_new(16);
	cr_assert_not_null(events);
	journal = (struct sup_journal){ .log = &lg, .events = events };
	conf.sup.agent_flood_kill_after_ns = 2000000000;
	{
		const struct sup_inc_env env = { .journal = &journal, .conf = &cur_conf };

		fleet = sup_inc_fleet_new(&env, NULL, NULL);
	}
	cr_assert_not_null(fleet);
	memset(&inc, 0, sizeof(inc));
	inc.fleet = fleet;
	inc.n = 3;
	/* Attached: the owner's pointer is opaque to the module (any but
	 * NULL, which means detached); the fakes check they get it back. */
	inc.ag = (struct sup_agent *)&told;
	inc.own = (struct sup_inc_owner){
		.ops = &ops, .name = "worker-7", .tier = 2, .n = 3, .budget = &budget,
		.log_dropped = &dropped, .stop_requested = &stop_requested,
		.last_exit = last_exit, .last_exit_len = sizeof(last_exit),
	};
}

static void teardown(void)
{
	sup_inc_fleet_free(fleet);
	sup_events_free(events);
	close(lg.fd);
}

/* The events journaled of kind, each checked to name the agent and its
 * incarnation. */
static size_t journaled(const char *kind)
{
	json_t *all = sup_events_since(events, 0, 16);
	size_t i, n = 0;
	json_t *ev;

	cr_assert_not_null(all);
	json_array_foreach(all, i, ev) {
		if (strcmp(json_string_value(json_object_get(ev, "kind")), kind))
			continue;
		cr_assert_str_eq(json_string_value(json_object_get(ev, "agent")), "worker-7");
		cr_assert_eq(json_integer_value(json_object_get(ev, "incarnation")), 3);
		n++;
	}
	json_decref(all);
	return n;
}

TestSuite(inc_owner, .init = setup, .fini = teardown);

Test(inc_owner, a_protocol_fault_is_journaled_once_and_tells_its_agent_once)
{
	sup_inc_fault(&inc, "second HELLO", 0);
	sup_inc_fault(&inc, "RESULT before HELLO", 0);
	cr_assert(inc.faulted);
	cr_assert_eq(told.faulted, 1, "the latch: one kill for any number of faults");
	cr_assert_eq(journaled("protocol_violation"), 1);
}

Test(inc_owner, a_fault_after_its_agent_let_go_reports_nothing)
{
	inc.ag = NULL;
	sup_inc_fault(&inc, "second HELLO", 0);
	cr_assert_eq(told.faulted, 0);
	cr_assert_eq(journaled("protocol_violation"), 0);
}

Test(inc_owner, a_flooder_is_journaled_once_with_its_budget_and_tells_its_agent_once)
{
	json_t *all, *ev;

	sup_inc_pause(&inc, SUP_BUDGET_FLOODER, SUP_BUDGET_WAKES);
	sup_inc_pause(&inc, SUP_BUDGET_FLOODER, SUP_BUDGET_RECORDS);
	cr_assert(inc.faulted, "nothing more is read from a flooder");
	cr_assert_eq(told.flooded, 1);
	cr_assert_eq(journaled("flooder"), 1);
	all = sup_events_since(events, 0, 16);
	ev = json_array_get(all, 0);
	cr_assert_str_eq(json_string_value(json_object_get(ev, "budget")),
			 sup_budget_kind_name(SUP_BUDGET_WAKES));
	cr_assert_float_eq(json_real_value(json_object_get(ev, "for_s")), 2.0, 1e-9,
			   "the kill delay comes from the fleet's current configuration");
	json_decref(all);
}
