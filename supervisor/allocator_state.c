/* SPDX-License-Identifier: MIT */
/*
 * The allocator's part of the live-upgrade state (SUP_HO_TAG_ALLOCATOR,
 * docs/handover.md): pins, biases, on/off, the squeeze (cpu.idle) state,
 * what was last written to every knob and when (so the new process does
 * not write every knob again, and hysteresis and the rate limit go on),
 * the last round's inputs and results, and the tick count. Section
 * version 1:
 *
 *   u32 ntiers (SUP_NTIERS + 1), u32 nslots (per tier), u8 enabled,
 *   i64 ticks, then per tier 0..SUP_NTIERS: f64 mem_high, f64 pin_cpu,
 *   f64 pin_mem, f64 bias, u8 idle, i64 idle_until, str idle_why, and per
 *   slot: u8 written, u8 inflight, i64 err, f64 last_num, i64 last_ns,
 *   str value, str skipped (a controller's name, NULL: not skipped); then
 *   per tier 1..SUP_NTIERS: u64 weight; then the cpu and the memory
 *   rounds: their input (f64 capacity, outside, threshold, margin, floor,
 *   per tier f64 share, usage, pressure, runnable, u8 present, u8 pinned,
 *   f64 pin) and result (f64 budget, per tier f64 demand, guarantee,
 *   alloc, ceiling, protect_cap).
 *
 * Knob fds are not handed over (each is opened again at its next write),
 * nor the io policy (the new process detects it). A write still in flight
 * when the state was taken may or may not have landed: its slot comes back
 * unwritten, so the next round writes it again; for a static limit (which
 * rounds do not write) the next tick writes the static limits again.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "allocator_internal.h"
#include "cgroup/cg_ctrl.h"
#include "handover/handover.h"

#define ALLOC_STATE_VERSION 1

/* Slots only sup_allocator_apply_static writes. */
static bool static_slot(int k)
{
	return k != S_CPU_MAX && k != S_CPU_WEIGHT && k != S_MEM_HIGH && k != S_IO_WEIGHT;
}

/* ---- save ------------------------------------------------------------------ */

static void save_round(struct sup_ho_w *w, const struct sup_alloc_input *in,
		       const struct sup_alloc_result *res)
{
	sup_ho_w_f64(w, in->capacity);
	sup_ho_w_f64(w, in->outside);
	sup_ho_w_f64(w, in->threshold);
	sup_ho_w_f64(w, in->margin);
	sup_ho_w_f64(w, in->floor);
	for (int t = 0; t < SUP_NTIERS; t++) {
		sup_ho_w_f64(w, in->share[t]);
		sup_ho_w_f64(w, in->usage[t]);
		sup_ho_w_f64(w, in->pressure[t]);
		sup_ho_w_f64(w, in->runnable[t]);
		sup_ho_w_u8(w, in->present[t]);
		sup_ho_w_u8(w, in->pinned[t]);
		sup_ho_w_f64(w, in->pin[t]);
	}
	sup_ho_w_f64(w, res->budget);
	for (int t = 0; t < SUP_NTIERS; t++) {
		sup_ho_w_f64(w, res->demand[t]);
		sup_ho_w_f64(w, res->guarantee[t]);
		sup_ho_w_f64(w, res->alloc[t]);
		sup_ho_w_f64(w, res->ceiling[t]);
		sup_ho_w_f64(w, res->protect_cap[t]);
	}
}

int sup_allocator_save(const struct sup_allocator *a, struct sup_ho_w *w)
{
	sup_ho_w_begin(w, SUP_HO_TAG_ALLOCATOR, ALLOC_STATE_VERSION);
	sup_ho_w_u32(w, SUP_NTIERS + 1);
	sup_ho_w_u32(w, S_N);
	sup_ho_w_u8(w, a->enabled);
	sup_ho_w_i64(w, a->ticks);
	for (int t = 0; t <= SUP_NTIERS; t++) {
		sup_ho_w_f64(w, a->mem_high[t]);
		sup_ho_w_f64(w, a->pin_cpu[t]);
		sup_ho_w_f64(w, a->pin_mem[t]);
		sup_ho_w_f64(w, a->bias[t]);
		sup_ho_w_u8(w, a->idle[t]);
		sup_ho_w_i64(w, a->idle_until[t]);
		sup_ho_w_str(w, a->idle_why[t]);
		for (int k = 0; k < S_N; k++) {
			const struct slot *s = &a->s[t][k];

			sup_ho_w_u8(w, s->written);
			sup_ho_w_u8(w, s->inflight);
			sup_ho_w_i64(w, s->err);
			sup_ho_w_f64(w, s->last_num);
			sup_ho_w_i64(w, s->last_ns);
			sup_ho_w_str(w, s->value);
			sup_ho_w_str(w, s->skipped);
		}
	}
	for (int t = 0; t < SUP_NTIERS; t++)
		sup_ho_w_u64(w, a->weight[t]);
	save_round(w, &a->cpu_in, &a->cpu);
	save_round(w, &a->mem_in, &a->mem);
	sup_ho_w_end(w);
	return 0;
}

