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

/*
 * May this peer in? uid 0 and self_uid always; with has_group, a peer
 * whose primary or supplementary group is group. 1: yes. 0: no, with the
 * refusal sentence in why ("permission denied: uid 1000 is not root and
 * not in group 998").
 */
int sup_ctl_sock_peer_allowed(int fd, const struct ucred *cr, uid_t self_uid, bool has_group,
			      gid_t group, char *why, size_t whylen);

#endif
