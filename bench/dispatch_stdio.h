/* SPDX-License-Identifier: MIT */
/*
 * Baselines of the agentd benchmark, both running bench/agents/echo-json:
 *   direct  a minimal driver: one echo-json --stdio child over two pipes,
 *           JSON request lines pipelined up to the window, reply lines read
 *           in batches (what agentd's stdio mode does, minus tierd and the
 *           rings)
 *   xargs   xargs -P PAR -n 1 echo-json --arg PAYLOAD: one process per task
 */
#ifndef DISPATCH_STDIO_H
#define DISPATCH_STDIO_H

#include "dispatch_util.h"

int disp_stdio_direct(const char *echo_json, const struct disp_load *ld, struct disp_result *ret);
int disp_xargs(const char *echo_json, const char *dir, uint64_t n, unsigned par, struct disp_result *ret);

#endif
