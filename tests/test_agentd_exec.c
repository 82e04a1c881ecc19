/* SPDX-License-Identifier: MIT */
/*
 * agentd in exec mode (one process per task), driven the way tierd drives
 * it (tests/agentd_test.h).
 */
#include "agentd_test.h"

/* ---- exec mode ---------------------------------------------------------------- */

#define EXEC_AGENT(...) \
	((const char *const[]){ "--mode=exec", __VA_ARGS__ "--", "/bin/sh", \
				repo_file("tests/agentd/exec-agent.sh"), NULL })

Test(agentd_exec, should_run_one_process_per_task)
{
	struct h h;

	h_start(&h, (const char *const[]){ "--mode=exec", "--", "/bin/sh",
					   repo_file("examples/agents/wordcount.sh"), NULL });
	expect(h_call(&h, "count", "one two three", 5000), TIER_ST_OK, "3\n");
	expect(h_call(&h, "count", "four", 5000), TIER_ST_OK, "1\n");
	h_free(&h);
}

Test(agentd_exec, should_report_a_nonzero_exit_with_the_last_stderr_line)
{
	struct h h;

	h_start(&h, EXEC_AGENT());
	expect(h_call(&h, "fail", "input", 5000), TIER_ST_ERROR,
	       "the real reason (the command exited with status 3)");
	h_free(&h);
}

Test(agentd_exec, should_time_out_and_kill_a_command_that_runs_too_long)
{
	struct h h;
	struct res r;
	int64_t t0 = now_ns();

	h_start(&h, EXEC_AGENT("--timeout-ms=300",));
	r = h_call(&h, "sleep", "", 5000);
	cr_expect_eq(r.status, TIER_ST_TIMEOUT, "%s", r.payload);
	cr_expect_lt(now_ns() - t0, 3000 * MS);
	free(r.payload);
	expect(h_call(&h, "wc", "a b", 5000), TIER_ST_OK, "2\n");
	h_free(&h);
}

Test(agentd_exec, should_pass_binary_payloads_through)
{
	unsigned char bin[256];
	struct h h;
	struct res r;

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	h_start(&h, EXEC_AGENT());
	r = h_result(&h, h_send_full(&h, "cat", bin, sizeof(bin), NULL, 0), 5000);
	cr_assert_eq(r.status, TIER_ST_OK);
	cr_assert_eq(r.len, sizeof(bin));
	cr_expect_eq(memcmp(r.payload, bin, sizeof(bin)), 0);
	free(r.payload);
	h_free(&h);
}

Test(agentd_exec, should_give_the_command_its_task_in_the_environment)
{
	struct h h;
	struct res r;
	char want[64];
	uint64_t id;

	h_start(&h, EXEC_AGENT());
	id = h_send(&h, "env", "");
	r = h_result(&h, id, 5000);
	snprintf(want, sizeof(want), "env %" PRIu64 " 1 exec", id);
	cr_expect_str_eq(r.payload, want);
	free(r.payload);
	h_free(&h);
}

Test(agentd_exec, should_fail_a_command_whose_output_exceeds_the_ring)
{
	struct h h;
	struct res r;

	h_start(&h, EXEC_AGENT());
	r = h_call(&h, "big", "", 5000);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect(strstr(r.payload, "maximum payload"), "%s", r.payload);
	free(r.payload);
	h_event(&h, "output_too_large", 5000);
	h_free(&h);
}

Test(agentd_exec, should_report_a_command_killed_by_a_signal)
{
	struct h h;
	struct res r;

	h_start(&h, EXEC_AGENT());
	r = h_call(&h, "segv", "", 5000);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect(strstr(r.payload, "signal 11"), "%s", r.payload);
	free(r.payload);
	h_event(&h, "child_died", 5000);
	h_free(&h);
}

Test(agentd_exec, should_kill_a_command_that_floods_stderr)
{
	struct h h;
	struct res r;

	h_start(&h, EXEC_AGENT());
	r = h_call(&h, "flood", "", 10000);
	cr_expect_eq(r.status, TIER_ST_ERROR);
	cr_expect(strstr(r.payload, "flooded stderr"), "%s", r.payload);
	free(r.payload);
	h_event(&h, "stderr_flood", 5000);
	h_free(&h);
}

Test(agentd_exec, should_run_jobs_concurrently)
{
	enum { N = 4 };
	uint64_t ids[N];
	struct h h;
	int64_t t0;

	h_start(&h, EXEC_AGENT("--jobs=4",));
	t0 = now_ns();
	for (int i = 0; i < N; i++)
		ids[i] = h_send(&h, "nap", "");
	for (int i = 0; i < N; i++)
		expect(h_result(&h, ids[i], 5000), TIER_ST_OK, "napped");
	/* Four naps of 0.5 s side by side, not one after another. */
	cr_expect_lt(now_ns() - t0, 1500 * MS);
	h_free(&h);
}

Test(agentd_exec, should_exit_zero_on_sigterm_after_running_commands_finish)
{
	struct h h;
	uint64_t id;
	int ws;

	h_start(&h, EXEC_AGENT());
	id = h_send(&h, "nap", "");
	usleep(100 * 1000);
	cr_assert_eq(kill(h.pid, SIGTERM), 0);
	expect(h_result(&h, id, 5000), TIER_ST_OK, "napped");
	ws = h_wait_exit(&h, 10000);
	cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "wait status %#x", ws);
	h_free(&h);
}
