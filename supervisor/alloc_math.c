/* SPDX-License-Identifier: MIT */
/* The allocator's arithmetic: see alloc_math.h. */
#include <math.h>

#include "alloc_math.h"

double sup_alloc_waterfill(const double *demand, const double *weight, int n, double budget,
			   double *alloc)
{
	bool done[16] = { false };
	double left = budget, total = 0;
	int active = 0;

	for (int i = 0; i < n; i++) {
		alloc[i] = 0;
		if (demand[i] > 0 && weight[i] > 0)
			active++;
		else
			done[i] = true;
	}
	/* Each round gives every unsatisfied tier its weight's part of what is
	 * left; tiers whose demand is met leave the game and the rest is
	 * shared again. At most n rounds. */
	while (active && left > 1e-12) {
		double wsum = 0, given = 0;
		bool someone_filled = false;

		for (int i = 0; i < n; i++)
			if (!done[i])
				wsum += weight[i];
		for (int i = 0; i < n; i++) {
			double part, need;

			if (done[i])
				continue;
			part = left * weight[i] / wsum;
			need = demand[i] - alloc[i];
			if (need <= part) {
				alloc[i] = demand[i];
				given += need;
				done[i] = true;
				active--;
				someone_filled = true;
			}
		}
		if (!someone_filled) {
			for (int i = 0; i < n; i++)
				if (!done[i]) {
					double part = left * weight[i] / wsum;

					alloc[i] += part;
					given += part;
				}
			left -= given;
			break;
		}
		left -= given;
	}
	for (int i = 0; i < n; i++)
		total += alloc[i];
	return total;
}

void sup_alloc_compute(const struct sup_alloc_input *in, struct sup_alloc_result *out)
{
	double free_cap = in->capacity - in->outside, weight[SUP_NTIERS];
	double wsum = 0, spare, given;

	if (free_cap < 0)
		free_cap = 0;
	out->budget = fmin(in->threshold * in->capacity, in->margin * free_cap);
	for (int t = 0; t < SUP_NTIERS; t++) {
		double d = in->usage[t] * (1 + (in->pressure[t] > 0 ? in->pressure[t] : 0));

		if (in->present[t] && d < in->floor)
			d = in->floor;
		out->demand[t] = in->present[t] ? d : 0;
		out->guarantee[t] = in->present[t] ? in->share[t] / 100.0 * out->budget : 0;
		weight[t] = in->present[t] ? in->share[t] : 0;
		wsum += weight[t];
	}
	given = sup_alloc_waterfill(out->demand, weight, SUP_NTIERS, out->budget, out->alloc);
	spare = out->budget - given;
	if (spare < 0)
		spare = 0;
	for (int t = 0; t < SUP_NTIERS; t++) {
		double above = 0, c;

		for (int u = 0; u < t; u++)
			above += out->guarantee[u];
		out->protect_cap[t] = in->capacity - above;
		if (!in->present[t]) {
			out->ceiling[t] = SUP_ALLOC_NO_CEILING;
			continue;
		}
		if (in->pinned[t]) {
			out->ceiling[t] = in->pin[t];
			continue;
		}
		if (t == 0) {
			out->ceiling[t] = SUP_ALLOC_NO_CEILING;
			continue;
		}
		c = out->alloc[t] + (wsum > 0 ? spare * weight[t] / wsum : 0);
		if (c > out->protect_cap[t])
			c = out->protect_cap[t];
		out->ceiling[t] = fmax(c, sup_alloc_ceiling_floor(in, out, t));
	}
}

double sup_alloc_ceiling_floor(const struct sup_alloc_input *in, const struct sup_alloc_result *r, int t)
{
	return fmax(in->floor, r->guarantee[t]);
}

double sup_alloc_memory_step(double current, double target, double usage, double step)
{
	double delta = current * step, next = target;

	if (next > current + delta)
		next = current + delta;
	if (next < current - delta)
		next = current - delta;
	/* Never squeeze more than one step below what is in use now. */
	if (next < usage - delta)
		next = usage - delta;
	if (next < 0)
		next = 0;
	return next;
}

bool sup_alloc_should_write(double old, double new_value, double hysteresis)
{
	if (old <= 0)
		return new_value != old;
	return fabs(new_value - old) / old > hysteresis;
}

void sup_alloc_rank_weights(const double *share, const bool *present, uint64_t *weight)
{
	uint64_t floor = 0;

	for (int t = SUP_NTIERS - 1; t >= 0; t--) {
		uint64_t w = (uint64_t)(share[t] * 10 + 0.5);

		if (w < 1)
			w = 1;
		if (w > 10000)
			w = 10000;
		if (present[t] && w < floor)
			w = floor;
		if (present[t] && w > floor)
			floor = w;
		weight[t] = w;
	}
}

/* Whether squeezing tiers k.. (all of them idle) still leaves each its
 * guarantee out of what the tiers above k would run. */
static bool squeeze_from(const struct sup_alloc_input *in, const struct sup_alloc_result *r, int k)
{
	double left = in->capacity - in->outside, owed = 0;

	for (int u = 0; u < k; u++)
		left -= in->present[u] ? in->runnable[u] : 0;
	for (int v = k; v < SUP_NTIERS; v++)
		owed += r->guarantee[v];
	return left >= owed;
}

bool sup_alloc_may_squeeze(const struct sup_alloc_input *in, const struct sup_alloc_result *r, int t)
{
	/* Squeezed tiers are always a run at the bottom (never tier 3 idle
	 * under a tier 4 that is not): some k <= t from which on all fit. */
	for (int k = SUP_ALLOC_SQUEEZE_FROM; k <= t; k++)
		if (squeeze_from(in, r, k))
			return true;
	return false;
}
