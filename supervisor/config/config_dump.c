/* SPDX-License-Identifier: MIT */
/*
 * config_dump — writing a configuration back as INI, and comparing two
 * (what a reload needs to decide which agents to leave alone).
 */
#include <errno.h>
#include <string.h>

#include "config_internal.h"

static int dump_table(FILE *f, const struct cfg_table *t, const void *base)
{
	for (size_t i = 0; i < t->n; i++) {
		int r = cfg_dump_key(f, &t->keys[i], base);

		if (r < 0)
			return r;
	}
	return 0;
}

int sup_config_dump(const struct sup_config *c, FILE *f)
{
	int r;

	if (fputs("# tierd: effective configuration of ", f) == EOF)
		return -EIO;
	/* A path is free text; a newline in it would end the comment. */
	for (const char *p = c->path; *p; p++)
		if (fputc((unsigned char)*p < 0x20 ? '?' : *p, f) == EOF)
			return -EIO;
	if (fputs(" (defaults included)\n\n[supervisor]\n", f) == EOF)
		return -EIO;
	r = dump_table(f, &sup_cfg_sup_keys, &c->sup);
	for (int t = 0; r == 0 && t < SUP_NTIERS; t++) {
		if (fprintf(f, "\n[tier%d]\n", t + 1) < 0)
			return -EIO;
		r = dump_table(f, &sup_cfg_tier_keys, &c->tiers[t]);
		if (r == 0)
			r = dump_table(f, &sup_cfg_limit_keys, &c->tiers[t].limits);
	}
	for (size_t i = 0; r == 0 && i < c->n_agents; i++) {
		const struct sup_agent_conf *a = &c->agents[i];

		if (fprintf(f, "\n[agent %s]\n", a->name) < 0)
			return -EIO;
		r = dump_table(f, &sup_cfg_agent_keys, a);
		if (r == 0)
			r = dump_table(f, &sup_cfg_limit_keys, &a->limits);
	}
	if (r == 0 && c->fleet.servers) {
		if (fputs("\n[fleet]\n", f) == EOF)
			return -EIO;
		r = dump_table(f, &sup_cfg_fleet_keys, &c->fleet);
	}
	if (r == 0 && fflush(f) == EOF)
		r = -errno;
	return r;
}

/* ---- comparing ------------------------------------------------------------ */

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool strv_eq(char *const *a, char *const *b)
{
	if (!a || !b)
		return a == b;
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b))
			return false;
	return !*a && !*b;
}

bool sup_limits_equal(const struct sup_limits *a, const struct sup_limits *b)
{
	if (a->set != b->set)
		return false;
	for (int l = 0; l < SUP_LIM_COUNT; l++) {
		bool eq = true;

		if (!sup_limit_is_set(a, l))
			continue;
		switch (l) {
		case SUP_LIM_CPU_WEIGHT:
			eq = a->cpu_weight == b->cpu_weight;
			break;
		case SUP_LIM_CPU_MAX:
			eq = a->cpu_max_quota_us == b->cpu_max_quota_us &&
			     a->cpu_max_period_us == b->cpu_max_period_us;
			break;
		case SUP_LIM_CPU_IDLE:
			eq = a->cpu_idle == b->cpu_idle;
			break;
		case SUP_LIM_MEMORY_LOW:
			eq = a->memory_low == b->memory_low;
			break;
		case SUP_LIM_MEMORY_HIGH:
			eq = a->memory_high == b->memory_high;
			break;
		case SUP_LIM_MEMORY_MAX:
			eq = a->memory_max == b->memory_max;
			break;
		case SUP_LIM_MEMORY_SWAP_MAX:
			eq = a->memory_swap_max == b->memory_swap_max;
			break;
		case SUP_LIM_MEMORY_OOM_GROUP:
			eq = a->memory_oom_group == b->memory_oom_group;
			break;
		case SUP_LIM_IO_WEIGHT:
			eq = a->io_weight == b->io_weight;
			break;
		case SUP_LIM_IO_MAX:
			eq = a->n_io_max == b->n_io_max;
			for (uint32_t i = 0; eq && i < a->n_io_max; i++) {
				const struct sup_io_max *x = &a->io_max[i], *y = &b->io_max[i];

				eq = x->major == y->major && x->minor == y->minor &&
				     x->rbps == y->rbps && x->wbps == y->wbps &&
				     x->riops == y->riops && x->wiops == y->wiops;
			}
			break;
		case SUP_LIM_PIDS_MAX:
			eq = a->pids_max == b->pids_max;
			break;
		case SUP_LIM_CPUSET_CPUS:
			eq = !strcmp(a->cpuset_cpus, b->cpuset_cpus);
			break;
		}
		if (!eq)
			return false;
	}
	return true;
}

bool sup_tier_conf_equal(const struct sup_tier_conf *a, const struct sup_tier_conf *b)
{
	for (int r = 0; r < SUP_NRES; r++)
		if (a->share[r] != b->share[r])
			return false;
	return a->batch_size == b->batch_size && a->stagger_ns == b->stagger_ns &&
	       a->processing_timeout_ns == b->processing_timeout_ns &&
	       sup_limits_equal(&a->limits, &b->limits);
}

