/* SPDX-License-Identifier: MIT */
/*
 * tierctl fleet SUBCOMMAND: submit, run and result talk to the NATS
 * JetStream streams (fleet_nats.c); status, drain and undrain ask one node
 * over its control socket (fleet-status, fleet-drain, fleet-undrain).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "fleet.h"
#include "render.h"
#include "work.h"

#define PAYLOAD_MAX (8u << 20)
#define CONTEXT_MAX (16u << 10)

struct fleet_args {
	struct tctl_fleet_conn_opts conn;
	struct tctl_fleet_task      task;
	const char *pos[3];
	int         npos;
	bool        detach, wait;
};

static void fleet_usage(FILE *out)
{
	fprintf(out,
		"usage: tierctl fleet SUBCOMMAND [ARGS] [OPTIONS]\n"
		"  submit AGENT|tierN [PAYLOAD|@FILE|-] [--type T] [--timeout D] [--deadline MS]\n"
		"         [--key K] [--context TEXT|@FILE] [--detach]\n"
		"                          publish a task, print its id, wait for its result\n"
		"  run TYPE [PAYLOAD|@FILE|-] [--timeout D] [--key K] [--detach]\n"
		"                          a full-team workflow on some node; waits for its aggregate\n"
		"  result ID [--wait]      the stored result of task ID (--wait: until there is one)\n"
		"  status                  this node's intake: connection, consumers, leases (socket)\n"
		"  drain                   stop fetching, wait until nothing broker-fed is in flight\n"
		"  undrain                 fetch again\n"
		"NATS options (submit, run, result):\n"
		"  --servers URL[,URL]     default $" TCTL_FLEET_SERVERS_ENV ", else "
		TCTL_FLEET_SERVERS_DEFAULT "\n"
		"  --creds FILE, --nkey-public KEY --nkey-seed FILE,\n"
		"  --tls-cert FILE --tls-key FILE, --tls-ca FILE\n"
		"  --prefix P (tierd), --tasks-stream S (TIERD_TASKS), --results-stream S (TIERD_RESULTS)\n"
		"The wait is tierctl's --timeout (0 = forever). Exit status 1 also when the\n"
		"result's status is not ok.\n");
}

/* PAYLOAD is text, @FILE, or - / absent for stdin (nothing when stdin is a
 * terminal: a task may have no payload). */
static int read_arg_bytes(const char *arg, size_t max, char **ret, size_t *ret_len, char *err,
			  size_t errlen)
{
	int fd = 0, r;

	*ret = NULL;
	*ret_len = 0;
	if (arg && strcmp(arg, "-") && arg[0] != '@') {
		*ret = strdup(arg);
		*ret_len = strlen(arg);
		return *ret ? 0 : -ENOMEM;
	}
	if (arg && arg[0] == '@') {
		fd = open(arg + 1, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "%s: %s", arg + 1, strerror(errno));
			return -errno;
		}
	} else if (isatty(0)) {
		return 0;
	}
	r = sup_read_fd_alloc(fd, max, ret, ret_len);
	if (fd)
		close(fd);
	if (r == -EFBIG)
		snprintf(err, errlen, "%s larger than %zu bytes", arg && arg[0] == '@' ? arg + 1 :
			 "stdin", max);
	else if (r < 0)
		snprintf(err, errlen, "reading %s: %s", arg ? arg : "stdin", strerror(-r));
	return r;
}

