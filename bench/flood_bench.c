/* SPDX-License-Identifier: MIT */
/*
 * Flood isolation: what two flooding agents cost tierd and a well-behaved
 * agent, measured while the flooders are throttled by their budgets (their
 * kill delay is set far beyond the run, so none is killed).
 *
 * One tierd runs three native agents (tests/agents/hostile-agent):
 *   good     tier 1, answers every task at once
 *   cqflood  tier 4, LOG records into its completion ring at full speed
 *            (mode FLOOD_CQ_MODE, default log-flood-yield: when its ring is
 *            full it retries at once, calling sched_yield(); log-flood
 *            retries without yielding)
 *   outflood tier 4, writes its stdout at full speed
 * Each repetition: tier 4 stopped, N sequential submit->result round trips
 * to good (the baseline); tier 4 started, a settle time for the flooders to
 * fill their ring and pipe and be throttled, two seconds of nothing else
 * (tierd's CPU then is what the floods cost it), N more round trips. Same
 * tierd, same run; the p99 ratio is of the medians over the repetitions.
 *
 * Prints per repetition and the medians: the good agent's p99 without and
 * with the flooders and their ratio (target <= 2), tierd's CPU while the
 * flooders are throttled (target <= 25 % of a core; also during the round
 * trips, alone and with the floods, for scale), and each flooder's own
 * CPU, which says whether it was spinning (its ring full, it retries) or
 * blocking (its pipe full, write(2) sleeps).
 *
 * Environment: BENCH_REPS (default 5), FLOOD_TASKS (round trips per phase,
 * default 3000), FLOOD_SETTLE_MS (default 1500), FLOOD_CQ_MODE.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "svb_util.h"

struct run {
	char dir[64], sock[100], conf[128], log[128];
	char cg[512];
	pid_t tierd;
	int fd;
	uint64_t id;
	char buf[65536];
	size_t len;
};

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && atoi(v) > 0 ? atoi(v) : def;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One request, one reply line (the caller's buffer holds it). */
static int call(struct run *r, const char *cmd, const char *args, char **ret_line)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "{\"id\":%llu,\"cmd\":\"%s\",\"args\":%s}\n",
			 (unsigned long long)++r->id, cmd, args);

	if (write(r->fd, req, (size_t)n) != n)
		return -EIO;
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		ssize_t got;

		if (nl) {
			size_t line = (size_t)(nl - r->buf) + 1;
			static char out[65536];

			memcpy(out, r->buf, line - 1);
			out[line - 1] = 0;
			memmove(r->buf, r->buf + line, r->len - line);
			r->len -= line;
			*ret_line = out;
			return strstr(out, "\"ok\":true") ? 0 : -EPROTO;
		}
		if (r->len == sizeof(r->buf))
			return -EMSGSIZE;
		got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (got <= 0)
			return -EIO;
		r->len += (size_t)got;
	}
}

static const char *cq_mode = "log-flood-yield";

