/* SPDX-License-Identifier: MIT */
/*
 * The result-ring protocol of an incarnation (supervisor/incarnation/),
 * driven through a real ring pair: the test creates the memfd rings as
 * tierd does, attaches the agent's side and plays the agent by hand. The
 * task table and the daemon are fakes behind the fleet's hooks and report.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tier/proto.h"
#include "tier/ring.h"

#include "../supervisor/agent.h"
#include "../supervisor/incarnation/internal.h"

#define MAX_HELD 64

/* What the fakes saw. */
struct seen {
	uint64_t    held[MAX_HELD];    /* ids the fake task table has in flight */
	uint32_t    held_inc[MAX_HELD];/* … on this incarnation number */
	unsigned    delivered[MAX_HELD];
	unsigned    malformed;
	unsigned    late, drained;
	unsigned    faults, hellos, logs, events;
	uint32_t    max_inflight;
	char        fault_what[128];
	int         fault_err;
};

static struct seen seen;

static int fake_result(void *arg, struct sup_inc *inc, const struct sup_inc_result *res)
{
	struct seen *s = arg;

	for (int i = 0; i < MAX_HELD; i++)
		if (s->held[i] == res->id && s->held_inc[i] == inc->n) {
			/* Answered: no longer held, as the task table does. */
			s->held[i] = 0;
			s->delivered[i]++;
			s->malformed += res->malformed;
			return 0;
		}
	return -ENOENT;
}

static void fake_late(void *arg, struct sup_inc *inc, uint64_t id)
{
	((struct seen *)arg)->late++;
}

static void fake_drained(void *arg, struct sup_inc *inc)
{
	((struct seen *)arg)->drained++;
}

static void fake_lost(void *arg, struct sup_inc *inc)
{
}

static bool fake_spin(void *arg)
{
	return false;
}

static const struct sup_inc_hooks hooks = {
	.result = fake_result,
	.late = fake_late,
	.drained = fake_drained,
	.lost = fake_lost,
	.spin_worthwhile = fake_spin,
};

static void fake_fault(void *arg, struct sup_inc *inc, const char *what, int err)
{
	struct seen *s = arg;

	s->faults++;
	snprintf(s->fault_what, sizeof(s->fault_what), "%s", what);
	s->fault_err = err;
}

static void fake_hello(void *arg, struct sup_inc *inc, uint32_t max_inflight)
{
	struct seen *s = arg;

	s->hellos++;
	s->max_inflight = max_inflight;
}

static void fake_log(void *arg, struct sup_inc *inc, const void *text, uint32_t len)
{
	((struct seen *)arg)->logs++;
}

static void fake_event(void *arg, struct sup_inc *inc, const void *payload, uint32_t len,
		       uint64_t task_id)
{
	((struct seen *)arg)->events++;
}

static const struct sup_inc_report report = {
	.fault = fake_fault,
	.hello = fake_hello,
	.log = fake_log,
	.event = fake_event,
};

/* One incarnation with its ring, the agent's side attached. */
struct rig {
	struct sup_inc_fleet fleet;
	struct sup_agent     ag;
	struct sup_inc      *inc;
	struct tier_shm     *agent_shm;
	struct tier_prod    *cq;   /* what the agent writes */
	struct tier_cons    *sq;   /* what the agent reads */
};

static struct rig rig;

static struct sup_inc *rig_inc(struct rig *r, uint32_t n, uint32_t ring)
{
	struct tier_shm_opts so = { .sz = sizeof(so), .sq_capacity = ring, .cq_capacity = ring,
				    .max_record = ring / 2 };
	struct sup_inc *inc = calloc(1, sizeof(*inc));

	cr_assert_not_null(inc);
	inc->fleet = &r->fleet;
	inc->ag = &r->ag;
	inc->n = n;
	inc->pidfd = inc->cq_bell = inc->sq_bell = inc->out[0].fd = inc->out[1].fd = -1;
	inc->shm = tier_shm_create(&so);
	cr_assert_not_null(inc->shm, "tier_shm_create: %s", tier_strerror(errno));
	return inc;
}

