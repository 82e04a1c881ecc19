/* SPDX-License-Identifier: MIT */
/* The sandbox's plan: which mounts become read-only, read from mountinfo. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../supervisor/sandbox.h"

static const char hybrid[] =
	"22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 master:2 - cgroup cgroup "
	"rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	"50 22 0:40 / /srv/with\\040space rw - cgroup2 cgroup2 rw\n"
	"51 41 0:38 /x /sys/fs/cgroup/unified/x rw - cgroup2 cgroup2 rw\n"
	"60 22 0:41 / /mnt/cgroupfake rw - cgroupfs x rw\n";

Test(sandbox_plan, should_take_every_cgroup_mount_once_and_nothing_else)
{
	struct sup_sandbox_plan p;

	cr_assert_eq(sup_sandbox_plan_parse(&p, hybrid, sizeof(hybrid) - 1, "/run/t.sock"), 0);
	cr_assert_eq(p.n_ro, 5, "cpu, freezer, systemd, unified, the escaped one: %zu", p.n_ro);
	cr_assert_str_eq(p.ro[0], "/sys/fs/cgroup/cpu");
	cr_assert_str_eq(p.ro[1], "/sys/fs/cgroup/freezer");
	cr_assert_str_eq(p.ro[3], "/sys/fs/cgroup/unified");
	cr_assert_str_eq(p.ro[4], "/srv/with space", "octal escapes undone");
	cr_assert_eq(p.n_skipped, 1, "a mount below another is covered by its AT_RECURSIVE");
	cr_assert_str_eq(p.hide, "/run/t.sock");
	sup_sandbox_plan_free(&p);
}

Test(sandbox_plan, should_keep_the_outer_mount_when_it_comes_second)
{
	static const char mi[] =
		"51 41 0:38 /x /sys/fs/cgroup/unified/x rw - cgroup2 cgroup2 rw\n"
		"41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
	struct sup_sandbox_plan p;

	cr_assert_eq(sup_sandbox_plan_parse(&p, mi, sizeof(mi) - 1, NULL), 0);
	cr_assert_eq(p.n_ro, 1);
	cr_assert_str_eq(p.ro[0], "/sys/fs/cgroup/unified");
	cr_assert_null(p.hide);
	sup_sandbox_plan_free(&p);
}

Test(sandbox_plan, should_refuse_more_mounts_than_it_holds)
{
	char mi[SUP_SANDBOX_MAX_MOUNTS * 80 + 200];
	struct sup_sandbox_plan p;
	size_t n = 0;

	for (int i = 0; i <= SUP_SANDBOX_MAX_MOUNTS; i++)
		n += (size_t)snprintf(mi + n, sizeof(mi) - n,
				      "%d 1 0:%d / /cg/%d rw - cgroup cgroup rw\n", 100 + i, i, i);
	cr_assert_eq(sup_sandbox_plan_parse(&p, mi, n, NULL), -E2BIG);
	cr_assert_eq(p.n_ro, 0, "nothing left allocated");
}

Test(sandbox_plan, should_ignore_truncated_lines)
{
	static const char mi[] = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgr";
	struct sup_sandbox_plan p;

	cr_assert_eq(sup_sandbox_plan_parse(&p, mi, sizeof(mi) - 1, NULL), 0);
	cr_assert_eq(p.n_ro, 0);
	sup_sandbox_plan_free(&p);
}
