/* SPDX-License-Identifier: MIT */
/*
 * intake_lease — the loop's side of each broker task this node holds (a
 * "lease": JetStream's, until acked or AckWait passes): the message taken
 * from the thread becomes a task or a run; its end becomes a result
 * published to <prefix>.result.<seq>; the result's PubAck (or "already
 * stored") acks, terms or naks the task message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "../tasks.h"
#include "../workflow.h"

static size_t hslot(uint64_t seq)
{
	return (size_t)((seq * 0x9E3779B97F4A7C15ull) >> 54) % IN_HASH;
}

struct in_lease *sup_in_lease_find(struct sup_intake *in, uint64_t seq)
{
	for (struct in_lease *l = in->hash[hslot(seq)]; l; l = l->hnext)
		if (l->seq == seq)
			return l;
	return NULL;
}

struct in_lease *sup_in_lease_new(struct sup_intake *in, uint64_t seq)
{
	struct in_lease *l = calloc(1, sizeof(*l));
	size_t h = hslot(seq);

	if (!l)
		return NULL;
	l->in = in;
	l->seq = seq;
	l->hnext = in->hash[h];
	in->hash[h] = l;
	l->next = in->head;
	if (in->head)
		in->head->prev = l;
	in->head = l;
	in->nleases++;
	return l;
}

void sup_in_lease_free(struct in_lease *l)
{
	struct sup_intake *in = l->in;
	struct in_lease **pp = &in->hash[hslot(l->seq)];

	while (*pp && *pp != l)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = l->hnext;
	if (l->prev)
		l->prev->next = l->next;
	else
		in->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	if (l->is_run && in->nruns)
		in->nruns--;
	in->nleases--;
	free(l->reply);
	free(l->subject);
	free(l->result);
	free(l);
}

void sup_in_publish(struct in_lease *l)
{
	struct sup_intake *in = l->in;

	l->published = 0;
	if (sup_in_publish_result(in, l) == 0) {
		l->published = sup_in_now(in);
		in->st.published++;
	} else {
		in->st.publish_errors++;
	}
}

/* The result is ready: keep its JSON, publish it. Takes o. */
static void set_result(struct in_lease *l, json_t *o, const char *status, enum in_verb verb)
{
	struct sup_intake *in = l->in;

	json_object_set_new(o, "task", json_integer((json_int_t)l->seq));
	json_object_set_new(o, "node", json_string(in->node));
	json_object_set_new(o, "deliveries", json_integer(l->deliveries));
	if (l->subject)
		json_object_set_new(o, "subject", json_string(l->subject));
	if (l->key[0])
		json_object_set_new(o, "key", json_string(l->key));
	free(l->result);
	l->result = json_dumps(o, JSON_COMPACT);
	l->result_len = l->result ? strlen(l->result) : 0;
	json_decref(o);
	snprintf(l->status, sizeof(l->status), "%s", status);
	l->state = IN_L_PUBLISHING;
	l->verb = verb;
	if (!l->result) {
		/* No memory for the result: leave the message to the broker. */
		sup_in_reply(in, l->reply, "-NAK");
		in->st.naked++;
		sup_in_lease_free(l);
		return;
	}
	sup_in_publish(l);
}

void sup_in_finish_local(struct in_lease *l, const char *status, const char *why,
			 enum in_verb verb)
{
	json_t *o = json_object();

	if (!o) {
		sup_in_reply(l->in, l->reply, "-NAK");
		sup_in_lease_free(l);
		return;
	}
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "error", json_string(why));
	json_object_set_new(o, "agent", json_string(""));
	set_result(l, o, status, verb);
}

bool sup_in_task_done(struct sup_tasks *ts, struct sup_task *t, void *arg)
{
	struct in_lease *l = arg;
	struct sup_intake *in = l->in;
	struct sup_task_info i;
	json_t *o;

	sup_task_info(t, &i);
	/* Refused here for want of room (a full queue, a draining agent):
	 * another node may have it; the broker redelivers it at once. */
	if (i.status == TIER_ST_REJECTED) {
		sup_in_reply(in, l->reply, "-NAK");
		in->st.naked++;
		sup_in_lease_free(l);
		sup_defer_queue(in->env.loop, &in->wants_df);
		return false;
	}
	o = sup_task_info_json(&i);
	if (!o) {
		sup_in_reply(in, l->reply, "-NAK");
		sup_in_lease_free(l);
		return false;
	}
	json_object_set_new(o, "local", json_integer((json_int_t)i.id));
	set_result(l, o, sup_task_status_name(i.status), IN_ACK);
	sup_defer_queue(in->env.loop, &in->wants_df);
	return false;
}

