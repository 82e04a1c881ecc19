/* SPDX-License-Identifier: MIT */
/* The records an agent sends, checked before tierd acts on them (pure: no
 * daemon state, so tests/fuzz/fuzz_ring.c drives it with short records). */
#ifndef SUP_AGENTREC_H
#define SUP_AGENTREC_H

#include <stddef.h>
#include <stdint.h>

/* Why a record of this type with len payload bytes is one tierd must
 * refuse (a sentence for the protocol_violation event, written to buf), or
 * NULL if its type and length are fine. RESULT is checked here too, but the
 * caller fails its task first. */
const char *sup_agent_rec_fault(uint16_t type, uint32_t len, char *buf, size_t cap);

/* An EVENT payload ("kind" NUL "message", either part possibly absent) as
 * two escaped C strings (see textesc.h). */
void sup_agent_event_split(const void *payload, size_t len, char *kind, size_t kcap,
			   char *msg, size_t mcap);

#endif
