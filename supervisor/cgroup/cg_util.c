/* SPDX-License-Identifier: MIT */
/* File IO, kill, freeze and removal on one cgroup2 directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "cg_stat.h"
#include "cg_util.h"

/* A fork bomb can refill a cgroup between two passes of the fallback kill;
 * frozen, it cannot, so a few passes suffice. The bound keeps a kernel bug
 * from turning into an endless loop. */
#define KILL_PASSES_MAX 1000
/* rmdir right after the last task left can still see it on the way out. */
#define RMDIR_BUSY_RETRIES 50
#define RMDIR_BUSY_SLEEP_NS (10 * 1000 * 1000L)

int sup_cg_read_file(int dirfd, const char *file, char *buf, size_t sz)
{
	return (int)sup_read_file_at(dirfd, file, buf, sz);
}

int sup_cg_write_file(int dirfd, const char *file, const char *buf, size_t len)
{
	ssize_t n;
	int fd, err = 0;

	fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Retrying after EINTR is safe: every cgroup value we write is
	 * idempotent (a level, not a delta). */
	n = sup_write(fd, buf, len);
	if (n < 0)
		err = (int)n;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err;
}

int sup_cg_move_pid(int dirfd, pid_t pid)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%d", (int)pid);

	return sup_cg_write_file(dirfd, "cgroup.procs", num, (size_t)n);
}

int sup_cg_for_each_child(int dirfd, int (*fn)(int dirfd, const char *name, void *arg), void *arg)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	/* A private open file description: readdir must not move the offset
	 * of a dir fd that the caller keeps. */
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = fn(dirfd, de->d_name, arg);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

typedef int (*pid_fn)(pid_t pid, void *arg);

/* Stream cgroup.procs (it can hold thousands of pids) calling fn per pid. */
static int for_each_pid(int dirfd, pid_fn fn, void *arg)
{
	char buf[4096];
	size_t have = 0;
	int fd, r = 0;

	fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = sup_read(fd, buf + have, sizeof(buf) - have);
		char *p, *nl, *end;

		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		end = buf + have;
		for (p = buf; (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
			long v = 0;

			for (char *q = p; q < nl; q++)
				v = v * 10 + (*q - '0');
			if (v > 0 && (r = fn((pid_t)v, arg)) < 0)
				goto close_fd;
		}
		have = (size_t)(end - p);
		memmove(buf, p, have);
	}
close_fd:
	close(fd);
	return r;
}

struct pid_list {
	pid_t *pids;
	size_t max, n;
};

static int collect_pid(pid_t pid, void *arg)
{
	struct pid_list *l = arg;

	if (l->n < l->max)
		l->pids[l->n] = pid;
	l->n++;
	return 0;
}

int sup_cg_list_pids(int dirfd, pid_t *pids, size_t max)
{
	struct pid_list l = { pids, max, 0 };
	int r = for_each_pid(dirfd, collect_pid, &l);

	return r < 0 ? r : (int)l.n;
}

struct kill_pass {
	pid_t self;
	bool  kill;      /* false: only look for self */
	bool  self_seen;
	int   found;
};

static int kill_one(pid_t pid, void *arg)
{
	struct kill_pass *k = arg;

	if (pid == k->self) {
		k->self_seen = true;
		return 0;
	}
	k->found++;
	if (k->kill && kill(pid, SIGKILL) < 0 && errno != ESRCH)
		return -errno;
	return 0;
}

static int kill_pass_dir(int dirfd, struct kill_pass *k);

static int kill_pass_child(int parent, const char *name, void *arg)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = kill_pass_dir(fd, arg);
	close(fd);
	return r;
}

static int kill_pass_dir(int dirfd, struct kill_pass *k)
{
	int r = for_each_pid(dirfd, kill_one, k);

	if (r < 0)
		return r;
	return sup_cg_for_each_child(dirfd, kill_pass_child, k);
}

int sup_cg_kill_procs(int dirfd)
{
	struct kill_pass k = { .self = getpid() };
	bool froze = false;
	int r;

	/* Never freeze a subtree that holds the caller: it would stop itself. */
	r = kill_pass_dir(dirfd, &k);
	if (r < 0)
		return r;
	if (!k.self_seen && sup_cg_freeze(dirfd, true) == 0)
		froze = true;
	k.kill = true;
	for (int pass = 0; pass < KILL_PASSES_MAX; pass++) {
		k.found = 0;
		r = kill_pass_dir(dirfd, &k);
		if (r < 0 || k.found == 0)
			break;
	}
	if (r == 0 && k.found)
		r = -EAGAIN;
	/* SIGKILL reaches frozen tasks; thawing lets the rest of their exit
	 * run and leaves the cgroup usable for the next incarnation. */
	if (froze)
		sup_cg_freeze(dirfd, false);
	return r;
}

