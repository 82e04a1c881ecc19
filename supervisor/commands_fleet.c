/* SPDX-License-Identifier: MIT */
/*
 * commands_fleet — fleet-status (read), fleet-drain and fleet-undrain
 * (admin): the node's side of the NATS intake (docs/fleet.md).
 */
#include <errno.h>

#include "commands_internal.h"
#include "ctl.h"
#include "daemon.h"
#include "daemon_internal.h"
#include "intake/intake.h"

static bool intake_on(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id)
{
	if (d->intake)
		return true;
	sup_ctl_reply_err(c, id, ENOTCONN, "no NATS intake: the configuration has no [fleet] "
			  "servers (or it failed to start: see the log)");
	return false;
}

SUP_CMD_FN(sup_cmd_fleet_status)
{
	json_t *o;

	(void)args;
	if (!intake_on(d, c, id))
		return;
	o = sup_intake_status(d->intake);
	if (!o)
		sup_ctl_reply_err(c, id, ENOMEM, "out of memory");
	else
		sup_ctl_reply_ok(c, id, o);
}

SUP_CMD_FN(sup_cmd_fleet_drain)
{
	(void)args;
	if (intake_on(d, c, id))
		sup_daemon_fleet_drain_wait(d, c, id);
}

SUP_CMD_FN(sup_cmd_fleet_undrain)
{
	(void)args;
	if (!intake_on(d, c, id))
		return;
	sup_intake_undrain(d->intake);
	sup_ctl_reply_ok(c, id, json_pack("{s:b}", "drained", 0));
}
