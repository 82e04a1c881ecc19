/* SPDX-License-Identifier: MIT */
/*
 * cg_spawn — create a process directly inside a cgroup leaf.
 *
 * The primitive under tierd's spawn module. The child is born in the leaf
 * (clone3 with CLONE_INTO_CGROUP, kernel 5.7+), so not one instruction of it
 * runs, and not one page it touches is charged, outside the leaf. Where
 * clone3 is refused (ENOSYS before 5.3, E2BIG/EINVAL before 5.7, EPERM from a
 * seccomp filter) both functions fall back to fork(), write the child's pid
 * into the leaf's cgroup.procs, and only then let the child go on: it waits
 * on a close-on-exec pipe until the parent has moved it, and exits with 127
 * if the move failed. Either way the caller's code in the child runs in the
 * leaf.
 *
 * Both return the child's pid in the parent, or -errno; on failure no child
 * is left behind. With SUP_CG_SPAWN_PIDFD the parent also gets a pidfd
 * (close-on-exec) in *ret_pidfd to poll for the child's exit.
 */
#ifndef SUP_CG_SPAWN_H
#define SUP_CG_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#define SUP_CG_SPAWN_PIDFD     (1u << 0) /* return a pidfd in *ret_pidfd */
#define SUP_CG_SPAWN_NO_CLONE3 (1u << 1) /* force the fork + join fallback */

/* The stack sup_cg_spawn_fn maps when the caller passes none. */
#define SUP_CG_SPAWN_STACK_DEFAULT (64 * 1024)

/*
 * fork(2)-like: returns 0 in the child, which is already in the leaf.
 * The child is a copy of the parent made by a raw clone3, not by glibc's
 * fork: atfork handlers did not run and glibc's cached thread id is the
 * parent's. Until it execs, the child may use only async-signal-safe
 * functions, and never raise(), pthread_* or anything that takes a lock
 * another thread of the parent could have held.
 */
pid_t sup_cg_fork_into(int leaf_fd, unsigned flags, int *ret_pidfd);

typedef int (*sup_cg_child_fn)(void *arg);

/*
 * vfork(2)-like: the child shares the parent's memory (CLONE_VM) and the
 * parent is suspended until the child execs or exits (CLONE_VFORK), so a
 * thousand spawns never copy the parent's page tables. The child runs
 * fn(arg) on `stack` (stack_sz bytes; NULL: one is mapped for the call) and
 * exits with its return value if it returns.
 *
 * Constraints on fn, as for vfork:
 *  - raw system calls only (syscall(2), or libc wrappers that are plain
 *    syscalls: execve, dup2, close, setsid, prctl, sigaction,
 *    sigprocmask); no malloc, no stdio, no locks: the parent's allocator
 *    state is shared and may be mid-update in another thread;
 *  - it runs with every signal blocked (the parent's handlers would run on
 *    shared memory): reset the dispositions it needs and set its own mask
 *    before execve;
 *  - errno is the parent thread's (shared TLS); the parent does not read it;
 *  - report an exec failure through a close-on-exec pipe, not through
 *    memory: on the fallback path (fork) memory is not shared.
 */
pid_t sup_cg_spawn_fn(int leaf_fd, sup_cg_child_fn fn, void *arg, void *stack, size_t stack_sz,
		      unsigned flags, int *ret_pidfd);

/*
 * Does this kernel SIGKILL every child cloned with CLONE_INTO_CGROUP into a
 * cgroup that once received cgroup.kill? (Seen on 6.18: the fork path
 * compares a kill sequence sampled from the parent's cgroup with the
 * target's.) Tries it in a scratch cgroup `name` below parent_fd, removed
 * afterwards. 1 yes, 0 no, -errno if it could not tell.
 */
int sup_cg_probe_kill_taint(int parent_fd, const char *name);

#endif
