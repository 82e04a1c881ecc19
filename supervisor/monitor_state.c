/* SPDX-License-Identifier: MIT */
/*
 * The monitor's part of the live-upgrade state (SUP_HO_TAG_MONITOR,
 * docs/handover.md): per agent (by name) its response and quality windows,
 * counters, stability ticks and the accounting sample its rates are the
 * difference from; per tier the last views and the history; the machine's
 * figures and the /proc/stat and self-CPU baselines; which alerts are
 * raised. So rates do not spike, alerts are not raised twice and `tierctl
 * top` shows the same figures after an upgrade. Section version 1:
 *
 *   u32 ntiers (SUP_NTIERS + 1), u32 resp_window, u32 history,
 *   u32 stability, u32 nalerts; machine: f64 busy, steal, fleet_cpu,
 *   self_cpu, mem_total, mem_available, fleet_mem, utilisation, i64 tick;
 *   i64 last_ns, u64 stat_busy, stat_steal, stat_total, self_usec;
 *   u8 alert[nalerts][ntiers]; per tier 0..SUP_NTIERS its view (rates,
 *   f64 p95_ms, u64 ok, errors, timeouts, f64 quality, pressure,
 *   psi_some10, u32 agents, ready); u32 nhist, u32 hist_pos, then every
 *   history point of every tier (i64 ts_ns, f64 cpu, runq, p95_ms, mem,
 *   quality); u32 nagents, then per agent: str name, u8 have_last,
 *   sample last, view (rates, f64 p50, p95, p99, u64 ok, errors, timeouts,
 *   crashed, f64 quality, stability, sample total), u32 nresp, resp_pos,
 *   i64 resp[nresp], u32 nqual, qual_pos, f64 qual[nqual], u32 nready,
 *   ready_pos, u8 ready[nready].
 *   rates: f64 cpu, runq, read_bps, write_bps, rx_bps, tx_bps, mem_bytes,
 *   u8 has_net. sample: u64 cpu_ns, runq_delay_ns, runq_waits,
 *   vol_switches, invol_switches, read_bytes, write_bytes, net_rx_bytes,
 *   net_tx_bytes, u32 nhist, u64 runq_hist[nhist], u8 has_net, has_io,
 *   has_hist.
 *
 * Restore after sup_monitor_start and after every agent was added: an
 * agent of the state with no monitored agent of that name is skipped. The
 * baseline stays valid because the accounting source is handed over too
 * (its counters are not reset).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "handover/handover.h"
#include "monitor_internal.h"

#define MON_STATE_VERSION 1
#define MON_STATE_AGENTS  65536u

/* ---- save ------------------------------------------------------------------- */

static void save_rates(struct sup_ho_w *w, const struct sup_mon_rates *r)
{
	sup_ho_w_f64(w, r->cpu);
	sup_ho_w_f64(w, r->runq);
	sup_ho_w_f64(w, r->read_bps);
	sup_ho_w_f64(w, r->write_bps);
	sup_ho_w_f64(w, r->rx_bps);
	sup_ho_w_f64(w, r->tx_bps);
	sup_ho_w_f64(w, r->mem_bytes);
	sup_ho_w_u8(w, r->has_net);
}

static void save_sample(struct sup_ho_w *w, const struct sup_acct_sample *s)
{
	sup_ho_w_u64(w, s->cpu_ns);
	sup_ho_w_u64(w, s->runq_delay_ns);
	sup_ho_w_u64(w, s->runq_waits);
	sup_ho_w_u64(w, s->vol_switches);
	sup_ho_w_u64(w, s->invol_switches);
	sup_ho_w_u64(w, s->read_bytes);
	sup_ho_w_u64(w, s->write_bytes);
	sup_ho_w_u64(w, s->net_rx_bytes);
	sup_ho_w_u64(w, s->net_tx_bytes);
	sup_ho_w_u32(w, SUP_ACCT_HIST);
	for (int i = 0; i < SUP_ACCT_HIST; i++)
		sup_ho_w_u64(w, s->runq_hist[i]);
	sup_ho_w_u8(w, s->has_net);
	sup_ho_w_u8(w, s->has_io);
	sup_ho_w_u8(w, s->has_hist);
}

