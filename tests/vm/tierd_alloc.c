/* SPDX-License-Identifier: MIT */
/*
 * VM: tierd's allocator on a kernel with every controller.
 *
 * Starts tierd with a tier-1 agent and CPU hogs in tiers 3 and 4 (this
 * program re-executed as the agents), then:
 *  - tierd_alloc_knobs: the allocator wrote cpu.weight from the shares, no
 *    ceiling on tier 1 and rank-protected cpu.max ceilings on tiers 3/4;
 *  - tierd_alloc_guarantee: a CPU-bound tier-1 agent gets at least its
 *    guaranteed share (share x budget) while the hogs run (cpu.stat);
 *  - tierd_alloc_isolation: a tier-1 agent waking every 10 ms measures its
 *    wake-to-run latency with no hogs (the floor), with the hogs and the
 *    allocator, then with the allocator off and the knobs back to the
 *    kernel's defaults (no ceiling, weight 100, not idle); asserts that the
 *    allocator squeezed tiers 3 and 4 (cpu.idle) while tier 1 waited, and
 *    prints the three p99s (the isolation benchmark's numbers);
 *  - tierd_alloc_no_starving: with tier 1 wanting every CPU, tiers 3/4 are
 *    not squeezed (that would starve them) and tier 3 gets its share.
 */
#include <jansson.h>
#include <math.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../../include/tier/agent.h"
#include "vmtest.h"

#define ROOT     "tierd-vm"
#define SOCK     "/run/tierd-vm.sock"
#define CONF     "/tmp/tierd-vm.ini"
#define LATFILE  "/tmp/tick-latency"
#define TICK_NS  (10 * 1000 * 1000LL)
#define WORK_NS  (1 * 1000 * 1000LL)
/* The guest has no passwd, so no tier users: the agents run as root, by
 * number (they write their reports to /tmp). */
#define ROOT_AGENT "user = 0\ngroup = 0\n"

/* ---- the agents ------------------------------------------------------------- */

static int worker_hog(void)
{
	struct tier_agent *a = tier_agent_open(NULL);

	if (!a)
		return 1;
	for (;;)
		vt_burn_until_ns(vt_now_ns() + 1000000000LL);
}

/* Wake every 10 ms, note how late we ran and how long we waited in the run
 * queue after the timer woke us, work 1 ms. Every second write the p99 of
 * the last second's lateness and run-queue wait (µs) to LATFILE. */
static int worker_tick(void)
{
	struct tier_agent *a = tier_agent_open(NULL);
	int64_t lat[128], rq[128], next = vt_now_ns();
	unsigned n = 0;

	if (!a)
		return 1;
	for (;;) {
		rq[n] = vt_tick(&next, TICK_NS, WORK_NS, &lat[n]);
		if (++n == 100) {
			FILE *f = fopen(LATFILE ".new", "w");

			qsort(lat, n, sizeof(*lat), vt_cmp_i64);
			qsort(rq, n, sizeof(*rq), vt_cmp_i64);
			if (f) {
				fprintf(f, "%lld %lld\n", (long long)(rq[98] / 1000), (long long)(lat[98] / 1000));
				fclose(f);
				rename(LATFILE ".new", LATFILE);
			}
			n = 0;
			next = vt_now_ns();
		}
	}
}

static int worker_cpu(void)
{
	return worker_hog();
}

/* ---- talking to tierd ------------------------------------------------------------ */

static json_t *call(const char *cmd, json_t *args)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *req = json_pack("{s:i, s:s, s:o}", "id", 1, "cmd", cmd, "args", args ? args : json_object());
	char *line = json_dumps(req, JSON_COMPACT), buf[1 << 16];
	size_t got = 0;
	json_t *reply = NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	json_decref(req);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", SOCK);
	struct timeval tv = { .tv_sec = 10 };

	/* A daemon that stops answering fails the test, never hangs it. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto close_fd;
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) != 1)
		goto close_fd;
	while (got < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = 0;
	reply = json_loads(buf, 0, NULL);
close_fd:
	if (fd >= 0)
		close(fd);
	free(line);
	return reply;
}

static bool all_ready(unsigned want)
{
	json_t *r = call("agents", NULL), *a;
	unsigned ready = 0;
	size_t i;

	if (!r)
		return false;
	json_array_foreach(json_object_get(json_object_get(r, "result"), "agents"), i, a)
		ready += !strcmp(json_string_value(json_object_get(a, "state")) ?: "", "ready");
	json_decref(r);
	return ready == want;
}

static uint64_t cg_usage(const char *rel)
{
	char path[256];
	int fd;
	struct sup_cg_cpu_stat st = { 0 };

	snprintf(path, sizeof(path), "/sys/fs/cgroup/" ROOT "/%s", rel);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		sup_cg_read_cpu_stat(fd, &st);
		close(fd);
	}
	return st.usage_usec;
}

static void read_knob(const char *rel, char *out, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/fs/cgroup/" ROOT "/%s", rel);
	out[0] = 0;
	f = fopen(path, "r");
	if (f) {
		if (fgets(out, (int)len, f))
			out[strcspn(out, "\n")] = 0;
		fclose(f);
	}
}

static void write_knob(const char *rel, const char *v)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/fs/cgroup/" ROOT "/%s", rel);
	f = fopen(path, "w");
	if (f) {
		fputs(v, f);
		fclose(f);
	}
}

static double median(double *v, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (v[j] < v[i]) {
				double x = v[i];

				v[i] = v[j];
				v[j] = x;
			}
	return n ? v[n / 2] : -1;
}

/* p99 of the tick agent's run-queue wait after each wake-up (and, in
 * *late, of its lateness against the timer), medians of several
 * one-second reports (µs); -1 if none came. */
