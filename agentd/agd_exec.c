/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/fdio.h"
#include "agd_buf.h"
#include "agd_errlog.h"
#include "agd_exec.h"
#include "agd_proc.h"

/* Workflow context larger than this is not put in the environment: execve
 * refuses single strings past 128 KiB. */
#define ENV_CONTEXT_MAX (100u * 1024u)
#define READ_BUDGET (1u << 20)

struct job {
	struct agd_exec  *x;
	bool              used;
	bool              replied;     /* answered early (timeout, overflow, flood) */
	uint64_t          id;
	int64_t           started_ns;
	int64_t           deadline_ns; /* 0: none */
	struct agd_proc   proc;
	char             *in;          /* the payload, fed to stdin */
	size_t            in_len, in_off;
	struct agd_buf    out;
	struct agd_errlog err;
};

struct agd_exec {
	struct agd *g;
	struct job *jobs;
	unsigned    njobs, running;
	bool        term_sent, kill_sent;
	int64_t     term_ns;
};

static void job_release(struct job *j)
{
	agd_proc_close(&j->proc);
	free(j->in);
	j->in = NULL;
	agd_buf_free(&j->out);
	j->used = false;
	j->x->running--;
}

/* Answer now and stop the process; the pidfd handler cleans up after it. */
static void job_abort(struct job *j, int status, const char *kind, const char *why)
{
	struct agd *g = j->x->g;

	if (kind)
		agd_event(g, j->id, kind, "%s", why);
	agd_fail(g, j->id, j->started_ns, status, "%s", why);
	j->replied = true;
	agd_proc_kill(&j->proc, SIGKILL);
	agd_proc_close_fd(&j->proc.in);
	agd_proc_close_fd(&j->proc.out);
	agd_proc_close_fd(&j->proc.err);
}

static void read_out(struct job *j)
{
	struct agd *g = j->x->g;
	size_t got = 0;

	while (j->proc.out >= 0 && got < READ_BUDGET) {
		/* One byte past the maximum is enough to know it is too much. */
		size_t room = (size_t)g->max_payload + 1 - agd_buf_size(&j->out);
		char *p = agd_buf_reserve(&j->out, room < 65536 ? room : 65536);
		ssize_t n;
		char why[160];

		if (!p) {
			job_abort(j, TIER_ST_ERROR, NULL, "agentd ran out of memory reading the output");
			return;
		}
		n = sup_read(j->proc.out, p, room < 65536 ? room : 65536);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			agd_proc_close_fd(&j->proc.out);
			return;
		}
		agd_buf_commit(&j->out, (size_t)n);
		got += (size_t)n;
		if (agd_buf_size(&j->out) > g->max_payload) {
			snprintf(why, sizeof(why), "the command wrote more than %" PRIu32
				 " bytes to stdout (the ring's maximum payload)", g->max_payload);
			job_abort(j, TIER_ST_ERROR, "output_too_large", why);
			return;
		}
	}
}

static void on_stdout(void *ctx, int fd, short revents)
{
	struct job *j = ctx;

	if (j->used && fd == j->proc.out)
		read_out(j);
}

static void drain_err(struct job *j)
{
	struct agd *g = j->x->g;
	char why[160];

	if (agd_errlog_drain(&j->err, g, &j->proc.err, READ_BUDGET) == 1 && !j->replied) {
		snprintf(why, sizeof(why), "the command flooded stderr (more than %" PRIu64
			 " bytes within a second)", g->o->flood_bytes);
		job_abort(j, TIER_ST_ERROR, "stderr_flood", why);
	}
}

static void on_stderr(void *ctx, int fd, short revents)
{
	struct job *j = ctx;

	if (j->used && fd == j->proc.err)
		drain_err(j);
}

static void on_stdin(void *ctx, int fd, short revents)
{
	struct job *j = ctx;
	size_t done;
	int r;

	if (!j->used || fd != j->proc.in)
		return;
	r = sup_write_all(fd, j->in + j->in_off, j->in_len - j->in_off, &done);
	j->in_off += done;
	if (r == -EAGAIN)
		return;
	/* Done, or EPIPE: it did not want all of its input; its business.
	 * EOF tells the command its input is complete. */
	agd_proc_close_fd(&j->proc.in);
}

static void finish(struct job *j, int ws)
{
	struct agd *g = j->x->g;
	const char *last = j->err.last;
	char how[96];

	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
		agd_reply(g, j->id, j->started_ns, TIER_ST_OK, -1, agd_buf_data(&j->out),
			  (uint32_t)agd_buf_size(&j->out));
		return;
	}
	agd_proc_describe(ws, how, sizeof(how));
	if (WIFSIGNALED(ws))
		agd_event(g, j->id, "child_died", "the command for task %" PRIu64 " %s", j->id, how);
	if (*last)
		agd_fail(g, j->id, j->started_ns, TIER_ST_ERROR, "%s (the command %s)", last, how);
	else
		agd_fail(g, j->id, j->started_ns, TIER_ST_ERROR, "the command %s", how);
}

