/* SPDX-License-Identifier: MIT */
/* Control commands: targets, lifecycle, status, the command table (see
 * commands_internal.h for the other files). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "cgroup/cg_leaf.h"
#include "cgroup/cg_enforce.h"
#include "commands.h"
#include "commands_internal.h"
#include "config/config.h"
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_roles.h"
#include "daemon.h"
#include "daemon_upgrade.h"
#include "daemon_internal.h"
#include "events.h"
#include "tasks.h"
#include "workflow.h"
#include "allocator.h"
#include "metrics.h"
#include "monitor.h"
#include "optimiser.h"

struct cmd {
	const char *name;
	void (*fn)(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args);
};

/* ---- targets: an agent name or "tierN" ---------------------------------- */

/* Fills agents[] with the agents target names; returns how many or -errno
 * (after replying with the error). */
int sup_cmd_resolve_target(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args,
			   struct sup_agent ***ret)
{
	const char *t = json_string_value(json_object_get(args, "target"));
	const char *name = json_string_value(json_object_get(args, "agent"));
	json_t *jt = json_object_get(args, "tier");
	struct sup_agent **v;
	int tier = 0, n = 0;

	/* "target": "NAME" | "tierN", or "agent": "NAME", or "tier": N. */
	if (t && !strncmp(t, "tier", 4) && t[4] >= '1' && t[4] <= '4' && !t[5])
		tier = t[4] - '0';
	else if (t)
		name = t;
	if (jt) {
		if (!json_is_integer(jt) || json_integer_value(jt) < 1 || json_integer_value(jt) > 4) {
			sup_ctl_reply_err(c, id, EINVAL, "'tier' must be 1..4");
			return -EINVAL;
		}
		tier = (int)json_integer_value(jt);
	}
	if (!name == !tier) {
		sup_ctl_reply_err(c, id, EINVAL, "name one agent or one tier (tier1..tier4)");
		return -EINVAL;
	}
	v = calloc(d->fleet.n + 1, sizeof(*v));
	if (!v) {
		sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	if (tier) {
		for (size_t i = 0; i < d->fleet.n; i++)
			if (d->fleet.agents[i]->tier == tier)
				v[n++] = d->fleet.agents[i];
	} else {
		struct sup_agent *ag = sup_daemon_find_agent(d, name);

		if (!ag) {
			free(v);
			sup_ctl_reply_err(c, id, ENOENT, "no agent named '%s' (try 'tierctl agents')", name);
			return -ENOENT;
		}
		v[n++] = ag;
	}
	*ret = v;
	return n;
}

static json_t *names_of(struct sup_agent **v, int n)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]->name));
	return a;
}

static void do_lifecycle(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args,
			 enum sup_agent_event ev)
{
	struct sup_agent **v;
	int n = sup_cmd_resolve_target(d, c, id, args, &v);

	if (n < 0)
		return;
	if (d->shutting_down) {
		free(v);
		sup_ctl_reply_err(c, id, ECANCELED, "tierd is shutting down");
		return;
	}
	for (int i = 0; i < n; i++) {
		if (ev != SUP_EV_STOP && sup_tasks_draining(v[i]))
			sup_tasks_undrain(d->tasks, v[i]);
		sup_agent_event(v[i], ev);
	}
	sup_ctl_reply_ok(c, id, json_pack("{s:o}", "agents", names_of(v, n)));
	free(v);
}

static void cmd_start(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *a)
{
	do_lifecycle(d, c, id, a, SUP_EV_START);
}

static void cmd_stop(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *a)
{
	do_lifecycle(d, c, id, a, SUP_EV_STOP);
}

static void cmd_restart(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *a)
{
	do_lifecycle(d, c, id, a, SUP_EV_RESTART);
}

