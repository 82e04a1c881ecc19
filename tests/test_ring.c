/* SPDX-License-Identifier: MIT */
/* Ring library: geometry, records, wrap, batches, doorbells, corruption. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tier/ring.h"

/* Direct access to the shared layout, to play a broken peer. */
struct view {
	uint8_t *base;
	struct tier_shm_hdr *hdr;
	struct tier_ring_ctl *sq, *cq;
	uint8_t *sq_data, *cq_data;
};

static struct view view_of(struct tier_shm *shm)
{
	struct view v;

	v.base = mmap(NULL, tier_shm_size(shm), PROT_READ | PROT_WRITE, MAP_SHARED,
		      tier_shm_fd(shm), 0);
	cr_assert(v.base != MAP_FAILED);
	v.hdr = (struct tier_shm_hdr *)v.base;
	v.sq = (struct tier_ring_ctl *)(v.base + TIER_SHM_SQ_CTL);
	v.cq = (struct tier_ring_ctl *)(v.base + TIER_SHM_CQ_CTL);
	v.sq_data = v.base + v.hdr->sq_offset;
	v.cq_data = v.base + v.hdr->cq_offset;
	return v;
}

/* A creator (tierd's side) and an attacher (agent's side) of one memfd. */
struct pair {
	struct tier_shm *sup, *agent;
	struct tier_prod *sq;   /* sup produces tasks */
	struct tier_cons *sqc;  /* agent consumes them */
	struct tier_prod *cq;   /* agent produces results */
	struct tier_cons *cqc;  /* sup consumes them */
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
	p.sq = tier_shm_prod(p.sup);
	p.cqc = tier_shm_cons(p.sup);
	p.cq = tier_shm_prod(p.agent);
	p.sqc = tier_shm_cons(p.agent);
	return p;
}

static void free_pair(struct pair *p)
{
	tier_shm_free(p->agent);
	tier_shm_free(p->sup);
}

Test(ring, should_report_empty_on_a_new_ring)
{
	struct pair p = make_pair(4096, 256);
	struct tier_msg m;

	cr_assert_eq(tier_cons_peek(p.sqc, &m), 0);
	cr_assert_eq(tier_cons_peek(p.cqc, &m), 0);
	cr_assert_eq(tier_cons_pending(p.sqc), 0);
	free_pair(&p);
}

Test(ring, should_deliver_one_record_with_its_header)
{
	struct pair p = make_pair(4096, 256);
	struct tier_msg m;
	char buf[64];

	cr_assert_eq(tier_prod_write(p.sq, 42, 7, 0x1122334455667788ull, "hello", 5), 0);
	cr_assert_eq(tier_cons_peek(p.sqc, &m), 0, "not visible before publish");
	cr_assert_eq(tier_prod_publish(p.sq), 0);
	cr_assert_eq(tier_cons_read(p.sqc, &m, buf, sizeof(buf)), 1);
	cr_assert_eq(m.type, 42);
	cr_assert_eq(m.flags, 7);
	cr_assert_eq(m.task_id, 0x1122334455667788ull);
	cr_assert_eq(m.len, 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(tier_cons_peek(p.sqc, &m), 0);
	free_pair(&p);
}

Test(ring, should_refuse_when_full_and_accept_after_release)
{
	struct pair p = make_pair(1024, 128);
	struct tier_msg m;
	char payload[48] = { 0 };
	int n = 0;

	/* 16 + 48 = 64 bytes a record: exactly 16 fit in 1024. */
	while (tier_prod_write(p.sq, 1, 0, (uint64_t)n, payload, sizeof(payload)) == 0)
		n++;
	cr_assert_eq(n, 16);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 99, payload, sizeof(payload)), -EAGAIN);
	tier_prod_publish(p.sq);
	cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
	tier_cons_advance(p.sqc);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 99, payload, sizeof(payload)), -EAGAIN,
		     "space is only returned by release");
	tier_cons_release(p.sqc);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 99, payload, sizeof(payload)), 0);
	free_pair(&p);
}

