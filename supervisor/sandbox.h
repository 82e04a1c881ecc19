/* SPDX-License-Identifier: MIT */
/*
 * sandbox — the mount namespace agents run in (docs/security.md).
 *
 * Even a root agent (uid 0 without capabilities) must not write tierd's
 * cgroup tree, freeze it through a v1 freezer, reach the control socket or
 * retune the kernel. The agents' mount namespace is a slave copy of tierd's
 * in which every cgroup mount (v1 and v2; a hybrid host has a dozen) and
 * /proc/sys are recursively read-only (mount_setattr, 5.12+) and the
 * control socket is covered by a bind of /dev/null.
 *
 * It is made once, at start, by a short-lived child whose namespace tierd
 * keeps as an fd; each agent joins it with setns() before dropping its
 * capabilities (spawn.c), and unshares a cgroup namespace of its own once
 * CLONE_INTO_CGROUP has placed it in its leaf, so /proc/self/cgroup says
 * "/" and nothing of tierd's layout. sup_sandbox_apply() is the same setup
 * done in place, for a spawn that makes a namespace per agent (measured
 * against the shared one in bench/svb_sandbox.c).
 */
#ifndef SUP_SANDBOX_H
#define SUP_SANDBOX_H

#include <stddef.h>

#include "spawn_step.h"

#define SUP_SANDBOX_MAX_MOUNTS 64

struct sup_sandbox_plan {
	char   *ro[SUP_SANDBOX_MAX_MOUNTS];  /* cgroup mount points, outermost first */
	size_t  n_ro;
	char   *hide;                        /* control socket; NULL: none */
	size_t  n_skipped;                   /* cgroup mounts below another one */
};

/* The plan from /proc/self/mountinfo text: every cgroup and cgroup2 mount
 * point (octal escapes undone), none twice and none below another one (a
 * recursive setattr covers those). hide may be NULL. 0, -ENOMEM, -E2BIG
 * (more than SUP_SANDBOX_MAX_MOUNTS). */
int sup_sandbox_plan_parse(struct sup_sandbox_plan *p, const char *mountinfo, size_t len,
			   const char *hide);
/* The same from this process's mountinfo. */
int sup_sandbox_plan_load(struct sup_sandbox_plan *p, const char *hide);
void sup_sandbox_plan_free(struct sup_sandbox_plan *p);

/* In a child of tierd, raw system calls only (safe in a vfork child):
 * unshare the mount namespace, make / a recursive slave, the plan's mounts
 * and /proc/sys recursively read-only, hide the socket. -errno, with the
 * step that failed in *ret_step. */
int sup_sandbox_apply(const struct sup_sandbox_plan *p, enum sup_spawn_step *ret_step);

/* Make the namespace once: an fd (close-on-exec) for setns(CLONE_NEWNS).
 * -errno with *ret_step when a step was refused (EPERM in a container, or
 * no root; ENOSYS before 5.12). */
int sup_sandbox_prepare(const struct sup_sandbox_plan *p, int *ret_fd,
			enum sup_spawn_step *ret_step);

#endif
