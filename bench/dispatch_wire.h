/* SPDX-License-Identifier: MIT */
/* Records the baseline workers (bench/agents) and their drivers exchange. */
#ifndef DISPATCH_WIRE_H
#define DISPATCH_WIRE_H

#include <stdint.h>

/* Every benchmark task carries 64 payload bytes. */
#define DISP_PAYLOAD 64

/* Pipe pool: fixed records both ways. */
struct disp_pool_task {
	uint64_t id;
	uint32_t len;
	uint32_t pad;
	char     payload[DISP_PAYLOAD];
};

struct disp_pool_reply {
	uint64_t id;
	uint32_t status;
	uint32_t len;
};

/* ZeroMQ: a request is the id followed by the payload; a reply names the
 * worker, so a client can tell when every worker has connected. */
struct disp_zmq_req {
	uint64_t id;
	char     payload[DISP_PAYLOAD];
};

struct disp_zmq_reply {
	uint64_t id;
	uint32_t worker;
	uint32_t status;
};

#endif
