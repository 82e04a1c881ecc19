/* SPDX-License-Identifier: MIT */
/*
 * Control socket, who may connect and with which role: peers with other
 * credentials (forked children that drop to 65534 before connecting; they
 * need root (CAP_SETUID) and skip without it), the tree-cgroup check, idle
 * clients, the role and room rules of ctl_sock.c, and the role table of
 * ctl_roles.c.
 */
#include "../supervisor/ctl_sock.h"
#include "ctl_test.h"

TestSuite(server, .init = fx_setup, .fini = fx_teardown);

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

/* ---- the role table --------------------------------------------------------- */

Test(roles, should_let_the_read_role_run_only_pure_reads)
{
	static const char *const reads[] = { "status", "agents", "events", "top", "history",
					     "limits", "analyze", "runs", "trace", "result",
					     "fleet-status" };
	static const char *const writes[] = { "start", "stop", "restart", "drain", "undrain",
					      "rolling-restart", "reload", "shutdown", "submit",
					      "run", "cancel", "limit", "optimiser", "allocator",
					      "bench-dispatch", "fleet-drain", "fleet-undrain" };

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
