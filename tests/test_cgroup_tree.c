/* SPDX-License-Identifier: MIT */
/*
 * cgroup module, the tier tree on the host's real cgroup2 mount: building
 * and removing it, controllers, knobs, leaves, placement (clone3, CLONE_VM,
 * the fallback, exec), cgroup.kill, freeze, populated events. Limits cannot
 * be shown on a hybrid host: the VM suite (tests/vm) does.
 */
#include "cgroup_test.h"

TestSuite(tree, .init = host_init, .fini = host_fini, .timeout = 60);

Test(tree, should_build_supervisor_and_tiers_and_enter_supervisor)
{
	char p[4200], self[4096], want[256];

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_ntiers(g_cg), SUP_CG_NTIERS_DEFAULT);
	for (unsigned t = 1; t <= 4; t++) {
		snprintf(p, sizeof(p), "%s/tier%u", sup_cg_root_path(g_cg), t);
		cr_assert(path_exists(p), "%s missing", p);
		cr_assert_geq(sup_cg_tier_fd(g_cg, t), 0);
	}
	cr_assert_eq(sup_cg_tier_fd(g_cg, 0), -EINVAL);
	cr_assert_eq(sup_cg_tier_fd(g_cg, 5), -EINVAL);
	snprintf(p, sizeof(p), "%s/supervisor", sup_cg_root_path(g_cg));
	cr_assert(path_exists(p));
	my_cgroup(self, sizeof(self));
	snprintf(want, sizeof(want), "/%s/supervisor", g_root);
	cr_assert(strstr(self, want), "in %s, want ...%s", self, want);
	cr_assert_null(sup_cg_reclaim_report(g_cg), "a fresh root is not stale");
}

Test(tree, should_remove_everything_and_return_the_caller_on_destroy)
{
	char before[4096], after[4096], root[4096];

	need_host();
	my_cgroup(before, sizeof(before));
	g_cg = open_tree(0);
	snprintf(root, sizeof(root), "%s", sup_cg_root_path(g_cg));
	cr_assert_eq(sup_cg_destroy(g_cg), 0);
	g_cg = NULL;
	cr_assert_not(path_exists(root), "%s still exists", root);
	my_cgroup(after, sizeof(after));
	cr_assert_str_eq(after, before);
}

Test(tree, should_report_every_controller_as_live_or_explained)
{
	need_host();
	g_cg = open_tree(0);
	for (int c = 0; c < SUP_CG_NCTRL; c++) {
		const char *why = sup_cg_ctrl_reason(g_cg, c);

		if (sup_cg_ctrl_live(g_cg, c)) {
			cr_assert_null(why);
		} else {
			cr_assert_not_null(why);
			cr_assert_gt(strlen(why), 10, "%s: reason too short: %s", sup_cg_ctrl_name(c), why);
		}
	}
}

Test(tree, should_skip_knobs_of_a_missing_controller)
{
	struct sup_cg_val v = { .num = 200 };

	need_host();
	g_cg = open_tree(0);
	if (sup_cg_ctrl_live(g_cg, SUP_CG_CPU))
		cr_skip_test("cpu is live on this host; the skip path needs a hybrid host");
	cr_assert_eq(sup_cg_knob_write(g_cg, sup_cg_tier_fd(g_cg, 1), SUP_CG_K_CPU_WEIGHT, &v),
		     -EOPNOTSUPP);
}

Test(tree, should_report_the_kernels_errno_with_the_file_name)
{
	struct sup_cg_val v = { .num = 200 };
	char msg[256];
	int r;

	need_host();
	g_cg = open_tree(0);
	r = sup_cg_write_file(sup_cg_tier_fd(g_cg, 2), "cgroup.max.depth", "bogus", 5);
	cr_assert_eq(r, -EINVAL);
	sup_cg_errmsg(msg, sizeof(msg), "tier2", "cgroup.max.depth", r);
	cr_assert(strstr(msg, "tier2: cgroup.max.depth: Invalid argument") &&
		  strstr(msg, "rejected"), "%s", msg);
	if (!sup_cg_ctrl_live(g_cg, SUP_CG_CPU)) {
		/* Without the context's check the write reaches the kernel,
		 * which has no such file. */
		r = sup_cg_knob_write(NULL, sup_cg_tier_fd(g_cg, 2), SUP_CG_K_CPU_WEIGHT, &v);
		cr_assert_eq(r, -ENOENT);
		cr_assert_eq(sup_cg_knob_present(sup_cg_tier_fd(g_cg, 2), SUP_CG_K_CPU_WEIGHT), 0);
	}
}

