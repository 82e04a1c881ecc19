/* SPDX-License-Identifier: MIT */
/* Helpers of the handover tests: a state's raw bytes, altered and sealed
 * again into a fresh memfd, to play a broken or foreign writer. */
#ifndef TIER_HANDOVER_TEST_H
#define TIER_HANDOVER_TEST_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "supervisor/handover/internal.h"

#define HO_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/* The bytes of a state memfd (malloc'ed), *len set. */
static inline unsigned char *ho_bytes(int memfd, size_t *len)
{
	struct stat st;
	unsigned char *b;

	cr_assert_eq(fstat(memfd, &st), 0);
	*len = (size_t)st.st_size;
	b = malloc(*len ? *len : 1);
	cr_assert_not_null(b);
	cr_assert_eq(pread(memfd, b, *len, 0), (ssize_t)*len);
	return b;
}

/* header total_size and crc made right again for len bytes */
static inline void ho_fix_header(unsigned char *b, size_t len)
{
	struct sup_ho_hdr h;

	if (len < sizeof(h))
		return;
	memcpy(&h, b, sizeof(h));
	h.total_size = len;
	h.crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + sizeof(h), (uInt)(len - sizeof(h)));
	memcpy(b, &h, sizeof(h));
}

/* A memfd holding b[0..len), with the given seals. */
static inline int ho_memfd_seals(const void *b, size_t len, int seals)
{
	int fd = memfd_create("tierd-state-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, b, len), (ssize_t)len);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static inline int ho_memfd(const void *b, size_t len)
{
	return ho_memfd_seals(b, len, HO_SEALS);
}

/* sup_ho_w_finish, asserted to succeed. */
static inline int ho_finish(struct sup_ho_w *w)
{
	char err[256] = "";
	int fd = sup_ho_w_finish(w, err, sizeof(err));

	cr_assert_geq(fd, 0, "finish: %s", err);
	return fd;
}

#endif
