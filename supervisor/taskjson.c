/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "taskjson.h"

int sup_json_set_payload(json_t *obj, const void *buf, size_t len)
{
	char *enc;

	if (sup_utf8_valid(buf, len))
		return json_object_set_new(obj, "payload", json_stringn(buf ? buf : "", len));
	enc = malloc(sup_b64_encoded_len(len));
	if (!enc)
		return -ENOMEM;
	sup_b64_encode(buf, len, enc);
	json_object_set_new(obj, "payload_b64", json_string(enc));
	free(enc);
	return 0;
}

int sup_json_get_payload(json_t *args, void **ret, size_t *ret_len, char *err, size_t errlen)
{
	json_t *p = json_object_get(args, "payload"), *b = json_object_get(args, "payload_b64");
	void *buf;

	*ret = NULL;
	*ret_len = 0;
	if (p && b) {
		snprintf(err, errlen, "give either 'payload' or 'payload_b64', not both");
		return -EINVAL;
	}
	if (p) {
		if (!json_is_string(p)) {
			snprintf(err, errlen, "'payload' must be a string");
			return -EINVAL;
		}
		*ret_len = json_string_length(p);
		buf = malloc(*ret_len + 1);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, json_string_value(p), *ret_len);
		*ret = buf;
		return 0;
	}
	if (b) {
		size_t n;
		long w;

		if (!json_is_string(b)) {
			snprintf(err, errlen, "'payload_b64' must be a string");
			return -EINVAL;
		}
		n = json_string_length(b);
		buf = malloc(n / 4 * 3 + 1);
		if (!buf)
			return -ENOMEM;
		w = sup_b64_decode(json_string_value(b), n, buf);
		if (w < 0) {
			free(buf);
			snprintf(err, errlen, "'payload_b64' is not valid base64");
			return -EINVAL;
		}
		*ret = buf;
		*ret_len = (size_t)w;
	}
	return 0;
}

/* Microseconds as integers: printing a real costs more than the whole rest
 * of a result's encoding. */
static json_int_t us(int64_t a, int64_t b)
{
	return a && b && b >= a ? (json_int_t)((b - a) / 1000) : 0;
}

json_t *sup_task_info_json(const struct sup_task_info *i)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:i}", "task", (json_int_t)i->id, "status",
			      i->status < 0 ? "pending" : sup_task_status_name(i->status),
			      "agent", i->agent ? i->agent : "", "tier", i->tier,
			      "attempts", (int)i->attempts);

	if (!o)
		return NULL;
	json_object_set_new(o, "quality", i->quality >= 0 ? json_real(i->quality) : json_null());
	if (i->error)
		json_object_set_new(o, "error", json_string(i->error));
	if (i->result_len || i->status == TIER_ST_OK)
		sup_json_set_payload(o, i->result, i->result_len);
	json_object_set_new(o, "times_us", json_pack("{s:I, s:I, s:I, s:I}",
		"queue", us(i->t.queued, i->t.dispatched),
		"run", us(i->t.started, i->t.finished),
		"validate", us(i->t.finished, i->t.accepted),
		"total", us(i->t.queued, i->t.accepted)));
	return o;
}
