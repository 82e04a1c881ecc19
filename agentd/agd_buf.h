/* SPDX-License-Identifier: MIT */
/*
 * agd_buf — a byte buffer with a read offset: bytes are appended at the end
 * and consumed from the front, as pipes deliver and accept them.
 */
#ifndef AGD_BUF_H
#define AGD_BUF_H

#include <stddef.h>

struct agd_buf {
	char  *p;
	size_t off;   /* first unconsumed byte */
	size_t len;   /* end of data */
	size_t cap;
};

/* Make room for n more bytes at the end; returns a pointer to them or NULL
 * (ENOMEM). Consumed bytes are reclaimed first. */
char *agd_buf_reserve(struct agd_buf *b, size_t n);
/* n reserved bytes now hold data. */
void agd_buf_commit(struct agd_buf *b, size_t n);
/* n bytes at the front are done with. */
void agd_buf_consume(struct agd_buf *b, size_t n);

static inline const char *agd_buf_data(const struct agd_buf *b)
{
	return b->p + b->off;
}

/* The same, writable: a parser may rewrite the bytes it consumes. */
static inline char *agd_buf_bytes(struct agd_buf *b)
{
	return b->p + b->off;
}

static inline size_t agd_buf_size(const struct agd_buf *b)
{
	return b->len - b->off;
}

void agd_buf_reset(struct agd_buf *b);
void agd_buf_free(struct agd_buf *b);

#endif
