/* SPDX-License-Identifier: MIT */
/* Control commands: what tierctl asks, and reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchcmd.h"
#include "cgroup/cgroup.h"
#include "cgroup/cg_leaf.h"
#include "cgroup/cg_enforce.h"
#include "commands.h"
#include "config.h"
#include "ctl.h"
#include "ctl_args.h"
#include "ctl_roles.h"
#include "daemon.h"
#include "events.h"
#include "taskjson.h"
#include "tasks.h"
#include "workflow.h"
#include "allocator.h"
#include "metrics.h"
#include "monitor.h"
#include "optimiser.h"

/* stagger_ms: the longest [tierN] stagger the config takes. */
#define CMD_STAGGER_MS_MAX (3600 * 1000.0)

struct cmd {
	const char *name;
	void (*fn)(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args);
};

/* ---- targets: an agent name or "tierN" ---------------------------------- */

/* Fills agents[] with the agents target names; returns how many or -errno
 * (after replying with the error). */
static int resolve_target(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args,
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
	v = calloc(d->nagents + 1, sizeof(*v));
	if (!v) {
		sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	if (tier) {
		for (size_t i = 0; i < d->nagents; i++)
			if (d->agents[i]->tier == tier)
				v[n++] = d->agents[i];
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
	int n = resolve_target(d, c, id, args, &v);

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
	int n = resolve_target(d, c, id, args, &v);
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
	int n = resolve_target(d, c, id, args, &v);

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
	for (size_t i = 0; i < d->nagents; i++)
		json_array_append_new(a, agent_json(d, d->agents[i]));
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

		for (size_t i = 0; i < d->nagents; i++)
			if (d->agents[i]->tier == t) {
				n[d->agents[i]->state]++;
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
			"version", SUP_VERSION, "pid", (int)getpid(),
			"uptime_s", (double)(sup_loop_now(d->loop) - d->started_ns) * 1e-9,
			"config", d->config_path,
			"cgroup", "mount", sup_cg_mount_path(d->cg), "root", sup_cg_root_path(d->cg),
			"delegated", sup_cg_delegated(d->cg), "controllers", ctrls,
			"io_uring", "poll_multishot", f->poll_multishot, "accept_multishot",
			f->accept_multishot, "futex_wait", f->op_futex_wait, "waitid", f->op_waitid,
			"timeout_multishot", f->timeout_multishot,
			"accounting", sup_monitor_source(d->monitor), "tiers", tiers, "agents", (int)d->nagents,
			"shutting_down", d->shutting_down);
	json_object_set_new(res, "tasks", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			    "submitted", (json_int_t)st.submitted, "pending", (json_int_t)st.pending,
			    "queued", (json_int_t)st.queued, "retries", (json_int_t)st.retries,
			    "late_results", (json_int_t)st.late_results,
			    "retained", (json_int_t)st.retained,
			    "retained_bytes", (json_int_t)st.retained_bytes,
			    "retention_dropped", (json_int_t)st.retention_dropped));
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
		for (size_t i = 0; i < d->nagents; i++)
			unenforced_add(ua, d->agents[i]->name, 0,
				       sup_limits_unenforced(&d->agents[i]->conf->limits, live));
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

/* ---- tasks ----------------------------------------------------------------- */

static void cmd_submit(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_task_spec spec = { 0 };
	json_t *jt = json_object_get(args, "tier"), *jto = json_object_get(args, "timeout_ms");
	bool detach = json_is_true(json_object_get(args, "detach"));
	bool ack = json_is_true(json_object_get(args, "ack"));
	char err[256];
	void *payload;
	size_t len;
	int64_t tid;
	int r;

	spec.agent = json_string_value(json_object_get(args, "agent"));
	spec.type = json_string_value(json_object_get(args, "type"));
	spec.type_len = spec.type ? strlen(spec.type) : 0;
	spec.tier = sup_ctl_arg_tier(jt, 0);
	if (spec.tier < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'tier' must be an integer 1..4");
		return;
	}
	if (!spec.agent == !jt) {
		sup_ctl_reply_err(c, id, EINVAL, "give exactly one of 'agent' and 'tier'");
		return;
	}
	r = sup_ctl_arg_ms(jto, 0, false, SUP_CTL_TIMEOUT_MS_MAX, 0, &spec.timeout_ns);
	if (r < 0) {
		sup_ctl_reply_err(c, id, r, "'timeout_ms' must be a number from 0 to %.0f (7 days)",
				  SUP_CTL_TIMEOUT_MS_MAX);
		return;
	}
	if (sup_json_get_payload(args, &payload, &len, err, sizeof(err)) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "%s", err);
		return;
	}
	spec.payload = payload;
	spec.len = len;
	if (!detach) {
		spec.client = c;
		spec.req_id = id;
	}
	tid = sup_tasks_submit(d->tasks, &spec, err, sizeof(err));
	free(payload);
	if (tid < 0) {
		sup_ctl_reply_err(c, id, (int)-tid, "%s", err);
		return;
	}
	if (detach)
		sup_ctl_reply_ok(c, id, json_pack("{s:I}", "task", (json_int_t)tid));
	else if (ack && sup_tasks_is_pending(d->tasks, (uint64_t)tid))
		/* The id first, so a client that goes away can fetch the result. */
		sup_ctl_reply_more(c, id, json_pack("{s:I, s:s}", "task", (json_int_t)tid,
						    "state", "accepted"));
}

/* ---- rolling restart of a tier ------------------------------------------- */

#define ROLL_POLL_NS (10 * 1000 * 1000LL)

struct rolling {
	struct sup_daemon     *d;
	struct sup_ctl_client *c;
	uint64_t               id;
	char                 **names;
	size_t                 n, i;
	bool                   restarting;
	uint32_t               old_inc;
	int64_t                deadline;
	struct sup_timer       timer;
	json_t                *done;
};

static void rolling_end(struct rolling *r, const char *err)
{
	if (err)
		sup_ctl_reply_err(r->c, r->id, ETIMEDOUT, "%s", err);
	else
		sup_ctl_reply_ok(r->c, r->id, json_pack("{s:O}", "restarted", r->done));
	sup_ctl_client_release(r->c);
	json_decref(r->done);
	for (size_t k = 0; k < r->n; k++)
		free(r->names[k]);
	free(r->names);
	free(r);
}

static void rolling_step(struct sup_loop *l, struct sup_timer *t)
{
	struct rolling *r = t->data;
	struct sup_daemon *d = r->d;
	int64_t now = sup_loop_time(l);

	while (r->i < r->n) {
		struct sup_agent *ag = sup_daemon_find_agent(d, r->names[r->i]);
		char why[256];

		if (!ag || ag->state == SUP_AG_FAILED || ag->state == SUP_AG_STOPPED || d->shutting_down) {
			r->i++;
			r->restarting = false;
			continue;
		}
		if (!r->restarting) {
			if (!r->deadline) {
				sup_tasks_drain(d->tasks, ag);
				r->deadline = now + ag->conf->stop_timeout_ns + ag->conf->start_timeout_ns +
					      ag->d->conf->tiers[ag->tier - 1].processing_timeout_ns;
			}
			if (sup_tasks_inflight(ag) && now < r->deadline)
				break;
			r->old_inc = ag->incarnations;
			r->restarting = true;
			sup_agent_event(ag, SUP_EV_RESTART);
			break;
		}
		if (ag->state == SUP_AG_READY && ag->incarnations > r->old_inc) {
			sup_tasks_undrain(d->tasks, ag);
			json_array_append_new(r->done, json_string(ag->name));
			r->i++;
			r->restarting = false;
			r->deadline = 0;
			continue;
		}
		if (now >= r->deadline) {
			sup_tasks_undrain(d->tasks, ag);
			snprintf(why, sizeof(why), "rolling restart stopped: agent %s not ready again in time "
				 "(state %s)", ag->name, sup_agent_state_name(ag->state));
			rolling_end(r, why);
			return;
		}
		break;
	}
	if (r->i >= r->n) {
		rolling_end(r, NULL);
		return;
	}
	sup_timer_arm(l, t, now + ROLL_POLL_NS);
}

static void cmd_rolling_restart(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_agent **v;
	struct rolling *r;
	int n = resolve_target(d, c, id, args, &v);

	if (n < 0)
		return;
	r = calloc(1, sizeof(*r));
	if (r)
		r->names = calloc((size_t)n + 1, sizeof(*r->names));
	if (!r || !r->names) {
		free(r);
		free(v);
		sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
		return;
	}
	r->d = d;
	r->c = c;
	r->id = id;
	r->done = json_array();
	for (int i = 0; i < n; i++)
		r->names[r->n++] = strdup(v[i]->name);
	free(v);
	sup_ctl_client_hold(c);
	sup_timer_init(&r->timer, rolling_step, r);
	sup_timer_arm(d->loop, &r->timer, sup_loop_now(d->loop));
}

static uint64_t task_arg(struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *t = json_object_get(args, "task");

	if (!json_is_integer(t) || json_integer_value(t) <= 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'task' must be a task id (a positive integer)");
		return 0;
	}
	return (uint64_t)json_integer_value(t);
}

static void cmd_result(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	uint64_t t = task_arg(c, id, args);
	json_t *r;

	if (!t)
		return;
	r = sup_tasks_lookup_json(d->tasks, t);
	if (!r) {
		sup_ctl_reply_err(c, id, ENOENT, "no task %llu (unknown, or its result expired)",
				  (unsigned long long)t);
		return;
	}
	sup_ctl_reply_ok(c, id, r);
}

static void cmd_cancel(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	uint64_t t = task_arg(c, id, args);

	if (!t)
		return;
	if (sup_tasks_cancel(d->tasks, t) < 0) {
		sup_ctl_reply_err(c, id, ENOENT, "task %llu is not pending (unknown or finished)",
				  (unsigned long long)t);
		return;
	}
	sup_ctl_reply_ok(c, id, json_pack("{s:I}", "task", (json_int_t)t));
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

static uint64_t run_arg(struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *r = json_object_get(args, "run");

	if (!json_is_integer(r) || json_integer_value(r) <= 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'run' must be a run id (a positive integer)");
		return 0;
	}
	return (uint64_t)json_integer_value(r);
}

static void cmd_run(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_run_opts o = { .stagger_ns = -1 };
	json_t *bs = json_object_get(args, "batch_size"), *st = json_object_get(args, "stagger_ms");
	json_t *to = json_object_get(args, "timeout_ms");
	bool detach = json_is_true(json_object_get(args, "detach"));
	char err[256];
	void *payload;
	size_t len;
	int64_t run, batch;

	o.type = json_string_value(json_object_get(args, "type"));
	if (!o.type) {
		sup_ctl_reply_err(c, id, EINVAL, "missing 'type': the task type of the run");
		return;
	}
	if (sup_ctl_arg_int(bs, 1, 1024, 0, &batch) < 0 ||
	    sup_ctl_arg_ms(st, 0, false, CMD_STAGGER_MS_MAX, -1, &o.stagger_ns) < 0 ||
	    sup_ctl_arg_ms(to, 0, true, SUP_CTL_TIMEOUT_MS_MAX, 0, &o.timeout_ns) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "batch_size must be 1..1024, stagger_ms 0..%.0f "
				  "(1 hour), timeout_ms above 0 and at most %.0f (7 days)",
				  CMD_STAGGER_MS_MAX, SUP_CTL_TIMEOUT_MS_MAX);
		return;
	}
	o.batch_size = (int)batch;
	if (sup_json_get_payload(args, &payload, &len, err, sizeof(err)) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "%s", err);
		return;
	}
	o.payload = payload;
	o.len = len;
	if (!detach) {
		o.client = c;
		o.req_id = id;
	}
	run = sup_wf_start(d->wf, &o, err, sizeof(err));
	free(payload);
	if (run < 0)
		sup_ctl_reply_err(c, id, (int)-run, "%s", err);
	else if (detach)
		sup_ctl_reply_ok(c, id, json_pack("{s:I}", "run", (json_int_t)run));
}

