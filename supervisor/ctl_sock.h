/* SPDX-License-Identifier: MIT */
/*
 * ctl_sock — the control socket's file and its peers' credentials, for
 * ctl.c: create the directory, take over a stale socket (refuse a live
 * one), bind with the right owner and mode from the first instant, and
 * decide from SO_PEERCRED/SO_PEERGROUPS whether a peer may talk to tierd.
 * Synchronous, but nothing here waits on a peer: the probe of an existing
 * socket is a non-blocking connect. Returns -errno, never logs.
 */
#ifndef SUP_CTL_SOCK_H
#define SUP_CTL_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ctl_roles.h"

/* Which file was bound, so that only that one is ever removed. */
struct sup_ctl_sock_id {
	dev_t dev;
	ino_t ino;
};

/*
 * Make the parent directories (0755), remove a stale socket at path
 * (nothing accepts on it), bind, give the file to group (has_group: 0660
 * root:group, else 0600) and listen. Returns the listening fd
 * (SOCK_CLOEXEC|SOCK_NONBLOCK) or -errno with a sentence in err:
 * -EADDRINUSE another server answers on path, -EEXIST path is not a
 * socket, -ENAMETOOLONG, or what the kernel said.
 */
int sup_ctl_sock_listen(const char *path, bool has_group, gid_t group, int backlog, char *err,
			size_t errlen, struct sup_ctl_sock_id *ret_id);
/* Remove path if it is still the file that was bound. */
void sup_ctl_sock_unlink(const char *path, const struct sup_ctl_sock_id *id);

/* The groups that give a role; uid 0 and self_uid are always admin. */
struct sup_ctl_sock_groups {
	uid_t self_uid;
	gid_t read, admin;        /* control_group, admin_group */
	bool  has_read, has_admin;
};

/*
 * The peer's role (enum sup_ctl_role, ctl_roles.h) from its credentials
 * and its groups as the kernel took them at connect (SO_PEERCRED,
 * SO_PEERGROUPS: no race with a setgroups() after the connect). Admin
 * wins over read. SUP_CTL_ROLE_NONE with the refusal in why ("permission
 * denied: uid 1000 is not root and not in group 998").
 */
int sup_ctl_sock_peer_role(int fd, const struct ucred *cr, const struct sup_ctl_sock_groups *g,
			   char *why, size_t whylen);

/* Who is asking for a slot, and how full the server is. */
struct sup_ctl_sock_load {
	enum sup_ctl_role role;
	uid_t    uid;
	unsigned clients;       /* admitted now */
	unsigned uid_clients;   /* ... of them from uid */
	unsigned max_clients;
	unsigned max_per_uid;   /* 0: no cap */
	unsigned reserve;       /* of max_clients, kept for admins */
};

/*
 * Is there room for one more client? 0, or EBUSY with the refusal in why:
 * a uid other than root past max_per_uid (admins too: one admin cannot
 * crowd out the others), or the server full (for everyone but admins,
 * full means max_clients - reserve).
 */
int sup_ctl_sock_room(const struct sup_ctl_sock_load *l, char *why, size_t whylen);

/*
 * Is the peer's process (pid from SO_PEERCRED) in the cgroup tree
 * (a /proc/PID/cgroup path, "/tierd") or below? 1 yes, with the refusal in
 * why; 0 no; -errno when that cannot be told (the peer exited, /proc is
 * unreadable), also with a sentence in why: the caller refuses then too.
 */
int sup_ctl_sock_peer_in_tree(int fd, pid_t pid, const char *tree, char *why, size_t whylen);

#endif
