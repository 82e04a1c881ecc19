/* SPDX-License-Identifier: MIT */
/*
 * Dispatch benchmark: tierd against the usual ways of handing tasks to a
 * pool of worker processes, in one run, on this machine, nothing pinned
 * (tierd, agents, workers and clients share the CPUs as in production),
 * repetitions interleaved, medians of the per-repetition figures.
 *
 *  1. dispatch to 24 no-op agents, 64-byte tasks: throughput (a deep
 *     window) and latency with one task in flight, hot (back to back) and
 *     cold (a 2 ms gap, past the agents' 50 us spin window), for
 *       tierd inside      bench-dispatch: tierd generates the tasks
 *       tierd external    a client process pipelining `submit` on the socket
 *       (a) ZeroMQ load-balancing broker, REQ workers, DEALER client process
 *       (b) ZeroMQ PUSH/PULL fan-out with a PULL collector
 *       (c) a hand-rolled pool over pipes, pipelined, replies batched
 *  2. the full-team workflow (`run`, stagger 0) and its overhead per step
 *     against a futex round trip
 *  3. agentd stdio against exec, xargs -P 2 and a direct pipe driver
 *  4. parallel efficiency of a stream of CPU-bound tasks to tier 3
 *
 * This file sets up and orders; the parts are in dispatch_parts.c, the
 * report in dispatch_report.c, the contenders in the other dispatch_*.c.
 *
 * Three tierds run for the whole benchmark, each with its own cgroup root
 * and socket in a temporary directory: 24 agents in tier 3 (parts 1 and 4),
 * the bundled team's shape (2), two agentd agents (3). Baseline pools are
 * started and stopped per repetition. Everything is stopped by pid or by
 * its own cgroup; children die with the benchmark (PR_SET_PDEATHSIG).
 *
 * Knobs: BENCH_REPS (5), DISPATCH_WINDOW (tasks in flight for throughput,
 * 1024), DISPATCH_SCALE (multiplies every task count, 1.0), DISPATCH_RAW=1
 * (per-repetition figures on stderr), TIERD_BUILD (the build directory;
 * default: the one this binary is in).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_bench.h"
#include "dispatch_client.h"

/* ---- set-up ------------------------------------------------------------------- */

static int find_paths(struct disp_paths *p)
{
	const char *env = getenv("TIERD_BUILD");
	char exe[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(p->build, sizeof(p->build), "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -errno;
		exe[n] = 0;
		/* BUILD/bench/dispatch_bench */
		for (int k = 0; k < 2; k++) {
			char *s = strrchr(exe, '/');

			if (!s)
				return -ENOENT;
			*s = 0;
		}
		snprintf(p->build, sizeof(p->build), "%s", exe);
	}
#define P(field, rel) snprintf(p->field, sizeof(p->field), "%.3000s/" rel, p->build)
	P(tierd, "tierd");
	P(agentd, "agentd");
	P(team_agent, "examples/team-agent");
	P(pipe_worker, "bench/agents/pipe-worker");
	P(zmq_worker, "bench/agents/zmq-worker");
	P(echo_json, "bench/agents/echo-json");
#undef P
	const char *need[] = { p->tierd, p->team_agent, p->pipe_worker, p->zmq_worker, p->echo_json };

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (access(need[i], X_OK)) {
			fprintf(stderr, "dispatch_bench: %s is missing (make all bench)\n", need[i]);
			return -ENOENT;
		}
	return 0;
}

/* 24 no-op agents in tier 3: the dispatch and efficiency loads. */
static char *conf_dispatch(const struct disp_paths *p)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	for (int i = 1; i <= DISP_NW; i++)
		fprintf(f, "[agent w%02d]\ntier = 3\nexec = %s --role secondary\n\n", i, p->team_agent);
	fclose(f);
	return s;
}

/* The bundled team's shape (tests/integration/tierlib.py team_config()):
 * 1 orchestrator, 3 primaries, 16 secondaries, 4 specialists. The
 * specialists also take the benchmark's task types, so tier 4 runs too and
 * a workflow is 7 sequential steps. */
static char *conf_team(const struct disp_paths *p)
{
	static const char *const spec[] = { "security", "performance", "data", "docs" };
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	fprintf(f, "[agent orchestrator]\ntier = 1\nexec = %s --role orchestrator\n\n", p->team_agent);
	for (int i = 1; i <= 3; i++)
		fprintf(f, "[agent primary-%d]\ntier = 2\nexec = %s --role primary\n\n", i, p->team_agent);
	for (int i = 1; i <= 16; i++)
		fprintf(f, "[agent secondary-%02d]\ntier = 3\nexec = %s --role secondary\n\n", i,
			p->team_agent);
	for (int i = 0; i < 4; i++)
		fprintf(f, "[agent spec-%s]\ntier = 4\nexec = %s --role specialist --specialty %s\n"
			"specialties = %s, noop, burn\n\n", spec[i], p->team_agent, spec[i], spec[i]);
	fclose(f);
	return s;
}

