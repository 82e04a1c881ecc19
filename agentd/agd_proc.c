/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"
#include "agd_proc.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

void agd_proc_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Runs in the forked child: async-signal-safe calls only, and no return. */
static void child_exec(const char *path, char *const argv[], char *const envp[], int in,
		       int out, int err, int errfd, pid_t parent)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int e;

	setpgid(0, 0);
	/* After the check, not before: a parent that died in between would
	 * otherwise leave us orphaned with no signal coming. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		goto fail;
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	/* agentd blocks SIGTERM/SIGINT for its signalfd and ignores SIGPIPE;
	 * the agent starts with the defaults any program expects. */
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		goto fail;
	execve(path, argv, envp);
fail:
	e = errno;
	(void)!write(errfd, &e, sizeof(e));
	_exit(127);
}

int agd_proc_spawn(const char *path, char *const argv[], char *const envp[],
		   struct agd_proc *ret)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int pex[2] = { -1, -1 }, pidfd = -1, child_err = 0, r;
	pid_t parent = getpid(), pid;
	ssize_t n;

	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
	    pipe2(perr, O_CLOEXEC) < 0 || pipe2(pex, O_CLOEXEC) < 0) {
		r = -errno;
		goto close_pipes;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto close_pipes;
	}
	if (pid == 0)
		child_exec(path, argv, envp, pin[0], pout[1], perr[1], pex[1], parent);
	/* Both sides set the group: whichever runs first, it exists before
	 * anyone signals it. EACCES after the child's exec is harmless. */
	setpgid(pid, pid);
	agd_proc_close_fd(&pex[1]);
	n = sup_read(pex[0], &child_err, sizeof(child_err));
	/* The zombie keeps the pid ours until reaped, so this cannot race.
	 * Without pidfds (kernels before 5.3, valgrind) the caller watches
	 * SIGCHLD and asks agd_proc_exited instead. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno != ENOSYS) {
		r = -errno;
		kill(pid, SIGKILL);
		(void)sup_waitpid(pid, NULL, 0);
		goto close_pipes;
	}
	if (n == (ssize_t)sizeof(child_err)) {
		r = -child_err;
		(void)sup_waitpid(pid, NULL, 0);
		agd_proc_close_fd(&pidfd);
		goto close_pipes;
	}
	if ((r = set_nonblock(pin[1])) < 0 || (r = set_nonblock(pout[0])) < 0 ||
	    (r = set_nonblock(perr[0])) < 0) {
		kill(pid, SIGKILL);
		(void)sup_waitpid(pid, NULL, 0);
		agd_proc_close_fd(&pidfd);
		goto close_pipes;
	}
	agd_proc_close_fd(&pin[0]);
	agd_proc_close_fd(&pout[1]);
	agd_proc_close_fd(&perr[1]);
	agd_proc_close_fd(&pex[0]);
	*ret = (struct agd_proc){ .pid = pid, .pidfd = pidfd, .in = pin[1], .out = pout[0],
				  .err = perr[0] };
	return 0;

close_pipes:
	for (int i = 0; i < 2; i++) {
		agd_proc_close_fd(&pin[i]);
		agd_proc_close_fd(&pout[i]);
		agd_proc_close_fd(&perr[i]);
		agd_proc_close_fd(&pex[i]);
	}
	return r;
}

void agd_proc_kill(const struct agd_proc *p, int sig)
{
	if (p->pid <= 0)
		return;
	/* The pid as well as the group: a child that called setsid() has left
	 * the group, and the pid stays ours until we reap it. */
	kill(-p->pid, sig);
	kill(p->pid, sig);
}

bool agd_proc_exited(const struct agd_proc *p)
{
	siginfo_t si;

	if (p->pid <= 0)
		return false;
	memset(&si, 0, sizeof(si));
	/* WNOWAIT: look, but leave the zombie for agd_proc_reap. */
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno == ECHILD;
	return si.si_pid == p->pid;
}

int agd_proc_reap(struct agd_proc *p)
{
	siginfo_t si;
	int r;

	if (p->pid <= 0)
		return -ECHILD;
	agd_proc_kill(p, SIGKILL);
	memset(&si, 0, sizeof(si));
	r = p->pidfd >= 0 ? sup_waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED) :
			    sup_waitid(P_PID, (id_t)p->pid, &si, WEXITED);
	if (r < 0)
		return r;
	p->pid = 0;
	if (si.si_code == CLD_EXITED)
		return (si.si_status & 0xff) << 8;
	return si.si_status & 0x7f;
}

void agd_proc_close(struct agd_proc *p)
{
	agd_proc_close_fd(&p->in);
	agd_proc_close_fd(&p->out);
	agd_proc_close_fd(&p->err);
	agd_proc_close_fd(&p->pidfd);
	p->pid = 0;
}

void agd_proc_describe(int wstatus, char *buf, size_t len)
{
	if (WIFEXITED(wstatus))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(wstatus));
	else
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)));
}

