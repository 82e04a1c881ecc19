/* SPDX-License-Identifier: MIT */
/*
 * The agent state machine's observers: every state change reaches every
 * registered observer exactly once, in registration order, and an event that
 * changes nothing reaches none. Driven through transitions that need no
 * process (no spawn, no signal, no cgroup).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../supervisor/agent.h"
#include "../supervisor/config/config.h"
#include "../supervisor/events.h"
#include "../supervisor/journal.h"

#define MAX_HEARD 32
#define NS_PER_S  1000000000LL

struct heard {
	int                  who;
	enum sup_agent_state from, to;
	bool                 leaf;
};

static struct {
	/* What the agent reaches of a daemon: no daemon here. */
	struct sup_agent_env      env;
	struct sup_loop          *loop;
	struct sup_events        *events;
	struct sup_logger         log;
	struct sup_journal        journal;
	struct sup_config        *cur;      /* the current config, as a reload swaps it */
	struct sup_agent_observers observers;
	struct sup_config         conf;
	struct sup_agent_conf     aconf;
	struct sup_agent          ag;
	struct sup_agent_observer obs[3];
	struct heard              heard[MAX_HEARD];
	int                       nheard;
} F;

static void hear_state(void *arg, struct sup_agent *ag, enum sup_agent_state from)
{
	cr_assert_lt(F.nheard, MAX_HEARD);
	F.heard[F.nheard++] = (struct heard){ .who = (int)(intptr_t)arg, .from = from,
					      .to = ag->state };
}

static void hear_leaf(void *arg, struct sup_agent *ag)
{
	(void)ag;
	cr_assert_lt(F.nheard, MAX_HEARD);
	F.heard[F.nheard++] = (struct heard){ .who = (int)(intptr_t)arg, .leaf = true };
}

static void no_timer(struct sup_loop *l, struct sup_timer *t)
{
}

static void setup(void)
{
	char why[256];

	memset(&F, 0, sizeof(F));
	F.loop = sup_loop_new(16, why, sizeof(why));
	cr_assert(F.loop, "%s", why);
	F.events = sup_events_new(16);
	cr_assert(F.events);
	sup_logger_init(&F.log, 0);
	F.journal = (struct sup_journal){ .log = &F.log, .events = F.events };
	F.cur = &F.conf;
	F.env = (struct sup_agent_env){ .conf = &F.cur, .loop = F.loop, .journal = &F.journal,
					.observers = &F.observers };
	F.conf.sup.crash_loop_count = 100;
	F.conf.sup.crash_loop_window_ns = 60 * NS_PER_S;
	F.conf.sup.restart_backoff_base_ns = NS_PER_S;
	F.conf.sup.restart_backoff_cap_ns = 10 * NS_PER_S;
	F.conf.sup.restart_stable_after_ns = 600 * NS_PER_S;
	F.aconf.restart = SUP_RESTART_ALWAYS;
	F.aconf.start_timeout_ns = NS_PER_S;
	F.aconf.stop_timeout_ns = NS_PER_S;
	F.ag.env = &F.env;
	F.ag.conf = &F.aconf;
	snprintf(F.ag.name, sizeof(F.ag.name), "a1");
	sup_timer_init(&F.ag.timer, no_timer, &F.ag);
	for (int i = 0; i < 3; i++) {
		F.obs[i] = (struct sup_agent_observer){ .state = hear_state, .leaf = hear_leaf,
							.arg = (void *)(intptr_t)i };
		sup_agent_observe(&F.observers, &F.obs[i]);
	}
}

static void teardown(void)
{
	sup_timer_disarm(F.loop, &F.ag.timer);
	sup_events_free(F.events);
	sup_loop_free(F.loop);
}

TestSuite(agent_observers, .init = setup, .fini = teardown);

/* From state `from`, event ev moves the agent to `to`: each observer heard
 * it once, in the order they registered. */
static void expect_change(enum sup_agent_state from, enum sup_agent_event ev,
			  enum sup_agent_state to)
{
	F.ag.state = from;
	F.nheard = 0;
	sup_agent_event(&F.ag, ev);
	cr_assert_eq(F.ag.state, to, "%s + %s: now %s, expected %s", sup_agent_state_name(from),
		     sup_agent_event_name(ev), sup_agent_state_name(F.ag.state),
		     sup_agent_state_name(to));
	cr_assert_eq(F.nheard, 3, "%s + %s: %d notifications for one change",
		     sup_agent_state_name(from), sup_agent_event_name(ev), F.nheard);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(F.heard[i].who, i, "observer %d heard in place %d", F.heard[i].who, i);
		cr_assert_not(F.heard[i].leaf);
		cr_assert_eq(F.heard[i].from, from);
		cr_assert_eq(F.heard[i].to, to);
	}
}

