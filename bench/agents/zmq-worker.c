/* SPDX-License-Identifier: MIT */
/*
 * zmq-worker — a worker of the ZeroMQ baselines (dispatch_zmq.c).
 *
 *   zmq-worker lru INDEX BACKEND        REQ worker of the load-balancing
 *                                       broker: "READY", then one request
 *                                       at a time, reply through the broker
 *   zmq-worker push INDEX SOURCE SINK   PULL tasks from SOURCE, PUSH replies
 *                                       to SINK (the collector)
 *
 * A request is struct disp_zmq_req; the reply is struct disp_zmq_reply.
 * Envelopes (the LRU broker's client address) are sent back unchanged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "../dispatch_wire.h"

#define FRAME_MAX 256

static void *sock(void *ctx, int type)
{
	void *s = zmq_socket(ctx, type);
	int zero = 0;

	if (!s)
		return NULL;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof(zero));
	return s;
}

static int recv_frame(void *s, void *buf, size_t cap, int *more)
{
	size_t ml = sizeof(*more);
	int n;

	do
		n = zmq_recv(s, buf, cap, 0);
	while (n < 0 && zmq_errno() == EINTR);
	if (n < 0 || (size_t)n > cap)
		return -1;
	zmq_getsockopt(s, ZMQ_RCVMORE, more, &ml);
	return n;
}

static int send_frame(void *s, const void *buf, size_t len, int flags)
{
	int n;

	do
		n = zmq_send(s, buf, len, flags);
	while (n < 0 && zmq_errno() == EINTR);
	return n < 0 ? -1 : 0;
}

/* REQ: the broker's envelope is [client address, "", request]. */
static int run_lru(void *ctx, uint32_t index, const char *backend)
{
	void *s = sock(ctx, ZMQ_REQ);
	char client[FRAME_MAX], empty[8];
	struct disp_zmq_req req;
	struct disp_zmq_reply rep = { .worker = index };
	int more, cl;

	if (!s || zmq_connect(s, backend) < 0 || send_frame(s, "READY", 5, 0) < 0)
		return 1;
	for (;;) {
		if ((cl = recv_frame(s, client, sizeof(client), &more)) < 0 || !more ||
		    recv_frame(s, empty, sizeof(empty), &more) < 0 || !more ||
		    recv_frame(s, &req, sizeof(req), &more) < 0 || more)
			return 1;
		rep.id = req.id;
		if (send_frame(s, client, (size_t)cl, ZMQ_SNDMORE) < 0 ||
		    send_frame(s, "", 0, ZMQ_SNDMORE) < 0 || send_frame(s, &rep, sizeof(rep), 0) < 0)
			return 1;
	}
}

static int run_push(void *ctx, uint32_t index, const char *source, const char *sink)
{
	void *in = sock(ctx, ZMQ_PULL), *out = sock(ctx, ZMQ_PUSH);
	struct disp_zmq_req req;
	struct disp_zmq_reply rep = { .worker = index };
	int more;

	if (!in || !out || zmq_connect(in, source) < 0 || zmq_connect(out, sink) < 0)
		return 1;
	for (;;) {
		if (recv_frame(in, &req, sizeof(req), &more) < 0 || more)
			return 1;
		rep.id = req.id;
		if (send_frame(out, &rep, sizeof(rep), 0) < 0)
			return 1;
	}
}

int main(int argc, char **argv)
{
	void *ctx = zmq_ctx_new();

	if (!ctx)
		return 1;
	if (argc == 4 && !strcmp(argv[1], "lru"))
		return run_lru(ctx, (uint32_t)atoi(argv[2]), argv[3]);
	if (argc == 5 && !strcmp(argv[1], "push"))
		return run_push(ctx, (uint32_t)atoi(argv[2]), argv[3], argv[4]);
	fprintf(stderr, "usage: zmq-worker lru INDEX BACKEND | push INDEX SOURCE SINK\n");
	return 2;
}
