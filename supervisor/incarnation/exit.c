/* SPDX-License-Identifier: MIT */
/*
 * The end of an incarnation: its exit is noticed through the pidfd, what
 * it finished before dying is taken, it is detached from its agent, and it
 * is freed once the kernel has completed every operation on its fds. The
 * fleet keeps the detached ones until then.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tier/ring.h"

#include "../cgroup/cgroup.h"
#include "../cgroup/cg_leaf.h"
#include "../cgroup/cg_stat.h"
#include "../journal.h"
#include "internal.h"

struct sup_inc_fleet *sup_inc_fleet_new(const struct sup_inc_env *env,
					const struct sup_inc_hooks *h, void *arg)
{
	struct sup_inc_fleet *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->env = *env;
	f->hooks = h;
	f->arg = arg;
	f->report = &sup_inc_daemon_report;
	return f;
}

void sup_inc_fleet_free(struct sup_inc_fleet *f)
{
	if (!f)
		return;
	sup_inc_reap_dead(f);
	free(f);
}

static void describe_exit(const siginfo_t *si, char *buf, size_t len)
{
	if (si->si_code == CLD_EXITED)
		snprintf(buf, len, "exit %d", si->si_status);
	else
		snprintf(buf, len, "signal %d (%s)%s", si->si_status, sigabbrev_np(si->si_status) ?
			 sigabbrev_np(si->si_status) : "?", si->si_code == CLD_DUMPED ? ", core dumped" : "");
}

void sup_inc_free(struct sup_inc *inc)
{
	tier_shm_free(inc->shm);
	if (inc->cq_bell >= 0)
		close(inc->cq_bell);
	if (inc->sq_bell >= 0)
		close(inc->sq_bell);
	for (int i = 0; i < 2; i++)
		if (inc->out[i].fd >= 0)
			close(inc->out[i].fd);
	if (inc->pidfd >= 0)
		close(inc->pidfd);
	free(inc);
}

static bool inc_idle(const struct sup_inc *inc)
{
	return sup_ev_idle(&inc->pid_ev) && sup_ev_idle(&inc->bell_ev) &&
	       sup_ev_idle(&inc->out[0].ev) && sup_ev_idle(&inc->out[1].ev);
}

/* Detach from the agent: cancel every operation; the object is freed once
 * the kernel has completed them all. */
static void inc_detach(struct sup_inc *inc)
{
	struct sup_inc_fleet *f = inc->fleet;

	if (inc->cq_awake)
		sup_inc_awake_unlink(inc);
	sup_timer_disarm(f->env.loop, &inc->resume);
	inc->ag = NULL;
	sup_loop_cancel(f->env.loop, &inc->pid_ev);
	sup_loop_cancel(f->env.loop, &inc->bell_ev);
	sup_loop_cancel(f->env.loop, &inc->out[0].ev);
	sup_loop_cancel(f->env.loop, &inc->out[1].ev);
	inc->next_dead = f->dead;
	f->dead = inc;
}

void sup_inc_reap_dead(struct sup_inc_fleet *f)
{
	struct sup_inc **pp;

	if (!f)
		return;
	for (pp = &f->dead; *pp;) {
		struct sup_inc *inc = *pp;

		if (inc_idle(inc)) {
			*pp = inc->next_dead;
			sup_inc_free(inc);
		} else {
			pp = &inc->next_dead;
		}
	}
}

void sup_inc_pid_done(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_inc *inc = ev->data;
	struct sup_agent *ag = inc->ag;
	const struct sup_inc_owner *own = &inc->own;
	const struct sup_inc_env *env = &inc->fleet->env;
	siginfo_t si = { 0 };
	bool clean = false;

	(void)more;
	if (!ag) {
		sup_inc_reap_dead(inc->fleet);
		return;
	}
	/* Handing over: the pidfd stays readable, so the next binary sees an
	 * exit that happens now. */
	if (inc->fleet->quiescing)
		return;
	if (res < 0 && res != -ECANCELED)
		sup_log(env->journal->log, SUP_LOG_ERR, "agent %s: polling its pidfd: %s", own->name,
			strerror(-res));
	if (waitid(P_PIDFD, (id_t)inc->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) {
		if (res == -ECANCELED)
			return;
		/* Not exited yet (spurious wake-up): poll again. */
		sup_loop_poll(l, &inc->pid_ev, inc->pidfd, POLLIN, false);
		return;
	}
	inc->exited = true;
	/* Whatever it left in its leaf goes with it, before the ring is read:
	 * a child it forked could otherwise keep refilling it. */
	{
		struct sup_cg_events ce;

		if (sup_cg_read_events(sup_cg_leaf_fd(own->leaf), &ce) < 0 || ce.populated)
			sup_cg_leaf_kill(own->leaf);
	}
	/* Results it finished before dying are still valid: take them, but no
	 * more than the ring can hold (a full ring of empty records). */
	for (size_t left = tier_shm_size(inc->shm) / TIER_REC_HDR_SIZE; left >= SUP_INC_DRAIN_BUDGET;
	     left -= SUP_INC_DRAIN_BUDGET)
		if (!sup_inc_drain_charged(inc, SUP_INC_DRAIN_BUDGET))
			break;
	describe_exit(&si, own->last_exit, own->last_exit_len);
	clean = si.si_code == CLD_EXITED && si.si_status == 0;
	if (sup_cg_ctrl_live(env->cg, SUP_CG_MEMORY)) {
		struct sup_cg_mem_events me;

		if (sup_cg_read_mem_events(sup_cg_leaf_fd(own->leaf), &me) == 0 &&
		    me.oom_kill > inc->oom_kills_at_spawn) {
			snprintf(own->last_exit, own->last_exit_len, "oom-kill (%s)",
				 si.si_code == CLD_EXITED ? "exited" : "killed");
			clean = false;
		}
	}
	sup_journal_event(env->journal, *own->stop_requested ? SUP_LOG_INFO : SUP_LOG_WARNING,
			  "agent_exit",
			  json_pack("{s:s, s:i, s:i, s:s, s:b, s:f}", "agent", own->name,
				    "incarnation", (int)inc->n, "pid", (int)inc->pid,
				    "status", own->last_exit, "clean", clean,
				    "uptime_s", (double)(sup_loop_time(l) - inc->spawned_ns) * 1e-9),
			  "agent %s[%d] ended: %s", own->name, (int)inc->pid, own->last_exit);
	inc->fleet->hooks->lost(inc->fleet->arg, inc);
	inc_detach(inc);
	own->ops->exited(ag, clean);
}
