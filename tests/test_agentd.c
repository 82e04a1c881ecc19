/* SPDX-License-Identifier: MIT */
/*
 * agentd, driven the way tierd drives it: a sealed ring memfd and two
 * eventfds placed at fds 3-5, the TIER_* environment, HELLO/WELCOME, TASK
 * records in, RESULT/EVENT/LOG records out, all through the real ring
 * library. The agents behind agentd are scripts in tests/agentd/ (and the
 * examples), most of them misbehaving on purpose.
 */
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

/* build/ (or build-san/): the test runs as BUILD/tests/test_agentd. */
static const char *build_dir(void)
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
static const char *repo_file(const char *rel)
{
	static char paths[8][PATH_MAX];
	static unsigned k;
	char *p = paths[k++ % 8];

	snprintf(p, PATH_MAX, "%s/../%s", build_dir(), rel);
	return p;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- playing tierd ------------------------------------------------------ */

static void h_record(struct h *h, const struct tier_msg *m)
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
static int h_recv(struct h *h, int64_t timeout_ns)
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

static void h_spawn(struct h *h, char *const argv[], char *const envp[])
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
static void h_start_full(struct h *h, const char *const *args, const char *const *extra_env,
			 bool valgrind)
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

static void h_start(struct h *h, const char *const *args)
{
	h_start_full(h, args, NULL, false);
}

/* Wait for agentd to exit; returns its wait status, or -1 on timeout. */
static int h_wait_exit(struct h *h, int timeout_ms)
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
static void h_free(struct h *h)
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

static uint64_t h_send_full(struct h *h, const char *type, const void *payload, uint32_t len,
			    const char *ctx, int64_t deadline_ns)
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

static uint64_t h_send(struct h *h, const char *type, const char *payload)
{
	return h_send_full(h, type, payload, (uint32_t)strlen(payload), NULL, 0);
}

/* The result of task id (the caller frees payload), failing the test if it
 * does not come within timeout_ms. */
static struct res h_result(struct h *h, uint64_t id, int timeout_ms)
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

static const struct ev *h_find_event(struct h *h, const char *kind)
{
	for (size_t i = 0; i < h->nev; i++)
		if (!strcmp(h->ev[i].kind, kind))
			return &h->ev[i];
	return NULL;
}

static const struct ev *h_event(struct h *h, const char *kind, int timeout_ms)
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
static struct res h_call(struct h *h, const char *type, const char *payload, int timeout_ms)
{
	return h_result(h, h_send(h, type, payload), timeout_ms);
}

static void expect(struct res r, int status, const char *payload)
{
	cr_expect_eq(r.status, status, "task %" PRIu64 ": status %d, expected %d (payload '%s')",
		     r.id, r.status, status, r.payload);
	if (payload)
		cr_expect_str_eq(r.payload, payload);
	free(r.payload);
}

/* The pid of misbehave.py's current incarnation. */
static long agent_pid(struct h *h)
{
	struct res r = h_call(h, "pid", "", 5000);
	long pid;

	cr_assert_eq(r.status, TIER_ST_OK, "pid: %s", r.payload);
	pid = atol(r.payload);
	free(r.payload);
	return pid;
}

#define MISBEHAVE(...) \
	((const char *const[]){ "--mode=stdio", __VA_ARGS__ "--", "/usr/bin/python3", \
				repo_file("tests/agentd/misbehave.py"), NULL })

/* ---- stdio: the happy path --------------------------------------------------- */

Test(agentd_stdio, should_round_trip_a_task_through_the_python_agent)
{
	struct h h;
	struct res r;

	h_start(&h, (const char *const[]){ "--mode=stdio", "--", "/usr/bin/python3",
					   repo_file("examples/agents/upper.py"), NULL });
	r = h_call(&h, "upper", "Hello, world", 5000);
	cr_expect_eq(r.status, TIER_ST_OK);
	cr_expect_str_eq(r.payload, "HELLO, WORLD");
	cr_expect(r.has_q);
	cr_expect_float_eq(r.q, 8.33, 0.006);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_round_trip_a_task_through_the_shell_agent)
{
	struct h h;

	h_start(&h, (const char *const[]){ "--mode=stdio", "--", "/bin/sh",
					   repo_file("tests/agentd/echo.sh"), NULL });
	struct res r = h_call(&h, "ping", "anything", 5000);

	cr_expect_eq(r.status, TIER_ST_OK);
	cr_expect_str_eq(r.payload, "shell:ping");
	cr_expect_float_eq(r.q, 7.5, 0.006);
	free(r.payload);
	expect(h_call(&h, "pong", "", 5000), TIER_ST_OK, "shell:pong");
	h_free(&h);
}

Test(agentd_stdio, should_carry_a_binary_payload_as_base64_both_ways)
{
	unsigned char bin[256];
	struct h h;
	struct res r;

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	h_start(&h, MISBEHAVE());
	r = h_result(&h, h_send_full(&h, "reverse_b64", bin, sizeof(bin), NULL, 0), 5000);
	cr_assert_eq(r.status, TIER_ST_OK, "%s", r.payload);
	cr_assert_eq(r.len, 256);
	for (int i = 0; i < 256; i++)
		cr_assert_eq((unsigned char)r.payload[i], 255 - i);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_put_context_and_remaining_deadline_in_the_request)
{
	struct h h;
	struct res r;
	uint64_t id;
	char want[64];
	const char *dl;

	h_start(&h, MISBEHAVE());
	id = h_send_full(&h, "request", "body \"quoted\"\n", 14, "stage1: ok",
			 now_ns() + 4000 * MS);
	r = h_result(&h, id, 5000);
	cr_assert_eq(r.status, TIER_ST_OK);
	snprintf(want, sizeof(want), "{\"id\":%" PRIu64 ",\"type\":\"request\"", id);
	cr_expect(strstr(r.payload, want), "%s", r.payload);
	cr_expect(strstr(r.payload, "\"context\":\"stage1: ok\""), "%s", r.payload);
	cr_expect(strstr(r.payload, "\"payload\":\"body \\\"quoted\\\"\\n\""), "%s", r.payload);
	dl = strstr(r.payload, "\"deadline_ms\":");
	cr_expect(dl && atoi(dl + 14) > 3000 && atoi(dl + 14) <= 4000, "%s", r.payload);
	free(r.payload);
	/* No deadline, no context: no such fields. */
	r = h_call(&h, "request", "x", 5000);
	cr_expect(!strstr(r.payload, "deadline_ms") && !strstr(r.payload, "context"), "%s",
		  r.payload);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_pipeline_many_tasks_and_match_replies_by_id)
{
	enum { N = 2000 };
	static uint64_t ids[N];
	struct h h;
	char p[32];

	h_start(&h, (const char *const[]){ "--mode=stdio", "--pipeline=64", "--",
					   "/usr/bin/python3", repo_file("examples/agents/upper.py"),
					   NULL });
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "task number %d", i);
		ids[i] = h_send(&h, "upper", p);
	}
	for (int i = 0; i < N; i++) {
		struct res r = h_result(&h, ids[i], 20000);

		snprintf(p, sizeof(p), "TASK NUMBER %d", i);
		cr_assert_eq(r.status, TIER_ST_OK);
		cr_assert_str_eq(r.payload, p);
		free(r.payload);
	}
	cr_expect_eq(h.nres, 0, "results nobody asked for");
	h_free(&h);
}