static void save_agent(struct sup_ho_w *w, const struct mon_agent *ma)
{
	const struct sup_mon_agent_view *v = &ma->view;

	sup_ho_w_str(w, ma->ag->name);
	sup_ho_w_u8(w, ma->have_last);
	save_sample(w, &ma->last);
	save_rates(w, &v->r);
	sup_ho_w_f64(w, v->p50_ms);
	sup_ho_w_f64(w, v->p95_ms);
	sup_ho_w_f64(w, v->p99_ms);
	sup_ho_w_u64(w, v->ok);
	sup_ho_w_u64(w, v->errors);
	sup_ho_w_u64(w, v->timeouts);
	sup_ho_w_u64(w, v->crashed);
	sup_ho_w_f64(w, v->quality);
	sup_ho_w_f64(w, v->stability);
	save_sample(w, &v->total);
	sup_ho_w_u32(w, ma->nresp);
	sup_ho_w_u32(w, ma->resp_pos);
	for (unsigned i = 0; i < ma->nresp; i++)
		sup_ho_w_i64(w, ma->resp[i]);
	sup_ho_w_u32(w, ma->nqual);
	sup_ho_w_u32(w, ma->qual_pos);
	for (unsigned i = 0; i < ma->nqual; i++)
		sup_ho_w_f64(w, ma->qual[i]);
	sup_ho_w_u32(w, ma->nready);
	sup_ho_w_u32(w, ma->ready_pos);
	for (unsigned i = 0; i < ma->nready; i++)
		sup_ho_w_u8(w, ma->ready[i]);
}

int sup_monitor_save(const struct sup_monitor *m, struct sup_ho_w *w)
{
	const struct sup_mon_machine *mm = &m->m;
	uint32_t n = 0;

	for (const struct mon_agent *ma = m->agents; ma; ma = ma->next)
		n++;
	if (n > MON_STATE_AGENTS)
		return -E2BIG;
	sup_ho_w_begin(w, SUP_HO_TAG_MONITOR, MON_STATE_VERSION);
	sup_ho_w_u32(w, SUP_NTIERS + 1);
	sup_ho_w_u32(w, SUP_MON_RESP_WINDOW);
	sup_ho_w_u32(w, SUP_MON_HISTORY);
	sup_ho_w_u32(w, SUP_MON_STABILITY);
	sup_ho_w_u32(w, AL_N);
	sup_ho_w_f64(w, mm->busy);
	sup_ho_w_f64(w, mm->steal);
	sup_ho_w_f64(w, mm->fleet_cpu);
	sup_ho_w_f64(w, mm->self_cpu);
	sup_ho_w_f64(w, mm->mem_total);
	sup_ho_w_f64(w, mm->mem_available);
	sup_ho_w_f64(w, mm->fleet_mem);
	sup_ho_w_f64(w, mm->utilisation);
	sup_ho_w_i64(w, mm->tick);
	sup_ho_w_i64(w, m->last_ns);
	sup_ho_w_u64(w, m->stat_busy);
	sup_ho_w_u64(w, m->stat_steal);
	sup_ho_w_u64(w, m->stat_total);
	sup_ho_w_u64(w, m->self_usec);
	for (int a = 0; a < AL_N; a++)
		for (int t = 0; t <= SUP_NTIERS; t++)
			sup_ho_w_u8(w, m->alert[a][t]);
	for (int t = 0; t <= SUP_NTIERS; t++) {
		const struct sup_mon_tier_view *tv = &m->tiers[t];

		save_rates(w, &tv->r);
		sup_ho_w_f64(w, tv->p95_ms);
		sup_ho_w_u64(w, tv->ok);
		sup_ho_w_u64(w, tv->errors);
		sup_ho_w_u64(w, tv->timeouts);
		sup_ho_w_f64(w, tv->quality);
		sup_ho_w_f64(w, tv->pressure);
		sup_ho_w_f64(w, tv->psi_some10);
		sup_ho_w_u32(w, tv->agents);
		sup_ho_w_u32(w, tv->ready);
	}
	sup_ho_w_u32(w, m->nhist);
	sup_ho_w_u32(w, m->hist_pos);
	for (int t = 0; t <= SUP_NTIERS; t++)
		for (int i = 0; i < SUP_MON_HISTORY; i++) {
			const struct hist_point *p = &m->hist[t][i];

			sup_ho_w_i64(w, p->ts_ns);
			sup_ho_w_f64(w, p->cpu);
			sup_ho_w_f64(w, p->runq);
			sup_ho_w_f64(w, p->p95_ms);
			sup_ho_w_f64(w, p->mem);
			sup_ho_w_f64(w, p->quality);
		}
	sup_ho_w_u32(w, n);
	for (const struct mon_agent *ma = m->agents; ma; ma = ma->next)
		save_agent(w, ma);
	sup_ho_w_end(w);
	return 0;
}

