/* SPDX-License-Identifier: MIT */
/* The full-team workflow: see workflow.h. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "common/b64.h"
#include "ctl.h"
#include "daemon.h"
#include "events.h"
#include "taskjson.h"
#include "monitor.h"
#include "tasks.h"
#include "workflow.h"

#define STAGE_DONE 5
/* Room kept for the truncation marker after the context's bound. */
#define CTX_MARKER_MAX 96

struct rec {
	struct sup_run       *run;
	char                  agent[64];
	int                   tier;
	int                   batch;       /* tier 3: batch number from 0; else -1 */
	int                   status;      /* -1 while pending */
	double                quality;
	uint64_t              task;
	struct sup_task_times t;
	char                 *result;      /* the first SUP_WF_LINE_MAX bytes */
	size_t                result_len;
	size_t                full_len;
};

struct sup_run {
	struct sup_wf    *wf;
	uint64_t          id;
	char             *type;
	void             *payload;
	size_t            len;
	int               stage;
	int               batch_size;
	int64_t           stagger_ns;
	int64_t           timeout_ns;      /* 0: per tier */
	struct rec      **recs;
	size_t            nrecs, cap;
	size_t            stage_first;     /* first record of the current stage */
	unsigned          pending;
	bool              launching;
	/* tier 3 */
	char            **t3;              /* agent names, in order */
	size_t            n_t3, next_t3;
	int               batch_no;
	int64_t           batch_done_ns;
	int64_t           stagger_total_ns;
	struct sup_timer  stagger_timer;
	/* context passed forward */
	char             *ctx;
	size_t            ctx_len;
	bool              ctx_truncated;
	size_t            ctx_dropped;
	size_t            ctx_max;         /* what fits every ring with the payload */
	int64_t           start_ns, end_ns;
	unsigned          cores;
	uint64_t          cpu0;            /* the agents' CPU time at the start (ns) */
	double            cpu_ms;          /* … used during the run */
	struct sup_ctl_client *client;
	uint64_t          req_id;
	sup_run_done_fn   done;
	void             *done_arg;
	json_t           *aggregate;
	struct sup_wf_run_stats stats;
	struct sup_run   *next;            /* history, oldest first */
};

struct sup_wf {
	struct sup_daemon *d;
	uint64_t           next_id;
	struct sup_run    *runs, *last;    /* running and kept, oldest first */
	size_t             nruns;
	int                batch_size;
	int64_t            stagger_ns;
};

static void advance(struct sup_run *run);

/* ---- context ------------------------------------------------------------ */

static void ctx_append(struct sup_run *run, const char *s, size_t n)
{
	size_t room = run->ctx_max - run->ctx_len;

	if (run->ctx_truncated || n > room) {
		run->ctx_truncated = true;
		run->ctx_dropped += n > room ? n - room : n;
		n = run->ctx_truncated && !room ? 0 : (n > room ? room : n);
		if (!n)
			return;
	}
	memcpy(run->ctx + run->ctx_len, s, n);
	run->ctx_len += n;
}

/* One line per result of the stage just finished. */
static void ctx_add_stage(struct sup_run *run)
{
	char line[SUP_WF_LINE_MAX + 256];

	for (size_t i = run->stage_first; i < run->nrecs; i++) {
		struct rec *r = run->recs[i];
		int n = snprintf(line, sizeof(line), "tier%d %s %s", r->tier, r->agent,
				 sup_task_status_name(r->status));

		if (r->quality >= 0)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " q=%.2f", r->quality);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": ");
		if (r->result && !sup_utf8_valid(r->result, r->result_len))
			n += snprintf(line + n, sizeof(line) - (size_t)n, "(binary, %zu bytes)", r->full_len);
		else
			for (size_t k = 0; k < r->result_len && (size_t)n < sizeof(line) - 64; k++)
				line[n++] = r->result[k] == '\n' ? ' ' : r->result[k];
		if (r->full_len > r->result_len)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " [cut: %zu of %zu bytes]",
				      r->result_len, r->full_len);
		line[n++] = '\n';
		ctx_append(run, line, (size_t)n);
	}
}

