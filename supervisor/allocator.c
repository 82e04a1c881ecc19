/* SPDX-License-Identifier: MIT */
/* The allocator: see allocator.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "allocator.h"
#include "allocator_internal.h"
#include "cgroup/cgroup.h"
#include "cgroup/cg_knob.h"
#include "cgroup/cg_leaf.h"
#include "cgroup/cg_stat.h"
#include "config/config.h"
#include "events.h"
#include "journal.h"
#include "monitor.h"

static const enum sup_cg_knob slot_knob[S_N] = {
	[S_CPU_MAX] = SUP_CG_K_CPU_MAX, [S_CPU_WEIGHT] = SUP_CG_K_CPU_WEIGHT,
	[S_MEM_HIGH] = SUP_CG_K_MEMORY_HIGH, [S_MEM_MAX] = SUP_CG_K_MEMORY_MAX,
	[S_MEM_LOW] = SUP_CG_K_MEMORY_LOW, [S_PIDS_MAX] = SUP_CG_K_PIDS_MAX,
	[S_IO_WEIGHT] = SUP_CG_K_IO_WEIGHT, [S_SWAP_MAX] = SUP_CG_K_MEMORY_SWAP_MAX,
	[S_OOM_GROUP] = SUP_CG_K_MEMORY_OOM_GROUP, [S_CPU_IDLE] = SUP_CG_K_CPU_IDLE,
	[S_CPUSET] = SUP_CG_K_CPUSET_CPUS,
};

/* ---- writing ---------------------------------------------------------------- */

static void slot_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct slot *s = ev->data;
	const struct sup_allocator_deps *d = &s->a->dep;

	(void)l;
	(void)more;
	s->inflight = false;
	if (res < 0) {
		if (s->err != res)
			sup_journal_event(d->journal, SUP_LOG_ERR, "knob_error",
					 json_pack("{s:i, s:s, s:s, s:s}", "tier", s->tier,
						   "file", sup_cg_knob_file(s->knob), "value", s->value,
						   "error", strerror(-res)),
					 "allocator: writing '%s' to tier%d/%s: %s", s->value, s->tier,
					 sup_cg_knob_file(s->knob), strerror(-res));
		s->err = res;
		s->written = false;
		return;
	}
	s->err = 0;
}

/* Write v to the slot unless hysteresis or the rate limit say not to
 * (force: static limits, pins). num is the value hysteresis compares. */
static void slot_write(struct slot *s, const struct sup_cg_val *v, double num, bool force)
{
	struct sup_allocator *a = s->a;
	const struct sup_allocator_deps *d = &a->dep;
	int64_t now = sup_loop_time(d->loop);
	struct sup_cg_write w;
	int r;

	if (s->inflight)
		return;
	if (s->written && !force) {
		if (now - s->last_ns < SUP_ALLOC_RATE_LIMIT_NS)
			return;
		if (!sup_alloc_should_write(s->last_num, num, (*d->conf)->sup.hysteresis / 100.0))
			return;
	}
	r = sup_cg_knob_prepare(d->cg, sup_cg_tier_fd(d->cg, (unsigned)s->tier), s->knob, v, &w);
	if (r == -EOPNOTSUPP) {
		s->skipped = sup_cg_ctrl_name(sup_cg_knob_ctrl(s->knob));
		return;
	}
	if (r < 0) {
		if (s->err != r)
			sup_log(d->journal->log, SUP_LOG_ERR, "allocator: tier%d/%s: %s", s->tier,
				sup_cg_knob_file(s->knob), strerror(-r));
		s->err = r;
		return;
	}
	s->skipped = NULL;
	if (s->fd < 0) {
		s->fd = openat(w.dirfd, w.file, O_WRONLY | O_CLOEXEC);
		if (s->fd < 0) {
			s->err = -errno;
			sup_log(d->journal->log, SUP_LOG_ERR, "allocator: opening tier%d/%s: %m", s->tier, w.file);
			return;
		}
	}
	memcpy(s->buf, w.buf, w.len);
	snprintf(s->value, sizeof(s->value), "%.*s", (int)w.len, w.buf);
	if (sup_loop_write(d->loop, &s->ev, s->fd, s->buf, (unsigned)w.len, 0) < 0)
		return;
	s->inflight = true;
	s->written = true;
	s->last_num = num;
	s->last_ns = now;
	sup_log(d->journal->log, SUP_LOG_DEBUG, "allocator: tier%d/%s = %s", s->tier, w.file, s->value);
}

