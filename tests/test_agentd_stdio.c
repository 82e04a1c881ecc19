/* SPDX-License-Identifier: MIT */
/*
 * agentd in stdio mode, driven the way tierd drives it (tests/agentd_test.h):
 * the happy path, a child that breaks the protocol (the scripts in
 * tests/agentd/, misbehaving on purpose), and stopping.
 */
#include "agentd_test.h"

#define MISBEHAVE(...) \
	((const char *const[]){ "--mode=stdio", __VA_ARGS__ "--", "/usr/bin/python3", \
				repo_file("tests/agentd/misbehave.py"), NULL })

/* ---- stdio: the happy path --------------------------------------------------- */

Test(agentd_stdio, should_round_trip_a_task_through_the_python_agent)
{
	struct h h;
	struct res r;

	h_start(&h, (const char *const[]){ "--mode=stdio", "--", "/usr/bin/python3",
					   repo_file("examples/agents/upper.py"), NULL });
	r = h_call(&h, "upper", "Hello, world", 5000);
	cr_expect_eq(r.status, TIER_ST_OK);
	cr_expect_str_eq(r.payload, "HELLO, WORLD");
	cr_expect(r.has_q);
	cr_expect_float_eq(r.q, 8.33, 0.006);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_round_trip_a_task_through_the_shell_agent)
{
	struct h h;

	h_start(&h, (const char *const[]){ "--mode=stdio", "--", "/bin/sh",
					   repo_file("tests/agentd/echo.sh"), NULL });
	struct res r = h_call(&h, "ping", "anything", 5000);

	cr_expect_eq(r.status, TIER_ST_OK);
	cr_expect_str_eq(r.payload, "shell:ping");
	cr_expect_float_eq(r.q, 7.5, 0.006);
	free(r.payload);
	expect(h_call(&h, "pong", "", 5000), TIER_ST_OK, "shell:pong");
	h_free(&h);
}

Test(agentd_stdio, should_carry_a_binary_payload_as_base64_both_ways)
{
	unsigned char bin[256];
	struct h h;
	struct res r;

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	h_start(&h, MISBEHAVE());
	r = h_result(&h, h_send_full(&h, "reverse_b64", bin, sizeof(bin), NULL, 0), 5000);
	cr_assert_eq(r.status, TIER_ST_OK, "%s", r.payload);
	cr_assert_eq(r.len, 256);
	for (int i = 0; i < 256; i++)
		cr_assert_eq((unsigned char)r.payload[i], 255 - i);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_put_context_and_remaining_deadline_in_the_request)
{
	struct h h;
	struct res r;
	uint64_t id;
	char want[64];
	const char *dl;

	h_start(&h, MISBEHAVE());
	id = h_send_full(&h, "request", "body \"quoted\"\n", 14, "stage1: ok",
			 now_ns() + 4000 * MS);
	r = h_result(&h, id, 5000);
	cr_assert_eq(r.status, TIER_ST_OK);
	snprintf(want, sizeof(want), "{\"id\":%" PRIu64 ",\"type\":\"request\"", id);
	cr_expect(strstr(r.payload, want), "%s", r.payload);
	cr_expect(strstr(r.payload, "\"context\":\"stage1: ok\""), "%s", r.payload);
	cr_expect(strstr(r.payload, "\"payload\":\"body \\\"quoted\\\"\\n\""), "%s", r.payload);
	dl = strstr(r.payload, "\"deadline_ms\":");
	cr_expect(dl && atoi(dl + 14) > 3000 && atoi(dl + 14) <= 4000, "%s", r.payload);
	free(r.payload);
	/* No deadline, no context: no such fields. */
	r = h_call(&h, "request", "x", 5000);
	cr_expect(!strstr(r.payload, "deadline_ms") && !strstr(r.payload, "context"), "%s",
		  r.payload);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_pipeline_many_tasks_and_match_replies_by_id)
{
	enum { N = 2000 };
	static uint64_t ids[N];
	struct h h;
	char p[32];

	h_start(&h, (const char *const[]){ "--mode=stdio", "--pipeline=64", "--",
					   "/usr/bin/python3", repo_file("examples/agents/upper.py"),
					   NULL });
	for (int i = 0; i < N; i++) {
		snprintf(p, sizeof(p), "task number %d", i);
		ids[i] = h_send(&h, "upper", p);
	}
	for (int i = 0; i < N; i++) {
		struct res r = h_result(&h, ids[i], 20000);

		snprintf(p, sizeof(p), "TASK NUMBER %d", i);
		cr_assert_eq(r.status, TIER_ST_OK);
		cr_assert_str_eq(r.payload, p);
		free(r.payload);
	}
	cr_expect_eq(h.nres, 0, "results nobody asked for");
	h_free(&h);
}