static void cmd_trace(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	uint64_t run = run_arg(c, id, args);
	json_t *t;

	if (!run)
		return;
	t = sup_wf_trace(d->wf, run);
	if (!t) {
		sup_ctl_reply_err(c, id, ENOENT, "no run %llu (unknown, or older than the last %d runs)",
				  (unsigned long long)run, SUP_WF_HISTORY);
		return;
	}
	sup_ctl_reply_ok(c, id, t);
}

static void cmd_runs(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *r = json_object_get(args, "run");

	if (r) {
		uint64_t run = run_arg(c, id, args);
		json_t *agg;

		if (!run)
			return;
		agg = sup_wf_aggregate(d->wf, run);
		if (!agg) {
			sup_ctl_reply_err(c, id, ENOENT, "run %llu is unknown or still running",
					  (unsigned long long)run);
			return;
		}
		sup_ctl_reply_ok(c, id, agg);
		return;
	}
	sup_ctl_reply_ok(c, id, json_pack("{s:o, s:i, s:f}", "runs", sup_wf_list(d->wf),
					  "batch_size", sup_wf_batch_size(d->wf),
					  "stagger_ms", (double)sup_wf_stagger(d->wf) * 1e-6));
}

/* ---- measure and adapt ------------------------------------------------------- */

static void cmd_top(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	(void)args;
	sup_ctl_reply_ok(c, id, sup_monitor_json(d->monitor));
}

