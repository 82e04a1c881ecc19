/* SPDX-License-Identifier: MIT */
/*
 * config_fleet — the [fleet] section: the NATS JetStream intake
 * (docs/fleet.md). Its key table, the parsers of its names and URLs, the
 * cross-key checks, defaults, free, dump and compare.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define MS SUP_NS_PER_MS
#define SEC SUP_NS_PER_SEC

/* A stream or consumer name: [A-Za-z0-9_-], 1..max. */
static bool name_ok(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '_' && v[i] != '-')
			return false;
	return true;
}

static int parse_name(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	if (!name_ok(v, (size_t)k->max))
		return -EINVAL;
	return cfg_str_take((char **)((char *)base + k->off), strdup(v));
}

bool sup_fleet_subject_ok(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (!n || n > max || v[0] == '.' || v[n - 1] == '.' || strstr(v, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch <= ' ' || ch >= 0x7f || ch == '*' || ch == '>')
			return false;
	}
	return true;
}

static int parse_prefix(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	if (!sup_fleet_subject_ok(v, (size_t)k->max))
		return -EINVAL;
	return cfg_str_take((char **)((char *)base + k->off), strdup(v));
}

/* nats://, tls:// or a bare host:port; comma-separated, no spaces inside. */
static int parse_servers(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	struct sup_fleet_conf *f = base;
	const char *s = v;
	char q[96];
	size_t n = 0;

	while (*s) {
		size_t len = strcspn(s, ",");
		const char *hp = s, *colon;
		char one[300];

		while (len && isspace((unsigned char)*hp)) {
			hp++;
			len--;
		}
		while (len && isspace((unsigned char)hp[len - 1]))
			len--;
		if (!len || len >= sizeof(one)) {
			cfg_key_error(x, k, "an empty or overlong URL in %s", cfg_quote(v, q, sizeof(q)));
			return 1;
		}
		memcpy(one, hp, len);
		one[len] = 0;
		if (!strncmp(one, "nats://", 7) || !strncmp(one, "tls://", 6)) {
			memmove(one, strstr(one, "//") + 2, strlen(strstr(one, "//") + 2) + 1);
		} else if (strstr(one, "://")) {
			cfg_key_error(x, k, "URL %s: expected the nats:// or tls:// scheme",
				      cfg_quote(one, q, sizeof(q)));
			return 1;
		}
		colon = strrchr(one, ':');
		if (!colon || colon == one || !colon[1] || strspn(colon + 1, "0123456789") !=
		    strlen(colon + 1) || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535 ||
		    strpbrk(one, " \t/?#")) {
			cfg_key_error(x, k, "URL %s: expected [nats://]HOST:PORT (port 1..65535)",
				      cfg_quote(hp, q, sizeof(q)));
			return 1;
		}
		n++;
		s = hp + len;
		s += strcspn(s, ",");
		if (*s == ',')
			s++;
	}
	if (!n || n > 32) {
		cfg_key_error(x, k, "expected 1 to 32 comma-separated nats://HOST:PORT URLs");
		return 1;
	}
	return cfg_str_take(&f->servers, strdup(v));
}

static int dump_fstr(FILE *f, const struct cfg_key *k, const void *base)
{
	const char *v = *(char *const *)((const char *)base + k->off);

	if (!v)
		return 0;
	return fprintf(f, "%s = %s\n", k->name, v) < 0 ? -EIO : 0;
}

#define F(field) offsetof(struct sup_fleet_conf, field)
#define NAME(n, field, mx, what) { .name = n, .type = CT_FN, .off = F(field), .max = mx, \
	.expect = what, .parse = parse_name, .dump = dump_fstr }

static const struct cfg_key fleet_keys[] = {
	{ .name = "servers", .type = CT_FN, .off = F(servers),
	  .expect = "comma-separated nats://HOST:PORT URLs", .parse = parse_servers,
	  .dump = dump_fstr },
	{ .name = "credentials", .type = CT_PATH, .off = F(credentials) },
	{ .name = "nkey_seed", .type = CT_PATH, .off = F(nkey_seed) },
	{ .name = "tls_cert", .type = CT_PATH, .off = F(tls_cert) },
	{ .name = "tls_key", .type = CT_PATH, .off = F(tls_key) },
	{ .name = "tls_ca", .type = CT_PATH, .off = F(tls_ca) },
	NAME("tasks_stream", tasks_stream, 64, "a stream name of [A-Za-z0-9_-], 1..64 characters"),
	NAME("results_stream", results_stream, 64,
	     "a stream name of [A-Za-z0-9_-], 1..64 characters"),
	{ .name = "subject_prefix", .type = CT_FN, .off = F(subject_prefix), .max = 64,
	  .expect = "subject tokens separated by '.', without spaces, '*' or '>' (at most 64 "
		    "characters)", .parse = parse_prefix, .dump = dump_fstr },
	NAME("consumer_prefix", consumer_prefix, 32,
	     "a name of [A-Za-z0-9_-], 1..32 characters"),
	{ .name = "replicas", .type = CT_U32, .off = F(replicas), .min = 1, .max = 5 },
	{ .name = "ack_wait", .type = CT_DUR, .off = F(ack_wait_ns), .min = 1 * SEC,
	  .max = 86400 * SEC },
	{ .name = "max_deliver", .type = CT_U32, .off = F(max_deliver), .min = 2, .max = 1000 },
	{ .name = "fetch_batch_max", .type = CT_U32, .off = F(fetch_batch_max), .min = 1,
	  .max = 4096 },
	{ .name = "fetch_wait", .type = CT_DUR, .off = F(fetch_wait_ns), .min = 1 * MS,
	  .max = 30 * SEC },
	{ .name = "max_message_bytes", .type = CT_U32, .off = F(max_message_bytes), .min = 1024,
	  .max = 8u << 20 },
	{ .name = "max_header_bytes", .type = CT_U32, .off = F(max_header_bytes), .min = 256,
	  .max = 65536 },
	{ .name = "in_progress_fraction", .type = CT_DEC, .off = F(in_progress_fraction),
	  .dmin = 0.05, .dmax = 0.9 },
	{ .name = "max_runs", .type = CT_U32, .off = F(max_runs), .min = 0, .max = 64 },
	{ .name = "result_max_age", .type = CT_DUR, .off = F(result_max_age_ns), .min = 0,
	  .max = 3650 * 86400 * SEC },
	NAME("node", node, 64, "a node name of [A-Za-z0-9_-], 1..64 characters"),
};
#undef F
#undef NAME