Test(agentd_stdio, should_accept_replies_in_any_order)
{
	struct h h;
	uint64_t a, b;

	h_start(&h, MISBEHAVE());
	a = h_send(&h, "swap", "");
	b = h_send(&h, "swap", "");
	expect(h_result(&h, b, 5000), TIER_ST_OK, "second");
	expect(h_result(&h, a, 5000), TIER_ST_OK, "first");
	cr_expect_null(h_find_event(&h, "unknown_id"));
	h_free(&h);
}

Test(agentd_stdio, should_pass_an_error_reply_on_as_an_error_result)
{
	struct h h;

	h_start(&h, MISBEHAVE());
	expect(h_call(&h, "fail", "", 5000), TIER_ST_ERROR, "asked to fail");
	h_free(&h);
}

Test(agentd_stdio, should_forward_the_agents_stderr_as_log_records)
{
	struct h h;
	int64_t end;
	bool seen = false;

	h_start(&h, MISBEHAVE());
	expect(h_call(&h, "stderr", "hello log", 5000), TIER_ST_OK, "");
	end = now_ns() + 3000 * MS;
	while (!seen && now_ns() < end) {
		for (size_t i = 0; i < h.nlog; i++)
			seen |= strstr(h.log[i], "note from the agent: hello log") != NULL;
		h_recv(&h, 20 * MS);
	}
	cr_expect(seen, "no LOG record with the agent's stderr line");
	h_free(&h);
}

Test(agentd_stdio, should_keep_ring_fds_and_ring_variables_from_the_agent)
{
	struct h h;
	struct res r;

	h_start(&h, MISBEHAVE());
	r = h_call(&h, "fds", "", 5000);
	/* 0-2 and the one listdir opened: nothing of the ring, no stray fds. */
	cr_expect_str_eq(r.payload, "0 1 2 3");
	free(r.payload);
	r = h_call(&h, "env", "", 5000);
	cr_expect(strstr(r.payload, "\"TIER_AGENT\": \"bridge-test\""), "%s", r.payload);
	cr_expect(strstr(r.payload, "\"TIER_BRIDGE\": \"stdio\""), "%s", r.payload);
	cr_expect(!strstr(r.payload, "TIER_PROTO") && !strstr(r.payload, "TIER_SPIN_NS"), "%s",
		  r.payload);
	free(r.payload);
	h_free(&h);
}

