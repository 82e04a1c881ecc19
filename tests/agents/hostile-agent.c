/* SPDX-License-Identifier: MIT */
/*
 * hostile-agent: a native agent that breaks the ring protocol on purpose,
 * one way per mode, for tests/integration/test_hostile_ring.py and the
 * flood benchmark. It speaks the wire format through the ring library and,
 * where a mode needs to corrupt an index, writes the shared layout by hand.
 *
 *   hostile-agent MODE
 *
 * Modes (after a valid HELLO unless said otherwise):
 *   good              answer every task ok with its payload (the control)
 *   short-result      answer the first task with a 4-byte RESULT, then keep
 *                     sending short RESULTs as fast as the ring allows
 *   short-result-nobell  the same without ringing tierd's doorbell, until
 *                     the ring is full: then one poke, and it waits
 *   log-flood         LOG records as fast as the ring allows (spins when full)
 *   log-flood-yield   the same, calling sched_yield() while the ring is full
 *   stdout-flood      write stdout as fast as the pipe allows (blocks when full)
 *   head-zero         answer the first task, move the SQ head back to 0, stop
 *   head-ahead        answer the first task, move the SQ head 2^40 ahead, stop
 *   unknown-id        answer the first task with an id never issued
 *   dup-result        answer the first task twice
 *   other-id          answer the first task with its id minus one
 *   bad-utf8-event    send an EVENT with bytes that are not UTF-8, then good
 *   bell-loop         write the CQ doorbell eventfd in a loop
 *   type16            send a record of type 16
 *   fork-refill       fork a child that keeps filling the CQ; the parent exits
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tier/proto.h"
#include "tier/ring.h"

static struct tier_shm *shm;
static struct tier_prod *cq;
static struct tier_cons *sq;
static struct tier_ring_ctl *sq_ctl;   /* the SQ control block, writable */

static void die(const char *what, int err)
{
	fprintf(stderr, "hostile-agent: %s: %s\n", what, tier_strerror(err));
	exit(1);
}

/* Write one record, spinning while the ring is full; publish it. */
static void put(uint16_t type, uint64_t id, const void *p, uint32_t len)
{
	int r;

	while ((r = tier_prod_write(cq, type, 0, id, p, len)) == -EAGAIN)
		;
	if (r < 0)
		die("writing a record", r);
	r = tier_prod_publish(cq);
	if (r < 0)
		die("publishing", r);
}

static void reply(uint64_t id, const void *p, uint32_t len)
{
	char buf[4096];
	struct tier_result res = { .status = TIER_ST_OK };

	if (len > sizeof(buf) - sizeof(res))
		len = sizeof(buf) - sizeof(res);
	memcpy(buf, &res, sizeof(res));
	memcpy(buf + sizeof(res), p, len);
	put(TIER_MSG_RESULT, id, buf, (uint32_t)sizeof(res) + len);
}

/* The next task: its id and payload (copied to buf). Skips WELCOME and
 * CANCEL records. */
static uint64_t next_task(char *buf, uint32_t cap, uint32_t *ret_len)
{
	struct tier_msg m;
	char rec[70000];
	int r;

	for (;;) {
		r = tier_cons_read(sq, &m, rec, sizeof(rec));
		if (r < 0)
			die("reading the task ring", r);
		if (r == 0) {
			tier_cons_release(sq);
			r = tier_cons_wait(sq, 0, 100 * 1000000LL);
			if (r < 0 && r != -EINTR)
				die("waiting for a task", r);
			continue;
		}
		tier_cons_release(sq);
		if (m.type != TIER_MSG_TASK || m.len < sizeof(struct tier_task_hdr))
			continue;
		{
			struct tier_task_hdr h;
			uint32_t skip, len;

			memcpy(&h, rec, sizeof(h));
			skip = (uint32_t)sizeof(h) + h.type_len + h.context_len;
			len = skip <= m.len ? m.len - skip : 0;
			if (len > cap)
				len = cap;
			memcpy(buf, rec + skip, len);
			*ret_len = len;
		}
		return m.task_id;
	}
}

static void serve(void)
{
	char buf[4096];
	uint32_t len;

	for (;;) {
		uint64_t id = next_task(buf, sizeof(buf), &len);

		reply(id, buf, len);
	}
}

