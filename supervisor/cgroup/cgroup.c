/* SPDX-License-Identifier: MIT */
/* The tier tree: discovery, lock, stale reclaim, controllers, tiers, leaves. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/fdio.h"
#include "cgroup.h"
#include "cg_proc.h"
#include "cg_reclaim.h"
#include "cg_util.h"
#include "../handover/handover.h"

#define REASON_MAX  320
#define SLURP_MAX   (16u << 20)

struct sup_cg {
	char     mount[PATH_MAX];
	char     root[PATH_MAX];
	char     proc_cgroup_path[PATH_MAX];
	char     mount_root[PATH_MAX]; /* cgroup at the mount point (mountinfo) */
	int      root_fd, sup_fd, lock_fd, origin_fd;
	int      tier_fd[SUP_CG_NTIERS_MAX + 1];
	unsigned ntiers;
	unsigned live;                 /* bit per enum sup_cg_ctrl */
	bool     delegated;
	int      kill_timeout_ms;
	char     reason[SUP_CG_NCTRL][REASON_MAX];
	char    *report;
};

/* State of one sup_cg_open call. */
struct open_ctx {
	struct sup_cg *cg;
	const struct sup_cg_opts *opts;
	char   *mountinfo, *proc_cgroups;
	size_t  mountinfo_len, proc_cgroups_len;
	char    self[PATH_MAX];        /* caller's cgroup, absolute; "" if unknown */
};

