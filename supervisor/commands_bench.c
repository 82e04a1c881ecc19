/* SPDX-License-Identifier: MIT */
/*
 * commands_bench — bench-dispatch: tierd generates tasks itself, so
 * dispatch can be measured without a client in the way. Keeps `window`
 * tasks in flight to a tier (or an agent) until `n` have finished,
 * optionally waiting `gap_us` between a result and the next submission (a
 * gap past the agents' spin window makes every task a cold wake). Replies
 * with throughput, latency percentiles (queued -> accepted, tierd's clock)
 * and tierd's CPU per task from its own cgroup's cpu.stat.
 *
 * What a request may cost tierd is bounded: n (its latencies are kept, 8
 * bytes each), window (submissions per loop turn), gap_us, and one
 * benchmark at a time. It is an admin command (ctl_roles.c). The first
 * refused submission stops new ones; the reply then says why
 * ("first_error"), once the tasks in flight are done. A client that goes
 * away stops it the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup/cgroup.h"
#include "cgroup/cg_stat.h"
#include "commands_internal.h"
#include "config/config.h"
#include "ctl.h"
#include "ctl_args.h"
#include "daemon.h"
#include "tasks.h"

#define BENCH_N_MAX      1000000
#define BENCH_WINDOW_MAX 4096
#define BENCH_GAP_US_MAX 1000000

struct bench {
	struct sup_daemon     *d;
	struct sup_ctl_client *c;
	uint64_t               id;
	char                   agent[64];
	int                    tier;
	char                   type[64];
	char                  *payload;
	size_t                 len;
	uint64_t               n, window, sent, done, failed;
	int64_t                gap_ns;
	int64_t                t0, t1;
	uint64_t               cpu0;
	int64_t               *lat;
	struct sup_defer       refill;
	struct sup_timer       gap;
	bool                   ended;
	char                   first_error[256];
};

static uint64_t self_cpu_usec(struct sup_daemon *d)
{
	struct sup_cg_cpu_stat st;

	if (sup_cg_read_cpu_stat(sup_cg_supervisor_fd(d->cg), &st) < 0)
		return 0;
	return st.usage_usec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, uint64_t n, double q)
{
	uint64_t i = (uint64_t)(q * (double)(n - 1) + 0.5);

	return n ? (double)v[i < n ? i : n - 1] / 1000.0 : 0;
}

static void bench_end(struct bench *b)
{
	/* Read before sorting: the sort is the benchmark's, not dispatch's. */
	uint64_t cpu = self_cpu_usec(b->d) - b->cpu0;
	double secs = (double)(b->t1 - b->t0) * 1e-9;
	uint64_t ok = b->done - b->failed;

	b->ended = true;
	b->d->bench_running = false;
	qsort(b->lat, ok, sizeof(*b->lat), cmp_i64);
	sup_ctl_reply_ok(b->c, b->id, json_pack(
		"{s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:s?}",
		"tasks", (json_int_t)b->done, "failed", (json_int_t)b->failed,
		/* Only tasks that ended ok count as dispatched work. */
		"seconds", secs, "tasks_per_s", secs > 0 ? (double)ok / secs : 0,
		"p50_us", pct(b->lat, ok, 0.50), "p90_us", pct(b->lat, ok, 0.90),
		"p99_us", pct(b->lat, ok, 0.99), "max_us", pct(b->lat, ok, 1.0),
		"cpu_ns_per_task", b->done ? (double)cpu * 1000.0 / (double)b->done : 0,
		"cpu_usec", (json_int_t)cpu,
		"first_error", b->first_error[0] ? b->first_error : NULL));
	sup_ctl_client_release(b->c);
	sup_defer_queue(b->d->loop, &b->refill);  /* frees it once off the stack */
}

static void submit_some(struct bench *b);

/* The bench keeps no result: false, freed once counted. */
static bool on_done(struct sup_tasks *ts, struct sup_task *t, void *arg)
{
	struct bench *b = arg;
	struct sup_task_info i;

	(void)ts;
	sup_task_info(t, &i);
	if (i.status == TIER_ST_OK) {
		b->lat[b->done - b->failed] = i.t.accepted - i.t.queued;
	} else {
		b->failed++;
		/* Refused (a full queue): stop submitting, as for a submit
		 * refused outright. */
		if (i.status == TIER_ST_REJECTED && !b->first_error[0]) {
			snprintf(b->first_error, sizeof(b->first_error), "%s", i.error ? i.error : "rejected");
			b->n = b->sent;
		}
	}
	b->done++;
	/* Nobody to report to: submit no more, end once the rest are in. */
	if (!sup_ctl_client_connected(b->c))
		b->n = b->sent;
	if (b->done == b->n) {
		b->t1 = sup_loop_now(b->d->loop);
		bench_end(b);
		return false;
	}
	/* Refill at the end of the turn: a burst of results becomes one burst
	 * of submissions, and a synchronous finish cannot recurse. */
	if (b->gap_ns)
		sup_timer_arm(b->d->loop, &b->gap, sup_loop_time(b->d->loop) + b->gap_ns);
	else
		sup_defer_queue(b->d->loop, &b->refill);
	return false;
}

