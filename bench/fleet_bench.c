/* SPDX-License-Identifier: MIT */
/*
 * Fleet benchmark: tasks through NATS JetStream into one tierd node (24
 * no-op agents, 64-byte tasks), against the same NATS set-up feeding a
 * plain pool of 24 worker processes, each a libnats pull consumer running
 * tierd's protocol (fetch -> work -> publish the result -> wait for its
 * PubAck -> ack; bench/agents/fleet-worker.c), and tierd's local control
 * socket as the reference.
 *
 *   throughput   FLEET_TASKS (20000) tasks, FLEET_WINDOW (512) in flight
 *   latency      FLEET_LAT_TASKS (2000) tasks one at a time, submit -> result
 *   CPU/task     tierd's CPU (every thread, the intake's fetch thread too)
 *                over the throughput run, NATS path and socket path
 *
 * One nats-server (JetStream, file store, in a temporary directory, a free
 * loopback port); the pool gets its own streams (prefix "pool": two work
 * queues may not share subjects) configured as docs/fleet.md says tierd's
 * are. Repetitions (BENCH_REPS, 3) interleaved; medians printed. The
 * submitter publishes asynchronously and takes results from a core
 * subscription on PREFIX.result.>: a result's time is its arrival, its
 * task's time the publish; matched by the tasks-stream sequence.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench.h"
#include "dispatch_client.h"
#include "dispatch_tierd.h"
#include "dispatch_util.h"

#define NW 24

struct paths {
	char build[PATH_MAX], tierd[PATH_MAX + 16], agent[PATH_MAX + 32], worker[PATH_MAX + 32];
	char dir[64], url[64];
};

struct fig {
	double tps, p50, p99, cpu_per_task;
};

/* ---- the submitter ------------------------------------------------------------- */

struct sub_state {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	uint64_t        base, n, done, bad;
	int64_t        *t_send;  /* by submit index */
	int64_t        *t_res;   /* by seq - base */
	uint64_t       *seq_k;   /* seq - base -> submit index + 1 */
};

static void on_result(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct sub_state *st = arg;
	const char *subj = natsMsg_GetSubject(m), *dot = strrchr(subj, '.');
	uint64_t seq = dot ? strtoull(dot + 1, NULL, 10) : 0;
	int64_t now = bench_now_ns();

	pthread_mutex_lock(&st->mu);
	if (seq > st->base && seq - st->base <= st->n && !st->t_res[seq - st->base - 1]) {
		st->t_res[seq - st->base - 1] = now;
		st->done++;
		if (!strstr(natsMsg_GetData(m) ?: "", "\"ok\""))
			st->bad++;
		pthread_cond_signal(&st->cv);
	}
	pthread_mutex_unlock(&st->mu);
	natsMsg_Destroy(m);
}

static void on_puback(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	struct sub_state *st = arg;
	const char *k = NULL;

	if (pa && natsMsgHeader_Get(m, "Nats-Msg-Id", &k) == NATS_OK && k) {
		pthread_mutex_lock(&st->mu);
		if (pa->Sequence > st->base && pa->Sequence - st->base <= st->n)
			st->seq_k[pa->Sequence - st->base - 1] = strtoull(strchr(k, '-') ? strchr(k, '-') + 1 : k, NULL, 10) + 1;
		pthread_mutex_unlock(&st->mu);
	} else if (pae) {
		fprintf(stderr, "fleet_bench: a publish failed: %s\n", pae->ErrText);
	}
}

static uint64_t last_seq(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	uint64_t v = 0;

	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK) {
		v = si->State.LastSeq;
		jsStreamInfo_Destroy(si);
	}
	return v;
}

/* Until fewer than window of the k submitted are without a result. */
static int wait_window(struct sub_state *st, uint64_t k, uint64_t window)
{
	int r = 0;

	pthread_mutex_lock(&st->mu);
	while (k - st->done >= window && !r) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 30;
		if (pthread_cond_timedwait(&st->cv, &st->mu, &ts) == ETIMEDOUT)
			r = -1;
	}
	pthread_mutex_unlock(&st->mu);
	return r;
}