Test(tree, should_read_cpu_stat_and_pressure_on_a_tier)
{
	struct sup_cg_cpu_stat cs;
	struct sup_cg_psi psi;
	struct sup_cg_events ev;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_read_cpu_stat(sup_cg_tier_fd(g_cg, 1), &cs), 0);
	cr_assert_eq(sup_cg_read_events(sup_cg_tier_fd(g_cg, 1), &ev), 0);
	cr_assert_not(ev.populated);
	if (sup_cg_read_psi(sup_cg_tier_fd(g_cg, 1), SUP_CG_PSI_CPU, &psi) == -ENOENT)
		cr_skip_test("no PSI files (kernel built without CONFIG_PSI or psi=0)");
	cr_assert_eq(sup_cg_read_psi(sup_cg_tier_fd(g_cg, 1), SUP_CG_PSI_IO, &psi), 0);
}

Test(tree, should_validate_leaf_names_and_tiers)
{
	struct sup_cg_leaf *l;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "../evil", &l), -EINVAL);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, ".hidden", &l), -EINVAL);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "", &l), -EINVAL);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 0, "ok", &l), -EINVAL);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 5, "ok", &l), -EINVAL);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 4, "worker-1.b_c", &l), 0);
	cr_assert_str_eq(sup_cg_leaf_path(l), "tier4/agent-worker-1.b_c");
	cr_assert_eq(sup_cg_leaf_remove(g_cg, l), 0);
}

/* ---- spawning into a leaf --------------------------------------------------------- */

/* Does /proc/self/cgroup end with want? Only open/read: fine in any child. */
static int in_cgroup(const char *want)
{
	char buf[512];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	size_t wl = strlen(want);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return (size_t)n >= wl && !strcmp(buf + n - wl, want);
}

static void fork_into_places(unsigned flags)
{
	struct sup_cg_leaf *l;
	char want[128];
	int pidfd = -1;
	pid_t pid;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 2, "child", &l), 0);
	snprintf(want, sizeof(want), "/%s/tier2/agent-child", g_root);
	pid = sup_cg_fork_into(sup_cg_leaf_fd(l), flags | SUP_CG_SPAWN_PIDFD, &pidfd);
	if (pid == 0)
		_exit(in_cgroup(want) ? 0 : 1);
	cr_assert_gt(pid, 0, "fork_into: %s", strerror(-pid));
	cr_assert_geq(pidfd, 0);
	cr_assert(fcntl(pidfd, F_GETFD) & FD_CLOEXEC, "pidfd must be close-on-exec");
	{
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		cr_assert_eq(poll(&p, 1, 5000), 1, "pidfd reports the exit");
	}
	close(pidfd);
	cr_assert_eq(wait_exit(pid), 0, "child ran outside %s", want);
	sup_cg_leaf_free(l);
}

Test(tree, should_fork_straight_into_the_leaf_with_clone3)
{
	fork_into_places(0);
}

Test(tree, should_fork_into_the_leaf_through_the_fallback)
{
	fork_into_places(SUP_CG_SPAWN_NO_CLONE3);
}

struct vm_child {
	int   out;          /* pipe: the child reports where it runs */
	char  want[128];
	volatile int touched;
};

/* vfork-style child: open/read/write/close are plain syscalls. */
static int vm_child_fn(void *arg)
{
	struct vm_child *c = arg;
	char ok = (char)('0' + in_cgroup(c->want));

	c->touched = 1;
	if (write(c->out, &ok, 1) != 1)
		return 2;
	return 0;
}

static void spawn_fn_places(unsigned flags, bool expect_shared)
{
	struct sup_cg_leaf *l;
	struct vm_child c = { .touched = 0 };
	int p[2];
	char ok = 0;
	pid_t pid;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 3, "vm", &l), 0);
	snprintf(c.want, sizeof(c.want), "/%s/tier3/agent-vm", g_root);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	c.out = p[1];
	pid = sup_cg_spawn_fn(sup_cg_leaf_fd(l), vm_child_fn, &c, NULL, 0, flags, NULL);
	cr_assert_gt(pid, 0, "spawn_fn: %s", strerror(-pid));
	close(p[1]);
	cr_assert_eq(read(p[0], &ok, 1), 1);
	close(p[0]);
	cr_assert_eq(ok, '1', "child ran outside %s", c.want);
	cr_assert_eq(wait_exit(pid), 0);
	/* CLONE_VM: the child's store is the parent's memory. */
	cr_assert_eq(c.touched, expect_shared ? 1 : 0);
	sup_cg_leaf_free(l);
}

