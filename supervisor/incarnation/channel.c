/* SPDX-License-Identifier: MIT */
/*
 * One incarnation of an agent: spawn it into its leaf with fresh rings and
 * doorbells, drain its completion ring, capture its output, notice its exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tier/proto.h"
#include "tier/ring.h"

#include "cgroup.h"
#include "config.h"
#include "daemon.h"
#include "events.h"
#include "inc.h"
#include "spawn.h"
#include "agentrec.h"
#include "tasks.h"
#include "textesc.h"

/* Records handled per agent per loop turn, so one busy agent cannot starve
 * the rest of the fleet. */
#define DRAIN_BUDGET 256

static void inc_detach(struct sup_daemon *d, struct sup_inc *inc);
static void inc_pause(struct sup_inc *inc, enum sup_budget_verdict v, enum sup_budget_kind kind);
static void awake_unlink(struct sup_daemon *d, struct sup_inc *inc);

/* ---- environment and argv ---------------------------------------------- */

struct strv {
	char  **v;
	size_t  n, cap;
};

static int strv_add(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int strv_add(struct strv *s, const char *fmt, ...)
{
	va_list ap;
	char *str;
	int r;

	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	va_start(ap, fmt);
	r = vasprintf(&str, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static bool env_has(const struct sup_agent_conf *c, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < c->n_env; i++)
		if (!strncmp(c->env[i], key, kl) && c->env[i][kl] == '=')
			return true;
	return false;
}

static int build_env(struct sup_agent *ag, uint32_t n, struct strv *env)
{
	const struct sup_agent_conf *c = ag->conf;
	const struct sup_config *conf = ag->d->conf;
	int r = 0;

	for (size_t i = 0; i < c->n_env && !r; i++)
		r = strv_add(env, "%s", c->env[i]);
	if (!r && !env_has(c, "PATH"))
		r = strv_add(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!r && c->user && strspn(c->user, "0123456789") != strlen(c->user) && !env_has(c, "USER"))
		r = strv_add(env, "USER=%s", c->user);
	if (!r)
		r = strv_add(env, "TIER_AGENT=%s", ag->name);
	if (!r)
		r = strv_add(env, "TIER_TIER=%d", ag->tier);
	if (!r)
		r = strv_add(env, "TIER_INCARNATION=%u", n);
	if (!r)
		r = strv_add(env, "TIER_PROTO=%u", TIER_PROTO_VERSION);
	if (!r)
		r = strv_add(env, "TIER_SPIN_NS=%lld", (long long)conf->sup.spin_window_ns);
	return r;
}

/* Native agents run their own argv; the others run agentd, which runs it. */
static int build_argv(struct sup_agent *ag, struct strv *argv)
{
	const struct sup_agent_conf *c = ag->conf;
	int r = 0;

	if (c->mode != SUP_MODE_NATIVE) {
		r = strv_add(argv, "%s", ag->d->agentd_path);
		if (!r)
			r = strv_add(argv, "--mode=%s", c->mode == SUP_MODE_STDIO ? "stdio" : "exec");
		if (!r)
			r = strv_add(argv, "--timeout-ms=%lld", (long long)(c->exec_timeout_ns / 1000000));
		if (!r)
			r = strv_add(argv, "--");
	}
	for (size_t i = 0; i < c->argc && !r; i++)
		r = strv_add(argv, "%s", c->argv[i]);
	return r;
}

/* ---- output capture ---------------------------------------------------- */

static void out_line(struct sup_out *o, const char *line, size_t len)
{
	struct sup_agent *ag = o->inc->ag;
	struct sup_daemon *d;

	if (!ag)
		return;
	d = ag->d;
	/* What the budget drops is counted and reported by the daemon's tick. */
	if (!sup_budget_line(&ag->budget, SUP_BUDGET_LINES, sup_loop_time(d->loop))) {
		ag->log_dropped++;
		return;
	}
	{
		char text[1024];

		sup_text_escape(text, sizeof(text), line, len);
		sup_log(&d->log, o->stream == 2 ? SUP_LOG_NOTICE : SUP_LOG_INFO, "agent %s[%d]: %s",
			ag->name, (int)o->inc->pid, text);
	}
}

static void out_arm(struct sup_daemon *d, struct sup_out *o)
{
	if (sup_loop_read(d->loop, &o->ev, o->fd, o->buf + o->len,
			  (unsigned)(SUP_OUT_BUF - o->len), (uint64_t)-1) < 0)
		sup_log(&d->log, SUP_LOG_ERR, "agent output: cannot queue a read");
}

static void out_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_out *o = ev->data;
	struct sup_inc *inc = o->inc;
	enum sup_budget_verdict v;
	size_t start = 0;

	(void)l;
	(void)more;
	if (res <= 0 || !inc->ag) {
		/* EOF, error or cancelled: flush a partial line and stop. */
		if (o->len && inc->ag)
			out_line(o, o->buf, o->len);
		o->len = 0;
		if (!inc->ag)
			sup_inc_reap_dead(inc->d);
		return;
	}
	o->len += (size_t)res;
	/* Bytes are charged before the lines are looked at: a flood costs one
	 * read per window once it is over its budget. */
	v = sup_budget_charge(&inc->ag->budget, SUP_BUDGET_BYTES, (uint64_t)res,
			      sup_loop_time(inc->ag->d->loop));
	for (size_t i = 0; i < o->len; i++) {
		if (o->buf[i] == '\n') {
			out_line(o, o->buf + start, i - start);
			start = i + 1;
		}
	}
	if (start < o->len && start == 0 && o->len == SUP_OUT_BUF) {
		/* A line longer than the buffer: log it in pieces. */
		out_line(o, o->buf, o->len);
		start = o->len;
	}
	memmove(o->buf, o->buf + start, o->len - start);
	o->len -= start;
	if (v != SUP_BUDGET_OK) {
		/* Not read again before the window ends: the writer blocks on
		 * its full pipe instead of tierd paying for every byte. */
		inc->out_paused[o->stream - 1] = true;
		inc_pause(inc, v, SUP_BUDGET_BYTES);
		return;
	}
	out_arm(inc->ag->d, o);
}

/* ---- the completion ring ----------------------------------------------- */

/* The first fault of an incarnation is its last: one event, one kill, and
 * nothing more is read from its rings, so a flood of bad records costs one
 * line in the log and one entry in the journal. */
static void protocol_violation(struct sup_agent *ag, const char *what, int err)
{
	struct sup_inc *inc = ag->inc;

	if (!inc || inc->faulted)
		return;
	inc->faulted = true;
	sup_daemon_event(ag->d, SUP_LOG_ERR, "protocol_violation",
			 json_pack("{s:s, s:i, s:s, s:s}", "agent", ag->name, "incarnation", (int)inc->n,
				   "what", what, "error", err ? tier_strerror(err) : ""),
			 "agent %s: protocol violation: %s%s%s; killing it", ag->name, what,
			 err ? ": " : "", err ? tier_strerror(err) : "");
	sup_agent_event(ag, SUP_EV_PROTOCOL);
}

void sup_inc_fault(struct sup_agent *ag, const char *what, int err)
{
	protocol_violation(ag, what, err);
}

static void flooder(struct sup_agent *ag, enum sup_budget_kind kind)
{
	struct sup_inc *inc = ag->inc;
	const struct sup_supervisor_conf *s = &ag->d->conf->sup;

	if (!inc || inc->faulted)
		return;
	inc->faulted = true;
	sup_daemon_event(ag->d, SUP_LOG_ERR, "flooder",
			 json_pack("{s:s, s:i, s:s, s:f}", "agent", ag->name, "incarnation",
				   (int)inc->n, "budget", sup_budget_kind_name(kind), "for_s",
				   (double)s->agent_flood_kill_after_ns * 1e-9),
			 "agent %s: over its %s budget for %.1fs; killing it as a flooder", ag->name,
			 sup_budget_kind_name(kind), (double)s->agent_flood_kill_after_ns * 1e-9);
	sup_agent_event(ag, SUP_EV_FLOOD);
}

/* ---- throttling ---------------------------------------------------------- */

static void resume_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_inc *inc = t->data;

	if (!inc->ag || inc->exited || inc->faulted)
		return;
	if (inc->cq_paused) {
		inc->cq_paused = false;
		if (sup_ev_idle(&inc->bell_ev))
			sup_loop_poll(l, &inc->bell_ev, inc->cq_bell, POLLIN, true);
		sup_defer_queue(l, &inc->drain);
	}
	for (int i = 0; i < 2; i++)
		if (inc->out_paused[i]) {
			inc->out_paused[i] = false;
			out_arm(inc->d, &inc->out[i]);
		}
}

