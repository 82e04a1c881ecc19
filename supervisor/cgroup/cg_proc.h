/* SPDX-License-Identifier: MIT */
/*
 * cg_proc — what /proc says about cgroups: where cgroup2 is mounted
 * (/proc/self/mountinfo), which cgroup a process is in (/proc/self/cgroup),
 * and why a controller is missing from cgroup2 (/proc/cgroups, mountinfo).
 * Pure functions on buffers, so every layout (pure v2, hybrid, none,
 * cgroup namespaces) is unit-tested from sample files.
 */
#ifndef SUP_CG_PROC_H
#define SUP_CG_PROC_H

#include <limits.h>
#include <stddef.h>

struct sup_cg_mount {
	char path[PATH_MAX]; /* mount point, e.g. /sys/fs/cgroup/unified */
	char root[PATH_MAX]; /* cgroup that appears at the mount point, usually "/" */
};

/* The cgroup2 mount. With several, /sys/fs/cgroup wins, then
 * /sys/fs/cgroup/unified, then the first listed. -ENOENT when there is none
 * (a v1-only system). */
int sup_cg_parse_mountinfo(const char *buf, size_t len, struct sup_cg_mount *ret);

/* The unified-hierarchy ("0::") path from /proc/PID/cgroup, relative to the
 * cgroup namespace root, e.g. "/system.slice/tierd.service". -ENOENT if
 * the process is in no cgroup2 hierarchy. */
int sup_cg_parse_proc_cgroup(const char *buf, size_t len, char *ret_path, size_t sz);

/* Explain why controller `ctrl` (v2 name: "io", not "blkio") is absent
 * from cgroup2, from /proc/cgroups and mountinfo: not built in, disabled on
 * the command line, or bound to a v1 hierarchy (naming its mount point).
 * Returns 1 with a sentence in ret, or 0 when those files show no reason
 * (then a parent cgroup is simply not passing it down). */
int sup_cg_explain_missing(const char *ctrl, const char *mountinfo, size_t mlen,
			   const char *proc_cgroups, size_t plen, char *ret, size_t sz);

#endif