Test(agentd_stdio, should_accept_replies_in_any_order)
{
	struct h h;
	uint64_t a, b;

	h_start(&h, MISBEHAVE());
	a = h_send(&h, "swap", "");
	b = h_send(&h, "swap", "");
	expect(h_result(&h, b, 5000), TIER_ST_OK, "second");
	expect(h_result(&h, a, 5000), TIER_ST_OK, "first");
	cr_expect_null(h_find_event(&h, "unknown_id"));
	h_free(&h);
}

Test(agentd_stdio, should_pass_an_error_reply_on_as_an_error_result)
{
	struct h h;

	h_start(&h, MISBEHAVE());
	expect(h_call(&h, "fail", "", 5000), TIER_ST_ERROR, "asked to fail");
	h_free(&h);
}

Test(agentd_stdio, should_forward_the_agents_stderr_as_log_records)
{
	struct h h;
	int64_t end;
	bool seen = false;

	h_start(&h, MISBEHAVE());
	expect(h_call(&h, "stderr", "hello log", 5000), TIER_ST_OK, "");
	end = now_ns() + 3000 * MS;
	while (!seen && now_ns() < end) {
		for (size_t i = 0; i < h.nlog; i++)
			seen |= strstr(h.log[i], "note from the agent: hello log") != NULL;
		h_recv(&h, 20 * MS);
	}
	cr_expect(seen, "no LOG record with the agent's stderr line");
	h_free(&h);
}

