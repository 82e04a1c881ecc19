/* SPDX-License-Identifier: MIT */
/*
 * The event journal: a bounded ring of JSON events (agent state changes,
 * exits and why, protocol violations, alerts, knob changes …), each with a
 * sequence number and a timestamp. Followers (tierctl events -f) poll with
 * the last sequence number they saw (sup_events_since).
 */
#ifndef SUP_EVENTS_H
#define SUP_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sup_events;

struct sup_events *sup_events_new(size_t cap);
void sup_events_free(struct sup_events *e);

/* Adds "seq", "ts" (wall clock, seconds) and "kind"; steals ev. Returns the
 * sequence number (0 if ev was NULL). */
uint64_t sup_events_add(struct sup_events *e, const char *kind, json_t *ev);

/* Events with seq > after, oldest first, at most max (new array). */
json_t *sup_events_since(const struct sup_events *e, uint64_t after, size_t max);
uint64_t sup_events_last_seq(const struct sup_events *e);

/* live upgrade (events_state.c): the sequence number and the kept events
 * into SUP_HO_TAG_EVENTS; restore into a new, empty journal (of any
 * capacity: the newest that fit are kept), so followers go on from the
 * seq they saw. 0 or -errno, the problem named through sup_ho_r_fail. */
struct sup_ho_w;
struct sup_ho_r;
int sup_events_save(const struct sup_events *e, struct sup_ho_w *w);
int sup_events_restore(struct sup_events *e, struct sup_ho_r *r);

#endif
