/* SPDX-License-Identifier: MIT */
/*
 * Journal benchmark: what the crash-safe task journal costs a submit, and
 * how it compares with beanstalkd's binlog, in one run.
 *
 * Load: 64 connections (JBENCH_CONNS), each with exactly one request
 * outstanding, one client thread (epoll), a fixed count of requests
 * (JBENCH_TASKS, default 20000, after JBENCH_WARMUP = 2000 unmeasured).
 * tierd gets a detached `submit` (acknowledged once the task is accepted,
 * and durable under its journal_sync mode), beanstalkd a `put` (answered
 * INSERTED). 64 connections with one request each, not one connection
 * pipelining 64, because that is what beanstalkd's clients do (its protocol
 * answers in order per connection, one job at a time) and what tierctl
 * submitters do; both servers then see the same 64 independent clients,
 * and both sit on a Unix socket (beanstalkd -l unix:PATH), so neither pays
 * TCP the other does not.
 *
 * Contenders, each started fresh on an empty directory and stopped by pid:
 *   tierd journal=no        the in-memory baseline
 *   tierd off / batch / always   journal_sync modes
 *   beanstalkd (no -b)      in memory, against tierd off
 *   beanstalkd -b -f 50     its default binlog: fsync at most every 50 ms,
 *                           after replying; against tierd batch
 *   beanstalkd -b -f 0      fsync before every reply; against tierd always
 * Two trivial agents (bench/agents/trivial-agent) in tier 1 answer every
 * task at once, so the submit path is what is measured. The journal and
 * the binlog live in the same directory tree (JBENCH_DIR, default
 * BUILD/bench/jbench-data): a tmpfs there is refused, since it would fsync
 * nothing. Repetitions (BENCH_REPS, default 3) run every contender once,
 * in a rotated order; the table shows medians. JBENCH_ONLY=STR runs only
 * the contenders whose name contains STR.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "jb_load.h"
#include "svb_util.h"

#define JB_MAXREPS 9
#define JB_PAYLOAD "jbench-0123456789abcdef-payload"

enum jb_kind { K_TIERD, K_BEANSTALK };

struct contender {
	const char  *name;
	enum jb_kind kind;
	const char  *mode;   /* tierd: journal_sync, or NULL for journal = no; beanstalkd: -f MS or NULL */
	int          avail;
	double       per_s[JB_MAXREPS], p50[JB_MAXREPS], p99[JB_MAXREPS];
	double       m_per_s, m_p50, m_p99;
};

static struct contender all[] = {
	{ .name = "tierd journal=no", .kind = K_TIERD, .mode = NULL, .avail = 1 },
	{ .name = "tierd off", .kind = K_TIERD, .mode = "off", .avail = 1 },
	{ .name = "tierd batch", .kind = K_TIERD, .mode = "batch", .avail = 1 },
	{ .name = "tierd always", .kind = K_TIERD, .mode = "always", .avail = 1 },
	{ .name = "beanstalkd (no -b)", .kind = K_BEANSTALK, .mode = NULL, .avail = 1 },
	{ .name = "beanstalkd -b -f 50", .kind = K_BEANSTALK, .mode = "50", .avail = 1 },
	{ .name = "beanstalkd -b -f 0", .kind = K_BEANSTALK, .mode = "0", .avail = 1 },
};
#define NCONT (sizeof(all) / sizeof(all[0]))

struct ctx {
	char build[PATH_MAX], data[PATH_MAX], tierd[PATH_MAX], agent[PATH_MAX], mount[256];
	char dir[PATH_MAX], sock[108], log[PATH_MAX + 16];
	int conns;
	size_t tasks, warmup;
	pid_t pid;
};

