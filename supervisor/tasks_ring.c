/* SPDX-License-Identifier: MIT */
/* Tasks into real agents' incarnations: see tasks_ring.h. */
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "daemon.h"
#include "incarnation/incarnation.h"
#include "tasks_ring.h"
#include "tier/ring.h"

int sup_tasks_ring_send(void *d, struct sup_agent *ag, const struct tier_task_hdr *h, uint64_t id,
			const void *body, uint32_t len)
{
	const struct sup_inc_task t = {
		.id = id,
		.deadline_ns = h->deadline_ns,
		.attempt = h->attempt,
		.flags = h->flags,
		.type_len = h->type_len,
		.context_len = h->context_len,
		.len = len - h->type_len - h->context_len,
		.data = body,
	};

	(void)d;
	return sup_inc_send(ag->inc, &t);
}

int sup_tasks_ring_cancel(void *d, struct sup_agent *ag, uint64_t id)
{
	(void)d;
	return sup_inc_cancel(ag->inc, id);
}

/* A corrupt ring faults the incarnation inside sup_inc_flush; a failed
 * wake-up is tierd's, and only logged: the agent polls anyway. */
void sup_tasks_ring_publish(void *d, struct sup_agent *ag)
{
	struct sup_daemon *dm = d;
	int r = sup_inc_flush(ag->inc);

	if (r < 0)
		sup_log(&dm->log, SUP_LOG_ERR, "agent %s: waking it: %s", ag->name, tier_strerror(r));
}

uint32_t sup_tasks_ring_max_record(void *d, struct sup_agent *ag)
{
	(void)d;
	return sup_inc_max_payload(ag->inc);
}

void sup_tasks_ring_fault(void *d, struct sup_agent *ag, const char *what, int err)
{
	(void)d;
	sup_inc_fault(ag->inc, what, err);
}