Test(agentd_stdio, should_keep_ring_fds_and_ring_variables_from_the_agent)
{
	struct h h;
	struct res r;

	h_start(&h, MISBEHAVE());
	r = h_call(&h, "fds", "", 5000);
	/* 0-2 and the one listdir opened: nothing of the ring, no stray fds. */
	cr_expect_str_eq(r.payload, "0 1 2 3");
	free(r.payload);
	r = h_call(&h, "env", "", 5000);
	cr_expect(strstr(r.payload, "\"TIER_AGENT\": \"bridge-test\""), "%s", r.payload);
	cr_expect(strstr(r.payload, "\"TIER_BRIDGE\": \"stdio\""), "%s", r.payload);
	cr_expect(!strstr(r.payload, "TIER_PROTO") && !strstr(r.payload, "TIER_SPIN_NS"), "%s",
		  r.payload);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_time_out_a_task_whose_deadline_passed_before_it_started)
{
	struct h h;
	struct res r;

	h_start(&h, MISBEHAVE());
	r = h_result(&h, h_send_full(&h, "echo", "x", 1, NULL, now_ns() - MS), 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	free(r.payload);
	h_free(&h);
}

/* ---- stdio: a child that breaks the protocol ---------------------------------- */

/* type makes misbehave.py break the protocol so that agentd cannot tell
 * which task the line belonged to: the task fails, kind is raised, the
 * child is replaced and the next task is served. */
static void expect_restart_after(const char *type, const char *kind, const char *reason)
{
	struct h h;
	struct res r;
	const struct ev *e;
	long before, after;
	uint64_t id;

	h_start(&h, MISBEHAVE());
	before = agent_pid(&h);
	id = h_send(&h, type, "");
	r = h_result(&h, id, 10000);
	cr_expect_eq(r.status, TIER_ST_ERROR, "%s: status %d (%s)", type, r.status, r.payload);
	cr_expect(strstr(r.payload, reason), "%s: reason '%s' lacks '%s'", type, r.payload, reason);
	free(r.payload);
	e = h_event(&h, kind, 5000);
	cr_expect_eq(e->task, id, "%s: event about task %" PRIu64, kind, e->task);
	expect(h_call(&h, "echo", "still here", 10000), TIER_ST_OK, "still here");
	after = agent_pid(&h);
	cr_expect_neq(before, after, "%s: the agent was not restarted", type);
	h_free(&h);
}

/* The line names its task: only that task fails, the child stays. */
static void expect_task_error(const char *type, const char *kind, const char *reason)
{
	struct h h;
	struct res r;
	const struct ev *e;
	long before, after;
	uint64_t id;

	h_start(&h, MISBEHAVE());
	before = agent_pid(&h);
	id = h_send(&h, type, "");
	r = h_result(&h, id, 10000);
	cr_expect_eq(r.status, TIER_ST_ERROR, "%s: status %d (%s)", type, r.status, r.payload);
	cr_expect(strstr(r.payload, reason), "%s: reason '%s' lacks '%s'", type, r.payload, reason);
	free(r.payload);
	e = h_event(&h, kind, 5000);
	cr_expect_eq(e->task, id);
	expect(h_call(&h, "echo", "still here", 5000), TIER_ST_OK, "still here");
	after = agent_pid(&h);
	cr_expect_eq(before, after, "%s: the agent was restarted for a fault of one task", type);
	h_free(&h);
}

Test(agentd_stdio, should_restart_an_agent_that_writes_a_line_that_is_not_json)
{
	expect_restart_after("notjson", "malformed_reply", "not JSON");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_json_that_is_not_an_object)
{
	expect_restart_after("array", "malformed_reply", "not an object");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_a_reply_without_an_id)
{
	expect_restart_after("noid", "malformed_reply", "without an id");
}

Test(agentd_stdio, should_restart_an_agent_that_answers_an_unknown_id)
{
	expect_restart_after("unknownid", "unknown_id", "did not hold");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_a_10_mb_line)
{
	expect_restart_after("hugeline", "malformed_reply", "longer than");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_invalid_utf8)
{
	expect_restart_after("badutf8", "malformed_reply", "UTF-8");
}

Test(agentd_stdio, should_restart_an_agent_that_nests_json_too_deeply)
{
	expect_restart_after("deep", "malformed_reply", "nested too deeply");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_an_id_past_64_bits)
{
	expect_restart_after("hugeid", "malformed_reply", "64 bits");
}

Test(agentd_stdio, should_fail_only_the_task_whose_quality_overflows_a_double)
{
	expect_task_error("bignum", "malformed_reply", "quality");
}

Test(agentd_stdio, should_restart_an_agent_that_answers_a_task_twice)
{
	struct h h;
	uint64_t id;

	h_start(&h, MISBEHAVE());
	id = h_send(&h, "twice", "");
	expect(h_result(&h, id, 5000), TIER_ST_OK, "");
	cr_expect_eq(h_event(&h, "unknown_id", 5000)->task, 0, "no task left to blame");
	expect(h_call(&h, "echo", "ok", 10000), TIER_ST_OK, "ok");
	h_free(&h);
}

Test(agentd_stdio, should_fail_only_the_task_whose_reply_has_a_bad_status)
{
	expect_task_error("badstatus", "malformed_reply", "status other than");
}

Test(agentd_stdio, should_fail_only_the_task_whose_reply_has_a_quality_out_of_range)
{
	expect_task_error("quality", "malformed_reply", "quality");
}

Test(agentd_stdio, should_fail_only_the_task_whose_payload_b64_is_not_base64)
{
	expect_task_error("badb64", "malformed_reply", "base64");
}

Test(agentd_stdio, should_fail_only_the_task_whose_reply_exceeds_the_ring)
{
	expect_task_error("toolarge", "reply_too_large", "maximum payload");
}

Test(agentd_stdio, should_fail_the_task_and_restart_an_agent_that_exits_mid_task)
{
	expect_restart_after("exit", "child_died", "exited with status 3");
}

Test(agentd_stdio, should_restart_an_agent_that_floods_stderr)
{
	expect_restart_after("flood", "stderr_flood", "flooded stderr");
}

Test(agentd_stdio, should_time_out_a_task_and_restart_an_agent_that_hangs)
{
	struct h h;
	struct res r;
	uint64_t hung, queued;
	long before;
	int64_t t0;

	h_start(&h, MISBEHAVE("--timeout-ms=600",));
	before = agent_pid(&h);
	t0 = now_ns();
	hung = h_send(&h, "hang", "");
	usleep(200 * 1000);
	queued = h_send(&h, "echo", "behind the hang");
	r = h_result(&h, hung, 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	cr_expect_geq(now_ns() - t0, 550 * MS);
	free(r.payload);
	/* The task queued behind it did not reach its deadline: child_hung. */
	r = h_result(&h, queued, 5000);
	cr_expect_eq(r.status, TIER_ST_ERROR, "%s", r.payload);
	cr_expect(strstr(r.payload, "stopped answering"), "%s", r.payload);
	free(r.payload);
	cr_expect_eq(h_event(&h, "child_hung", 5000)->task, queued);
	cr_expect_neq(agent_pid(&h), before);
	h_free(&h);
}

Test(agentd_stdio, should_drop_a_late_reply_after_a_timeout_and_keep_the_agent)
{
	struct h h;
	struct res r;
	long before;

	h_start(&h, MISBEHAVE("--timeout-ms=5000",));
	before = agent_pid(&h);
	r = h_result(&h, h_send_full(&h, "sleep", "700", 3, NULL, now_ns() + 200 * MS), 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	free(r.payload);
	/* Queued behind the late reply, answered after it. */
	expect(h_call(&h, "echo", "after", 5000), TIER_ST_OK, "after");
	cr_expect_eq(agent_pid(&h), before);
	cr_expect_null(h_find_event(&h, "unknown_id"));
	h_free(&h);
}

Test(agentd_stdio, should_exit_nonzero_after_too_many_restarts)
{
	struct h h;
	int ws;

	h_start(&h, MISBEHAVE("--restart-max=2", "--restart-delay-ms=10",));
	for (int i = 0; i < 3; i++)
		expect(h_call(&h, "exit", "", 5000), TIER_ST_ERROR, NULL);
	h_event(&h, "gave_up", 5000);
	ws = h_wait_exit(&h, 5000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 2, "wait status %#x", ws);
	h_free(&h);
}

/* ---- stopping -------------------------------------------------------------- */

Test(agentd_stdio, should_exit_zero_on_sigterm_and_leave_no_child)
{
	struct h h;
	long child;
	int ws;

	h_start(&h, MISBEHAVE());
	child = agent_pid(&h);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	cr_expect(kill((pid_t)child, 0) < 0 && errno == ESRCH, "agent %ld still exists", child);
	h_free(&h);
}

Test(agentd_stdio, should_finish_outstanding_tasks_on_sigterm)
{
	struct h h;
	uint64_t id;
	int ws;

	h_start(&h, MISBEHAVE());
	agent_pid(&h);
	id = h_send(&h, "sleep", "300");
	usleep(50 * 1000);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	expect(h_result(&h, id, 5000), TIER_ST_OK, "300");
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	h_free(&h);
}

Test(agentd_stdio, should_fail_tasks_and_kill_an_agent_that_ignores_sigterm)
{
	struct h h;
	uint64_t id;
	long child;
	int ws;

	h_start(&h, MISBEHAVE("--grace-ms=300",));
	child = agent_pid(&h);
	id = h_send(&h, "hang", "");
	usleep(50 * 1000);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	expect(h_result(&h, id, 5000), TIER_ST_ERROR, "agentd stopped before the agent answered");
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	cr_expect(kill((pid_t)child, 0) < 0 && errno == ESRCH, "agent %ld still exists", child);
	h_free(&h);
}

Test(agentd_stdio, should_run_clean_under_valgrind, .timeout = 120)
{
	struct h h;
	unsigned char bin[64];
	int ws;

	if (access("/usr/bin/valgrind", X_OK) != 0)
		cr_skip_test("valgrind is not installed");
#ifdef __SANITIZE_ADDRESS__
	cr_skip_test("valgrind cannot run the AddressSanitizer build of agentd");
#endif
	for (int i = 0; i < 64; i++)
		bin[i] = (unsigned char)(i * 7);
	h_start_full(&h, MISBEHAVE(), NULL, true);
	expect(h_call(&h, "echo", "under valgrind", 5000), TIER_ST_OK, "under valgrind");
	expect(h_result(&h, h_send_full(&h, "echo", bin, sizeof(bin), "ctx", 0), 5000),
	       TIER_ST_OK, NULL);
	expect(h_call(&h, "notjson", "", 5000), TIER_ST_ERROR, NULL);
	expect(h_call(&h, "badstatus", "", 5000), TIER_ST_ERROR, NULL);
	expect(h_call(&h, "stderr", "x", 5000), TIER_ST_OK, NULL);
	expect(h_call(&h, "exit", "", 5000), TIER_ST_ERROR, NULL);
	expect(h_call(&h, "echo", "again", 5000), TIER_ST_OK, "again");
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	ws = h_wait_exit(&h, 60000);
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		  "wait status %#x (99: valgrind found errors; see %s)", ws, h.logpath);
	h_free(&h);
}

/* ---- exec mode ---------------------------------------------------------------- */

#define EXEC_AGENT(...) \
	((const char *const[]){ "--mode=exec", __VA_ARGS__ "--", "/bin/sh", \
				repo_file("tests/agentd/exec-agent.sh"), NULL })

Test(agentd_exec, should_run_one_process_per_task)
{
	struct h h;

	h_start(&h, (const char *const[]){ "--mode=exec", "--", "/bin/sh",
					   repo_file("examples/agents/wordcount.sh"), NULL });
	expect(h_call(&h, "count", "one two three", 5000), TIER_ST_OK, "3\n");
	expect(h_call(&h, "count", "four", 5000), TIER_ST_OK, "1\n");
	h_free(&h);
}

Test(agentd_exec, should_report_a_nonzero_exit_with_the_last_stderr_line)
{
	struct h h;

	h_start(&h, EXEC_AGENT());
	expect(h_call(&h, "fail", "input", 5000), TIER_ST_ERROR,
	       "the real reason (the command exited with status 3)");
	h_free(&h);
}

Test(agentd_exec, should_time_out_and_kill_a_command_that_runs_too_long)
{
	struct h h;
	struct res r;
	int64_t t0 = now_ns();

	h_start(&h, EXEC_AGENT("--timeout-ms=300",));
	r = h_call(&h, "sleep", "", 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	cr_expect_lt(now_ns() - t0, 3000 * MS);
	free(r.payload);
	expect(h_call(&h, "wc", "a b", 5000), TIER_ST_OK, "2\n");
	h_free(&h);
}

Test(agentd_exec, should_pass_binary_payloads_through)
{
	unsigned char bin[256];
	struct h h;
	struct res r;

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	h_start(&h, EXEC_AGENT());
	r = h_result(&h, h_send_full(&h, "cat", bin, sizeof(bin), NULL, 0), 5000);
	cr_assert_eq(r.status, TIER_ST_OK);
	cr_assert_eq(r.len, sizeof(bin));
	cr_expect_eq(memcmp(r.payload, bin, sizeof(bin)), 0);
	free(r.payload);
	h_free(&h);
}

Test(agentd_exec, should_give_the_command_its_task_in_the_environment)
{
	struct h h;
	struct res r;
	char want[64];
	uint64_t id;

	h_start(&h, EXEC_AGENT());
	id = h_send(&h, "env", "");
	r = h_result(&h, id, 5000);
	snprintf(want, sizeof(want), "env %" PRIu64 " 1 exec", id);
	cr_expect_str_eq(r.payload, want);
	free(r.payload);
	h_free(&h);
}

Test(agentd_exec, should_fail_a_command_whose_output_exceeds_the_ring)
{
	struct h h;
	struct res r;

	h_start(&h, EXEC_AGENT());
	r = h_call(&h, "big", "", 5000);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect(strstr(r.payload, "maximum payload"), "%s", r.payload);
	free(r.payload);
	h_event(&h, "output_too_large", 5000);
	h_free(&h);
}

Test(agentd_exec, should_report_a_command_killed_by_a_signal)
{
	struct h h;
	struct res r;

	h_start(&h, EXEC_AGENT());
	r = h_call(&h, "segv", "", 5000);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect(strstr(r.payload, "signal 11"), "%s", r.payload);
	free(r.payload);
	h_event(&h, "child_died", 5000);
	h_free(&h);
}

Test(agentd_exec, should_kill_a_command_that_floods_stderr)
{
	struct h h;
	struct res r;

	h_start(&h, EXEC_AGENT());
	r = h_call(&h, "flood", "", 10000);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect(strstr(r.payload, "flooded stderr"), "%s", r.payload);
	free(r.payload);
	h_event(&h, "stderr_flood", 5000);
	h_free(&h);
}

Test(agentd_exec, should_run_jobs_concurrently)
{
	enum { N = 4 };
	uint64_t ids[N];
	struct h h;
	int64_t t0;

	h_start(&h, EXEC_AGENT("--jobs=4",));
	t0 = now_ns();
	for (int i = 0; i < N; i++)
		ids[i] = h_send(&h, "nap", "");
	for (int i = 0; i < N; i++)
		expect(h_result(&h, ids[i], 5000), TIER_ST_OK, "napped");
	/* Four naps of 0.5 s side by side, not one after another. */
	cr_expect_lt(now_ns() - t0, 1500 * MS);
	h_free(&h);
}

Test(agentd_exec, should_exit_zero_on_sigterm_after_running_commands_finish)
{
	struct h h;
	uint64_t id;
	int ws;

	h_start(&h, EXEC_AGENT());
	id = h_send(&h, "nap", "");
	usleep(100 * 1000);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	expect(h_result(&h, id, 5000), TIER_ST_OK, "napped");
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	h_free(&h);
}

/* ---- throughput: the bridge against a direct pipe driver -------------------------- */

/* The trivial C agent for the measurement is this binary: started with
 * AGD_TEST_CHILD=echo it answers JSON lines and never reaches Criterion. */
static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			_exit(1);
		p += w;
		n -= (size_t)w;
	}
}

static void echo_child(void)
{
	static char in[1 << 16], out[1 << 16];
	size_t have = 0, olen = 0;

	for (;;) {
		ssize_t n = read(0, in + have, sizeof(in) - have);
		char *p = in, *end, *nl;

		if (n <= 0)
			_exit(0);
		have += (size_t)n;
		end = in + have;
		while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
			unsigned long long id = strtoull(p + 6, NULL, 10); /* {"id":N */

			if (olen + 64 > sizeof(out)) {
				write_all(1, out, olen);
				olen = 0;
			}
			olen += (size_t)sprintf(out + olen, "{\"id\":%llu,\"status\":\"ok\",\"payload\":\"ok\"}\n", id);
			p = nl + 1;
		}
		have = (size_t)(end - p);
		memmove(in, p, have);
		if (have == sizeof(in))
			_exit(2);
		if (olen) {
			write_all(1, out, olen);
			olen = 0;
		}
	}
}

