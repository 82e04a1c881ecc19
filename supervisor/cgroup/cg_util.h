/* SPDX-License-Identifier: MIT */
/*
 * cg_util — operations on one cgroup v2 directory, given as a dir fd.
 *
 * Nothing here needs the tier tree: these helpers work on any cgroup2
 * directory opened O_DIRECTORY (the supervisor's tiers and leaves, a stale
 * tree found at start, a test's scratch cgroup). All return >= 0 on
 * success and -errno on failure; none logs. Callers name the failure with
 * sup_cg_errmsg().
 */
#ifndef SUP_CG_UTIL_H
#define SUP_CG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Default bound for "wait until empty" after a kill: a SIGKILLed task that
 * sits in uninterruptible IO can take a while to leave. */
#define SUP_CG_KILL_TIMEOUT_MS_DEFAULT 5000

/* Read a whole cgroup file into buf (NUL-terminated). Returns the length,
 * -ENOBUFS if it does not fit in sz - 1 bytes. */
int sup_cg_read_file(int dirfd, const char *file, char *buf, size_t sz);

/* Write buf to a cgroup file in one write(2): cgroup files act on each
 * write call, so a value must never be split. A short write is -EIO. */
int sup_cg_write_file(int dirfd, const char *file, const char *buf, size_t len);

/* Move a process (all its threads) into the cgroup. pid 0 = the caller. */
int sup_cg_move_pid(int dirfd, pid_t pid);

/* Kill every process in the cgroup and its descendants: cgroup.kill where
 * the kernel has it (5.14+), else sup_cg_kill_procs(). Does not wait. */
int sup_cg_kill(int dirfd);

/* The fallback kill: freeze the subtree so nothing can fork, SIGKILL every
 * pid in every cgroup.procs below dirfd, repeat until a pass finds no pid,
 * thaw. Processes of the caller's own thread group are never signalled. */
int sup_cg_kill_procs(int dirfd);

/* Wait until cgroup.events says "populated 0" (poll on POLLPRI, no busy
 * loop). -ETIMEDOUT after timeout_ms (< 0: wait forever). */
int sup_cg_wait_empty(int dirfd, int timeout_ms);

/* cgroup.freeze. The kernel freezes asynchronously: use
 * sup_cg_wait_frozen() to know when every task has stopped. */
int sup_cg_freeze(int dirfd, bool frozen);
int sup_cg_wait_frozen(int dirfd, bool frozen, int timeout_ms);

/* Kill, wait for populated 0, then rmdir parent_fd/name and everything
 * below it, bottom-up. -ENOENT if it does not exist. */
int sup_cg_remove_tree(int parent_fd, const char *name, int timeout_ms);

/* Call fn(dirfd, name, arg) for each child cgroup (subdirectory) of dirfd,
 * stopping at the first negative return, which is returned. */
int sup_cg_for_each_child(int dirfd, int (*fn)(int dirfd, const char *name, void *arg), void *arg);

/* Append up to max pids listed in dirfd/cgroup.procs to pids; returns how
 * many were listed in total (may exceed max). */
int sup_cg_list_pids(int dirfd, pid_t *pids, size_t max);

/* p is dir or below it ("/a/b" is within "/a", "/ab" is not). */
bool sup_cg_path_within(const char *p, const char *dir);

/* "where: file: strerror(err)" with a hint for the errnos the cgroup core
 * gives a specific meaning (EBUSY, EOPNOTSUPP, ...). where or file may be
 * NULL. Returns buf. */
char *sup_cg_errmsg(char *buf, size_t sz, const char *where, const char *file, int err);

#endif
