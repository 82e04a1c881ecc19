/* SPDX-License-Identifier: MIT */
/*
 * cg_stat — reading what a cgroup reports, and watching it change.
 *
 * The parsers are pure functions on a buffer (not necessarily
 * NUL-terminated): they ignore keys they do not know, leave fields whose key
 * is absent at zero, and return -EBADMSG only for a known key whose value is
 * not a number. The readers open the file relative to a cgroup dir fd and
 * parse it; their out-parameter is untouched on failure.
 *
 * Watching: cgroup.events and memory.events raise POLLPRI (EPOLLPRI) when
 * they change. sup_cg_watch_open() returns an fd that an event loop polls
 * for POLLPRI; after every wake-up the fd must be read again from offset 0
 * (sup_cg_watch_read) — the read is what re-arms the notification.
 */
#ifndef SUP_CG_STAT_H
#define SUP_CG_STAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The keyword "max" in files that may hold it (pids.max, memory.max ...). */
#define SUP_CG_MAX UINT64_MAX

struct sup_cg_cpu_stat {
	uint64_t usage_usec, user_usec, system_usec;
	uint64_t nr_periods, nr_throttled, throttled_usec; /* cpu controller only */
};

struct sup_cg_mem_events {
	uint64_t low, high, max, oom, oom_kill, oom_group_kill;
};

struct sup_cg_events {
	bool populated;
	bool frozen;
};

struct sup_cg_psi_line {
	double   avg10, avg60, avg300; /* percent */
	uint64_t total;                /* µs stalled since creation */
};
struct sup_cg_psi {
	struct sup_cg_psi_line some, full;
	bool has_full;  /* cpu.pressure lacks "full" on kernels before 5.13 */
};
enum sup_cg_psi_res { SUP_CG_PSI_CPU, SUP_CG_PSI_MEMORY, SUP_CG_PSI_IO };

#define SUP_CG_IO_DEV_MAX 16
struct sup_cg_io_dev {
	uint32_t major, minor;
	uint64_t rbytes, wbytes, rios, wios, dbytes, dios;
};
struct sup_cg_io_stat {
	unsigned ndev;                 /* devices stored in dev[] */
	unsigned ndev_seen;            /* devices in the file; > ndev if truncated */
	struct sup_cg_io_dev total;    /* sum over every device seen (major/minor 0) */
	struct sup_cg_io_dev dev[SUP_CG_IO_DEV_MAX];
};

/* Line iterator (the parsers' and cg_proc's) over a buffer that need not
 * be NUL-terminated:
 * struct sup_lines it = { buf, buf + len }; while (sup_next_line(&it, &s, &n)) */
struct sup_lines {
	const char *p, *end;
};

/* The next line (without its newline) as s[0..n); false at the end. */
bool sup_next_line(struct sup_lines *it, const char **ret_s, size_t *ret_n);

int sup_cg_parse_cpu_stat(const char *buf, size_t len, struct sup_cg_cpu_stat *ret);
int sup_cg_parse_mem_events(const char *buf, size_t len, struct sup_cg_mem_events *ret);
int sup_cg_parse_events(const char *buf, size_t len, struct sup_cg_events *ret);
int sup_cg_parse_psi(const char *buf, size_t len, struct sup_cg_psi *ret);
int sup_cg_parse_io_stat(const char *buf, size_t len, struct sup_cg_io_stat *ret);
/* A single number, or "max" (SUP_CG_MAX): memory.current, pids.current ... */
int sup_cg_parse_u64(const char *buf, size_t len, uint64_t *ret);

int sup_cg_read_cpu_stat(int dirfd, struct sup_cg_cpu_stat *ret);
int sup_cg_read_mem_events(int dirfd, struct sup_cg_mem_events *ret);
int sup_cg_read_events(int dirfd, struct sup_cg_events *ret);
int sup_cg_read_psi(int dirfd, enum sup_cg_psi_res res, struct sup_cg_psi *ret);
int sup_cg_read_io_stat(int dirfd, struct sup_cg_io_stat *ret);
/* Any single-number file: "memory.current", "pids.current", "memory.peak". */
int sup_cg_read_u64(int dirfd, const char *file, uint64_t *ret);

/* Open dirfd/file for watching (O_RDONLY|O_CLOEXEC) and read it once so the
 * first poll reports only a later change. Returns the fd. */
int sup_cg_watch_open(int dirfd, const char *file);
/* Read the watched file again from offset 0 into buf (NUL-terminated);
 * returns the length. */
int sup_cg_watch_read(int fd, char *buf, size_t sz);
/* Block in poll(2) until the file changes: 1 changed, 0 timed out. For tests
 * and tools; the supervisor polls the fd from its io_uring loop instead. */
int sup_cg_watch_wait(int fd, int timeout_ms);

#endif
