/* SPDX-License-Identifier: MIT */
/*
 * tierd's event loop: one io_uring, one thread.
 *
 * Every operation carries a struct sup_ev the caller embeds in its own
 * object; the completion calls ev->cb. An ev may have several operations in
 * flight (ev->inflight counts them); an object must not be freed while any
 * of its evs has inflight > 0: cancel, then free from the callback that
 * brings inflight to zero (see sup_ev_idle()).
 *
 * Timers are a min-heap inside the loop; the earliest deadline becomes the
 * wait timeout of io_uring_enter, so no timer costs a syscall of its own.
 */
#ifndef SUP_LOOP_H
#define SUP_LOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct sup_loop;
struct sup_ev;

/* res: the CQE's result (bytes, revents, or -errno). more: another CQE
 * will follow for this operation (multishot). */
typedef void (*sup_ev_cb)(struct sup_loop *l, struct sup_ev *ev, int res, bool more);

struct sup_ev {
	sup_ev_cb cb;
	void     *data;
	uint32_t  inflight;
};

static inline void sup_ev_init(struct sup_ev *ev, sup_ev_cb cb, void *data)
{
	ev->cb = cb;
	ev->data = data;
	ev->inflight = 0;
}

static inline bool sup_ev_idle(const struct sup_ev *ev)
{
	return ev->inflight == 0;
}

struct sup_timer;
typedef void (*sup_timer_cb)(struct sup_loop *l, struct sup_timer *t);

struct sup_timer {
	sup_timer_cb cb;
	void        *data;
	int64_t      deadline;   /* CLOCK_MONOTONIC ns */
	uint32_t     slot;       /* heap index + 1; 0 = not armed */
};

/* What the running kernel's io_uring offers (io_uring_get_probe). */
struct sup_loop_features {
	bool poll_multishot;     /* IORING_POLL_ADD_MULTI (5.13) */
	bool accept_multishot;   /* 5.19 */
	bool ext_arg;            /* IORING_FEAT_EXT_ARG: timeout in enter (5.11) */
	bool op_futex_wait;      /* 6.7 */
	bool op_waitid;          /* 6.7 */
	bool timeout_multishot;  /* 6.4 */
	bool op_send_zc;
};

/* Create. On failure returns NULL, sets errno, and writes a sentence that
 * names the cause (io_uring disabled by sysctl, refused by seccomp, …) into
 * why. */
struct sup_loop *sup_loop_new(unsigned entries, char *why, size_t why_len);
void sup_loop_free(struct sup_loop *l);
const struct sup_loop_features *sup_loop_features(const struct sup_loop *l);

/* Monotonic clock, ns, cached at the start of each turn; _now() refreshes. */
int64_t sup_loop_time(const struct sup_loop *l);
int64_t sup_loop_now(struct sup_loop *l);

/* Operations. Return 0 or -errno (-EBUSY: submission queue could not be
 * flushed). Multishot operations fall back to single-shot and are re-armed
 * by the loop transparently when the kernel lacks them; the callback sees
 * more=true until the final CQE either way. */
int sup_loop_poll(struct sup_loop *l, struct sup_ev *ev, int fd, uint32_t events, bool multishot);
int sup_loop_read(struct sup_loop *l, struct sup_ev *ev, int fd, void *buf, unsigned len, uint64_t off);
int sup_loop_write(struct sup_loop *l, struct sup_ev *ev, int fd, const void *buf, unsigned len,
		   uint64_t off);
int sup_loop_accept(struct sup_loop *l, struct sup_ev *ev, int fd, bool multishot);
int sup_loop_send(struct sup_loop *l, struct sup_ev *ev, int fd, const void *buf, unsigned len);
int sup_loop_recv(struct sup_loop *l, struct sup_ev *ev, int fd, void *buf, unsigned len);
/* fsync (or fdatasync when datasync) of fd, run by the kernel's workers:
 * the loop never blocks on the disk. */
int sup_loop_fsync(struct sup_loop *l, struct sup_ev *ev, int fd, bool datasync);
/* Cancel every operation of ev; each completes with -ECANCELED (or its
 * real result if it raced). */
int sup_loop_cancel(struct sup_loop *l, struct sup_ev *ev);

/* Timers. arm replaces an armed timer's deadline. */
void sup_timer_init(struct sup_timer *t, sup_timer_cb cb, void *data);
void sup_timer_arm(struct sup_loop *l, struct sup_timer *t, int64_t deadline);
void sup_timer_arm_in(struct sup_loop *l, struct sup_timer *t, int64_t delay_ns);
void sup_timer_disarm(struct sup_loop *l, struct sup_timer *t);
static inline int64_t sup_timer_deadline(const struct sup_timer *t)
{
	return t->deadline;
}
static inline bool sup_timer_armed(const struct sup_timer *t)
{
	return t->slot != 0;
}

/* Deferred work run at the end of this turn, before waiting (e.g. draining
 * a ring that still had records after its budget). A hook is queued at most
 * once until it runs. */
struct sup_defer;
typedef void (*sup_defer_cb)(struct sup_loop *l, struct sup_defer *d);
struct sup_defer {
	sup_defer_cb      cb;
	void             *data;
	struct sup_defer *next;
	bool              queued;
};
void sup_defer_init(struct sup_defer *d, sup_defer_cb cb, void *data);
void sup_defer_queue(struct sup_loop *l, struct sup_defer *d);

/* Work to do instead of blocking right away (the dispatcher's rings):
 * spin() is polled for up to spin_ns while it returns 0 (nothing yet, but
 * worth waiting for); 1 means it queued deferred work, < 0 means there is
 * nothing worth spinning for. Then before_sleep() runs just before the loop
 * blocks; 1 means work arrived after all and the loop does not block. */
struct sup_idle_hook {
	int (*spin)(void *arg);
	int (*before_sleep)(void *arg);
	void *arg;
	int64_t spin_ns;
};
void sup_loop_set_idle_hook(struct sup_loop *l, const struct sup_idle_hook *h);

/* Submit, wait for at least one completion or the earliest timer (never
 * when deferred work is queued), dispatch completions, run expired timers
 * and deferred work. Returns 0 or -errno from io_uring_enter (-EINTR is
 * absorbed). */
int sup_loop_turn(struct sup_loop *l);

/* Wait (up to timeout_ms) until every submitted operation has completed,
 * dispatching completions but running no timers: for the end, after
 * cancelling everything, before freeing what operations point at. */
int sup_loop_drain(struct sup_loop *l, int timeout_ms);

/* Operations submitted and not yet completed. */
uint64_t sup_loop_inflight(const struct sup_loop *l);

/* Stop hooks: sup_loop_run() turns until sup_loop_stop() is called. */
int  sup_loop_run(struct sup_loop *l);
void sup_loop_stop(struct sup_loop *l);

#endif
