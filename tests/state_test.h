/* SPDX-License-Identifier: MIT */
/*
 * Helpers of tests/test_state_modules.c: a module's section saved into a
 * state memfd, opened again, and the same state with its section cut short
 * (every cut must be refused with a sentence, the object left as it was).
 */
#ifndef TESTS_STATE_TEST_H
#define TESTS_STATE_TEST_H

#include <criterion/criterion.h>

#include "handover_test.h"

/* fn(obj, w) into a new state; its memfd. */
#define STATE_OF(fn, obj) ({                                                  \
	struct sup_ho_w *w_ = sup_ho_w_new();                                 \
	int fd_;                                                              \
	cr_assert_not_null(w_);                                               \
	cr_assert_eq(fn(obj, w_), 0, #fn " failed");                          \
	fd_ = ho_finish(w_);                                                  \
	sup_ho_w_free(w_);                                                    \
	fd_;                                                                  \
})

static inline struct sup_ho_r *st_open(int fd)
{
	char err[256] = "";
	struct sup_ho_r *r = sup_ho_r_open(fd, err, sizeof(err));

	cr_assert_not_null(r, "open: %s", err);
	return r;
}

/* Offset of the first (only) section's header in the state's bytes. */
static inline size_t st_sect_off(const unsigned char *b)
{
	struct sup_ho_hdr h;

	memcpy(&h, b, sizeof(h));
	return h.hdr_size + (size_t)h.nfds * sizeof(struct sup_ho_fdent);
}

static inline size_t st_section_len(int fd)
{
	size_t n;
	unsigned char *b = ho_bytes(fd, &n);
	struct sup_ho_sect s;

	memcpy(&s, b + st_sect_off(b), sizeof(s));
	free(b);
	return (size_t)s.len;
}

/* The state in fd with its section cut to len bytes, sealed and with a
 * right checksum: only the section's own reader can see it is short. */
static inline int st_cut(int fd, size_t len)
{
	size_t n, off;
	unsigned char *b = ho_bytes(fd, &n);
	struct sup_ho_sect s;
	int out;

	off = st_sect_off(b);
	memcpy(&s, b + off, sizeof(s));
	cr_assert_leq(len, s.len);
	s.len = len;
	memcpy(b + off, &s, sizeof(s));
	ho_fix_header(b, off + sizeof(s) + len);
	out = ho_memfd(b, off + sizeof(s) + len);
	free(b);
	return out;
}

/* Every cut of fd's section (each of the first 512 bytes, then some 300
 * more evenly spread) given to restore, which must refuse it: restore
 * returns < 0 and leaves the reader failed with a sentence. */
static inline void st_every_cut(int fd, int (*restore)(struct sup_ho_r *r))
{
	size_t len = st_section_len(fd), step = len > 512 ? (len - 512) / 300 + 1 : 1;
	unsigned tried = 0;

	for (size_t cut = 0; cut < len; cut += cut < 512 ? 1 : step) {
		int cfd = st_cut(fd, cut);
		struct sup_ho_r *r = st_open(cfd);
		int rc = restore(r);

		cr_assert_lt(rc, 0, "a section cut to %zu of %zu bytes was taken", cut, len);
		cr_assert(!sup_ho_r_ok(r), "cut to %zu: refused but the reader holds no error", cut);
		cr_assert_neq(sup_ho_r_error(r)[0], '\0', "cut to %zu: no sentence", cut);
		sup_ho_r_free(r);
		close(cfd);
		tried++;
	}
	cr_assert_gt(tried, 0);
}

/* The error of a restore that must fail, asserted to contain what. */
#define ST_REFUSED(r, rc, what) do {                                          \
	cr_assert_lt((rc), 0, "taken, but should be refused for: %s", what);  \
	cr_assert(strstr(sup_ho_r_error(r), what), "error '%s' does not say '%s'", \
		  sup_ho_r_error(r), what);                                   \
} while (0)

#endif