static size_t env_size(const char *name, size_t def)
{
	const char *v = getenv(name);

	return v && atol(v) > 0 ? (size_t)atol(v) : def;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The fs type of path by name, and whether it can keep data across a power cut. */
static const char *fs_name(const char *path, int *ret_volatile)
{
	struct statfs s;

	*ret_volatile = 0;
	if (statfs(path, &s) < 0)
		return "unknown";
	switch ((unsigned long)s.f_type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x794c7630: return "overlayfs";
	case 0x01021994: *ret_volatile = 1; return "tmpfs";
	case 0x858458f6: *ret_volatile = 1; return "ramfs";
	default: return "other";
	}
}

/* Mount source of the longest mount point above path (the disk). */
static void fs_source(const char *path, char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024], best[PATH_MAX] = "";
	size_t blen = 0;

	snprintf(buf, len, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], src[256], *dash = strstr(line, " - ");
		size_t l;

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%*s %255s", src) != 1)
			continue;
		l = strlen(mp);
		if (strncmp(path, mp, l) || (path[l] && path[l] != '/' && l > 1) || l < blen)
			continue;
		blen = l;
		snprintf(best, sizeof(best), "%s", src);
	}
	fclose(f);
	snprintf(buf, len, "%s", best[0] ? best : "?");
}

static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		setsid();
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (svb_wait_exit(pid, 10 * SVB_SEC) == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		svb_wait_exit(pid, 5 * SVB_SEC);
	}
}

static int write_tierd_conf(struct ctx *c, const char *path, const char *mode)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fprintf(f, "[supervisor]\ncgroup_root = jbench-%d\ncontrol_socket = %s\nlog_level = warning\n"
		"metrics_address = off\noptimiser = off\ntask_queue_limit = 65536\n",
		(int)getpid(), c->sock);
	if (mode)
		fprintf(f, "journal = yes\njournal_dir = %s/journal\njournal_sync = %s\n", c->dir, mode);
	else if (all[1].avail)
		fprintf(f, "journal = no\n");
	for (int i = 0; i < 2; i++)
		fprintf(f, "\n[agent a%d]\ntier = 1\nexec = %s\nrestart = always\n", i, c->agent);
	return fclose(f) ? -errno : 0;
}

/* One request, one reply line. */
static int ctl_call(int fd, const char *req, char *out, size_t len)
{
	size_t got = 0;

	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		return -EIO;
	while (got < len - 1) {
		ssize_t r = read(fd, out + got, len - 1 - got);

		if (r <= 0)
			return -EIO;
		got += (size_t)r;
		if (memchr(out, '\n', got))
			break;
	}
	out[got] = 0;
	return strstr(out, "\"ok\":true") ? 0 : -EPROTO;
}

static int wait_agents_ready(const char *sock)
{
	static char line[65536];
	int fd = jb_connect(sock, 5000);

	if (fd < 0)
		return fd;
	for (int i = 0; i < 500; i++) {
		int n = 0;

		if (ctl_call(fd, "{\"id\":1,\"cmd\":\"agents\"}\n", line, sizeof(line)) < 0)
			break;
		for (char *p = line; (p = strstr(p, "\"state\":\"ready\"")); p++)
			n++;
		if (n >= 2) {
			close(fd);
			return 0;
		}
		sleep_ms(10);
	}
	close(fd);
	return -ETIMEDOUT;
}

static int start(struct ctx *c, struct contender *k)
{
	char conf[PATH_MAX + 16], arg[PATH_MAX + 8];

	svb_rm_rf(c->dir);
	if (mkdir(c->dir, 0755) < 0)
		return -errno;
	if (svb_path(c->sock, sizeof(c->sock), "%s/s", c->dir) < 0)
		return -ENAMETOOLONG;
	snprintf(c->log, sizeof(c->log), "%s/log", c->dir);
	if (k->kind == K_TIERD) {
		char *argv[] = { c->tierd, "-c", conf, NULL };
		int err;

		snprintf(conf, sizeof(conf), "%s/tierd.ini", c->dir);
		err = write_tierd_conf(c, conf, k->mode);
		if (err < 0)
			return err;
		c->pid = spawn(argv, c->log);
		if (c->pid < 0)
			return -errno;
		err = wait_agents_ready(c->sock);
		if (err < 0)
			bench_log_tail(c->log);
		return err;
	} else {
		char fsync_ms[16], *argv[] = { "beanstalkd", "-l", arg, "-b", c->dir, "-f", fsync_ms, NULL };
		int fd;

		snprintf(arg, sizeof(arg), "unix:%s", c->sock);
		snprintf(fsync_ms, sizeof(fsync_ms), "%s", k->mode ? k->mode : "");
		if (!k->mode)
			argv[3] = NULL;
		c->pid = spawn(argv, c->log);
		if (c->pid < 0)
			return -errno;
		fd = jb_connect(c->sock, 5000);
		if (fd < 0) {
			bench_log_tail(c->log);
			return fd;
		}
		close(fd);
		return 0;
	}
}

