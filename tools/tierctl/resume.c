/* SPDX-License-Identifier: MIT */
/*
 * A request that waits for a task or a run outlives its connection: when
 * tierd goes away (a live upgrade tells the client to reconnect; a crash
 * just closes the socket), tierctl connects again and waits for the same
 * task or run by id. The id is known from the "accepted" partial reply
 * that submit and run send first when asked (ack).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "commands.h"

/* How long tierctl keeps trying to reach tierd again. */
#define RESUME_WINDOW_MS 60000
#define RESUME_RETRY_MS  20

struct resume {
	const char *key;   /* "task" or "run" */
	uint64_t    id;
};

static void on_partial(void *arg, const json_t *result)
{
	struct resume *rs = arg;
	json_t *v = json_object_get(result, rs->key);

	if (json_is_integer(v) && json_integer_value(v) > 0)
		rs->id = (uint64_t)json_integer_value(v);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool told_to_reconnect(const struct sup_ctl_msg *m, struct resume *rs)
{
	json_t *v;

	if (m->ok || !json_is_true(json_object_get(m->root, "reconnect")))
		return false;
	v = json_object_get(m->root, rs->key);
	if (json_is_integer(v) && json_integer_value(v) > 0)
		rs->id = (uint64_t)json_integer_value(v);
	return true;
}

int tctl_reconnect(struct tctl_conn *conn, const char *socket, int timeout_ms, char *err,
		   size_t errlen)
{
	int64_t give_up = mono_ms() + RESUME_WINDOW_MS;
	int r;

	tctl_close(conn);
	for (;;) {
		struct timespec pause = { 0, RESUME_RETRY_MS * 1000000L };

		r = tctl_connect(conn, socket, timeout_ms, err, errlen);
		if (r == 0 || mono_ms() >= give_up)
			return r;
		nanosleep(&pause, NULL);
	}
}

int tctl_call_resumable(struct tctl_conn *conn, const char *socket, int timeout_ms, const char *cmd,
			json_t *args, char *err, size_t errlen, struct sup_ctl_msg *ret)
{
	struct resume rs = { .key = !strcmp(cmd, "run") ? "run" : "task" };
	bool waits = (!strcmp(cmd, "submit") || !strcmp(cmd, "run")) && args &&
		     !json_is_true(json_object_get(args, "detach"));
	int r;

	if (!waits)
		return tctl_call(conn, cmd, args, NULL, NULL, err, errlen, ret);
	json_object_set_new(args, "ack", json_true());
	r = tctl_call(conn, cmd, args, on_partial, &rs, err, errlen, ret);
	for (;;) {
		bool again = (r == -ECONNRESET || r == -EPIPE) ||
			     (r == 0 && told_to_reconnect(ret, &rs));

		if (!again || !rs.id)
			return r;
		if (r == 0)
			json_decref(ret->root);
		fprintf(stderr, "tierctl: tierd went away (upgrade or restart); waiting for %s %llu "
			"again\n", rs.key, (unsigned long long)rs.id);
		r = tctl_reconnect(conn, socket, timeout_ms, err, errlen);
		if (r < 0)
			return r;
		r = tctl_call(conn, rs.key[0] == 't' ? "result" : "runs",
			      json_pack("{s:I, s:b}", rs.key, (json_int_t)rs.id, "wait", 1), NULL, NULL,
			      err, errlen, ret);
	}
}