static void cmd_drain(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_agent **v;
	int n = sup_cmd_resolve_target(d, c, id, args, &v);
	json_t *res;

	if (n < 0)
		return;
	for (int i = 0; i < n; i++)
		sup_tasks_drain(d->tasks, v[i]);
	res = json_pack("{s:o}", "agents", names_of(v, n));
	sup_ctl_reply_ok(c, id, res);
	free(v);
}

static void cmd_undrain(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_agent **v;
	int n = sup_cmd_resolve_target(d, c, id, args, &v);

	if (n < 0)
		return;
	for (int i = 0; i < n; i++)
		sup_tasks_undrain(d->tasks, v[i]);
	sup_ctl_reply_ok(c, id, json_pack("{s:o}", "agents", names_of(v, n)));
	free(v);
}

/* ---- status and agents ----------------------------------------------------- */

static json_t *agent_json(struct sup_daemon *d, struct sup_agent *ag)
{
	double up = sup_agent_uptime_s(ag);
	json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:I, s:i, s:i, s:s, s:b}",
			      "name", ag->name, "tier", ag->tier,
			      "state", sup_agent_state_name(ag->state),
			      "incarnation", (int)ag->incarnations,
			      "restarts", (json_int_t)ag->restarts,
			      "inflight", (int)sup_tasks_inflight(ag),
			      "queued", (int)sup_tasks_queued(d->tasks, ag),
			      "mode", sup_mode_name(ag->conf->mode),
			      "draining", sup_tasks_draining(ag));

	json_object_set_new(o, "pid", ag->inc ? json_integer(ag->inc->pid) : json_null());
	json_object_set_new(o, "uptime_s", up >= 0 ? json_real(up) : json_null());
	json_object_set_new(o, "last_exit", ag->last_exit[0] ? json_string(ag->last_exit) : json_null());
	json_object_set_new(o, "backoff_s", ag->state == SUP_AG_BACKOFF ?
			    json_real((double)(ag->backoff_until - sup_loop_time(d->loop)) * 1e-9) :
			    json_null());
	json_object_set_new(o, "cgroup", json_string(sup_cg_leaf_path(ag->leaf)));
	return o;
}

static void cmd_agents(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *a = json_array();

	(void)args;
	for (size_t i = 0; i < d->fleet.n; i++)
		json_array_append_new(a, agent_json(d, d->fleet.agents[i]));
	sup_ctl_reply_ok(c, id, json_pack("{s:o}", "agents", a));
}

/* Into obj: name (or "tierN") -> the limit keys in bits, when any. */
static void unenforced_add(json_t *obj, const char *name, int tier, unsigned bits)
{
	json_t *keys;
	char tn[16];

	if (!bits)
		return;
	keys = json_array();
	for (int i = 0; i < SUP_LIM_COUNT; i++)
		if (bits & SUP_LIM_BIT(i))
			json_array_append_new(keys, json_string(sup_limit_key((enum sup_limit)i)));
	snprintf(tn, sizeof(tn), "tier%d", tier);
	json_object_set_new(obj, name ? name : tn, keys);
}