/* A subject token: no '.', '*', '>', spaces or control characters. */
static bool token_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s == '.' || *s == '*' || *s == '>' || (unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static const char *const VALUE_OPTS[] = {
	"--servers", "--creds", "--nkey-public", "--nkey-seed", "--tls-cert", "--tls-key",
	"--tls-ca", "--prefix", "--tasks-stream", "--results-stream", "--type", "--timeout",
	"--deadline", "--key", "--context", NULL,
};

static const char **value_slot(struct fleet_args *a, const char *name)
{
	const char **slots[] = {
		&a->conn.servers, &a->conn.credentials, &a->conn.nkey_public, &a->conn.nkey_seed,
		&a->conn.tls_cert, &a->conn.tls_key, &a->conn.tls_ca, &a->conn.prefix,
		&a->conn.tasks_stream, &a->conn.results_stream, &a->task.type, &a->task.timeout,
		&a->task.deadline, &a->task.key, &a->task.context,
	};

	for (int i = 0; VALUE_OPTS[i]; i++)
		if (!strcmp(VALUE_OPTS[i], name))
			return slots[i];
	return NULL;
}

static int parse_args(int argc, char **argv, struct fleet_args *a, char *err, size_t errlen)
{
	const char *env = getenv(TCTL_FLEET_SERVERS_ENV);

	memset(a, 0, sizeof(*a));
	a->conn.servers = env && *env ? env : TCTL_FLEET_SERVERS_DEFAULT;
	a->conn.prefix = "tierd";
	a->conn.tasks_stream = "TIERD_TASKS";
	a->conn.results_stream = "TIERD_RESULTS";
	for (int i = 2; i < argc; i++) {
		const char **slot;

		if (!strcmp(argv[i], "--detach")) {
			a->detach = true;
		} else if (!strcmp(argv[i], "--wait")) {
			a->wait = true;
		} else if ((slot = value_slot(a, argv[i]))) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				snprintf(err, errlen, "%s needs a value", argv[i]);
				return -EINVAL;
			}
			*slot = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			snprintf(err, errlen, "unknown option %s", argv[i]);
			return -EINVAL;
		} else if (a->npos < 3) {
			a->pos[a->npos++] = argv[i];
		} else {
			snprintf(err, errlen, "too many arguments");
			return -EINVAL;
		}
	}
	if (a->task.deadline && strspn(a->task.deadline, "0123456789") != strlen(a->task.deadline)) {
		snprintf(err, errlen, "--deadline takes Unix time in milliseconds, not '%s'",
			 a->task.deadline);
		return -EINVAL;
	}
	if (a->task.key && strlen(a->task.key) > 128) {
		snprintf(err, errlen, "--key is longer than 128 bytes");
		return -EINVAL;
	}
	return 0;
}

/* ---- output ---------------------------------------------------------------- */

static const char *str_or(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : dflt;
}

static void render_result(FILE *out, const json_t *r)
{
	const json_t *agg = json_object_get(r, "aggregate");

	if (json_object_get(r, "run") || agg) {
		fprintf(out, "task %lld: run %lld (%s) on node %s: %s\n",
			(long long)json_integer_value(json_object_get(r, "task")),
			(long long)json_integer_value(json_object_get(r, "run")),
			str_or(r, "type", str_or(agg, "type", "?")), str_or(r, "node", "?"),
			str_or(r, "status", "?"));
		if (json_is_object(agg) && json_object_get(agg, "tiers"))
			tctl_render_run(out, NULL, agg);
		if (json_string_value(json_object_get(r, "error")))
			fprintf(out, "error: %s\n", str_or(r, "error", ""));
		return;
	}
	fprintf(out, "node %s, delivery %lld, local task %lld\n", str_or(r, "node", "?"),
		(long long)json_integer_value(json_object_get(r, "deliveries")),
		(long long)json_integer_value(json_object_get(r, "local")));
	tctl_render_task(out, NULL, r);
}

static int show_result(const struct tctl_opts *o, json_t *r)
{
	int rc = strcmp(str_or(r, "status", ""), "ok") ? TCTL_EXIT_FAIL : TCTL_EXIT_OK;

	if (o->json) {
		json_dumpf(r, stdout, JSON_COMPACT);
		fputc('\n', stdout);
	} else {
		render_result(stdout, r);
	}
	json_decref(r);
	return rc;
}

/* ---- the NATS subcommands --------------------------------------------------- */