static void cmd_history(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	int tier = sup_ctl_arg_tier(json_object_get(args, "tier"), 0);
	int64_t n;

	if (tier < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'tier' must be 0 (machine) or 1..4");
		return;
	}
	if (sup_ctl_arg_int(json_object_get(args, "n"), 1, SUP_MON_HISTORY, 60, &n) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'n' must be 1..%d (the points kept)", SUP_MON_HISTORY);
		return;
	}
	sup_ctl_reply_ok(c, id, json_pack("{s:i, s:o}", "tier", tier, "points",
		sup_monitor_history_json(d->monitor, tier, (unsigned)n)));
}

static void cmd_limits(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	sup_ctl_reply_ok(c, id, sup_allocator_json(d->alloc, json_is_true(json_object_get(args, "explain"))));
}

/* "30%" of the machine, "1.5" cores; "2G" bytes; "off" clears a pin. */
static int pin_value(json_t *v, bool cpu, double cores, double *ret)
{
	const char *s = json_string_value(v);
	char *end;
	double x;

	if (!v) {
		*ret = -2;  /* not given: keep */
		return 0;
	}
	if (json_is_number(v)) {
		*ret = json_number_value(v);
		return *ret >= 0 ? 0 : -EINVAL;
	}
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "off") || !strcmp(s, "none")) {
		*ret = -1;
		return 0;
	}
	if (cpu) {
		x = strtod(s, &end);
		if (end == s || x < 0)
			return -EINVAL;
		if (*end == '%' && !end[1])
			x = x / 100.0 * cores;
		else if (*end)
			return -EINVAL;
		*ret = x;
		return 0;
	}
	{
		uint64_t bytes;

		if (sup_parse_size(s, &bytes) < 0)
			return -EINVAL;
		*ret = (double)bytes;
	}
	return 0;
}

