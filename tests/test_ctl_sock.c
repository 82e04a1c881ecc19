/* SPDX-License-Identifier: MIT */
/*
 * Control socket, the server (ctl.c and the socket-file half of ctl_sock.c)
 * on a real sup_loop and a real Unix socket in a temporary directory, with
 * a handler that records what it sees (tests/ctl_test.h): requests and
 * replies, pipelining, slow and vanishing clients, the socket file.
 */
#include "ctl_test.h"

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
