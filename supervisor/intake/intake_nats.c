/* SPDX-License-Identifier: MIT */
/*
 * intake_nats — the intake's thread and everything of libnats: the
 * connection (reconnecting with backoff), the streams and consumers
 * (created if absent, updated if they differ), the fetches, and the
 * non-blocking publishes the loop makes (results, acks, in-progress).
 *
 * The thread fetches only what the loop said it has room for (each
 * consumer's want minus what was fetched and not yet taken): first a
 * no-wait round over every consumer with room, then, when that found
 * nothing, one waiting fetch of one message on the consumer that last had
 * work, for at most fetch_wait. Every fetched message goes to the loop
 * through sup_in_post; the PubAcks of results come back the same way (from
 * libnats' own thread).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

void sup_in_wake(struct sup_intake *in)
{
	pthread_mutex_lock(&in->mu);
	pthread_cond_broadcast(&in->cv);
	pthread_mutex_unlock(&in->mu);
}

void sup_in_post(struct sup_intake *in, struct in_ev *ev)
{
	uint64_t one = 1;
	bool first;

	ev->next = NULL;
	pthread_mutex_lock(&in->mu);
	first = !in->q_head;
	if (in->q_tail)
		in->q_tail->next = ev;
	else
		in->q_head = ev;
	in->q_tail = ev;
	in->q_n++;
	pthread_mutex_unlock(&in->mu);
	if (first && write(in->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero; the loop will look. */
	}
}

static void post_simple(struct sup_intake *in, enum in_ev_kind kind)
{
	struct in_ev *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return;
	ev->kind = kind;
	sup_in_post(in, ev);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct sup_intake *in = closure;

	pthread_mutex_lock(&in->mu);
	in->connected = false;
	pthread_mutex_unlock(&in->mu);
	post_simple(in, IN_EV_DISC);
}

static void on_connected(natsConnection *nc, void *closure)
{
	struct sup_intake *in = closure;

	pthread_mutex_lock(&in->mu);
	in->connected = true;
	pthread_cond_broadcast(&in->cv);
	pthread_mutex_unlock(&in->mu);
	post_simple(in, IN_EV_CONN);
}

static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct sup_intake *in = closure;
	struct in_ev *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return;   /* the loop republishes after its timeout */
	ev->kind = IN_EV_PUBACK;
	ev->seq = sup_in_result_seq(in->prefix, natsMsg_GetSubject(msg));
	if (!pae) {
		ev->status = 0;
	} else if (sup_in_is_duplicate_error(pae->ErrText)) {
		ev->status = 1;
	} else {
		ev->status = -1;
		snprintf(ev->err, sizeof(ev->err), "%s", pae->ErrText ? pae->ErrText :
			 natsStatus_GetText(pae->Err));
	}
	sup_in_post(in, ev);
}

static void set_error(struct sup_intake *in, const char *what, natsStatus s, jsErrCode je)
{
	pthread_mutex_lock(&in->mu);
	snprintf(in->last_error, sizeof(in->last_error), "%s: %s (JetStream error %d)", what,
		 natsStatus_GetText(s), (int)je);
	pthread_mutex_unlock(&in->mu);
}

/* ---- streams and consumers ------------------------------------------------ */

static natsStatus ensure_stream(struct sup_intake *in, jsStreamConfig *sc)
{
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	natsStatus s = js_AddStream(&si, in->js, sc, NULL, &je);

	if (s != NATS_OK && je == JSStreamNameExistErr)
		s = js_UpdateStream(&si, in->js, sc, NULL, &je);
	if (s != NATS_OK)
		set_error(in, sc->Name, s, je);
	jsStreamInfo_Destroy(si);
	return s;
}

