/* SPDX-License-Identifier: MIT */
/* The io_uring event loop: operations, timers (a heap), deferred work. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "loop.h"

/* Opcodes newer than liburing 2.3's headers; numbers are kernel ABI. */
#define SUP_OP_WAITID     50
#define SUP_OP_FUTEX_WAIT 51

#define DEFER_ROUNDS 4
#define MAX_SKIPPED  8

struct sup_loop {
	struct io_uring          ring;
	struct sup_loop_features feat;
	int64_t                  now;
	struct sup_timer       **heap;
	uint32_t                 heap_len, heap_cap;
	struct sup_defer        *defer_head, **defer_tail;
	uint64_t                 inflight;   /* operations not yet completed */
	unsigned                 skipped;    /* busy turns without entering the kernel */
	struct sup_idle_hook     idle;
	bool                     stop;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int read_int_file(const char *path, long *ret)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%ld", ret) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

static bool seccomp_filtered(void)
{
	char line[128];
	bool on = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Seccomp:", 8))
			on = atoi(line + 8) == 2;
	fclose(f);
	return on;
}

static void explain_failure(int err, char *why, size_t len)
{
	long disabled = 0;

	if (read_int_file("/proc/sys/kernel/io_uring_disabled", &disabled) == 0 && disabled) {
		snprintf(why, len, "io_uring is disabled by sysctl kernel.io_uring_disabled=%ld%s",
			 disabled, disabled == 1 ? " (only members of kernel.io_uring_group may use it)" : "");
		return;
	}
	if (seccomp_filtered()) {
		snprintf(why, len, "io_uring_setup failed (%s) and a seccomp filter is active: "
			 "the filter probably refuses io_uring", strerror(err));
		return;
	}
	if (err == ENOSYS) {
		snprintf(why, len, "this kernel has no io_uring (io_uring_setup: ENOSYS)");
		return;
	}
	if (err == ENOMEM) {
		snprintf(why, len, "io_uring_setup: out of locked memory (raise RLIMIT_MEMLOCK)");
		return;
	}
	snprintf(why, len, "io_uring_setup failed: %s", strerror(err));
}

static void probe(struct sup_loop *l, unsigned features)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&l->ring);
	struct utsname u;
	int maj = 0, min = 0;

	if (uname(&u) == 0)
		sscanf(u.release, "%d.%d", &maj, &min);
	l->feat.ext_arg = features & IORING_FEAT_EXT_ARG;
	/* Multishot poll is 5.13, multishot accept 5.19: version is the only
	 * probe (they are flags, not opcodes). */
	l->feat.poll_multishot = maj > 5 || (maj == 5 && min >= 13);
	l->feat.accept_multishot = maj > 5 || (maj == 5 && min >= 19);
	l->feat.timeout_multishot = maj > 6 || (maj == 6 && min >= 4);
	if (p) {
		l->feat.op_futex_wait = io_uring_opcode_supported(p, SUP_OP_FUTEX_WAIT);
		l->feat.op_waitid = io_uring_opcode_supported(p, SUP_OP_WAITID);
		l->feat.op_send_zc = io_uring_opcode_supported(p, IORING_OP_SEND_ZC);
		io_uring_free_probe(p);
	}
}

struct sup_loop *sup_loop_new(unsigned entries, char *why, size_t why_len)
{
	/* Fastest first: completions run only when we enter (6.1), then
	 * cooperative task work (5.19), then plain. */
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct sup_loop *l = calloc(1, sizeof(*l));
	int r = -EINVAL;

	if (!l) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p = { .flags = flag_sets[i] };

		r = io_uring_queue_init_params(entries, &l->ring, &p);
		if (r == 0) {
			probe(l, p.features);
			break;
		}
		if (r != -EINVAL)
			break;
	}
	if (r < 0) {
		explain_failure(-r, why, why_len);
		free(l);
		errno = -r;
		return NULL;
	}
	if (!l->feat.poll_multishot || !l->feat.ext_arg) {
		snprintf(why, why_len, "io_uring on this kernel lacks multishot poll or EXT_ARG "
			 "(need Linux 5.13 or later)");
		io_uring_queue_exit(&l->ring);
		free(l);
		errno = EOPNOTSUPP;
		return NULL;
	}
	l->defer_tail = &l->defer_head;
	l->now = mono_ns();
	return l;
}

void sup_loop_free(struct sup_loop *l)
{
	if (!l)
		return;
	io_uring_queue_exit(&l->ring);
	free(l->heap);
	free(l);
}

const struct sup_loop_features *sup_loop_features(const struct sup_loop *l)
{
	return &l->feat;
}