Test(ring, should_wrap_with_a_padding_record)
{
	struct pair p = make_pair(1024, 512);
	struct tier_msg m;
	char in[400], out[512];
	uint64_t id;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)i;
	/* 416-byte records: two fit, the third needs a pad of 192 bytes. */
	for (id = 0; id < 50; id++) {
		cr_assert_eq(tier_prod_write(p.sq, 3, 0, id, in, sizeof(in)), 0, "write %lu", id);
		tier_prod_publish(p.sq);
		cr_assert_eq(tier_cons_read(p.sqc, &m, out, sizeof(out)), 1);
		cr_assert_eq(m.task_id, id);
		cr_assert_eq(m.len, sizeof(in));
		cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
		tier_cons_release(p.sqc);
	}
	free_pair(&p);
}

Test(ring, should_use_an_eight_byte_pad_at_the_very_end)
{
	struct pair p = make_pair(1024, 512);
	struct tier_msg m;
	struct view v = view_of(p.sup);
	char out[512];

	/* 1016 bytes of records leave exactly 8 before the wrap. */
	cr_assert_eq(tier_prod_write(p.sq, 3, 0, 1, out, 504 - 16), 0);
	cr_assert_eq(tier_prod_write(p.sq, 3, 0, 2, out, 512 - 16), 0);
	tier_prod_publish(p.sq);
	cr_assert_eq(tier_cons_read(p.sqc, &m, out, sizeof(out)), 1);
	cr_assert_eq(tier_cons_read(p.sqc, &m, out, sizeof(out)), 1);
	tier_cons_release(p.sqc);
	cr_assert_eq(tier_prod_write(p.sq, 3, 0, 3, out, 32), 0);
	tier_prod_publish(p.sq);
	cr_assert_eq(((struct tier_rec_hdr *)(v.sq_data + 1016))->len, 8);
	cr_assert_eq(tier_cons_read(p.sqc, &m, out, sizeof(out)), 1);
	cr_assert_eq(m.task_id, 3);
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

Test(ring, should_accept_the_max_record_and_refuse_one_byte_more)
{
	struct pair p = make_pair(4096, 1024);
	static char big[2048];
	struct tier_msg m;
	uint32_t maxp = tier_shm_max_payload(p.sup);

	cr_assert_eq(maxp, 1024 - 16);
	cr_assert_eq(tier_prod_write(p.sq, 5, 0, 1, big, maxp + 1), -EMSGSIZE);
	cr_assert_eq(tier_prod_write(p.sq, 5, 0, 1, big, maxp), 0);
	tier_prod_publish(p.sq);
	cr_assert_eq(tier_cons_read(p.sqc, &m, big, sizeof(big)), 1);
	cr_assert_eq(m.len, maxp);
	free_pair(&p);
}

Test(ring, should_make_a_batch_visible_with_one_publish)
{
	struct pair p = make_pair(4096, 256);
	struct view v = view_of(p.sup);
	struct tier_msg m;
	void *dst;

	for (uint64_t i = 0; i < 10; i++) {
		cr_assert_eq(tier_prod_reserve(p.sq, 100, &dst), 0);
		cr_assert_eq(tier_prod_reserve(p.sq, 100, &dst), -EBUSY);
		memset(dst, (int)i, 10);
		cr_assert_eq(tier_prod_commit(p.sq, 9, 0, i, 10), 0);
	}
	cr_assert_eq(v.sq->tail, 0, "nothing published during the batch");
	cr_assert_eq(tier_cons_peek(p.sqc, &m), 0);
	tier_prod_publish(p.sq);
	cr_assert_eq(v.sq->tail, 10 * 32);
	for (uint64_t i = 0; i < 10; i++) {
		cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
		cr_assert_eq(m.task_id, i);
		cr_assert_eq(((const uint8_t *)m.payload)[9], (uint8_t)i);
		tier_cons_advance(p.sqc);
	}
	cr_assert_eq(v.sq->head, 0, "head published only by release");
	tier_cons_release(p.sqc);
	cr_assert_eq(v.sq->head, 10 * 32);
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

Test(ring, should_commit_less_than_reserved)
{
	struct pair p = make_pair(4096, 512);
	struct tier_msg m;
	void *dst;

	cr_assert_eq(tier_prod_reserve(p.sq, 400, &dst), 0);
	cr_assert_eq(tier_prod_commit(p.sq, 2, 0, 1, 401), -EINVAL);
	cr_assert_eq(tier_prod_commit(p.sq, TIER_REC_PAD, 0, 1, 3), -EINVAL);
	memcpy(dst, "abc", 3);
	cr_assert_eq(tier_prod_commit(p.sq, 2, 0, 1, 3), 0);
	cr_assert_eq(tier_prod_commit(p.sq, 2, 0, 1, 3), -EINVAL, "no reservation left");
	tier_prod_publish(p.sq);
	cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
	cr_assert_eq(m.len, 3);
	free_pair(&p);
}

Test(ring, should_not_wake_a_spinning_consumer)
{
	struct pair p = make_pair(4096, 256);
	struct tier_msg m;

	/* Consumer never declared itself asleep: a thousand publishes, no wake. */
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(tier_prod_write(p.sq, 1, 0, (uint64_t)i, "x", 1), 0);
		cr_assert_eq(tier_prod_publish(p.sq), 0);
		cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
		tier_cons_advance(p.sqc);
		tier_cons_release(p.sqc);
	}
	cr_assert_eq(tier_prod_wakes(p.sq), 0);
	free_pair(&p);
}

Test(ring, should_wake_a_sleeping_consumer_once_per_sleep)
{
	struct pair p = make_pair(4096, 256);
	uint32_t bell;

	cr_assert_eq(tier_cons_prepare_sleep(p.sqc, TIER_SLEEP_FUTEX, &bell), 0);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(tier_prod_write(p.sq, 1, 0, (uint64_t)i, "x", 1), 0);
		cr_assert_eq(tier_prod_publish(p.sq), i == 0 ? 1 : 0);
	}
	cr_assert_eq(tier_prod_wakes(p.sq), 1);
	/* The bell moved, so a FUTEX_WAIT on the old value cannot sleep. */
	cr_assert_eq(tier_cons_wait(p.sqc, 0, 0), 1);
	free_pair(&p);
}