/* ---- restore ------------------------------------------------------------------ */

static bool rd_flag(struct sup_ho_r *r, bool *ret)
{
	uint8_t v;

	if (!sup_ho_r_u8(r, &v))
		return false;
	if (v > 1) {
		sup_ho_r_fail(r, "monitor: a flag holds %u, not 0 or 1", v);
		return false;
	}
	*ret = v;
	return true;
}

/* A finite number: the monitor's figures are (none is -1), and its JSON
 * could not carry anything else. */
static bool rd_num(struct sup_ho_r *r, double *ret)
{
	if (!sup_ho_r_f64(r, ret))
		return false;
	if (!isfinite(*ret)) {
		sup_ho_r_fail(r, "monitor: a figure is not a finite number");
		return false;
	}
	return true;
}

static bool rd_float(struct sup_ho_r *r, float *ret)
{
	double v;

	if (!rd_num(r, &v))
		return false;
	if (v > FLT_MAX || v < -FLT_MAX) {
		sup_ho_r_fail(r, "monitor: history figure %g does not fit a float", v);
		return false;
	}
	*ret = (float)v;
	return true;
}

/* A window's fill and position: at most cap entries filled. */
static bool rd_window(struct sup_ho_r *r, const char *what, unsigned cap, unsigned *n,
		      unsigned *pos)
{
	if (!sup_ho_r_u32(r, n) || !sup_ho_r_u32(r, pos))
		return false;
	if (*n > cap || (*n < cap && *pos != *n)) {
		sup_ho_r_fail(r, "monitor: %s window holds %u at position %u (size %u)", what, *n,
			      *pos, cap);
		return false;
	}
	return true;
}

static bool load_rates(struct sup_ho_r *r, struct sup_mon_rates *v)
{
	return rd_num(r, &v->cpu) && rd_num(r, &v->runq) &&
	       rd_num(r, &v->read_bps) && rd_num(r, &v->write_bps) &&
	       rd_num(r, &v->rx_bps) && rd_num(r, &v->tx_bps) &&
	       rd_num(r, &v->mem_bytes) && rd_flag(r, &v->has_net);
}

static bool load_sample(struct sup_ho_r *r, struct sup_acct_sample *s)
{
	uint32_t nh;

	if (!sup_ho_r_u64(r, &s->cpu_ns) || !sup_ho_r_u64(r, &s->runq_delay_ns) ||
	    !sup_ho_r_u64(r, &s->runq_waits) || !sup_ho_r_u64(r, &s->vol_switches) ||
	    !sup_ho_r_u64(r, &s->invol_switches) || !sup_ho_r_u64(r, &s->read_bytes) ||
	    !sup_ho_r_u64(r, &s->write_bytes) || !sup_ho_r_u64(r, &s->net_rx_bytes) ||
	    !sup_ho_r_u64(r, &s->net_tx_bytes) || !sup_ho_r_u32(r, &nh))
		return false;
	if (nh != SUP_ACCT_HIST) {
		sup_ho_r_fail(r, "monitor: run-queue histogram of %u buckets, this tierd has %d", nh,
			      SUP_ACCT_HIST);
		return false;
	}
	for (int i = 0; i < SUP_ACCT_HIST; i++)
		if (!sup_ho_r_u64(r, &s->runq_hist[i]))
			return false;
	return rd_flag(r, &s->has_net) && rd_flag(r, &s->has_io) && rd_flag(r, &s->has_hist);
}

