/* SPDX-License-Identifier: MIT */
/*
 * Control socket: the pure protocol helpers (framing, request validation,
 * message builders; supervisor/ctlproto.c), then the server (ctl.c and its
 * socket-file and credential half, ctl_sock.c) on a real sup_loop and a real Unix
 * socket in a temporary directory with a handler that records what it
 * sees, then tierctl end to end against that server. Peers with another
 * uid are forked children that drop to 65534 before connecting; they need
 * root (CAP_SETUID) and skip without it.
 */
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
#include "../supervisor/ctl_args.h"
#include "../supervisor/ctl_roles.h"
#include "../supervisor/ctl_sock.h"

#define NOBODY     65534
#define TEST_GROUP 12345

/* ---- framing ------------------------------------------------------------ */

static void feed(struct sup_ctl_buf *b, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		char *p;
		size_t room, k;

		cr_assert_eq(sup_ctl_buf_space(b, &p, &room), 0);
		k = n < room ? n : room;
		memcpy(p, s, k);
		sup_ctl_buf_commit(b, k);
		s += k;
		n -= k;
	}
}

static void expect_line(struct sup_ctl_buf *b, const char *want)
{
	const char *line;
	size_t len;

	cr_assert_eq(sup_ctl_buf_next(b, &line, &len), 1, "expected the line %s", want);
	cr_assert_eq(len, strlen(want), "got %.*s", (int)len, line);
	cr_assert(!memcmp(line, want, len));
}

static void expect_no_line(struct sup_ctl_buf *b)
{
	const char *line;
	size_t len;

	cr_assert_eq(sup_ctl_buf_next(b, &line, &len), 0);
}

Test(framing, should_yield_several_lines_from_one_read)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
	expect_line(&b, "{\"a\":1}");
	expect_line(&b, "{\"b\":2}");
	expect_line(&b, "{\"c\":3}");
	expect_no_line(&b);
	sup_ctl_buf_free(&b);
}

Test(framing, should_join_a_line_split_across_reads)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "{\"id\":1,");
	expect_no_line(&b);
	feed(&b, "\"cmd\":");
	expect_no_line(&b);
	feed(&b, "\"status\"}\n{\"id\"");
	expect_line(&b, "{\"id\":1,\"cmd\":\"status\"}");
	expect_no_line(&b);
	cr_assert_eq(sup_ctl_buf_pending(&b), 5);
	sup_ctl_buf_free(&b);
}

Test(framing, should_refuse_a_line_longer_than_max_line)
{
	struct sup_ctl_buf b;
	const char *line;
	size_t len;

	sup_ctl_buf_init(&b, 16);
	feed(&b, "0123456789abcdef");
	expect_no_line(&b);
	feed(&b, "g");
	cr_assert_eq(sup_ctl_buf_next(&b, &line, &len), -EMSGSIZE);
	/* No resynchronising: the stream stays refused. */
	cr_assert_eq(sup_ctl_buf_next(&b, &line, &len), -EMSGSIZE);
	sup_ctl_buf_free(&b);
}

Test(framing, should_accept_a_line_of_exactly_max_line)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 16);
	feed(&b, "0123456789abcdef\n");
	expect_line(&b, "0123456789abcdef");
	feed(&b, "x\n");
	expect_line(&b, "x");
	sup_ctl_buf_free(&b);
}

Test(framing, should_ignore_blank_lines)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "\n\r\n  \t\n{}\n\n");
	expect_line(&b, "{}");
	expect_no_line(&b);
	sup_ctl_buf_free(&b);
}

Test(framing, should_strip_crlf)
{
	struct sup_ctl_buf b;

	sup_ctl_buf_init(&b, 0);
	feed(&b, "{\"x\":1}\r\n");
	expect_line(&b, "{\"x\":1}");
	sup_ctl_buf_free(&b);
}

Test(framing, should_carry_a_long_line_through_many_small_reads)
{
	struct sup_ctl_buf b;
	size_t n = 300000;
	char *big = malloc(n + 2);

	cr_assert(big);
	memset(big, 'x', n);
	big[n] = '\n';
	big[n + 1] = '\0';
	sup_ctl_buf_init(&b, n);
	for (size_t off = 0; off < n + 1; off += 1000) {
		char *p;
		size_t room, k = n + 1 - off < 1000 ? n + 1 - off : 1000;

		cr_assert_eq(sup_ctl_buf_space(&b, &p, &room), 0);
		cr_assert_geq(room, k);
		memcpy(p, big + off, k);
		sup_ctl_buf_commit(&b, k);
		if (off + k < n + 1)
			expect_no_line(&b);
	}
	big[n] = '\0';
	expect_line(&b, big);
	free(big);
	sup_ctl_buf_free(&b);
}

/* ---- requests ------------------------------------------------------------ */

static int parse(const char *s, struct sup_ctl_req *req, char *err, bool *has_id, uint64_t *id)
{
	return sup_ctl_parse_request(s, strlen(s), err, 256, req, has_id, id);
}

Test(request, should_parse_a_valid_request)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":7,\"cmd\":\"start\",\"args\":{\"agent\":\"a\"}}", &req, err,
			   &has_id, &id), 0);
	cr_assert_eq(req.id, 7);
	cr_assert_str_eq(req.cmd, "start");
	cr_assert_str_eq(json_string_value(json_object_get(req.args, "agent")), "a");
	json_decref(req.root);
}

Test(request, should_default_args_to_an_empty_object)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,\"cmd\":\"status\"}", &req, err, &has_id, &id), 0);
	cr_assert(json_is_object(req.args));
	cr_assert_eq(json_object_size(req.args), 0);
	json_decref(req.root);
	cr_assert_eq(parse("{\"id\":1,\"cmd\":\"status\",\"args\":null}", &req, err, &has_id, &id), 0);
	cr_assert(json_is_object(req.args));
	json_decref(req.root);
}

Test(request, should_name_invalid_json)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "invalid JSON"), "%s", err);
	cr_assert(!has_id);
}

