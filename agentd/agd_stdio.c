/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/fdio.h"
#include "agd_buf.h"
#include "agd_errlog.h"
#include "agd_json.h"
#include "agd_proc.h"
#include "agd_stdio.h"

/* Longest backoff between restarts. */
#define RESTART_DELAY_MAX_NS (5 * 1000000000LL)
/* Reply lines may carry JSON text of any payload plus this much else. */
#define LINE_SLACK (1u << 20)
/* Bytes read from the child per turn and pipe, so one stream cannot starve
 * the ring or the other pipe. */
#define READ_BUDGET (1u << 20)

struct slot {
	uint64_t id;
	int64_t  started_ns;
	int64_t  deadline_ns;   /* 0: none */
	bool     used;
	bool     answered;      /* tierd has its result (timeout, cancel); the
				 * child still owes a line, which is dropped */
};

enum child_state {
	CH_DOWN,    /* not running; restart_ns says when it starts */
	CH_UP,
	CH_DYING,   /* killed by agentd; waiting to reap it */
};

struct agd_stdio {
	struct agd       *g;
	enum child_state  state;
	struct agd_proc   proc;
	bool              started_once;
	int64_t           restart_ns;   /* CH_DOWN: when to start it; 0 = not planned */
	int64_t          *failures;     /* times of recent failures, oldest first */
	unsigned          nfailures;
	struct slot      *slots;
	unsigned          nslots, used, live;
	int64_t           progress_ns;  /* last line, or when work began */
	struct agd_buf    wbuf;         /* requests not yet in the pipe */
	struct agd_buf    rbuf;         /* stdout not yet cut into lines */
	size_t            scanned;      /* rbuf bytes known to hold no newline */
	size_t            max_line;
	struct agd_errlog err;
	char             *scratch;      /* decoded payload_b64 */
	bool              term_sent;    /* stopping: SIGTERM sent at term_ns */
	bool              kill_sent;
	int64_t           term_ns;
};

static void plan_restart(struct agd_stdio *s);

/* ---- slots ------------------------------------------------------------ */

static struct slot *slot_find(struct agd_stdio *s, uint64_t id)
{
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i].used && s->slots[i].id == id)
			return &s->slots[i];
	return NULL;
}

static void slot_release(struct agd_stdio *s, struct slot *sl)
{
	if (!sl->answered)
		s->live--;
	s->used--;
	sl->used = false;
}

static uint64_t first_live(const struct agd_stdio *s)
{
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i].used && !s->slots[i].answered)
			return s->slots[i].id;
	return 0;
}

/* Every task the child still holds gets the same error; the slots empty. */
static void fail_all(struct agd_stdio *s, const char *why)
{
	for (unsigned i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		if (!sl->used)
			continue;
		if (!sl->answered)
			agd_fail(s->g, sl->id, sl->started_ns, TIER_ST_ERROR, "%s", why);
		sl->used = false;
	}
	s->used = s->live = 0;
}

/* ---- the child -------------------------------------------------------- */

static void child_start(struct agd_stdio *s)
{
	struct agd *g = s->g;
	int r;

	s->restart_ns = 0;
	r = agd_proc_spawn(g->path, g->o->argv, g->env, &s->proc);
	if (r < 0) {
		agd_event(g, 0, "spawn_failed", "cannot start %s: %s", g->path, strerror(-r));
		plan_restart(s);
		return;
	}
	if (s->started_once) {
		g->st.restarts++;
		agd_log(5, "restarted %s (pid %d)", g->path, (int)s->proc.pid);
	}
	s->started_once = true;
	s->state = CH_UP;
	s->progress_ns = g->now;
	s->term_sent = s->kill_sent = false;
	agd_buf_reset(&s->wbuf);
	agd_buf_reset(&s->rbuf);
	s->scanned = 0;
	agd_errlog_init(&s->err, g->now);
}

/* The stream can no longer be trusted (or the child is stuck): fail what
 * it holds, say why once, kill it; the pidfd tells when it is gone. */
static void child_abort(struct agd_stdio *s, const char *kind, const char *why)
{
	struct agd *g = s->g;

	agd_event(g, first_live(s), kind, "%s; restarting the agent (%u tasks failed)", why, s->live);
	fail_all(s, why);
	agd_proc_kill(&s->proc, SIGKILL);
	agd_proc_close_fd(&s->proc.in);
	agd_proc_close_fd(&s->proc.out);
	agd_proc_close_fd(&s->proc.err);
	s->state = CH_DYING;
}

