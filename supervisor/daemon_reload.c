/* SPDX-License-Identifier: MIT */
/* Reload: re-read the config file and apply the difference (daemon.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "allocator.h"
#include "config/config.h"
#include "ctl.h"
#include "daemon.h"
#include "daemon_internal.h"

static void keep_old_conf(struct sup_daemon *d, struct sup_config *old)
{
	struct sup_config **v = realloc(d->old_confs, (d->nold_confs + 1) * sizeof(*v));

	if (!v) {
		/* Leak rather than free what running agents still point into. */
		return;
	}
	v[d->nold_confs++] = old;
	d->old_confs = v;
	/* Most reloads leave nothing pointing into the old file. */
	sup_daemon_free_old_confs(d);
}

void sup_daemon_reload(struct sup_daemon *d, struct sup_ctl_client *client, uint64_t id)
{
	struct sup_config_errors errs = { 0 };
	struct sup_config *nc = sup_config_load(d->config_path, &errs), *old = d->conf;
	json_t *added = json_array(), *removed = json_array(), *restarted = json_array();
	json_t *updated = json_array(), *notes = json_array();
	int unchanged = 0;

	if (!nc) {
		json_t *msgs = json_array();

		for (size_t i = 0; i < errs.n; i++) {
			json_array_append_new(msgs, json_string(errs.v[i].msg));
			sup_log(&d->log, SUP_LOG_ERR, "reload: %s", errs.v[i].msg);
		}
		sup_log(&d->log, SUP_LOG_ERR, "reload refused: %s; the running configuration stays",
			errs.n ? "the new file has errors" : strerror(errno));
		if (client)
			sup_ctl_reply_err(client, id, EINVAL, "reload refused, running configuration kept: %s",
					  errs.n ? errs.v[0].msg : strerror(errno));
		json_decref(msgs);
		json_decref(added);
		json_decref(removed);
		json_decref(restarted);
		json_decref(updated);
		json_decref(notes);
		sup_config_errors_clear(&errs);
		return;
	}
	sup_config_errors_clear(&errs);
	if (strcmp(nc->sup.cgroup_root, old->sup.cgroup_root))
		json_array_append_new(notes, json_string("cgroup_root changed: takes effect at the next start"));
	if (strcmp(nc->sup.control_socket, old->sup.control_socket))
		json_array_append_new(notes, json_string("control_socket changed: takes effect at the next start"));
	if (!nc->sup.control_group != !old->sup.control_group ||
	    (nc->sup.control_group && nc->sup.control_gid != old->sup.control_gid) ||
	    !nc->sup.admin_group != !old->sup.admin_group ||
	    (nc->sup.admin_group && nc->sup.admin_gid != old->sup.admin_gid) ||
	    nc->sup.control_idle_timeout_ns != old->sup.control_idle_timeout_ns ||
	    nc->sup.control_max_per_uid != old->sup.control_max_per_uid)
		json_array_append_new(notes, json_string("control socket roles and bounds changed: take "
							 "effect at the next start"));
	if (!nc->sup.metrics_address != !old->sup.metrics_address ||
	    (nc->sup.metrics_address && strcmp(nc->sup.metrics_address, old->sup.metrics_address)))
		json_array_append_new(notes, json_string("metrics_address changed: takes effect at the next start"));
	if (sup_daemon_wal_reload(d, old, nc))
		json_array_append_new(notes, json_string("journal or journal_dir changed: takes effect "
							 "at the next start"));
	d->conf = nc;
	d->log.level = nc->sup.log_level;
	/* Agents gone from the file, or changed: stop (and remove) them. */
	for (size_t i = 0; i < d->fleet.n; i++) {
		struct sup_agent *ag = d->fleet.agents[i];
		const struct sup_agent_conf *na = sup_config_agent(nc, ag->name);

		if (ag->remove_when_stopped)
			continue;
		if (!na) {
			ag->remove_when_stopped = true;
			sup_agent_event(ag, SUP_EV_STOP);
			json_array_append_new(removed, json_string(ag->name));
		} else if (sup_agent_conf_equal(ag->conf, na)) {
			ag->conf = na;
			unchanged++;
		} else if (na->tier != (unsigned)ag->tier) {
			/* A new tier is a new leaf: remove, then add again. */
			ag->remove_when_stopped = true;
			ag->replacement = na;
			sup_agent_event(ag, SUP_EV_STOP);
			json_array_append_new(restarted, json_string(ag->name));
		} else if (sup_agent_conf_diff(ag->conf, na) & SUP_AGENT_DIFF_PROCESS) {
			ag->conf = na;
			if (sup_agent_running(ag))
				sup_agent_event(ag, SUP_EV_RESTART);
			json_array_append_new(restarted, json_string(ag->name));
		} else {
			ag->conf = na;
			json_array_append_new(updated, json_string(ag->name));
		}
	}
	for (size_t i = 0; i < nc->n_agents; i++)
		if (!sup_daemon_find_agent(d, nc->agents[i].name)) {
			sup_daemon_add_agent(d, &nc->agents[i], true);
			json_array_append_new(added, json_string(nc->agents[i].name));
		}
	keep_old_conf(d, old);
	sup_allocator_apply_static(d->alloc);
	sup_daemon_event(d, SUP_LOG_NOTICE, "reload",
			 json_pack("{s:O, s:O, s:O, s:O, s:i}", "added", added, "removed", removed,
				   "restarted", restarted, "updated", updated, "unchanged", unchanged),
			 "reloaded %s: %zu added, %zu removed, %zu restarted, %zu updated in place, %d unchanged",
			 d->config_path, json_array_size(added), json_array_size(removed),
			 json_array_size(restarted), json_array_size(updated), unchanged);
	if (client)
		sup_ctl_reply_ok(client, id, json_pack("{s:o, s:o, s:o, s:o, s:i, s:o}", "added", added,
						       "removed", removed, "restarted", restarted,
						       "updated", updated, "unchanged", unchanged,
						       "notes", notes));
	else {
		json_decref(added);
		json_decref(removed);
		json_decref(restarted);
		json_decref(updated);
		json_decref(notes);
	}
}
