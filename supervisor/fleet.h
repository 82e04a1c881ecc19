/* SPDX-License-Identifier: MIT */
/*
 * fleet — the daemon's agents, in the order they were added (the config
 * file's, then reloads'), and lookup by name. The view handed to modules
 * that walk or find agents instead of the whole daemon. Owned by the
 * daemon; the agents themselves are freed by their owner, not here.
 */
#ifndef SUP_FLEET_H
#define SUP_FLEET_H

#include <stddef.h>

struct sup_agent;

struct sup_fleet {
	struct sup_agent **agents;
	size_t             n, cap;
};

/* NULL when no agent is called name. */
struct sup_agent *sup_fleet_find(const struct sup_fleet *f, const char *name);
/* Room for one more agent: 0, or -ENOMEM (the fleet unchanged). */
int  sup_fleet_reserve(struct sup_fleet *f);
/* Appends ag: 0, or -ENOMEM (the fleet unchanged); cannot fail right
 * after a successful sup_fleet_reserve. */
int  sup_fleet_add(struct sup_fleet *f, struct sup_agent *ag);
/* Takes the agent at i out, keeping the others' order. */
void sup_fleet_remove_at(struct sup_fleet *f, size_t i);
/* The array only (the agents are their owner's). */
void sup_fleet_fini(struct sup_fleet *f);

#endif
