/* SPDX-License-Identifier: MIT */
/* The NATS intake's pure half (supervisor/intake/intake_msg.c): subjects,
 * headers, timeouts, the fetch arithmetic; and the [fleet] section. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "../supervisor/intake/intake_msg.h"
#include "config_test.h"

static char err[256];

Test(intake_subject, tier_agent_and_run_subjects)
{
	struct sup_in_msg m;

	cr_assert_eq(sup_in_parse_subject("tierd", "tierd.task.tier.3", &m, err, sizeof(err)), 0);
	cr_assert_eq(m.kind, SUP_IN_TIER);
	cr_assert_eq(m.tier, 3);
	cr_assert_eq(sup_in_parse_subject("a.b", "a.b.task.agent.w-1", &m, err, sizeof(err)), 0);
	cr_assert_eq(m.kind, SUP_IN_AGENT);
	cr_assert_str_eq(m.name, "w-1");
	cr_assert_eq(sup_in_parse_subject("tierd", "tierd.run.review", &m, err, sizeof(err)), 0);
	cr_assert_eq(m.kind, SUP_IN_RUN);
	cr_assert_str_eq(m.name, "review");
}

Test(intake_subject, refuses_what_no_consumer_means)
{
	static const char *const bad[] = {
		"tierd.task.tier.0", "tierd.task.tier.5", "tierd.task.tier.12", "tierd.task.tier.",
		"tierd.task.agent.", "tierd.task.agent.a.b", "tierd.run.", "tierd.task.other.x",
		"other.task.tier.1", "tierd", "tierdx.task.tier.1", "tierd.task.agent.a b",
	};
	struct sup_in_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		cr_assert_eq(sup_in_parse_subject("tierd", bad[i], &m, err, sizeof(err)), -EINVAL,
			     "%s accepted", bad[i]);
		cr_assert(strstr(err, "subject"), "%s: no reason: '%s'", bad[i], err);
	}
}

static int hdr(struct sup_in_msg *m, const char *name, const char *v)
{
	err[0] = 0;
	return sup_in_parse_header(m, name, v, strlen(v), err, sizeof(err));
}

Test(intake_headers, type_timeout_deadline_key_context)
{
	struct sup_in_msg m = { 0 };

	cr_assert_eq(hdr(&m, "Tierd-Type", "sleep"), 0);
	cr_assert_str_eq(m.type, "sleep");
	cr_assert_eq(m.type_len, 5);
	cr_assert_eq(hdr(&m, "Tierd-Timeout", "1500"), 0);
	cr_assert_eq(m.timeout_ns, 1500 * SUP_NS_PER_MS);
	cr_assert_eq(hdr(&m, "Tierd-Timeout", "2s"), 0);
	cr_assert_eq(m.timeout_ns, 2 * SUP_NS_PER_SEC);
	cr_assert_eq(hdr(&m, "Tierd-Deadline", "1700000001000"), 0);
	cr_assert_eq(m.deadline_ms, 1700000001000ll);
	cr_assert_eq(hdr(&m, "Nats-Msg-Id", "abc"), 0);
	cr_assert_str_eq(m.key, "abc");
	cr_assert_eq(hdr(&m, "Tierd-Context", "ctx"), 0);
	cr_assert_eq(m.context_len, 3);
	cr_assert_eq(hdr(&m, "X-Other", "\x01\x02"), 0, "unknown headers are ignored");
}

Test(intake_headers, bad_values_are_refused_with_the_header_named)
{
	struct sup_in_msg m = { 0 };
	char big[300];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	cr_assert_eq(hdr(&m, "Tierd-Type", big), -EINVAL);
	cr_assert(strstr(err, "Tierd-Type"));
	cr_assert_eq(hdr(&m, "Tierd-Type", "a\tb"), -EINVAL);
	cr_assert_eq(hdr(&m, "Tierd-Timeout", "soon"), -EINVAL);
	cr_assert(strstr(err, "Tierd-Timeout"));
	cr_assert_eq(hdr(&m, "Tierd-Timeout", "0"), -EINVAL);
	cr_assert_eq(hdr(&m, "Tierd-Timeout", "99999999999999999999"), -EINVAL);
	cr_assert_eq(hdr(&m, "Tierd-Deadline", "-5"), -EINVAL);
	cr_assert(strstr(err, "Tierd-Deadline"));
	cr_assert_eq(hdr(&m, "Tierd-Deadline", "0"), -EINVAL);
	cr_assert_eq(hdr(&m, "Nats-Msg-Id", big), -EINVAL);
	cr_assert(strstr(err, "Nats-Msg-Id"));
	cr_assert_eq(m.type_len, 0, "a refused value changes nothing");
	cr_assert_eq(m.timeout_ns, 0);
}

Test(intake_headers, timeout_is_the_smaller_of_timeout_and_deadline)
{
	struct sup_in_msg m = { .timeout_ns = 10 * SUP_NS_PER_SEC };

	cr_assert_eq(sup_in_timeout(&m, 1000), 10 * SUP_NS_PER_SEC);
	m.deadline_ms = 4000;
	cr_assert_eq(sup_in_timeout(&m, 1000), 3 * SUP_NS_PER_SEC);
	m.deadline_ms = 100000;
	cr_assert_eq(sup_in_timeout(&m, 1000), 10 * SUP_NS_PER_SEC);
	cr_assert_eq(sup_in_timeout(&m, 100000), -ETIME);
	m.timeout_ns = 0;
	m.deadline_ms = (int64_t)1 << 61;
	cr_assert_eq(sup_in_timeout(&m, 1000), 0, "a far deadline bounds nothing");
}

Test(intake_want, fetches_only_free_room_capped_at_the_batch)
{
	/* 3 ready agents x 64, nothing queued: one batch. */
	cr_assert_eq(sup_in_want(192, 0, 0, 64), 64);
	cr_assert_eq(sup_in_want(10, 0, 0, 64), 10);
	/* What waits in the tier's queue and what was fetched count. */
	cr_assert_eq(sup_in_want(10, 4, 3, 64), 3);
	/* A busy node fetches nothing. */
	cr_assert_eq(sup_in_want(10, 10, 0, 64), 0);
	cr_assert_eq(sup_in_want(10, 8, 5, 64), 0);
	cr_assert_eq(sup_in_want(0, 0, 0, 64), 0);
	cr_assert_eq(sup_in_want(UINT32_MAX, UINT32_MAX, UINT32_MAX, 64), 0, "no overflow");
}

