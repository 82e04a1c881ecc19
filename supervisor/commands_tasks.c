/* SPDX-License-Identifier: MIT */
/*
 * Control commands a client waits on: submit, result, cancel, run, trace,
 * runs, rolling-restart. A task or a run ends through its done callback;
 * the one installed here replies to the client that waits (a "waiter"),
 * or, when that client left, lets tierd keep the result to be fetched by
 * id (docs/control.md, "detach").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "commands.h"
#include "commands_internal.h"
#include "daemon_internal.h"
#include "config/config.h"
#include "ctl.h"
#include "ctl_args.h"
#include "daemon.h"
#include "common/payload.h"
#include "tasks.h"
#include "wal/wal.h"
#include "workflow.h"

/* ---- waiters: a client waiting for one task's or run's end ------------- */

struct sup_cmd_waiter {
	struct sup_daemon     *d;
	struct sup_ctl_client *c;      /* held; NULL once it left */
	uint64_t               id;     /* its request */
	uint64_t               task, run; /* what it waits for, once known */
	struct sup_cmd_waiter *prev, *next;
};

static struct sup_cmd_waiter *waiter_new(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id)
{
	struct sup_cmd_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->d = d;
	w->c = c;
	w->id = id;
	sup_ctl_client_hold(c);
	w->next = d->waiters;
	if (w->next)
		w->next->prev = w;
	d->waiters = w;
	return w;
}

static void waiter_free(struct sup_cmd_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		w->d->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	if (w->c)
		sup_ctl_client_release(w->c);
	free(w);
}

/* A client that closed does not keep its memory alive while its tasks run. */
void sup_cmd_client_gone(struct sup_daemon *d, struct sup_ctl_client *c)
{
	sup_daemon_fleet_client_gone(d, c);
	for (struct sup_cmd_waiter *w = d->waiters; w; w = w->next)
		if (w->c == c) {
			sup_ctl_client_release(c);
			w->c = NULL;
		}
}

/* A live upgrade is about to close every connection: each client that
 * waits is told what to wait for after it reconnects (tierctl does so on
 * its own). */
void sup_cmd_upgrade_notify(struct sup_daemon *d)
{
	for (struct sup_cmd_waiter *w = d->waiters; w; w = w->next) {
		const char *what = w->task ? "task" : "run";
		uint64_t n = w->task ? w->task : w->run;
		char msg[160];

		if (!w->c || !sup_ctl_client_connected(w->c) || !n)
			continue;
		snprintf(msg, sizeof(msg), "tierd is being upgraded: reconnect and wait for %s %llu",
			 what, (unsigned long long)n);
		sup_ctl_send(w->c, json_pack("{s:I, s:b, s:s, s:s, s:b, s:I}", "id", (json_int_t)w->id,
					     "ok", 0, "error", msg, "code", "EAGAIN", "reconnect", 1,
					     what, (json_int_t)n));
		sup_ctl_client_release(w->c);
		w->c = NULL;
	}
}

void sup_cmd_fini(struct sup_daemon *d)
{
	while (d->waiters)
		waiter_free(d->waiters);
}

/* true: nobody got the result, keep it to be fetched by id. */
static bool task_done_reply(struct sup_tasks *ts, struct sup_task *t, void *arg)
{
	struct sup_cmd_waiter *w = arg;
	bool keep = !w->c || !sup_ctl_client_connected(w->c);

	(void)ts;
	if (!keep)
		sup_ctl_reply_ok(w->c, w->id, sup_task_json(t));
	waiter_free(w);
	return keep;
}

static void run_done_reply(struct sup_wf *wf, struct sup_run *run, json_t *aggregate, void *arg)
{
	struct sup_cmd_waiter *w = arg;

	(void)wf;
	(void)run;
	if (w->c && sup_ctl_client_connected(w->c))
		sup_ctl_reply_ok(w->c, w->id, json_incref(aggregate));
	waiter_free(w);
}

/* ---- tasks ----------------------------------------------------------------- */

/* A detached submission is answered once the task is safe (its journal
 * record durable): arg is the client, held until then; tag its request. */
static void detach_acked(struct sup_tasks *ts, uint64_t tid, int err, void *arg, uint64_t tag)
{
	struct sup_ctl_client *c = arg;

	(void)ts;
	if (sup_ctl_client_connected(c)) {
		if (err < 0)
			sup_ctl_reply_err(c, tag, -err, "task %llu was accepted but the task journal "
					  "could not make it durable (%s): it may not survive a crash",
					  (unsigned long long)tid, strerror(-err));
		else
			sup_ctl_reply_ok(c, tag, json_pack("{s:I}", "task", (json_int_t)tid));
	}
	sup_ctl_client_release(c);
}

/* "ack": the id first, so a client that goes away can fetch the result;
 * always before the final reply (the task's done callback). */
static void partial_acked(struct sup_tasks *ts, uint64_t tid, int err, void *arg, uint64_t tag)
{
	struct sup_cmd_waiter *w = arg;

	(void)ts;
	(void)tag;
	if (err >= 0 && w->c && sup_ctl_client_connected(w->c))
		sup_ctl_reply_more(w->c, w->id, json_pack("{s:I, s:s}", "task", (json_int_t)tid,
							  "state", "accepted"));
}

