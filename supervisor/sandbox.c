/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"
#include "sandbox.h"

#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* struct mount_attr (MOUNT_ATTR_SIZE_VER0), spelled out: glibc's
 * <sys/mount.h> and <linux/mount.h> do not mix on every release. */
struct sb_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

#define PROC_SYS "/proc/sys"
/* A mount table past this is not a machine tierd should make a plan for. */
#define MOUNTINFO_MAX ((size_t)16 << 20)

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return out;
}

static bool below(const char *path, const char *top)
{
	size_t n = strlen(top);

	if (!strcmp(top, "/"))
		return true;
	return !strncmp(path, top, n) && (path[n] == '/' || path[n] == 0);
}

/* Field i (0-based, space-separated) of line [s, e), or false. */
static bool field(const char *s, const char *e, int i, const char **ret, size_t *ret_n)
{
	for (;;) {
		const char *f = s;

		while (s < e && *s != ' ')
			s++;
		if (!i--) {
			*ret = f;
			*ret_n = (size_t)(s - f);
			return true;
		}
		if (s >= e)
			return false;
		s++;
	}
}

static int add_mount(struct sup_sandbox_plan *p, char *mp)
{
	for (size_t i = 0; i < p->n_ro; i++) {
		if (below(mp, p->ro[i])) {
			free(mp);
			p->n_skipped++;
			return 0;
		}
		if (below(p->ro[i], mp)) {
			/* Keep the outer one only. */
			free(p->ro[i]);
			p->ro[i] = p->ro[--p->n_ro];
			p->n_skipped++;
			i--;
		}
	}
	if (p->n_ro == SUP_SANDBOX_MAX_MOUNTS) {
		free(mp);
		return -E2BIG;
	}
	p->ro[p->n_ro++] = mp;
	return 0;
}

int sup_sandbox_plan_parse(struct sup_sandbox_plan *p, const char *mi, size_t len,
			   const char *hide)
{
	const char *s = mi, *end = mi + len;
	int r = 0;

	*p = (struct sup_sandbox_plan){ 0 };
	if (hide && !(p->hide = strdup(hide)))
		return -ENOMEM;
	while (s < end && r == 0) {
		const char *e = memchr(s, '\n', (size_t)(end - s)), *sep, *mp, *fs;
		size_t mpn, fsn;

		if (!e)
			e = end;
		/* The optional fields end at " - "; the fs type follows. */
		sep = memmem(s, (size_t)(e - s), " - ", 3);
		if (sep && field(s, sep, 4, &mp, &mpn) && field(sep + 3, e, 0, &fs, &fsn) &&
		    ((fsn == 6 && !memcmp(fs, "cgroup", 6)) || (fsn == 7 && !memcmp(fs, "cgroup2", 7)))) {
			char *m = unescape(mp, mpn);

			r = m ? add_mount(p, m) : -ENOMEM;
		}
		s = e + 1;
	}
	if (r < 0)
		sup_sandbox_plan_free(p);
	return r;
}

int sup_sandbox_plan_load(struct sup_sandbox_plan *p, const char *hide)
{
	size_t len;
	char *buf;
	int r;

	r = sup_read_file_alloc(AT_FDCWD, "/proc/self/mountinfo", MOUNTINFO_MAX, &buf, &len);
	if (r < 0)
		return r;
	r = sup_sandbox_plan_parse(p, buf, len, hide);
	free(buf);
	return r;
}

void sup_sandbox_plan_free(struct sup_sandbox_plan *p)
{
	for (size_t i = 0; i < p->n_ro; i++)
		free(p->ro[i]);
	free(p->hide);
	*p = (struct sup_sandbox_plan){ 0 };
}

static int ro_recursive(const char *path)
{
	struct sb_mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };

	if (syscall(__NR_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &a, sizeof(a)) < 0)
		return -errno;
	return 0;
}

static int fail(enum sup_spawn_step *ret_step, enum sup_spawn_step step, int err)
{
	*ret_step = step;
	return -err;
}

int sup_sandbox_apply(const struct sup_sandbox_plan *p, enum sup_spawn_step *ret_step)
{
	int r;

	if (syscall(SYS_unshare, CLONE_NEWNS) < 0)
		return fail(ret_step, SUP_STEP_SB_UNSHARE, errno);
	/* Slave: tierd's later mounts still reach agents, theirs never
	 * reach tierd, and the read-only flags below stay in here. */
	if (syscall(SYS_mount, NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail(ret_step, SUP_STEP_SB_SLAVE, errno);
	for (size_t i = 0; i < p->n_ro; i++) {
		r = ro_recursive(p->ro[i]);
		if (r < 0)
			return fail(ret_step, SUP_STEP_SB_CGROUP_RO, -r);
	}
	/* A bind of the socket file itself, not a tmpfs over its directory:
	 * that directory may hold what agents need (/run, a test's dir). */
	if (p->hide && syscall(SYS_mount, "/dev/null", p->hide, NULL, MS_BIND, NULL) < 0)
		return fail(ret_step, SUP_STEP_SB_HIDE_SOCKET, errno);
	/* /proc/sys is no mount of its own: bind it onto itself first. */
	if (syscall(SYS_mount, PROC_SYS, PROC_SYS, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail(ret_step, SUP_STEP_SB_PROC_SYS, errno);
	r = ro_recursive(PROC_SYS);
	if (r < 0)
		return fail(ret_step, SUP_STEP_SB_PROC_SYS, -r);
	return 0;
}

struct prep_msg {
	int step;
	int err;
};

int sup_sandbox_prepare(const struct sup_sandbox_plan *p, int *ret_fd,
			enum sup_spawn_step *ret_step)
{
	struct prep_msg m = { 0, 0 };
	int up[2], hold[2], fd = -1, r;
	char path[64], c;
	ssize_t n;
	pid_t pid;

	/* Until a later step says otherwise: making the namespace failed. */
	*ret_step = SUP_STEP_SB_UNSHARE;
	if (pipe2(up, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(hold, O_CLOEXEC) < 0) {
		r = -errno;
		goto out_up;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out_hold;
	}
	if (pid == 0) {
		enum sup_spawn_step step = SUP_STEP_NONE;

		close(hold[1]);
		close(up[0]);
		r = sup_sandbox_apply(p, &step);
		m = (struct prep_msg){ (int)step, -r };
		if (write(up[1], &m, sizeof(m)) != sizeof(m))
			_exit(1);
		/* Alive until the parent has the namespace's fd (EOF). */
		(void)sup_read(hold[0], &c, 1);
		_exit(0);
	}
	close(up[1]);
	close(hold[0]);
	up[1] = hold[0] = -1;
	n = sup_read(up[0], &m, sizeof(m));
	if (n != (ssize_t)sizeof(m)) {
		r = n < 0 ? (int)n : -EIO;
		*ret_step = SUP_STEP_SB_UNSHARE;
	} else if (m.err) {
		r = -m.err;
		*ret_step = (enum sup_spawn_step)m.step;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
		if (fd < 0)
			*ret_step = SUP_STEP_MNTNS;
	}
	close(hold[1]);
	hold[1] = -1;
	(void)sup_waitpid(pid, NULL, 0);
	if (r == 0)
		*ret_fd = fd;
out_hold:
	if (hold[0] >= 0)
		close(hold[0]);
	if (hold[1] >= 0)
		close(hold[1]);
out_up:
	if (up[0] >= 0)
		close(up[0]);
	if (up[1] >= 0)
		close(up[1]);
	return r;
}
