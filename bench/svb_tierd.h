/* SPDX-License-Identifier: MIT */
/*
 * tierd as a contender of the supervision benchmark: a generated config
 * (its own cgroup root below the run's cgroup, its own control socket,
 * warnings only, no metrics endpoint; n agents "aNNNN" running the trivial
 * agent over tiers 1..4, restart = always), started by pid and talked to
 * over one persistent control connection (supervisor/ctlproto.h framing).
 *
 * Readiness is tierd's own: an agent is ready once its HELLO went through
 * the ring and tierd's state machine moved it to "ready". All-ready is read
 * from "status" (per-tier state counts); a replacement's readiness from the
 * event journal ("events" after a sequence number: the agent's
 * "agent_state" event to "ready").
 */
#ifndef SVB_TIERD_H
#define SVB_TIERD_H

#include <stdint.h>
#include <sys/types.h>

#include "common/ctlproto.h"
#include "svb_util.h"

struct svb_tierd {
	const struct svb_env *env;
	unsigned              n;
	char                  cg_rel[128];   /* cgroup_root, below the mount */
	char                  cg[PATH_MAX];  /* its directory (from "status" once known) */
	char                  sock[108];
	char                  conf[PATH_MAX];
	char                  log[PATH_MAX];
	struct svb_proc       proc;          /* parked before exec */
	pid_t                 pid;
	int                   fd;            /* the control connection, -1 until connected */
	struct sup_ctl_buf    in;
	char                 *out;           /* an encoded request */
	size_t                outcap;
	uint64_t              next_id;
	uint64_t              mark;          /* journal position before a kill */
	pid_t                *pids;          /* per agent, from the last "agents" (0: not ready) */
	int64_t               connected_ns;  /* when the control socket first answered */
};

int svb_tierd_prepare(struct svb_tierd *t, const struct svb_env *env, unsigned n, unsigned seq);
/* Fork tierd, parked before exec; then start it. */
int svb_tierd_arm(struct svb_tierd *t);
int svb_tierd_start(struct svb_tierd *t);
/* Connect if not yet (0 while the socket is not there), then "status":
 * how many agents are ready. -ECHILD when tierd has exited. */
int svb_tierd_ready_count(struct svb_tierd *t);
/* Refresh pids[] from "agents" (its reply grows by ~230 bytes an agent:
 * meant for the 24-agent runs). */
int svb_tierd_agents(struct svb_tierd *t);
/* Remember the journal's last sequence number. */
int svb_tierd_mark(struct svb_tierd *t);
/* 1 when agent i went to "ready" after the mark, 0 not yet, -errno. */
int svb_tierd_ready_since_mark(struct svb_tierd *t, unsigned i);
/* Where the time of agent i's last restart went, from tierd's journal
 * timestamps (CLOCK_REALTIME) against the kill at kill_rt_ns: ms from the
 * kill until tierd saw the exit, spawned the replacement, saw it ready;
 * -1 for a step not found. */
int svb_tierd_restart_phases(struct svb_tierd *t, unsigned i, int64_t kill_rt_ns, double ret_ms[3]);
/* SIGTERM, timed until tierd has exited (*ret_ns); then checks that its
 * cgroup tree, its socket and every process that was in its tree (read
 * from the cgroups before the stop) are gone. 0 when clean;
 * -EBUSY with the reason in why otherwise (what was left is killed). */
int svb_tierd_stop(struct svb_tierd *t, int64_t timeout_ns, int64_t *ret_ns, char *why, size_t whylen);
/* tierd's CPU: usage of its supervisor leaf's cpu.stat and of its threads
 * (schedstat), ns. */
int svb_tierd_cpu(const struct svb_tierd *t, int64_t *ret_cg_ns, int64_t *ret_sched_ns);
/* Kill whatever is left and remove everything (after a failure); prints
 * the tail of tierd's log. */
void svb_tierd_abandon(struct svb_tierd *t);

#endif
