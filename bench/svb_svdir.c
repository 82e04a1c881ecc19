/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "svb_svdir.h"

#define SVB_SVD_PATH 160
/* The fd s6-supervise hands the agent for its readiness line. */
#define S6_NOTIFY_FD 3
/* s6-svscan refuses services beyond its -c (default 500). */
#define S6_MAX_DEFAULT 500

const char *svb_svd_name(const struct svb_svd *s)
{
	return s->kind == SVB_SVD_S6 ? "s6" : "runit";
}

static char *status_path(const struct svb_svd *s, unsigned i)
{
	return s->paths + (size_t)i * SVB_SVD_PATH;
}

int svb_svd_prepare(struct svb_svd *s, enum svb_svd_kind kind, const struct svb_env *env,
		    unsigned n, unsigned seq)
{
	struct timespec old[2];
	char path[PATH_MAX];
	int r;

	clock_gettime(CLOCK_REALTIME, &old[0]);
	old[0].tv_sec -= 60;
	old[1] = old[0];
	memset(s, 0, sizeof(*s));
	s->proc.gate = s->proc.errp = -1;
	s->kind = kind;
	s->env = env;
	s->n = n;
	snprintf(s->scan, sizeof(s->scan), "%s/%s-%u", env->svc, svb_svd_name(s), seq);
	snprintf(s->cg_rel, sizeof(s->cg_rel), "%s/%s-%u", env->top_rel, svb_svd_name(s), seq);
	snprintf(s->cg, sizeof(s->cg), "%s/%s", env->mount, s->cg_rel);
	snprintf(s->log, sizeof(s->log), "%s/%s-%u.log", env->dir, svb_svd_name(s), seq);
	s->paths = calloc(n, SVB_SVD_PATH);
	if (!s->paths)
		return -ENOMEM;
	if (mkdir(s->scan, 0755) < 0)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		int len = snprintf(path, sizeof(path), "%s/a%04u", s->scan, i);

		if (svb_path(status_path(s, i), SVB_SVD_PATH, "%s/supervise/status", path) < 0)
			return -ENAMETOOLONG;
		if (mkdir(path, 0755) < 0)
			return -errno;
		snprintf(path + len, sizeof(path) - (size_t)len, "/run");
		if (symlink(env->agent, path) < 0)
			return -errno;
		if (kind == SVB_SVD_S6) {
			int fd;

			snprintf(path + len, sizeof(path) - (size_t)len, "/notification-fd");
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				return -errno;
			r = dprintf(fd, "%d\n", S6_NOTIFY_FD) < 0 ? -EIO : 0;
			close(fd);
			if (r < 0)
				return r;
		}
	}
	/* runsvdir sleeps 1 s before scanning a directory modified within the
	 * current second (it may still be changing); a real scan directory
	 * was populated long before its scanner starts, so date it back. */
	if (utimensat(AT_FDCWD, s->scan, old, 0) < 0)
		return -errno;
	if (mkdir(s->cg, 0755) < 0)
		return -errno;
	return 0;
}

int svb_svd_arm(struct svb_svd *s)
{
	char max[16], notify[32];
	char *s6_argv[] = { "s6-svscan", "-c", max, s->scan, NULL };
	char *runit_argv[] = { "runsvdir", s->scan, NULL };
	char *s6_env[] = { notify, NULL };

	snprintf(max, sizeof(max), "%u", s->n > S6_MAX_DEFAULT ? s->n : S6_MAX_DEFAULT);
	snprintf(notify, sizeof(notify), "SVB_NOTIFY_FD=%d", S6_NOTIFY_FD);
	if (s->kind == SVB_SVD_S6)
		return svb_spawn_park(&s->proc, s6_argv, s6_env, s->cg, s->log);
	return svb_spawn_park(&s->proc, runit_argv, NULL, s->cg, s->log);
}

int svb_svd_start(struct svb_svd *s)
{
	pid_t pid = s->proc.pid;
	int r = svb_spawn_go(&s->proc);

	if (r < 0)
		return r;
	s->pid = pid;
	return 0;
}

pid_t svb_svd_ready_pid(const struct svb_svd *s, unsigned i)
{
	unsigned char st[64];
	ssize_t n = svb_read_file(status_path(s, i), st, sizeof(st));
	uint64_t pid = 0;

	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return (pid_t)n;
	if (s->kind == SVB_SVD_S6) {
		if (n < 35)
			return 0;
		for (int b = 24; b < 32; b++)
			pid = pid << 8 | st[b];
		return pid && (st[34] & 0x08) ? (pid_t)pid : 0;
	}
	if (n < 20)
		return 0;
	pid = (uint64_t)st[12] | (uint64_t)st[13] << 8 | (uint64_t)st[14] << 16 |
	      (uint64_t)st[15] << 24;
	return pid && st[19] == 1 ? (pid_t)pid : 0;
}