/* n tasks to SUBJECT, window in flight; 0 or -1 (said why). */
static int submit_run(const char *url, const char *prefix, const char *stream, const char *subject,
		      uint64_t n, unsigned window, struct disp_result *r)
{
	struct sub_state st = { .n = n };
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	jsOptions jo;
	jsCtx *js = NULL;
	char rsubj[128], payload[64], key[32];
	int64_t t0, t1, *lat;
	uint64_t k, nl = 0;
	natsStatus s;
	int rc = -1;

	pthread_mutex_init(&st.mu, NULL);
	pthread_cond_init(&st.cv, NULL);
	st.t_send = calloc(n, sizeof(int64_t));
	st.t_res = calloc(n, sizeof(int64_t));
	st.seq_k = calloc(n, sizeof(uint64_t));
	lat = calloc(n, sizeof(int64_t));
	memset(payload, 'x', sizeof(payload));
	s = natsConnection_ConnectTo(&nc, url);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = window;
	jo.PublishAsync.AckHandler = on_puback;
	jo.PublishAsync.AckHandlerClosure = &st;
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, &jo);
	if (s != NATS_OK || !st.t_send || !st.t_res || !st.seq_k || !lat) {
		fprintf(stderr, "fleet_bench: submitter: %s\n", natsStatus_GetText(s));
		goto out;
	}
	st.base = last_seq(js, stream);
	snprintf(rsubj, sizeof(rsubj), "%s.result.>", prefix);
	s = natsConnection_Subscribe(&sub, nc, rsubj, on_result, &st);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, -1, -1);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK)
		goto out;
	t0 = bench_now_ns();
	for (k = 0; k < n; k++) {
		natsMsg *m = NULL;

		if (wait_window(&st, k, window) < 0) {
			fprintf(stderr, "fleet_bench: no result for 30 s with %" PRIu64 " of %" PRIu64
				" tasks submitted, %" PRIu64 " results\n", k, n, st.done);
			goto out;
		}
		/* Unique across runs: the duplicates window would drop a reused key. */
		snprintf(key, sizeof(key), "b%" PRIu64 "-%" PRIu64, st.base, k);
		s = natsMsg_Create(&m, subject, NULL, payload, sizeof(payload));
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", key);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Tierd-Type", "noop");
		st.t_send[k] = bench_now_ns();
		if (s == NATS_OK)
			s = js_PublishMsgAsync(js, &m, NULL);
		natsMsg_Destroy(m);
		if (s != NATS_OK) {
			fprintf(stderr, "fleet_bench: publish: %s\n", natsStatus_GetText(s));
			goto out;
		}
	}
	pthread_mutex_lock(&st.mu);
	while (st.done < n) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 30;
		if (pthread_cond_timedwait(&st.cv, &st.mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&st.mu);
	t1 = bench_now_ns();
	js_PublishAsyncComplete(js, NULL);
	if (st.done < n) {
		fprintf(stderr, "fleet_bench: %" PRIu64 " of %" PRIu64 " results arrived\n", st.done, n);
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		if (st.seq_k[i] && st.t_res[i])
			lat[nl++] = st.t_res[i] - st.t_send[st.seq_k[i] - 1];
	memset(r, 0, sizeof(*r));
	r->tasks = n;
	r->failed = st.bad;
	r->seconds = (double)(t1 - t0) / 1e9;
	r->tasks_per_s = (double)n / r->seconds;
	disp_lat_fill(r, lat, nl);
	rc = 0;
out:
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	if (nc) {
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
	free(st.t_send);
	free(st.t_res);
	free(st.seq_k);
	free(lat);
	return rc;
}

/* ---- set-up ------------------------------------------------------------------------ */

/* The streams and one consumer as docs/fleet.md has tierd make them. */
static int make_streams(const char *url, const char *p, const char *tasks, const char *results,
			const char *consumer, const char *filter)
{
	char s1[64], s2[64], s3[64];
	const char *ts[] = { s1, s2 }, *rs[] = { s3 };
	natsConnection *nc = NULL;
	jsStreamConfig sc, rc;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	jsCtx *js = NULL;
	natsStatus s;

	snprintf(s1, sizeof(s1), "%s.task.>", p);
	snprintf(s2, sizeof(s2), "%s.run.>", p);
	snprintf(s3, sizeof(s3), "%s.result.>", p);
	s = natsConnection_ConnectTo(&nc, url);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	jsStreamConfig_Init(&sc);
	sc.Name = tasks;
	sc.Subjects = ts;
	sc.SubjectsLen = 2;
	sc.Retention = js_WorkQueuePolicy;
	sc.Storage = js_FileStorage;
	sc.Replicas = 1;
	sc.MaxMsgSize = 65536;
	jsStreamConfig_Init(&rc);
	rc.Name = results;
	rc.Subjects = rs;
	rc.SubjectsLen = 1;
	rc.Storage = js_FileStorage;
	rc.Replicas = 1;
	rc.MaxMsgsPerSubject = 1;
	rc.Discard = js_DiscardNew;
	rc.DiscardNewPerSubject = true;
	rc.AllowDirect = true;
	if (s == NATS_OK)
		s = js_AddStream(NULL, js, &sc, NULL, &jerr);
	if (s == NATS_OK)
		s = js_AddStream(NULL, js, &rc, NULL, &jerr);
	jsConsumerConfig_Init(&cc);
	cc.Durable = consumer;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = (int64_t)30 * 1000000000;
	cc.MaxDeliver = 5;
	cc.MaxAckPending = -1;
	cc.FilterSubject = filter;
	if (s == NATS_OK)
		s = js_AddConsumer(NULL, js, tasks, &cc, NULL, &jerr);
	if (s != NATS_OK)
		fprintf(stderr, "fleet_bench: creating the %s streams: %s (JetStream error %d)\n", p,
			natsStatus_GetText(s), (int)jerr);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return s == NATS_OK ? 0 : -1;
}

static void purge(const char *url, const char *stream)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;

	if (natsConnection_ConnectTo(&nc, url) == NATS_OK &&
	    natsConnection_JetStream(&js, nc, NULL) == NATS_OK)
		js_PurgeStream(js, stream, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

static pid_t start_nats(struct paths *p)
{
	char conf[128], *argv[] = { "nats-server", "-c", conf, NULL };
	int port = 20000 + (int)(getpid() % 20000);
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/nats.conf", p->dir);
	snprintf(p->url, sizeof(p->url), "nats://127.0.0.1:%d", port);
	f = fopen(conf, "w");
	if (!f)
		return -errno;
	fprintf(f, "listen: 127.0.0.1:%d\nlog_file: \"%s/nats.log\"\n"
		"jetstream { store_dir: \"%s/js\" }\n", port, p->dir, p->dir);
	fclose(f);
	argv[0] = access("/usr/sbin/nats-server", X_OK) ? "nats-server" : "/usr/sbin/nats-server";
	return disp_spawn(argv, -1, -1);
}

static int wait_nats(const char *url)
{
	for (int i = 0; i < 100; i++) {
		natsConnection *nc = NULL;

		if (natsConnection_ConnectTo(&nc, url) == NATS_OK) {
			natsConnection_Destroy(nc);
			return 0;
		}
		disp_sleep_ns(50000000);
	}
	fprintf(stderr, "fleet_bench: nats-server did not come up at %s\n", url);
	return -1;
}

static int find_paths(struct paths *p)
{
	const char *env = getenv("TIERD_BUILD");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env) {
		snprintf(p->build, sizeof(p->build), "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -errno;
		exe[n] = 0;
		slash = strrchr(exe, '/');
		*slash = 0;
		slash = strrchr(exe, '/');   /* BUILD/bench/fleet_bench */
		*slash = 0;
		snprintf(p->build, sizeof(p->build), "%s", exe);
	}
	snprintf(p->tierd, sizeof(p->tierd), "%s/tierd", p->build);
	snprintf(p->agent, sizeof(p->agent), "%s/examples/team-agent", p->build);
	snprintf(p->worker, sizeof(p->worker), "%s/bench/agents/fleet-worker", p->build);
	snprintf(p->dir, sizeof(p->dir), "/tmp/fleet-bench-XXXXXX");
	return mkdtemp(p->dir) ? 0 : -errno;
}

static char *conf_agents(const struct paths *p, bool fleet)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	for (int i = 1; i <= NW; i++)
		fprintf(f, "[agent w%02d]\ntier = 3\nexec = %s --role secondary\n\n", i, p->agent);
	if (fleet)
		fprintf(f, "[fleet]\nservers = %s\nnode = bench\nfetch_wait = 100ms\n", p->url);
	fclose(f);
	return s;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ---- the runs ---------------------------------------------------------------------- */

static void start_pool(const struct paths *p, pid_t *pids)
{
	for (int i = 0; i < NW; i++) {
		char name[16];
		char *argv[] = { (char *)p->worker, (char *)p->url, "POOL_TASKS", "pool_tier3",
				 "pool.task.tier.3", "pool", name, NULL };

		snprintf(name, sizeof(name), "w%02d", i + 1);
		pids[i] = disp_spawn(argv, -1, -1);
	}
}

static void stop_pool(pid_t *pids)
{
	for (int i = 0; i < NW; i++)
		if (pids[i] > 0)
			disp_reap(pids[i], 2000000000LL);
}

static uint64_t env_u(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 10) : def;
}

static int one_rep(const struct paths *p, struct disp_tierd *t, bool nats_ok, struct disp_proc *cl,
		   struct fig *pool, struct fig *tn, struct fig *ts)
{
	uint64_t n = env_u("FLEET_TASKS", 20000), nl = env_u("FLEET_LAT_TASKS", 2000);
	unsigned w = (unsigned)env_u("FLEET_WINDOW", 512);
	struct disp_result r, rl;
	struct disp_load ld = { .n = n, .window = w, .tier = 3 };
	pid_t pids[NW];
	int64_t c0;

	purge(p->url, "POOL_RESULTS");
	start_pool(p, pids);
	disp_sleep_ns(300000000);
	if (submit_run(p->url, "pool", "POOL_TASKS", "pool.task.tier.3", n, w, &r) ||
	    submit_run(p->url, "pool", "POOL_TASKS", "pool.task.tier.3", nl, 1, &rl)) {
		stop_pool(pids);
		return -1;
	}
	stop_pool(pids);
	*pool = (struct fig){ r.tasks_per_s, rl.p50_us, rl.p99_us, -1 };
	if (nats_ok) {
		purge(p->url, "TIERD_RESULTS");
		c0 = bench_pid_cpu_ns(t->pid);
		if (submit_run(p->url, "tierd", "TIERD_TASKS", "tierd.task.tier.3", n, w, &r))
			return -1;
		tn->cpu_per_task = (double)(bench_pid_cpu_ns(t->pid) - c0) / (double)n;
		if (submit_run(p->url, "tierd", "TIERD_TASKS", "tierd.task.tier.3", nl, 1, &rl))
			return -1;
		tn->tps = r.tasks_per_s;
		tn->p50 = rl.p50_us;
		tn->p99 = rl.p99_us;
	}
	snprintf(ld.type, sizeof(ld.type), "noop");
	c0 = bench_pid_cpu_ns(t->pid);
	if (disp_proc_run(cl, &ld, &r) < 0)
		return -1;
	ts->cpu_per_task = (double)(bench_pid_cpu_ns(t->pid) - c0) / (double)n;
	ld.n = nl;
	ld.window = 1;
	if (disp_proc_run(cl, &ld, &rl) < 0)
		return -1;
	ts->tps = r.tasks_per_s;
	ts->p50 = rl.p50_us;
	ts->p99 = rl.p99_us;
	return 0;
}

static void med(struct fig *v, int n, struct fig *out)
{
	double a[4][16];

	for (int i = 0; i < n; i++) {
		a[0][i] = v[i].tps;
		a[1][i] = v[i].p50;
		a[2][i] = v[i].p99;
		a[3][i] = v[i].cpu_per_task;
	}
	out->tps = bench_median(a[0], n);
	out->p50 = bench_median(a[1], n);
	out->p99 = bench_median(a[2], n);
	out->cpu_per_task = bench_median(a[3], n);
}

static void line(const char *name, const struct fig *f)
{
	printf("  %-34s %9.0f tasks/s  p50 %8.1f us  p99 %8.1f us", name, f->tps, f->p50, f->p99);
	if (f->cpu_per_task >= 0)
		printf("  tierd CPU %6.1f us/task", f->cpu_per_task / 1000);
	printf("\n");
}

int main(void)
{
	struct fig pool[16], tn[16], ts[16], mp, mn, ms;
	struct disp_tierd t = { 0 };
	struct disp_proc cl = { 0 };
	struct paths p;
	char machine[256], *conf;
	int reps = bench_reps(3), ok = 1, rc = 1;
	bool nats_ok = true;
	pid_t nats;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (reps > 16)
		reps = 16;
	if (find_paths(&p) < 0 || access(p.worker, X_OK)) {
		fprintf(stderr, "fleet_bench: no %s (make bench builds it)\n", p.worker);
		return 1;
	}
	nats = start_nats(&p);
	if (nats < 0 || wait_nats(p.url) < 0)
		goto out;
	if (make_streams(p.url, "pool", "POOL_TASKS", "POOL_RESULTS", "pool_tier3",
			 "pool.task.tier.3") < 0)
		goto out;
	conf = conf_agents(&p, true);
	if (disp_tierd_start(&t, p.tierd, p.dir, "fleet", NULL, conf) < 0) {
		fprintf(stderr, "fleet_bench: tierd refused the [fleet] section: the NATS path is "
			"not measured (a tierd without the intake)\n");
		free(conf);
		conf = conf_agents(&p, false);
		nats_ok = false;
		if (disp_tierd_start(&t, p.tierd, p.dir, "plain", NULL, conf) < 0) {
			free(conf);
			goto out;
		}
	}
	free(conf);
	if (disp_proc_start(&cl, &disp_client_ops, t.sock) < 0)
		goto out;
	bench_machine(machine, sizeof(machine));
	printf("fleet: one node, %d no-op agents, 64-byte tasks, one nats-server (JetStream, file "
	       "store)\n  %s\n  throughput: %" PRIu64 " tasks, %" PRIu64 " in flight; latency: one "
	       "in flight; medians of %d runs\n", NW, machine, env_u("FLEET_TASKS", 20000),
	       env_u("FLEET_WINDOW", 512), reps);
	for (int i = 0; i < reps; i++) {
		if (one_rep(&p, &t, nats_ok, &cl, &pool[i], &tn[i], &ts[i]) < 0) {
			fprintf(stderr, "fleet_bench: repetition %d failed\n", i + 1);
			goto out;
		}
		if (getenv("FLEET_RAW")) {
			line("raw pool", &pool[i]);
			if (nats_ok)
				line("raw tierd via NATS", &tn[i]);
			line("raw tierd socket", &ts[i]);
		}
	}
	med(pool, reps, &mp);
	med(ts, reps, &ms);
	line("pull-consumer pool (24 processes)", &mp);
	if (nats_ok) {
		med(tn, reps, &mn);
		line("tierd through NATS", &mn);
	}
	line("tierd control socket (reference)", &ms);
	if (nats_ok) {
		ok &= bench_ratio("NATS throughput vs pool", mn.tps / mp.tps, ">=", 1.0);
		ok &= bench_ratio("NATS p50 vs pool", mn.p50 / mp.p50, "<=", 1.2);
		ok &= bench_ratio("tierd CPU/task NATS vs socket", mn.cpu_per_task / ms.cpu_per_task,
				  "<=", 1.0);
	}
	rc = 0;
	(void)ok;
out:
	if (cl.pid > 0)
		disp_proc_stop(&cl);
	if (t.pid > 0)
		disp_tierd_stop(&t);
	if (nats > 0)
		disp_reap(nats, 5000000000LL);
	nftw(p.dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
