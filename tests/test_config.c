/* SPDX-License-Identifier: MIT */
/* Configuration: defaults, users and groups, dump round trips, reload
 * comparisons, the bundled example, control and retention bounds, default
 * users, host checks. Values: test_config_values.c; files, the reader and
 * error messages: test_config_read.c. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "../supervisor/cgroup/cg_enforce.h"
#include "../supervisor/config/config.h"
#include "config_test.h"

/* ---- defaults ------------------------------------------------------------- */

Test(defaults, should_apply_every_supervisor_default)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));
	const struct sup_supervisor_conf *s = &c->sup;

	cr_assert_str_eq(s->cgroup_root, SUP_DEF_CGROUP_ROOT);
	cr_assert_str_eq(s->control_socket, "/run/tierd/tierd.sock");
	cr_assert_null(s->control_group);
	cr_assert_eq(s->monitor_interval_ns, 1000000000);
	cr_assert_eq(s->log_level, 6);
	cr_assert_str_eq(s->metrics_address, "127.0.0.1:9464");
	cr_assert_eq(s->restart_backoff_base_ns, 100000000);
	cr_assert_eq(s->restart_backoff_cap_ns, 30000000000);
	cr_assert_eq(s->restart_stable_after_ns, 10000000000);
	cr_assert_eq(s->crash_loop_count, 5);
	cr_assert_eq(s->crash_loop_window_ns, 60000000000);
	cr_assert_eq(s->task_retry_budget, 3);
	cr_assert_eq(s->result_retention_ns, 300000000000);
	cr_assert_eq(s->task_queue_limit, 1024);
	cr_assert_eq(s->max_payload, 60 * 1024);
	cr_assert_eq(s->spin_window_ns, 50000);
	cr_assert_float_eq(s->utilisation_threshold, 80.0, 0);
	cr_assert_float_eq(s->safety_margin, 0.8, 0);
	cr_assert_float_eq(s->hysteresis, 5.0, 0);
	cr_assert(s->optimiser);
	cr_assert_eq(s->response_time_target_ns, 5000000000);
	cr_assert_float_eq(s->efficiency_target, 70.0, 0);
	cr_assert_float_eq(s->quality_threshold, 7.0, 0);
	cr_assert_float_eq(s->stability_target, 95.0, 0);
	cr_assert_null(s->agentd);
	cr_assert_null(s->admin_group);
	cr_assert_eq(s->result_retention_max, 10000);
	cr_assert_eq(s->result_retention_bytes, (uint64_t)64 << 20);
	cr_assert_eq(s->control_idle_timeout_ns, 60000000000);
	cr_assert_eq(s->control_max_per_uid, 32);
	sup_config_free(c);
}

Test(defaults, should_apply_the_seed_tier_allocations)
{
	static const double want[SUP_NRES][SUP_NTIERS] = {
		{ 15, 35, 40, 10 }, { 10, 30, 50, 10 }, { 20, 30, 40, 10 }, { 15, 35, 40, 10 },
	};
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));

	for (int t = 0; t < SUP_NTIERS; t++) {
		const struct sup_tier_conf *tc = &c->tiers[t];

		for (int r = 0; r < SUP_NRES; r++)
			cr_assert_float_eq(tc->share[r], want[r][t], 0, "tier %d resource %d", t + 1, r);
		cr_assert_eq(tc->batch_size, 4);
		cr_assert_eq(tc->stagger_ns, 200000000);
		cr_assert_eq(tc->processing_timeout_ns, 30000000000);
		cr_assert_eq(tc->limits.set, 0, "no limit unless configured");
	}
	sup_config_free(c);
}

Test(defaults, should_apply_every_agent_default)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));
	const struct sup_agent_conf *a = sup_config_agent(c, "solo");

	cr_assert_not_null(a);
	cr_assert_eq(a->tier, 2);
	cr_assert_eq(a->argc, 1);
	cr_assert_str_eq(a->argv[0], "solo-agent", "a bare name is left for PATH");
	cr_assert_eq(a->n_env, 0);
	cr_assert_null(a->workdir);
	/* A root tierd gives it its tier's user (default_user tests). */
	cr_assert_eq(a->has_uid, geteuid() == 0);
	cr_assert_eq(a->default_user, geteuid() == 0);
	cr_assert(a->sandbox);
	cr_assert_eq(a->has_gid, geteuid() == 0, "the tier user's primary group");
	cr_assert_eq(a->caps, 0);
	for (int i = 0; i < SUP_RLIMIT_COUNT; i++)
		cr_assert_not(a->rlimits[i].set);
	cr_assert_eq(a->restart, SUP_RESTART_ON_FAILURE);
	cr_assert_eq(a->start_timeout_ns, 5000000000);
	cr_assert_eq(a->stop_timeout_ns, 5000000000);
	cr_assert_eq(a->ring_size, 256 * 1024);
	cr_assert_eq(a->n_specialties, 0);
	cr_assert_eq(a->mode, SUP_MODE_NATIVE);
	cr_assert_eq(a->exec_timeout_ns, 30000000000);
	cr_assert_eq(a->limits.set, 0);
	cr_assert_eq(a->line, 2);
	sup_config_free(c);
}

