/* SPDX-License-Identifier: MIT */
/* tierd's life: start-up, signals, systemd notification, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cg_proc.h"
#include "cgroup/cgroup.h"
#include "cgroup/cg_leaf.h"
#include "cgroup/cg_spawn.h"
#include "common/fdio.h"
#include "config/config.h"
#include "ctl.h"
#include "daemon.h"
#include "events.h"
#include "incarnation/incarnation.h"
#include "tasks.h"
#include "tasks_env.h"
#include "workflow.h"
#include "allocator.h"
#include "metrics.h"
#include "daemon_internal.h"
#include "monitor.h"
#include "optimiser.h"
#include "sandbox.h"

#define EVENTS_KEPT 4096

void sup_daemon_event(struct sup_daemon *d, int prio, const char *kind, json_t *ev,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sup_journal_eventv(&d->journal, prio, kind, ev, fmt, ap);
	va_end(ap);
}

struct sup_agent *sup_daemon_find_agent(struct sup_daemon *d, const char *name)
{
	return sup_fleet_find(&d->fleet, name);
}

static void notify_status(struct sup_daemon *d)
{
	unsigned n[SUP_AG_NSTATES] = { 0 };

	if (!d->notify)
		return;
	for (size_t i = 0; i < d->fleet.n; i++)
		n[d->fleet.agents[i]->state]++;
	sd_notifyf(0, "STATUS=%zu agents: %u ready, %u starting, %u backoff, %u failed, %u stopped",
		   d->fleet.n, n[SUP_AG_READY], n[SUP_AG_STARTING], n[SUP_AG_BACKOFF],
		   n[SUP_AG_FAILED], n[SUP_AG_STOPPED]);
}

/* ---- shutdown and agent removal ----------------------------------------- */

static bool all_quiet(const struct sup_daemon *d)
{
	for (size_t i = 0; i < d->fleet.n; i++)
		if (d->fleet.agents[i]->inc)
			return false;
	return true;
}

static void remove_agent_at(struct sup_daemon *d, size_t i)
{
	struct sup_agent *ag = d->fleet.agents[i];

	sup_tasks_agent_removed(d->tasks, ag);
	sup_monitor_remove(d->monitor, ag);
	sup_fleet_remove_at(&d->fleet, i);
	sup_agent_free(ag, true);
}

static bool conf_holds(const struct sup_config *c, const struct sup_agent_conf *a)
{
	return a && c->n_agents && a >= &c->agents[0] && a < &c->agents[c->n_agents];
}

void sup_daemon_free_old_confs(struct sup_daemon *d)
{
	for (size_t k = 0; k < d->nold_confs;) {
		struct sup_config *c = d->old_confs[k];
		bool used = false;

		/* Agents are the only holders: everything else reads d->conf
		 * when it needs it. */
		for (size_t i = 0; i < d->fleet.n && !used; i++)
			used = conf_holds(c, d->fleet.agents[i]->conf) ||
			       conf_holds(c, d->fleet.agents[i]->replacement);
		if (used) {
			k++;
			continue;
		}
		sup_config_free(c);
		d->old_confs[k] = d->old_confs[--d->nold_confs];
	}
}

/* Runs at the end of a turn: agents cannot be freed from inside their own
 * state machine. */
static void housekeeping(struct sup_loop *l, struct sup_defer *df)
{
	struct sup_daemon *d = df->data;

	for (size_t i = 0; i < d->fleet.n;) {
		struct sup_agent *ag = d->fleet.agents[i];

		if (ag->remove_when_stopped && !ag->inc) {
			struct sup_agent_conf const *next = ag->replacement;

			sup_log(&d->log, SUP_LOG_INFO, "agent %s removed", ag->name);
			remove_agent_at(d, i);
			if (next)
				sup_daemon_add_agent(d, next, true);
			sup_daemon_free_old_confs(d);
			continue;
		}
		i++;
	}
	sup_inc_reap_dead(d->incs);
	if (d->shutting_down && all_quiet(d))
		sup_loop_stop(l);
}

/* The journal hears of a change first: the event precedes what the task
 * table does about it. */
