/* SPDX-License-Identifier: MIT */
/*
 * What the control-socket programs that run a server share (test_ctl_sock.c,
 * test_ctl_roles.c, test_ctl_tierctl.c): a real sup_loop and a real Unix
 * socket in a temporary directory, a handler that records what it sees and
 * answers a few canned commands, a client reading lines, and the uids and
 * groups the peers use. static inline, so a program need not use them all;
 * each program declares its suite with
 * TestSuite(server, .init = fx_setup, .fini = fx_teardown).
 */
#ifndef TESTS_CTL_TEST_H
#define TESTS_CTL_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../supervisor/ctl.h"
#include "../supervisor/ctl_roles.h"

#define NOBODY     65534
#define TEST_GROUP 12345

/* ---- server fixture -------------------------------------------------------- */

#define MAX_CALLS 16

struct call {
	uint64_t               id;
	char                   cmd[SUP_CTL_CMD_MAX + 1];
	char                  *args;     /* compact JSON */
	struct sup_ctl_client *c;
};

struct fx {
	char                   dir[64];
	char                   path[96];
	struct sup_loop       *l;
	struct sup_ctl        *ctl;
	struct call            calls[MAX_CALLS];
	int                    ncalls;
	int                    nclosed;
	bool                   closed_null;
	char                   reason[256];
	struct sup_ctl_client *held;
	uint64_t               held_id;
	bool                   hold_everything;
	struct sup_timer       flood;
	int                    flood_sent;
	int                    nerrors;
};

static struct fx F;

static inline json_t *canned_status(void)
{
	return json_pack("{s:s,s:i,s:f,s:s,s:{s:s,s:s,s:b,s:{s:{s:b},s:{s:b,s:s}}},"
			 "s:{s:b,s:b,s:b,s:b,s:b},s:s,s:[{s:i,s:i,s:{s:i,s:i}}],s:i}",
			 "version", "0.1.0", "pid", 4242, "uptime_s", 3725.0, "config", "/etc/tierd.conf",
			 "cgroup", "mount", "/sys/fs/cgroup", "root", "/sys/fs/cgroup/tierd",
			 "delegated", 0, "controllers", "cpu", "live", 1, "memory", "live", 0, "why",
			 "bound to cgroup v1",
			 "io_uring", "poll_multishot", 1, "accept_multishot", 1, "futex_wait", 0,
			 "waitid", 0, "timeout_multishot", 1,
			 "accounting", "cgroup", "tiers", "tier", 1, "agents", 2, "states", "ready", 1,
			 "starting", 1, "agents", 2);
}

static inline json_t *canned_agents(void)
{
	return json_pack("{s:[{s:s,s:i,s:s,s:i,s:i,s:i,s:f,s:n,s:i,s:s,s:n},{s:s}]}", "agents",
			 "name", "orchestrator", "tier", 1, "state", "ready", "pid", 777,
			 "incarnation", 2, "restarts", 1, "uptime_s", 42.0, "last_exit", "inflight", 0,
			 "mode", "native", "backoff_s",
			 "name", "bare");
}

static inline void on_request(void *ctx, struct sup_ctl_client *c, uint64_t id,
			      const char *cmd, json_t *args)
{
	struct fx *f = ctx;
	const char *agent = json_string_value(json_object_get(args, "agent"));

	if (f->ncalls < MAX_CALLS) {
		struct call *k = &f->calls[f->ncalls++];

		k->id = id;
		snprintf(k->cmd, sizeof(k->cmd), "%s", cmd);
		k->args = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
		k->c = c;
	}
	if (f->hold_everything || !strcmp(cmd, "hold") || !strcmp(cmd, "flood")) {
		sup_ctl_client_hold(c);
		f->held = c;
		f->held_id = id;
		if (!strcmp(cmd, "flood"))
			sup_timer_arm_in(f->l, &f->flood, 0);
	} else if (!strcmp(cmd, "bye")) {
		sup_ctl_reply_ok(c, id, NULL);
		sup_ctl_client_close(c);
		cr_assert_eq(sup_ctl_reply_ok(c, id, NULL), -ENOTCONN);
	} else if (!strcmp(cmd, "bigbye")) {
		/* More than the socket buffers take, then close: the rest
		 * waits in the queue for a reader that never comes. */
		char pad[65536];

		memset(pad, 'x', sizeof(pad) - 1);
		pad[sizeof(pad) - 1] = '\0';
		for (int i = 0; i < 32; i++)
			sup_ctl_send(c, json_pack("{s:s,s:s}", "event", "pad", "data", pad));
		sup_ctl_client_close(c);
	} else if (!strcmp(cmd, "echo")) {
		sup_ctl_reply_ok(c, id, json_pack("{s:s,s:O,s:s}", "cmd", cmd, "args", args, "role",
						  sup_ctl_role_name(sup_ctl_client_role(c))));
	} else if (!strcmp(cmd, "stream")) {
		sup_ctl_reply_more(c, id, json_pack("{s:i}", "n", 1));
		sup_ctl_reply_more(c, id, json_pack("{s:i}", "n", 2));
		sup_ctl_reply_ok(c, id, json_pack("{s:i}", "total", 2));
	} else if (!strcmp(cmd, "status")) {
		sup_ctl_reply_ok(c, id, canned_status());
	} else if (!strcmp(cmd, "agents")) {
		sup_ctl_reply_ok(c, id, canned_agents());
	} else if (!strcmp(cmd, "start") && agent && !strcmp(agent, "orchestrator")) {
		sup_ctl_reply_ok(c, id, json_pack("{s:[s]}", "agents", "orchestrator"));
	} else if (!strcmp(cmd, "start")) {
		sup_ctl_reply_err(c, id, ENOENT, "no agent named %s", agent ? agent : "?");
	} else {
		sup_ctl_reply_err(c, id, EINVAL, "unknown command %s", cmd);
	}
}

