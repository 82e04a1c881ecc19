/* SPDX-License-Identifier: MIT */
/*
 * The sandbox's cost at spawn (supervise_bench.c): sup_spawn() of
 * /bin/sleep into a scratch leaf, SIGKILL, reap; timed without the
 * sandbox, joining the shared prepared namespace (what tierd does), and
 * making a namespace per agent (the alternative it rejected). Printed as
 * medians: the parent's wait inside sup_spawn (tierd's loop is blocked
 * that long) and kill-to-reaped (a private namespace is torn down there).
 */
#ifndef SVB_SANDBOX_H
#define SVB_SANDBOX_H

#include "svb_util.h"

/* 0, or -errno when the scratch leaf or the namespace could not be made. */
int svb_sandbox_run(const struct svb_env *env, unsigned n);

#endif
