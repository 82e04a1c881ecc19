/* SPDX-License-Identifier: MIT */
/*
 * Live upgrade, the new side: read and check the state the previous binary
 * left (daemon_upgrade.h), build the daemon from it, and only then commit:
 * until the commit nothing handed over has been closed or changed, so any
 * failure can exec the previous binary with the very same state.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/ctlproto.h"
#include "common/fdio.h"
#include "config/config.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "daemon_upgrade.h"
#include "handover/handover.h"
#include "incarnation/incarnation.h"
#include "monitor.h"
#include "tasks.h"

#define CONFIG_TEXT_MAX (16u << 20)

extern char **environ;

static int env_fd(const char *name)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || v < 3 || v > INT_MAX ? -1 : (int)v;
}

/* Hand the state back: exec the previous binary with the same memfd and
 * the reason. Returns only if that is impossible. */
static int rollback(struct sup_daemon *d, char **argv, const char *why)
{
	int fd = env_fd(SUP_UPGRADE_ROLLBACK_ENV);

	sup_log(&d->log, SUP_LOG_ERR, "upgrade: this binary (%s) refuses the state: %s; handing it "
		"back to the previous binary", sup_daemon_build(), why);
	if (getenv(SUP_UPGRADE_ERROR_ENV)) {
		/* This is the previous binary already: nothing to go back to. */
		sup_log(&d->log, SUP_LOG_CRIT, "upgrade: the previous binary cannot take its own state "
			"back (%s); exiting", why);
		return 1;
	}
	if (fd < 0) {
		sup_log(&d->log, SUP_LOG_CRIT, "upgrade: no previous binary to hand the state back to");
		return 1;
	}
	setenv(SUP_UPGRADE_ERROR_ENV, why, 1);
	execveat(fd, "", argv, environ, AT_EMPTY_PATH);
	sup_log(&d->log, SUP_LOG_CRIT, "upgrade: cannot execute the previous binary: %m");
	return 1;
}

static int read_daemon(struct sup_ho_r *r, struct sup_restore *rs)
{
	uint32_t version, level, serr, sstep;
	uint64_t dev, ino;
	const void *text;
	uint32_t tlen;
	uint8_t ready, taint;

	if (!sup_ho_r_section(r, SUP_HO_TAG_DAEMON, &version) || version != SUP_DAEMON_SEC_VERSION) {
		sup_ho_r_fail(r, "no daemon section of version %u", SUP_DAEMON_SEC_VERSION);
		return -EINVAL;
	}
	sup_ho_r_strdup(r, &rs->config_path, PATH_MAX);
	sup_ho_r_strdup(r, &rs->conf_path, PATH_MAX);
	sup_ho_r_strdup(r, &rs->conf_dir, PATH_MAX);
	sup_ho_r_bytes(r, &text, &tlen, CONFIG_TEXT_MAX);
	sup_ho_r_u32(r, &level);
	sup_ho_r_strdup(r, &rs->self_dir, PATH_MAX);
	sup_ho_r_strdup(r, &rs->agentd_path, PATH_MAX);
	sup_ho_r_strdup(r, &rs->exe_path, PATH_MAX);
	sup_ho_r_i64(r, &rs->started_ns);
	sup_ho_r_i64(r, &rs->upgrade_ns);
	sup_ho_r_u8(r, &ready);
	sup_ho_r_u8(r, &taint);
	sup_ho_r_fd(r, SUP_HO_FD_ANY, &rs->sandbox_fd);
	sup_ho_r_u32(r, &serr);
	sup_ho_r_u32(r, &sstep);
	sup_ho_r_fd(r, SUP_HO_FD_UNIX_LISTEN, &rs->ctl_fd);
	sup_ho_r_u64(r, &dev);
	sup_ho_r_u64(r, &ino);
	sup_ho_r_fd(r, SUP_HO_FD_TCP_LISTEN, &rs->metrics_fd);
	sup_ho_r_fd(r, SUP_HO_FD_UNIX_STREAM, &rs->requester_fd);
	sup_ho_r_u64(r, &rs->request_id);
	sup_ho_r_fd(r, SUP_HO_FD_FILE, &rs->rollback_fd);
	sup_ho_r_strdup(r, &rs->from_version, 256);
	sup_ho_r_u32(r, &rs->upgrades);
	if (!sup_ho_r_ok(r))
		return -EINVAL;
	if (!rs->config_path || !rs->conf_path || !rs->conf_dir || !rs->self_dir || !rs->agentd_path ||
	    !rs->exe_path || rs->ctl_fd < 0 || level > 7) {
		sup_ho_r_fail(r, "daemon section: a path, the control socket or the log level missing");
		return -EINVAL;
	}
	rs->config_text = malloc((size_t)tlen + 1);
	if (!rs->config_text) {
		sup_ho_r_fail(r, "out of memory");
		return -ENOMEM;
	}
	memcpy(rs->config_text, text, tlen);
	rs->config_text[tlen] = 0;
	rs->config_len = tlen;
	rs->log_level = (int)level;
	rs->ready_sent = ready;
	rs->kill_taints_clone3 = taint;
	rs->sandbox_err = (int)serr;
	rs->sandbox_step = (int)sstep;
	rs->ctl_dev = (dev_t)dev;
	rs->ctl_ino = (ino_t)ino;
	return 0;
}

