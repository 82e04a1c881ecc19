/* SPDX-License-Identifier: MIT */
/*
 * The plain worker of the fleet benchmark (bench/fleet_bench.c): one
 * libnats pull consumer doing what tierd's intake does per task, with no
 * tierd: fetch one message, "work" (a no-op: the payload is the result),
 * publish the result to PREFIX.result.<seq> with Nats-Msg-Id and wait for
 * its PubAck, then ack the task. Until SIGTERM.
 *
 *   fleet-worker URL STREAM CONSUMER SUBJECT PREFIX NAME
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int fail(const char *what, natsStatus s)
{
	const char *last = nats_GetLastError(NULL);

	fprintf(stderr, "fleet-worker: %s: %s%s%s\n", what, natsStatus_GetText(s),
		last && *last ? ": " : "", last && *last ? last : "");
	return 1;
}

/* One task: the result body, its publish (PubAck awaited), the ack. */
static natsStatus one(jsCtx *js, natsMsg *m, const char *prefix, const char *name)
{
	char subj[256], body[512], id[32];
	jsMsgMetaData *meta = NULL;
	natsMsg *res = NULL;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	int len, plen = natsMsg_GetDataLength(m);

	s = natsMsg_GetMetaData(&meta, m);
	if (s != NATS_OK)
		return s;
	snprintf(id, sizeof(id), "%" PRIu64, meta->Sequence.Stream);
	snprintf(subj, sizeof(subj), "%s.result.%s", prefix, id);
	len = snprintf(body, sizeof(body),
		       "{\"task\":%s,\"status\":\"ok\",\"node\":\"pool\",\"agent\":\"%s\","
		       "\"deliveries\":%" PRIu64 ",\"payload\":\"%.*s\"}",
		       id, name, meta->NumDelivered, plen > 200 ? 200 : plen, natsMsg_GetData(m));
	jsMsgMetaData_Destroy(meta);
	s = natsMsg_Create(&res, subj, NULL, body, len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(res, "Nats-Msg-Id", id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(res, "Tierd-Status", "ok");
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, js, res, NULL, &jerr);
	natsMsg_Destroy(res);
	jsPubAck_Destroy(pa);
	/* A result already stored (a redelivery) is refused: ack all the same. */
	if (s != NATS_OK && jerr != JSStreamStoreFailedErr)
		return s;
	return natsMsg_Ack(m, NULL);
}

int main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsCtx *js = NULL;
	natsStatus s;

	if (argc != 7) {
		fprintf(stderr, "usage: fleet-worker URL STREAM CONSUMER SUBJECT PREFIX NAME\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s != NATS_OK)
		return fail("connect", s);
	s = natsConnection_JetStream(&js, nc, NULL);
	if (s != NATS_OK)
		return fail("jetstream", s);
	jsSubOptions_Init(&so);
	so.Stream = argv[2];
	so.Consumer = argv[3];
	s = js_PullSubscribe(&sub, js, argv[4], argv[3], NULL, &so, NULL);
	if (s != NATS_OK)
		return fail("pull subscribe", s);
	while (!stop) {
		natsMsgList list = { 0 };

		s = natsSubscription_Fetch(&list, sub, 1, 200, NULL);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			if (stop)
				break;
			nats_Sleep(10);
			continue;
		}
		for (int i = 0; i < list.Count; i++) {
			s = one(js, list.Msgs[i], argv[5], argv[6]);
			if (s != NATS_OK)
				fprintf(stderr, "fleet-worker %s: %s\n", argv[6], natsStatus_GetText(s));
		}
		natsMsgList_Destroy(&list);
	}
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Close(nc);
	natsConnection_Destroy(nc);
	return 0;
}
