/* SPDX-License-Identifier: MIT */
/*
 * escape-agent — a hostile agent for tests/integration/test_escape.py.
 *
 * It tries every way out of its tier the containment work closes, prints
 * one line per attempt ("escape NAME ok" when the kernel let it through,
 * "escape NAME EACCES" and so on when it did not), undoes what it could do
 * (so tierd is never left frozen or a leaf empty), and then, with
 * --then, execs a well-behaved agent so the test can check tierd still
 * serves. Every path it needs comes on the command line: it knows nothing
 * of tierd's layout.
 *
 *   escape-agent --mount M --root R --sock S --file F --other-leaf L
 *                [--then PROG ARGS...]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *mnt, *root, *sock, *file, *other_leaf;

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ENOTSUP: return "ENOTSUP";
	default: return "EOTHER";
	}
}

static void report(const char *what, int e)
{
	printf("escape %s %s\n", what, err_name(e));
	fflush(stdout);
}

/* 0 or the errno of the first step that failed. */
static int write_path(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) < 0)
		e = errno;
	close(fd);
	return e;
}

static int own_cgroup(char *buf, size_t sz)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int found = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, sz, "%s", line + 3);
			found = 0;
		}
	fclose(f);
	return found;
}

/* Move pid into dir/cgroup.procs; when that worked, back into home. */
static int try_move(const char *dir, pid_t pid, const char *home)
{
	char p[4096], v[32];
	int e;

	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	snprintf(v, sizeof(v), "%d", (int)pid);
	e = write_path(p, v);
	if (!e) {
		snprintf(p, sizeof(p), "%s%s/cgroup.procs", mnt, home);
		write_path(p, v);
	}
	return e;
}

static pid_t first_pid(const char *leaf)
{
	char p[4096];
	FILE *f;
	int pid = -1;

	snprintf(p, sizeof(p), "%s/cgroup.procs", leaf);
	f = fopen(p, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid;
}

static void probe_v1_freezer(void)
{
	char p[4096];
	int e;

	snprintf(p, sizeof(p), "/sys/fs/cgroup/freezer/escape-probe-%d", (int)getpid());
	if (access("/sys/fs/cgroup/freezer/cgroup.procs", F_OK) < 0) {
		report("v1_freezer_mkdir", ENOTSUP);
		return;
	}
	e = mkdir(p, 0755) < 0 ? errno : 0;
	if (!e)
		rmdir(p);
	report("v1_freezer_mkdir", e);
}

static void probe_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	report("connect_control_socket", e);
}

static void probe_other_agent(void)
{
	pid_t other = first_pid(other_leaf);
	int e;

	if (other <= 0) {
		report("kill_other_tier_agent", ENOENT);
		report("ptrace_other_tier_agent", ENOENT);
		return;
	}
	report("kill_other_tier_agent", kill(other, 0) < 0 ? errno : 0);
	e = ptrace(PTRACE_SEIZE, other, 0, 0) < 0 ? errno : 0;
	if (!e)
		ptrace(PTRACE_DETACH, other, 0, 0);
	report("ptrace_other_tier_agent", e);
}

/* A grandchild that tries to leave for the mount root and outlive tierd. */
static void probe_grandchild(void)
{
	char v[32], p[4096];
	int pfd[2], e = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		snprintf(v, sizeof(v), "%d", (int)getpid());
		snprintf(p, sizeof(p), "%s/cgroup.procs", mnt);
		e = write_path(p, v);
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(1);
		setsid();
		for (int i = 0; i < 3; i++)
			close(i);
		/* Bounded: a test that cannot kill it still sees it go. */
		sleep(120);
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0 || read(pfd[0], &e, sizeof(e)) != sizeof(e))
		e = EINVAL;
	close(pfd[0]);
	printf("escape grandchild_pid %d\n", (int)pid);
	report("grandchild_to_mount_root", e);
}

int main(int argc, char **argv)
{
	char home[4096], p[4096];
	char **then = NULL;
	int e;

	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;

		if (!strcmp(argv[i], "--then")) {
			then = argv + i + 1;
			break;
		}
		if (!strcmp(argv[i], "--mount"))
			dst = &mnt;
		else if (!strcmp(argv[i], "--root"))
			dst = &root;
		else if (!strcmp(argv[i], "--sock"))
			dst = &sock;
		else if (!strcmp(argv[i], "--file"))
			dst = &file;
		else if (!strcmp(argv[i], "--other-leaf"))
			dst = &other_leaf;
		if (!dst || i + 1 >= argc) {
			fprintf(stderr, "escape-agent: bad argument %s\n", argv[i]);
			return 2;
		}
		*dst = argv[++i];
	}
	if (!mnt || !root || !sock || !file || !other_leaf || own_cgroup(home, sizeof(home)) < 0) {
		fprintf(stderr, "escape-agent: missing arguments or /proc/self/cgroup\n");
		return 2;
	}
	printf("escape uid %d\n", (int)getuid());
	/* In a cgroup namespace of its own, its leaf is "/". */
	printf("escape own_cgroup %s\n", strcmp(home, "/") ? "tierd-path" : "namespace-root");
	snprintf(p, sizeof(p), "%s/tier1", root);
	report("move_to_tier1", try_move(p, getpid(), home));
	snprintf(p, sizeof(p), "%s/supervisor", root);
	report("move_to_supervisor", try_move(p, getpid(), home));
	report("move_to_mount_root", try_move(mnt, getpid(), home));
	snprintf(p, sizeof(p), "%s/supervisor/cgroup.freeze", root);
	e = write_path(p, "1");
	if (!e)
		write_path(p, "0");
	report("freeze_supervisor", e);
	probe_v1_freezer();
	report("kill_tierd", kill(getppid(), 0) < 0 ? errno : 0);
	e = open(file, O_WRONLY | O_APPEND | O_CLOEXEC);
	report("open_root_file_for_writing", e < 0 ? errno : 0);
	if (e >= 0)
		close(e);
	probe_other_agent();
	probe_socket();
	probe_grandchild();
	printf("escape done all\n");
	fflush(stdout);
	if (then) {
		execv(then[0], then);
		fprintf(stderr, "escape-agent: exec %s: %s\n", then[0], strerror(errno));
		return 1;
	}
	for (;;)
		pause();
}
