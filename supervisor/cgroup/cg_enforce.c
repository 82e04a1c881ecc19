/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "cg_enforce.h"
#include "cg_proc.h"

/* /proc/self/mountinfo and /proc/cgroups; past this they are not real. */
#define SLURP_MAX ((size_t)16 << 20)

enum sup_cg_ctrl sup_limit_ctrl(enum sup_limit l)
{
	switch (l) {
	case SUP_LIM_CPU_WEIGHT:
	case SUP_LIM_CPU_MAX:
	case SUP_LIM_CPU_IDLE:
		return SUP_CG_CPU;
	case SUP_LIM_MEMORY_LOW:
	case SUP_LIM_MEMORY_HIGH:
	case SUP_LIM_MEMORY_MAX:
	case SUP_LIM_MEMORY_SWAP_MAX:
	case SUP_LIM_MEMORY_OOM_GROUP:
		return SUP_CG_MEMORY;
	case SUP_LIM_IO_WEIGHT:
	case SUP_LIM_IO_MAX:
		return SUP_CG_IO;
	case SUP_LIM_PIDS_MAX:
		return SUP_CG_PIDS;
	case SUP_LIM_CPUSET_CPUS:
		return SUP_CG_CPUSET;
	default:
		return SUP_CG_NCTRL;
	}
}

unsigned sup_limits_unenforced(const struct sup_limits *l, unsigned live)
{
	unsigned bits = 0;

	for (int i = 0; i < SUP_LIM_COUNT; i++) {
		enum sup_cg_ctrl c = sup_limit_ctrl((enum sup_limit)i);

		if (sup_limit_is_set(l, (enum sup_limit)i) && c < SUP_CG_NCTRL && !(live & (1u << c)))
			bits |= SUP_LIM_BIT(i);
	}
	return bits;
}

int sup_limits_format(unsigned bits, char *buf, size_t sz)
{
	size_t n = 0;

	if (sz)
		buf[0] = 0;
	for (int i = 0; i < SUP_LIM_COUNT; i++) {
		int w;

		if (!(bits & SUP_LIM_BIT(i)))
			continue;
		w = snprintf(buf + (n < sz ? n : sz), n < sz ? sz - n : 0, "%s%s", n ? ", " : "",
			     sup_limit_key((enum sup_limit)i));
		if (w > 0)
			n += (size_t)w;
	}
	return (int)n;
}

/* NULL when it cannot be read: the caller says "not found" then. */
static char *slurp(const char *path, size_t *ret_len)
{
	char *buf;

	return sup_read_file_alloc(AT_FDCWD, path, SLURP_MAX, &buf, ret_len) < 0 ? NULL : buf;
}

int sup_cg_host_controllers(unsigned *ret_live, char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX])
{
	struct sup_cg_mount m;
	size_t mlen = 0, plen = 0, clen = 0;
	char *mi = slurp("/proc/self/mountinfo", &mlen), *pc = slurp("/proc/cgroups", &plen);
	char *ctrls = NULL, path[PATH_MAX + 32];
	int r = 0;

	*ret_live = 0;
	for (int c = 0; c < SUP_CG_NCTRL; c++)
		snprintf(why[c], SUP_CG_WHY_MAX, "no cgroup2 mount");
	if (!mi || sup_cg_parse_mountinfo(mi, mlen, &m) < 0) {
		r = -ENOENT;
		goto free_files;
	}
	snprintf(path, sizeof(path), "%s/cgroup.controllers", m.path);
	ctrls = slurp(path, &clen);
	for (int c = 0; c < SUP_CG_NCTRL; c++) {
		const char *name = sup_cg_ctrl_name((enum sup_cg_ctrl)c);
		size_t nl = strlen(name);
		bool found = false;

		for (const char *s = ctrls; s && (s = strstr(s, name)); s += nl)
			if ((s == ctrls || s[-1] == ' ') && (s[nl] == ' ' || s[nl] == '\n' || !s[nl]))
				found = true;
		why[c][0] = 0;
		if (found)
			*ret_live |= 1u << c;
		else if (!pc || !sup_cg_explain_missing(name, mi, mlen, pc, plen, why[c], SUP_CG_WHY_MAX))
			snprintf(why[c], SUP_CG_WHY_MAX, "not in %.400s", path);
	}
free_files:
	free(ctrls);
	free(mi);
	free(pc);
	return r;
}