/* A source went over budget: it waits for the end of the window (the
 * caller has stopped reading it), or the agent is a flooder. */
static void inc_pause(struct sup_inc *inc, enum sup_budget_verdict v, enum sup_budget_kind kind)
{
	struct sup_agent *ag = inc->ag;

	if (v == SUP_BUDGET_FLOODER) {
		flooder(ag, kind);
		return;
	}
	if (!sup_timer_armed(&inc->resume))
		sup_timer_arm(inc->d->loop, &inc->resume, sup_budget_resume_at(&ag->budget));
}

static void cq_pause(struct sup_inc *inc, enum sup_budget_verdict v, enum sup_budget_kind kind)
{
	inc->cq_paused = true;
	/* The doorbell is not watched while paused: an agent writing it in a
	 * loop then costs tierd nothing until the window ends. */
	sup_loop_cancel(inc->d->loop, &inc->bell_ev);
	if (inc->cq_awake)
		awake_unlink(inc->d, inc);
	inc_pause(inc, v, kind);
}

static int on_hello(struct sup_agent *ag, struct sup_inc *inc, const struct tier_msg *m)
{
	struct tier_hello h;
	struct tier_welcome w = { .proto = TIER_PROTO_VERSION };

	memcpy(&h, m->payload, sizeof(h));
	if (h.proto < 1) {
		protocol_violation(ag, "HELLO with protocol version 0", 0);
		return -1;
	}
	if (inc->hello) {
		protocol_violation(ag, "second HELLO", 0);
		return -1;
	}
	inc->hello = true;
	ag->max_inflight = h.max_inflight;
	if (h.proto < w.proto)
		w.proto = h.proto;
	if (tier_prod_write(tier_shm_prod(inc->shm), TIER_MSG_WELCOME, 0, 0, &w, sizeof(w)) == 0)
		tier_prod_publish(tier_shm_prod(inc->shm));
	sup_agent_event(ag, SUP_EV_HELLO);
	return 0;
}