static void journal_agent_state(void *arg, struct sup_agent *ag, enum sup_agent_state from)
{
	struct sup_daemon *d = arg;
	int prio = ag->state == SUP_AG_FAILED ? SUP_LOG_ERR : SUP_LOG_INFO;

	sup_daemon_event(d, prio, "agent_state",
			 json_pack("{s:s, s:i, s:s, s:s, s:i}", "agent", ag->name, "tier", ag->tier,
				   "from", sup_agent_state_name(from), "to",
				   sup_agent_state_name(ag->state), "incarnation",
				   (int)ag->incarnations),
			 "agent %s: %s -> %s", ag->name, sup_agent_state_name(from),
			 sup_agent_state_name(ag->state));
}

/* Readiness, status and removal hear of it last, once the task table has
 * moved its tasks. */
static void ready_agent_state(void *arg, struct sup_agent *ag, enum sup_agent_state from)
{
	struct sup_daemon *d = arg;

	(void)from;
	if (!d->ready_sent && d->notify) {
		bool settled = true;

		for (size_t i = 0; i < d->fleet.n; i++)
			if (d->fleet.agents[i]->state == SUP_AG_STARTING)
				settled = false;
		if (settled) {
			sd_notify(0, "READY=1");
			d->ready_sent = true;
		}
	}
	notify_status(d);
	if (d->shutting_down || ag->remove_when_stopped)
		sup_defer_queue(d->loop, &d->housekeeping);
}

void sup_daemon_shutdown(struct sup_daemon *d, int code)
{
	if (d->shutting_down) {
		/* Asked twice: do not wait for stop timeouts. */
		sup_log(&d->log, SUP_LOG_WARNING, "second shutdown request: killing every agent now");
		for (size_t i = 0; i < d->fleet.n; i++)
			if (d->fleet.agents[i]->inc)
				sup_cg_leaf_kill(d->fleet.agents[i]->leaf);
		return;
	}
	d->shutting_down = true;
	d->exit_code = code;
	sup_log(&d->log, SUP_LOG_NOTICE, "shutting down: stopping %zu agents", d->fleet.n);
	if (d->notify)
		sd_notify(0, "STOPPING=1");
	sup_tasks_shutdown(d->tasks);
	for (size_t i = 0; i < d->fleet.n; i++)
		sup_agent_event(d->fleet.agents[i], SUP_EV_STOP);
	sup_defer_queue(d->loop, &d->housekeeping);
}

int sup_daemon_add_agent(struct sup_daemon *d, const struct sup_agent_conf *c, bool start)
{
	char err[512];
	struct sup_agent *ag;

	if (sup_fleet_reserve(&d->fleet) < 0)
		return -ENOMEM;
	ag = sup_agent_new(&d->agent_env, c, err, sizeof(err));
	if (!ag) {
		sup_daemon_event(d, SUP_LOG_ERR, "agent_error",
				 json_pack("{s:s, s:s}", "agent", c->name, "error", err),
				 "agent %s: %s", c->name, err);
		return -EIO;
	}
	ag->d = d;
	sup_fleet_add(&d->fleet, ag);   /* cannot fail: reserved above */
	sup_monitor_add(d->monitor, ag);
	sup_allocator_agent_leaf(d->alloc, ag);
	if (start)
		sup_agent_event(ag, SUP_EV_START);
	return 0;
}

/* ---- limits and timers ---------------------------------------------------- */

static void raise_nofile(struct sup_daemon *d, size_t agents)
{
	/* Per agent: pidfd, ring memfd, two eventfds, two pipe ends, leaf dir,
	 * plus transients while spawning; then control clients. */
	rlim_t need = 256 + (rlim_t)agents * 12;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need)
		rl.rlim_max = need;
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		sup_log(&d->log, SUP_LOG_WARNING, "cannot raise RLIMIT_NOFILE to %llu for %zu agents: %m",
			(unsigned long long)need, agents);
}

static void watchdog_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_daemon *d = t->data;

	sd_notify(0, "WATCHDOG=1");
	sup_timer_arm_in(l, t, d->watchdog_ns / 2);
}