static int do_submit(const struct tctl_opts *o, struct fleet_args *a, bool run)
{
	struct tctl_nats *n = NULL;
	char err[768], subj[512], *payload = NULL, *ctx = NULL;
	size_t len, ctx_len;
	uint64_t id = 0;
	bool dup = false;
	json_t *res = NULL;
	int r, rc = TCTL_EXIT_FAIL;

	if (a->npos < 1 || a->npos > 2) {
		fprintf(stderr, "tierctl fleet %s: needs %s and at most one PAYLOAD\n",
			run ? "run" : "submit", run ? "a TYPE" : "an AGENT or tierN");
		return TCTL_EXIT_USAGE;
	}
	if (run) {
		if (!token_ok(a->pos[0])) {
			fprintf(stderr, "tierctl fleet run: the type '%s' must be one subject token "
				"(no '.', '*', '>', spaces)\n", a->pos[0]);
			return TCTL_EXIT_USAGE;
		}
		snprintf(subj, sizeof(subj), "%s.run.%s", a->conn.prefix, a->pos[0]);
	} else if (!strncmp(a->pos[0], "tier", 4) && a->pos[0][4] >= '1' && a->pos[0][4] <= '4' &&
		   !a->pos[0][5]) {
		snprintf(subj, sizeof(subj), "%s.task.tier.%c", a->conn.prefix, a->pos[0][4]);
	} else if (token_ok(a->pos[0]) && strncmp(a->pos[0], "tier", 4)) {
		snprintf(subj, sizeof(subj), "%s.task.agent.%s", a->conn.prefix, a->pos[0]);
	} else {
		fprintf(stderr, "tierctl fleet submit: '%s' is neither tier1..tier4 nor an agent name "
			"that is one subject token\n", a->pos[0]);
		return TCTL_EXIT_USAGE;
	}
	r = read_arg_bytes(a->npos > 1 ? a->pos[1] : NULL, PAYLOAD_MAX, &payload, &len, err,
			   sizeof(err));
	if (r >= 0 && a->task.context && a->task.context[0] == '@') {
		r = read_arg_bytes(a->task.context, CONTEXT_MAX, &ctx, &ctx_len, err, sizeof(err));
		if (r >= 0 && memchr(ctx, 0, ctx_len)) {
			snprintf(err, sizeof(err), "the context file holds a NUL byte");
			r = -EINVAL;
		}
		a->task.context = ctx;
	}
	if (r < 0) {
		fprintf(stderr, "tierctl fleet: %s\n", err);
		goto out;
	}
	a->task.subject = subj;
	a->task.payload = payload;
	a->task.len = len;
	r = tctl_nats_open(&n, &a->conn, err, sizeof(err));
	if (r >= 0)
		r = tctl_nats_submit(n, &a->task, &id, &dup, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tierctl fleet: %s\n", err);
		goto out;
	}
	if (a->detach || !o->json)
		printf(o->json ? "{\"task\":%" PRIu64 ",\"duplicate\":%s}\n" :
		       "submitted: task %" PRIu64 "%s\n", id,
		       dup ? (o->json ? "true" : " (a duplicate of an earlier submit with this key)")
			   : (o->json ? "false" : ""));
	if (a->detach) {
		rc = TCTL_EXIT_OK;
		goto out;
	}
	fflush(stdout);
	r = tctl_nats_result(n, id, o->timeout_ms, &res, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tierctl fleet: %s (read it later with: tierctl fleet result %" PRIu64
			" --wait)\n", err, id);
		goto out;
	}
	rc = show_result(o, res);
out:
	tctl_nats_close(n);
	free(payload);
	free(ctx);
	return rc;
}

static int do_result(const struct tctl_opts *o, struct fleet_args *a)
{
	struct tctl_nats *n = NULL;
	char err[768], *end;
	json_t *res = NULL;
	uint64_t id;
	int r;

	if (a->npos != 1) {
		fprintf(stderr, "tierctl fleet result: needs exactly one task ID\n");
		return TCTL_EXIT_USAGE;
	}
	errno = 0;
	id = strtoull(a->pos[0], &end, 10);
	if (errno || end == a->pos[0] || *end || !id || a->pos[0][0] == '-') {
		fprintf(stderr, "tierctl fleet result: '%s' is not a task id (a tasks-stream "
			"sequence, from 1)\n", a->pos[0]);
		return TCTL_EXIT_USAGE;
	}
	r = tctl_nats_open(&n, &a->conn, err, sizeof(err));
	if (r >= 0)
		r = tctl_nats_result(n, id, a->wait ? o->timeout_ms : 0, &res, err, sizeof(err));
	tctl_nats_close(n);
	if (r < 0) {
		fprintf(stderr, "tierctl fleet: %s\n", err);
		return TCTL_EXIT_FAIL;
	}
	return show_result(o, res);
}

/* ---- the control-socket subcommands --------------------------------------------- */