static void cmd_limit(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *jt = json_object_get(args, "tier");
	double cores = sup_monitor_machine(d->monitor)->cpus, cpu, mem;
	int tier = sup_ctl_arg_tier(jt, -1);

	if (tier < 1) {
		sup_ctl_reply_err(c, id, EINVAL, "'tier' must be 1..4");
		return;
	}
	if (pin_value(json_object_get(args, "cpu"), true, cores, &cpu) < 0 ||
	    pin_value(json_object_get(args, "memory"), false, 0, &mem) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "cpu takes a percent of the machine (\"30%%\") or cores "
				  "(\"1.5\"); memory takes a size (\"2G\"); \"off\" removes a pin");
		return;
	}
	if (cpu > cores * 64) {
		sup_ctl_reply_err(c, id, ERANGE, "cpu %.2f cores is more than this machine has", cpu);
		return;
	}
	sup_allocator_pin(d->alloc, tier, cpu, mem);
	sup_daemon_event(d, SUP_LOG_NOTICE, "pin", json_pack("{s:i, s:f, s:f}", "tier", tier,
			 "cpu_cores", cpu, "memory_bytes", mem),
			 "operator pin on tier %d: cpu %s, memory %s", tier,
			 cpu == -1 ? "unpinned" : cpu == -2 ? "unchanged" : "pinned",
			 mem == -1 ? "unpinned" : mem == -2 ? "unchanged" : "pinned");
	sup_ctl_reply_ok(c, id, sup_allocator_json(d->alloc, true));
}