static natsStatus set_up(struct sup_intake *in)
{
	char tsub[6][160], rsub[160];
	const char *tsubs[6], *rsubs[1] = { rsub };
	jsStreamConfig sc;
	natsStatus s;

	/* Only what some consumer takes: a task for tier 7 is refused at
	 * publish (no stream), not stored for nobody. */
	for (int t = 0; t < SUP_NTIERS; t++)
		snprintf(tsub[t], sizeof(tsub[t]), "%s.task.tier.%d", in->prefix, t + 1);
	snprintf(tsub[4], sizeof(tsub[4]), "%s.task.agent.*", in->prefix);
	snprintf(tsub[5], sizeof(tsub[5]), "%s.run.*", in->prefix);
	for (int i = 0; i < 6; i++)
		tsubs[i] = tsub[i];
	snprintf(rsub, sizeof(rsub), "%s.result.*", in->prefix);
	jsStreamConfig_Init(&sc);
	sc.Name = in->tasks_stream;
	sc.Subjects = tsubs;
	sc.SubjectsLen = 6;
	sc.Retention = js_WorkQueuePolicy;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)in->conf.replicas;
	sc.MaxMsgSize = (int32_t)in->conf.max_message_bytes;
	s = ensure_stream(in, &sc);
	if (s != NATS_OK)
		return s;
	jsStreamConfig_Init(&sc);
	sc.Name = in->results_stream;
	sc.Subjects = rsubs;
	sc.SubjectsLen = 1;
	sc.Retention = js_LimitsPolicy;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)in->conf.replicas;
	sc.MaxMsgsPerSubject = 1;
	sc.Discard = js_DiscardNew;
	sc.DiscardNewPerSubject = true;
	sc.AllowDirect = true;
	sc.MaxAge = in->conf.result_max_age_ns;
	s = ensure_stream(in, &sc);
	if (s != NATS_OK)
		return s;
	for (size_t i = 0; i < in->ncons; i++) {
		struct in_cons *c = &in->cons[i];
		jsConsumerConfig cc;
		jsConsumerInfo *ci = NULL;
		jsSubOptions so;
		jsErrCode je = 0;

		jsConsumerConfig_Init(&cc);
		cc.Durable = c->durable;
		cc.AckPolicy = js_AckExplicit;
		cc.DeliverPolicy = js_DeliverAll;
		cc.AckWait = in->conf.ack_wait_ns;
		cc.MaxDeliver = (int64_t)in->conf.max_deliver;
		cc.FilterSubject = c->subject;
		cc.MaxAckPending = 1000000;
		s = js_AddConsumer(&ci, in->js, in->tasks_stream, &cc, NULL, &je);
		if (s != NATS_OK)
			s = js_UpdateConsumer(&ci, in->js, in->tasks_stream, &cc, NULL, &je);
		jsConsumerInfo_Destroy(ci);
		if (s != NATS_OK) {
			set_error(in, c->durable, s, je);
			return s;
		}
		if (c->sub)
			continue;
		jsSubOptions_Init(&so);
		so.Stream = in->tasks_stream;
		so.Consumer = c->durable;
		s = js_PullSubscribe(&c->sub, in->js, c->subject, c->durable, NULL, &so, &je);
		if (s != NATS_OK) {
			set_error(in, c->durable, s, je);
			return s;
		}
	}
	return NATS_OK;
}

/* Stream and consumer numbers for fleet-status, every few seconds. */
static void refresh_info(struct sup_intake *in)
{
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;

	if (js_GetStreamInfo(&si, in->js, in->tasks_stream, NULL, &je) == NATS_OK && si) {
		pthread_mutex_lock(&in->mu);
		in->stream_msgs = si->State.Msgs;
		in->stream_bytes = si->State.Bytes;
		pthread_mutex_unlock(&in->mu);
	}
	jsStreamInfo_Destroy(si);
	si = NULL;
	if (js_GetStreamInfo(&si, in->js, in->results_stream, NULL, &je) == NATS_OK && si) {
		pthread_mutex_lock(&in->mu);
		in->results_msgs = si->State.Msgs;
		in->results_bytes = si->State.Bytes;
		pthread_mutex_unlock(&in->mu);
	}
	jsStreamInfo_Destroy(si);
	for (size_t i = 0; i < in->ncons; i++) {
		jsConsumerInfo *ci = NULL;

		if (js_GetConsumerInfo(&ci, in->js, in->tasks_stream, in->cons[i].durable, NULL,
				       &je) == NATS_OK && ci) {
			pthread_mutex_lock(&in->mu);
			in->cons[i].pending = ci->NumPending;
			in->cons[i].ack_pending = (uint64_t)ci->NumAckPending;
			in->cons[i].redelivered = (uint64_t)ci->NumRedelivered;
			pthread_mutex_unlock(&in->mu);
		}
		jsConsumerInfo_Destroy(ci);
	}
}

/* ---- the thread ------------------------------------------------------------ */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fetch up to n from c (no_wait, or waiting up to wait_ns): how many came. */
static int fetch(struct sup_intake *in, size_t ci, int n, bool no_wait, int64_t wait_ns)
{
	struct in_cons *c = &in->cons[ci];
	natsMsgList list = { 0 };
	jsFetchRequest fr;
	int got = 0;

	jsFetchRequest_Init(&fr);
	fr.Batch = n;
	fr.NoWait = no_wait;
	fr.Expires = no_wait ? 0 : wait_ns;
	fr.MaxBytes = (int64_t)n * in->conf.max_message_bytes;
	if (natsSubscription_FetchRequest(&list, c->sub, &fr) != NATS_OK)
		return 0;
	for (int i = 0; i < list.Count; i++) {
		struct in_ev *ev = calloc(1, sizeof(*ev));

		if (!ev)
			continue;   /* left to the broker: redelivered after AckWait */
		ev->kind = IN_EV_MSG;
		ev->cons = (int)ci;
		ev->msg = list.Msgs[i];
		list.Msgs[i] = NULL;
		pthread_mutex_lock(&in->mu);
		c->outstanding++;
		c->fetched++;
		pthread_mutex_unlock(&in->mu);
		sup_in_post(in, ev);
		got++;
	}
	natsMsgList_Destroy(&list);
	return got;
}