Test(tree, should_spawn_with_clone_vm_into_the_leaf)
{
#ifdef __x86_64__
	spawn_fn_places(0, true);
#else
	cr_skip_test("the CLONE_VM trampoline is x86-64 only; other arches use the fallback");
#endif
}

Test(tree, should_spawn_a_function_into_the_leaf_through_the_fallback)
{
	spawn_fn_places(SUP_CG_SPAWN_NO_CLONE3, false);
}

struct exec_child {
	const char *path;
	char *const *argv;
};

static int exec_fn(void *arg)
{
	struct exec_child *e = arg;
	static char *const envp[] = { NULL };

	syscall(SYS_execve, e->path, e->argv, envp);
	return 127;
}

Test(tree, should_exec_in_the_child_and_report_exec_failure_as_127)
{
	static char *const argv_true[] = { "true", NULL };
	struct exec_child ok = { "/bin/true", argv_true }, bad = { "/nonexistent/x", argv_true };
	struct sup_cg_leaf *l;
	pid_t pid;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "exec", &l), 0);
	pid = sup_cg_spawn_fn(sup_cg_leaf_fd(l), exec_fn, &ok, NULL, 0, 0, NULL);
	cr_assert_gt(pid, 0);
	cr_assert_eq(wait_exit(pid), 0);
	pid = sup_cg_spawn_fn(sup_cg_leaf_fd(l), exec_fn, &bad, NULL, 0, 0, NULL);
	cr_assert_gt(pid, 0);
	cr_assert_eq(wait_exit(pid), 127);
	sup_cg_leaf_free(l);
}

Test(tree, should_spawn_many_children_quickly)
{
	static char *const argv_true[] = { "true", NULL };
	struct exec_child ok = { "/bin/true", argv_true };
	struct sup_cg_leaf *l;
	struct timespec a, b;
	double ms;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "many", &l), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 200; i++) {
		pid_t pid = sup_cg_spawn_fn(sup_cg_leaf_fd(l), exec_fn, &ok, NULL, 0, 0, NULL);

		cr_assert_gt(pid, 0, "spawn %d: %s", i, strerror(-pid));
		cr_assert_eq(wait_exit(pid), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	cr_log_info("200 spawn+exec+wait into a leaf: %.1f ms (%.2f ms each)", ms, ms / 200);
	cr_assert_lt(ms, 20000.0);
	sup_cg_leaf_free(l);
}

Test(tree, should_refuse_to_reuse_a_populated_leaf)
{
	struct sup_cg_leaf *l, *l2;
	pid_t pid;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "busy", &l), 0);
	pid = sup_cg_fork_into(sup_cg_leaf_fd(l), 0, NULL);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "busy", &l2), -EBUSY);
	cr_assert_eq(sup_cg_leaf_remove(g_cg, l), 0);
	cr_assert_eq(wait_exit(pid), 128 + SIGKILL);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "busy", &l2), 0, "an empty leaf is reused");
	sup_cg_leaf_free(l2);
}

/* ---- kill, freeze, watch ------------------------------------------------------------ */

/* n children in the leaf; each also forks a grandchild, all pause. */
static void start_family(int leaf_fd, pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		pid_t pid = sup_cg_fork_into(leaf_fd, 0, NULL);

		if (pid == 0) {
			if (fork() < 0)
				_exit(3);
			for (;;)
				pause();
		}
		cr_assert_gt(pid, 0);
		pids[i] = pid;
	}
}

static void wait_populated(int fd, int want_procs)
{
	for (int i = 0; i < 500; i++) {
		pid_t p[16];

		if (sup_cg_list_pids(fd, p, 16) >= want_procs)
			return;
		usleep(10000);
	}
	cr_assert_fail("processes did not appear in the leaf");
}

