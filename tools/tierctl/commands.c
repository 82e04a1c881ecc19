/* SPDX-License-Identifier: MIT */
/* tierctl: the command table and the generic request/reply exchange. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "adapt.h"
#include "client.h"
#include "commands.h"
#include "fleet.h"
#include "work.h"

static int run_help(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv)
{
	tctl_usage(stdout);
	return TCTL_EXIT_OK;
}

int tctl_target_set(json_t *args, const char *a, char *err, size_t errlen)
{
	if (!*a) {
		snprintf(err, errlen, "the agent name is empty");
		return -EINVAL;
	}
	if (!strncmp(a, "tier", 4) && a[4] && strspn(a + 4, "0123456789") == strlen(a + 4)) {
		char *end;
		long n;

		errno = 0;
		n = strtol(a + 4, &end, 10);
		if (errno || n < 1 || n > INT_MAX) {
			snprintf(err, errlen, "%s: tiers are numbered from 1", a);
			return -EINVAL;
		}
		if (json_object_set_new(args, "tier", json_integer(n)) < 0)
			goto nomem;
		return 0;
	}
	if (json_object_set_new(args, "agent", json_string(a)) < 0)
		goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* AGENT or tierN alone. */
static int args_target(const struct tctl_cmd *cmd, int argc, char **argv, char *err,
		       size_t errlen, json_t **ret_args)
{
	json_t *args;
	int r;

	(void)cmd;
	if (argc != 2) {
		snprintf(err, errlen, "needs exactly one AGENT or tierN");
		return -EINVAL;
	}
	args = json_object();
	if (!args) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = tctl_target_set(args, argv[1], err, errlen);
	if (r < 0) {
		json_decref(args);
		return r;
	}
	*ret_args = args;
	return 0;
}

/*
 * The commands. A simple request/reply needs an args builder and a
 * renderer; follow and refresh modes (events -f, top) set run.
 */
static int args_upgrade(const struct tctl_cmd *cmd, int argc, char **argv, char *err,
			size_t errlen, json_t **ret_args)
{
	(void)cmd;
	if (argc == 1) {
		*ret_args = NULL;
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--binary") && argv[2][0]) {
		*ret_args = json_pack("{s:s}", "binary", argv[2]);
		return *ret_args ? 0 : -ENOMEM;
	}
	snprintf(err, errlen, "takes only --binary PATH");
	return -EINVAL;
}

static void render_upgrade(FILE *out, const char *label, const json_t *r)
{
	(void)label;
	fprintf(out, "upgraded in place: %s -> %s (pid %lld, %lld agents kept), paused %.1f ms\n",
		json_string_value(json_object_get(r, "from")), json_string_value(json_object_get(r, "to")),
		(long long)json_integer_value(json_object_get(r, "pid")),
		(long long)json_integer_value(json_object_get(r, "agents")),
		json_number_value(json_object_get(r, "pause_ms")));
}

static const struct tctl_cmd CMDS[] = {
	{ "status", "", "tierd, cgroup and io_uring state; agents per tier and state",
	  NULL, tctl_render_status, NULL, NULL },
	{ "agents", "", "every agent: tier, state, pid, restarts, uptime, last exit",
	  NULL, tctl_render_agents, NULL, NULL },
	{ "start", "AGENT|tierN", "start an agent, or every agent of a tier",
	  args_target, tctl_render_affected, "started", NULL },
	{ "stop", "AGENT|tierN", "stop an agent, or every agent of a tier",
	  args_target, tctl_render_affected, "stopped", NULL },
	{ "restart", "AGENT|tierN", "restart an agent, or every agent of a tier",
	  args_target, tctl_render_affected, "restarted", NULL },
	{ "reload", "", "re-read the configuration; show what changed",
	  NULL, tctl_render_reload, NULL, NULL },
	{ "upgrade", "[--binary PATH]", "re-execute tierd in place (same pid, every agent kept)",
	  args_upgrade, render_upgrade, NULL, NULL },
	{ "shutdown", "", "stop every agent and exit tierd",
	  NULL, tctl_render_message, "tierd is shutting down", NULL },
	{ "drain", "AGENT|tierN", "finish in-flight work, take no new",
	  args_target, tctl_render_affected, "draining", NULL },
	{ "undrain", "AGENT|tierN", "take work again after a drain",
	  args_target, tctl_render_affected, "taking work", NULL },
	{ "rolling-restart", "AGENT|tierN", "drain, restart and wait for each agent in turn",
	  args_target, tctl_render_json, NULL, NULL },
	{ "submit", "AGENT|tierN TYPE [PAYLOAD|@FILE|-] [--timeout MS] [--detach]",
	  "one task; prints its result", tctl_args_submit, tctl_render_task_id, "submitted", NULL },
	{ "result", "TASK", "a task's result (kept for a while after it finished)",
	  tctl_args_task, tctl_render_task, NULL, NULL },
	{ "cancel", "TASK", "cancel a pending task", tctl_args_task, tctl_render_task_id,
	  "cancelled", NULL },
	{ "run", "TYPE [PAYLOAD|@FILE|-] [--batch-size N] [--stagger MS] [--timeout MS] [--detach]",
	  "a full-team workflow; prints the per-tier table", tctl_args_run, tctl_render_run, NULL, NULL },
	{ "runs", "[RUN]", "recent workflow runs, or one run's aggregate",
	  tctl_args_runs, tctl_render_runs, NULL, NULL },
	{ "trace", "RUN", "a run as Chrome/Perfetto trace JSON",
	  tctl_args_run_id, tctl_render_json, NULL, NULL },
	{ "events", "[-f]", "the event journal; -f follows it",
	  NULL, NULL, NULL, tctl_run_events },
	{ "top", "[--once]", "live per-agent CPU, run-queue delay, memory, IO, network, latency; "
	  "q quits", NULL, NULL, NULL, tctl_run_top },
	{ "history", "[tierN|machine] [N]", "the last N monitor samples of a tier or the machine",
	  tctl_args_history, tctl_render_history, NULL, NULL },
	{ "limits", "[--explain]", "each tier's cgroup limits, pins and bias; --explain says why",
	  tctl_args_limits, tctl_render_limits, NULL, NULL },
	{ "limit", "tierN [cpu=30%|1.5|off] [memory=2G|off]",
	  "pin a tier's CPU ceiling and/or memory.high; off removes the pin",
	  tctl_args_limit, tctl_render_limits, NULL, NULL },
	{ "analyze", "", "bottlenecks of recent runs and what the optimiser would change next",
	  NULL, tctl_render_analyze, NULL, NULL },
	{ "optimiser", "on|off", "let the optimiser change knobs, or stop it",
	  tctl_args_onoff, tctl_render_onoff, "optimiser", NULL },
	{ "allocator", "on|off", "let the allocator re-tune limits, or leave them as they are",
	  tctl_args_onoff, tctl_render_onoff, "allocator", NULL },
	{ "fleet", "submit|run|result|status|drain|undrain ...",
	  "tasks through NATS JetStream to a fleet of nodes; this node's intake (fleet help)",
	  NULL, NULL, NULL, tctl_run_fleet },
	{ "help", "", "this text", NULL, NULL, NULL, run_help },
};

