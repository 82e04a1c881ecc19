/* SPDX-License-Identifier: MIT */
/* tasks_json — JSON forms of tasks for the control protocol; see tasks.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/payload.h"
#include "tasks.h"

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