/* Restart budget: the first failure in the window restarts at once, each
 * further one waits twice as long, and past --restart-max agentd exits so
 * that tierd's own policy (with its own backoff) takes over. */
static void plan_restart(struct agd_stdio *s)
{
	struct agd *g = s->g;
	const struct agd_opts *o = g->o;
	unsigned keep = 0;
	int64_t delay;

	s->state = CH_DOWN;
	if (g->stopping)
		return;
	for (unsigned i = 0; i < s->nfailures; i++)
		if (g->now - s->failures[i] < o->restart_window_ns)
			s->failures[keep++] = s->failures[i];
	s->nfailures = keep;
	if (s->nfailures >= o->restart_max) {
		agd_event(g, 0, "gave_up", "the agent failed %u times within %" PRId64
			  " s; agentd exits so that tierd restarts it", s->nfailures + 1,
			  o->restart_window_ns / 1000000000);
		agd_log(3, "%s failed %u times within %" PRId64 " s; giving up", g->path,
			s->nfailures + 1, o->restart_window_ns / 1000000000);
		agd_quit(g, AGD_EXIT_GAVE_UP);
		return;
	}
	delay = 0;
	if (s->nfailures) {
		delay = o->restart_delay_ns;
		for (unsigned i = 1; i < s->nfailures && delay < RESTART_DELAY_MAX_NS; i++)
			delay *= 2;
		if (delay > RESTART_DELAY_MAX_NS)
			delay = RESTART_DELAY_MAX_NS;
	}
	s->failures[s->nfailures++] = g->now;
	s->restart_ns = g->now + delay;
}

/* ---- replies ---------------------------------------------------------- */

static void deliver(struct agd_stdio *s, struct slot *sl, const struct agd_reply *rep)
{
	struct agd *g = s->g;
	const void *payload = rep->payload;
	size_t len = rep->len;

	if (rep->b64) {
		long n;

		if (len % 4 || 3 * (len / 4) > (size_t)g->max_payload + 2) {
			n = len % 4 ? -EINVAL : -EMSGSIZE;
		} else {
			n = sup_b64_decode(rep->payload, len, s->scratch);
			if (n > (long)g->max_payload)
				n = -EMSGSIZE;
		}
		if (n == -EINVAL) {
			agd_event(g, sl->id, "malformed_reply", "the agent's payload_b64 for task %"
				  PRIu64 " is not valid base64", sl->id);
			agd_fail(g, sl->id, sl->started_ns, TIER_ST_ERROR,
				 "the agent's payload_b64 is not valid base64");
			return;
		}
		if (n >= 0) {
			payload = s->scratch;
			len = (size_t)n;
		} else {
			len = (size_t)g->max_payload + 1;
		}
	}
	if (len > g->max_payload) {
		agd_event(g, sl->id, "reply_too_large", "the agent's reply to task %" PRIu64
			  " exceeds the ring's maximum payload of %" PRIu32 " bytes", sl->id,
			  g->max_payload);
		agd_fail(g, sl->id, sl->started_ns, TIER_ST_ERROR,
			 "the agent's reply exceeds the ring's maximum payload of %" PRIu32 " bytes",
			 g->max_payload);
		return;
	}
	agd_reply(g, sl->id, sl->started_ns, rep->status, rep->quality, payload, (uint32_t)len);
}

static void on_line(struct agd_stdio *s, char *line, size_t len)
{
	struct agd *g = s->g;
	struct agd_reply rep;
	struct slot *sl;
	char why[256];
	size_t k = 0;
	int r;

	while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
		k++;
	if (k == len)
		return; /* blank lines carry nothing; tolerate them */
	s->progress_ns = g->now;
	r = agd_json_parse_reply(line, len, &rep, why, sizeof(why));
	if (r == -EBADMSG) {
		child_abort(s, "malformed_reply", why);
		return;
	}
	sl = slot_find(s, rep.id);
	if (!sl) {
		snprintf(why, sizeof(why), "the agent answered task %" PRIu64
			 ", which it did not hold", rep.id);
		child_abort(s, "unknown_id", why);
		return;
	}
	if (sl->answered) {
		/* Late: tierd got a timeout or cancel result for it already. */
		slot_release(s, sl);
	} else if (r == -EPROTO) {
		/* The stream is in step (the id is known): only this task fails. */
		agd_event(g, sl->id, "malformed_reply", "%s", why);
		agd_fail(g, sl->id, sl->started_ns, TIER_ST_ERROR, "%s", why);
		slot_release(s, sl);
	} else {
		deliver(s, sl, &rep);
		slot_release(s, sl);
	}
}