static void write_u64(struct slot *s, uint64_t v, bool force)
{
	struct sup_cg_val val = { .num = v };

	slot_write(s, &val, v == SUP_CG_MAX ? 1e30 : (double)v, force);
}

/*
 * cpu.idle and cpu.weight of one tier (s: its slots). The kernel refuses
 * cpu.weight on an idle group (EINVAL), and setting or clearing cpu.idle
 * resets the group's weight (to 100 when cleared). So the weight is written
 * only while the group is known not to be idle, and again after every
 * change of cpu.idle; idle is set only with no weight write in flight.
 */
static bool idle_known_off(const struct slot *idle)
{
	return !idle->inflight && (!idle->written || idle->last_num == 0);
}

static void write_idle(struct slot *s, bool idle, bool force)
{
	int64_t before = s[S_CPU_IDLE].last_ns;

	if (idle && s[S_CPU_WEIGHT].inflight)
		return;
	write_u64(&s[S_CPU_IDLE], idle, force);
	if (s[S_CPU_IDLE].last_ns != before)
		s[S_CPU_WEIGHT].written = false;
}

static void write_weight(struct slot *s, uint64_t weight)
{
	if (idle_known_off(&s[S_CPU_IDLE]))
		write_u64(&s[S_CPU_WEIGHT], weight, false);
}

/* ---- static limits ----------------------------------------------------------- */

static void limits_to_slots(struct sup_allocator *a, int tier, const struct sup_limits *l)
{
	struct slot *s = a->s[tier];

	if (sup_limit_is_set(l, SUP_LIM_MEMORY_MAX))
		write_u64(&s[S_MEM_MAX], l->memory_max == SUP_LIMIT_MAX ? SUP_CG_MAX : l->memory_max, true);
	if (sup_limit_is_set(l, SUP_LIM_MEMORY_LOW))
		write_u64(&s[S_MEM_LOW], l->memory_low == SUP_LIMIT_MAX ? SUP_CG_MAX : l->memory_low, true);
	if (sup_limit_is_set(l, SUP_LIM_MEMORY_SWAP_MAX))
		write_u64(&s[S_SWAP_MAX], l->memory_swap_max == SUP_LIMIT_MAX ? SUP_CG_MAX :
			  l->memory_swap_max, true);
	if (sup_limit_is_set(l, SUP_LIM_MEMORY_OOM_GROUP))
		write_u64(&s[S_OOM_GROUP], l->memory_oom_group, true);
	if (sup_limit_is_set(l, SUP_LIM_PIDS_MAX))
		write_u64(&s[S_PIDS_MAX], l->pids_max == SUP_LIMIT_MAX ? SUP_CG_MAX : l->pids_max, true);
	if (sup_limit_is_set(l, SUP_LIM_CPU_IDLE))
		write_idle(s, l->cpu_idle, true);
	if (sup_limit_is_set(l, SUP_LIM_CPUSET_CPUS)) {
		struct sup_cg_val v = { 0 };

		snprintf(v.cpus, sizeof(v.cpus), "%s", l->cpuset_cpus);
		slot_write(&s[S_CPUSET], &v, 0, true);
	}
}

void sup_allocator_apply_static(struct sup_allocator *a)
{
	for (int tier = 1; tier <= SUP_NTIERS; tier++)
		limits_to_slots(a, tier, &(*a->dep.conf)->tiers[tier - 1].limits);
}

