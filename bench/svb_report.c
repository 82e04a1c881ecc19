/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "svb_report.h"

const char *const svb_kind_name[SVB_NKINDS] = { "tierd", "s6", "runit" };

void svb_add(struct svb_series *s, double v)
{
	if (s->n < SVB_MAX_SAMPLES)
		s->v[s->n++] = v;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double svb_pct(const struct svb_series *s, double q)
{
	double v[SVB_MAX_SAMPLES];
	size_t i;

	if (!s->n)
		return 0;
	memcpy(v, s->v, sizeof(double) * (size_t)s->n);
	qsort(v, (size_t)s->n, sizeof(double), cmp_dbl);
	if (q == 0.5 && s->n % 2 == 0)
		return (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
	i = (size_t)(q * (double)(s->n - 1) + 0.5);
	return v[i];
}

static void row(const char *name, const struct svb_series *s, const char *unit, double scale)
{
	if (!s->n) {
		printf("  %-44s %10s\n", name, "failed");
		return;
	}
	printf("  %-44s %10.3f %10.3f %s  (n=%d)\n", name, svb_pct(s, 0.5) * scale,
	       svb_pct(s, 0.9) * scale, unit, s->n);
}

static double faster(const struct svb_results *R, const struct svb_series *s)
{
	double best = 0;

	for (int k = SVB_S6; k < SVB_NKINDS; k++)
		if (R->have[k] && s[k].n && (best == 0 || svb_pct(&s[k], 0.5) < best))
			best = svb_pct(&s[k], 0.5);
	return best;
}

struct tally {
	int met, total;
};

/* One ratio against its target; a ratio that could not be computed
 * (have false) is a miss. */
static void target(struct tally *t, const char *name, bool have, double v, const char *op,
		   double want)
{
	t->total++;
	if (have)
		t->met += bench_ratio(name, v, op, want);
	else
		printf("  %-44s %8s   target %s %-6g MISS\n", name, "n/a", op, want);
}

int svb_report(const struct svb_results *R)
{
	struct tally t = { 0, 0 };
	char name[96];
	double b, med;

	printf("cold start, %u agents to all ready          median        p90\n", R->n_small);
	for (int k = 0; k < SVB_NKINDS; k++)
		if (R->have[k])
			row(svb_kind_name[k], &R->cold[k], "ms", 1);
	if (R->have[SVB_TIERD])
		row("  tierd: its control socket answering", &R->tierd_sock, "ms", 1);
	printf("restart: SIGKILL of an agent up >= %.1f s to its replacement ready\n", R->long_run_s);
	for (int k = 0; k < SVB_NKINDS; k++)
		if (R->have[k])
			row(svb_kind_name[k], &R->restart[k], "ms", 1);
	if (R->have[SVB_TIERD]) {
		row("  tierd, its journal: exit seen", &R->tierd_phase[0], "ms", 1);
		row("  tierd, its journal: replacement spawned", &R->tierd_phase[1], "ms", 1);
		row("  tierd, its journal: replacement ready", &R->tierd_phase[2], "ms", 1);
	}
	if (R->have[SVB_RUNIT])
		row("  runit, replacement has exec'd the agent", &R->runit_exec, "ms", 1);
	printf("crash right after a restart: SIGKILL to the next replacement ready\n");
	for (int k = 0; k < SVB_NKINDS; k++) {
		static const char *const why[SVB_NKINDS] = {
			"tierd (2nd death: backoff 100 ms)", "s6 (1 s floor since the last start)",
			"runit (1 s floor since the last start)",
		};

		if (R->have[k])
			row(why[k], &R->crash[k], "ms", 1);
	}
	printf("fleet: %u agents to all ready\n", R->fleet);
	for (int k = 0; k < SVB_NKINDS; k++)
		if (R->have[k])
			row(svb_kind_name[k], &R->fleet_start[k], "s", 1);
	printf("fleet: stop until nothing is left (stopped clean / stops, all runs)\n");
	for (int k = 0; k < SVB_NKINDS; k++) {
		if (!R->have[k])
			continue;
		snprintf(name, sizeof(name), "%s (clean %d/%d)", svb_kind_name[k], R->clean[k],
			 R->stops[k]);
		row(name, &R->fleet_stop[k], "s", 1);
	}
	printf("supervisor CPU, %d s, %u idle agents each, side by side (%% of one core)\n",
	       R->idle_s, R->n_small);
	for (int k = 0; k < SVB_NKINDS; k++) {
		static const char *const what[SVB_NKINDS] = {
			"tierd: supervisor leaf cpu.stat", "s6: s6-svscan + s6-supervise",
			"runit: runsvdir + runsv",
		};

		if (!R->have[k])
			continue;
		if (!R->idle_ok[k]) {
			printf("  %-44s %10s\n", what[k], "failed");
			continue;
		}
		printf("  %-44s %10.4f %%  (%u processes)\n", what[k], R->idle_pct[k], R->idle_nproc[k]);
		if (k == SVB_TIERD)
			printf("  %-44s %10.4f %%\n", "tierd: its threads' schedstat", R->idle_sched_pct);
	}
	for (int k = 0; k < SVB_NKINDS; k++)
		if (R->failed[k])
			printf("  %s: %d measurements failed (see stderr)\n", svb_kind_name[k], R->failed[k]);

	printf("\nratios (same run)\n");
	med = svb_pct(&R->cold[SVB_TIERD], 0.5);
	b = faster(R, R->cold);
	target(&t, "cold start: faster baseline / tierd", b > 0 && med > 0, b / med, ">=", 2);
	med = svb_pct(&R->restart[SVB_TIERD], 0.5);
	target(&t, "restart: tierd median (ms)", R->restart[SVB_TIERD].n, med, "<=", 1);
	/* "Faster than both": one ratio per baseline. */
	for (int k = SVB_S6; k < SVB_NKINDS; k++) {
		snprintf(name, sizeof(name), "restart: tierd / %s", svb_kind_name[k]);
		target(&t, name, R->have[k] && R->restart[k].n && med > 0,
		       med / svb_pct(&R->restart[k], 0.5), "<=", 1);
	}
	if (R->runit_exec.n && med > 0)
		printf("  %-44s %8.3f   (no target)\n", "restart: tierd / runit replacement exec'd",
		       med / svb_pct(&R->runit_exec, 0.5));
	med = svb_pct(&R->fleet_start[SVB_TIERD], 0.5);
	target(&t, "fleet: tierd all ready (s)", R->fleet_start[SVB_TIERD].n, med, "<=", 0.5);
	b = faster(R, R->fleet_start);
	if (b > 0 && med > 0)
		printf("  %-44s %8.3f   (no target)\n", "fleet: tierd / faster baseline", med / b);
	target(&t, "fleet: tierd stopped clean (share of stops)", R->stops[SVB_TIERD],
	       (double)R->clean[SVB_TIERD] / (R->stops[SVB_TIERD] ? R->stops[SVB_TIERD] : 1), ">=", 1);
	target(&t, "idle: tierd CPU (% of a core)", R->idle_ok[SVB_TIERD], R->idle_pct[SVB_TIERD],
	       "<=", 0.1);
	printf("\ntargets met: %d of %d\n", t.met, t.total);
	return t.met;
}