static void cmd_analyze(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	(void)args;
	sup_ctl_reply_ok(c, id, sup_optimiser_analyze(d->opt));
}

static int onoff(struct sup_ctl_client *c, uint64_t id, json_t *args, bool *ret)
{
	const char *v = json_string_value(json_object_get(args, "state"));

	if (v && (!strcmp(v, "on") || !strcmp(v, "off"))) {
		*ret = !strcmp(v, "on");
		return 0;
	}
	sup_ctl_reply_err(c, id, EINVAL, "'state' must be \"on\" or \"off\"");
	return -EINVAL;
}

static void cmd_optimiser(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	bool on;

	if (onoff(c, id, args, &on) < 0)
		return;
	sup_optimiser_enable(d->opt, on);
	sup_daemon_event(d, SUP_LOG_NOTICE, "optimiser", json_pack("{s:b}", "enabled", on),
			 "optimiser switched %s by an operator", on ? "on" : "off");
	sup_ctl_reply_ok(c, id, json_pack("{s:b}", "optimiser", on));
}

static void cmd_allocator(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	bool on;

	if (onoff(c, id, args, &on) < 0)
		return;
	sup_allocator_enable(d->alloc, on);
	sup_daemon_event(d, SUP_LOG_NOTICE, "allocator", json_pack("{s:b}", "enabled", on),
			 "allocator switched %s by an operator (knobs left as they are)", on ? "on" : "off");
	sup_ctl_reply_ok(c, id, json_pack("{s:b}", "allocator", on));
}