/* The next tick on the interval's grid, unless that is less than half an
 * interval away (this tick ran late): then a whole interval from now. The
 * monitor's rates need a window; ticks that catch up back to back would
 * measure a few microseconds, in which a running agent has not been
 * switched out and so shows no CPU at all. */
static int64_t next_tick(int64_t deadline, int64_t now, int64_t interval)
{
	int64_t next = deadline + interval;

	return next - now < interval / 2 ? now + interval : next;
}

static void tick_fired(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_daemon *d = t->data;

	sup_tasks_tick(d->tasks);
	/* Output dropped by the rate limit is said even if the agent went
	 * quiet after its flood. */
	for (size_t i = 0; i < d->fleet.n; i++) {
		struct sup_agent *ag = d->fleet.agents[i];

		if (ag->budget.dropped_lines) {
			sup_log(&d->log, SUP_LOG_WARNING, "agent %s: %llu log lines suppressed "
				"(agent_log_rate %u/s; %llu in all)", ag->name,
				(unsigned long long)ag->budget.dropped_lines, d->conf->sup.agent_log_rate,
				(unsigned long long)ag->log_dropped);
			ag->budget.dropped_lines = 0;
		}
	}
	sup_monitor_tick(d->monitor);
	sup_allocator_tick(d->alloc);
	sup_optimiser_tick(d->opt);
	sup_metrics_update(d->metrics);
	sup_timer_arm(l, t, next_tick(sup_timer_deadline(t), sup_loop_now(l), d->conf->sup.monitor_interval_ns));
}

/* ---- start-up ------------------------------------------------------------- */

static void report_cgroup(struct sup_daemon *d)
{
	static const char *const names[SUP_CG_NCTRL] = { "cpu", "cpuset", "memory", "io", "pids" };
	const char *rep = sup_cg_reclaim_report(d->cg);

	sup_log(&d->log, SUP_LOG_INFO, "cgroup root %s (cgroup2 at %s%s)", sup_cg_root_path(d->cg),
		sup_cg_mount_path(d->cg), sup_cg_delegated(d->cg) ? ", delegated by systemd" : "");
	for (int c = 0; c < SUP_CG_NCTRL; c++)
		if (!sup_cg_ctrl_live(d->cg, (enum sup_cg_ctrl)c))
			sup_log(&d->log, SUP_LOG_WARNING,
				"cgroup controller %s unavailable (%s): its limits are skipped, "
				"everything else works", names[c], sup_cg_ctrl_reason(d->cg, (enum sup_cg_ctrl)c));
	if (rep)
		sup_log(&d->log, SUP_LOG_WARNING, "reclaimed a stale tree left by a previous tierd:\n%s", rep);
}

static void ctl_request(void *ctx, struct sup_ctl_client *c, uint64_t id, const char *cmd, json_t *args)
{
	struct sup_daemon *d = ctx;

	d->cmds->dispatch(d, c, id, cmd, args);
}

static void ctl_closed(void *ctx, struct sup_ctl_client *c, const char *reason)
{
	struct sup_daemon *d = ctx;

	if (reason)
		sup_log(&d->log, SUP_LOG_INFO, "control client uid %u closed: %s",
			(unsigned)sup_ctl_client_uid(c), reason);
	d->cmds->client_gone(d, c);
}

/* tierd's cgroup tree as /proc/PID/cgroup names it: tierd runs in its
 * supervisor/ leaf, the tree is the parent. Peers in it are agents. */
static int tree_cgroup(char *out, size_t sz)
{
	char buf[8192], *slash;
	ssize_t n = sup_read_file_at(AT_FDCWD, "/proc/self/cgroup", buf, sizeof(buf));
	int r;

	if (n < 0)
		return (int)n;
	r = sup_cg_parse_proc_cgroup(buf, (size_t)n, out, sz);
	if (r < 0)
		return r;
	slash = strrchr(out, '/');
	if (!slash || strcmp(slash + 1, SUP_CG_SUPERVISOR))
		return -ENOENT;
	*slash = '\0';
	/* A tree at the hierarchy's root would hold every peer. */
	return out[0] ? 0 : -EINVAL;
}