static void render_fleet_status(FILE *out, const char *label, const json_t *r)
{
	const json_t *cons = json_object_get(r, "consumers"), *c, *st;
	struct tctl_table t;
	size_t i;
	char b[6][32];

	(void)label;
	fprintf(out, "node %s: %s to %s\n", str_or(r, "node", "?"),
		json_is_true(json_object_get(r, "connected")) ? "connected" : "NOT connected",
		json_is_string(json_object_get(r, "servers")) ? str_or(r, "servers", "?") : "-");
	st = json_object_get(json_object_get(r, "streams"), "tasks");
	if (st)
		fprintf(out, "tasks stream: %s messages, %s bytes\n",
			tctl_fmt_int(st, "messages", b[0], 32), tctl_fmt_int(st, "bytes", b[1], 32));
	st = json_object_get(json_object_get(r, "streams"), "results");
	if (st)
		fprintf(out, "results stream: %s messages, %s bytes\n",
			tctl_fmt_int(st, "messages", b[0], 32), tctl_fmt_int(st, "bytes", b[1], 32));
	fprintf(out, "leases %s, fetched %s, acked %s, termed %s, duplicates %s, results %s, "
		"publish errors %s, fetch rate %s/s%s\n",
		tctl_fmt_int(r, "leases", b[0], 32), tctl_fmt_int(r, "fetched", b[1], 32),
		tctl_fmt_int(r, "acked", b[2], 32), tctl_fmt_int(r, "termed", b[3], 32),
		tctl_fmt_int(r, "duplicates", b[4], 32), tctl_fmt_int(r, "results_published", b[5], 32),
		json_is_integer(json_object_get(r, "publish_errors")) ?
			tctl_fmt_int(r, "publish_errors", b[0], 32) : "-",
		json_is_number(json_object_get(r, "fetch_rate")) ?
			(snprintf(b[1], 32, "%.1f", json_number_value(json_object_get(r, "fetch_rate"))),
			 b[1]) : "-",
		json_is_true(json_object_get(r, "draining")) ? ", draining" : "");
	if (!json_is_array(cons) || !json_array_size(cons))
		return;
	tctl_table_init(&t, 4);
	{
		static const char *const head[] = { "CONSUMER", "PENDING", "ACK_PENDING",
						    "REDELIVERED" };
		tctl_table_add(&t, head);
	}
	json_array_foreach(cons, i, c) {
		const char *row[4] = {
			tctl_fmt_str(c, "name", b[0], 32), tctl_fmt_int(c, "pending", b[1], 32),
			tctl_fmt_int(c, "ack_pending", b[2], 32),
			tctl_fmt_int(c, "redelivered", b[3], 32),
		};
		tctl_table_add(&t, row);
	}
	tctl_table_print(&t, out);
	tctl_table_free(&t);
}

static int do_ctl(const struct tctl_opts *o, const char *sub, int nextra)
{
	struct tctl_cmd c = { .render = tctl_render_message };

	if (nextra) {
		fprintf(stderr, "tierctl fleet %s: takes no arguments\n", sub);
		return TCTL_EXIT_USAGE;
	}
	if (!strcmp(sub, "status")) {
		c.name = "fleet-status";
		c.render = render_fleet_status;
	} else if (!strcmp(sub, "drain")) {
		c.name = "fleet-drain";
		c.label = "drained: nothing broker-fed in flight, no fetching";
	} else {
		c.name = "fleet-undrain";
		c.label = "fetching again";
	}
	return tctl_run_simple(&c, o, 1, (char *[]){ (char *)c.name, NULL });
}

int tctl_run_fleet(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv)
{
	struct fleet_args a;
	const char *sub = argc > 1 ? argv[1] : NULL;
	char err[256];

	(void)cmd;
	if (!sub || !strcmp(sub, "help") || !strcmp(sub, "--help")) {
		fleet_usage(sub ? stdout : stderr);
		return sub ? TCTL_EXIT_OK : TCTL_EXIT_USAGE;
	}
	if (!strcmp(sub, "status") || !strcmp(sub, "drain") || !strcmp(sub, "undrain"))
		return do_ctl(o, sub, argc - 2);
	if (strcmp(sub, "submit") && strcmp(sub, "run") && strcmp(sub, "result")) {
		fprintf(stderr, "tierctl fleet: unknown subcommand '%s'\n", sub);
		fleet_usage(stderr);
		return TCTL_EXIT_USAGE;
	}
	if (parse_args(argc, argv, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "tierctl fleet %s: %s\n", sub, err);
		return TCTL_EXIT_USAGE;
	}
	if (!strcmp(sub, "result"))
		return do_result(o, &a);
	return do_submit(o, &a, !strcmp(sub, "run"));
}