static const struct cmd commands[] = {
	{ "top", cmd_top },
	{ "history", cmd_history },
	{ "limits", cmd_limits },
	{ "limit", cmd_limit },
	{ "analyze", cmd_analyze },
	{ "optimiser", cmd_optimiser },
	{ "allocator", cmd_allocator },
	{ "bench-dispatch", sup_cmd_bench_dispatch },
	{ "run", cmd_run },
	{ "trace", cmd_trace },
	{ "runs", cmd_runs },
	{ "status", cmd_status },
	{ "agents", cmd_agents },
	{ "start", cmd_start },
	{ "stop", cmd_stop },
	{ "restart", cmd_restart },
	{ "drain", cmd_drain },
	{ "rolling-restart", cmd_rolling_restart },
	{ "undrain", cmd_undrain },
	{ "reload", cmd_reload },
	{ "shutdown", cmd_shutdown },
	{ "submit", cmd_submit },
	{ "result", cmd_result },
	{ "cancel", cmd_cancel },
	{ "events", cmd_events },
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

void sup_cmd_client_gone(struct sup_daemon *d, struct sup_ctl_client *c)
{
	(void)d;
	(void)c;
}

/* ---- reload ----------------------------------------------------------------- */

static void keep_old_conf(struct sup_daemon *d, struct sup_config *old)
{
	struct sup_config **v = realloc(d->old_confs, (d->nold_confs + 1) * sizeof(*v));

	if (!v) {
		/* Leak rather than free what running agents still point into. */
		return;
	}
	v[d->nold_confs++] = old;
	d->old_confs = v;
	/* Most reloads leave nothing pointing into the old file. */
	sup_daemon_free_old_confs(d);
}

void sup_daemon_reload(struct sup_daemon *d, struct sup_ctl_client *client, uint64_t id)
{
	struct sup_config_errors errs = { 0 };
	struct sup_config *nc = sup_config_load(d->config_path, &errs), *old = d->conf;
	json_t *added = json_array(), *removed = json_array(), *restarted = json_array();
	json_t *updated = json_array(), *notes = json_array();
	int unchanged = 0;

	if (!nc) {
		json_t *msgs = json_array();

		for (size_t i = 0; i < errs.n; i++) {
			json_array_append_new(msgs, json_string(errs.v[i].msg));
			sup_log(&d->log, SUP_LOG_ERR, "reload: %s", errs.v[i].msg);
		}
		sup_log(&d->log, SUP_LOG_ERR, "reload refused: %s; the running configuration stays",
			errs.n ? "the new file has errors" : strerror(errno));
		if (client)
			sup_ctl_reply_err(client, id, EINVAL, "reload refused, running configuration kept: %s",
					  errs.n ? errs.v[0].msg : strerror(errno));
		json_decref(msgs);
		json_decref(added);
		json_decref(removed);
		json_decref(restarted);
		json_decref(updated);
		json_decref(notes);
		sup_config_errors_clear(&errs);
		return;
	}
	sup_config_errors_clear(&errs);
	if (strcmp(nc->sup.cgroup_root, old->sup.cgroup_root))
		json_array_append_new(notes, json_string("cgroup_root changed: takes effect at the next start"));
	if (strcmp(nc->sup.control_socket, old->sup.control_socket))
		json_array_append_new(notes, json_string("control_socket changed: takes effect at the next start"));
	if (!nc->sup.control_group != !old->sup.control_group ||
	    (nc->sup.control_group && nc->sup.control_gid != old->sup.control_gid) ||
	    !nc->sup.admin_group != !old->sup.admin_group ||
	    (nc->sup.admin_group && nc->sup.admin_gid != old->sup.admin_gid) ||
	    nc->sup.control_idle_timeout_ns != old->sup.control_idle_timeout_ns ||
	    nc->sup.control_max_per_uid != old->sup.control_max_per_uid)
		json_array_append_new(notes, json_string("control socket roles and bounds changed: take "
							 "effect at the next start"));
	if (!nc->sup.metrics_address != !old->sup.metrics_address ||
	    (nc->sup.metrics_address && strcmp(nc->sup.metrics_address, old->sup.metrics_address)))
		json_array_append_new(notes, json_string("metrics_address changed: takes effect at the next start"));
	d->conf = nc;
	d->log.level = nc->sup.log_level;
	/* Agents gone from the file, or changed: stop (and remove) them. */
	for (size_t i = 0; i < d->nagents; i++) {
		struct sup_agent *ag = d->agents[i];
		const struct sup_agent_conf *na = sup_config_agent(nc, ag->name);

		if (ag->remove_when_stopped)
			continue;
		if (!na) {
			ag->remove_when_stopped = true;
			sup_agent_event(ag, SUP_EV_STOP);
			json_array_append_new(removed, json_string(ag->name));
		} else if (sup_agent_conf_equal(ag->conf, na)) {
			ag->conf = na;
			unchanged++;
		} else if (na->tier != (unsigned)ag->tier) {
			/* A new tier is a new leaf: remove, then add again. */
			ag->remove_when_stopped = true;
			ag->replacement = na;
			sup_agent_event(ag, SUP_EV_STOP);
			json_array_append_new(restarted, json_string(ag->name));
		} else if (sup_agent_conf_diff(ag->conf, na) & SUP_AGENT_DIFF_PROCESS) {
			ag->conf = na;
			if (sup_agent_running(ag))
				sup_agent_event(ag, SUP_EV_RESTART);
			json_array_append_new(restarted, json_string(ag->name));
		} else {
			ag->conf = na;
			json_array_append_new(updated, json_string(ag->name));
		}
	}
	for (size_t i = 0; i < nc->n_agents; i++)
		if (!sup_daemon_find_agent(d, nc->agents[i].name)) {
			sup_daemon_add_agent(d, &nc->agents[i], true);
			json_array_append_new(added, json_string(nc->agents[i].name));
		}
	keep_old_conf(d, old);
	sup_allocator_apply_static(d->alloc);
	sup_daemon_event(d, SUP_LOG_NOTICE, "reload",
			 json_pack("{s:O, s:O, s:O, s:O, s:i}", "added", added, "removed", removed,
				   "restarted", restarted, "updated", updated, "unchanged", unchanged),
			 "reloaded %s: %zu added, %zu removed, %zu restarted, %zu updated in place, %d unchanged",
			 d->config_path, json_array_size(added), json_array_size(removed),
			 json_array_size(restarted), json_array_size(updated), unchanged);
	if (client)
		sup_ctl_reply_ok(client, id, json_pack("{s:o, s:o, s:o, s:o, s:i, s:o}", "added", added,
						       "removed", removed, "restarted", restarted,
						       "updated", updated, "unchanged", unchanged,
						       "notes", notes));
	else {
		json_decref(added);
		json_decref(removed);
		json_decref(restarted);
		json_decref(updated);
		json_decref(notes);
	}
}