/* Handle one record; the payload is still in shared memory and may change
 * under us, so whatever is used is copied first. */
static int on_record(struct sup_agent *ag, struct sup_inc *inc, const struct tier_msg *m)
{
	char why[96];
	const char *fault = sup_agent_rec_fault(m->type, m->len, why, sizeof(why));

	/* A short RESULT goes on: its task fails before the agent is killed. */
	if (fault && m->type != TIER_MSG_RESULT) {
		protocol_violation(ag, fault, 0);
		return -1;
	}
	switch (m->type) {
	case TIER_MSG_HELLO:
		return on_hello(ag, inc, m);
	case TIER_MSG_RESULT:
		if (!inc->hello) {
			protocol_violation(ag, "RESULT before HELLO", 0);
			return -1;
		}
		return sup_tasks_on_result(ag->d->tasks, ag, inc, m);
	case TIER_MSG_HEARTBEAT:
		sup_tasks_on_heartbeat(ag->d->tasks, ag);
		return 0;
	case TIER_MSG_LOG: {
		char raw[512], line[1024];
		size_t n = m->len < sizeof(raw) ? m->len : sizeof(raw);

		/* Refused lines are not even copied: a LOG flood costs a peek. */
		if (!sup_budget_line(&ag->budget, SUP_BUDGET_LINES, sup_loop_time(ag->d->loop))) {
			ag->log_dropped++;
			return 0;
		}
		memcpy(raw, m->payload, n);
		sup_text_escape(line, sizeof(line), raw, n);
		sup_log(&ag->d->log, SUP_LOG_INFO, "agent %s[%d]: %s", ag->name, (int)inc->pid, line);
		return 0;
	}
	case TIER_MSG_EVENT: {
		char raw[512], kind[256], msg[1024];
		size_t n = m->len < sizeof(raw) ? m->len : sizeof(raw);

		if (!sup_budget_line(&ag->budget, SUP_BUDGET_EVENTS, sup_loop_time(ag->d->loop))) {
			ag->log_dropped++;
			return 0;
		}
		memcpy(raw, m->payload, n);
		/* Escaped, not dropped: bytes that are not UTF-8 would make the
		 * event unrepresentable in JSON and vanish from the journal. */
		sup_agent_event_split(raw, n, kind, sizeof(kind), msg, sizeof(msg));
		sup_daemon_event(ag->d, SUP_LOG_WARNING, "agent_event",
				 json_pack("{s:s, s:s, s:s, s:I}", "agent", ag->name, "event", kind,
					   "message", msg, "task", (json_int_t)m->task_id),
				 "agent %s: %s: %s", ag->name, kind, msg);
		return 0;
	}
	default:
		return -1; /* refused above */
	}
}

