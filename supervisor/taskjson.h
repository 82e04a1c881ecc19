/* SPDX-License-Identifier: MIT */
/* JSON forms of tasks and payloads for the control protocol. */
#ifndef SUP_TASKJSON_H
#define SUP_TASKJSON_H

#include <jansson.h>
#include <stddef.h>

#include "common/payload.h"  /* the payload half, shared with tierctl */
#include "tasks.h"

/* {"task": id, "status": "...", "agent": "...", "tier": N, "quality": q|null,
 *  "payload": "text" | "payload_b64": "...", "error": "...", "attempts": N,
 *  "times_us": {"queue": …, "run": …, "validate": …, "total": …}} (integers) */
json_t *sup_task_info_json(const struct sup_task_info *i);

#endif