static inline void on_closed(void *ctx, struct sup_ctl_client *c, const char *reason)
{
	struct fx *f = ctx;

	f->nclosed++;
	f->closed_null = !reason;
	snprintf(f->reason, sizeof(f->reason), "%s", reason ? reason : "");
	if (c == f->held) {
		f->held = NULL;
		sup_timer_disarm(f->l, &f->flood);
		sup_ctl_client_release(c);
	}
}

static inline void on_error(void *ctx, int err, const char *what)
{
	((struct fx *)ctx)->nerrors++;
}

static const struct sup_ctl_handler HANDLER = {
	.request = on_request,
	.closed = on_closed,
	.error = on_error,
};

/* A slow reader's server side: 8 KiB events every millisecond until the
 * module gives up on the client. */
static inline void on_flood(struct sup_loop *l, struct sup_timer *t)
{
	struct fx *f = t->data;
	char pad[8192];

	if (!f->held)
		return;
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	if (sup_ctl_send(f->held, json_pack("{s:s,s:s}", "event", "pad", "data", pad)) < 0)
		return;
	f->flood_sent++;
	sup_timer_arm_in(l, t, 1000000);
}

static inline int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static inline void fx_setup(void)
{
	char why[256];

	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/test_ctl.XXXXXX");
	cr_assert(mkdtemp(F.dir));
	/* Peers running as nobody must reach the socket below. */
	chmod(F.dir, 0755);
	snprintf(F.path, sizeof(F.path), "%s/run/tierd.sock", F.dir);
	F.l = sup_loop_new(64, why, sizeof(why));
	cr_assert(F.l, "%s", why);
	sup_timer_init(&F.flood, on_flood, &F);
}

static inline void noop_timer(struct sup_loop *l, struct sup_timer *t)
{
}

/* Turn the loop for ms: every completion in flight gets dispatched. */
static inline void turn_for(int ms)
{
	struct sup_timer t;
	int64_t end = sup_loop_now(F.l) + (int64_t)ms * 1000000;

	sup_timer_init(&t, noop_timer, NULL);
	while (sup_loop_now(F.l) < end) {
		sup_timer_arm(F.l, &t, end);
		cr_assert_eq(sup_loop_turn(F.l), 0);
		sup_timer_disarm(F.l, &t);
	}
}

/* One bounded turn of at most 5 ms. */
static inline void turn_once(void)
{
	struct sup_timer t;

	sup_timer_init(&t, noop_timer, NULL);
	sup_timer_arm_in(F.l, &t, 5000000);
	cr_assert_eq(sup_loop_turn(F.l), 0);
	sup_timer_disarm(F.l, &t);
}

static inline void fx_teardown(void)
{
	sup_ctl_close(F.ctl);
	F.ctl = NULL;
	sup_timer_disarm(F.l, &F.flood);
	turn_for(20);
	sup_loop_free(F.l);
	for (int i = 0; i < F.ncalls; i++)
		free(F.calls[i].args);
	nftw(F.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline struct sup_ctl_opts default_opts(void)
{
	return (struct sup_ctl_opts){ .sz = sizeof(struct sup_ctl_opts), .path = F.path };
}

static inline void open_ctl(const struct sup_ctl_opts *o)
{
	char err[256];

	F.ctl = sup_ctl_open(F.l, o, &HANDLER, &F, err, sizeof(err));
	cr_assert(F.ctl, "sup_ctl_open: %s", err);
}

static inline int cli_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

static inline void cli_send(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t k = send(fd, s + off, n - off, MSG_NOSIGNAL);

		if (k < 0 && errno == EAGAIN) {
			turn_once();
			continue;
		}
		cr_assert_gt(k, 0, "send: %s", strerror(errno));
		off += (size_t)k;
	}
}

/* Serve until one line has arrived on fd; returns it without '\n' (or
 * NULL at EOF). The caller frees it. Lines already read but not returned
 * stay in the static buffer for the next call on the same fd. */
static char pend[1 << 16];
static size_t npend;

static inline char *cli_line(int fd)
{
	int64_t end = sup_loop_now(F.l) + 5000000000LL;

	for (;;) {
		char *nl = memchr(pend, '\n', npend);
		ssize_t k;

		if (nl) {
			size_t n = (size_t)(nl - pend);
			char *s = strndup(pend, n);

			memmove(pend, nl + 1, npend - n - 1);
			npend -= n + 1;
			return s;
		}
		cr_assert_lt(sup_loop_now(F.l), end, "no line from the server within 5 s");
		turn_once();
		k = recv(fd, pend + npend, sizeof(pend) - npend, 0);
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return NULL;
		if (k < 0) {
			cr_assert_eq(errno, EAGAIN, "recv: %s", strerror(errno));
			continue;
		}
		npend += (size_t)k;
	}
}

static inline json_t *cli_msg(int fd)
{
	char *s = cli_line(fd);
	json_t *m;

	cr_assert(s, "the server closed the connection");
	m = json_loads(s, 0, NULL);
	cr_assert(m, "not JSON: %s", s);
	free(s);
	return m;
}

static inline void expect_eof(int fd)
{
	char *s = cli_line(fd);

	cr_assert_null(s, "expected EOF, got %s", s);
}

static inline void turn_until_closed(int n)
{
	int64_t end = sup_loop_now(F.l) + 5000000000LL;

	while (F.nclosed < n) {
		cr_assert_lt(sup_loop_now(F.l), end, "closed() not called within 5 s");
		turn_once();
	}
}

static inline void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run a peer as another uid");
}

#endif