/* Per-agent overrides: written straight to the (empty, new) leaf. */
void sup_allocator_agent_leaf(struct sup_allocator *a, struct sup_agent *ag)
{
	const struct sup_limits *l = &ag->conf->limits;
	int fd = sup_cg_leaf_fd(ag->leaf);
	struct {
		enum sup_limit lim;
		enum sup_cg_knob knob;
		uint64_t num;
	} simple[] = {
		{ SUP_LIM_CPU_WEIGHT, SUP_CG_K_CPU_WEIGHT, l->cpu_weight },
		{ SUP_LIM_CPU_IDLE, SUP_CG_K_CPU_IDLE, l->cpu_idle },
		{ SUP_LIM_MEMORY_LOW, SUP_CG_K_MEMORY_LOW, l->memory_low },
		{ SUP_LIM_MEMORY_HIGH, SUP_CG_K_MEMORY_HIGH, l->memory_high },
		{ SUP_LIM_MEMORY_MAX, SUP_CG_K_MEMORY_MAX, l->memory_max },
		{ SUP_LIM_MEMORY_SWAP_MAX, SUP_CG_K_MEMORY_SWAP_MAX, l->memory_swap_max },
		{ SUP_LIM_MEMORY_OOM_GROUP, SUP_CG_K_MEMORY_OOM_GROUP, l->memory_oom_group },
		{ SUP_LIM_IO_WEIGHT, SUP_CG_K_IO_WEIGHT, l->io_weight },
		{ SUP_LIM_PIDS_MAX, SUP_CG_K_PIDS_MAX, l->pids_max },
	};

	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		struct sup_cg_val v = { .num = simple[i].num == SUP_LIMIT_MAX ? SUP_CG_MAX : simple[i].num };
		int r;

		if (!sup_limit_is_set(l, simple[i].lim))
			continue;
		r = sup_cg_knob_write(a->dep.cg, fd, simple[i].knob, &v);
		if (r < 0 && r != -EOPNOTSUPP)
			sup_log(a->dep.journal->log, SUP_LOG_ERR, "agent %s: %s: %s", ag->name,
				sup_cg_knob_file(simple[i].knob), strerror(-r));
	}
	if (sup_limit_is_set(l, SUP_LIM_CPU_MAX)) {
		struct sup_cg_val v = { .num = l->cpu_max_quota_us == SUP_LIMIT_MAX ? SUP_CG_MAX :
					l->cpu_max_quota_us, .period = l->cpu_max_period_us };
		int r = sup_cg_knob_write(a->dep.cg, fd, SUP_CG_K_CPU_MAX, &v);

		if (r < 0 && r != -EOPNOTSUPP)
			sup_log(a->dep.journal->log, SUP_LOG_ERR, "agent %s: cpu.max: %s", ag->name, strerror(-r));
	}
	for (uint32_t i = 0; i < l->n_io_max; i++) {
		struct sup_cg_val v = { .major = l->io_max[i].major, .minor = l->io_max[i].minor,
					.rbps = l->io_max[i].rbps, .wbps = l->io_max[i].wbps,
					.riops = l->io_max[i].riops, .wiops = l->io_max[i].wiops };
		int r = sup_cg_knob_write(a->dep.cg, fd, SUP_CG_K_IO_MAX, &v);

		if (r < 0 && r != -EOPNOTSUPP)
			sup_log(a->dep.journal->log, SUP_LOG_ERR, "agent %s: io.max: %s", ag->name, strerror(-r));
	}
}

/* ---- io policy ------------------------------------------------------------------ */

static void detect_io_policy(struct sup_allocator *a)
{
	DIR *dir = opendir("/sys/block");
	struct dirent *de;
	char path[512], buf[256];
	FILE *f;

	a->io_active = false;
	while (dir && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/queue/scheduler", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && strstr(buf, "[bfq]"))
			a->io_active = a->io_bfq = true;
		fclose(f);
	}
	if (dir)
		closedir(dir);
	if (!a->io_active) {
		char p[4200];

		snprintf(p, sizeof(p), "%s/io.cost.qos", sup_cg_mount_path(a->dep.cg));
		f = fopen(p, "re");
		while (f && fgets(buf, sizeof(buf), f))
			if (strstr(buf, "enable=1"))
				a->io_active = true;
		if (f)
			fclose(f);
	}
	if (!sup_cg_ctrl_live(a->dep.cg, SUP_CG_IO))
		snprintf(a->io_why, sizeof(a->io_why), "the io controller is unavailable");
	else if (!a->io_active)
		snprintf(a->io_why, sizeof(a->io_why), "no weight-based io policy: no disk uses BFQ and "
			 "io.cost is not enabled, so io.weight would do nothing");
	else
		snprintf(a->io_why, sizeof(a->io_why), "%s", a->io_bfq ? "BFQ (io.bfq.weight)" :
			 "io.cost (io.weight)");
	if (!sup_cg_ctrl_live(a->dep.cg, SUP_CG_IO))
		a->io_active = false;
}

