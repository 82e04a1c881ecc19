/* SPDX-License-Identifier: MIT */
/*
 * The event journal's part of the live-upgrade state (SUP_HO_TAG_EVENTS,
 * docs/handover.md): the last sequence number given and the kept events,
 * so `tierctl events --since N` goes on across an upgrade with no gap and
 * no reset. Section version 1:
 *
 *   u64 seq, u32 n, then n times, oldest first: u64 seq, str event (JSON
 *   text of the object, with its "seq", "ts" and "kind").
 *
 * The new journal may be smaller (a reload changed its size): it keeps the
 * newest events that fit, as it would have if it had been that size all
 * along.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "events.h"
#include "events_internal.h"
#include "handover/handover.h"

#define EVENTS_STATE_VERSION 1
#define EVENTS_STATE_MAX     (1u << 20)   /* events */
#define EVENT_TEXT_MAX       (1u << 20)   /* bytes of one event */

int sup_events_save(const struct sup_events *e, struct sup_ho_w *w)
{
	uint64_t first = e->seq >= e->cap ? e->seq - e->cap + 1 : 1;
	uint32_t n = 0;

	for (uint64_t s = first; s <= e->seq; s++)
		n += e->ring[s % e->cap] != NULL;
	sup_ho_w_begin(w, SUP_HO_TAG_EVENTS, EVENTS_STATE_VERSION);
	sup_ho_w_u64(w, e->seq);
	sup_ho_w_u32(w, n);
	for (uint64_t s = first; s <= e->seq; s++) {
		const json_t *ev = e->ring[s % e->cap];
		char *text;

		if (!ev)
			continue;
		text = json_dumps(ev, JSON_COMPACT);
		if (!text) {
			sup_ho_w_end(w);
			return -ENOMEM;
		}
		sup_ho_w_u64(w, s);
		sup_ho_w_str(w, text);
		free(text);
	}
	sup_ho_w_end(w);
	return 0;
}

/* One event, checked: a JSON object whose "seq" is the one it came with. */
static json_t *load_event(struct sup_ho_r *r, uint64_t seq)
{
	json_error_t je;
	json_t *ev, *js;
	char *text;

	if (!sup_ho_r_strdup(r, &text, EVENT_TEXT_MAX))
		return NULL;
	if (!text) {
		sup_ho_r_fail(r, "events: event %llu has no text", (unsigned long long)seq);
		return NULL;
	}
	ev = json_loads(text, 0, &je);
	free(text);
	if (!ev) {
		sup_ho_r_fail(r, "events: event %llu is not JSON: %s at %d", (unsigned long long)seq,
			      je.text, je.position);
		return NULL;
	}
	js = json_object_get(ev, "seq");
	if (!json_is_object(ev) || !json_is_integer(js) ||
	    (uint64_t)json_integer_value(js) != seq) {
		sup_ho_r_fail(r, "events: event %llu is not an object carrying its seq",
			      (unsigned long long)seq);
		json_decref(ev);
		return NULL;
	}
	return ev;
}

int sup_events_restore(struct sup_events *e, struct sup_ho_r *r)
{
	uint64_t seq, prev = 0;
	uint32_t version, n;
	json_t **ring;
	int ret = -EINVAL;

	if (e->seq) {
		sup_ho_r_fail(r, "events: restoring into a journal that already has events");
		return -EBUSY;
	}
	if (!sup_ho_r_section(r, SUP_HO_TAG_EVENTS, &version)) {
		sup_ho_r_fail(r, "no events section in the state");
		return -ENOENT;
	}
	if (version != EVENTS_STATE_VERSION) {
		sup_ho_r_fail(r, "events section version %u, this tierd reads %u", version,
			      EVENTS_STATE_VERSION);
		return -EPROTO;
	}
	if (!sup_ho_r_u64(r, &seq) || !sup_ho_r_u32(r, &n))
		return -EINVAL;
	/* Events carry their seq as a JSON integer (int64), and the journal's
	 * loops run up to seq inclusive. */
	if (seq > INT64_MAX) {
		sup_ho_r_fail(r, "events: last seq %llu is past 2^63 - 1", (unsigned long long)seq);
		return -EINVAL;
	}
	if (n > EVENTS_STATE_MAX || n > seq) {
		sup_ho_r_fail(r, "events: %u events kept of %llu (at most %u)", n,
			      (unsigned long long)seq, EVENTS_STATE_MAX);
		return -EINVAL;
	}
	ring = calloc(e->cap, sizeof(*ring));
	if (!ring) {
		sup_ho_r_fail(r, "events: out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s;
		json_t *ev;

		if (!sup_ho_r_u64(r, &s))
			goto fail;
		if (s <= prev || s > seq) {
			sup_ho_r_fail(r, "events: event %llu after %llu (last seq %llu)",
				      (unsigned long long)s, (unsigned long long)prev,
				      (unsigned long long)seq);
			goto fail;
		}
		prev = s;
		ev = load_event(r, s);
		if (!ev)
			goto fail;
		/* Older ones fall out of a smaller ring, as they would have. */
		if (seq - s >= e->cap) {
			json_decref(ev);
			continue;
		}
		ring[s % e->cap] = ev;
	}
	free(e->ring);
	e->ring = ring;
	e->seq = seq;
	return 0;

fail:
	for (size_t i = 0; i < e->cap; i++)
		json_decref(ring[i]);
	free(ring);
	return ret;
}
