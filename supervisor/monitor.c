/* SPDX-License-Identifier: MIT */
/* The monitor: see monitor.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup/cgroup.h"
#include "cgroup/cg_leaf.h"
#include "cgroup/cg_stat.h"
#include "cgroup/cg_util.h"
#include "config/config.h"
#include "events.h"
#include "fleet.h"
#include "journal.h"
#include "monitor.h"
#include "handover/handover.h"

#include "monitor_internal.h"
#include "tasks.h"
#include "workflow.h"

static struct mon_agent *ma_of(const struct sup_agent *ag)
{
	return ag->mon_state;
}

/* ---- machine -------------------------------------------------------------- */

static void read_proc_stat(struct sup_monitor *m, uint64_t *busy, uint64_t *steal, uint64_t *total)
{
	unsigned long long v[10] = { 0 };
	char line[256];
	FILE *f = fopen("/proc/stat", "re");

	*busy = *steal = *total = 0;
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) >= 8) {
		*total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		*steal = v[7];
		*busy = *total - v[3] - v[4] - v[7];
	}
	fclose(f);
	(void)m;
}

static void read_meminfo(double *total, double *avail)
{
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb;

	*total = *avail = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			*total = (double)kb * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			*avail = (double)kb * 1024;
	}
	fclose(f);
}

/* Resident memory of the processes in a leaf, for hosts without the
 * memory controller. */
static double leaf_rss(int leaf_fd)
{
	pid_t pids[256];
	int n = sup_cg_list_pids(leaf_fd, pids, 256);
	long page = sysconf(_SC_PAGESIZE);
	double rss = 0;

	for (int i = 0; i < n; i++) {
		char path[64];
		unsigned long long size, res;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/statm", (int)pids[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu", &size, &res) == 2)
			rss += (double)res * (double)page;
		fclose(f);
	}
	return rss;
}

/* ---- agents ------------------------------------------------------------------ */

int sup_monitor_add(struct sup_monitor *m, struct sup_agent *ag)
{
	struct mon_agent *ma = calloc(1, sizeof(*ma));

	if (!ma)
		return -ENOMEM;
	ma->ag = ag;
	ag->mon_state = ma;
	ma->next = m->agents;
	m->agents = ma;
	sup_monitor_leaf_changed(m, ag);
	return 0;
}

void sup_monitor_leaf_changed(struct sup_monitor *m, struct sup_agent *ag)
{
	struct mon_agent *ma = ma_of(ag);

	if (!ma)
		return;
	if (ma->tracked)
		sup_acct_untrack(m->acct, ma->cgid);
	ma->tracked = m->acct && sup_acct_track(m->acct, sup_cg_leaf_fd(ag->leaf), &ma->cgid) == 0;
	ma->have_last = false;
}

void sup_monitor_remove(struct sup_monitor *m, struct sup_agent *ag)
{
	struct mon_agent **pp, *ma = ma_of(ag);

	if (!ma)
		return;
	for (pp = &m->agents; *pp; pp = &(*pp)->next)
		if (*pp == ma) {
			*pp = ma->next;
			break;
		}
	if (ma->tracked)
		sup_acct_untrack(m->acct, ma->cgid);
	ag->mon_state = NULL;
	free(ma);
}