static const struct sup_ctl_handler ctl_handler = {
	.request = ctl_request,
	.closed = ctl_closed,
};

/* After the control socket exists: the namespace hides it. Not fatal:
 * agents with sandbox = no still start, the others fail naming the step. */
static void prepare_sandbox(struct sup_daemon *d)
{
	struct sup_sandbox_plan plan;
	struct timespec t0, t1;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	r = sup_sandbox_plan_load(&plan, d->conf->sup.control_socket);
	if (r < 0) {
		d->sandbox_err = -r;
		d->sandbox_step = SUP_STEP_SB_UNSHARE;
		sup_log(&d->log, SUP_LOG_ERR, "sandbox: reading the mount table: %s; agents with "
			"sandbox on will not start", strerror(-r));
		return;
	}
	r = sup_sandbox_prepare(&plan, &d->sandbox_fd, &d->sandbox_step);
	if (r < 0) {
		d->sandbox_err = -r;
		sup_log(&d->log, SUP_LOG_ERR, "sandbox: %s: %s; agents with sandbox on will not "
			"start (set sandbox = no for those that must run without it)",
			sup_spawn_step_name(d->sandbox_step), strerror(-r));
	} else {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		sup_log(&d->log, SUP_LOG_INFO, "sandbox: agents' mount namespace ready in %lld us: "
			"%zu cgroup mounts and /proc/sys read-only, control socket hidden",
			(long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000),
			plan.n_ro);
	}
	sup_sandbox_plan_free(&plan);
}

/* The monitor, the allocator and the optimiser, each handed the views it
 * needs (the fleet, the journal, the loop, the current config ...), not the
 * daemon. */
static int open_controllers(struct sup_daemon *d)
{
	struct sup_monitor_deps md = {
		.loop = d->loop, .cg = d->cg, .conf = &d->conf, .fleet = &d->fleet,
		.journal = &d->journal, .observers = &d->agent_obs, .wf = d->wf,
	};
	struct sup_allocator_deps ad = {
		.loop = d->loop, .cg = d->cg, .conf = &d->conf, .journal = &d->journal,
		.observers = &d->agent_obs,
	};
	struct sup_optimiser_deps od = {
		.conf = &d->conf, .journal = &d->journal, .wf = d->wf,
	};

	d->monitor = sup_monitor_new(&md);
	if (!d->monitor)
		return -ENOMEM;
	ad.monitor = d->monitor;
	d->alloc = sup_allocator_new(&ad);
	od.monitor = d->monitor;
	od.alloc = d->alloc;
	d->opt = sup_optimiser_new(&od);
	if (!d->alloc || !d->opt)
		return -ENOMEM;
	return 0;
}

int sup_daemon_init(struct sup_daemon *d, struct sup_config *conf, const char *config_path,
		    const char *self_dir, const struct sup_daemon_cmds *cmds)
{
	return sup_daemon_init_from(d, conf, config_path, self_dir, cmds, NULL);
}

/* The running binary's path, for an upgrade without --binary. */
static char *exe_path(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = 0;
	/* Replaced on disk since it started (a package upgrade): the path is
	 * what an upgrade should run. */
	if (n > 10 && !strcmp(buf + n - 10, " (deleted)"))
		buf[n - 10] = 0;
	return strdup(buf);
}