/* ---- restore ----------------------------------------------------------------- */

/* The reads below go into a copy; it replaces the allocator's state only
 * once all of it was read and checked. */

static bool rd_flag(struct sup_ho_r *r, const char *what, bool *ret)
{
	uint8_t v;

	if (!sup_ho_r_u8(r, &v))
		return false;
	if (v > 1) {
		sup_ho_r_fail(r, "allocator: %s holds %u, not 0 or 1", what, v);
		return false;
	}
	*ret = v;
	return true;
}

/* A finite number: the allocator's arithmetic has no NaN or infinity in
 * it ("no ceiling" is -1, an unlimited knob 1e30). */
static bool rd_num(struct sup_ho_r *r, const char *what, double *ret)
{
	if (!sup_ho_r_f64(r, ret))
		return false;
	if (!isfinite(*ret)) {
		sup_ho_r_fail(r, "allocator: %s is not a finite number", what);
		return false;
	}
	return true;
}

static bool load_round(struct sup_ho_r *r, struct sup_alloc_input *in, struct sup_alloc_result *res)
{
	bool ok = rd_num(r, "capacity", &in->capacity) && rd_num(r, "outside", &in->outside) &&
		  rd_num(r, "threshold", &in->threshold) && rd_num(r, "margin", &in->margin) &&
		  rd_num(r, "floor", &in->floor);

	for (int t = 0; ok && t < SUP_NTIERS; t++)
		ok = rd_num(r, "share", &in->share[t]) && rd_num(r, "usage", &in->usage[t]) &&
		     rd_num(r, "pressure", &in->pressure[t]) &&
		     rd_num(r, "runnable", &in->runnable[t]) &&
		     rd_flag(r, "present", &in->present[t]) && rd_flag(r, "pinned", &in->pinned[t]) &&
		     rd_num(r, "pin", &in->pin[t]);
	ok = ok && rd_num(r, "budget", &res->budget);
	for (int t = 0; ok && t < SUP_NTIERS; t++)
		ok = rd_num(r, "demand", &res->demand[t]) &&
		     rd_num(r, "guarantee", &res->guarantee[t]) && rd_num(r, "alloc", &res->alloc[t]) &&
		     rd_num(r, "ceiling", &res->ceiling[t]) &&
		     rd_num(r, "protect_cap", &res->protect_cap[t]);
	return ok;
}

/* skipped points at a static name: the controller's, found by name. */
static bool load_skipped(struct sup_ho_r *r, int t, int k, const char **ret)
{
	char *name;

	*ret = NULL;
	if (!sup_ho_r_strdup(r, &name, 32))
		return false;
	if (!name)
		return true;
	for (int c = 0; c < SUP_CG_NCTRL; c++)
		if (!strcmp(name, sup_cg_ctrl_name((enum sup_cg_ctrl)c))) {
			*ret = sup_cg_ctrl_name((enum sup_cg_ctrl)c);
			free(name);
			return true;
		}
	sup_ho_r_fail(r, "allocator: tier%d slot %d skipped for '%s', not a controller", t, k, name);
	free(name);
	return false;
}

static bool load_slot(struct sup_ho_r *r, int t, int k, struct slot *s, bool *redo)
{
	int64_t err;

	if (!rd_flag(r, "written", &s->written) || !rd_flag(r, "inflight", &s->inflight) ||
	    !sup_ho_r_i64(r, &err) || !rd_num(r, "last value", &s->last_num) ||
	    !sup_ho_r_i64(r, &s->last_ns) || !sup_ho_r_str(r, s->value, sizeof(s->value)) ||
	    !load_skipped(r, t, k, &s->skipped))
		return false;
	if (err > 0 || err < -4095) {
		sup_ho_r_fail(r, "allocator: tier%d slot %d: error %lld is not an -errno", t, k,
			      (long long)err);
		return false;
	}
	s->err = (int)err;
	if (s->inflight) {
		/* Landed or not, nobody can tell: write it again. */
		s->inflight = false;
		s->written = false;
		*redo |= static_slot(k);
	}
	return true;
}

