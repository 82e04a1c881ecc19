/* SPDX-License-Identifier: MIT */
/* Shared helpers of the benchmarks: clocks, pinning, statistics, reporting. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Nanoseconds, CLOCK_MONOTONIC. */
int64_t bench_now_ns(void);

/* TSC ticks (serialised read) and their conversion, calibrated once. */
uint64_t bench_tsc(void);
double   bench_tsc_per_ns(void);

/* Pin the calling process to one CPU (modulo the CPUs online). */
void bench_pin(int cpu);
int  bench_ncpus(void);

/* Shared anonymous mapping usable across fork. */
void *bench_shared(size_t len);
void  bench_unshare(void *p, size_t len);

/* Fork a child pinned to cpu that runs fn(arg) and _exits with its return. */
pid_t bench_fork(int cpu, int (*fn)(void *), void *arg);
/* Wait for a child; returns its exit status or -1 (and prints why). */
int bench_wait(pid_t pid);

/* Percentile of n samples (sorts in place). q in [0,1]. */
uint64_t bench_pct(uint64_t *v, size_t n, double q);
/* Median of n doubles (sorts in place). */
double bench_median(double *v, size_t n);

/* Repetitions to run: env BENCH_REPS, default def. */
int bench_reps(int def);

/* One line describing the machine (CPU model, cores, kernel). */
void bench_machine(char *buf, size_t len);

/* CPU time of every thread of pid so far (ns, from schedstat), or -errno. */
int64_t bench_pid_cpu_ns(pid_t pid);

/* Print the last 2 KiB of a log file to stderr, between markers. */
void bench_log_tail(const char *path);

/* Print "  name  value  target  ok/MISS". Returns 1 if the target is met. */
int bench_ratio(const char *name, double ratio, const char *op, double target);

#endif
