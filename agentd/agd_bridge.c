/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agd_bridge.h"

/* Longest reason or event message agentd writes: one sentence. */
#define REASON_MAX 512

extern char **environ;

int64_t agd_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void agd_log(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "<%d>agentd[%d]: %s\n", prio, (int)getpid(), line);
}

void agd_quit(struct agd *g, int code)
{
	if (!g->done)
		g->exit_code = code;
	g->done = true;
}

static void ring_failed(struct agd *g, const char *what, int err)
{
	agd_log(3, "%s: %s; exiting", what, tier_strerror(err));
	agd_quit(g, AGD_EXIT_RING);
}

void agd_reply(struct agd *g, uint64_t id, int64_t started_ns, int status, double quality,
	       const void *payload, uint32_t len)
{
	struct tier_task t = { .id = id, .started_ns = started_ns };
	int r;

	if (g->done && g->exit_code == AGD_EXIT_RING)
		return;
	if (len > g->max_payload)
		len = g->max_payload;
	r = tier_agent_reply(g->a, &t, status, quality, payload, len);
	if (r < 0) {
		ring_failed(g, "sending a result", r);
		return;
	}
	if (status == TIER_ST_OK)
		g->st.ok++;
	else if (status == TIER_ST_TIMEOUT)
		g->st.timeouts++;
	else
		g->st.errors++;
}

void agd_fail(struct agd *g, uint64_t id, int64_t started_ns, int status, const char *fmt, ...)
{
	char why[REASON_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(why))
		n = sizeof(why) - 1;
	agd_reply(g, id, started_ns, status, -1, why, (uint32_t)n);
}

void agd_event(struct agd *g, uint64_t task_id, const char *kind, const char *fmt, ...)
{
	char msg[REASON_MAX];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (g->done && g->exit_code == AGD_EXIT_RING)
		return;
	r = tier_agent_event(g->a, task_id, kind, msg);
	if (r < 0) {
		ring_failed(g, "sending an event", r);
		return;
	}
	g->st.events++;
}

/* Longest line forwarded; tierd keeps 512 bytes of a LOG record. */
#define FORWARD_MAX 480

static bool log_take(struct agd *g)
{
	double burst = g->o->log_rate * 2 > 1 ? g->o->log_rate * 2 : 1;

	g->log_tokens += (double)(g->now - g->log_refill_ns) * 1e-9 * g->o->log_rate;
	g->log_refill_ns = g->now;
	if (g->log_tokens > burst)
		g->log_tokens = burst;
	if (g->log_tokens < 1)
		return false;
	g->log_tokens -= 1;
	return true;
}

static void log_line(struct agd *g, const char *line)
{
	int r = tier_agent_log(g->a, line);

	/* A full ring drops the line rather than stall the bridge on logs. */
	if (r == -EAGAIN)
		g->st.log_dropped++;
	else if (r < 0)
		ring_failed(g, "sending a log line", r);
}

void agd_forward(struct agd *g, const char *line, size_t len)
{
	char buf[FORWARD_MAX + 1];

	if (g->done && g->exit_code == AGD_EXIT_RING)
		return;
	if (!log_take(g)) {
		g->log_unreported++;
		g->st.log_dropped++;
		return;
	}
	if (g->log_unreported) {
		snprintf(buf, sizeof(buf), "agentd: %llu lines of the agent's stderr dropped (rate limit)",
			 (unsigned long long)g->log_unreported);
		g->log_unreported = 0;
		log_line(g, buf);
	}
	if (len > FORWARD_MAX)
		len = FORWARD_MAX;
	for (size_t i = 0; i < len; i++)
		buf[i] = line[i] ? line[i] : ' ';
	buf[len] = 0;
	log_line(g, buf);
}

int64_t agd_deadline(const struct agd *g, const struct tier_task *t)
{
	int64_t mine = g->o->timeout_ns > 0 ? t->started_ns + g->o->timeout_ns : 0;

	if (!t->deadline_ns)
		return mine;
	if (!mine)
		return t->deadline_ns;
	return t->deadline_ns < mine ? t->deadline_ns : mine;
}

static bool ring_var(const char *kv)
{
	return !strncmp(kv, "TIER_PROTO=", 11) || !strncmp(kv, "TIER_SPIN_NS=", 13) ||
	       !strncmp(kv, "TIER_BRIDGE=", 12);
}

char **agd_env_base(enum agd_mode mode)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (ring_var(environ[i]))
			continue;
		env[k] = strdup(environ[i]);
		if (!env[k])
			goto free_env;
		k++;
	}
	env[k] = strdup(mode == AGD_MODE_STDIO ? "TIER_BRIDGE=stdio" : "TIER_BRIDGE=exec");
	if (!env[k])
		goto free_env;
	return env;

free_env:
	agd_env_free(env);
	errno = ENOMEM;
	return NULL;
}

char **agd_env_extend(char **base, char *const extra[], size_t n)
{
	size_t nb = 0;
	char **env;

	while (base[nb])
		nb++;
	env = calloc(n + nb + 1, sizeof(*env));
	if (!env)
		return NULL;
	/* Extras first: getenv() takes the first match, so they win over a
	 * key of the same name in the operator's environment. */
	for (size_t i = 0; i < n; i++) {
		env[i] = strdup(extra[i]);
		if (!env[i]) {
			agd_env_free_extra(env, i);
			errno = ENOMEM;
			return NULL;
		}
	}
	memcpy(env + n, base, nb * sizeof(*env));
	return env;
}

void agd_env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
}

void agd_env_free_extra(char **env, size_t n)
{
	if (!env)
		return;
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(env);
}

int agd_next_task(struct agd *g, struct tier_task *t)
{
	int r = tier_agent_next(g->a, t, 0);

	if (r < 0) {
		agd_log(3, "reading tasks: %s; exiting", tier_strerror(r));
		agd_quit(g, AGD_EXIT_RING);
		return 0;
	}
	return r;
}