/* Drain up to DRAIN_BUDGET records. Returns true if more may be waiting. */
static bool inc_drain_budget(struct sup_agent *ag, struct sup_inc *inc, unsigned budget)
{
	struct tier_cons *c = tier_shm_cons(inc->shm);
	struct tier_msg m;
	unsigned n = 0, unsolicited = 0;
	int r = 0;

	if (inc->faulted)
		return false;
	while (n < budget && (r = tier_cons_peek(c, &m)) == 1) {
		tier_cons_advance(c);
		n++;
		/* A valid RESULT answers a task tierd chose to send (any other
		 * is a fault), so results are bounded by dispatch already: only
		 * the records an agent sends of its own accord are charged. */
		unsolicited += m.type != TIER_MSG_RESULT;
		if (on_record(ag, inc, &m) < 0 || inc->faulted || ag->inc != inc) {
			/* Its space goes back even now: a ring is never left
			 * holding records tierd has taken. */
			tier_cons_release(c);
			return false;
		}
	}
	tier_cons_release(c);
	if (r < 0) {
		protocol_violation(ag, "completion ring corrupt", r);
		return false;
	}
	sup_tasks_flush(ag->d->tasks, ag);
	if (!inc->exited) {
		int64_t now = sup_loop_time(ag->d->loop);
		enum sup_budget_verdict v = SUP_BUDGET_OK;
		enum sup_budget_kind kind = SUP_BUDGET_RECORDS;

		if (unsolicited)
			v = sup_budget_charge(&ag->budget, SUP_BUDGET_RECORDS, unsolicited, now);
		else if (!n && inc->bell_rang)
			v = sup_budget_charge(&ag->budget, kind = SUP_BUDGET_WAKES, 1, now);
		inc->bell_rang = false;
		if (v != SUP_BUDGET_OK) {
			cq_pause(inc, v, kind);
			return false;
		}
	}
	return n == budget;
}

