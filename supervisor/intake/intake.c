/* SPDX-License-Identifier: MIT */
/*
 * intake — the loop side of the NATS intake (intake.h): the eventfd the
 * thread rings, the consumers' wants (free room), the in-progress timer,
 * drain, status and the upgrade's quiesce.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../agent.h"
#include "../fleet.h"
#include "internal.h"
#include "../tasks.h"

#define IN_TICK_NS      (200 * SUP_NS_PER_MS)
#define IN_REPUBLISH_NS (5 * SUP_NS_PER_SEC)

int64_t sup_in_now(struct sup_intake *in)
{
	return sup_loop_time(in->env.loop);
}

void sup_in_log(struct sup_intake *in, int prio, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (in->env.event)
		in->env.event(in->env.arg, prio, NULL, NULL, buf);
}

static void event(struct sup_intake *in, int prio, const char *kind, const char *msg)
{
	json_t *ev = json_pack("{s:s, s:s}", "node", in->node, "servers", in->conf.servers);

	if (in->env.event)
		in->env.event(in->env.arg, prio, kind, ev, msg);
	else
		json_decref(ev);
}

/* ---- wants: what each consumer may fetch ---------------------------------- */

void sup_in_update_wants(struct sup_intake *in)
{
	uint32_t room[SUP_NTIERS + 1] = { 0 };
	uint32_t want[IN_CONS_MAX];
	const struct sup_fleet *f = in->env.fleet;
	bool more = false;

	for (size_t i = 0; i < f->n; i++) {
		const struct sup_agent *ag = f->agents[i];

		if (ag->tier >= 1 && ag->tier <= SUP_NTIERS)
			room[ag->tier] += sup_tasks_room(ag);
	}
	for (size_t i = 0; i < in->ncons; i++) {
		const struct in_cons *c = &in->cons[i];
		uint32_t r = 0, q = 0;

		if (in->draining || in->quiescing) {
			want[i] = 0;
			continue;
		}
		if (c->kind == IN_C_TIER) {
			r = room[c->tier];
			q = sup_tasks_tier_queued(in->env.tasks, c->tier);
		} else if (c->kind == IN_C_RUN) {
			r = in->conf.max_runs > in->nruns ? in->conf.max_runs - in->nruns : 0;
		} else {
			const struct sup_agent *ag = sup_fleet_find(f, c->agent);

			r = ag ? sup_tasks_room(ag) : 0;
		}
		want[i] = sup_in_want(r, q, 0, in->conf.fetch_batch_max);
	}
	pthread_mutex_lock(&in->mu);
	for (size_t i = 0; i < in->ncons; i++) {
		struct in_cons *c = &in->cons[i];

		/* The thread asks for want - outstanding: what it fetched and
		 * the loop has not taken yet is not room any more. */
		if (want[i] > c->want)
			more = true;
		c->want = want[i];
	}
	if (more)
		pthread_cond_broadcast(&in->cv);
	pthread_mutex_unlock(&in->mu);
}

static void wants_deferred(struct sup_loop *l, struct sup_defer *d)
{
	struct sup_intake *in = d->data;

	sup_in_update_wants(in);
	if (in->draining && !in->nleases && !in->drained_sent) {
		in->drained_sent = true;
		event(in, 5, "fleet_drained", "fleet: drained (nothing broker-fed in flight)");
	}
}

/* ---- events from the thread ------------------------------------------------ */

static void take_events(struct sup_intake *in)
{
	struct in_ev *ev, *next;

	pthread_mutex_lock(&in->mu);
	ev = in->q_head;
	in->q_head = in->q_tail = NULL;
	in->q_n = 0;
	pthread_mutex_unlock(&in->mu);
	for (; ev; ev = next) {
		next = ev->next;
		switch (ev->kind) {
		case IN_EV_MSG:
			pthread_mutex_lock(&in->mu);
			if (in->cons[ev->cons].outstanding)
				in->cons[ev->cons].outstanding--;
			pthread_mutex_unlock(&in->mu);
			sup_in_take_msg(in, ev->cons, ev->msg);
			break;
		case IN_EV_PUBACK:
			sup_in_puback(in, ev->seq, ev->status, ev->err);
			break;
		case IN_EV_CONN:
			if (!in->was_connected) {
				in->was_connected = true;
				in->st.reconnects++;
				event(in, 5, "fleet_connected", "fleet: connected to NATS");
				/* Results not yet stored go again on the new link. */
				for (struct in_lease *l = in->head; l; l = l->next)
					if (l->state == IN_L_PUBLISHING)
						sup_in_publish(l);
			}
			break;
		case IN_EV_DISC:
			if (in->was_connected) {
				in->was_connected = false;
				event(in, 4, "fleet_disconnected",
				      "fleet: NATS unreachable, reconnecting (local work goes on)");
			}
			break;
		}
		free(ev);
	}
	sup_defer_queue(in->env.loop, &in->wants_df);
}

