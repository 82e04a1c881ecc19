/* SPDX-License-Identifier: MIT */
/*
 * What the agentd test programs share (test_agentd_stdio.c,
 * test_agentd_exec.c, test_agentd_bench.c): playing tierd towards agentd
 * the way tierd does it: a sealed ring memfd and two eventfds placed at
 * fds 3-5, the TIER_* environment, HELLO/WELCOME, TASK records in,
 * RESULT/EVENT/LOG records out, all through the real ring library. static
 * inline, so a program need not use them all.
 */
#ifndef TESTS_AGENTD_TEST_H
#define TESTS_AGENTD_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tier/proto.h"
#include "tier/ring.h"

#define MS 1000000LL

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct res {
	uint64_t id;
	int      status;
	bool     has_q;
	double   q;
	char    *payload;   /* NUL-terminated copy */
	uint32_t len;
};

struct ev {
	uint64_t task;
	char     kind[48];
	char     msg[512];
};

struct h {
	struct tier_shm  *shm;
	struct tier_prod *sq;
	struct tier_cons *cq;
	int               cq_bell, sq_bell;
	pid_t             pid;
	int               pidfd;
	bool              reaped;
	int               status;   /* wait status once reaped */
	uint64_t          next_id;
	struct res       *res;
	size_t            nres, capres;
	struct ev         ev[256];
	size_t            nev;
	char              log[64][512];
	size_t            nlog;
	char             *rbuf;
	size_t            rcap;
	char              logpath[PATH_MAX];
	int               slow;     /* timeout multiplier (valgrind) */
};

/* ---- paths ------------------------------------------------------------- */

/* build/ (or build-san/): the tests run as BUILD/tests/test_agentd_*. */
static inline const char *build_dir(void)
{
	/* Room to spare in every path built on it. */
	static char dir[PATH_MAX / 2];
	char exe[PATH_MAX], *d;
	ssize_t n;

	if (dir[0])
		return dir;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert(n > 0);
	exe[n] = 0;
	d = dirname(dirname(exe));
	cr_assert_lt(strlen(d), sizeof(dir), "build dir path too long");
	snprintf(dir, sizeof(dir), "%s", d);
	return dir;
}

/* A file of the repository: the build dir sits at its top. */
static inline const char *repo_file(const char *rel)
{
	static char paths[8][PATH_MAX];
	static unsigned k;
	char *p = paths[k++ % 8];

	snprintf(p, PATH_MAX, "%s/../%s", build_dir(), rel);
	return p;
}

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- playing tierd ------------------------------------------------------ */

static inline void h_record(struct h *h, const struct tier_msg *m)
{
	switch (m->type) {
	case TIER_MSG_RESULT: {
		struct tier_result r;
		struct res *o;

		cr_assert_geq(m->len, sizeof(r), "RESULT shorter than its header");
		memcpy(&r, m->payload, sizeof(r));
		if (h->nres == h->capres) {
			h->capres = h->capres ? h->capres * 2 : 64;
			h->res = realloc(h->res, h->capres * sizeof(*h->res));
			cr_assert_not_null(h->res);
		}
		o = &h->res[h->nres++];
		o->id = m->task_id;
		o->status = r.status;
		o->has_q = r.has_quality;
		o->q = r.quality_x100 / 100.0;
		o->len = m->len - (uint32_t)sizeof(r);
		o->payload = malloc(o->len + 1);
		cr_assert_not_null(o->payload);
		memcpy(o->payload, (const char *)m->payload + sizeof(r), o->len);
		o->payload[o->len] = 0;
		break;
	}
	case TIER_MSG_EVENT: {
		struct ev *e = &h->ev[h->nev < 255 ? h->nev++ : 255];
		const char *p = m->payload;
		size_t kl = strnlen(p, m->len);

		e->task = m->task_id;
		snprintf(e->kind, sizeof(e->kind), "%.*s", (int)kl, p);
		snprintf(e->msg, sizeof(e->msg), "%.*s", kl < m->len ? (int)(m->len - kl - 1) : 0,
			 p + kl + 1);
		break;
	}
	case TIER_MSG_LOG:
		if (h->nlog < 64)
			snprintf(h->log[h->nlog++], sizeof(h->log[0]), "%.*s", (int)m->len,
				 (const char *)m->payload);
		break;
	default:
		break;
	}
}