static void kill_family(bool fallback)
{
	struct sup_cg_leaf *l;
	pid_t pids[3];
	char buf[256];
	int wfd, r;

	need_host();
	g_cg = open_tree(0);
	/* Orphaned grandchildren come back to us, so nothing escapes the check. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 2, "family", &l), 0);
	start_family(sup_cg_leaf_fd(l), pids, 3);
	wait_populated(sup_cg_leaf_fd(l), 6);
	wfd = sup_cg_watch_open(sup_cg_leaf_fd(l), "cgroup.events");
	cr_assert_geq(wfd, 0);
	r = fallback ? sup_cg_kill_procs(sup_cg_leaf_fd(l)) : sup_cg_kill(sup_cg_leaf_fd(l));
	cr_assert_eq(r, 0, "kill: %s", strerror(-r));
	cr_assert_eq(sup_cg_watch_wait(wfd, 5000), 1, "cgroup.events did not signal the change");
	cr_assert_eq(sup_cg_wait_empty(sup_cg_leaf_fd(l), 5000), 0);
	r = sup_cg_watch_read(wfd, buf, sizeof(buf));
	cr_assert_gt(r, 0);
	cr_assert(strstr(buf, "populated 0"), "%s", buf);
	close(wfd);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(wait_exit(pids[i]), 128 + SIGKILL);
	/* The three grandchildren, reparented to us. */
	for (int i = 0; i < 3; i++) {
		int st;

		cr_assert_gt(waitpid(-1, &st, 0), 0);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "nothing left running");
	cr_assert_eq(sup_cg_leaf_remove(g_cg, l), 0);
}

Test(tree, should_kill_a_leaf_with_cgroup_kill_and_see_populated_0)
{
	kill_family(false);
}

Test(tree, should_kill_a_leaf_by_pids_when_cgroup_kill_is_missing)
{
	kill_family(true);
}

static uint64_t usage(int fd)
{
	struct sup_cg_cpu_stat cs;

	cr_assert_eq(sup_cg_read_cpu_stat(fd, &cs), 0);
	return cs.usage_usec;
}

static void freeze_target(bool whole_tier)
{
	struct sup_cg_leaf *l;
	struct sup_cg_events ev;
	uint64_t u0, u1;
	int fd, target;
	pid_t pid;

	need_host();
	g_cg = open_tree(0);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 3, "spin", &l), 0);
	fd = sup_cg_leaf_fd(l);
	target = whole_tier ? sup_cg_tier_fd(g_cg, 3) : fd;
	pid = sup_cg_fork_into(fd, 0, NULL);
	if (pid == 0)
		for (;;)
			__asm__ __volatile__("" ::: "memory");
	cr_assert_gt(pid, 0);
	cr_assert_eq(sup_cg_freeze(target, true), 0);
	cr_assert_eq(sup_cg_wait_frozen(target, true, 5000), 0);
	cr_assert_eq(sup_cg_read_events(fd, &ev), 0);
	cr_assert(ev.frozen, "the leaf is frozen with its tier");
	u0 = usage(fd);
	usleep(300000);
	u1 = usage(fd);
	cr_assert_lt(u1 - u0, 5000, "a frozen task used %llu us of CPU",
		     (unsigned long long)(u1 - u0));
	cr_assert_eq(sup_cg_freeze(target, false), 0);
	cr_assert_eq(sup_cg_wait_frozen(target, false, 5000), 0);
	usleep(300000);
	cr_assert_gt(usage(fd) - u1, 50000, "the thawed task runs again");
	cr_assert_eq(sup_cg_leaf_remove(g_cg, l), 0);
	cr_assert_eq(wait_exit(pid), 128 + SIGKILL);
}

Test(tree, should_freeze_and_thaw_a_leaf)
{
	freeze_target(false);
}

Test(tree, should_freeze_and_thaw_a_whole_tier)
{
	freeze_target(true);
}

Test(tree, should_kill_a_frozen_leaf_on_destroy)
{
	struct sup_cg_leaf *l;
	char root[4096];
	pid_t pids[2];

	need_host();
	g_cg = open_tree(0);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	cr_assert_eq(sup_cg_leaf_open(g_cg, 1, "ice", &l), 0);
	start_family(sup_cg_leaf_fd(l), pids, 2);
	wait_populated(sup_cg_leaf_fd(l), 4);
	cr_assert_eq(sup_cg_freeze(sup_cg_leaf_fd(l), true), 0);
	cr_assert_eq(sup_cg_wait_frozen(sup_cg_leaf_fd(l), true, 5000), 0);
	sup_cg_leaf_free(l);
	snprintf(root, sizeof(root), "%s", sup_cg_root_path(g_cg));
	cr_assert_eq(sup_cg_destroy(g_cg), 0);
	g_cg = NULL;
	cr_assert_not(path_exists(root));
	for (int i = 0; i < 4; i++)
		cr_assert_gt(waitpid(-1, NULL, 0), 0);
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "nothing left running");
}
