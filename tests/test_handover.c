/* SPDX-License-Identifier: MIT */
/* handover state container: values round-trip, sections in any order, every
 * truncation and corruption refused with a sentence, writer misuse reported,
 * and the cost of a 20,000-task state. */
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "handover_test.h"
#include "supervisor/handover/handover.h"

#define TAG_X SUP_HO_TAG('x', 'x', 'x', 'x')

/* A state of two sections with one value of every type. */
static int sample_state(void)
{
	struct sup_ho_w *w = sup_ho_w_new();
	static const unsigned char blob[] = { 0, 1, 2, 0xff, 0 };
	int fd;

	cr_assert_not_null(w);
	sup_ho_w_begin(w, SUP_HO_TAG_TASKS, 3);
	sup_ho_w_u8(w, 0xab);
	sup_ho_w_u16(w, 0xbeef);
	sup_ho_w_u32(w, 0xdeadbeef);
	sup_ho_w_u64(w, UINT64_MAX - 1);
	sup_ho_w_i64(w, INT64_MIN);
	sup_ho_w_f64(w, -0.125);
	sup_ho_w_f64(w, DBL_MAX);
	sup_ho_w_bytes(w, blob, sizeof(blob));
	sup_ho_w_bytes(w, NULL, 0);
	sup_ho_w_str(w, "hello, tierd");
	sup_ho_w_str(w, "");
	sup_ho_w_str(w, NULL);
	sup_ho_w_fd(w, -1, SUP_HO_FD_EVENTFD);
	sup_ho_w_end(w);
	sup_ho_w_begin(w, SUP_HO_TAG_DAEMON, 1);
	sup_ho_w_str(w, "second");
	sup_ho_w_u32(w, 7);
	sup_ho_w_end(w);
	fd = ho_finish(w);
	sup_ho_w_free(w);
	return fd;
}

/* Read sample_state's content back: true when all of it was there. */
static bool read_sample(struct sup_ho_r *r)
{
	uint8_t u8; uint16_t u16; uint32_t u32, ver; uint64_t u64; int64_t i64; double f1, f2;
	const void *p; uint32_t len; char buf[64]; char *dup = (char *)1; int fd = 0;
	bool ok = true;

	if (!sup_ho_r_section(r, SUP_HO_TAG_TASKS, &ver))
		return false;
	ok &= ver == 3;
	ok &= sup_ho_r_u8(r, &u8) && u8 == 0xab;
	ok &= sup_ho_r_u16(r, &u16) && u16 == 0xbeef;
	ok &= sup_ho_r_u32(r, &u32) && u32 == 0xdeadbeef;
	ok &= sup_ho_r_u64(r, &u64) && u64 == UINT64_MAX - 1;
	ok &= sup_ho_r_i64(r, &i64) && i64 == INT64_MIN;
	ok &= sup_ho_r_f64(r, &f1) && f1 == -0.125;
	ok &= sup_ho_r_f64(r, &f2) && f2 == DBL_MAX;
	ok &= sup_ho_r_bytes(r, &p, &len, 16) && len == 5 && memcmp(p, "\0\1\2\xff\0", 5) == 0;
	ok &= sup_ho_r_bytes(r, &p, &len, 16) && len == 0;
	ok &= sup_ho_r_str(r, buf, sizeof(buf)) && strcmp(buf, "hello, tierd") == 0;
	ok &= sup_ho_r_strdup(r, &dup, 64) && dup && strcmp(dup, "") == 0;
	free(dup);
	ok &= sup_ho_r_strdup(r, &dup, 64) && dup == NULL;
	ok &= sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &fd) && fd == -1;
	ok &= sup_ho_r_left(r) == 0;
	if (!sup_ho_r_section(r, SUP_HO_TAG_DAEMON, &ver))
		return false;
	ok &= ver == 1;
	ok &= sup_ho_r_str(r, buf, sizeof(buf)) && strcmp(buf, "second") == 0;
	ok &= sup_ho_r_u32(r, &u32) && u32 == 7;
	return ok && sup_ho_r_ok(r);
}

static struct sup_ho_r *open_ok(int fd)
{
	char err[256] = "";
	struct sup_ho_r *r = sup_ho_r_open(fd, err, sizeof(err));

	cr_assert_not_null(r, "open: %s", err);
	return r;
}

/* sup_ho_r_open must fail; its sentence in err. */
static void open_fails(int fd, char *err, size_t errlen)
{
	struct sup_ho_r *r;

	err[0] = '\0';
	r = sup_ho_r_open(fd, err, errlen);
	cr_assert_null(r, "opened a state that should be refused");
	cr_assert_neq(err[0], '\0', "refused without a sentence");
}

