/* SPDX-License-Identifier: MIT */
/*
 * VM: a root agent cannot leave its leaf on a pure cgroup v2 kernel.
 *
 * Starts tierd with one agent, `user = 0` (uid 0, no capabilities, as a
 * `user = root` agent runs), which is this program re-executed. In its
 * sandbox the agent tries to write its pid into the cgroup2 root's,
 * tierd's supervisor/ and tier1/ cgroup.procs, to freeze supervisor/, and
 * to connect to the control socket, and writes what each returned to
 * REPORT; then it becomes a ready agent. tierd_sandbox_root_agent passes
 * when every write failed with EROFS, the socket with ECONNREFUSED, the
 * agent's /proc/self/cgroup is "/" (its own cgroup namespace), it is
 * still in its leaf, and tierd still answers.
 */
#include <libgen.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../../include/tier/agent.h"
#include "vmtest.h"

#define ROOT   "tierd-vm-sb"
#define CG     "/sys/fs/cgroup/" ROOT
#define SOCK   "/run/tierd-vm-sb.sock"
#define CONF   "/tmp/tierd-vm-sb.ini"
#define REPORT "/tmp/tierd-vm-sb.report"
#define TEST   "tierd_sandbox_root_agent"

static int try_write(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return errno;
	if (write(fd, v, strlen(v)) < 0)
		e = errno;
	close(fd);
	return e;
}

static int try_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", SOCK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		e = errno;
	close(fd);
	return e;
}

static int worker(void)
{
	char pid[32], cg[256] = "";
	FILE *f = fopen("/proc/self/cgroup", "r"), *out;
	struct tier_agent *a;

	if (f) {
		if (fgets(cg, sizeof(cg), f))
			cg[strcspn(cg, "\n")] = 0;
		fclose(f);
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	out = fopen(REPORT ".new", "w");
	if (!out)
		return 1;
	fprintf(out, "%d %d %d %d %d %d %s\n", (int)getpid(),
		try_write("/sys/fs/cgroup/cgroup.procs", pid),
		try_write(CG "/supervisor/cgroup.procs", pid),
		try_write(CG "/tier1/cgroup.procs", pid),
		try_write(CG "/supervisor/cgroup.freeze", "1"), try_connect(), cg);
	fclose(out);
	rename(REPORT ".new", REPORT);
	a = tier_agent_open(NULL);
	if (!a)
		return 1;
	for (;;)
		pause();
}

static bool answers(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	const char *req = "{\"id\":1,\"cmd\":\"status\",\"args\":{}}\n";
	char buf[4096];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", SOCK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, "\"ok\":true") || strstr(buf, "\"ok\": true");
}

static bool in_leaf(int pid)
{
	FILE *f = fopen(CG "/tier3/agent-root/cgroup.procs", "r");
	int p;
	bool found = false;

	if (!f)
		return false;
	while (fscanf(f, "%d", &p) == 1)
		found |= p == pid;
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	int pid = 0, e_root = -1, e_sup = -1, e_t1 = -1, e_frz = -1, e_sock = -1;
	char self[PATH_MAX], cg[256] = "";
	pid_t tierd;
	bool ok = false;
	FILE *f;

	if (argc > 2 && !strcmp(argv[1], "--worker"))
		return worker();
	if (access("/opt/tierd/bin/tierd", X_OK) < 0) {
		printf("VMTEST SKIP " TEST ": tierd is not in the image\n");
		return 0;
	}
	snprintf(self, sizeof(self), "/vmtests/%s", basename(argv[0]));
	unlink(REPORT);
	f = fopen(CONF, "w");
	if (!f)
		return 1;
	fprintf(f, "[supervisor]\ncgroup_root = " ROOT "\ncontrol_socket = " SOCK "\n"
		"metrics_address = off\nlog_level = info\noptimiser = off\n"
		"journal_dir = /run/tierd-vm-sb-journal\n"
		"[agent root]\ntier = 3\nuser = 0\ngroup = 0\nexec = %s --worker sandbox\n", self);
	fclose(f);
	tierd = fork();
	if (tierd == 0) {
		int fd = open("/tmp/tierd-vm-sb.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl("/opt/tierd/bin/tierd", "tierd", "-c", CONF, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(REPORT, R_OK) < 0; i++)
		usleep(100000);
	f = fopen(REPORT, "r");
	if (!f || fscanf(f, "%d %d %d %d %d %d %255s", &pid, &e_root, &e_sup, &e_t1, &e_frz,
			 &e_sock, cg) != 7) {
		vt_fail(TEST, "no report from the agent (see /tmp/tierd-vm-sb.log)");
		system("tail -20 /tmp/tierd-vm-sb.log");
	} else if (e_root == EROFS && e_sup == EROFS && e_t1 == EROFS && e_frz == EROFS &&
		   e_sock == ECONNREFUSED && !strcmp(cg, "0::/") && in_leaf(pid) && answers()) {
		ok = true;
		vt_pass(TEST, "uid-0 agent: cgroup.procs of the root, supervisor/, tier1/ and "
			"supervisor/cgroup.freeze all EROFS, control socket ECONNREFUSED, "
			"/proc/self/cgroup %s, still in its leaf, tierd answering", cg);
	} else {
		vt_fail(TEST, "root %s, supervisor %s, tier1 %s, freeze %s, socket %s, cgroup %s, "
			"in its leaf %d", strerror(e_root), strerror(e_sup), strerror(e_t1),
			strerror(e_frz), strerror(e_sock), cg, in_leaf(pid));
		system("tail -20 /tmp/tierd-vm-sb.log");
	}
	if (f)
		fclose(f);
	kill(tierd, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(tierd, NULL, WNOHANG) == tierd)
			return ok ? 0 : 1;
		usleep(100000);
	}
	vt_note("tierd did not stop within 20 s of SIGTERM; killed");
	kill(tierd, SIGKILL);
	waitpid(tierd, NULL, 0);
	return ok ? 0 : 1;
}
