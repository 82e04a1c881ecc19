/* SPDX-License-Identifier: MIT */
/* Agent leaves below the tiers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cg_leaf.h"
#include "cg_stat.h"
#include "cg_util.h"
#include "../handover/handover.h"

struct sup_cg_leaf {
	int      fd;
	bool     killed;   /* cgroup.kill was written to it */
	unsigned tier;
	char     name[SUP_CG_NAME_MAX + 1];
	char     path[32 + SUP_CG_NAME_MAX];
};

bool sup_cg_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > SUP_CG_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

int sup_cg_leaf_open(struct sup_cg *cg, unsigned tier, const char *name,
		     struct sup_cg_leaf **ret_leaf)
{
	struct sup_cg_leaf *l;
	struct sup_cg_events ev;
	char dir[16 + SUP_CG_NAME_MAX];
	int tfd = sup_cg_tier_fd(cg, tier), r;

	if (tfd < 0 || !sup_cg_name_valid(name))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	snprintf(dir, sizeof(dir), SUP_CG_LEAF_PREFIX "%s", name);
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->path, sizeof(l->path), "tier%u/%s", tier, dir);
	l->tier = tier;
	if (mkdirat(tfd, dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto err_free;
	}
	l->fd = openat(tfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->fd < 0) {
		r = -errno;
		goto err_free;
	}
	/* Reuse is for a restart after a clean exit; a leaf that still holds
	 * the previous incarnation must be stopped first. */
	r = sup_cg_read_events(l->fd, &ev);
	if (r == 0 && ev.populated)
		r = -EBUSY;
	/* A leaf frozen with its previous incarnation would start the next
	 * one frozen. */
	if (r == 0 && ev.frozen)
		r = sup_cg_freeze(l->fd, false);
	if (r < 0)
		goto err_close;
	*ret_leaf = l;
	return 0;

err_close:
	close(l->fd);
err_free:
	free(l);
	return r;
}

int sup_cg_leaf_kill(struct sup_cg_leaf *leaf)
{
	leaf->killed = true;
	return sup_cg_kill(leaf->fd);
}

bool sup_cg_leaf_killed(const struct sup_cg_leaf *leaf)
{
	return leaf->killed;
}

int sup_cg_leaf_recreate(struct sup_cg *cg, struct sup_cg_leaf *leaf)
{
	char dir[16 + SUP_CG_NAME_MAX];
	struct sup_cg_events ev;
	int tfd = sup_cg_tier_fd(cg, leaf->tier), fd, r;

	if (tfd < 0)
		return tfd;
	r = sup_cg_read_events(leaf->fd, &ev);
	if (r < 0)
		return r;
	if (ev.populated)
		return -EBUSY;
	snprintf(dir, sizeof(dir), SUP_CG_LEAF_PREFIX "%s", leaf->name);
	if (unlinkat(tfd, dir, AT_REMOVEDIR) < 0)
		return -errno;
	if (mkdirat(tfd, dir, 0755) < 0)
		return -errno;
	fd = openat(tfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(leaf->fd);
	leaf->fd = fd;
	leaf->killed = false;
	return 0;
}

int sup_cg_leaf_fd(const struct sup_cg_leaf *leaf) { return leaf->fd; }
const char *sup_cg_leaf_path(const struct sup_cg_leaf *leaf) { return leaf->path; }

int sup_cg_leaf_remove(struct sup_cg *cg, struct sup_cg_leaf *leaf)
{
	char dir[16 + SUP_CG_NAME_MAX];
	int tfd, r;

	if (!leaf)
		return 0;
	tfd = sup_cg_tier_fd(cg, leaf->tier);
	snprintf(dir, sizeof(dir), SUP_CG_LEAF_PREFIX "%s", leaf->name);
	r = tfd < 0 ? tfd : sup_cg_remove_tree(tfd, dir, sup_cg_kill_timeout_ms(cg));
	sup_cg_leaf_free(leaf);
	return r;
}

struct sup_cg_leaf *sup_cg_leaf_detached(unsigned tier, const char *name)
{
	struct sup_cg_leaf *leaf;

	if (!sup_cg_name_valid(name)) {
		errno = EINVAL;
		return NULL;
	}
	leaf = calloc(1, sizeof(*leaf));
	if (!leaf)
		return NULL;
	leaf->fd = -1;
	leaf->tier = tier;
	snprintf(leaf->name, sizeof(leaf->name), "%s", name);
	return leaf;
}

void sup_cg_leaf_free(struct sup_cg_leaf *leaf)
{
	if (!leaf)
		return;
	if (leaf->fd >= 0)
		close(leaf->fd);
	free(leaf);
}

void sup_cg_leaf_save(const struct sup_cg_leaf *leaf, struct sup_ho_w *w)
{
	sup_ho_w_fd(w, leaf->fd, SUP_HO_FD_DIR);
	sup_ho_w_u8(w, leaf->killed);
}

struct sup_cg_leaf *sup_cg_leaf_restore(struct sup_ho_r *r, unsigned tier, const char *name)
{
	struct sup_cg_leaf *leaf;
	uint8_t killed;
	int fd;

	if (!sup_ho_r_fd(r, SUP_HO_FD_DIR, &fd) || !sup_ho_r_u8(r, &killed))
		return NULL;
	if (fd < 0 || !sup_cg_name_valid(name)) {
		sup_ho_r_fail(r, "agent '%s': no leaf directory, or an invalid name", name);
		return NULL;
	}
	leaf = calloc(1, sizeof(*leaf));
	if (!leaf) {
		sup_ho_r_fail(r, "out of memory");
		return NULL;
	}
	leaf->fd = fd;
	leaf->killed = killed;
	leaf->tier = tier;
	snprintf(leaf->name, sizeof(leaf->name), "%s", name);
	snprintf(leaf->path, sizeof(leaf->path), "tier%u/" SUP_CG_LEAF_PREFIX "%s", tier, name);
	return leaf;
}
