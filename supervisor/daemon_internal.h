/* SPDX-License-Identifier: MIT */
/*
 * The daemon's private half. Its files: daemon.c (start-up, wiring,
 * signals, shutdown), daemon_reload.c, daemon_env.c (the tasks env),
 * daemon_metrics.c.
 *
 * daemon_metrics.c is the exposition text (Prometheus text format 0.0.4) of
 * the daemon's state: per agent, per tier, the machine and tierd itself.
 * docs/metrics.md lists every family, its labels and where its numbers
 * come from. The daemon's render callback for the metrics endpoint
 * (metrics.h); loop thread only, since it reads daemon state.
 *
 * Families appear once each, with HELP and TYPE; a family with no sample
 * (no network accounting, no ceiling) is left out whole; label values are
 * escaped.
 */
#ifndef SUP_DAEMON_INTERNAL_H
#define SUP_DAEMON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* A sup_metrics_render_fn with a struct sup_daemon * as arg: the whole
 * exposition, malloc'd and NUL-terminated, in *ret_text; its length in
 * *ret_len. 0, or -ENOMEM (out-parameters untouched). */
int sup_metrics_build(void *daemon, char **ret_text, size_t *ret_len);

/* daemon_signals.c */
struct sup_daemon;
struct sup_ho_w;
struct sup_ho_r;
int  sup_daemon_setup_signals(struct sup_daemon *d);
void sup_daemon_arm_signals(struct sup_daemon *d);

/* The task journal (daemon_wal.c): open and lock it (before the control
 * socket), replay it (after the agents are added), its status JSON, and
 * the end (after the loop drained). 0 or -errno, logged. */
#include <jansson.h>
struct sup_daemon;
struct sup_config;
struct sup_wal_opts;
void sup_daemon_wal_opts(const struct sup_config *c, struct sup_wal_opts *o);
int sup_daemon_wal_open(struct sup_daemon *d);
int sup_daemon_wal_replay(struct sup_daemon *d);
json_t *sup_daemon_wal_json(struct sup_daemon *d);
void sup_daemon_wal_close(struct sup_daemon *d);
/* A reload: the sync mode, window and sizes apply now; returns true when
 * what needs a restart (journal, journal_dir) changed. */
bool sup_daemon_wal_reload(struct sup_daemon *d, const struct sup_config *old,
			   const struct sup_config *nc);

/* Live upgrade, the new side (daemon_restore.c): what the daemon section
 * of the state says, read before the configuration is parsed. */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
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

/* The versions of the daemon's own sections (docs/handover.md). */
#define SUP_DAEMON_SEC_VERSION 1
#define SUP_AGENTS_SEC_VERSION 1

/* Inside sup_daemon_init with a state: the agents and the tasks. */
/* daemon_fleet.c: the NATS intake ([fleet]). open: when configured and
 * not open yet (a failure is logged; local work goes on). */
struct sup_ctl_client;
void sup_daemon_intake_open(struct sup_daemon *d);
void sup_daemon_intake_close(struct sup_daemon *d);
/* fleet-drain: reply to c once drained (now if it is). */
void sup_daemon_fleet_drain_wait(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id);
void sup_daemon_fleet_client_gone(struct sup_daemon *d, struct sup_ctl_client *c);
int sup_daemon_restore_fleet(struct sup_daemon *d, const struct sup_restore *rs);

#endif
