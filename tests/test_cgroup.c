/* SPDX-License-Identifier: MIT */
/*
 * cgroup module: mount discovery, knob values, stat parsers (pure), and the
 * tier tree on the host's real cgroup2 mount (placement, cgroup.kill,
 * freeze, populated events, lock, stale reclaim, errors). Each host test
 * builds its tree under a root named after its own pid and removes it.
 * Limits cannot be shown on a hybrid host: the VM suite (tests/vm) does.
 */
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

/* ---- mount discovery ------------------------------------------------------ */

Test(mount, should_find_pure_v2_at_sys_fs_cgroup)
{
	struct sup_cg_mount m;

	cr_assert_eq(sup_cg_parse_mountinfo(MI_PURE, strlen(MI_PURE), &m), 0);
	cr_assert_str_eq(m.path, "/sys/fs/cgroup");
	cr_assert_str_eq(m.root, "/");
}

Test(mount, should_find_hybrid_unified_mount)
{
	struct sup_cg_mount m;

	cr_assert_eq(sup_cg_parse_mountinfo(MI_HYBRID, strlen(MI_HYBRID), &m), 0);
	cr_assert_str_eq(m.path, "/sys/fs/cgroup/unified");
}

Test(mount, should_report_enoent_without_cgroup2)
{
	struct sup_cg_mount m;

	cr_assert_eq(sup_cg_parse_mountinfo(MI_NONE, strlen(MI_NONE), &m), -ENOENT);
	cr_assert_eq(sup_cg_parse_mountinfo("", 0, &m), -ENOENT);
}

Test(mount, should_prefer_sys_fs_cgroup_over_other_mounts)
{
	static const char mi[] =
		"50 1 0:40 / /mnt/other rw - cgroup2 cgroup2 rw\n"
		"51 1 0:41 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
		"52 1 0:42 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
	static const char mi2[] = "50 1 0:40 / /mnt/other rw - cgroup2 cgroup2 rw\n"
				  "51 1 0:41 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
	struct sup_cg_mount m;

	cr_assert_eq(sup_cg_parse_mountinfo(mi, strlen(mi), &m), 0);
	cr_assert_str_eq(m.path, "/sys/fs/cgroup");
	cr_assert_eq(sup_cg_parse_mountinfo(mi2, strlen(mi2), &m), 0);
	cr_assert_str_eq(m.path, "/sys/fs/cgroup/unified");
}

Test(mount, should_unescape_paths_and_keep_the_mount_root)
{
	static const char mi[] = "60 1 0:50 /a\\040b /mnt/my\\040cg rw shared:3 master:1 - cgroup2 none rw\n";
	struct sup_cg_mount m;

	cr_assert_eq(sup_cg_parse_mountinfo(mi, strlen(mi), &m), 0);
	cr_assert_str_eq(m.path, "/mnt/my cg");
	cr_assert_str_eq(m.root, "/a b");
}

Test(mount, should_tolerate_a_buffer_without_final_newline)
{
	static const char mi[] = "26 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
	struct sup_cg_mount m;

	cr_assert_eq(sup_cg_parse_mountinfo(mi, strlen(mi), &m), 0);
	cr_assert_str_eq(m.path, "/sys/fs/cgroup");
}

