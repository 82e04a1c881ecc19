/* SPDX-License-Identifier: MIT */
/* daemon_metrics — the exposition text tierd serves: see daemon_internal.h. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "allocator.h"
#include "cgroup/cgroup.h"
#include "cgroup/cg_knob.h"
#include "cgroup/cg_stat.h"
#include "config/config.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "intake/intake.h"
#include "wal/wal.h"
#include "monitor.h"
#include "optimiser.h"
#include "tasks.h"
#include "workflow.h"

#define LABELS_MAX 256   /* one agent's rendered labels */

/* ---- exposition format ---------------------------------------------------- */

/* A label value with backslash, double quote and newline escaped (cut to
 * fit len). */
static void label_value(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s && n + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			buf[n++] = '\\';
		buf[n++] = *s == '\n' ? 'n' : *s;
	}
	buf[n] = '\0';
}

static void put_value(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else
		fprintf(f, "%.15g", v);
}

/* HELP and TYPE of a family (help text is ours: no backslash, no newline). */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{labels,extra} value; labels and extra are rendered 'k="v"' lists
 * or NULL. */
static void sample(FILE *f, const char *name, const char *labels, const char *extra, double v)
{
	fputs(name, f);
	if (labels || extra)
		fprintf(f, "{%s%s%s}", labels ? labels : "", labels && extra ? "," : "",
			extra ? extra : "");
	fputc(' ', f);
	put_value(f, v);
	fputc('\n', f);
}

static void gauge1(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, "gauge", help);
	sample(f, name, NULL, NULL, v);
}

static void counter1(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, "counter", help);
	sample(f, name, NULL, NULL, v);
}

/* ---- per agent ------------------------------------------------------------ */

/* Families with one sample per agent; NaN leaves the agent's sample out
 * (and a family without samples is left out whole). */
enum {
	AM_UP, AM_CPU, AM_RUNQ, AM_RUNQ_WAITS, AM_READ, AM_WRITE, AM_RX, AM_TX, AM_MEM,
	AM_RESTARTS, AM_INFLIGHT, AM_QUALITY, AM_STABILITY, AM_N,
};

struct fam {
	const char *name, *type, *help;
};

static const struct fam agent_fams[AM_N] = {
	[AM_UP] = { "tierd_agent_up", "gauge",
		    "1 when the agent is ready (its hello arrived and it takes tasks), else 0" },
	[AM_CPU] = { "tierd_agent_cpu_seconds_total", "counter",
		     "CPU time used by the agent's cgroup leaf, from the accounting source" },
	[AM_RUNQ] = { "tierd_agent_runqueue_delay_seconds_total", "counter",
		      "Time the agent's threads were runnable but waiting for a CPU" },
	[AM_RUNQ_WAITS] = { "tierd_agent_runqueue_waits_total", "counter",
			    "Number of run-queue waits (after wakeup or preemption)" },
	[AM_READ] = { "tierd_agent_read_bytes_total", "counter",
		      "Bytes returned by the agent's read-family syscalls (logical IO)" },
	[AM_WRITE] = { "tierd_agent_written_bytes_total", "counter",
		       "Bytes accepted by the agent's write-family syscalls (logical IO)" },
	[AM_RX] = { "tierd_agent_network_receive_bytes_total", "counter",
		    "Network bytes received by the agent's cgroup (accounted, not limited)" },
	[AM_TX] = { "tierd_agent_network_transmit_bytes_total", "counter",
		    "Network bytes sent by the agent's cgroup (accounted, not limited)" },
	[AM_MEM] = { "tierd_agent_memory_bytes", "gauge",
		     "memory.current of the agent's leaf (resident memory without the memory controller)" },
	[AM_RESTARTS] = { "tierd_agent_restarts_total", "counter",
			  "Times tierd started the agent again after it ended" },
	[AM_INFLIGHT] = { "tierd_agent_inflight_tasks", "gauge",
			  "Tasks dispatched to the agent and not finished" },
	[AM_QUALITY] = { "tierd_agent_quality", "gauge",
			 "Mean quality (0-10) the agent reported over its recent results" },
	[AM_STABILITY] = { "tierd_agent_stability_ratio", "gauge",
			   "Share of recent monitor ticks the agent was ready" },
};