void sup_monitor_task_done(struct sup_monitor *m, struct sup_agent *ag, int status,
			   int64_t response_ns, double quality)
{
	struct mon_agent *ma = ag ? ma_of(ag) : NULL;

	(void)m;
	if (!ma)
		return;
	switch (status) {
	case TIER_ST_OK:
		ma->view.ok++;
		break;
	case TIER_ST_TIMEOUT:
		ma->view.timeouts++;
		break;
	case TIER_ST_CRASHED:
		ma->view.crashed++;
		break;
	default:
		ma->view.errors++;
		break;
	}
	ma->resp[ma->resp_pos++ % SUP_MON_RESP_WINDOW] = response_ns;
	if (ma->nresp < SUP_MON_RESP_WINDOW)
		ma->nresp++;
	if (quality >= 0) {
		ma->qual[ma->qual_pos++ % SUP_MON_RESP_WINDOW] = (float)quality;
		if (ma->nqual < SUP_MON_RESP_WINDOW)
			ma->nqual++;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

double sup_monitor_pct(const int64_t *v, unsigned n, double q)
{
	int64_t tmp[SUP_MON_RESP_WINDOW * 4];
	unsigned i;

	if (!n)
		return -1;
	if (n > sizeof(tmp) / sizeof(tmp[0]))
		n = sizeof(tmp) / sizeof(tmp[0]);
	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_i64);
	i = (unsigned)(q * (n - 1) + 0.5);
	return (double)tmp[i] / 1e6;
}

static void sample_agent(struct sup_monitor *m, struct mon_agent *ma, double dt)
{
	struct sup_agent *ag = ma->ag;
	struct sup_mon_agent_view *v = &ma->view;
	struct sup_acct_sample s;
	double qsum = 0;

	memset(&v->r, 0, sizeof(v->r));
	if (ma->tracked && sup_acct_read(m->acct, ma->cgid, sup_cg_leaf_fd(ag->leaf), &s) == 0) {
		if (ma->have_last && dt > 0) {
			v->r.cpu = (double)(s.cpu_ns - ma->last.cpu_ns) * 1e-9 / dt;
			v->r.runq = (double)(s.runq_delay_ns - ma->last.runq_delay_ns) * 1e-9 / dt;
			v->r.read_bps = (double)(s.read_bytes - ma->last.read_bytes) / dt;
			v->r.write_bps = (double)(s.write_bytes - ma->last.write_bytes) / dt;
			v->r.rx_bps = (double)(s.net_rx_bytes - ma->last.net_rx_bytes) / dt;
			v->r.tx_bps = (double)(s.net_tx_bytes - ma->last.net_tx_bytes) / dt;
		}
		v->r.has_net = s.has_net;
		v->total = s;
		ma->last = s;
		ma->have_last = true;
	}
	if (sup_cg_ctrl_live(m->dep.cg, SUP_CG_MEMORY)) {
		uint64_t cur;

		if (sup_cg_read_u64(sup_cg_leaf_fd(ag->leaf), "memory.current", &cur) == 0)
			v->r.mem_bytes = (double)cur;
	} else if (ag->inc) {
		v->r.mem_bytes = leaf_rss(sup_cg_leaf_fd(ag->leaf));
	}
	v->p50_ms = sup_monitor_pct(ma->resp, ma->nresp, 0.50);
	v->p95_ms = sup_monitor_pct(ma->resp, ma->nresp, 0.95);
	v->p99_ms = sup_monitor_pct(ma->resp, ma->nresp, 0.99);
	for (unsigned i = 0; i < ma->nqual; i++)
		qsum += ma->qual[i];
	v->quality = ma->nqual ? qsum / ma->nqual : -1;
	ma->ready[ma->ready_pos++ % SUP_MON_STABILITY] = ag->state == SUP_AG_READY;
	if (ma->nready < SUP_MON_STABILITY)
		ma->nready++;
	{
		unsigned up = 0;

		for (unsigned i = 0; i < ma->nready; i++)
			up += ma->ready[i];
		v->stability = ma->nready ? (double)up / ma->nready : 1;
	}
}

uint64_t sup_monitor_fleet_cpu_ns(struct sup_monitor *m)
{
	uint64_t total = 0;

	for (struct mon_agent *ma = m->agents; ma; ma = ma->next) {
		struct sup_acct_sample s;

		if (ma->tracked && sup_acct_read(m->acct, ma->cgid, sup_cg_leaf_fd(ma->ag->leaf), &s) == 0)
			total += s.cpu_ns;
	}
	return total;
}

/* ---- tiers, history, alerts ------------------------------------------------- */

static void sample_tiers(struct sup_monitor *m)
{
	int64_t resp[SUP_NTIERS + 1][SUP_MON_RESP_WINDOW * 4];
	unsigned nresp[SUP_NTIERS + 1] = { 0 }, nq[SUP_NTIERS + 1] = { 0 };
	double qsum[SUP_NTIERS + 1] = { 0 };

	memset(m->tiers, 0, sizeof(m->tiers));
	for (struct mon_agent *ma = m->agents; ma; ma = ma->next) {
		struct sup_mon_tier_view *t = &m->tiers[ma->ag->tier];
		const struct sup_mon_agent_view *v = &ma->view;

		t->agents++;
		t->ready += ma->ag->state == SUP_AG_READY;
		t->r.cpu += v->r.cpu;
		t->r.runq += v->r.runq;
		t->r.read_bps += v->r.read_bps;
		t->r.write_bps += v->r.write_bps;
		t->r.rx_bps += v->r.rx_bps;
		t->r.tx_bps += v->r.tx_bps;
		t->r.mem_bytes += v->r.mem_bytes;
		t->r.has_net |= v->r.has_net;
		t->ok += v->ok;
		t->errors += v->errors + v->crashed;
		t->timeouts += v->timeouts;
		for (unsigned i = 0; i < ma->nresp && nresp[ma->ag->tier] < SUP_MON_RESP_WINDOW * 4; i++)
			resp[ma->ag->tier][nresp[ma->ag->tier]++] = ma->resp[i];
		for (unsigned i = 0; i < ma->nqual; i++) {
			qsum[ma->ag->tier] += ma->qual[i];
			nq[ma->ag->tier]++;
		}
	}
	for (int tier = 1; tier <= SUP_NTIERS; tier++) {
		struct sup_mon_tier_view *t = &m->tiers[tier];
		struct sup_cg_psi psi;
		double run = t->r.cpu + t->r.runq;

		t->p95_ms = sup_monitor_pct(resp[tier], nresp[tier], 0.95);
		t->quality = nq[tier] ? qsum[tier] / nq[tier] : -1;
		t->pressure = run > 0 ? t->r.runq / run : 0;
		t->psi_some10 = sup_cg_read_psi(sup_cg_tier_fd(m->dep.cg, (unsigned)tier), SUP_CG_PSI_CPU,
						&psi) == 0 ? psi.some.avg10 : -1;
	}
}

static void history_push(struct sup_monitor *m, int64_t now)
{
	unsigned slot = m->hist_pos++ % SUP_MON_HISTORY;

	for (int tier = 0; tier <= SUP_NTIERS; tier++) {
		const struct sup_mon_tier_view *t = &m->tiers[tier];
		struct hist_point *p = &m->hist[tier][slot];

		p->ts_ns = now;
		if (tier == 0) {
			p->cpu = (float)m->m.busy;
			p->mem = (float)(m->m.mem_total - m->m.mem_available);
			p->runq = 0;
			p->p95_ms = -1;
			p->quality = -1;
			continue;
		}
		p->cpu = (float)t->r.cpu;
		p->runq = (float)t->r.runq;
		p->p95_ms = (float)t->p95_ms;
		p->mem = (float)t->r.mem_bytes;
		p->quality = (float)t->quality;
	}
	if (m->nhist < SUP_MON_HISTORY)
		m->nhist++;
}

static const char *const alert_names[AL_N] = {
	"response_time", "utilisation", "efficiency", "quality", "stability",
};

static void alert(struct sup_monitor *m, int which, int tier, bool over, double value, double limit)
{
	if (over == m->alert[which][tier])
		return;
	m->alert[which][tier] = over;
	sup_journal_event(m->dep.journal, over ? SUP_LOG_WARNING : SUP_LOG_NOTICE, "alert",
			 json_pack("{s:s, s:i, s:s, s:f, s:f}", "metric", alert_names[which], "tier", tier,
				   "state", over ? "raised" : "cleared", "value", value, "threshold", limit),
			 "alert %s: %s%s%s = %.3g (threshold %.3g)", over ? "raised" : "cleared",
			 alert_names[which], tier ? " of tier " : "", tier ? (tier == 1 ? "1" : tier == 2 ? "2" :
			 tier == 3 ? "3" : "4") : "", value, limit);
}

static void check_thresholds(struct sup_monitor *m)
{
	const struct sup_supervisor_conf *s = &(*m->dep.conf)->sup;
	struct sup_wf_run_stats last;

	alert(m, AL_UTIL, 0, m->m.utilisation * 100 > s->utilisation_threshold, m->m.utilisation * 100,
	      s->utilisation_threshold);
	if (sup_wf_recent(m->dep.wf, &last, 1) == 1)
		alert(m, AL_EFFICIENCY, 0, last.efficiency * 100 < s->efficiency_target,
		      last.efficiency * 100, s->efficiency_target);
	for (int tier = 1; tier <= SUP_NTIERS; tier++) {
		const struct sup_mon_tier_view *t = &m->tiers[tier];
		double worst = 1;

		if (!t->agents)
			continue;
		if (t->p95_ms >= 0)
			alert(m, AL_RESPONSE, tier, t->p95_ms * 1e6 > (double)s->response_time_target_ns,
			      t->p95_ms / 1000.0, (double)s->response_time_target_ns * 1e-9);
		if (t->quality >= 0)
			alert(m, AL_QUALITY, tier, t->quality < s->quality_threshold, t->quality,
			      s->quality_threshold);
		for (struct mon_agent *ma = m->agents; ma; ma = ma->next)
			if (ma->ag->tier == tier && ma->view.stability < worst)
				worst = ma->view.stability;
		alert(m, AL_STABILITY, tier, worst * 100 < s->stability_target, worst * 100,
		      s->stability_target);
	}
}

/* ---- the tick ---------------------------------------------------------------- */

void sup_monitor_tick(struct sup_monitor *m)
{
	int64_t now = sup_loop_now(m->dep.loop);
	double dt = m->last_ns ? (double)(now - m->last_ns) * 1e-9 : 0;
	uint64_t busy, steal, total;
	struct sup_cg_cpu_stat self;

	read_proc_stat(m, &busy, &steal, &total);
	if (m->stat_total && total > m->stat_total) {
		double dtot = (double)(total - m->stat_total);

		m->m.busy = (double)(busy - m->stat_busy) / dtot * m->m.cpus;
		m->m.steal = (double)(steal - m->stat_steal) / dtot * m->m.cpus;
	}
	m->stat_busy = busy;
	m->stat_steal = steal;
	m->stat_total = total;
	read_meminfo(&m->m.mem_total, &m->m.mem_available);
	if (sup_cg_read_cpu_stat(sup_cg_supervisor_fd(m->dep.cg), &self) == 0) {
		if (m->self_usec && dt > 0)
			m->m.self_cpu = (double)(self.usage_usec - m->self_usec) * 1e-6 / dt;
		m->self_usec = self.usage_usec;
	}
	for (struct mon_agent *ma = m->agents; ma; ma = ma->next)
		sample_agent(m, ma, dt);
	sample_tiers(m);
	m->m.fleet_cpu = m->m.fleet_mem = 0;
	for (int tier = 1; tier <= SUP_NTIERS; tier++) {
		m->m.fleet_cpu += m->tiers[tier].r.cpu;
		m->m.fleet_mem += m->tiers[tier].r.mem_bytes;
	}
	m->m.utilisation = m->m.cpus > 0 ? m->m.busy / m->m.cpus : 0;
	m->m.tick++;
	m->last_ns = now;
	history_push(m, now);
	check_thresholds(m);
}

/* ---- views -------------------------------------------------------------------- */

const struct sup_mon_machine *sup_monitor_machine(const struct sup_monitor *m)
{
	return &m->m;
}

const struct sup_mon_tier_view *sup_monitor_tier(const struct sup_monitor *m, int tier)
{
	return &m->tiers[tier];
}

const struct sup_mon_agent_view *sup_monitor_agent(const struct sup_monitor *m,
						   const struct sup_agent *ag)
{
	(void)m;
	return ag->mon_state ? &ma_of(ag)->view : NULL;
}

const char *sup_monitor_source(const struct sup_monitor *m)
{
	return m->acct ? sup_acct_source(m->acct) : "not started yet";
}

struct sup_acct *sup_monitor_acct(struct sup_monitor *m)
{
	return m->acct;
}

static json_t *num_or_null(double v)
{
	return v >= 0 ? json_real(v) : json_null();
}

static json_t *rates_json(const struct sup_mon_rates *r)
{
	json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:f}", "cpu", r->cpu, "runq", r->runq,
			      "read_bps", r->read_bps, "write_bps", r->write_bps, "mem_bytes", r->mem_bytes);

	json_object_set_new(o, "rx_bps", r->has_net ? json_real(r->rx_bps) : json_null());
	json_object_set_new(o, "tx_bps", r->has_net ? json_real(r->tx_bps) : json_null());
	return o;
}