/* ---- users and groups ------------------------------------------------------ */

static struct sup_config *agent_with(const char *keys, struct sup_config_errors *e)
{
	char text[512];

	snprintf(text, sizeof(text), "[agent a]\ntier = 1\nexec = /bin/true\n%s\n", keys);
	return parse(text, e);
}

Test(ids, should_resolve_root_by_name)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = root", &e);

	cr_assert_not_null(c);
	cr_assert(c->agents[0].has_uid && c->agents[0].uid == 0);
	cr_assert(c->agents[0].has_gid && c->agents[0].gid == 0, "primary group by default");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(ids, should_accept_numeric_ids)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = 4242\ngroup = 4343", &e);

	cr_assert_not_null(c);
	cr_assert_eq(c->agents[0].uid, 4242);
	cr_assert_eq(c->agents[0].gid, 4343);
	sup_config_free(c);
	c = agent_with("user = 0", &e);
	cr_assert_not_null(c);
	cr_assert(c->agents[0].has_gid && c->agents[0].gid == 0, "uid 0 has a passwd entry");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(ids, should_resolve_a_group_name)
{
	struct sup_config_errors e = { 0 };
	struct group *g = getgrgid(0);
	struct sup_config *c;
	char keys[128];

	cr_assert_not_null(g, "no group 0 on this system");
	snprintf(keys, sizeof(keys), "user = root\ngroup = %s", g->gr_name);
	c = agent_with(keys, &e);
	cr_assert_not_null(c);
	cr_assert_eq(c->agents[0].gid, 0);
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(ids, should_refuse_an_unknown_user)
{
	expect_refused("data/config/bad_user.ini",
		       "4: [agent ghost] key 'user': expected a user name or id, got "
		       "'no-such-user-tierd': no such user on this system");
}

Test(ids, should_refuse_an_unknown_group)
{
	expect_refused("data/config/bad_group.ini",
		       "5: [agent ghost] key 'group': expected a group name or id, got "
		       "'no-such-group-tierd': no such group on this system");
}

Test(ids, should_want_a_group_for_a_uid_without_passwd_entry)
{
	if (getpwuid(4242))
		cr_skip_test("uid 4242 exists on this system");
	expect_refused("data/config/uid_without_group.ini",
		       "4: [agent numeric] key 'user': uid 4242 has no passwd entry, so no primary "
		       "group: set 'group' too");
}

/* ---- dump and reload -------------------------------------------------------- */

Test(dump, should_load_back_equal_from_a_full_file)
{
	struct sup_config *c = load_ok(data("data/config/full.ini"));

	assert_round_trip(c);
	sup_config_free(c);
}

Test(dump, should_load_back_equal_from_defaults)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));

	assert_round_trip(c);
	sup_config_free(c);
}

Test(dump, should_write_defaults_explicitly)
{
	struct sup_config *c = load_ok(data("data/config/minimal.ini"));
	char *text = dump_to_string(c);

	cr_assert_not_null(strstr(text, "\nmonitor_interval = 1s\n"));
	cr_assert_not_null(strstr(text, "\nmax_payload = 60K\n"));
	cr_assert_not_null(strstr(text, "\n[tier3]\ncpu_share = 40%\n"));
	cr_assert_not_null(strstr(text, "\n[agent solo]\ntier = 2\nexec = solo-agent\n"));
	cr_assert_not_null(strstr(text, "\nmetrics_address = 127.0.0.1:9464\n"));
	free(text);
	sup_config_free(c);
}

static struct sup_config *reload_pair(const char *a_keys, const char *b_keys,
				      struct sup_config **ret_b)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *a = agent_with(a_keys, &e);

	*ret_b = agent_with(b_keys, &e);
	cr_assert_not_null(a);
	cr_assert_not_null(*ret_b);
	sup_config_errors_clear(&e);
	return a;
}