/* One agent per agentd mode, both running echo-json. */
static char *conf_agentd(const struct disp_paths *p)
{
	char *s = NULL;

	if (asprintf(&s, "[agent echo-stdio]\ntier = 1\nmode = stdio\nexec = %s --stdio\n\n"
		     "[agent echo-exec]\ntier = 2\nmode = exec\nexec = %s\n\n", p->echo_json,
		     p->echo_json) < 0)
		return NULL;
	return s;
}

static int start_tierd(struct disp_bench *B, struct disp_tierd *t, const char *tag, const char *sup_extra,
		       char *conf)
{
	int r;

	if (!conf)
		return -ENOMEM;
	r = disp_tierd_start(t, B->p.tierd, B->p.dir, tag, sup_extra, conf);
	free(conf);
	if (r < 0)
		fprintf(stderr, "dispatch_bench: tierd '%s' did not start: %s\n", tag, strerror(-r));
	return r;
}

/* ---- main ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void load_line(const char *when)
{
	char buf[128] = "";
	FILE *f = fopen("/proc/loadavg", "re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	printf("load average %s: %s\n", when, buf);
}

static int start_all(struct disp_bench *B)
{
	char agentd_key[PATH_MAX + 16];
	int r;

	r = start_tierd(B, &B->a, "dispatch", NULL, conf_dispatch(&B->p));
	if (!r)
		r = start_tierd(B, &B->b, "team", NULL, conf_team(&B->p));
	if (r < 0)
		return r;
	/* agentd named explicitly, so the agentd under test is the one of this
	 * build whatever tierd's default lookup does. */
	snprintf(agentd_key, sizeof(agentd_key), "agentd = %.3000s\n", B->p.agentd);
	if (B->have_agentd && start_tierd(B, &B->c, "agentd", agentd_key, conf_agentd(&B->p)) < 0) {
		B->have_agentd = false;
		B->f.failures++;
		printf("*** the agentd agents did not start (see stderr): the agentd part is SKIPPED ***\n");
	}
	return disp_proc_start(&B->client, &disp_client_ops, B->a.sock);
}

static void stop_all(struct disp_bench *B)
{
	disp_proc_stop(&B->client);
	disp_tierd_stop(&B->c);
	disp_tierd_stop(&B->b);
	disp_tierd_stop(&B->a);
}

int main(void)
{
	static struct disp_bench B;
	struct disp_tally t = { 0 };
	const char *w = getenv("DISPATCH_WINDOW"), *sc = getenv("DISPATCH_SCALE");
	char mach[256];
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	B.reps = bench_reps(5);
	if (B.reps > DISP_MAX_REPS)
		B.reps = DISP_MAX_REPS;
	B.window = w && atoi(w) > 0 ? (unsigned)atoi(w) : 1024;
	B.scale = sc && atof(sc) > 0 ? atof(sc) : 1.0;
	B.ncpus = bench_ncpus();
	if (find_paths(&B.p) < 0)
		return 1;
	B.have_agentd = !access(B.p.agentd, X_OK);
	snprintf(B.p.dir, sizeof(B.p.dir), "/tmp/dispatch-bench-XXXXXX");
	if (!mkdtemp(B.p.dir)) {
		perror("dispatch_bench: mkdtemp");
		return 1;
	}
	bench_machine(mach, sizeof(mach));
	printf("dispatch benchmark: %s\n", mach);
	printf("%d agents/workers, 64-byte tasks, nothing pinned; %d repetitions, interleaved; medians of"
	       " per-repetition figures\n", DISP_NW, B.reps);
	load_line("at start");
	if (!B.have_agentd)
		printf("*** agentd not built (%s): the agentd part is SKIPPED ***\n", B.p.agentd);
	printf("\n");
	r = start_all(&B);
	if (r < 0) {
		fprintf(stderr, "dispatch_bench: set-up failed: %s\n", strerror(-r));
		goto stop;
	}
	for (int rep = 0; rep < B.reps; rep++) {
		fprintf(stderr, "  repetition %d/%d\r", rep + 1, B.reps);
		/* Rotate the order so no contender always follows the same one. */
		for (int k = 0; k < NC; k++)
			disp_part_dispatch(&B, (enum disp_contender)((k + rep) % NC), rep);
		disp_part_workflow(&B, rep);
		disp_part_agentd(&B, rep);
		disp_part_efficiency(&B, rep);
	}
	fprintf(stderr, "%30s\r", "");
	disp_report_dispatch(&B, &t);
	disp_report_workflow(&B, &t);
	disp_report_agentd(&B, &t);
	disp_report_efficiency(&B, &t);
	if (getenv("DISPATCH_RAW"))
		disp_report_raw(&B);
	load_line("at end");
	printf("\ntargets met: %d of %d", t.met, t.total);
	if (t.skipped)
		printf(" (%d SKIPPED: agentd not built or not started)", t.skipped);
	printf("\n");
	if (B.f.failures)
		printf("*** %d measurement(s) failed or had failed tasks: see stderr ***\n", B.f.failures);
stop:
	stop_all(&B);
	if (r < 0 || B.f.failures)
		fprintf(stderr, "dispatch_bench: configs and logs kept in %s\n", B.p.dir);
	else
		nftw(B.p.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return r < 0 || B.f.failures ? 1 : 0;
}
