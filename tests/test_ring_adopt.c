/* SPDX-License-Identifier: MIT */
/* Ring hand-over: a creator's private state saved, the memfd adopted by a
 * fresh handle (as the next tierd binary does after execve) and the agent's
 * side going on unchanged; a reservation outstanding, a corrupt header and an
 * inconsistent state refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "supervisor/handover/handover.h"
#include "tier/ring.h"

struct pair {
	struct tier_shm *sup, *agent;
};

static struct pair make_pair(uint32_t cap, uint32_t max_rec)
{
	struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = cap, .cq_capacity = cap,
				   .max_record = max_rec };
	struct pair p;

	p.sup = tier_shm_create(&o);
	cr_assert_not_null(p.sup, "create: %s", tier_strerror(errno));
	p.agent = tier_shm_attach(tier_shm_fd(p.sup));
	cr_assert_not_null(p.agent, "attach: %s", tier_strerror(errno));
	return p;
}

/* The old binary's handle gone as across execve: its private memory lost,
 * only the memfd (a dup here, since freeing the handle closes its own) and
 * the saved state left. Returns the adopted handle. */
static struct tier_shm *hand_over(struct tier_shm *old)
{
	struct tier_shm_owner_state st;
	struct tier_shm *shm;
	int fd = fcntl(tier_shm_fd(old), F_DUPFD_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(tier_shm_owner_state(old, &st), 0);
	tier_shm_free(old);
	shm = tier_shm_adopt(fd, &st);
	cr_assert_not_null(shm, "adopt: %s", tier_strerror(errno));
	cr_assert_eq(tier_shm_fd(shm), fd, "the adopted handle owns the memfd it was given");
	return shm;
}

static void put(struct tier_prod *p, uint64_t id, uint32_t len)
{
	char buf[512];

	memset(buf, (int)(id & 0xff), len);
	cr_assert_eq(tier_prod_write(p, 5, 0, id, buf, len), 0, "write %lu", (unsigned long)id);
}

/* Read one record: its id, checking its payload. */
static uint64_t get(struct tier_cons *c)
{
	struct tier_msg m;
	char buf[512];

	cr_assert_eq(tier_cons_read(c, &m, buf, sizeof(buf)), 1);
	for (uint32_t i = 0; i < m.len; i++)
		cr_assert_eq((unsigned char)buf[i], m.task_id & 0xff);
	return m.task_id;
}

Test(ring_adopt, should_go_on_where_the_old_handle_stopped_on_both_rings)
{
	struct pair p = make_pair(1024, 256);
	struct tier_prod *sq = tier_shm_prod(p.sup), *cq = tier_shm_prod(p.agent);
	struct tier_cons *sqc = tier_shm_cons(p.agent), *cqc = tier_shm_cons(p.sup);
	struct tier_msg m;
	uint64_t next_sq = 0, next_cq = 0, got_sq = 0, got_cq = 0, tail;

	/* SQ: 6 published and 2 written but unpublished, 3 read by the agent */
	for (; next_sq < 8; next_sq++) {
		put(sq, next_sq, 40);
		if (next_sq == 5)
			tier_prod_publish(sq);
	}
	for (; got_sq < 3; got_sq++)
		cr_assert_eq(get(sqc), got_sq);
	tier_cons_release(sqc);
	/* CQ: 5 results, 2 read and released by tierd, a third peeked only */
	for (; next_cq < 5; next_cq++)
		put(cq, next_cq, 24);
	tier_prod_publish(cq);
	for (; got_cq < 2; got_cq++)
		cr_assert_eq(get(cqc), got_cq);
	tier_cons_release(cqc);
	cr_assert_eq(tier_cons_peek(cqc, &m), 1);
	tail = tier_prod_tail(sq);

	p.sup = hand_over(p.sup);
	sq = tier_shm_prod(p.sup);
	cqc = tier_shm_cons(p.sup);
	cr_expect_eq(tier_prod_tail(sq), tail, "the private tail came across");
	tier_cons_advance(cqc);	/* the peek made before the hand-over */
	got_cq++;
	cr_expect_eq(tier_prod_publish(sq), 0, "the two unpublished records go out now");
	/* Many laps of both rings, the agent's handle untouched throughout. */
	for (int lap = 0; lap < 200; lap++) {
		put(sq, next_sq++, (uint32_t)(lap * 7 % 200));
		tier_prod_publish(sq);
		while (got_sq < next_sq)
			cr_assert_eq(get(sqc), got_sq++);
		tier_cons_release(sqc);
		put(cq, next_cq++, (uint32_t)(lap * 13 % 200));
		tier_prod_publish(cq);
		while (got_cq < next_cq)
			cr_assert_eq(get(cqc), got_cq++, "lap %d", lap);
		tier_cons_release(cqc);
	}
	cr_expect_eq(tier_cons_peek(sqc, &m), 0);
	cr_expect_eq(tier_cons_peek(cqc, &m), 0);
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
}

Test(ring_adopt, should_keep_the_doorbell_and_the_wake_count)
{
	struct pair p = make_pair(4096, 256);
	struct tier_prod *sq = tier_shm_prod(p.sup);
	struct tier_cons *sqc = tier_shm_cons(p.agent);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	uint32_t bell;
	uint64_t wakes, n;

	tier_prod_set_eventfd(sq, efd);
	cr_assert_eq(tier_cons_prepare_sleep(sqc, TIER_SLEEP_EVENTFD, &bell), 0);
	put(sq, 1, 8);
	cr_assert_eq(tier_prod_publish(sq), 1, "one wake before");
	cr_assert_eq(read(efd, &n, sizeof(n)), (ssize_t)sizeof(n));
	tier_cons_awake(sqc);
	wakes = tier_prod_wakes(sq);

	/* the agent goes to sleep during the pause */
	get(sqc);
	tier_cons_release(sqc);
	cr_assert_eq(tier_cons_prepare_sleep(sqc, TIER_SLEEP_EVENTFD, &bell), 0);
	p.sup = hand_over(p.sup);
	sq = tier_shm_prod(p.sup);
	cr_expect_eq(tier_prod_wakes(sq), wakes);
	put(sq, 2, 8);
	cr_expect_eq(tier_prod_publish(sq), 1, "the adopted producer wakes the sleeper");
	cr_expect_eq(poll(&pfd, 1, 0), 1, "through the same eventfd");
	cr_expect_eq(tier_prod_wakes(sq), wakes + 1);
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
	close(efd);
}

Test(ring_adopt, should_keep_a_sticky_error)
{
	struct pair p = make_pair(4096, 256);
	struct tier_prod *sq = tier_shm_prod(p.sup);
	uint8_t *base = mmap(NULL, tier_shm_size(p.agent), PROT_READ | PROT_WRITE, MAP_SHARED,
			     tier_shm_fd(p.agent), 0);
	struct tier_ring_ctl *ctl = (struct tier_ring_ctl *)(base + TIER_SHM_SQ_CTL);
	int err;

	cr_assert(base != MAP_FAILED);
	put(sq, 1, 8);
	ctl->head = 1u << 20;	/* a hostile agent: head past anything published */
	err = tier_prod_publish(sq);
	cr_assert_eq(err, -TIER_E_HEAD_PAST);
	ctl->head = 0;
	p.sup = hand_over(p.sup);
	cr_expect_eq(tier_prod_publish(tier_shm_prod(p.sup)), err, "still broken after adoption");
	munmap(base, tier_shm_size(p.agent));
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
}

Test(ring_adopt, should_refuse_to_save_with_a_reservation_outstanding)
{
	struct pair p = make_pair(4096, 256);
	struct tier_shm_owner_state st;
	void *payload;

	cr_assert_eq(tier_prod_reserve(tier_shm_prod(p.sup), 32, &payload), 0);
	cr_expect_eq(tier_shm_owner_state(p.sup, &st), -EBUSY);
	tier_prod_abort(tier_shm_prod(p.sup));
	cr_expect_eq(tier_shm_owner_state(p.sup, &st), 0);
	cr_expect_eq(tier_shm_owner_state(p.agent, &st), -EINVAL, "only the creator saves");
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
}

Test(ring_adopt, should_refuse_a_header_the_agent_changed)
{
	static const size_t fields[] = {
		offsetof(struct tier_shm_hdr, magic), offsetof(struct tier_shm_hdr, total_size),
		offsetof(struct tier_shm_hdr, sq_offset), offsetof(struct tier_shm_hdr, cq_capacity),
		offsetof(struct tier_shm_hdr, max_record), offsetof(struct tier_shm_hdr, flags),
	};
	struct pair p = make_pair(4096, 256);
	struct tier_shm_owner_state st;
	uint8_t *base = mmap(NULL, tier_shm_size(p.agent), PROT_READ | PROT_WRITE, MAP_SHARED,
			     tier_shm_fd(p.agent), 0);
	int fd = tier_shm_fd(p.sup);

	cr_assert(base != MAP_FAILED);
	cr_assert_eq(tier_shm_owner_state(p.sup, &st), 0);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		base[fields[i]] ^= 0x10;
		errno = 0;
		cr_expect_null(tier_shm_adopt(fd, &st), "header byte %zu changed, adopted", fields[i]);
		cr_expect_eq(errno, TIER_E_GEOMETRY, "field at %zu: %s", fields[i], tier_strerror(errno));
		base[fields[i]] ^= 0x10;
	}
	cr_expect_geq(fcntl(fd, F_GETFD), 0, "a refused adoption leaves the fd open");
	munmap(base, tier_shm_size(p.agent));
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
}