static bool load_agent(struct sup_ho_r *r, struct mon_agent *ma, char *name, size_t namelen)
{
	struct sup_mon_agent_view *v = &ma->view;
	bool ok = sup_ho_r_str(r, name, namelen) && rd_flag(r, &ma->have_last) &&
		  load_sample(r, &ma->last) && load_rates(r, &v->r) &&
		  rd_num(r, &v->p50_ms) && rd_num(r, &v->p95_ms) &&
		  rd_num(r, &v->p99_ms) && sup_ho_r_u64(r, &v->ok) &&
		  sup_ho_r_u64(r, &v->errors) && sup_ho_r_u64(r, &v->timeouts) &&
		  sup_ho_r_u64(r, &v->crashed) && rd_num(r, &v->quality) &&
		  rd_num(r, &v->stability) && load_sample(r, &v->total) &&
		  rd_window(r, "response", SUP_MON_RESP_WINDOW, &ma->nresp, &ma->resp_pos);

	for (unsigned i = 0; ok && i < ma->nresp; i++)
		ok = sup_ho_r_i64(r, &ma->resp[i]);
	ok = ok && rd_window(r, "quality", SUP_MON_RESP_WINDOW, &ma->nqual, &ma->qual_pos);
	for (unsigned i = 0; ok && i < ma->nqual; i++)
		ok = rd_float(r, &ma->qual[i]);
	ok = ok && rd_window(r, "stability", SUP_MON_STABILITY, &ma->nready, &ma->ready_pos);
	for (unsigned i = 0; ok && i < ma->nready; i++) {
		ok = sup_ho_r_u8(r, &ma->ready[i]);
		if (ok && ma->ready[i] > 1) {
			sup_ho_r_fail(r, "monitor: agent %s: a stability tick holds %u", name,
				      ma->ready[i]);
			ok = false;
		}
	}
	return ok;
}

/* The state part of a monitored agent: everything but its identity and
 * its tracking in the accounting source. */
static void apply_agent(struct mon_agent *to, const struct mon_agent *from)
{
	to->have_last = from->have_last;
	to->last = from->last;
	to->view = from->view;
	memcpy(to->resp, from->resp, sizeof(to->resp));
	memcpy(to->qual, from->qual, sizeof(to->qual));
	memcpy(to->ready, from->ready, sizeof(to->ready));
	to->nresp = from->nresp;
	to->resp_pos = from->resp_pos;
	to->nqual = from->nqual;
	to->qual_pos = from->qual_pos;
	to->nready = from->nready;
	to->ready_pos = from->ready_pos;
}

/* The agents come in the order the old monitor kept them, which is the
 * order this one built its list in: the one after the last found first. */
static struct mon_agent *find_agent(struct sup_monitor *m, const char *name,
				    struct mon_agent **cursor)
{
	struct mon_agent *next = *cursor ? (*cursor)->next : m->agents;

	if (next && !strcmp(next->ag->name, name))
		return *cursor = next;
	for (struct mon_agent *ma = m->agents; ma; ma = ma->next)
		if (!strcmp(ma->ag->name, name))
			return *cursor = ma;
	return NULL;
}

static bool load_top(struct sup_ho_r *r, struct sup_monitor *c)
{
	struct sup_mon_machine *mm = &c->m;
	uint32_t dims[5];
	static const uint32_t want[5] = { SUP_NTIERS + 1, SUP_MON_RESP_WINDOW, SUP_MON_HISTORY,
					  SUP_MON_STABILITY, AL_N };
	static const char *const names[5] = { "tiers", "response window", "history",
					       "stability window", "alerts" };
	bool ok = true;

	for (int i = 0; i < 5; i++) {
		if (!sup_ho_r_u32(r, &dims[i]))
			return false;
		if (dims[i] != want[i]) {
			sup_ho_r_fail(r, "monitor: %s of %u, this tierd has %u", names[i], dims[i],
				      want[i]);
			return false;
		}
	}
	ok = rd_num(r, &mm->busy) && rd_num(r, &mm->steal) &&
	     rd_num(r, &mm->fleet_cpu) && rd_num(r, &mm->self_cpu) &&
	     rd_num(r, &mm->mem_total) && rd_num(r, &mm->mem_available) &&
	     rd_num(r, &mm->fleet_mem) && rd_num(r, &mm->utilisation) &&
	     sup_ho_r_i64(r, &mm->tick) && sup_ho_r_i64(r, &c->last_ns) &&
	     sup_ho_r_u64(r, &c->stat_busy) && sup_ho_r_u64(r, &c->stat_steal) &&
	     sup_ho_r_u64(r, &c->stat_total) && sup_ho_r_u64(r, &c->self_usec);
	for (int a = 0; ok && a < AL_N; a++)
		for (int t = 0; ok && t <= SUP_NTIERS; t++)
			ok = rd_flag(r, &c->alert[a][t]);
	for (int t = 0; ok && t <= SUP_NTIERS; t++) {
		struct sup_mon_tier_view *tv = &c->tiers[t];

		ok = load_rates(r, &tv->r) && rd_num(r, &tv->p95_ms) &&
		     sup_ho_r_u64(r, &tv->ok) && sup_ho_r_u64(r, &tv->errors) &&
		     sup_ho_r_u64(r, &tv->timeouts) && rd_num(r, &tv->quality) &&
		     rd_num(r, &tv->pressure) && rd_num(r, &tv->psi_some10) &&
		     sup_ho_r_u32(r, &tv->agents) && sup_ho_r_u32(r, &tv->ready);
	}
	ok = ok && rd_window(r, "history", SUP_MON_HISTORY, &c->nhist, &c->hist_pos);
	for (int t = 0; ok && t <= SUP_NTIERS; t++)
		for (int i = 0; ok && i < SUP_MON_HISTORY; i++) {
			struct hist_point *p = &c->hist[t][i];

			ok = sup_ho_r_i64(r, &p->ts_ns) && rd_float(r, &p->cpu) &&
			     rd_float(r, &p->runq) && rd_float(r, &p->p95_ms) && rd_float(r, &p->mem) &&
			     rd_float(r, &p->quality);
		}
	return ok;
}

