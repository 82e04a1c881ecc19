/* SPDX-License-Identifier: MIT */
/* handover's private half: the wire layout (docs/handover.md) and the fd
 * checks shared by the writer and the reader. */
#ifndef SUP_HANDOVER_INTERNAL_H
#define SUP_HANDOVER_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "handover.h"

#define SUP_HO_MAGIC "TIERDST"	/* 8 bytes with its NUL */

/* All fields little-endian (the host's: the state never leaves the host). */
struct sup_ho_hdr {
	char magic[8];
	uint32_t format;
	uint32_t hdr_size;
	uint64_t total_size;
	uint32_t nfds;
	uint32_t crc;		/* zlib crc32 of bytes [hdr_size, total_size) */
};

struct sup_ho_fdent {
	int32_t fd;
	uint32_t kind;
	uint64_t dev;
	uint64_t ino;
};

struct sup_ho_sect {
	uint32_t tag;
	uint32_t version;
	uint64_t len;
};

/* The u32 of an fd reference meaning "no fd". */
#define SUP_HO_FD_NONE UINT32_MAX
/* The u32 length of a string meaning NULL. */
#define SUP_HO_STR_NULL UINT32_MAX

_Static_assert(sizeof(struct sup_ho_hdr) == 32, "header layout");
_Static_assert(sizeof(struct sup_ho_fdent) == 24, "fd entry layout");
_Static_assert(sizeof(struct sup_ho_sect) == 16, "section header layout");

/* 0 when fd is open, of that kind and the file (dev, ino); else -errno and
 * a sentence in why ("fd 7: expected an eventfd, found anon_inode:[pidfd]"). */
int sup_ho_fd_check(int fd, enum sup_ho_fd_kind kind, uint64_t dev, uint64_t ino,
		    char *why, size_t whylen);

#endif
