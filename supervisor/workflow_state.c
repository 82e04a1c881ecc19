/* SPDX-License-Identifier: MIT */
/*
 * The workflow's part of the live-upgrade state (SUP_HO_TAG_WORKFLOWS,
 * docs/handover.md): next_id, the pacing, and every run, running or kept,
 * with its records. Section version 1:
 *
 *   u64 next_id, i64 batch_size, i64 stagger_ns, u32 nruns, then per run:
 *   u64 id, str type, u8 has_payload, bytes payload (none once the run
 *   is done), u64 len (the payload's, kept after it), i64 stage,
 *   i64 batch_size, i64 stagger_ns, i64 timeout_ns, u64 stage_first,
 *   u32 pending, u8 has_t3, u32 n_t3, str t3[n_t3], u64 next_t3,
 *   i64 batch_no, i64 batch_done_ns, i64 stagger_total_ns,
 *   u8 stagger_armed, i64 stagger_deadline, bytes ctx (at most ctx_max),
 *   u8 ctx_truncated,
 *   u64 ctx_dropped, u64 ctx_max, i64 start_ns, i64 end_ns, u32 cores,
 *   u64 cpu0, f64 cpu_ms, u8 had_waiter, u64 wal_seg (the journal
 *   segment its RUN_START is in while it runs, 0: none; the journal's own
 *   section keeps the segment's reference count), str aggregate (JSON text, NULL:
 *   none), stats (u64 run, f64 wall_ms, f64 efficiency, per tier 1..4:
 *   f64 wall, busy, dispatch, validate, stagger ms, u32 tasks, ok,
 *   timeouts, errors), u32 nrecs, then per record: str agent, i64 tier,
 *   i64 batch, i64 status, f64 quality, u64 task, i64 queued, dispatched,
 *   started, finished, accepted, u8 has_result, bytes result, u64 full_len.
 *
 * Deadlines are CLOCK_MONOTONIC, which goes on across execve: the stagger
 * timer is re-armed at its saved absolute deadline. Each pending record's
 * task (restored before, in the task table, with no owner) is re-bound to
 * the record (sup_tasks_rebind). A
 * run's done callback belonged to a control client of the old process: it
 * is gone, so the run comes back with no done and its aggregate is kept to
 * be fetched by id, like any run started without one.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "handover/handover.h"
#include "workflow_internal.h"

#define WF_STATE_VERSION   1
/* Bounds on what a state may hold: far above any real fleet, low enough
 * that a corrupt count cannot make the reader allocate without end. */
#define WF_STATE_RUNS_MAX  65536u
#define WF_STATE_RECS_MAX  (1u << 20)
#define WF_STATE_AGG_MAX   (64u << 20)

/* ---- save ----------------------------------------------------------------- */

static void save_stats(struct sup_ho_w *w, const struct sup_wf_run_stats *st)
{
	sup_ho_w_u64(w, st->run);
	sup_ho_w_f64(w, st->wall_ms);
	sup_ho_w_f64(w, st->efficiency);
	for (int t = 1; t <= SUP_NTIERS; t++) {
		const struct sup_wf_stage_stats *s = &st->tier[t];

		sup_ho_w_f64(w, s->wall_ms);
		sup_ho_w_f64(w, s->busy_ms);
		sup_ho_w_f64(w, s->dispatch_ms);
		sup_ho_w_f64(w, s->validate_ms);
		sup_ho_w_f64(w, s->stagger_ms);
		sup_ho_w_u32(w, s->tasks);
		sup_ho_w_u32(w, s->ok);
		sup_ho_w_u32(w, s->timeouts);
		sup_ho_w_u32(w, s->errors);
	}
}

static void save_rec(struct sup_ho_w *w, const struct rec *r)
{
	sup_ho_w_str(w, r->agent);
	sup_ho_w_i64(w, r->tier);
	sup_ho_w_i64(w, r->batch);
	sup_ho_w_i64(w, r->status);
	sup_ho_w_f64(w, r->quality);
	sup_ho_w_u64(w, r->task);
	sup_ho_w_i64(w, r->t.queued);
	sup_ho_w_i64(w, r->t.dispatched);
	sup_ho_w_i64(w, r->t.started);
	sup_ho_w_i64(w, r->t.finished);
	sup_ho_w_i64(w, r->t.accepted);
	sup_ho_w_u8(w, r->result != NULL);
	sup_ho_w_bytes(w, r->result, r->result ? r->result_len : 0);
	sup_ho_w_u64(w, r->full_len);
}

