/* SPDX-License-Identifier: MIT */
/* handover: what each fd kind of the table must be, checked by the reader
 * before it trusts a number handed over in the state. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *const kind_names[SUP_HO_FD_KIND_END] = {
	[SUP_HO_FD_PIDFD] = "pidfd",
	[SUP_HO_FD_MEMFD] = "memfd",
	[SUP_HO_FD_EVENTFD] = "eventfd",
	[SUP_HO_FD_PIPE] = "pipe",
	[SUP_HO_FD_UNIX_LISTEN] = "listening unix socket",
	[SUP_HO_FD_TCP_LISTEN] = "listening tcp socket",
	[SUP_HO_FD_DIR] = "directory",
	[SUP_HO_FD_FILE] = "regular file",
	[SUP_HO_FD_BPF_MAP] = "bpf map",
	[SUP_HO_FD_BPF_LINK] = "bpf link",
	[SUP_HO_FD_BPF_PROG] = "bpf program",
	[SUP_HO_FD_ANY] = "fd of any kind",
	[SUP_HO_FD_UNIX_STREAM] = "connected unix socket",
};

const char *sup_ho_fd_kind_name(enum sup_ho_fd_kind kind)
{
	static __thread char buf[24];

	if ((unsigned)kind < SUP_HO_FD_KIND_END && kind_names[kind])
		return kind_names[kind];
	snprintf(buf, sizeof(buf), "kind %u", (unsigned)kind);
	return buf;
}

/* What /proc/self/fd/N links to for the anonymous-inode kinds: all of them
 * share one inode, so only the name tells an eventfd from a bpf map. */
static const char *anon_name(enum sup_ho_fd_kind kind)
{
	switch (kind) {
	case SUP_HO_FD_PIDFD:	return "anon_inode:[pidfd]";
	case SUP_HO_FD_EVENTFD:	return "anon_inode:[eventfd]";
	case SUP_HO_FD_BPF_MAP:	return "anon_inode:bpf-map";
	case SUP_HO_FD_BPF_LINK: return "anon_inode:bpf_link";
	case SUP_HO_FD_BPF_PROG: return "anon_inode:bpf-prog";
	default:		return NULL;
	}
}

static int fd_link(int fd, char *buf, size_t cap)
{
	char path[40];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, cap - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int sockopt(int fd, int opt, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, SOL_SOCKET, opt, v, &len) < 0 ? -errno : 0;
}

/* 0 when the socket is of the kind, else a sentence in why. */
static int check_socket(int fd, enum sup_ho_fd_kind kind, char *why, size_t whylen)
{
	int domain, type, listening, rc;
	bool want_listen = kind != SUP_HO_FD_UNIX_STREAM;
	bool want_unix = kind != SUP_HO_FD_TCP_LISTEN;

	if ((rc = sockopt(fd, SO_DOMAIN, &domain)) < 0 ||
	    (rc = sockopt(fd, SO_TYPE, &type)) < 0 ||
	    (rc = sockopt(fd, SO_ACCEPTCONN, &listening)) < 0) {
		snprintf(why, whylen, "fd %d: socket options: %s", fd, strerror(-rc));
		return rc;
	}
	if ((want_unix ? domain != AF_UNIX : domain != AF_INET && domain != AF_INET6) ||
	    type != SOCK_STREAM || !!listening != want_listen) {
		snprintf(why, whylen, "fd %d: expected a %s, found a%s socket of domain %d, type %d",
			 fd, sup_ho_fd_kind_name(kind), listening ? " listening" : "n unconnected or connected",
			 domain, type);
		return -EINVAL;
	}
	return 0;
}

int sup_ho_fd_check(int fd, enum sup_ho_fd_kind kind, uint64_t dev, uint64_t ino,
		    char *why, size_t whylen)
{
	const char *anon = anon_name(kind);
	char link[128] = "";
	struct stat st;
	bool ok;

	if (fstat(fd, &st) < 0) {
		int e = errno;

		snprintf(why, whylen, "fd %d (%s): %s", fd, sup_ho_fd_kind_name(kind),
			 e == EBADF ? "not open" : strerror(e));
		return -e;
	}
	if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) {
		fd_link(fd, link, sizeof(link));
		snprintf(why, whylen, "fd %d (%s): not the file handed over (dev %llu ino %llu, "
			 "expected dev %llu ino %llu; it is %s)", fd, sup_ho_fd_kind_name(kind),
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (unsigned long long)dev, (unsigned long long)ino, link);
		return -ESTALE;
	}
	switch (kind) {
	case SUP_HO_FD_ANY:
		return 0;
	case SUP_HO_FD_PIPE:
		ok = S_ISFIFO(st.st_mode);
		break;
	case SUP_HO_FD_DIR:
		ok = S_ISDIR(st.st_mode);
		break;
	case SUP_HO_FD_FILE:
		ok = S_ISREG(st.st_mode);
		break;
	case SUP_HO_FD_UNIX_LISTEN:
	case SUP_HO_FD_TCP_LISTEN:
	case SUP_HO_FD_UNIX_STREAM:
		if (S_ISSOCK(st.st_mode))
			return check_socket(fd, kind, why, whylen);
		ok = false;
		break;
	case SUP_HO_FD_MEMFD:
		ok = S_ISREG(st.st_mode) && fd_link(fd, link, sizeof(link)) == 0 &&
		     strncmp(link, "/memfd:", 7) == 0;
		break;
	default:
		if (!anon) {
			snprintf(why, whylen, "fd %d: unknown fd kind %u", fd, (unsigned)kind);
			return -EINVAL;
		}
		ok = fd_link(fd, link, sizeof(link)) == 0 && strcmp(link, anon) == 0;
		break;
	}
	if (ok)
		return 0;
	if (!link[0])
		fd_link(fd, link, sizeof(link));
	snprintf(why, whylen, "fd %d: expected a %s, found %s", fd, sup_ho_fd_kind_name(kind),
		 link[0] ? link : "something else");
	return -EINVAL;
}
