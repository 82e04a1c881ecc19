/* SPDX-License-Identifier: MIT */
/* The control socket: a client's output queue (chunks, sends, flush) and
 * its lifetime (kill, notify, reap, free). ctl.c accepts and reads. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_internal.h"

/* ---- teardown ---------------------------------------------------------- */

void ctl_maybe_free(struct sup_ctl *ctl)
{
	if (!ctl->closing || ctl->busy || !sup_ev_idle(&ctl->aev) || ctl->clients)
		return;
	free(ctl->tree);
	free(ctl);
}

static void chunks_free(struct sup_ctl_client *c, bool keep_head)
{
	struct chunk *k = keep_head ? c->head->next : c->head;

	while (k) {
		struct chunk *next = k->next;

		free(k);
		k = next;
	}
	if (keep_head) {
		c->head->next = NULL;
		c->tail = c->head;
	} else {
		c->head = c->tail = NULL;
	}
}

static void set_reason(struct sup_ctl_client *c, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void set_reason(struct sup_ctl_client *c, const char *fmt, va_list ap)
{
	/* The first cause is the one worth logging; what follows from it
	 * (cancelled reads, broken pipes) is not. */
	if (c->has_reason)
		return;
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	c->has_reason = true;
}

void ctl_client_kill(struct sup_ctl_client *c, const char *fmt, ...)
{
	struct sup_loop *l = c->ctl->loop;
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		set_reason(c, fmt, ap);
		va_end(ap);
	}
	if (c->state == C_DEAD)
		return;
	c->state = C_DEAD;
	sup_timer_disarm(l, &c->flush_timer);
	sup_timer_disarm(l, &c->idle_timer);
	/* shutdown completes a pending recv (0) and fails a pending send at
	 * once, even if the cancel below finds no submission slot. A
	 * connection handed to the next binary stays up. */
	if (!c->handed_over)
		shutdown(c->fd, SHUT_RDWR);
	sup_loop_cancel(l, &c->rev);
	sup_loop_cancel(l, &c->sev);
	if (c->head)
		chunks_free(c, c->sending);
	c->queued = 0;
}

void ctl_client_notify(struct sup_ctl_client *c)
{
	struct sup_ctl *ctl = c->ctl;

	c->notified = true;
	if (c->allowed)
		ctl->nclients--;
	c->busy++;
	ctl->h->closed(ctl->ctx, c, c->has_reason ? c->reason : NULL);
	c->busy--;
}

static void client_free(struct sup_ctl_client *c)
{
	struct sup_ctl *ctl = c->ctl;

	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	if (c->head)
		chunks_free(c, false);
	sup_ctl_buf_free(&c->in);
	free(c);
}

void ctl_client_reap(struct sup_ctl_client *c)
{
	struct sup_ctl *ctl = c->ctl;

	if (c->state != C_DEAD || c->busy || !sup_ev_idle(&c->rev) || !sup_ev_idle(&c->sev))
		return;
	if (!c->notified)
		ctl_client_notify(c);
	if (c->holds || c->busy)
		return;
	client_free(c);
	ctl_maybe_free(ctl);
}

/* ---- output ------------------------------------------------------------ */

static void send_kick(struct sup_ctl_client *c)
{
	struct chunk *k;
	size_t n;
	int r;

	/* An emptied chunk kept for reuse can sit at the head while a larger
	 * message went into a new chunk behind it: drop it, or the send
	 * would stop at the empty head. */
	while (!c->sending && !c->spoll && c->head && c->head->off == c->head->len && c->head->next) {
		k = c->head;
		c->head = k->next;
		free(k);
	}
	k = c->head;
	if (c->sending || c->spoll || !k || k->off == k->len || c->state == C_DEAD)
		return;
	n = k->len - k->off;
	if (n > SEND_MAX)
		n = SEND_MAX;
	r = sup_loop_send(c->ctl->loop, &c->sev, c->fd, k->data + k->off, (unsigned)n);
	if (r < 0) {
		ctl_client_kill(c, "send: %s", strerror(-r));
		return;
	}
	c->sending = true;
}

static struct chunk *chunk_new(size_t cap)
{
	struct chunk *k = malloc(sizeof(*k) + cap);

	if (!k)
		return NULL;
	k->next = NULL;
	k->len = k->off = 0;
	k->cap = cap;
	return k;
}

