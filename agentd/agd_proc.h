/* SPDX-License-Identifier: MIT */
/*
 * agd_proc — one child of agentd: its own process group, stdin/stdout/stderr
 * on pipes (agentd's ends non-blocking), a pidfd to notice its exit, and
 * PR_SET_PDEATHSIG so it never outlives agentd.
 */
#ifndef AGD_PROC_H
#define AGD_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct agd_proc {
	pid_t pid;      /* also its process group */
	int   pidfd;    /* -1 where the kernel has no pidfd_open */
	int   in;       /* write end of its stdin, -1 once closed */
	int   out;      /* read end of its stdout */
	int   err;      /* read end of its stderr */
};

/* Start path with argv and envp. Returns 0 and fills *ret, or -errno: a
 * failure of the child before exec (execve's own errno included) comes
 * back here, so a missing binary is an error of this call. */
int agd_proc_spawn(const char *path, char *const argv[], char *const envp[],
		   struct agd_proc *ret);

/* Has it exited (a zombie waiting for agd_proc_reap)? For children
 * without a pidfd, asked after each SIGCHLD. */
bool agd_proc_exited(const struct agd_proc *p);

/* Signal the whole process group (so helpers the child started go too). */
void agd_proc_kill(const struct agd_proc *p, int sig);

/* Collect the exit of a child whose pidfd is readable (blocks otherwise).
 * The group gets SIGKILL first, while the zombie still pins the group id,
 * so nothing the child left running survives and no reused id is hit.
 * Returns a wait(2)-style status, or -errno. Closes nothing. */
int agd_proc_reap(struct agd_proc *p);

/* Close every fd still open and forget the pid. */
void agd_proc_close(struct agd_proc *p);
void agd_proc_close_fd(int *fd);

/* "exited with status 3" / "was killed by signal 11 (Segmentation fault)". */
void agd_proc_describe(int wstatus, char *buf, size_t len);


#endif