__attribute__((constructor)) static void maybe_echo_child(void)
{
	const char *role = getenv("AGD_TEST_CHILD");

	if (role && !strcmp(role, "echo"))
		echo_child();
}

enum { BENCH_DEPTH = 64 };

/* The baseline: a minimal C driver feeding the child over pipes directly,
 * with the same requests and the same pipelining depth as agentd. */
static double direct_rate(char *const argv[], char *const envp[], int n)
{
	int in[2], out[2], sent = 0, got = 0;
	char buf[65536], req[128];
	int64_t t0;
	pid_t pid;

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	/* One warm-up round trip: interpreter start-up is not the bridge's. */
	snprintf(req, sizeof(req), "{\"id\":0,\"type\":\"upper\",\"payload\":\"warm up\"}\n");
	write_all(in[1], req, strlen(req));
	cr_assert_gt(read(out[0], buf, sizeof(buf)), 0);
	t0 = now_ns();
	while (got < n) {
		size_t len = 0;

		ssize_t r;

		while (sent < n && sent - got < BENCH_DEPTH) {
			sent++;
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"{\"id\":%d,\"type\":\"upper\",\"payload\":\"task %d\"}\n",
						sent, sent);
		}
		if (len)
			write_all(in[1], buf, len);
		r = read(out[0], buf, sizeof(buf));
		cr_assert_gt(r, 0);
		for (ssize_t i = 0; i < r; i++)
			got += buf[i] == '\n';
	}
	t0 = now_ns() - t0;
	close(in[1]);
	close(out[0]);
	waitpid(pid, NULL, 0);
	return n / (t0 * 1e-9);
}