static int save_run(struct sup_ho_w *w, const struct sup_run *run)
{
	char *agg = NULL;

	if (run->aggregate) {
		agg = json_dumps(run->aggregate, JSON_COMPACT);
		if (!agg)
			return -ENOMEM;
	}
	sup_ho_w_u64(w, run->id);
	sup_ho_w_str(w, run->type);
	sup_ho_w_u8(w, run->payload != NULL);
	sup_ho_w_bytes(w, run->payload, run->payload ? run->len : 0);
	sup_ho_w_u64(w, run->len);
	sup_ho_w_i64(w, run->stage);
	sup_ho_w_i64(w, run->batch_size);
	sup_ho_w_i64(w, run->stagger_ns);
	sup_ho_w_i64(w, run->timeout_ns);
	sup_ho_w_u64(w, run->stage_first);
	sup_ho_w_u32(w, run->pending);
	sup_ho_w_u8(w, run->t3 != NULL);
	sup_ho_w_u32(w, (uint32_t)run->n_t3);
	for (size_t i = 0; i < run->n_t3; i++)
		sup_ho_w_str(w, run->t3[i]);
	sup_ho_w_u64(w, run->next_t3);
	sup_ho_w_i64(w, run->batch_no);
	sup_ho_w_i64(w, run->batch_done_ns);
	sup_ho_w_i64(w, run->stagger_total_ns);
	sup_ho_w_u8(w, sup_timer_armed(&run->stagger_timer));
	sup_ho_w_i64(w, sup_timer_deadline(&run->stagger_timer));
	sup_ho_w_bytes(w, run->ctx, run->ctx_len);
	sup_ho_w_u8(w, run->ctx_truncated);
	sup_ho_w_u64(w, run->ctx_dropped);
	sup_ho_w_u64(w, run->ctx_max);
	sup_ho_w_i64(w, run->start_ns);
	sup_ho_w_i64(w, run->end_ns);
	sup_ho_w_u32(w, run->cores);
	sup_ho_w_u64(w, run->cpu0);
	sup_ho_w_f64(w, run->cpu_ms);
	sup_ho_w_u8(w, run->done != NULL);
	sup_ho_w_u64(w, run->wal_seg);
	sup_ho_w_str(w, agg);
	free(agg);
	save_stats(w, &run->stats);
	sup_ho_w_u32(w, (uint32_t)run->nrecs);
	for (size_t i = 0; i < run->nrecs; i++)
		save_rec(w, run->recs[i]);
	return 0;
}

int sup_wf_save(const struct sup_wf *wf, struct sup_ho_w *w)
{
	int r = 0;

	if (wf->nruns > WF_STATE_RUNS_MAX)
		return -E2BIG;
	for (const struct sup_run *run = wf->runs; run; run = run->next)
		if (run->nrecs > WF_STATE_RECS_MAX || run->n_t3 > WF_STATE_RECS_MAX)
			return -E2BIG;
	sup_ho_w_begin(w, SUP_HO_TAG_WORKFLOWS, WF_STATE_VERSION);
	sup_ho_w_u64(w, wf->next_id);
	sup_ho_w_i64(w, wf->batch_size);
	sup_ho_w_i64(w, wf->stagger_ns);
	sup_ho_w_u32(w, (uint32_t)wf->nruns);
	for (const struct sup_run *run = wf->runs; run && !r; run = run->next)
		r = save_run(w, run);
	sup_ho_w_end(w);
	return r;
}

/* ---- restore ---------------------------------------------------------------- */

/* Reads of signed fields into the int types of the structs, range-checked. */
static bool rd_int(struct sup_ho_r *r, const char *what, int64_t lo, int64_t hi, int *ret)
{
	int64_t v;

	if (!sup_ho_r_i64(r, &v))
		return false;
	if (v < lo || v > hi) {
		sup_ho_r_fail(r, "%s %lld is out of range [%lld, %lld]", what, (long long)v,
			      (long long)lo, (long long)hi);
		return false;
	}
	*ret = (int)v;
	return true;
}

