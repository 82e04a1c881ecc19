/* SPDX-License-Identifier: MIT */
/* The event journal's insides, shared by events.c and events_state.c (its
 * part of the live-upgrade state). Nothing else includes this. */
#ifndef SUP_EVENTS_INTERNAL_H
#define SUP_EVENTS_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Event seq lives at ring[seq % cap]. */
struct sup_events {
	json_t        **ring;
	size_t          cap;
	uint64_t        seq;      /* last sequence number given */
};

#endif
