/* SPDX-License-Identifier: MIT */
/* The daemon context shared by tierd's modules. */
#ifndef SUP_DAEMON_H
#define SUP_DAEMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include "agent.h"
#include "fleet.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "spawn.h"

struct sup_cg;
struct sup_config;
struct sup_ctl;
struct sup_events;
struct sup_tasks;
struct sup_wal;
struct sup_monitor;
struct sup_allocator;
struct sup_optimiser;
struct sup_metrics;
struct sup_ctl_client;
struct sup_agent_conf;
struct sup_inc_fleet;
struct sup_daemon;

/* The control commands the daemon runs its socket's requests with
 * (commands.h): handed in by main, so that the daemon knows none of them. */
struct sup_daemon_cmds {
	void (*dispatch)(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id,
			 const char *cmd, json_t *args);
	/* Control client c closed. */
	void (*client_gone)(struct sup_daemon *d, struct sup_ctl_client *c);
	/* At the end, after the task table and the workflow are freed. */
	void (*fini)(struct sup_daemon *d);
	/* A live upgrade is about to close every connection: tell waiting
	 * clients what to wait for once they reconnect. */
	void (*upgrade_notify)(struct sup_daemon *d);
};

struct sup_daemon {
	struct sup_logger        log;
	struct sup_journal       journal;         /* log and events, as one view */
	struct sup_loop         *loop;
	struct sup_cg           *cg;
	struct sup_config       *conf;
	char                    *config_path;
	char                    *agentd_path;     /* resolved */
	char                    *self_dir;        /* directory of the tierd binary */
	struct sup_ctl          *ctl;
	struct sup_events       *events;
	struct sup_tasks        *tasks;
	struct sup_wf           *wf;
	struct sup_wal          *wal;             /* the task journal; NULL: off */
	struct sup_monitor      *monitor;
	struct sup_allocator    *alloc;
	struct sup_optimiser    *opt;
	struct sup_metrics      *metrics;         /* NULL: off, or it failed */
	char                     metrics_error[256]; /* why it failed to start */

	struct sup_fleet         fleet;           /* the agents (fleet.h) */
	struct sup_inc_fleet    *incs;            /* their incarnations */

	int                      sigfd;
	struct sup_ev            sig_ev;
	struct signalfd_siginfo  sig_buf;
	int                      devnull;

	struct sup_timer         tick;
	struct sup_timer         watchdog;
	int64_t                  watchdog_ns;
	bool                     notify;          /* NOTIFY_SOCKET set */
	bool                     ready_sent;
	int64_t                  started_ns;
	int64_t                  last_status_ns;

	struct sup_defer         housekeeping;
	struct sup_config      **old_confs;       /* kept while agents may use them */
	size_t                   nold_confs;

	bool                     kill_taints_clone3;  /* see sup_cg_probe_kill_taint */

	bool                     shutting_down;
	int                      exit_code;
	struct sup_ctl_client   *shutdown_client;
	uint64_t                 shutdown_id;
	bool                     bench_running;   /* one bench-dispatch at a time */

	/* The agents' mount namespace (sandbox.h); -1 when it could not be
	 * made, and then why: sandboxed agents do not start. */
	int                      sandbox_fd;
	int                      sandbox_err;
	enum sup_spawn_step      sandbox_step;
	/* Control clients waiting for a task or a run (commands_tasks.c). */
	struct sup_cmd_waiter    *waiters;
	/* The NATS intake ([fleet]; NULL: off) and the fleet-drain requests
	 * waiting for it to drain (daemon_fleet.c). */
	struct sup_intake        *intake;
	struct sup_fleet_waiter  *fleet_waiters;
	/* Who hears of agents' changes, and the daemon's own two hooks in it:
	 * the journal before the task table, readiness after it. */
	struct sup_agent_observers agent_obs;
	struct sup_agent_observer  journal_obs, ready_obs;
	/* What every agent reaches of the daemon (agent.h). */
	struct sup_agent_env       agent_env;
	const struct sup_daemon_cmds *cmds;
	/* Live upgrade (daemon_upgrade.h): main's argv (exec'd again), the
	 * binary's path, the upgrade under way, upgrades in this pid's life. */
	char                     **argv;
	char                      *exe_path;
	struct sup_upgrade        *upgrade;
	uint32_t                   upgrades;
	struct sup_wal_state      *wal_handed;  /* described for the next binary */
};

#define SUP_VERSION "0.1.0"
/* The version with the build's tag (status, logs, --version). */
const char *sup_daemon_build(void);

/* Live upgrade, the daemon's own parts (daemon_signals.c, daemon_state.c):
 * quiesce stops signals, the tick and the metrics thread (its socket
 * returned, or -1); resume undoes it; modules_quiet: nothing of the
 * modules' is pending (the task journal synced); save/restore_modules: the
 * workflows, allocator, monitor, events, accounting and task journal. */
struct sup_ho_w;
struct sup_ho_r;
int  sup_daemon_quiesce_for_upgrade(struct sup_daemon *d);
void sup_daemon_resume_after_upgrade(struct sup_daemon *d, int metrics_fd);
bool sup_daemon_modules_quiet(struct sup_daemon *d);
int  sup_daemon_save_modules(struct sup_daemon *d, struct sup_ho_w *w);
int  sup_daemon_restore_modules(struct sup_daemon *d, struct sup_ho_r *r);
int  sup_daemon_wal_take_back(struct sup_daemon *d);

/* Set up everything and start the configured agents; takes conf. Control
 * requests go to cmds (which outlives d). Logs the cause of any failure. */
int  sup_daemon_init(struct sup_daemon *d, struct sup_config *conf, const char *config_path,
		     const char *self_dir, const struct sup_daemon_cmds *cmds);
/* The same from the state a live upgrade handed over (rs; NULL: a fresh
 * start). On failure with rs nothing handed over has been closed. */
struct sup_restore;
int  sup_daemon_init_from(struct sup_daemon *d, struct sup_config *conf, const char *config_path,
			  const char *self_dir, const struct sup_daemon_cmds *cmds,
			  const struct sup_restore *rs);
/* Run until shut down; returns the exit code. */
int  sup_daemon_run(struct sup_daemon *d);
/* Stop agents' processes are gone by now; remove the tree, free. */
void sup_daemon_fini(struct sup_daemon *d);

/* Stop every agent, then leave the loop (code: process exit status). */
void sup_daemon_shutdown(struct sup_daemon *d, int code);
/* Re-read the config file and apply the difference; replies to client id
 * when client is not NULL. */
void sup_daemon_reload(struct sup_daemon *d, struct sup_ctl_client *client, uint64_t id);
/* Create an agent (and its leaf) from c; start it if asked. */
int  sup_daemon_add_agent(struct sup_daemon *d, const struct sup_agent_conf *c, bool start);

/* Event journal with the daemon's fields; steals ev. Also logs it at prio
 * (unless prio < 0). */
void sup_daemon_event(struct sup_daemon *d, int prio, const char *kind, json_t *ev,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

struct sup_agent *sup_daemon_find_agent(struct sup_daemon *d, const char *name);
/* The daemon as the task table's and workflow's env (daemon_env.c). */
struct sup_tasks_env;
void sup_daemon_tasks_env(struct sup_daemon *d, struct sup_tasks_env *env);
/* Free the configurations replaced by reloads that no agent points into
 * any more (a removed agent keeps its own until it has stopped). */
void sup_daemon_free_old_confs(struct sup_daemon *d);

#endif
