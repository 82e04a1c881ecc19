/* SPDX-License-Identifier: MIT */
/*
 * agent_obs — who hears of an agent's changes. Every module that reacts to
 * them (the journal, the task table, readiness, the monitor, the allocator)
 * registers one observer at init; the state machine notifies the list, in
 * registration order, and knows none of them.
 */
#ifndef SUP_AGENT_OBS_H
#define SUP_AGENT_OBS_H

#include "agent.h"

struct sup_agent_observer {
	/* ag->state is the new state, from the one it left. NULL: not heard. */
	void (*state)(void *arg, struct sup_agent *ag, enum sup_agent_state from);
	/* Its leaf was replaced by a fresh directory. NULL: not heard. */
	void (*leaf)(void *arg, struct sup_agent *ag);
	void *arg;
	struct sup_agent_observer *next;   /* the list's */
};

struct sup_agent_observers {
	struct sup_agent_observer *head;
};

/* Appends o: it hears of changes after everyone registered before it. */
void sup_agent_observe(struct sup_agent_observers *l, struct sup_agent_observer *o);
/* Takes o off the list (no-op if it is not on it). */
void sup_agent_unobserve(struct sup_agent_observers *l, struct sup_agent_observer *o);

void sup_agent_notify_state(const struct sup_agent_observers *l, struct sup_agent *ag,
			    enum sup_agent_state from);
void sup_agent_notify_leaf(const struct sup_agent_observers *l, struct sup_agent *ag);

#endif
