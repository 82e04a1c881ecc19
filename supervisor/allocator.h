/* SPDX-License-Identifier: MIT */
/*
 * allocator — the only writer of cgroup knobs.
 *
 * At start (and on reload) it writes the static limits from the config:
 * memory.max, pids.max, tier 1's memory.low, io.max, cpuset and every
 * per-agent override. Each monitor tick it turns the monitor's snapshot
 * into the allocator's arithmetic (alloc_math.h) for CPU and memory and applies
 * the result: cpu.weight from the shares, dynamic cpu.max ceilings, and
 * memory.high ceilings moved in small steps; io.weight only where a
 * weight-based io policy is active. No write unless a value moved by more
 * than the hysteresis, and no knob written twice within the rate limit.
 * Operator pins (config or `tierctl limit`) always win and survive
 * reloads. The optimiser proposes ceiling biases; the allocator applies
 * them. Writes that may stall in reclaim go out through io_uring.
 */
#ifndef SUP_ALLOCATOR_H
#define SUP_ALLOCATOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc_math.h"

#define SUP_ALLOC_RATE_LIMIT_NS (2LL * 1000 * 1000 * 1000) /* per knob */
#define SUP_ALLOC_MEM_STEP      0.05                       /* memory.high per tick */
#define SUP_ALLOC_CPU_FLOOR     0.05                       /* cores */
/* cpu.max period of the dynamic ceilings: short, so a capped tier is held
 * back in many small slices instead of running flat out for most of a long
 * period and then stopping, which is what makes higher tiers wait. 20 ms
 * keeps the floor (0.05 cores) at the kernel's smallest quota, 1 ms. */
#define SUP_ALLOC_CPU_PERIOD    20000u                     /* µs */
/* A lower tier is marked cpu.idle (it yields at once to the tiers above)
 * while a higher tier's agents wait to run more than this share of their
 * runnable time; it is cleared once none does. */
#define SUP_ALLOC_IDLE_PRESSURE 0.05
#define SUP_ALLOC_IDLE_HOLD_NS  (10LL * 1000 * 1000 * 1000)

struct sup_agent;
struct sup_agent_observers;
struct sup_allocator;
struct sup_cg;
struct sup_config;
struct sup_journal;
struct sup_loop;
struct sup_monitor;

/* What the allocator reads and writes through: the daemon's narrow views,
 * not the daemon. Everything outlives the allocator. */
struct sup_allocator_deps {
	struct sup_loop            *loop;
	struct sup_cg              *cg;        /* the knobs it writes */
	struct sup_config *const   *conf;      /* the current config: reloads replace it */
	const struct sup_journal   *journal;   /* knob errors */
	struct sup_monitor         *monitor;   /* what it allocates from */
	struct sup_agent_observers *observers; /* it hears of replaced leaves */
};

struct sup_allocator *sup_allocator_new(const struct sup_allocator_deps *deps);
/* Cancel writes in flight (before the loop drains), then free. */
void sup_allocator_cancel(struct sup_allocator *a);
void sup_allocator_free(struct sup_allocator *a);

/* Static limits of the config (start and reload). */
void sup_allocator_apply_static(struct sup_allocator *a);
/* An agent's leaf is new (or was recreated): its overrides go again. */
void sup_allocator_agent_leaf(struct sup_allocator *a, struct sup_agent *ag);

/* One allocation round from the monitor's latest snapshot. */
void sup_allocator_tick(struct sup_allocator *a);

/* Runtime pins (tierctl limit): cpu in cores, memory.high in bytes; -1
 * removes a pin, -2 leaves it as it is. */
int sup_allocator_pin(struct sup_allocator *a, int tier, double cpu_cores, double mem_high);
/* The optimiser's proposal: scale tier's computed ceiling (0.1..1). */
void sup_allocator_bias(struct sup_allocator *a, int tier, double factor);
double sup_allocator_get_bias(const struct sup_allocator *a, int tier);
/* Off: weights and ceilings are left as they are (the isolation benchmark
 * compares on and off). */
void sup_allocator_enable(struct sup_allocator *a, bool on);
bool sup_allocator_enabled(const struct sup_allocator *a);

/* Each tier's values and, with explain, why. */
json_t *sup_allocator_json(const struct sup_allocator *a, bool explain);
/* Is a weight-based io policy active, and if not why (for status). */
bool sup_allocator_io_weights(const struct sup_allocator *a, const char **why);

/* Last computed CPU result (for the optimiser and tests). */
const struct sup_alloc_result *sup_allocator_cpu(const struct sup_allocator *a);

/* live upgrade (allocator_state.c): pins, biases, on/off, the squeeze
 * state, each knob's last written value and time, the last round and the
 * tick count, into SUP_HO_TAG_ALLOCATOR; restore into a new allocator
 * (which then writes only what moves, as the old one would have; a write
 * that was in flight is made again, by the next round or, for a static
 * limit, by the next tick). 0, or -errno with the problem named through
 * sup_ho_r_fail (a untouched). */
struct sup_ho_w;
struct sup_ho_r;
int sup_allocator_save(const struct sup_allocator *a, struct sup_ho_w *w);
int sup_allocator_restore(struct sup_allocator *a, struct sup_ho_r *r);

#endif