const struct cfg_table sup_cfg_fleet_keys = { fleet_keys, sizeof(fleet_keys) / sizeof(fleet_keys[0]) };

void cfg_fleet_defaults(struct sup_fleet_conf *f)
{
	*f = (struct sup_fleet_conf){
		.replicas = 1,
		.ack_wait_ns = SUP_DEF_FLEET_ACK_WAIT_NS,
		.max_deliver = SUP_DEF_FLEET_MAX_DELIVER,
		.fetch_batch_max = SUP_DEF_FLEET_FETCH_BATCH_MAX,
		.fetch_wait_ns = SUP_DEF_FLEET_FETCH_WAIT_NS,
		.max_message_bytes = SUP_DEF_FLEET_MAX_MESSAGE_BYTES,
		.max_header_bytes = SUP_DEF_FLEET_MAX_HEADER_BYTES,
		.in_progress_fraction = SUP_DEF_FLEET_IN_PROGRESS_FRACTION,
		.max_runs = SUP_DEF_FLEET_MAX_RUNS,
	};
}

void cfg_fleet_free(struct sup_fleet_conf *f)
{
	free(f->servers);
	free(f->credentials);
	free(f->nkey_seed);
	free(f->tls_cert);
	free(f->tls_key);
	free(f->tls_ca);
	free(f->tasks_stream);
	free(f->results_stream);
	free(f->subject_prefix);
	free(f->consumer_prefix);
	free(f->node);
}

/* Keys that only make sense together. */
void cfg_fleet_check(struct cfg_ctx *x, unsigned header)
{
	const struct sup_fleet_conf *f = &x->c->fleet;

	if (!header)
		return;
	if (!f->servers)
		cfg_diag(x, true, header, "[fleet]", "no 'servers': the NATS intake is off");
	if (!f->tls_cert != !f->tls_key)
		cfg_diag(x, false, header, "[fleet]",
			 "'tls_cert' and 'tls_key' go together: give both or neither");
	if (f->credentials && f->nkey_seed)
		cfg_diag(x, false, header, "[fleet]",
			 "'credentials' and 'nkey_seed' are two ways to authenticate: give one");
	if (f->tasks_stream && f->results_stream && !strcmp(f->tasks_stream, f->results_stream))
		cfg_diag(x, false, header, "[fleet]",
			 "'tasks_stream' and 'results_stream' must differ");
	if (f->max_header_bytes >= f->max_message_bytes)
		cfg_diag(x, false, header, "[fleet]",
			 "'max_header_bytes' (%u) must be below 'max_message_bytes' (%u)",
			 f->max_header_bytes, f->max_message_bytes);
}

static bool s_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool sup_fleet_conf_equal(const struct sup_fleet_conf *a, const struct sup_fleet_conf *b)
{
	return s_eq(a->servers, b->servers) && s_eq(a->credentials, b->credentials) &&
	       s_eq(a->nkey_seed, b->nkey_seed) && s_eq(a->tls_cert, b->tls_cert) &&
	       s_eq(a->tls_key, b->tls_key) && s_eq(a->tls_ca, b->tls_ca) &&
	       s_eq(a->tasks_stream, b->tasks_stream) &&
	       s_eq(a->results_stream, b->results_stream) &&
	       s_eq(a->subject_prefix, b->subject_prefix) &&
	       s_eq(a->consumer_prefix, b->consumer_prefix) && s_eq(a->node, b->node) &&
	       a->replicas == b->replicas && a->ack_wait_ns == b->ack_wait_ns &&
	       a->max_deliver == b->max_deliver && a->fetch_batch_max == b->fetch_batch_max &&
	       a->fetch_wait_ns == b->fetch_wait_ns &&
	       a->max_message_bytes == b->max_message_bytes &&
	       a->max_header_bytes == b->max_header_bytes &&
	       a->in_progress_fraction == b->in_progress_fraction &&
	       a->max_runs == b->max_runs && a->result_max_age_ns == b->result_max_age_ns;
}

const char *sup_fleet_tasks_stream(const struct sup_fleet_conf *f)
{
	return f->tasks_stream ? f->tasks_stream : SUP_DEF_FLEET_TASKS_STREAM;
}

const char *sup_fleet_results_stream(const struct sup_fleet_conf *f)
{
	return f->results_stream ? f->results_stream : SUP_DEF_FLEET_RESULTS_STREAM;
}

const char *sup_fleet_subject_prefix(const struct sup_fleet_conf *f)
{
	return f->subject_prefix ? f->subject_prefix : SUP_DEF_FLEET_PREFIX;
}

const char *sup_fleet_consumer_prefix(const struct sup_fleet_conf *f)
{
	return f->consumer_prefix ? f->consumer_prefix : SUP_DEF_FLEET_PREFIX;
}
