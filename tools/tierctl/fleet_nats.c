/* SPDX-License-Identifier: MIT */
/* tierctl fleet: the libnats side (connect, publish a task, read a result). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "fleet.h"

#define SERVERS_MAX 16
#define CONNECT_TIMEOUT_MS 3000
/* How long one JetStream API call (publish, get) may wait for its reply. */
#define API_WAIT_MS 5000
/* A result wait re-reads the stream this often even without a wake-up (a
 * reconnect loses core messages). */
#define RECHECK_MS 1000

struct tctl_nats {
	natsConnection *nc;
	jsCtx          *js;
	char            prefix[256];
	char            results[256];
};

static void nats_err(natsStatus s, const char *what, char *err, size_t errlen)
{
	const char *last = nats_GetLastError(NULL);

	snprintf(err, errlen, "%s: %s%s%s", what, natsStatus_GetText(s),
		 last && *last ? ": " : "", last && *last ? last : "");
}

/* "a,b,c" into urls[] (pointers into buf). */
static int split_servers(const char *s, char *buf, size_t buflen, const char **urls, int *n,
			 char *err, size_t errlen)
{
	char *save = NULL, *tok;

	if (strlen(s) >= buflen) {
		snprintf(err, errlen, "--servers is longer than %zu bytes", buflen - 1);
		return -EINVAL;
	}
	strcpy(buf, s);
	*n = 0;
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (*n == SERVERS_MAX) {
			snprintf(err, errlen, "more than %d servers given", SERVERS_MAX);
			return -EINVAL;
		}
		if (strncmp(tok, "nats://", 7) && strncmp(tok, "tls://", 6)) {
			snprintf(err, errlen, "server '%s' is not a nats:// or tls:// URL", tok);
			return -EINVAL;
		}
		urls[(*n)++] = tok;
	}
	if (!*n) {
		snprintf(err, errlen, "no server given");
		return -EINVAL;
	}
	return 0;
}

static natsStatus set_auth(natsOptions *no, const struct tctl_fleet_conn_opts *o, const char **what)
{
	natsStatus s = NATS_OK;

	if (o->credentials) {
		*what = "reading the credentials file";
		s = natsOptions_SetUserCredentialsFromFiles(no, o->credentials, NULL);
	}
	if (s == NATS_OK && o->nkey_seed) {
		*what = "reading the nkey seed file";
		s = natsOptions_SetNKeyFromSeed(no, o->nkey_public, o->nkey_seed);
	}
	if (s == NATS_OK && (o->tls_cert || o->tls_ca)) {
		*what = "setting up TLS";
		s = natsOptions_SetSecure(no, true);
	}
	if (s == NATS_OK && o->tls_ca) {
		*what = "loading the TLS CA file";
		s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca);
	}
	if (s == NATS_OK && o->tls_cert) {
		*what = "loading the TLS certificate and key";
		s = natsOptions_LoadCertificatesChain(no, o->tls_cert, o->tls_key);
	}
	return s;
}

