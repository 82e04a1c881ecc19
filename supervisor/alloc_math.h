/* SPDX-License-Identifier: MIT */
/*
 * alloc_math — the allocator's arithmetic (the seed's Dynamic Resource
 * Allocator), pure functions on one resource at a time, no I/O.
 *
 *  budget     = min(threshold x capacity, margin x (capacity - outside))
 *               where `outside` is what load outside the fleet uses now;
 *  demand_t   = usage_t x (1 + pressure_t), at least `floor` for a tier with
 *               agents (pressure: the share of time its agents waited to run);
 *  guarantee_t= share_t x budget;
 *  alloc_t    = max-min fair water-filling of the budget over the demands,
 *               weighted by shares: no tier gets more than it demands, and
 *               what one does not need is shared by the others' weights;
 *  ceiling_t  = alloc_t + the unused budget shared by weight, but for a
 *               lower tier never more than capacity minus the guarantees of
 *               every higher tier, so a burst below cannot take the room a
 *               higher tier is promised; at least `floor`; the most
 *               protected tier (rank 1) gets no ceiling; a pin replaces the
 *               computed value.
 */
#ifndef SUP_ALLOC_MATH_H
#define SUP_ALLOC_MATH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/tiers.h"

#define SUP_ALLOC_NO_CEILING (-1.0)

struct sup_alloc_input {
	double capacity;                   /* cores, or bytes */
	double outside;                    /* used by load outside the fleet */
	double threshold;                  /* fraction, e.g. 0.8 */
	double margin;                     /* fraction, e.g. 0.8 */
	double floor;                      /* smallest demand/ceiling of a tier with agents */
	double share[SUP_NTIERS];     /* percent */
	double usage[SUP_NTIERS];     /* same unit as capacity */
	double pressure[SUP_NTIERS];  /* >= 0, extra demand factor */
	double runnable[SUP_NTIERS];  /* running + waiting to run (cpu: cores) */
	bool   present[SUP_NTIERS];   /* tier has agents */
	bool   pinned[SUP_NTIERS];
	double pin[SUP_NTIERS];       /* ceiling an operator fixed */
};

struct sup_alloc_result {
	double budget;
	double demand[SUP_NTIERS];
	double guarantee[SUP_NTIERS];
	double alloc[SUP_NTIERS];
	double ceiling[SUP_NTIERS];   /* SUP_ALLOC_NO_CEILING: none */
	double protect_cap[SUP_NTIERS]; /* the rank-protection bound applied */
};

void sup_alloc_compute(const struct sup_alloc_input *in, struct sup_alloc_result *out);

/* The lowest ceiling tier t may get: its guarantee (share x budget), and
 * never under the floor. Demand is measured from usage, so a ceiling below
 * the guarantee would hold usage, and with it the next ceiling, down: a
 * squeezed or throttled tier could never climb back to its share. */
double sup_alloc_ceiling_floor(const struct sup_alloc_input *in, const struct sup_alloc_result *r, int t);

/* Weighted max-min fair split of budget over demands (n entries; weights
 * > 0 where demand > 0). Writes alloc; returns the total allocated. */
double sup_alloc_waterfill(const double *demand, const double *weight, int n, double budget,
			   double *alloc);

/* The first tier (0-based) that may be squeezed as an idle group. */
#define SUP_ALLOC_SQUEEZE_FROM 2

/* Whether tier t (0-based, >= SUP_ALLOC_SQUEEZE_FROM) may run as an idle
 * group (cpu.idle: it gets only what the tiers above leave). Squeezed tiers
 * form a run at the bottom, tiers k..4, and they may be squeezed only while
 * what the tiers above k would run (their runnable time: what they take when
 * nothing holds them back, squeezed or not) leaves every one of them its
 * guarantee. A CPU-bound tier 1 is then shared by weight, as the shares say,
 * instead of starving the rest. */
bool sup_alloc_may_squeeze(const struct sup_alloc_input *in, const struct sup_alloc_result *r, int t);

/* cpu.weight per tier: share x 10, raised to at least every lower-ranked
 * tier's, so a higher tier never waits behind a lower one for weight alone
 * (the seed's shares give tier 3 more than tier 1). Tiers without agents
 * get their share's weight. */
void sup_alloc_rank_weights(const double *share, const bool *present, uint64_t *weight);

/* The next memory.high on the way to target: moves at most step (a fraction
 * of the current value) per call and never below usage minus one step, so
 * no writer stalls in reclaim and nothing is OOM-killed by a re-tune. */
double sup_alloc_memory_step(double current, double target, double usage, double step);

/* Write only if the value moved by more than hysteresis (a fraction). */
bool sup_alloc_should_write(double old, double new_value, double hysteresis);

#endif
