/* SPDX-License-Identifier: MIT */
/* tierctl: tasks, workflow runs, traces and the event journal. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/payload.h"
#include "client.h"
#include "commands.h"
#include "work.h"

#define PAYLOAD_MAX (64u << 20)

/* ---- arguments ------------------------------------------------------------ */

/* PAYLOAD is text, @FILE, or - / absent for stdin. */
static int read_payload(const char *arg, char **ret, size_t *ret_len, char *err, size_t errlen)
{
	int fd = 0, r;

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
		snprintf(err, errlen, "no payload: give it as an argument, @FILE, or on stdin");
		return -EINVAL;
	}
	r = sup_read_fd_alloc(fd, PAYLOAD_MAX, ret, ret_len);
	if (fd)
		close(fd);
	if (r == -EFBIG)
		snprintf(err, errlen, "payload larger than %u bytes", PAYLOAD_MAX);
	else if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	else if (r < 0)
		snprintf(err, errlen, "reading the payload: %s", strerror(-r));
	return r;
}


static int parse_ms(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Flags "--name VALUE" among the arguments, the rest positional. */
struct flags {
	const char *pos[4];
	int         npos;
	double      timeout_ms, stagger_ms;
	long        batch_size;
	bool        has_timeout, has_stagger, has_batch, follow, detach;
};

static int parse_flags(int argc, char **argv, struct flags *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--timeout") || !strcmp(a, "--stagger") || !strcmp(a, "--batch-size")) {
			double v;

			if (i + 1 >= argc || parse_ms(argv[i + 1], &v) < 0) {
				snprintf(err, errlen, "%s needs a non-negative number", a);
				return -EINVAL;
			}
			i++;
			if (!strcmp(a, "--timeout")) {
				f->timeout_ms = v;
				f->has_timeout = true;
			} else if (!strcmp(a, "--stagger")) {
				f->stagger_ms = v;
				f->has_stagger = true;
			} else {
				if (v < 1 || v != (long)v) {
					snprintf(err, errlen, "--batch-size needs a whole number >= 1");
					return -EINVAL;
				}
				f->batch_size = (long)v;
				f->has_batch = true;
			}
		} else if (!strcmp(a, "-f") || !strcmp(a, "--follow")) {
			f->follow = true;
		} else if (!strcmp(a, "--detach")) {
			f->detach = true;
		} else if (a[0] == '-' && a[1] == '-') {
			snprintf(err, errlen, "unknown option %s", a);
			return -EINVAL;
		} else if (f->npos < 4) {
			f->pos[f->npos++] = a;
		} else {
			snprintf(err, errlen, "too many arguments");
			return -EINVAL;
		}
	}
	return 0;
}

/* {"type", "payload"|"payload_b64", "timeout_ms"?, "detach"?} from the
 * TYPE and optional PAYLOAD positionals and the flags. */
static int work_args(const struct flags *f, int type_pos, char *err, size_t errlen, json_t **ret)
{
	char *payload = NULL;
	size_t len = 0;
	json_t *args;
	int r = read_payload(f->npos > type_pos + 1 ? f->pos[type_pos + 1] : NULL, &payload, &len,
			     err, errlen);

	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	args = json_pack("{s:s}", "type", f->pos[type_pos]);
	if (!args || sup_json_set_payload(args, payload, len) < 0) {
		free(payload);
		json_decref(args);
		return -ENOMEM;
	}
	free(payload);
	if (f->has_timeout)
		json_object_set_new(args, "timeout_ms", json_real(f->timeout_ms));
	if (f->detach)
		json_object_set_new(args, "detach", json_true());
	*ret = args;
	return 0;
}

int tctl_args_submit(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		     json_t **ret_args)
{
	struct flags f;
	json_t *args;
	int r = parse_flags(argc, argv, &f, err, errlen);

	(void)cmd;
	if (r < 0)
		return r;
	if (f.npos < 2 || f.npos > 3) {
		snprintf(err, errlen, "needs AGENT|tierN TYPE [PAYLOAD|@FILE|-]");
		return -EINVAL;
	}
	r = work_args(&f, 1, err, errlen, &args);
	if (r == 0 && (r = tctl_target_set(args, f.pos[0], err, errlen)) < 0)
		json_decref(args);
	if (r < 0)
		return r;
	*ret_args = args;
	return 0;
}

int tctl_args_run(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		  json_t **ret_args)
{
	struct flags f;
	json_t *args;
	int r = parse_flags(argc, argv, &f, err, errlen);

	(void)cmd;
	if (r < 0)
		return r;
	if (f.npos < 1 || f.npos > 2) {
		snprintf(err, errlen, "needs TYPE [PAYLOAD|@FILE|-]");
		return -EINVAL;
	}
	r = work_args(&f, 0, err, errlen, &args);
	if (r < 0)
		return r;
	if (f.has_stagger)
		json_object_set_new(args, "stagger_ms", json_real(f.stagger_ms));
	if (f.has_batch)
		json_object_set_new(args, "batch_size", json_integer(f.batch_size));
	*ret_args = args;
	return 0;
}

