/* SPDX-License-Identifier: MIT */
/*
 * The result-ring protocol of an incarnation: TASK and CANCEL records in,
 * the agent's records out, each checked before tierd acts on it, and the
 * fault latch that makes the first bad record an incarnation's last.
 */
#include <errno.h>
#include <string.h>

#include "tier/ring.h"

#include "../agentrec.h"
#include "internal.h"

bool sup_inc_live(const struct sup_inc *inc)
{
	/* inc->ag is cleared as the agent lets go of it (exit.c): set, it is
	 * the agent's current incarnation. */
	return inc->ag && !inc->faulted;
}

/* The first fault of an incarnation is its last: one report (an event and
 * a kill), and nothing more is read from its rings, so a flood of bad
 * records costs one line in the log and one entry in the journal. */
void sup_inc_fault(struct sup_inc *inc, const char *what, int err)
{
	if (!inc->ag || inc->faulted)
		return;
	inc->faulted = true;
	inc->fleet->report->fault(inc->fleet->report_arg, inc, what, err);
}

/* ---- tierd -> agent ------------------------------------------------------ */

int sup_inc_send(struct sup_inc *inc, const struct sup_inc_task *t)
{
	struct tier_prod *p = tier_shm_prod(inc->shm);
	struct tier_task_hdr h = {
		.deadline_ns = t->deadline_ns,
		.type_len = t->type_len,
		.flags = t->flags,
		.attempt = t->attempt,
		.context_len = t->context_len,
	};
	uint32_t body = t->type_len + t->context_len + t->len;
	char *dst;
	int r = tier_prod_reserve(p, (uint32_t)sizeof(h) + body, (void **)&dst);

	if (r == -EAGAIN || r == -EMSGSIZE)
		return r;
	if (r < 0) {
		sup_inc_fault(inc, "task ring corrupt", r);
		return r;
	}
	memcpy(dst, &h, sizeof(h));
	memcpy(dst + sizeof(h), t->data, body);
	tier_prod_commit(p, TIER_MSG_TASK, 0, t->id, (uint32_t)sizeof(h) + body);
	return 0;
}

int sup_inc_flush(struct sup_inc *inc)
{
	int r = tier_prod_publish(tier_shm_prod(inc->shm));

	if (r <= -TIER_E_BASE) {
		sup_inc_fault(inc, "task ring corrupt", r);
		return 0;
	}
	return r < 0 ? r : 0;
}

int sup_inc_cancel(struct sup_inc *inc, uint64_t id)
{
	inc->abandoned[inc->nabandoned++ % SUP_INC_ABANDONED] = id;
	return tier_prod_write(tier_shm_prod(inc->shm), TIER_MSG_CANCEL, 0, id, NULL, 0);
}

uint32_t sup_inc_max_payload(const struct sup_inc *inc)
{
	return tier_shm_max_payload(inc->shm);
}

/* Was id given up by this incarnation? Each id is late at most once. */
static bool take_abandoned(struct sup_inc *inc, uint64_t id)
{
	if (!id)
		return false;
	for (uint32_t i = 0; i < SUP_INC_ABANDONED; i++)
		if (inc->abandoned[i] == id) {
			inc->abandoned[i] = 0;
			return true;
		}
	return false;
}

/* ---- agent -> tierd ------------------------------------------------------ */

static int on_hello(struct sup_inc *inc, const struct tier_msg *m)
{
	struct tier_hello h;
	struct tier_welcome w = { .proto = TIER_PROTO_VERSION };

	memcpy(&h, m->payload, sizeof(h));
	if (h.proto < 1) {
		sup_inc_fault(inc, "HELLO with protocol version 0", 0);
		return -1;
	}
	if (inc->hello) {
		sup_inc_fault(inc, "second HELLO", 0);
		return -1;
	}
	inc->hello = true;
	if (h.proto < w.proto)
		w.proto = h.proto;
	if (tier_prod_write(tier_shm_prod(inc->shm), TIER_MSG_WELCOME, 0, 0, &w, sizeof(w)) == 0) {
		tier_prod_publish(tier_shm_prod(inc->shm));
		inc->welcome_end = tier_prod_tail(tier_shm_prod(inc->shm));
	}
	inc->fleet->report->hello(inc->fleet->report_arg, inc, h.max_inflight);
	return 0;
}

