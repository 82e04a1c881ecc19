/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "payload.h"

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
