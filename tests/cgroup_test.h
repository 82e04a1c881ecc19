/* SPDX-License-Identifier: MIT */
/*
 * What the cgroup test programs share (test_cgroup_parse.c,
 * test_cgroup_tree.c, test_cgroup_lock.c): sample /proc files, and the
 * host fixture: each host test builds its tree under a root named after
 * its own pid (g_root) and host_fini removes whatever a failed assertion
 * left. static inline, so a program need not use them all.
 */
#ifndef TESTS_CGROUP_TEST_H
#define TESTS_CGROUP_TEST_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../supervisor/cgroup/cgroup.h"
#include "../supervisor/cgroup/cg_knob.h"
#include "../supervisor/cgroup/cg_leaf.h"
#include "../supervisor/cgroup/cg_proc.h"
#include "../supervisor/cgroup/cg_spawn.h"
#include "../supervisor/cgroup/cg_stat.h"
#include "../supervisor/cgroup/cg_util.h"

/* ---- sample /proc files ------------------------------------------------- */

static const char MI_PURE[] =
	"22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
	"26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n"
	"28 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n";

static const char MI_HYBRID[] =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const char MI_NONE[] =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

static const char PROC_CGROUPS_HYBRID[] =
	"#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
	"cpuset\t3\t1\t1\n"
	"cpu\t1\t1\t1\n"
	"cpuacct\t2\t1\t1\n"
	"blkio\t7\t1\t1\n"
	"memory\t4\t22\t0\n"
	"pids\t0\t1\t1\n";

/* ---- the host's cgroup2 --------------------------------------------------------- */

static struct sup_cg *g_cg;
static char g_root[64];
static char g_err[1024];

static inline bool host_cgroup2(void)
{
	struct sup_cg_mount m;
	char buf[65536];
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 && sup_cg_parse_mountinfo(buf, (size_t)n, &m) == 0;
}

static inline void need_host(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to create cgroups on the host");
	if (!host_cgroup2())
		cr_skip_test("no cgroup2 mount on this host");
}

static inline void host_init(void)
{
	snprintf(g_root, sizeof(g_root), "tierd-test-%d", (int)getpid());
	g_cg = NULL;
}

/* Whatever a failed assertion left: tree, lock, leftover directories. */
static inline void host_fini(void)
{
	struct sup_cg_mount m;
	char buf[65536];
	int fd;
	ssize_t n;

	if (g_cg)
		sup_cg_destroy(g_cg);
	g_cg = NULL;
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || sup_cg_parse_mountinfo(buf, (size_t)n, &m) < 0)
		return;
	fd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		sup_cg_move_pid(fd, 0);
		sup_cg_remove_tree(fd, g_root, 5000);
		close(fd);
	}
}

static inline struct sup_cg *open_tree(unsigned flags)
{
	struct sup_cg_opts o = { .sz = sizeof(o), .root = g_root, .flags = flags,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	struct sup_cg *cg = sup_cg_open(&o);

	cr_assert_not_null(cg, "sup_cg_open: %s", g_err);
	return cg;
}

static inline void my_cgroup(char *out, size_t sz)
{
	char buf[1024];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	close(fd);
	cr_assert_gt(n, 0);
	cr_assert_eq(sup_cg_parse_proc_cgroup(buf, (size_t)n, out, sz), 0);
}

static inline bool path_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static inline int wait_exit(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
