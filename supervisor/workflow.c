/* SPDX-License-Identifier: MIT */
/* The full-team workflow: the stage machine and its runs (see workflow.h;
 * what a run leaves is in workflow_report.c). */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "common/b64.h"
#include "agent.h"
#include "workflow_internal.h"

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

bool sup_wf_rec_done(struct sup_tasks *ts, struct sup_task *t, void *arg)
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
	return false;
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
	struct sup_wf *wf = run->wf;
	const struct sup_tier_conf *tc = &wf->env.conf(wf->env.ctx)->tiers[tier - 1];
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
			.done = sup_wf_rec_done,
			.done_arg = r,
			.group = run->id,
			.journal = true,
		};
		char err[256];
		int64_t id = sup_tasks_submit(wf->tasks, &spec, err, sizeof(err));

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
	struct sup_wf *wf = run->wf;
	size_t nagents = wf->env.nagents(wf->env.ctx);
	char **v = calloc(nagents + 1, sizeof(*v));
	size_t n = 0;

	*ret = v;
	if (!v)
		return 0;
	for (size_t i = 0; i < nagents; i++) {
		struct sup_agent *ag = wf->env.agent(wf->env.ctx, i);
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

void sup_wf_stagger_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_run *run = t->data;

	(void)l;
	run->stagger_total_ns += run->stagger_ns;
	advance(run);
}

static void finish_run(struct sup_run *run)
{
	struct sup_wf *wf = run->wf;
	char msg[512];

	run->stage = STAGE_DONE;
	run->end_ns = wf->env.now_fresh(wf->env.ctx);
	run->cpu_ms = (double)(wf->env.fleet_cpu_ns(wf->env.ctx) - run->cpu0) * 1e-6;
	run->aggregate = sup_wf_aggregate_run(run);
	snprintf(msg, sizeof(msg), "workflow run %llu (%s) done in %.1f ms, efficiency %.1f%%",
		 (unsigned long long)run->id, run->type, run->stats.wall_ms,
		 run->stats.efficiency * 100);
	wf->env.event(wf->env.ctx, "run_done",
		      json_pack("{s:I, s:s, s:f, s:f}", "run", (json_int_t)run->id, "type", run->type,
				"wall_ms", run->stats.wall_ms, "efficiency", run->stats.efficiency),
		      msg);
	sup_wf_wal_done(run, 0);
	if (run->done)
		run->done(run->wf, run, run->aggregate, run->done_arg);
	/* The payload is not needed any more; the records are, for traces. */
	free(run->payload);
	run->payload = NULL;
}

/* ---- the stage machine ----------------------------------------------------- */

static void advance(struct sup_run *run)
{
	struct sup_wf *wf = run->wf;

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
				wf->env.timer_arm(wf->env.ctx, &run->stagger_timer, run->batch_done_ns + run->stagger_ns);
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
			run->batch_done_ns = wf->env.now_fresh(wf->env.ctx);
			break;
		case -3:
			run->batch_done_ns = wf->env.now_fresh(wf->env.ctx);
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

void sup_wf_run_free(struct sup_run *run)
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
		sup_wf_run_free(r);
	}
}

/* The context may use what is left of the smallest agent ring's largest
 * record once headers, type and payload are in, up to SUP_WF_CONTEXT_MAX. */
static size_t context_bound(struct sup_wf *wf, size_t type_len, size_t len)
{
	size_t best = SUP_WF_CONTEXT_MAX;

	for (size_t i = 0, n = wf->env.nagents(wf->env.ctx); i < n; i++) {
		uint32_t ring = wf->env.agent(wf->env.ctx, i)->conf->ring_size;
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
	const struct sup_supervisor_conf *s = &wf->env.conf(wf->env.ctx)->sup;
	struct sup_run *run;

	if (wf->env.shutting_down(wf->env.ctx)) {
		snprintf(err, errlen, "tierd is shutting down");
		return -ECANCELED;
	}
	if (!o->type || !*o->type || strlen(o->type) > 255) {
		snprintf(err, errlen, "a run needs a task type of 1 to 255 bytes");
		return -EINVAL;
	}
	if (o->len > s->max_payload) {
		snprintf(err, errlen, "payload of %zu bytes exceeds max_payload (%u bytes)", o->len,
			 s->max_payload);
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
	run->type = strdup(o->type);
	run->payload = malloc(o->len ? o->len : 1);
	run->ctx = malloc(SUP_WF_CONTEXT_MAX + CTX_MARKER_MAX + 1);
	if (!run->type || !run->payload || !run->ctx) {
		sup_wf_run_free(run);
		goto nomem;
	}
	if (o->len)
		memcpy(run->payload, o->payload, o->len);
	run->len = o->len;
	run->ctx_max = context_bound(wf, strlen(o->type), o->len);
	run->batch_size = o->batch_size ? o->batch_size : wf->batch_size;
	run->stagger_ns = o->stagger_ns >= 0 ? o->stagger_ns : wf->stagger_ns;
	run->timeout_ns = o->timeout_ns;
	run->done = o->done;
	run->done_arg = o->done_arg;
	run->cores = usable_cores();
	{
		int r = sup_wf_wal_start(wf, run, err, errlen);

		if (r < 0) {
			sup_wf_run_free(run);
			return r;
		}
	}
	run->id = ++wf->next_id;
	sup_timer_init(&run->stagger_timer, sup_wf_stagger_fired, run);
	if (wf->last)
		wf->last->next = run;
	else
		wf->runs = run;
	wf->last = run;
	wf->nruns++;
	run->cpu0 = wf->env.fleet_cpu_ns(wf->env.ctx);
	run->start_ns = wf->env.now_fresh(wf->env.ctx);
	run->stage = 1;
	advance(run);
	prune(wf);
	return (int64_t)run->id;

nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
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

struct sup_wf *sup_wf_new(const struct sup_tasks_env *env, struct sup_tasks *tasks)
{
	struct sup_wf *wf = calloc(1, sizeof(*wf));
	const struct sup_config *conf;

	if (!wf)
		return NULL;
	wf->env = *env;
	wf->tasks = tasks;
	conf = env->conf(env->ctx);
	wf->batch_size = (int)conf->tiers[2].batch_size;
	wf->stagger_ns = conf->tiers[2].stagger_ns;
	return wf;
}

void sup_wf_free(struct sup_wf *wf)
{
	struct sup_run *r;

	if (!wf)
		return;
	while ((r = wf->runs)) {
		wf->runs = r->next;
		wf->env.timer_disarm(wf->env.ctx, &r->stagger_timer);
		sup_wf_run_free(r);
	}
	sup_wf_replayed_free(wf);
	free(wf);
}

int sup_wf_rebind(struct sup_wf *wf, uint64_t id, sup_run_done_fn done, void *arg)
{
	struct sup_run *run;

	for (run = wf->runs; run && run->id != id; run = run->next)
		;
	if (!run || run->aggregate)
		return -ENOENT;
	if (run->done)
		return -EBUSY;
	run->done = done;
	run->done_arg = arg;
	return 0;
}

bool sup_wf_running(struct sup_wf *wf, uint64_t id)
{
	struct sup_run *run;

	for (run = wf->runs; run && run->id != id; run = run->next)
		;
	return run && !run->aggregate;
}