/* Cut rbuf into lines. A line past max_line ends the child: it is either
 * broken or hostile, and there is no telling where its next reply starts. */
static void cut_lines(struct agd_stdio *s, bool eof)
{
	while (s->state == CH_UP && agd_buf_size(&s->rbuf)) {
		char *data = agd_buf_bytes(&s->rbuf);
		size_t size = agd_buf_size(&s->rbuf);
		const char *nl = memchr(data + s->scanned, '\n', size - s->scanned);
		size_t len = nl ? (size_t)(nl - data) : size;
		char why[128];

		if (len > s->max_line) {
			snprintf(why, sizeof(why), "the agent wrote a line longer than %zu bytes",
				 s->max_line);
			child_abort(s, "malformed_reply", why);
			return;
		}
		if (!nl && !eof) {
			s->scanned = size;
			return;
		}
		on_line(s, data, len);
		agd_buf_consume(&s->rbuf, nl ? len + 1 : len);
		s->scanned = 0;
	}
}

/* Read what the child wrote, up to a budget. Returns 1 if the budget ran
 * out (more may be waiting), 0 when the pipe is empty (or the child was
 * just aborted), -1 at EOF. */
static int read_stdout(struct agd_stdio *s)
{
	size_t got = 0;

	while (s->state == CH_UP && s->proc.out >= 0) {
		if (got >= READ_BUDGET)
			return 1;
		char *p = agd_buf_reserve(&s->rbuf, 65536);
		ssize_t n;

		if (!p) {
			child_abort(s, "malformed_reply", "agentd ran out of memory reading the agent's output");
			return 0;
		}
		n = sup_read(s->proc.out, p, 65536);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0) {
			cut_lines(s, true);
			agd_proc_close_fd(&s->proc.out);
			return -1;
		}
		agd_buf_commit(&s->rbuf, (size_t)n);
		got += (size_t)n;
		cut_lines(s, false);
	}
	return 0;
}

static void on_stdout(void *ctx, int fd, short revents)
{
	struct agd_stdio *s = ctx;

	if (fd == s->proc.out && s->state == CH_UP)
		read_stdout(s);
}

static void on_stderr(void *ctx, int fd, short revents)
{
	struct agd_stdio *s = ctx;
	char why[160];

	if (fd != s->proc.err || s->state != CH_UP)
		return;
	if (agd_errlog_drain(&s->err, s->g, &s->proc.err, READ_BUDGET) == 1) {
		snprintf(why, sizeof(why), "the agent flooded stderr (more than %" PRIu64
			 " bytes within a second)", s->g->o->flood_bytes);
		child_abort(s, "stderr_flood", why);
	}
}

static void write_requests(struct agd_stdio *s)
{
	size_t done;
	int r;

	if (s->proc.in < 0 || !agd_buf_size(&s->wbuf))
		return;
	r = sup_write_all(s->proc.in, agd_buf_data(&s->wbuf), agd_buf_size(&s->wbuf), &done);
	agd_buf_consume(&s->wbuf, done);
	if (r < 0 && r != -EAGAIN) {
		/* EPIPE: it closed stdin, so it is going; the pidfd (or the
		 * hang check) ends it. */
		agd_proc_close_fd(&s->proc.in);
		agd_buf_reset(&s->wbuf);
	}
}

static void on_stdin(void *ctx, int fd, short revents)
{
	struct agd_stdio *s = ctx;

	if (fd == s->proc.in && s->state == CH_UP)
		write_requests(s);
}

static void child_exited(struct agd_stdio *s)
{
	struct agd *g = s->g;
	char how[96], why[192];
	int ws;

	if (s->state == CH_UP) {
		/* Replies written just before the exit still count. */
		while (read_stdout(s) == 1)
			;
		if (s->state == CH_UP && s->proc.err >= 0)
			agd_errlog_drain(&s->err, g, &s->proc.err, READ_BUDGET);
	}
	ws = agd_proc_reap(&s->proc);
	if (s->state == CH_UP) {
		agd_proc_describe(ws < 0 ? 0 : ws, how, sizeof(how));
		snprintf(why, sizeof(why), "the agent %s before answering", how);
		if (!g->stopping || s->live)
			agd_event(g, first_live(s), "child_died", "the agent %s; %s (%u tasks failed)",
				  how, g->stopping ? "agentd is stopping" : "restarting it", s->live);
		fail_all(s, why);
	}
	agd_proc_close(&s->proc);
	plan_restart(s);
}

