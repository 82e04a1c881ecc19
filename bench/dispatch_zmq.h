/* SPDX-License-Identifier: MIT */
/*
 * Baselines (a) and (b): ZeroMQ over ipc://, 24 worker processes
 * (bench/agents/zmq-worker), and a client in its own process.
 *
 *   (a) DISP_ZMQ_LRU   the classic load-balancing broker (zguide "lbbroker")
 *       in its own process: clients on a ROUTER, REQ workers on a ROUTER,
 *       each request to the least recently ready worker. The client is a
 *       DEALER keeping the load's window in flight through the broker.
 *   (b) DISP_ZMQ_PUSH  fan-out: the client PUSHes tasks to PULL workers,
 *       which PUSH results to the client's PULL collector.
 */
#ifndef DISPATCH_ZMQ_H
#define DISPATCH_ZMQ_H

#include <sys/types.h>

#include "dispatch_util.h"

enum disp_zmq_kind { DISP_ZMQ_LRU, DISP_ZMQ_PUSH };

#define DISP_ZMQ_MAX_WORKERS 256

struct disp_zmq {
	enum disp_zmq_kind kind;
	unsigned           nworkers;
	pid_t              broker;
	pid_t              workers[DISP_ZMQ_MAX_WORKERS];
	struct disp_proc   client;
	char               front[256], back[256];   /* endpoints */
	volatile unsigned *ready;                   /* broker: workers seen */
};

int  disp_zmq_start(struct disp_zmq *z, enum disp_zmq_kind kind, const char *dir, const char *worker,
		    unsigned nworkers);
/* One load; disp_cpu_ns is the broker's CPU (a), the client's (b: it is
 * the dispatcher). */
int  disp_zmq_measure(struct disp_zmq *z, const struct disp_load *ld, struct disp_result *ret);
void disp_zmq_stop(struct disp_zmq *z);

#endif
