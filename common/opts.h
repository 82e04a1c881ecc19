/* SPDX-License-Identifier: MIT */
/* Extensible option structs, whose first member is their size (size_t sz). */
#ifndef SUP_OPTS_H
#define SUP_OPTS_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Copy a caller's option struct that may be older (shorter) or newer
 * (longer, with the fields we do not know left zero) than ours; NULL gives
 * all defaults (zero, with sz set). -EINVAL if sz is impossible or a field
 * we do not know is set. */
static inline int sup_opts_copy(void *dst, size_t dst_sz, const void *src)
{
	size_t sz = src ? *(const size_t *)src : dst_sz;

	memset(dst, 0, dst_sz);
	if (!src) {
		*(size_t *)dst = dst_sz;
		return 0;
	}
	if (sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = dst_sz; i < sz; i++)
		if (((const char *)src)[i])
			return -EINVAL;
	memcpy(dst, src, sz < dst_sz ? sz : dst_sz);
	return 0;
}

#endif
