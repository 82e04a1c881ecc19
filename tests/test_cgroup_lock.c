/* SPDX-License-Identifier: MIT */
/*
 * cgroup module on the host's real cgroup2 mount: the lock, stale reclaim
 * after a crashed supervisor, a delegated root, and the clear errors of
 * sup_cg_open (no cgroup2, bad options, an unsafe root, no privilege).
 */
#include "cgroup_test.h"

TestSuite(tree, .init = host_init, .fini = host_fini, .timeout = 60);

/* ---- lock and stale reclaim ------------------------------------------------------------ */

Test(tree, should_refuse_a_second_instance_on_the_same_root)
{
	struct sup_cg_opts o = { .sz = sizeof(o), .root = g_root, .flags = SUP_CG_F_NO_ENTER,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	char pid[32];

	need_host();
	g_cg = open_tree(0);
	cr_assert_null(sup_cg_open(&o));
	cr_assert_eq(errno, EBUSY);
	snprintf(pid, sizeof(pid), "pid %d", (int)getpid());
	cr_assert(strstr(g_err, "in use by another tierd") && strstr(g_err, pid), "%s", g_err);
	cr_assert(path_exists(sup_cg_root_path(g_cg)), "the live tree is untouched");
}

Test(tree, should_lock_a_configured_lock_file)
{
	char lock[128];
	struct sup_cg_opts o = { .sz = sizeof(o), .root = g_root, .lock_path = lock,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	struct sup_cg *second;

	need_host();
	snprintf(lock, sizeof(lock), "/tmp/tierd-test-%d.lock", (int)getpid());
	g_cg = sup_cg_open(&o);
	cr_assert_not_null(g_cg, "%s", g_err);
	o.flags = SUP_CG_F_NO_ENTER;
	second = sup_cg_open(&o);
	cr_assert_null(second);
	cr_assert_eq(errno, EBUSY);
	cr_assert(strstr(g_err, lock), "%s", g_err);
	unlink(lock);
}

/* A supervisor that dies without cleaning up: a child builds the tree,
 * starts two agents (sleep) in a leaf, reports their pids and exits. The
 * agents exec, as real ones do: a child that never execs would keep the
 * lock fd and with it the lock. */
/* Does pid still hold an fd on our cgroup tree (the lock is one)? */
static bool holds_tree_fd(pid_t pid)
{
	char path[64], fdp[320], target[4096];
	struct dirent *de;
	bool holds = false;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return true;
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s", path, de->d_name);
		n = readlink(fdp, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			if (strstr(target, g_root))
				holds = true;
		}
	}
	closedir(d);
	return holds;
}

static void wait_exec(pid_t pid, const char *comm)
{
	char path[64], buf[32];

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (int i = 0; i < 500; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		/* comm changes before exec closes the close-on-exec fds (the
		 * lock among them): wait for both. */
		if (n > 0 && (size_t)n >= strlen(comm) && !strncmp(buf, comm, strlen(comm)) &&
		    !holds_tree_fd(pid))
			return;
		usleep(10000);
	}
	cr_assert_fail("pid %d never exec'd %s", (int)pid, comm);
}

/* Is any flock held on the cgroup directory path? (/proc/locks) */
static bool tree_locked(void)
{
	char path[4200], want[64], line[256];
	struct sup_cg_mount m;
	char mi[65536];
	struct stat st;
	bool locked = false;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, mi, sizeof(mi));
	FILE *f;

	if (fd >= 0)
		close(fd);
	if (n <= 0 || sup_cg_parse_mountinfo(mi, (size_t)n, &m) < 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s", m.path, g_root);
	if (stat(path, &st) < 0)
		return false;
	snprintf(want, sizeof(want), ":%lu ", (unsigned long)st.st_ino);
	f = fopen("/proc/locks", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "FLOCK") && strstr(line, want))
			locked = true;
	if (f)
		fclose(f);
	return locked;
}

static void crash_a_supervisor(pid_t sleepers[2])
{
	int p[2];
	pid_t sup;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	sup = fork();
	cr_assert_geq(sup, 0);
	if (sup == 0) {
		struct sup_cg_opts o = { .sz = sizeof(o), .root = g_root };
		struct sup_cg *cg = sup_cg_open(&o);
		struct sup_cg_leaf *l;
		pid_t s[2];

		if (!cg || sup_cg_leaf_open(cg, 2, "stale", &l) < 0)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			s[i] = sup_cg_fork_into(sup_cg_leaf_fd(l), 0, NULL);
			if (s[i] == 0) {
				execl("/bin/sleep", "sleep", "1000", (char *)NULL);
				_exit(127);
			}
		}
		if (write(p[1], s, sizeof(s)) != sizeof(s))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], sleepers, 2 * sizeof(pid_t)), (ssize_t)(2 * sizeof(pid_t)));
	close(p[0]);
	cr_assert_eq(wait_exit(sup), 0);
	for (int i = 0; i < 2; i++)
		wait_exec(sleepers[i], "sleep");
	/* What the reclaim needs: the dead supervisor's lock gone. Its
	 * children hold it from fork to exec (these are forked, not vforked
	 * as tierd spawns them). */
	for (int i = 0; i < 500 && tree_locked(); i++)
		usleep(10000);
	cr_assert_not(tree_locked(), "the crashed supervisor's lock is still held");
}

