/* SPDX-License-Identifier: MIT */
/*
 * The load client of the journal benchmark (journal_bench.c): C connections
 * to one Unix socket, each with exactly one request outstanding, driven from
 * one thread by epoll, until a fixed count of requests has been answered.
 * The same client drives tierd (a detached `submit`, one JSON line) and
 * beanstalkd (`put`), so the two differ only in the server.
 */
#ifndef JB_LOAD_H
#define JB_LOAD_H

#include <stddef.h>
#include <stdint.h>

enum jb_proto {
	JB_TIERD,      /* {"id":N,"cmd":"submit","args":{...,"detach":true}} -> {"id":N,"ok":true,...} */
	JB_BEANSTALK,  /* put 0 0 60 LEN\r\nDATA\r\n -> INSERTED ID\r\n */
};

struct jb_result {
	double   per_s;     /* requests answered per second, first send to last reply */
	uint64_t p50_ns, p99_ns, max_ns;
	uint64_t errors;    /* replies that were not an acknowledgement */
	char     first_error[160];
};

/*
 * Run n requests over conns connections to the socket at path. The payload
 * of each is payload (text, no quotes or control characters); submit_args
 * is the JSON of tierd's target ("\"tier\":1" ...), unused for beanstalkd.
 * 0 with *ret filled, or -errno (a connection failed or was closed).
 */
int jb_load_run(enum jb_proto proto, const char *path, int conns, size_t n, const char *submit_args,
		const char *payload, struct jb_result *ret);

/* Connect to the Unix socket at path, retrying for up to timeout_ms: fd or -errno. */
int jb_connect(const char *path, int timeout_ms);

#endif