int64_t sup_loop_time(const struct sup_loop *l)
{
	return l->now;
}

int64_t sup_loop_now(struct sup_loop *l)
{
	l->now = mono_ns();
	return l->now;
}

/* ---- submission -------------------------------------------------------- */

static struct io_uring_sqe *get_sqe(struct sup_loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		/* Full: push what is queued to the kernel and try once more. */
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static void bind_ev(struct sup_loop *l, struct io_uring_sqe *sqe, struct sup_ev *ev)
{
	io_uring_sqe_set_data(sqe, ev);
	ev->inflight++;
	l->inflight++;
}

int sup_loop_poll(struct sup_loop *l, struct sup_ev *ev, int fd, uint32_t events, bool multishot)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	if (multishot)
		io_uring_prep_poll_multishot(sqe, fd, events);
	else
		io_uring_prep_poll_add(sqe, fd, events);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_read(struct sup_loop *l, struct sup_ev *ev, int fd, void *buf, unsigned len, uint64_t off)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, fd, buf, len, off);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_write(struct sup_loop *l, struct sup_ev *ev, int fd, const void *buf, unsigned len,
		   uint64_t off)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_write(sqe, fd, buf, len, off);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_accept(struct sup_loop *l, struct sup_ev *ev, int fd, bool multishot)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	if (multishot && l->feat.accept_multishot)
		io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	else
		io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_send(struct sup_loop *l, struct sup_ev *ev, int fd, const void *buf, unsigned len)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_recv(struct sup_loop *l, struct sup_ev *ev, int fd, void *buf, unsigned len)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, fd, buf, len, 0);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_fsync(struct sup_loop *l, struct sup_ev *ev, int fd, bool datasync)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
	bind_ev(l, sqe, ev);
	return 0;
}

int sup_loop_cancel(struct sup_loop *l, struct sup_ev *ev)
{
	struct io_uring_sqe *sqe;

	if (!ev->inflight)
		return 0;
	sqe = get_sqe(l);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, ev, IORING_ASYNC_CANCEL_ALL);
	/* user_data 0: the cancel's own completion is not dispatched. */
	io_uring_sqe_set_data64(sqe, 0);
	return 0;
}

/* ---- timers: a binary min-heap on deadline ----------------------------- */

static void heap_set(struct sup_loop *l, uint32_t i, struct sup_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct sup_loop *l, uint32_t i)
{
	struct sup_timer *t = l->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (l->heap[parent]->deadline <= t->deadline)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct sup_loop *l, uint32_t i)
{
	struct sup_timer *t = l->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && l->heap[c + 1]->deadline < l->heap[c]->deadline)
			c++;
		if (t->deadline <= l->heap[c]->deadline)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void sup_timer_init(struct sup_timer *t, sup_timer_cb cb, void *data)
{
	t->cb = cb;
	t->data = data;
	t->deadline = 0;
	t->slot = 0;
}

void sup_timer_disarm(struct sup_loop *l, struct sup_timer *t)
{
	uint32_t i;
	struct sup_timer *last;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = l->heap[--l->heap_len];
	if (i == l->heap_len)
		return;
	heap_set(l, i, last);
	heap_up(l, i);
	heap_down(l, last->slot - 1);
}

void sup_timer_arm(struct sup_loop *l, struct sup_timer *t, int64_t deadline)
{
	sup_timer_disarm(l, t);
	if (l->heap_len == l->heap_cap) {
		uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct sup_timer **h = realloc(l->heap, cap * sizeof(*h));

		/* Out of memory for a timer would silently lose a deadline; a
		 * supervisor cannot continue safely. */
		if (!h)
			abort();
		l->heap = h;
		l->heap_cap = cap;
	}
	t->deadline = deadline;
	heap_set(l, l->heap_len++, t);
	heap_up(l, l->heap_len - 1);
}

void sup_timer_arm_in(struct sup_loop *l, struct sup_timer *t, int64_t delay_ns)
{
	sup_timer_arm(l, t, sup_loop_now(l) + delay_ns);
}

static void run_timers(struct sup_loop *l)
{
	while (l->heap_len && l->heap[0]->deadline <= l->now) {
		struct sup_timer *t = l->heap[0];

		sup_timer_disarm(l, t);
		t->cb(l, t);
	}
}

/* ---- deferred work ----------------------------------------------------- */

void sup_defer_init(struct sup_defer *d, sup_defer_cb cb, void *data)
{
	d->cb = cb;
	d->data = data;
	d->next = NULL;
	d->queued = false;
}

