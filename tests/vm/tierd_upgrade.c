/* SPDX-License-Identifier: MIT */
/*
 * VM (Debian's 6.1 kernel, pure cgroup2): the live upgrade and the crash
 * recovery of the task journal, on the kernel tierd targets.
 *
 * tierd_upgrade_in_place: tierd with four agents (this program, answering
 * each task after 2 ms) takes 300 detached submits, is upgraded to
 * /opt/tierd/bin/tierd-alt (another build tag) and back while they run;
 * passes when both upgrades answer ok with the same pid, no agent pid
 * changed, and every task ended ok on its first attempt.
 *
 * tierd_crash_replay: 300 more detached submits to agents that take 20 ms
 * each, SIGKILL of tierd while most are queued, a new tierd on the same
 * journal; passes when every acknowledged id has its one final result, ok.
 */
#include <jansson.h>
#include <libgen.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../../include/tier/agent.h"
#include "vmtest.h"

#define ROOT    "tierd-vm-up"
#define SOCK    "/run/tierd-vm-up.sock"
#define CONF    "/tmp/tierd-vm-up.ini"
#define LOG     "/tmp/tierd-vm-up.log"
#define JOURNAL "/tmp/tierd-vm-up-journal"
#define NTASKS  300

static int worker(int ms)
{
	struct tier_agent *a = tier_agent_open(NULL);
	struct tier_task t;

	if (!a)
		return 1;
	while (tier_agent_next(a, &t, -1) == 1) {
		usleep((useconds_t)ms * 1000);
		tier_agent_reply(a, &t, TIER_ST_OK, 9, "done", 4);
	}
	return 0;
}

/* One control connection, JSON lines. */
struct conn {
	int  fd;
	char buf[1 << 16];
	size_t len;
	int  next_id;
};

static bool conn_open(struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 60 };

	c->len = 0;
	c->next_id = 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", SOCK);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return false;
	}
	return true;
}

static bool conn_wait_open(struct conn *c)
{
	for (int i = 0; i < 300; i++) {
		if (conn_open(c))
			return true;
		usleep(20000);
	}
	return false;
}

static int conn_send(struct conn *c, const char *cmd, json_t *args)
{
	json_t *m = json_pack("{s:i, s:s, s:o}", "id", c->next_id, "cmd", cmd, "args", args);
	char *s = json_dumps(m, JSON_COMPACT);
	size_t n = strlen(s);
	bool ok;

	s = realloc(s, n + 2);
	s[n] = '\n';
	ok = write(c->fd, s, n + 1) == (ssize_t)(n + 1);
	free(s);
	json_decref(m);
	return ok ? c->next_id++ : -1;
}

/* The next final reply (partials skipped). NULL on EOF. */
static json_t *conn_read(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl) {
			json_t *m = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);

			c->len -= (size_t)(nl + 1 - c->buf);
			memmove(c->buf, nl + 1, c->len);
			if (m && json_is_true(json_object_get(m, "more"))) {
				json_decref(m);
				continue;
			}
			return m;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static json_t *call(struct conn *c, const char *cmd, json_t *args)
{
	return conn_send(c, cmd, args) < 0 ? NULL : conn_read(c);
}

static pid_t start_tierd(const char *self, int ms)
{
	FILE *f = fopen(CONF, "w");
	pid_t p;

	if (!f)
		return -1;
	fprintf(f, "[supervisor]\ncgroup_root = " ROOT "\ncontrol_socket = " SOCK "\n"
		"metrics_address = off\nlog_level = info\noptimiser = off\njournal_dir = " JOURNAL "\n"
		"task_queue_limit = 10000\nresult_retention_max = 10000\n");
	for (int i = 0; i < 4; i++)
		fprintf(f, "[agent w%d]\ntier = 3\nuser = 0\ngroup = 0\nexec = %s --worker %d\n", i, self,
			ms);
	fclose(f);
	p = fork();
	if (p == 0) {
		int fd = open(LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl("/opt/tierd/bin/tierd", "/opt/tierd/bin/tierd", "-c", CONF, (char *)NULL);
		_exit(127);
	}
	return p;
}

/* name -> pid of every agent, once all four are ready. */
static bool agent_pids(struct conn *c, long pids[4])
{
	for (int tries = 0; tries < 200; tries++) {
		json_t *r = call(c, "agents", json_object());
		json_t *ags = json_object_get(json_object_get(r, "result"), "agents");
		size_t i, ready = 0;
		json_t *a;

		json_array_foreach(ags, i, a) {
			const char *name = json_string_value(json_object_get(a, "name"));

			if (name && name[0] == 'w' && name[1] >= '0' && name[1] <= '3' &&
			    !strcmp(json_string_value(json_object_get(a, "state")), "ready")) {
				pids[name[1] - '0'] = (long)json_integer_value(json_object_get(a, "pid"));
				ready++;
			}
		}
		json_decref(r);
		if (ready == 4)
			return true;
		usleep(50000);
	}
	return false;
}

static int submit_all(struct conn *c, uint64_t *ids, int n)
{
	int got = 0;

	for (int i = 0; i < n; i++)
		conn_send(c, "submit", json_pack("{s:i, s:s, s:s, s:b}", "tier", 3, "type", "t", "payload",
						 "x", "detach", 1));
	for (int i = 0; i < n; i++) {
		json_t *r = conn_read(c);
		json_t *t = json_object_get(json_object_get(r, "result"), "task");

		if (json_is_true(json_object_get(r, "ok")) && json_is_integer(t))
			ids[got++] = (uint64_t)json_integer_value(t);
		json_decref(r);
	}
	return got;
}

/* Every id ended ok; attempts at most max_attempts. Counts what did not. */
static int results_ok(struct conn *c, const uint64_t *ids, int n, int max_attempts, char *why,
		      size_t whylen)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		json_t *r = call(c, "result", json_pack("{s:I, s:b}", "task", (json_int_t)ids[i], "wait", 1));
		json_t *res = json_object_get(r, "result");
		const char *st = json_string_value(json_object_get(res, "status"));
		int att = (int)json_integer_value(json_object_get(res, "attempts"));

		if (!st || strcmp(st, "ok") || att > max_attempts) {
			if (!bad++)
				snprintf(why, whylen, "task %llu: %s, %d attempts (%s)",
					 (unsigned long long)ids[i], st ? st : "no result", att,
					 json_string_value(json_object_get(r, "error")) ?: "");
		}
		json_decref(r);
	}
	return bad;
}