void sup_cmd_submit(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
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
	spec.journal = true;
	if (!detach) {
		spec.done = task_done_reply;
		spec.done_arg = waiter_new(d, c, id);
		if (!spec.done_arg) {
			free(payload);
			sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
			return;
		}
		if (ack) {
			spec.ack = partial_acked;
			spec.ack_arg = spec.done_arg;
		}
	} else {
		spec.ack = detach_acked;
		spec.ack_arg = c;
		spec.ack_tag = id;
		sup_ctl_client_hold(c);
	}
	tid = sup_tasks_submit(d->tasks, &spec, err, sizeof(err));
	free(payload);
	if (tid < 0) {
		/* Refused before it was a task: no done or ack callback will come. */
		if (spec.done_arg)
			waiter_free(spec.done_arg);
		if (detach)
			sup_ctl_client_release(c);
		sup_ctl_reply_err(c, id, (int)-tid, "%s", err);
	}
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

void sup_cmd_rolling_restart(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_agent **v;
	struct rolling *r;
	int n = sup_cmd_resolve_target(d, c, id, args, &v);

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

void sup_cmd_result(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	uint64_t t = task_arg(c, id, args);
	json_t *r;

	if (!t)
		return;
	if (json_is_true(json_object_get(args, "wait")) && sup_tasks_is_pending(d->tasks, t)) {
		struct sup_cmd_waiter *w = waiter_new(d, c, id);
		int e;

		if (!w) {
			sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
			return;
		}
		w->task = t;
		e = sup_tasks_rebind(d->tasks, t, task_done_reply, w);
		if (e < 0) {
			waiter_free(w);
			sup_ctl_reply_err(c, id, -e, "task %llu %s", (unsigned long long)t,
					  e == -EBUSY ? "already has a client waiting for it" : "is not pending");
		}
		return;
	}
	r = sup_tasks_lookup_json(d->tasks, t);
	if (!r) {
		sup_ctl_reply_err(c, id, ENOENT, "no task %llu (unknown, or its result expired)",
				  (unsigned long long)t);
		return;
	}
	sup_ctl_reply_ok(c, id, r);
}

/* A reply sent once everything journaled so far is durable (a cancel's
 * end, a run's start): rare commands, so a malloc each. */
struct durable_reply {
	struct sup_wal_waiter  wt;     /* first: the callback's pointer is ours */
	struct sup_ctl_client *c;
	uint64_t               id;
	json_t                *res;
};

static void reply_durable(struct sup_wal_waiter *wt, int err)
{
	struct durable_reply *r = (struct durable_reply *)wt;

	if (!sup_ctl_client_connected(r->c))
		json_decref(r->res);
	else if (err < 0) {
		json_decref(r->res);
		sup_ctl_reply_err(r->c, r->id, -err, "done, but the task journal could not make it "
				  "durable (%s): it may not survive a crash", strerror(-err));
	} else
		sup_ctl_reply_ok(r->c, r->id, r->res);
	sup_ctl_client_release(r->c);
	free(r);
}

static void reply_when_durable(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id,
			       json_t *res)
{
	struct durable_reply *r = d->wal ? calloc(1, sizeof(*r)) : NULL;

	if (!r) {
		sup_ctl_reply_ok(c, id, res);
		return;
	}
	r->c = c;
	r->id = id;
	r->res = res;
	sup_ctl_client_hold(c);
	sup_wal_barrier(d->wal, &r->wt, reply_durable);
}

/* Answered once the task's end is durable: by then its result reads
 * "cancelled", and a crash cannot bring it back. */
void sup_cmd_cancel(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	uint64_t t = task_arg(c, id, args);

	if (!t)
		return;
	if (sup_tasks_cancel(d->tasks, t) < 0) {
		sup_ctl_reply_err(c, id, ENOENT, "task %llu is not pending (unknown or finished)",
				  (unsigned long long)t);
		return;
	}
	reply_when_durable(d, c, id, json_pack("{s:I}", "task", (json_int_t)t));
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

void sup_cmd_run(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	struct sup_run_opts o = { .stagger_ns = -1 };
	json_t *bs = json_object_get(args, "batch_size"), *st = json_object_get(args, "stagger_ms");
	json_t *to = json_object_get(args, "timeout_ms");
	bool detach = json_is_true(json_object_get(args, "detach"));
	bool ack = json_is_true(json_object_get(args, "ack"));
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
		o.done = run_done_reply;
		o.done_arg = waiter_new(d, c, id);
		if (!o.done_arg) {
			free(payload);
			sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
			return;
		}
	}
	run = sup_wf_start(d->wf, &o, err, sizeof(err));
	free(payload);
	if (run < 0) {
		if (o.done_arg)
			waiter_free(o.done_arg);
		sup_ctl_reply_err(c, id, (int)-run, "%s", err);
	} else if (detach) {
		/* Its RUN_START durable first, like a task's SUBMIT. */
		reply_when_durable(d, c, id, json_pack("{s:I}", "run", (json_int_t)run));
	} else if (sup_wf_running(d->wf, (uint64_t)run)) {
		((struct sup_cmd_waiter *)o.done_arg)->run = (uint64_t)run;
		/* The id first, so a client that is cut off can wait again. */
		if (ack)
			sup_ctl_reply_more(c, id, json_pack("{s:I, s:s}", "run", (json_int_t)run,
							    "state", "started"));
	}
}

void sup_cmd_trace(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
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

void sup_cmd_runs(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *r = json_object_get(args, "run");

	if (r) {
		uint64_t run = run_arg(c, id, args);
		json_t *agg;

		if (!run)
			return;
		if (json_is_true(json_object_get(args, "wait")) && sup_wf_running(d->wf, run)) {
			struct sup_cmd_waiter *w = waiter_new(d, c, id);
			int e;

			if (!w) {
				sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
				return;
			}
			w->run = run;
			e = sup_wf_rebind(d->wf, run, run_done_reply, w);
			if (e < 0) {
				waiter_free(w);
				sup_ctl_reply_err(c, id, -e, "run %llu %s", (unsigned long long)run,
						  e == -EBUSY ? "already has a client waiting for it" :
						  "is not running");
			}
			return;
		}
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

