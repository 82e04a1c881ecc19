/* SPDX-License-Identifier: MIT */
/*
 * The agent state machine: every state x event pair of its table, and its
 * observers: every state change reaches every
 * registered observer exactly once, in registration order, and an event that
 * changes nothing reaches none. Driven through transitions that need no
 * process (no spawn, no signal, no cgroup).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../supervisor/agent.h"
#include "../supervisor/cgroup/cg_leaf.h"
#include "../supervisor/config/config.h"
#include "../supervisor/events.h"
#include "../supervisor/incarnation/incarnation.h"
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

/* ---- the state table, every state x event --------------------------------
 *
 * Each pair is driven from the same starting point: no restart policy
 * (a death stops the agent), a spawn that fails before it forks (a ring
 * size shm refuses), an incarnation whose pidfd is closed (SIGTERM goes
 * nowhere), a leaf with no directory (sup_cg_leaf_detached: its cgroup.kill cannot
 * be opened: the kill is recorded, nothing is killed). What each action
 * leaves behind tells which action ran, so a changed cell fails its pair.
 */

enum act {
	IGNORED,        /* logged as ignored, nothing changes */
	SPAWN,          /* one spawn tried, crash history kept */
	SPAWN_FRESH,    /* one spawn tried, crash history cleared first */
	TERM,           /* SIGTERM, stopping */
	TERM_RESTART,   /* SIGTERM, stopping, spawn again once stopped */
	READY,
	DEATH,          /* an unexpected exit: the restart policy (none) stops it */
	KILL_START,     /* leaf killed: no HELLO in time */
	KILL_PROTOCOL,  /* leaf killed: protocol violation */
	KILL_FLOOD,     /* leaf killed: flooding */
	KILL_STOP,      /* leaf killed: still running after SIGTERM */
	SET_RESTART,
	CLEAR_RESTART,
	TO_STOPPED,
};

#define BACKOFF_LEVEL 3   /* the crash history a fresh spawn clears */

static const enum act table_expected[SUP_AG_NSTATES][SUP_EV_NEVENTS] = {
	[SUP_AG_STOPPED] = {
		[SUP_EV_START] = SPAWN_FRESH, [SUP_EV_RESTART] = SPAWN_FRESH,
		[SUP_EV_STOP] = IGNORED, [SUP_EV_HELLO] = IGNORED, [SUP_EV_EXIT] = IGNORED,
		[SUP_EV_START_TIMEOUT] = IGNORED, [SUP_EV_STOP_TIMEOUT] = IGNORED,
		[SUP_EV_BACKOFF_DONE] = IGNORED, [SUP_EV_PROTOCOL] = IGNORED,
		[SUP_EV_FLOOD] = IGNORED,
	},
	[SUP_AG_STARTING] = {
		[SUP_EV_START] = IGNORED, [SUP_EV_RESTART] = TERM_RESTART, [SUP_EV_STOP] = TERM,
		[SUP_EV_HELLO] = READY, [SUP_EV_EXIT] = DEATH, [SUP_EV_START_TIMEOUT] = KILL_START,
		[SUP_EV_STOP_TIMEOUT] = IGNORED, [SUP_EV_BACKOFF_DONE] = IGNORED,
		[SUP_EV_PROTOCOL] = KILL_PROTOCOL, [SUP_EV_FLOOD] = KILL_FLOOD,
	},
	[SUP_AG_READY] = {
		[SUP_EV_START] = IGNORED, [SUP_EV_RESTART] = TERM_RESTART, [SUP_EV_STOP] = TERM,
		[SUP_EV_HELLO] = IGNORED, [SUP_EV_EXIT] = DEATH, [SUP_EV_START_TIMEOUT] = IGNORED,
		[SUP_EV_STOP_TIMEOUT] = IGNORED, [SUP_EV_BACKOFF_DONE] = IGNORED,
		[SUP_EV_PROTOCOL] = KILL_PROTOCOL, [SUP_EV_FLOOD] = KILL_FLOOD,
	},
	[SUP_AG_STOPPING] = {
		[SUP_EV_START] = IGNORED, [SUP_EV_RESTART] = SET_RESTART,
		[SUP_EV_STOP] = CLEAR_RESTART, [SUP_EV_HELLO] = IGNORED, [SUP_EV_EXIT] = DEATH,
		[SUP_EV_START_TIMEOUT] = IGNORED, [SUP_EV_STOP_TIMEOUT] = KILL_STOP,
		[SUP_EV_BACKOFF_DONE] = IGNORED, [SUP_EV_PROTOCOL] = KILL_PROTOCOL,
		[SUP_EV_FLOOD] = KILL_FLOOD,
	},
	[SUP_AG_BACKOFF] = {
		[SUP_EV_START] = SPAWN, [SUP_EV_RESTART] = SPAWN_FRESH, [SUP_EV_STOP] = TO_STOPPED,
		[SUP_EV_HELLO] = IGNORED, [SUP_EV_EXIT] = IGNORED, [SUP_EV_START_TIMEOUT] = IGNORED,
		[SUP_EV_STOP_TIMEOUT] = IGNORED, [SUP_EV_BACKOFF_DONE] = SPAWN,
		[SUP_EV_PROTOCOL] = IGNORED, [SUP_EV_FLOOD] = IGNORED,
	},
	[SUP_AG_FAILED] = {
		[SUP_EV_START] = SPAWN_FRESH, [SUP_EV_RESTART] = SPAWN_FRESH,
		[SUP_EV_STOP] = TO_STOPPED, [SUP_EV_HELLO] = IGNORED, [SUP_EV_EXIT] = IGNORED,
		[SUP_EV_START_TIMEOUT] = IGNORED, [SUP_EV_STOP_TIMEOUT] = IGNORED,
		[SUP_EV_BACKOFF_DONE] = IGNORED, [SUP_EV_PROTOCOL] = IGNORED,
		[SUP_EV_FLOOD] = IGNORED,
	},
};