Test(ring, should_not_sleep_when_a_record_raced_in)
{
	struct pair p = make_pair(4096, 256);
	uint32_t bell;

	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 1, "x", 1), 0);
	tier_prod_publish(p.sq);
	cr_assert_eq(tier_cons_prepare_sleep(p.sqc, TIER_SLEEP_FUTEX, &bell), 1);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 2, "x", 1), 0);
	cr_assert_eq(tier_prod_publish(p.sq), 0, "flag was cleared by the recheck");
	free_pair(&p);
}

Test(ring, should_ring_the_eventfd_for_an_eventfd_sleeper)
{
	struct pair p = make_pair(4096, 256);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t v = 0;

	cr_assert_geq(efd, 0);
	tier_prod_set_eventfd(p.cq, efd);
	cr_assert_eq(tier_cons_prepare_sleep(p.cqc, TIER_SLEEP_EVENTFD, NULL), 0);
	cr_assert_eq(read(efd, &v, sizeof(v)), -1, "no wake before a publish");
	cr_assert_eq(tier_prod_write(p.cq, 1, 0, 1, "r", 1), 0);
	cr_assert_eq(tier_prod_publish(p.cq), 1);
	cr_assert_eq(read(efd, &v, sizeof(v)), 8);
	cr_assert_eq(v, 1);
	tier_cons_awake(p.cqc);
	close(efd);
	free_pair(&p);
}

Test(ring, should_time_out_waiting_on_an_empty_ring)
{
	struct pair p = make_pair(4096, 256);

	cr_assert_eq(tier_cons_wait(p.sqc, 1000, 2 * 1000 * 1000), 0);
	free_pair(&p);
}

/* ---- cross-process over a real memfd ---------------------------------- */

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