int sup_daemon_init_from(struct sup_daemon *d, struct sup_config *conf, const char *config_path,
			 const char *self_dir, const struct sup_daemon_cmds *cmds,
			 const struct sup_restore *rs)
{
	char **argv = d->argv;

	const struct sup_supervisor_conf *s = &conf->sup;
	struct sup_cg_opts co = { .sz = sizeof(co) };
	struct sup_ctl_opts cto = { .sz = sizeof(cto) };
	struct sup_tasks_env env;
	char why[512], tree[PATH_MAX];
	uint64_t wd_usec = 0;
	int r;

	memset(d, 0, sizeof(*d));
	d->argv = argv;
	d->sigfd = d->devnull = d->sandbox_fd = -1;
	d->conf = conf;
	d->cmds = cmds;
	sup_logger_init(&d->log, s->log_level);
	/* Restored: the paths the first binary resolved, whatever the file
	 * system says now. */
	d->config_path = rs ? strdup(rs->config_path) : realpath(config_path, NULL);
	d->self_dir = strdup(self_dir);
	d->exe_path = rs ? strdup(rs->exe_path) : exe_path();
	if (!d->config_path || !d->self_dir || !d->exe_path)
		return -errno;
	if (rs)
		d->agentd_path = strdup(rs->agentd_path);
	else if (s->agentd)
		d->agentd_path = strdup(s->agentd);
	else if (asprintf(&d->agentd_path, "%s/agentd", self_dir) < 0)
		d->agentd_path = NULL;
	if (!d->agentd_path)
		return -ENOMEM;
	d->loop = sup_loop_new(4096, why, sizeof(why));
	if (!d->loop) {
		sup_log(&d->log, SUP_LOG_CRIT, "cannot use io_uring: %s", why);
		return -errno;
	}
	d->started_ns = rs ? rs->started_ns : sup_loop_now(d->loop);
	sup_defer_init(&d->housekeeping, housekeeping, d);
	raise_nofile(d, conf->n_agents);
	if (rs) {
		d->cg = sup_cg_restore(rs->r);
		if (!d->cg)
			return -EINVAL;
		r = rs->kill_taints_clone3;
	} else {
		co.root = s->cgroup_root;
		co.errbuf = why;
		co.errbuf_sz = sizeof(why);
		d->cg = sup_cg_open(&co);
		if (!d->cg) {
			r = -errno;
			sup_log(&d->log, SUP_LOG_CRIT, "cgroup: %s", why);
			return r;
		}
		report_cgroup(d);
		r = sup_cg_probe_kill_taint(sup_cg_root_fd(d->cg), "probe-kill");
	}
	d->kill_taints_clone3 = r == 1;
	if (r == 1 && !rs)
		sup_log(&d->log, SUP_LOG_NOTICE, "this kernel kills children cloned into a cgroup that "
			"was once killed: such leaves are recreated (or joined by fork) before a restart");
	else if (r < 0)
		sup_log(&d->log, SUP_LOG_WARNING, "cannot probe cgroup.kill behaviour: %s; assuming the "
			"kernel needs the workaround", strerror(-r));
	d->kill_taints_clone3 |= r < 0;
	d->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (d->devnull < 0)
		return -errno;
	d->events = sup_events_new(EVENTS_KEPT);
	if (!d->events)
		return -ENOMEM;
	d->journal = (struct sup_journal){ .log = &d->log, .events = d->events };
	r = sup_daemon_setup_signals(d);
	if (r < 0) {
		sup_log(&d->log, SUP_LOG_CRIT, "signals: %s", strerror(-r));
		return r;
	}
	sup_daemon_tasks_env(d, &env);
	d->tasks = sup_tasks_new(&env);
	{
		const struct sup_inc_env ienv = {
			.loop = d->loop,
			.journal = &d->journal,
			.cg = d->cg,
			.kill_taints_clone3 = d->kill_taints_clone3,
			.agentd_path = d->agentd_path,
			.devnull = d->devnull,
			.conf = (const struct sup_config *const *)&d->conf,
			.sandbox_fd = &d->sandbox_fd,
			.sandbox_err = &d->sandbox_err,
			.sandbox_step = &d->sandbox_step,
		};

		d->incs = d->tasks ? sup_inc_fleet_new(&ienv, &sup_tasks_inc_hooks, d->tasks) : NULL;
	}
	d->wf = d->tasks ? sup_wf_new(&env, d->tasks) : NULL;
	if (!d->tasks || !d->incs || !d->wf)
		return -ENOMEM;
	d->journal_obs = (struct sup_agent_observer){ .state = journal_agent_state, .arg = d };
	d->ready_obs = (struct sup_agent_observer){ .state = ready_agent_state, .arg = d };
	sup_agent_observe(&d->agent_obs, &d->journal_obs);
	sup_tasks_observe(d->tasks, &d->agent_obs);
	sup_agent_observe(&d->agent_obs, &d->ready_obs);
	d->agent_env = (struct sup_agent_env){
		.conf = &d->conf, .loop = d->loop, .cg = d->cg, .journal = &d->journal,
		.incs = d->incs, .observers = &d->agent_obs,
	};
	/* Restored: the journal comes with the state (its lock is held). */
	r = rs ? 0 : sup_daemon_wal_open(d);
	if (r < 0)
		return r;
	r = open_controllers(d);
	if (r < 0)
		return r;
	{
		const char *io_why;

		if (!sup_allocator_io_weights(d->alloc, &io_why))
			sup_log(&d->log, SUP_LOG_INFO, "io weights not written: %s", io_why);
	}
	/* Restored: the knobs are as the previous binary left them. */
	if (!rs)
		sup_allocator_apply_static(d->alloc);
	if (s->metrics_address && (!rs || rs->metrics_fd >= 0)) {
		/* Not fatal: the fleet matters more than its numbers. */
		d->metrics = sup_metrics_open_fd(s->metrics_address, rs ? rs->metrics_fd : -1,
						 sup_metrics_build, d, d->metrics_error,
						 sizeof(d->metrics_error));
		if (d->metrics)
			sup_log(&d->log, SUP_LOG_INFO, "metrics: serving http://%s/metrics",
				sup_metrics_address(d->metrics));
		else
			sup_log(&d->log, SUP_LOG_ERR, "metrics: %s; running without the metrics endpoint",
				d->metrics_error);
	}
	cto.path = s->control_socket;
	cto.has_group = s->control_group != NULL;
	cto.group = s->control_gid;
	cto.has_admin_group = s->admin_group != NULL;
	cto.admin_group = s->admin_gid;
	cto.max_per_uid = s->control_max_per_uid;
	cto.idle_timeout_ms = (int)(s->control_idle_timeout_ns / SUP_NS_PER_MS);
	r = tree_cgroup(tree, sizeof(tree));
	if (r < 0) {
		sup_log(&d->log, SUP_LOG_CRIT, "control socket: cannot tell tierd's own cgroup "
			"(to refuse agents on the socket): %s", strerror(-r));
		return r;
	}
	cto.tree_cgroup = tree;
	if (rs) {
		cto.inherit = true;
		cto.listen_fd = rs->ctl_fd;
		cto.listen_dev = rs->ctl_dev;
		cto.listen_ino = rs->ctl_ino;
	}
	d->ctl = sup_ctl_open(d->loop, &cto, &ctl_handler, d, why, sizeof(why));
	if (!d->ctl) {
		r = -errno;
		sup_log(&d->log, SUP_LOG_CRIT, "control socket: %s", why);
		return r < 0 ? r : -EIO;
	}
	if (rs) {
		d->sandbox_fd = rs->sandbox_fd;
		d->sandbox_err = rs->sandbox_err;
		d->sandbox_step = (enum sup_spawn_step)rs->sandbox_step;
	} else {
		prepare_sandbox(d);
	}
	d->notify = getenv("NOTIFY_SOCKET") != NULL;
	if (d->notify && sd_watchdog_enabled(0, &wd_usec) > 0) {
		d->watchdog_ns = (int64_t)wd_usec * 1000;
		sup_timer_init(&d->watchdog, watchdog_fired, d);
		sup_timer_arm_in(d->loop, &d->watchdog, d->watchdog_ns / 2);
	}
	{
		struct sup_idle_hook h = {
			.spin = sup_inc_idle_spin,
			.before_sleep = sup_inc_before_sleep,
			.arg = d->incs,
			.spin_ns = s->spin_window_ns,
		};

		sup_loop_set_idle_hook(d->loop, &h);
	}
	sup_timer_init(&d->tick, tick_fired, d);
	sup_timer_arm_in(d->loop, &d->tick, s->monitor_interval_ns);
	if (rs) {
		d->ready_sent = rs->ready_sent;
		r = sup_daemon_restore_fleet(d, rs);
		if (r < 0)
			return r;
		sup_log(&d->log, SUP_LOG_NOTICE, "tierd %s took over pid %d from %s (config %s, %zu "
			"agents, socket %s)", sup_daemon_build(), (int)getpid(), rs->from_version,
			d->config_path, d->fleet.n, s->control_socket);
		r = sup_monitor_adopt(d->monitor, rs->r);
		if (r == 0)
			r = sup_daemon_restore_modules(d, rs->r);
		if (r < 0)
			return r;
	} else {
		sup_log(&d->log, SUP_LOG_NOTICE, "tierd %s started (pid %d, config %s, %zu agents, "
			"socket %s)", sup_daemon_build(), (int)getpid(), d->config_path,
			conf->n_agents, s->control_socket);
		for (size_t i = 0; i < conf->n_agents; i++)
			sup_daemon_add_agent(d, &conf->agents[i], true);
		r = sup_daemon_wal_replay(d);
		if (r < 0)
			return r;
		sup_daemon_intake_open(d);
		/* The probe after the agents: loading it takes longer than
		 * spawning a whole team, and their leaves are tracked from
		 * here on. */
		r = sup_monitor_start(d->monitor);
	}
	if (r < 0) {
		sup_log(&d->log, SUP_LOG_CRIT, "accounting: %s", strerror(-r));
		return r;
	}
	sup_log(&d->log, SUP_LOG_INFO, "accounting: %s", sup_monitor_source(d->monitor));
	sup_metrics_update(d->metrics);
	if (!conf->n_agents && d->notify && !rs) {
		sd_notify(0, "READY=1");
		d->ready_sent = true;
	}
	return 0;
}