static void stop(struct ctx *c)
{
	stop_pid(c->pid);
	c->pid = 0;
	svb_rm_rf(c->dir);
}

static int measure(struct ctx *c, struct contender *k, int rep)
{
	enum jb_proto proto = k->kind == K_TIERD ? JB_TIERD : JB_BEANSTALK;
	struct jb_result res;
	int err = start(c, k);

	if (err < 0) {
		fprintf(stderr, "journal_bench: %s did not start: %s\n", k->name, strerror(-err));
		goto out;
	}
	err = jb_load_run(proto, c->sock, c->conns, c->warmup, "\"tier\":1", JB_PAYLOAD, &res);
	if (!err)
		err = jb_load_run(proto, c->sock, c->conns, c->tasks, "\"tier\":1", JB_PAYLOAD, &res);
	if (err < 0) {
		fprintf(stderr, "journal_bench: %s: the load failed: %s\n", k->name, strerror(-err));
		bench_log_tail(c->log);
		goto out;
	}
	if (res.errors) {
		fprintf(stderr, "journal_bench: %s: %llu requests refused, the first: %s\n", k->name,
			(unsigned long long)res.errors, res.first_error);
		err = -EPROTO;
		goto out;
	}
	k->per_s[rep] = res.per_s;
	k->p50[rep] = (double)res.p50_ns * 1e-3;
	k->p99[rep] = (double)res.p99_ns * 1e-3;
	printf("  rep %d  %-22s %9.0f /s  p50 %8.1f us  p99 %8.1f us  max %8.1f us\n", rep + 1, k->name,
	       res.per_s, k->p50[rep], k->p99[rep], (double)res.max_ns * 1e-3);
	fflush(stdout);
out:
	stop(c);
	return err;
}

/* Does this tierd know the journal's keys? Its own config check says. */
static int tierd_has_journal(struct ctx *c)
{
	char conf[PATH_MAX + 16], log[PATH_MAX + 16];
	char *argv[] = { c->tierd, "-c", conf, "--check-config", NULL };
	int st;
	pid_t pid;

	svb_rm_rf(c->dir);
	if (mkdir(c->dir, 0755) < 0)
		return 0;
	if (svb_path(c->sock, sizeof(c->sock), "%s/s", c->dir) < 0) {
		fprintf(stderr, "journal_bench: %s/s is too long for a socket path (JBENCH_DIR)\n", c->dir);
		return 0;
	}
	snprintf(conf, sizeof(conf), "%s/tierd.ini", c->dir);
	snprintf(log, sizeof(log), "%s/check.log", c->dir);
	if (write_tierd_conf(c, conf, "batch") < 0)
		return 0;
	pid = spawn(argv, log);
	st = svb_wait_exit(pid, 10 * SVB_SEC);
	if (st != 0)
		bench_log_tail(log);
	svb_rm_rf(c->dir);
	return st == 0;
}

static void row(const struct contender *k)
{
	if (!k->avail) {
		printf("  %-22s %12s\n", k->name, "n/a");
		return;
	}
	printf("  %-22s %12.0f %12.1f %12.1f\n", k->name, k->m_per_s, k->m_p50, k->m_p99);
}

static int ratio(const char *what, int a, int b, double target)
{
	if (!all[a].avail || !all[b].avail || all[b].m_per_s <= 0) {
		printf("  %-44s %s\n", what, "n/a (a contender did not run)");
		return 1;
	}
	return bench_ratio(what, all[a].m_per_s / all[b].m_per_s, ">=", target);
}

