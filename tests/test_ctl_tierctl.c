/* SPDX-License-Identifier: MIT */
/*
 * tierctl end to end against the test server of tests/ctl_test.h: what it
 * says when tierd is not there or refuses it, usage errors, how it renders
 * replies, timeouts, $TIERD_SOCKET.
 */
#include "ctl_test.h"

TestSuite(server, .init = fx_setup, .fini = fx_teardown);

/* ---- tierctl end to end ----------------------------------------------------- */

static char tierctl_path[PATH_MAX];

static void find_tierctl(void)
{
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	cr_assert_gt(n, 0);
	self[n] = '\0';
	/* BUILD/tests/test_ctl_tierctl -> BUILD/tierctl */
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