Test(ring, should_carry_a_million_records_across_processes_in_order)
{
	struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = 8192, .cq_capacity = 8192 };
	struct tier_shm *sup = tier_shm_create(&o);
	const uint64_t n = 1000000;
	pid_t pid;
	int st;

	cr_assert_not_null(sup);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Child: attach, consume tasks, echo a checksum per task. */
		struct tier_shm *a = tier_shm_attach(tier_shm_fd(sup));
		struct tier_msg m;
		uint64_t expect = 0;

		if (!a)
			_exit(10);
		pin(1);
		while (expect < n) {
			int r = tier_cons_wait(tier_shm_cons(a), 20000, 5000000000LL);

			if (r <= 0)
				_exit(11);
			while (tier_cons_peek(tier_shm_cons(a), &m) == 1) {
				uint64_t sum = 0;

				if (m.task_id != expect || m.len != (expect % 61))
					_exit(12);
				for (uint32_t i = 0; i < m.len; i++)
					sum += ((const uint8_t *)m.payload)[i];
				tier_cons_advance(tier_shm_cons(a));
				while (tier_prod_write(tier_shm_prod(a), 2, 0, expect, &sum, 8) == -EAGAIN)
					tier_prod_publish(tier_shm_prod(a));
				expect++;
			}
			tier_cons_release(tier_shm_cons(a));
			tier_prod_publish(tier_shm_prod(a));
		}
		_exit(0);
	}
	pin(0);
	uint64_t sent = 0, got = 0;
	uint8_t buf[64];
	while (got < n) {
		struct tier_msg m;
		uint64_t sum;

		while (sent < n && sent - got < 512) {
			uint32_t len = (uint32_t)(sent % 61);

			for (uint32_t i = 0; i < len; i++)
				buf[i] = (uint8_t)(sent + i);
			if (tier_prod_write(tier_shm_prod(sup), 1, 0, sent, buf, len) != 0)
				break;
			sent++;
		}
		tier_prod_publish(tier_shm_prod(sup));
		int r = tier_cons_wait(tier_shm_cons(sup), 20000, 5000000000LL);
		cr_assert_eq(r, 1, "result wait: %s", tier_strerror(r));
		while (tier_cons_read(tier_shm_cons(sup), &m, &sum, sizeof(sum)) == 1) {
			uint64_t want = 0;

			cr_assert_eq(m.task_id, got);
			for (uint32_t i = 0; i < got % 61; i++)
				want += (uint8_t)(got + i);
			cr_assert_eq(sum, want);
			got++;
		}
		tier_cons_release(tier_shm_cons(sup));
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	tier_shm_free(sup);
}

/* ---- attach validation -------------------------------------------------- */

static int memfd_with(const void *hdr, size_t hdr_len, size_t size, unsigned seals)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (hdr_len)
		cr_assert_eq(pwrite(fd, hdr, hdr_len, 0), (ssize_t)hdr_len);
	if (seals)
		cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static struct tier_shm_hdr good_hdr(void)
{
	struct tier_shm_hdr h = {
		.magic = TIER_SHM_MAGIC, .version = TIER_SHM_VERSION, .hdr_size = TIER_SHM_LINE,
		.sq_offset = 4096, .sq_capacity = 4096, .cq_offset = 8192, .cq_capacity = 4096,
		.max_record = 1024, .total_size = 12288,
	};
	return h;
}

#define ALL_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void expect_attach_error(int fd, int err)
{
	errno = 0;
	cr_assert_null(tier_shm_attach(fd));
	cr_assert_eq(errno, err, "errno %d (%s), want %d (%s)", errno, tier_strerror(errno),
		     err, tier_strerror(err));
	close(fd);
}

Test(attach, should_accept_a_well_formed_memfd)
{
	struct tier_shm_hdr h = good_hdr();
	int fd = memfd_with(&h, sizeof(h), 12288, ALL_SEALS);
	struct tier_shm *s = tier_shm_attach(fd);

	cr_assert_not_null(s, "%s", tier_strerror(errno));
	cr_assert_eq(tier_shm_max_record(s), 1024);
	tier_shm_free(s);
	close(fd);
}

Test(attach, should_refuse_an_unsealed_memfd)
{
	struct tier_shm_hdr h = good_hdr();

	expect_attach_error(memfd_with(&h, sizeof(h), 12288, 0), TIER_E_UNSEALED);
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, F_SEAL_SHRINK | F_SEAL_GROW),
			    TIER_E_UNSEALED);
}