static void rig_agent(struct rig *r)
{
	tier_shm_free(r->agent_shm);
	r->agent_shm = tier_shm_attach(tier_shm_fd(r->inc->shm));
	cr_assert_not_null(r->agent_shm, "tier_shm_attach: %s", tier_strerror(errno));
	r->cq = tier_shm_prod(r->agent_shm);
	r->sq = tier_shm_cons(r->agent_shm);
}

static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	memset(&rig, 0, sizeof(rig));
	rig.fleet = (struct sup_inc_fleet){ .hooks = &hooks, .arg = &seen, .report = &report,
					    .report_arg = &seen };
	rig.inc = rig_inc(&rig, 1, 4096);
	rig.ag.inc = rig.inc;
	rig_agent(&rig);
}

static void teardown(void)
{
	tier_shm_free(rig.agent_shm);
	if (rig.inc)
		sup_inc_free(rig.inc);
}

/* ---- the agent's side, by hand ------------------------------------------ */

static void agent_write(uint16_t type, uint64_t id, const void *payload, uint32_t len)
{
	int r = tier_prod_write(rig.cq, type, 0, id, payload, len);

	cr_assert_eq(r, 0, "agent write: %s", tier_strerror(r));
	cr_assert_geq(tier_prod_publish(rig.cq), 0);
}

static void agent_hello(uint32_t max_inflight)
{
	struct tier_hello h = { .proto = TIER_PROTO_VERSION, .max_inflight = max_inflight };

	agent_write(TIER_MSG_HELLO, 0, &h, sizeof(h));
}

static void agent_result(uint64_t id, const char *body)
{
	char buf[256];
	struct tier_result res = { .status = TIER_ST_OK };
	uint32_t n = (uint32_t)strlen(body);

	memcpy(buf, &res, sizeof(res));
	memcpy(buf + sizeof(res), body, n);
	agent_write(TIER_MSG_RESULT, id, buf, (uint32_t)sizeof(res) + n);
}

static void hold(int slot, uint64_t id, uint32_t inc_n)
{
	seen.held[slot] = id;
	seen.held_inc[slot] = inc_n;
}

static int drain(unsigned budget, struct sup_inc_drained *dr)
{
	struct sup_inc_drained tmp;

	return sup_inc_drain(rig.inc, budget, dr ? dr : &tmp);
}

/* A HELLO taken, and the ring empty again. */
static void hello_done(void)
{
	agent_hello(0);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), 0);
	cr_assert_eq(seen.hellos, 1);
}

TestSuite(incarnation, .init = setup, .fini = teardown);

/* ---- HELLO ---------------------------------------------------------------- */

Test(incarnation, should_take_a_hello_and_answer_with_welcome)
{
	struct tier_msg m;
	struct tier_welcome w;

	agent_hello(7);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), 0);
	cr_assert_eq(seen.hellos, 1);
	cr_assert_eq(seen.max_inflight, 7);
	cr_assert_eq(seen.faults, 0);
	cr_assert_eq(tier_cons_read(rig.sq, &m, &w, sizeof(w)), 1);
	cr_assert_eq(m.type, TIER_MSG_WELCOME);
	cr_assert_eq(w.proto, TIER_PROTO_VERSION);
}

Test(incarnation, should_fault_a_second_hello)
{
	hello_done();
	agent_hello(0);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.hellos, 1);
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "second HELLO");
}

Test(incarnation, should_fault_a_result_before_hello)
{
	hold(0, 5, 1);
	agent_result(5, "x");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "RESULT before HELLO");
	cr_assert_eq(seen.delivered[0], 0, "a result before HELLO must not reach the tasks");
}

/* ---- results -------------------------------------------------------------- */