static void on_exit_(void *ctx, int fd, short revents)
{
	struct agd_stdio *s = ctx;

	if (fd == s->proc.pidfd && s->proc.pid > 0)
		child_exited(s);
}

/* ---- the ring --------------------------------------------------------- */

static void take_task(struct agd_stdio *s, const struct tier_task *t)
{
	struct agd *g = s->g;
	int64_t deadline = agd_deadline(g, t);
	struct slot *sl = NULL;
	int r;

	g->st.tasks++;
	if (deadline && deadline <= t->started_ns) {
		agd_fail(g, t->id, t->started_ns, TIER_ST_TIMEOUT,
			 "the deadline passed before the agent got the task");
		return;
	}
	/* started_ns, not the turn's clock: it was read after the task was
	 * published, so the remaining time is never overstated. */
	r = agd_json_encode_task(t, t->started_ns, &s->wbuf);
	if (r < 0) {
		agd_fail(g, t->id, t->started_ns, TIER_ST_ERROR, "%s", r == -EINVAL ?
			 "the task type is not valid UTF-8" : "agentd ran out of memory");
		return;
	}
	for (unsigned i = 0; i < s->nslots && !sl; i++)
		if (!s->slots[i].used)
			sl = &s->slots[i];
	*sl = (struct slot){ .id = t->id, .started_ns = t->started_ns, .deadline_ns = deadline,
			     .used = true };
	/* The silence is counted from when the task was taken, like its
	 * deadline: with --hang-ms equal to the timeout, a lone hung task
	 * times out first and the hang is noticed in the same turn. */
	if (!s->used)
		s->progress_ns = t->started_ns;
	s->used++;
	s->live++;
}

/* Take tasks while the child has room. Returns 1 if the ring ran dry (its
 * doorbell is armed), 0 if we stopped for lack of room. */
static int take_tasks(struct agd_stdio *s)
{
	struct agd *g = s->g;
	bool took = false;
	struct tier_task t;
	int r = 0;

	while (s->used < s->nslots && !g->done) {
		r = agd_next_task(g, &t);
		if (g->done)
			return 0;
		if (r == 0)
			break;
		took = true;
		take_task(s, &t);
	}
	/* CANCEL records are seen only while reading the ring. */
	for (unsigned i = 0; took && i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		if (sl->used && !sl->answered && tier_agent_cancelled(g->a, sl->id)) {
			agd_fail(g, sl->id, sl->started_ns, TIER_ST_CANCELLED, "cancelled by tierd");
			sl->answered = true;
			s->live--;
		}
	}
	return r == 0 && s->used < s->nslots;
}

/* ---- timers ----------------------------------------------------------- */

static void check_deadlines(struct agd_stdio *s)
{
	struct agd *g = s->g;

	for (unsigned i = 0; i < s->nslots; i++) {
		struct slot *sl = &s->slots[i];

		if (!sl->used || sl->answered || !sl->deadline_ns || sl->deadline_ns > g->now)
			continue;
		agd_fail(g, sl->id, sl->started_ns, TIER_ST_TIMEOUT,
			 "the agent did not answer within %" PRId64 " ms",
			 (sl->deadline_ns - sl->started_ns) / 1000000);
		sl->answered = true;
		s->live--;
	}
}

static void check_hung(struct agd_stdio *s)
{
	const struct agd_opts *o = s->g->o;
	char why[160];

	if (!s->used || !o->hang_ns || s->g->now < s->progress_ns + o->hang_ns)
		return;
	snprintf(why, sizeof(why), "the agent stopped answering (nothing on stdout for %" PRId64
		 " ms with %u tasks outstanding)", o->hang_ns / 1000000, s->used);
	child_abort(s, "child_hung", why);
}

/* SIGTERM: finish what the child holds, close its stdin, then SIGTERM it
 * and, a grace period later, SIGKILL. */