json_t *sup_monitor_json(struct sup_monitor *m)
{
	json_t *agents = json_array(), *tiers = json_array();
	struct sup_acct_errors e;

	for (size_t i = 0; i < m->dep.fleet->n; i++) {
		struct sup_agent *ag = m->dep.fleet->agents[i];
		const struct sup_mon_agent_view *v = sup_monitor_agent(m, ag);
		json_t *o;

		if (!v)
			continue;
		o = json_pack("{s:s, s:i, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:f, s:I, s:i}",
			      "name", ag->name, "tier", ag->tier, "state", sup_agent_state_name(ag->state),
			      "rates", rates_json(&v->r), "p50_ms", num_or_null(v->p50_ms),
			      "p95_ms", num_or_null(v->p95_ms), "p99_ms", num_or_null(v->p99_ms),
			      "ok", (json_int_t)v->ok, "errors", (json_int_t)v->errors,
			      "timeouts", (json_int_t)v->timeouts, "crashed", (json_int_t)v->crashed,
			      "quality", num_or_null(v->quality), "stability", v->stability,
			      "restarts", (json_int_t)ag->restarts, "inflight", (int)sup_tasks_inflight(ag));
		json_object_set_new(o, "cpu_seconds_total", json_real((double)v->total.cpu_ns * 1e-9));
		json_object_set_new(o, "runq_seconds_total", json_real((double)v->total.runq_delay_ns * 1e-9));
		json_array_append_new(agents, o);
	}
	for (int tier = 1; tier <= SUP_NTIERS; tier++) {
		const struct sup_mon_tier_view *t = &m->tiers[tier];

		json_array_append_new(tiers, json_pack("{s:i, s:i, s:i, s:o, s:o, s:I, s:I, s:I, s:o, s:f, s:o}",
			"tier", tier, "agents", (int)t->agents, "ready", (int)t->ready, "rates",
			rates_json(&t->r), "p95_ms", num_or_null(t->p95_ms), "ok", (json_int_t)t->ok,
			"errors", (json_int_t)t->errors, "timeouts", (json_int_t)t->timeouts,
			"quality", num_or_null(t->quality), "pressure", t->pressure,
			"psi_some10", num_or_null(t->psi_some10)));
	}
	memset(&e, 0, sizeof(e));
	if (m->acct)
		sup_acct_errors(m->acct, &e);
	return json_pack("{s:o, s:o, s:{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}, s:s, s:{s:I, s:I, s:I}}",
		"agents", agents, "tiers", tiers,
		"machine", "cpus", m->m.cpus, "busy", m->m.busy, "steal", m->m.steal,
		"fleet_cpu", m->m.fleet_cpu, "self_cpu", m->m.self_cpu, "mem_total", m->m.mem_total,
		"mem_available", m->m.mem_available, "utilisation", m->m.utilisation,
		"tick", (json_int_t)m->m.tick,
		"source", sup_monitor_source(m),
		"probe_errors", "map_full", (json_int_t)e.map_full, "missed", (json_int_t)e.missed,
		"other", (json_int_t)e.other);
}

