/* SPDX-License-Identifier: MIT */
/* libtier: attach, handshake, tasks in, results out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tier/agent.h"

#define CANCEL_SLOTS 64
#define BATCH_PUBLISH 32
/* Tasks taken before their space goes back to tierd although the ring is
 * not empty yet: an agent kept busy (or one that stops taking tasks while
 * some wait, like agentd with a full pipeline) would otherwise hand nothing
 * back until it caught up, and tierd would see a full ring meanwhile. */
#define RELEASE_EVERY 32
#define SPIN_DEFAULT_NS 50000

struct tier_agent {
	struct tier_shm  *shm;
	struct tier_prod *cq;
	struct tier_cons *sq;
	char              name[64];
	int               tier;
	int64_t           spin_ns;
	uint32_t          flags;
	int               sq_bell;
	int               holding;      /* a task record is peeked, not yet advanced */
	unsigned          unreleased;   /* tasks consumed since the last release */
	char             *resv;         /* result header of the open reservation */
	unsigned          unpublished;  /* batched replies not yet published */
	uint64_t          cancels[CANCEL_SLOTS];
	unsigned          ncancel;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int hello(struct tier_agent *a, uint32_t max_inflight)
{
	struct tier_hello h = {
		.proto = TIER_PROTO_VERSION,
		.pid = (uint32_t)getpid(),
		.flags = (a->flags & TIER_AGENT_BATCH) ? TIER_HELLO_BATCH : 0,
		.max_inflight = max_inflight,
	};
	int r = tier_prod_write(a->cq, TIER_MSG_HELLO, 0, 0, &h, sizeof(h));

	if (r < 0)
		return r;
	r = tier_prod_publish(a->cq);
	return r < 0 ? r : 0;
}

struct tier_agent *tier_agent_open(const struct tier_agent_opts *opts)
{
	const char *name = getenv("TIER_AGENT"), *tier = getenv("TIER_TIER");
	const char *proto = getenv("TIER_PROTO"), *spin = getenv("TIER_SPIN_NS");
	struct tier_agent *a;
	int err;