/* The marker a reader sees when the context was cut. */
static size_t ctx_view(struct sup_run *run, char **ret)
{
	static const char fmt[] = "[context truncated: %zu bytes dropped]\n";
	char marker[CTX_MARKER_MAX];
	int n;

	*ret = run->ctx;
	if (!run->ctx_truncated)
		return run->ctx_len;
	n = snprintf(marker, sizeof(marker), fmt, run->ctx_dropped);
	/* Kept inside the bound: the marker replaces the context's tail. */
	if (run->ctx_len + (size_t)n > run->ctx_max + CTX_MARKER_MAX)
		run->ctx_len = run->ctx_max + CTX_MARKER_MAX - (size_t)n;
	memcpy(run->ctx + run->ctx_len, marker, (size_t)n);
	return run->ctx_len + (size_t)n;
}

/* ---- launching tasks ---------------------------------------------------- */

static void rec_done(struct sup_tasks *ts, struct sup_task *t, void *arg)
{
	struct rec *r = arg;
	struct sup_run *run = r->run;
	struct sup_task_info i;

	(void)ts;
	sup_task_info(t, &i);
	r->status = i.status;
	r->quality = i.quality;
	r->t = i.t;
	r->full_len = i.result_len ? i.result_len : (i.error ? strlen(i.error) : 0);
	{
		const char *src = i.result_len ? i.result : i.error;
		size_t n = r->full_len < SUP_WF_LINE_MAX ? r->full_len : SUP_WF_LINE_MAX;

		r->result = malloc(n + 1);
		if (r->result) {
			if (n)
				memcpy(r->result, src, n);
			r->result[n] = 0;
			r->result_len = n;
		}
	}
	run->pending--;
	if (!run->pending && !run->launching)
		advance(run);
}

