/* SPDX-License-Identifier: MIT */
/*
 * optimiser — the seed's workflow optimiser.
 *
 * Objective: the lowest workflow p95 response time while utilisation stays
 * under the threshold. From recent runs (traces) and the monitor's counters
 * it finds the bottleneck:
 *   sequential_processing  time spent between tier-3 batches while CPUs idle
 *   resource_contention    utilisation over the threshold, or higher tiers
 *                          waiting to run (run-queue delay, PSI)
 *   coordination_overhead  tasks waiting in tierd before dispatch
 *   validation_delay       finished results waiting before tierd accepts them
 * and changes one knob at a time: tier-3 batch size and stagger (workflow
 * pacing) or lower tiers' ceilings (proposed to the allocator as a bias).
 * Every change is an event with before/after values; after a few runs its
 * measured effect (p95 before/after) is another event, and a change that
 * made p95 worse is reverted. An operator can switch it off.
 */
#ifndef SUP_OPTIMISER_H
#define SUP_OPTIMISER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What the decision looks at (one evaluation). */
struct sup_opt_input {
	unsigned runs;                 /* recent finished runs considered */
	double   p95_ms;               /* of their wall times */
	double   stagger_share;        /* time between batches / wall time */
	double   dispatch_share;       /* time queued in tierd / agent run time */
	double   validate_ms;          /* mean finished -> accepted */
	double   utilisation;          /* machine, 0..1 */
	double   threshold;            /* utilisation threshold, 0..1 */
	double   top_pressure;         /* max pressure of tiers 1 and 2, 0..1 */
	int      batch_size, tier3_agents;
	int64_t  stagger_ns;
	double   bias3, bias4;         /* current ceiling biases of tiers 3, 4 */
};

enum sup_opt_knob { SUP_OPT_NONE, SUP_OPT_BATCH, SUP_OPT_STAGGER, SUP_OPT_BIAS3, SUP_OPT_BIAS4 };

struct sup_opt_action {
	const char       *bottleneck;  /* NULL: nothing to do */
	enum sup_opt_knob knob;
	double            before, after;
	char              why[200];
};

/* Pure: what to change given in (thresholds inside). */
void sup_opt_decide(const struct sup_opt_input *in, struct sup_opt_action *out);
const char *sup_opt_knob_name(enum sup_opt_knob k);

struct sup_allocator;
struct sup_config;
struct sup_journal;
struct sup_monitor;
struct sup_optimiser;
struct sup_wf;

/* What the optimiser measures and turns: the daemon's narrow views, not
 * the daemon. Everything outlives the optimiser. */
struct sup_optimiser_deps {
	struct sup_config *const *conf;      /* the current config: reloads replace it */
	const struct sup_journal *journal;   /* its changes and their effects */
	struct sup_monitor       *monitor;   /* load and pressure */
	struct sup_wf            *wf;        /* recent runs; batch and stagger */
	struct sup_allocator     *alloc;     /* tier-3/4 bias */
};

struct sup_optimiser *sup_optimiser_new(const struct sup_optimiser_deps *deps);
void sup_optimiser_free(struct sup_optimiser *o);
void sup_optimiser_tick(struct sup_optimiser *o);
void sup_optimiser_enable(struct sup_optimiser *o, bool on);
bool sup_optimiser_enabled(const struct sup_optimiser *o);
/* The bottleneck report of recent runs (tierctl analyze). */
json_t *sup_optimiser_analyze(struct sup_optimiser *o);

#endif
