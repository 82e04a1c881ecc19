/* SPDX-License-Identifier: MIT */
/*
 * When an incarnation's completion ring is read: on its doorbell, by the
 * idle spin while tasks are in flight, and not at all while the agent is
 * over one of its budgets (until the window ends) or after it flooded.
 */
#include <errno.h>
#include <poll.h>

#include "tier/ring.h"

#include "../config/config.h"
#include "../journal.h"
#include "internal.h"

static void flooder(struct sup_inc *inc, enum sup_budget_kind kind)
{
	const struct sup_inc_owner *own = &inc->own;
	const struct sup_supervisor_conf *s = &(*inc->fleet->env.conf)->sup;

	if (inc->faulted)
		return;
	inc->faulted = true;
	sup_journal_event(inc->fleet->env.journal, SUP_LOG_ERR, "flooder",
			  json_pack("{s:s, s:i, s:s, s:f}", "agent", own->name, "incarnation",
				    (int)inc->n, "budget", sup_budget_kind_name(kind), "for_s",
				    (double)s->agent_flood_kill_after_ns * 1e-9),
			  "agent %s: over its %s budget for %.1fs; killing it as a flooder", own->name,
			  sup_budget_kind_name(kind), (double)s->agent_flood_kill_after_ns * 1e-9);
	own->ops->flooded(inc->ag);
}

void sup_inc_resume_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_inc *inc = t->data;

	if (!inc->ag || inc->exited || inc->faulted)
		return;
	if (inc->cq_paused) {
		inc->cq_paused = false;
		if (sup_ev_idle(&inc->bell_ev))
			sup_loop_poll(l, &inc->bell_ev, inc->cq_bell, POLLIN, true);
		sup_defer_queue(l, &inc->drain);
	}
	for (int i = 0; i < 2; i++)
		if (inc->out_paused[i]) {
			inc->out_paused[i] = false;
			sup_inc_out_arm(&inc->out[i]);
		}
}

/* The source waits for the end of the window, or the agent is a flooder. */
void sup_inc_pause(struct sup_inc *inc, enum sup_budget_verdict v, enum sup_budget_kind kind)
{
	if (v == SUP_BUDGET_FLOODER) {
		flooder(inc, kind);
		return;
	}
	if (!sup_timer_armed(&inc->resume))
		sup_timer_arm(inc->fleet->env.loop, &inc->resume, sup_budget_resume_at(inc->own.budget));
}

static void cq_pause(struct sup_inc *inc, enum sup_budget_verdict v, enum sup_budget_kind kind)
{
	inc->cq_paused = true;
	/* The doorbell is not watched while paused: an agent writing it in a
	 * loop then costs tierd nothing until the window ends. */
	sup_loop_cancel(inc->fleet->env.loop, &inc->bell_ev);
	if (inc->cq_awake)
		sup_inc_awake_unlink(inc);
	sup_inc_pause(inc, v, kind);
}

bool sup_inc_drain_charged(struct sup_inc *inc, unsigned budget)
{
	struct sup_budget *b = inc->own.budget;
	struct sup_inc_drained dr;
	int more = sup_inc_drain(inc, budget, &dr);

	if (more < 0)
		return false;
	if (!inc->exited) {
		int64_t now = sup_loop_time(inc->fleet->env.loop);
		enum sup_budget_verdict v = SUP_BUDGET_OK;
		enum sup_budget_kind kind = SUP_BUDGET_RECORDS;

		if (dr.unsolicited)
			v = sup_budget_charge(b, SUP_BUDGET_RECORDS, dr.unsolicited, now);
		else if (!dr.records && inc->bell_rang)
			v = sup_budget_charge(b, kind = SUP_BUDGET_WAKES, 1, now);
		inc->bell_rang = false;
		if (v != SUP_BUDGET_OK) {
			cq_pause(inc, v, kind);
			return false;
		}
	}
	return more;
}

void sup_inc_drain_fired(struct sup_loop *l, struct sup_defer *dfr)
{
	struct sup_inc *inc = dfr->data;
	struct sup_inc_fleet *f = inc->fleet;

	if (!inc->ag || inc->exited || inc->faulted || inc->cq_paused)
		return;
	if (sup_inc_drain_charged(inc, SUP_INC_DRAIN_BUDGET)) {
		sup_defer_queue(l, dfr);
		return;
	}
	if (!sup_inc_live(inc) || inc->cq_paused)
		return;
	/* Empty. While tasks are in flight tierd polls this ring before it
	 * blocks (sup_inc_idle_spin); the doorbell is asked for only then. */
	if (!inc->cq_awake) {
		inc->cq_awake = true;
		inc->next_awake = f->awake;
		f->awake = inc;
	}
}

void sup_inc_awake_unlink(struct sup_inc *inc)
{
	for (struct sup_inc **pp = &inc->fleet->awake; *pp; pp = &(*pp)->next_awake)
		if (*pp == inc) {
			*pp = inc->next_awake;
			break;
		}
	inc->cq_awake = false;
}

int sup_inc_idle_spin(void *arg)
{
	struct sup_inc_fleet *f = arg;
	int found = 0;

	if (!f->hooks->spin_worthwhile(f->arg))
		return -1;
	for (struct sup_inc *inc = f->awake; inc; inc = inc->next_awake)
		if (inc->ag && !inc->exited && !inc->faulted && tier_cons_pending(tier_shm_cons(inc->shm))) {
			sup_defer_queue(f->env.loop, &inc->drain);
			found = 1;
		}
	return found;
}

int sup_inc_before_sleep(void *arg)
{
	struct sup_inc_fleet *f = arg;
	struct sup_inc *inc = f->awake, *keep = NULL;
	int found = 0;

	/* Every ring we polled goes to sleep on its doorbell; one that got a
	 * record meanwhile is drained instead. */
	while (inc) {
		struct sup_inc *next = inc->next_awake;

		inc->cq_awake = false;
		if (inc->ag && !inc->exited && !inc->faulted &&
		    tier_cons_prepare_sleep(tier_shm_cons(inc->shm), TIER_SLEEP_EVENTFD, NULL) != 0) {
			sup_defer_queue(f->env.loop, &inc->drain);
			inc->cq_awake = true;
			inc->next_awake = keep;
			keep = inc;
			found = 1;
		}
		inc = next;
	}
	f->awake = keep;
	return found;
}

void sup_inc_bell_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_inc *inc = ev->data;

	if (!inc->ag) {
		sup_inc_reap_dead(inc->fleet);
		return;
	}
	if (inc->fleet->quiescing)
		return;   /* the next binary drains every ring once */
	if (res > 0 && !inc->cq_paused && !inc->faulted) {
		/* A ring that brings no record (the drain finds the ring empty)
		 * is charged: an agent writing its eventfd in a loop would
		 * otherwise cost tierd a loop turn per write. */
		inc->bell_rang = true;
		sup_defer_queue(l, &inc->drain);
	}
	/* A multishot poll the kernel ended (not cancelled): arm it again. */
	if (!more && res != -ECANCELED && !inc->exited && !inc->cq_paused)
		sup_loop_poll(l, &inc->bell_ev, inc->cq_bell, POLLIN, true);
}