static int fail(struct open_ctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct open_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->opts->errbuf && c->opts->errbuf_sz) {
		va_start(ap, fmt);
		vsnprintf(c->opts->errbuf, c->opts->errbuf_sz, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Whole file into a malloc'd, NUL-terminated buffer. */
static int slurp(const char *path, char **ret, size_t *ret_len)
{
	return sup_read_file_alloc(AT_FDCWD, path, SLURP_MAX, ret, ret_len);
}

/* A reason sentence; messages may be cut, paths never are (pathf). */
static void reasonf(struct sup_cg *cg, int k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reasonf(struct sup_cg *cg, int k, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cg->reason[k], REASON_MAX, fmt, ap);
	va_end(ap);
}

static int pathf(char *out, size_t sz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int pathf(char *out, size_t sz, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, sz, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

/* The caller's cgroup as a path in this mount namespace. */
static int self_path(const char *proc_cgroup, const char *mount, const char *mount_root,
		     char *out, size_t sz)
{
	char *buf, rel[PATH_MAX];
	size_t len, rlen = strlen(mount_root);
	int r;

	r = slurp(proc_cgroup, &buf, &len);
	if (r < 0)
		return r;
	r = sup_cg_parse_proc_cgroup(buf, len, rel, sizeof(rel));
	free(buf);
	if (r < 0)
		return r;
	/* The mount shows the cgroup mount_root at its mount point. */
	if (!strcmp(mount_root, "/"))
		rlen = 0;
	else if (!sup_cg_path_within(rel, mount_root))
		return -ENOENT;
	/* The cgroup at the mount point itself is the mount path, no slash. */
	return pathf(out, sz, "%s%s", mount, strcmp(rel + rlen, "/") ? rel + rlen : "");
}

static bool delegated_by_systemd(const char *path)
{
	static const char *const names[] = { "trusted.delegate", "user.delegate" };
	char v[8];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ssize_t n = getxattr(path, names[i], v, sizeof(v));

		if (n == 1 && v[0] == '1')
			return true;
	}
	return false;
}

/* Controllers of interest named in a cgroup.controllers-style file. */
static int read_ctrls(int dirfd, const char *file, unsigned *ret)
{
	char buf[512], *tok, *save = NULL;
	unsigned set = 0;
	int n = sup_cg_read_file(dirfd, file, buf, sizeof(buf));

	if (n < 0)
		return n;
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		for (int c = 0; c < SUP_CG_NCTRL; c++)
			if (!strcmp(tok, sup_cg_ctrl_name(c)))
				set |= 1u << c;
	*ret = set;
	return 0;
}

static int set_ctrl(int dirfd, enum sup_cg_ctrl c, bool on)
{
	char w[32];
	int n = snprintf(w, sizeof(w), "%c%s", on ? '+' : '-', sup_cg_ctrl_name(c));

	return sup_cg_write_file(dirfd, "cgroup.subtree_control", w, (size_t)n);
}

/* Enable every wanted controller that dirfd offers and does not yet pass
 * down. One write per controller, so one refusal does not hide the rest. */
static void enable_offered(struct open_ctx *c, int dirfd, const char *path)
{
	unsigned avail, on;
	char msg[256];

	if (read_ctrls(dirfd, "cgroup.controllers", &avail) < 0 ||
	    read_ctrls(dirfd, "cgroup.subtree_control", &on) < 0)
		return;
	for (int k = 0; k < SUP_CG_NCTRL; k++) {
		int r;

		if (!(avail & (1u << k)) || (on & (1u << k)))
			continue;
		r = set_ctrl(dirfd, k, true);
		if (r < 0 && !c->cg->reason[k][0])
			reasonf(c->cg, k, "could not be enabled: %s",
				 sup_cg_errmsg(msg, sizeof(msg), path, "cgroup.subtree_control", r));
	}
}

static bool root_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= 256 || s[0] == '/' || s[n - 1] == '/')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '/' && (p[1] == '/' || p[1] == '.'))
			return false;
		if (!(*p == '/' || *p == '-' || *p == '_' || *p == '.' || *p == '@' ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	}
	return s[0] != '.';
}

/* mkdir -p of opts.root below the mount, enabling controllers top-down. */
static int make_root(struct open_ctx *c, const char *name)
{
	struct sup_cg *cg = c->cg;
	char comp[256], path[PATH_MAX];
	const char *p = name;
	int fd, r;

	fd = open(cg->mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(c, -errno, "cannot open the cgroup2 mount %s: %s", cg->mount,
			    strerror(errno));
	snprintf(path, sizeof(path), "%s", cg->mount);
	while (*p) {
		size_t n = strcspn(p, "/");
		int nfd;

		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n + (p[n] == '/');
		enable_offered(c, fd, path);
		if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			close(fd);
			return fail(c, r, "cannot create cgroup %s/%s: %s%s", path, comp, strerror(-r),
				    r == -EACCES || r == -EPERM ?
					    " (needs root, or a cgroup delegated to this user)" : "");
		}
		if (pathf(path + strlen(path), sizeof(path) - strlen(path), "/%s", comp) < 0) {
			close(fd);
			return fail(c, -ENAMETOOLONG, "cgroup path too long");
		}
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = -errno;
		close(fd);
		if (nfd < 0)
			return fail(c, r, "cannot open cgroup %s: %s", path, strerror(-r));
		fd = nfd;
	}
	cg->root_fd = fd;
	return 0;
}

/* The pid holding an flock on fd, from /proc/locks; 0 if unknown. */
static long lock_holder(int fd)
{
	struct stat st;
	char *buf, *line, *save = NULL, want[64];
	size_t len;
	long pid = 0;

	if (fstat(fd, &st) < 0 || slurp("/proc/locks", &buf, &len) < 0)
		return 0;
	snprintf(want, sizeof(want), "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
		 (unsigned long)st.st_ino);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long p;
		char dev[64];

		if (!strstr(line, "FLOCK") || strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: FLOCK %*s %*s %ld %63s", &p, dev) == 2 && !strcmp(dev, want)) {
			pid = p;
			break;
		}
	}
	free(buf);
	return pid;
}