int sup_cg_kill(int dirfd)
{
	int r = sup_cg_write_file(dirfd, "cgroup.kill", "1", 1);

	if (r == -ENOENT)
		return sup_cg_kill_procs(dirfd);
	return r;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cgroup.events until want(ev) holds. */
static int wait_events(int dirfd, bool want_frozen, bool value, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char buf[256];
	int fd, r;

	fd = openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		struct sup_cg_events ev;
		int left = -1;

		/* Reading re-arms POLLPRI; check after the read so a change
		 * between read and poll is never lost. */
		r = sup_cg_watch_read(fd, buf, sizeof(buf));
		if (r < 0)
			break;
		r = sup_cg_parse_events(buf, (size_t)r, &ev);
		if (r < 0)
			break;
		if ((want_frozen ? ev.frozen : ev.populated) == value) {
			r = 0;
			break;
		}
		if (deadline >= 0) {
			long long d = deadline - now_ms();

			if (d <= 0) {
				r = -ETIMEDOUT;
				break;
			}
			left = (int)d;
		}
		r = sup_cg_watch_wait(fd, left);
		if (r < 0)
			break;
	}
	close(fd);
	return r;
}

int sup_cg_wait_empty(int dirfd, int timeout_ms)
{
	return wait_events(dirfd, false, false, timeout_ms);
}

int sup_cg_freeze(int dirfd, bool frozen)
{
	return sup_cg_write_file(dirfd, "cgroup.freeze", frozen ? "1" : "0", 1);
}

int sup_cg_wait_frozen(int dirfd, bool frozen, int timeout_ms)
{
	return wait_events(dirfd, true, frozen, timeout_ms);
}

static int rmdir_retry(int parent, const char *name)
{
	for (int i = 0;; i++) {
		struct timespec ts = { 0, RMDIR_BUSY_SLEEP_NS };

		if (unlinkat(parent, name, AT_REMOVEDIR) == 0)
			return 0;
		if (errno != EBUSY || i == RMDIR_BUSY_RETRIES)
			return errno == ENOENT ? 0 : -errno;
		nanosleep(&ts, NULL);
	}
}

static int rmdir_below(int dirfd);

static int rmdir_child(int parent, const char *name, void *arg)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = rmdir_below(fd);
	close(fd);
	return r < 0 ? r : rmdir_retry(parent, name);
}

static int rmdir_below(int dirfd)
{
	return sup_cg_for_each_child(dirfd, rmdir_child, NULL);
}

int sup_cg_remove_tree(int parent_fd, const char *name, int timeout_ms)
{
	int fd, r;

	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = sup_cg_kill(fd);
	if (r == 0)
		r = sup_cg_wait_empty(fd, timeout_ms);
	if (r == 0)
		r = rmdir_below(fd);
	close(fd);
	return r < 0 ? r : rmdir_retry(parent_fd, name);
}

bool sup_cg_path_within(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	return p[0] && !strncmp(p, dir, n) && (p[n] == '\0' || p[n] == '/');
}

static const char *hint(const char *file, int err)
{
	bool procs = file && !strcmp(file, "cgroup.procs");
	bool subtree = file && !strcmp(file, "cgroup.subtree_control");

	switch (err) {
	case EBUSY:
		if (subtree)
			return "the cgroup holds processes of its own (no-internal-process rule)";
		if (procs)
			return "the target enables controllers for children (no-internal-process rule)";
		return "the cgroup is still populated or has children";
	case EOPNOTSUPP:
		return "controller not enabled for this cgroup; knob skipped";
	case ENOENT:
		if (file && strchr(file, '.') && !procs && !subtree)
			return "the kernel offers no such file here (controller or feature missing)";
		return NULL;
	case EACCES:
	case EPERM:
		return "needs root or a cgroup delegated to this user";
	case ENODEV:
		return "no such block device";
	case EINVAL:
		return file ? "the kernel rejected the value" : NULL;
	case ETIMEDOUT:
		return "processes did not leave in time";
	default:
		return NULL;
	}
}

char *sup_cg_errmsg(char *buf, size_t sz, const char *where, const char *file, int err)
{
	const char *h;

	if (err < 0)
		err = -err;
	h = hint(file, err);
	snprintf(buf, sz, "%s%s%s%s%s%s%s%s", where ? where : "", where ? ": " : "",
		 file ? file : "", file ? ": " : "", strerror(err), h ? " (" : "", h ? h : "",
		 h ? ")" : "");
	return buf;
}
