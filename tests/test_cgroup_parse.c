/* SPDX-License-Identifier: MIT */
/*
 * cgroup module, the pure parts: mount discovery, /proc/self/cgroup, the
 * missing-controller reasons, knob values, stat parsers, error messages.
 */
#include "cgroup_test.h"

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