static bool rd_ns(struct sup_ho_r *r, const char *what, int64_t *ret)
{
	if (!sup_ho_r_i64(r, ret))
		return false;
	if (*ret < 0) {
		sup_ho_r_fail(r, "%s %lld is negative", what, (long long)*ret);
		return false;
	}
	return true;
}

static bool rd_bool(struct sup_ho_r *r, bool *ret)
{
	uint8_t v;

	if (!sup_ho_r_u8(r, &v))
		return false;
	if (v > 1) {
		sup_ho_r_fail(r, "a flag holds %u, not 0 or 1", v);
		return false;
	}
	*ret = v;
	return true;
}

static bool rd_real(struct sup_ho_r *r, const char *what, double *ret)
{
	if (!sup_ho_r_f64(r, ret))
		return false;
	if (!isfinite(*ret)) {
		sup_ho_r_fail(r, "%s is not a finite number", what);
		return false;
	}
	return true;
}

static bool load_stats(struct sup_ho_r *r, struct sup_wf_run_stats *st)
{
	bool ok = sup_ho_r_u64(r, &st->run) && rd_real(r, "wall_ms", &st->wall_ms) &&
		  rd_real(r, "efficiency", &st->efficiency);

	for (int t = 1; ok && t <= SUP_NTIERS; t++) {
		struct sup_wf_stage_stats *s = &st->tier[t];

		ok = rd_real(r, "stage wall_ms", &s->wall_ms) && rd_real(r, "busy_ms", &s->busy_ms) &&
		     rd_real(r, "dispatch_ms", &s->dispatch_ms) &&
		     rd_real(r, "validate_ms", &s->validate_ms) &&
		     rd_real(r, "stagger_ms", &s->stagger_ms) && sup_ho_r_u32(r, &s->tasks) &&
		     sup_ho_r_u32(r, &s->ok) && sup_ho_r_u32(r, &s->timeouts) &&
		     sup_ho_r_u32(r, &s->errors);
	}
	return ok;
}

static struct rec *load_rec(struct sup_ho_r *r, struct sup_run *run, size_t i)
{
	struct rec *rc = calloc(1, sizeof(*rc));
	bool has_result = false, ok;
	const void *p;
	uint32_t n;

	if (!rc) {
		sup_ho_r_fail(r, "run %llu: out of memory", (unsigned long long)run->id);
		return NULL;
	}
	rc->run = run;
	ok = sup_ho_r_str(r, rc->agent, sizeof(rc->agent)) &&
	     rd_int(r, "record tier", 1, SUP_NTIERS, &rc->tier) &&
	     rd_int(r, "record batch", -1, WF_STATE_RECS_MAX, &rc->batch) &&
	     rd_int(r, "record status", -1, TIER_ST_COUNT - 1, &rc->status) &&
	     rd_real(r, "record quality", &rc->quality) && sup_ho_r_u64(r, &rc->task) &&
	     rd_ns(r, "queued", &rc->t.queued) && rd_ns(r, "dispatched", &rc->t.dispatched) &&
	     rd_ns(r, "started", &rc->t.started) && rd_ns(r, "finished", &rc->t.finished) &&
	     rd_ns(r, "accepted", &rc->t.accepted) && rd_bool(r, &has_result) &&
	     sup_ho_r_bytes(r, &p, &n, SUP_WF_LINE_MAX) && sup_ho_r_u64(r, &rc->full_len);
	if (!ok)
		goto fail;
	if (rc->batch >= 0 && rc->tier != 3) {
		sup_ho_r_fail(r, "run %llu record %zu: a tier-%d record has tier-3 batch %d",
			      (unsigned long long)run->id, i, rc->tier, rc->batch);
		goto fail;
	}
	if (rc->status == -1 && !rc->task) {
		sup_ho_r_fail(r, "run %llu record %zu (%s): pending with no task id",
			      (unsigned long long)run->id, i, rc->agent);
		goto fail;
	}
	if (has_result) {
		if (n > rc->full_len) {
			sup_ho_r_fail(r, "run %llu record %zu: result of %u bytes is longer than its "
				      "full length %llu", (unsigned long long)run->id, i, n,
				      (unsigned long long)rc->full_len);
			goto fail;
		}
		rc->result = malloc((size_t)n + 1);
		if (!rc->result) {
			sup_ho_r_fail(r, "run %llu: out of memory", (unsigned long long)run->id);
			goto fail;
		}
		if (n)
			memcpy(rc->result, p, n);
		rc->result[n] = 0;
		rc->result_len = n;
	} else if (n) {
		sup_ho_r_fail(r, "run %llu record %zu: %u result bytes with no result",
			      (unsigned long long)run->id, i, n);
		goto fail;
	}
	return rc;

fail:
	free(rc->result);
	free(rc);
	return NULL;
}

