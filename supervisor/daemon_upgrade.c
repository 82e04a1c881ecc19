/* SPDX-License-Identifier: MIT */
/*
 * Live upgrade: see daemon_upgrade.h. The old side quiesces (no io_uring
 * operation left, nothing re-armed), writes the state and execs; the new
 * side validates all of it before touching anything, and on any problem
 * execs the previous binary with the same state and the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "allocator.h"
#include "cgroup/cgroup.h"
#include "common/ctlproto.h"
#include "common/fdio.h"
#include "config/config.h"
#include "ctl.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "intake/intake.h"
#include "daemon_upgrade.h"
#include "events.h"
#include "handover/handover.h"
#include "incarnation/incarnation.h"
#include "metrics.h"
#include "monitor.h"
#include "tasks.h"
#include "wal/wal.h"
#include "workflow.h"

/* How long the old binary waits for io_uring to settle and clients to
 * take their last lines before it gives the upgrade up. */
#define QUIESCE_NS   (2000LL * 1000 * 1000)
#define QUIESCE_POLL (1LL * 1000 * 1000)

#ifndef SUP_BUILD_TAG
#define SUP_BUILD_TAG ""
#endif

extern char **environ;

const char *sup_daemon_build(void)
{
	return SUP_VERSION SUP_BUILD_TAG;
}

struct sup_upgrade {
	struct sup_daemon     *d;
	struct sup_ctl_client *c;
	uint64_t               id;
	int                    requester_fd;
	int                    metrics_fd;
	char                  *binary;
	int64_t                started, deadline;
	struct sup_timer       poll;
};

static struct sup_inc **incs_of(struct sup_daemon *d, size_t *n)
{
	struct sup_inc **v = calloc(d->fleet.n + 1, sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < d->fleet.n; i++)
		if (d->fleet.agents[i]->inc)
			v[(*n)++] = d->fleet.agents[i]->inc;
	return v;
}

/* Answer the requester on its own socket (blocking: one short line). */
void sup_upgrade_answer(int fd, json_t *msg)
{
	char *line = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (line && fd >= 0) {
		int fl = fcntl(fd, F_GETFL);

		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		if (sup_write_all(fd, line, strlen(line), NULL) == 0)
			sup_write_all(fd, "\n", 1, NULL);
	}
	free(line);
}

/* ---- the old side ----------------------------------------------------------- */

static void upgrade_free(struct sup_upgrade *up)
{
	if (up->c)
		sup_ctl_client_release(up->c);
	if (up->requester_fd >= 0)
		close(up->requester_fd);
	free(up->binary);
	free(up);
}

/* The upgrade did not happen: everything runs again as before. */
static void upgrade_abort(struct sup_upgrade *up, int err, const char *why)
{
	struct sup_daemon *d = up->d;
	struct sup_inc **v;
	size_t n;

	sup_log(&d->log, SUP_LOG_ERR, "upgrade to %s given up: %s; this tierd goes on", up->binary, why);
	v = incs_of(d, &n);
	if (v)
		sup_inc_fleet_unquiesce(d->incs, v, n);
	free(v);
	sup_ctl_resume(d->ctl);
	if (d->intake)
		sup_intake_resume(d->intake);
	sup_daemon_resume_after_upgrade(d, up->metrics_fd);
	if (up->requester_fd >= 0)
		sup_upgrade_answer(up->requester_fd, sup_ctl_msg_err(true, up->id, err, why));
	d->upgrade = NULL;
	upgrade_free(up);
}

static void save_daemon(struct sup_daemon *d, struct sup_upgrade *up, int rollback_fd,
			struct sup_ho_w *w)
{
	const struct sup_config *c = d->conf;
	dev_t dev;
	ino_t ino;
	int lfd = sup_ctl_listen_fd(d->ctl, &dev, &ino);

