/* SPDX-License-Identifier: MIT */
/*
 * What the supervision benchmark (supervise_bench.c) measured, and its
 * report: per contender, samples of each figure; tables of medians and
 * p90, then the ratios against their targets, ring_bench style.
 */
#ifndef SVB_REPORT_H
#define SVB_REPORT_H

#include <stdbool.h>

enum svb_kind { SVB_TIERD, SVB_S6, SVB_RUNIT, SVB_NKINDS };
extern const char *const svb_kind_name[SVB_NKINDS];

#define SVB_MAX_SAMPLES 512

struct svb_series {
	double v[SVB_MAX_SAMPLES];
	int    n;
};

void svb_add(struct svb_series *s, double v);
/* Percentile q in [0,1] (0.5: the median, the mean of the middle two for
 * an even count); 0 without samples. */
double svb_pct(const struct svb_series *s, double q);

struct svb_results {
	/* the run's shape, for the headings */
	unsigned          n_small, fleet;
	int               idle_s;
	double            long_run_s;
	bool              have[SVB_NKINDS];
	/* ms: cold start, restart, crash right after a restart; s: fleet
	 * start and stop */
	struct svb_series cold[SVB_NKINDS], restart[SVB_NKINDS], crash[SVB_NKINDS];
	struct svb_series fleet_start[SVB_NKINDS], fleet_stop[SVB_NKINDS];
	/* ms: tierd's control socket answering after its start; tierd's
	 * restart from its journal (exit seen, spawned, ready); runit's
	 * replacement having exec'd the agent */
	struct svb_series tierd_sock, tierd_phase[3], runit_exec;
	int               clean[SVB_NKINDS], stops[SVB_NKINDS], failed[SVB_NKINDS];
	/* idle CPU, % of one core */
	double            idle_pct[SVB_NKINDS], idle_sched_pct;
	unsigned          idle_nproc[SVB_NKINDS];
	bool              idle_ok[SVB_NKINDS];
};

/* Print the tables and the ratios; returns how many targets were met. */
int svb_report(const struct svb_results *R);

#endif