/* The same child behind agentd, tasks fed through the SQ as tierd would
 * (at most BENCH_DEPTH in flight, published once per batch). */
static double bridged_rate(struct h *h, int n)
{
	int sent = 0, got = 0;
	int64_t t0;
	char p[32];

	expect(h_call(h, "upper", "warm up", 5000), TIER_ST_OK, NULL);
	t0 = now_ns();
	while (got < n) {
		while (sent < n && sent - got < BENCH_DEPTH) {
			struct tier_task_hdr hdr = { .type_len = 5, .attempt = 1 };
			int len = snprintf(p, sizeof(p), "task %d", ++sent);
			char *dst;
			int r = tier_prod_reserve(h->sq, (uint32_t)(sizeof(hdr) + 5 + (size_t)len),
						  (void **)&dst);

			if (r == -EAGAIN) {
				/* Full: tierd would queue it; send it next round. */
				sent--;
				break;
			}
			cr_assert_eq(r, 0, "%s", tier_strerror(r));
			memcpy(dst, &hdr, sizeof(hdr));
			memcpy(dst + sizeof(hdr), "upper", 5);
			memcpy(dst + sizeof(hdr) + 5, p, (size_t)len);
			cr_assert_eq(tier_prod_commit(h->sq, TIER_MSG_TASK, 0, ++h->next_id,
						      (uint32_t)(sizeof(hdr) + 5 + (size_t)len)), 0);
		}
		tier_prod_publish(h->sq);
		cr_assert(h_recv(h, 5000 * MS), "no result within 5 s");
		while (h_recv(h, 0))
			;
		for (size_t i = 0; i < h->nres; i++) {
			cr_assert_eq(h->res[i].status, TIER_ST_OK, "%s", h->res[i].payload);
			free(h->res[i].payload);
		}
		got += (int)h->nres;
		h->nres = 0;
	}
	return n / ((now_ns() - t0) * 1e-9);
}