static bool load_tier(struct sup_ho_r *r, struct sup_allocator *c, int t, bool *redo)
{
	if (!rd_num(r, "memory.high", &c->mem_high[t]) || !rd_num(r, "cpu pin", &c->pin_cpu[t]) ||
	    !rd_num(r, "memory pin", &c->pin_mem[t]) || !rd_num(r, "bias", &c->bias[t]) ||
	    !rd_flag(r, "idle", &c->idle[t]) || !sup_ho_r_i64(r, &c->idle_until[t]) ||
	    !sup_ho_r_str(r, c->idle_why[t], sizeof(c->idle_why[t])))
		return false;
	if (c->mem_high[t] < 0) {
		sup_ho_r_fail(r, "allocator: tier%d memory.high %g is negative", t, c->mem_high[t]);
		return false;
	}
	if (!(c->bias[t] >= 0.1 && c->bias[t] <= 1)) {
		sup_ho_r_fail(r, "allocator: tier%d bias %g is outside 0.1..1", t, c->bias[t]);
		return false;
	}
	if (c->pin_cpu[t] < 0 && c->pin_cpu[t] != -1) {
		sup_ho_r_fail(r, "allocator: tier%d cpu pin %g (-1: none)", t, c->pin_cpu[t]);
		return false;
	}
	if (c->pin_mem[t] < 0 && c->pin_mem[t] != -1) {
		sup_ho_r_fail(r, "allocator: tier%d memory pin %g (-1: none)", t, c->pin_mem[t]);
		return false;
	}
	for (int k = 0; k < S_N; k++)
		if (!load_slot(r, t, k, &c->s[t][k], redo))
			return false;
	return true;
}

int sup_allocator_restore(struct sup_allocator *a, struct sup_ho_r *r)
{
	struct sup_allocator *c = malloc(sizeof(*c));
	uint32_t version, ntiers, nslots;
	bool redo = false;
	int ret = -EINVAL;

	if (!c) {
		sup_ho_r_fail(r, "allocator: out of memory");
		return -ENOMEM;
	}
	*c = *a;
	if (!sup_ho_r_section(r, SUP_HO_TAG_ALLOCATOR, &version)) {
		sup_ho_r_fail(r, "no allocator section in the state");
		ret = -ENOENT;
		goto out;
	}
	if (version != ALLOC_STATE_VERSION) {
		sup_ho_r_fail(r, "allocator section version %u, this tierd reads %u", version,
			      ALLOC_STATE_VERSION);
		ret = -EPROTO;
		goto out;
	}
	if (!sup_ho_r_u32(r, &ntiers) || !sup_ho_r_u32(r, &nslots))
		goto out;
	if (ntiers != SUP_NTIERS + 1 || nslots != S_N) {
		sup_ho_r_fail(r, "allocator: %u tiers of %u knobs, this tierd has %d of %d", ntiers,
			      nslots, SUP_NTIERS + 1, S_N);
		goto out;
	}
	if (!rd_flag(r, "enabled", &c->enabled) || !sup_ho_r_i64(r, &c->ticks))
		goto out;
	for (int t = 0; t <= SUP_NTIERS; t++)
		if (!load_tier(r, c, t, &redo))
			goto out;
	for (int t = 0; t < SUP_NTIERS; t++)
		if (!sup_ho_r_u64(r, &c->weight[t]))
			goto out;
	if (!load_round(r, &c->cpu_in, &c->cpu) || !load_round(r, &c->mem_in, &c->mem))
		goto out;
	/* What is not state stays the new process's: the slots' identity,
	 * fds and io_uring records, the io policy, the observer hook. */
	for (int t = 0; t <= SUP_NTIERS; t++)
		for (int k = 0; k < S_N; k++) {
			struct slot *s = &a->s[t][k];
			const struct slot *from = &c->s[t][k];

			s->written = from->written;
			s->err = from->err;
			s->last_num = from->last_num;
			s->last_ns = from->last_ns;
			memcpy(s->value, from->value, sizeof(s->value));
			s->skipped = from->skipped;
		}
	memcpy(a->mem_high, c->mem_high, sizeof(a->mem_high));
	memcpy(a->pin_cpu, c->pin_cpu, sizeof(a->pin_cpu));
	memcpy(a->pin_mem, c->pin_mem, sizeof(a->pin_mem));
	memcpy(a->bias, c->bias, sizeof(a->bias));
	memcpy(a->weight, c->weight, sizeof(a->weight));
	memcpy(a->idle, c->idle, sizeof(a->idle));
	memcpy(a->idle_until, c->idle_until, sizeof(a->idle_until));
	memcpy(a->idle_why, c->idle_why, sizeof(a->idle_why));
	a->cpu_in = c->cpu_in;
	a->mem_in = c->mem_in;
	a->cpu = c->cpu;
	a->mem = c->mem;
	a->enabled = c->enabled;
	a->ticks = c->ticks;
	a->redo_static = redo;
	ret = 0;
out:
	free(c);
	return ret;
}
