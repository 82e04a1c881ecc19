/* SPDX-License-Identifier: MIT */
/* The agent state machine: an explicit state x event table. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cgroup/cgroup.h"
#include "cgroup/cg_leaf.h"
#include "config/config.h"
#include "events.h"
#include "incarnation/incarnation.h"
#include "journal.h"

static const char *const state_names[SUP_AG_NSTATES] = {
	"stopped", "starting", "ready", "stopping", "backoff", "failed",
};

static const char *const event_names[SUP_EV_NEVENTS] = {
	"start", "restart", "stop", "hello", "exit", "start-timeout", "stop-timeout",
	"backoff-done", "protocol-violation", "flood",
};

const char *sup_agent_state_name(enum sup_agent_state s)
{
	return (unsigned)s < SUP_AG_NSTATES ? state_names[s] : "?";
}

const char *sup_agent_event_name(enum sup_agent_event e)
{
	return (unsigned)e < SUP_EV_NEVENTS ? event_names[e] : "?";
}

static const struct sup_supervisor_conf *sconf(const struct sup_agent *ag)
{
	return &(*ag->env->conf)->sup;
}

static const struct sup_logger *logger(const struct sup_agent *ag)
{
	return ag->env->journal->log;
}

/* Its events, with the journal's own fields (journal.h). */
static void journal(const struct sup_agent *ag, int prio, const char *kind, json_t *ev,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void journal(const struct sup_agent *ag, int prio, const char *kind, json_t *ev,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sup_journal_eventv(ag->env->journal, prio, kind, ev, fmt, ap);
	va_end(ap);
}

static void set_state(struct sup_agent *ag, enum sup_agent_state s)
{
	enum sup_agent_state from = ag->state;

	if (from == s)
		return;
	ag->state = s;
	if (s != SUP_AG_STARTING && s != SUP_AG_STOPPING && s != SUP_AG_BACKOFF)
		sup_timer_disarm(ag->env->loop, &ag->timer);
	sup_agent_notify_state(ag->env->observers, ag, from);
}

/* ---- actions ------------------------------------------------------------ */

static void on_death(struct sup_agent *ag, bool clean);

/* ---- what its incarnations tell it (struct sup_inc_owner_ops) ------------ */

static void inc_spawned(struct sup_agent *ag, struct sup_inc *inc)
{
	ag->inc = inc;
}

static void inc_hello(struct sup_agent *ag, uint32_t max_inflight)
{
	ag->max_inflight = max_inflight;
	sup_agent_event(ag, SUP_EV_HELLO);
}

static void inc_faulted(struct sup_agent *ag)
{
	sup_agent_event(ag, SUP_EV_PROTOCOL);
}

static void inc_flooded(struct sup_agent *ag)
{
	sup_agent_event(ag, SUP_EV_FLOOD);
}

static void inc_exited(struct sup_agent *ag, bool clean)
{
	ag->inc = NULL;
	sup_agent_exited(ag, clean);
}

static const struct sup_inc_owner_ops inc_ops = {
	.spawned = inc_spawned,
	.leaf_recreated = sup_agent_leaf_recreated,
	.hello = inc_hello,
	.faulted = inc_faulted,
	.flooded = inc_flooded,
	.exited = inc_exited,
};

void sup_agent_owner(struct sup_agent *ag, uint32_t n, struct sup_inc_owner *own)
{
	*own = (struct sup_inc_owner){
		.ag = ag,
		.ops = &inc_ops,
		.name = ag->name,
		.tier = ag->tier,
		.n = n,
		.conf = ag->conf,
		.leaf = ag->leaf,
		.budget = &ag->budget,
		.log_dropped = &ag->log_dropped,
		.stop_requested = &ag->stop_requested,
		.last_exit = ag->last_exit,
		.last_exit_len = sizeof(ag->last_exit),
	};
}

static void a_spawn(struct sup_agent *ag)
{
	struct sup_inc_owner own;
	char err[256];
	int r;

	sup_agent_owner(ag, ++ag->incarnations, &own);
	ag->stop_requested = false;
	ag->restart_pending = false;
	ag->kill_reason = NULL;
	r = sup_inc_spawn(ag->env->incs, &own, err, sizeof(err));
	if (r < 0) {
		snprintf(ag->last_exit, sizeof(ag->last_exit), "spawn failed: %s", err);
		journal(ag, SUP_LOG_ERR, "spawn_failed",
			json_pack("{s:s, s:s, s:i}", "agent", ag->name, "error", err,
				  "errno", -r),
			"agent %s: cannot start: %s", ag->name, err);
		on_death(ag, false);
		return;
	}
	ag->last_spawn_ns = ag->inc->spawned_ns;
	journal(ag, SUP_LOG_DEBUG, "spawned",
		json_pack("{s:s, s:i, s:i}", "agent", ag->name, "pid", (int)ag->inc->pid,
			  "incarnation", (int)ag->inc->n),
		"agent %s: spawned pid %d (incarnation %u)", ag->name, (int)ag->inc->pid,
		ag->inc->n);
	set_state(ag, SUP_AG_STARTING);
	sup_timer_arm_in(ag->env->loop, &ag->timer, ag->conf->start_timeout_ns);
}

static void a_spawn_fresh(struct sup_agent *ag)
{
	/* An operator's start/restart clears the crash history. */
	ag->ndeaths = 0;
	ag->backoff_level = 0;
	a_spawn(ag);
}

static void a_ready(struct sup_agent *ag)
{
	ag->ready_ns = sup_loop_time(ag->env->loop);
	set_state(ag, SUP_AG_READY);
}

static void a_term(struct sup_agent *ag)
{
	ag->stop_requested = true;
	set_state(ag, SUP_AG_STOPPING);
	sup_inc_signal(ag->inc, SIGTERM);
	sup_timer_arm_in(ag->env->loop, &ag->timer, ag->conf->stop_timeout_ns);
}

static void a_term_restart(struct sup_agent *ag)
{
	a_term(ag);
	ag->restart_pending = true;
}

/* Kill the whole leaf now: the agent failed (no HELLO in time, broke the
 * protocol). Its exit then goes through the crash path. */
static void a_kill_fail(struct sup_agent *ag, const char *why)
{
	ag->kill_reason = why;
	sup_cg_leaf_kill(ag->leaf);
}

static void a_start_timeout(struct sup_agent *ag)
{
	journal(ag, SUP_LOG_ERR, "start_timeout",
		json_pack("{s:s, s:f}", "agent", ag->name, "timeout_s",
			  (double)ag->conf->start_timeout_ns * 1e-9),
		"agent %s: no HELLO within %.1fs; killing it", ag->name,
		(double)ag->conf->start_timeout_ns * 1e-9);
	a_kill_fail(ag, "start timeout");
}

static void a_protocol(struct sup_agent *ag)
{
	a_kill_fail(ag, "protocol violation");
}

static void a_flood(struct sup_agent *ag)
{
	a_kill_fail(ag, "flooding");
}

static void a_stop_timeout(struct sup_agent *ag)
{
	journal(ag, SUP_LOG_WARNING, "stop_timeout",
		json_pack("{s:s}", "agent", ag->name),
		"agent %s: still running %.1fs after SIGTERM; killing its cgroup", ag->name,
		(double)ag->conf->stop_timeout_ns * 1e-9);
	sup_cg_leaf_kill(ag->leaf);
}

static void a_set_restart(struct sup_agent *ag)
{
	ag->restart_pending = true;
}

static void a_clear_restart(struct sup_agent *ag)
{
	ag->restart_pending = false;
}

static void a_to_stopped(struct sup_agent *ag)
{
	set_state(ag, SUP_AG_STOPPED);
}

static void a_exit(struct sup_agent *ag)
{
	if (ag->state == SUP_AG_STOPPING && ag->stop_requested && !ag->kill_reason) {
		if (ag->restart_pending) {
			ag->restarts++;
			a_spawn(ag);
			return;
		}
		set_state(ag, SUP_AG_STOPPED);
		return;
	}
	on_death(ag, ag->exit_clean && !ag->kill_reason);
}

typedef void (*sup_action)(struct sup_agent *ag);

static const sup_action table[SUP_AG_NSTATES][SUP_EV_NEVENTS] = {
	[SUP_AG_STOPPED] = {
		[SUP_EV_START] = a_spawn_fresh,
		[SUP_EV_RESTART] = a_spawn_fresh,
	},
	[SUP_AG_STARTING] = {
		[SUP_EV_STOP] = a_term,
		[SUP_EV_RESTART] = a_term_restart,
		[SUP_EV_HELLO] = a_ready,
		[SUP_EV_EXIT] = a_exit,
		[SUP_EV_START_TIMEOUT] = a_start_timeout,
		[SUP_EV_PROTOCOL] = a_protocol,
		[SUP_EV_FLOOD] = a_flood,
	},
	[SUP_AG_READY] = {
		[SUP_EV_STOP] = a_term,
		[SUP_EV_RESTART] = a_term_restart,
		[SUP_EV_EXIT] = a_exit,
		[SUP_EV_PROTOCOL] = a_protocol,
		[SUP_EV_FLOOD] = a_flood,
	},
	[SUP_AG_STOPPING] = {
		[SUP_EV_STOP] = a_clear_restart,
		[SUP_EV_RESTART] = a_set_restart,
		[SUP_EV_EXIT] = a_exit,
		[SUP_EV_STOP_TIMEOUT] = a_stop_timeout,
		[SUP_EV_PROTOCOL] = a_protocol,
		[SUP_EV_FLOOD] = a_flood,
	},
	[SUP_AG_BACKOFF] = {
		[SUP_EV_START] = a_spawn,
		[SUP_EV_RESTART] = a_spawn_fresh,
		[SUP_EV_STOP] = a_to_stopped,
		[SUP_EV_BACKOFF_DONE] = a_spawn,
	},
	[SUP_AG_FAILED] = {
		[SUP_EV_START] = a_spawn_fresh,
		[SUP_EV_RESTART] = a_spawn_fresh,
		[SUP_EV_STOP] = a_to_stopped,
	},
};

void sup_agent_event(struct sup_agent *ag, enum sup_agent_event ev)
{
	sup_action act = table[ag->state][ev];

	if (!act) {
		sup_log(logger(ag), SUP_LOG_DEBUG, "agent %s: event %s ignored in state %s",
			ag->name, sup_agent_event_name(ev), sup_agent_state_name(ag->state));
		return;
	}
	act(ag);
}

void sup_agent_exited(struct sup_agent *ag, bool clean)
{
	ag->exit_clean = clean;
	sup_agent_event(ag, SUP_EV_EXIT);
}

/* ---- crash accounting and restart policy --------------------------------- */

static unsigned deaths_within(const struct sup_agent *ag, int64_t now, int64_t window)
{
	unsigned n = 0, have = ag->ndeaths < SUP_MAX_DEATHS ? ag->ndeaths : SUP_MAX_DEATHS;

	for (unsigned i = 0; i < have; i++)
		if (now - ag->deaths[i] <= window)
			n++;
	return n;
}

int64_t sup_agent_backoff_delay(unsigned level, int64_t base, int64_t cap)
{
	int64_t d = base;

	if (level == 0)
		return 0;
	for (unsigned i = 1; i < level && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

static void on_death(struct sup_agent *ag, bool clean)
{
	const struct sup_supervisor_conf *s = sconf(ag);
	int64_t now = sup_loop_time(ag->env->loop), delay;
	unsigned recent;

	if (ag->kill_reason)
		snprintf(ag->last_exit + strlen(ag->last_exit),
			 sizeof(ag->last_exit) - strlen(ag->last_exit), " after %s", ag->kill_reason);
	ag->kill_reason = NULL;
	if (ag->last_spawn_ns && now - ag->last_spawn_ns >= s->restart_stable_after_ns)
		ag->backoff_level = 0;
	ag->deaths[ag->ndeaths++ % SUP_MAX_DEATHS] = now;
	if (ag->conf->restart == SUP_RESTART_NEVER ||
	    (ag->conf->restart == SUP_RESTART_ON_FAILURE && clean)) {
		set_state(ag, SUP_AG_STOPPED);
		return;
	}
	recent = deaths_within(ag, now, s->crash_loop_window_ns);
	if (recent >= s->crash_loop_count) {
		set_state(ag, SUP_AG_FAILED);
		journal(ag, SUP_LOG_ERR, "crash_loop",
			json_pack("{s:s, s:i, s:f, s:s}", "agent", ag->name, "deaths",
				  (int)recent, "window_s", (double)s->crash_loop_window_ns * 1e-9,
				  "last_exit", ag->last_exit),
			"agent %s: %u deaths within %.0fs (last: %s); marked failed until "
			"'tierctl restart %s'", ag->name, recent,
			(double)s->crash_loop_window_ns * 1e-9, ag->last_exit, ag->name);
		return;
	}
	delay = sup_agent_backoff_delay(ag->backoff_level, s->restart_backoff_base_ns,
					s->restart_backoff_cap_ns);
	ag->backoff_level++;
	ag->restarts++;
	if (delay == 0) {
		a_spawn(ag);
		return;
	}
	ag->backoff_until = now + delay;
	set_state(ag, SUP_AG_BACKOFF);
	sup_timer_arm(ag->env->loop, &ag->timer, ag->backoff_until);
	sup_log(logger(ag), SUP_LOG_INFO, "agent %s: restarting in %.3fs (backoff level %u)",
		ag->name, (double)delay * 1e-9, ag->backoff_level);
}

/* ---- lifetime ------------------------------------------------------------ */

void sup_agent_timer_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_agent *ag = t->data;

	(void)l;
	switch (ag->state) {
	case SUP_AG_STARTING:
		sup_agent_event(ag, SUP_EV_START_TIMEOUT);
		break;
	case SUP_AG_STOPPING:
		sup_agent_event(ag, SUP_EV_STOP_TIMEOUT);
		break;
	case SUP_AG_BACKOFF:
		sup_agent_event(ag, SUP_EV_BACKOFF_DONE);
		break;
	default:
		break;
	}
}

struct sup_agent *sup_agent_new(const struct sup_agent_env *env,
				const struct sup_agent_conf *conf, char *err, size_t errlen)
{
	struct sup_agent *ag = calloc(1, sizeof(*ag));
	int r;

	if (!ag) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ag->env = env;
	ag->conf = conf;
	snprintf(ag->name, sizeof(ag->name), "%s", conf->name);
	ag->name_len = strlen(ag->name);
	ag->tier = (int)conf->tier;
	ag->state = SUP_AG_STOPPED;
	sup_timer_init(&ag->timer, sup_agent_timer_fired, ag);
	r = sup_cg_leaf_open(env->cg, (unsigned)ag->tier, ag->name, &ag->leaf);
	if (r < 0) {
		snprintf(err, errlen, "cgroup leaf tier%d/agent-%s: %s", ag->tier, ag->name,
			 strerror(-r));
		free(ag);
		return NULL;
	}
	return ag;
}

void sup_agent_free(struct sup_agent *ag, bool remove_leaf)
{
	if (!ag)
		return;
	sup_timer_disarm(ag->env->loop, &ag->timer);
	if (remove_leaf)
		sup_cg_leaf_remove(ag->env->cg, ag->leaf);
	else
		sup_cg_leaf_free(ag->leaf);
	free(ag);
}

void sup_agent_leaf_recreated(struct sup_agent *ag)
{
	sup_log(logger(ag), SUP_LOG_DEBUG, "agent %s: leaf %s recreated after a kill", ag->name,
		sup_cg_leaf_path(ag->leaf));
	sup_agent_notify_leaf(ag->env->observers, ag);
}

bool sup_agent_running(const struct sup_agent *ag)
{
	return ag->inc != NULL;
}

double sup_agent_uptime_s(const struct sup_agent *ag)
{
	if (ag->state != SUP_AG_READY)
		return -1;
	return (double)(sup_loop_time(ag->env->loop) - ag->ready_ns) * 1e-9;
}