/* CPU time (user + system) a process has used so far, in seconds. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	cr_assert_not_null(p);
	/* Fields 14 and 15 (utime, stime), counted after the comm field. */
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void bench(const char *name, char *const argv[], const char *const *extra_env, int n)
{
	const char *args[16];
	const char *env[8] = { "PATH=/usr/local/bin:/usr/bin:/bin" };
	double direct, bridged, cpu;
	size_t na = 0, ne = 1;
	struct h h;

	if (!getenv("AGD_BENCH"))
		cr_skip_test("a measurement, not a test: run with AGD_BENCH=1");
	for (size_t i = 0; extra_env && extra_env[i]; i++)
		env[ne++] = extra_env[i];
	env[ne] = NULL;
	/* Best of three on both sides: on a small shared machine one run
	 * measures the scheduler's luck as much as the code. */
	direct = 0;
	for (int i = 0; i < 3; i++) {
		double d = direct_rate(argv, (char *const *)env, n);

		direct = d > direct ? d : direct;
	}
	args[na++] = "--mode=stdio";
	args[na++] = "--pipeline=64";
	args[na++] = "--";
	for (size_t i = 0; argv[i]; i++)
		args[na++] = argv[i];
	args[na] = NULL;
	h_start_full(&h, args, extra_env, false);
	cpu = cpu_seconds(h.pid);
	bridged = 0;
	for (int i = 0; i < 3; i++) {
		double b = bridged_rate(&h, n);

		bridged = b > bridged ? b : bridged;
	}
	cpu = (cpu_seconds(h.pid) - cpu) / 3;
	h_free(&h);
	fprintf(stderr, "agentd bench %-8s direct %9.0f tasks/s   via agentd %9.0f tasks/s   ratio %.2f"
		"   (agentd: %.2f us of CPU per task)\n", name, direct, bridged, bridged / direct,
		cpu * 1e6 / n);
	cr_expect_geq(bridged / direct, 0.5, "%s: the bridge is the bottleneck", name);
}

Test(agentd_bench, should_bridge_a_c_agent_at_half_the_direct_rate_or_better, .timeout = 120)
{
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = 0;
	bench("C", (char *const[]){ exe, NULL }, (const char *const[]){ "AGD_TEST_CHILD=echo", NULL },
	      200000);
}

Test(agentd_bench, should_bridge_a_python_agent_at_half_the_direct_rate_or_better, .timeout = 120)
{
	bench("python", (char *const[]){ "/usr/bin/python3", (char *)repo_file("examples/agents/upper.py"),
					 NULL }, NULL, 50000);
}