static int add_rec(struct sup_run *run, const char *agent, int tier, int batch)
{
	struct rec *r;

	if (run->nrecs == run->cap) {
		size_t cap = run->cap ? run->cap * 2 : 32;
		struct rec **v = realloc(run->recs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		run->recs = v;
		run->cap = cap;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->run = run;
	snprintf(r->agent, sizeof(r->agent), "%s", agent);
	r->tier = tier;
	r->batch = batch;
	r->status = -1;
	r->quality = -1;
	run->recs[run->nrecs++] = r;
	return 0;
}

/* Submit one task per named agent; returns how many were launched. */
static unsigned launch(struct sup_run *run, char **agents, size_t n, int tier, int batch)
{
	struct sup_daemon *d = run->wf->d;
	const struct sup_tier_conf *tc = &d->conf->tiers[tier - 1];
	size_t first = run->nrecs;
	char *ctx;
	size_t ctx_len = ctx_view(run, &ctx);

	run->launching = true;
	for (size_t i = 0; i < n; i++) {
		if (add_rec(run, agents[i], tier, batch) < 0)
			break;
		run->pending++;
	}
	for (size_t i = first; i < run->nrecs; i++) {
		struct rec *r = run->recs[i];
		struct sup_task_spec spec = {
			.agent = r->agent,
			.type = run->type,
			.type_len = strlen(run->type),
			.payload = run->payload,
			.len = run->len,
			.context = ctx,
			.context_len = ctx_len,
			.timeout_ns = run->timeout_ns ? run->timeout_ns : tc->processing_timeout_ns,
			.flags = run->ctx_truncated ? TIER_TASK_CONTEXT_TRUNCATED : 0,
			.done = rec_done,
			.done_arg = r,
			.group = run->id,
		};
		char err[256];
		int64_t id = sup_tasks_submit(d->tasks, &spec, err, sizeof(err));

		if (id < 0) {
			r->status = TIER_ST_REJECTED;
			r->result = strdup(err);
			r->result_len = r->full_len = r->result ? strlen(r->result) : 0;
			run->pending--;
		} else {
			r->task = (uint64_t)id;
		}
	}
	run->launching = false;
	return (unsigned)(run->nrecs - first);
}

/* Names of the agents of a tier (tier 4: those whose specialties include
 * the run's type), in configuration order. */
static size_t tier_agents(struct sup_run *run, int tier, char ***ret)
{
	struct sup_daemon *d = run->wf->d;
	char **v = calloc(d->nagents + 1, sizeof(*v));
	size_t n = 0;

	*ret = v;
	if (!v)
		return 0;
	for (size_t i = 0; i < d->nagents; i++) {
		struct sup_agent *ag = d->agents[i];
		bool match = tier != 4;

		if (ag->tier != tier || ag->remove_when_stopped)
			continue;
		for (size_t k = 0; !match && k < ag->conf->n_specialties; k++)
			match = !strcmp(ag->conf->specialties[k], run->type);
		if (match)
			v[n++] = ag->name;
	}
	return n;
}

static void stagger_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_run *run = t->data;

	(void)l;
	run->stagger_total_ns += run->stagger_ns;
	advance(run);
}

/* ---- aggregate ------------------------------------------------------------- */

static double ms_between(int64_t a, int64_t b)
{
	return a && b && b >= a ? (double)(b - a) * 1e-6 : 0;
}

static json_t *aggregate(struct sup_run *run)
{
	json_t *tiers = json_array(), *results = json_array(), *agg;
	double wall = ms_between(run->start_ns, run->end_ns);

	memset(&run->stats, 0, sizeof(run->stats));
	run->stats.run = run->id;
	for (int tier = 1; tier <= 4; tier++) {
		struct sup_wf_stage_stats *s = &run->stats.tier[tier];
		int64_t first = 0, last = 0;
		double qsum = 0, disp = 0, val = 0;
		unsigned qn = 0, n = 0, batches = 0;

		for (size_t i = 0; i < run->nrecs; i++) {
			struct rec *r = run->recs[i];

			if (r->tier != tier)
				continue;
			n++;
			if (r->batch + 1 > (int)batches)
				batches = (unsigned)(r->batch + 1);
			s->ok += r->status == TIER_ST_OK;
			s->timeouts += r->status == TIER_ST_TIMEOUT;
			s->errors += r->status != TIER_ST_OK && r->status != TIER_ST_TIMEOUT;
			if (r->quality >= 0) {
				qsum += r->quality;
				qn++;
			}
			if (r->t.queued && (!first || r->t.queued < first))
				first = r->t.queued;
			if (r->t.accepted > last)
				last = r->t.accepted;
			s->busy_ms += ms_between(r->t.started, r->t.finished);
			disp += ms_between(r->t.queued, r->t.dispatched);
			val += ms_between(r->t.finished, r->t.accepted);
		}
		s->tasks = n;
		s->wall_ms = ms_between(first, last);
		s->dispatch_ms = n ? disp / n : 0;
		s->validate_ms = n ? val / n : 0;
		if (tier == 3)
			s->stagger_ms = (double)run->stagger_total_ns * 1e-6;
		json_array_append_new(tiers, json_pack("{s:i, s:i, s:i, s:i, s:i, s:f, s:o, s:f, s:f, s:f, s:i}",
			"tier", tier, "tasks", (int)n, "ok", (int)s->ok, "timeouts", (int)s->timeouts,
			"errors", (int)s->errors, "response_ms", s->wall_ms,
			"mean_quality", qn ? json_real(qsum / qn) : json_null(),
			"busy_ms", s->busy_ms, "dispatch_ms", s->dispatch_ms,
			"validate_ms", s->validate_ms, "batches", (int)(tier == 3 ? batches : (n ? 1 : 0))));
	}
	for (size_t i = 0; i < run->nrecs; i++) {
		struct rec *r = run->recs[i];
		json_t *o = json_pack("{s:s, s:i, s:s, s:I, s:f}", "agent", r->agent, "tier", r->tier,
				      "status", sup_task_status_name(r->status), "task",
				      (json_int_t)r->task, "run_ms", ms_between(r->t.started, r->t.finished));

		json_object_set_new(o, "quality", r->quality >= 0 ? json_real(r->quality) : json_null());
		if (r->batch >= 0)
			json_object_set_new(o, "batch", json_integer(r->batch));
		if (r->result && sup_utf8_valid(r->result, r->result_len))
			json_object_set_new(o, r->status == TIER_ST_OK ? "result" : "error",
					    json_stringn(r->result, r->result_len));
		else if (r->result)
			json_object_set_new(o, r->status == TIER_ST_OK ? "result" : "error",
					    json_string("(binary, not shown)"));
		json_array_append_new(results, o);
	}
	run->stats.wall_ms = wall;
	/* Busy time is CPU time (from the accounting source): the tasks' own
	 * start-to-finish spans overlap when agents share a CPU, and summing
	 * them would count the same CPU twice. */
	run->stats.efficiency = wall > 0 && run->cores ? run->cpu_ms / (wall * run->cores) : 0;
	agg = json_pack("{s:I, s:s, s:f, s:f, s:i, s:f, s:b, s:I, s:o, s:o, s:i, s:f}",
			"run", (json_int_t)run->id, "type", run->type, "wall_ms", wall,
			"efficiency", run->stats.efficiency, "cores", (int)run->cores,
			"busy_ms", run->cpu_ms, "context_truncated", run->ctx_truncated,
			"context_bytes", (json_int_t)run->ctx_len, "tiers", tiers, "results", results,
			"batch_size", run->batch_size, "stagger_ms", (double)run->stagger_ns * 1e-6);
	return agg;
}

static void finish_run(struct sup_run *run)
{
	struct sup_daemon *d = run->wf->d;

	run->stage = STAGE_DONE;
	run->end_ns = sup_loop_now(d->loop);
	run->cpu_ms = (double)(sup_monitor_fleet_cpu_ns(d->monitor) - run->cpu0) * 1e-6;
	run->aggregate = aggregate(run);
	sup_daemon_event(d, SUP_LOG_INFO, "run_done",
			 json_pack("{s:I, s:s, s:f, s:f}", "run", (json_int_t)run->id, "type", run->type,
				   "wall_ms", run->stats.wall_ms, "efficiency", run->stats.efficiency),
			 "workflow run %llu (%s) done in %.1f ms, efficiency %.1f%%",
			 (unsigned long long)run->id, run->type, run->stats.wall_ms,
			 run->stats.efficiency * 100);
	if (run->done)
		run->done(run->wf, run, run->aggregate, run->done_arg);
	if (run->client) {
		if (sup_ctl_client_connected(run->client))
			sup_ctl_reply_ok(run->client, run->req_id, json_incref(run->aggregate));
		sup_ctl_client_release(run->client);
		run->client = NULL;
	}
	/* The payload is not needed any more; the records are, for traces. */
	free(run->payload);
	run->payload = NULL;
}

/* ---- the stage machine ----------------------------------------------------- */

static void advance(struct sup_run *run)
{
	struct sup_daemon *d = run->wf->d;

	for (;;) {
		char **names;
		size_t n;

		switch (run->stage) {
		case 1:
		case 2:
		case 4:
			n = tier_agents(run, run->stage, &names);
			run->stage_first = run->nrecs;
			if (n && launch(run, names, n, run->stage, -1) && run->pending) {
				free(names);
				run->stage = -run->stage; /* waiting for it */
				return;
			}
			free(names);
			ctx_add_stage(run);
			run->stage = run->stage == 4 ? STAGE_DONE : run->stage + 1;
			break;
		case -1:
		case -2:
		case -4:
			ctx_add_stage(run);
			run->stage = -run->stage == 4 ? STAGE_DONE : -run->stage + 1;
			break;
		case 3:
			if (!run->t3) {
				run->n_t3 = tier_agents(run, 3, &run->t3);
				run->stage_first = run->nrecs;
			}
			if (run->next_t3 >= run->n_t3) {
				ctx_add_stage(run);
				run->stage = 4;
				break;
			}
			if (run->batch_no > 0 && run->stagger_ns > 0 && !sup_timer_armed(&run->stagger_timer) &&
			    run->batch_done_ns) {
				/* The next batch starts `stagger` after this one finished. */
				sup_timer_arm(d->loop, &run->stagger_timer, run->batch_done_ns + run->stagger_ns);
				run->batch_done_ns = 0;
				return;
			}
			if (sup_timer_armed(&run->stagger_timer))
				return;
			n = run->n_t3 - run->next_t3 < (size_t)run->batch_size ?
			    run->n_t3 - run->next_t3 : (size_t)run->batch_size;
			/* The context for tier 3 holds tiers 1 and 2 only: keep the
			 * stage start so all batches' results join it afterwards. */
			{
				size_t keep = run->stage_first;

				launch(run, run->t3 + run->next_t3, n, 3, run->batch_no);
				run->stage_first = keep;
			}
			run->next_t3 += n;
			run->batch_no++;
			if (run->pending) {
				run->stage = -3;
				return;
			}
			run->batch_done_ns = sup_loop_now(d->loop);
			break;
		case -3:
			run->batch_done_ns = sup_loop_now(d->loop);
			run->stage = 3;
			break;
		case STAGE_DONE:
			finish_run(run);
			return;
		default:
			return;
		}
	}
}

/* ---- runs ------------------------------------------------------------------ */

static void run_free(struct sup_run *run)
{
	for (size_t i = 0; i < run->nrecs; i++) {
		free(run->recs[i]->result);
		free(run->recs[i]);
	}
	free(run->recs);
	free(run->t3);
	free(run->type);
	free(run->payload);
	free(run->ctx);
	json_decref(run->aggregate);
	if (run->client)
		sup_ctl_client_release(run->client);
	free(run);
}

/* Drop the oldest finished runs past the history bound. */
static void prune(struct sup_wf *wf)
{
	struct sup_run **pp = &wf->runs, *prev = NULL;

	while (*pp && wf->nruns > SUP_WF_HISTORY) {
		struct sup_run *r = *pp;

		if (r->stage != STAGE_DONE) {
			prev = r;
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (wf->last == r)
			wf->last = prev;
		wf->nruns--;
		run_free(r);
	}
}

/* The context may use what is left of the smallest agent ring's largest
 * record once headers, type and payload are in, up to SUP_WF_CONTEXT_MAX. */
static size_t context_bound(struct sup_daemon *d, size_t type_len, size_t len)
{
	size_t best = SUP_WF_CONTEXT_MAX;

	for (size_t i = 0; i < d->nagents; i++) {
		uint32_t ring = d->agents[i]->conf->ring_size;
		size_t rec = ring / 2 < SUP_RING_RECORD_MAX ? ring / 2 : SUP_RING_RECORD_MAX;
		size_t fixed = TIER_REC_HDR_SIZE + sizeof(struct tier_task_hdr) + type_len + len +
			       CTX_MARKER_MAX;

		if (fixed >= rec)
			return 0;
		if (rec - fixed < best)
			best = rec - fixed;
	}
	return best;
}

static unsigned usable_cores(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	return 1;
}

int64_t sup_wf_start(struct sup_wf *wf, const struct sup_run_opts *o, char *err, size_t errlen)
{
	struct sup_daemon *d = wf->d;
	struct sup_run *run;

	if (d->shutting_down) {
		snprintf(err, errlen, "tierd is shutting down");
		return -ECANCELED;
	}
	if (!o->type || !*o->type || strlen(o->type) > 255) {
		snprintf(err, errlen, "a run needs a task type of 1 to 255 bytes");
		return -EINVAL;
	}
	if (o->len > d->conf->sup.max_payload) {
		snprintf(err, errlen, "payload of %zu bytes exceeds max_payload (%u bytes)", o->len,
			 d->conf->sup.max_payload);
		return -EMSGSIZE;
	}
	if (o->batch_size < 0) {
		snprintf(err, errlen, "batch_size must be at least 1");
		return -EINVAL;
	}
	run = calloc(1, sizeof(*run));
	if (!run)
		goto nomem;
	run->wf = wf;
	run->id = ++wf->next_id;
	run->type = strdup(o->type);
	run->payload = malloc(o->len ? o->len : 1);
	run->ctx = malloc(SUP_WF_CONTEXT_MAX + CTX_MARKER_MAX + 1);
	if (!run->type || !run->payload || !run->ctx) {
		run_free(run);
		goto nomem;
	}
	if (o->len)
		memcpy(run->payload, o->payload, o->len);
	run->len = o->len;
	run->ctx_max = context_bound(d, strlen(o->type), o->len);
	run->batch_size = o->batch_size ? o->batch_size : wf->batch_size;
	run->stagger_ns = o->stagger_ns >= 0 ? o->stagger_ns : wf->stagger_ns;
	run->timeout_ns = o->timeout_ns;
	run->client = o->client;
	run->req_id = o->req_id;
	run->done = o->done;
	run->done_arg = o->done_arg;
	run->cores = usable_cores();
	if (run->client)
		sup_ctl_client_hold(run->client);
	sup_timer_init(&run->stagger_timer, stagger_fired, run);
	if (wf->last)
		wf->last->next = run;
	else
		wf->runs = run;
	wf->last = run;
	wf->nruns++;
	run->cpu0 = sup_monitor_fleet_cpu_ns(d->monitor);
	run->start_ns = sup_loop_now(d->loop);
	run->stage = 1;
	advance(run);
	prune(wf);
	return (int64_t)run->id;

nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

static struct sup_run *find_run(struct sup_wf *wf, uint64_t id)
{
	for (struct sup_run *r = wf->runs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

json_t *sup_wf_aggregate(struct sup_wf *wf, uint64_t id)
{
	struct sup_run *r = find_run(wf, id);

	return r && r->aggregate ? json_incref(r->aggregate) : NULL;
}

/* Chrome trace format: complete events ("ph":"X") in microseconds, one
 * track (tid) per agent, named by metadata events. */
json_t *sup_wf_trace(struct sup_wf *wf, uint64_t id)
{
	struct sup_run *run = find_run(wf, id);
	json_t *ev;
	char **names;
	size_t nn = 0;

	if (!run)
		return NULL;
	ev = json_array();
	names = calloc(run->nrecs + 1, sizeof(*names));
	if (!names)
		return ev;
	json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:{s:s}}", "name", "process_name", "ph", "M",
					    "pid", (int)run->id, "args", "name", "tierd workflow run"));
	for (size_t i = 0; i < run->nrecs; i++) {
		struct rec *r = run->recs[i];
		size_t tid;
		struct {
			const char *name;
			int64_t a, b;
		} sl[] = {
			{ "queued", r->t.queued, r->t.dispatched },
			{ "dispatch", r->t.dispatched, r->t.started },
			{ "run", r->t.started, r->t.finished },
			{ "collect", r->t.finished, r->t.accepted },
		};

		for (tid = 0; tid < nn && strcmp(names[tid], r->agent); tid++)
			;
		if (tid == nn) {
			names[nn++] = r->agent;
			json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name",
				"thread_name", "ph", "M", "pid", (int)run->id, "tid", (int)tid + 1,
				"args", "name", r->agent));
		}
		for (size_t k = 0; k < sizeof(sl) / sizeof(sl[0]); k++) {
			if (!sl[k].a || !sl[k].b || sl[k].b < sl[k].a)
				continue;
			json_array_append_new(ev, json_pack("{s:s, s:s, s:s, s:f, s:f, s:i, s:i, s:{s:I, s:i, s:i, s:s}}",
				"name", sl[k].name, "cat", "task", "ph", "X",
				"ts", (double)(sl[k].a - run->start_ns) / 1000.0,
				"dur", (double)(sl[k].b - sl[k].a) / 1000.0,
				"pid", (int)run->id, "tid", (int)tid + 1,
				"args", "task", (json_int_t)r->task, "tier", r->tier, "batch", r->batch,
				"status", sup_task_status_name(r->status)));
		}
	}
	free(names);
	return json_pack("{s:o, s:s, s:{s:I, s:s}}", "traceEvents", ev, "displayTimeUnit", "ms",
			 "otherData", "run", (json_int_t)run->id, "type", run->type);
}