Test(request, should_name_a_missing_id)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"cmd\":\"status\"}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "no id"), "%s", err);
	cr_assert(!has_id);
	cr_assert_eq(parse("{\"id\":-1,\"cmd\":\"status\"}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "bad id"), "%s", err);
	cr_assert_eq(parse("{\"id\":1.5,\"cmd\":\"status\"}", &req, err, &has_id, &id), -EINVAL);
}

Test(request, should_name_a_missing_cmd_and_keep_the_id)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":42}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "no cmd"), "%s", err);
	cr_assert(has_id);
	cr_assert_eq(id, 42);
	cr_assert_eq(parse("{\"id\":42,\"cmd\":7}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "bad cmd"), "%s", err);
	cr_assert_eq(parse("{\"id\":42,\"cmd\":\"Bad Name\"}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "bad cmd"), "%s", err);
}

Test(request, should_refuse_args_that_are_not_an_object)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,\"cmd\":\"x\",\"args\":[1]}", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "args"), "%s", err);
}

Test(request, should_refuse_a_line_that_is_not_an_object)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("[1,2]", &req, err, &has_id, &id), -EINVAL);
	cr_assert(strstr(err, "must be a JSON object"), "%s", err);
}

Test(request, should_refuse_duplicate_keys)
{
	struct sup_ctl_req req;
	char err[256];
	bool has_id;
	uint64_t id;

	cr_assert_eq(parse("{\"id\":1,\"id\":2,\"cmd\":\"x\"}", &req, err, &has_id, &id), -EINVAL);
}

/* ---- messages ------------------------------------------------------------ */

static char *encode(json_t *m)
{
	size_t n;
	char *buf;

	cr_assert_eq(sup_ctl_encode(m, NULL, 0, &n), 0);
	buf = malloc(n + 1);
	cr_assert_eq(sup_ctl_encode(m, buf, n, &n), 0);
	buf[n] = '\0';
	json_decref(m);
	return buf;
}

Test(message, should_encode_one_line_per_message)
{
	char *s = encode(sup_ctl_msg_ok(3, json_pack("{s:s}", "text", "two\nlines")));

	cr_assert_eq(strchr(s, '\n'), s + strlen(s) - 1, "%s", s);
	cr_assert_str_eq(s, "{\"id\":3,\"ok\":true,\"result\":{\"text\":\"two\\nlines\"}}\n");
	free(s);
}

Test(message, should_carry_the_errno_name_as_code)
{
	char *s = encode(sup_ctl_msg_err(true, 9, -ENOENT, "no agent named x"));

	cr_assert_str_eq(s, "{\"id\":9,\"ok\":false,\"error\":\"no agent named x\",\"code\":\"ENOENT\"}\n");
	free(s);
	cr_assert_str_eq(sup_ctl_errno_name(EPERM), "EPERM");
	cr_assert_str_eq(sup_ctl_errno_name(-EBUSY), "EBUSY");
	cr_assert_eq(sup_ctl_errno_from_name("EINVAL"), EINVAL);
	cr_assert_eq(sup_ctl_errno_from_name("ENOSUCH"), 0);
}

Test(message, should_replace_bytes_that_are_not_utf8_in_an_error)
{
	char *s = encode(sup_ctl_msg_err(false, 0, EINVAL, "bad \xff\xc3 near \xe2\x82 end"));

	cr_assert_str_eq(s, "{\"id\":null,\"ok\":false,\"error\":\"bad ?? near ?? end\",\"code\":\"EINVAL\"}\n");
	free(s);
	s = encode(sup_ctl_msg_err(true, 1, EINVAL, "caf\xc3\xa9"));
	cr_assert(strstr(s, "caf\xc3\xa9"), "%s", s);
	free(s);
}

Test(message, should_tell_replies_partials_and_events_apart)
{
	static const char *lines[] = {
		"{\"id\":1,\"ok\":true,\"result\":{\"a\":1}}",
		"{\"id\":1,\"ok\":true,\"more\":true,\"result\":{}}",
		"{\"event\":\"agent_exit\",\"agent\":\"a\"}",
		"{\"ok\":false,\"error\":\"permission denied\",\"code\":\"EPERM\"}",
	};
	struct sup_ctl_msg m;
	char err[256];

	cr_assert_eq(sup_ctl_parse_msg(lines[0], strlen(lines[0]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_REPLY);
	cr_assert(m.ok && m.has_id && m.id == 1);
	json_decref(m.root);
	cr_assert_eq(sup_ctl_parse_msg(lines[1], strlen(lines[1]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_PARTIAL);
	json_decref(m.root);
	cr_assert_eq(sup_ctl_parse_msg(lines[2], strlen(lines[2]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_EVENT);
	cr_assert_str_eq(m.event, "agent_exit");
	json_decref(m.root);
	cr_assert_eq(sup_ctl_parse_msg(lines[3], strlen(lines[3]), err, sizeof(err), &m), 0);
	cr_assert_eq(m.kind, SUP_CTL_MSG_REPLY);
	cr_assert(!m.ok && !m.has_id);
	cr_assert_str_eq(m.code, "EPERM");
	json_decref(m.root);
}

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

static json_t *canned_status(void)
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

static json_t *canned_agents(void)
{
	return json_pack("{s:[{s:s,s:i,s:s,s:i,s:i,s:i,s:f,s:n,s:i,s:s,s:n},{s:s}]}", "agents",
			 "name", "orchestrator", "tier", 1, "state", "ready", "pid", 777,
			 "incarnation", 2, "restarts", 1, "uptime_s", 42.0, "last_exit", "inflight", 0,
			 "mode", "native", "backoff_s",
			 "name", "bare");
}

static void on_request(void *ctx, struct sup_ctl_client *c, uint64_t id, const char *cmd,
		       json_t *args)
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

static void on_closed(void *ctx, struct sup_ctl_client *c, const char *reason)
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

static void on_error(void *ctx, int err, const char *what)
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
static void on_flood(struct sup_loop *l, struct sup_timer *t)
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

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void fx_setup(void)
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

static void noop_timer(struct sup_loop *l, struct sup_timer *t)
{
}

/* Turn the loop for ms: every completion in flight gets dispatched. */
static void turn_for(int ms)
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
static void turn_once(void)
{
	struct sup_timer t;

	sup_timer_init(&t, noop_timer, NULL);
	sup_timer_arm_in(F.l, &t, 5000000);
	cr_assert_eq(sup_loop_turn(F.l), 0);
	sup_timer_disarm(F.l, &t);
}

static void fx_teardown(void)
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

static struct sup_ctl_opts default_opts(void)
{
	return (struct sup_ctl_opts){ .sz = sizeof(struct sup_ctl_opts), .path = F.path };
}

static void open_ctl(const struct sup_ctl_opts *o)
{
	char err[256];

	F.ctl = sup_ctl_open(F.l, o, &HANDLER, &F, err, sizeof(err));
	cr_assert(F.ctl, "sup_ctl_open: %s", err);
}

static int cli_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

static void cli_send(int fd, const char *s)
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

static char *cli_line(int fd)
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

static json_t *cli_msg(int fd)
{
	char *s = cli_line(fd);
	json_t *m;

	cr_assert(s, "the server closed the connection");
	m = json_loads(s, 0, NULL);
	cr_assert(m, "not JSON: %s", s);
	free(s);
	return m;
}

static void expect_eof(int fd)
{
	char *s = cli_line(fd);

	cr_assert_null(s, "expected EOF, got %s", s);
}

static void turn_until_closed(int n)
{
	int64_t end = sup_loop_now(F.l) + 5000000000LL;

	while (F.nclosed < n) {
		cr_assert_lt(sup_loop_now(F.l), end, "closed() not called within 5 s");
		turn_once();
	}
}

TestSuite(server, .init = fx_setup, .fini = fx_teardown);

Test(server, should_deliver_a_request_and_its_reply)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":5,\"cmd\":\"echo\",\"args\":{\"x\":1}}\n");
	m = cli_msg(fd);
	cr_assert_eq(F.ncalls, 1);
	cr_assert_eq(F.calls[0].id, 5);
	cr_assert_str_eq(F.calls[0].cmd, "echo");
	cr_assert_str_eq(F.calls[0].args, "{\"x\":1}");
	cr_assert_eq(json_integer_value(json_object_get(m, "id")), 5);
	cr_assert(json_is_true(json_object_get(m, "ok")));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(m, "result"),
									 "args"), "x")), 1);
	cr_assert_eq(sup_ctl_nclients(F.ctl), 1);
	json_decref(m);
	close(fd);
}