bool sup_allocator_io_weights(const struct sup_allocator *a, const char **why)
{
	if (why)
		*why = a->io_why;
	return a->io_active;
}

/* ---- the tick -------------------------------------------------------------------- */

static double pick_pin(double runtime, const struct sup_limits *l, enum sup_limit which,
		       double from_config)
{
	if (runtime >= 0)
		return runtime;
	return sup_limit_is_set(l, which) ? from_config : -1;
}

static void cpu_round(struct sup_allocator *a)
{
	const struct sup_allocator_deps *d = &a->dep;
	const struct sup_mon_machine *m = sup_monitor_machine(d->monitor);
	struct sup_alloc_input *in = &a->cpu_in;

	memset(in, 0, sizeof(*in));
	in->capacity = m->cpus;
	in->outside = m->busy - m->fleet_cpu > 0 ? m->busy - m->fleet_cpu : 0;
	in->threshold = (*d->conf)->sup.utilisation_threshold / 100.0;
	in->margin = (*d->conf)->sup.safety_margin;
	in->floor = SUP_ALLOC_CPU_FLOOR;
	for (int t = 0; t < SUP_NTIERS; t++) {
		const struct sup_mon_tier_view *tv = sup_monitor_tier(d->monitor, t + 1);
		const struct sup_limits *l = &(*d->conf)->tiers[t].limits;
		double cfg = -1, pressure = tv->pressure;

		if (sup_limit_is_set(l, SUP_LIM_CPU_MAX) && l->cpu_max_quota_us != SUP_LIMIT_MAX)
			cfg = (double)l->cpu_max_quota_us / (double)l->cpu_max_period_us;
		if (tv->psi_some10 >= 0 && tv->psi_some10 / 100.0 > pressure)
			pressure = tv->psi_some10 / 100.0;
		in->share[t] = (*d->conf)->tiers[t].share[SUP_RES_CPU];
		in->usage[t] = tv->r.cpu;
		in->runnable[t] = tv->r.cpu + tv->r.runq;
		in->pressure[t] = pressure;
		in->present[t] = tv->agents > 0;
		in->pin[t] = pick_pin(a->pin_cpu[t + 1], l, SUP_LIM_CPU_MAX, cfg);
		in->pinned[t] = in->pin[t] >= 0;
	}
	sup_alloc_compute(in, &a->cpu);
	sup_alloc_rank_weights(in->share, in->present, a->weight);
	for (int t = 0; t < SUP_NTIERS; t++) {
		struct slot *s = a->s[t + 1];
		const struct sup_limits *l = &(*d->conf)->tiers[t].limits;
		double c = a->cpu.ceiling[t];
		struct sup_cg_val v = { .period = SUP_ALLOC_CPU_PERIOD };
		uint64_t weight;

		if (c != SUP_ALLOC_NO_CEILING && !in->pinned[t]) {
			c = fmax(c * a->bias[t + 1], sup_alloc_ceiling_floor(in, &a->cpu, t));
			a->cpu.ceiling[t] = c;
		}
		v.num = c == SUP_ALLOC_NO_CEILING ? SUP_CG_MAX : (uint64_t)(c * SUP_ALLOC_CPU_PERIOD);
		if (v.num != SUP_CG_MAX && v.num < 1000)
			v.num = 1000; /* the kernel's smallest quota */
		slot_write(&s[S_CPU_MAX], &v, c == SUP_ALLOC_NO_CEILING ? 1e30 : c, in->pinned[t]);
		weight = sup_limit_is_set(l, SUP_LIM_CPU_WEIGHT) ? l->cpu_weight : a->weight[t];
		/* Headroom from ceilings comes in period-sized bursts; for the
		 * latency of the tiers above, squeeze the lowest two as
		 * SCHED_IDLE groups while those tiers wait to run. */
		if (t >= SUP_ALLOC_SQUEEZE_FROM && in->present[t] && !sup_limit_is_set(l, SUP_LIM_CPU_IDLE)) {
			bool waiting = false;

			for (int u = 0; u < t; u++)
				waiting |= in->present[u] && in->pressure[u] > SUP_ALLOC_IDLE_PRESSURE;
			/* Held after the last wait: squeezing works, so the wait
			 * goes away, and clearing at once would let it back. */
			if (waiting)
				a->idle_until[t + 1] = sup_loop_time(d->loop) + SUP_ALLOC_IDLE_HOLD_NS;
			bool held = sup_loop_time(d->loop) < a->idle_until[t + 1];
			bool may = sup_alloc_may_squeeze(in, &a->cpu, t);

			a->idle[t + 1] = held && may;
			if (!held)
				snprintf(a->idle_why[t + 1], sizeof(a->idle_why[t + 1]), "cpu.idle 0: no higher "
					 "tier waited to run in the last %lld s", SUP_ALLOC_IDLE_HOLD_NS / 1000000000LL);
			else if (!may)
				snprintf(a->idle_why[t + 1], sizeof(a->idle_why[t + 1]), "cpu.idle 0: a higher "
					 "tier waits, but as an idle group this tier would get less than its "
					 "guarantee of %.2f cores", a->cpu.guarantee[t]);
			else
				snprintf(a->idle_why[t + 1], sizeof(a->idle_why[t + 1]), "cpu.idle 1: a higher "
					 "tier waited to run (kept %lld s after); what the tiers above would run "
					 "leaves this tier its guarantee", SUP_ALLOC_IDLE_HOLD_NS / 1000000000LL);
			write_idle(s, a->idle[t + 1], false);
		}
		write_weight(s, weight < 1 ? 1 : weight);
		if (a->io_active) {
			const struct sup_limits *tl = &(*d->conf)->tiers[t].limits;
			uint64_t w = sup_limit_is_set(tl, SUP_LIM_IO_WEIGHT) ? tl->io_weight :
				     (uint64_t)((*d->conf)->tiers[t].share[SUP_RES_IO] * 10 + 0.5);

			s[S_IO_WEIGHT].knob = a->io_bfq ? SUP_CG_K_IO_BFQ_WEIGHT : SUP_CG_K_IO_WEIGHT;
			write_u64(&s[S_IO_WEIGHT], a->io_bfq && w > 1000 ? 1000 : (w ? w : 1), false);
		}
	}
}