Test(handover, should_round_trip_every_value_type)
{
	int fd = sample_state();
	struct sup_ho_r *r = open_ok(fd);

	cr_expect(read_sample(r), "read back: %s", sup_ho_r_error(r));
	sup_ho_r_free(r);
	close(fd);
}

Test(handover, should_seal_the_memfd_and_leave_it_inheritable)
{
	int fd = sample_state();
	int seals = fcntl(fd, F_GET_SEALS);

	cr_expect_eq(seals & HO_SEALS, HO_SEALS);
	cr_expect_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "the state memfd must survive execve");
	cr_expect_lt(write(fd, "x", 1), 0, "a sealed state is not writable");
	close(fd);
}

Test(handover, should_read_sections_in_any_order_and_again)
{
	int fd = sample_state();
	struct sup_ho_r *r = open_ok(fd);
	char buf[16];
	uint32_t ver = 0;
	uint8_t u8;

	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_DAEMON, &ver));
	cr_expect(sup_ho_r_str(r, buf, sizeof(buf)) && strcmp(buf, "second") == 0);
	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_TASKS, NULL));
	cr_expect(sup_ho_r_u8(r, &u8) && u8 == 0xab, "unread bytes at a section's end are fine");
	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_TASKS, NULL));
	cr_expect(sup_ho_r_u8(r, &u8) && u8 == 0xab, "entering again starts over");
	cr_expect_not(sup_ho_r_section(r, SUP_HO_TAG_WAL, NULL), "an absent section is absent");
	cr_expect(sup_ho_r_ok(r), "absence is no error: %s", sup_ho_r_error(r));
	sup_ho_r_free(r);
	close(fd);
}

Test(handover, should_walk_every_section_in_order)
{
	int fd = sample_state();
	struct sup_ho_r *r = open_ok(fd);
	uint32_t tag, ver, tags[4];
	size_t it = 0, n = 0;

	while (n < 4 && sup_ho_r_next_section(r, &it, &tag, &ver))
		tags[n++] = tag;
	cr_expect_eq(n, 2);
	cr_expect_eq(tags[0], SUP_HO_TAG_TASKS);
	cr_expect_eq(tags[1], SUP_HO_TAG_DAEMON);
	sup_ho_r_free(r);
	close(fd);
}

Test(handover, should_refuse_reading_past_a_section_with_its_name_and_offset)
{
	int fd = sample_state();
	struct sup_ho_r *r = open_ok(fd);
	char buf[16];
	uint32_t u32;
	uint64_t u64 = 1;

	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_DAEMON, NULL));
	cr_assert(sup_ho_r_str(r, buf, sizeof(buf)));
	cr_assert(sup_ho_r_u32(r, &u32));
	cr_expect_not(sup_ho_r_u64(r, &u64));
	cr_expect_eq(u64, 0, "a failed read zeroes its output");
	cr_expect_str_eq(sup_ho_r_error(r),
			 "section 'daemon' v1: truncated at offset 14 reading a u64 (0 bytes left)");
	cr_expect_not(sup_ho_r_section(r, SUP_HO_TAG_TASKS, NULL), "the error is sticky");
	sup_ho_r_free(r);
	close(fd);
}

Test(handover, should_refuse_strings_and_bytes_over_their_bound)
{
	int fd = sample_state();
	struct sup_ho_r *r = open_ok(fd);
	char small[6];
	const void *p;
	uint32_t len;

	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_DAEMON, NULL));
	cr_expect_not(sup_ho_r_str(r, small, sizeof(small)), "'second' does not fit in 6");
	cr_expect(strstr(sup_ho_r_error(r), "a 6-byte string"), "%s", sup_ho_r_error(r));
	sup_ho_r_free(r);

	r = open_ok(fd);
	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_TASKS, NULL));
	cr_assert(sup_ho_r_bytes(r, &p, &len, 0) == false);	/* the u8 is no length: */
	cr_expect_neq(sup_ho_r_error(r)[0], '\0');
	sup_ho_r_free(r);
	close(fd);
}

Test(handover, should_refuse_a_string_with_a_nul_inside)
{
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	char buf[16];
	int fd;

	sup_ho_w_begin(w, TAG_X, 1);
	sup_ho_w_bytes(w, "ab\0cd", 5);
	sup_ho_w_end(w);
	fd = ho_finish(w);
	r = open_ok(fd);
	cr_assert(sup_ho_r_section(r, TAG_X, NULL));
	cr_expect_not(sup_ho_r_str(r, buf, sizeof(buf)));
	cr_expect(strstr(sup_ho_r_error(r), "NUL inside"), "%s", sup_ho_r_error(r));
	sup_ho_r_free(r);
	sup_ho_w_free(w);
	close(fd);
}

