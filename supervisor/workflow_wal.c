/* SPDX-License-Identifier: MIT */
/*
 * The workflow's journal (docs/journal.md): a RUN_START record when a run
 * starts, RUN_DONE when it ends; its tasks are journaled by the task table
 * with the run's id as their group. A replay finds the runs that were in
 * progress at a crash: they finish as "interrupted" with what completed,
 * or start again (workflow_after_crash = rerun).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wal/wal.h"
#include "wal/walrec.h"
#include "workflow_internal.h"

void sup_wf_set_wal(struct sup_wf *wf, struct sup_wal *w)
{
	wf->wal = w;
}

int sup_wf_wal_start(struct sup_wf *wf, struct sup_run *run, char *err, size_t errlen)
{
	uint8_t fixed[SUP_WALREC_RUN_FIXED];
	struct iovec iov[3];
	struct timespec now;
	struct sup_wal_run r = {
		.run = wf->next_id + 1, .timeout_ns = run->timeout_ns,
		.stagger_ns = run->stagger_ns, .batch_size = run->batch_size,
		.type = run->type, .type_len = (uint16_t)strlen(run->type),
		.payload = run->payload, .len = (uint32_t)run->len,
	};
	int n;

	if (!wf->wal)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	r.start_rt_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
	n = sup_wal_reserve_ids(wf->wal, SUP_WAL_IDS_RUN, r.run, err, errlen);
	if (n < 0)
		return n;
	n = sup_walrec_run_start(&r, fixed, iov);
	return sup_wal_append(wf->wal, SUP_WAL_RUN_START, iov, n, true, &run->wal_seg, err, errlen);
}

void sup_wf_wal_done(struct sup_run *run, uint8_t status)
{
	struct sup_wf *wf = run->wf;
	uint8_t buf[SUP_WALREC_RUN_DONE_LEN];
	struct iovec iov[1];
	char err[256];
	uint64_t seg;
	int n;

	if (!wf->wal || !run->wal_seg)
		return;
	n = sup_walrec_run_done(run->id, status, buf, iov);
	if (sup_wal_append(wf->wal, SUP_WAL_RUN_DONE, iov, n, false, &seg, err, sizeof(err)) == 0)
		sup_wal_unref(wf->wal, seg);
	else
		wf->env.event(wf->env.ctx, "journal_error", json_pack("{s:I, s:s}", "run",
			      (json_int_t)run->id, "error", err), err);
	sup_wal_unref(wf->wal, run->wal_seg);
	run->wal_seg = 0;
}

static void replayed_drop(struct sup_wf *wf, struct wf_replayed **pp)
{
	struct wf_replayed *p = *pp;

	*pp = p->next;
	if (wf->wal)
		sup_wal_unref(wf->wal, p->seg);
	free(p->type);
	free(p->payload);
	free(p);
}

void sup_wf_replayed_free(struct sup_wf *wf)
{
	while (wf->replayed)
		replayed_drop(wf, &wf->replayed);
}

void sup_wf_replay_record(struct sup_wf *wf, const struct sup_wal_rec *rec)
{
	struct wf_replayed **pp, *p;
	struct sup_wal_run r;

	if (!wf->wal)
		return;
	if (rec->type == SUP_WAL_RUN_DONE && sup_walrec_get_run_done(rec, &r) == 0) {
		for (pp = &wf->replayed; *pp; pp = &(*pp)->next)
			if ((*pp)->run == r.run) {
				replayed_drop(wf, pp);
				break;
			}
		return;
	}
	if (rec->type != SUP_WAL_RUN_START || sup_walrec_get_run_start(rec, &r) < 0)
		return;
	if (r.run > wf->next_id)
		wf->next_id = r.run;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->type = strndup(r.type, r.type_len)) || !(p->payload = malloc(r.len + 1))) {
		if (p)
			free(p->type);
		free(p);
		return;
	}
	memcpy(p->payload, r.payload, r.len);
	p->len = r.len;
	p->run = r.run;
	p->seg = rec->seg;
	p->batch_size = r.batch_size;
	p->stagger_ns = r.stagger_ns;
	p->timeout_ns = r.timeout_ns;
	sup_wal_ref(wf->wal, rec->seg);
	p->next = wf->replayed;
	wf->replayed = p;
}

/* A finished run in the history that says what the crash left of it. */
static void add_interrupted(struct sup_wf *wf, const struct wf_replayed *p, unsigned cancelled,
			    uint64_t rerun_as)
{
	struct sup_run *run = calloc(1, sizeof(*run));
	json_t *agg;

	if (!run || !(run->type = strdup(p->type))) {
		free(run);
		return;
	}
	run->wf = wf;
	run->id = p->run;
	run->stage = STAGE_DONE;
	run->interrupted = true;
	agg = json_pack("{s:I, s:s, s:s, s:o, s:i}", "run", (json_int_t)p->run, "type", p->type,
			"status", "interrupted", "completed",
			sup_tasks_group_json(wf->tasks, p->run), "cancelled", (int)cancelled);
	if (agg && rerun_as)
		json_object_set_new(agg, "rerun_as", json_integer((json_int_t)rerun_as));
	run->aggregate = agg;
	if (wf->last)
		wf->last->next = run;
	else
		wf->runs = run;
	wf->last = run;
	wf->nruns++;
}

unsigned sup_wf_replay_end(struct sup_wf *wf, bool rerun)
{
	unsigned n = 0;

	/* As for tasks: run ids continue after every reserved one. */
	if (wf->wal && wf->next_id < sup_wal_reserved(wf->wal, SUP_WAL_IDS_RUN))
		wf->next_id = sup_wal_reserved(wf->wal, SUP_WAL_IDS_RUN);

	while (wf->replayed) {
		struct wf_replayed *p = wf->replayed;
		struct sup_run_opts o = {
			.type = p->type, .payload = p->payload, .len = p->len,
			.batch_size = p->batch_size > 0 ? p->batch_size : 0,
			.stagger_ns = p->stagger_ns, .timeout_ns = p->timeout_ns,
		};
		char why[160], err[256];
		int64_t again = 0;
		unsigned cancelled;

		snprintf(why, sizeof(why), "its workflow run %llu was interrupted by a tierd restart",
			 (unsigned long long)p->run);
		cancelled = sup_tasks_replay_cancel_group(wf->tasks, p->run, why);
		if (rerun) {
			again = sup_wf_start(wf, &o, err, sizeof(err));
			if (again < 0)
				wf->env.event(wf->env.ctx, "journal_error", json_pack("{s:I, s:s}", "run",
					      (json_int_t)p->run, "error", err), err);
		}
		add_interrupted(wf, p, cancelled, again > 0 ? (uint64_t)again : 0);
		snprintf(why, sizeof(why), "workflow run %llu (%s) interrupted by a tierd restart%s",
			 (unsigned long long)p->run, p->type, again > 0 ? "; run again" : "");
		wf->env.event(wf->env.ctx, "run_interrupted", json_pack("{s:I, s:s, s:i, s:I}",
			      "run", (json_int_t)p->run, "type", p->type, "cancelled", (int)cancelled,
			      "rerun_as", (json_int_t)(again > 0 ? again : 0)), why);
		if (wf->last && wf->last->id == p->run) {
			wf->last->wal_seg = p->seg;
			sup_wal_ref(wf->wal, p->seg);
			sup_wf_wal_done(wf->last, again > 0 ? 2 : 1);
		}
		replayed_drop(wf, &wf->replayed);
		n++;
	}
	return n;
}
