/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <time.h>

#include "events.h"
#include "events_internal.h"

struct sup_events *sup_events_new(size_t cap)
{
	struct sup_events *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->ring = calloc(cap, sizeof(*e->ring));
	if (!e->ring) {
		free(e);
		return NULL;
	}
	e->cap = cap;
	return e;
}

void sup_events_free(struct sup_events *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->cap; i++)
		json_decref(e->ring[i]);
	free(e->ring);
	free(e);
}

uint64_t sup_events_add(struct sup_events *e, const char *kind, json_t *ev)
{
	struct timespec ts;
	size_t slot;

	if (!ev)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	e->seq++;
	json_object_set_new(ev, "seq", json_integer((json_int_t)e->seq));
	json_object_set_new(ev, "ts", json_real((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9));
	json_object_set_new(ev, "kind", json_string(kind));
	slot = (size_t)(e->seq % e->cap);
	json_decref(e->ring[slot]);
	e->ring[slot] = ev;
	return e->seq;
}

json_t *sup_events_since(const struct sup_events *e, uint64_t after, size_t max)
{
	json_t *arr = json_array();
	uint64_t first = e->seq >= e->cap ? e->seq - e->cap + 1 : 1;

	if (after + 1 > first)
		first = after + 1;
	if (e->seq >= first && e->seq - first + 1 > max)
		first = e->seq - max + 1;
	for (uint64_t s = first; s <= e->seq; s++)
		json_array_append(arr, e->ring[s % e->cap]);
	return arr;
}

uint64_t sup_events_last_seq(const struct sup_events *e)
{
	return e->seq;
}