Test(ring_adopt, should_refuse_a_state_that_does_not_hold_together)
{
	struct pair p = make_pair(4096, 256);
	struct tier_shm_owner_state st, bad;
	int fd = tier_shm_fd(p.sup), other;
	struct tier_shm *small;
	struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = 1024, .cq_capacity = 1024 };

	put(tier_shm_prod(p.sup), 1, 8);
	cr_assert_eq(tier_shm_owner_state(p.sup, &st), 0);
	bad = st;
	bad.sq_published = bad.sq_tail + 8;
	errno = 0;
	cr_expect_null(tier_shm_adopt(fd, &bad));
	cr_expect_eq(errno, EINVAL, "published past written");
	bad = st;
	bad.cq_head = 3;
	cr_expect_null(tier_shm_adopt(fd, &bad));
	cr_expect_eq(errno, EINVAL, "misaligned");
	bad = st;
	bad.sq_capacity = 3000;
	cr_expect_null(tier_shm_adopt(fd, &bad));
	cr_expect_eq(errno, EINVAL, "not a power of two");
	/* another ring's memfd for this state */
	small = tier_shm_create(&o);
	cr_assert_not_null(small);
	other = tier_shm_fd(small);
	cr_expect_null(tier_shm_adopt(other, &st));
	cr_expect(errno == TIER_E_TOOSMALL || errno == TIER_E_GEOMETRY, "%s", tier_strerror(errno));
	/* not a memfd at all */
	cr_expect_null(tier_shm_adopt(STDIN_FILENO, &st));
	tier_shm_free(small);
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
}