Test(proccg, should_read_the_unified_line)
{
	static const char pure[] = "0::/system.slice/tierd.service\n";
	static const char hybrid[] = "9:name=systemd:/\n8:pids:/\n4:memory:/x\n0::/user.slice\n";
	char p[256];

	cr_assert_eq(sup_cg_parse_proc_cgroup(pure, strlen(pure), p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/system.slice/tierd.service");
	cr_assert_eq(sup_cg_parse_proc_cgroup(hybrid, strlen(hybrid), p, sizeof(p)), 0);
	cr_assert_str_eq(p, "/user.slice");
}

Test(proccg, should_fail_without_a_unified_line)
{
	static const char v1[] = "9:name=systemd:/\n8:pids:/\n";
	static const char bad[] = "0::relative\n";
	char p[256];

	cr_assert_eq(sup_cg_parse_proc_cgroup(v1, strlen(v1), p, sizeof(p)), -ENOENT);
	cr_assert_eq(sup_cg_parse_proc_cgroup(bad, strlen(bad), p, sizeof(p)), -EBADMSG);
	cr_assert_eq(sup_cg_parse_proc_cgroup("0::/abcdef\n", 11, p, 4), -ENAMETOOLONG);
}

Test(explain, should_name_the_v1_mount_of_a_hybrid_controller)
{
	char why[256];

	cr_assert_eq(sup_cg_explain_missing("cpu", MI_HYBRID, strlen(MI_HYBRID), PROC_CGROUPS_HYBRID,
					    strlen(PROC_CGROUPS_HYBRID), why, sizeof(why)), 1);
	cr_assert(strstr(why, "cgroup v1") && strstr(why, "/sys/fs/cgroup/cpu "), "%s", why);
}

Test(explain, should_map_io_to_blkio)
{
	char why[256];

	cr_assert_eq(sup_cg_explain_missing("io", MI_HYBRID, strlen(MI_HYBRID), PROC_CGROUPS_HYBRID,
					    strlen(PROC_CGROUPS_HYBRID), why, sizeof(why)), 1);
	cr_assert(strstr(why, "/sys/fs/cgroup/blkio"), "%s", why);
}

Test(explain, should_report_disabled_and_absent_controllers)
{
	char why[256];

	cr_assert_eq(sup_cg_explain_missing("memory", MI_HYBRID, strlen(MI_HYBRID),
					    PROC_CGROUPS_HYBRID, strlen(PROC_CGROUPS_HYBRID), why,
					    sizeof(why)), 1);
	cr_assert(strstr(why, "cgroup_disable=memory"), "%s", why);
	cr_assert_eq(sup_cg_explain_missing("misc", MI_HYBRID, strlen(MI_HYBRID), PROC_CGROUPS_HYBRID,
					    strlen(PROC_CGROUPS_HYBRID), why, sizeof(why)), 1);
	cr_assert(strstr(why, "not built"), "%s", why);
}

Test(explain, should_give_no_reason_for_a_v2_controller)
{
	char why[256];

	cr_assert_eq(sup_cg_explain_missing("pids", MI_PURE, strlen(MI_PURE), PROC_CGROUPS_HYBRID,
					    strlen(PROC_CGROUPS_HYBRID), why, sizeof(why)), 0);
}

/* ---- knob values ------------------------------------------------------------ */

static void expect_format(enum sup_cg_knob k, const char *text, const char *want)
{
	struct sup_cg_val v;
	char buf[SUP_CG_VAL_MAX];
	int r = sup_cg_knob_parse(k, text, &v);

	cr_assert_eq(r, 0, "%s \"%s\": parse %d", sup_cg_knob_file(k), text, r);
	r = sup_cg_knob_format(k, &v, buf, sizeof(buf));
	cr_assert_eq(r, (int)strlen(want), "%s \"%s\": format %d", sup_cg_knob_file(k), text, r);
	cr_assert_str_eq(buf, want);
}

static void expect_reject(enum sup_cg_knob k, const char *text, int err)
{
	struct sup_cg_val v;
	int r = sup_cg_knob_parse(k, text, &v);

	cr_assert_eq(r, err, "%s \"%s\": got %d, want %d", sup_cg_knob_file(k), text, r, err);
}

Test(knob, should_format_weights_within_kernel_bounds)
{
	expect_format(SUP_CG_K_CPU_WEIGHT, "100", "100");
	expect_format(SUP_CG_K_CPU_WEIGHT, " 10000\n", "10000");
	expect_reject(SUP_CG_K_CPU_WEIGHT, "0", -ERANGE);
	expect_reject(SUP_CG_K_CPU_WEIGHT, "10001", -ERANGE);
	expect_reject(SUP_CG_K_CPU_WEIGHT, "max", -EINVAL);
	expect_reject(SUP_CG_K_CPU_WEIGHT, "-5", -EINVAL);
	expect_reject(SUP_CG_K_CPU_WEIGHT, "12abc", -EINVAL);
	expect_reject(SUP_CG_K_CPU_WEIGHT, "", -EINVAL);
}

Test(knob, should_format_cpu_max_with_a_default_period)
{
	expect_format(SUP_CG_K_CPU_MAX, "25000", "25000 100000");
	expect_format(SUP_CG_K_CPU_MAX, "25000 50000", "25000 50000");
	expect_format(SUP_CG_K_CPU_MAX, "max", "max 100000");
	expect_format(SUP_CG_K_CPU_MAX, "max 200000", "max 200000");
	expect_reject(SUP_CG_K_CPU_MAX, "999", -ERANGE);
	expect_reject(SUP_CG_K_CPU_MAX, "25000 999", -ERANGE);
	expect_reject(SUP_CG_K_CPU_MAX, "25000 1000001", -ERANGE);
	expect_reject(SUP_CG_K_CPU_MAX, "25000 100000 7", -EINVAL);
}

Test(knob, should_accept_byte_suffixes_and_max_for_memory)
{
	expect_format(SUP_CG_K_MEMORY_MAX, "64M", "67108864");
	expect_format(SUP_CG_K_MEMORY_HIGH, "1g", "1073741824");
	expect_format(SUP_CG_K_MEMORY_LOW, "0", "0");
	expect_format(SUP_CG_K_MEMORY_SWAP_MAX, "max", "max");
	expect_reject(SUP_CG_K_MEMORY_MAX, "64X", -EINVAL);
	expect_reject(SUP_CG_K_MEMORY_MAX, "99999999999999999999", -ERANGE);
	expect_reject(SUP_CG_K_MEMORY_MAX, "17179869184T", -ERANGE);
	cr_assert(sup_cg_knob_may_stall(SUP_CG_K_MEMORY_MAX));
	cr_assert(sup_cg_knob_may_stall(SUP_CG_K_MEMORY_HIGH));
	cr_assert_not(sup_cg_knob_may_stall(SUP_CG_K_CPU_MAX));
}

Test(knob, should_take_booleans_as_0_or_1)
{
	expect_format(SUP_CG_K_MEMORY_OOM_GROUP, "1", "1");
	expect_format(SUP_CG_K_CPU_IDLE, "0", "0");
	expect_reject(SUP_CG_K_MEMORY_OOM_GROUP, "2", -ERANGE);
	expect_reject(SUP_CG_K_CPU_IDLE, "max", -EINVAL);
}

Test(knob, should_bound_pids_max)
{
	expect_format(SUP_CG_K_PIDS_MAX, "max", "max");
	expect_format(SUP_CG_K_PIDS_MAX, "0", "0");
	expect_format(SUP_CG_K_PIDS_MAX, "4194304", "4194304");
	expect_reject(SUP_CG_K_PIDS_MAX, "4194305", -ERANGE);
}

Test(knob, should_format_io_weights_default_or_per_device)
{
	expect_format(SUP_CG_K_IO_WEIGHT, "100", "default 100");
	expect_format(SUP_CG_K_IO_WEIGHT, "default 250", "default 250");
	expect_format(SUP_CG_K_IO_WEIGHT, "8:16 300", "8:16 300");
	expect_format(SUP_CG_K_IO_BFQ_WEIGHT, "1000", "default 1000");
	expect_reject(SUP_CG_K_IO_BFQ_WEIGHT, "1001", -ERANGE);
	expect_reject(SUP_CG_K_IO_WEIGHT, "0:0 100", -EINVAL);
	expect_reject(SUP_CG_K_IO_WEIGHT, "8:16", -EINVAL);
}

Test(knob, should_write_only_the_io_max_keys_that_are_set)
{
	struct sup_cg_val v = { .major = 1, .minor = 0, .rbps = 4194304, .wiops = SUP_CG_MAX };
	char buf[SUP_CG_VAL_MAX];

	cr_assert_eq(sup_cg_knob_format(SUP_CG_K_IO_MAX, &v, buf, sizeof(buf)),
		     (int)strlen("1:0 rbps=4194304 wiops=max"));
	cr_assert_str_eq(buf, "1:0 rbps=4194304 wiops=max");
	expect_format(SUP_CG_K_IO_MAX, "253:0 wbps=1000 riops=max", "253:0 wbps=1000 riops=max");
	expect_reject(SUP_CG_K_IO_MAX, "253:0", -EINVAL);
	expect_reject(SUP_CG_K_IO_MAX, "253:0 rbps=0", -ERANGE);
	expect_reject(SUP_CG_K_IO_MAX, "253:0 bogus=1", -EINVAL);
	expect_reject(SUP_CG_K_IO_MAX, "0:0 rbps=1", -EINVAL);
	expect_reject(SUP_CG_K_IO_MAX, "rbps=1", -EINVAL);
}

Test(knob, should_check_cpu_list_syntax)
{
	expect_format(SUP_CG_K_CPUSET_CPUS, "0-3,6", "0-3,6");
	expect_format(SUP_CG_K_CPUSET_CPUS, "1", "1");
	expect_format(SUP_CG_K_CPUSET_CPUS, "", "\n");
	expect_reject(SUP_CG_K_CPUSET_CPUS, "3-1", -EINVAL);
	expect_reject(SUP_CG_K_CPUSET_CPUS, "1,", -EINVAL);
	expect_reject(SUP_CG_K_CPUSET_CPUS, "a", -EINVAL);
	expect_reject(SUP_CG_K_CPUSET_CPUS, "0-70000", -ERANGE);
}

Test(knob, should_refuse_a_buffer_too_small)
{
	struct sup_cg_val v = { .num = 10000 };
	char buf[5];

	cr_assert_eq(sup_cg_knob_format(SUP_CG_K_CPU_WEIGHT, &v, buf, sizeof(buf)), -ENOBUFS);
}

Test(knob, should_map_file_names_both_ways)
{
	for (int k = 0; k < SUP_CG_K_COUNT; k++)
		cr_assert_eq(sup_cg_knob_lookup(sup_cg_knob_file(k)), k);
	cr_assert_eq(sup_cg_knob_lookup("cgroup.procs"), -ENOENT);
	cr_assert_eq(sup_cg_knob_ctrl(SUP_CG_K_IO_MAX), SUP_CG_IO);
	cr_assert_str_eq(sup_cg_ctrl_name(SUP_CG_PIDS), "pids");
}

Test(knob, should_prepare_an_async_write_without_a_context)
{
	struct sup_cg_val v = { .num = 64ull << 20 };
	struct sup_cg_write w;

	cr_assert_eq(sup_cg_knob_prepare(NULL, 7, SUP_CG_K_MEMORY_HIGH, &v, &w), 0);
	cr_assert_eq(w.dirfd, 7);
	cr_assert_str_eq(w.file, "memory.high");
	cr_assert_eq(w.len, 8);
	cr_assert_str_eq(w.buf, "67108864");
	v.num = 0;
	cr_assert_eq(sup_cg_knob_prepare(NULL, 7, SUP_CG_K_CPU_WEIGHT, &v, &w), -ERANGE);
}

/* ---- stat parsers ----------------------------------------------------------- */

Test(parse, should_read_cpu_stat_and_skip_unknown_keys)
{
	static const char s[] = "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n"
				"core_sched.force_idle_usec 0\nnr_periods 50\nnr_throttled 7\n"
				"throttled_usec 1234\nnr_bursts 0\nburst_usec 0\n";
	struct sup_cg_cpu_stat c;

	cr_assert_eq(sup_cg_parse_cpu_stat(s, strlen(s), &c), 0);
	cr_assert_eq(c.usage_usec, 1000);
	cr_assert_eq(c.user_usec, 600);
	cr_assert_eq(c.system_usec, 400);
	cr_assert_eq(c.nr_periods, 50);
	cr_assert_eq(c.nr_throttled, 7);
	cr_assert_eq(c.throttled_usec, 1234);
}

Test(parse, should_leave_out_params_untouched_on_a_bad_value)
{
	static const char s[] = "usage_usec 12x\n";
	struct sup_cg_cpu_stat c = { .usage_usec = 42 };

	cr_assert_eq(sup_cg_parse_cpu_stat(s, strlen(s), &c), -EBADMSG);
	cr_assert_eq(c.usage_usec, 42);
}

Test(parse, should_read_memory_events)
{
	static const char s[] = "low 0\nhigh 3\nmax 9\noom 2\noom_kill 1\noom_group_kill 1\n";
	struct sup_cg_mem_events e;

	cr_assert_eq(sup_cg_parse_mem_events(s, strlen(s), &e), 0);
	cr_assert_eq(e.high, 3);
	cr_assert_eq(e.max, 9);
	cr_assert_eq(e.oom, 2);
	cr_assert_eq(e.oom_kill, 1);
	cr_assert_eq(e.oom_group_kill, 1);
}

Test(parse, should_read_cgroup_events)
{
	static const char s[] = "populated 1\nfrozen 0\n";
	static const char bad[] = "populated 2\n";
	struct sup_cg_events e;

	cr_assert_eq(sup_cg_parse_events(s, strlen(s), &e), 0);
	cr_assert(e.populated);
	cr_assert_not(e.frozen);
	cr_assert_eq(sup_cg_parse_events(bad, strlen(bad), &e), -EBADMSG);
}

Test(parse, should_read_psi_with_and_without_full)
{
	static const char s[] = "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\n"
				"full avg10=0.10 avg60=0.00 avg300=0.00 total=99\n";
	static const char old_cpu[] = "some avg10=12.00 avg60=3.00 avg300=1.00 total=5\n";
	struct sup_cg_psi p;

	cr_assert_eq(sup_cg_parse_psi(s, strlen(s), &p), 0);
	cr_assert_float_eq(p.some.avg10, 1.5, 1e-9);
	cr_assert_float_eq(p.some.avg60, 0.25, 1e-9);
	cr_assert_eq(p.some.total, 12345);
	cr_assert(p.has_full);
	cr_assert_float_eq(p.full.avg10, 0.1, 1e-9);
	cr_assert_eq(p.full.total, 99);
	cr_assert_eq(sup_cg_parse_psi(old_cpu, strlen(old_cpu), &p), 0);
	cr_assert_not(p.has_full);
	cr_assert_float_eq(p.some.avg10, 12.0, 1e-9);
}

Test(parse, should_sum_io_stat_over_devices)
{
	static const char s[] = "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
				"1:0 rbytes=5 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=1\n";
	struct sup_cg_io_stat io;

	cr_assert_eq(sup_cg_parse_io_stat(s, strlen(s), &io), 0);
	cr_assert_eq(io.ndev, 2);
	cr_assert_eq(io.dev[1].major, 1);
	cr_assert_eq(io.dev[0].wbytes, 200);
	cr_assert_eq(io.total.rbytes, 105);
	cr_assert_eq(io.total.rios, 2);
	cr_assert_eq(sup_cg_parse_io_stat("x rbytes=1\n", 11, &io), -EBADMSG);
}

Test(parse, should_read_single_numbers_and_max)
{
	uint64_t v;

	cr_assert_eq(sup_cg_parse_u64("4096\n", 5, &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(sup_cg_parse_u64("max\n", 4, &v), 0);
	cr_assert_eq(v, SUP_CG_MAX);
	cr_assert_eq(sup_cg_parse_u64("1 2\n", 4, &v), -EBADMSG);
	cr_assert_eq(sup_cg_parse_u64("", 0, &v), -EBADMSG);
}

Test(errmsg, should_name_the_file_and_the_errno)
{
	char buf[256];

	sup_cg_errmsg(buf, sizeof(buf), "tier2", "memory.max", -EINVAL);
	cr_assert(strstr(buf, "tier2: memory.max: Invalid argument"), "%s", buf);
	sup_cg_errmsg(buf, sizeof(buf), NULL, "cgroup.subtree_control", EBUSY);
	cr_assert(strstr(buf, "no-internal-process"), "%s", buf);
}

/* ---- the host's cgroup2 --------------------------------------------------------- */

static struct sup_cg *g_cg;
static char g_root[64];
static char g_err[1024];

static bool host_cgroup2(void)
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

static void need_host(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to create cgroups on the host");
	if (!host_cgroup2())
		cr_skip_test("no cgroup2 mount on this host");
}

static void host_init(void)
{
	snprintf(g_root, sizeof(g_root), "tierd-test-%d", (int)getpid());
	g_cg = NULL;
}

/* Whatever a failed assertion left: tree, lock, leftover directories. */
static void host_fini(void)
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

static struct sup_cg *open_tree(unsigned flags)
{
	struct sup_cg_opts o = { .sz = sizeof(o), .root = g_root, .flags = flags,
				 .errbuf = g_err, .errbuf_sz = sizeof(g_err) };
	struct sup_cg *cg = sup_cg_open(&o);

	cr_assert_not_null(cg, "sup_cg_open: %s", g_err);
	return cg;
}

static void my_cgroup(char *out, size_t sz)
{
	char buf[1024];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	close(fd);
	cr_assert_gt(n, 0);
	cr_assert_eq(sup_cg_parse_proc_cgroup(buf, (size_t)n, out, sz), 0);
}

static bool path_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

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

static int wait_exit(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
