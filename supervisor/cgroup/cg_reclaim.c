/* SPDX-License-Identifier: MIT */
/* Stale-tree reclaim: describe, kill, remove. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg_reclaim.h"
#include "cg_util.h"

#define REPORT_MAX  8192
#define REPORT_PIDS 8        /* pids listed per stale cgroup; the rest counted */
#define ROOT_PASSES_MAX 1000 /* 1 ms apart: a SIGKILLed task leaves quickly */
#define SUPERVISOR_DIR "supervisor"

static int pathf(char *out, size_t sz, const char *a, const char *sep, const char *b)
{
	int n = snprintf(out, sz, "%s%s%s", a, sep, b);

	return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

struct report {
	char    *buf;
	size_t   len;
	unsigned cgroups, procs;
	const char *self;          /* caller's cgroup, never killed */
	int      timeout_ms;
	int      err;
};

static void report_add(struct report *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_add(struct report *rp, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (rp->len >= REPORT_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(rp->buf + rp->len, REPORT_MAX - rp->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		rp->len = rp->len + (size_t)n >= REPORT_MAX ? REPORT_MAX - 1 : rp->len + (size_t)n;
}

struct walk {
	struct report *rp;
	const char    *rel;       /* path of the parent, relative to the root */
	const char    *abs;       /* absolute path of the parent */
};

static int describe_child(int parent, const char *name, void *arg);

/* One report line for dirfd ("tier2/agent-a: 2 processes (12 34)"), then
 * its children. */
static int describe(int dirfd, const char *rel, const char *abs, struct report *rp)
{
	pid_t pids[REPORT_PIDS + 1];
	int total = sup_cg_list_pids(dirfd, pids, REPORT_PIDS + 1), shown = 0, n;
	struct walk w = { rp, rel, abs };

	/* The caller has already joined supervisor/: it is not a leftover. */
	n = total - (total > 0 && !strcmp(rp->self, abs) ? 1 : 0);
	rp->cgroups++;
	if (n <= 0) {
		report_add(rp, "  %s: no process\n", rel);
	} else {
		rp->procs += (unsigned)n;
		report_add(rp, "  %s: %d process%s (", rel, n, n == 1 ? "" : "es");
		for (int i = 0; i < total && i < REPORT_PIDS + 1 && shown < REPORT_PIDS; i++)
			if (pids[i] != getpid())
				report_add(rp, "%s%d", shown++ ? " " : "", (int)pids[i]);
		report_add(rp, "%s)\n", n > shown ? " ..." : "");
	}
	return sup_cg_for_each_child(dirfd, describe_child, &w);
}

static int describe_child(int parent, const char *name, void *arg)
{
	struct walk *w = arg;
	char rel[PATH_MAX], abs[PATH_MAX];
	int fd, r;

	if (pathf(rel, sizeof(rel), w->rel, w->rel[0] ? "/" : "", name) < 0 ||
	    pathf(abs, sizeof(abs), w->abs, "/", name) < 0)
		return 0;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	r = describe(fd, rel, abs, w->rp);
	close(fd);
	return r;
}

static int reclaim_child(int parent, const char *name, void *arg);

/* Remove a stale cgroup; the one holding the caller is emptied of every
 * other process instead (cgroup.kill would take the caller along). */
static int reclaim_dir(int parent, const char *name, const char *abs, struct report *rp)
{
	struct walk w = { rp, "", abs };
	int fd, r;

	if (!sup_cg_path_within(rp->self, abs)) {
		r = sup_cg_remove_tree(parent, name, rp->timeout_ms);
		if (r < 0 && !rp->err)
			rp->err = r;
		return 0;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	r = sup_cg_kill_procs(fd);
	if (r < 0 && !rp->err)
		rp->err = r;
	sup_cg_for_each_child(fd, reclaim_child, &w);
	close(fd);
	return 0;
}

static int reclaim_child(int parent, const char *name, void *arg)
{
	struct walk *w = arg;
	char abs[PATH_MAX];

	if (pathf(abs, sizeof(abs), w->abs, "/", name) < 0)
		return 0;
	return reclaim_dir(parent, name, abs, w->rp);
}

static int has_child(int parent, const char *name, void *arg)
{
	return -EEXIST;
}

int sup_cg_root_is_stale(int root_fd)
{
	pid_t pids[2];
	int n = sup_cg_list_pids(root_fd, pids, 2);

	if (n < 0)
		return n;
	if (n > 1 || (n == 1 && pids[0] != getpid()))
		return 1;
	n = sup_cg_for_each_child(root_fd, has_child, NULL);
	return n == -EEXIST ? 1 : n;
}

/* Processes directly in the root. A delegated root is the service's own
 * cgroup: what runs there besides us belongs to the service, so it joins
 * us in supervisor/. Anywhere else it is a leftover. */
static void clear_root_procs(const struct sup_cg_reclaim_args *a, struct report *rp)
{
	pid_t pids[64];

	for (int pass = 0; pass < ROOT_PASSES_MAX; pass++) {
		int others = 0, n = sup_cg_list_pids(a->root_fd, pids, 64);

		for (int i = 0; i < n && i < 64; i++) {
			if (pids[i] == getpid())
				continue;
			others++;
			if (a->delegated) {
				sup_cg_move_pid(a->sup_fd, pids[i]);
				if (!pass)
					report_add(rp, "  moved pid %d of the service into %s/\n",
						   (int)pids[i], SUPERVISOR_DIR);
			} else {
				kill(pids[i], SIGKILL);
				if (!pass) {
					rp->procs++;
					report_add(rp, "  killed pid %d found directly in the root\n",
						   (int)pids[i]);
				}
			}
		}
		if (!others)
			return;
		usleep(1000);
	}
	if (!rp->err)
		rp->err = -EAGAIN;
}

int sup_cg_reclaim(const struct sup_cg_reclaim_args *a, char **ret_report)
{
	struct report rp = { .self = a->self ? a->self : "", .timeout_ms = a->timeout_ms };
	struct walk w = { &rp, "", a->root };

	rp.buf = malloc(REPORT_MAX);
	if (!rp.buf)
		return -ENOMEM;
	rp.buf[0] = '\0';
	report_add(&rp, "stale tree under %s:\n", a->root);
	sup_cg_for_each_child(a->root_fd, describe_child, &w);
	clear_root_procs(a, &rp);
	sup_cg_for_each_child(a->root_fd, reclaim_child, &w);
	report_add(&rp, "reclaimed: %u cgroup%s, %u process%s killed%s", rp.cgroups,
		   rp.cgroups == 1 ? "" : "s", rp.procs, rp.procs == 1 ? "" : "es",
		   rp.err ? " (some could not be removed)" : "");
	*ret_report = rp.buf;
	return rp.err;
}
