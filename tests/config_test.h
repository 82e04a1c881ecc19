/* SPDX-License-Identifier: MIT */
/*
 * What the config test programs share (test_config.c, test_config_values.c,
 * test_config_read.c): loading a text or a sample file, finding a message,
 * dump round trips. static inline, so a program need not use them all.
 */
#ifndef TESTS_CONFIG_TEST_H
#define TESTS_CONFIG_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../supervisor/config/config.h"

/* Data files sit beside this header and the tests; tests run from the
 * repository root (make), where __FILE__ is relative to. */
static inline const char *data(const char *name)
{
	static char buf[8][PATH_MAX];
	static unsigned next;
	char *p = buf[next++ % 8];
	const char *slash = strrchr(__FILE__, '/');
	int dl = slash ? (int)(slash - __FILE__) : 1;

	snprintf(p, PATH_MAX, "%.*s/%s", dl, slash ? __FILE__ : ".", name);
	return p;
}

static inline struct sup_config *parse(const char *text, struct sup_config_errors *errs)
{
	return sup_config_parse("t.ini", "/etc/tierd", text, strlen(text), errs);
}

static inline void dump_errs(const struct sup_config_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "  %s\n", e->v[i].msg);
}

static inline bool has_msg(const struct sup_config_errors *e, const char *msg)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].msg, msg))
			return true;
	dump_errs(e);
	return false;
}

/* Load a sample that must be refused with exactly this message (after
 * "path:"). */
static inline void expect_refused(const char *file, const char *tail)
{
	struct sup_config_errors e = { 0 };
	const char *path = data(file);
	struct sup_config *c = sup_config_load(path, &e);
	char want[PATH_MAX + 512];

	cr_assert_null(c, "%s loaded", path);
	cr_assert_eq(errno, EINVAL, "%s: %s", path, strerror(errno));
	cr_assert_gt(e.n_errors, 0);
	snprintf(want, sizeof(want), "%s:%s", path, tail);
	cr_assert(has_msg(&e, want), "missing: %s", want);
	sup_config_errors_clear(&e);
}

static inline struct sup_config *load_ok(const char *path)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = sup_config_load(path, &e);

	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c, "%s: %s", path, strerror(errno));
	cr_assert_eq(e.n_errors, 0);
	sup_config_errors_clear(&e);
	return c;
}

static inline char *dump_to_string(const struct sup_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(sup_config_dump(c, f), 0);
	fclose(f);
	return buf;
}

static inline void assert_round_trip(const struct sup_config *c)
{
	struct sup_config_errors e = { 0 };
	char *text = dump_to_string(c);
	struct sup_config *again = sup_config_parse("dump.ini", c->dir, text, strlen(text), &e);

	if (!again)
		dump_errs(&e);
	cr_assert_not_null(again, "dump does not load:\n%s", text);
	cr_assert(sup_config_equal(c, again), "dump loads differently:\n%s", text);
	sup_config_free(again);
	sup_config_errors_clear(&e);
	free(text);
}

#endif