/* Accepted only from the incarnation the task is in flight on (the hook
 * knows). A task it was told to give up may still be answered: that is
 * late. Any other id (never issued, answered already, another agent's or
 * incarnation's) is a fault, as agentd treats it. A malformed result still
 * ends its task (it would otherwise wait for a deadline it may not have);
 * the agent is killed for it. */
static int on_result(struct sup_inc *inc, const struct tier_msg *m)
{
	struct sup_inc_fleet *f = inc->fleet;
	struct sup_inc_result res = { .id = m->task_id, .len = m->len };
	int r;

	if (!inc->hello) {
		sup_inc_fault(inc, "RESULT before HELLO", 0);
		return -1;
	}
	if (m->len < sizeof(res.hdr)) {
		res.malformed = true;
		f->hooks->result(f->arg, inc, &res);
		sup_inc_fault(inc, "RESULT shorter than its header", 0);
		return -1;
	}
	memcpy(&res.hdr, m->payload, sizeof(res.hdr));
	res.body = (const char *)m->payload + sizeof(res.hdr);
	res.body_len = m->len - (uint32_t)sizeof(res.hdr);
	r = f->hooks->result(f->arg, inc, &res);
	if (r != -ENOENT) {
		/* It answered a task, which came after the WELCOME: its task
		 * ring's head is past that, whether or not tierd saw it move
		 * (a head put back to 0 is then caught at the next publish). */
		tier_prod_head_floor(tier_shm_prod(inc->shm), inc->welcome_end);
		return 0;
	}
	if (take_abandoned(inc, m->task_id)) {
		f->hooks->late(f->arg, inc, m->task_id);
		return 0;
	}
	sup_inc_fault(inc, "RESULT for a task this incarnation does not hold", 0);
	return -1;
}

/* Handle one record; the payload is still in shared memory and may change
 * under us, so whatever is used is copied first. */
static int on_record(struct sup_inc *inc, const struct tier_msg *m)
{
	const struct sup_inc_report *rep = inc->fleet->report;
	char why[96];
	const char *fault = sup_agent_rec_fault(m->type, m->len, why, sizeof(why));

	/* A short RESULT goes on: its task fails before the agent is killed. */
	if (fault && m->type != TIER_MSG_RESULT) {
		sup_inc_fault(inc, fault, 0);
		return -1;
	}
	switch (m->type) {
	case TIER_MSG_HELLO:
		return on_hello(inc, m);
	case TIER_MSG_RESULT:
		return on_result(inc, m);
	case TIER_MSG_HEARTBEAT:
		return 0;
	case TIER_MSG_LOG:
		rep->log(inc->fleet->report_arg, inc, m->payload, m->len);
		return 0;
	case TIER_MSG_EVENT:
		rep->event(inc->fleet->report_arg, inc, m->payload, m->len, m->task_id);
		return 0;
	default:
		return -1; /* refused above */
	}
}

int sup_inc_drain(struct sup_inc *inc, unsigned budget, struct sup_inc_drained *ret)
{
	struct tier_cons *c = tier_shm_cons(inc->shm);
	struct tier_msg m;
	unsigned n = 0, unsolicited = 0;
	int r = 0;

	*ret = (struct sup_inc_drained){ 0 };
	if (!sup_inc_live(inc))
		return -1;
	while (n < budget && (r = tier_cons_peek(c, &m)) == 1) {
		tier_cons_advance(c);
		n++;
		/* A valid RESULT answers a task tierd chose to send (any other
		 * is a fault), so results are bounded by dispatch already: only
		 * the records an agent sends of its own accord are charged. */
		unsolicited += m.type != TIER_MSG_RESULT;
		if (on_record(inc, &m) < 0 || !sup_inc_live(inc)) {
			/* Its space goes back even now: a ring is never left
			 * holding records tierd has taken. */
			tier_cons_release(c);
			return -1;
		}
	}
	tier_cons_release(c);
	if (r < 0) {
		sup_inc_fault(inc, "completion ring corrupt", r);
		return -1;
	}
	inc->fleet->hooks->drained(inc->fleet->arg, inc);
	*ret = (struct sup_inc_drained){ .records = n, .unsolicited = unsolicited };
	return n == budget;
}