static void efd_ready(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_intake *in = ev->data;
	uint64_t v;

	if (!more)
		in->efd_armed = false;
	if (res == -ECANCELED)
		return;
	if (read(in->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another turn emptied it */
	}
	take_events(in);
	if (!in->efd_armed && !in->quiescing &&
	    sup_loop_poll(l, &in->efd_ev, in->efd, POLLIN, true) == 0)
		in->efd_armed = true;
}

/* ---- the timer: in-progress, republish, rate --------------------------------- */

static void tick(struct sup_loop *lp, struct sup_timer *t)
{
	struct sup_intake *in = t->data;
	int64_t now = sup_loop_time(lp);
	int64_t every = (int64_t)(in->conf.in_progress_fraction * (double)in->conf.ack_wait_ns);

	for (struct in_lease *l = in->head; l; l = l->next) {
		if (l->state == IN_L_RUNNING && now >= l->next_wpi) {
			if (sup_in_reply(in, l->reply, "+WPI") == 0)
				in->st.in_progress++;
			l->next_wpi = now + every;
		} else if (l->state == IN_L_PUBLISHING && in->was_connected &&
			   (!l->published || now - l->published > IN_REPUBLISH_NS)) {
			sup_in_publish(l);
		}
	}
	if (now - in->rate_t0 >= SUP_NS_PER_SEC) {
		in->fetch_rate = (double)(in->st.fetched - in->rate_n0) * 1e9 /
				 (double)(now - in->rate_t0);
		in->rate_t0 = now;
		in->rate_n0 = in->st.fetched;
	}
	sup_in_update_wants(in);
	sup_timer_arm_in(lp, t, IN_TICK_NS);
}

/* ---- life ------------------------------------------------------------------ */

static void add_cons(struct sup_intake *in, enum in_cons_kind kind, int tier, const char *agent)
{
	struct in_cons *c = &in->cons[in->ncons++];

	c->kind = kind;
	c->tier = tier;
	if (kind == IN_C_TIER) {
		snprintf(c->durable, sizeof(c->durable), "%s_tier%d", in->cprefix, tier);
		snprintf(c->subject, sizeof(c->subject), "%s.task.tier.%d", in->prefix, tier);
	} else if (kind == IN_C_RUN) {
		snprintf(c->durable, sizeof(c->durable), "%s_run", in->cprefix);
		snprintf(c->subject, sizeof(c->subject), "%s.run.*", in->prefix);
	} else {
		snprintf(c->agent, sizeof(c->agent), "%s", agent);
		snprintf(c->durable, sizeof(c->durable), "%s_agent_%s", in->cprefix, agent);
		snprintf(c->subject, sizeof(c->subject), "%s.task.agent.%s", in->prefix, agent);
	}
}

struct sup_intake *sup_intake_new(const struct sup_intake_env *env, char *err, size_t errlen)
{
	struct sup_intake *in = calloc(1, sizeof(*in));
	const struct sup_fleet *f = env->fleet;
	int r;

	if (!in) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->env = *env;
	in->conf = *env->conf;
	/* A reload may free the configuration: what is used later is ours. */
	in->own[0] = strdup(env->conf->servers);
	in->own[1] = strdup(sup_fleet_subject_prefix(env->conf));
	in->own[2] = strdup(sup_fleet_consumer_prefix(env->conf));
	in->own[3] = strdup(sup_fleet_tasks_stream(env->conf));
	in->own[4] = strdup(sup_fleet_results_stream(env->conf));
	in->efd = -1;
	if (!in->own[0] || !in->own[1] || !in->own[2] || !in->own[3] || !in->own[4]) {
		for (int i = 0; i < 5; i++)
			free(in->own[i]);
		free(in);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->conf.servers = in->own[0];
	in->prefix = in->own[1];
	in->cprefix = in->own[2];
	in->tasks_stream = in->own[3];
	in->results_stream = in->own[4];
	in->env.conf = NULL;
	if (env->conf->node)
		snprintf(in->node, sizeof(in->node), "%s", env->conf->node);
	else if (gethostname(in->node, sizeof(in->node) - 1) < 0 || !in->node[0])
		snprintf(in->node, sizeof(in->node), "node");
	pthread_mutex_init(&in->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_cond_init(&in->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	for (int t = 1; t <= SUP_NTIERS; t++)
		add_cons(in, IN_C_TIER, t, NULL);
	if (in->conf.max_runs)
		add_cons(in, IN_C_RUN, 0, NULL);
	/* One consumer per agent this node has; a name that is not one
	 * subject token (a '.') cannot be targeted through the broker. */
	for (size_t i = 0; i < f->n && in->ncons < IN_CONS_MAX; i++) {
		const char *n = f->agents[i]->name;

		if (sup_in_token_ok(n, strlen(n), SUP_IN_NAME_MAX))
			add_cons(in, IN_C_AGENT, 0, n);
	}
	in->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (in->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	sup_ev_init(&in->efd_ev, efd_ready, in);
	r = sup_loop_poll(env->loop, &in->efd_ev, in->efd, POLLIN, true);
	if (r < 0) {
		snprintf(err, errlen, "polling the intake's eventfd: %s", strerror(-r));
		goto fail;
	}
	in->efd_armed = true;
	sup_defer_init(&in->wants_df, wants_deferred, in);
	sup_timer_init(&in->timer, tick, in);
	sup_timer_arm_in(env->loop, &in->timer, IN_TICK_NS);
	in->rate_t0 = sup_loop_time(env->loop);
	if (sup_in_nats_start(in, err, errlen) < 0)
		goto fail;
	/* Read at connect only (libnats keeps its own copies). */
	in->conf.credentials = in->conf.nkey_seed = NULL;
	in->conf.tls_cert = in->conf.tls_key = in->conf.tls_ca = NULL;
	in->conf.tasks_stream = in->conf.results_stream = NULL;
	in->conf.subject_prefix = in->conf.consumer_prefix = in->conf.node = NULL;
	return in;
fail:
	sup_intake_free(in);
	errno = EINVAL;
	return NULL;
}

void sup_intake_free(struct sup_intake *in)
{
	struct in_ev *ev, *next;

	if (!in)
		return;
	sup_in_nats_stop(in);
	sup_timer_disarm(in->env.loop, &in->timer);
	if (in->efd_armed)
		sup_loop_cancel(in->env.loop, &in->efd_ev);
	for (ev = in->q_head; ev; ev = next) {
		next = ev->next;
		natsMsg_Destroy(ev->msg);
		free(ev);
	}
	while (in->head)
		sup_in_lease_free(in->head);
	/* The eventfd stays open if its poll is still in flight: the loop's
	 * cancellation completes on it; closed at exit. */
	if (in->efd >= 0 && !in->efd_armed)
		close(in->efd);
	pthread_mutex_destroy(&in->mu);
	pthread_cond_destroy(&in->cv);
	for (int i = 0; i < 5; i++)
		free(in->own[i]);
	free(in);
}

/* ---- drain, status ---------------------------------------------------------- */

bool sup_intake_drain(struct sup_intake *in)
{
	if (!in->draining) {
		in->draining = true;
		in->drained_sent = false;
		sup_in_update_wants(in);
	}
	return sup_intake_drained(in);
}

bool sup_intake_drained(const struct sup_intake *in)
{
	return in->draining && in->nleases == 0;
}

void sup_intake_undrain(struct sup_intake *in)
{
	in->draining = false;
	in->drained_sent = false;
	sup_in_update_wants(in);
}

void sup_intake_stats(const struct sup_intake *in, struct sup_intake_stats *ret)
{
	struct timespec ts;

	*ret = in->st;
	ret->connected = in->was_connected;
	ret->draining = in->draining;
	ret->leases = in->nleases;
	ret->thread_cpu_s = 0;
	if (in->thr_clock_ok && clock_gettime(in->thr_clock, &ts) == 0)
		ret->thread_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

json_t *sup_intake_status(struct sup_intake *in)
{
	struct sup_intake_stats s;
	json_t *o, *cons = json_array();

	sup_intake_stats(in, &s);
	pthread_mutex_lock(&in->mu);
	for (size_t i = 0; cons && i < in->ncons; i++) {
		const struct in_cons *c = &in->cons[i];

		json_array_append_new(cons, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:i}",
			"name", c->durable, "subject", c->subject,
			"pending", (json_int_t)c->pending, "ack_pending", (json_int_t)c->ack_pending,
			"redelivered", (json_int_t)c->redelivered, "fetched", (json_int_t)c->fetched,
			"want", (int)c->want, "outstanding", (int)c->outstanding));
	}
	o = json_pack("{s:b, s:s, s:s, s:s, s:{s:{s:s, s:I, s:I}, s:{s:s, s:I, s:I}}, s:o, "
		      "s:i, s:b, s:b}",
		"connected", s.connected, "servers", in->conf.servers, "node", in->node,
		"last_error", in->last_error,
		"streams", "tasks", "name", in->tasks_stream, "messages",
		(json_int_t)in->stream_msgs, "bytes", (json_int_t)in->stream_bytes,
		"results", "name", in->results_stream, "messages", (json_int_t)in->results_msgs,
		"bytes", (json_int_t)in->results_bytes,
		"consumers", cons ? cons : json_array(),
		"leases", (int)s.leases, "draining", s.draining, "drained",
		sup_intake_drained(in));
	pthread_mutex_unlock(&in->mu);
	if (!o)
		return NULL;
	json_object_set_new(o, "fetched", json_integer((json_int_t)s.fetched));
	json_object_set_new(o, "acked", json_integer((json_int_t)s.acked));
	json_object_set_new(o, "termed", json_integer((json_int_t)s.termed));
	json_object_set_new(o, "naked", json_integer((json_int_t)s.naked));
	json_object_set_new(o, "duplicates", json_integer((json_int_t)s.duplicates));
	json_object_set_new(o, "results_published", json_integer((json_int_t)s.published));
	json_object_set_new(o, "publish_errors", json_integer((json_int_t)s.publish_errors));
	json_object_set_new(o, "in_progress", json_integer((json_int_t)s.in_progress));
	json_object_set_new(o, "poison", json_integer((json_int_t)s.poison));
	json_object_set_new(o, "rejected", json_integer((json_int_t)s.rejected));
	json_object_set_new(o, "runs", json_integer(in->nruns));
	json_object_set_new(o, "fetch_rate", json_real(in->fetch_rate));
	/* A thread of tierd: its CPU is in tierd's too. */
	json_object_set_new(o, "thread_cpu_s", json_real(s.thread_cpu_s));
	return o;
}

/* ---- the upgrade's quiesce ---------------------------------------------------- */

bool sup_intake_quiet(struct sup_intake *in)
{
	bool parked;

	if (!in->quiescing) {
		in->quiescing = true;
		in->quiesce_since = sup_in_now(in);
		sup_in_update_wants(in);
		pthread_mutex_lock(&in->mu);
		in->park = true;
		pthread_cond_broadcast(&in->cv);
		pthread_mutex_unlock(&in->mu);
	}
	pthread_mutex_lock(&in->mu);
	parked = in->parked || !in->thr_started;
	pthread_mutex_unlock(&in->mu);
	if (!parked)
		return false;
	/* What the thread handed over and the PubAcks that came back. */
	take_events(in);
	{
		bool waiting = false;

		for (struct in_lease *l = in->head; l; l = l->next)
			waiting |= l->state == IN_L_PUBLISHING && l->published;
		/* Results still unacknowledged go in the handover (republished
		 * by the next binary); wait a little for their PubAcks first. */
		if (waiting && in->was_connected &&
		    sup_in_now(in) - in->quiesce_since < 2 * SUP_NS_PER_SEC)
			return false;
	}
	sup_in_flush(in, 1000);
	if (in->efd_armed) {
		sup_loop_cancel(in->env.loop, &in->efd_ev);
		return false;
	}
	return sup_ev_idle(&in->efd_ev);
}

void sup_intake_resume(struct sup_intake *in)
{
	if (!in->quiescing)
		return;
	in->quiescing = false;
	pthread_mutex_lock(&in->mu);
	in->park = false;
	pthread_cond_broadcast(&in->cv);
	pthread_mutex_unlock(&in->mu);
	if (!in->efd_armed && sup_loop_poll(in->env.loop, &in->efd_ev, in->efd, POLLIN, true) == 0)
		in->efd_armed = true;
	take_events(in);
}