Test(server, should_send_a_large_reply_after_a_small_one)
{
	struct sup_ctl_opts o = default_opts();
	static char req[70000];
	json_t *m;
	int fd, n;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"echo\"}\n");
	m = cli_msg(fd);
	json_decref(m);
	/* A reply bigger than the chunk kept from the first one. */
	n = snprintf(req, sizeof(req), "{\"id\":2,\"cmd\":\"echo\",\"args\":{\"x\":\"");
	memset(req + n, 'a', 40000);
	n += 40000;
	snprintf(req + n, sizeof(req) - (size_t)n, "\"}}\n");
	cli_send(fd, req);
	m = cli_msg(fd);
	cr_assert_eq(json_integer_value(json_object_get(m, "id")), 2);
	cr_assert_eq(json_string_length(json_object_get(json_object_get(json_object_get(m, "result"),
									 "args"), "x")), 40000);
	json_decref(m);
	close(fd);
}

Test(server, should_serve_pipelined_requests_in_order)
{
	struct sup_ctl_opts o = default_opts();
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"echo\"}\n\n{\"id\":2,\"cmd\":\"echo\"}\n{\"id\":3,");
	cli_send(fd, "\"cmd\":\"echo\"}\n");
	for (int i = 1; i <= 3; i++) {
		json_t *m = cli_msg(fd);

		cr_assert_eq(json_integer_value(json_object_get(m, "id")), i);
		json_decref(m);
	}
	cr_assert_eq(F.ncalls, 3);
	close(fd);
}

Test(server, should_answer_invalid_json_and_stay_usable)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{this is not json\n");
	m = cli_msg(fd);
	cr_assert(json_is_false(json_object_get(m, "ok")));
	cr_assert(json_is_null(json_object_get(m, "id")));
	cr_assert_str_eq(json_string_value(json_object_get(m, "code")), "EINVAL");
	cr_assert(strstr(json_string_value(json_object_get(m, "error")), "invalid JSON"));
	json_decref(m);
	cr_assert_eq(F.ncalls, 0);

	cli_send(fd, "{\"id\":2,\"cmd\":\"echo\"}\n");
	m = cli_msg(fd);
	cr_assert(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	close(fd);
}

Test(server, should_name_a_missing_cmd_in_a_reply_with_the_id)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":77}\n");
	m = cli_msg(fd);
	cr_assert_eq(json_integer_value(json_object_get(m, "id")), 77);
	cr_assert(strstr(json_string_value(json_object_get(m, "error")), "no cmd"));
	json_decref(m);
	cli_send(fd, "{\"cmd\":\"echo\"}\n");
	m = cli_msg(fd);
	cr_assert(strstr(json_string_value(json_object_get(m, "error")), "no id"));
	json_decref(m);
	cr_assert_eq(F.ncalls, 0);
	close(fd);
}

Test(server, should_close_after_an_over_long_line)
{
	struct sup_ctl_opts o = default_opts();
	char big[3000];
	json_t *m;
	int fd;

	o.max_line = 1024;
	open_ctl(&o);
	fd = cli_connect();
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cli_send(fd, big);
	m = cli_msg(fd);
	cr_assert_str_eq(json_string_value(json_object_get(m, "code")), "EMSGSIZE");
	cr_assert(strstr(json_string_value(json_object_get(m, "error")), "longer than 1024"));
	json_decref(m);
	expect_eof(fd);
	turn_until_closed(1);
	cr_assert(strstr(F.reason, "longer than 1024"), "%s", F.reason);
	cr_assert_eq(sup_ctl_nclients(F.ctl), 0);
	close(fd);
}