static struct {
	struct sup_inc_fleet *incs;
	struct sup_inc        inc;
	/* A leaf with no directory (sup_cg_leaf_detached): its cgroup.kill
	 * cannot be opened, so a kill only marks it. */
	struct sup_cg_leaf   *leaf;
	int                   log_fd;
	bool                  spawn_refused;   /* journaled by the failed spawn */
} T;

static void table_setup(void)
{
	setup();
	memset(&T, 0, sizeof(T));
	T.log_fd = memfd_create("agent-log", MFD_CLOEXEC);
	cr_assert_geq(T.log_fd, 0);
	F.log = (struct sup_logger){ .level = SUP_LOG_DEBUG, .fd = T.log_fd };
	{
		const struct sup_inc_env ienv = { .journal = &F.journal,
						  .conf = (const struct sup_config *const *)&F.cur };

		T.incs = sup_inc_fleet_new(&ienv, NULL, NULL);
	}
	cr_assert_not_null(T.incs);
	F.env.incs = T.incs;
	F.aconf.restart = SUP_RESTART_NEVER;
	F.aconf.ring_size = 3;   /* not a power of two: the ring is refused, nothing forks */
	T.inc.pidfd = -1;
	T.inc.fleet = T.incs;
}

static void table_teardown(void)
{
	teardown();
	sup_cg_leaf_free(T.leaf);
	sup_inc_fleet_free(T.incs);
	close(T.log_fd);
}

TestSuite(agent_table, .init = table_setup, .fini = table_teardown);

/* The log written since the last call (then emptied). */
static void log_since(char *buf, size_t sz)
{
	ssize_t n;

	n = pread(T.log_fd, buf, sz - 1, 0);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	cr_assert_eq(ftruncate(T.log_fd, 0), 0);
	cr_assert_eq(lseek(T.log_fd, 0, SEEK_SET), 0);
}

static uint64_t journaled(const char *kind)
{
	json_t *all = sup_events_since(F.events, 0, 64), *ev;
	size_t i;
	uint64_t n = 0;

	json_array_foreach(all, i, ev)
		n += strcmp(json_string_value(json_object_get(ev, "kind")) ?: "", kind) == 0;
	json_decref(all);
	return n;
}