json_t *sup_monitor_history_json(struct sup_monitor *m, int tier, unsigned max)
{
	json_t *a = json_array();
	unsigned n = m->nhist < max ? m->nhist : max;

	if (tier < 0 || tier > SUP_NTIERS)
		return a;
	for (unsigned k = n; k > 0; k--) {
		const struct hist_point *p = &m->hist[tier][(m->hist_pos - k) % SUP_MON_HISTORY];

		json_array_append_new(a, json_pack("{s:f, s:f, s:f, s:o, s:f, s:o}",
			"t", (double)p->ts_ns * 1e-9, "cpu", p->cpu, "runq", p->runq,
			"p95_ms", num_or_null(p->p95_ms), "mem", p->mem, "quality", num_or_null(p->quality)));
	}
	return a;
}

static void observed_leaf(void *arg, struct sup_agent *ag)
{
	sup_monitor_leaf_changed(arg, ag);
}

struct sup_monitor *sup_monitor_new(const struct sup_monitor_deps *deps)
{
	struct sup_monitor *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->dep = *deps;
	m->hz = sysconf(_SC_CLK_TCK);
	m->m.cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
	m->obs = (struct sup_agent_observer){ .leaf = observed_leaf, .arg = m };
	sup_agent_observe(m->dep.observers, &m->obs);
	return m;
}