void sup_defer_queue(struct sup_loop *l, struct sup_defer *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = NULL;
	*l->defer_tail = d;
	l->defer_tail = &d->next;
}

static void run_defers(struct sup_loop *l)
{
	/* Take the list: work queued while running goes to the next turn, so
	 * a ring that keeps refilling cannot starve the completion queue. */
	struct sup_defer *d = l->defer_head;

	l->defer_head = NULL;
	l->defer_tail = &l->defer_head;
	while (d) {
		struct sup_defer *next = d->next;

		d->queued = false;
		d->cb(l, d);
		d = next;
	}
}

/* ---- the turn ---------------------------------------------------------- */

static void dispatch(struct sup_loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		struct sup_ev *ev = io_uring_cqe_get_data(cqe);
		bool more = cqe->flags & IORING_CQE_F_MORE;

		n++;
		if (!ev)
			continue;
		if (!more) {
			ev->inflight--;
			l->inflight--;
		}
		ev->cb(l, ev, cqe->res, more);
	}
	io_uring_cq_advance(&l->ring, n);
}

void sup_loop_set_idle_hook(struct sup_loop *l, const struct sup_idle_hook *h)
{
	if (h)
		l->idle = *h;
	else
		memset(&l->idle, 0, sizeof(l->idle));
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* True if the turn may block: nothing arrived while spinning. */
static bool idle_wait(struct sup_loop *l, int64_t until)
{
	if (l->idle.spin && l->idle.spin_ns > 0) {
		int64_t end = mono_ns() + l->idle.spin_ns;

		if (end > until)
			end = until;
		for (;;) {
			int r = l->idle.spin(l->idle.arg);

			if (r > 0)
				return false;
			if (r < 0)
				break;
			/* io_uring completions (without DEFER_TASKRUN they show
			 * up in the ring without entering the kernel). */
			if (io_uring_cq_ready(&l->ring))
				return false;
			for (int i = 0; i < 16; i++)
				cpu_relax();
			if (mono_ns() >= end)
				break;
		}
	}
	if (l->idle.before_sleep && l->idle.before_sleep(l->idle.arg) > 0)
		return false;
	return true;
}

int sup_loop_turn(struct sup_loop *l)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;
	bool busy;
	int r;

	l->now = mono_ns();
	run_timers(l);
	/* A few rounds: a result queues a refill, which queues a publish; each
	 * round is a list taken whole, so a ring that keeps refilling still
	 * yields to the completion queue below. */
	for (int round = 0; round < DEFER_ROUNDS && l->defer_head; round++)
		run_defers(l);
	if (l->stop)
		return 0;
	busy = l->defer_head != NULL;
	if (!busy && !idle_wait(l, l->heap_len ? l->heap[0]->deadline : INT64_MAX)) {
		for (int round = 0; round < DEFER_ROUNDS && l->defer_head; round++)
			run_defers(l);
		busy = true;
	}
	/* Busy and nothing to submit: go round again without entering the
	 * kernel, but never more than MAX_SKIPPED turns in a row, so sockets,
	 * signals and exits (which complete only when we enter, with
	 * DEFER_TASKRUN) are never held back for long. */
	if (busy && !io_uring_sq_ready(&l->ring) && l->skipped < MAX_SKIPPED) {
		l->skipped++;
		return 0;
	}
	l->skipped = 0;
	if (busy) {
		/* Submit and collect what is ready, without waiting: a zero
		 * timeout wait would arm a timer and may schedule. */
		r = io_uring_submit_and_get_events(&l->ring);
	} else {
		if (l->heap_len) {
			int64_t wait = l->heap[0]->deadline - mono_ns();

			if (wait < 0)
				wait = 0;
			ts.tv_sec = wait / 1000000000;
			ts.tv_nsec = wait % 1000000000;
			tsp = &ts;
		}
		r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tsp, NULL);
	}
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		return r;
	l->now = mono_ns();
	dispatch(l);
	return 0;
}

int sup_loop_run(struct sup_loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int r = sup_loop_turn(l);

		if (r < 0)
			return r;
	}
	return 0;
}

int sup_loop_drain(struct sup_loop *l, int timeout_ms)
{
	int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;

	while (l->inflight && mono_ns() < end) {
		struct __kernel_timespec ts = { 0, 10 * 1000 * 1000 };
		struct io_uring_cqe *cqe;

		io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
		dispatch(l);
	}
	return l->inflight ? -ETIMEDOUT : 0;
}

uint64_t sup_loop_inflight(const struct sup_loop *l)
{
	return l->inflight;
}

void sup_loop_stop(struct sup_loop *l)
{
	l->stop = true;
}