Test(handover, should_prefix_a_caller_failure_with_the_section)
{
	int fd = sample_state();
	struct sup_ho_r *r = open_ok(fd);

	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_TASKS, NULL));
	sup_ho_r_fail(r, "task %d: state %s out of range", 12, "bogus");
	sup_ho_r_fail(r, "a second problem");
	cr_expect_not(sup_ho_r_ok(r));
	cr_expect_str_eq(sup_ho_r_error(r), "section 'tasks' v3: task 12: state bogus out of range");
	sup_ho_r_free(r);
	close(fd);
}

Test(handover, should_refuse_every_truncation)
{
	int fd = sample_state();
	size_t len;
	unsigned char *b = ho_bytes(fd, &len);
	unsigned char *c = malloc(len);
	char err[256];

	for (size_t n = 0; n < len; n++) {
		int t;
		struct sup_ho_r *r;

		/* as cut: the header's size or crc disagrees */
		memcpy(c, b, n);
		t = ho_memfd(c, n);
		open_fails(t, err, sizeof(err));
		close(t);
		/* cut with a header made consistent again: the section list or
		 * the content read back must still show the loss */
		ho_fix_header(c, n);
		t = ho_memfd(c, n);
		r = sup_ho_r_open(t, err, sizeof(err));
		if (r)
			cr_expect_not(read_sample(r), "a state cut at %zu of %zu read back whole", n, len);
		sup_ho_r_free(r);
		close(t);
	}
	free(c);
	free(b);
	close(fd);
}

Test(handover, should_refuse_a_bad_crc_magic_or_format_with_the_sentence)
{
	int fd = sample_state();
	size_t len;
	unsigned char *b = ho_bytes(fd, &len);
	struct sup_ho_hdr h;
	char err[256], want[128];
	int t;

	b[len - 1] ^= 0x40;
	t = ho_memfd(b, len);
	open_fails(t, err, sizeof(err));
	cr_expect(strstr(err, "crc mismatch"), "%s", err);
	close(t);
	b[len - 1] ^= 0x40;

	b[0] = 'X';
	t = ho_memfd(b, len);
	open_fails(t, err, sizeof(err));
	cr_expect_str_eq(err, "handover state: bad magic (not a tierd state)");
	close(t);
	b[0] = 'T';

	memcpy(&h, b, sizeof(h));
	h.format = SUP_HO_FORMAT + 1;
	memcpy(b, &h, sizeof(h));
	t = ho_memfd(b, len);
	errno = 0;
	open_fails(t, err, sizeof(err));
	cr_expect_eq(errno, EPROTO);
	snprintf(want, sizeof(want), "handover state: format %u, this binary reads only format %u",
		 SUP_HO_FORMAT + 1, SUP_HO_FORMAT);
	cr_expect_str_eq(err, want);
	close(t);
	free(b);
	close(fd);
}

Test(handover, should_refuse_an_unsealed_memfd_or_a_plain_file)
{
	int fd = sample_state();
	size_t len;
	unsigned char *b = ho_bytes(fd, &len);
	char err[256];
	FILE *f = tmpfile();
	int t;

	t = ho_memfd_seals(b, len, F_SEAL_SHRINK | F_SEAL_GROW);
	open_fails(t, err, sizeof(err));
	cr_expect(strstr(err, "seals"), "%s", err);
	close(t);

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, len, f), len);
	fflush(f);
	open_fails(fileno(f), err, sizeof(err));
	cr_expect(strstr(err, "not a sealable memfd"), "%s", err);
	fclose(f);
	free(b);
	close(fd);
}

Test(handover, should_refuse_a_section_longer_than_the_state)
{
	int fd = sample_state();
	size_t len;
	unsigned char *b = ho_bytes(fd, &len);
	struct sup_ho_sect s;
	char err[256];
	int t;

	/* no fds: the first section follows the header */
	memcpy(&s, b + sizeof(struct sup_ho_hdr), sizeof(s));
	s.len = UINT64_MAX - 3;
	memcpy(b + sizeof(struct sup_ho_hdr), &s, sizeof(s));
	ho_fix_header(b, len);
	t = ho_memfd(b, len);
	open_fails(t, err, sizeof(err));
	cr_expect(strstr(err, "bytes, 110 are left"), "%s", err);
	close(t);
	free(b);
	close(fd);
}