int sup_daemon_run(struct sup_daemon *d)
{
	int r = sup_loop_run(d->loop);

	if (r < 0) {
		sup_log(&d->log, SUP_LOG_CRIT, "event loop failed: %s", strerror(-r));
		return r;
	}
	return d->exit_code;
}

void sup_daemon_fini(struct sup_daemon *d)
{
	sup_metrics_close(d->metrics);
	d->metrics = NULL;
	while (d->fleet.n)
		remove_agent_at(d, d->fleet.n - 1);
	sup_ctl_close(d->ctl);
	sup_daemon_intake_close(d);
	sup_wf_free(d->wf);
	sup_tasks_free(d->tasks);
	d->cmds->fini(d);
	sup_optimiser_free(d->opt);
	/* Let cancelled operations complete before freeing what they use. */
	if (d->loop) {
		sup_loop_cancel(d->loop, &d->sig_ev);
		sup_allocator_cancel(d->alloc);
		if (sup_loop_drain(d->loop, 2000) < 0)
			sup_log(&d->log, SUP_LOG_WARNING, "some io_uring operations did not complete at exit");
		sup_inc_reap_dead(d->incs);
	}
	sup_inc_fleet_free(d->incs);
	sup_daemon_wal_close(d);
	/* Its knob writes have completed (or been cancelled) by now. */
	sup_allocator_free(d->alloc);
	/* The tree first: detaching the probe waits for RCU grace periods, and
	 * nothing of the fleet should outlive the agents by that long. */
	if (d->cg) {
		int r = sup_cg_destroy(d->cg);

		if (r < 0)
			sup_log(&d->log, SUP_LOG_ERR, "removing the cgroup tree: %s", strerror(-r));
		else
			sup_log(&d->log, SUP_LOG_INFO, "cgroup tree removed");
	}
	d->cg = NULL;
	sup_monitor_free(d->monitor);
	sup_events_free(d->events);
	sup_loop_free(d->loop);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->devnull >= 0)
		close(d->devnull);
	if (d->sandbox_fd >= 0)
		close(d->sandbox_fd);
	for (size_t i = 0; i < d->nold_confs; i++)
		sup_config_free(d->old_confs[i]);
	free(d->old_confs);
	sup_config_free(d->conf);
	sup_fleet_fini(&d->fleet);
	free(d->config_path);
	free(d->self_dir);
	free(d->agentd_path);
	free(d->exe_path);
}