Test(incarnation, should_deliver_each_valid_result_once)
{
	struct sup_inc_drained dr;

	hello_done();
	for (int i = 0; i < 3; i++)
		hold(i, 100 + (uint64_t)i, 1);
	for (int i = 0; i < 3; i++)
		agent_result(100 + (uint64_t)i, "done");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, &dr), 0);
	cr_assert_eq(dr.records, 3);
	cr_assert_eq(dr.unsolicited, 0, "results answer tasks tierd sent: not unsolicited");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(seen.delivered[i], 1, "result %d delivered %u times", i, seen.delivered[i]);
	cr_assert_eq(seen.faults, 0);
	cr_assert_eq(seen.drained, 2, "one drained call per pass (hello, results)");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, &dr), 0);
	cr_assert_eq(dr.records, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(seen.delivered[i], 1);
}

Test(incarnation, should_fail_the_task_of_a_short_result_and_fault_once)
{
	struct tier_result res = { 0 };

	hello_done();
	hold(0, 9, 1);
	agent_write(TIER_MSG_RESULT, 9, &res, (uint32_t)sizeof(res) - 1);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.malformed, 1, "the held task must hear of its malformed result");
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "RESULT shorter than its header");
}

Test(incarnation, should_fault_a_result_for_an_unknown_id)
{
	hello_done();
	agent_result(4242, "who?");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "RESULT for a task this incarnation does not hold");
}

Test(incarnation, should_fault_a_duplicate_result)
{
	hello_done();
	hold(0, 12, 1);
	agent_result(12, "once");
	agent_result(12, "twice");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.delivered[0], 1);
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "RESULT for a task this incarnation does not hold");
}

Test(incarnation, should_fault_a_result_for_another_incarnations_task)
{
	hello_done();
	hold(0, 30, 2);
	agent_result(30, "not mine");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.delivered[0], 0);
	cr_assert_eq(seen.faults, 1);
}

Test(incarnation, should_not_excuse_an_id_another_incarnation_gave_up)
{
	struct sup_inc *old = rig_inc(&rig, 1, 4096);
	struct sup_inc *cur;

	/* Incarnation 1 gave up task 40; incarnation 2 answering it is not
	 * late: it never held it. */
	cr_assert_eq(sup_inc_cancel(old, 40), 0);
	sup_inc_free(old);
	sup_inc_free(rig.inc);
	cur = rig.inc = rig_inc(&rig, 2, 4096);
	rig.ag.inc = cur;
	rig_agent(&rig);
	hello_done();
	agent_result(40, "late?");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.late, 0);
	cr_assert_eq(seen.faults, 1);
}

Test(incarnation, should_fault_a_record_of_a_type_agents_may_not_send)
{
	hello_done();
	agent_write(TIER_MSG_TASK, 0, "x", 1);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.faults, 1);
	cr_assert(strstr(seen.fault_what, "8") || strstr(seen.fault_what, "type"),
		  "fault names the type: %s", seen.fault_what);
}

Test(incarnation, should_latch_the_first_fault)
{
	hello_done();
	agent_result(777, "bad");
	agent_write(TIER_MSG_CANCEL, 0, NULL, 0);
	agent_result(778, "bad again");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1, "a faulted incarnation is not read");
	sup_inc_fault(rig.inc, "task ring corrupt", 0);
	cr_assert_eq(seen.faults, 1, "one fault per incarnation, got %u", seen.faults);
	cr_assert_str_eq(seen.fault_what, "RESULT for a task this incarnation does not hold");
}

/* The agent fills its ring; tierd takes one bad record and stops: the
 * space of what it took must go back all the same. */
Test(incarnation, should_release_the_consumer_position_after_a_fault)
{
	char body[200];
	struct tier_result res = { .status = TIER_ST_OK };
	void *dst;
	int n = 0;

	hello_done();
	memset(body, 'x', sizeof(body));
	memcpy(body, &res, sizeof(res));
	while (tier_prod_write(rig.cq, TIER_MSG_RESULT, 0, 1000 + (uint64_t)n, body, sizeof(body)) == 0)
		n++;
	cr_assert_gt(n, 2);
	cr_assert_geq(tier_prod_publish(rig.cq), 0);
	cr_assert_eq(tier_prod_reserve(rig.cq, sizeof(body), &dst), -EAGAIN);
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.faults, 1);
	cr_assert_eq(tier_prod_reserve(rig.cq, sizeof(body), &dst), 0,
		     "the record tierd took must be released to the agent");
	tier_prod_abort(rig.cq);
}

