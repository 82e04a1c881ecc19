/* SPDX-License-Identifier: MIT */
/*
 * intake_state — the intake's handover section 'flet' (docs/handover.md):
 * every broker task this node holds, so the next binary acks, extends and
 * answers them from its own connection (a JetStream ack is a publish to
 * the message's reply subject, from any connection).
 *
 *   u8 draining (fleet-drain holds across the upgrade), u32 count, then
 *   per lease:
 *     u64 seq, u64 local task id, u64 local run id, u32 deliveries,
 *     u8 is_run, u8 state (0 running, 1 result made), u8 verb (0 ack,
 *     1 term, 2 nak), str reply, str key, str subject, str status,
 *     bytes result (empty while running)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../handover/handover.h"
#include "internal.h"
#include "../tasks.h"
#include "../workflow.h"

#define FLET_VERSION   1
#define FLET_MAX       (1u << 20)
#define FLET_STR_MAX   1024
#define FLET_RESULT_MAX (16u << 20)

int sup_intake_save(struct sup_intake *in, struct sup_ho_w *w)
{
	if (!in)
		return 0;
	sup_ho_w_begin(w, SUP_HO_TAG_FLEET, FLET_VERSION);
	sup_ho_w_u8(w, in->draining);
	sup_ho_w_u32(w, in->nleases);
	for (struct in_lease *l = in->head; l; l = l->next) {
		sup_ho_w_u64(w, l->seq);
		sup_ho_w_u64(w, l->local);
		sup_ho_w_u64(w, l->run);
		sup_ho_w_u32(w, l->deliveries);
		sup_ho_w_u8(w, l->is_run);
		sup_ho_w_u8(w, (uint8_t)l->state);
		sup_ho_w_u8(w, (uint8_t)l->verb);
		sup_ho_w_str(w, l->reply);
		sup_ho_w_str(w, l->key);
		sup_ho_w_str(w, l->subject);
		sup_ho_w_str(w, l->status);
		sup_ho_w_bytes(w, l->result ? l->result : "", l->result ? l->result_len : 0);
	}
	sup_ho_w_end(w);
	return 0;
}

static int rebind(struct sup_intake *in, struct in_lease *l)
{
	if (l->state != IN_L_RUNNING)
		return 0;
	if (l->is_run) {
		int r = sup_wf_rebind(in->env.wf, l->run, sup_in_run_done, l);

		if (r == 0)
			in->nruns++;
		return r;
	}
	return sup_tasks_rebind(in->env.tasks, l->local, sup_in_task_done, l);
}

int sup_intake_restore(struct sup_intake *in, struct sup_ho_r *r)
{
	uint32_t n, ver;
	uint8_t draining;

	if (!sup_ho_r_section(r, SUP_HO_TAG_FLEET, &ver))
		return 0;   /* the previous binary had no intake */
	if (ver != FLET_VERSION) {
		sup_ho_r_fail(r, "version %u, expected %u", ver, FLET_VERSION);
		return -EINVAL;
	}
	if (!sup_ho_r_u8(r, &draining) || draining > 1) {
		sup_ho_r_fail(r, "a draining flag of %u", draining);
		return -EINVAL;
	}
	if (in && draining)
		in->draining = true;
	if (!sup_ho_r_u32(r, &n) || n > FLET_MAX) {
		sup_ho_r_fail(r, "a count of %u leases", n);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t seq, local, run;
		uint32_t deliv, rlen;
		uint8_t is_run, state, verb;
		char *reply = NULL, *subject = NULL;
		char key[SUP_IN_KEY_MAX + 1], status[16];
		const void *res;
		struct in_lease *l;

		if (!sup_ho_r_u64(r, &seq) || !sup_ho_r_u64(r, &local) || !sup_ho_r_u64(r, &run) ||
		    !sup_ho_r_u32(r, &deliv) || !sup_ho_r_u8(r, &is_run) || !sup_ho_r_u8(r, &state) ||
		    !sup_ho_r_u8(r, &verb) || !sup_ho_r_strdup(r, &reply, FLET_STR_MAX) ||
		    !sup_ho_r_str(r, key, sizeof(key)) ||
		    !sup_ho_r_strdup(r, &subject, FLET_STR_MAX) ||
		    !sup_ho_r_str(r, status, sizeof(status)) ||
		    !sup_ho_r_bytes(r, &res, &rlen, FLET_RESULT_MAX)) {
			free(reply);
			free(subject);
			return -EINVAL;
		}
		if (!in || !seq || state > IN_L_PUBLISHING || verb > IN_NAK || is_run > 1 || !reply ||
		    (state == IN_L_PUBLISHING && !rlen) || sup_in_lease_find(in, seq)) {
			free(reply);
			free(subject);
			if (!in)
				continue;   /* no [fleet] any more: the broker redelivers */
			sup_ho_r_fail(r, "lease %u (seq %llu): bad or repeated", i,
				      (unsigned long long)seq);
			return -EINVAL;
		}
		l = sup_in_lease_new(in, seq);
		if (!l) {
			free(reply);
			free(subject);
			return -ENOMEM;
		}
		l->local = local;
		l->run = run;
		l->deliveries = deliv;
		l->is_run = is_run;
		l->state = (enum in_lstate)state;
		l->verb = (enum in_verb)verb;
		l->reply = reply;
		l->subject = subject;
		l->started = l->next_wpi = sup_in_now(in);
		memcpy(l->key, key, sizeof(l->key));
		memcpy(l->status, status, sizeof(l->status));
		if (rlen) {
			l->result = malloc(rlen);
			if (!l->result) {
				sup_in_lease_free(l);
				return -ENOMEM;
			}
			memcpy(l->result, res, rlen);
			l->result_len = rlen;
		}
		if (rebind(in, l) < 0) {
			/* Its task is gone from the table: the broker redelivers it
			 * once its lease runs out. */
			sup_in_log(in, 4, "fleet: broker task %llu (local %llu) not found after the "
				   "upgrade: left to the broker", (unsigned long long)seq,
				   (unsigned long long)local);
			l->is_run = false;
			sup_in_lease_free(l);
		}
	}
	return sup_ho_r_ok(r) ? 0 : -EINVAL;
}
