/* SPDX-License-Identifier: MIT */
/*
 * spawn — start one agent incarnation inside its cgroup leaf.
 *
 * The child (clone3 into the leaf, sharing memory until exec) places the
 * ring memfd and the doorbells at TIER_FD_RING/CQ_BELL/SQ_BELL, stdio at
 * 0/1/2, closes every other fd, starts a new session, applies rlimits and
 * the working directory, drops privileges (supplementary groups cleared,
 * gid, uid, capabilities reduced to the kept set: bounding set, then
 * ambient for a non-root user), sets PR_SET_NO_NEW_PRIVS and the
 * parent-death signal *after* the credential change (the kernel clears the
 * latter on one), resets signal dispositions and mask, and execs. With
 * `sandbox`, first of all (while it still has every capability and its
 * parent's fds), it joins the agents' mount namespace and unshares a cgroup
 * namespace rooted at its leaf (see sandbox.h). Any
 * failure is reported to the parent through a close-on-exec pipe as the
 * failing step and its errno.
 */
#ifndef SUP_SPAWN_H
#define SUP_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/execpath.h"  /* sup_spawn_resolve, for spawn.h's users */
#include "spawn_step.h"

#define SUP_SPAWN_MAX_RLIMITS 16

struct sup_sandbox_plan;

struct sup_spawn_req {
	int           leaf_fd;      /* cgroup leaf directory */
	const char   *path;         /* executable, already resolved */
	char *const  *argv;
	char *const  *envp;
	const char   *workdir;      /* NULL: / */
	bool          set_creds;
	uid_t         uid;
	gid_t         gid;
	uint64_t      caps_keep;    /* bit n = capability n */
	int           n_rlimits;
	struct {
		int           resource;
		struct rlimit lim;
	} rlimits[SUP_SPAWN_MAX_RLIMITS];
	int           fd_ring, fd_cq_bell, fd_sq_bell;  /* -> 3, 4, 5 */
	int           fd_stdin, fd_stdout, fd_stderr;   /* -> 0, 1, 2 */
	int           pdeath_signal;                    /* e.g. SIGKILL */
	unsigned      cg_flags;     /* SUP_CG_SPAWN_NO_CLONE3 to force fork */
	/* The sandbox (sandbox.h): a cgroup namespace of the agent's own, and
	 * the agents' mount namespace, joined from mntns_fd or, without one
	 * (mntns_fd < 0), made in the child from sandbox_plan. */
	bool          sandbox;
	int           mntns_fd;
	const struct sup_sandbox_plan *sandbox_plan;
};

/* The step's name for messages ("setresuid", "execve" ...). */
const char *sup_spawn_step_name(enum sup_spawn_step s);

struct sup_spawn_result {
	pid_t               pid;
	int                 pidfd;   /* close-on-exec */
	enum sup_spawn_step failed_step;
	int                 child_errno;
};

/* Returns 0 with pid/pidfd set, or -errno. When the child failed before or
 * at exec, returns -child_errno with failed_step set (and the child reaped),
 * so "exec of a missing binary" comes back as -ENOENT at SUP_STEP_EXEC. */
int sup_spawn(const struct sup_spawn_req *req, struct sup_spawn_result *ret);

/* Highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap). */
int sup_spawn_cap_last(void);

#endif