Test(reload, should_find_an_unchanged_agent_equal)
{
	struct sup_config *b, *a = reload_pair("env = A=1\nenv = B=2\nuser = root",
					       "env = B=2\nenv = A=1\nuser = 0", &b);

	cr_assert(sup_agent_conf_equal(&a->agents[0], &b->agents[0]),
		  "env order and user spelling do not matter");
	cr_assert(sup_config_equal(a, b));
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_want_a_respawn_when_the_command_changes)
{
	struct sup_config *b, *a = reload_pair("", "env = A=1", &b);

	cr_assert_not(sup_agent_conf_equal(&a->agents[0], &b->agents[0]));
	cr_assert_eq(sup_agent_conf_diff(&a->agents[0], &b->agents[0]), SUP_AGENT_DIFF_PROCESS);
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_apply_limits_in_place)
{
	struct sup_config *b, *a = reload_pair("cpu_weight = 100", "cpu_weight = 200", &b);

	cr_assert_eq(sup_agent_conf_diff(&a->agents[0], &b->agents[0]), SUP_AGENT_DIFF_LIMITS);
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_tell_policy_changes_apart)
{
	struct sup_config *b, *a = reload_pair("restart = always", "restart = never", &b);

	cr_assert_eq(sup_agent_conf_diff(&a->agents[0], &b->agents[0]), SUP_AGENT_DIFF_POLICY);
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_tell_an_unset_limit_from_a_set_one)
{
	struct sup_config *b, *a = reload_pair("", "memory_swap_max = 0", &b);

	cr_assert_not(sup_limits_equal(&a->agents[0].limits, &b->agents[0].limits));
	sup_config_free(a);
	sup_config_free(b);
}

Test(reload, should_compare_tiers)
{
	struct sup_config *a = load_ok(data("data/config/minimal.ini"));
	struct sup_config *b = load_ok(data("data/config/minimal.ini"));

	cr_assert(sup_tier_conf_equal(&a->tiers[2], &b->tiers[2]));
	b->tiers[2].batch_size = 8;
	cr_assert_not(sup_tier_conf_equal(&a->tiers[2], &b->tiers[2]));
	cr_assert_not(sup_config_equal(a, b));
	sup_config_free(a);
	sup_config_free(b);
}

/* ---- the bundled example ---------------------------------------------------- */

Test(example, should_load_team24_with_1_3_16_4_agents)
{
	struct sup_config *c = load_ok(data("../examples/team24.ini"));
	unsigned per_tier[SUP_NTIERS + 1] = { 0 };

	cr_assert_eq(c->n_agents, 24);
	for (size_t i = 0; i < c->n_agents; i++) {
		const struct sup_agent_conf *a = &c->agents[i];

		per_tier[a->tier]++;
		cr_assert_eq(a->mode, SUP_MODE_NATIVE);
		cr_assert_eq(a->restart, SUP_RESTART_ALWAYS);
		cr_assert_not_null(strstr(a->argv[0], "/build/examples/team-agent"));
		cr_assert_eq(a->argv[0][0], '/');
		if (a->tier == 4)
			cr_assert_gt(a->n_specialties, 0, "%s", a->name);
	}
	cr_assert_eq(per_tier[1], 1);
	cr_assert_eq(per_tier[2], 3);
	cr_assert_eq(per_tier[3], 16);
	cr_assert_eq(per_tier[4], 4);
	cr_assert_str_eq(c->sup.control_socket, "/run/tierd/team24.sock");
	cr_assert_str_eq(c->sup.cgroup_root, "tierd-team24");
	cr_assert_not_null(sup_config_agent(c, "orchestrator"));
	assert_round_trip(c);
	sup_config_free(c);
}

Test(example, should_give_each_specialist_distinct_task_types)
{
	struct sup_config *c = load_ok(data("../examples/team24.ini"));

	for (size_t i = 0; i < c->n_agents; i++)
		for (size_t j = i + 1; j < c->n_agents; j++) {
			const struct sup_agent_conf *a = &c->agents[i], *b = &c->agents[j];

			for (size_t x = 0; x < a->n_specialties; x++)
				for (size_t y = 0; y < b->n_specialties; y++)
					cr_assert_str_neq(a->specialties[x], b->specialties[y]);
		}
	sup_config_free(c);
}

