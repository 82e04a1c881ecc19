/* SPDX-License-Identifier: MIT */
/* What a workflow run leaves: its aggregate, its Chrome trace, the kept
 * runs' list and the statistics the optimiser reads (see workflow.h). */
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "workflow_internal.h"

/* ---- aggregate ------------------------------------------------------------- */

static double ms_between(int64_t a, int64_t b)
{
	return a && b && b >= a ? (double)(b - a) * 1e-6 : 0;
}

json_t *sup_wf_aggregate_run(struct sup_run *run)
{
	json_t *tiers = json_array(), *results = json_array(), *agg;
	double wall = ms_between(run->start_ns, run->end_ns);

	memset(&run->stats, 0, sizeof(run->stats));
	run->stats.run = run->id;
	for (int tier = 1; tier <= SUP_NTIERS; tier++) {
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
		total += r->stage == STAGE_DONE && !r->interrupted;
	/* Newest first: walk the list, keep the last `max` finished runs. */
	for (struct sup_run *r = wf->runs; r; r = r->next) {
		if (r->stage != STAGE_DONE || r->interrupted)
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