json_t *sup_wf_list(struct sup_wf *wf)
{
	json_t *a = json_array();

	for (struct sup_run *r = wf->runs; r; r = r->next)
		json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:f, s:f}", "run", (json_int_t)r->id,
			"type", r->type, "state", r->stage == STAGE_DONE ? "done" : "running",
			"wall_ms", r->stats.wall_ms, "efficiency", r->stats.efficiency));
	return a;
}

size_t sup_wf_recent(const struct sup_wf *wf, struct sup_wf_run_stats *out, size_t max)
{
	size_t n = 0, total = 0;

	for (struct sup_run *r = wf->runs; r; r = r->next)
		total += r->stage == STAGE_DONE;
	/* Newest first: walk the list, keep the last `max` finished runs. */
	for (struct sup_run *r = wf->runs; r; r = r->next) {
		if (r->stage != STAGE_DONE)
			continue;
		if (total > max) {
			total--;
			continue;
		}
		out[--total] = r->stats;
		n++;
	}
	return n;
}

int sup_wf_batch_size(const struct sup_wf *wf)
{
	return wf->batch_size;
}

int64_t sup_wf_stagger(const struct sup_wf *wf)
{
	return wf->stagger_ns;
}

void sup_wf_set_pacing(struct sup_wf *wf, int batch_size, int64_t stagger_ns)
{
	if (batch_size > 0)
		wf->batch_size = batch_size;
	if (stagger_ns >= 0)
		wf->stagger_ns = stagger_ns;
}

void sup_wf_client_gone(struct sup_wf *wf, struct sup_ctl_client *c)
{
	for (struct sup_run *r = wf->runs; r; r = r->next)
		if (r->client == c) {
			sup_ctl_client_release(c);
			r->client = NULL;
		}
}

struct sup_wf *sup_wf_new(struct sup_daemon *d)
{
	struct sup_wf *wf = calloc(1, sizeof(*wf));

	if (!wf)
		return NULL;
	wf->d = d;
	wf->batch_size = (int)d->conf->tiers[2].batch_size;
	wf->stagger_ns = d->conf->tiers[2].stagger_ns;
	return wf;
}

void sup_wf_free(struct sup_wf *wf)
{
	struct sup_run *r;

	if (!wf)
		return;
	while ((r = wf->runs)) {
		wf->runs = r->next;
		sup_timer_disarm(wf->d->loop, &r->stagger_timer);
		run_free(r);
	}
	free(wf);
}