Test(attach, should_refuse_a_file_that_is_not_a_memfd)
{
	int fd[2];

	cr_assert_eq(pipe2(fd, O_CLOEXEC), 0);
	expect_attach_error(fd[0], TIER_E_UNSEALED);
	close(fd[1]);
}

Test(attach, should_refuse_a_memfd_smaller_than_its_geometry)
{
	struct tier_shm_hdr h = good_hdr();

	expect_attach_error(memfd_with(&h, sizeof(h), 8192, ALL_SEALS), TIER_E_TOOSMALL);
	expect_attach_error(memfd_with(NULL, 0, 64, ALL_SEALS), TIER_E_TOOSMALL);
}

Test(attach, should_refuse_bad_magic_and_version)
{
	struct tier_shm_hdr h = good_hdr();

	h.magic ^= 1;
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_MAGIC);
	h = good_hdr();
	h.version = 99;
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_VERSION);
}

Test(attach, should_refuse_bad_geometry)
{
	struct tier_shm_hdr h;

	h = good_hdr(); h.sq_capacity = 3000;             /* not a power of two */
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_GEOMETRY);
	h = good_hdr(); h.max_record = 4096;              /* more than half a ring */
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_GEOMETRY);
	h = good_hdr(); h.cq_offset = 6144;               /* overlaps SQ */
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_GEOMETRY);
	h = good_hdr(); h.sq_offset = 0;                  /* over the header */
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_GEOMETRY);
	h = good_hdr(); h.cq_capacity = 1u << 31;         /* past total_size */
	expect_attach_error(memfd_with(&h, sizeof(h), 12288, ALL_SEALS), TIER_E_GEOMETRY);
}

Test(create, should_refuse_invalid_options)
{
	struct tier_shm_opts o = { .sz = sizeof(o), .sq_capacity = 1000 };

	cr_assert_null(tier_shm_create(&o));
	cr_assert_eq(errno, TIER_E_GEOMETRY);
	o = (struct tier_shm_opts){ .sz = sizeof(o), .sq_capacity = 4096, .cq_capacity = 4096,
				    .max_record = 4096 };
	cr_assert_null(tier_shm_create(&o));
	cr_assert_eq(errno, TIER_E_GEOMETRY);
	o.sz = 4;
	cr_assert_null(tier_shm_create(&o));
	cr_assert_eq(errno, EINVAL);
}

Test(create, should_seal_the_memfd_and_set_cloexec)
{
	struct tier_shm *s = tier_shm_create(NULL);
	int seals;

	cr_assert_not_null(s);
	seals = fcntl(tier_shm_fd(s), F_GET_SEALS);
	cr_assert_eq(seals & ALL_SEALS, ALL_SEALS);
	cr_assert(fcntl(tier_shm_fd(s), F_GETFD) & FD_CLOEXEC);
	cr_assert_eq(ftruncate(tier_shm_fd(s), 1 << 20), -1, "grow is sealed");
	cr_assert_eq(ftruncate(tier_shm_fd(s), 4096), -1, "shrink is sealed");
	tier_shm_free(s);
}

/* ---- an untrusted peer -------------------------------------------------- */