enum { AT_OK, AT_ERROR, AT_TIMEOUT, AT_CRASHED, AT_N };

struct arow {
	char     labels[LABELS_MAX];
	double   v[AM_N];
	double   tasks[AT_N];
	double   vol, invol;
	double   q[3];          /* response quantiles, seconds; NaN: no response yet */
	double   count;         /* responses observed */
	bool     view;          /* the monitor has a view of it */
};

static double cnt(uint64_t v)
{
	return (double)v;
}

static void agent_row(struct sup_daemon *d, struct sup_agent *ag, struct arow *r)
{
	const struct sup_mon_agent_view *v = sup_monitor_agent(d->monitor, ag);
	char name[2 * sizeof(ag->name)];

	label_value(name, sizeof(name), ag->name);
	snprintf(r->labels, sizeof(r->labels), "agent=\"%s\",tier=\"%d\"", name, ag->tier);
	for (int i = 0; i < AM_N; i++)
		r->v[i] = NAN;
	r->v[AM_UP] = ag->state == SUP_AG_READY;
	r->v[AM_RESTARTS] = cnt(ag->restarts);
	r->v[AM_INFLIGHT] = sup_tasks_inflight(ag);
	r->view = v != NULL;
	if (!v)
		return;
	r->v[AM_CPU] = (double)v->total.cpu_ns * 1e-9;
	r->v[AM_RUNQ] = (double)v->total.runq_delay_ns * 1e-9;
	r->v[AM_RUNQ_WAITS] = cnt(v->total.runq_waits);
	r->v[AM_READ] = cnt(v->total.read_bytes);
	r->v[AM_WRITE] = cnt(v->total.write_bytes);
	if (v->total.has_net) {
		r->v[AM_RX] = cnt(v->total.net_rx_bytes);
		r->v[AM_TX] = cnt(v->total.net_tx_bytes);
	}
	r->v[AM_MEM] = v->r.mem_bytes;
	r->v[AM_STABILITY] = v->stability;
	if (v->quality >= 0)
		r->v[AM_QUALITY] = v->quality;
	r->vol = cnt(v->total.vol_switches);
	r->invol = cnt(v->total.invol_switches);
	r->tasks[AT_OK] = cnt(v->ok);
	r->tasks[AT_ERROR] = cnt(v->errors);
	r->tasks[AT_TIMEOUT] = cnt(v->timeouts);
	r->tasks[AT_CRASHED] = cnt(v->crashed);
	r->count = cnt(v->ok + v->errors + v->timeouts + v->crashed);
	r->q[0] = v->p50_ms >= 0 ? v->p50_ms * 1e-3 : NAN;
	r->q[1] = v->p95_ms >= 0 ? v->p95_ms * 1e-3 : NAN;
	r->q[2] = v->p99_ms >= 0 ? v->p99_ms * 1e-3 : NAN;
}