static void cmd_status(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	static const char *const ctrl[] = { "cpu", "cpuset", "memory", "io", "pids" };
	const struct sup_loop_features *f = sup_loop_features(d->loop);
	json_t *ctrls = json_object(), *tiers = json_array(), *res;
	struct sup_tasks_stats st;

	(void)args;
	for (int i = 0; i < SUP_CG_NCTRL; i++) {
		const char *why = sup_cg_ctrl_reason(d->cg, (enum sup_cg_ctrl)i);

		json_object_set_new(ctrls, ctrl[i], json_pack("{s:b, s:s}", "live",
				    sup_cg_ctrl_live(d->cg, (enum sup_cg_ctrl)i), "why", why ? why : ""));
	}
	for (int t = 1; t <= 4; t++) {
		unsigned n[SUP_AG_NSTATES] = { 0 }, total = 0;
		json_t *states = json_object();

		for (size_t i = 0; i < d->fleet.n; i++)
			if (d->fleet.agents[i]->tier == t) {
				n[d->fleet.agents[i]->state]++;
				total++;
			}
		for (int s = 0; s < SUP_AG_NSTATES; s++)
			json_object_set_new(states, sup_agent_state_name((enum sup_agent_state)s),
					    json_integer(n[s]));
		json_array_append_new(tiers, json_pack("{s:i, s:i, s:o}", "tier", t, "agents",
						       (int)total, "states", states));
	}
	sup_tasks_stats(d->tasks, &st);
	res = json_pack("{s:s, s:i, s:f, s:s, s:{s:s, s:s, s:b, s:o}, s:{s:b, s:b, s:b, s:b, s:b},"
			" s:s, s:o, s:i, s:b}",
			"version", sup_daemon_build(), "pid", (int)getpid(),
			"uptime_s", (double)(sup_loop_now(d->loop) - d->started_ns) * 1e-9,
			"config", d->config_path,
			"cgroup", "mount", sup_cg_mount_path(d->cg), "root", sup_cg_root_path(d->cg),
			"delegated", sup_cg_delegated(d->cg), "controllers", ctrls,
			"io_uring", "poll_multishot", f->poll_multishot, "accept_multishot",
			f->accept_multishot, "futex_wait", f->op_futex_wait, "waitid", f->op_waitid,
			"timeout_multishot", f->timeout_multishot,
			"accounting", sup_monitor_source(d->monitor), "tiers", tiers, "agents", (int)d->fleet.n,
			"shutting_down", d->shutting_down);
	json_object_set_new(res, "tasks", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			    "submitted", (json_int_t)st.submitted, "pending", (json_int_t)st.pending,
			    "queued", (json_int_t)st.queued, "retries", (json_int_t)st.retries,
			    "late_results", (json_int_t)st.late_results,
			    "retained", (json_int_t)st.retained,
			    "retained_bytes", (json_int_t)st.retained_bytes,
			    "retention_dropped", (json_int_t)st.retention_dropped));
	json_object_set_new(res, "journal", sup_daemon_wal_json(d));
	{
		const char *why;
		bool io = sup_allocator_io_weights(d->alloc, &why);

		json_object_set_new(res, "allocator", json_pack("{s:b, s:b, s:s, s:b}", "enabled",
				    sup_allocator_enabled(d->alloc), "io_weights", io, "io_why", why,
				    "optimiser", sup_optimiser_enabled(d->opt)));
	}
	/* Replaced by reloads and still pointed into by an agent that has
	 * not stopped yet; 0 once they have. */
	json_object_set_new(res, "old_configs", json_integer((json_int_t)d->nold_confs));
	json_object_set_new(res, "upgrades", json_integer((json_int_t)d->upgrades));
	json_object_set_new(res, "metrics", d->metrics ?
		json_pack("{s:s, s:s}", "state", "listening", "address", sup_metrics_address(d->metrics)) :
		d->metrics_error[0] ?
		json_pack("{s:s, s:s}", "state", "failed", "error", d->metrics_error) :
		json_pack("{s:s}", "state", "off"));
	{
		/* Limits configured but written nowhere: their controller is
		 * not in cgroup2 here (hybrid host). */
		json_t *un = json_object(), *ut = json_object(), *ua = json_object();
		unsigned live = 0;

		for (int i = 0; i < SUP_CG_NCTRL; i++)
			if (sup_cg_ctrl_live(d->cg, (enum sup_cg_ctrl)i))
				live |= 1u << i;
		for (int t = 0; t < SUP_NTIERS; t++)
			unenforced_add(ut, NULL, t + 1,
				       sup_limits_unenforced(&d->conf->tiers[t].limits, live));
		for (size_t i = 0; i < d->fleet.n; i++)
			unenforced_add(ua, d->fleet.agents[i]->name, 0,
				       sup_limits_unenforced(&d->fleet.agents[i]->conf->limits, live));
		json_object_set_new(un, "tiers", ut);
		json_object_set_new(un, "agents", ua);
		json_object_set_new(res, "unenforced", un);
	}
	sup_ctl_reply_ok(c, id, res);
}