static void *thread_main(void *arg)
{
	struct sup_intake *in = arg;
	int wants[IN_CONS_MAX];
	size_t hot = 0;
	int64_t next_info = 0;

	pthread_mutex_lock(&in->mu);
	while (!in->stop) {
		bool any = false;

		if (in->park || !in->connected) {
			in->parked = in->park;
			pthread_cond_broadcast(&in->cv);
			pthread_cond_wait(&in->cv, &in->mu);
			continue;
		}
		in->parked = false;
		if (!in->set_up) {
			pthread_mutex_unlock(&in->mu);
			natsStatus s = set_up(in);

			pthread_mutex_lock(&in->mu);
			if (s == NATS_OK) {
				in->set_up = true;
			} else {
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += 2;
				pthread_cond_timedwait(&in->cv, &in->mu, &ts);
			}
			continue;
		}
		for (size_t i = 0; i < in->ncons; i++) {
			struct in_cons *c = &in->cons[i];

			wants[i] = c->want > c->outstanding ? (int)(c->want - c->outstanding) : 0;
			any |= wants[i] > 0;
		}
		pthread_mutex_unlock(&in->mu);
		if (mono_ms() >= next_info) {
			refresh_info(in);
			next_info = mono_ms() + 2000;
		}
		if (any) {
			int got = 0;

			for (size_t i = 0; i < in->ncons; i++)
				if (wants[i] > 0) {
					int g = fetch(in, i, wants[i], true, in->conf.fetch_wait_ns);

					if (g) {
						hot = i;
						got += g;
					}
				}
			if (!got) {
				if (wants[hot] <= 0)
					for (size_t i = 0; i < in->ncons; i++)
						if (wants[i] > 0)
							hot = i;
				int64_t t0 = mono_ms();

				/* A fetch that fails at once (the server refusing
				 * it, a link going down) must not make this loop
				 * spin: wait a little before the next round. */
				if (!fetch(in, hot, 1, false, in->conf.fetch_wait_ns) &&
				    mono_ms() - t0 < 2) {
					struct timespec ts = { 0, 5 * 1000 * 1000 };

					nanosleep(&ts, NULL);
				}
				/* Others with room get their turn next round. */
				hot = (hot + 1 < in->ncons && wants[hot + 1] > 0) ? hot + 1 : hot;
			}
			pthread_mutex_lock(&in->mu);
			continue;
		}
		pthread_mutex_lock(&in->mu);
		if (!in->stop && !in->park) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&in->cv, &in->mu, &ts);
		}
	}
	in->parked = true;
	pthread_cond_broadcast(&in->cv);
	pthread_mutex_unlock(&in->mu);
	return NULL;
}

/* ---- connection ------------------------------------------------------------ */

/* "nats://a:1,b:2" into an array of URLs (nats:// added where absent). */
static char **split_servers(const char *v, int *ret_n)
{
	char **out = calloc(33, sizeof(*out));
	const char *s = v;
	int n = 0;

	if (!out)
		return NULL;
	while (*s && n < 32) {
		size_t len = strcspn(s, ",");
		const char *p = s;

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len && asprintf(&out[n], "%s%.*s", strstr(p, "://") && (size_t)(strstr(p,
				    "://") - p) < len ? "" : "nats://", (int)len, p) >= 0)
			n++;
		s += strcspn(s, ",");
		if (*s == ',')
			s++;
	}
	*ret_n = n;
	return out;
}