static void put_agents(FILE *f, struct sup_daemon *d)
{
	static const char *const status[AT_N] = {
		"status=\"ok\"", "status=\"error\"", "status=\"timeout\"", "status=\"crashed\"",
	};
	static const char *const quantile[3] = {
		"quantile=\"0.5\"", "quantile=\"0.95\"", "quantile=\"0.99\"",
	};
	size_t n = d->fleet.n;
	struct arow *rows = calloc(n ? n : 1, sizeof(*rows));

	if (!rows) {
		fputs("# agents left out: out of memory\n", f);
		return;
	}
	for (size_t i = 0; i < n; i++)
		agent_row(d, d->fleet.agents[i], &rows[i]);
	for (int k = 0; k < AM_N; k++) {
		bool any = false;

		for (size_t i = 0; i < n && !any; i++)
			any = !isnan(rows[i].v[k]);
		if (!any)
			continue;
		family(f, agent_fams[k].name, agent_fams[k].type, agent_fams[k].help);
		for (size_t i = 0; i < n; i++)
			if (!isnan(rows[i].v[k]))
				sample(f, agent_fams[k].name, rows[i].labels, NULL, rows[i].v[k]);
	}
	family(f, "tierd_agent_context_switches_total", "counter",
	       "Context switches of the agent's threads: voluntary (blocked) or involuntary (preempted)");
	for (size_t i = 0; i < n; i++)
		if (rows[i].view) {
			sample(f, "tierd_agent_context_switches_total", rows[i].labels,
			       "kind=\"voluntary\"", rows[i].vol);
			sample(f, "tierd_agent_context_switches_total", rows[i].labels,
			       "kind=\"involuntary\"", rows[i].invol);
		}
	family(f, "tierd_agent_tasks_total", "counter",
	       "Tasks that finished while in flight on the agent, by final status");
	for (size_t i = 0; i < n; i++)
		for (int s = 0; rows[i].view && s < AT_N; s++)
			sample(f, "tierd_agent_tasks_total", rows[i].labels, status[s], rows[i].tasks[s]);
	/* Quantiles over the monitor's window of recent responses (the
	 * streaming quantiles a summary carries); the count is cumulative. */
	family(f, "tierd_agent_response_seconds", "summary",
	       "Response time of the agent's tasks, queued to finished; quantiles over the last "
	       "responses the monitor keeps");
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].view)
			continue;
		for (int q = 0; q < 3; q++)
			sample(f, "tierd_agent_response_seconds", rows[i].labels, quantile[q], rows[i].q[q]);
		sample(f, "tierd_agent_response_seconds_count", rows[i].labels, NULL, rows[i].count);
	}
	free(rows);
}

/* ---- per tier --------------------------------------------------------------- */

enum {
	TM_AGENTS, TM_READY, TM_CPU, TM_MEM, TM_PRESSURE, TM_PSI, TM_CEILING, TM_WEIGHT,
	TM_MEM_HIGH, TM_THROTTLED, TM_N,
};

static const struct fam tier_fams[TM_N] = {
	[TM_AGENTS] = { "tierd_tier_agents", "gauge", "Agents configured in the tier" },
	[TM_READY] = { "tierd_tier_agents_ready", "gauge", "Agents of the tier that are ready" },
	[TM_CPU] = { "tierd_tier_cpu_usage_cores", "gauge",
		     "CPU used by the tier's agents over the last monitor interval, in cores" },
	[TM_MEM] = { "tierd_tier_memory_bytes", "gauge", "Memory of the tier's agents, summed" },
	[TM_PRESSURE] = { "tierd_tier_cpu_pressure_ratio", "gauge",
			  "Run-queue wait / (wait + run) of the tier's agents over the last interval" },
	[TM_PSI] = { "tierd_tier_cpu_psi_some_ratio", "gauge",
		     "cpu.pressure 'some' avg10 of the tier's cgroup, as a ratio" },
	[TM_CEILING] = { "tierd_tier_cpu_ceiling_cores", "gauge",
			 "The allocator's current CPU ceiling (cpu.max) of the tier, in cores; "
			 "absent when the tier has none" },
	[TM_WEIGHT] = { "tierd_tier_cpu_weight", "gauge",
			"cpu.weight of the tier's cgroup, as the kernel has it" },
	[TM_MEM_HIGH] = { "tierd_tier_memory_high_bytes", "gauge",
			  "memory.high of the tier's cgroup; absent when it is max" },
	[TM_THROTTLED] = { "tierd_tier_cpu_throttled_seconds_total", "counter",
			   "Time the tier's cgroup was throttled by its cpu.max (cpu.stat throttled_usec)" },
};