static void inc_drain(struct sup_loop *l, struct sup_defer *dfr)
{
	struct sup_inc *inc = dfr->data;
	struct sup_agent *ag = inc->ag;

	if (!ag || inc->exited || inc->faulted || inc->cq_paused)
		return;
	if (inc_drain_budget(ag, inc, DRAIN_BUDGET)) {
		sup_defer_queue(l, dfr);
		return;
	}
	if (ag->inc != inc || inc->faulted || inc->cq_paused)
		return;
	/* Empty. While tasks are in flight tierd polls this ring before it
	 * blocks (sup_inc_idle_spin); the doorbell is asked for only then. */
	if (!inc->cq_awake) {
		inc->cq_awake = true;
		inc->next_awake = ag->d->awake;
		ag->d->awake = inc;
	}
}

static void awake_unlink(struct sup_daemon *d, struct sup_inc *inc)
{
	for (struct sup_inc **pp = &d->awake; *pp; pp = &(*pp)->next_awake)
		if (*pp == inc) {
			*pp = inc->next_awake;
			break;
		}
	inc->cq_awake = false;
}

int sup_inc_idle_spin(void *arg)
{
	struct sup_daemon *d = arg;
	int found = 0;

	if (!sup_tasks_spin_worthwhile(d->tasks))
		return -1;
	for (struct sup_inc *inc = d->awake; inc; inc = inc->next_awake)
		if (inc->ag && !inc->exited && !inc->faulted && tier_cons_pending(tier_shm_cons(inc->shm))) {
			sup_defer_queue(d->loop, &inc->drain);
			found = 1;
		}
	return found;
}

int sup_inc_before_sleep(void *arg)
{
	struct sup_daemon *d = arg;
	struct sup_inc *inc = d->awake, *keep = NULL;
	int found = 0;

	/* Every ring we polled goes to sleep on its doorbell; one that got a
	 * record meanwhile is drained instead. */
	while (inc) {
		struct sup_inc *next = inc->next_awake;

		inc->cq_awake = false;
		if (inc->ag && !inc->exited && !inc->faulted &&
		    tier_cons_prepare_sleep(tier_shm_cons(inc->shm), TIER_SLEEP_EVENTFD, NULL) != 0) {
			sup_defer_queue(d->loop, &inc->drain);
			inc->cq_awake = true;
			inc->next_awake = keep;
			keep = inc;
			found = 1;
		}
		inc = next;
	}
	d->awake = keep;
	return found;
}

static void bell_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_inc *inc = ev->data;

	if (!inc->ag) {
		sup_inc_reap_dead(inc->d);
		return;
	}
	if (res > 0 && !inc->cq_paused && !inc->faulted) {
		/* A ring that brings no record (the drain finds the ring empty)
		 * is charged: an agent writing its eventfd in a loop would
		 * otherwise cost tierd a loop turn per write. */
		inc->bell_rang = true;
		sup_defer_queue(l, &inc->drain);
	}
	/* A multishot poll the kernel ended (not cancelled): arm it again. */
	if (!more && res != -ECANCELED && !inc->exited && !inc->cq_paused)
		sup_loop_poll(l, &inc->bell_ev, inc->cq_bell, POLLIN, true);
}

/* ---- exit --------------------------------------------------------------- */

static void describe_exit(const siginfo_t *si, char *buf, size_t len)
{
	if (si->si_code == CLD_EXITED)
		snprintf(buf, len, "exit %d", si->si_status);
	else
		snprintf(buf, len, "signal %d (%s)%s", si->si_status, sigabbrev_np(si->si_status) ?
			 sigabbrev_np(si->si_status) : "?", si->si_code == CLD_DUMPED ? ", core dumped" : "");
}

