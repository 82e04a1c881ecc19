/* SPDX-License-Identifier: MIT */
/* Tasks into real agents' rings: see tasks_ring.h. */
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "daemon.h"
#include "inc.h"
#include "tasks_ring.h"
#include "tier/ring.h"

int sup_tasks_ring_send(void *d, struct sup_agent *ag, const struct tier_task_hdr *h, uint64_t id,
			const void *body, uint32_t len)
{
	struct tier_prod *p = tier_shm_prod(ag->inc->shm);
	char *dst;
	int r = tier_prod_reserve(p, (uint32_t)sizeof(*h) + len, (void **)&dst);

	(void)d;
	if (r < 0)
		return r;
	memcpy(dst, h, sizeof(*h));
	memcpy(dst + sizeof(*h), body, len);
	tier_prod_commit(p, TIER_MSG_TASK, 0, id, (uint32_t)sizeof(*h) + len);
	return 0;
}

int sup_tasks_ring_cancel(void *d, struct sup_agent *ag, uint64_t id)
{
	(void)d;
	return tier_prod_write(tier_shm_prod(ag->inc->shm), TIER_MSG_CANCEL, 0, id, NULL, 0);
}

/* A ring error is the agent's fault (it corrupted the shared indices); a
 * failed wake-up is tierd's, and only logged: the agent polls anyway. */
void sup_tasks_ring_publish(void *d, struct sup_agent *ag)
{
	struct sup_daemon *dm = d;
	int r = tier_prod_publish(tier_shm_prod(ag->inc->shm));

	if (r <= -TIER_E_BASE)
		sup_inc_fault(ag, "task ring corrupt", r);
	else if (r < 0)
		sup_log(&dm->log, SUP_LOG_ERR, "agent %s: waking it: %s", ag->name, tier_strerror(r));
}

uint32_t sup_tasks_ring_max_record(void *d, struct sup_agent *ag)
{
	(void)d;
	return tier_shm_max_payload(ag->inc->shm);
}

void sup_tasks_ring_fault(void *d, struct sup_agent *ag, const char *what, int err)
{
	(void)d;
	sup_inc_fault(ag, what, err);
}
