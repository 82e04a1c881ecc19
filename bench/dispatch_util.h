/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the dispatch benchmark (dispatch_bench.c): what a contender is
 * asked to run (a load), what it reports (a result), processes that run
 * loads on command, spawning and reaping by pid, and the CPU counters the
 * benchmark reads (per process, per cgroup, steal).
 */
#ifndef DISPATCH_UTIL_H
#define DISPATCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A load: n tasks, at most window in flight; with gap_ns, each result is
 * followed by that much idle time before the next submission (used with
 * window 1 to make every task a cold wake). */
struct disp_load {
	uint64_t n;
	unsigned window;
	int64_t  gap_ns;
	int      tier;          /* tierd: the tier to target */
	char     type[32];      /* tierd: the task type ("noop", "burn") */
	char     payload[64 + 1]; /* "" = DISP_PAYLOAD bytes of 'x' */
};

/* What a contender measured. Latencies are submit-to-result on the
 * submitter's clock (bench-dispatch: queued-to-accepted on tierd's). CPU
 * per task < 0 means not measured or not applicable. */
struct disp_result {
	uint64_t tasks, failed;
	double   seconds, tasks_per_s;
	double   p50_us, p90_us, p99_us;
	double   disp_cpu_ns;    /* the dispatcher (tierd, broker, driver) */
	double   client_cpu_ns;  /* a separate client process, if any */
};

/* Percentiles of n latency samples (ns) into r (sorts v). */
void disp_lat_fill(struct disp_result *r, int64_t *v, size_t n);

/* ---- a process that runs loads on command --------------------------------
 * Clients and drivers keep state (connections, workers) across the loads of
 * one repetition: setup runs once in the child, then run per load. The child
 * dies with the benchmark (PR_SET_PDEATHSIG). */
struct disp_proc_ops {
	void *(*setup)(void *arg);   /* NULL: failed (the child says why) */
	int   (*run)(void *state, const struct disp_load *ld, struct disp_result *ret);
	void  (*teardown)(void *state);
};

struct disp_proc {
	pid_t pid;
	int   cmd_fd, ack_fd;
	void *slot;
};

int  disp_proc_start(struct disp_proc *p, const struct disp_proc_ops *ops, void *arg);
int  disp_proc_run(struct disp_proc *p, const struct disp_load *ld, struct disp_result *ret);
void disp_proc_stop(struct disp_proc *p);

/* ---- processes ----------------------------------------------------------- */

/* Fork; the child dies with us and returns 0 (caller runs and _exits). */
pid_t disp_fork(void);
/* Spawn argv[0] with stdin/stdout from in_fd/out_fd (-1: /dev/null); the
 * child dies with us. -errno on failure. */
pid_t disp_spawn(char *const argv[], int in_fd, int out_fd);
/* SIGTERM, wait up to timeout_ns, then SIGKILL; returns the wait status or
 * -errno. Only ever pids we started. */
int disp_reap(pid_t pid, int64_t timeout_ns);
/* Wait for a pid to exit on its own, up to timeout_ns: status or -ETIMEDOUT. */
int disp_wait(pid_t pid, int64_t timeout_ns);

/* ---- CPU counters ---------------------------------------------------------- */

/* CPU time of the calling process, ns. */
int64_t disp_self_cpu_ns(void);
/* usage_usec of DIR/cpu.stat; -errno. */
int64_t disp_cg_usage_usec(const char *dir);
/* Steal time of all CPUs (/proc/stat), ns. */
int64_t disp_steal_ns(void);

/* ---- small things ---------------------------------------------------------- */

void    disp_sleep_ns(int64_t ns);
int     disp_write_all(int fd, const void *b, size_t n);
ssize_t disp_read(int fd, void *b, size_t n);
/* Read with a timeout: bytes, 0 at EOF, -ETIMEDOUT or -errno. */
ssize_t disp_read_timeout(int fd, void *b, size_t n, int64_t timeout_ns);
/* The payload a load asks for (64 'x' when empty), in buf; returns length. */
size_t  disp_payload(const struct disp_load *ld, char *buf, size_t cap);

#endif