/* An agent's figures read from the state, and the monitored agent of that
 * name they go to once everything was read. */
struct kept {
	struct mon_agent *to;
	struct mon_agent  fig;
};

int sup_monitor_restore(struct sup_monitor *m, struct sup_ho_r *r)
{
	struct sup_monitor *c = malloc(sizeof(*c));
	struct kept *kept = NULL, *v;
	struct mon_agent *ma = malloc(sizeof(*ma)), *cursor = NULL;
	uint32_t version, n = 0, nkept = 0;
	char name[sizeof(((struct sup_agent *)0)->name)];
	int ret = -EINVAL;

	if (!c || !ma) {
		sup_ho_r_fail(r, "monitor: out of memory");
		ret = -ENOMEM;
		goto out;
	}
	*c = *m;
	if (!sup_ho_r_section(r, SUP_HO_TAG_MONITOR, &version)) {
		sup_ho_r_fail(r, "no monitor section in the state");
		ret = -ENOENT;
		goto out;
	}
	if (version != MON_STATE_VERSION) {
		sup_ho_r_fail(r, "monitor section version %u, this tierd reads %u", version,
			      MON_STATE_VERSION);
		ret = -EPROTO;
		goto out;
	}
	if (!load_top(r, c) || !sup_ho_r_u32(r, &n))
		goto out;
	if (n > MON_STATE_AGENTS) {
		sup_ho_r_fail(r, "monitor: %u agents (at most %u)", n, MON_STATE_AGENTS);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct mon_agent *dst;

		if (!load_agent(r, ma, name, sizeof(name)))
			goto out;
		dst = find_agent(m, name, &cursor);
		if (!dst)
			continue;       /* gone in the new configuration */
		for (uint32_t k = 0; k < nkept; k++)
			if (kept[k].to == dst) {
				sup_ho_r_fail(r, "monitor: agent %s is in the state twice", name);
				goto out;
			}
		v = realloc(kept, (nkept + 1) * sizeof(*kept));
		if (!v) {
			sup_ho_r_fail(r, "monitor: out of memory");
			ret = -ENOMEM;
			goto out;
		}
		kept = v;
		kept[nkept].to = dst;
		kept[nkept++].fig = *ma;
	}
	for (uint32_t k = 0; k < nkept; k++)
		apply_agent(kept[k].to, &kept[k].fig);
	/* The number of CPUs is the new process's reading. */
	c->m.cpus = m->m.cpus;
	m->m = c->m;
	memcpy(m->tiers, c->tiers, sizeof(m->tiers));
	memcpy(m->hist, c->hist, sizeof(m->hist));
	m->nhist = c->nhist;
	m->hist_pos = c->hist_pos;
	m->last_ns = c->last_ns;
	m->stat_busy = c->stat_busy;
	m->stat_steal = c->stat_steal;
	m->stat_total = c->stat_total;
	m->self_usec = c->self_usec;
	memcpy(m->alert, c->alert, sizeof(m->alert));
	ret = 0;
out:
	free(kept);
	free(ma);
	free(c);
	return ret;
}