Test(tree, should_reclaim_a_stale_tree_and_kill_what_runs_in_it)
{
	pid_t s[2];
	const char *rep;
	char pid[32];

	need_host();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	crash_a_supervisor(s);
	g_cg = open_tree(0);
	rep = sup_cg_reclaim_report(g_cg);
	cr_assert_not_null(rep, "a stale tree must be reported");
	cr_log_info("%s", rep);
	cr_assert(strstr(rep, "tier2/agent-stale: 2 processes"), "%s", rep);
	snprintf(pid, sizeof(pid), "%d", (int)s[0]);
	cr_assert(strstr(rep, pid), "%s", rep);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(wait_exit(s[i]), 128 + SIGKILL);
	}
	{
		char leaf[4200];

		snprintf(leaf, sizeof(leaf), "%s/tier2/agent-stale", sup_cg_root_path(g_cg));
		cr_assert_not(path_exists(leaf), "the stale leaf is removed");
	}
}

Test(tree, should_refuse_a_stale_tree_when_reclaim_is_off)
{
	struct sup_cg_opts o = { .sz = sizeof(o), .root = g_root, .flags = SUP_CG_F_NO_RECLAIM,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	pid_t s[2];

	need_host();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	crash_a_supervisor(s);
	cr_assert_null(sup_cg_open(&o));
	cr_assert_eq(errno, EEXIST);
	cr_assert(strstr(g_err, "stale tree"), "%s", g_err);
	g_cg = open_tree(0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(wait_exit(s[i]), 128 + SIGKILL);
}

/* ---- delegation ---------------------------------------------------------------------- */

Test(tree, should_use_a_delegated_cgroup_as_the_root)
{
	struct sup_cg_opts o = { .sz = sizeof(o), .delegate = SUP_CG_DELEG_ALWAYS,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	struct sup_cg_mount m;
	char mi[65536], self[4096], want[256], deleg[4200];
	int mfd, fd;
	ssize_t n;

	need_host();
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	n = read(fd, mi, sizeof(mi));
	close(fd);
	cr_assert_eq(sup_cg_parse_mountinfo(mi, (size_t)n, &m), 0);
	/* Play systemd: a unit cgroup with us inside. */
	snprintf(deleg, sizeof(deleg), "%s/%s", m.path, g_root);
	cr_assert_eq(mkdir(deleg, 0755), 0);
	fd = open(deleg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_eq(sup_cg_move_pid(fd, 0), 0);
	g_cg = sup_cg_open(&o);
	cr_assert_not_null(g_cg, "%s", g_err);
	cr_assert(sup_cg_delegated(g_cg));
	cr_assert_str_eq(sup_cg_root_path(g_cg), deleg);
	my_cgroup(self, sizeof(self));
	snprintf(want, sizeof(want), "/%s/supervisor", g_root);
	cr_assert_str_eq(self, want);
	cr_assert_eq(sup_cg_destroy(g_cg), 0);
	g_cg = NULL;
	my_cgroup(self, sizeof(self));
	snprintf(want, sizeof(want), "/%s", g_root);
	cr_assert_str_eq(self, want, "back in the delegated cgroup");
	cr_assert(path_exists(deleg), "a delegated root is not ours to remove");
	snprintf(deleg, sizeof(deleg), "%s/%s/tier1", m.path, g_root);
	cr_assert_not(path_exists(deleg));
	mfd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_eq(sup_cg_move_pid(mfd, 0), 0);
	close(mfd);
	close(fd);
}

/* ---- clear errors ---------------------------------------------------------------------- */

Test(errors, should_say_when_no_cgroup2_is_mounted)
{
	char path[] = "/tmp/tierd-mi-XXXXXX";
	struct sup_cg_opts o = { .sz = sizeof(o), .mountinfo_path = path,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, MI_NONE, strlen(MI_NONE)), (ssize_t)strlen(MI_NONE));
	close(fd);
	cr_assert_null(sup_cg_open(&o));
	cr_assert_eq(errno, ENOENT);
	cr_assert(strstr(g_err, "no cgroup2"), "%s", g_err);
	unlink(path);
}

Test(errors, should_refuse_bad_options)
{
	struct sup_cg_opts o = { .sz = sizeof(o) - 1 };

	cr_assert_null(sup_cg_open(&o));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(sup_cg_open(NULL));
	o.sz = sizeof(o);
	o.ntiers = SUP_CG_NTIERS_MAX + 1;
	cr_assert_null(sup_cg_open(&o));
	cr_assert_eq(errno, EINVAL);
}

Test(errors, should_refuse_an_unsafe_root_name)
{
	struct sup_cg_opts o = { .sz = sizeof(o), .root = "../escape", .errbuf = g_err,
				 .errbuf_sz = sizeof(g_err) };

	if (!host_cgroup2())
		cr_skip_test("no cgroup2 mount on this host");
	cr_assert_null(sup_cg_open(&o));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(g_err, "invalid cgroup root"), "%s", g_err);
}

Test(errors, should_say_permission_denied_without_privilege)
{
	pid_t pid;

	need_host();
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sup_cg_opts o = { .sz = sizeof(o), .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
		char root[64];

		snprintf(root, sizeof(root), "tierd-test-%d-nobody", (int)getpid());
		o.root = root;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		if (sup_cg_open(&o))
			_exit(11);
		if (errno != EACCES && errno != EPERM)
			_exit(12);
		_exit(strstr(g_err, "cannot create cgroup") && strstr(g_err, "needs root") ? 0 : 13);
	}
	cr_assert_eq(wait_exit(pid), 0, "unprivileged open must fail with a clear EACCES");
}
