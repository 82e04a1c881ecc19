/* SPDX-License-Identifier: MIT */
/* handover: a ring region's creator side, as one block of the section that
 * holds its agent (docs/handover.md, "ring block"). */
#include <errno.h>

#include "internal.h"
#include "tier/ring.h"

int sup_ho_w_ring(struct sup_ho_w *w, const struct tier_shm *shm)
{
	struct tier_shm_owner_state st;
	int rc = tier_shm_owner_state(shm, &st);

	if (rc < 0)
		return rc;
	sup_ho_w_fd(w, tier_shm_fd(shm), SUP_HO_FD_MEMFD);
	sup_ho_w_fd(w, st.sq_efd, SUP_HO_FD_EVENTFD);
	sup_ho_w_u64(w, st.total_size);
	sup_ho_w_u32(w, st.sq_offset);
	sup_ho_w_u32(w, st.cq_offset);
	sup_ho_w_u32(w, st.sq_capacity);
	sup_ho_w_u32(w, st.cq_capacity);
	sup_ho_w_u32(w, st.max_record);
	sup_ho_w_u64(w, st.sq_tail);
	sup_ho_w_u64(w, st.sq_published);
	sup_ho_w_u64(w, st.sq_head_seen);
	sup_ho_w_u64(w, st.sq_head_floor);
	sup_ho_w_u64(w, st.sq_wakes);
	sup_ho_w_u32(w, (uint32_t)st.sq_err);
	sup_ho_w_u64(w, st.cq_head);
	sup_ho_w_u64(w, st.cq_released);
	sup_ho_w_u64(w, st.cq_tail_seen);
	sup_ho_w_u64(w, st.cq_peek_next);
	sup_ho_w_u32(w, (uint32_t)st.cq_err);
	return 0;
}

bool sup_ho_r_ring(struct sup_ho_r *r, int *fd, struct tier_shm_owner_state *st)
{
	uint32_t sq_err = 0, cq_err = 0;
	int efd = -1;

	*st = (struct tier_shm_owner_state){ 0 };
	*fd = -1;
	if (!sup_ho_r_fd(r, SUP_HO_FD_MEMFD, fd) || !sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &efd))
		return false;
	st->sq_efd = efd;
	sup_ho_r_u64(r, &st->total_size);
	sup_ho_r_u32(r, &st->sq_offset);
	sup_ho_r_u32(r, &st->cq_offset);
	sup_ho_r_u32(r, &st->sq_capacity);
	sup_ho_r_u32(r, &st->cq_capacity);
	sup_ho_r_u32(r, &st->max_record);
	sup_ho_r_u64(r, &st->sq_tail);
	sup_ho_r_u64(r, &st->sq_published);
	sup_ho_r_u64(r, &st->sq_head_seen);
	sup_ho_r_u64(r, &st->sq_head_floor);
	sup_ho_r_u64(r, &st->sq_wakes);
	sup_ho_r_u32(r, &sq_err);
	sup_ho_r_u64(r, &st->cq_head);
	sup_ho_r_u64(r, &st->cq_released);
	sup_ho_r_u64(r, &st->cq_tail_seen);
	sup_ho_r_u64(r, &st->cq_peek_next);
	sup_ho_r_u32(r, &cq_err);
	st->sq_err = (int32_t)sq_err;
	st->cq_err = (int32_t)cq_err;
	if (*fd < 0 && sup_ho_r_ok(r))
		sup_ho_r_fail(r, "a ring block without its memfd");
	return sup_ho_r_ok(r);
}