static void pid_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_inc *inc = ev->data;
	struct sup_agent *ag = inc->ag;
	siginfo_t si = { 0 };
	bool clean = false;

	(void)l;
	(void)more;
	if (!ag) {
		sup_inc_reap_dead(inc->d);
		return;
	}
	if (res < 0 && res != -ECANCELED)
		sup_log(&ag->d->log, SUP_LOG_ERR, "agent %s: polling its pidfd: %s", ag->name,
			strerror(-res));
	if (waitid(P_PIDFD, (id_t)inc->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) {
		if (res == -ECANCELED)
			return;
		/* Not exited yet (spurious wake-up): poll again. */
		sup_loop_poll(l, &inc->pid_ev, inc->pidfd, POLLIN, false);
		return;
	}
	inc->exited = true;
	/* Whatever it left in its leaf goes with it, before the ring is read:
	 * a child it forked could otherwise keep refilling it. */
	{
		struct sup_cg_events ce;

		if (sup_cg_read_events(sup_cg_leaf_fd(ag->leaf), &ce) < 0 || ce.populated)
			sup_cg_leaf_kill(ag->leaf);
	}
	/* Results it finished before dying are still valid: take them, but no
	 * more than the ring can hold (a full ring of empty records). */
	for (size_t left = tier_shm_size(inc->shm) / TIER_REC_HDR_SIZE; left >= DRAIN_BUDGET;
	     left -= DRAIN_BUDGET)
		if (!inc_drain_budget(ag, inc, DRAIN_BUDGET))
			break;
	describe_exit(&si, ag->last_exit, sizeof(ag->last_exit));
	clean = si.si_code == CLD_EXITED && si.si_status == 0;
	if (sup_cg_ctrl_live(ag->d->cg, SUP_CG_MEMORY)) {
		struct sup_cg_mem_events me;

		if (sup_cg_read_mem_events(sup_cg_leaf_fd(ag->leaf), &me) == 0 &&
		    me.oom_kill > inc->oom_kills_at_spawn) {
			snprintf(ag->last_exit, sizeof(ag->last_exit), "oom-kill (%s)",
				 si.si_code == CLD_EXITED ? "exited" : "killed");
			clean = false;
		}
	}
	sup_daemon_event(ag->d, ag->stop_requested ? SUP_LOG_INFO : SUP_LOG_WARNING, "agent_exit",
			 json_pack("{s:s, s:i, s:i, s:s, s:b, s:f}", "agent", ag->name,
				   "incarnation", (int)inc->n, "pid", (int)inc->pid,
				   "status", ag->last_exit, "clean", clean,
				   "uptime_s", (double)(sup_loop_time(l) - inc->spawned_ns) * 1e-9),
			 "agent %s[%d] ended: %s", ag->name, (int)inc->pid, ag->last_exit);
	sup_tasks_agent_lost(ag->d->tasks, ag, inc);
	inc_detach(ag->d, inc);
	ag->inc = NULL;
	sup_agent_exited(ag, clean);
}

/* ---- spawn --------------------------------------------------------------- */

static void inc_free(struct sup_inc *inc)
{
	tier_shm_free(inc->shm);
	if (inc->cq_bell >= 0)
		close(inc->cq_bell);
	if (inc->sq_bell >= 0)
		close(inc->sq_bell);
	for (int i = 0; i < 2; i++)
		if (inc->out[i].fd >= 0)
			close(inc->out[i].fd);
	if (inc->pidfd >= 0)
		close(inc->pidfd);
	free(inc);
}

static bool inc_idle(const struct sup_inc *inc)
{
	return sup_ev_idle(&inc->pid_ev) && sup_ev_idle(&inc->bell_ev) &&
	       sup_ev_idle(&inc->out[0].ev) && sup_ev_idle(&inc->out[1].ev);
}

/* Detach from the agent: cancel every operation; the object is freed once
 * the kernel has completed them all. */
static void inc_detach(struct sup_daemon *d, struct sup_inc *inc)
{
	if (inc->cq_awake)
		awake_unlink(d, inc);
	sup_timer_disarm(d->loop, &inc->resume);
	inc->ag = NULL;
	sup_loop_cancel(d->loop, &inc->pid_ev);
	sup_loop_cancel(d->loop, &inc->bell_ev);
	sup_loop_cancel(d->loop, &inc->out[0].ev);
	sup_loop_cancel(d->loop, &inc->out[1].ev);
	inc->next_dead = d->dead;
	d->dead = inc;
}