Test(incarnation, should_release_the_consumer_position_after_a_budget)
{
	char body[200];
	struct tier_result res = { .status = TIER_ST_OK };
	void *dst;
	int n = 0;

	hello_done();
	memset(body, 'x', sizeof(body));
	memcpy(body, &res, sizeof(res));
	while (n < MAX_HELD && tier_prod_write(rig.cq, TIER_MSG_RESULT, 0, 1000 + (uint64_t)n, body,
					       sizeof(body)) == 0) {
		hold(n, 1000 + (uint64_t)n, 1);
		n++;
	}
	cr_assert_gt(n, 2);
	cr_assert_geq(tier_prod_publish(rig.cq), 0);
	cr_assert_eq(tier_prod_reserve(rig.cq, sizeof(body), &dst), -EAGAIN);
	cr_assert_eq(drain(1, NULL), 1);
	cr_assert_eq(tier_prod_reserve(rig.cq, sizeof(body), &dst), 0,
		     "what a drain pass took must be released before it returns");
	tier_prod_abort(rig.cq);
}

Test(incarnation, should_count_a_result_for_a_cancelled_task_as_late_once)
{
	struct tier_msg m;

	hello_done();
	hold(0, 55, 1);
	cr_assert_eq(sup_inc_cancel(rig.inc, 55), 0);
	cr_assert_eq(sup_inc_flush(rig.inc), 0);
	/* WELCOME first, then the CANCEL. */
	cr_assert_eq(tier_cons_peek(rig.sq, &m), 1);
	tier_cons_advance(rig.sq);
	cr_assert_eq(tier_cons_peek(rig.sq, &m), 1);
	cr_assert_eq(m.type, TIER_MSG_CANCEL);
	cr_assert_eq(m.task_id, 55);
	/* The task table let it go (deadline, cancel). */
	seen.held[0] = 0;
	agent_result(55, "too late");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), 0);
	cr_assert_eq(seen.late, 1);
	cr_assert_eq(seen.faults, 0, "a late result is not a fault");
	agent_result(55, "late again");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.late, 1);
	cr_assert_eq(seen.faults, 1, "an id is late at most once");
}

Test(incarnation, should_stop_at_its_drain_budget)
{
	struct sup_inc_drained dr;

	hello_done();
	for (int i = 0; i < 10; i++) {
		hold(i, 200 + (uint64_t)i, 1);
		agent_result(200 + (uint64_t)i, "r");
	}
	cr_assert_eq(drain(4, &dr), 1, "budget spent: more may wait");
	cr_assert_eq(dr.records, 4);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(seen.delivered[i], i < 4, "result %d after one pass", i);
	cr_assert_eq(drain(4, &dr), 1);
	cr_assert_eq(dr.records, 4);
	cr_assert_eq(drain(4, &dr), 0, "ring empty before the budget");
	cr_assert_eq(dr.records, 2);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(seen.delivered[i], 1);
}

Test(incarnation, should_count_logs_and_events_as_unsolicited)
{
	struct sup_inc_drained dr;

	hello_done();
	hold(0, 300, 1);
	agent_write(TIER_MSG_LOG, 0, "hello", 5);
	agent_write(TIER_MSG_EVENT, 0, "kind\0msg", 8);
	agent_write(TIER_MSG_HEARTBEAT, 0, NULL, 0);
	agent_result(300, "r");
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, &dr), 0);
	cr_assert_eq(dr.records, 4);
	cr_assert_eq(dr.unsolicited, 3);
	cr_assert_eq(seen.logs, 1);
	cr_assert_eq(seen.events, 1);
	cr_assert_eq(seen.delivered[0], 1);
	cr_assert_eq(seen.faults, 0);
}

/* ---- tasks in -------------------------------------------------------------- */