static void mem_round(struct sup_allocator *a)
{
	const struct sup_allocator_deps *d = &a->dep;
	const struct sup_mon_machine *m = sup_monitor_machine(d->monitor);
	struct sup_alloc_input *in = &a->mem_in;
	double used = m->mem_total - m->mem_available;

	memset(in, 0, sizeof(*in));
	in->capacity = m->mem_total;
	in->outside = used - m->fleet_mem > 0 ? used - m->fleet_mem : 0;
	in->threshold = (*d->conf)->sup.utilisation_threshold / 100.0;
	in->margin = (*d->conf)->sup.safety_margin;
	in->floor = 64.0 * 1024 * 1024;
	for (int t = 0; t < SUP_NTIERS; t++) {
		const struct sup_mon_tier_view *tv = sup_monitor_tier(d->monitor, t + 1);
		const struct sup_limits *l = &(*d->conf)->tiers[t].limits;

		in->share[t] = (*d->conf)->tiers[t].share[SUP_RES_MEMORY];
		in->usage[t] = tv->r.mem_bytes;
		in->present[t] = tv->agents > 0;
		in->pin[t] = pick_pin(a->pin_mem[t + 1], l, SUP_LIM_MEMORY_HIGH,
				      sup_limit_is_set(l, SUP_LIM_MEMORY_HIGH) ? (double)l->memory_high : -1);
		in->pinned[t] = in->pin[t] >= 0;
	}
	sup_alloc_compute(in, &a->mem);
	if (!sup_cg_ctrl_live(d->cg, SUP_CG_MEMORY)) {
		for (int t = 1; t <= SUP_NTIERS; t++)
			a->s[t][S_MEM_HIGH].skipped = "memory";
		return;
	}
	for (int t = 0; t < SUP_NTIERS; t++) {
		double target = a->mem.ceiling[t], next;
		const struct sup_limits *l = &(*d->conf)->tiers[t].limits;
		struct sup_cg_val v;

		if (target == SUP_ALLOC_NO_CEILING) {
			write_u64(&a->s[t + 1][S_MEM_HIGH], SUP_CG_MAX, false);
			continue;
		}
		if (sup_limit_is_set(l, SUP_LIM_MEMORY_MAX) && l->memory_max != SUP_LIMIT_MAX &&
		    target > (double)l->memory_max)
			target = (double)l->memory_max;
		next = in->pinned[t] ? target :
		       sup_alloc_memory_step(a->mem_high[t + 1], target, in->usage[t], SUP_ALLOC_MEM_STEP);
		a->mem_high[t + 1] = next;
		v.num = (uint64_t)next;
		slot_write(&a->s[t + 1][S_MEM_HIGH], &v, next, in->pinned[t]);
	}
}

