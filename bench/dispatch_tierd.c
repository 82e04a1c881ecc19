/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dispatch_tierd.h"
#include "dispatch_util.h"

#define SEC              1000000000LL
#define START_TIMEOUT_NS (10 * SEC)
#define READY_TIMEOUT_NS (30 * SEC)
#define CALL_TIMEOUT_NS  (300 * SEC)
#define STOP_TIMEOUT_NS  (20 * SEC)

static int write_conf(const struct disp_tierd *t, const char *sup_extra, const char *agents)
{
	FILE *f = fopen(t->conf, "we");

	if (!f)
		return -errno;
	/* Its own task journal beside its socket (journal_dir is locked). */
	fprintf(f, "[supervisor]\ncgroup_root = %s\ncontrol_socket = %s\nlog_level = warning\n"
		"metrics_address = off\njournal_dir = %s.journal\n%s\n%s", t->name, t->sock, t->sock,
		sup_extra ? sup_extra : "", agents);
	return fclose(f) ? -errno : 0;
}

static int try_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* The next complete line, NUL-terminated in place (valid until the next
 * read); NULL when none is buffered. */
static char *next_line(struct disp_tierd *t, size_t *consumed)
{
	char *nl = t->len ? memchr(t->buf, '\n', t->len) : NULL;

	if (!nl)
		return NULL;
	*nl = 0;
	*consumed = (size_t)(nl - t->buf) + 1;
	return t->buf;
}

static int fill(struct disp_tierd *t, int64_t deadline)
{
	ssize_t r;

	if (t->cap - t->len < 65536) {
		char *b = realloc(t->buf, t->cap * 2 + 65536);

		if (!b)
			return -ENOMEM;
		t->buf = b;
		t->cap = t->cap * 2 + 65536;
	}
	r = disp_read_timeout(t->fd, t->buf + t->len, t->cap - t->len, deadline - bench_now_ns());
	if (r <= 0)
		return r ? (int)r : -ECONNRESET;
	t->len += (size_t)r;
	return 0;
}

json_t *disp_tierd_call_timed(struct disp_tierd *t, const char *cmd, json_t *args, int64_t *ret_ns,
			      char *err, size_t errlen)
{
	uint64_t id = ++t->next_id;
	json_t *req = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "cmd", cmd,
				"args", args ? args : json_object());
	int64_t t0, deadline = bench_now_ns() + CALL_TIMEOUT_NS;
	char *line = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_t *res = NULL;
	size_t ll;
	int r;

	json_decref(req);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ll = strlen(line);
	line[ll] = '\n';   /* over the NUL: json_dumps' buffer holds it */
	t0 = bench_now_ns();
	r = disp_write_all(t->fd, line, ll + 1);
	free(line);
	if (r < 0) {
		snprintf(err, errlen, "writing to %s: %s", t->sock, strerror(-r));
		return NULL;
	}
	for (;;) {
		size_t used;
		char *l;

		while ((l = next_line(t, &used))) {
			json_error_t je;
			json_t *m = json_loads(l, 0, &je), *jid = json_object_get(m, "id");
			int64_t t1 = bench_now_ns();

			t->len -= used;
			memmove(t->buf, t->buf + used, t->len);
			if (!json_is_integer(jid) || (uint64_t)json_integer_value(jid) != id ||
			    json_is_true(json_object_get(m, "more"))) {
				json_decref(m);
				continue;
			}
			if (ret_ns)
				*ret_ns = t1 - t0;
			if (json_is_true(json_object_get(m, "ok"))) {
				res = json_incref(json_object_get(m, "result"));
				if (!res)
					res = json_object();
			} else {
				snprintf(err, errlen, "%s: %s", cmd,
					 json_string_value(json_object_get(m, "error")) ?: "refused");
			}
			json_decref(m);
			return res;
		}
		r = fill(t, deadline);
		if (r < 0) {
			snprintf(err, errlen, "reading from %s: %s", t->sock, strerror(-r));
			return NULL;
		}
	}
}

json_t *disp_tierd_call(struct disp_tierd *t, const char *cmd, json_t *args, char *err, size_t errlen)
{
	return disp_tierd_call_timed(t, cmd, args, NULL, err, errlen);
}

void disp_tierd_cg(const struct disp_tierd *t, const char *sub, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", t->cg, sub);
}

/* Where tierd puts its root when not delegated: below the cgroup2 mount.
 * Used only to clean up after a tierd that died before saying. */
static void cg_guess(struct disp_tierd *t)
{
	char line[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 "), *p = line;

		if (!sep)
			continue;
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		for (int k = 0; k < 4 && p; k++)
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		if (p && strchr(p, ' ')) {
			*strchr(p, ' ') = 0;
			snprintf(t->cg, sizeof(t->cg), "%.400s/%s", p, t->name);
		}
		break;
	}
	fclose(f);
}