static int start_tierd(struct run *r, const char *build)
{
	char mount[256], tierd[PATH_MAX], agent[PATH_MAX], root[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	FILE *f;

	if (svb_path(tierd, sizeof(tierd), "%s/tierd", build) < 0 ||
	    svb_path(agent, sizeof(agent), "%s/tests/agents/hostile-agent", build) < 0 ||
	    access(tierd, X_OK) || access(agent, X_OK)) {
		fprintf(stderr, "flood_bench: %s or %s missing (make all)\n", tierd, agent);
		return -ENOENT;
	}
	if (svb_cg_mount(mount, sizeof(mount)) < 0) {
		fprintf(stderr, "flood_bench: no cgroup2 mount\n");
		return -ENOENT;
	}
	snprintf(r->dir, sizeof(r->dir), "/tmp/flood-bench-XXXXXX");
	if (!mkdtemp(r->dir))
		return -errno;
	snprintf(root, sizeof(root), "flood-bench-%d", (int)getpid());
	svb_path(r->cg, sizeof(r->cg), "%s/%s", mount, root);
	snprintf(r->sock, sizeof(r->sock), "%s/ctl.sock", r->dir);
	snprintf(r->conf, sizeof(r->conf), "%s/tierd.ini", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/tierd.log", r->dir);
	f = fopen(r->conf, "we");
	if (!f)
		return -errno;
	fprintf(f, "[supervisor]\ncgroup_root = %s\ncontrol_socket = %s\nlog_level = warning\n"
		"metrics_address = off\noptimiser = off\nagent_flood_kill_after = 1h\n"
		"journal_dir = %s/journal\n"
		"[agent good]\ntier = 1\nexec = %s good\n"
		"[agent cqflood]\ntier = 4\nexec = %s %s\n"
		"[agent outflood]\ntier = 4\nexec = %s stdout-flood\n", root, r->sock, r->dir, agent, agent,
		cq_mode, agent);
	fclose(f);
	r->tierd = fork();
	if (r->tierd < 0)
		return -errno;
	if (r->tierd == 0) {
		int lfd = open(r->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
		}
		execl(tierd, tierd, "-c", r->conf, (char *)NULL);
		_exit(127);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->sock);
	for (int i = 0; i < 500; i++) {
		r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (r->fd >= 0 && connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return 0;
		if (r->fd >= 0)
			close(r->fd);
		r->fd = -1;
		sleep_ms(10);
	}
	fprintf(stderr, "flood_bench: tierd did not open its socket\n");
	return -ETIMEDOUT;
}

static void stop_tierd(struct run *r)
{
	int st;

	if (r->fd >= 0)
		close(r->fd);
	if (r->tierd > 0) {
		kill(r->tierd, SIGTERM);
		for (int i = 0; i < 300 && waitpid(r->tierd, &st, WNOHANG) == 0; i++)
			sleep_ms(20);
		if (waitpid(r->tierd, &st, WNOHANG) == 0) {
			kill(r->tierd, SIGKILL);
			waitpid(r->tierd, &st, 0);
		}
	}
	unlink(r->conf);
	unlink(r->log);
	rmdir(r->dir);
}

/* Wait until `cmd agents` shows want (a substring) for an agent. */
static int wait_state(struct run *r, const char *name, const char *state)
{
	char want[128], *line;

	snprintf(want, sizeof(want), "\"name\":\"%s\",", name);
	for (int i = 0; i < 500; i++) {
		char *p;

		if (call(r, "agents", "{}", &line) < 0)
			return -EIO;
		p = strstr(line, want);
		if (p) {
			char *end = strstr(p + 1, "\"name\":");
			char *s = strstr(p, state);

			if (s && (!end || s < end))
				return 0;
		}
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

static int round_trips(struct run *r, int n, uint64_t *lat)
{
	char *line;

	for (int i = 0; i < n; i++) {
		int64_t t0 = bench_now_ns();

		if (call(r, "submit", "{\"agent\":\"good\",\"type\":\"echo\",\"payload\":\"ping\"}", &line) < 0 ||
		    !strstr(line, "\"status\":\"ok\"")) {
			fprintf(stderr, "flood_bench: a task failed: %.300s\n", line ? line : "");
			return -EIO;
		}
		lat[i] = (uint64_t)(bench_now_ns() - t0);
	}
	return 0;
}

static int64_t cg_usage_ns(const struct run *r, const char *leaf)
{
	char path[PATH_MAX];

	if (svb_path(path, sizeof(path), "%s/%s", r->cg, leaf) < 0)
		return 0;
	return svb_cg_usage_ns(path);
}

int main(int argc, char **argv)
{
	int reps = bench_reps(5), n = env_int("FLOOD_TASKS", 3000), settle = env_int("FLOOD_SETTLE_MS", 1500);
	double p99a[16], p99b[16], rta[16], rtb[16], cpu[16], cqcpu[16], outcpu[16];
	char build[PATH_MAX], self[PATH_MAX], machine[256], *line;
	uint64_t *lat = calloc((size_t)n, sizeof(*lat));
	struct run r = { .fd = -1 };
	int ok = 1;

	(void)argc;
	if (getenv("FLOOD_CQ_MODE"))
		cq_mode = getenv("FLOOD_CQ_MODE");
	if (reps > 16)
		reps = 16;
	/* Absolute: tierd resolves relative exec paths against its config. */
	if (!realpath(argv[0], self)) {
		perror("flood_bench: realpath");
		return 1;
	}
	svb_path(build, sizeof(build), "%s", dirname(dirname(self)));
	bench_machine(machine, sizeof(machine));
	printf("flood isolation: %s\n", machine);
	printf("  %d round trips per phase, %d ms settle, %d repetitions, cqflood: %s\n", n, settle,
	       reps, cq_mode);
	if (!lat || start_tierd(&r, build) < 0 || wait_state(&r, "good", "\"state\":\"ready\"") < 0) {
		bench_log_tail(r.log);
		stop_tierd(&r);
		return 1;
	}
	for (int k = 0; k < reps; k++) {
		int64_t c0, w0, q0, o0, span;

		if (call(&r, "stop", "{\"tier\":4}", &line) < 0 ||
		    wait_state(&r, "cqflood", "\"state\":\"stopped\"") < 0 ||
		    wait_state(&r, "outflood", "\"state\":\"stopped\"") < 0)
			goto stop_daemon;
		w0 = bench_now_ns();
		c0 = bench_pid_cpu_ns(r.tierd);
		if (round_trips(&r, n, lat) < 0)
			goto stop_daemon;
		rta[k] = 100.0 * (double)(bench_pid_cpu_ns(r.tierd) - c0) / (double)(bench_now_ns() - w0);
		p99a[k] = (double)bench_pct(lat, (size_t)n, 0.99) * 1e-3;
		if (call(&r, "start", "{\"tier\":4}", &line) < 0)
			goto stop_daemon;
		sleep_ms(settle);
		/* tierd's cost of the floods alone: a window with nothing else. */
		w0 = bench_now_ns();
		c0 = bench_pid_cpu_ns(r.tierd);
		q0 = cg_usage_ns(&r, "tier4/agent-cqflood");
		o0 = cg_usage_ns(&r, "tier4/agent-outflood");
		sleep_ms(2000);
		span = bench_now_ns() - w0;
		cpu[k] = 100.0 * (double)(bench_pid_cpu_ns(r.tierd) - c0) / (double)span;
		cqcpu[k] = 100.0 * (double)(cg_usage_ns(&r, "tier4/agent-cqflood") - q0) / (double)span;
		outcpu[k] = 100.0 * (double)(cg_usage_ns(&r, "tier4/agent-outflood") - o0) / (double)span;
		w0 = bench_now_ns();
		c0 = bench_pid_cpu_ns(r.tierd);
		if (round_trips(&r, n, lat) < 0)
			goto stop_daemon;
		rtb[k] = 100.0 * (double)(bench_pid_cpu_ns(r.tierd) - c0) / (double)(bench_now_ns() - w0);
		p99b[k] = (double)bench_pct(lat, (size_t)n, 0.99) * 1e-3;
		/* Throttled, not killed. */
		if (call(&r, "events", "{}", &line) < 0)
			goto stop_daemon;
		if (strstr(line, "\"kind\":\"flooder\"")) {
			fprintf(stderr, "flood_bench: a flooder was killed during the measurement\n");
			goto stop_daemon;
		}
		printf("  rep %d: good p99 %.1f us alone, %.1f us with flooders; tierd CPU %.1f%% (floods "
		       "only), %.1f%% / %.1f%% (round trips alone / with floods); cqflood %.0f%%, outflood "
		       "%.0f%% of a core\n", k + 1, p99a[k], p99b[k], cpu[k], rta[k], rtb[k], cqcpu[k],
		       outcpu[k]);
		fflush(stdout);
	}
	{
		double mc, ma, mb, mq, mo;

		ma = bench_median(p99a, (size_t)reps);
		mb = bench_median(p99b, (size_t)reps);
		mc = bench_median(cpu, (size_t)reps);
		mq = bench_median(cqcpu, (size_t)reps);
		mo = bench_median(outcpu, (size_t)reps);
		printf("  median: good p99 %.1f us alone, %.1f us with the flooders throttled; tierd CPU "
		       "%.1f%% of a core with only the floods, %.1f%% / %.1f%% during round trips alone / "
		       "with floods\n", ma, mb, mc, bench_median(rta, (size_t)reps),
		       bench_median(rtb, (size_t)reps));
		printf("  flooders: cqflood %s (%.0f%% of a core: its ring is full, it retries%s), "
		       "outflood %s (%.0f%%: its pipe is full, write(2) sleeps)\n",
		       mq > 50 ? "spinning" : "blocking", mq,
		       strcmp(cq_mode, "log-flood") ? " with sched_yield()" : " without yielding",
		       mo > 50 ? "spinning" : "blocking", mo);
		ok &= bench_ratio("good p99 with / without flooders (medians)", mb / ma, "<=", 2.0);
		ok &= bench_ratio("tierd CPU while throttled, % of a core", mc, "<=", 25.0);
	}
	call(&r, "stop", "{\"tier\":4}", &line);
	stop_tierd(&r);
	free(lat);
	return ok ? 0 : 1;
stop_daemon:
	bench_log_tail(r.log);
	stop_tierd(&r);
	free(lat);
	return 1;
}
