/* SPDX-License-Identifier: MIT */
/* tierd's signals (a signalfd read through the loop), and the daemon's own
 * part of quiescing for a live upgrade. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "allocator.h"
#include "config/config.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "daemon_upgrade.h"
#include "metrics.h"

/* ---- signals -------------------------------------------------------------- */

static void signal_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_daemon *d = ev->data;

	(void)l;
	(void)more;
	if (res == (int)sizeof(d->sig_buf)) {
		switch (d->sig_buf.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			sup_log(&d->log, SUP_LOG_NOTICE, "received %s", sigabbrev_np((int)d->sig_buf.ssi_signo));
			sup_daemon_shutdown(d, 0);
			break;
		case SIGHUP:
			sup_log(&d->log, SUP_LOG_NOTICE, "received SIGHUP: reloading %s", d->config_path);
			sup_daemon_reload(d, NULL, 0);
			break;
		case SIGUSR2:
			sup_log(&d->log, SUP_LOG_NOTICE, "received SIGUSR2: upgrading in place to %s",
				d->exe_path);
			sup_daemon_upgrade(d, NULL, 0, NULL);
			if (d->upgrade)
				return;   /* quiesced: not read again by this binary */
			break;
		default:
			break;
		}
	} else if (res == -ECANCELED) {
		return; /* tierd is exiting */
	} else if (res < 0 && res != -EINTR && res != -EAGAIN) {
		sup_log(&d->log, SUP_LOG_ERR, "signalfd read: %s", strerror(-res));
	}
	sup_daemon_arm_signals(d);
}

void sup_daemon_arm_signals(struct sup_daemon *d)
{
	sup_loop_read(d->loop, &d->sig_ev, d->sigfd, &d->sig_buf, sizeof(d->sig_buf), 0);
}

int sup_daemon_setup_signals(struct sup_daemon *d)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	/* Blocking signalfd: io_uring waits for a signal instead of -EAGAIN. */
	d->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	sup_ev_init(&d->sig_ev, signal_done, d);
	sup_daemon_arm_signals(d);
	return 0;
}

/* ---- live upgrade: the daemon's own parts (daemon_upgrade.c) ------------- */

/* Stop what would start new operations: signals are left pending for the
 * next binary, the tick waits, the metrics thread stops and hands back
 * its socket (returned, or -1). */
int sup_daemon_quiesce_for_upgrade(struct sup_daemon *d)
{
	int fd = -1;

	sup_loop_cancel(d->loop, &d->sig_ev);
	sup_timer_disarm(d->loop, &d->tick);
	sup_allocator_cancel(d->alloc);
	if (d->metrics) {
		fd = sup_metrics_quiesce(d->metrics);
		sup_metrics_close(d->metrics);
		d->metrics = NULL;
	}
	return fd;
}

void sup_daemon_resume_after_upgrade(struct sup_daemon *d, int metrics_fd)
{
	if (sup_ev_idle(&d->sig_ev))
		sup_daemon_arm_signals(d);
	if (!sup_timer_armed(&d->tick))
		sup_timer_arm_in(d->loop, &d->tick, d->conf->sup.monitor_interval_ns);
	if (metrics_fd >= 0) {
		d->metrics = sup_metrics_open_fd(d->conf->sup.metrics_address, metrics_fd,
						 sup_metrics_build, d, d->metrics_error,
						 sizeof(d->metrics_error));
		if (!d->metrics)
			close(metrics_fd);
	}
}