Test(agent_observers, hello_makes_ready_and_every_observer_hears_it_once_in_order)
{
	expect_change(SUP_AG_STARTING, SUP_EV_HELLO, SUP_AG_READY);
}

Test(agent_observers, expected_exit_while_stopping_is_heard_as_stopped)
{
	F.ag.stop_requested = true;
	expect_change(SUP_AG_STOPPING, SUP_EV_EXIT, SUP_AG_STOPPED);
}

Test(agent_observers, stop_in_backoff_or_failed_is_heard_as_stopped)
{
	expect_change(SUP_AG_BACKOFF, SUP_EV_STOP, SUP_AG_STOPPED);
	expect_change(SUP_AG_FAILED, SUP_EV_STOP, SUP_AG_STOPPED);
}

Test(agent_observers, clean_exit_of_a_never_restarted_agent_is_heard_as_stopped)
{
	F.aconf.restart = SUP_RESTART_NEVER;
	F.ag.exit_clean = true;
	expect_change(SUP_AG_READY, SUP_EV_EXIT, SUP_AG_STOPPED);
}

Test(agent_observers, crash_with_backoff_is_heard_as_backoff)
{
	F.ag.backoff_level = 1;
	expect_change(SUP_AG_READY, SUP_EV_EXIT, SUP_AG_BACKOFF);
	expect_change(SUP_AG_BACKOFF, SUP_EV_STOP, SUP_AG_STOPPED);
}

Test(agent_observers, crash_loop_is_heard_once_as_failed)
{
	F.conf.sup.crash_loop_count = 1;
	expect_change(SUP_AG_READY, SUP_EV_EXIT, SUP_AG_FAILED);
	cr_assert_eq(sup_events_last_seq(F.events), 1, "the crash loop is in the journal");
}

Test(agent_observers, event_that_changes_no_state_is_heard_by_nobody)
{
	static const struct {
		enum sup_agent_state s;
		enum sup_agent_event ev;
	} same[] = {
		{ SUP_AG_STOPPED, SUP_EV_HELLO },       /* ignored by the table */
		{ SUP_AG_READY, SUP_EV_BACKOFF_DONE },  /* ignored by the table */
		{ SUP_AG_STOPPING, SUP_EV_STOP },       /* acts, stays stopping */
		{ SUP_AG_STOPPING, SUP_EV_RESTART },    /* acts, stays stopping */
	};

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		F.ag.state = same[i].s;
		F.nheard = 0;
		sup_agent_event(&F.ag, same[i].ev);
		cr_assert_eq(F.ag.state, same[i].s);
		cr_assert_eq(F.nheard, 0, "%s + %s: heard %d times without a change",
			     sup_agent_state_name(same[i].s), sup_agent_event_name(same[i].ev),
			     F.nheard);
	}
}

Test(agent_observers, unobserved_hears_nothing_and_the_rest_keep_their_order)
{
	sup_agent_unobserve(&F.observers, &F.obs[1]);
	F.ag.state = SUP_AG_STARTING;
	sup_agent_event(&F.ag, SUP_EV_HELLO);
	cr_assert_eq(F.nheard, 2);
	cr_assert_eq(F.heard[0].who, 0);
	cr_assert_eq(F.heard[1].who, 2);
}

Test(agent_observers, leaf_change_reaches_only_leaf_observers_in_order)
{
	F.obs[0].leaf = NULL;
	sup_agent_notify_leaf(&F.observers, &F.ag);
	cr_assert_eq(F.nheard, 2);
	cr_assert(F.heard[0].leaf && F.heard[0].who == 1);
	cr_assert(F.heard[1].leaf && F.heard[1].who == 2);
}

/* The agent reads the config its env points at now, not the one it was
 * made with: after a reload swaps it, the same death is judged by the new
 * crash-loop policy. */
Test(agent_observers, crash_loop_policy_is_read_from_the_config_a_reload_put_in_place)
{
	static struct sup_config reloaded;

	F.ag.backoff_level = 1;
	expect_change(SUP_AG_READY, SUP_EV_EXIT, SUP_AG_BACKOFF);
	reloaded = F.conf;
	reloaded.sup.crash_loop_count = 1;
	F.cur = &reloaded;
	expect_change(SUP_AG_READY, SUP_EV_EXIT, SUP_AG_FAILED);
}