Test(server, should_send_a_late_reply_and_events_to_a_held_client)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":9,\"cmd\":\"hold\"}\n");
	while (!F.held)
		turn_once();
	cr_assert_eq(sup_ctl_send(F.held, json_pack("{s:s,s:i}", "event", "tick", "n", 1)), 0);
	cr_assert_eq(sup_ctl_reply_ok(F.held, F.held_id, NULL), 0);
	m = cli_msg(fd);
	cr_assert_str_eq(json_string_value(json_object_get(m, "event")), "tick");
	json_decref(m);
	m = cli_msg(fd);
	cr_assert_eq(json_integer_value(json_object_get(m, "id")), 9);
	cr_assert(json_is_object(json_object_get(m, "result")));
	json_decref(m);
	close(fd);
	turn_until_closed(1);
	cr_assert(F.closed_null, "an orderly hang-up has no reason, got %s", F.reason);
}

Test(server, should_stream_partial_results_before_the_final_reply)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":4,\"cmd\":\"stream\"}\n");
	for (int i = 1; i <= 2; i++) {
		m = cli_msg(fd);
		cr_assert(json_is_true(json_object_get(m, "more")));
		cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "result"), "n")), i);
		json_decref(m);
	}
	m = cli_msg(fd);
	cr_assert_null(json_object_get(m, "more"));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "result"), "total")), 2);
	json_decref(m);
	close(fd);
}

Test(server, should_call_closed_when_a_client_leaves_mid_request)
{
	struct sup_ctl_opts o = default_opts();
	struct sup_ctl_client *c;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"hold\"}\n");
	while (!F.held)
		turn_once();
	c = F.held;
	/* Keep our own hold so the handle outlives the handler's. */
	sup_ctl_client_hold(c);
	close(fd);
	turn_until_closed(1);
	cr_assert(F.closed_null);
	cr_assert(!sup_ctl_client_connected(c));
	cr_assert_eq(sup_ctl_reply_ok(c, 1, NULL), -ENOTCONN);
	cr_assert_eq(sup_ctl_nclients(F.ctl), 0);
	sup_ctl_client_release(c);
}

Test(server, should_disconnect_a_client_that_does_not_read)
{
	struct sup_ctl_opts o = default_opts();
	int fd;

	o.max_queue = 64 * 1024;
	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"flood\"}\n");
	turn_until_closed(1);
	cr_assert(strstr(F.reason, "not reading"), "%s", F.reason);
	cr_assert(strstr(F.reason, "limit 65536"), "%s", F.reason);
	/* What the kernel buffers plus the queue went out before the cut. */
	cr_assert_gt(F.flood_sent, 8);
	close(fd);
}

Test(server, should_refuse_a_message_larger_than_the_queue_but_keep_the_client)
{
	struct sup_ctl_opts o = default_opts();
	char big[5000];
	int fd;

	o.max_queue = 4096;
	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"hold\"}\n");
	while (!F.held)
		turn_once();
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(sup_ctl_reply_ok(F.held, 1, json_pack("{s:s}", "big", big)), -EMSGSIZE);
	cr_assert(sup_ctl_client_connected(F.held));
	cr_assert_eq(sup_ctl_reply_err(F.held, 1, E2BIG, "result too large"), 0);
	json_decref(cli_msg(fd));
	close(fd);
}

Test(server, should_flush_the_reply_before_a_client_close)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int fd;

	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":3,\"cmd\":\"bye\"}\n");
	m = cli_msg(fd);
	cr_assert_eq(json_integer_value(json_object_get(m, "id")), 3);
	json_decref(m);
	expect_eof(fd);
	turn_until_closed(1);
	cr_assert(F.closed_null, "%s", F.reason);
	close(fd);
}

Test(server, should_cut_a_closing_client_that_does_not_read_within_the_flush_timeout)
{
	struct sup_ctl_opts o = default_opts();
	int fd;

	o.flush_timeout_ms = 100;
	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"bigbye\"}\n");
	turn_until_closed(1);
	cr_assert(strstr(F.reason, "within 100 ms"), "%s", F.reason);
	close(fd);
}

Test(server, should_notify_every_client_when_closing)
{
	struct sup_ctl_opts o = default_opts();
	int a, b;

	open_ctl(&o);
	a = cli_connect();
	b = cli_connect();
	cli_send(a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	json_decref(cli_msg(a));
	turn_for(10);
	cr_assert_eq(sup_ctl_nclients(F.ctl), 2);
	sup_ctl_close(F.ctl);
	F.ctl = NULL;
	cr_assert_eq(F.nclosed, 2);
	cr_assert(access(F.path, F_OK) < 0 && errno == ENOENT, "the socket file stays behind");
	npend = 0;
	expect_eof(a);
	close(a);
	close(b);
}

Test(server, should_refuse_clients_beyond_max_clients)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int a, b;

	o.max_clients = 1;
	open_ctl(&o);
	a = cli_connect();
	turn_for(10);
	b = cli_connect();
	m = cli_msg(b);
	cr_assert_str_eq(json_string_value(json_object_get(m, "code")), "EBUSY");
	json_decref(m);
	expect_eof(b);
	turn_until_closed(1);
	cr_assert(strstr(F.reason, "too many"), "%s", F.reason);
	cr_assert_eq(sup_ctl_nclients(F.ctl), 1);
	close(a);
	close(b);
}

/* ---- the socket file ------------------------------------------------------ */

Test(server, should_create_the_directory_and_a_root_only_socket_without_a_group)
{
	struct sup_ctl_opts o = default_opts();
	char dir[160];
	struct stat st;

	open_ctl(&o);
	snprintf(dir, sizeof(dir), "%s/run", F.dir);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0755);
	cr_assert_eq(stat(F.path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, geteuid());
}