int main(int argc, char **argv)
{
	struct ctx c = { .conns = (int)env_size("JBENCH_CONNS", 64) };
	char self[PATH_MAX], machine[256], src[256];
	int reps = bench_reps(3), vol, ok = 1, failed = 0;
	const char *fs;

	(void)argc;
	signal(SIGPIPE, SIG_IGN);
	c.tasks = env_size("JBENCH_TASKS", 20000);
	c.warmup = env_size("JBENCH_WARMUP", 2000);
	if (reps > JB_MAXREPS)
		reps = JB_MAXREPS;
	if (!realpath(argv[0], self)) {
		perror("journal_bench: realpath");
		return 1;
	}
	svb_path(c.build, sizeof(c.build), "%s", dirname(dirname(self)));
	svb_path(c.tierd, sizeof(c.tierd), "%s/tierd", c.build);
	svb_path(c.agent, sizeof(c.agent), "%s/bench/agents/trivial-agent", c.build);
	if (access(c.tierd, X_OK) || access(c.agent, X_OK)) {
		fprintf(stderr, "journal_bench: %s or %s missing (make all bench-agents)\n", c.tierd, c.agent);
		return 1;
	}
	if (getenv("JBENCH_DIR"))
		svb_path(c.data, sizeof(c.data), "%s", getenv("JBENCH_DIR"));
	else
		svb_path(c.data, sizeof(c.data), "%s/bench/jbench-data", c.build);
	mkdir(c.data, 0755);
	if (!realpath(c.data, self)) {
		fprintf(stderr, "journal_bench: %s: %s\n", c.data, strerror(errno));
		return 1;
	}
	svb_path(c.data, sizeof(c.data), "%s", self);
	svb_path(c.dir, sizeof(c.dir), "%s/run", c.data);
	fs = fs_name(c.data, &vol);
	fs_source(c.data, src, sizeof(src));
	if (vol) {
		fprintf(stderr, "journal_bench: %s is on %s, which fsyncs nothing; set JBENCH_DIR to a "
			"directory on a disk\n", c.data, fs);
		return 1;
	}
	bench_machine(machine, sizeof(machine));
	printf("journal: %s\n", machine);
	printf("  journal and binlog in %s (%s on %s)\n", c.data, fs, src);
	printf("  %d connections, one request outstanding on each; %zu measured requests after %zu "
	       "warm-up, %d repetitions\n", c.conns, c.tasks, c.warmup, reps);
	if (!tierd_has_journal(&c)) {
		printf("  this tierd has no journal (its config check refused journal_sync): only "
		       "'tierd journal=no' runs for tierd\n");
		all[1].avail = all[2].avail = all[3].avail = 0;
		all[0].name = "tierd (no journal)";
	}
	{
		char *argv2[] = { "beanstalkd", "-v", NULL };
		pid_t p = spawn(argv2, "/dev/null");

		if (p < 0 || svb_wait_exit(p, 5 * SVB_SEC) != 0) {
			printf("  beanstalkd is not installed (apt-get install beanstalkd): no peer\n");
			all[4].avail = all[5].avail = all[6].avail = 0;
		}
	}
	if (getenv("JBENCH_ONLY"))
		for (size_t i = 0; i < NCONT; i++)
			if (!strstr(all[i].name, getenv("JBENCH_ONLY")))
				all[i].avail = 0;
	for (int r = 0; r < reps; r++)
		for (size_t i = 0; i < NCONT; i++) {
			struct contender *k = &all[(i + (size_t)r) % NCONT];

			if (k->avail && measure(&c, k, r) < 0) {
				k->avail = 0;
				failed = 1;
			}
		}
	for (size_t i = 0; i < NCONT; i++) {
		struct contender *k = &all[i];

		k->m_per_s = bench_median(k->per_s, (size_t)reps);
		k->m_p50 = bench_median(k->p50, (size_t)reps);
		k->m_p99 = bench_median(k->p99, (size_t)reps);
	}
	printf("  medians of %d:\n  %-22s %12s %12s %12s\n", reps, "", "acks/s", "p50 us", "p99 us");
	for (size_t i = 0; i < NCONT; i++)
		row(&all[i]);
	ok &= ratio("tierd batch / tierd off", 2, 1, 0.8);
	ok &= ratio("tierd batch / beanstalkd -b -f 50 (default)", 2, 5, 1.0);
	ok &= ratio("tierd always / beanstalkd -b -f 0", 3, 6, 1.0);
	ok &= ratio("tierd off / beanstalkd (no -b)", 1, 4, 1.0);
	if (all[0].avail && all[1].avail)
		printf("  %-44s %.2f  (what writing the journal costs without fsync)\n",
		       "tierd off / tierd journal=no", all[1].m_per_s / all[0].m_per_s);
	rmdir(c.data);
	return ok && !failed ? 0 : 1;
}