void sup_inc_reap_dead(struct sup_daemon *d)
{
	struct sup_inc **pp;

	for (pp = &d->dead; *pp;) {
		struct sup_inc *inc = *pp;

		if (inc_idle(inc)) {
			*pp = inc->next_dead;
			inc_free(inc);
		} else {
			pp = &inc->next_dead;
		}
	}
}

static int make_pipe(int fds[2])
{
	/* Read end blocking: io_uring then waits for data instead of
	 * returning -EAGAIN. Both ends close-on-exec; the child gets a dup. */
	return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int sup_inc_spawn(struct sup_agent *ag, char *err, size_t errlen)
{
	struct sup_daemon *d = ag->d;
	const struct sup_agent_conf *c = ag->conf;
	struct sup_spawn_req req = { 0 };
	struct sup_spawn_result res;
	struct strv argv = { 0 }, env = { 0 };
	struct tier_shm_opts so = { .sz = sizeof(so) };
	struct sup_inc *inc;
	char path[4096];
	int pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int r;

	inc = calloc(1, sizeof(*inc));
	if (!inc)
		return -ENOMEM;
	inc->d = d;
	inc->pidfd = inc->cq_bell = inc->sq_bell = inc->out[0].fd = inc->out[1].fd = -1;
	inc->n = ++ag->incarnations;
	so.sq_capacity = so.cq_capacity = c->ring_size;
	so.max_record = c->ring_size / 2 < TIER_RING_DEFAULT_MAX_REC ? c->ring_size / 2 :
			TIER_RING_DEFAULT_MAX_REC;
	inc->shm = tier_shm_create(&so);
	if (!inc->shm) {
		r = -errno;
		snprintf(err, errlen, "creating its ring: %s", tier_strerror(r));
		goto fail;
	}
	inc->cq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	inc->sq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (inc->cq_bell < 0 || inc->sq_bell < 0 || make_pipe(pout) < 0 || make_pipe(perr) < 0) {
		r = -errno;
		snprintf(err, errlen, "creating its doorbells and pipes: %s", strerror(errno));
		goto fail;
	}
	r = build_argv(ag, &argv);
	if (!r)
		r = build_env(ag, inc->n, &env);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = sup_spawn_resolve(argv.v[0], NULL, path, sizeof(path));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", argv.v[0], strerror(-r));
		goto fail;
	}
	if (d->kill_taints_clone3 && sup_cg_leaf_killed(ag->leaf)) {
		/* A killed leaf would kill the child clone3 puts in it: use a
		 * fresh one, or join by fork while it still empties. */
		if (sup_cg_leaf_recreate(d->cg, ag->leaf) < 0)
			req.cg_flags |= SUP_CG_SPAWN_NO_CLONE3;
		else
			sup_agent_leaf_recreated(ag);
	}
	req.leaf_fd = sup_cg_leaf_fd(ag->leaf);
	req.path = path;
	req.argv = argv.v;
	req.envp = env.v;
	req.workdir = c->workdir;
	req.set_creds = c->has_uid || c->has_gid;
	req.uid = c->has_uid ? c->uid : getuid();
	req.gid = c->has_gid ? c->gid : getgid();
	req.caps_keep = c->caps;
	for (int i = 0; i < SUP_RLIMIT_COUNT && req.n_rlimits < SUP_SPAWN_MAX_RLIMITS; i++) {
		if (!c->rlimits[i].set)
			continue;
		req.rlimits[req.n_rlimits].resource = i;
		req.rlimits[req.n_rlimits].lim.rlim_cur = c->rlimits[i].cur;
		req.rlimits[req.n_rlimits].lim.rlim_max = c->rlimits[i].max;
		req.n_rlimits++;
	}
	req.fd_ring = tier_shm_fd(inc->shm);
	req.fd_cq_bell = inc->cq_bell;
	req.fd_sq_bell = inc->sq_bell;
	req.fd_stdin = d->devnull;
	req.fd_stdout = pout[1];
	req.fd_stderr = perr[1];
	req.pdeath_signal = SIGKILL;
	req.sandbox = c->sandbox;
	req.mntns_fd = d->sandbox_fd;
	if (c->sandbox && d->sandbox_fd < 0) {
		r = -d->sandbox_err;
		snprintf(err, errlen, "sandbox unavailable: %s: %s (sandbox = no runs it without)",
			 sup_spawn_step_name(d->sandbox_step), strerror(d->sandbox_err));
		goto fail;
	}
	if (sup_cg_ctrl_live(d->cg, SUP_CG_MEMORY)) {
		struct sup_cg_mem_events me;

		if (sup_cg_read_mem_events(req.leaf_fd, &me) == 0)
			inc->oom_kills_at_spawn = me.oom_kill;
	}
	r = sup_spawn(&req, &res);
	close(pout[1]);
	close(perr[1]);
	pout[1] = perr[1] = -1;
	if (r < 0) {
		snprintf(err, errlen, "%s: %s: %s", path, sup_spawn_step_name(res.failed_step),
			 strerror(-r));
		goto fail;
	}
	strv_free(&argv);
	strv_free(&env);
	inc->ag = ag;
	inc->pid = res.pid;
	inc->pidfd = res.pidfd;
	inc->spawned_ns = sup_loop_now(d->loop);
	tier_prod_set_eventfd(tier_shm_prod(inc->shm), inc->sq_bell);
	sup_ev_init(&inc->pid_ev, pid_done, inc);
	sup_ev_init(&inc->bell_ev, bell_done, inc);
	sup_defer_init(&inc->drain, inc_drain, inc);
	sup_timer_init(&inc->resume, resume_fired, inc);
	{
		const struct sup_supervisor_conf *s = &d->conf->sup;
		const uint64_t lim[SUP_BUDGET_NKINDS] = {
			[SUP_BUDGET_RECORDS] = s->agent_record_rate,
			[SUP_BUDGET_LINES] = s->agent_log_rate,
			[SUP_BUDGET_BYTES] = s->agent_output_rate,
			[SUP_BUDGET_WAKES] = s->agent_wake_rate,
			[SUP_BUDGET_EVENTS] = s->agent_log_rate,
		};
		uint64_t dropped = ag->budget.dropped_lines;

		sup_budget_init(&ag->budget, lim, s->agent_flood_kill_after_ns, inc->spawned_ns);
		ag->budget.dropped_lines = dropped;
	}
	inc->out[0] = (struct sup_out){ .inc = inc, .fd = pout[0], .stream = 1 };
	inc->out[1] = (struct sup_out){ .inc = inc, .fd = perr[0], .stream = 2 };
	for (int i = 0; i < 2; i++) {
		sup_ev_init(&inc->out[i].ev, out_done, &inc->out[i]);
		out_arm(d, &inc->out[i]);
	}
	/* tierd sleeps on the CQ from the start: the HELLO rings the bell. */
	tier_cons_prepare_sleep(tier_shm_cons(inc->shm), TIER_SLEEP_EVENTFD, NULL);
	sup_loop_poll(d->loop, &inc->bell_ev, inc->cq_bell, POLLIN, true);
	sup_loop_poll(d->loop, &inc->pid_ev, inc->pidfd, POLLIN, false);
	sup_defer_queue(d->loop, &inc->drain);
	ag->inc = inc;
	return 0;

fail:
	strv_free(&argv);
	strv_free(&env);
	for (int i = 0; i < 2; i++) {
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	inc_free(inc);
	return r;
}

int sup_inc_signal(struct sup_inc *inc, int sig)
{
	if (syscall(SYS_pidfd_send_signal, inc->pidfd, sig, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno;
	return 0;
}