/* The agent (peer) corrupts the CQ; tierd's consumer must name the error. */
static void expect_cq_error(void (*corrupt)(struct view *v), int err)
{
	struct pair p = make_pair(4096, 1024);
	struct view v = view_of(p.sup);
	struct tier_msg m;
	int r;

	cr_assert_eq(tier_prod_write(p.cq, 1, 0, 1, "good", 4), 0);
	tier_prod_publish(p.cq);
	corrupt(&v);
	r = tier_cons_peek(p.cqc, &m);
	cr_assert_eq(r, -err, "got %d (%s), want %s", r, tier_strerror(r), tier_strerror(-err));
	cr_assert_eq(tier_cons_peek(p.cqc, &m), -err, "error is sticky");
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

static struct tier_rec_hdr *cq_rec(struct view *v, uint64_t off)
{
	return (struct tier_rec_hdr *)(v->cq_data + off);
}

static void c_tail_behind(struct view *v) { v->cq->tail = (uint64_t)-8; }
static void c_tail_over(struct view *v) { v->cq->tail = 8192; }
static void c_tail_odd(struct view *v) { v->cq->tail = 21; }
static void c_len_big(struct view *v) { cq_rec(v, 0)->len = 2000; }
static void c_len_short(struct view *v) { cq_rec(v, 0)->len = 3; }
static void c_len_past_tail(struct view *v) { cq_rec(v, 0)->len = 200; }
static void c_pad_at_zero(struct view *v) { cq_rec(v, 0)->type = TIER_REC_PAD; }
static void c_rec_wrap(struct view *v)
{
	/* A record at 3968 claiming 256 bytes runs past the end (4096). */
	v->cq->tail = 4096;
	cq_rec(v, 0)->len = 1000;
	cq_rec(v, 1000)->len = 1000; cq_rec(v, 1000)->type = 1;
	cq_rec(v, 2000)->len = 1000; cq_rec(v, 2000)->type = 1;
	cq_rec(v, 3000)->len = 968; cq_rec(v, 3000)->type = 1;
	cq_rec(v, 3968)->len = 256; cq_rec(v, 3968)->type = 1;
}
static void c_pad_short(struct view *v)
{
	v->cq->tail = 4096;
	cq_rec(v, 0)->len = 1000;
	cq_rec(v, 1000)->len = 1000; cq_rec(v, 1000)->type = 1;
	cq_rec(v, 2000)->len = 1000; cq_rec(v, 2000)->type = 1;
	cq_rec(v, 3000)->len = 968; cq_rec(v, 3000)->type = 1;
	cq_rec(v, 3968)->len = 64; cq_rec(v, 3968)->type = TIER_REC_PAD;
}

static void drain_to_3968(struct tier_cons *c)
{
	struct tier_msg m;

	for (int i = 0; i < 4; i++) {
		cr_assert_eq(tier_cons_peek(c, &m), 1);
		tier_cons_advance(c);
	}
}

Test(untrusted, should_report_tail_behind_head) { expect_cq_error(c_tail_behind, TIER_E_TAIL_BEHIND); }
Test(untrusted, should_report_tail_past_capacity) { expect_cq_error(c_tail_over, TIER_E_TAIL_OVERRUN); }
Test(untrusted, should_report_misaligned_tail) { expect_cq_error(c_tail_odd, TIER_E_MISALIGNED); }
Test(untrusted, should_report_record_past_max) { expect_cq_error(c_len_big, TIER_E_REC_SIZE); }
Test(untrusted, should_report_record_shorter_than_header) { expect_cq_error(c_len_short, TIER_E_REC_LEN); }
Test(untrusted, should_report_record_past_published_tail) { expect_cq_error(c_len_past_tail, TIER_E_REC_LEN); }
Test(untrusted, should_report_padding_at_offset_zero) { expect_cq_error(c_pad_at_zero, TIER_E_PADDING); }

Test(untrusted, should_report_record_crossing_the_wrap)
{
	struct pair p = make_pair(4096, 1024);
	struct view v = view_of(p.sup);
	struct tier_msg m;

	c_rec_wrap(&v);
	cq_rec(&v, 0)->type = 1;
	drain_to_3968(p.cqc);
	cr_assert_eq(tier_cons_peek(p.cqc, &m), -TIER_E_REC_WRAP);
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

Test(untrusted, should_report_padding_not_ending_at_the_wrap)
{
	struct pair p = make_pair(4096, 1024);
	struct view v = view_of(p.sup);
	struct tier_msg m;

	c_pad_short(&v);
	cq_rec(&v, 0)->type = 1;
	drain_to_3968(p.cqc);
	cr_assert_eq(tier_cons_peek(p.cqc, &m), -TIER_E_PADDING);
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

/* The agent corrupts the SQ head; tierd's producer must name the error. */
Test(untrusted, should_report_head_past_tail)
{
	struct pair p = make_pair(1024, 128);
	struct view v = view_of(p.sup);
	char pl[48] = { 0 };

	while (tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)) == 0)
		;
	tier_prod_publish(p.sq);
	v.sq->head = 4096;
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), -TIER_E_HEAD_PAST);
	cr_assert_eq(tier_prod_publish(p.sq), -TIER_E_HEAD_PAST, "error is sticky");
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