Test(server, should_give_the_socket_to_the_group_with_mode_0660)
{
	struct sup_ctl_opts o = default_opts();
	struct stat st;

	if (geteuid() != 0)
		cr_skip_test("needs root to chown the socket to another group");
	o.has_group = true;
	o.group = TEST_GROUP;
	open_ctl(&o);
	cr_assert_eq(stat(F.path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, 0);
	cr_assert_eq(st.st_gid, TEST_GROUP);
}

Test(server, should_replace_a_stale_socket_file)
{
	struct sup_ctl_opts o = default_opts();
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[160];
	json_t *m;
	int s, fd;

	snprintf(dir, sizeof(dir), "%s/run", F.dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	/* Bound, never listening, closed: what a crashed tierd leaves. */
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	open_ctl(&o);
	fd = cli_connect();
	cli_send(fd, "{\"id\":1,\"cmd\":\"echo\"}\n");
	m = cli_msg(fd);
	cr_assert(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	close(fd);
}

Test(server, should_refuse_to_open_over_a_live_socket)
{
	struct sup_ctl_opts o = default_opts();
	struct sup_ctl *second;
	char err[256];

	open_ctl(&o);
	second = sup_ctl_open(F.l, &o, &HANDLER, &F, err, sizeof(err));
	cr_assert_null(second);
	cr_assert_eq(errno, EADDRINUSE);
	cr_assert(strstr(err, "another tierd is already listening"), "%s", err);
	/* The first server still owns the path. */
	cr_assert_eq(access(F.path, F_OK), 0);
}

Test(server, should_refuse_a_relative_or_too_long_path)
{
	struct sup_ctl_opts o = default_opts();
	char err[256], longp[200];

	o.path = "run/tierd.sock";
	cr_assert_null(sup_ctl_open(F.l, &o, &HANDLER, &F, err, sizeof(err)));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(err, "must be absolute"), "%s", err);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	o.path = longp;
	cr_assert_null(sup_ctl_open(F.l, &o, &HANDLER, &F, err, sizeof(err)));
	cr_assert_eq(errno, ENAMETOOLONG);
}

Test(server, should_refuse_to_replace_a_file_that_is_not_a_socket)
{
	struct sup_ctl_opts o = default_opts();
	char dir[160], err[256];
	int fd;

	snprintf(dir, sizeof(dir), "%s/run", F.dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	fd = open(F.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	close(fd);
	cr_assert_null(sup_ctl_open(F.l, &o, &HANDLER, &F, err, sizeof(err)));
	cr_assert_eq(errno, EEXIST);
	cr_assert(strstr(err, "not a socket"), "%s", err);
}

/* ---- peers with other credentials ----------------------------------------- */

/*
 * Fork a peer that drops to uid/gid 65534 with the given supplementary
 * groups, connects, sends an echo request and writes the first line it
 * reads (or "connect: <errno>") into a pipe. The parent serves meanwhile.
 */
static char *peer_exchange(const gid_t *groups, size_t ngroups)
{
	static char out[4096];
	int p[2], status;
	size_t n = 0;
	pid_t pid;
	int64_t end;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		const char req[] = "{\"id\":1,\"cmd\":\"echo\"}\n";
		char line[4096];
		ssize_t k, got = 0;
		int fd;

		close(p[0]);
		alarm(10);
		if (setgroups(ngroups, groups) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(3);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			dprintf(p[1], "connect: %s", strerrorname_np(errno));
			_exit(0);
		}
		send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		while (got < (ssize_t)sizeof(line) && !memchr(line, '\n', (size_t)got)) {
			k = read(fd, line + got, sizeof(line) - (size_t)got);
			if (k <= 0)
				break;
			got += k;
		}
		if (write(p[1], line, (size_t)got) < 0)
			_exit(4);
		_exit(0);
	}
	close(p[1]);
	end = sup_loop_now(F.l) + 10000000000LL;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (sup_loop_now(F.l) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("the peer did not finish within 10 s");
		}
		turn_once();
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer status %#x", status);
	for (;;) {
		ssize_t k = read(p[0], out + n, sizeof(out) - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(p[0]);
	out[n] = '\0';
	return out;
}

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run a peer as another uid");
}

Test(server, should_refuse_another_uid_when_no_group_is_configured)
{
	struct sup_ctl_opts o = default_opts();
	char *line;

	need_root();
	open_ctl(&o);
	/* The 0600 mode alone keeps nobody out; open it up so the peer
	 * reaches the credential check behind it. */
	cr_assert_eq(chmod(F.path, 0666), 0);
	line = peer_exchange(NULL, 0);
	cr_assert(strstr(line, "\"code\":\"EPERM\""), "%s", line);
	cr_assert(strstr(line, "permission denied: uid 65534 is not root"), "%s", line);
	cr_assert_null(strstr(line, "\"id\""), "a refusal answers no request: %s", line);
	turn_until_closed(1);
	cr_assert(strstr(F.reason, "uid 65534"), "%s", F.reason);
	cr_assert_eq(F.ncalls, 0);
}

Test(server, should_serve_a_peer_whose_supplementary_group_is_configured)
{
	struct sup_ctl_opts o = default_opts();
	gid_t groups[] = { 777, TEST_GROUP };
	char *line;

	need_root();
	o.has_group = true;
	o.group = TEST_GROUP;
	open_ctl(&o);
	line = peer_exchange(groups, 2);
	cr_assert(strstr(line, "\"ok\":true"), "%s", line);
	cr_assert_eq(F.ncalls, 1);
}

Test(server, should_refuse_a_peer_outside_the_configured_group)
{
	struct sup_ctl_opts o = default_opts();
	gid_t groups[] = { 777 };
	char *line;

	need_root();
	o.has_group = true;
	o.group = TEST_GROUP;
	open_ctl(&o);
	/* As above: past the file mode, to the credential check. */
	cr_assert_eq(chmod(F.path, 0666), 0);
	line = peer_exchange(groups, 1);
	cr_assert(strstr(line, "permission denied: uid 65534 is not root and not in group 12345"),
		  "%s", line);
	cr_assert_eq(F.ncalls, 0);
}

Test(server, should_give_the_admin_role_to_a_peer_in_admin_group)
{
	struct sup_ctl_opts o = default_opts();
	gid_t admin[] = { TEST_GROUP + 1 }, reader[] = { TEST_GROUP };
	char *line;

	need_root();
	o.has_group = true;
	o.group = TEST_GROUP;
	o.has_admin_group = true;
	o.admin_group = TEST_GROUP + 1;
	open_ctl(&o);
	cr_assert_eq(chmod(F.path, 0666), 0);
	line = peer_exchange(admin, 1);
	cr_assert(strstr(line, "\"role\":\"admin\""), "%s", line);
	line = peer_exchange(reader, 1);
	cr_assert(strstr(line, "\"role\":\"read-only\""), "%s", line);
}

Test(server, should_give_root_the_admin_role)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int a;

	open_ctl(&o);
	a = cli_connect();
	cli_send(a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	m = cli_msg(a);
	/* Root, or the server's own uid when not run as root: admin both. */
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "result"), "role")),
			 "admin");
	json_decref(m);
	close(a);
}

