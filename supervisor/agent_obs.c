/* SPDX-License-Identifier: MIT */
/* The observer list of agent changes. */
#include <stddef.h>

#include "agent.h"

void sup_agent_observe(struct sup_agent_observers *l, struct sup_agent_observer *o)
{
	struct sup_agent_observer **pp = &l->head;

	while (*pp)
		pp = &(*pp)->next;
	o->next = NULL;
	*pp = o;
}

void sup_agent_unobserve(struct sup_agent_observers *l, struct sup_agent_observer *o)
{
	for (struct sup_agent_observer **pp = &l->head; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			o->next = NULL;
			return;
		}
}

void sup_agent_notify_state(const struct sup_agent_observers *l, struct sup_agent *ag,
			    enum sup_agent_state from)
{
	for (struct sup_agent_observer *o = l->head; o; o = o->next)
		if (o->state)
			o->state(o->arg, ag, from);
}

void sup_agent_notify_leaf(const struct sup_agent_observers *l, struct sup_agent *ag)
{
	for (struct sup_agent_observer *o = l->head; o; o = o->next)
		if (o->leaf)
			o->leaf(o->arg, ag);
}
