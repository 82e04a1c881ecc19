/* SPDX-License-Identifier: MIT */
/*
 * Live upgrade: tierd re-executes itself (or another binary) in place, with
 * the same pid, handing every agent, task, run, socket and counter across
 * in a sealed memfd (docs/operations.md for operators, docs/handover.md
 * for the format). A new binary that cannot take the state over hands it
 * back to the old one, which goes on as if nothing happened, and the
 * client that asked is told why.
 */
#ifndef SUP_DAEMON_UPGRADE_H
#define SUP_DAEMON_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sup_daemon;
struct sup_daemon_cmds;
struct sup_ctl_client;
struct sup_ho_r;

/* The environment the old binary passes besides SUP_HO_ENV. */
#define SUP_UPGRADE_ROLLBACK_ENV "TIERD_ROLLBACK_FD"
#define SUP_UPGRADE_ERROR_ENV    "TIERD_UPGRADE_ERROR"

/* What the daemon section says: read before the configuration is parsed. */
struct sup_restore {
	struct sup_ho_r *r;
	char     *config_path, *conf_path, *conf_dir, *self_dir, *agentd_path, *exe_path;
	char     *config_text;
	size_t    config_len;
	int       log_level;
	int64_t   started_ns;
	int64_t   upgrade_ns;          /* when the old binary was asked */
	bool      ready_sent;
	bool      kill_taints_clone3;
	int       sandbox_fd, sandbox_err, sandbox_step;
	int       ctl_fd;
	dev_t     ctl_dev;
	ino_t     ctl_ino;
	int       metrics_fd;
	int       requester_fd;        /* the client that asked, or -1 */
	uint64_t  request_id;
	int       rollback_fd;         /* the previous binary */
	char     *from_version;
	uint32_t  upgrades;            /* in this pid's life, this one included */
};

/* The `upgrade` command (c may be NULL: SIGUSR2). Refusals are answered
 * here; once it starts, the answer comes from the binary that runs
 * afterwards (the new one, or this one again after a rollback). */
void sup_daemon_upgrade(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id,
			const char *binary);

/* main() of a binary started by an upgrade (SUP_HO_ENV set): restore, or
 * hand the state back to the previous binary. Returns only to exit. */
int sup_daemon_restore_main(struct sup_daemon *d, char **argv, const char *self_dir,
			    const struct sup_daemon_cmds *cmds);

/* Inside sup_daemon_init with a state: the agents, the tasks, the
 * workflows and the controllers' state (daemon_upgrade.c). */
int sup_daemon_restore_fleet(struct sup_daemon *d, const struct sup_restore *rs);

/* Answer the client that asked for the upgrade on its own socket (one
 * line, blocking; msg stolen). */
#include <jansson.h>
void sup_upgrade_answer(int fd, json_t *msg);

/* The version string with the build tag (status, logs). */
const char *sup_daemon_build(void);

#endif
