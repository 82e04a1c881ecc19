/* SPDX-License-Identifier: MIT */
/* The optimiser: see optimiser.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "config/config.h"
#include "events.h"
#include "journal.h"
#include "monitor.h"
#include "optimiser.h"
#include "workflow.h"

#define RECENT        5      /* runs an evaluation looks at */
#define EFFECT_RUNS   3      /* runs after a change before its effect is judged */
#define WORSE         1.10   /* p95 this much worse: revert */
#define STAGGER_STEP  (50LL * 1000 * 1000)
#define STAGGER_MAX   (1000LL * 1000 * 1000)

const char *sup_opt_knob_name(enum sup_opt_knob k)
{
	static const char *const n[] = { "none", "tier3 batch_size", "tier3 stagger",
					 "tier3 ceiling bias", "tier4 ceiling bias" };

	return (unsigned)k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

void sup_opt_decide(const struct sup_opt_input *in, struct sup_opt_action *out)
{
	memset(out, 0, sizeof(*out));
	/* Contention first: over the threshold, or the top tiers waiting to
	 * run. Squeeze the lowest tiers, then pace tier 3 more gently. */
	if (in->utilisation > in->threshold || in->top_pressure > 0.25) {
		out->bottleneck = "resource_contention";
		if (in->bias4 > 0.5) {
			out->knob = SUP_OPT_BIAS4;
			out->before = in->bias4;
			out->after = in->bias4 - 0.1;
		} else if (in->bias3 > 0.5) {
			out->knob = SUP_OPT_BIAS3;
			out->before = in->bias3;
			out->after = in->bias3 - 0.1;
		} else if (in->batch_size > 1) {
			out->knob = SUP_OPT_BATCH;
			out->before = in->batch_size;
			out->after = in->batch_size - 1;
		} else if (in->stagger_ns < STAGGER_MAX) {
			out->knob = SUP_OPT_STAGGER;
			out->before = (double)in->stagger_ns;
			out->after = (double)(in->stagger_ns + STAGGER_STEP);
		}
		snprintf(out->why, sizeof(out->why), "utilisation %.0f%% (threshold %.0f%%), top tiers "
			 "waiting %.0f%% of their runnable time", in->utilisation * 100,
			 in->threshold * 100, in->top_pressure * 100);
		if (out->knob == SUP_OPT_NONE)
			out->bottleneck = NULL;
		return;
	}
	/* Headroom again: give back what contention took. */
	if (in->bias4 < 1 || in->bias3 < 1) {
		out->bottleneck = "idle";
		out->knob = in->bias3 < 1 ? SUP_OPT_BIAS3 : SUP_OPT_BIAS4;
		out->before = out->knob == SUP_OPT_BIAS3 ? in->bias3 : in->bias4;
		out->after = fmin(1, out->before + 0.1);
		snprintf(out->why, sizeof(out->why), "utilisation %.0f%% is under the threshold and the "
			 "top tiers do not wait: relax the lower tiers' ceilings", in->utilisation * 100);
		return;
	}
	if (!in->runs)
		return;
	/* Sequential processing: runs spend their time between batches while
	 * the machine has room. Shorten the pause, then widen the batches. */
	if (in->stagger_share > 0.3 && in->utilisation < 0.75 * in->threshold) {
		out->bottleneck = "sequential_processing";
		if (in->stagger_ns > 0) {
			out->knob = SUP_OPT_STAGGER;
			out->before = (double)in->stagger_ns;
			out->after = in->stagger_ns < 10LL * 1000 * 1000 ? 0 : (double)(in->stagger_ns / 2);
		} else if (in->batch_size < in->tier3_agents) {
			out->knob = SUP_OPT_BATCH;
			out->before = in->batch_size;
			out->after = in->batch_size + 1;
		} else {
			out->bottleneck = NULL;
			return;
		}
		snprintf(out->why, sizeof(out->why), "%.0f%% of the runs' time is spent between tier-3 "
			 "batches while utilisation is %.0f%%", in->stagger_share * 100,
			 in->utilisation * 100);
		return;
	}
	/* A run that finished with time between batches but no contention: a
	 * shorter pause can only help. */
	if (in->stagger_share > 0 && in->stagger_ns > 0 && in->utilisation < 0.5 * in->threshold) {
		out->bottleneck = "sequential_processing";
		out->knob = SUP_OPT_STAGGER;
		out->before = (double)in->stagger_ns;
		out->after = in->stagger_ns < 10LL * 1000 * 1000 ? 0 : (double)(in->stagger_ns / 2);
		snprintf(out->why, sizeof(out->why), "%.0f%% of the runs' time is pause between batches "
			 "on a machine %.0f%% busy", in->stagger_share * 100, in->utilisation * 100);
	}
}

/* ---- runtime ------------------------------------------------------------------------ */

struct sup_optimiser {
	struct sup_optimiser_deps dep;
	bool                  enabled;
	uint64_t              last_run;     /* newest run already considered */
	struct sup_opt_action pending;      /* change whose effect is being measured */
	double                p95_before;
	uint64_t              change_run;   /* runs newer than this count for its effect */
	bool                  measuring;
};

static void gather(struct sup_optimiser *o, struct sup_opt_input *in, struct sup_wf_run_stats *r,
		   size_t n)
{
	const struct sup_optimiser_deps *d = &o->dep;
	const struct sup_mon_machine *m = sup_monitor_machine(d->monitor);
	double walls[RECENT], stag = 0, wall = 0, disp = 0, run = 0, val = 0;
	unsigned tasks = 0;

	memset(in, 0, sizeof(*in));
	in->runs = (unsigned)n;
	for (size_t i = 0; i < n; i++) {
		walls[i] = r[i].wall_ms;
		wall += r[i].wall_ms;
		stag += r[i].tier[3].stagger_ms;
		for (int t = 1; t <= SUP_NTIERS; t++) {
			disp += r[i].tier[t].dispatch_ms * r[i].tier[t].tasks;
			run += r[i].tier[t].busy_ms;
			val += r[i].tier[t].validate_ms * r[i].tier[t].tasks;
			tasks += r[i].tier[t].tasks;
		}
	}
	/* p95 of up to RECENT values: the largest but one when there are more
	 * than a handful, else the largest. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (walls[j] < walls[i]) {
				double x = walls[i];

				walls[i] = walls[j];
				walls[j] = x;
			}
	in->p95_ms = n ? walls[n - 1] : 0;
	in->stagger_share = wall > 0 ? stag / wall : 0;
	in->dispatch_share = run > 0 ? disp / run : 0;
	in->validate_ms = tasks ? val / tasks : 0;
	in->utilisation = m->utilisation;
	in->threshold = (*d->conf)->sup.utilisation_threshold / 100.0;
	in->top_pressure = fmax(sup_monitor_tier(d->monitor, 1)->pressure,
				sup_monitor_tier(d->monitor, 2)->pressure);
	in->batch_size = sup_wf_batch_size(d->wf);
	in->stagger_ns = sup_wf_stagger(d->wf);
	in->tier3_agents = (int)sup_monitor_tier(d->monitor, 3)->agents;
	in->bias3 = sup_allocator_get_bias(d->alloc, 3);
	in->bias4 = sup_allocator_get_bias(d->alloc, 4);
}

static void apply(struct sup_optimiser *o, enum sup_opt_knob k, double v)
{
	const struct sup_optimiser_deps *d = &o->dep;

	switch (k) {
	case SUP_OPT_BATCH:
		sup_wf_set_pacing(d->wf, (int)v, -1);
		break;
	case SUP_OPT_STAGGER:
		sup_wf_set_pacing(d->wf, 0, (int64_t)v);
		break;
	case SUP_OPT_BIAS3:
		sup_allocator_bias(d->alloc, 3, v);
		break;
	case SUP_OPT_BIAS4:
		sup_allocator_bias(d->alloc, 4, v);
		break;
	default:
		break;
	}
}

static double knob_display(enum sup_opt_knob k, double v)
{
	return k == SUP_OPT_STAGGER ? v * 1e-6 : v;  /* stagger in ms */
}

static void judge_effect(struct sup_optimiser *o, struct sup_wf_run_stats *r, size_t n)
{
	double after = 0;
	size_t counted = 0;

	for (size_t i = 0; i < n; i++)
		if (r[i].run > o->change_run) {
			after = fmax(after, r[i].wall_ms);
			counted++;
		}
	if (counted < EFFECT_RUNS)
		return;
	o->measuring = false;
	sup_journal_event(o->dep.journal, SUP_LOG_NOTICE, "optimiser_effect",
			 json_pack("{s:s, s:s, s:f, s:f, s:f, s:f}", "bottleneck", o->pending.bottleneck,
				   "knob", sup_opt_knob_name(o->pending.knob),
				   "before", knob_display(o->pending.knob, o->pending.before),
				   "after", knob_display(o->pending.knob, o->pending.after),
				   "p95_before_ms", o->p95_before, "p95_after_ms", after),
			 "optimiser: %s %g -> %g changed workflow p95 from %.1f ms to %.1f ms",
			 sup_opt_knob_name(o->pending.knob), knob_display(o->pending.knob, o->pending.before),
			 knob_display(o->pending.knob, o->pending.after), o->p95_before, after);
	if (o->p95_before > 0 && after > o->p95_before * WORSE &&
	    strcmp(o->pending.bottleneck, "resource_contention")) {
		apply(o, o->pending.knob, o->pending.before);
		sup_journal_event(o->dep.journal, SUP_LOG_NOTICE, "optimiser_revert",
				 json_pack("{s:s, s:f}", "knob", sup_opt_knob_name(o->pending.knob),
					   "value", knob_display(o->pending.knob, o->pending.before)),
				 "optimiser: p95 got worse; %s back to %g",
				 sup_opt_knob_name(o->pending.knob),
				 knob_display(o->pending.knob, o->pending.before));
	}
}

void sup_optimiser_tick(struct sup_optimiser *o)
{
	struct sup_wf_run_stats r[RECENT];
	struct sup_opt_input in;
	struct sup_opt_action act;
	size_t n;

	if (!o->enabled)
		return;
	n = sup_wf_recent(o->dep.wf, r, RECENT);
	if (o->measuring) {
		judge_effect(o, r, n);
		if (o->measuring)
			return;
	}
	gather(o, &in, r, n);
	/* Contention is judged every tick; pacing only when new runs came. */
	if (n && r[0].run == o->last_run)
		in.runs = 0;
	sup_opt_decide(&in, &act);
	if (n)
		o->last_run = r[0].run;
	if (!act.bottleneck || act.knob == SUP_OPT_NONE)
		return;
	apply(o, act.knob, act.after);
	sup_journal_event(o->dep.journal, SUP_LOG_NOTICE, "optimiser_change",
			 json_pack("{s:s, s:s, s:f, s:f, s:s, s:f}", "bottleneck", act.bottleneck,
				   "knob", sup_opt_knob_name(act.knob),
				   "before", knob_display(act.knob, act.before),
				   "after", knob_display(act.knob, act.after), "why", act.why,
				   "p95_before_ms", in.p95_ms),
			 "optimiser: %s: %s %g -> %g (%s)", act.bottleneck, sup_opt_knob_name(act.knob),
			 knob_display(act.knob, act.before), knob_display(act.knob, act.after), act.why);
	/* Pacing changes are judged on the next runs; ceiling changes act on
	 * contention, which the next ticks measure directly. */
	if (act.knob == SUP_OPT_BATCH || act.knob == SUP_OPT_STAGGER) {
		o->pending = act;
		o->p95_before = in.p95_ms;
		o->change_run = n ? r[0].run : 0;
		o->measuring = true;
	}
}

json_t *sup_optimiser_analyze(struct sup_optimiser *o)
{
	struct sup_wf_run_stats r[RECENT];
	size_t n = sup_wf_recent(o->dep.wf, r, RECENT);
	struct sup_opt_input in;
	struct sup_opt_action act;
	json_t *runs = json_array(), *found = json_array();

	gather(o, &in, r, n);
	for (size_t i = 0; i < n; i++) {
		json_t *stages = json_array();

		for (int t = 1; t <= SUP_NTIERS; t++)
			json_array_append_new(stages, json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:i}",
				"tier", t, "wall_ms", r[i].tier[t].wall_ms, "busy_ms", r[i].tier[t].busy_ms,
				"dispatch_ms", r[i].tier[t].dispatch_ms, "validate_ms", r[i].tier[t].validate_ms,
				"stagger_ms", r[i].tier[t].stagger_ms, "tasks", (int)r[i].tier[t].tasks));
		json_array_append_new(runs, json_pack("{s:I, s:f, s:f, s:o}", "run", (json_int_t)r[i].run,
						      "wall_ms", r[i].wall_ms, "efficiency", r[i].efficiency,
						      "stages", stages));
	}
	if (in.stagger_share > 0.05)
		json_array_append_new(found, json_pack("{s:s, s:f, s:s}", "bottleneck", "sequential_processing",
			"share", in.stagger_share, "detail", "time spent between tier-3 batches"));
	if (in.utilisation > in.threshold || in.top_pressure > 0.25)
		json_array_append_new(found, json_pack("{s:s, s:f, s:f}", "bottleneck", "resource_contention",
			"utilisation", in.utilisation, "top_pressure", in.top_pressure));
	if (in.dispatch_share > 0.1)
		json_array_append_new(found, json_pack("{s:s, s:f, s:s}", "bottleneck", "coordination_overhead",
			"share", in.dispatch_share, "detail", "tasks waiting in tierd before dispatch, "
			"relative to the agents' run time"));
	if (in.validate_ms > 1.0)
		json_array_append_new(found, json_pack("{s:s, s:f, s:s}", "bottleneck", "validation_delay",
			"mean_ms", in.validate_ms, "detail", "finished results waiting before tierd accepted them"));
	in.runs = (unsigned)n;
	sup_opt_decide(&in, &act);
	return json_pack("{s:o, s:o, s:f, s:f, s:f, s:f, s:b, s:s?, s:s?}", "runs", runs,
			 "bottlenecks", found, "p95_ms", in.p95_ms, "utilisation", in.utilisation,
			 "stagger_share", in.stagger_share, "validate_ms", in.validate_ms,
			 "optimiser", o->enabled, "next_change", act.bottleneck ? sup_opt_knob_name(act.knob) : NULL,
			 "next_why", act.bottleneck ? act.why : NULL);
}

void sup_optimiser_enable(struct sup_optimiser *o, bool on)
{
	o->enabled = on;
}

bool sup_optimiser_enabled(const struct sup_optimiser *o)
{
	return o->enabled;
}

struct sup_optimiser *sup_optimiser_new(const struct sup_optimiser_deps *deps)
{
	struct sup_optimiser *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->dep = *deps;
	o->enabled = (*deps->conf)->sup.optimiser;
	return o;
}

void sup_optimiser_free(struct sup_optimiser *o)
{
	free(o);
}
