/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup/cg_spawn.h"
#include "common/fdio.h"
#include "sandbox.h"
#include "spawn.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Where the child parks its fds while it shuffles them into place: above
 * every target, so no source is overwritten before it is copied. */
#define PARK_FD 64

static const char *const step_names[] = {
	[SUP_STEP_NONE] = "none",
	[SUP_STEP_CLONE] = "clone3",
	[SUP_STEP_FDS] = "placing fds",
	[SUP_STEP_SETSID] = "setsid",
	[SUP_STEP_CHDIR] = "chdir",
	[SUP_STEP_RLIMIT] = "setrlimit",
	[SUP_STEP_CAPBSET] = "dropping the capability bounding set",
	[SUP_STEP_SETGROUPS] = "setgroups",
	[SUP_STEP_SETGID] = "setresgid",
	[SUP_STEP_KEEPCAPS] = "PR_SET_KEEPCAPS",
	[SUP_STEP_SETUID] = "setresuid",
	[SUP_STEP_CAPSET] = "capset",
	[SUP_STEP_AMBIENT] = "raising ambient capabilities",
	[SUP_STEP_NO_NEW_PRIVS] = "PR_SET_NO_NEW_PRIVS",
	[SUP_STEP_PDEATHSIG] = "PR_SET_PDEATHSIG",
	[SUP_STEP_PARENT_GONE] = "parent exited",
	[SUP_STEP_SIGNALS] = "resetting signals",
	[SUP_STEP_EXEC] = "execve",
	[SUP_STEP_CGROUPNS] = "unsharing the cgroup namespace (sandbox)",
	[SUP_STEP_MNTNS] = "joining the agents' mount namespace (sandbox)",
	[SUP_STEP_SB_UNSHARE] = "unsharing the mount namespace (sandbox)",
	[SUP_STEP_SB_SLAVE] = "making / a recursive slave mount (sandbox)",
	[SUP_STEP_SB_CGROUP_RO] = "making the cgroup mounts read-only with mount_setattr (sandbox)",
	[SUP_STEP_SB_HIDE_SOCKET] = "hiding the control socket (sandbox)",
	[SUP_STEP_SB_PROC_SYS] = "making /proc/sys read-only (sandbox)",
};

const char *sup_spawn_step_name(enum sup_spawn_step s)
{
	if ((unsigned)s < sizeof(step_names) / sizeof(step_names[0]) && step_names[s])
		return step_names[s];
	return "unknown step";
}

int sup_spawn_cap_last(void)
{
	char buf[16];

	return sup_read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0 ?
	       atoi(buf) : CAP_LAST_CAP;
}

struct child_arg {
	const struct sup_spawn_req *req;
	int   errfd;
	int   cap_last;
	pid_t parent;
	bool  privileged;
};

struct child_msg {
	int step;
	int err;
};

/* Everything below runs in the child, which shares the parent's memory
 * until exec: raw system calls only (see cg_spawn.h). glibc's setresuid and
 * setgroups are not used: they broadcast to the parent's threads. */

static int child_fail(struct child_arg *a, enum sup_spawn_step step, int err)
{
	struct child_msg m = { step, err };

	syscall(SYS_write, a->errfd, &m, sizeof(m));
	return 127;
}

static int child_place_fds(struct child_arg *a)
{
	const struct sup_spawn_req *r = a->req;
	int src[6] = { r->fd_stdin, r->fd_stdout, r->fd_stderr, r->fd_ring, r->fd_cq_bell,
		       r->fd_sq_bell };
	int parked[6];
	int errfd;

	errfd = (int)syscall(SYS_fcntl, a->errfd, F_DUPFD_CLOEXEC, PARK_FD);
	if (errfd < 0)
		return -errno;
	a->errfd = errfd;
	for (int i = 0; i < 6; i++) {
		parked[i] = src[i] < 0 ? -1 : (int)syscall(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, PARK_FD);
		if (src[i] >= 0 && parked[i] < 0)
			return -errno;
	}
	for (int i = 0; i < 6; i++) {
		if (parked[i] < 0) {
			syscall(SYS_close, i);
			continue;
		}
		/* dup3 without O_CLOEXEC: these are the fds the agent keeps. */
		if (syscall(SYS_dup3, parked[i], i, 0) < 0)
			return -errno;
	}
	/* Everything else goes, whether or not it was close-on-exec (fds a
	 * parent of tierd leaked to it must not reach agents). The error pipe
	 * survives until exec, which closes it. */
	if (syscall(SYS_close_range, 6, errfd - 1, 0) < 0 ||
	    syscall(SYS_close_range, errfd + 1, ~0U, 0) < 0) {
		for (int fd = 6; fd < 4096; fd++)
			if (fd != errfd)
				syscall(SYS_close, fd);
	}
	return 0;
}