Test(server, should_name_both_groups_when_refusing_a_peer_in_neither)
{
	struct sup_ctl_opts o = default_opts();
	gid_t groups[] = { 777 };
	char *line;

	need_root();
	o.has_group = true;
	o.group = TEST_GROUP;
	o.has_admin_group = true;
	o.admin_group = TEST_GROUP + 1;
	open_ctl(&o);
	cr_assert_eq(chmod(F.path, 0666), 0);
	line = peer_exchange(groups, 1);
	cr_assert(strstr(line, "in neither group 12345 (control_group) nor group 12346 (admin_group)"),
		  "%s", line);
	cr_assert_eq(F.ncalls, 0);
}

/* The test runs in some cgroup: naming it as "tierd's tree" makes this
 * process an agent in the server's eyes. */
static void own_cgroup(char *out, size_t sz)
{
	char buf[4096];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_not_null(strstr(buf, "0::/"), "no cgroup2 line: %s", buf);
	snprintf(out, sz, "%s", strstr(buf, "0::/") + 3);
	out[strcspn(out, "\n")] = '\0';
}

Test(server, should_refuse_a_root_peer_inside_the_tree_cgroup)
{
	struct sup_ctl_opts o = default_opts();
	char cg[PATH_MAX];
	json_t *m;
	int a;

	own_cgroup(cg, sizeof(cg));
	o.tree_cgroup = cg;
	open_ctl(&o);
	a = cli_connect();
	m = cli_msg(a);
	cr_assert_str_eq(json_string_value(json_object_get(m, "code")), "EPERM");
	cr_assert(strstr(json_string_value(json_object_get(m, "error")), "inside tierd's cgroup tree"),
		  "%s", json_string_value(json_object_get(m, "error")));
	json_decref(m);
	expect_eof(a);
	turn_until_closed(1);
	cr_assert_eq(F.ncalls, 0);
	close(a);
}

Test(server, should_serve_a_peer_outside_the_tree_cgroup)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int a;

	o.tree_cgroup = "/no-such-tierd-tree";
	open_ctl(&o);
	a = cli_connect();
	cli_send(a, "{\"id\":1,\"cmd\":\"echo\"}\n");
	m = cli_msg(a);
	cr_assert(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	close(a);
}

Test(server, should_tell_and_drop_a_client_idle_past_the_timeout)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int a;

	o.idle_timeout_ms = 100;
	open_ctl(&o);
	a = cli_connect();
	turn_for(300);
	m = cli_msg(a);
	cr_assert_str_eq(json_string_value(json_object_get(m, "code")), "ETIMEDOUT");
	json_decref(m);
	expect_eof(a);
	turn_until_closed(1);
	cr_assert(strstr(F.reason, "idle for 100 ms"), "%s", F.reason);
	close(a);
}

Test(server, should_not_drop_an_idle_client_waiting_for_a_held_reply)
{
	struct sup_ctl_opts o = default_opts();
	json_t *m;
	int a;

	o.idle_timeout_ms = 100;
	open_ctl(&o);
	a = cli_connect();
	cli_send(a, "{\"id\":7,\"cmd\":\"hold\"}\n");
	turn_for(300);
	cr_assert_eq(F.nclosed, 0, "dropped while its request was in flight: %s", F.reason);
	sup_ctl_reply_ok(F.held, F.held_id, NULL);
	sup_ctl_client_release(F.held);
	m = cli_msg(a);
	cr_assert_eq(json_integer_value(json_object_get(m, "id")), 7);
	json_decref(m);
	close(a);
}

Test(server, should_make_root_and_the_servers_uid_admins_and_group_members_readers)
{
	struct ucred cr = { .pid = getpid(), .uid = 0, .gid = 0 };
	struct sup_ctl_sock_groups g = { .self_uid = 4321, .read = TEST_GROUP, .has_read = true };
	char why[256];

	cr_assert_eq(sup_ctl_sock_peer_role(-1, &cr, &g, why, sizeof(why)), SUP_CTL_ROLE_ADMIN);
	cr.uid = 4321;
	cr_assert_eq(sup_ctl_sock_peer_role(-1, &cr, &g, why, sizeof(why)), SUP_CTL_ROLE_ADMIN);
	cr.uid = 1000;
	cr.gid = TEST_GROUP;
	cr_assert_eq(sup_ctl_sock_peer_role(-1, &cr, &g, why, sizeof(why)), SUP_CTL_ROLE_READ);
}

Test(server, should_keep_slots_for_admins_and_cap_each_uid_but_root)
{
	struct sup_ctl_sock_load l = { .role = SUP_CTL_ROLE_READ, .uid = 1000, .clients = 239,
				       .uid_clients = 0, .max_clients = 256, .max_per_uid = 32,
				       .reserve = 16 };
	char why[256];

	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), 0);
	l.clients = 240;
	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), EBUSY);
	cr_assert(strstr(why, "kept for admins"), "%s", why);
	l.role = SUP_CTL_ROLE_ADMIN;
	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), 0);
	l.clients = 256;
	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), EBUSY);
	l.clients = 10;
	l.uid_clients = 32;
	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), EBUSY, "an admin uid is capped too");
	cr_assert(strstr(why, "from uid 1000") && strstr(why, "control_max_clients_per_uid"), "%s", why);
	l.uid = 0;
	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), 0, "root is not capped per uid");
	l.uid = 1000;
	l.max_per_uid = 0;
	cr_assert_eq(sup_ctl_sock_room(&l, why, sizeof(why)), 0, "0 means no cap");
}

/* ---- bounds on client numbers ------------------------------------------------ */