int svb_svd_ready_count(struct svb_svd *s)
{
	/* Services come up in any order, but all-ready needs only the first
	 * one not seen ready yet: a poll reads from there and stops at the
	 * first not ready, so it costs one read while the fleet starts (the
	 * poller takes no CPU from the supervisors). Both scanners start
	 * services in readdir order, which on a tmpfs is newest first: the
	 * walk goes from the last service down. */
	while (s->nready < s->n) {
		pid_t p = svb_svd_ready_pid(s, s->n - 1 - s->nready);

		if (p <= 0)
			return p < 0 ? (int)p : (int)s->nready;
		s->nready++;
	}
	return (int)s->nready;
}

/* runit: ask every runsv to take its service down and exit ("d" then "x"),
 * through its control fifo, as `sv down` and `sv exit` do. */
static void runit_down_all(const struct svb_svd *s)
{
	char path[PATH_MAX];

	for (unsigned i = 0; i < s->n; i++) {
		int fd;

		if (svb_path(path, sizeof(path), "%s/a%04u/supervise/control", s->scan, i) < 0)
			continue;
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		(void)!write(fd, "dx", 2);
		close(fd);
	}
}

static int wait_empty(const struct svb_svd *s, int64_t deadline)
{
	int r;

	while ((r = svb_cg_populated(s->cg)) == 1) {
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		if (*s->env->stop)
			return -EINTR;
		usleep(1000);
	}
	return r;
}

int svb_svd_stop(struct svb_svd *s, int64_t timeout_ns, int64_t *ret_ns, char *why, size_t whylen)
{
	int64_t t0 = bench_now_ns(), deadline = t0 + timeout_ns;
	int r, left = 0, st;

	why[0] = 0;
	if (s->pid > 0) {
		if (s->kind == SVB_SVD_RUNIT)
			runit_down_all(s);
		kill(s->pid, s->kind == SVB_SVD_S6 ? SIGTERM : SIGHUP);
		st = svb_wait_exit(s->pid, timeout_ns);
		if (st < 0)
			snprintf(why, whylen, "%s did not exit: %s", s->kind == SVB_SVD_S6 ?
				 "s6-svscan" : "runsvdir", strerror(-st));
		s->pid = 0;
	}
	r = wait_empty(s, deadline);
	*ret_ns = bench_now_ns() - t0;
	if (r != 0) {
		pid_t pids[8];

		left = r == 1 || r == -ETIMEDOUT ? svb_cg_pids(s->cg, pids, 8) : 0;
		if (!why[0])
			snprintf(why, whylen, "%d processes left in %s after %.1f s", left, s->cg,
				 (double)timeout_ns * 1e-9);
		svb_cg_kill(s->cg, 10 * SVB_SEC);
	}
	r = svb_cg_remove(s->cg);
	if (r < 0 && !why[0])
		snprintf(why, whylen, "cannot remove %s: %s", s->cg, strerror(-r));
	r = svb_rm_rf(s->scan);
	if (r < 0 && !why[0])
		snprintf(why, whylen, "cannot remove %s: %s", s->scan, strerror(-r));
	if (!why[0] && (access(s->scan, F_OK) == 0 || access(s->cg, F_OK) == 0))
		snprintf(why, whylen, "%s or %s still there", s->scan, s->cg);
	free(s->paths);
	s->paths = NULL;
	return why[0] ? -EBUSY : 0;
}

int64_t svb_svd_cpu_ns(const struct svb_svd *s, unsigned *ret_nproc)
{
	const char *scanner = s->kind == SVB_SVD_S6 ? "s6-svscan" : "runsvdir";
	const char *sup = s->kind == SVB_SVD_S6 ? "s6-supervise" : "runsv";
	pid_t pids[4096];
	int n = svb_cg_pids(s->cg, pids, 4096);
	int64_t sum = 0;
	unsigned k = 0;

	if (n < 0)
		return n;
	for (int i = 0; i < n && i < 4096; i++) {
		char comm[32];
		int64_t c;

		if (svb_pid_comm(pids[i], comm, sizeof(comm)) < 0 ||
		    (strcmp(comm, scanner) && strcmp(comm, sup)))
			continue;
		c = bench_pid_cpu_ns(pids[i]);
		if (c < 0)
			continue;
		sum += c;
		k++;
	}
	*ret_nproc = k;
	return sum;
}

void svb_svd_abandon(struct svb_svd *s)
{
	if (s->proc.gate >= 0)
		svb_spawn_cancel(&s->proc);
	if (s->pid > 0) {
		svb_cg_kill(s->cg, 10 * SVB_SEC);
		svb_wait_exit(s->pid, 5 * SVB_SEC);
		s->pid = 0;
	} else {
		svb_cg_kill(s->cg, 10 * SVB_SEC);
	}
	svb_cg_remove(s->cg);
	svb_rm_rf(s->scan);
	free(s->paths);
	s->paths = NULL;
}