const struct tctl_cmd *tctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(CMDS) / sizeof(CMDS[0]); i++)
		if (!strcmp(CMDS[i].name, name))
			return &CMDS[i];
	return NULL;
}

void tctl_usage(FILE *out)
{
	fprintf(out,
		"usage: tierctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND [ARGS]\n"
		"\ncommands:\n");
	for (size_t i = 0; i < sizeof(CMDS) / sizeof(CMDS[0]); i++) {
		char head[128];

		snprintf(head, sizeof(head), "%s %s", CMDS[i].name, CMDS[i].synopsis);
		if (strlen(head) > 22)
			fprintf(out, "  %s\n  %-22s %s\n", head, "", CMDS[i].help);
		else
			fprintf(out, "  %-22s %s\n", head, CMDS[i].help);
	}
	fprintf(out,
		"\noptions:\n"
		"  -s, --socket PATH      the control socket (default $" TCTL_SOCKET_ENV
		", else " TCTL_SOCKET_DEFAULT ")\n"
		"  -j, --json             print the result as JSON, one object per line\n"
		"  -t, --timeout SECONDS  wait this long for a reply (default %d; 0 = forever)\n"
		"  -h, --help             this text\n"
		"\nexit status: 0 done, 1 tierd refused or failed or is unreachable, 2 usage error\n",
		TCTL_TIMEOUT_MS_DEFAULT / 1000);
}

int tctl_cmd_run(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv)
{
	return (cmd->run ? cmd->run : tctl_run_simple)(cmd, o, argc, argv);
}

int tctl_run_simple(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv)
{
	struct tctl_conn conn;
	struct sup_ctl_msg m;
	json_t *args = NULL;
	char err[512];
	int r, rc = TCTL_EXIT_FAIL;

	if (!cmd->args && argc > 1) {
		fprintf(stderr, "tierctl %s: takes no arguments\n", cmd->name);
		tctl_usage(stderr);
		return TCTL_EXIT_USAGE;
	}
	if (cmd->args) {
		r = cmd->args(cmd, argc, argv, err, sizeof(err), &args);
		if (r == -EINVAL) {
			fprintf(stderr, "tierctl %s: %s\n", cmd->name, err);
			tctl_usage(stderr);
			return TCTL_EXIT_USAGE;
		}
		if (r < 0) {
			fprintf(stderr, "tierctl: %s\n", err);
			return TCTL_EXIT_FAIL;
		}
	}
	r = tctl_connect(&conn, o->socket, o->timeout_ms, err, sizeof(err));
	if (r < 0) {
		json_decref(args);
		fprintf(stderr, "tierctl: %s\n", err);
		goto close_conn;
	}
	r = tctl_call_resumable(&conn, o->socket, o->timeout_ms, cmd->name, args, err, sizeof(err),
				&m);
	if (r < 0) {
		fprintf(stderr, "tierctl: %s\n", err);
		goto close_conn;
	}
	if (!m.ok) {
		fprintf(stderr, "tierctl: %s\n", m.error);
	} else if (o->json) {
		json_dumpf(m.result, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		rc = TCTL_EXIT_OK;
	} else {
		if (cmd->render)
			cmd->render(stdout, cmd->label, m.result);
		rc = TCTL_EXIT_OK;
	}
	json_decref(m.root);
close_conn:
	tctl_close(&conn);
	return rc;
}