void sup_in_run_done(struct sup_wf *wf, struct sup_run *run, json_t *aggregate, void *arg)
{
	struct in_lease *l = arg;
	struct sup_intake *in = l->in;
	json_t *o = json_object(), *st = json_object_get(aggregate, "status");
	const char *status = json_is_string(st) ? json_string_value(st) : "ok";

	if (!o)
		return;
	json_object_set_new(o, "run", json_integer((json_int_t)l->run));
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "aggregate", json_incref(aggregate));
	if (in->nruns)
		in->nruns--;
	l->is_run = false;
	set_result(l, o, status, IN_ACK);
	sup_defer_queue(in->env.loop, &in->wants_df);
}

/* Header block size as it went on the wire (close enough: name, ": ",
 * value, CRLF per header). */
static size_t headers_size(natsMsg *m)
{
	const char **keys = NULL;
	int nk = 0;
	size_t n = 12;

	if (natsMsgHeader_Keys(m, &keys, &nk) != NATS_OK)
		return 0;
	for (int i = 0; i < nk; i++) {
		const char **vals = NULL;
		int nv = 0;

		if (natsMsgHeader_Values(m, keys[i], &vals, &nv) == NATS_OK) {
			for (int j = 0; j < nv; j++)
				n += strlen(keys[i]) + 4 + strlen(vals[j]);
			free((void *)vals);
		}
	}
	free((void *)keys);
	return n;
}