/* The old handle freed as across execve: memory gone, the memfd still open
 * under its number (freeing closes it; the same open file is put back). */
static void forget(struct tier_shm *old)
{
	int fd = tier_shm_fd(old), keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	cr_assert_geq(keep, 0);
	tier_shm_free(old);
	cr_assert_eq(dup2(keep, fd), fd);
	close(keep);
}

Test(ring_adopt, should_cross_in_a_handover_state)
{
	struct pair p = make_pair(4096, 256);
	struct tier_prod *sq = tier_shm_prod(p.sup);
	struct tier_shm_owner_state st;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), memfd = tier_shm_fd(p.sup), fd, state;
	uint64_t tail, wakes;
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	char err[256];

	tier_prod_set_eventfd(sq, efd);
	put(sq, 1, 64);
	put(sq, 2, 64);
	tier_prod_publish(sq);
	cr_assert_eq(get(tier_shm_cons(p.agent)), 1);
	tail = tier_prod_tail(sq);
	wakes = tier_prod_wakes(sq);
	sup_ho_w_begin(w, SUP_HO_TAG_AGENTS, 1);
	cr_assert_eq(sup_ho_w_ring(w, p.sup), 0);
	sup_ho_w_end(w);
	state = sup_ho_w_finish(w, err, sizeof(err));
	cr_assert_geq(state, 0, "%s", err);
	sup_ho_w_free(w);
	forget(p.sup);

	r = sup_ho_r_open(state, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert(sup_ho_r_section(r, SUP_HO_TAG_AGENTS, NULL));
	cr_assert(sup_ho_r_ring(r, &fd, &st), "%s", sup_ho_r_error(r));
	cr_expect_eq(fd, memfd);
	cr_expect_eq(st.sq_efd, efd);
	p.sup = tier_shm_adopt(fd, &st);
	cr_assert_not_null(p.sup, "adopt: %s", tier_strerror(errno));
	sup_ho_r_commit(r);
	sup_ho_r_free(r);
	cr_expect_eq(tier_prod_tail(tier_shm_prod(p.sup)), tail);
	cr_expect_eq(tier_prod_wakes(tier_shm_prod(p.sup)), wakes);
	cr_expect_eq(get(tier_shm_cons(p.agent)), 2, "the agent reads on");
	tier_shm_free(p.agent);
	tier_shm_free(p.sup);
	close(efd);
}
