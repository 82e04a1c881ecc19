/* SPDX-License-Identifier: MIT */
/*
 * An incarnation across a live upgrade: the old tierd quiesces the fleet
 * (no operation of an incarnation left in io_uring, nothing re-armed) and
 * writes each one's process, ring, doorbells and pipes into the state; the
 * new one adopts them as they are. The agent keeps running throughout: its
 * pid, its ring and its pipes do not change.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tier/ring.h"

#include "../config/config.h"
#include "../handover/handover.h"
#include "internal.h"

void sup_inc_fleet_quiesce(struct sup_inc_fleet *f, struct sup_inc *const *incs, size_t n)
{
	f->quiescing = true;
	for (size_t i = 0; i < n; i++) {
		struct sup_inc *inc = incs[i];

		if (!inc)
			continue;
		if (inc->cq_awake)
			sup_inc_awake_unlink(inc);
		sup_timer_disarm(f->env.loop, &inc->resume);
		sup_loop_cancel(f->env.loop, &inc->pid_ev);
		sup_loop_cancel(f->env.loop, &inc->bell_ev);
		sup_loop_cancel(f->env.loop, &inc->out[0].ev);
		sup_loop_cancel(f->env.loop, &inc->out[1].ev);
	}
}

bool sup_inc_fleet_quiet(const struct sup_inc_fleet *f, struct sup_inc *const *incs, size_t n)
{
	if (f->dead)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct sup_inc *inc = incs[i];

		if (inc && !(sup_ev_idle(&inc->pid_ev) && sup_ev_idle(&inc->bell_ev) &&
			     sup_ev_idle(&inc->out[0].ev) && sup_ev_idle(&inc->out[1].ev)))
			return false;
	}
	return true;
}

void sup_inc_fleet_unquiesce(struct sup_inc_fleet *f, struct sup_inc *const *incs, size_t n)
{
	f->quiescing = false;
	for (size_t i = 0; i < n; i++) {
		struct sup_inc *inc = incs[i];

		if (!inc)
			continue;
		sup_inc_rearm(inc);
	}
}

/* Every watch of a live incarnation, as at spawn. */
void sup_inc_rearm(struct sup_inc *inc)
{
	struct sup_loop *l = inc->fleet->env.loop;

	for (int i = 0; i < 2; i++)
		if (inc->out[i].fd >= 0 && sup_ev_idle(&inc->out[i].ev))
			sup_inc_out_arm(&inc->out[i]);
	if (!inc->exited && sup_ev_idle(&inc->bell_ev))
		sup_loop_poll(l, &inc->bell_ev, inc->cq_bell, POLLIN, true);
	if (sup_ev_idle(&inc->pid_ev))
		sup_loop_poll(l, &inc->pid_ev, inc->pidfd, POLLIN, false);
	sup_defer_queue(l, &inc->drain);
}

int sup_inc_save(const struct sup_inc *inc, struct sup_ho_w *w)
{
	int r;

	/* An exited one is still being taken apart: not a state to hand on. */
	if (inc->exited || !inc->ag)
		return -EBUSY;
	sup_ho_w_u32(w, inc->n);
	sup_ho_w_u32(w, (uint32_t)inc->pid);
	sup_ho_w_fd(w, inc->pidfd, SUP_HO_FD_PIDFD);
	/* The ring with its SQ doorbell (the eventfd the agent sleeps on). */
	r = sup_ho_w_ring(w, inc->shm);
	if (r < 0)
		return r;
	sup_ho_w_fd(w, inc->cq_bell, SUP_HO_FD_EVENTFD);
	for (int i = 0; i < 2; i++) {
		sup_ho_w_fd(w, inc->out[i].fd, SUP_HO_FD_PIPE);
		sup_ho_w_bytes(w, inc->out[i].buf, inc->out[i].len);
	}
	sup_ho_w_i64(w, inc->spawned_ns);
	sup_ho_w_u64(w, inc->oom_kills_at_spawn);
	sup_ho_w_u8(w, inc->hello);
	sup_ho_w_u8(w, inc->faulted);
	sup_ho_w_u64(w, inc->welcome_end);
	sup_ho_w_u32(w, inc->nabandoned);
	sup_ho_w_bytes(w, inc->abandoned, sizeof(inc->abandoned));
	return 0;
}