static void value_outside(struct sup_ho_w *w) { sup_ho_w_u32(w, 1); }
static void nested(struct sup_ho_w *w) { sup_ho_w_begin(w, TAG_X, 1); sup_ho_w_begin(w, TAG_X, 1); }
static void end_unbegun(struct sup_ho_w *w) { sup_ho_w_end(w); }
static void left_open(struct sup_ho_w *w) { sup_ho_w_begin(w, TAG_X, 1); }
static void closed_fd(struct sup_ho_w *w) { sup_ho_w_begin(w, TAG_X, 1); sup_ho_w_fd(w, 1000000, SUP_HO_FD_FILE); }
static void bad_kind(struct sup_ho_w *w) { sup_ho_w_begin(w, TAG_X, 1); sup_ho_w_fd(w, 0, 0); }
static void huge(struct sup_ho_w *w) { sup_ho_w_begin(w, TAG_X, 1); sup_ho_w_bytes(w, "", (size_t)UINT32_MAX); }

Test(handover, should_report_writer_misuse_at_finish)
{
	static const struct {
		void (*misuse)(struct sup_ho_w *);
		const char *says;
	} cases[] = {
		{ value_outside, "outside any section" },
		{ nested, "begun inside another" },
		{ end_unbegun, "not begun" },
		{ left_open, "still open" },
		{ closed_fd, "fd 1000000" },
		{ bad_kind, "unknown kind" },
		{ huge, "limit 4 GiB" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sup_ho_w *w = sup_ho_w_new();
		char err[256] = "";
		int rc;

		cases[i].misuse(w);
		rc = sup_ho_w_finish(w, err, sizeof(err));
		cr_expect_lt(rc, 0, "case %zu finished", i);
		cr_expect(strstr(err, cases[i].says), "case %zu: '%s' lacks '%s'", i, err,
			  cases[i].says);
		sup_ho_w_free(w);
	}
}

Test(handover, should_name_the_known_tags)
{
	cr_expect_str_eq(sup_ho_tag_name(SUP_HO_TAG_AGENTS), "agents");
	cr_expect_str_eq(sup_ho_tag_name(SUP_HO_TAG_METRICS), "metrics");
	cr_expect_null(sup_ho_tag_name(TAG_X));
	cr_expect_str_eq(sup_ho_fd_kind_name(SUP_HO_FD_BPF_LINK), "bpf link");
	cr_expect_str_eq(sup_ho_fd_kind_name(99), "kind 99");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Not a timed assertion: the figures are printed for docs/handover.md. */
Test(handover, should_carry_20000_small_tasks_and_say_how_fast)
{
	enum { N = 20000 };
	char payload[96], id[32], buf[128];
	double t0, tw, t1, t2, t3;
	struct sup_ho_w *w;
	struct sup_ho_r *r;
	uint32_t n = 0, ver;
	int fd;
	bool ok = true;

	memset(payload, 'p', sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	t0 = now_ms();
	w = sup_ho_w_new();
	sup_ho_w_begin(w, SUP_HO_TAG_TASKS, 1);
	sup_ho_w_u32(w, N);
	for (uint32_t i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "task-%08u", i);
		sup_ho_w_str(w, id);
		sup_ho_w_u8(w, (uint8_t)(i % 5));
		sup_ho_w_u32(w, i % 24);
		sup_ho_w_i64(w, 1700000000000LL + i);
		sup_ho_w_u32(w, 3);
		sup_ho_w_str(w, payload);
	}
	sup_ho_w_end(w);
	tw = now_ms();
	fd = ho_finish(w);
	t1 = now_ms();
	r = open_ok(fd);
	t2 = now_ms();
	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_TASKS, &ver));
	cr_assert(sup_ho_r_u32(r, &n));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t st; uint32_t ag, att; int64_t ts;

		ok &= sup_ho_r_str(r, id, sizeof(id)) && sup_ho_r_u8(r, &st) &&
		      sup_ho_r_u32(r, &ag) && sup_ho_r_i64(r, &ts) && sup_ho_r_u32(r, &att) &&
		      sup_ho_r_str(r, buf, sizeof(buf));
		ok &= ag == i % 24 && ts == 1700000000000LL + i;
	}
	t3 = now_ms();
	cr_expect(ok && sup_ho_r_ok(r), "%s", sup_ho_r_error(r));
	cr_expect_eq(n, N);
	fprintf(stderr, "handover: %d tasks, %zu bytes: serialize %.2f ms, finish (memfd, crc, "
		"seal) %.2f ms, validate %.2f ms, parse %.2f ms\n", N, sup_ho_w_size(w), tw - t0,
		t1 - tw, t2 - t1, t3 - t2);
	sup_ho_r_free(r);
	sup_ho_w_free(w);
	close(fd);
}