	if (opts && opts->sz < sizeof(*opts)) {
		errno = EINVAL;
		return NULL;
	}
	if (!name || !tier || !proto) {
		errno = ENOENT;
		return NULL;
	}
	if ((uint32_t)atoi(proto) < TIER_PROTO_VERSION) {
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->tier = atoi(tier);
	a->flags = opts ? opts->flags : 0;
	a->spin_ns = opts && opts->spin_ns >= 0 ? opts->spin_ns :
		     spin ? strtoll(spin, NULL, 10) : SPIN_DEFAULT_NS;
	a->sq_bell = TIER_FD_SQ_BELL;
	a->shm = tier_shm_attach(TIER_FD_RING);
	if (!a->shm)
		goto err_free;
	a->cq = tier_shm_prod(a->shm);
	a->sq = tier_shm_cons(a->shm);
	tier_prod_set_eventfd(a->cq, TIER_FD_CQ_BELL);
	err = hello(a, opts ? opts->max_inflight : 0);
	if (err < 0) {
		tier_shm_free(a->shm);
		free(a);
		errno = -err;
		return NULL;
	}
	return a;

err_free:
	err = errno;
	free(a);
	errno = err;
	return NULL;
}

void tier_agent_close(struct tier_agent *a)
{
	if (!a)
		return;
	tier_prod_publish(a->cq);
	tier_shm_free(a->shm);
	free(a);
}

static void remember_cancel(struct tier_agent *a, uint64_t id)
{
	a->cancels[a->ncancel++ % CANCEL_SLOTS] = id;
}

int tier_agent_cancelled(struct tier_agent *a, uint64_t id)
{
	for (unsigned i = 0; i < CANCEL_SLOTS && i < a->ncancel; i++)
		if (a->cancels[i] == id)
			return 1;
	return 0;
}

/* Parse the record m into t. Returns 1 for a task, 0 for a record handled
 * here (welcome, cancel), negative for a malformed task. */
static int take_record(struct tier_agent *a, const struct tier_msg *m, struct tier_task *t)
{
	struct tier_task_hdr hdr;

	switch (m->type) {
	case TIER_MSG_TASK:
		if (m->len < sizeof(hdr))
			return -EBADMSG;
		memcpy(&hdr, m->payload, sizeof(hdr));
		if ((uint64_t)hdr.type_len + hdr.context_len > m->len - sizeof(hdr))
			return -EBADMSG;
		t->id = m->task_id;
		t->type = (const char *)m->payload + sizeof(hdr);
		t->type_len = hdr.type_len;
		t->flags = hdr.flags;
		t->attempt = hdr.attempt;
		t->deadline_ns = hdr.deadline_ns;
		t->context = t->type + hdr.type_len;
		t->context_len = hdr.context_len;
		t->payload = t->context + hdr.context_len;
		t->len = m->len - (uint32_t)sizeof(hdr) - hdr.type_len - hdr.context_len;
		t->started_ns = mono_ns();
		return 1;
	case TIER_MSG_CANCEL:
		remember_cancel(a, m->task_id);
		return 0;
	default:
		/* WELCOME and anything newer than us: nothing to do. */
		return 0;
	}
}

int tier_agent_next(struct tier_agent *a, struct tier_task *t, int64_t timeout_ns)
{
	int64_t deadline = timeout_ns < 0 ? -1 : mono_ns() + timeout_ns;

	if (a->holding) {
		tier_cons_advance(a->sq);
		a->holding = 0;
		if (++a->unreleased >= RELEASE_EVERY) {
			tier_cons_release(a->sq);
			a->unreleased = 0;
		}
	}
	for (;;) {
		struct tier_msg m;
		int r = tier_cons_peek(a->sq, &m);

		if (r < 0)
			return r;
		if (r == 1) {
			r = take_record(a, &m, t);
			if (r == 1) {
				a->holding = 1;
				return 1;
			}
			tier_cons_advance(a->sq);
			if (r < 0)
				return r;
			continue;
		}
		/* Empty: hand back the space and the replies, then wait. */
		tier_cons_release(a->sq);
		a->unreleased = 0;
		a->unpublished = 0;
		r = tier_prod_publish(a->cq);
		if (r < 0)
			return r;
		/* Before the timeout test: an eventfd sleeper calls with timeout
		 * 0, and returning without the sleeping flag set would leave it
		 * polling a doorbell tierd never rings. */
		if (a->flags & TIER_AGENT_EVENTFD) {
			r = tier_cons_prepare_sleep(a->sq, TIER_SLEEP_EVENTFD, NULL);
			if (r < 0)
				return r;
			if (r == 0)
				return 0; /* caller polls tier_agent_fd() */
			continue;
		}
		if (timeout_ns == 0 || (deadline >= 0 && mono_ns() >= deadline))
			return 0;
		r = tier_cons_wait(a->sq, a->spin_ns, deadline < 0 ? -1 : deadline - mono_ns());
		if (r < 0 && r != -EINTR)
			return r;
		if (r == -EINTR)
			return r;
	}
}

static uint16_t quality_x100(double q, uint8_t *has)
{
	if (q < 0 || q != q) {
		*has = 0;
		return 0;
	}
	*has = 1;
	if (q > 10)
		q = 10;
	return (uint16_t)(q * 100 + 0.5);
}

/* Reserve CQ space, waiting while the ring is full: tierd is behind, and a
 * result or event dropped here would never reach it. */
static int reserve_wait(struct tier_agent *a, uint32_t len, void **ret_dst)
{
	int r;

	while ((r = tier_prod_reserve(a->cq, len, ret_dst)) == -EAGAIN) {
		tier_prod_publish(a->cq);
		usleep(50);
	}
	return r;
}

int tier_agent_reply_reserve(struct tier_agent *a, uint32_t max, void **ret_buf)
{
	void *dst;
	int r;

	if (max > tier_agent_max_payload(a))
		return -EMSGSIZE;
	r = reserve_wait(a, (uint32_t)sizeof(struct tier_result) + max, &dst);
	if (r < 0)
		return r;
	a->resv = dst;
	*ret_buf = a->resv + sizeof(struct tier_result);
	return 0;
}

int tier_agent_reply_commit(struct tier_agent *a, const struct tier_task *t, int status,
			    double quality, uint32_t len)
{
	struct tier_result res = {
		.status = (uint8_t)status,
		.started_ns = t->started_ns,
		.finished_ns = mono_ns(),
	};
	int r;

	if (!a->resv)
		return -EINVAL;
	res.quality_x100 = quality_x100(quality, &res.has_quality);
	memcpy(a->resv, &res, sizeof(res));
	r = tier_prod_commit(a->cq, TIER_MSG_RESULT, 0, t->id, (uint32_t)sizeof(res) + len);
	if (r < 0)
		return r;
	a->resv = NULL;
	/* Batched: publish every BATCH_PUBLISH replies, and whenever the task
	 * ring runs dry (tier_agent_next), so no reply waits for long. */
	if (!(a->flags & TIER_AGENT_BATCH) || ++a->unpublished >= BATCH_PUBLISH) {
		a->unpublished = 0;
		r = tier_prod_publish(a->cq);
		if (r < 0)
			return r;
	}
	return 0;
}

int tier_agent_reply(struct tier_agent *a, const struct tier_task *t, int status,
		     double quality, const void *payload, uint32_t len)
{
	void *dst;
	int r = tier_agent_reply_reserve(a, len, &dst);

	if (r < 0)
		return r;
	if (len)
		memcpy(dst, payload, len);
	return tier_agent_reply_commit(a, t, status, quality, len);
}

int tier_agent_flush(struct tier_agent *a)
{
	int r;

	/* The tasks consumed so far go back too (never the one held: the
	 * next tier_agent_next advances past it). */
	tier_cons_release(a->sq);
	a->unreleased = 0;
	a->unpublished = 0;
	r = tier_prod_publish(a->cq);
	return r < 0 ? r : 0;
}

int tier_agent_heartbeat(struct tier_agent *a)
{
	int r = tier_prod_write(a->cq, TIER_MSG_HEARTBEAT, 0, 0, NULL, 0);

	if (r < 0)
		return r;
	return tier_agent_flush(a);
}

int tier_agent_log(struct tier_agent *a, const char *line)
{
	size_t n = strlen(line);
	int r;

	if (n > tier_shm_max_payload(a->shm))
		n = tier_shm_max_payload(a->shm);
	r = tier_prod_write(a->cq, TIER_MSG_LOG, 0, 0, line, (uint32_t)n);
	if (r < 0)
		return r;
	return tier_agent_flush(a);
}

int tier_agent_event(struct tier_agent *a, uint64_t task_id, const char *kind, const char *message)
{
	size_t kl = strlen(kind), ml = strlen(message), max = tier_shm_max_payload(a->shm);
	char *dst;
	int r;

	if (kl + 1 > max)
		return -EMSGSIZE;
	if (kl + 1 + ml > max)
		ml = max - kl - 1;
	r = reserve_wait(a, (uint32_t)(kl + 1 + ml), (void **)&dst);
	if (r < 0)
		return r;
	memcpy(dst, kind, kl + 1);
	memcpy(dst + kl + 1, message, ml);
	r = tier_prod_commit(a->cq, TIER_MSG_EVENT, 0, task_id, (uint32_t)(kl + 1 + ml));
	if (r < 0)
		return r;
	return tier_agent_flush(a);
}

const char *tier_agent_name(const struct tier_agent *a)
{
	return a->name;
}

int tier_agent_tier(const struct tier_agent *a)
{
	return a->tier;
}

int tier_agent_fd(const struct tier_agent *a)
{
	return a->sq_bell;
}

uint32_t tier_agent_max_payload(const struct tier_agent *a)
{
	return tier_shm_max_payload(a->shm) - (uint32_t)sizeof(struct tier_result);
}