static double tick_p99(int seconds, double *late)
{
	double v[64], w[64];
	int n = 0;

	unlink(LATFILE);
	for (int s = 0; s < seconds && n < 64; s++) {
		FILE *f;
		long long rq, lat;

		sleep(1);
		f = fopen(LATFILE, "r");
		if (f && fscanf(f, "%lld %lld", &rq, &lat) == 2) {
			v[n] = (double)rq;
			w[n++] = (double)lat;
		}
		if (f)
			fclose(f);
		unlink(LATFILE);
	}
	*late = median(w, n);
	return median(v, n);
}

/* tierd with tier-1 agents running `worker` (n of them) and two hogs each
 * in tiers 3 and 4; waits until all are ready. */
static pid_t start_tierd(const char *self, const char *worker, int n)
{
	FILE *f = fopen(CONF, "w");
	pid_t pid;

	if (!f)
		return -1;
	fprintf(f, "[supervisor]\ncgroup_root = " ROOT "\ncontrol_socket = " SOCK "\n"
		"monitor_interval = 500ms\nmetrics_address = off\nlog_level = notice\noptimiser = off\n"
		"journal_dir = /run/tierd-vm-journal\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "[agent top%d]\ntier = 1\nexec = %s --worker %s\n" ROOT_AGENT, i, self, worker);
	for (int i = 0; i < 2; i++)
		fprintf(f, "[agent hog3-%d]\ntier = 3\nexec = %s --worker hog\n" ROOT_AGENT, i, self);
	for (int i = 0; i < 2; i++)
		fprintf(f, "[agent hog4-%d]\ntier = 4\nexec = %s --worker hog\n" ROOT_AGENT, i, self);
	fclose(f);
	pid = fork();
	if (pid == 0) {
		int fd = open("/tmp/tierd-vm.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl("/opt/tierd/bin/tierd", "tierd", "-c", CONF, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && !all_ready(4 + n); i++)
		usleep(100000);
	return pid;
}

/* SIGTERM, then SIGKILL if tierd has not exited within 20 s (said so). */
static void stop_tierd(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(100000);
	}
	printf("VMTEST NOTE tierd_alloc: tierd did not stop within 20 s of SIGTERM; killed\n");
	fflush(stdout);
	system("tail -20 /tmp/tierd-vm.log");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	write_knob("cgroup.kill", "1"); /* its agents too */
}

int main(int argc, char **argv)
{
	char self[PATH_MAX], v[128];
	double cores = (double)sysconf(_SC_NPROCESSORS_ONLN);
	pid_t tierd;

	if (argc >= 3 && !strcmp(argv[1], "--worker")) {
		if (!strcmp(argv[2], "hog"))
			return worker_hog();
		if (!strcmp(argv[2], "tick"))
			return worker_tick();
		return worker_cpu();
	}
	if (access("/opt/tierd/bin/tierd", X_OK) < 0) {
		printf("VMTEST SKIP tierd_alloc: tierd is not in the image\n");
		return 0;
	}
	snprintf(self, sizeof(self), "/vmtests/%s", basename(argv[0]));

	/* 1: knobs and the guarantee, with a CPU-bound tier-1 agent. */
	tierd = start_tierd(self, "cpu", 1);
	if (!all_ready(5)) {
		vt_fail("tierd_alloc_knobs", "agents never all ready (see /tmp/tierd-vm.log)");
		fflush(stdout);
		system("tail -20 /tmp/tierd-vm.log");
		stop_tierd(tierd);
		return 1;
	}
	sleep(3); /* a few ticks: ceilings settle */
	/* The knobs are read as one snapshot; the allocator writes them as
	 * separate files (a cleared cpu.idle resets cpu.weight to 100 until the
	 * weight is written again), so a snapshot taken between two writes of
	 * one tick is retried, a few times over 3 s, before it counts. */
	for (int attempt = 0;; attempt++) {
		char w1[32], w3[32], w4[32], m1[64], m3[64], m4[64], i3[8], i4[8];
		long long q3 = 0, q4 = 0, p3 = 1, p4 = 1;

		read_knob("tier1/cpu.weight", w1, sizeof(w1));
		read_knob("tier3/cpu.weight", w3, sizeof(w3));
		read_knob("tier4/cpu.weight", w4, sizeof(w4));
		read_knob("tier3/cpu.idle", i3, sizeof(i3));
		read_knob("tier4/cpu.idle", i4, sizeof(i4));
		read_knob("tier1/cpu.max", m1, sizeof(m1));
		read_knob("tier3/cpu.max", m3, sizeof(m3));
		read_knob("tier4/cpu.max", m4, sizeof(m4));
		sscanf(m3, "%lld %lld", &q3, &p3);
		sscanf(m4, "%lld %lld", &q4, &p4);
		/* Budget 0.8 x cores; tier 3 may use at most cores - the
		 * guarantees of tiers 1-2 (15 % and 35 % of the budget). */
		double cap3 = cores - 0.5 * 0.8 * cores, cap4 = cores - 0.9 * 0.8 * cores;

		/* Share x 10, lifted so no tier weighs less than a lower one:
		 * 150/350/400/100 -> 400/400/400/100. A group marked cpu.idle
		 * (tier 1 here is CPU-bound and waits) reads weight 0. The
		 * kernel may scale a period up itself when its timer fires too
		 * often (slow TCG timers): compare quota/period, not text. */
		bool w3ok = !strcmp(w3, "400") || (!strcmp(i3, "1") && !strcmp(w3, "0"));
		bool w4ok = !strcmp(w4, "100") || (!strcmp(i4, "1") && !strcmp(w4, "0"));

		if (!strcmp(w1, "400") && w3ok && w4ok &&
		    !strncmp(m1, "max", 3) && q3 > 0 && (double)q3 / p3 <= cap3 + 0.01 &&
		    q4 > 0 && (double)q4 / p4 <= cap4 + 0.01) {
			vt_pass("tierd_alloc_knobs", "weights %s/%s/%s, cpu.idle tier3 %s tier4 %s; cpu.max "
				"tier1 '%s', tier3 %.2f cores (cap %.2f), tier4 %.2f cores (cap %.2f)%s", w1, w3,
				w4, i3, i4, m1, (double)q3 / p3, cap3, (double)q4 / p4, cap4,
				attempt ? " (after a snapshot taken mid-tick)" : "");
			break;
		}
		if (attempt == 9) {
			vt_fail("tierd_alloc_knobs", "weights %s/%s/%s, cpu.idle %s/%s; cpu.max tier1 '%s' "
				"tier3 '%s' tier4 '%s' (10 snapshots over 3 s)", w1, w3, w4, i3, i4, m1, m3, m4);
			break;
		}
		usleep(300000);
	}
	{
		uint64_t u0 = cg_usage("tier1"), u3 = cg_usage("tier3"), u4 = cg_usage("tier4");
		int64_t t0 = vt_now_ns();
		double secs, c1, c3, c4, guarantee = 0.15 * 0.8 * cores;

		sleep(5);
		secs = (double)(vt_now_ns() - t0) * 1e-9;
		c1 = (double)(cg_usage("tier1") - u0) * 1e-6 / secs;
		c3 = (double)(cg_usage("tier3") - u3) * 1e-6 / secs;
		c4 = (double)(cg_usage("tier4") - u4) * 1e-6 / secs;
		if (c1 >= guarantee)
			vt_pass("tierd_alloc_guarantee", "tier 1 got %.2f cores (guarantee %.2f) against "
				"tier 3 %.2f and tier 4 %.2f over %.1f s", c1, guarantee, c3, c4, secs);
		else
			vt_fail("tierd_alloc_guarantee", "tier 1 got %.2f cores, under its guarantee %.2f "
				"(tier 3 %.2f, tier 4 %.2f)", c1, guarantee, c3, c4);
	}
	stop_tierd(tierd);

	/* 2: isolation, a periodic tier-1 agent, allocator on then off. */
	tierd = start_tierd(self, "tick", 1);
	if (!all_ready(5)) {
		vt_fail("tierd_alloc_isolation", "agents never all ready");
		stop_tierd(tierd);
		return 1;
	}
	{
		double ctl, on, off, lctl, lon, loff;
		char i3[8], i4[8];
		json_t *r;

		/* The floor: the same tier-1 agent with no hogs at all. */
		json_decref(call("stop", json_pack("{s:i}", "tier", 3)));
		json_decref(call("stop", json_pack("{s:i}", "tier", 4)));
		sleep(2);
		ctl = tick_p99(8, &lctl);
		json_decref(call("start", json_pack("{s:i}", "tier", 3)));
		json_decref(call("start", json_pack("{s:i}", "tier", 4)));
		sleep(4);
		on = tick_p99(8, &lon);
		read_knob("tier3/cpu.idle", i3, sizeof(i3));
		read_knob("tier4/cpu.idle", i4, sizeof(i4));
		r = call("allocator", json_pack("{s:s}", "state", "off"));
		json_decref(r);
		for (int t = 1; t <= 4; t++) {
			char rel[64];

			snprintf(rel, sizeof(rel), "tier%d/cpu.max", t);
			write_knob(rel, "max");
			snprintf(rel, sizeof(rel), "tier%d/cpu.weight", t);
			write_knob(rel, "100");
			snprintf(rel, sizeof(rel), "tier%d/cpu.idle", t);
			write_knob(rel, "0");
		}
		off = tick_p99(8, &loff);
		read_knob("tier3/cpu.max", v, sizeof(v));
		printf("VMTEST BENCH isolation: tier-1 run-queue wait after wake-up, p99: no hogs %.0f us, "
		       "hogs with the allocator %.0f us, hogs without %.0f us (without/with %.2fx); "
		       "lateness against the timer p99: %.0f / %.0f / %.0f us\n", ctl, on, off,
		       on > 0 ? off / on : 0, lctl, lon, loff);
		if (ctl < 0 || on < 0 || off < 0)
			vt_fail("tierd_alloc_isolation", "no latency reports (no hogs %.0f, on %.0f, off %.0f)",
				ctl, on, off);
		else if (strcmp(i4, "1"))
			vt_fail("tierd_alloc_isolation", "tier 4 was not squeezed under contention "
				"(cpu.idle tier3 %s, tier4 %s)", i3, i4);
		else
			vt_pass("tierd_alloc_isolation", "under contention the allocator marked tier 4 cpu.idle "
				"(tier 3: %s); tier-1 run-queue wait p99 no hogs %.0f us, with allocator %.0f us, "
				"without %.0f us; knobs back to defaults (tier3 cpu.max '%s')", i3, ctl, on, off, v);
	}
	stop_tierd(tierd);

	/* 3: tier 1 wants every CPU: squeezing tiers 3/4 as idle groups would
	 * starve them below their guarantees, so the shares decide. */
	tierd = start_tierd(self, "cpu", (int)cores);
	if (!all_ready(4 + (unsigned)cores)) {
		vt_fail("tierd_alloc_no_starving", "agents never all ready");
		stop_tierd(tierd);
		return 1;
	}
	sleep(3);
	{
		uint64_t u0 = cg_usage("tier1"), u3 = cg_usage("tier3");
		int64_t t0 = vt_now_ns();
		double secs, c1, c3, g3 = 0.40 * 0.8 * cores;
		char i3[8], i4[8];

		sleep(5);
		secs = (double)(vt_now_ns() - t0) * 1e-9;
		c1 = (double)(cg_usage("tier1") - u0) * 1e-6 / secs;
		c3 = (double)(cg_usage("tier3") - u3) * 1e-6 / secs;
		read_knob("tier3/cpu.idle", i3, sizeof(i3));
		read_knob("tier4/cpu.idle", i4, sizeof(i4));
		json_t *lim = call("limits", json_pack("{s:b}", "explain", 1)), *t3;
		const char *why;

		t3 = json_array_get(json_object_get(json_object_get(lim, "result"), "tiers"), 2);
		why = json_string_value(json_object_get(t3, "why")) ?: "(no answer)";
		printf("tier 3, tierctl limits --explain: %s\n", why);
		/* Squeezed, tier 3 gets a few percent of a core. */
		if (!strcmp(i3, "0") && c3 >= 0.5 * g3 && strstr(why, "less than its guarantee"))
			vt_pass("tierd_alloc_no_starving", "%d CPU-bound tier-1 agents got %.2f cores, tier 3 "
				"%.2f (guarantee %.2f); cpu.idle tier3 %s tier4 %s", (int)cores, c1, c3, g3, i3, i4);
		else
			vt_fail("tierd_alloc_no_starving", "%d CPU-bound tier-1 agents got %.2f cores, tier 3 "
				"%.2f (guarantee %.2f); cpu.idle tier3 %s tier4 %s; explained: %s", (int)cores, c1,
				c3, g3, i3, i4, why);
		json_decref(lim);
	}
	stop_tierd(tierd);
	return vt_failures ? 1 : 0;
}
