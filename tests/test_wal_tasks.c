/* SPDX-License-Identifier: MIT */
/*
 * The task table with its journal (supervisor/tasks_wal.c), driven through
 * the fake env: a journaled submit is acknowledged only once its SUBMIT
 * record is durable, a result is delivered only once its DONE record is,
 * and a replay re-queues what was pending (one more attempt against the
 * retry budget, crashed past it), keeps what had finished, and never
 * reuses an id. The journal has no loop here: sup_wal_flush_sync is the
 * moment a sync completes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tasks_fake.h"
#include "../supervisor/wal/wal.h"
#include "../supervisor/wal/walrec.h"

static struct fake *f;
static struct sup_tasks *ts;
static struct sup_wal *w;
static char dir[256];
static unsigned acks, dones;
static int last_status;

static struct sup_wal *wal_open(void)
{
	struct sup_wal_opts o = { .dir = dir, .sync = SUP_WAL_SYNC_BATCH, .window_ns = 1000000,
				  .max_bytes = 1 << 20, .segment_bytes = 1 << 16 };
	char err[512] = "";
	struct sup_wal *nw = sup_wal_open(&o, NULL, err, sizeof(err));

	cr_assert_not_null(nw, "%s", err);
	return nw;
}

static void replay_into(struct sup_tasks *t, struct sup_wal *nw)
{
	struct sup_wal_replay_ops ops = { .record = (void (*)(void *, const struct sup_wal_rec *))
					  sup_tasks_replay_record, .arg = t };
	char err[512] = "";

	sup_tasks_set_wal(t, nw);
	cr_assert_eq(sup_wal_replay(nw, &ops, err, sizeof(err)), 0, "%s", err);
}

static void setup(void)
{
	struct sup_tasks_env env;

	snprintf(dir, sizeof(dir), "/tmp/test-wal-tasks-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	f = fake_new();
	f->conf.sup.task_retry_budget = 1;
	env = fake_env(f);
	ts = sup_tasks_new(&env);
	cr_assert_not_null(ts);
	w = wal_open();
	replay_into(ts, w);
	sup_tasks_replay_end(ts, NULL, NULL);
	acks = dones = 0;
}

static void teardown(void)
{
	char cmd[300];

	sup_tasks_free(ts);
	sup_wal_free(w);
	fake_free_agents(f);
	free(f);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(wal_tasks, .init = setup, .fini = teardown);

static void on_ack(struct sup_tasks *t, uint64_t id, int err, void *arg, uint64_t tag)
{
	(void)t;
	(void)id;
	(void)arg;
	(void)tag;
	cr_assert_eq(err, 0);
	cr_assert_eq(dones, 0, "acknowledged after its result");
	acks++;
}

static bool on_done(struct sup_tasks *t, struct sup_task *task, void *arg)
{
	struct sup_task_info i;

	(void)t;
	(void)arg;
	sup_task_info(task, &i);
	last_status = i.status;
	dones++;
	return false;
}

static int64_t submit(bool with_done)
{
	struct sup_task_spec s = {
		.tier = 3, .type = "echo", .type_len = 4, .payload = "hi", .len = 2,
		.journal = true, .ack = on_ack, .done = with_done ? on_done : NULL,
	};
	char err[256] = "";
	int64_t id = sup_tasks_submit(ts, &s, err, sizeof(err));

	cr_assert_gt(id, 0, "%s", err);
	return id;
}

Test(wal_tasks, should_acknowledge_a_submit_only_once_its_record_is_durable)
{
	fake_agent(f, "a", 3, NULL);
	submit(true);
	cr_assert_eq(acks, 0, "acknowledged before the SUBMIT record was synced");
	cr_assert_eq(sup_wal_flush_sync(w), 0);
	cr_assert_eq(acks, 1);
}

Test(wal_tasks, should_deliver_a_result_only_once_its_done_record_is_durable)
{
	struct sup_agent *a = fake_agent(f, "a", 3, NULL);
	int64_t id = submit(true);
	json_t *j;

	cr_assert_eq(fake_result(ts, f, a, (uint64_t)id, TIER_ST_OK, -1, "r"), 0);
	cr_assert_eq(dones, 0, "delivered before the DONE record was synced");
	j = sup_tasks_lookup_json(ts, (uint64_t)id);
	cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "pending",
			 "a lookup saw the result before it was durable");
	json_decref(j);
	cr_assert_eq(sup_wal_flush_sync(w), 0);
	cr_assert_eq(acks, 1);
	cr_assert_eq(dones, 1);
	cr_assert_eq(last_status, TIER_ST_OK);
}

/* Restart on the same journal: a new table, the old one's memory gone. */
static void restart(void)
{
	struct sup_tasks_env env = fake_env(f);

	sup_wal_flush_sync(w);
	sup_tasks_free(ts);
	sup_wal_free(w);
	/* The agents come back fresh, as after a real restart. */
	for (size_t i = 0; i < f->nagents; i++) {
		free(f->agents[i]->task_state);
		f->agents[i]->task_state = NULL;
	}
	ts = sup_tasks_new(&env);
	w = wal_open();
	replay_into(ts, w);
}