int sup_monitor_start(struct sup_monitor *m)
{
	struct sup_acct_opts o = { .sz = sizeof(o) };

	o.tier_fds[0] = -1;
	for (int t = 1; t <= SUP_NTIERS; t++)
		o.tier_fds[t] = sup_cg_tier_fd(m->dep.cg, (unsigned)t);
	o.force_fallback = getenv("TIERD_NO_BPF") != NULL;
	m->acct = sup_acct_open(&o);
	if (!m->acct)
		return -errno;
	for (struct mon_agent *ma = m->agents; ma; ma = ma->next)
		sup_monitor_leaf_changed(m, ma->ag);
	return 0;
}

/* Live upgrade: the accounting source's maps and links go across (no
 * counter reset, no probe load); the agents' leaves are tracked in them
 * already. */
int sup_monitor_handover(struct sup_monitor *m, struct sup_ho_w *w)
{
	(void)m;
	(void)w;
	return 0;   /* the probe's hand-over comes with acct's support for it */
}

int sup_monitor_adopt(struct sup_monitor *m, struct sup_ho_r *r)
{
	struct sup_acct_opts o = { .sz = sizeof(o) };
	char err[256];

	o.tier_fds[0] = -1;
	for (int t = 1; t <= SUP_NTIERS; t++)
		o.tier_fds[t] = sup_cg_tier_fd(m->dep.cg, (unsigned)t);
	o.force_fallback = getenv("TIERD_NO_BPF") != NULL;
	m->acct = sup_acct_open(&o);
	if (!m->acct) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		sup_ho_r_fail(r, "accounting: %s", err);
		return -EINVAL;
	}
	for (struct mon_agent *ma = m->agents; ma; ma = ma->next) {
		ma->tracked = sup_acct_track(m->acct, sup_cg_leaf_fd(ma->ag->leaf), &ma->cgid) == 0;
		ma->have_last = false;
	}
	return 0;
}

void sup_monitor_free(struct sup_monitor *m)
{
	if (!m)
		return;
	sup_agent_unobserve(m->dep.observers, &m->obs);
	while (m->agents)
		sup_monitor_remove(m, m->agents->ag);
	sup_acct_close(m->acct);
	free(m);
}