static void job_exited(struct job *j)
{
	int ws;

	/* Reap first: it also kills what the command left running, so the
	 * pipes reach EOF; what it wrote is still in them. */
	ws = agd_proc_reap(&j->proc);
	if (!j->replied) {
		read_out(j);
		if (j->proc.err >= 0)
			drain_err(j);
		agd_errlog_eof(&j->err, j->x->g);
	}
	if (!j->replied)
		finish(j, ws < 0 ? 0 : ws);
	job_release(j);
}

static void on_exit_(void *ctx, int fd, short revents)
{
	struct job *j = ctx;

	if (j->used && fd == j->proc.pidfd)
		job_exited(j);
}

/* ---- tasks ------------------------------------------------------------ */

static int env_add(char **extra, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int env_add(char **extra, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&extra[*n], fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* The task's identity for the command, ahead of the base environment. */
static char **task_env(struct agd *g, const struct tier_task *t, int64_t deadline,
		       size_t *ret_n)
{
	char *extra[5];
	size_t n = 0;
	char **env = NULL;
	int r;

	r = env_add(extra, &n, "TIER_TASK_ID=%" PRIu64, t->id);
	if (!r)
		r = env_add(extra, &n, "TIER_TASK_TYPE=%.*s", (int)t->type_len, t->type);
	if (!r)
		r = env_add(extra, &n, "TIER_TASK_ATTEMPT=%" PRIu32, t->attempt);
	if (!r && deadline)
		r = env_add(extra, &n, "TIER_DEADLINE_MS=%" PRId64,
			    (deadline - t->started_ns) / 1000000);
	if (!r && t->context_len && t->context_len <= ENV_CONTEXT_MAX &&
	    sup_utf8_valid(t->context, t->context_len))
		r = env_add(extra, &n, "TIER_TASK_CONTEXT=%.*s", (int)t->context_len, t->context);
	if (!r)
		env = agd_env_extend(g->env, extra, n);
	for (size_t i = 0; i < n; i++)
		free(extra[i]);
	*ret_n = n;
	return env;
}

static void take_task(struct agd_exec *x, const struct tier_task *t)
{
	struct agd *g = x->g;
	int64_t deadline = agd_deadline(g, t);
	struct job *j = NULL;
	char **env;
	size_t nenv;
	int r;

	g->st.tasks++;
	if (deadline && deadline <= t->started_ns) {
		agd_fail(g, t->id, t->started_ns, TIER_ST_TIMEOUT,
			 "the deadline passed before the command could start");
		return;
	}
	if (!sup_utf8_valid(t->type, t->type_len)) {
		agd_fail(g, t->id, t->started_ns, TIER_ST_ERROR, "the task type is not valid UTF-8");
		return;
	}
	for (unsigned i = 0; i < x->njobs && !j; i++)
		if (!x->jobs[i].used)
			j = &x->jobs[i];
	*j = (struct job){ .x = x, .id = t->id, .started_ns = t->started_ns,
			   .deadline_ns = deadline,
			   .proc = { .pidfd = -1, .in = -1, .out = -1, .err = -1 } };
	env = task_env(g, t, deadline, &nenv);
	if (!env) {
		agd_fail(g, t->id, t->started_ns, TIER_ST_ERROR, "agentd ran out of memory");
		return;
	}
	/* The view into the ring lasts only until the next task is read. */
	j->in = malloc(t->len ? t->len : 1);
	if (!j->in) {
		agd_env_free_extra(env, nenv);
		agd_fail(g, t->id, t->started_ns, TIER_ST_ERROR, "agentd ran out of memory");
		return;
	}
	memcpy(j->in, t->payload, t->len);
	j->in_len = t->len;
	r = agd_proc_spawn(g->path, g->o->argv, env, &j->proc);
	agd_env_free_extra(env, nenv);
	if (r < 0) {
		free(j->in);
		j->in = NULL;
		agd_event(g, t->id, "spawn_failed", "cannot start %s: %s", g->path, strerror(-r));
		agd_fail(g, t->id, t->started_ns, TIER_ST_ERROR, "cannot start %s: %s", g->path,
			 strerror(-r));
		return;
	}
	agd_errlog_init(&j->err, g->now);
	j->used = true;
	x->running++;
	if (!j->in_len)
		agd_proc_close_fd(&j->proc.in);
}

static int take_tasks(struct agd_exec *x)
{
	struct agd *g = x->g;
	bool took = false;
	struct tier_task t;
	int r = 0;

	while (x->running < x->njobs && !g->done) {
		r = agd_next_task(g, &t);
		if (g->done)
			return 0;
		if (r == 0)
			break;
		took = true;
		take_task(x, &t);
	}
	for (unsigned i = 0; took && i < x->njobs; i++) {
		struct job *j = &x->jobs[i];

		if (j->used && !j->replied && tier_agent_cancelled(g->a, j->id))
			job_abort(j, TIER_ST_CANCELLED, NULL, "cancelled by tierd");
	}
	return r == 0 && x->running < x->njobs;
}

static void check_deadlines(struct agd_exec *x)
{
	struct agd *g = x->g;
	char why[128];

	for (unsigned i = 0; i < x->njobs; i++) {
		struct job *j = &x->jobs[i];

		if (!j->used || j->replied || !j->deadline_ns || j->deadline_ns > g->now)
			continue;
		snprintf(why, sizeof(why), "the command did not finish within %" PRId64
			 " ms and was killed", (j->deadline_ns - j->started_ns) / 1000000);
		job_abort(j, TIER_ST_TIMEOUT, NULL, why);
	}
}

/* SIGTERM: running commands get the grace period to finish, then SIGTERM,
 * then after another grace period SIGKILL. */
static void stopping(struct agd_exec *x)
{
	struct agd *g = x->g;

	if (!x->running) {
		agd_quit(g, AGD_EXIT_OK);
		return;
	}
	if (!x->term_sent && g->now >= g->stop_ns + g->o->grace_ns) {
		for (unsigned i = 0; i < x->njobs; i++) {
			struct job *j = &x->jobs[i];

			if (!j->used)
				continue;
			if (!j->replied) {
				agd_fail(g, j->id, j->started_ns, TIER_ST_ERROR,
					 "agentd stopped before the command finished");
				j->replied = true;
			}
			agd_proc_kill(&j->proc, SIGTERM);
		}
		x->term_sent = true;
		x->term_ns = g->now;
	}
	if (x->term_sent && !x->kill_sent && g->now >= x->term_ns + g->o->grace_ns) {
		for (unsigned i = 0; i < x->njobs; i++)
			if (x->jobs[i].used)
				agd_proc_kill(&x->jobs[i].proc, SIGKILL);
		x->kill_sent = true;
	}
}

static int64_t next_due(const struct agd_exec *x)
{
	const struct agd *g = x->g;
	int64_t due = 0;

#define DUE(t) do { int64_t t_ = (t); if (t_ && (!due || t_ < due)) due = t_; } while (0)
	for (unsigned i = 0; i < x->njobs; i++)
		if (x->jobs[i].used && !x->jobs[i].replied)
			DUE(x->jobs[i].deadline_ns);
	if (g->stopping && !x->term_sent)
		DUE(g->stop_ns + g->o->grace_ns);
	if (x->term_sent && !x->kill_sent)
		DUE(x->term_ns + g->o->grace_ns);
#undef DUE
	return due;
}

int agd_exec_turn(struct agd_exec *x, struct agd_loop *l, int64_t *ret_deadline,
		  int *ret_want_tasks)
{
	struct agd *g = x->g;
	int want = 0, r = 0;

	for (unsigned i = 0; i < x->njobs; i++)
		if (x->jobs[i].used && x->jobs[i].proc.pidfd < 0 && agd_proc_exited(&x->jobs[i].proc))
			job_exited(&x->jobs[i]);
	check_deadlines(x);
	if (g->stopping)
		stopping(x);
	else
		want = take_tasks(x);
	if (g->done)
		return 0;
	for (unsigned i = 0; i < x->njobs && !r; i++) {
		struct job *j = &x->jobs[i];

		if (!j->used)
			continue;
		if (j->proc.pidfd >= 0)
			r = agd_loop_add(l, j->proc.pidfd, POLLIN, on_exit_, j);
		if (!r && j->proc.in >= 0)
			r = agd_loop_add(l, j->proc.in, POLLOUT, on_stdin, j);
		if (!r && j->proc.out >= 0)
			r = agd_loop_add(l, j->proc.out, POLLIN, on_stdout, j);
		if (!r && j->proc.err >= 0)
			r = agd_loop_add(l, j->proc.err, POLLIN, on_stderr, j);
	}
	*ret_deadline = next_due(x);
	*ret_want_tasks = want;
	return r;
}

struct agd_exec *agd_exec_new(struct agd *g)
{
	struct agd_exec *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->g = g;
	x->njobs = g->o->jobs;
	x->jobs = calloc(x->njobs, sizeof(*x->jobs));
	if (!x->jobs) {
		free(x);
		errno = ENOMEM;
		return NULL;
	}
	return x;
}

void agd_exec_free(struct agd_exec *x)
{
	if (!x)
		return;
	for (unsigned i = 0; i < x->njobs; i++) {
		struct job *j = &x->jobs[i];

		if (!j->used)
			continue;
		if (j->proc.pid > 0)
			agd_proc_reap(&j->proc);
		job_release(j);
	}
	free(x->jobs);
	free(x);
}