static bool rlimits_eq(const struct sup_rlimit_conf *a, const struct sup_rlimit_conf *b)
{
	for (int i = 0; i < SUP_RLIMIT_COUNT; i++)
		if (a[i].set != b[i].set ||
		    (a[i].set && (a[i].cur != b[i].cur || a[i].max != b[i].max)))
			return false;
	return true;
}

unsigned sup_agent_conf_diff(const struct sup_agent_conf *a, const struct sup_agent_conf *b)
{
	unsigned d = 0;

	/* The ids, not the names: "root" and "0" run the same process, and
	 * a user renumbered since the last load does not. */
	if (a->tier != b->tier || !strv_eq(a->argv, b->argv) || !strv_eq(a->env, b->env) ||
	    !str_eq(a->workdir, b->workdir) || a->has_uid != b->has_uid ||
	    (a->has_uid && a->uid != b->uid) || a->has_gid != b->has_gid ||
	    (a->has_gid && a->gid != b->gid) || a->caps != b->caps ||
	    !rlimits_eq(a->rlimits, b->rlimits) || a->mode != b->mode ||
	    a->ring_size != b->ring_size || a->sandbox != b->sandbox)
		d |= SUP_AGENT_DIFF_PROCESS;
	if (!sup_limits_equal(&a->limits, &b->limits))
		d |= SUP_AGENT_DIFF_LIMITS;
	if (a->restart != b->restart || a->start_timeout_ns != b->start_timeout_ns ||
	    a->stop_timeout_ns != b->stop_timeout_ns || a->exec_timeout_ns != b->exec_timeout_ns ||
	    !strv_eq(a->specialties, b->specialties))
		d |= SUP_AGENT_DIFF_POLICY;
	return d;
}

bool sup_agent_conf_equal(const struct sup_agent_conf *a, const struct sup_agent_conf *b)
{
	return str_eq(a->name, b->name) && sup_agent_conf_diff(a, b) == 0;
}

bool sup_supervisor_conf_equal(const struct sup_supervisor_conf *a,
			       const struct sup_supervisor_conf *b)
{
	return str_eq(a->cgroup_root, b->cgroup_root) &&
	       str_eq(a->control_socket, b->control_socket) &&
	       !a->control_group == !b->control_group &&
	       (!a->control_group || a->control_gid == b->control_gid) &&
	       a->monitor_interval_ns == b->monitor_interval_ns && a->log_level == b->log_level &&
	       str_eq(a->metrics_address, b->metrics_address) &&
	       a->restart_backoff_base_ns == b->restart_backoff_base_ns &&
	       a->restart_backoff_cap_ns == b->restart_backoff_cap_ns &&
	       a->restart_stable_after_ns == b->restart_stable_after_ns &&
	       a->crash_loop_count == b->crash_loop_count &&
	       a->crash_loop_window_ns == b->crash_loop_window_ns &&
	       a->task_retry_budget == b->task_retry_budget &&
	       a->result_retention_ns == b->result_retention_ns &&
	       a->task_queue_limit == b->task_queue_limit && a->max_payload == b->max_payload &&
	       a->spin_window_ns == b->spin_window_ns &&
	       a->utilisation_threshold == b->utilisation_threshold &&
	       a->safety_margin == b->safety_margin && a->hysteresis == b->hysteresis &&
	       a->optimiser == b->optimiser &&
	       a->response_time_target_ns == b->response_time_target_ns &&
	       a->efficiency_target == b->efficiency_target &&
	       a->quality_threshold == b->quality_threshold &&
	       a->stability_target == b->stability_target && str_eq(a->agentd, b->agentd) &&
	       !a->admin_group == !b->admin_group &&
	       (!a->admin_group || a->admin_gid == b->admin_gid) &&
	       a->result_retention_max == b->result_retention_max &&
	       a->result_retention_bytes == b->result_retention_bytes &&
	       a->control_idle_timeout_ns == b->control_idle_timeout_ns &&
	       a->control_max_per_uid == b->control_max_per_uid &&
	       a->agent_record_rate == b->agent_record_rate &&
	       a->agent_log_rate == b->agent_log_rate &&
	       a->agent_output_rate == b->agent_output_rate &&
	       a->agent_wake_rate == b->agent_wake_rate &&
	       a->agent_flood_kill_after_ns == b->agent_flood_kill_after_ns &&
	       a->journal == b->journal && str_eq(a->journal_dir, b->journal_dir) &&
	       a->journal_sync == b->journal_sync &&
	       a->journal_sync_window_ns == b->journal_sync_window_ns &&
	       a->journal_max_bytes == b->journal_max_bytes &&
	       a->journal_segment_bytes == b->journal_segment_bytes &&
	       a->workflow_after_crash == b->workflow_after_crash;
}

bool sup_config_equal(const struct sup_config *a, const struct sup_config *b)
{
	if (!sup_supervisor_conf_equal(&a->sup, &b->sup) || a->n_agents != b->n_agents)
		return false;
	for (int t = 0; t < SUP_NTIERS; t++)
		if (!sup_tier_conf_equal(&a->tiers[t], &b->tiers[t]))
			return false;
	for (size_t i = 0; i < a->n_agents; i++)
		if (!sup_agent_conf_equal(&a->agents[i], &b->agents[i]))
			return false;
	return sup_fleet_conf_equal(&a->fleet, &b->fleet);
}
