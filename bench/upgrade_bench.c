/* SPDX-License-Identifier: MIT */
/*
 * Upgrade pause: how long tierd stops dispatching while `tierctl upgrade`
 * re-execs it in place, with 24 and with 1,000 agents (UPG_AGENTS, a
 * comma-separated list).
 *
 * One tierd per agent count: a probe agent in tier 1 (this program again,
 * --probe FILE) and the rest trivial agents (bench/agents/trivial-agent)
 * across tiers 1-4, the journal at its default (batch) in the run's own
 * directory, so it crosses the upgrade too. A load client submits detached tasks to the probe, one
 * outstanding, a pause of UPG_GAP_US (default 200) between an ack and the
 * next submit; each payload is the task's sequence number. The probe
 * writes the CLOCK_MONOTONIC time it received each task at that number in
 * a shared file, so the bench knows when every task was dispatched, and
 * whether one was dispatched twice or never.
 *
 * Each upgrade (UPG_REPS per agent count, default 5, a second of steady
 * load between them): the control request {"cmd":"upgrade"} (what
 * `tierctl upgrade` sends; UPG_BINARY names the binary, default the same
 * tierd) is written at T0. The pause is the time from T0 to the first
 * dispatch that ends the longest gap between two consecutive dispatches
 * that starts between T0 and the upgrade's reply: the old binary
 * dispatches until it stops, the next dispatch is the new binary's. Also printed: that gap itself, the reply's
 * time, and the dispatch latency (submit written -> probe received) p99 of
 * the tasks submitted from 100 ms before T0 to 100 ms after the pause
 * ended, against the p99 of a steady second. Checked: tierd's pid and
 * every agent's pid unchanged, every acknowledged task dispatched, none
 * twice. UPG_FAKE_MS=N replaces the upgrade by N ms of SIGSTOP on tierd:
 * the harness must then report a pause of about N ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "jb_load.h"
#include "svb_util.h"
#include "tier/agent.h"

#define UPG_MAX   (1u << 21) /* tasks one tierd run may see */
#define UPG_REPS  16

struct probe_map {
	int64_t recv_ns[UPG_MAX];
	uint32_t dup;
};

static int probe(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct probe_map *m = fd < 0 ? MAP_FAILED :
		mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct tier_agent *a = tier_agent_open(NULL);
	struct tier_task t;
	int r;

	if (m == MAP_FAILED || !a) {
		fprintf(stderr, "upgrade_bench --probe: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((r = tier_agent_next(a, &t, -1)) >= 0) {
		char num[24] = "";
		unsigned long seq;

		if (r != 1)
			continue;
		memcpy(num, t.payload, t.len < sizeof(num) - 1 ? t.len : sizeof(num) - 1);
		seq = strtoul(num, NULL, 10);
		if (seq < UPG_MAX) {
			if (m->recv_ns[seq])
				m->dup++;
			else
				m->recv_ns[seq] = bench_now_ns();
		}
		if (tier_agent_reply(a, &t, TIER_ST_OK, -1, NULL, 0) < 0)
			break;
	}
	return 1;
}

struct ctx {
	char build[PATH_MAX], tierd[PATH_MAX], agent[PATH_MAX], self[PATH_MAX], binary[PATH_MAX];
	char dir[64], sock[108], conf[128], log[128], map[128];
	pid_t pid;
	struct probe_map *m;
	int64_t *sent_ns;  /* by sequence number */
	uint8_t *acked;    /* 1 acknowledged, 2 outcome unknown (the connection broke) */
	uint32_t seq;
	int fd, gap_us, fake_ms;
	size_t blen;
	char buf[65536];
};

static void sleep_us(int us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int write_conf(struct ctx *c, int agents)
{
	FILE *f = fopen(c->conf, "we");

	if (!f)
		return -errno;
	fprintf(f, "[supervisor]\ncgroup_root = upgbench-%d\ncontrol_socket = %s\nlog_level = warning\n"
		"metrics_address = off\noptimiser = off\ntask_queue_limit = 65536\njournal_dir = %s/journal\n",
		(int)getpid(), c->sock, c->dir);
	fprintf(f, "\n[agent probe]\ntier = 1\nexec = %s --probe %s\nrestart = always\n", c->self, c->map);
	for (int i = 1; i < agents; i++)
		fprintf(f, "\n[agent a%04d]\ntier = %d\nexec = %s\nrestart = always\n", i, 1 + i % 4, c->agent);
	return fclose(f) ? -errno : 0;
}

/* One line from the load connection into line (NUL-terminated); -errno on EOF. */
static int read_line(struct ctx *c, char *line, size_t len)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->blen);
		ssize_t r;

		if (nl) {
			size_t l = (size_t)(nl - c->buf) + 1, k = l < len ? l - 1 : len - 1;

			memcpy(line, c->buf, k);
			line[k] = 0;
			memmove(c->buf, c->buf + l, c->blen - l);
			c->blen -= l;
			return 0;
		}
		if (c->blen == sizeof(c->buf))
			return -EMSGSIZE;
		r = read(c->fd, c->buf + c->blen, sizeof(c->buf) - c->blen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ECONNRESET;
		c->blen += (size_t)r;
	}
}

