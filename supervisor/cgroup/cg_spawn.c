/* SPDX-License-Identifier: MIT */
/* clone3(CLONE_INTO_CGROUP), with and without CLONE_VM|CLONE_VFORK, and the
 * fork + join fallback. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"
#include "cg_spawn.h"
#include "cg_util.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

/* struct clone_args up to CLONE_ARGS_SIZE_VER2 (88 bytes, the cgroup field),
 * spelled out so the build does not depend on the libc headers' copy. */
struct cg_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};
_Static_assert(sizeof(struct cg_clone_args) == 88, "clone_args ver2 is 88 bytes");

#if defined(__x86_64__)
#define HAVE_CLONE3_VM 1
/*
 * long sup_cg__clone3_vm(struct cg_clone_args *a, size_t size,
 *                        int (*fn)(void *), void *arg)
 * With CLONE_VM the child starts on a new stack and cannot return through
 * C frames that live on the parent's: the child calls fn from here and
 * exits. fn and arg ride in r8/r9, which the syscall instruction preserves
 * and the child inherits. Returns the raw result (pid or -errno) in the
 * parent.
 */
long sup_cg__clone3_vm(struct cg_clone_args *a, size_t size, int (*fn)(void *), void *arg);
__asm__(
	"	.text\n"
	"	.globl	sup_cg__clone3_vm\n"
	"	.hidden	sup_cg__clone3_vm\n"
	"	.type	sup_cg__clone3_vm, @function\n"
	"	.p2align 4\n"
	"sup_cg__clone3_vm:\n"
	"	endbr64\n"
	"	movq	%rdx, %r8\n"
	"	movq	%rcx, %r9\n"
	"	movl	$435, %eax\n"
	"	syscall\n"
	"	testq	%rax, %rax\n"
	"	jnz	1f\n"
	"	xorl	%ebp, %ebp\n"
	"	movq	%r9, %rdi\n"
	"	callq	*%r8\n"
	"	movl	%eax, %edi\n"
	"	movl	$231, %eax\n" /* exit_group */
	"	syscall\n"
	"	hlt\n"
	"1:	ret\n"
	"	.size	sup_cg__clone3_vm, .-sup_cg__clone3_vm\n");
#endif

/* clone3 exists but this kernel or a seccomp filter will not do it. */
static int clone3_refused(int err)
{
	return err == ENOSYS || err == E2BIG || err == EINVAL || err == EPERM;
}

