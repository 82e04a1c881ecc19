/* SPDX-License-Identifier: MIT */
/*
 * monitor — the seed's real-time performance monitor.
 *
 * Every monitor_interval it samples, per agent: CPU, run-queue delay,
 * memory, IO and network (from the accounting source), response times of
 * finished tasks (p50/p95/p99 over a bounded window), successes, timeouts,
 * errors, quality, restarts and stability (share of recent ticks it was
 * ready); per tier, the sums; for the machine, CPU busy and steal from
 * /proc/stat and memory from /proc/meminfo. It keeps a bounded history,
 * turns threshold crossings into alert events (raised once, cleared once),
 * then lets the allocator and the optimiser act on the snapshot.
 */
#ifndef SUP_MONITOR_H
#define SUP_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "acct.h"

#define SUP_MON_RESP_WINDOW 512   /* response times kept per agent */
#define SUP_MON_HISTORY     300   /* ticks of per-tier history */
#define SUP_MON_STABILITY   60    /* ticks over which stability is judged */

struct sup_agent;
struct sup_agent_observers;
struct sup_cg;
struct sup_config;
struct sup_fleet;
struct sup_journal;
struct sup_loop;
struct sup_monitor;
struct sup_wf;

/* What the monitor reads and reports to: the daemon's narrow views, not the
 * daemon. Everything outlives the monitor. */
struct sup_monitor_deps {
	struct sup_loop            *loop;
	struct sup_cg              *cg;
	struct sup_config *const   *conf;      /* the current config: reloads replace it */
	const struct sup_fleet     *fleet;     /* the agents it samples */
	const struct sup_journal   *journal;   /* alerts */
	struct sup_agent_observers *observers; /* it hears of replaced leaves */
	struct sup_wf              *wf;        /* the last run, for alerts */
};

/* One tick's view of an agent (rates per second over the last interval). */
struct sup_mon_rates {
	double cpu;            /* cores */
	double runq;           /* seconds waited to run, per second */
	double read_bps, write_bps, rx_bps, tx_bps;
	double mem_bytes;      /* memory.current, or RSS without the memory controller */
	bool   has_net;
};

struct sup_mon_agent_view {
	struct sup_mon_rates r;
	double   p50_ms, p95_ms, p99_ms;  /* over the response window; < 0 none */
	uint64_t ok, errors, timeouts, crashed;
	double   quality;                 /* mean over the window; < 0 none */
	double   stability;               /* 0..1 */
	struct sup_acct_sample total;     /* cumulative counters */
};

struct sup_mon_tier_view {
	struct sup_mon_rates r;
	double   p95_ms;
	uint64_t ok, errors, timeouts;
	double   quality;
	double   pressure;                /* waiting / (waiting + running), 0..1 */
	double   psi_some10;              /* cgroup cpu.pressure avg10 (%), < 0 n/a */
	unsigned agents, ready;
};

struct sup_mon_machine {
	double   cpus;                    /* online CPUs */
	double   busy;                    /* cores busy, all of the machine */
	double   steal;                   /* cores stolen by the hypervisor */
	double   fleet_cpu;               /* cores used by the agents */
	double   self_cpu;                /* cores used by tierd itself */
	double   mem_total, mem_available;
	double   fleet_mem;
	double   utilisation;             /* busy / cpus */
	int64_t  tick;                    /* number of samples taken */
};

struct sup_monitor *sup_monitor_new(const struct sup_monitor_deps *deps);
/* Open the accounting source (loads the eBPF probe: tens of ms, so tierd
 * does it once the agents are spawned) and track every agent added so far. */
int sup_monitor_start(struct sup_monitor *m);
void sup_monitor_free(struct sup_monitor *m);

/* Start/stop watching an agent (tracks its leaf in the accounting source). */
int  sup_monitor_add(struct sup_monitor *m, struct sup_agent *ag);
void sup_monitor_remove(struct sup_monitor *m, struct sup_agent *ag);
/* Its leaf directory was replaced: track the new one. */
void sup_monitor_leaf_changed(struct sup_monitor *m, struct sup_agent *ag);

/* A task finished on ag (called by the task table). */
void sup_monitor_task_done(struct sup_monitor *m, struct sup_agent *ag, int status,
			   int64_t response_ns, double quality);

/* CPU time used so far by every agent together (ns), read now. */
uint64_t sup_monitor_fleet_cpu_ns(struct sup_monitor *m);

/* Take a sample now (the daemon's tick calls this). */
void sup_monitor_tick(struct sup_monitor *m);

const struct sup_mon_machine *sup_monitor_machine(const struct sup_monitor *m);
const struct sup_mon_tier_view *sup_monitor_tier(const struct sup_monitor *m, int tier);
const struct sup_mon_agent_view *sup_monitor_agent(const struct sup_monitor *m,
						   const struct sup_agent *ag);
const char *sup_monitor_source(const struct sup_monitor *m);
struct sup_acct *sup_monitor_acct(struct sup_monitor *m);

/* JSON for `tierctl top` (agents, tiers, machine) and the history. */
json_t *sup_monitor_json(struct sup_monitor *m);
json_t *sup_monitor_history_json(struct sup_monitor *m, int tier, unsigned max);

/* Percentile of a small sample (sorts a copy). */
double sup_monitor_pct(const int64_t *v, unsigned n, double q);

/* Live upgrade: the accounting source into the state, and the new
 * binary's copy of it instead of sup_monitor_start (0, or -EINVAL with the
 * error in r). */
struct sup_ho_w;
struct sup_ho_r;
int sup_monitor_handover(struct sup_monitor *m, struct sup_ho_w *w);
int sup_monitor_adopt(struct sup_monitor *m, struct sup_ho_r *r);

/* live upgrade (monitor_state.c): per agent (by name) its windows,
 * counters, stability ticks and accounting baseline, per tier the views
 * and history, the machine's figures and baselines, the alerts raised,
 * into SUP_HO_TAG_MONITOR. Restore after sup_monitor_start and the adds
 * (an agent of the state not monitored now is skipped). 0 or -errno with
 * the problem named through sup_ho_r_fail (m untouched then). */
struct sup_ho_w;
struct sup_ho_r;
int sup_monitor_save(const struct sup_monitor *m, struct sup_ho_w *w);
int sup_monitor_restore(struct sup_monitor *m, struct sup_ho_r *r);

#endif
