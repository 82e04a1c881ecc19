/* SPDX-License-Identifier: MIT */
/* The fleet of agents: see fleet.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "fleet.h"

struct sup_agent *sup_fleet_find(const struct sup_fleet *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->agents[i]->name, name))
			return f->agents[i];
	return NULL;
}

int sup_fleet_reserve(struct sup_fleet *f)
{
	size_t cap = f->cap ? f->cap * 2 : 32;
	struct sup_agent **v;

	if (f->n < f->cap)
		return 0;
	v = realloc(f->agents, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	f->agents = v;
	f->cap = cap;
	return 0;
}

int sup_fleet_add(struct sup_fleet *f, struct sup_agent *ag)
{
	int r = sup_fleet_reserve(f);

	if (r < 0)
		return r;
	f->agents[f->n++] = ag;
	return 0;
}

void sup_fleet_remove_at(struct sup_fleet *f, size_t i)
{
	memmove(&f->agents[i], &f->agents[i + 1], (f->n - i - 1) * sizeof(*f->agents));
	f->n--;
}

void sup_fleet_fini(struct sup_fleet *f)
{
	free(f->agents);
	*f = (struct sup_fleet){ 0 };
}
