/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agd_buf.h"

char *agd_buf_reserve(struct agd_buf *b, size_t n)
{
	size_t used = b->len - b->off, cap;
	char *p;

	if (b->cap - b->len >= n)
		return b->p + b->len;
	/* Sliding the data down is enough when most of it was consumed; it
	 * keeps a buffer that is drained steadily from growing at all. */
	if (b->off && b->cap - used >= n && used <= b->cap / 2) {
		memmove(b->p, b->p + b->off, used);
		b->len = used;
		b->off = 0;
		return b->p + b->len;
	}
	if (n > ((size_t)-1 >> 2) - used) {
		errno = ENOMEM;
		return NULL;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < used + n)
		cap *= 2;
	p = malloc(cap);
	if (!p)
		return NULL;
	if (used)
		memcpy(p, b->p + b->off, used);
	free(b->p);
	b->p = p;
	b->cap = cap;
	b->len = used;
	b->off = 0;
	return b->p + b->len;
}

void agd_buf_commit(struct agd_buf *b, size_t n)
{
	b->len += n;
}

void agd_buf_consume(struct agd_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void agd_buf_reset(struct agd_buf *b)
{
	b->off = b->len = 0;
}

void agd_buf_free(struct agd_buf *b)
{
	free(b->p);
	*b = (struct agd_buf){ 0 };
}