/* ---- control socket and retention bounds ------------------------------------ */

Test(control_keys, should_parse_admin_group_and_the_client_bounds)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse("[supervisor]\nadmin_group = 0\nresult_retention_max = 50\n"
				     "result_retention_bytes = 2M\ncontrol_idle_timeout = 90s\n"
				     "control_max_clients_per_uid = 4\n"
				     "[agent a]\ntier = 1\nexec = /bin/true\n", &e);

	if (!c)
		dump_errs(&e);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->sup.admin_group, "0");
	cr_assert_eq(c->sup.admin_gid, 0);
	cr_assert_eq(c->sup.result_retention_max, 50);
	cr_assert_eq(c->sup.result_retention_bytes, 2u << 20);
	cr_assert_eq(c->sup.control_idle_timeout_ns, 90000000000);
	cr_assert_eq(c->sup.control_max_per_uid, 4);
	assert_round_trip(c);
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(control_keys, should_refuse_bounds_out_of_range_and_unknown_groups)
{
	static const char *const bad[] = {
		"result_retention_max = 2000000", "result_retention_bytes = 2T",
		"result_retention_bytes = lots", "control_max_clients_per_uid = 5000",
		"control_idle_timeout = 2d", "admin_group = no-such-group-tierd-test",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sup_config_errors e = { 0 };
		char text[256];
		struct sup_config *c;

		snprintf(text, sizeof(text), "[supervisor]\n%s\n[agent a]\ntier = 1\nexec = /bin/true\n",
			 bad[i]);
		c = parse(text, &e);
		cr_assert_null(c, "accepted: %s", bad[i]);
		cr_assert_gt(e.n_errors, 0);
		cr_assert_not_null(strstr(e.v[0].msg, "[supervisor]"), "%s: %s", bad[i], e.v[0].msg);
		sup_config_errors_clear(&e);
	}
}

/* ---- default users and root agents ---------------------------------------- */

static bool has_substr(const struct sup_config_errors *e, const char *s, bool warning)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].warning == warning && strstr(e->v[i].msg, s))
			return true;
	dump_errs(e);
	return false;
}

Test(default_user, should_name_one_user_per_tier)
{
	char buf[32];

	sup_default_user(3, buf, sizeof(buf));
	cr_assert_str_eq(buf, "tierd-t3");
}

Test(default_user, should_run_an_agent_without_user_as_its_tiers_user)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = parse("[agent a]\ntier = 2\nexec = /bin/true\n", &e);
	struct passwd *pw;

	cr_assert_not_null(c);
	if (geteuid() != 0) {
		cr_assert(!c->agents[0].has_uid, "a tierd that is not root runs agents as itself");
		sup_config_free(c);
		return;
	}
	pw = getpwnam("tierd-t2");
	cr_assert_not_null(pw, "scripts/setup-deps.sh creates tierd-t2");
	cr_assert(c->agents[0].has_uid && c->agents[0].default_user);
	cr_assert_eq(c->agents[0].uid, pw->pw_uid);
	cr_assert_eq(c->agents[0].gid, pw->pw_gid, "the user's primary group");
	cr_assert_null(c->agents[0].user, "nothing written, nothing dumped");
	sup_config_free(c);
}

/* A passwd without the tiers' users, in a mount namespace of this test's
 * own (criterion runs each test in a process of its own). */
Test(default_user, should_refuse_an_agent_without_user_when_its_tiers_user_is_missing)
{
	struct sup_config_errors e = { 0 };
	char path[] = "/tmp/tierd-test-passwd-XXXXXX";
	struct sup_config *c;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root: a mount namespace to hide the tiers' users");
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL), 0);
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, "root:x:0:0:root:/root:/bin/sh\n", 30) == 30);
	close(fd);
	cr_assert_eq(mount(path, "/etc/passwd", NULL, MS_BIND, NULL), 0, "%s", strerror(errno));
	unlink(path);
	c = parse("[agent a]\ntier = 1\nexec = /bin/true\n", &e);
	cr_assert_null(c);
	cr_assert(has_msg(&e, "t.ini:1: [agent a] no key 'user', and the default user of tier 1, "
			  "tierd-t1, does not exist on this system: create it with "
			  "scripts/setup-deps.sh (useradd --system --no-create-home --shell "
			  "/usr/sbin/nologin tierd-t1), or set 'user' (user = root runs the agent as "
			  "root)"));
	sup_config_errors_clear(&e);
	c = parse("[agent a]\ntier = 1\nexec = /bin/true\nuser = root\n", &e);
	cr_assert_not_null(c, "user = root needs no tier user");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(default_user, should_warn_about_a_root_agent_and_its_useless_nproc_limit)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = root\nrlimit_nproc = 64", &e);

	cr_assert_not_null(c);
	cr_assert(has_substr(&e, "4: warning: [agent a] key 'user': the agent runs as root", true));
	cr_assert(has_substr(&e, "5: warning: [agent a] key 'rlimit_nproc' does nothing for uid 0", true));
	sup_config_free(c);
	sup_config_errors_clear(&e);
	c = agent_with("rlimit_nproc = 64", &e);
	cr_assert_not_null(c);
	if (geteuid() == 0)
		cr_assert_eq(e.n, 0, "a tier user's nproc limit holds: no warning");
	sup_config_free(c);
	sup_config_errors_clear(&e);
}