static natsStatus set_auth(struct sup_intake *in)
{
	const struct sup_fleet_conf *f = &in->conf;
	natsStatus s = NATS_OK;

	if (f->credentials)
		s = natsOptions_SetUserCredentialsFromFiles(in->opts, f->credentials, NULL);
	if (s == NATS_OK && f->nkey_seed) {
		/* The file: the user's public key (U…) on its first line, its seed
		 * (SU…) after; libnats signs with the seed file. */
		char pub[128] = "";
		FILE *fp = fopen(f->nkey_seed, "re");

		if (!fp)
			return NATS_ERR;
		if (!fgets(pub, sizeof(pub), fp))
			pub[0] = 0;
		fclose(fp);
		pub[strcspn(pub, "\r\n")] = 0;
		s = pub[0] == 'U' ? natsOptions_SetNKeyFromSeed(in->opts, pub, f->nkey_seed) :
				    NATS_INVALID_ARG;
	}
	if (s == NATS_OK && (f->tls_ca || f->tls_cert))
		s = natsOptions_SetSecure(in->opts, true);
	if (s == NATS_OK && f->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(in->opts, f->tls_ca);
	if (s == NATS_OK && f->tls_cert)
		s = natsOptions_LoadCertificatesChain(in->opts, f->tls_cert, f->tls_key);
	return s;
}

int sup_in_nats_start(struct sup_intake *in, char *err, size_t errlen)
{
	jsOptions jo;
	char **urls;
	int n = 0;
	natsStatus s;

	urls = split_servers(in->conf.servers, &n);
	if (!urls || !n) {
		snprintf(err, errlen, "[fleet] servers: no URL");
		free(urls);
		return -EINVAL;
	}
	s = natsOptions_Create(&in->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(in->opts, (const char **)urls, n);
	for (int i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
	if (s == NATS_OK)
		s = natsOptions_SetName(in->opts, in->node);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(in->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(in->opts, 250);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectJitter(in->opts, 250, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(in->opts, 32 << 20);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(in->opts, on_disconnected, in);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(in->opts, on_connected, in);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(in->opts, true, on_connected, in);
	if (s == NATS_OK)
		s = set_auth(in);
	if (s != NATS_OK) {
		snprintf(err, errlen, "[fleet]: the NATS options: %s (%s)", natsStatus_GetText(s),
			 nats_GetLastError(NULL));
		return -EINVAL;
	}
	s = natsConnection_Connect(&in->nc, in->opts);
	if (s == NATS_OK) {
		pthread_mutex_lock(&in->mu);
		in->connected = true;
		pthread_mutex_unlock(&in->mu);
		post_simple(in, IN_EV_CONN);
	} else if (s != NATS_NOT_YET_CONNECTED) {
		snprintf(err, errlen, "[fleet]: connecting: %s", natsStatus_GetText(s));
		return -EIO;
	}
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_puback;
	jo.PublishAsync.AckHandlerClosure = in;
	jo.PublishAsync.MaxPending = 1 << 20;
	jo.PublishAsync.StallWait = 1;
	s = natsConnection_JetStream(&in->js, in->nc, &jo);
	if (s != NATS_OK) {
		snprintf(err, errlen, "[fleet]: JetStream context: %s", natsStatus_GetText(s));
		return -EIO;
	}
	if (pthread_create(&in->thr, NULL, thread_main, in) != 0) {
		snprintf(err, errlen, "[fleet]: the intake thread: %s", strerror(errno));
		return -EAGAIN;
	}
	in->thr_started = true;
	in->thr_clock_ok = pthread_getcpuclockid(in->thr, &in->thr_clock) == 0;
	return 0;
}

void sup_in_nats_stop(struct sup_intake *in)
{
	if (in->thr_started) {
		pthread_mutex_lock(&in->mu);
		in->stop = true;
		pthread_cond_broadcast(&in->cv);
		pthread_mutex_unlock(&in->mu);
		pthread_join(in->thr, NULL);
		in->thr_started = false;
	}
	for (size_t i = 0; i < in->ncons; i++) {
		natsSubscription_Destroy(in->cons[i].sub);
		in->cons[i].sub = NULL;
	}
	if (in->nc) {
		natsConnection_FlushTimeout(in->nc, 500);
		natsConnection_Close(in->nc);
	}
	jsCtx_Destroy(in->js);
	natsConnection_Destroy(in->nc);
	natsOptions_Destroy(in->opts);
	in->js = NULL;
	in->nc = NULL;
	in->opts = NULL;
}

/* ---- what the loop publishes -------------------------------------------------- */

int sup_in_publish_result(struct sup_intake *in, const struct in_lease *l)
{
	char subj[192], id[24];
	natsMsg *m = NULL;
	natsStatus s;

	snprintf(subj, sizeof(subj), "%s.result.%llu", in->prefix, (unsigned long long)l->seq);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)l->seq);
	s = natsMsg_Create(&m, subj, NULL, l->result, (int)l->result_len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Tierd-Status", l->status);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Tierd-Node", in->node);
	if (s == NATS_OK)
		s = js_PublishMsgAsync(in->js, &m, NULL);
	natsMsg_Destroy(m);   /* NULL once libnats took it */
	return s == NATS_OK ? 0 : -EIO;
}

int sup_in_reply(struct sup_intake *in, const char *reply, const char *what)
{
	if (!reply || !*reply)
		return -EINVAL;
	return natsConnection_PublishString(in->nc, reply, what) == NATS_OK ? 0 : -EIO;
}

void sup_in_flush(struct sup_intake *in, int64_t timeout_ms)
{
	if (in->nc)
		natsConnection_FlushTimeout(in->nc, timeout_ms);
}