static void tier_row(struct sup_daemon *d, int t, double *v)
{
	const struct sup_mon_tier_view *tv = sup_monitor_tier(d->monitor, t);
	const struct sup_alloc_result *cpu = sup_allocator_cpu(d->alloc);
	int fd = sup_cg_tier_fd(d->cg, (unsigned)t);
	struct sup_cg_cpu_stat st;
	uint64_t u;

	for (int i = 0; i < TM_N; i++)
		v[i] = NAN;
	v[TM_AGENTS] = tv->agents;
	v[TM_READY] = tv->ready;
	v[TM_CPU] = tv->r.cpu;
	v[TM_MEM] = tv->r.mem_bytes;
	v[TM_PRESSURE] = tv->pressure;
	if (tv->psi_some10 >= 0)
		v[TM_PSI] = tv->psi_some10 / 100.0;
	/* A zero budget: the allocator has not computed anything yet. */
	if (cpu->budget > 0 && cpu->ceiling[t - 1] >= 0)
		v[TM_CEILING] = cpu->ceiling[t - 1];
	if (fd < 0)
		return;
	if (sup_cg_ctrl_live(d->cg, SUP_CG_CPU)) {
		if (sup_cg_read_u64(fd, "cpu.weight", &u) == 0)
			v[TM_WEIGHT] = cnt(u);
		if (sup_cg_read_cpu_stat(fd, &st) == 0)
			v[TM_THROTTLED] = (double)st.throttled_usec * 1e-6;
	}
	if (sup_cg_ctrl_live(d->cg, SUP_CG_MEMORY) && sup_cg_read_u64(fd, "memory.high", &u) == 0 &&
	    u != SUP_CG_MAX)
		v[TM_MEM_HIGH] = cnt(u);
}

static void put_tiers(FILE *f, struct sup_daemon *d)
{
	double v[SUP_NTIERS][TM_N];
	char labels[SUP_NTIERS][16];

	for (int t = 1; t <= SUP_NTIERS; t++) {
		tier_row(d, t, v[t - 1]);
		snprintf(labels[t - 1], sizeof(labels[t - 1]), "tier=\"%d\"", t);
	}
	for (int k = 0; k < TM_N; k++) {
		bool any = false;

		for (int t = 0; t < SUP_NTIERS && !any; t++)
			any = !isnan(v[t][k]);
		if (!any)
			continue;
		family(f, tier_fams[k].name, tier_fams[k].type, tier_fams[k].help);
		for (int t = 0; t < SUP_NTIERS; t++)
			if (!isnan(v[t][k]))
				sample(f, tier_fams[k].name, labels[t], NULL, v[t][k]);
	}
}

/* ---- machine and tierd itself ------------------------------------------------- */

static void put_machine(FILE *f, struct sup_daemon *d)
{
	const struct sup_mon_machine *m = sup_monitor_machine(d->monitor);

	gauge1(f, "tierd_machine_cpus", "Online CPUs", m->cpus);
	gauge1(f, "tierd_machine_cpu_busy_cores", "CPUs busy over the last monitor interval "
	       "(all of the machine, from /proc/stat), in cores", m->busy);
	gauge1(f, "tierd_machine_cpu_steal_cores", "CPU time stolen by the hypervisor over the last "
	       "monitor interval, in cores", m->steal);
	gauge1(f, "tierd_machine_memory_size_bytes", "MemTotal from /proc/meminfo", m->mem_total);
	gauge1(f, "tierd_machine_memory_available_bytes", "MemAvailable from /proc/meminfo",
	       m->mem_available);
	family(f, "tierd_cgroup_controller_live", "gauge", "1 when tierd can set this controller's "
	       "limits on its cgroup v2 tree; 0 means the limits of that kind are not enforced");
	for (int c = 0; c < SUP_CG_NCTRL; c++)
		fprintf(f, "tierd_cgroup_controller_live{controller=\"%s\"} %d\n",
			sup_cg_ctrl_name((enum sup_cg_ctrl)c), sup_cg_ctrl_live(d->cg, (enum sup_cg_ctrl)c));
}