/* The tier-3 list: one block (the pointers, then the names), so that
 * sup_wf_run_free's free(run->t3) frees it whole, as it frees the array of
 * borrowed agent names a live run holds. */
static bool load_t3(struct sup_ho_r *r, struct sup_run *run, uint32_t n)
{
	size_t cap = (size_t)n * 64, used = 0;
	char *names, name[64];

	run->t3 = malloc((n + 1) * sizeof(char *) + cap);
	if (!run->t3) {
		sup_ho_r_fail(r, "run %llu: out of memory", (unsigned long long)run->id);
		return false;
	}
	names = (char *)(run->t3 + n + 1);
	for (uint32_t i = 0; i < n; i++) {
		size_t len;

		if (!sup_ho_r_str(r, name, sizeof(name)))
			return false;
		len = strlen(name) + 1;
		memcpy(names + used, name, len);
		run->t3[i] = names + used;
		used += len;
	}
	run->t3[n] = NULL;
	run->n_t3 = n;
	return true;
}

static bool valid_stage(int s)
{
	return s == STAGE_DONE || (s != 0 && s >= -4 && s <= 4);
}

/* Everything read is checked against the rest of the run: a state that
 * would make the stage machine launch a stage twice, wait for nothing or
 * index past its arrays is refused. Between two turns of the loop a live
 * run waits for its tasks (stage < 0), for its stagger (3, timer armed),
 * or is done. */
static bool check_run(struct sup_ho_r *r, const struct sup_run *run, bool armed)
{
	unsigned waiting = 0;
	unsigned long long id = (unsigned long long)run->id;

	for (size_t i = 0; i < run->nrecs; i++)
		waiting += run->recs[i]->status == -1;
	if (waiting != run->pending) {
		sup_ho_r_fail(r, "run %llu: %u tasks pending, but %u records wait for a result", id,
			      run->pending, waiting);
		return false;
	}
	if ((run->stage < 0) != (run->pending > 0)) {
		sup_ho_r_fail(r, "run %llu: stage %d with %u tasks pending", id, run->stage,
			      run->pending);
		return false;
	}
	if (run->stage_first > run->nrecs || run->next_t3 > run->n_t3) {
		sup_ho_r_fail(r, "run %llu: stage start %zu of %zu records, tier-3 position %zu of %zu",
			      id, run->stage_first, run->nrecs, run->next_t3, run->n_t3);
		return false;
	}
	/* ctx_append takes room as ctx_max - ctx_len: a live run never has
	 * more context than its bound. */
	if (run->ctx_max > SUP_WF_CONTEXT_MAX || run->ctx_len > run->ctx_max) {
		sup_ho_r_fail(r, "run %llu: context of %zu bytes, bound %zu (at most %u)", id,
			      run->ctx_len, run->ctx_max, SUP_WF_CONTEXT_MAX);
		return false;
	}
	if (run->stage > 0 && run->stage != STAGE_DONE && !(run->stage == 3 && armed)) {
		sup_ho_r_fail(r, "run %llu: stage %d waits for no task and no stagger: it would never "
			      "go on", id, run->stage);
		return false;
	}
	if (run->stage != STAGE_DONE && !run->payload) {
		sup_ho_r_fail(r, "run %llu: still running (stage %d) with no payload", id, run->stage);
		return false;
	}
	return true;
}

