/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fdio.h"

/* First buffer of sup_read_fd_alloc: most /proc and config files fit. */
#define ALLOC_FIRST 8192

ssize_t sup_read(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t sup_pread(int fd, void *buf, size_t n, off_t off)
{
	ssize_t r;

	do
		r = pread(fd, buf, n, off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t sup_write(int fd, const void *buf, size_t n)
{
	ssize_t r;

	do
		r = write(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int sup_write_all(int fd, const void *buf, size_t n, size_t *ret_done)
{
	size_t done = 0;
	int r = 0;

	while (done < n) {
		ssize_t w = sup_write(fd, (const char *)buf + done, n - done);

		if (w < 0) {
			r = (int)w;
			break;
		}
		/* write(2) returns 0 only for n == 0; never spin on it. */
		if (w == 0) {
			r = -EIO;
			break;
		}
		done += (size_t)w;
	}
	if (ret_done)
		*ret_done = done;
	return r;
}

ssize_t sup_send(int fd, const void *buf, size_t n, int flags)
{
	ssize_t r;

	do
		r = send(fd, buf, n, flags);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t sup_recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t r;

	do
		r = recv(fd, buf, n, flags);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int sup_connect_unix(int fd, const struct sockaddr *sa, socklen_t len)
{
	int r;

	do
		r = connect(fd, sa, len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

pid_t sup_waitpid(pid_t pid, int *status, int options)
{
	pid_t r;

	do
		r = waitpid(pid, status, options);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int sup_waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	int r;

	do
		r = waitid(type, id, info, options);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int sup_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	int r;

	do
		r = poll(fds, n, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* Fill buf (sz - 1 bytes at most) to end of file, by read or, with
 * positional, by pread from offset 0. */
static ssize_t fill(int fd, bool positional, char *buf, size_t sz)
{
	size_t off = 0;
	ssize_t n;
	char extra;

	if (sz < 2)
		return -EINVAL;
	while (off < sz - 1) {
		n = positional ? sup_pread(fd, buf + off, sz - 1 - off, (off_t)off) :
				 sup_read(fd, buf + off, sz - 1 - off);
		if (n < 0)
			return n;
		if (n == 0)
			goto done;
		off += (size_t)n;
	}
	/* Exactly full is fine only at end of file. */
	n = positional ? sup_pread(fd, &extra, 1, (off_t)off) : sup_read(fd, &extra, 1);
	if (n < 0)
		return n;
	if (n > 0)
		return -ENOBUFS;
done:
	buf[off] = '\0';
	return (ssize_t)off;
}

ssize_t sup_read_file_at(int dirfd, const char *path, char *buf, size_t sz)
{
	ssize_t n;
	int fd;

	if (sz < 2)
		return -EINVAL;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = fill(fd, false, buf, sz);
	close(fd);
	return n;
}

ssize_t sup_pread_file(int fd, char *buf, size_t sz)
{
	return fill(fd, true, buf, sz);
}

int sup_read_fd_alloc(int fd, size_t limit, char **ret, size_t *ret_len)
{
	size_t cap = 0, len = 0;
	char *buf = NULL;
	int r;

	for (;;) {
		ssize_t n;

		/* One byte past the limit is enough to know it is too much;
		 * one more keeps room for the NUL. */
		if (len + 1 >= cap) {
			size_t ncap = cap ? 2 * cap : ALLOC_FIRST;
			char *nb;

			if (limit < SIZE_MAX - 2 && ncap > limit + 2)
				ncap = limit + 2;
			if (ncap <= cap) {
				r = -EFBIG;
				goto fail;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				r = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = ncap;
		}
		n = sup_read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			r = (int)n;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > limit) {
			r = -EFBIG;
			goto fail;
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
fail:
	free(buf);
	return r;
}

int sup_read_file_alloc(int dirfd, const char *path, size_t limit, char **ret,
			size_t *ret_len)
{
	int fd, r;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = sup_read_fd_alloc(fd, limit, ret, ret_len);
	close(fd);
	return r;
}
