/* SPDX-License-Identifier: MIT */
/* Parsers of /proc/self/mountinfo, /proc/self/cgroup and /proc/cgroups. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_proc.h"
#include "cg_stat.h"

#define MI_FIELDS_MAX 32

struct span {
	const char *s;
	size_t      n;
};

static bool span_eq(struct span a, const char *lit)
{
	return strlen(lit) == a.n && !memcmp(a.s, lit, a.n);
}

/* Split one line on spaces into at most max fields; returns the count. */
static size_t split(const char *s, size_t n, struct span *f, size_t max)
{
	size_t nf = 0, i = 0;

	while (i < n && nf < max) {
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		f[nf].s = s + i;
		while (i < n && s[i] != ' ')
			i++;
		f[nf].n = (size_t)(s + i - f[nf].s);
		nf++;
	}
	return nf;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static int unescape(struct span in, char *out, size_t sz)
{
	size_t o = 0;

	for (size_t i = 0; i < in.n; i++) {
		char c = in.s[i];

		if (c == '\\' && i + 3 < in.n && in.s[i + 1] >= '0' && in.s[i + 1] <= '3' &&
		    in.s[i + 2] >= '0' && in.s[i + 2] <= '7' &&
		    in.s[i + 3] >= '0' && in.s[i + 3] <= '7') {
			c = (char)((in.s[i + 1] - '0') * 64 + (in.s[i + 2] - '0') * 8 + (in.s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= sz)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

struct mi_entry {
	struct span root, point, fstype, super;
};

/* Fields: id parent maj:min root point opts [optional...] - fstype src super */
static bool mi_parse_line(const char *s, size_t n, struct mi_entry *e)
{
	struct span f[MI_FIELDS_MAX];
	size_t nf = split(s, n, f, MI_FIELDS_MAX), dash;

	for (dash = 6; dash < nf; dash++)
		if (span_eq(f[dash], "-"))
			break;
	if (nf < 6 || dash + 1 >= nf)
		return false;
	e->root = f[3];
	e->point = f[4];
	e->fstype = f[dash + 1];
	e->super = dash + 3 < nf ? f[dash + 3] : (struct span){ "", 0 };
	return true;
}

static int mount_rank(const char *path)
{
	if (!strcmp(path, "/sys/fs/cgroup"))
		return 2;
	if (!strcmp(path, "/sys/fs/cgroup/unified"))
		return 1;
	return 0;
}

int sup_cg_parse_mountinfo(const char *buf, size_t len, struct sup_cg_mount *ret)
{
	struct sup_lines it = { buf, buf + len };
	struct sup_cg_mount best;
	int best_rank = -1;
	const char *s;
	size_t n;

	while (sup_next_line(&it, &s, &n)) {
		struct mi_entry e;
		char path[PATH_MAX];
		int rank;

		if (!mi_parse_line(s, n, &e) || !span_eq(e.fstype, "cgroup2"))
			continue;
		if (unescape(e.point, path, sizeof(path)) < 0)
			continue;
		rank = mount_rank(path);
		if (rank <= best_rank)
			continue;
		if (unescape(e.root, best.root, sizeof(best.root)) < 0)
			continue;
		memcpy(best.path, path, sizeof(path));
		best_rank = rank;
	}
	if (best_rank < 0)
		return -ENOENT;
	*ret = best;
	return 0;
}

int sup_cg_parse_proc_cgroup(const char *buf, size_t len, char *ret_path, size_t sz)
{
	struct sup_lines it = { buf, buf + len };
	const char *s;
	size_t n;

	while (sup_next_line(&it, &s, &n)) {
		if (n < 3 || memcmp(s, "0::", 3))
			continue;
		if (n - 3 + 1 > sz)
			return -ENAMETOOLONG;
		if (n == 3 || s[3] != '/')
			return -EBADMSG;
		memcpy(ret_path, s + 3, n - 3);
		ret_path[n - 3] = '\0';
		return 0;
	}
	return -ENOENT;
}

/* Is `name` one of the comma-separated options in `opts`? */
static bool has_opt(struct span opts, const char *name)
{
	size_t i = 0;

	while (i < opts.n) {
		size_t start = i;

		while (i < opts.n && opts.s[i] != ',')
			i++;
		if (span_eq((struct span){ opts.s + start, i - start }, name))
			return true;
		i++;
	}
	return false;
}

static int v1_mount_of(const char *legacy, const char *mi, size_t mlen, char *out, size_t sz)
{
	struct sup_lines it = { mi, mi + mlen };
	const char *s;
	size_t n;

	while (sup_next_line(&it, &s, &n)) {
		struct mi_entry e;

		if (mi_parse_line(s, n, &e) && span_eq(e.fstype, "cgroup") && has_opt(e.super, legacy))
			return unescape(e.point, out, sz) == 0;
	}
	return 0;
}

/* "name\thierarchy\tnum_cgroups\tenabled" for controller `legacy`. */
static bool proc_cgroups_line(const char *s, size_t n, const char *legacy, unsigned long *ret_hier,
			      unsigned long *ret_enabled)
{
	char line[256], num[24];
	struct span f[4];

	if (!n || s[0] == '#' || n >= sizeof(line))
		return false;
	for (size_t k = 0; k < n; k++)
		line[k] = s[k] == '\t' ? ' ' : s[k];
	if (split(line, n, f, 4) != 4 || !span_eq(f[0], legacy))
		return false;
	snprintf(num, sizeof(num), "%.*s", (int)f[1].n, f[1].s);
	*ret_hier = strtoul(num, NULL, 10);
	snprintf(num, sizeof(num), "%.*s", (int)f[3].n, f[3].s);
	*ret_enabled = strtoul(num, NULL, 10);
	return true;
}

int sup_cg_explain_missing(const char *ctrl, const char *mountinfo, size_t mlen,
			   const char *proc_cgroups, size_t plen, char *ret, size_t sz)
{
	/* /proc/cgroups and v1 mounts use the legacy name of io. */
	const char *legacy = strcmp(ctrl, "io") ? ctrl : "blkio";
	struct sup_lines it = { proc_cgroups, proc_cgroups + plen };
	char where[PATH_MAX];
	const char *s;
	size_t n;

	while (sup_next_line(&it, &s, &n)) {
		unsigned long hier, enabled;

		if (!proc_cgroups_line(s, n, legacy, &hier, &enabled))
			continue;
		if (!enabled) {
			snprintf(ret, sz, "disabled on the kernel command line (cgroup_disable=%s)", ctrl);
			return 1;
		}
		if (hier != 0) {
			if (v1_mount_of(legacy, mountinfo, mlen, where, sizeof(where)))
				snprintf(ret, sz, "bound to a cgroup v1 hierarchy at %s (hybrid setup); "
					 "tierd sets no v1 limits", where);
			else
				snprintf(ret, sz, "bound to a cgroup v1 hierarchy (hybrid setup); "
					 "tierd sets no v1 limits");
			return 1;
		}
		return 0;
	}
	snprintf(ret, sz, "not built into this kernel (absent from /proc/cgroups)");
	return 1;
}