static struct sup_run *load_run(struct sup_ho_r *r, struct sup_wf *wf, bool *armed,
				int64_t *deadline, bool *had_waiter)
{
	struct sup_run *run = calloc(1, sizeof(*run));
	bool has_payload = false, has_t3 = false;
	uint32_t n_t3 = 0, nrecs = 0, n;
	uint64_t next_t3 = 0, stage_first = 0, dropped = 0, ctx_max = 0, len = 0;
	char *agg = NULL;
	const void *p;

	if (!run) {
		sup_ho_r_fail(r, "workflows: out of memory");
		return NULL;
	}
	run->wf = wf;
	sup_timer_init(&run->stagger_timer, sup_wf_stagger_fired, run);
	if (!sup_ho_r_u64(r, &run->id) || !sup_ho_r_strdup(r, &run->type, 255))
		goto fail;
	if (!run->type || !*run->type) {
		sup_ho_r_fail(r, "run %llu: no task type", (unsigned long long)run->id);
		goto fail;
	}
	if (!rd_bool(r, &has_payload) || !sup_ho_r_bytes(r, &p, &n, SUP_RING_SIZE_MAX) ||
	    !sup_ho_r_u64(r, &len))
		goto fail;
	if (len > SUP_RING_SIZE_MAX || (has_payload && len != n) || (!has_payload && n)) {
		sup_ho_r_fail(r, "run %llu: payload of %llu bytes with %u saved",
			      (unsigned long long)run->id, (unsigned long long)len, n);
		goto fail;
	}
	run->len = len;
	if (has_payload) {
		run->payload = malloc(n ? n : 1);
		if (!run->payload) {
			sup_ho_r_fail(r, "run %llu: out of memory", (unsigned long long)run->id);
			goto fail;
		}
		if (n)
			memcpy(run->payload, p, n);
	}
	if (!rd_int(r, "stage", -4, STAGE_DONE, &run->stage) ||
	    !rd_int(r, "batch_size", 1, WF_STATE_RECS_MAX, &run->batch_size) ||
	    !rd_ns(r, "stagger", &run->stagger_ns) || !rd_ns(r, "timeout", &run->timeout_ns) ||
	    !sup_ho_r_u64(r, &stage_first) || !sup_ho_r_u32(r, &run->pending) ||
	    !rd_bool(r, &has_t3) || !sup_ho_r_u32(r, &n_t3))
		goto fail;
	if (!valid_stage(run->stage)) {
		sup_ho_r_fail(r, "run %llu: no stage %d", (unsigned long long)run->id, run->stage);
		goto fail;
	}
	if (n_t3 > WF_STATE_RECS_MAX || (!has_t3 && n_t3)) {
		sup_ho_r_fail(r, "run %llu: %u tier-3 agents (at most %u, none without a list)",
			      (unsigned long long)run->id, n_t3, WF_STATE_RECS_MAX);
		goto fail;
	}
	if (has_t3 && !load_t3(r, run, n_t3))
		goto fail;
	if (!sup_ho_r_u64(r, &next_t3) || !rd_int(r, "batch_no", 0, WF_STATE_RECS_MAX, &run->batch_no) ||
	    !rd_ns(r, "batch_done", &run->batch_done_ns) ||
	    !rd_ns(r, "stagger_total", &run->stagger_total_ns) || !rd_bool(r, armed) ||
	    !sup_ho_r_i64(r, deadline) ||
	    !sup_ho_r_bytes(r, &p, &n, SUP_WF_CONTEXT_MAX + CTX_MARKER_MAX))
		goto fail;
	run->ctx = malloc(SUP_WF_CONTEXT_MAX + CTX_MARKER_MAX + 1);
	if (!run->ctx) {
		sup_ho_r_fail(r, "run %llu: out of memory", (unsigned long long)run->id);
		goto fail;
	}
	if (n)
		memcpy(run->ctx, p, n);
	run->ctx_len = n;
	if (!rd_bool(r, &run->ctx_truncated) || !sup_ho_r_u64(r, &dropped) ||
	    !sup_ho_r_u64(r, &ctx_max) || !rd_ns(r, "start", &run->start_ns) ||
	    !rd_ns(r, "end", &run->end_ns) || !sup_ho_r_u32(r, &run->cores) ||
	    !sup_ho_r_u64(r, &run->cpu0) || !rd_real(r, "cpu_ms", &run->cpu_ms) ||
	    !rd_bool(r, had_waiter) || !sup_ho_r_u64(r, &run->wal_seg) ||
	    !sup_ho_r_strdup(r, &agg, WF_STATE_AGG_MAX))
		goto fail;
	if (run->stage == STAGE_DONE && run->wal_seg) {
		sup_ho_r_fail(r, "run %llu: done, but still holds journal segment %llu",
			      (unsigned long long)run->id, (unsigned long long)run->wal_seg);
		goto fail;
	}
	run->ctx_dropped = dropped;
	run->ctx_max = ctx_max;
	run->next_t3 = next_t3;
	if (*armed && (run->stage != 3 || *deadline < 0)) {
		sup_ho_r_fail(r, "run %llu: stagger timer armed at %lld in stage %d",
			      (unsigned long long)run->id, (long long)*deadline, run->stage);
		goto fail;
	}
	if (agg) {
		json_error_t je;

		run->aggregate = json_loads(agg, 0, &je);
		if (!run->aggregate) {
			sup_ho_r_fail(r, "run %llu: aggregate is not JSON: %s at %d",
				      (unsigned long long)run->id, je.text, je.position);
			goto fail;
		}
	}
	if (!load_stats(r, &run->stats) || !sup_ho_r_u32(r, &nrecs))
		goto fail;
	if (nrecs > WF_STATE_RECS_MAX) {
		sup_ho_r_fail(r, "run %llu: %u records (at most %u)", (unsigned long long)run->id,
			      nrecs, WF_STATE_RECS_MAX);
		goto fail;
	}
	run->recs = calloc(nrecs ? nrecs : 1, sizeof(*run->recs));
	if (!run->recs) {
		sup_ho_r_fail(r, "run %llu: out of memory", (unsigned long long)run->id);
		goto fail;
	}
	run->cap = nrecs ? nrecs : 1;
	for (uint32_t i = 0; i < nrecs; i++) {
		run->recs[i] = load_rec(r, run, i);
		if (!run->recs[i])
			goto fail;
		run->nrecs++;
	}
	run->stage_first = stage_first;
	if (!check_run(r, run, *armed))
		goto fail;
	free(agg);
	return run;

fail:
	free(agg);
	sup_wf_run_free(run);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every pending record's task must be waiting in the task table, and be
 * one record's only: checked for all before any is re-bound. */
static bool check_pending(struct sup_ho_r *r, struct sup_wf *wf, struct sup_run *runs)
{
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	bool ok = true;

	for (struct sup_run *run = runs; run && ok; run = run->next)
		for (size_t i = 0; i < run->nrecs && ok; i++) {
			const struct rec *rc = run->recs[i];

			if (rc->status != -1)
				continue;
			if (!sup_tasks_is_pending(wf->tasks, rc->task)) {
				sup_ho_r_fail(r, "run %llu: task %llu of agent %s is not pending in the "
					      "task table", (unsigned long long)run->id,
					      (unsigned long long)rc->task, rc->agent);
				ok = false;
				break;
			}
			if (n == cap) {
				uint64_t *v = realloc(ids, (cap ? cap * 2 : 64) * sizeof(*ids));

				if (!v) {
					sup_ho_r_fail(r, "workflows: out of memory");
					ok = false;
					break;
				}
				ids = v;
				cap = cap ? cap * 2 : 64;
			}
			ids[n++] = rc->task;
		}
	if (ok && n) {
		qsort(ids, n, sizeof(*ids), cmp_u64);
		for (size_t i = 1; i < n && ok; i++)
			if (ids[i] == ids[i - 1]) {
				sup_ho_r_fail(r, "workflows: task %llu is pending in two records",
					      (unsigned long long)ids[i]);
				ok = false;
			}
	}
	free(ids);
	return ok;
}

int sup_wf_restore(struct sup_wf *wf, struct sup_ho_r *r)
{
	struct sup_run *runs = NULL, *last = NULL, *run;
	uint64_t next_id = 0, prev_id = 0;
	int64_t batch_size, stagger_ns;
	uint32_t version, nruns = 0;

	if (wf->runs) {
		sup_ho_r_fail(r, "workflows: restoring into a table that already has runs");
		return -EBUSY;
	}
	if (!sup_ho_r_section(r, SUP_HO_TAG_WORKFLOWS, &version)) {
		sup_ho_r_fail(r, "no workflows section in the state");
		return -ENOENT;
	}
	if (version != WF_STATE_VERSION) {
		sup_ho_r_fail(r, "workflows section version %u, this tierd reads %u", version,
			      WF_STATE_VERSION);
		return -EPROTO;
	}
	if (!sup_ho_r_u64(r, &next_id) || !sup_ho_r_i64(r, &batch_size) ||
	    !sup_ho_r_i64(r, &stagger_ns) || !sup_ho_r_u32(r, &nruns))
		goto fail;
	if (next_id > INT64_MAX) {
		sup_ho_r_fail(r, "workflows: next run id %llu is past 2^63 - 1 (ids are int64)",
			      (unsigned long long)next_id);
		goto fail;
	}
	if (batch_size < 1 || batch_size > WF_STATE_RECS_MAX || stagger_ns < 0) {
		sup_ho_r_fail(r, "workflows: pacing batch_size %lld, stagger %lld ns",
			      (long long)batch_size, (long long)stagger_ns);
		goto fail;
	}
	if (nruns > WF_STATE_RUNS_MAX) {
		sup_ho_r_fail(r, "workflows: %u runs (at most %u)", nruns, WF_STATE_RUNS_MAX);
		goto fail;
	}
	for (uint32_t i = 0; i < nruns; i++) {
		bool armed = false, had_waiter = false;
		int64_t deadline = 0;

		run = load_run(r, wf, &armed, &deadline, &had_waiter);
		if (!run)
			goto fail;
		if (last)
			last->next = run;
		else
			runs = run;
		last = run;
		if (run->id <= prev_id || run->id > next_id) {
			sup_ho_r_fail(r, "workflows: run id %llu after %llu (next id %llu)",
				      (unsigned long long)run->id, (unsigned long long)prev_id,
				      (unsigned long long)next_id);
			goto fail;
		}
		prev_id = run->id;
		/* Kept in the deadline field until armed below. */
		run->stagger_timer.deadline = armed ? deadline : -1;
	}
	if (!sup_ho_r_ok(r) || !check_pending(r, wf, runs))
		goto fail;

	wf->runs = runs;
	wf->last = last;
	wf->nruns = nruns;
	wf->next_id = next_id;
	wf->batch_size = (int)batch_size;
	wf->stagger_ns = stagger_ns;
	for (run = runs; run; run = run->next) {
		int64_t deadline = run->stagger_timer.deadline;

		run->stagger_timer.deadline = 0;
		if (deadline >= 0)
			wf->env.timer_arm(wf->env.ctx, &run->stagger_timer, deadline);
	}
	/* Past the checks, a task the table will not give (another owner took
	 * it) leaves the runs in wf, so that nothing re-bound points at freed
	 * records; the restore still fails and the caller rolls back. */
	for (run = runs; run; run = run->next)
		for (size_t i = 0; i < run->nrecs; i++) {
			struct rec *rc = run->recs[i];
			int e;

			if (rc->status != -1)
				continue;
			e = sup_tasks_rebind(wf->tasks, rc->task, sup_wf_rec_done, rc);
			if (e < 0 && sup_ho_r_ok(r))
				sup_ho_r_fail(r, "run %llu: task %llu of agent %s cannot be re-bound: %s",
					      (unsigned long long)run->id, (unsigned long long)rc->task,
					      rc->agent, strerror(-e));
		}
	return sup_ho_r_ok(r) ? 0 : -EBUSY;

fail:
	while ((run = runs)) {
		runs = run->next;
		sup_wf_run_free(run);
	}
	return -EINVAL;
}