Test(args, should_refuse_a_timeout_that_would_overflow_a_deadline)
{
	json_t *big = json_integer(9223372036854LL), *huge = json_real(1e300), *ok = json_integer(1500);
	json_t *neg = json_integer(-1), *text = json_string("5");
	int64_t ns = 7;

	cr_assert_eq(sup_ctl_arg_ms(big, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(huge, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(neg, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(text, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -EINVAL);
	cr_assert_eq(ns, 7, "a refused value is not stored");
	cr_assert_eq(sup_ctl_arg_ms(ok, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), 0);
	cr_assert_eq(ns, 1500000000);
	cr_assert_eq(sup_ctl_arg_ms(NULL, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, -1, &ns), 0);
	cr_assert_eq(ns, -1, "absent: the default");
	json_decref(big);
	json_decref(huge);
	json_decref(ok);
	json_decref(neg);
	json_decref(text);
}

Test(args, should_take_the_longest_timeout_and_refuse_zero_when_open)
{
	json_t *max = json_real(SUP_CTL_TIMEOUT_MS_MAX), *zero = json_integer(0);
	int64_t ns;

	cr_assert_eq(sup_ctl_arg_ms(max, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), 0);
	cr_assert_eq(ns, (int64_t)7 * 86400 * 1000000000LL);
	cr_assert_eq(sup_ctl_arg_ms(zero, 0, 1, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), -ERANGE);
	cr_assert_eq(sup_ctl_arg_ms(zero, 0, 0, SUP_CTL_TIMEOUT_MS_MAX, 0, &ns), 0);
	json_decref(max);
	json_decref(zero);
}

Test(args, should_bound_integers_and_not_wrap_a_tier)
{
	json_t *wrap = json_integer(4294967297LL), *two = json_integer(2), *real = json_real(2.0);
	int64_t v;

	cr_assert_eq(sup_ctl_arg_tier(wrap, 0), -1, "2^32 + 1 is not tier 1");
	cr_assert_eq(sup_ctl_arg_tier(two, 0), 2);
	cr_assert_eq(sup_ctl_arg_tier(real, 0), -1);
	cr_assert_eq(sup_ctl_arg_tier(NULL, 9), 9);
	cr_assert_eq(sup_ctl_arg_int(wrap, 1, 1000000, 0, &v), -ERANGE);
	cr_assert_eq(sup_ctl_arg_int(real, 1, 10, 0, &v), -EINVAL);
	cr_assert_eq(sup_ctl_arg_int(two, 1, 10, 0, &v), 0);
	cr_assert_eq(v, 2);
	json_decref(wrap);
	json_decref(two);
	json_decref(real);
}

/* ---- the role table --------------------------------------------------------- */

Test(roles, should_let_the_read_role_run_only_pure_reads)
{
	static const char *const reads[] = { "status", "agents", "events", "top", "history",
					     "limits", "analyze", "runs", "trace", "result" };
	static const char *const writes[] = { "start", "stop", "restart", "drain", "undrain",
					      "rolling-restart", "reload", "shutdown", "submit",
					      "run", "cancel", "limit", "optimiser", "allocator",
					      "bench-dispatch" };

	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		cr_assert_eq(sup_ctl_cmd_role(reads[i]), SUP_CTL_ROLE_READ, "%s", reads[i]);
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		cr_assert_eq(sup_ctl_cmd_role(writes[i]), SUP_CTL_ROLE_ADMIN, "%s", writes[i]);
}

Test(roles, should_need_admin_for_a_command_not_in_the_table)
{
	cr_assert_eq(sup_ctl_cmd_role("frobnicate"), SUP_CTL_ROLE_ADMIN);
	cr_assert_eq(sup_ctl_cmd_role(""), SUP_CTL_ROLE_ADMIN);
	cr_assert_str_eq(sup_ctl_role_name(SUP_CTL_ROLE_READ), "read-only");
	cr_assert_str_eq(sup_ctl_role_name(SUP_CTL_ROLE_ADMIN), "admin");
}

/* ---- tierctl end to end ----------------------------------------------------- */

static char tierctl_path[PATH_MAX];

static void find_tierctl(void)
{
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	cr_assert_gt(n, 0);
	self[n] = '\0';
	/* BUILD/tests/test_ctl -> BUILD/tierctl */
	slash = strrchr(self, '/');
	*slash = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(tierctl_path, sizeof(tierctl_path), "%s/tierctl", self);
	if (access(tierctl_path, X_OK) < 0)
		cr_skip_test("%s is not built", tierctl_path);
}

struct run {
	int  code;
	char out[8192];
	char err[8192];
};

static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? 0 : read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* Run tierctl with args (NULL-terminated), serving the loop meanwhile.
 * env: $TIERD_SOCKET for it (NULL: unset). as_nobody: drop to uid/gid
 * 65534 with no groups first. */
static void tierctl_env(struct run *r, bool as_nobody, const char *env, const char *const *args)
{
	char outp[160], errp[160];
	const char *argv[16];
	int status, i = 0;
	int64_t end;
	pid_t pid;

	find_tierctl();
	snprintf(outp, sizeof(outp), "%s/out", F.dir);
	snprintf(errp, sizeof(errp), "%s/err", F.dir);
	argv[i++] = tierctl_path;
	while (*args && i < 15)
		argv[i++] = *args++;
	argv[i] = NULL;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(125);
		if (env)
			setenv("TIERD_SOCKET", env, 1);
		else
			unsetenv("TIERD_SOCKET");
		if (as_nobody && (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
				  setresuid(NOBODY, NOBODY, NOBODY) < 0))
			_exit(126);
		execv(tierctl_path, (char *const *)argv);
		_exit(127);
	}
	end = sup_loop_now(F.l) + 20000000000LL;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (sup_loop_now(F.l) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("tierctl did not finish within 20 s");
		}
		turn_once();
	}
	cr_assert(WIFEXITED(status), "tierctl died: %#x", status);
	r->code = WEXITSTATUS(status);
	cr_assert_lt(r->code, 125, "could not run tierctl (%d)", r->code);
	slurp(outp, r->out, sizeof(r->out));
	slurp(errp, r->err, sizeof(r->err));
}

static void tierctl(struct run *r, bool as_nobody, const char *const *args)
{
	tierctl_env(r, as_nobody, NULL, args);
}

Test(server, tierctl_should_say_tierd_is_not_running_without_a_socket)
{
	struct run r;
	char want[256];

	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "status", NULL });
	cr_assert_eq(r.code, 1, "%s", r.err);
	snprintf(want, sizeof(want), "tierd is not running (no socket at %s)", F.path);
	cr_assert(strstr(r.err, want), "%s", r.err);
}