/* A request on a fresh connection and its final reply (partial lines skipped),
 * into out: the `agents` of 1,000 agents is a line of megabytes. */
static int ctl(struct ctx *c, const char *req, char *out, size_t len)
{
	int fd = jb_connect(c->sock, 5000), err = -EIO;
	size_t got = 0;

	if (fd < 0)
		return fd;
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	for (;;) {
		char *nl = got ? memchr(out, '\n', got) : NULL;
		ssize_t r;

		if (nl) {
			size_t l = (size_t)(nl - out) + 1;

			*nl = 0;
			if (!strstr(out, "\"more\":true")) {
				err = strstr(out, "\"ok\":true") ? 0 : -EPROTO;
				goto out;
			}
			memmove(out, out + l, got - l);
			got -= l;
			continue;
		}
		if (got == len - 1) {
			err = -EMSGSIZE;
			goto out;
		}
		r = read(fd, out + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
out:
	close(fd);
	return err;
}

/* The pids of every agent, in the order `agents` lists them. */
static int agent_pids(struct ctx *c, long *pids, int max)
{
	static char line[32 << 20];
	int n = 0;

	if (ctl(c, "{\"id\":1,\"cmd\":\"agents\"}\n", line, sizeof(line)) < 0)
		return -EIO;
	for (char *p = line; n < max && (p = strstr(p, "\"pid\":")); p += 6)
		pids[n++] = strtol(p + 6, NULL, 10);
	return n;
}

static int wait_ready(struct ctx *c, int agents)
{
	static char line[32 << 20];

	for (int i = 0; i < 1200; i++) {
		int n = 0;

		if (ctl(c, "{\"id\":1,\"cmd\":\"agents\"}\n", line, sizeof(line)) == 0)
			for (char *p = line; (p = strstr(p, "\"state\":\"ready\"")); p++)
				n++;
		if (n >= agents)
			return 0;
		sleep_us(50000);
	}
	return -ETIMEDOUT;
}

/*
 * One detached submit to the probe and its ack. A connection that breaks
 * (the upgrade may tell clients to reconnect) is opened again; a task whose
 * ack was lost that way is marked unknown and sent again under a new number.
 */
static int submit_one(struct ctx *c)
{
	char req[256], line[1024];
	uint32_t s = ++c->seq;
	int n;

	if (s >= UPG_MAX)
		return -ENOSPC;
	n = snprintf(req, sizeof(req), "{\"id\":%u,\"cmd\":\"submit\",\"args\":{\"agent\":\"probe\","
		     "\"type\":\"upg\",\"payload\":\"%u\",\"detach\":true}}\n", s, s);
	if (c->fd < 0) {
		c->fd = jb_connect(c->sock, 5000);
		c->blen = 0;
		if (c->fd < 0)
			return c->fd;
	}
	c->sent_ns[s] = bench_now_ns();
	if (write(c->fd, req, (size_t)n) != n || read_line(c, line, sizeof(line)) < 0) {
		c->acked[s] = 2;
		close(c->fd);
		c->fd = -1;
		return 0;
	}
	if (strstr(line, "\"ok\":true"))
		c->acked[s] = 1;
	else if (!strstr(line, "\"id\":"))
		c->seq--; /* an unsolicited line (no id): not this submit's answer */
	return 0;
}

static int load_for(struct ctx *c, int64_t ns)
{
	int64_t end = bench_now_ns() + ns;

	while (bench_now_ns() < end) {
		int err = submit_one(c);

		if (err < 0)
			return err;
		sleep_us(c->gap_us);
	}
	return 0;
}

static int start(struct ctx *c, int agents)
{
	char *argv[] = { c->tierd, "-c", c->conf, NULL };
	int fd, err;

	snprintf(c->dir, sizeof(c->dir), "/tmp/upgbench-XXXXXX");
	/* The agents run as tierd-tN (docs/security.md): the probe opens its map as that user. */
	if (!mkdtemp(c->dir) || chmod(c->dir, 0755) < 0)
		return -errno;
	snprintf(c->sock, sizeof(c->sock), "%s/s", c->dir);
	snprintf(c->conf, sizeof(c->conf), "%s/tierd.ini", c->dir);
	snprintf(c->log, sizeof(c->log), "%s/tierd.log", c->dir);
	snprintf(c->map, sizeof(c->map), "%s/probe.map", c->dir);
	fd = open(c->map, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0666) < 0 || ftruncate(fd, sizeof(*c->m)) < 0)
		return -errno;
	c->m = mmap(NULL, sizeof(*c->m), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (c->m == MAP_FAILED)
		return -errno;
	err = write_conf(c, agents);
	if (err < 0)
		return err;
	c->pid = fork();
	if (c->pid == 0) {
		int lfd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		dup2(lfd, 1);
		dup2(lfd, 2);
		setsid();
		execv(c->tierd, argv);
		_exit(127);
	}
	return c->pid < 0 ? -errno : wait_ready(c, agents);
}

static void stop(struct ctx *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->pid > 0) {
		kill(c->pid, SIGTERM);
		if (svb_wait_exit(c->pid, 30 * SVB_SEC) == -ETIMEDOUT) {
			kill(c->pid, SIGKILL);
			svb_wait_exit(c->pid, 5 * SVB_SEC);
		}
	}
	c->pid = 0;
	if (c->m && c->m != MAP_FAILED)
		munmap(c->m, sizeof(*c->m));
	c->m = NULL;
	svb_rm_rf(c->dir);
}

/* Dispatch latency p99 (us) of tasks sent in [from, to]. */
static double p99_sent_in(struct ctx *c, uint32_t lo, uint32_t hi, int64_t from, int64_t to, size_t *ret_n)
{
	uint64_t *v = malloc(sizeof(*v) * (hi - lo + 1));
	size_t n = 0;
	double p;

	for (uint32_t s = lo; v && s <= hi; s++)
		if (c->sent_ns[s] >= from && c->sent_ns[s] <= to && c->m->recv_ns[s])
			v[n++] = (uint64_t)(c->m->recv_ns[s] - c->sent_ns[s]);
	p = v && n ? (double)bench_pct(v, n, 0.99) * 1e-3 : 0;
	free(v);
	*ret_n = n;
	return p;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

struct upg_res {
	double pause_ms, gap_ms, reply_ms, p99_us, steady_p99_us;
	size_t window_tasks;
};

static int one_upgrade(struct ctx *c, struct upg_res *r)
{
	char req[PATH_MAX + 128], reply[4096];
	struct ctx u = { .fd = -1 };
	int64_t t0, t_reply = 0, *d, prev, bound, best = -1, best_at = 0, best_prev = 0;
	uint32_t lo = c->seq + 1, hi;
	size_t nd = 0;
	int err;

	if (load_for(c, SVB_SEC) < 0)
		return -EIO;
	r->steady_p99_us = p99_sent_in(c, lo, c->seq, 0, INT64_MAX, &nd);
	if (c->binary[0])
		snprintf(req, sizeof(req), "{\"id\":1,\"cmd\":\"upgrade\",\"args\":{\"binary\":\"%s\"}}\n",
			 c->binary);
	else
		snprintf(req, sizeof(req), "{\"id\":1,\"cmd\":\"upgrade\",\"args\":{}}\n");
	u.fd = jb_connect(c->sock, 5000);
	if (u.fd < 0)
		return u.fd;
	t0 = bench_now_ns();
	if (c->fake_ms > 0) {
		/* The harness's self-check: a known pause (SIGSTOP, SIGCONT from a child). */
		pid_t k;

		close(u.fd);
		u.fd = -1;
		kill(c->pid, SIGSTOP);
		k = fork();
		if (k == 0) {
			sleep_us(c->fake_ms * 1000);
			kill(c->pid, SIGCONT);
			_exit(0);
		}
		t_reply = t0 + (int64_t)c->fake_ms * SVB_MS;
	} else if (write(u.fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		return -EIO;
	}
	/* Load goes on while the upgrade runs; its reply is read when it comes. */
	while (bench_now_ns() - t0 < 10 * SVB_SEC) {
		err = submit_one(c);
		if (err < 0)
			return err;
		if (!t_reply) {
			struct timespec zero = { 0 };
			fd_set rd;

			FD_ZERO(&rd);
			FD_SET(u.fd, &rd);
			if (pselect(u.fd + 1, &rd, NULL, NULL, &zero, NULL) > 0) {
				err = read_line(&u, reply, sizeof(reply));
				t_reply = bench_now_ns();
				if (!err && !strstr(reply, "\"ok\":true")) {
					fprintf(stderr, "upgrade_bench: the upgrade was refused: %s\n", reply);
					close(u.fd);
					return strstr(reply, "unknown command") ? -EOPNOTSUPP : -EPROTO;
				}
			}
		} else if (bench_now_ns() - t_reply > SVB_SEC) {
			break;
		}
		sleep_us(c->gap_us);
	}
	if (u.fd >= 0)
		close(u.fd);
	if (c->fake_ms > 0)
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	hi = c->seq;
	/* Dispatch times after T0, in order; the longest gap ends at the new binary's first. */
	d = malloc(sizeof(*d) * (hi - lo + 1));
	if (!d)
		return -ENOMEM;
	nd = 0;
	for (uint32_t s = lo; s <= hi; s++)
		if (c->m->recv_ns[s] > t0)
			d[nd++] = c->m->recv_ns[s];
	qsort(d, nd, sizeof(*d), cmp_i64);
	/* The old binary's last dispatch comes after T0 and before the reply (the
	 * new binary's, or the rollback's): a gap that starts later is something
	 * else (a monitor tick over 1,000 agents stalls dispatch too). */
	bound = (t_reply ? t_reply : t0 + 10 * SVB_SEC) + SVB_MS;
	prev = t0;
	for (size_t i = 0; i < nd && prev <= bound; i++) {
		if (d[i] - prev > best) {
			best = d[i] - prev;
			best_at = d[i];
			best_prev = prev;
		}
		prev = d[i];
	}
	free(d);
	if (best < 0)
		return -ENODATA;
	r->pause_ms = (double)(best_at - t0) * 1e-6;
	r->gap_ms = (double)(best_at - best_prev) * 1e-6;
	r->reply_ms = t_reply ? (double)(t_reply - t0) * 1e-6 : -1;
	r->p99_us = p99_sent_in(c, lo, hi, t0 - 100 * SVB_MS, best_at + 100 * SVB_MS, &r->window_tasks);
	return 0;
}

/* Every acknowledged task dispatched once; unknown ones at most once. */
static int audit(struct ctx *c, uint32_t *ret_lost)
{
	uint32_t lost = 0;

	for (uint32_t s = 1; s <= c->seq; s++)
		lost += c->acked[s] == 1 && !c->m->recv_ns[s];
	*ret_lost = lost;
	return lost || c->m->dup ? -EPROTO : 0;
}

static int run_count(struct ctx *c, int agents, int reps, int *ok)
{
	double pause[UPG_REPS], gap[UPG_REPS], p99[UPG_REPS], steady[UPG_REPS];
	static long before[4096], after[4096];
	int nb, na, err = start(c, agents);
	pid_t pid0 = c->pid;
	uint32_t lost;

	if (err < 0) {
		fprintf(stderr, "upgrade_bench: tierd with %d agents did not get ready: %s\n", agents,
			strerror(-err));
		bench_log_tail(c->log);
		stop(c);
		return err;
	}
	nb = agent_pids(c, before, 4096);
	for (int k = 0; k < reps; k++) {
		struct upg_res r;

		err = one_upgrade(c, &r);
		if (err == -EOPNOTSUPP) {
			printf("  this tierd has no upgrade command yet: n/a\n");
			stop(c);
			return err;
		}
		if (err < 0) {
			fprintf(stderr, "upgrade_bench: upgrade %d with %d agents: %s\n", k + 1, agents,
				strerror(-err));
			bench_log_tail(c->log);
			stop(c);
			return err;
		}
		pause[k] = r.pause_ms;
		gap[k] = r.gap_ms;
		p99[k] = r.p99_us;
		steady[k] = r.steady_p99_us;
		printf("  %4d agents, upgrade %d: pause %7.2f ms (dispatch gap %7.2f ms, reply at %7.2f ms); "
		       "dispatch p99 %8.1f us over %zu tasks around it, %7.1f us steady\n", agents, k + 1,
		       r.pause_ms, r.gap_ms, r.reply_ms, r.p99_us, r.window_tasks, r.steady_p99_us);
		fflush(stdout);
	}
	load_for(c, 200 * SVB_MS);
	sleep_us(200000);
	na = agent_pids(c, after, 4096);
	if (c->pid != pid0 || svb_pid_alive(c->pid) != 1) {
		printf("  %4d agents: tierd's pid %d is gone after the upgrades\n", agents, (int)pid0);
		*ok = 0;
	} else if (na != nb || memcmp(before, after, sizeof(long) * (size_t)(na > 0 ? na : 0))) {
		printf("  %4d agents: agent pids changed across the upgrades (%d before, %d after)\n", agents,
		       nb, na);
		*ok = 0;
	}
	if (audit(c, &lost) < 0) {
		printf("  %4d agents: %u acknowledged tasks never dispatched, %u dispatched twice\n", agents,
		       lost, c->m->dup);
		*ok = 0;
	}
	{
		double mp = bench_median(pause, (size_t)reps), max = pause[reps - 1]; /* sorted */

		printf("  %4d agents, median of %d: pause %.2f ms (max %.2f), dispatch gap %.2f ms, p99 "
		       "across the upgrade %.1f us (steady %.1f us); %u tasks, none lost or doubled: %s\n",
		       agents, reps, mp, max, bench_median(gap, (size_t)reps),
		       bench_median(p99, (size_t)reps), bench_median(steady, (size_t)reps), c->seq,
		       lost || c->m->dup ? "no" : "yes");
		if (agents <= 24)
			*ok &= bench_ratio("upgrade pause at 24 agents, ms (median)", mp, "<=", 50.0);
	}
	stop(c);
	return 0;
}

int main(int argc, char **argv)
{
	static struct ctx c = { .fd = -1 };
	const char *counts = getenv("UPG_AGENTS") ? getenv("UPG_AGENTS") : "24,1000";
	char machine[256], list[128], *save = NULL;
	int reps = bench_reps(5), ok = 1;

	if (argc == 3 && !strcmp(argv[1], "--probe"))
		return probe(argv[2]);
	signal(SIGPIPE, SIG_IGN);
	if (reps > UPG_REPS)
		reps = UPG_REPS;
	c.gap_us = getenv("UPG_GAP_US") ? atoi(getenv("UPG_GAP_US")) : 200;
	c.fake_ms = getenv("UPG_FAKE_MS") ? atoi(getenv("UPG_FAKE_MS")) : 0;
	if (!realpath(argv[0], c.self)) {
		perror("upgrade_bench: realpath");
		return 1;
	}
	{
		char tmp[PATH_MAX];

		svb_path(tmp, sizeof(tmp), "%s", c.self);
		svb_path(c.build, sizeof(c.build), "%s", dirname(dirname(tmp)));
	}
	svb_path(c.tierd, sizeof(c.tierd), "%s/tierd", c.build);
	svb_path(c.agent, sizeof(c.agent), "%s/bench/agents/trivial-agent", c.build);
	if (getenv("UPG_BINARY"))
		svb_path(c.binary, sizeof(c.binary), "%s", getenv("UPG_BINARY"));
	if (access(c.tierd, X_OK) || access(c.agent, X_OK)) {
		fprintf(stderr, "upgrade_bench: %s or %s missing (make all bench-agents)\n", c.tierd, c.agent);
		return 1;
	}
	c.sent_ns = calloc(UPG_MAX, sizeof(*c.sent_ns));
	c.acked = calloc(UPG_MAX, 1);
	if (!c.sent_ns || !c.acked)
		return 1;
	bench_machine(machine, sizeof(machine));
	printf("upgrade pause: %s\n", machine);
	printf("  agents %s, %d upgrades each, a detached submit to the probe every ack + %d us\n", counts,
	       reps, c.gap_us);
	if (c.fake_ms > 0)
		printf("  UPG_FAKE_MS=%d: no upgrade, tierd stopped (SIGSTOP) that long: the harness's "
		       "self-check\n", c.fake_ms);
	snprintf(list, sizeof(list), "%s", counts);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int n = atoi(t), err;

		if (n < 1 || n > 4000) {
			fprintf(stderr, "upgrade_bench: UPG_AGENTS: %s is not 1..4000\n", t);
			return 1;
		}
		memset(c.sent_ns, 0, UPG_MAX * sizeof(*c.sent_ns));
		memset(c.acked, 0, UPG_MAX);
		c.seq = 0;
		err = run_count(&c, n, reps, &ok);
		if (err == -EOPNOTSUPP)
			return 0;
		if (err < 0)
			ok = 0;
	}
	return ok ? 0 : 1;
}