int ctl_queue_msg(struct sup_ctl_client *c, json_t *msg)
{
	struct sup_ctl *ctl = c->ctl;
	struct chunk *k = c->tail;
	size_t n, room = k ? k->cap - k->len : 0;
	int r;

	if (!msg) {
		r = -ENOMEM;
		goto lost;
	}
	/* Appending behind a send in flight is safe: the kernel reads only
	 * the bytes that existed when the send was queued, and chunks never
	 * move. */
	r = sup_ctl_encode(msg, k ? k->data + k->len : NULL, room, &n);
	if (r < 0)
		goto out;
	if (n > ctl->max_queue) {
		r = -EMSGSIZE;
		goto out;
	}
	if (c->queued + n > ctl->max_queue) {
		ctl_client_kill(c, "not reading: %zu bytes queued (limit %zu)", c->queued + n,
			    ctl->max_queue);
		r = -ENOBUFS;
		goto out;
	}
	if (n <= room) {
		k->len += n;
	} else {
		k = chunk_new(n > CHUNK_MIN ? n : CHUNK_MIN);
		if (!k) {
			r = -ENOMEM;
			goto lost;
		}
		sup_ctl_encode(msg, k->data, k->cap, &n);
		k->len = n;
		if (c->tail)
			c->tail->next = k;
		else
			c->head = k;
		c->tail = k;
	}
	c->queued += n;
	send_kick(c);
	r = c->state == C_DEAD ? -ENOTCONN : 0;
	goto out;
lost:
	/* The peer would wait forever for a reply that cannot be queued. */
	ctl_client_kill(c, "out of memory queueing a message");
out:
	json_decref(msg);
	return r;
}

void ctl_client_flush(struct sup_ctl_client *c, const char *reason)
{
	struct sup_loop *l = c->ctl->loop;

	if (c->state != C_OPEN)
		return;
	if (reason && !c->has_reason) {
		snprintf(c->reason, sizeof(c->reason), "%s", reason);
		c->has_reason = true;
	}
	c->state = C_FLUSH;
	sup_timer_disarm(l, &c->idle_timer);
	sup_loop_cancel(l, &c->rev);
	if (!c->head || c->head->off == c->head->len) {
		ctl_client_kill(c, NULL);
		return;
	}
	sup_timer_arm_in(l, &c->flush_timer, (int64_t)c->ctl->flush_timeout_ms * 1000000);
}

void ctl_on_flush_timeout(struct sup_loop *l, struct sup_timer *t)
{
	struct sup_ctl_client *c = t->data;

	c->busy++;
	ctl_client_kill(c, "did not read its last %zu bytes within %d ms", c->queued,
		    c->ctl->flush_timeout_ms);
	c->busy--;
	ctl_client_reap(c);
}

void ctl_on_send(struct sup_loop *l, struct sup_ev *ev, int res, bool more)
{
	struct sup_ctl_client *c = ev->data;
	struct chunk *k = c->head;

	c->busy++;
	if (c->spoll) {
		c->spoll = false;
		if (res < 0 && c->state != C_DEAD)
			ctl_client_kill(c, "poll: %s", strerror(-res));
		send_kick(c);
		goto out;
	}
	c->sending = false;
	if (c->state == C_DEAD)
		goto out;
	if (res == -EAGAIN) {
		int r = sup_loop_poll(l, &c->sev, c->fd, POLLOUT, false);

		if (r < 0)
			ctl_client_kill(c, "poll: %s", strerror(-r));
		else
			c->spoll = true;
		goto out;
	}
	if (res == -EPIPE || res == -ECONNRESET) {
		/* The peer hung up without reading: its business. */
		ctl_client_kill(c, NULL);
		goto out;
	}
	if (res <= 0) {
		ctl_client_kill(c, "send: %s", res ? strerror(-res) : "no progress");
		goto out;
	}
	k->off += (size_t)res;
	c->queued -= (size_t)res;
	if (k->off == k->len && !k->next && k->cap == CHUNK_MIN) {
		/* Kept for the next message, which then encodes straight into
		 * it instead of measuring first. */
		k->off = k->len = 0;
	} else if (k->off == k->len) {
		c->head = k->next;
		if (!c->head)
			c->tail = NULL;
		free(k);
	}
	if (c->head && c->head->off < c->head->len)
		send_kick(c);
	else if (c->state == C_FLUSH)
		ctl_client_kill(c, NULL);
out:
	c->busy--;
	ctl_client_reap(c);
}
