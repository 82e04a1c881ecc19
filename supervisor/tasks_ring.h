/* SPDX-License-Identifier: MIT */
/*
 * The task table's way into real agents' task rings: the ring half of
 * struct sup_tasks_env (tasks_env.h), with the daemon as ctx, over the
 * incarnation's channel (incarnation/incarnation.h), which alone touches
 * the rings.
 */
#ifndef SUP_TASKS_RING_H
#define SUP_TASKS_RING_H

#include <stdint.h>

#include "tier/proto.h"

struct sup_agent;

int sup_tasks_ring_send(void *d, struct sup_agent *ag, const struct tier_task_hdr *h, uint64_t id,
			const void *body, uint32_t len);
int sup_tasks_ring_cancel(void *d, struct sup_agent *ag, uint64_t id);
void sup_tasks_ring_publish(void *d, struct sup_agent *ag);
uint32_t sup_tasks_ring_max_record(void *d, struct sup_agent *ag);
void sup_tasks_ring_fault(void *d, struct sup_agent *ag, const char *what, int err);

#endif
