/* SPDX-License-Identifier: MIT */
/* The control socket's file (directory, stale probe, owner, mode) and the
 * credential check of its peers. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup/cg_proc.h"
#include "cgroup/cg_util.h"
#include "common/fdio.h"
#include "ctl_sock.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int make_parents(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			seterr(err, errlen, "cannot create directory %s: %s", dir, strerror(e));
			return -e;
		}
		*p = '/';
	}
	return 0;
}

static void fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path));
}

/* A socket file left at path: unlink it if nothing accepts on it. */
static int take_over_stale(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r, e;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		e = errno;
		seterr(err, errlen, "cannot stat %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		seterr(err, errlen, "%s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		seterr(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	fill_addr(&sa, path);
	/* Non-blocking: a live server with a full backlog answers EAGAIN
	 * instead of stalling us. */
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = r < 0 ? errno : 0;
	close(fd);
	if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
		seterr(err, errlen, "another tierd is already listening on %s; refusing to start",
		       path);
		return -EADDRINUSE;
	}
	if (e == ENOENT)
		return 0;
	if (e != ECONNREFUSED) {
		seterr(err, errlen, "cannot probe the existing socket %s: %s", path, strerror(e));
		return -e;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		e = errno;
		seterr(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

static int bind_listen(const char *path, bool has_group, gid_t group, int backlog, char *err,
		       size_t errlen, struct sup_ctl_sock_id *ret_id)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, e;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
		seterr(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	/* bind() creates the file with the socket inode's mode minus the
	 * umask: 0600 here means nobody else can connect before the chown
	 * and chmod below, whatever the umask. */
	if (fchmod(fd, 0600) < 0) {
		e = errno;
		seterr(err, errlen, "fchmod on the control socket: %s", strerror(e));
		goto close_fd;
	}
	fill_addr(&sa, path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		if (e == EADDRINUSE)
			seterr(err, errlen, "another process bound %s just now", path);
		else
			seterr(err, errlen, "cannot bind %s: %s", path, strerror(e));
		goto close_fd;
	}
	if (has_group && chown(path, (uid_t)-1, group) < 0) {
		e = errno;
		seterr(err, errlen, "cannot give %s to group %u: %s", path,
		       (unsigned)group, strerror(e));
		goto unlink_path;
	}
	if (chmod(path, has_group ? 0660 : 0600) < 0) {
		e = errno;
		seterr(err, errlen, "cannot chmod %s: %s", path, strerror(e));
		goto unlink_path;
	}
	if (stat(path, &st) < 0) {
		e = errno;
		seterr(err, errlen, "cannot stat %s: %s", path, strerror(e));
		goto unlink_path;
	}
	if (listen(fd, backlog) < 0) {
		e = errno;
		seterr(err, errlen, "cannot listen on %s: %s", path, strerror(e));
		goto unlink_path;
	}
	ret_id->dev = st.st_dev;
	ret_id->ino = st.st_ino;
	return fd;
unlink_path:
	unlink(path);
close_fd:
	close(fd);
	return -e;
}

int sup_ctl_sock_listen(const char *path, bool has_group, gid_t group, int backlog, char *err,
			size_t errlen, struct sup_ctl_sock_id *ret_id)
{
	struct sockaddr_un sa;
	int r;

	if (path[0] != '/' || strlen(path) >= sizeof(sa.sun_path)) {
		seterr(err, errlen, "control socket path \"%s\" must be absolute and at most %zu bytes",
		       path, sizeof(sa.sun_path) - 1);
		return path[0] != '/' ? -EINVAL : -ENAMETOOLONG;
	}
	r = make_parents(path, err, errlen);
	if (r < 0)
		return r;
	r = take_over_stale(path, err, errlen);
	if (r < 0)
		return r;
	return bind_listen(path, has_group, group, backlog, err, errlen, ret_id);
}

void sup_ctl_sock_unlink(const char *path, const struct sup_ctl_sock_id *id)
{
	struct stat st;

	if (stat(path, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino)
		unlink(path);
}

/* ---- peers ------------------------------------------------------------- */

/* 1: in the group; 0: not; -errno: the kernel would not say. */
static int peer_in_group(int fd, gid_t group)
{
	gid_t small[64], *g = small;
	socklen_t len = sizeof(small);
	int r = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE)
			return -errno;
		/* len now holds the size the kernel needs. */
		g = malloc(len);
		if (!g)
			return -ENOMEM;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
			r = -errno;
			goto free_groups;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (g[i] == group) {
			r = 1;
			break;
		}
free_groups:
	if (g != small)
		free(g);
	return r;
}

int sup_ctl_sock_peer_role(int fd, const struct ucred *cr, const struct sup_ctl_sock_groups *g,
			   char *why, size_t whylen)
{
	int ra = 0, rr = 0;

	/* The server's own uid could ptrace it anyway: nothing to guard. */
	if (cr->uid == 0 || cr->uid == g->self_uid)
		return SUP_CTL_ROLE_ADMIN;
	if (g->has_admin) {
		ra = cr->gid == g->admin ? 1 : peer_in_group(fd, g->admin);
		if (ra > 0)
			return SUP_CTL_ROLE_ADMIN;
	}
	if (g->has_read) {
		rr = cr->gid == g->read ? 1 : peer_in_group(fd, g->read);
		if (rr > 0)
			return SUP_CTL_ROLE_READ;
	}
	if (ra < 0 || rr < 0)
		snprintf(why, whylen, "permission denied: uid %u is not root and its groups "
			 "cannot be read (SO_PEERGROUPS: %s)", (unsigned)cr->uid,
			 strerror(ra < 0 ? -ra : -rr));
	else if (!g->has_read && !g->has_admin)
		snprintf(why, whylen, "permission denied: uid %u is not root", (unsigned)cr->uid);
	else if (g->has_read && g->has_admin)
		snprintf(why, whylen, "permission denied: uid %u is not root and in neither group "
			 "%u (control_group) nor group %u (admin_group)", (unsigned)cr->uid,
			 (unsigned)g->read, (unsigned)g->admin);
	else
		snprintf(why, whylen, "permission denied: uid %u is not root and not in group %u",
			 (unsigned)cr->uid, (unsigned)(g->has_read ? g->read : g->admin));
	return SUP_CTL_ROLE_NONE;
}

int sup_ctl_sock_room(const struct sup_ctl_sock_load *l, char *why, size_t whylen)
{
	unsigned cap = l->max_clients;

	if (l->role != SUP_CTL_ROLE_ADMIN)
		cap = cap > l->reserve ? cap - l->reserve : 1;
	if (l->uid != 0 && l->max_per_uid && l->uid_clients >= l->max_per_uid) {
		snprintf(why, whylen, "too many control connections from uid %u (%u, the limit "
			 "per uid: control_max_clients_per_uid); close some first",
			 (unsigned)l->uid, l->max_per_uid);
		return EBUSY;
	}
	if (l->clients >= cap) {
		snprintf(why, whylen, "too many control clients (%u connected%s); try again later",
			 l->clients, cap < l->max_clients ? ", the rest kept for admins" : "");
		return EBUSY;
	}
	return 0;
}

/* ---- the peer's cgroup ------------------------------------------------- */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* A pidfd for the peer: the one the kernel took at connect (SO_PEERPIDFD,
 * Linux 6.5), else one opened from its pid now (a pid reused since the
 * connect would slip past: the best older kernels allow). */
static int peer_pidfd(int fd, pid_t pid)
{
	socklen_t len = sizeof(int);
	int pfd;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pfd, &len) == 0)
		return pfd;
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return pfd < 0 ? -errno : pfd;
}

int sup_ctl_sock_peer_in_tree(int fd, pid_t pid, const char *tree, char *why, size_t whylen)
{
	char path[64], cg[PATH_MAX], buf[8192];
	ssize_t n;
	int pfd, r;

	pfd = peer_pidfd(fd, pid);
	if (pfd < 0) {
		snprintf(why, whylen, "permission denied: the peer's process (pid %d) cannot be "
			 "checked: %s", (int)pid, strerror(-pfd));
		return pfd;
	}
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	n = sup_read_file_at(AT_FDCWD, path, buf, sizeof(buf));
	r = n < 0 ? (int)n : sup_cg_parse_proc_cgroup(buf, (size_t)n, cg, sizeof(cg));
	/* Still alive after the read: the file was the peer's, not that of
	 * a process that took its pid since. */
	if (r == 0 && syscall(SYS_pidfd_send_signal, pfd, 0, NULL, 0) < 0)
		r = -errno;
	close(pfd);
	if (r < 0) {
		snprintf(why, whylen, "permission denied: the cgroup of the peer (pid %d) cannot "
			 "be read: %s", (int)pid, strerror(-r));
		return r;
	}
	if (!sup_cg_path_within(cg, tree))
		return 0;
	snprintf(why, whylen, "permission denied: the peer (pid %d) runs in %s, inside tierd's "
		 "cgroup tree %s; agents may not use the control socket", (int)pid, cg, tree);
	return 1;
}