Test(agentd_stdio, should_time_out_a_task_whose_deadline_passed_before_it_started)
{
	struct h h;
	struct res r;

	h_start(&h, MISBEHAVE());
	r = h_result(&h, h_send_full(&h, "echo", "x", 1, NULL, now_ns() - MS), 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	free(r.payload);
	h_free(&h);
}

/* ---- stdio: a child that breaks the protocol ---------------------------------- */

/* type makes misbehave.py break the protocol so that agentd cannot tell
 * which task the line belonged to: the task fails, kind is raised, the
 * child is replaced and the next task is served. */
static void expect_restart_after(const char *type, const char *kind, const char *reason)
{
	struct h h;
	struct res r;
	const struct ev *e;
	long before, after;
	uint64_t id;

	h_start(&h, MISBEHAVE());
	before = agent_pid(&h);
	id = h_send(&h, type, "");
	r = h_result(&h, id, 10000);
	cr_expect_eq(r.status, TIER_ST_ERROR, "%s: status %d (%s)", type, r.status, r.payload);
	cr_expect(strstr(r.payload, reason), "%s: reason '%s' lacks '%s'", type, r.payload, reason);
	free(r.payload);
	e = h_event(&h, kind, 5000);
	cr_expect_eq(e->task, id, "%s: event about task %" PRIu64, kind, e->task);
	expect(h_call(&h, "echo", "still here", 10000), TIER_ST_OK, "still here");
	after = agent_pid(&h);
	cr_expect_neq(before, after, "%s: the agent was not restarted", type);
	h_free(&h);
}

/* The line names its task: only that task fails, the child stays. */
static void expect_task_error(const char *type, const char *kind, const char *reason)
{
	struct h h;
	struct res r;
	const struct ev *e;
	long before, after;
	uint64_t id;

	h_start(&h, MISBEHAVE());
	before = agent_pid(&h);
	id = h_send(&h, type, "");
	r = h_result(&h, id, 10000);
	cr_expect_eq(r.status, TIER_ST_ERROR, "%s: status %d (%s)", type, r.status, r.payload);
	cr_expect(strstr(r.payload, reason), "%s: reason '%s' lacks '%s'", type, r.payload, reason);
	free(r.payload);
	e = h_event(&h, kind, 5000);
	cr_expect_eq(e->task, id);
	expect(h_call(&h, "echo", "still here", 5000), TIER_ST_OK, "still here");
	after = agent_pid(&h);
	cr_expect_eq(before, after, "%s: the agent was restarted for a fault of one task", type);
	h_free(&h);
}

Test(agentd_stdio, should_restart_an_agent_that_writes_a_line_that_is_not_json)
{
	expect_restart_after("notjson", "malformed_reply", "not JSON");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_json_that_is_not_an_object)
{
	expect_restart_after("array", "malformed_reply", "not an object");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_a_reply_without_an_id)
{
	expect_restart_after("noid", "malformed_reply", "without an id");
}

Test(agentd_stdio, should_restart_an_agent_that_answers_an_unknown_id)
{
	expect_restart_after("unknownid", "unknown_id", "did not hold");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_a_10_mb_line)
{
	expect_restart_after("hugeline", "malformed_reply", "longer than");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_invalid_utf8)
{
	expect_restart_after("badutf8", "malformed_reply", "UTF-8");
}

Test(agentd_stdio, should_restart_an_agent_that_nests_json_too_deeply)
{
	expect_restart_after("deep", "malformed_reply", "nested too deeply");
}

Test(agentd_stdio, should_restart_an_agent_that_writes_an_id_past_64_bits)
{
	expect_restart_after("hugeid", "malformed_reply", "64 bits");
}

Test(agentd_stdio, should_fail_only_the_task_whose_quality_overflows_a_double)
{
	expect_task_error("bignum", "malformed_reply", "quality");
}

Test(agentd_stdio, should_restart_an_agent_that_answers_a_task_twice)
{
	struct h h;
	uint64_t id;

	h_start(&h, MISBEHAVE());
	id = h_send(&h, "twice", "");
	expect(h_result(&h, id, 5000), TIER_ST_OK, "");
	cr_expect_eq(h_event(&h, "unknown_id", 5000)->task, 0, "no task left to blame");
	expect(h_call(&h, "echo", "ok", 10000), TIER_ST_OK, "ok");
	h_free(&h);
}

Test(agentd_stdio, should_fail_only_the_task_whose_reply_has_a_bad_status)
{
	expect_task_error("badstatus", "malformed_reply", "status other than");
}

Test(agentd_stdio, should_fail_only_the_task_whose_reply_has_a_quality_out_of_range)
{
	expect_task_error("quality", "malformed_reply", "quality");
}

Test(agentd_stdio, should_fail_only_the_task_whose_payload_b64_is_not_base64)
{
	expect_task_error("badb64", "malformed_reply", "base64");
}

Test(agentd_stdio, should_fail_only_the_task_whose_reply_exceeds_the_ring)
{
	expect_task_error("toolarge", "reply_too_large", "maximum payload");
}

Test(agentd_stdio, should_fail_the_task_and_restart_an_agent_that_exits_mid_task)
{
	expect_restart_after("exit", "child_died", "exited with status 3");
}

Test(agentd_stdio, should_restart_an_agent_that_floods_stderr)
{
	expect_restart_after("flood", "stderr_flood", "flooded stderr");
}

Test(agentd_stdio, should_time_out_a_task_and_restart_an_agent_that_hangs)
{
	struct h h;
	struct res r;
	uint64_t hung, queued;
	long before;
	int64_t t0;

	h_start(&h, MISBEHAVE("--timeout-ms=600",));
	before = agent_pid(&h);
	t0 = now_ns();
	hung = h_send(&h, "hang", "");
	usleep(200 * 1000);
	queued = h_send(&h, "echo", "behind the hang");
	r = h_result(&h, hung, 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	cr_expect_geq(now_ns() - t0, 550 * MS);
	free(r.payload);
	/* The task queued behind it did not reach its deadline: child_hung. */
	r = h_result(&h, queued, 5000);
	cr_expect_eq(r.status, TIER_ST_ERROR, "%s", r.payload);
	cr_expect(strstr(r.payload, "stopped answering"), "%s", r.payload);
	free(r.payload);
	cr_expect_eq(h_event(&h, "child_hung", 5000)->task, queued);
	cr_expect_neq(agent_pid(&h), before);
	h_free(&h);
}

Test(agentd_stdio, should_drop_a_late_reply_after_a_timeout_and_keep_the_agent)
{
	struct h h;
	struct res r;
	long before;

	h_start(&h, MISBEHAVE("--timeout-ms=5000",));
	before = agent_pid(&h);
	r = h_result(&h, h_send_full(&h, "sleep", "700", 3, NULL, now_ns() + 200 * MS), 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	free(r.payload);
	/* Queued behind the late reply, answered after it. */
	expect(h_call(&h, "echo", "after", 5000), TIER_ST_OK, "after");
	cr_expect_eq(agent_pid(&h), before);
	cr_expect_null(h_find_event(&h, "unknown_id"));
	h_free(&h);
}

Test(agentd_stdio, should_exit_nonzero_after_too_many_restarts)
{
	struct h h;
	int ws;

	h_start(&h, MISBEHAVE("--restart-max=2", "--restart-delay-ms=10",));
	for (int i = 0; i < 3; i++)
		expect(h_call(&h, "exit", "", 5000), TIER_ST_ERROR, NULL);
	h_event(&h, "gave_up", 5000);
	ws = h_wait_exit(&h, 5000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 2, "wait status %#x", ws);
	h_free(&h);
}

/* ---- stopping -------------------------------------------------------------- */

Test(agentd_stdio, should_exit_zero_on_sigterm_and_leave_no_child)
{
	struct h h;
	long child;
	int ws;

	h_start(&h, MISBEHAVE());
	child = agent_pid(&h);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	cr_expect(kill((pid_t)child, 0) < 0 && errno == ESRCH, "agent %ld still exists", child);
	h_free(&h);
}

Test(agentd_stdio, should_finish_outstanding_tasks_on_sigterm)
{
	struct h h;
	uint64_t id;
	int ws;

	h_start(&h, MISBEHAVE());
	agent_pid(&h);
	id = h_send(&h, "sleep", "300");
	usleep(50 * 1000);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	expect(h_result(&h, id, 5000), TIER_ST_OK, "300");
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	h_free(&h);
}

Test(agentd_stdio, should_fail_tasks_and_kill_an_agent_that_ignores_sigterm)
{
	struct h h;
	uint64_t id;
	long child;
	int ws;

	h_start(&h, MISBEHAVE("--grace-ms=300",));
	child = agent_pid(&h);
	id = h_send(&h, "hang", "");
	usleep(50 * 1000);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	expect(h_result(&h, id, 5000), TIER_ST_ERROR, "agentd stopped before the agent answered");
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	cr_expect(kill((pid_t)child, 0) < 0 && errno == ESRCH, "agent %ld still exists", child);
	h_free(&h);
}

Test(agentd_stdio, should_run_clean_under_valgrind, .timeout = 120)
{
	struct h h;
	unsigned char bin[64];
	int ws;

	if (access("/usr/bin/valgrind", X_OK) != 0)
		cr_skip_test("valgrind is not installed");
#ifdef __SANITIZE_ADDRESS__
	cr_skip_test("valgrind cannot run the AddressSanitizer build of agentd");
#endif
	for (int i = 0; i < 64; i++)
		bin[i] = (unsigned char)(i * 7);
	h_start_full(&h, MISBEHAVE(), NULL, true);
	expect(h_call(&h, "echo", "under valgrind", 5000), TIER_ST_OK, "under valgrind");
	expect(h_result(&h, h_send_full(&h, "echo", bin, sizeof(bin), "ctx", 0), 5000),
	       TIER_ST_OK, NULL);
	expect(h_call(&h, "notjson", "", 5000), TIER_ST_ERROR, NULL);
	expect(h_call(&h, "badstatus", "", 5000), TIER_ST_ERROR, NULL);
	expect(h_call(&h, "stderr", "x", 5000), TIER_ST_OK, NULL);
	expect(h_call(&h, "exit", "", 5000), TIER_ST_ERROR, NULL);
	expect(h_call(&h, "echo", "again", 5000), TIER_ST_OK, "again");
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	ws = h_wait_exit(&h, 60000);
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		  "wait status %#x (99: valgrind found errors; see %s)", ws, h.logpath);
	h_free(&h);
}