static int args_id(const char *key, int argc, char **argv, char *err, size_t errlen, json_t **ret)
{
	char *end;
	long long v;

	if (argc != 2) {
		snprintf(err, errlen, "needs one %s id", key);
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(argv[1], &end, 10);
	if (errno || *end || v <= 0) {
		snprintf(err, errlen, "'%s' is not a %s id (a positive integer)", argv[1], key);
		return -EINVAL;
	}
	*ret = json_pack("{s:I}", key, (json_int_t)v);
	return *ret ? 0 : -ENOMEM;
}

int tctl_args_task(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		   json_t **ret_args)
{
	(void)cmd;
	return args_id("task", argc, argv, err, errlen, ret_args);
}

int tctl_args_run_id(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		     json_t **ret_args)
{
	(void)cmd;
	return args_id("run", argc, argv, err, errlen, ret_args);
}

int tctl_args_runs(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		   json_t **ret_args)
{
	(void)cmd;
	if (argc == 1) {
		*ret_args = json_object();
		return 0;
	}
	return args_id("run", argc, argv, err, errlen, ret_args);
}

/* ---- rendering -------------------------------------------------------------- */

static void print_payload(FILE *out, const json_t *r)
{
	const char *p = json_string_value(json_object_get(r, "payload"));
	const char *b = json_string_value(json_object_get(r, "payload_b64"));

	if (p && *p)
		fprintf(out, "%s%s", p, p[strlen(p) - 1] == '\n' ? "" : "\n");
	else if (b)
		fprintf(out, "(binary payload, base64) %s\n", b);
}

void tctl_render_task(FILE *out, const char *label, const json_t *r)
{
	const json_t *q = json_object_get(r, "quality");
	const json_t *t = json_object_get(r, "times_us");
	const char *err = json_string_value(json_object_get(r, "error"));

	(void)label;
	fprintf(out, "task %lld: %s", (long long)json_integer_value(json_object_get(r, "task")),
		json_string_value(json_object_get(r, "status")) ?: "?");
	if (*(json_string_value(json_object_get(r, "agent")) ?: ""))
		fprintf(out, " by %s", json_string_value(json_object_get(r, "agent")));
	if (json_is_number(q))
		fprintf(out, ", quality %.2f", json_number_value(q));
	if (t)
		fprintf(out, ", %.3f ms (run %.3f ms)",
			(double)json_integer_value(json_object_get(t, "total")) / 1000.0,
			(double)json_integer_value(json_object_get(t, "run")) / 1000.0);
	fputc('\n', out);
	if (err)
		fprintf(out, "error: %s\n", err);
	print_payload(out, r);
}

void tctl_render_run(FILE *out, const char *label, const json_t *r)
{
	const json_t *tiers = json_object_get(r, "tiers"), *t;
	struct tctl_table tab;
	size_t i;

	(void)label;
	if (json_object_get(r, "run") && !tiers) {
		fprintf(out, "run %lld started\n", (long long)json_integer_value(json_object_get(r, "run")));
		return;
	}
	fprintf(out, "run %lld (%s): %.1f ms, parallel efficiency %.1f%% of %lld cores%s\n",
		(long long)json_integer_value(json_object_get(r, "run")),
		json_string_value(json_object_get(r, "type")) ?: "?",
		json_number_value(json_object_get(r, "wall_ms")),
		100 * json_number_value(json_object_get(r, "efficiency")),
		(long long)json_integer_value(json_object_get(r, "cores")),
		json_is_true(json_object_get(r, "context_truncated")) ? ", context truncated" : "");
	tctl_table_init(&tab, 8);
	{
		static const char *const head[] = { "TIER", "TASKS", "OK", "TIMEOUTS", "ERRORS",
						    "RESPONSE", "QUALITY", "BATCHES" };
		tctl_table_add(&tab, head);
	}
	json_array_foreach(tiers, i, t) {
		char c[8][32];
		const char *cells[8];
		const json_t *q = json_object_get(t, "mean_quality");

		snprintf(c[0], 32, "%lld", (long long)json_integer_value(json_object_get(t, "tier")));
		snprintf(c[1], 32, "%lld", (long long)json_integer_value(json_object_get(t, "tasks")));
		snprintf(c[2], 32, "%lld", (long long)json_integer_value(json_object_get(t, "ok")));
		snprintf(c[3], 32, "%lld", (long long)json_integer_value(json_object_get(t, "timeouts")));
		snprintf(c[4], 32, "%lld", (long long)json_integer_value(json_object_get(t, "errors")));
		snprintf(c[5], 32, "%.2f ms", json_number_value(json_object_get(t, "response_ms")));
		if (json_is_number(q))
			snprintf(c[6], 32, "%.2f", json_number_value(q));
		else
			snprintf(c[6], 32, "-");
		snprintf(c[7], 32, "%lld", (long long)json_integer_value(json_object_get(t, "batches")));
		for (int k = 0; k < 8; k++)
			cells[k] = c[k];
		tctl_table_add(&tab, cells);
	}
	tctl_table_print(&tab, out);
	tctl_table_free(&tab);
}

void tctl_render_runs(FILE *out, const char *label, const json_t *r)
{
	const json_t *runs = json_object_get(r, "runs"), *x;
	size_t i;

	if (!runs) {
		tctl_render_run(out, label, r);
		return;
	}
	fprintf(out, "batch size %lld, stagger %.0f ms\n",
		(long long)json_integer_value(json_object_get(r, "batch_size")),
		json_number_value(json_object_get(r, "stagger_ms")));
	json_array_foreach(runs, i, x)
		fprintf(out, "run %-6lld %-8s %-16s %10.1f ms  efficiency %5.1f%%\n",
			(long long)json_integer_value(json_object_get(x, "run")),
			json_string_value(json_object_get(x, "state")) ?: "?",
			json_string_value(json_object_get(x, "type")) ?: "?",
			json_number_value(json_object_get(x, "wall_ms")),
			100 * json_number_value(json_object_get(x, "efficiency")));
}

void tctl_render_json(FILE *out, const char *label, const json_t *r)
{
	(void)label;
	json_dumpf(r, out, JSON_INDENT(1));
	fputc('\n', out);
}

void tctl_render_task_id(FILE *out, const char *label, const json_t *r)
{
	if (json_object_get(r, "status"))
		tctl_render_task(out, label, r);
	else
		fprintf(out, "task %lld %s\n", (long long)json_integer_value(json_object_get(r, "task")),
			label ? label : "");
}

/* ---- events ----------------------------------------------------------------- */

static void print_event(FILE *out, const json_t *e, bool as_json)
{
	const char *k;
	const json_t *v;
	time_t ts = (time_t)json_number_value(json_object_get(e, "ts"));
	struct tm tm;
	char when[32];

	if (as_json) {
		json_dumpf(e, out, JSON_COMPACT);
		fputc('\n', out);
		return;
	}
	localtime_r(&ts, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(out, "%s #%-6lld %-18s", when, (long long)json_integer_value(json_object_get(e, "seq")),
		json_string_value(json_object_get(e, "kind")) ?: "?");
	json_object_foreach((json_t *)e, k, v) {
		if (!strcmp(k, "seq") || !strcmp(k, "ts") || !strcmp(k, "kind"))
			continue;
		if (json_is_string(v))
			fprintf(out, " %s=%s", k, json_string_value(v));
		else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			fprintf(out, " %s=%s", k, s ? s : "?");
			free(s);
		}
	}
	fputc('\n', out);
}

int tctl_run_events(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv)
{
	struct tctl_conn conn;
	struct flags f;
	char err[512];
	json_int_t after = 0;
	int r;

	r = parse_flags(argc, argv, &f, err, sizeof(err));
	if (r < 0 || f.npos) {
		fprintf(stderr, "tierctl %s: %s\n", cmd->name, r < 0 ? err : "takes only -f");
		return TCTL_EXIT_USAGE;
	}
	r = tctl_connect(&conn, o->socket, o->timeout_ms, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tierctl: %s\n", err);
		return TCTL_EXIT_FAIL;
	}
	for (;;) {
		struct sup_ctl_msg m;
		const json_t *ev;
		size_t i;

		r = tctl_call(&conn, "events", json_pack("{s:I}", "after", after), NULL, NULL, err,
			      sizeof(err), &m);
		/* Following, and tierd went away (an upgrade or a restart): the
		 * sequence goes on across an upgrade, so connect again and ask
		 * for what came after the last event seen. */
		if (f.follow && (r == -ECONNRESET || r == -EPIPE) &&
		    tctl_reconnect(&conn, o->socket, o->timeout_ms, err, sizeof(err)) == 0)
			continue;
		if (r < 0 || !m.ok) {
			fprintf(stderr, "tierctl: %s\n", r < 0 ? err : m.error);
			if (r == 0)
				json_decref(m.root);
			tctl_close(&conn);
			return TCTL_EXIT_FAIL;
		}
		json_array_foreach(json_object_get(m.result, "events"), i, ev)
			print_event(stdout, ev, o->json);
		after = json_integer_value(json_object_get(m.result, "last"));
		json_decref(m.root);
		fflush(stdout);
		if (!f.follow)
			break;
		usleep(200 * 1000);
	}
	tctl_close(&conn);
	return TCTL_EXIT_OK;
}
