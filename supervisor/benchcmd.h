/* SPDX-License-Identifier: MIT */
/* bench-dispatch: tasks generated inside tierd, for the dispatch benchmark. */
#ifndef SUP_BENCHCMD_H
#define SUP_BENCHCMD_H

#include <jansson.h>
#include <stdint.h>

struct sup_daemon;
struct sup_ctl_client;

void sup_cmd_bench_dispatch(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args);

#endif