void sup_allocator_tick(struct sup_allocator *a)
{
	if (a->redo_static) {
		a->redo_static = false;
		sup_allocator_apply_static(a);
	}
	if (!a->enabled)
		return;
	a->ticks++;
	cpu_round(a);
	mem_round(a);
}

/* ---- control ---------------------------------------------------------------------- */

int sup_allocator_pin(struct sup_allocator *a, int tier, double cpu_cores, double mem_high)
{
	if (tier < 1 || tier > SUP_NTIERS)
		return -EINVAL;
	/* -2: leave that pin as it is; -1: remove it. */
	if (cpu_cores > -1.5)
		a->pin_cpu[tier] = cpu_cores;
	if (mem_high > -1.5)
		a->pin_mem[tier] = mem_high;
	/* A pin applies now, whatever the rate limit. */
	a->s[tier][S_CPU_MAX].last_ns = 0;
	a->s[tier][S_MEM_HIGH].last_ns = 0;
	sup_allocator_tick(a);
	return 0;
}

void sup_allocator_bias(struct sup_allocator *a, int tier, double factor)
{
	if (tier < 1 || tier > SUP_NTIERS)
		return;
	a->bias[tier] = factor < 0.1 ? 0.1 : factor > 1 ? 1 : factor;
}

double sup_allocator_get_bias(const struct sup_allocator *a, int tier)
{
	return tier >= 1 && tier <= SUP_NTIERS ? a->bias[tier] : 1;
}

void sup_allocator_enable(struct sup_allocator *a, bool on)
{
	a->enabled = on;
}

bool sup_allocator_enabled(const struct sup_allocator *a)
{
	return a->enabled;
}

const struct sup_alloc_result *sup_allocator_cpu(const struct sup_allocator *a)
{
	return &a->cpu;
}

static json_t *slot_json(const struct slot *s)
{
	if (s->skipped)
		return json_pack("{s:n, s:s}", "value", "skipped",
				 s->skipped ? s->skipped : "");
	if (!s->written && !s->err)
		return json_pack("{s:n}", "value");
	return json_pack("{s:s, s:s}", "value", s->value, "error", s->err ? strerror(-s->err) : "");
}