struct sup_inc *sup_inc_restore(struct sup_inc_fleet *f, const struct sup_inc_owner *own,
				struct sup_ho_r *r)
{
	struct tier_shm_owner_state st;
	const void *ab, *ob[2];
	uint32_t n, pid, ablen, oblen[2];
	uint8_t hello, faulted;
	int ring_fd;
	struct sup_inc *inc = calloc(1, sizeof(*inc));

	memset(&st, 0, sizeof(st));
	if (!inc) {
		sup_ho_r_fail(r, "out of memory");
		return NULL;
	}
	inc->fleet = f;
	inc->own = *own;
	sup_ho_r_u32(r, &n);
	sup_ho_r_u32(r, &pid);
	sup_ho_r_fd(r, SUP_HO_FD_PIDFD, &inc->pidfd);
	ring_fd = -1;
	sup_ho_r_ring(r, &ring_fd, &st);
	inc->sq_bell = st.sq_efd;
	sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &inc->cq_bell);
	for (int i = 0; i < 2; i++) {
		sup_ho_r_fd(r, SUP_HO_FD_PIPE, &inc->out[i].fd);
		sup_ho_r_bytes(r, &ob[i], &oblen[i], SUP_OUT_BUF);
	}
	sup_ho_r_i64(r, &inc->spawned_ns);
	sup_ho_r_u64(r, &inc->oom_kills_at_spawn);
	sup_ho_r_u8(r, &hello);
	sup_ho_r_u8(r, &faulted);
	sup_ho_r_u64(r, &inc->welcome_end);
	sup_ho_r_u32(r, &inc->nabandoned);
	sup_ho_r_bytes(r, &ab, &ablen, sizeof(inc->abandoned));
	if (!sup_ho_r_ok(r))
		goto fail;
	if (n != own->n || !pid || ablen != sizeof(inc->abandoned) ||
	    inc->pidfd < 0 || ring_fd < 0 || inc->cq_bell < 0 || inc->sq_bell < 0 ||
	    inc->out[0].fd < 0 || inc->out[1].fd < 0) {
		sup_ho_r_fail(r, "agent %s: incarnation %u (state says %u, pid %u) incomplete",
			      own->name, own->n, n, pid);
		goto fail;
	}
	memcpy(inc->abandoned, ab, sizeof(inc->abandoned));
	inc->shm = tier_shm_adopt(ring_fd, &st);
	if (!inc->shm) {
		sup_ho_r_fail(r, "agent %s: its ring cannot be adopted: %s", own->name,
			      tier_strerror(-errno));
		goto fail;
	}
	inc->n = n;
	inc->pid = (pid_t)pid;
	inc->hello = hello;
	inc->faulted = faulted;
	inc->ag = own->ag;
	tier_prod_set_eventfd(tier_shm_prod(inc->shm), inc->sq_bell);
	sup_ev_init(&inc->pid_ev, sup_inc_pid_done, inc);
	sup_ev_init(&inc->bell_ev, sup_inc_bell_done, inc);
	sup_defer_init(&inc->drain, sup_inc_drain_fired, inc);
	sup_timer_init(&inc->resume, sup_inc_resume_fired, inc);
	for (int i = 0; i < 2; i++) {
		int fd = inc->out[i].fd;

		inc->out[i] = (struct sup_out){ .inc = inc, .fd = fd, .stream = i + 1 };
		memcpy(inc->out[i].buf, ob[i], oblen[i]);
		inc->out[i].len = oblen[i];
		sup_ev_init(&inc->out[i].ev, sup_inc_out_done, &inc->out[i]);
	}
	sup_inc_budget_init(f, own, sup_loop_now(f->env.loop));
	/* Asleep on the doorbell, as at spawn: the drain queued by rearm
	 * takes whatever the agent wrote during the pause. */
	tier_cons_prepare_sleep(tier_shm_cons(inc->shm), TIER_SLEEP_EVENTFD, NULL);
	return inc;
fail:
	/* The fds are the rollback's: nothing is closed. */
	free(inc);
	return NULL;
}

/* The restore is committed: watch it, and tell its agent. */
void sup_inc_restored(struct sup_inc *inc)
{
	sup_inc_rearm(inc);
	inc->own.ops->spawned(inc->own.ag, inc);
}