static int parse_headers(natsMsg *m, struct sup_in_msg *pm, char *err, size_t errlen)
{
	static const char *const known[] = { "Tierd-Type", "Tierd-Timeout", "Tierd-Deadline",
					     "Nats-Msg-Id", "Tierd-Context" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const char *v = NULL;

		if (natsMsgHeader_Get(m, known[i], &v) != NATS_OK || !v)
			continue;
		if (sup_in_parse_header(pm, known[i], v, strlen(v), err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

static int64_t unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(struct sup_intake *in, struct in_lease *l, natsMsg *msg)
{
	struct sup_in_msg pm;
	char err[256];
	size_t hl = headers_size(msg), dl = (size_t)natsMsg_GetDataLength(msg);
	int64_t timeout;

	if (hl > in->conf.max_header_bytes) {
		snprintf(err, sizeof(err), "headers of %zu bytes: more than max_header_bytes (%u)",
			 hl, in->conf.max_header_bytes);
		goto reject;
	}
	if (hl + dl > in->conf.max_message_bytes) {
		snprintf(err, sizeof(err), "message of %zu bytes: more than max_message_bytes (%u)",
			 hl + dl, in->conf.max_message_bytes);
		goto reject;
	}
	if (sup_in_parse_subject(in->prefix, natsMsg_GetSubject(msg), &pm, err, sizeof(err)) < 0 ||
	    parse_headers(msg, &pm, err, sizeof(err)) < 0)
		goto reject;
	snprintf(l->key, sizeof(l->key), "%s", pm.key);
	if (l->deliveries >= in->conf.max_deliver) {
		in->st.poison++;
		snprintf(err, sizeof(err), "poison: delivered %u times (max_deliver), no result "
			 "stored", l->deliveries);
		sup_in_finish_local(l, "crashed", err, IN_TERM);
		return;
	}
	timeout = sup_in_timeout(&pm, unix_ms());
	if (timeout < 0) {
		sup_in_finish_local(l, "timeout", "the deadline (Tierd-Deadline) passed before the "
				    "task started", IN_ACK);
		return;
	}
	if (pm.kind == SUP_IN_RUN) {
		struct sup_run_opts o = {
			.type = pm.name, .payload = natsMsg_GetData(msg), .len = dl,
			.stagger_ns = -1, .timeout_ns = timeout, .done = sup_in_run_done, .done_arg = l,
		};
		int64_t id = sup_wf_start(in->env.wf, &o, err, sizeof(err));

		if (id < 0)
			goto reject;
		l->run = (uint64_t)id;
		l->is_run = true;
		in->nruns++;
		return;
	}
	{
		struct sup_task_spec spec = {
			.agent = pm.kind == SUP_IN_AGENT ? pm.name : NULL,
			.tier = pm.kind == SUP_IN_TIER ? pm.tier : 0,
			.type = pm.type, .type_len = pm.type_len,
			.payload = natsMsg_GetData(msg), .len = dl,
			.context = pm.context, .context_len = pm.context_len,
			.timeout_ns = timeout, .done = sup_in_task_done, .done_arg = l,
			.journal = false,
		};
		uint64_t seq = l->seq;
		int64_t id;

		l->state = IN_L_RUNNING;
		id = sup_tasks_submit(in->env.tasks, &spec, err, sizeof(err));
		if (id == -ENOENT || id == -ECANCELED) {
			/* No such agent here any more (a reload took it), or
			 * shutting down: another node may take it. */
			sup_in_reply(in, l->reply, "-NAK");
			in->st.naked++;
			sup_in_lease_free(l);
			return;
		}
		if (id < 0)
			goto reject;
		/* The done callback may have run already (and freed l). */
		l = sup_in_lease_find(in, seq);
		if (l && l->state == IN_L_RUNNING)
			l->local = (uint64_t)id;
		return;
	}
reject:
	in->st.rejected++;
	sup_in_finish_local(l, "rejected", err, IN_TERM);
}

void sup_in_take_msg(struct sup_intake *in, int cons, natsMsg *msg)
{
	jsMsgMetaData *md = NULL;
	struct in_lease *l;
	int64_t now = sup_in_now(in);
	const char *reply = natsMsg_GetReply(msg);

	in->st.fetched++;
	if (natsMsg_GetMetaData(&md, msg) != NATS_OK || !md || !reply) {
		/* Not a JetStream message: nothing to ack, nothing to answer. */
		sup_in_log(in, 4, "fleet: a message on %s without JetStream metadata, dropped",
			   natsMsg_GetSubject(msg));
		jsMsgMetaData_Destroy(md);
		natsMsg_Destroy(msg);
		return;
	}
	l = sup_in_lease_find(in, md->Sequence.Stream);
	if (l) {
		/* Redelivered to us while we still hold it (our lease ran out):
		 * the newest delivery's reply subject is the one that acks. */
		char *r = strdup(reply);

		if (r) {
			free(l->reply);
			l->reply = r;
		}
		l->deliveries = (uint32_t)md->NumDelivered;
		jsMsgMetaData_Destroy(md);
		natsMsg_Destroy(msg);
		return;
	}
	l = sup_in_lease_new(in, md->Sequence.Stream);
	if (!l || !(l->reply = strdup(reply)) ||
	    !(l->subject = strdup(natsMsg_GetSubject(msg)))) {
		if (l)
			sup_in_lease_free(l);
		natsConnection_PublishString(in->nc, reply, "-NAK");
		jsMsgMetaData_Destroy(md);
		natsMsg_Destroy(msg);
		return;
	}
	l->deliveries = (uint32_t)md->NumDelivered;
	l->cons = cons;
	l->started = now;
	l->next_wpi = now + (int64_t)(in->conf.in_progress_fraction *
				      (double)in->conf.ack_wait_ns);
	jsMsgMetaData_Destroy(md);
	start(in, l, msg);
	natsMsg_Destroy(msg);
}

void sup_in_puback(struct sup_intake *in, uint64_t seq, int status, const char *err)
{
	struct in_lease *l = sup_in_lease_find(in, seq);
	static const char *const verbs[] = { "+ACK", "+TERM", "-NAK" };

	if (!l || l->state != IN_L_PUBLISHING)
		return;   /* a second PubAck of a republished result */
	if (status < 0) {
		in->st.publish_errors++;
		sup_in_log(in, 4, "fleet: result %llu not stored: %s (retried)",
			   (unsigned long long)seq, err);
		l->published = 0;
		return;
	}
	if (status == 1)
		in->st.duplicates++;
	if (sup_in_reply(in, l->reply, verbs[l->verb]) < 0) {
		/* Not connected: the stored result stays; the task message is
		 * redelivered, and its result refused as a duplicate then. */
		in->st.publish_errors++;
	}
	if (l->verb == IN_TERM)
		in->st.termed++;
	else
		in->st.acked++;
	sup_in_lease_free(l);
	sup_defer_queue(in->env.loop, &in->wants_df);
}