static void block_all(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static void restore_mask(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int pidfd_for(pid_t pid, unsigned flags, int *ret_pidfd)
{
	long fd;

	if (!(flags & SUP_CG_SPAWN_PIDFD))
		return 0;
	/* pidfds are always close-on-exec. */
	fd = syscall(__NR_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	*ret_pidfd = (int)fd;
	return 0;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	(void)sup_waitpid(pid, NULL, 0);
}

/*
 * fork, then hold the child on a pipe until its pid is in the leaf. Returns
 * 0 in the child (signals still blocked: the caller restores the mask).
 */
static pid_t fork_join(int leaf_fd, unsigned flags, int *ret_pidfd)
{
	int p[2], r, pidfd = -1;
	pid_t pid;
	ssize_t n;
	char c = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		close(p[1]);
		n = sup_read(p[0], &c, 1);
		close(p[0]);
		/* EOF: the parent could not place us; never run outside. */
		if (n != 1)
			_exit(127);
		return 0;
	}
	close(p[0]);
	r = sup_cg_move_pid(leaf_fd, pid);
	if (r == 0)
		r = pidfd_for(pid, flags, &pidfd);
	if (r == 0) {
		n = sup_write(p[1], &c, 1);
		if (n != 1)
			r = n < 0 ? (int)n : -EIO;
	}
	close(p[1]);
	if (r < 0) {
		if (pidfd >= 0)
			close(pidfd);
		reap(pid);
		return r;
	}
	if (flags & SUP_CG_SPAWN_PIDFD)
		*ret_pidfd = pidfd;
	return pid;
}

pid_t sup_cg_fork_into(int leaf_fd, unsigned flags, int *ret_pidfd)
{
	struct cg_clone_args a;
	sigset_t old;
	int pidfd = -1;
	long pid;

	if (leaf_fd < 0 || ((flags & SUP_CG_SPAWN_PIDFD) && !ret_pidfd))
		return -EINVAL;
	block_all(&old);
	if (!(flags & SUP_CG_SPAWN_NO_CLONE3)) {
		memset(&a, 0, sizeof(a));
		a.flags = CLONE_INTO_CGROUP | ((flags & SUP_CG_SPAWN_PIDFD) ? CLONE_PIDFD : 0);
		a.pidfd = (uint64_t)(uintptr_t)&pidfd;
		a.exit_signal = SIGCHLD;
		a.cgroup = (uint64_t)leaf_fd;
		pid = syscall(__NR_clone3, &a, sizeof(a));
		if (pid >= 0 || !clone3_refused(errno)) {
			int err = errno;

			restore_mask(&old);
			if (pid < 0)
				return -err;
			if (pid > 0 && (flags & SUP_CG_SPAWN_PIDFD))
				*ret_pidfd = pidfd;
			return (pid_t)pid;
		}
	}
	pid = fork_join(leaf_fd, flags, ret_pidfd);
	restore_mask(&old);
	return (pid_t)pid;
}

pid_t sup_cg_spawn_fn(int leaf_fd, sup_cg_child_fn fn, void *arg, void *stack, size_t stack_sz,
		      unsigned flags, int *ret_pidfd)
{
	void *own_stack = NULL;
	sigset_t old;
	pid_t pid;

	if (leaf_fd < 0 || !fn || ((flags & SUP_CG_SPAWN_PIDFD) && !ret_pidfd))
		return -EINVAL;
	if (stack && stack_sz < 4096)
		return -EINVAL;

#ifdef HAVE_CLONE3_VM
	if (!(flags & SUP_CG_SPAWN_NO_CLONE3)) {
		struct cg_clone_args a;
		uintptr_t top;
		int pidfd = -1;
		long r;

		if (!stack) {
			stack_sz = SUP_CG_SPAWN_STACK_DEFAULT;
			own_stack = mmap(NULL, stack_sz, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
			if (own_stack == MAP_FAILED)
				return -errno;
			stack = own_stack;
		}
		/* The ABI wants a 16-byte aligned stack at the call in the
		 * trampoline; the kernel starts the child at stack + size. */
		top = ((uintptr_t)stack + stack_sz) & ~(uintptr_t)15;
		memset(&a, 0, sizeof(a));
		a.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP |
			  ((flags & SUP_CG_SPAWN_PIDFD) ? CLONE_PIDFD : 0);
		a.pidfd = (uint64_t)(uintptr_t)&pidfd;
		a.exit_signal = SIGCHLD;
		a.stack = (uint64_t)(uintptr_t)stack;
		a.stack_size = top - (uintptr_t)stack;
		a.cgroup = (uint64_t)leaf_fd;
		block_all(&old);
		r = sup_cg__clone3_vm(&a, sizeof(a), fn, arg);
		restore_mask(&old);
		/* CLONE_VFORK: the child has exec'd or exited, its stack is free. */
		if (own_stack)
			munmap(own_stack, stack_sz);
		if (r > 0) {
			if (flags & SUP_CG_SPAWN_PIDFD)
				*ret_pidfd = pidfd;
			return (pid_t)r;
		}
		if (!clone3_refused((int)-r))
			return (pid_t)r;
	}
#else
	(void)own_stack;
	(void)stack;
	(void)stack_sz;
#endif
	block_all(&old);
	pid = fork_join(leaf_fd, flags, ret_pidfd);
	if (pid == 0)
		_exit(fn(arg));
	restore_mask(&old);
	return pid;
}

static int probe_child(void *arg)
{
	(void)arg;
	return 0;
}

int sup_cg_probe_kill_taint(int parent_fd, const char *name)
{
	siginfo_t si = { 0 };
	int fd, pidfd = -1, r;
	pid_t pid;

	if (mkdirat(parent_fd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out_rmdir;
	}
	r = sup_cg_write_file(fd, "cgroup.kill", "1", 1);
	if (r < 0)
		goto out_close;
	pid = sup_cg_spawn_fn(fd, probe_child, NULL, NULL, 0, SUP_CG_SPAWN_PIDFD, &pidfd);
	if (pid < 0) {
		r = pid;
		goto out_close;
	}
	(void)sup_waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
	close(pidfd);
	r = si.si_code == CLD_KILLED && si.si_status == SIGKILL;
out_close:
	close(fd);
out_rmdir:
	unlinkat(parent_fd, name, AT_REMOVEDIR);
	return r;
}