static void drive_pair(enum sup_agent_state s, enum sup_agent_event ev, enum act want)
{
	const char *sn = sup_agent_state_name(s), *en = sup_agent_event_name(ev);
	char log[4096];
	bool ignored;

	sup_cg_leaf_free(T.leaf);
	T.leaf = sup_cg_leaf_detached(3, "a");
	cr_assert_not_null(T.leaf);
	F.ag.leaf = T.leaf;
	F.ag.inc = &T.inc;
	F.ag.state = s;
	F.ag.incarnations = 0;
	F.ag.backoff_level = BACKOFF_LEVEL;
	F.ag.ndeaths = 0;
	F.ag.stop_requested = false;
	F.ag.restart_pending = want == CLEAR_RESTART;
	F.ag.kill_reason = NULL;
	F.ag.exit_clean = false;
	log_since(log, sizeof(log));
	F.nheard = 0;

	sup_agent_event(&F.ag, ev);
	sup_timer_disarm(F.loop, &F.ag.timer);

	log_since(log, sizeof(log));
	ignored = strstr(log, "ignored in state") != NULL;
	cr_assert_eq(ignored, want == IGNORED, "%s + %s: %s", sn, en,
		     ignored ? "ignored, expected an action" : "acted, expected it ignored");
	switch (want) {
	case IGNORED:
	case KILL_START:
	case KILL_PROTOCOL:
	case KILL_FLOOD:
	case KILL_STOP:
	case SET_RESTART:
	case CLEAR_RESTART:
		cr_assert_eq(F.ag.state, s, "%s + %s: now %s, expected it to stay", sn, en,
			     sup_agent_state_name(F.ag.state));
		cr_assert_eq(F.nheard, 0, "%s + %s: heard without a change", sn, en);
		break;
	case SPAWN:
	case SPAWN_FRESH:
	case DEATH:
	case TO_STOPPED:
		cr_assert_eq(F.ag.state, SUP_AG_STOPPED, "%s + %s: now %s, expected stopped", sn,
			     en, sup_agent_state_name(F.ag.state));
		break;
	case TERM:
	case TERM_RESTART:
		cr_assert_eq(F.ag.state, SUP_AG_STOPPING, "%s + %s: now %s, expected stopping", sn,
			     en, sup_agent_state_name(F.ag.state));
		cr_assert(F.ag.stop_requested, "%s + %s: the exit is not expected", sn, en);
		break;
	case READY:
		cr_assert_eq(F.ag.state, SUP_AG_READY, "%s + %s: now %s, expected ready", sn, en,
			     sup_agent_state_name(F.ag.state));
		break;
	}
	cr_assert_eq(F.ag.incarnations, want == SPAWN || want == SPAWN_FRESH,
		     "%s + %s: %u spawns tried", sn, en, F.ag.incarnations);
	cr_assert_eq(journaled("spawn_failed"), want == SPAWN || want == SPAWN_FRESH,
		     "%s + %s: spawn failure journaled or missing", sn, en);
	cr_assert_eq(F.ag.backoff_level, want == SPAWN_FRESH ? 0 : BACKOFF_LEVEL,
		     "%s + %s: backoff level %u", sn, en, F.ag.backoff_level);
	cr_assert_eq(F.ag.ndeaths, want == SPAWN || want == SPAWN_FRESH || want == DEATH,
		     "%s + %s: %u deaths counted", sn, en, F.ag.ndeaths);
	cr_assert_eq(F.ag.restart_pending, want == TERM_RESTART || want == SET_RESTART,
		     "%s + %s: restart %spending", sn, en, F.ag.restart_pending ? "" : "not ");
	cr_assert_eq(sup_cg_leaf_killed(F.ag.leaf),
		     want == KILL_START || want == KILL_PROTOCOL || want == KILL_FLOOD ||
		     want == KILL_STOP, "%s + %s: leaf %skilled", sn, en,
		     sup_cg_leaf_killed(F.ag.leaf) ? "" : "not ");
	cr_assert_str_eq(F.ag.kill_reason ?: "",
			 want == KILL_START ? "start timeout" :
			 want == KILL_PROTOCOL ? "protocol violation" :
			 want == KILL_FLOOD ? "flooding" : "",
			 "%s + %s: kill reason '%s'", sn, en, F.ag.kill_reason ?: "");
	cr_assert_eq(journaled("start_timeout"), want == KILL_START, "%s + %s", sn, en);
	cr_assert_eq(journaled("stop_timeout"), want == KILL_STOP, "%s + %s", sn, en);
}

Test(agent_table, every_state_and_event_pair_runs_the_action_the_table_names)
{
	for (int s = 0; s < SUP_AG_NSTATES; s++)
		for (int ev = 0; ev < SUP_EV_NEVENTS; ev++) {
			sup_events_free(F.events);
			F.events = sup_events_new(16);
			cr_assert(F.events);
			F.journal.events = F.events;
			drive_pair((enum sup_agent_state)s, (enum sup_agent_event)ev,
				   table_expected[s][ev]);
		}
}

/* The list above names all 60 pairs: an event or a state added without a
 * row here is an unreviewed cell. */
Test(agent_table, the_expected_table_is_as_large_as_the_state_and_event_enums)
{
	cr_assert_eq(sizeof(table_expected) / sizeof(table_expected[0]), SUP_AG_NSTATES);
	cr_assert_eq(sizeof(table_expected[0]) / sizeof(table_expected[0][0]), SUP_EV_NEVENTS);
	cr_assert_eq(SUP_AG_NSTATES * SUP_EV_NEVENTS, 60, "a state or an event was added: "
		     "give every new pair its expected action above");
}