Test(wal_tasks, should_requeue_pending_tasks_and_keep_results_across_a_restart)
{
	struct sup_agent *a = fake_agent(f, "a", 3, NULL);
	int64_t done_id = submit(false), pending_id = submit(false), next;
	unsigned crashed = 9, results = 9, requeued;
	json_t *j;

	cr_assert_eq(fake_result(ts, f, a, (uint64_t)done_id, TIER_ST_OK, -1, "kept"), 0);
	restart();
	requeued = sup_tasks_replay_end(ts, &crashed, &results);
	cr_assert_eq(requeued, 1);
	cr_assert_eq(crashed, 0);
	cr_assert_eq(results, 1);
	j = sup_tasks_lookup_json(ts, (uint64_t)done_id);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
	cr_assert_str_eq(json_string_value(json_object_get(j, "payload")), "kept");
	json_decref(j);
	cr_assert(sup_tasks_is_pending(ts, (uint64_t)pending_id));
	next = submit(false);
	cr_assert_gt(next, pending_id, "an id was reused after the restart");
}

Test(wal_tasks, should_end_a_task_as_crashed_once_restarts_pass_the_retry_budget)
{
	int64_t id;
	unsigned crashed = 0;
	json_t *j;

	fake_agent(f, "a", 3, NULL);
	id = submit(false);
	/* Budget 1: the first restart re-queues it, the second ends it. */
	restart();
	cr_assert_eq(sup_tasks_replay_end(ts, &crashed, NULL), 1);
	restart();
	cr_assert_eq(sup_tasks_replay_end(ts, &crashed, NULL), 0);
	cr_assert_eq(crashed, 1);
	sup_wal_flush_sync(w);
	j = sup_tasks_lookup_json(ts, (uint64_t)id);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "crashed");
	cr_assert(strstr(json_string_value(json_object_get(j, "error")), "task_retry_budget"));
	json_decref(j);
	/* And it stays ended: a third start does not bring it back. */
	restart();
	cr_assert_eq(sup_tasks_replay_end(ts, NULL, NULL), 0);
	cr_assert(!sup_tasks_is_pending(ts, (uint64_t)id));
}

Test(wal_tasks, should_not_journal_a_task_that_does_not_ask_for_it)
{
	struct sup_task_spec s = { .tier = 3, .type = "echo", .type_len = 4, .ack = on_ack };
	struct sup_wal_stats st;
	char err[256];

	cr_assert_gt(sup_tasks_submit(ts, &s, err, sizeof(err)), 0);
	cr_assert_eq(acks, 1, "an unjournaled task is acknowledged at once");
	sup_wal_stats(w, &st);
	cr_assert_eq(st.appends, 0);
}

/* Acknowledged records lost in a power cut (mode off, or a disk that lied)
 * must not give their ids to new tasks: the reservation is durable first. */
Test(wal_tasks, should_not_reuse_the_ids_of_acknowledged_tasks_lost_in_a_power_cut)
{
	struct sup_wal_stats st;
	struct stat sb;
	char path[300];
	int64_t first, lost[4], next;

	fake_agent(f, "a", 3, NULL);
	first = submit(false);
	restart();
	cr_assert_eq(sup_tasks_replay_end(ts, NULL, NULL), 1);
	cr_assert_eq(sup_wal_flush_sync(w), 0);
	for (int i = 0; i < 4; i++)
		lost[i] = submit(false);
	cr_assert_eq(sup_wal_flush_sync(w), 0);
	cr_assert_eq(acks, 5, "the four submits were not acknowledged");
	/* The power cut: the four SUBMIT records (the same size each: no
	 * agent, "echo", "hi") never reached the disk. The replayed task and
	 * the reservation before them did (a sync covered them). */
	sup_wal_stats(w, &st);
	snprintf(path, sizeof(path), "%s/%016llx.wal", dir, (unsigned long long)st.current_segment);
	sup_tasks_free(ts);
	sup_wal_free(w);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(truncate(path, sb.st_size - 4 * (SUP_WAL_REC_HDR + SUP_WALREC_SUBMIT_FIXED + 6)), 0);
	{
		struct sup_tasks_env env = fake_env(f);

		for (size_t i = 0; i < f->nagents; i++) {
			free(f->agents[i]->task_state);
			f->agents[i]->task_state = NULL;
		}
		ts = sup_tasks_new(&env);
	}
	w = wal_open();
	replay_into(ts, w);
	sup_tasks_replay_end(ts, NULL, NULL);
	cr_assert(sup_tasks_is_pending(ts, (uint64_t)first), "the task from before was lost");
	cr_assert(!sup_tasks_is_pending(ts, (uint64_t)lost[0]), "the cut did not lose anything");
	next = submit(false);
	for (int i = 0; i < 4; i++)
		cr_assert_neq(next, lost[i], "a new task got id %lld, which a client holds for a "
			      "lost acknowledged task", (long long)next);
	cr_assert_gt(next, lost[3]);
	cr_assert_geq(sup_wal_reserved(w, SUP_WAL_IDS_TASK), (uint64_t)next);
}