static bool upgrade_to(struct conn *c, const char *bin, pid_t tierd, char *why, size_t whylen)
{
	json_t *r = call(c, "upgrade", json_pack("{s:s}", "binary", bin));
	json_t *res = json_object_get(r, "result");
	bool ok = json_is_true(json_object_get(r, "ok")) &&
		  json_integer_value(json_object_get(res, "pid")) == tierd;

	if (ok)
		vt_note("upgraded to %s in %.1f ms", json_string_value(json_object_get(res, "to")),
			json_number_value(json_object_get(res, "pause_ms")));
	else
		snprintf(why, whylen, "upgrade to %s: %s", bin,
			 r ? json_string_value(json_object_get(r, "error")) : "no reply");
	json_decref(r);
	return ok;
}

static void stop(pid_t p)
{
	kill(p, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(p, NULL, WNOHANG) == p)
			return;
		usleep(100000);
	}
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

int main(int argc, char **argv)
{
	static uint64_t ids[NTASKS];
	const char *alt = "/opt/tierd/bin/tierd-alt";
	char self[PATH_MAX], why[512] = "";
	long before[4] = { 0 }, after[4] = { 0 };
	struct conn c;
	pid_t tierd;
	int n, bad;
	bool ok;

	if (argc > 2 && !strcmp(argv[1], "--worker"))
		return worker(atoi(argv[2]));
	if (access("/opt/tierd/bin/tierd", X_OK) < 0) {
		printf("VMTEST SKIP tierd_upgrade_in_place: tierd is not in the image\n");
		return 0;
	}
	if (access(alt, X_OK) < 0)
		alt = "/opt/tierd/bin/tierd";
	snprintf(self, sizeof(self), "/vmtests/%s", basename(argv[0]));

	/* ---- live upgrade ---- */
	tierd = start_tierd(self, 2);
	ok = tierd > 0 && conn_wait_open(&c) && agent_pids(&c, before);
	if (!ok)
		snprintf(why, sizeof(why), "tierd or its agents did not come up");
	n = ok ? submit_all(&c, ids, NTASKS) : 0;
	ok = ok && n == NTASKS && upgrade_to(&c, alt, tierd, why, sizeof(why));
	if (ok) {
		close(c.fd);
		ok = conn_wait_open(&c) && upgrade_to(&c, "/opt/tierd/bin/tierd", tierd, why, sizeof(why));
	}
	if (ok) {
		close(c.fd);
		ok = conn_wait_open(&c) && agent_pids(&c, after) && !memcmp(before, after, sizeof(before));
		if (!ok)
			snprintf(why, sizeof(why), "agent pids changed: %ld %ld %ld %ld -> %ld %ld %ld %ld",
				 before[0], before[1], before[2], before[3], after[0], after[1], after[2],
				 after[3]);
	}
	bad = ok ? results_ok(&c, ids, n, 1, why, sizeof(why)) : -1;
	if (ok && bad == 0)
		vt_pass("tierd_upgrade_in_place", "%d tasks across two upgrades (to %s and back), pid %d "
			"and the 4 agent pids kept, every task ok on its first attempt", n, alt, (int)tierd);
	else
		vt_fail("tierd_upgrade_in_place", "%s (%d tasks not ok)", why, bad);
	if (!ok || bad)
		system("tail -20 " LOG);
	close(c.fd);
	stop(tierd);

	/* ---- crash and replay ---- */
	why[0] = 0;
	tierd = start_tierd(self, 20);
	ok = tierd > 0 && conn_wait_open(&c) && agent_pids(&c, before);
	n = ok ? submit_all(&c, ids, NTASKS) : 0;
	/* 4 agents, 20 ms each: most of the 300 are still queued. */
	usleep(200000);
	if (tierd > 0) {
		kill(tierd, SIGKILL);
		waitpid(tierd, NULL, 0);
	}
	close(c.fd);
	tierd = ok ? start_tierd(self, 2) : -1;
	ok = ok && n == NTASKS && tierd > 0 && conn_wait_open(&c);
	bad = ok ? results_ok(&c, ids, n, 2, why, sizeof(why)) : -1;
	if (ok && bad == 0)
		vt_pass("tierd_crash_replay", "%d acknowledged tasks, tierd SIGKILLed mid-stream and "
			"started again on the same journal: every one has its one ok result", n);
	else
		vt_fail("tierd_crash_replay", "%s (%d acknowledged: %d without an ok result)",
			why[0] ? why : "tierd did not come back", n, bad);
	if (!ok || bad)
		system("tail -20 " LOG);
	if (c.fd >= 0)
		close(c.fd);
	if (tierd > 0)
		stop(tierd);
	return vt_failures ? 1 : 0;
}