	sup_ho_w_begin(w, SUP_HO_TAG_DAEMON, SUP_DAEMON_SEC_VERSION);
	sup_ho_w_str(w, d->config_path);
	sup_ho_w_str(w, c->path);
	sup_ho_w_str(w, c->dir);
	sup_ho_w_bytes(w, c->text, c->text_len);
	sup_ho_w_u32(w, (uint32_t)d->log.level);
	sup_ho_w_str(w, d->self_dir);
	sup_ho_w_str(w, d->agentd_path);
	sup_ho_w_str(w, d->exe_path);
	sup_ho_w_i64(w, d->started_ns);
	sup_ho_w_i64(w, up->started);
	sup_ho_w_u8(w, d->ready_sent);
	sup_ho_w_u8(w, d->kill_taints_clone3);
	sup_ho_w_fd(w, d->sandbox_fd, SUP_HO_FD_ANY);
	sup_ho_w_u32(w, (uint32_t)d->sandbox_err);
	sup_ho_w_u32(w, (uint32_t)d->sandbox_step);
	sup_ho_w_fd(w, lfd, SUP_HO_FD_UNIX_LISTEN);
	sup_ho_w_u64(w, (uint64_t)dev);
	sup_ho_w_u64(w, (uint64_t)ino);
	sup_ho_w_fd(w, up->metrics_fd, SUP_HO_FD_TCP_LISTEN);
	sup_ho_w_fd(w, up->requester_fd, SUP_HO_FD_UNIX_STREAM);
	sup_ho_w_u64(w, up->id);
	sup_ho_w_fd(w, rollback_fd, SUP_HO_FD_FILE);
	sup_ho_w_str(w, sup_daemon_build());
	sup_ho_w_u32(w, d->upgrades + 1);
	sup_ho_w_end(w);
}

static int save_agents(struct sup_daemon *d, struct sup_ho_w *w)
{
	sup_ho_w_begin(w, SUP_HO_TAG_AGENTS, SUP_AGENTS_SEC_VERSION);
	sup_ho_w_u32(w, (uint32_t)d->fleet.n);
	for (size_t i = 0; i < d->fleet.n; i++) {
		int r = sup_agent_save(d->fleet.agents[i], w);

		if (r < 0)
			return r;
	}
	sup_ho_w_end(w);
	return 0;
}

/* Everything is quiet: write the state and exec. Returns only if the
 * state could not be written (nothing has changed then). */
static int upgrade_exec(struct sup_upgrade *up, char *why, size_t whylen)
{
	struct sup_daemon *d = up->d;
	struct sup_ho_w *w = sup_ho_w_new();
	char num[3][24];
	int rollback_fd, memfd, r;

	rollback_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (!w || rollback_fd < 0) {
		snprintf(why, whylen, "cannot keep a handle on the running binary: %s", strerror(errno));
		if (rollback_fd >= 0)
			close(rollback_fd);
		sup_ho_w_free(w);
		return -EIO;
	}
	sup_tasks_publish_pending(d->tasks);
	save_daemon(d, up, rollback_fd, w);
	sup_cg_save(d->cg, w);
	r = save_agents(d, w);
	if (r == 0)
		r = sup_tasks_save(d->tasks, w);
	if (r == 0)
		r = sup_daemon_save_modules(d, w);
	if (r < 0) {
		snprintf(why, whylen, "the state is not ready to hand over (%s): try again",
			 strerror(-r));
		goto fail;
	}
	memfd = sup_ho_w_finish(w, why, whylen);
	if (memfd < 0) {
		r = memfd;
		goto fail;
	}
	snprintf(num[0], sizeof(num[0]), "%d", memfd);
	snprintf(num[1], sizeof(num[1]), "%d", rollback_fd);
	setenv(SUP_HO_ENV, num[0], 1);
	setenv(SUP_UPGRADE_ROLLBACK_ENV, num[1], 1);
	unsetenv(SUP_UPGRADE_ERROR_ENV);
	sup_log(&d->log, SUP_LOG_NOTICE, "upgrade: executing %s (state %zu agents)", up->binary,
		d->fleet.n);
	if (d->notify)
		sd_notify(0, "RELOADING=1");
	execve(up->binary, d->argv, environ);
	r = -errno;
	/* The new binary could not even start: the old one takes the state
	 * back, as after a refusal, and says why. */
	snprintf(why, whylen, "cannot execute %s: %s", up->binary, strerror(-r));
	setenv(SUP_UPGRADE_ERROR_ENV, why, 1);
	execveat(rollback_fd, "", d->argv, environ, AT_EMPTY_PATH);
	snprintf(why, whylen, "cannot execute %s (%s), nor the running binary again (%s)",
		 up->binary, strerror(-r), strerror(errno));
	unsetenv(SUP_HO_ENV);
	unsetenv(SUP_UPGRADE_ROLLBACK_ENV);
	unsetenv(SUP_UPGRADE_ERROR_ENV);
	close(memfd);
fail:
	sup_ho_w_abort(w);
	sup_ho_w_free(w);
	close(rollback_fd);
	sup_daemon_wal_take_back(d);
	return r;
}

