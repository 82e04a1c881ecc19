/* SPDX-License-Identifier: MIT */
/*
 * Private to the dispatch benchmark: its state, the figures of every
 * repetition, the parts (dispatch_parts.c) and their report
 * (dispatch_report.c). dispatch_bench.c has main: set-up and order.
 * (Every bench/NAME.c but the NAME_bench.c is linked into every benchmark, so
 * nothing here may refer to dispatch_bench.c.)
 */
#ifndef DISPATCH_BENCH_H
#define DISPATCH_BENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "dispatch_tierd.h"
#include "dispatch_util.h"

#define DISP_NW          24              /* agents / workers */
#define DISP_MAX_REPS    32
#define DISP_MS          1000000LL
#define DISP_COLD_GAP_NS (2 * DISP_MS)   /* past the agents' 50 us spin window */
#define DISP_BURN_MS     5               /* CPU per task of the efficiency loads */
#define DISP_SETTLE_NS   (200 * DISP_MS) /* pause before each measurement */
#define DISP_WF_RUNS     50              /* workflow runs per repetition */
#define DISP_WF_MAX_RUNS 1000

enum disp_contender { C_IN, C_EXT, C_LRU, C_PUSH, C_POOL, NC };
enum disp_loadkind { L_TPUT, L_HOT, L_COLD, NL };

extern const char *const disp_contender_name[NC];

struct disp_paths {
	char build[PATH_MAX];
	char tierd[PATH_MAX], agentd[PATH_MAX], team_agent[PATH_MAX];
	char pipe_worker[PATH_MAX], zmq_worker[PATH_MAX], echo_json[PATH_MAX];
	char dir[64];
};

/* Every figure, per repetition; the report takes medians. */
struct disp_figures {
	struct disp_result r[NC][NL][DISP_MAX_REPS];
	/* 2. workflow: noop runs, the futex references, burn runs */
	double wf_rt50[DISP_MAX_REPS], wf_rt99[DISP_MAX_REPS];
	double wf_wall50[DISP_MAX_REPS], wf_wall99[DISP_MAX_REPS];
	double wf_ovh50[DISP_MAX_REPS], wf_ovh99[DISP_MAX_REPS], wf_steps[DISP_MAX_REPS];
	double fx50[DISP_MAX_REPS], fx99[DISP_MAX_REPS], fxu50[DISP_MAX_REPS], fxu99[DISP_MAX_REPS];
	double wfb_eff[DISP_MAX_REPS], wfb_bound[DISP_MAX_REPS], wfb_cpu_eff[DISP_MAX_REPS];
	double wfb_wall[DISP_MAX_REPS];
	/* 3. agentd */
	double ag_stdio[DISP_MAX_REPS], ag_exec[DISP_MAX_REPS];
	double ag_direct[DISP_MAX_REPS], ag_xargs[DISP_MAX_REPS];
	/* 4. efficiency */
	double eff[DISP_MAX_REPS], eff_wall[DISP_MAX_REPS], eff_cpu[DISP_MAX_REPS];
	double eff_steal[DISP_MAX_REPS];
	int    failures;
};

struct disp_bench {
	struct disp_paths   p;
	int                 reps;
	unsigned            window;
	double              scale;
	int                 ncpus;
	bool                have_agentd;
	struct disp_tierd   a, b, c;   /* 24 agents in tier 3; the team; agentd agents */
	struct disp_proc    client;    /* external client of tierd a */
	struct disp_figures f;
};

/* A task count times DISPATCH_SCALE (at least 1). */
uint64_t disp_scaled(const struct disp_bench *B, uint64_t n);
/* Count a failed measurement and say why (err: an errno, either sign). */
void disp_fail(struct disp_bench *B, const char *what, int err);
/* bench-dispatch to an agent (agent != NULL) or a tier. */
int disp_bench_dispatch(struct disp_tierd *t, const char *agent, int tier, const struct disp_load *ld,
			struct disp_result *ret);

void disp_part_dispatch(struct disp_bench *B, enum disp_contender c, int rep);
void disp_part_workflow(struct disp_bench *B, int rep);
void disp_part_agentd(struct disp_bench *B, int rep);
void disp_part_efficiency(struct disp_bench *B, int rep);

struct disp_tally {
	int met, total, skipped;
};

void disp_report_dispatch(const struct disp_bench *B, struct disp_tally *t);
void disp_report_workflow(const struct disp_bench *B, struct disp_tally *t);
void disp_report_agentd(const struct disp_bench *B, struct disp_tally *t);
void disp_report_efficiency(const struct disp_bench *B, struct disp_tally *t);
/* Per-repetition figures on stderr (DISPATCH_RAW=1). */
void disp_report_raw(const struct disp_bench *B);

#endif