static void short_results(int bell)
{
	char buf[64];
	uint32_t len, four = 0;
	uint64_t id, one = 1;

	/* Without the eventfd a publish never wakes tierd (its futex path is
	 * one tierd does not wait on): tierd sees the records only when it
	 * polls the ring on its own, or on the one poke made once the ring is
	 * full. */
	if (!bell)
		tier_prod_set_eventfd(cq, -1);
	id = next_task(buf, sizeof(buf), &len);
	for (;;) {
		int r = tier_prod_write(cq, TIER_MSG_RESULT, 0, id, &four, sizeof(four));

		if (r == 0)
			r = tier_prod_publish(cq);
		if (r == -EAGAIN && !bell) {
			if (write(TIER_FD_CQ_BELL, &one, sizeof(one)) < 0)
				die("poking the doorbell", -errno);
			for (;;)
				pause();
		}
		if (r < 0 && r != -EAGAIN)
			die("writing", r);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "good";
	struct tier_hello h = { .proto = TIER_PROTO_VERSION, .pid = (uint32_t)getpid() };
	char buf[4096];
	uint32_t len;
	uint64_t id;
	void *map;

	setvbuf(stdout, NULL, _IONBF, 0);
	shm = tier_shm_attach(TIER_FD_RING);
	if (!shm)
		die("attaching the ring", -errno);
	cq = tier_shm_prod(shm);
	sq = tier_shm_cons(shm);
	tier_prod_set_eventfd(cq, TIER_FD_CQ_BELL);
	map = mmap(NULL, tier_shm_size(shm), PROT_READ | PROT_WRITE, MAP_SHARED, TIER_FD_RING, 0);
	if (map == MAP_FAILED)
		die("mapping the ring", -errno);
	sq_ctl = (struct tier_ring_ctl *)((char *)map + TIER_SHM_SQ_CTL);
	put(TIER_MSG_HELLO, 0, &h, sizeof(h));

	if (!strcmp(mode, "good"))
		serve();
	if (!strcmp(mode, "short-result"))
		short_results(1);
	if (!strcmp(mode, "short-result-nobell"))
		short_results(0);
	if (!strcmp(mode, "log-flood") || !strcmp(mode, "log-flood-yield")) {
		static const char line[] = "flood flood flood flood flood flood flood flood";
		int yield = !strcmp(mode, "log-flood-yield");

		for (;;) {
			int r = tier_prod_write(cq, TIER_MSG_LOG, 0, 0, line, sizeof(line) - 1);

			if (r == 0)
				r = tier_prod_publish(cq);
			else if (r == -EAGAIN && yield)
				sched_yield();
			if (r < 0 && r != -EAGAIN)
				die("writing", r);
		}
	}
	if (!strcmp(mode, "stdout-flood")) {
		static char out[65536];

		for (size_t i = 0; i < sizeof(out); i++)
			out[i] = i % 64 == 63 ? '\n' : 'x';
		for (;;)
			if (write(1, out, sizeof(out)) < 0 && errno != EINTR)
				die("writing stdout", -errno);
	}
	if (!strcmp(mode, "head-zero") || !strcmp(mode, "head-ahead")) {
		id = next_task(buf, sizeof(buf), &len);
		/* Corrupt the head before answering: once the test holds the
		 * answer, the next task tierd publishes must meet the bad head
		 * (the other order races tierd's publish of that task). */
		__atomic_store_n(&sq_ctl->head, !strcmp(mode, "head-zero") ? 0 : 1ull << 40,
				 __ATOMIC_RELEASE);
		reply(id, buf, len);
		for (;;)
			pause();
	}
	if (!strcmp(mode, "unknown-id") || !strcmp(mode, "dup-result") ||
	    !strcmp(mode, "other-id")) {
		id = next_task(buf, sizeof(buf), &len);
		if (!strcmp(mode, "unknown-id")) {
			reply(id + 1000000, buf, len);
		} else if (!strcmp(mode, "other-id")) {
			reply(id - 1, buf, len);
		} else {
			reply(id, buf, len);
			reply(id, buf, len);
		}
		serve();
	}
	if (!strcmp(mode, "bad-utf8-event")) {
		static const char ev[] = "probe\0bytes \xff\xfe\xc3( end";

		put(TIER_MSG_EVENT, 0, ev, sizeof(ev) - 1);
		serve();
	}
	if (!strcmp(mode, "bell-loop")) {
		uint64_t one = 1;

		for (;;)
			if (write(TIER_FD_CQ_BELL, &one, sizeof(one)) < 0 && errno != EAGAIN &&
			    errno != EINTR)
				die("writing the doorbell", -errno);
	}
	if (!strcmp(mode, "type16")) {
		put(16, 0, "x", 1);
		serve();
	}
	if (!strcmp(mode, "fork-refill")) {
		static const char line[] = "from the child";
		pid_t pid = fork();

		if (pid < 0)
			die("fork", -errno);
		if (pid == 0) {
			for (;;) {
				int r = tier_prod_write(cq, TIER_MSG_LOG, 0, 0, line, sizeof(line) - 1);

				if (r == 0)
					r = tier_prod_publish(cq);
				if (r < 0 && r != -EAGAIN)
					_exit(1);
			}
		}
		usleep(200 * 1000);
		return 3;
	}
	fprintf(stderr, "hostile-agent: unknown mode %s\n", mode);
	return 2;
}
