/* SPDX-License-Identifier: MIT */
/*
 * daemon_fleet — the daemon's side of the NATS intake (intake/intake.h):
 * opening it once the agents exist (their names are its agent consumers),
 * its events and log lines, and the fleet-drain requests waiting for the
 * last broker task to end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "ctl.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "intake/intake.h"

struct sup_fleet_waiter {
	struct sup_fleet_waiter *next;
	struct sup_ctl_client   *c;      /* held; NULL once it left */
	uint64_t                 id;
};

static void answer_waiters(struct sup_daemon *d)
{
	struct sup_fleet_waiter *w = d->fleet_waiters, *next;

	d->fleet_waiters = NULL;
	for (; w; w = next) {
		next = w->next;
		if (w->c) {
			sup_ctl_reply_ok(w->c, w->id, json_pack("{s:b}", "drained", 1));
			sup_ctl_client_release(w->c);
		}
		free(w);
	}
}

static void intake_event(void *arg, int prio, const char *kind, json_t *ev, const char *msg)
{
	struct sup_daemon *d = arg;

	if (kind)
		sup_daemon_event(d, prio, kind, ev, "%s", msg);
	else
		sup_log(&d->log, prio, "%s", msg);
	if (kind && !strcmp(kind, "fleet_drained"))
		answer_waiters(d);
}

void sup_daemon_intake_open(struct sup_daemon *d)
{
	const struct sup_fleet_conf *f = &d->conf->fleet;
	char err[256];

	if (d->intake || !f->servers)
		return;
	{
		const struct sup_intake_env env = {
			.loop = d->loop, .tasks = d->tasks, .wf = d->wf, .fleet = &d->fleet,
			.conf = f, .event = intake_event, .arg = d,
		};

		d->intake = sup_intake_new(&env, err, sizeof(err));
	}
	if (!d->intake)
		sup_log(&d->log, SUP_LOG_CRIT, "fleet: the NATS intake is off: %s", err);
	else
		sup_log(&d->log, SUP_LOG_INFO, "fleet: NATS intake on (servers %s)", f->servers);
}

void sup_daemon_intake_close(struct sup_daemon *d)
{
	answer_waiters(d);
	sup_intake_free(d->intake);
	d->intake = NULL;
}

void sup_daemon_fleet_drain_wait(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id)
{
	struct sup_fleet_waiter *w;

	if (sup_intake_drain(d->intake)) {
		sup_ctl_reply_ok(c, id, json_pack("{s:b}", "drained", 1));
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
		return;
	}
	sup_ctl_client_hold(c);
	w->c = c;
	w->id = id;
	w->next = d->fleet_waiters;
	d->fleet_waiters = w;
}

void sup_daemon_fleet_client_gone(struct sup_daemon *d, struct sup_ctl_client *c)
{
	for (struct sup_fleet_waiter *w = d->fleet_waiters; w; w = w->next)
		if (w->c == c) {
			sup_ctl_client_release(c);
			w->c = NULL;
		}
}