static void stopping(struct agd_stdio *s)
{
	struct agd *g = s->g;

	if (s->state == CH_DOWN) {
		agd_quit(g, AGD_EXIT_OK);
		return;
	}
	if (s->state != CH_UP)
		return;
	if (!agd_buf_size(&s->wbuf))
		agd_proc_close_fd(&s->proc.in);
	if (!s->term_sent && (s->live == 0 || g->now >= g->stop_ns + g->o->grace_ns)) {
		fail_all(s, "agentd stopped before the agent answered");
		agd_proc_kill(&s->proc, SIGTERM);
		s->term_sent = true;
		s->term_ns = g->now;
	}
	if (s->term_sent && !s->kill_sent && g->now >= s->term_ns + g->o->grace_ns) {
		agd_log(4, "%s ignored SIGTERM for %" PRId64 " ms; killing it", g->path,
			g->o->grace_ns / 1000000);
		agd_proc_kill(&s->proc, SIGKILL);
		s->kill_sent = true;
	}
}

static int64_t next_due(const struct agd_stdio *s)
{
	const struct agd *g = s->g;
	int64_t due = 0;

#define DUE(t) do { int64_t t_ = (t); if (t_ && (!due || t_ < due)) due = t_; } while (0)
	if (s->state == CH_DOWN)
		DUE(s->restart_ns);
	if (s->state == CH_UP) {
		for (unsigned i = 0; i < s->nslots; i++)
			if (s->slots[i].used && !s->slots[i].answered)
				DUE(s->slots[i].deadline_ns);
		if (s->used && g->o->hang_ns)
			DUE(s->progress_ns + g->o->hang_ns);
		if (g->stopping && !s->term_sent)
			DUE(g->stop_ns + g->o->grace_ns);
		if (s->term_sent && !s->kill_sent)
			DUE(s->term_ns + g->o->grace_ns);
	}
#undef DUE
	return due;
}

int agd_stdio_turn(struct agd_stdio *s, struct agd_loop *l, int64_t *ret_deadline,
		   int *ret_want_tasks)
{
	struct agd *g = s->g;
	int want = 0, r = 0;

	if (s->proc.pid > 0 && s->proc.pidfd < 0 && agd_proc_exited(&s->proc))
		child_exited(s);
	if (s->state == CH_UP) {
		check_deadlines(s);
		check_hung(s);
	}
	if (s->state == CH_DOWN && s->restart_ns && g->now >= s->restart_ns && !g->stopping)
		child_start(s);
	if (g->stopping)
		stopping(s);
	else if (s->state == CH_UP)
		want = take_tasks(s);
	if (s->state == CH_UP)
		write_requests(s);
	if (g->done)
		return 0;
	if (s->proc.pidfd >= 0)
		r = agd_loop_add(l, s->proc.pidfd, POLLIN, on_exit_, s);
	if (!r && s->state == CH_UP && s->proc.out >= 0)
		r = agd_loop_add(l, s->proc.out, POLLIN, on_stdout, s);
	if (!r && s->state == CH_UP && s->proc.err >= 0)
		r = agd_loop_add(l, s->proc.err, POLLIN, on_stderr, s);
	if (!r && s->state == CH_UP && s->proc.in >= 0 && agd_buf_size(&s->wbuf))
		r = agd_loop_add(l, s->proc.in, POLLOUT, on_stdin, s);
	*ret_deadline = next_due(s);
	*ret_want_tasks = want;
	return r;
}

struct agd_stdio *agd_stdio_new(struct agd *g)
{
	struct agd_stdio *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->g = g;
	s->proc = (struct agd_proc){ .pidfd = -1, .in = -1, .out = -1, .err = -1 };
	s->nslots = g->o->pipeline;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	s->failures = calloc(g->o->restart_max + 1, sizeof(*s->failures));
	s->scratch = malloc((size_t)g->max_payload + 4);
	s->max_line = LINE_SLACK + agd_json_string_max(g->max_payload);
	if (!s->slots || !s->failures || !s->scratch) {
		agd_stdio_free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->state = CH_DOWN;
	s->restart_ns = g->now;
	return s;
}

void agd_stdio_free(struct agd_stdio *s)
{
	if (!s)
		return;
	if (s->proc.pid > 0)
		agd_proc_reap(&s->proc);
	agd_proc_close(&s->proc);
	agd_buf_free(&s->wbuf);
	agd_buf_free(&s->rbuf);
	free(s->slots);
	free(s->failures);
	free(s->scratch);
	free(s);
}