/* A consumer that corrupts its head while the ring still has room is
 * caught on the producer's next publish, not only once the ring is full. */
Test(untrusted, should_report_a_corrupt_head_on_the_next_publish_with_room_left)
{
	static const uint64_t bad[] = { 0, 1ull << 40, 8 + 3 };
	static const int want[] = { -TIER_E_HEAD_BACK, -TIER_E_HEAD_PAST, -TIER_E_MISALIGNED };

	for (int k = 0; k < 3; k++) {
		struct pair p = make_pair(4096, 128);
		struct view v = view_of(p.sup);
		char pl[48] = { 0 };
		struct tier_msg m;

		cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
		tier_prod_publish(p.sq);
		cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
		tier_cons_advance(p.sqc);
		tier_cons_release(p.sqc);
		cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
		cr_assert_eq(tier_prod_publish(p.sq), 0, "a valid head passes");
		v.sq->head = bad[k];
		cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0, "room left: no look");
		cr_assert_eq(tier_prod_publish(p.sq), want[k], "head %llu", (unsigned long long)bad[k]);
		cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), want[k], "sticky");
		munmap(v.base, tier_shm_size(p.sup));
		free_pair(&p);
	}
}

/* The producer never saw the head move (the consumer read and reset it
 * between two of its looks), but the consumer answered the first record:
 * the floor it was given catches the head put back to 0. */
Test(untrusted, should_report_a_head_below_the_floor_it_never_saw_passed)
{
	struct pair p = make_pair(4096, 128);
	struct view v = view_of(p.sup);
	char pl[48] = { 0 };
	struct tier_msg m;
	uint64_t first_end;

	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
	cr_assert_eq(tier_prod_publish(p.sq), 0);
	first_end = tier_prod_tail(p.sq);
	cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
	tier_cons_advance(p.sqc);
	tier_cons_release(p.sqc);
	v.sq->head = 0;
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
	cr_assert_eq(tier_prod_publish(p.sq), 0, "no floor: a head at 0 looks like a slow consumer");
	tier_prod_head_floor(p.sq, first_end);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
	cr_assert_eq(tier_prod_publish(p.sq), -TIER_E_HEAD_BACK, "below the floor: moved back");
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

/* A floor beyond what was published is not taken: the consumer cannot have
 * read that far, and a forged answer must not make a valid head look bad. */
Test(untrusted, should_ignore_a_floor_beyond_what_was_published)
{
	struct pair p = make_pair(4096, 128);
	char pl[48] = { 0 };

	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
	cr_assert_eq(tier_prod_publish(p.sq), 0);
	tier_prod_head_floor(p.sq, 1u << 20);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0);
	cr_assert_eq(tier_prod_publish(p.sq), 0);
	free_pair(&p);
}

Test(untrusted, should_report_head_moving_backwards)
{
	struct pair p = make_pair(1024, 128);
	struct view v = view_of(p.sup);
	char pl[48] = { 0 };
	struct tier_msg m;

	while (tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)) == 0)
		;
	tier_prod_publish(p.sq);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(tier_cons_peek(p.sqc, &m), 1);
		tier_cons_advance(p.sqc);
	}
	tier_cons_release(p.sqc);
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), 0, "sees the new head");
	while (tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)) == 0)
		;
	v.sq->head = 64;
	cr_assert_eq(tier_prod_write(p.sq, 1, 0, 0, pl, sizeof(pl)), -TIER_E_HEAD_BACK);
	munmap(v.base, tier_shm_size(p.sup));
	free_pair(&p);
}

Test(untrusted, should_name_every_error)
{
	for (int e = TIER_E_BASE + 1; e < TIER_E_MAX; e++) {
		const char *s = tier_strerror(-e);

		cr_assert(strncmp(s, "ring ", 5) == 0, "code %d: %s", e, s);
		for (int f = e + 1; f < TIER_E_MAX; f++)
			cr_assert_str_neq(s, tier_strerror(-f));
	}
	cr_assert_str_eq(tier_strerror(-ENOENT), strerror(ENOENT));
}