static bool alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

static int wait_ready(struct disp_tierd *t)
{
	int64_t end = bench_now_ns() + READY_TIMEOUT_NS;
	char err[256];

	for (;;) {
		json_t *r = disp_tierd_call(t, "agents", NULL, err, sizeof(err));
		json_t *a, *ags = json_object_get(r, "agents");
		size_t i, ready = 0, failed = 0, n = json_array_size(ags);

		if (!r) {
			fprintf(stderr, "dispatch_bench: %s\n", err);
			return -EIO;
		}
		json_array_foreach(ags, i, a) {
			const char *st = json_string_value(json_object_get(a, "state")) ?: "";

			ready += !strcmp(st, "ready");
			failed += !strcmp(st, "failed");
		}
		json_decref(r);
		if (ready == n)
			return 0;
		if (failed || bench_now_ns() > end) {
			fprintf(stderr, "dispatch_bench: %s: %zu of %zu agents ready, %zu failed\n", t->name,
				ready, n, failed);
			return failed ? -ECHILD : -ETIMEDOUT;
		}
		disp_sleep_ns(50 * 1000000);
	}
}

int disp_tierd_start(struct disp_tierd *t, const char *tierd_bin, const char *dir, const char *tag,
		     const char *sup_extra, const char *agents)
{
	char *argv[] = { (char *)tierd_bin, "-c", t->conf, NULL };
	int64_t end = bench_now_ns() + START_TIMEOUT_NS;
	char err[256];
	json_t *st;
	int logfd, r;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	snprintf(t->name, sizeof(t->name), "dispatch-bench-%d-%s", (int)getpid(), tag);
	snprintf(t->sock, sizeof(t->sock), "%s/%s.sock", dir, tag);
	snprintf(t->conf, sizeof(t->conf), "%s/%s.ini", dir, tag);
	snprintf(t->log, sizeof(t->log), "%s/%s.log", dir, tag);
	r = write_conf(t, sup_extra, agents);
	if (r < 0)
		return r;
	logfd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	/* stderr too: tierd logs there. */
	t->pid = disp_fork();
	if (t->pid == 0) {
		sigset_t none;

		/* tierd stops its fleet on SIGTERM; ask for it if we die. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		unsetenv("NOTIFY_SOCKET");
		if (dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	if (t->pid < 0)
		return t->pid;
	while ((t->fd = try_connect(t->sock)) < 0) {
		if (!alive(t->pid) || bench_now_ns() > end) {
			fprintf(stderr, "dispatch_bench: tierd %s did not open %s\n", tag, t->sock);
			r = -EIO;
			goto stop_tierd;
		}
		disp_sleep_ns(20 * 1000000);
	}
	r = wait_ready(t);
	if (r < 0)
		goto stop_tierd;
	st = disp_tierd_call(t, "status", NULL, err, sizeof(err));
	snprintf(t->cg, sizeof(t->cg), "%s",
		 json_string_value(json_object_get(json_object_get(st, "cgroup"), "root")) ?: "");
	json_decref(st);
	if (!t->cg[0]) {
		fprintf(stderr, "dispatch_bench: tierd %s: no cgroup root in status (%s)\n", tag, err);
		r = -EIO;
		goto stop_tierd;
	}
	return 0;
stop_tierd:
	bench_log_tail(t->log);
	if (!t->cg[0])
		cg_guess(t);
	disp_tierd_stop(t);
	return r;
}

static int rm_dir(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	return 0;
}

void disp_tierd_stop(struct disp_tierd *t)
{
	char path[600];
	int fd;

	if (!t->name[0])
		return;   /* never started */
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
	if (t->pid > 0) {
		int st = disp_reap(t->pid, STOP_TIMEOUT_NS);

		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			fprintf(stderr, "dispatch_bench: tierd %s did not stop cleanly (status %d)\n",
				t->name, st);
		t->pid = 0;
	}
	if (!t->cg[0])
		return;
	/* What tierd left behind (it should leave nothing): our own tree only. */
	snprintf(path, sizeof(path), "%s/cgroup.kill", t->cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		fprintf(stderr, "dispatch_bench: tierd %s left %s behind; killing it\n", t->name, t->cg);
		(void)!write(fd, "1", 1);
		close(fd);
		disp_sleep_ns(200 * 1000000);
		nftw(t->cg, rm_dir, 16, FTW_DEPTH | FTW_PHYS);
	}
	t->cg[0] = 0;
	t->name[0] = 0;
}