static int child_caps(struct child_arg *a)
{
	const struct sup_spawn_req *r = a->req;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	uint32_t lo = (uint32_t)r->caps_keep, hi = (uint32_t)(r->caps_keep >> 32);

	data[0] = (struct __user_cap_data_struct){ lo, lo, lo };
	data[1] = (struct __user_cap_data_struct){ hi, hi, hi };
	if (syscall(SYS_capset, &hdr, data) < 0)
		return child_fail(a, SUP_STEP_CAPSET, errno);
	/* A non-root agent keeps capabilities across exec only as ambient. */
	if (r->set_creds && r->uid != 0) {
		for (int c = 0; c <= a->cap_last && c < 64; c++)
			if ((r->caps_keep >> c) & 1 &&
			    syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
				return child_fail(a, SUP_STEP_AMBIENT, errno);
	}
	return 0;
}

static int child_creds(struct child_arg *a)
{
	const struct sup_spawn_req *r = a->req;

	if (!a->privileged)
		return 0;
	/* The bounding set first: dropping it needs CAP_SETPCAP, which goes
	 * away with the uid change. It is what limits a root agent after exec. */
	for (int c = 0; c <= a->cap_last && c < 64; c++)
		if (!((r->caps_keep >> c) & 1) &&
		    syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return child_fail(a, SUP_STEP_CAPBSET, errno);
	if (r->set_creds) {
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			return child_fail(a, SUP_STEP_SETGROUPS, errno);
		if (syscall(SYS_setresgid, r->gid, r->gid, r->gid) < 0)
			return child_fail(a, SUP_STEP_SETGID, errno);
		if (r->caps_keep && r->uid != 0 &&
		    syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			return child_fail(a, SUP_STEP_KEEPCAPS, errno);
		if (syscall(SYS_setresuid, r->uid, r->uid, r->uid) < 0)
			return child_fail(a, SUP_STEP_SETUID, errno);
	}
	return child_caps(a);
}

/* Before anything else: joining a mount namespace needs CAP_SYS_ADMIN and
 * an fd that child_place_fds would close. The cgroup namespace only now,
 * in the leaf: clone3(CLONE_NEWCGROUP) would root it at tierd's cgroup. */
static int child_sandbox(struct child_arg *a)
{
	const struct sup_spawn_req *r = a->req;
	enum sup_spawn_step step = SUP_STEP_NONE;
	int err;

	if (!r->sandbox)
		return 0;
	if (syscall(SYS_unshare, CLONE_NEWCGROUP) < 0)
		return child_fail(a, SUP_STEP_CGROUPNS, errno);
	if (r->mntns_fd >= 0) {
		if (syscall(SYS_setns, r->mntns_fd, CLONE_NEWNS) < 0)
			return child_fail(a, SUP_STEP_MNTNS, errno);
		return 0;
	}
	err = r->sandbox_plan ? sup_sandbox_apply(r->sandbox_plan, &step) : -EINVAL;
	if (err < 0)
		return child_fail(a, step ? step : SUP_STEP_MNTNS, -err);
	return 0;
}

static int child_main(void *arg)
{
	struct child_arg *a = arg;
	const struct sup_spawn_req *r = a->req;
	struct sigaction dfl;
	uint64_t empty = 0;
	int err;

	err = child_sandbox(a);
	if (err)
		return err;
	err = child_place_fds(a);
	if (err < 0)
		return child_fail(a, SUP_STEP_FDS, -err);
	if (syscall(SYS_setsid) < 0)
		return child_fail(a, SUP_STEP_SETSID, errno);
	if (syscall(SYS_chdir, r->workdir ? r->workdir : "/") < 0)
		return child_fail(a, SUP_STEP_CHDIR, errno);
	for (int i = 0; i < r->n_rlimits; i++)
		if (syscall(SYS_prlimit64, 0, r->rlimits[i].resource, &r->rlimits[i].lim, NULL) < 0)
			return child_fail(a, SUP_STEP_RLIMIT, errno);
	err = child_creds(a);
	if (err)
		return err;
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return child_fail(a, SUP_STEP_NO_NEW_PRIVS, errno);
	/* After the credential change, which clears it. */
	if (r->pdeath_signal && syscall(SYS_prctl, PR_SET_PDEATHSIG, r->pdeath_signal, 0, 0, 0) < 0)
		return child_fail(a, SUP_STEP_PDEATHSIG, errno);
	if (syscall(SYS_getppid) != a->parent)
		return child_fail(a, SUP_STEP_PARENT_GONE, ESRCH);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL); /* EINVAL for glibc-reserved ones: fine */
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof(empty)) < 0)
		return child_fail(a, SUP_STEP_SIGNALS, errno);
	syscall(SYS_execve, r->path, r->argv, r->envp);
	return child_fail(a, SUP_STEP_EXEC, errno);
}

int sup_spawn(const struct sup_spawn_req *req, struct sup_spawn_result *ret)
{
	struct child_arg a = {
		.req = req,
		.cap_last = sup_spawn_cap_last(),
		.parent = getpid(),
		.privileged = geteuid() == 0,
	};
	struct child_msg m;
	int pipefd[2], pidfd = -1;
	ssize_t n;
	pid_t pid;

	*ret = (struct sup_spawn_result){ .pid = -1, .pidfd = -1 };
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	a.errfd = pipefd[1];
	pid = sup_cg_spawn_fn(req->leaf_fd, child_main, &a, NULL, 0,
			      SUP_CG_SPAWN_PIDFD | req->cg_flags, &pidfd);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		ret->failed_step = SUP_STEP_CLONE;
		ret->child_errno = -pid;
		return pid;
	}
	/* EOF: the write end closed at exec. A message: the child failed. */
	n = sup_read(pipefd[0], &m, sizeof(m));
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(m)) {
		siginfo_t si;

		(void)sup_waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED);
		close(pidfd);
		ret->failed_step = (enum sup_spawn_step)m.step;
		ret->child_errno = m.err;
		return -m.err;
	}
	ret->pid = pid;
	ret->pidfd = pidfd;
	return 0;
}