Test(default_user, should_keep_the_sandbox_on_unless_turned_off)
{
	struct sup_config_errors e = { 0 };
	struct sup_config *c = agent_with("user = 0", &e), *d;

	cr_assert_not_null(c);
	cr_assert(c->agents[0].sandbox);
	d = agent_with("user = 0\nsandbox = no", &e);
	cr_assert_not_null(d);
	cr_assert(!d->agents[0].sandbox);
	cr_assert(sup_agent_conf_diff(&c->agents[0], &d->agents[0]) & SUP_AGENT_DIFF_PROCESS,
		  "turning it off respawns the agent");
	sup_config_free(c);
	sup_config_free(d);
	sup_config_errors_clear(&e);
}

/* ---- limits this host cannot enforce (cg_enforce.h) ------------------------ */

Test(unenforced, should_name_the_limits_whose_controller_is_not_in_cgroup2)
{
	struct sup_limits l = { 0 };
	char buf[128];
	unsigned bits;

	l.set = SUP_LIM_BIT(SUP_LIM_PIDS_MAX) | SUP_LIM_BIT(SUP_LIM_MEMORY_MAX) |
		SUP_LIM_BIT(SUP_LIM_CPU_WEIGHT);
	bits = sup_limits_unenforced(&l, 1u << SUP_CG_CPU);
	cr_assert_eq(bits, SUP_LIM_BIT(SUP_LIM_PIDS_MAX) | SUP_LIM_BIT(SUP_LIM_MEMORY_MAX));
	sup_limits_format(bits, buf, sizeof(buf));
	cr_assert_str_eq(buf, "memory_max, pids_max");
	cr_assert_eq(sup_limits_unenforced(&l, ~0u), 0, "every controller live: all enforced");
	cr_assert_eq(sup_limit_ctrl(SUP_LIM_IO_MAX), SUP_CG_IO);
	cr_assert_eq(sup_limit_ctrl(SUP_LIM_CPUSET_CPUS), SUP_CG_CPUSET);
}

Test(unenforced, should_warn_per_agent_and_per_tier_with_the_reason)
{
	struct sup_config_errors e = { 0 };
	char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX] = { { 0 } };
	struct sup_config *c = parse("[tier3]\npids_max = 100\n[agent a]\ntier = 1\nexec = /bin/true\n"
				     "user = 0\nmemory_max = 1G\ncpu_weight = 50\n"
				     "[agent b]\ntier = 2\nexec = /bin/true\nuser = 0\n", &e);

	cr_assert_not_null(c);
	sup_config_errors_clear(&e);
	snprintf(why[SUP_CG_PIDS], SUP_CG_WHY_MAX, "bound to v1");
	snprintf(why[SUP_CG_MEMORY], SUP_CG_WHY_MAX, "bound to v1 too");
	sup_config_check_host(c, 1u << SUP_CG_CPU, why, &e);
	cr_assert_eq(e.n, 2, "tier3 and agent a; agent b has no limits");
	cr_assert(has_msg(&e, "t.ini: warning: [tier3] not enforceable on this host: pids_max "
			  "(pids: bound to v1)"));
	cr_assert(has_msg(&e, "t.ini:3: warning: [agent a] not enforceable on this host: "
			  "memory_max (memory: bound to v1 too)"));
	cr_assert_eq(e.n_errors, 0, "warnings only");
	sup_config_errors_clear(&e);
	sup_config_check_host(c, ~0u, why, &e);
	cr_assert_eq(e.n, 0, "a pure v2 host with every controller: nothing to say");
	sup_config_free(c);
}