static int take_lock(struct open_ctx *c)
{
	struct sup_cg *cg = c->cg;
	const char *what = c->opts->lock_path ? c->opts->lock_path : cg->root;
	long holder;
	int r;

	if (c->opts->lock_path)
		cg->lock_fd = open(c->opts->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	else
		cg->lock_fd = openat(cg->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->lock_fd < 0)
		return fail(c, -errno, "cannot open lock %s: %s", what, strerror(errno));
	if (flock(cg->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	r = -errno;
	if (r != -EWOULDBLOCK)
		return fail(c, r, "cannot lock %s: %s", what, strerror(-r));
	holder = lock_holder(cg->lock_fd);
	if (holder > 0)
		return fail(c, -EBUSY, "cgroup root %s is in use by another tierd (pid %ld holds "
			    "the lock on %s); refusing to start", cg->root, holder, what);
	return fail(c, -EBUSY, "cgroup root %s is in use by another tierd (lock on %s is held); "
		    "refusing to start", cg->root, what);
}

/* ---- controllers and tiers ------------------------------------------------- */

static void explain_missing(struct open_ctx *c, enum sup_cg_ctrl k)
{
	struct sup_cg *cg = c->cg;
	char why[REASON_MAX];

	if (cg->reason[k][0])
		return;
	if (sup_cg_explain_missing(sup_cg_ctrl_name(k), c->mountinfo, c->mountinfo_len,
				   c->proc_cgroups ? c->proc_cgroups : "", c->proc_cgroups_len, why,
				   sizeof(why)))
		reasonf(cg, k, "%s", why);
	else if (cg->delegated)
		reasonf(cg, k, "not delegated: the parent of %s does not "
			 "enable it in its cgroup.subtree_control", cg->root);
	else
		reasonf(cg, k, "not offered by the parent of %s "
			 "(absent from its cgroup.controllers)", cg->root);
}

static int setup_ctrls(struct open_ctx *c)
{
	struct sup_cg *cg = c->cg;
	unsigned avail, on;
	char msg[256];
	int r;

	r = read_ctrls(cg->root_fd, "cgroup.controllers", &avail);
	if (r == 0)
		r = read_ctrls(cg->root_fd, "cgroup.subtree_control", &on);
	if (r < 0)
		return fail(c, r, "cannot read the controllers of %s: %s", cg->root, strerror(-r));
	for (int k = 0; k < SUP_CG_NCTRL; k++) {
		if (!(avail & (1u << k))) {
			explain_missing(c, k);
			continue;
		}
		if (!(on & (1u << k)) && (r = set_ctrl(cg->root_fd, k, true)) < 0) {
			reasonf(cg, k, "could not be enabled: %s",
				 sup_cg_errmsg(msg, sizeof(msg), cg->root, "cgroup.subtree_control", r));
			continue;
		}
		cg->reason[k][0] = '\0';
		cg->live |= 1u << k;
	}
	return 0;
}

static int setup_tiers(struct open_ctx *c)
{
	struct sup_cg *cg = c->cg;
	char name[16], msg[256];

	for (unsigned t = 1; t <= cg->ntiers; t++) {
		int r;

		snprintf(name, sizeof(name), "tier%u", t);
		if (mkdirat(cg->root_fd, name, 0755) < 0 && errno != EEXIST)
			return fail(c, -errno, "cannot create %s/%s: %s", cg->root, name, strerror(errno));
		cg->tier_fd[t] = openat(cg->root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg->tier_fd[t] < 0)
			return fail(c, -errno, "cannot open %s/%s: %s", cg->root, name, strerror(errno));
		for (int k = 0; k < SUP_CG_NCTRL; k++) {
			if (!(cg->live & (1u << k)))
				continue;
			r = set_ctrl(cg->tier_fd[t], k, true);
			if (r < 0) {
				cg->live &= ~(1u << k);
				reasonf(cg, k, "could not be enabled: %s/%s",
					 cg->root, sup_cg_errmsg(msg, sizeof(msg), name,
								 "cgroup.subtree_control", r));
			}
		}
	}
	return 0;
}

static int enter_supervisor(struct open_ctx *c)
{
	struct sup_cg *cg = c->cg;
	char msg[256];
	int r;

	if (mkdirat(cg->root_fd, SUP_CG_SUPERVISOR, 0755) < 0 && errno != EEXIST)
		return fail(c, -errno, "cannot create %s/%s: %s", cg->root, SUP_CG_SUPERVISOR,
			    strerror(errno));
	cg->sup_fd = openat(cg->root_fd, SUP_CG_SUPERVISOR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->sup_fd < 0)
		return fail(c, -errno, "cannot open %s/%s: %s", cg->root, SUP_CG_SUPERVISOR,
			    strerror(errno));
	if (c->opts->flags & SUP_CG_F_NO_ENTER)
		return 0;
	/* A crashed instance may have left the tree frozen; joining it then
	 * would stop us. */
	sup_cg_freeze(cg->root_fd, false);
	sup_cg_freeze(cg->sup_fd, false);
	r = sup_cg_move_pid(cg->sup_fd, 0);
	if (r < 0)
		return fail(c, r, "cannot move into %s",
			    sup_cg_errmsg(msg, sizeof(msg), cg->root, SUP_CG_SUPERVISOR "/cgroup.procs", r));
	return pathf(c->self, sizeof(c->self), "%s/%s", cg->root, SUP_CG_SUPERVISOR);
}

static int find_mount(struct open_ctx *c)
{
	const struct sup_cg_opts *o = c->opts;
	const char *mi = o->mountinfo_path ? o->mountinfo_path : "/proc/self/mountinfo";
	struct sup_cg_mount *m;
	int r;

	r = slurp(mi, &c->mountinfo, &c->mountinfo_len);
	if (r < 0)
		return fail(c, r, "cannot read %s: %s", mi, strerror(-r));
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	r = sup_cg_parse_mountinfo(c->mountinfo, c->mountinfo_len, m);
	if (r == 0) {
		snprintf(c->cg->mount, sizeof(c->cg->mount), "%s", m->path);
		snprintf(c->cg->mount_root, sizeof(c->cg->mount_root), "%s", m->root);
	}
	free(m);
	if (r < 0)
		return fail(c, -ENOENT, "no cgroup2 filesystem is mounted (%s lists none): tierd "
			    "needs cgroup v2, pure or hybrid", mi);
	/* Optional: only used to explain missing controllers. */
	if (slurp(o->proc_cgroups_path ? o->proc_cgroups_path : "/proc/cgroups", &c->proc_cgroups,
		  &c->proc_cgroups_len) < 0)
		c->proc_cgroups = NULL;
	return 0;
}

static int settle_root(struct open_ctx *c)
{
	const struct sup_cg_opts *o = c->opts;
	struct sup_cg *cg = c->cg;
	const char *name = o->root ? o->root : SUP_CG_ROOT_DEFAULT;
	bool deleg;
	int r;

	r = self_path(cg->proc_cgroup_path, cg->mount, cg->mount_root, c->self, sizeof(c->self));
	if (r < 0)
		c->self[0] = '\0';
	deleg = o->delegate == SUP_CG_DELEG_ALWAYS ||
		(o->delegate == SUP_CG_DELEG_AUTO && c->self[0] && strcmp(c->self, cg->mount) &&
		 delegated_by_systemd(c->self));
	if (deleg) {
		if (!c->self[0] || !strcmp(c->self, cg->mount))
			return fail(c, -EINVAL, "delegation asked, but this process is in the root "
				    "cgroup of %s or in none: nothing was delegated", cg->mount);
		cg->delegated = true;
		snprintf(cg->root, sizeof(cg->root), "%s", c->self);
		cg->root_fd = open(cg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg->root_fd < 0)
			return fail(c, -errno, "cannot open delegated cgroup %s: %s", cg->root,
				    strerror(errno));
		return 0;
	}
	if (!root_name_valid(name))
		return fail(c, -EINVAL, "invalid cgroup root \"%s\": a relative path of "
			    "[A-Za-z0-9_.@-] components", name);
	if (pathf(cg->root, sizeof(cg->root), "%s/%s", cg->mount, name) < 0)
		return fail(c, -ENAMETOOLONG, "cgroup root path too long");
	/* Remember where we came from, to go back there on destroy. */
	if (c->self[0] && !sup_cg_path_within(c->self, cg->root))
		cg->origin_fd = open(c->self, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return make_root(c, name);
}

static struct sup_cg *cg_alloc(void)
{
	struct sup_cg *cg = calloc(1, sizeof(*cg));

	if (!cg)
		return NULL;
	cg->root_fd = cg->sup_fd = cg->lock_fd = cg->origin_fd = -1;
	for (unsigned t = 0; t <= SUP_CG_NTIERS_MAX; t++)
		cg->tier_fd[t] = -1;
	return cg;
}

struct sup_cg *sup_cg_open(const struct sup_cg_opts *opts)
{
	struct open_ctx c = { .opts = opts };
	struct sup_cg *cg;
	int r, stale;

	if (!opts || opts->sz < sizeof(*opts) || opts->ntiers > SUP_CG_NTIERS_MAX ||
	    (unsigned)opts->delegate > SUP_CG_DELEG_ALWAYS || opts->kill_timeout_ms < 0) {
		errno = EINVAL;
		return NULL;
	}
	cg = cg_alloc();
	if (!cg)
		return NULL;
	c.cg = cg;
	cg->ntiers = opts->ntiers ? opts->ntiers : SUP_CG_NTIERS_DEFAULT;
	cg->kill_timeout_ms = opts->kill_timeout_ms ? opts->kill_timeout_ms
						    : SUP_CG_KILL_TIMEOUT_MS_DEFAULT;
	snprintf(cg->proc_cgroup_path, sizeof(cg->proc_cgroup_path), "%s",
		 opts->proc_cgroup_path ? opts->proc_cgroup_path : "/proc/self/cgroup");

	r = find_mount(&c);
	if (r == 0)
		r = settle_root(&c);
	if (r == 0)
		r = take_lock(&c);
	if (r < 0)
		goto close_cg;
	stale = sup_cg_root_is_stale(cg->root_fd);
	if (stale > 0 && (opts->flags & SUP_CG_F_NO_RECLAIM)) {
		r = fail(&c, -EEXIST, "a stale tree is left under %s (a previous tierd crashed?) "
			 "and reclaiming was not allowed", cg->root);
		goto close_cg;
	}
	r = enter_supervisor(&c);
	if (r < 0)
		goto close_cg;
	if (stale > 0) {
		struct sup_cg_reclaim_args ra = {
			.root_fd = cg->root_fd, .sup_fd = cg->sup_fd, .root = cg->root,
			.self = c.self, .delegated = cg->delegated, .timeout_ms = cg->kill_timeout_ms,
		};

		r = sup_cg_reclaim(&ra, &cg->report);
		if (r < 0) {
			fail(&c, r, "%s", cg->report ? cg->report : "stale tree reclaim failed");
			goto close_cg;
		}
	}
	r = setup_ctrls(&c);
	if (r == 0)
		r = setup_tiers(&c);
	if (r < 0)
		goto close_cg;
	free(c.mountinfo);
	free(c.proc_cgroups);
	return cg;

close_cg:
	free(c.mountinfo);
	free(c.proc_cgroups);
	sup_cg_close(cg);
	errno = -r;
	return NULL;
}

/* What sup_cg_open starts from, before it finds the tree. */
struct sup_cg *sup_cg_detached(void)
{
	return cg_alloc();
}

void sup_cg_close(struct sup_cg *cg)
{
	if (!cg)
		return;
	for (unsigned t = 0; t <= SUP_CG_NTIERS_MAX; t++)
		if (cg->tier_fd[t] >= 0)
			close(cg->tier_fd[t]);
	if (cg->sup_fd >= 0)
		close(cg->sup_fd);
	if (cg->root_fd >= 0)
		close(cg->root_fd);
	if (cg->origin_fd >= 0)
		close(cg->origin_fd);
	/* Last: closing the lock fd releases the lock. */
	if (cg->lock_fd >= 0)
		close(cg->lock_fd);
	free(cg->report);
	free(cg);
}

/* Put the caller somewhere outside the tree before removing it. */
static int leave_tree(struct sup_cg *cg)
{
	char self[PATH_MAX];
	int fd, r;

	if (self_path(cg->proc_cgroup_path, cg->mount, cg->mount_root, self, sizeof(self)) < 0 ||
	    !sup_cg_path_within(self, cg->root))
		return 0;
	if (cg->delegated) {
		/* Our own cgroup takes us back only once it stops passing
		 * controllers down (no-internal-process rule). */
		for (int k = 0; k < SUP_CG_NCTRL; k++)
			if (cg->live & (1u << k))
				set_ctrl(cg->root_fd, k, false);
		return sup_cg_move_pid(cg->root_fd, 0);
	}
	if (cg->origin_fd >= 0 && sup_cg_move_pid(cg->origin_fd, 0) == 0)
		return 0;
	fd = open(cg->mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = sup_cg_move_pid(fd, 0);
	close(fd);
	return r;
}

struct destroy_ctx {
	int timeout_ms;
	int err;
};

static int destroy_child(int parent, const char *name, void *arg)
{
	struct destroy_ctx *d = arg;
	int r = sup_cg_remove_tree(parent, name, d->timeout_ms);

	if (r < 0 && r != -ENOENT && !d->err)
		d->err = r;
	return 0;
}

int sup_cg_destroy(struct sup_cg *cg)
{
	struct destroy_ctx d;
	int r;

	if (!cg)
		return 0;
	d = (struct destroy_ctx){ cg->kill_timeout_ms, 0 };
	r = leave_tree(cg);
	if (r == 0) {
		sup_cg_for_each_child(cg->root_fd, destroy_child, &d);
		r = d.err;
	}
	if (r == 0 && !cg->delegated) {
		char parent[PATH_MAX], *slash;
		int fd;

		snprintf(parent, sizeof(parent), "%s", cg->root);
		slash = strrchr(parent, '/');
		*slash = '\0';
		fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
		} else {
			if (unlinkat(fd, slash + 1, AT_REMOVEDIR) < 0 && errno != ENOENT)
				r = -errno;
			close(fd);
		}
	}
	sup_cg_close(cg);
	return r;
}

/* ---- accessors ------------------------------------------------------------- */

const char *sup_cg_mount_path(const struct sup_cg *cg) { return cg->mount; }
const char *sup_cg_root_path(const struct sup_cg *cg) { return cg->root; }
bool sup_cg_delegated(const struct sup_cg *cg) { return cg->delegated; }
unsigned sup_cg_ntiers(const struct sup_cg *cg) { return cg->ntiers; }
int sup_cg_root_fd(const struct sup_cg *cg) { return cg->root_fd; }
int sup_cg_supervisor_fd(const struct sup_cg *cg) { return cg->sup_fd; }
const char *sup_cg_reclaim_report(const struct sup_cg *cg) { return cg->report; }
int sup_cg_kill_timeout_ms(const struct sup_cg *cg) { return cg->kill_timeout_ms; }

int sup_cg_tier_fd(const struct sup_cg *cg, unsigned tier)
{
	return tier >= 1 && tier <= cg->ntiers ? cg->tier_fd[tier] : -EINVAL;
}

bool sup_cg_ctrl_live(const struct sup_cg *cg, enum sup_cg_ctrl c)
{
	return (unsigned)c < SUP_CG_NCTRL && (cg->live & (1u << c));
}

const char *sup_cg_ctrl_reason(const struct sup_cg *cg, enum sup_cg_ctrl c)
{
	if ((unsigned)c >= SUP_CG_NCTRL)
		return "unknown controller";
	return cg->live & (1u << c) ? NULL : cg->reason[c];
}

/* ---- live upgrade (docs/handover.md, section "cgroup") ------------------ */

#define CG_SEC_VERSION 1

void sup_cg_save(const struct sup_cg *cg, struct sup_ho_w *w)
{
	sup_ho_w_begin(w, SUP_HO_TAG_CGROUP, CG_SEC_VERSION);
	sup_ho_w_str(w, cg->mount);
	sup_ho_w_str(w, cg->root);
	sup_ho_w_str(w, cg->proc_cgroup_path);
	sup_ho_w_str(w, cg->mount_root);
	sup_ho_w_fd(w, cg->root_fd, SUP_HO_FD_DIR);
	sup_ho_w_fd(w, cg->sup_fd, SUP_HO_FD_DIR);
	/* The tree's lock: held across the exec, never released. */
	sup_ho_w_fd(w, cg->lock_fd, SUP_HO_FD_ANY);
	sup_ho_w_fd(w, cg->origin_fd, SUP_HO_FD_DIR);
	sup_ho_w_u32(w, cg->ntiers);
	for (unsigned t = 0; t <= SUP_CG_NTIERS_MAX; t++)
		sup_ho_w_fd(w, cg->tier_fd[t], SUP_HO_FD_DIR);
	sup_ho_w_u32(w, cg->live);
	sup_ho_w_u8(w, cg->delegated);
	sup_ho_w_u32(w, (uint32_t)cg->kill_timeout_ms);
	for (int k = 0; k < SUP_CG_NCTRL; k++)
		sup_ho_w_str(w, cg->reason[k]);
	sup_ho_w_end(w);
}

struct sup_cg *sup_cg_restore(struct sup_ho_r *r)
{
	struct sup_cg *cg;
	uint32_t version, ntiers, kto;
	uint8_t deleg;

	if (!sup_ho_r_section(r, SUP_HO_TAG_CGROUP, &version) || version != CG_SEC_VERSION) {
		sup_ho_r_fail(r, "no cgroup section of version %u", CG_SEC_VERSION);
		return NULL;
	}
	cg = cg_alloc();
	if (!cg) {
		sup_ho_r_fail(r, "out of memory");
		return NULL;
	}
	sup_ho_r_str(r, cg->mount, sizeof(cg->mount));
	sup_ho_r_str(r, cg->root, sizeof(cg->root));
	sup_ho_r_str(r, cg->proc_cgroup_path, sizeof(cg->proc_cgroup_path));
	sup_ho_r_str(r, cg->mount_root, sizeof(cg->mount_root));
	sup_ho_r_fd(r, SUP_HO_FD_DIR, &cg->root_fd);
	sup_ho_r_fd(r, SUP_HO_FD_DIR, &cg->sup_fd);
	sup_ho_r_fd(r, SUP_HO_FD_ANY, &cg->lock_fd);
	sup_ho_r_fd(r, SUP_HO_FD_DIR, &cg->origin_fd);
	sup_ho_r_u32(r, &ntiers);
	for (unsigned t = 0; t <= SUP_CG_NTIERS_MAX; t++)
		sup_ho_r_fd(r, SUP_HO_FD_DIR, &cg->tier_fd[t]);
	sup_ho_r_u32(r, &cg->live);
	sup_ho_r_u8(r, &deleg);
	sup_ho_r_u32(r, &kto);
	for (int k = 0; k < SUP_CG_NCTRL; k++)
		sup_ho_r_str(r, cg->reason[k], REASON_MAX);
	if (sup_ho_r_ok(r) && (ntiers < 1 || ntiers > SUP_CG_NTIERS_MAX || cg->root_fd < 0 ||
			       cg->sup_fd < 0 || cg->lock_fd < 0 || kto > 3600 * 1000))
		sup_ho_r_fail(r, "cgroup: %u tiers, kill timeout %u ms, or a missing directory", ntiers, kto);
	if (!sup_ho_r_ok(r)) {
		free(cg);   /* the fds are the rollback's: not closed */
		return NULL;
	}
	cg->ntiers = ntiers;
	cg->delegated = deleg;
	cg->kill_timeout_ms = (int)kto;
	return cg;
}

/* Forget a restored tree without closing its fds (the restore failed and
 * the fds go back to the previous binary). */
void sup_cg_forget(struct sup_cg *cg)
{
	if (cg) {
		free(cg->report);
		free(cg);
	}
}
