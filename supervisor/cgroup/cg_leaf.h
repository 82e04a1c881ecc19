/* SPDX-License-Identifier: MIT */
/*
 * cg_leaf — one agent's cgroup, <root>/tierN/agent-NAME.
 *
 * A leaf holds only processes (no children, no controllers enabled below
 * it). Its dir fd is what clone3(CLONE_INTO_CGROUP) and the knob, stat and
 * watch helpers take.
 */
#ifndef SUP_CG_LEAF_H
#define SUP_CG_LEAF_H

#include <stdbool.h>

#define SUP_CG_NAME_MAX    64       /* agent name, without the prefix */
#define SUP_CG_LEAF_PREFIX "agent-"

struct sup_cg;
struct sup_cg_leaf;

/* Agent names: 1..SUP_CG_NAME_MAX of [A-Za-z0-9_.-], not starting with '.'. */
bool sup_cg_name_valid(const char *name);

/* Create (or reuse, if empty) <root>/tierN/agent-NAME and open it.
 * -EBUSY if it exists and still holds processes. */
int sup_cg_leaf_open(struct sup_cg *cg, unsigned tier, const char *name,
		     struct sup_cg_leaf **ret_leaf);
int sup_cg_leaf_fd(const struct sup_cg_leaf *leaf);
/* "tierN/agent-NAME", relative to the root: for messages. */
const char *sup_cg_leaf_path(const struct sup_cg_leaf *leaf);
/* Kill what runs in the leaf, wait for it to empty, rmdir it; frees the
 * leaf whatever happens. */
int sup_cg_leaf_remove(struct sup_cg *cg, struct sup_cg_leaf *leaf);
/* cgroup.kill on the leaf, remembering that it was killed (see
 * sup_cg_probe_kill_taint: some kernels then kill every child cloned into
 * it). */
int sup_cg_leaf_kill(struct sup_cg_leaf *leaf);
bool sup_cg_leaf_killed(const struct sup_cg_leaf *leaf);
/* Replace an empty leaf by a fresh directory of the same name (knobs set
 * on the old one are gone: the caller sets them again). -EBUSY while it
 * still holds processes. */
int sup_cg_leaf_recreate(struct sup_cg *cg, struct sup_cg_leaf *leaf);
/* Close and free without touching the cgroup. NULL is fine. */
void sup_cg_leaf_free(struct sup_cg_leaf *leaf);
/* A leaf with no directory (fd -1), named name in tier: nothing can be
 * opened, written or killed through it. For unit tests of the modules
 * that hold leaves. NULL, errno. */
struct sup_cg_leaf *sup_cg_leaf_detached(unsigned tier, const char *name);

/* Live upgrade: the leaf's fd and state as fields of the caller's record;
 * restore rebuilds it (NULL: the error is in r). */
struct sup_ho_w;
struct sup_ho_r;
void sup_cg_leaf_save(const struct sup_cg_leaf *leaf, struct sup_ho_w *w);
struct sup_cg_leaf *sup_cg_leaf_restore(struct sup_ho_r *r, unsigned tier, const char *name);

#endif