static bool upgrade_quiet(struct sup_upgrade *up)
{
	struct sup_daemon *d = up->d;
	struct sup_inc **v;
	size_t n;
	bool quiet;

	if (!sup_ctl_quiet(d->ctl) || !sup_ev_idle(&d->sig_ev) || !sup_daemon_modules_quiet(d))
		return false;
	v = incs_of(d, &n);
	quiet = v && sup_inc_fleet_quiet(d->incs, v, n);
	free(v);
	/* What is left in flight is someone else's: wait for it too. */
	return quiet && sup_loop_inflight(d->loop) == 0;
}

static void upgrade_poll(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_upgrade *up = t->data;
	char why[512];
	int r;

	if (upgrade_quiet(up)) {
		/* Busy: an agent exited just now, or a task is between lists. */
		r = upgrade_exec(up, why, sizeof(why));
		if (r != -EBUSY) {
			upgrade_abort(up, -r, why);
			return;
		}
	}
	if (sup_loop_now(l) >= up->deadline) {
		snprintf(why, sizeof(why), "%llu io_uring operations or control clients did not finish "
			 "within %lld ms", (unsigned long long)sup_loop_inflight(l),
			 QUIESCE_NS / 1000000);
		upgrade_abort(up, ETIMEDOUT, why);
		return;
	}
	sup_timer_arm_in(l, t, QUIESCE_POLL);
}

static int check_binary(const char *path, char *why, size_t whylen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if (access(path, X_OK) < 0) {
		snprintf(why, whylen, "%s is not executable: %s", path, strerror(errno));
		return -EACCES;
	}
	return 0;
}

static void refuse(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, int err,
		   const char *why)
{
	sup_log(&d->log, SUP_LOG_WARNING, "upgrade refused: %s", why);
	if (c)
		sup_ctl_reply_err(c, id, err, "upgrade refused: %s; this tierd goes on", why);
}

void sup_daemon_upgrade(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id,
			const char *binary)
{
	struct sup_upgrade *up;
	struct sup_inc **v;
	char why[512];
	size_t n;
	int r;

	if (d->upgrade || d->shutting_down || d->bench_running) {
		refuse(d, c, id, EBUSY, d->upgrade ? "an upgrade is already under way" :
		       d->shutting_down ? "tierd is shutting down" : "a bench-dispatch is running");
		return;
	}
	for (size_t i = 0; i < d->fleet.n; i++)
		if (d->fleet.agents[i]->remove_when_stopped || d->fleet.agents[i]->replacement) {
			refuse(d, c, id, EBUSY, "a reload is still replacing agents");
			return;
		}
	if (!binary)
		binary = d->exe_path;
	r = check_binary(binary, why, sizeof(why));
	if (r < 0) {
		refuse(d, c, id, -r, why);
		return;
	}
	up = calloc(1, sizeof(*up));
	if (up)
		up->binary = strdup(binary);
	if (!up || !up->binary) {
		free(up);
		refuse(d, c, id, ENOMEM, "out of memory");
		return;
	}
	up->d = d;
	up->id = id;
	up->requester_fd = up->metrics_fd = -1;
	up->started = sup_loop_now(d->loop);
	up->deadline = up->started + QUIESCE_NS;
	/* Acknowledgements and results that wait for the journal go out
	 * before the connections close: nothing a client was about to be told
	 * is left to the next binary. */
	if (d->wal)
		sup_wal_flush_sync(d->wal);
	if (c) {
		up->requester_fd = sup_ctl_client_hand_over(c);
		if (up->requester_fd < 0) {
			refuse(d, c, id, -up->requester_fd, "cannot keep the connection across");
			upgrade_free(up);
			return;
		}
	}
	d->upgrade = up;
	sup_log(&d->log, SUP_LOG_NOTICE, "upgrade to %s: quiescing %zu agents", up->binary,
		d->fleet.n);
	/* Clients waiting for a task or a run learn what to wait for again. */
	d->cmds->upgrade_notify(d);
	sup_ctl_quiesce(d->ctl, "tierd is being upgraded; reconnect");
	v = incs_of(d, &n);
	if (!v) {
		upgrade_abort(up, ENOMEM, "out of memory");
		return;
	}
	sup_inc_fleet_quiesce(d->incs, v, n);
	free(v);
	up->metrics_fd = sup_daemon_quiesce_for_upgrade(d);
	sup_timer_init(&up->poll, upgrade_poll, up);
	sup_timer_arm_in(d->loop, &up->poll, 0);
}