static void cmd_shutdown(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	(void)args;
	sup_log(&d->log, SUP_LOG_NOTICE, "shutdown requested by uid %u over the control socket",
		(unsigned)sup_ctl_client_uid(c));
	sup_ctl_reply_ok(c, id, NULL);
	sup_daemon_shutdown(d, 0);
}

static void cmd_reload(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	(void)args;
	sup_daemon_reload(d, c, id);
}

static void cmd_upgrade(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *b = json_object_get(args, "binary");

	if (b && (!json_is_string(b) || !json_string_length(b) || json_string_length(b) >= 4096)) {
		sup_ctl_reply_err(c, id, EINVAL, "'binary' must be the path of a tierd binary");
		return;
	}
	sup_daemon_upgrade(d, c, id, b ? json_string_value(b) : NULL);
}

static void cmd_events(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	int64_t a;
	int r = sup_ctl_arg_int(json_object_get(args, "after"), 0, INT64_MAX, 0, &a);

	if (r < 0) {
		sup_ctl_reply_err(c, id, r, "'after' must be an event sequence number (an "
				  "integer, 0 or more)");
		return;
	}

	sup_ctl_reply_ok(c, id, json_pack("{s:o, s:I}", "events", sup_events_since(d->events, (uint64_t)a, 1000),
					  "last", (json_int_t)sup_events_last_seq(d->events)));
}

static const struct cmd commands[] = {
	{ "top", sup_cmd_top },
	{ "history", sup_cmd_history },
	{ "limits", sup_cmd_limits },
	{ "limit", sup_cmd_limit },
	{ "analyze", sup_cmd_analyze },
	{ "optimiser", sup_cmd_optimiser },
	{ "allocator", sup_cmd_allocator },
	{ "bench-dispatch", sup_cmd_bench_dispatch },
	{ "run", sup_cmd_run },
	{ "trace", sup_cmd_trace },
	{ "runs", sup_cmd_runs },
	{ "status", cmd_status },
	{ "agents", cmd_agents },
	{ "start", cmd_start },
	{ "stop", cmd_stop },
	{ "restart", cmd_restart },
	{ "drain", cmd_drain },
	{ "rolling-restart", sup_cmd_rolling_restart },
	{ "undrain", cmd_undrain },
	{ "reload", cmd_reload },
	{ "upgrade", cmd_upgrade },
	{ "shutdown", cmd_shutdown },
	{ "submit", sup_cmd_submit },
	{ "result", sup_cmd_result },
	{ "cancel", sup_cmd_cancel },
	{ "events", cmd_events },
	{ "fleet-status", sup_cmd_fleet_status },
	{ "fleet-drain", sup_cmd_fleet_drain },
	{ "fleet-undrain", sup_cmd_fleet_undrain },
};

/* false after replying with the refusal, naming the role cmd needs. */
static bool role_allows(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, const char *cmd)
{
	enum sup_ctl_role need = sup_ctl_cmd_role(cmd), have = sup_ctl_client_role(c);
	const char *g = d->conf->sup.admin_group;

	if (have >= need)
		return true;
	sup_ctl_reply_err(c, id, EPERM, "'%s' needs the %s role (root, uid %u%s%s); you have %s",
			  cmd, sup_ctl_role_name(need), (unsigned)geteuid(), g ? " or group " : "",
			  g ? g : "", sup_ctl_role_name(have));
	return false;
}

void sup_cmd_dispatch(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, const char *cmd,
		      json_t *args)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, cmd)) {
			if (!role_allows(d, c, id, cmd))
				return;
			commands[i].fn(d, c, id, args);
			return;
		}
	sup_ctl_reply_err(c, id, EINVAL, "unknown command '%s'", cmd);
}

