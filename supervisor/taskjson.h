/* SPDX-License-Identifier: MIT */
/* JSON forms of tasks and payloads for the control protocol. */
#ifndef SUP_TASKJSON_H
#define SUP_TASKJSON_H

#include <jansson.h>
#include <stddef.h>

#include "tasks.h"

/* {"task": id, "status": "...", "agent": "...", "tier": N, "quality": q|null,
 *  "payload": "text" | "payload_b64": "...", "error": "...", "attempts": N,
 *  "times_us": {"queue": …, "run": …, "validate": …, "total": …}} (integers) */
json_t *sup_task_info_json(const struct sup_task_info *i);

/* Set "payload" (valid UTF-8) or "payload_b64" on obj. */
int sup_json_set_payload(json_t *obj, const void *buf, size_t len);

/* Read a payload from args: "payload" (string) or "payload_b64". Returns a
 * malloc'd buffer in *ret (NULL, 0 when absent) or -EINVAL with err set. */
int sup_json_get_payload(json_t *args, void **ret, size_t *ret_len, char *err, size_t errlen);

#endif