int sup_daemon_restore_fleet(struct sup_daemon *d, const struct sup_restore *rs)
{
	struct sup_ho_r *r = rs->r;
	uint32_t version, n;
	bool *taken;

	if (!sup_ho_r_section(r, SUP_HO_TAG_AGENTS, &version) || version != SUP_AGENTS_SEC_VERSION ||
	    !sup_ho_r_u32(r, &n)) {
		sup_ho_r_fail(r, "no agents section of version %u", SUP_AGENTS_SEC_VERSION);
		return -EINVAL;
	}
	if (n > d->conf->n_agents) {
		sup_ho_r_fail(r, "%u agents run, the configuration has %zu", n, d->conf->n_agents);
		return -EINVAL;
	}
	taken = calloc(d->conf->n_agents + 1, sizeof(*taken));
	if (!taken) {
		sup_ho_r_fail(r, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct sup_agent *ag;
		size_t k;

		if (sup_fleet_reserve(&d->fleet) < 0) {
			sup_ho_r_fail(r, "out of memory");
			break;
		}
		ag = sup_agent_restore(&d->agent_env, d->conf, i, r);
		if (!ag)
			break;
		k = (size_t)(ag->conf - d->conf->agents);
		if (taken[k]) {
			sup_ho_r_fail(r, "agent %s twice", ag->name);
			break;
		}
		taken[k] = true;
		ag->d = d;
		sup_fleet_add(&d->fleet, ag);
		sup_monitor_add(d->monitor, ag);
	}
	free(taken);
	if (!sup_ho_r_ok(r))
		return -EINVAL;
	return sup_tasks_restore(d->tasks, r) < 0 ? -EINVAL : 0;
}

/* Committed: the fds are this binary's now. */
static void commit(struct sup_daemon *d, struct sup_restore *rs, int memfd, const char *refused)
{
	int64_t now = sup_loop_now(d->loop);
	double pause_ms = (double)(now - rs->upgrade_ns) * 1e-6;

	(void)memfd;   /* closed by the commit */
	sup_ho_r_commit(rs->r);
	sup_ho_r_free(rs->r);
	rs->r = NULL;
	if (rs->rollback_fd >= 0)
		close(rs->rollback_fd);
	for (size_t i = 0; i < d->fleet.n; i++)
		if (d->fleet.agents[i]->inc)
			sup_inc_restored(d->fleet.agents[i]->inc);
	/* Agents the configuration has and the state did not (none, unless
	 * the state came from an older tierd): started as at boot. */
	for (size_t i = 0; d->fleet.n < d->conf->n_agents && i < d->conf->n_agents; i++)
		if (!sup_fleet_find(&d->fleet, d->conf->agents[i].name))
			sup_daemon_add_agent(d, &d->conf->agents[i], true);
	sup_tasks_resume(d->tasks);
	d->upgrades = rs->upgrades;
	if (refused) {
		sup_daemon_event(d, SUP_LOG_ERR, "upgrade_failed",
				 json_pack("{s:s, s:s, s:f}", "error", refused, "version", sup_daemon_build(),
					   "pause_ms", pause_ms),
				 "upgrade failed, the previous tierd (%s) goes on after %.1f ms: %s",
				 sup_daemon_build(), pause_ms, refused);
		sup_upgrade_answer(rs->requester_fd, sup_ctl_msg_err(true, rs->request_id, EINVAL, refused));
	} else {
		sup_daemon_event(d, SUP_LOG_NOTICE, "upgraded",
				 json_pack("{s:s, s:s, s:i, s:f, s:I}", "from", rs->from_version, "to",
					   sup_daemon_build(), "pid", (int)getpid(), "pause_ms", pause_ms,
					   "agents", (json_int_t)d->fleet.n),
				 "upgraded from %s to %s in place (pid %d, %zu agents) in %.1f ms",
				 rs->from_version, sup_daemon_build(), (int)getpid(), d->fleet.n, pause_ms);
		sup_upgrade_answer(rs->requester_fd,
		       sup_ctl_msg_ok(rs->request_id,
				      json_pack("{s:s, s:s, s:i, s:f, s:I}", "from", rs->from_version,
						"to", sup_daemon_build(), "pid", (int)getpid(),
						"pause_ms", pause_ms, "agents", (json_int_t)d->fleet.n)));
	}
	if (rs->requester_fd >= 0)
		close(rs->requester_fd);
	if (d->notify)
		sd_notify(0, "READY=1");
}

int sup_daemon_restore_main(struct sup_daemon *d, char **argv, const char *self_dir,
			    const struct sup_daemon_cmds *cmds)
{
	struct sup_restore rs = { .sandbox_fd = -1, .ctl_fd = -1, .metrics_fd = -1,
				  .requester_fd = -1, .rollback_fd = -1 };
	struct sup_config_errors errs = { 0 };
	struct sup_config *conf;
	const char *refused_env = getenv(SUP_UPGRADE_ERROR_ENV);
	char err[512], *refused = refused_env ? strdup(refused_env) : NULL;
	int memfd = env_fd(SUP_HO_ENV), r;

	(void)self_dir;
	sup_logger_init(&d->log, SUP_LOG_INFO);
	if (memfd < 0)
		return rollback(d, argv, "the state's fd in " SUP_HO_ENV " is not a number above 2");
	rs.r = sup_ho_r_open(memfd, err, sizeof(err));
	if (!rs.r)
		return rollback(d, argv, err);
	if (read_daemon(rs.r, &rs) < 0)
		return rollback(d, argv, sup_ho_r_error(rs.r));
	conf = sup_config_parse(rs.conf_path, rs.conf_dir, rs.config_text, rs.config_len, &errs);
	if (!conf) {
		snprintf(err, sizeof(err), "the configuration in force is refused by this binary: %s",
			 errs.n ? errs.v[0].msg : strerror(errno));
		sup_config_errors_clear(&errs);
		return rollback(d, argv, err);
	}
	sup_config_errors_clear(&errs);
	conf->sup.log_level = rs.log_level;
	unsetenv(SUP_HO_ENV);
	unsetenv(SUP_UPGRADE_ROLLBACK_ENV);
	unsetenv(SUP_UPGRADE_ERROR_ENV);
	d->argv = argv;
	r = sup_daemon_init_from(d, conf, rs.config_path, rs.self_dir, cmds, &rs);
	if (r < 0) {
		char *env_state;

		snprintf(err, sizeof(err), "%s", sup_ho_r_ok(rs.r) ? strerror(-r) : sup_ho_r_error(rs.r));
		/* Put back what the exec needs (the numbers are the same fds). */
		if (asprintf(&env_state, "%d", memfd) >= 0)
			setenv(SUP_HO_ENV, env_state, 1);
		if (asprintf(&env_state, "%d", rs.rollback_fd) >= 0)
			setenv(SUP_UPGRADE_ROLLBACK_ENV, env_state, 1);
		if (refused)
			setenv(SUP_UPGRADE_ERROR_ENV, refused, 1);
		return rollback(d, argv, err);
	}
	commit(d, &rs, memfd, refused);
	free(refused);
	r = sup_daemon_run(d);
	sup_daemon_fini(d);
	return r < 0 ? 1 : r;
}
