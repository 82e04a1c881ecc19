/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the supervision benchmark (supervise_bench.c): the run's
 * environment (its cgroup, temp dir, tmpfs, binaries), cgroups it creates
 * and removes, processes it spawns into them and waits for by pid, CPU
 * counters, small file helpers. Nothing here logs; callers say what failed.
 */
#ifndef SVB_UTIL_H
#define SVB_UTIL_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SVB_SEC ((int64_t)1000000000)
#define SVB_MS  ((int64_t)1000000)

/* What every contender of one benchmark run shares. */
struct svb_env {
	char mount[256];            /* the cgroup2 mount */
	char top_rel[64];           /* svbench-PID, below the mount */
	char top[512];              /* mount/top_rel: every cgroup of the run lives below */
	char dir[256];              /* private temp dir: configs, sockets, logs */
	char svc[300];              /* a tmpfs mounted at dir/svc: service directories */
	char agent[PATH_MAX];       /* the trivial agent */
	char tierd[PATH_MAX];
	volatile sig_atomic_t *stop; /* set by a signal: every wait gives up with -EINTR */
};

/* ---- cgroups ----------------------------------------------------------- */

/* The cgroup2 mount point from /proc/self/mountinfo. */
int svb_cg_mount(char *buf, size_t len);
/* 1 when a process is in dir or below, 0 when not, -errno. */
int svb_cg_populated(const char *dir);
/* Kill everything in dir and below (cgroup.kill), wait until it is empty. */
int svb_cg_kill(const char *dir, int64_t timeout_ns);
/* Remove dir and every cgroup below it (they must be empty). */
int svb_cg_remove(const char *dir);
/* usage_usec of dir/cpu.stat, in ns; -errno. */
int64_t svb_cg_usage_ns(const char *dir);
/* Is pid in the cgroup dir or below (dir relative to the mount)? */
int svb_pid_in_cg(pid_t pid, const char *rel);

/* ---- processes --------------------------------------------------------- */

/*
 * Fork a child that gets ready to run argv (argv[0] looked up in PATH) and
 * parks before exec, so that what a benchmark times starts at
 * svb_spawn_go(): a new session, stdin from /dev/null, stdout and stderr
 * appended to log, the cgroup cg joined when not NULL. The environment is
 * ours without SVB_NOTIFY_FD and NOTIFY_SOCKET, plus env_add
 * (NULL-terminated, or NULL). 0 once parked, or -errno.
 */
struct svb_proc {
	pid_t pid;
	int   gate;   /* a byte here lets it exec */
	int   errp;   /* exec's error, or end of file once it went through */
};
int svb_spawn_park(struct svb_proc *p, char *const argv[], char *const env_add[], const char *cg,
		   const char *log);
/* Let it exec: 0 once it did, or -errno (exec's error). */
int svb_spawn_go(struct svb_proc *p);
/* A parked child that will not run: it exits, and is reaped. */
void svb_spawn_cancel(struct svb_proc *p);
/* Wait for our child pid to exit: its wait status, -ETIMEDOUT, -errno. */
int svb_wait_exit(pid_t pid, int64_t timeout_ns);
/* Alive and not a zombie? */
int svb_pid_alive(pid_t pid);
/* The command name (comm) of pid into buf; -errno. */
int svb_pid_comm(pid_t pid, char *buf, size_t len);
/* Pids in dir/cgroup.procs: how many (up to max stored); -errno. */
int svb_cg_pids(const char *dir, pid_t *pids, size_t max);
/* The same for dir and every cgroup below it. */
int svb_cg_tree_pids(const char *dir, pid_t *pids, size_t max);

/* ---- files --------------------------------------------------------------- */

/* snprintf for paths: 0, or -ENAMETOOLONG when it did not fit. */
int svb_path(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Read at most len bytes of path: bytes read or -errno. */
ssize_t svb_read_file(const char *path, void *buf, size_t len);
int svb_write_file(const char *path, const char *s);
/* rm -rf path (does not cross into other file systems). */
int svb_rm_rf(const char *path);
/* Sleep, in ns; returns early (-EINTR) when *stop is set. */
int svb_sleep(const struct svb_env *env, int64_t ns);

#endif
