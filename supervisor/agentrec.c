/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "tier/proto.h"

#include "agentrec.h"
#include "textesc.h"

const char *sup_agent_rec_fault(uint16_t type, uint32_t len, char *buf, size_t cap)
{
	switch (type) {
	case TIER_MSG_HELLO:
		if (len < sizeof(struct tier_hello)) {
			snprintf(buf, cap, "HELLO shorter than its header (%u of %zu bytes)", len,
				 sizeof(struct tier_hello));
			return buf;
		}
		return NULL;
	case TIER_MSG_RESULT:
		if (len < sizeof(struct tier_result)) {
			snprintf(buf, cap, "RESULT shorter than its header (%u of %zu bytes)", len,
				 sizeof(struct tier_result));
			return buf;
		}
		return NULL;
	case TIER_MSG_HEARTBEAT:
	case TIER_MSG_LOG:
	case TIER_MSG_EVENT:
		return NULL;
	default:
		snprintf(buf, cap, "record type %u is not one an agent may send", (unsigned)type);
		return buf;
	}
}

void sup_agent_event_split(const void *payload, size_t len, char *kind, size_t kcap,
			   char *msg, size_t mcap)
{
	const char *p = payload;
	const char *nul = memchr(p, 0, len);
	size_t kl = nul ? (size_t)(nul - p) : len;

	sup_text_escape(kind, kcap, p, kl);
	if (nul)
		sup_text_escape(msg, mcap, nul + 1, len - kl - 1);
	else
		sup_text_escape(msg, mcap, p + len, 0);
}