int tctl_nats_open(struct tctl_nats **ret, const struct tctl_fleet_conn_opts *o, char *err,
		   size_t errlen)
{
	const char *urls[SERVERS_MAX], *what = "setting the connection options";
	char buf[4096];
	struct tctl_nats *n;
	natsOptions *no = NULL;
	jsOptions jo;
	natsStatus s;
	int nurls, r;

	r = split_servers(o->servers, buf, sizeof(buf), urls, &nurls, err, errlen);
	if (r < 0)
		return r;
	if (!!o->nkey_seed != !!o->nkey_public) {
		snprintf(err, errlen, "--nkey-seed and --nkey-public go together");
		return -EINVAL;
	}
	if (o->tls_key && !o->tls_cert) {
		snprintf(err, errlen, "--tls-key without --tls-cert");
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(n->prefix, sizeof(n->prefix), "%s", o->prefix);
	snprintf(n->results, sizeof(n->results), "%s", o->results_stream);
	s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsOptions_SetServers(no, urls, nurls);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(no, CONNECT_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, "tierctl");
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(no, 5);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(no, 200);
	if (s == NATS_OK)
		s = set_auth(no, o, &what);
	if (s != NATS_OK) {
		nats_err(s, what, err, errlen);
		goto fail;
	}
	s = natsConnection_Connect(&n->nc, no);
	if (s != NATS_OK) {
		nats_err(s, "connecting to the NATS servers", err, errlen);
		if (s == NATS_NO_SERVER)
			snprintf(err + strlen(err), errlen - strlen(err),
				 " (is a nats-server listening at %s? set --servers or $%s)",
				 o->servers, TCTL_FLEET_SERVERS_ENV);
		goto fail;
	}
	jsOptions_Init(&jo);
	jo.Wait = API_WAIT_MS;
	s = natsConnection_JetStream(&n->js, n->nc, &jo);
	if (s != NATS_OK) {
		nats_err(s, "opening a JetStream context", err, errlen);
		goto fail;
	}
	natsOptions_Destroy(no);
	*ret = n;
	return 0;
fail:
	natsOptions_Destroy(no);
	tctl_nats_close(n);
	return -EIO;
}

void tctl_nats_close(struct tctl_nats *n)
{
	if (!n)
		return;
	jsCtx_Destroy(n->js);
	if (n->nc) {
		natsConnection_Close(n->nc);
		natsConnection_Destroy(n->nc);
	}
	free(n);
}

static natsStatus set_header(natsMsg *m, const char *k, const char *v)
{
	return v ? natsMsgHeader_Set(m, k, v) : NATS_OK;
}

int tctl_nats_submit(struct tctl_nats *n, const struct tctl_fleet_task *t, uint64_t *ret_id,
		     bool *ret_dup, char *err, size_t errlen)
{
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus s;

	if (t->len > INT32_MAX) {
		snprintf(err, errlen, "the payload is too large for one message");
		return -EMSGSIZE;
	}
	s = natsMsg_Create(&m, t->subject, NULL, t->payload, (int)t->len);
	if (s == NATS_OK)
		s = set_header(m, "Tierd-Type", t->type);
	if (s == NATS_OK)
		s = set_header(m, "Tierd-Timeout", t->timeout);
	if (s == NATS_OK)
		s = set_header(m, "Tierd-Deadline", t->deadline);
	if (s == NATS_OK)
		s = set_header(m, "Tierd-Context", t->context);
	if (s != NATS_OK) {
		nats_err(s, "building the message", err, errlen);
		natsMsg_Destroy(m);
		return -ENOMEM;
	}
	jsPubOptions_Init(&po);
	po.MsgId = t->key;
	po.MaxWait = API_WAIT_MS;
	s = js_PublishMsg(&pa, n->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr) {
		snprintf(err, errlen, "no stream takes subject %s: has a tierd node with a [fleet] "
			 "section and this subject prefix started (the first one creates the "
			 "streams)?", t->subject);
		return -ENOENT;
	}
	if (s != NATS_OK) {
		nats_err(s, "publishing the task", err, errlen);
		if (jerr)
			snprintf(err + strlen(err), errlen - strlen(err), " (JetStream error %d)",
				 (int)jerr);
		return -EIO;
	}
	*ret_id = pa->Sequence;
	*ret_dup = pa->Duplicate;
	jsPubAck_Destroy(pa);
	return 0;
}

/* The stored result, once: 0, -ENOENT, or -errno. */
static int get_stored(struct tctl_nats *n, const char *subj, json_t **ret, char *err,
		      size_t errlen)
{
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	json_error_t je;
	natsStatus s;
	json_t *v;

	s = js_GetLastMsg(&m, n->js, n->results, subj, NULL, &jerr);
	if (jerr == JSStreamNotFoundErr) {
		snprintf(err, errlen, "there is no results stream %s", n->results);
		return -ENOENT;
	}
	if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
		snprintf(err, errlen, "no result stored on %s yet", subj);
		return -ENOENT;
	}
	if (s != NATS_OK) {
		nats_err(s, "reading the results stream", err, errlen);
		return -EIO;
	}
	v = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &je);
	natsMsg_Destroy(m);
	if (!json_is_object(v)) {
		snprintf(err, errlen, "the result stored on %s is not a JSON object: %s", subj,
			 v ? "another JSON value" : je.text);
		json_decref(v);
		return -EPROTO;
	}
	*ret = v;
	return 0;
}

int tctl_nats_result(struct tctl_nats *n, uint64_t id, int64_t wait_ms, json_t **ret, char *err,
		     size_t errlen)
{
	natsSubscription *sub = NULL;
	int64_t end = wait_ms < 0 ? INT64_MAX : nats_Now() + wait_ms;
	char subj[320];
	natsStatus s;
	int r;

	snprintf(subj, sizeof(subj), "%s.result.%" PRIu64, n->prefix, id);
	/* Subscribe first, then look: a result stored between the two still
	 * wakes us. The message is only a wake-up: a late duplicate publish
	 * reaches core subscribers too, though the stream refused it, so what
	 * counts is what the stream holds. */
	if (wait_ms != 0) {
		s = natsConnection_SubscribeSync(&sub, n->nc, subj);
		if (s == NATS_OK)
			s = natsConnection_Flush(n->nc);
		if (s != NATS_OK) {
			nats_err(s, "subscribing to the result", err, errlen);
			natsSubscription_Destroy(sub);
			return -EIO;
		}
	}
	for (;;) {
		natsMsg *m = NULL;
		int64_t now, left;

		r = get_stored(n, subj, ret, err, errlen);
		if (r != -ENOENT || wait_ms == 0 || strstr(err, "no results stream"))
			break;
		now = nats_Now();
		if (now >= end) {
			snprintf(err, errlen, "no result for task %" PRIu64 " within %.1fs", id,
				 (double)wait_ms / 1000);
			r = -ETIMEDOUT;
			break;
		}
		left = end - now < RECHECK_MS ? end - now : RECHECK_MS;
		s = natsSubscription_NextMsg(&m, sub, left);
		natsMsg_Destroy(m);
		if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_CONNECTION_DISCONNECTED &&
		    s != NATS_CONNECTION_CLOSED) {
			nats_err(s, "waiting for the result", err, errlen);
			r = -EIO;
			break;
		}
		if (s == NATS_CONNECTION_CLOSED) {
			snprintf(err, errlen, "lost the connection to the NATS servers while waiting "
				 "for task %" PRIu64, id);
			r = -ECONNRESET;
			break;
		}
		if (s == NATS_CONNECTION_DISCONNECTED)
			nats_Sleep(100);
	}
	natsSubscription_Destroy(sub);
	return r;
}