Test(server, tierctl_should_say_tierd_is_not_running_for_a_stale_socket)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[160];
	struct run r;
	int s;

	snprintf(dir, sizeof(dir), "%s/run", F.dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "agents", NULL });
	cr_assert_eq(r.code, 1);
	cr_assert(strstr(r.err, "tierd is not running"), "%s", r.err);
}

Test(server, tierctl_should_explain_permission_denied_with_the_group)
{
	struct sup_ctl_opts o = default_opts();
	char want[512];
	struct run r;

	need_root();
	o.has_group = true;
	o.group = TEST_GROUP;
	open_ctl(&o);
	tierctl(&r, true, (const char *const[]){ "--socket", F.path, "status", NULL });
	cr_assert_eq(r.code, 1, "%s", r.err);
	if (getgrgid(TEST_GROUP))
		cr_skip_test("group %d exists here; the message would name it", TEST_GROUP);
	snprintf(want, sizeof(want), "permission denied on %s: it is owned by group 12345 with mode "
		 "0660; run as root or join group 12345", F.path);
	cr_assert(strstr(r.err, want), "%s", r.err);
}

Test(server, tierctl_should_report_a_refusal_by_the_credential_check)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	need_root();
	open_ctl(&o);
	cr_assert_eq(chmod(F.path, 0666), 0);
	tierctl(&r, true, (const char *const[]){ "--socket", F.path, "status", NULL });
	cr_assert_eq(r.code, 1, "%s", r.err);
	cr_assert(strstr(r.err, "permission denied: uid 65534 is not root"), "%s", r.err);
}

Test(server, tierctl_should_exit_2_with_usage_for_an_unknown_command)
{
	struct run r;

	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "frobnicate", NULL });
	cr_assert_eq(r.code, 2);
	cr_assert(strstr(r.err, "unknown command 'frobnicate'"), "%s", r.err);
	cr_assert(strstr(r.err, "usage: tierctl"), "%s", r.err);
}

Test(server, tierctl_should_exit_2_for_bad_arguments)
{
	struct run r;

	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "restart", NULL });
	cr_assert_eq(r.code, 2);
	cr_assert(strstr(r.err, "needs exactly one AGENT or tierN"), "%s", r.err);
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "status", "extra", NULL });
	cr_assert_eq(r.code, 2);
	tierctl(&r, false, (const char *const[]){ "--timeout", "soon", "status", NULL });
	cr_assert_eq(r.code, 2);
}

Test(server, tierctl_should_render_status)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	open_ctl(&o);
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "status", NULL });
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert(strstr(r.out, "tierd 0.1.0  pid 4242  up 1h02m"), "%s", r.out);
	cr_assert(strstr(r.out, "memory     not live: bound to cgroup v1"), "%s", r.out);
	cr_assert(strstr(r.out, "io         -"), "%s", r.out);
	cr_assert(strstr(r.out, "TIER  AGENTS  STARTING  READY"), "%s", r.out);
	cr_assert(strstr(r.out, "not delegated"), "%s", r.out);
}

Test(server, tierctl_should_render_agents_with_dashes_for_missing_fields)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	open_ctl(&o);
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "agents", NULL });
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert(strstr(r.out, "NAME"), "%s", r.out);
	cr_assert(strstr(r.out, "orchestrator  1     ready  777"), "%s", r.out);
	cr_assert(strstr(r.out, "bare          -     -      -"), "%s", r.out);
}

Test(server, tierctl_should_print_the_raw_result_with_json)
{
	struct sup_ctl_opts o = default_opts();
	json_t *got, *want;
	struct run r;

	open_ctl(&o);
	tierctl(&r, false, (const char *const[]){ "--json", "--socket", F.path, "agents", NULL });
	cr_assert_eq(r.code, 0, "%s", r.err);
	got = json_loads(r.out, 0, NULL);
	want = canned_agents();
	cr_assert(got, "%s", r.out);
	cr_assert(json_equal(got, want), "%s", r.out);
	json_decref(got);
	json_decref(want);
}

Test(server, tierctl_should_send_the_target_and_render_the_agents_affected)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	open_ctl(&o);
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "start", "orchestrator", NULL });
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "started: orchestrator\n");
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "stop", "tier3", NULL });
	cr_assert_eq(F.ncalls, 2);
	cr_assert_str_eq(F.calls[0].args, "{\"agent\":\"orchestrator\"}");
	cr_assert_str_eq(F.calls[1].args, "{\"tier\":3}");
}

Test(server, tierctl_should_print_the_server_error_for_an_unknown_agent)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	open_ctl(&o);
	tierctl(&r, false, (const char *const[]){ "--socket", F.path, "start", "nope", NULL });
	cr_assert_eq(r.code, 1);
	cr_assert(strstr(r.err, "no agent named nope"), "%s", r.err);
}

Test(server, tierctl_should_give_up_after_its_timeout)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	open_ctl(&o);
	F.hold_everything = true;
	tierctl(&r, false, (const char *const[]){ "--timeout", "0.3", "--socket", F.path, "reload",
						  NULL });
	cr_assert_eq(r.code, 1);
	cr_assert(strstr(r.err, "no reply from tierd within 300 ms"), "%s", r.err);
}

Test(server, tierctl_should_take_the_socket_from_the_environment)
{
	struct sup_ctl_opts o = default_opts();
	struct run r;

	open_ctl(&o);
	tierctl_env(&r, false, F.path, (const char *const[]){ "--json", "status", NULL });
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_assert(strstr(r.out, "\"pid\":4242"), "%s", r.out);
}
