/* SPDX-License-Identifier: MIT */
/*
 * cgroup — tierd's cgroup v2 tier tree.
 *
 *   <root>/                  tierd's own (created, or delegated by systemd)
 *   ├── supervisor/          tierd itself: the root holds no process
 *   ├── tier1/agent-NAME/    one leaf per agent
 *   ├── ...
 *   └── tierN/
 *
 * sup_cg_open() finds the cgroup2 mount, settles the root, takes the
 * per-root lock (a second instance on the same root gets -EBUSY), reclaims
 * whatever a crashed instance left (killing what still runs there), moves
 * the caller into supervisor/, enables every controller among cpu, cpuset,
 * memory, io and pids that the kernel offers, top-down, and creates the
 * tiers. A controller that is not offered (hybrid hosts bind them to v1) is
 * not an error: sup_cg_ctrl_live() says no, sup_cg_ctrl_reason() says why
 * (for the caller to log once and for `tierctl status`), and knobs of that
 * controller return -EOPNOTSUPP.
 *
 * The handle keeps an O_DIRECTORY|O_CLOEXEC fd for the root, supervisor/,
 * each tier and (in struct sup_cg_leaf) each leaf: knob writes, reads,
 * watches and clone3(CLONE_INTO_CGROUP) all work on those fds. The helpers
 * of cg_util.h, cg_stat.h, cg_knob.h and cg_spawn.h take them.
 *
 * Library code: returns -errno, never logs. Not thread-safe; one handle per
 * supervisor.
 */
#ifndef SUP_CGROUP_H
#define SUP_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

/* Only what this interface uses (enum sup_cg_ctrl); users include the
 * cg_*.h helpers they call. */
#include "cg_ctrl.h"

#define SUP_CG_ROOT_DEFAULT   "tierd"
#define SUP_CG_NTIERS_DEFAULT 4
#define SUP_CG_NTIERS_MAX     16
#define SUP_CG_SUPERVISOR     "supervisor"

enum sup_cg_delegate {
	/* Use the caller's own cgroup as the root when systemd marked it
	 * delegated (xattr trusted.delegate or user.delegate = 1, set for
	 * Delegate=yes units), else create opts.root under the mount. */
	SUP_CG_DELEG_AUTO,
	SUP_CG_DELEG_NEVER,   /* always create opts.root */
	SUP_CG_DELEG_ALWAYS,  /* the caller's cgroup is the root, marked or not */
};

#define SUP_CG_F_NO_RECLAIM (1u << 0) /* a stale tree is an error (-EEXIST) */
#define SUP_CG_F_NO_ENTER   (1u << 1) /* leave the caller where it is */

struct sup_cg_opts {
	size_t      sz;               /* sizeof(struct sup_cg_opts) */
	const char *root;             /* path below the mount; NULL = "tierd" */
	unsigned    ntiers;           /* 0 = SUP_CG_NTIERS_DEFAULT */
	enum sup_cg_delegate delegate;
	unsigned    flags;            /* SUP_CG_F_* */
	/* NULL = flock the root cgroup directory itself: the lock then names
	 * exactly the tree it protects, wherever cgroup2 is mounted. */
	const char *lock_path;
	int         kill_timeout_ms;  /* 0 = SUP_CG_KILL_TIMEOUT_MS_DEFAULT */
	/* For tests; NULL = the real /proc files. */
	const char *mountinfo_path;
	const char *proc_cgroup_path;
	const char *proc_cgroups_path;
	/* On failure, sup_cg_open writes what failed (step, path, strerror)
	 * here. Optional. */
	char       *errbuf;
	size_t      errbuf_sz;
};

struct sup_cg;

/* NULL with errno set on failure: ENOENT (no cgroup2 mount), EBUSY (another
 * instance holds the root), EEXIST (stale tree with SUP_CG_F_NO_RECLAIM),
 * EACCES/EPERM, EINVAL (bad options), or what the kernel said. */
struct sup_cg *sup_cg_open(const struct sup_cg_opts *opts);
/* The kill timeout in force (opts.kill_timeout_ms or the default). */
int sup_cg_kill_timeout_ms(const struct sup_cg *cg);
/* Release the lock and free; the tree stays as it is (the next open
 * reclaims it). NULL is fine. */
void sup_cg_close(struct sup_cg *cg);
/* A handle on no tree: no directory, no tier, no controller. For callers
 * that run without cgroups (the unit tests of the modules above); every
 * knob write and read through it fails. NULL, errno. */
struct sup_cg *sup_cg_detached(void);
/* Move the caller out of the tree, kill everything in it, wait for it to
 * empty, remove it bottom-up (a delegated root itself stays), then close.
 * Always frees cg; returns the first error. NULL is fine. */
int sup_cg_destroy(struct sup_cg *cg);

const char *sup_cg_mount_path(const struct sup_cg *cg);
const char *sup_cg_root_path(const struct sup_cg *cg);   /* absolute */
bool sup_cg_delegated(const struct sup_cg *cg);
unsigned sup_cg_ntiers(const struct sup_cg *cg);
int sup_cg_root_fd(const struct sup_cg *cg);
int sup_cg_supervisor_fd(const struct sup_cg *cg);
/* tier in 1..ntiers; -EINVAL otherwise. */
int sup_cg_tier_fd(const struct sup_cg *cg, unsigned tier);
bool sup_cg_ctrl_live(const struct sup_cg *cg, enum sup_cg_ctrl c);
/* Why a controller is not live; NULL when it is. */
const char *sup_cg_ctrl_reason(const struct sup_cg *cg, enum sup_cg_ctrl c);
/* What the stale-tree reclaim found and did, one line per cgroup; NULL
 * when the root was clean. */
const char *sup_cg_reclaim_report(const struct sup_cg *cg);

/* Live upgrade (docs/handover.md): the tree's handles and fds, its lock
 * included, into the state; restore takes them back without opening,
 * locking or reclaiming anything (NULL: the error is in r, and no fd was
 * closed); forget frees a restored tree whose fds go back unclosed. */
struct sup_ho_w;
struct sup_ho_r;
void sup_cg_save(const struct sup_cg *cg, struct sup_ho_w *w);
struct sup_cg *sup_cg_restore(struct sup_ho_r *r);
void sup_cg_forget(struct sup_cg *cg);

#endif