static void submit_some(struct bench *b)
{
	/* At most a window per turn, even when tasks end as they are
	 * submitted: the loop serves everyone else in between. */
	for (uint64_t k = 0; k < b->window && b->sent < b->n && b->sent - b->done < b->window; k++) {
		struct sup_task_spec s = {
			.agent = b->agent[0] ? b->agent : NULL,
			.tier = b->tier,
			.type = b->type,
			.type_len = strlen(b->type),
			.payload = b->payload,
			.len = b->len,
			.done = on_done,
			.done_arg = b,
		};
		char err[256];

		b->sent++;
		if (sup_tasks_submit(b->d->tasks, &s, err, sizeof(err)) < 0) {
			/* Refused (a full queue, no such agent): more of the same
			 * would only spin. */
			b->failed++;
			b->done++;
			b->n = b->sent;
			snprintf(b->first_error, sizeof(b->first_error), "%s", err);
		}
	}
	/* Nothing in flight any more (every submission refused, or they all
	 * finished synchronously): end now, or nothing ever would. */
	if (b->done == b->n && !b->ended) {
		b->t1 = sup_loop_now(b->d->loop);
		bench_end(b);
	} else if (!b->ended && b->sent < b->n && b->sent - b->done < b->window) {
		sup_defer_queue(b->d->loop, &b->refill);
	}
}

static void refill(struct sup_loop *l, struct sup_defer *df)
{
	struct bench *b = df->data;

	(void)l;
	if (b->ended) {
		sup_timer_disarm(b->d->loop, &b->gap);
		free(b->lat);
		free(b->payload);
		free(b);
		return;
	}
	submit_some(b);
}

static void gap_fired(struct sup_loop *l, struct sup_timer *t)
{
	(void)l;
	submit_some(t->data);
}

void sup_cmd_bench_dispatch(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *jt = json_object_get(args, "tier");
	const char *agent = json_string_value(json_object_get(args, "agent"));
	const char *type = json_string_value(json_object_get(args, "type"));
	int64_t n, window, gap_us, len;
	int tier = sup_ctl_arg_tier(jt, 0);
	struct bench *b;

	if (sup_ctl_arg_int(json_object_get(args, "n"), 1, BENCH_N_MAX, 0, &n) < 0 || !n ||
	    sup_ctl_arg_int(json_object_get(args, "window"), 1, BENCH_WINDOW_MAX, 1, &window) < 0 ||
	    sup_ctl_arg_int(json_object_get(args, "gap_us"), 0, BENCH_GAP_US_MAX, 0, &gap_us) < 0 ||
	    sup_ctl_arg_int(json_object_get(args, "payload_len"), 0, d->conf->sup.max_payload, 64,
			    &len) < 0 ||
	    !agent == !jt || tier < 0 || (jt && !tier) || (type && strlen(type) >= sizeof(b->type))) {
		sup_ctl_reply_err(c, id, EINVAL, "bench-dispatch needs n (1..%d), agent or tier (1..4), "
				  "and optionally window (1..%d), gap_us (0..%d), payload_len (0.."
				  "max_payload), type (under 64 bytes)", BENCH_N_MAX, BENCH_WINDOW_MAX,
				  BENCH_GAP_US_MAX);
		return;
	}
	if (d->bench_running) {
		sup_ctl_reply_err(c, id, EBUSY, "a bench-dispatch is already running; one at a time");
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		goto nomem;
	b->d = d;
	b->c = c;
	b->id = id;
	snprintf(b->agent, sizeof(b->agent), "%s", agent ? agent : "");
	b->tier = tier;
	snprintf(b->type, sizeof(b->type), "%s", type ? type : "noop");
	b->n = (uint64_t)n;
	b->window = (uint64_t)window;
	b->gap_ns = gap_us * 1000;
	b->len = (size_t)len;
	b->payload = malloc(b->len + 1);
	b->lat = calloc(b->n, sizeof(*b->lat));
	if (!b->payload || !b->lat) {
		free(b->payload);
		free(b->lat);
		free(b);
		goto nomem;
	}
	memset(b->payload, 'x', b->len);
	d->bench_running = true;
	sup_defer_init(&b->refill, refill, b);
	sup_timer_init(&b->gap, gap_fired, b);
	sup_ctl_client_hold(c);
	b->cpu0 = self_cpu_usec(d);
	b->t0 = sup_loop_now(d->loop);
	submit_some(b);
	return;
nomem:
	sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
}
