/* SPDX-License-Identifier: MIT */
/*
 * cg_reclaim — clear what a crashed supervisor left under its root.
 *
 * Called with the root's lock held, so nothing that is found can belong to
 * a live instance: every process is killed and every cgroup removed, except
 * the caller itself (and the cgroup that holds it, which is only emptied of
 * other processes). The report says what was found, for the caller to log.
 */
#ifndef SUP_CG_RECLAIM_H
#define SUP_CG_RECLAIM_H

#include <stdbool.h>

struct sup_cg_reclaim_args {
	int         root_fd;
	int         sup_fd;      /* where a delegated root's other processes go */
	const char *root;        /* absolute path of the root, for the report */
	const char *self;        /* absolute path of the caller's cgroup, or "" */
	bool        delegated;   /* the root is the service's own cgroup */
	int         timeout_ms;  /* per cgroup, waiting for it to empty */
};

/* 1 if the root holds a child cgroup or a process other than the caller,
 * 0 if not, -errno. */
int sup_cg_root_is_stale(int root_fd);

/* Kill and remove everything below the root. *ret_report (malloc'd, one
 * line per cgroup found) is set on success and, when memory allows, on
 * failure too: it then says what could not be removed. */
int sup_cg_reclaim(const struct sup_cg_reclaim_args *a, char **ret_report);

#endif