/* One record from the CQ. 1 if one came, 0 on timeout. */
static inline int h_recv(struct h *h, int64_t timeout_ns)
{
	struct tier_msg m;
	int r = tier_cons_wait(h->cq, 0, timeout_ns);

	if (r == -EINTR || r == 0)
		return 0;
	cr_assert_eq(r, 1, "waiting on the CQ: %s", tier_strerror(r));
	r = tier_cons_read(h->cq, &m, h->rbuf, h->rcap);
	cr_assert_eq(r, 1, "reading the CQ: %s", tier_strerror(r));
	tier_cons_release(h->cq);
	if (m.type == TIER_MSG_HELLO)
		return 1;
	h_record(h, &m);
	return 1;
}

static inline void h_spawn(struct h *h, char *const argv[], char *const envp[])
{
	int fds[3] = { tier_shm_fd(h->shm), h->cq_bell, h->sq_bell };
	int logfd = open(h->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	pid_t parent = getpid();

	cr_assert_geq(logfd, 0);
	h->pid = fork();
	cr_assert_geq(h->pid, 0);
	if (h->pid == 0) {
		int parked[3], devnull = open("/dev/null", O_RDONLY);
		sigset_t none;

		/* If this test dies, agentd goes too (and its child after it). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		for (int i = 0; i < 3; i++)
			parked[i] = fcntl(fds[i], F_DUPFD, 100);
		for (int i = 0; i < 3; i++)
			dup2(parked[i], TIER_FD_RING + i);
		dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		syscall(SYS_close_range, 6, ~0U, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(logfd);
	h->pidfd = (int)syscall(SYS_pidfd_open, h->pid, 0);
	cr_assert_geq(h->pidfd, 0);
}

/* Start agentd with args (options, "--", program...), extra environment
 * (NULL-terminated, may be NULL), optionally under valgrind. */
static inline void h_start_full(struct h *h, const char *const *args,
				const char *const *extra_env, bool valgrind)
{
	struct tier_shm_opts o = { .sz = sizeof(o) };
	const char *argv[64], *envp[32];
	static char agentd[PATH_MAX];
	size_t na = 0, ne = 0;
	int64_t end;
	bool hello = false;

	memset(h, 0, sizeof(*h));
	h->slow = valgrind ? 10 : 1;
	h->shm = tier_shm_create(&o);
	cr_assert_not_null(h->shm, "tier_shm_create: %s", tier_strerror(errno));
	h->sq = tier_shm_prod(h->shm);
	h->cq = tier_shm_cons(h->shm);
	h->cq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->sq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert(h->cq_bell >= 0 && h->sq_bell >= 0);
	tier_prod_set_eventfd(h->sq, h->sq_bell);
	h->rcap = tier_shm_max_record(h->shm);
	h->rbuf = malloc(h->rcap);
	h->next_id = 1000;
	snprintf(h->logpath, sizeof(h->logpath), "%s/tests/agentd-%d.log", build_dir(), (int)getpid());
	snprintf(agentd, sizeof(agentd), "%s/agentd", build_dir());
	cr_assert(access(agentd, X_OK) == 0, "%s missing: run make first", agentd);

	if (valgrind) {
		argv[na++] = "/usr/bin/valgrind";
		argv[na++] = "-q";
		argv[na++] = "--error-exitcode=99";
		argv[na++] = "--leak-check=full";
		argv[na++] = "--errors-for-leak-kinds=definite";
		/* The normal build links jemalloc: have memcheck replace it too,
		 * or it would see (and check) almost no allocation. */
		argv[na++] = "--soname-synonyms=somalloc=libjemalloc.so*";
	}
	argv[na++] = agentd;
	for (size_t i = 0; args[i]; i++)
		argv[na++] = args[i];
	argv[na] = NULL;
	envp[ne++] = "PATH=/usr/local/bin:/usr/bin:/bin";
	envp[ne++] = "TIER_AGENT=bridge-test";
	envp[ne++] = "TIER_TIER=3";
	envp[ne++] = "TIER_INCARNATION=1";
	envp[ne++] = "TIER_PROTO=1";
	envp[ne++] = "TIER_SPIN_NS=0";
	for (size_t i = 0; extra_env && extra_env[i]; i++)
		envp[ne++] = extra_env[i];
	envp[ne] = NULL;
	h_spawn(h, (char *const *)argv, (char *const *)envp);

	end = now_ns() + 10000 * MS * h->slow;
	while (!hello && now_ns() < end) {
		struct tier_msg m;

		if (tier_cons_wait(h->cq, 0, 100 * MS) != 1)
			continue;
		cr_assert_eq(tier_cons_read(h->cq, &m, h->rbuf, h->rcap), 1);
		tier_cons_release(h->cq);
		if (m.type == TIER_MSG_HELLO) {
			struct tier_hello hl;
			struct tier_welcome w = { .proto = TIER_PROTO_VERSION };

			cr_assert_geq(m.len, sizeof(hl));
			memcpy(&hl, m.payload, sizeof(hl));
			cr_assert_eq(hl.proto, TIER_PROTO_VERSION);
			cr_assert_eq(tier_prod_write(h->sq, TIER_MSG_WELCOME, 0, 0, &w, sizeof(w)), 0);
			tier_prod_publish(h->sq);
			hello = true;
		} else {
			h_record(h, &m);
		}
	}
	cr_assert(hello, "no HELLO from agentd (log: %s)", h->logpath);
}

static inline void h_start(struct h *h, const char *const *args)
{
	h_start_full(h, args, NULL, false);
}

/* Wait for agentd to exit; returns its wait status, or -1 on timeout. */
static inline int h_wait_exit(struct h *h, int timeout_ms)
{
	struct pollfd p = { .fd = h->pidfd, .events = POLLIN };
	siginfo_t si = { 0 };

	if (h->reaped)
		return h->status;
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	cr_assert_eq(waitid(P_PIDFD, (id_t)h->pidfd, &si, WEXITED), 0);
	h->reaped = true;
	h->status = si.si_code == CLD_EXITED ? si.si_status << 8 : si.si_status;
	return h->status;
}

/* Every test ends with a clean stop: SIGTERM, exit 0 (which, in the
 * sanitizer build, also means LeakSanitizer found nothing). */
static inline void h_free(struct h *h)
{
	if (h->pid > 0 && !h->reaped) {
		int ws;

		kill(h->pid, SIGTERM);
		ws = h_wait_exit(h, 10000 * h->slow);
		if (ws == -1) {
			kill(h->pid, SIGKILL);
			h_wait_exit(h, 10000);
		}
		cr_expect(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
			  "agentd did not stop cleanly on SIGTERM: wait status %#x (log: %s)", ws,
			  h->logpath);
		if (ws != 0)
			h->logpath[0] = 0;
	}
	if (h->pidfd > 0)
		close(h->pidfd);
	for (size_t i = 0; i < h->nres; i++)
		free(h->res[i].payload);
	free(h->res);
	free(h->rbuf);
	close(h->cq_bell);
	close(h->sq_bell);
	tier_shm_free(h->shm);
	/* Logs of failures stay for reading (a failed cr_assert never gets
	 * here at all). */
	if (h->logpath[0])
		unlink(h->logpath);
}

static inline uint64_t h_send_full(struct h *h, const char *type, const void *payload,
				   uint32_t len, const char *ctx, int64_t deadline_ns)
{
	struct tier_task_hdr hdr = {
		.deadline_ns = deadline_ns,
		.type_len = (uint16_t)strlen(type),
		.attempt = 1,
		.context_len = ctx ? (uint32_t)strlen(ctx) : 0,
	};
	uint32_t total = (uint32_t)sizeof(hdr) + hdr.type_len + hdr.context_len + len;
	uint64_t id = ++h->next_id;
	char *dst;
	int r;

	/* A full SQ: agentd is busy; take its results meanwhile. */
	while ((r = tier_prod_reserve(h->sq, total, (void **)&dst)) == -EAGAIN) {
		tier_prod_publish(h->sq);
		h_recv(h, 10 * MS);
	}
	cr_assert_eq(r, 0, "reserving a task: %s", tier_strerror(r));
	memcpy(dst, &hdr, sizeof(hdr));
	memcpy(dst + sizeof(hdr), type, hdr.type_len);
	if (hdr.context_len)
		memcpy(dst + sizeof(hdr) + hdr.type_len, ctx, hdr.context_len);
	if (len)
		memcpy(dst + sizeof(hdr) + hdr.type_len + hdr.context_len, payload, len);
	cr_assert_eq(tier_prod_commit(h->sq, TIER_MSG_TASK, 0, id, total), 0);
	cr_assert_geq(tier_prod_publish(h->sq), 0);
	return id;
}

static inline uint64_t h_send(struct h *h, const char *type, const char *payload)
{
	return h_send_full(h, type, payload, (uint32_t)strlen(payload), NULL, 0);
}

/* The result of task id (the caller frees payload), failing the test if it
 * does not come within timeout_ms. */
static inline struct res h_result(struct h *h, uint64_t id, int timeout_ms)
{
	int64_t end = now_ns() + timeout_ms * MS * h->slow;

	for (;;) {
		for (size_t i = 0; i < h->nres; i++) {
			if (h->res[i].id == id) {
				struct res r = h->res[i];

				h->res[i] = h->res[--h->nres];
				return r;
			}
		}
		cr_assert_lt(now_ns(), end, "no result for task %" PRIu64 " within %d ms (log: %s)",
			     id, timeout_ms * h->slow, h->logpath);
		h_recv(h, 20 * MS);
	}
}

static inline const struct ev *h_find_event(struct h *h, const char *kind)
{
	for (size_t i = 0; i < h->nev; i++)
		if (!strcmp(h->ev[i].kind, kind))
			return &h->ev[i];
	return NULL;
}

static inline const struct ev *h_event(struct h *h, const char *kind, int timeout_ms)
{
	int64_t end = now_ns() + timeout_ms * MS * h->slow;
	const struct ev *e;

	while (!(e = h_find_event(h, kind))) {
		cr_assert_lt(now_ns(), end, "no %s event within %d ms (log: %s)", kind,
			     timeout_ms * h->slow, h->logpath);
		h_recv(h, 20 * MS);
	}
	return e;
}

/* Send and wait: the common case. */
static inline struct res h_call(struct h *h, const char *type, const char *payload,
				 int timeout_ms)
{
	return h_result(h, h_send(h, type, payload), timeout_ms);
}

static inline void expect(struct res r, int status, const char *payload)
{
	cr_expect_eq(r.status, status, "task %" PRIu64 ": status %d, expected %d (payload '%s')",
		     r.id, r.status, status, r.payload);
	if (payload)
		cr_expect_str_eq(r.payload, payload);
	free(r.payload);
}

/* The pid of misbehave.py's current incarnation. */
static inline long agent_pid(struct h *h)
{
	struct res r = h_call(h, "pid", "", 5000);
	long pid;

	cr_assert_eq(r.status, TIER_ST_OK, "pid: %s", r.payload);
	pid = atol(r.payload);
	free(r.payload);
	return pid;
}

#endif
