/* SPDX-License-Identifier: MIT */
/* A task payload in a control-protocol JSON object: "payload" when it is
 * valid UTF-8, else "payload_b64". Shared by tierd and tierctl. */
#ifndef SUP_PAYLOAD_H
#define SUP_PAYLOAD_H

#include <jansson.h>
#include <stddef.h>

/* Set "payload" (valid UTF-8) or "payload_b64" on obj. */
int sup_json_set_payload(json_t *obj, const void *buf, size_t len);

/* Read a payload from args: "payload" (string) or "payload_b64". Returns a
 * malloc'd buffer in *ret (NULL, 0 when absent) or -EINVAL with err set. */
int sup_json_get_payload(json_t *args, void **ret, size_t *ret_len, char *err, size_t errlen);

#endif