Test(incarnation, should_make_sent_tasks_visible_only_on_flush)
{
	const char data[] = "echo" "ctx" "payload";
	struct sup_inc_task t = { .id = 61, .attempt = 1, .type_len = 4, .context_len = 3,
				  .len = 7, .data = data };
	struct tier_msg m;
	struct tier_task_hdr h;

	cr_assert_eq(sup_inc_send(rig.inc, &t), 0);
	cr_assert_eq(tier_cons_pending(rig.sq), 0, "not published before the flush");
	cr_assert_eq(sup_inc_flush(rig.inc), 0);
	cr_assert_eq(tier_cons_peek(rig.sq, &m), 1);
	cr_assert_eq(m.type, TIER_MSG_TASK);
	cr_assert_eq(m.task_id, 61);
	cr_assert_eq(m.len, sizeof(h) + 14);
	memcpy(&h, m.payload, sizeof(h));
	cr_assert_eq(h.type_len, 4);
	cr_assert_eq(h.context_len, 3);
	cr_assert_eq(h.attempt, 1);
	cr_assert_arr_eq((const char *)m.payload + sizeof(h), data, 14);
}

Test(incarnation, should_refuse_a_task_larger_than_the_ring_takes_without_a_fault)
{
	static char big[4096];
	struct sup_inc_task t = { .id = 62, .attempt = 1, .type_len = 1, .len = sizeof(big) - 1,
				  .data = big };

	cr_assert_eq(sup_inc_send(rig.inc, &t), -EMSGSIZE);
	cr_assert_lt(sup_inc_max_payload(rig.inc), sizeof(big));
	cr_assert_eq(seen.faults, 0);
}

Test(incarnation, should_say_a_full_task_ring_is_full)
{
	static char mid[600];
	struct sup_inc_task t = { .id = 63, .attempt = 1, .type_len = 1, .len = sizeof(mid) - 1,
				  .data = mid };
	int r, n = 0;

	while ((r = sup_inc_send(rig.inc, &t)) == 0)
		n++;
	cr_assert_eq(r, -EAGAIN);
	cr_assert_gt(n, 0);
	cr_assert_eq(seen.faults, 0);
}

/* ---- a peer that breaks the ring itself ----------------------------------- */

static struct tier_ring_ctl *ctl_of(size_t off, void **map)
{
	*map = mmap(NULL, tier_shm_size(rig.inc->shm), PROT_READ | PROT_WRITE, MAP_SHARED,
		    tier_shm_fd(rig.inc->shm), 0);
	cr_assert(*map != MAP_FAILED);
	return (struct tier_ring_ctl *)((char *)*map + off);
}

Test(incarnation, should_fault_a_corrupt_task_ring_once_on_flush_and_send)
{
	const char data[] = "t";
	struct sup_inc_task t = { .id = 70, .attempt = 1, .type_len = 1, .data = data };
	void *map;
	struct tier_ring_ctl *sq = ctl_of(TIER_SHM_SQ_CTL, &map);

	cr_assert_eq(sup_inc_send(rig.inc, &t), 0);
	sq->head = 1ull << 40;
	cr_assert_eq(sup_inc_flush(rig.inc), 0, "the fault is the report, not the return");
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "task ring corrupt");
	cr_assert_eq(seen.fault_err, -TIER_E_HEAD_PAST);
	t.id = 71;
	cr_assert_lt(sup_inc_send(rig.inc, &t), 0, "a corrupt ring takes nothing more");
	cr_assert_eq(seen.faults, 1);
	munmap(map, tier_shm_size(rig.inc->shm));
}

Test(incarnation, should_fault_a_corrupt_completion_ring)
{
	void *map;
	struct tier_ring_ctl *cq = ctl_of(TIER_SHM_CQ_CTL, &map);

	hello_done();
	cq->tail = 8 + 3;
	cr_assert_eq(drain(SUP_INC_DRAIN_BUDGET, NULL), -1);
	cr_assert_eq(seen.faults, 1);
	cr_assert_str_eq(seen.fault_what, "completion ring corrupt");
	cr_assert_lt(seen.fault_err, 0);
	munmap(map, tier_shm_size(rig.inc->shm));
}