Test(intake_results, result_subjects_and_duplicate_errors)
{
	cr_assert_eq(sup_in_result_seq("tierd", "tierd.result.42"), 42);
	cr_assert_eq(sup_in_result_seq("tierd", "tierd.result.x"), 0);
	cr_assert_eq(sup_in_result_seq("tierd", "tierd.result."), 0);
	cr_assert_eq(sup_in_result_seq("tierd", "other.result.4"), 0);
	cr_assert(sup_in_is_duplicate_error("maximum messages per subject exceeded"));
	cr_assert(!sup_in_is_duplicate_error("stream not found"));
	cr_assert(!sup_in_is_duplicate_error(NULL));
}

/* ---- [fleet] ------------------------------------------------------------- */

Test(fleet_config, defaults_names_and_round_trip)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse("[fleet]\nservers = nats://127.0.0.1:4222, 10.0.0.2:4223\n"
				     "ack_wait = 10s\nmax_deliver = 4\nreplicas = 3\nnode = n-1\n", &e);

	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c);
	cr_assert_eq(c->fleet.ack_wait_ns, 10 * SUP_NS_PER_SEC);
	cr_assert_eq(c->fleet.max_deliver, 4);
	cr_assert_eq(c->fleet.replicas, 3);
	cr_assert_eq(c->fleet.fetch_batch_max, SUP_DEF_FLEET_FETCH_BATCH_MAX);
	cr_assert_str_eq(sup_fleet_tasks_stream(&c->fleet), "TIERD_TASKS");
	cr_assert_str_eq(sup_fleet_subject_prefix(&c->fleet), "tierd");
	assert_round_trip(c);
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

static void refused(const char *text, const char *msg)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse(text, &e);

	cr_assert_null(c, "accepted: %s", text);
	cr_assert(has_msg(&e, msg), "missing: %s", msg);
	sup_config_errors_clear(&e);
}

Test(fleet_config, bad_values_are_named)
{
	refused("[fleet]\nservers = http://x:1\n",
		"t.ini:2: [fleet] key 'servers': URL 'http://x:1': expected the nats:// or tls:// scheme");
	refused("[fleet]\nservers = nats://x\n",
		"t.ini:2: [fleet] key 'servers': URL 'nats://x': expected [nats://]HOST:PORT (port 1..65535)");
	refused("[fleet]\nservers = a:1\nsubject_prefix = a.*\n",
		"t.ini:3: [fleet] key 'subject_prefix': expected subject tokens separated by '.', "
		"without spaces, '*' or '>' (at most 64 characters), got 'a.*'");
	refused("[fleet]\nservers = a:1\ntasks_stream = A.B\n",
		"t.ini:3: [fleet] key 'tasks_stream': expected a stream name of [A-Za-z0-9_-], "
		"1..64 characters, got 'A.B'");
	refused("[fleet]\nservers = a:1\nmax_deliver = 1\n",
		"t.ini:3: [fleet] key 'max_deliver': expected an integer 2..1000, got '1'");
	refused("[fleet]\nservers = a:1\ntls_cert = c.pem\n",
		"t.ini:1: [fleet] 'tls_cert' and 'tls_key' go together: give both or neither");
	refused("[fleet]\nservers = a:1\ntasks_stream = S\nresults_stream = S\n",
		"t.ini:1: [fleet] 'tasks_stream' and 'results_stream' must differ");
}