json_t *sup_allocator_json(const struct sup_allocator *a, bool explain)
{
	json_t *tiers = json_array();

	for (int t = 1; t <= SUP_NTIERS; t++) {
		const struct slot *s = a->s[t];
		double c = a->cpu.ceiling[t - 1];
		json_t *o = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:b, s:b}", "tier", t,
			"cpu_idle", slot_json(&s[S_CPU_IDLE]),
			"cpu_max", slot_json(&s[S_CPU_MAX]), "cpu_weight", slot_json(&s[S_CPU_WEIGHT]),
			"memory_high", slot_json(&s[S_MEM_HIGH]), "memory_max", slot_json(&s[S_MEM_MAX]),
			"memory_low", slot_json(&s[S_MEM_LOW]), "pids_max", slot_json(&s[S_PIDS_MAX]),
			"bias", a->bias[t], "cpu_pinned", a->cpu_in.pinned[t - 1],
			"memory_pinned", a->mem_in.pinned[t - 1]);

		if (a->io_active)
			json_object_set_new(o, "io_weight", slot_json(&s[S_IO_WEIGHT]));
		if (explain) {
			char why[768];
			int n;

			if (!a->cpu_in.present[t - 1])
				n = snprintf(why, sizeof(why), "no agents: no ceiling");
			else if (a->cpu_in.pinned[t - 1])
				n = snprintf(why, sizeof(why), "cpu ceiling pinned at %.2f cores by an operator",
					     a->cpu_in.pin[t - 1]);
			else if (c == SUP_ALLOC_NO_CEILING)
				n = snprintf(why, sizeof(why), "the most protected tier: no cpu ceiling; "
					     "guaranteed %.2f of the %.2f-core budget",
					     a->cpu.guarantee[t - 1], a->cpu.budget);
			else
				n = snprintf(why, sizeof(why), "cpu ceiling %.2f cores = allocation %.2f "
					     "(demand %.2f = usage %.2f x (1 + pressure %.2f), water-filled by "
					     "share %.0f%% of a %.2f-core budget) plus its share of the unused "
					     "budget, capped at %.2f (capacity minus the guarantees of higher "
					     "tiers), times optimiser bias %.2f",
					     c, a->cpu.alloc[t - 1], a->cpu.demand[t - 1], a->cpu_in.usage[t - 1],
					     a->cpu_in.pressure[t - 1], a->cpu_in.share[t - 1], a->cpu.budget,
					     a->cpu.protect_cap[t - 1], a->bias[t]);
			if (s[S_CPU_MAX].skipped && n > 0 && (size_t)n < sizeof(why))
				snprintf(why + n, sizeof(why) - (size_t)n, "; not enforced: the %s controller "
					 "is unavailable", s[S_CPU_MAX].skipped);
			if (a->idle_why[t][0] && n > 0 && (size_t)n < sizeof(why))
				snprintf(why + n, sizeof(why) - (size_t)n, "; %s", a->idle_why[t]);
			json_object_set_new(o, "why", json_string(why));
			json_object_set_new(o, "cpu", json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}",
				"usage", a->cpu_in.usage[t - 1], "pressure", a->cpu_in.pressure[t - 1],
				"demand", a->cpu.demand[t - 1], "guarantee", a->cpu.guarantee[t - 1],
				"allocation", a->cpu.alloc[t - 1], "ceiling", c));
			json_object_set_new(o, "memory", json_pack("{s:f, s:f, s:f}",
				"usage", a->mem_in.usage[t - 1], "target", a->mem.ceiling[t - 1],
				"high", a->mem_high[t]));
		}
		json_array_append_new(tiers, o);
	}
	return json_pack("{s:o, s:b, s:f, s:f, s:b, s:s}", "tiers", tiers, "enabled", a->enabled,
			 "cpu_budget", a->cpu.budget, "memory_budget", a->mem.budget,
			 "io_weights", a->io_active, "io_why", a->io_why);
}

static void observed_leaf(void *arg, struct sup_agent *ag)
{
	sup_allocator_agent_leaf(arg, ag);
}

struct sup_allocator *sup_allocator_new(const struct sup_allocator_deps *deps)
{
	struct sup_allocator *a = calloc(1, sizeof(*a));
	const struct sup_mon_machine *m;

	if (!a)
		return NULL;
	a->dep = *deps;
	a->enabled = true;
	for (int t = 0; t <= SUP_NTIERS; t++) {
		a->pin_cpu[t] = a->pin_mem[t] = -1;
		a->bias[t] = 1;
		for (int k = 0; k < S_N; k++) {
			struct slot *s = &a->s[t][k];

			s->a = a;
			s->tier = t;
			s->knob = slot_knob[k];
			s->fd = -1;
			sup_ev_init(&s->ev, slot_done, s);
		}
	}
	m = sup_monitor_machine(a->dep.monitor);
	for (int t = 1; t <= SUP_NTIERS; t++)
		a->mem_high[t] = m->mem_total > 0 ? m->mem_total : 1e12;
	detect_io_policy(a);
	a->obs = (struct sup_agent_observer){ .leaf = observed_leaf, .arg = a };
	sup_agent_observe(a->dep.observers, &a->obs);
	return a;
}

void sup_allocator_cancel(struct sup_allocator *a)
{
	for (int t = 0; a && t <= SUP_NTIERS; t++)
		for (int k = 0; k < S_N; k++)
			sup_loop_cancel(a->dep.loop, &a->s[t][k].ev);
}

void sup_allocator_free(struct sup_allocator *a)
{
	if (!a)
		return;
	sup_agent_unobserve(a->dep.observers, &a->obs);
	for (int t = 0; t <= SUP_NTIERS; t++)
		for (int k = 0; k < S_N; k++)
			if (a->s[t][k].fd >= 0)
				close(a->s[t][k].fd);
	free(a);
}
