/* SPDX-License-Identifier: MIT */
/*
 * Agents across a live upgrade (docs/handover.md, section "agents"): each
 * agent's state machine, restart history, timers and leaf, and its running
 * incarnation. The new binary matches agents to its configuration by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cgroup/cg_leaf.h"
#include "config/config.h"
#include "handover/handover.h"
#include "incarnation/incarnation.h"

/* The reasons a kill is recorded with (agent.c): a restored agent points
 * at the same text. */
static const char *const kill_reasons[] = {
	"start timeout", "protocol violation", "flooding",
};

static const char *kill_reason_of(const char *s)
{
	for (size_t i = 0; i < sizeof(kill_reasons) / sizeof(kill_reasons[0]); i++)
		if (!strcmp(s, kill_reasons[i]))
			return kill_reasons[i];
	return "a kill before the upgrade";
}

int sup_agent_save(const struct sup_agent *ag, struct sup_ho_w *w)
{
	/* A reload still applying (an agent on its way out) is not handed on:
	 * the caller refuses the upgrade until it is done. */
	if (ag->remove_when_stopped || ag->replacement)
		return -EBUSY;
	sup_ho_w_str(w, ag->name);
	sup_ho_w_u8(w, (uint8_t)ag->tier);
	sup_ho_w_u8(w, (uint8_t)ag->state);
	sup_ho_w_u32(w, ag->incarnations);
	sup_ho_w_i64(w, sup_timer_armed(&ag->timer) ? sup_timer_deadline(&ag->timer) : 0);
	sup_ho_w_i64(w, ag->ready_ns);
	sup_ho_w_u64(w, ag->restarts);
	sup_ho_w_u32(w, ag->backoff_level);
	sup_ho_w_i64(w, ag->backoff_until);
	sup_ho_w_u32(w, ag->ndeaths);
	for (unsigned i = 0; i < ag->ndeaths && i < SUP_MAX_DEATHS; i++)
		sup_ho_w_i64(w, ag->deaths[i]);
	sup_ho_w_u8(w, ag->restart_pending);
	sup_ho_w_u8(w, ag->stop_requested);
	sup_ho_w_u8(w, ag->exit_clean);
	sup_ho_w_str(w, ag->kill_reason);
	sup_ho_w_i64(w, ag->last_spawn_ns);
	sup_ho_w_str(w, ag->last_exit);
	sup_ho_w_u64(w, ag->log_dropped);
	sup_ho_w_u32(w, ag->max_inflight);
	sup_cg_leaf_save(ag->leaf, w);
	sup_ho_w_u8(w, ag->inc != NULL);
	return ag->inc ? sup_inc_save(ag->inc, w) : 0;
}

struct sup_agent *sup_agent_restore(const struct sup_agent_env *env, const struct sup_config *conf,
				    size_t hint, struct sup_ho_r *r)
{
	char name[SUP_CG_NAME_MAX + 1], reason[64];
	bool reason_null;
	uint8_t tier, state, rp, sr, ec, has_inc;
	uint32_t ndeaths, backoff_level;
	int64_t deadline;
	const struct sup_agent_conf *c;
	struct sup_agent *ag;

	if (!sup_ho_r_str(r, name, sizeof(name)) || !sup_ho_r_u8(r, &tier))
		return NULL;
	/* The state lists agents in the fleet's order, which is mostly the
	 * configuration's: look there first. */
	c = hint < conf->n_agents && !strcmp(conf->agents[hint].name, name) ? &conf->agents[hint] :
	    sup_config_agent(conf, name);
	if (!c || c->tier != tier) {
		sup_ho_r_fail(r, "agent %s (tier %u) runs, but the configuration %s", name, tier,
			      c ? "puts it in another tier" : "does not have it");
		return NULL;
	}
	ag = calloc(1, sizeof(*ag));
	if (!ag) {
		sup_ho_r_fail(r, "out of memory");
		return NULL;
	}
	ag->env = env;
	ag->conf = c;
	memcpy(ag->name, name, strlen(name) + 1);   /* fits: SUP_CG_NAME_MAX */
	ag->name_len = strlen(ag->name);
	ag->tier = tier;
	sup_timer_init(&ag->timer, sup_agent_timer_fired, ag);
	sup_ho_r_u8(r, &state);
	sup_ho_r_u32(r, &ag->incarnations);
	sup_ho_r_i64(r, &deadline);
	sup_ho_r_i64(r, &ag->ready_ns);
	sup_ho_r_u64(r, &ag->restarts);
	sup_ho_r_u32(r, &backoff_level);
	sup_ho_r_i64(r, &ag->backoff_until);
	sup_ho_r_u32(r, &ndeaths);
	if (sup_ho_r_ok(r) && (ndeaths > SUP_MAX_DEATHS || state >= SUP_AG_NSTATES)) {
		sup_ho_r_fail(r, "agent %s: state %u or %u deaths out of range", name, state, ndeaths);
		goto fail;
	}
	for (uint32_t i = 0; i < ndeaths && sup_ho_r_ok(r); i++)
		sup_ho_r_i64(r, &ag->deaths[i]);
	ag->ndeaths = ndeaths;
	ag->backoff_level = backoff_level;
	ag->state = (enum sup_agent_state)state;
	sup_ho_r_u8(r, &rp);
	sup_ho_r_u8(r, &sr);
	sup_ho_r_u8(r, &ec);
	sup_ho_r_str(r, reason, sizeof(reason));
	reason_null = !reason[0];
	sup_ho_r_i64(r, &ag->last_spawn_ns);
	sup_ho_r_str(r, ag->last_exit, sizeof(ag->last_exit));
	sup_ho_r_u64(r, &ag->log_dropped);
	sup_ho_r_u32(r, &ag->max_inflight);
	if (!sup_ho_r_ok(r))
		goto fail;
	ag->restart_pending = rp;
	ag->stop_requested = sr;
	ag->exit_clean = ec;
	ag->kill_reason = reason_null ? NULL : kill_reason_of(reason);
	ag->leaf = sup_cg_leaf_restore(r, tier, name);
	if (!ag->leaf || !sup_ho_r_u8(r, &has_inc))
		goto fail;
	if (has_inc != (ag->state == SUP_AG_STARTING || ag->state == SUP_AG_READY ||
			ag->state == SUP_AG_STOPPING)) {
		sup_ho_r_fail(r, "agent %s is %s %s a process", name, sup_agent_state_name(ag->state),
			      has_inc ? "with" : "without");
		goto fail;
	}
	if (has_inc) {
		struct sup_inc_owner own;

		sup_agent_owner(ag, ag->incarnations, &own);
		ag->inc = sup_inc_restore(env->incs, &own, r);
		if (!ag->inc)
			goto fail;
	}
	if (deadline)
		sup_timer_arm(env->loop, &ag->timer, deadline);
	return ag;
fail:
	/* Nothing closed: a failed restore hands every fd back. */
	free(ag->leaf);
	free(ag);
	return NULL;
}
