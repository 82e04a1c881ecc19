/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of the task journal (docs/journal.md): open and lock
 * journal_dir at start, replay it into the task table and the workflow
 * once the agents exist (before the loop runs, so before any client or
 * agent is heard), its figures for status and metrics, and the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "log.h"
#include "tasks.h"
#include "wal/wal.h"
#include "wal/walrec.h"
#include "workflow.h"

void sup_daemon_wal_opts(const struct sup_config *c, struct sup_wal_opts *o)
{
	const struct sup_supervisor_conf *s = &c->sup;

	memset(o, 0, sizeof(*o));
	o->dir = s->journal_dir ? s->journal_dir : SUP_DEF_JOURNAL_DIR;
	o->sync = s->journal_sync == 1 ? SUP_WAL_SYNC_ALWAYS :
		  s->journal_sync == 2 ? SUP_WAL_SYNC_OFF : SUP_WAL_SYNC_BATCH;
	o->window_ns = s->journal_sync_window_ns;
	o->max_bytes = s->journal_max_bytes;
	o->segment_bytes = s->journal_segment_bytes;
	/* A test hook, read once (docs/journal.md). */
	o->crash = getenv("TIERD_WAL_CRASH");
}

int sup_daemon_wal_open(struct sup_daemon *d)
{
	struct sup_wal_opts o;
	char why[512];

	if (!d->conf->sup.journal) {
		sup_log(&d->log, SUP_LOG_NOTICE, "task journal off (journal = no): a crash loses "
			"every queued and running task");
		return 0;
	}
	sup_daemon_wal_opts(d->conf, &o);
	d->wal = sup_wal_open(&o, d->loop, why, sizeof(why));
	if (!d->wal) {
		int r = -errno;

		sup_log(&d->log, SUP_LOG_CRIT, "task journal: %s", why);
		return r < 0 ? r : -EIO;
	}
	return 0;
}

static void on_record(void *arg, const struct sup_wal_rec *r)
{
	struct sup_daemon *d = arg;

	if (r->type == SUP_WAL_SUBMIT || r->type == SUP_WAL_DONE)
		sup_tasks_replay_record(d->tasks, r);
	else
		sup_wf_replay_record(d->wf, r);
}

static void on_truncated(void *arg, uint64_t seg, uint64_t off, uint64_t dropped, const char *why)
{
	struct sup_daemon *d = arg;

	sup_daemon_event(d, SUP_LOG_WARNING, "journal_truncated",
			 json_pack("{s:I, s:I, s:I, s:s}", "segment", (json_int_t)seg,
				   "offset", (json_int_t)off, "bytes_dropped", (json_int_t)dropped,
				   "why", why),
			 "task journal: segment %llu cut at offset %llu (%llu bytes dropped): %s",
			 (unsigned long long)seg, (unsigned long long)off,
			 (unsigned long long)dropped, why);
}

int sup_daemon_wal_replay(struct sup_daemon *d)
{
	const struct sup_wal_replay_ops ops = { .record = on_record, .truncated = on_truncated,
						.arg = d };
	struct sup_wal_stats st;
	unsigned runs, requeued, crashed, results;
	char why[512];
	int r;

	if (!d->wal)
		return 0;
	sup_tasks_set_wal(d->tasks, d->wal);
	sup_wf_set_wal(d->wf, d->wal);
	r = sup_wal_replay(d->wal, &ops, why, sizeof(why));
	if (r < 0) {
		sup_log(&d->log, SUP_LOG_CRIT, "task journal: %s", why);
		return r;
	}
	runs = sup_wf_replay_end(d->wf, d->conf->sup.workflow_after_crash == 1);
	requeued = sup_tasks_replay_end(d->tasks, &crashed, &results);
	sup_wal_replay_end(d->wal);
	sup_wal_stats(d->wal, &st);
	sup_daemon_event(d, SUP_LOG_NOTICE, "journal_replayed",
			 json_pack("{s:s, s:i, s:i, s:i, s:i, s:I, s:I}", "dir", st.dir,
				   "requeued", (int)requeued, "ended", (int)crashed,
				   "results", (int)results, "runs_interrupted", (int)runs,
				   "bytes", (json_int_t)st.bytes, "segments", (json_int_t)st.segments),
			 "task journal %s (sync %s): %u tasks re-queued, %u ended, %u results kept, "
			 "%u runs interrupted; %llu bytes in %llu segments", st.dir, st.sync,
			 requeued, crashed, results, runs, (unsigned long long)st.bytes,
			 (unsigned long long)st.segments);
	return 0;
}

json_t *sup_daemon_wal_json(struct sup_daemon *d)
{
	struct sup_wal_stats st;

	if (!d->wal)
		return json_pack("{s:b}", "enabled", 0);
	sup_wal_stats(d->wal, &st);
	return json_pack("{s:b, s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f}",
			 "enabled", 1, "dir", st.dir, "sync", st.sync,
			 "sync_window_ms", (double)st.window_ns * 1e-6,
			 "bytes", (json_int_t)st.bytes, "max_bytes", (json_int_t)st.max_bytes,
			 "segments", (json_int_t)st.segments, "live_tasks", (json_int_t)st.live_refs,
			 "appends", (json_int_t)st.appends, "syncs", (json_int_t)st.syncs,
			 "sync_errors", (json_int_t)st.sync_errors, "refused", (json_int_t)st.refused,
			 "last_sync_ms", (double)st.last_sync_ns * 1e-6,
			 "max_sync_ms", (double)st.max_sync_ns * 1e-6);
}

bool sup_daemon_wal_reload(struct sup_daemon *d, const struct sup_config *old,
			   const struct sup_config *nc)
{
	const char *a = old->sup.journal_dir ? old->sup.journal_dir : SUP_DEF_JOURNAL_DIR;
	const char *b = nc->sup.journal_dir ? nc->sup.journal_dir : SUP_DEF_JOURNAL_DIR;
	struct sup_wal_opts o;

	if (d->wal) {
		sup_daemon_wal_opts(nc, &o);
		sup_wal_set_opts(d->wal, &o);
	}
	return old->sup.journal != nc->sup.journal || strcmp(a, b);
}

/* After the loop has drained: no fsync of ours is in flight any more. */
void sup_daemon_wal_close(struct sup_daemon *d)
{
	if (!d->wal)
		return;
	if (sup_wal_flush_sync(d->wal) < 0)
		sup_log(&d->log, SUP_LOG_ERR, "task journal: final sync failed: %m");
	sup_wal_free(d->wal);
	d->wal = NULL;
}
