/* SPDX-License-Identifier: MIT */
/*
 * fdio — the system calls that a signal can interrupt, retried on EINTR in
 * one place, and the one whole-file reader.
 *
 * Each wrapper returns what the call does on success and -errno on failure,
 * never -EINTR. close(2) is not wrapped: Linux releases the fd even when it
 * reports EINTR, so a retry could close an fd another thread just opened.
 * Not for a vfork/clone child sharing the parent's memory (spawn.c,
 * cg_spawn.c): those keep raw system calls.
 */
#ifndef SUP_FDIO_H
#define SUP_FDIO_H

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

/* Bytes read (0 at end of file) or -errno (-EAGAIN on an empty
 * non-blocking fd). */
ssize_t sup_read(int fd, void *buf, size_t n);
ssize_t sup_pread(int fd, void *buf, size_t n, off_t off);

/* One write(2): bytes written (possibly fewer than n) or -errno. For a
 * pipe and n <= PIPE_BUF it is all or nothing, so a log line stays whole. */
ssize_t sup_write(int fd, const void *buf, size_t n);

/* Write all n bytes, looping over short writes: 0 or -errno (-EAGAIN
 * when a non-blocking fd is full, with *ret_done, if given, saying how
 * much went out; it is set on every return). */
int sup_write_all(int fd, const void *buf, size_t n, size_t *ret_done);

/* send(2) and recv(2), as sup_write and sup_read. */
ssize_t sup_send(int fd, const void *buf, size_t n, int flags);
ssize_t sup_recv(int fd, void *buf, size_t n, int flags);

/* connect(2) of an AF_UNIX socket: 0 or -errno. Retrying is right only
 * there: a Unix socket waits for room in the backlog before it links, so
 * an interrupted connect left nothing half-done (a TCP one goes on). */
int sup_connect_unix(int fd, const struct sockaddr *sa, socklen_t len);

/* The pid reaped (0 with WNOHANG and none ready) or -errno. */
pid_t sup_waitpid(pid_t pid, int *status, int options);
/* 0 or -errno. */
int sup_waitid(idtype_t type, id_t id, siginfo_t *info, int options);

/* Ready fds, 0 on timeout, or -errno. A signal restarts the whole
 * timeout: for waiting on events; a loop towards a deadline recomputes
 * what is left after EINTR itself. */
int sup_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/* ---- whole files ---------------------------------------------------------
 * Read to end of file, not to st_size: /proc, cgroup files and pipes report
 * sizes that are 0 or wrong. */

/* path (relative to dirfd, or AT_FDCWD) into buf, NUL-terminated: its
 * length, or -errno; -ENOBUFS when the file holds more than sz - 1 bytes
 * (exactly sz - 1 is fine), -EINVAL when sz < 2. */
ssize_t sup_read_file_at(int dirfd, const char *path, char *buf, size_t sz);

/* The same from an open fd, from offset 0 with pread (the fd's offset is
 * not used): rereads a cgroup file kept open to be polled. */
ssize_t sup_pread_file(int fd, char *buf, size_t sz);

/* The rest of fd (from its offset; pipes work) into a malloc'd,
 * NUL-terminated buffer: 0 with *ret and *ret_len set, or -errno with
 * both untouched; -EFBIG when it holds more than limit bytes. */
int sup_read_fd_alloc(int fd, size_t limit, char **ret, size_t *ret_len);
/* The same for path (relative to dirfd, or AT_FDCWD). */
int sup_read_file_alloc(int dirfd, const char *path, size_t limit, char **ret,
			size_t *ret_len);

#endif
