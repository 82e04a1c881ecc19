/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "svb_util.h"

extern char **environ;

/* ---- files --------------------------------------------------------------- */

int svb_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

ssize_t svb_read_file(const char *path, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -errno;
	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return (ssize_t)got;
}

int svb_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t n = strlen(s);
	ssize_t w;

	if (fd < 0)
		return -errno;
	do
		w = write(fd, s, n);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	return (size_t)w == n ? 0 : -EIO;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int svb_rm_rf(const char *path)
{
	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
}

int svb_sleep(const struct svb_env *env, int64_t ns)
{
	int64_t end = bench_now_ns() + ns;

	while (!*env->stop) {
		int64_t left = end - bench_now_ns();
		struct timespec ts;

		if (left <= 0)
			return 0;
		/* Slices of at most 50 ms so a signal is noticed soon. */
		if (left > 50 * SVB_MS)
			left = 50 * SVB_MS;
		ts.tv_sec = left / SVB_SEC;
		ts.tv_nsec = left % SVB_SEC;
		nanosleep(&ts, NULL);
	}
	return -EINTR;
}

/* ---- cgroups ------------------------------------------------------------- */

int svb_cg_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mnt[512], *sep = strstr(line, " - ");

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1) {
			snprintf(buf, len, "%s", mnt);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int svb_cg_populated(const char *dir)
{
	char path[PATH_MAX], buf[256], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	n = svb_read_file(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	p = strstr(buf, "populated ");
	return p ? p[10] == '1' : -EIO;
}

int svb_cg_kill(const char *dir, int64_t timeout_ns)
{
	int64_t end = bench_now_ns() + timeout_ns;
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	r = svb_write_file(path, "1");
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	while ((r = svb_cg_populated(dir)) == 1) {
		struct timespec ts = { 0, 2 * SVB_MS };

		if (bench_now_ns() > end)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
	return r < 0 && r != -ENOENT ? r : 0;
}

static int rmdir_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	/* cgroupfs: only directories can be removed; their files go with them. */
	if (flag == FTW_DP && rmdir(path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int svb_cg_remove(const char *dir)
{
	if (access(dir, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(dir, rmdir_one, 64, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

int64_t svb_cg_usage_ns(const char *dir)
{
	char path[PATH_MAX], buf[1024], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/cpu.stat", dir);
	n = svb_read_file(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return n;
	buf[n] = 0;
	p = strstr(buf, "usage_usec ");
	return p ? strtoll(p + 11, NULL, 10) * 1000 : -EIO;
}

int svb_pid_in_cg(pid_t pid, const char *rel)
{
	char path[64], buf[1024], *p;
	size_t rl = strlen(rel);
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	n = svb_read_file(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	/* The unified hierarchy's line: "0::/PATH". */
	p = strstr(buf, "0::/");
	if (!p || (p != buf && p[-1] != '\n'))
		return 0;
	p += 4;
	return !strncmp(p, rel, rl) && (p[rl] == '/' || p[rl] == '\n' || p[rl] == 0);
}

int svb_cg_pids(const char *dir, pid_t *pids, size_t max)
{
	char path[PATH_MAX];
	FILE *f;
	int n = 0, v;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%d", &v) == 1) {
		if ((size_t)n < max)
			pids[n] = v;
		n++;
	}
	fclose(f);
	return n;
}

int svb_cg_tree_pids(const char *dir, pid_t *pids, size_t max)
{
	char sub[PATH_MAX];
	struct dirent *e;
	int n = svb_cg_pids(dir, pids, max);
	DIR *d;

	if (n < 0)
		return n;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		int r;

		if (e->d_type != DT_DIR || e->d_name[0] == '.' ||
		    svb_path(sub, sizeof(sub), "%s/%s", dir, e->d_name) < 0)
			continue;
		r = svb_cg_tree_pids(sub, pids + ((size_t)n < max ? n : (int)max),
				     (size_t)n < max ? max - (size_t)n : 0);
		if (r > 0)
			n += r;
	}
	closedir(d);
	return n;
}

/* ---- processes ----------------------------------------------------------- */

/* Our environment without what would confuse a child, plus add. */
static char **child_env(char *const add[])
{
	size_t n = 0, na = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	while (add && add[na])
		na++;
	env = calloc(n + na + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "SVB_NOTIFY_FD=", 14) && strncmp(environ[i], "NOTIFY_SOCKET=", 14))
			env[k++] = environ[i];
	for (size_t i = 0; i < na; i++)
		env[k++] = add[i];
	return env;
}

static int read_int(int fd, int *v)
{
	ssize_t r;

	do
		r = read(fd, v, sizeof(*v));
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)sizeof(*v) ? 1 : r == 0 ? 0 : -EIO;
}

int svb_spawn_park(struct svb_proc *p, char *const argv[], char *const env_add[], const char *cg,
		   const char *log)
{
	char **env = child_env(env_add), procs[PATH_MAX];
	int errp[2], gate[2], err = 0, r;

	p->pid = 0;
	p->gate = p->errp = -1;
	if (!env)
		return -ENOMEM;
	if (cg && svb_path(procs, sizeof(procs), "%s/cgroup.procs", cg) < 0) {
		free(env);
		return -ENAMETOOLONG;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		free(env);
		return -errno;
	}
	if (pipe2(gate, O_CLOEXEC) < 0) {
		err = errno;
		goto close_errp;
	}
	p->pid = fork();
	if (p->pid < 0) {
		err = errno;
		goto close_gate;
	}
	if (p->pid == 0) {
		sigset_t none;
		int null, out;
		char go;

		/* Dispositions of caught signals reset at exec; the mask and
		 * ignored ones do not. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		setsid();
		if (cg && svb_write_file(procs, "0") < 0)
			err = errno ? errno : EIO;
		null = open("/dev/null", O_RDONLY);
		out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (!err && (null < 0 || out < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 ||
			     dup2(out, 2) < 0))
			err = errno;
		/* Parked: 0 says so, then wait for the go. */
		if (!err && write(errp[1], &err, sizeof(err)) == (ssize_t)sizeof(err) &&
		    read(gate[0], &go, 1) == 1)
			execvpe(argv[0], argv, env);
		err = err ? err : errno;
		(void)!write(errp[1], &err, sizeof(err));
		_exit(127);
	}
	free(env);
	close(errp[1]);
	close(gate[0]);
	p->errp = errp[0];
	p->gate = gate[1];
	r = read_int(p->errp, &err);
	if (r == 1 && err == 0)
		return 0;
	svb_spawn_cancel(p);
	return r == 1 ? -err : -EIO;
close_gate:
	close(gate[0]);
	close(gate[1]);
close_errp:
	close(errp[0]);
	close(errp[1]);
	free(env);
	return -err;
}

int svb_spawn_go(struct svb_proc *p)
{
	int err = 0, r;

	if (write(p->gate, "g", 1) != 1) {
		err = errno;
		svb_spawn_cancel(p);
		return -err;
	}
	close(p->gate);
	p->gate = -1;
	/* End of file: exec went through. */
	r = read_int(p->errp, &err);
	close(p->errp);
	p->errp = -1;
	if (r == 0)
		return 0;
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
	return r == 1 ? -err : -EIO;
}

void svb_spawn_cancel(struct svb_proc *p)
{
	/* Closing the gate unparks the child into its error exit. */
	if (p->gate >= 0)
		close(p->gate);
	if (p->errp >= 0)
		close(p->errp);
	if (p->pid > 0)
		waitpid(p->pid, NULL, 0);
	p->gate = p->errp = -1;
	p->pid = 0;
}

int svb_wait_exit(pid_t pid, int64_t timeout_ns)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), st;
	int64_t end = bench_now_ns() + timeout_ns;
	pid_t r;

	if (fd < 0)
		return -errno;
	for (;;) {
		int64_t left = end - bench_now_ns();
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (left <= 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		if (poll(&p, 1, (int)(left / SVB_MS) + 1) > 0)
			break;
	}
	close(fd);
	do
		r = waitpid(pid, &st, 0);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : st;
}

int svb_pid_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = svb_read_file(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

int svb_pid_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	if (!len)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	n = svb_read_file(path, buf, len - 1);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}