/* tierd's own CPU: its cgroup (the supervisor leaf), else its rusage. */
static double self_cpu_seconds(struct sup_daemon *d)
{
	int fd = sup_cg_supervisor_fd(d->cg);
	struct sup_cg_cpu_stat st;
	struct rusage ru;

	if (fd >= 0 && sup_cg_read_cpu_stat(fd, &st) == 0)
		return (double)st.usage_usec * 1e-6;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return NAN;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Unix time tierd started: its monotonic start moved onto the wall clock. */
static double start_time(struct sup_daemon *d)
{
	struct timespec now;
	int64_t mono = sup_loop_now(d->loop);

	clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec * 1e-9 - (double)(mono - d->started_ns) * 1e-9;
}

/* Runs started since tierd started: run ids count up from 1, and the
 * newest run is kept last. */
static double workflow_runs(struct sup_daemon *d)
{
	json_t *runs = sup_wf_list(d->wf);
	size_t n = json_array_size(runs);
	double v = n ? (double)json_integer_value(json_object_get(json_array_get(runs, n - 1), "run")) : 0;

	json_decref(runs);
	return v;
}

static void put_self(FILE *f, struct sup_daemon *d)
{
	struct sup_acct *acct = sup_monitor_acct(d->monitor);
	struct sup_tasks_stats st;
	struct sup_acct_errors e;
	const char *io_why;
	char source[1024];

	family(f, "tierd_build_info", "gauge", "tierd's version; always 1");
	fprintf(f, "tierd_build_info{version=\"%s\"} 1\n", SUP_VERSION);
	gauge1(f, "tierd_start_time_seconds", "When tierd started, seconds since the Unix epoch",
	       start_time(d));
	counter1(f, "tierd_cpu_seconds_total", "CPU time used by tierd itself (its own cgroup)",
		 self_cpu_seconds(d));
	counter1(f, "tierd_monitor_ticks_total", "Monitor samples taken",
		 cnt((uint64_t)sup_monitor_machine(d->monitor)->tick));
	family(f, "tierd_accounting_info", "gauge", "The accounting source in use (and why, for the "
	       "fallback); always 1");
	label_value(source, sizeof(source), sup_monitor_source(d->monitor));
	fprintf(f, "tierd_accounting_info{source=\"%s\",bpf=\"%s\"} 1\n", source,
		acct && sup_acct_is_bpf(acct) ? "true" : "false");
	memset(&e, 0, sizeof(e));
	if (acct)
		sup_acct_errors(acct, &e);
	family(f, "tierd_probe_errors_total", "counter", "Failures inside the eBPF probe: map full, "
	       "missed updates, other");
	sample(f, "tierd_probe_errors_total", NULL, "kind=\"map_full\"", cnt(e.map_full));
	sample(f, "tierd_probe_errors_total", NULL, "kind=\"missed\"", cnt(e.missed));
	sample(f, "tierd_probe_errors_total", NULL, "kind=\"other\"", cnt(e.other));

	sup_tasks_stats(d->tasks, &st);
	counter1(f, "tierd_tasks_submitted_total", "Tasks accepted by tierd", cnt(st.submitted));
	counter1(f, "tierd_tasks_dispatched_total", "Task dispatches to agents (a retry is another)",
		 cnt(st.dispatched));
	family(f, "tierd_tasks_finished_total", "counter", "Tasks finished, by final status");
	for (int s = 0; s < TIER_ST_COUNT; s++) {
		fprintf(f, "tierd_tasks_finished_total{status=\"%s\"} ", sup_task_status_name(s));
		put_value(f, cnt(st.finished[s]));
		fputc('\n', f);
	}
	counter1(f, "tierd_task_retries_total", "Tasks sent again after their agent died",
		 cnt(st.retries));
	counter1(f, "tierd_late_results_total", "Results dropped because the task had ended "
		 "(deadline, cancel) before its agent answered", cnt(st.late_results));
	gauge1(f, "tierd_tasks_pending", "Tasks accepted and not finished", cnt(st.pending));
	gauge1(f, "tierd_tasks_queued", "Tasks waiting in tierd for an agent", cnt(st.queued));
	gauge1(f, "tierd_results_retained", "Finished results kept for clients that left",
	       cnt(st.retained));
	gauge1(f, "tierd_results_retained_bytes", "Memory those kept results hold",
	       cnt(st.retained_bytes));
	counter1(f, "tierd_results_dropped_total", "Kept results dropped before result_retention "
		 "passed, oldest first, to stay under result_retention_max and _bytes",
		 cnt(st.retention_dropped));
	if (d->wal) {
		struct sup_wal_stats ws;

		sup_wal_stats(d->wal, &ws);
		gauge1(f, "tierd_journal_bytes", "Bytes in the task journal's segments", cnt(ws.bytes));
		gauge1(f, "tierd_journal_max_bytes", "journal_max_bytes", cnt(ws.max_bytes));
		gauge1(f, "tierd_journal_segments", "Segment files in journal_dir", cnt(ws.segments));
		gauge1(f, "tierd_journal_live_tasks", "Tasks and kept results the journal holds",
		       cnt(ws.live_refs));
		counter1(f, "tierd_journal_syncs_total", "fdatasync batches of the journal",
			 cnt(ws.syncs));
		counter1(f, "tierd_journal_sync_errors_total", "Journal syncs that failed",
			 cnt(ws.sync_errors));
		counter1(f, "tierd_journal_refused_total", "Submits refused: journal full or its "
			 "disk refused the write", cnt(ws.refused));
		gauge1(f, "tierd_journal_last_sync_seconds", "Latency of the last journal sync",
		       (double)ws.last_sync_ns * 1e-9);
	}
	counter1(f, "tierd_workflow_runs_total", "Full-team workflow runs started", workflow_runs(d));
	gauge1(f, "tierd_allocator_enabled", "1 when the allocator re-tunes the tiers' limits",
	       sup_allocator_enabled(d->alloc));
	gauge1(f, "tierd_optimiser_enabled", "1 when the optimiser may change knobs",
	       sup_optimiser_enabled(d->opt));
	gauge1(f, "tierd_io_weights_active", "1 when a weight-based io policy makes io weights "
	       "effective", sup_allocator_io_weights(d->alloc, &io_why));
}

/* ---- the NATS intake (docs/fleet.md) ------------------------------------------ */

static void put_fleet(FILE *f, struct sup_daemon *d)
{
	struct sup_intake_stats s;

	if (!d->intake)
		return;
	sup_intake_stats(d->intake, &s);
	gauge1(f, "tierd_fleet_connected", "1 while the NATS intake is connected", s.connected);
	gauge1(f, "tierd_fleet_draining", "1 while fleet-drain holds the intake", s.draining);
	gauge1(f, "tierd_fleet_leases", "Broker tasks this node holds (fetched, not yet acked)",
	       s.leases);
	counter1(f, "tierd_fleet_fetched_total", "Messages fetched from the tasks stream",
		 (double)s.fetched);
	counter1(f, "tierd_fleet_acked_total", "Task messages acked after their result was stored",
		 (double)s.acked);
	counter1(f, "tierd_fleet_termed_total", "Task messages terminated (malformed, poison)",
		 (double)s.termed);
	counter1(f, "tierd_fleet_naked_total", "Task messages handed back for want of room",
		 (double)s.naked);
	counter1(f, "tierd_fleet_duplicate_results_total", "Results refused because one was "
		 "already stored for the task id", (double)s.duplicates);
	counter1(f, "tierd_fleet_results_published_total", "Result publishes (retries included)",
		 (double)s.published);
	counter1(f, "tierd_fleet_publish_errors_total", "Result publishes or acks that failed",
		 (double)s.publish_errors);
	counter1(f, "tierd_fleet_in_progress_total", "In-progress (+WPI) lease extensions sent",
		 (double)s.in_progress);
	counter1(f, "tierd_fleet_poison_total", "Tasks ended crashed after max_deliver",
		 (double)s.poison);
	counter1(f, "tierd_fleet_connects_total", "Connections (first and reconnects) to NATS",
		 (double)s.reconnects);
	counter1(f, "tierd_fleet_thread_cpu_seconds_total", "CPU of the intake's fetch thread, a "
		 "thread of tierd (also counted in tierd's own CPU)", s.thread_cpu_s);
}

int sup_metrics_build(void *daemon, char **ret_text, size_t *ret_len)
{
	struct sup_daemon *d = daemon;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	bool bad;

	if (!f)
		return -errno;
	put_agents(f, d);
	put_tiers(f, d);
	put_machine(f, d);
	put_self(f, d);
	put_fleet(f, d);
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(text);
		return -ENOMEM;
	}
	*ret_text = text;
	*ret_len = len;
	return 0;
}
