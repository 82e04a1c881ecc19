/* SPDX-License-Identifier: MIT */
/*
 * cg_enforce — which configured limits this host can enforce (finding 7
 * of issue 9). A limit is enforced only when its controller is in the
 * cgroup2 hierarchy; on a hybrid host pids, memory, cpu and io are often
 * bound to v1, and tierd sets no v1 limits. `--check-config` and
 * `tierctl status` name the limits of each agent and tier that are
 * written nowhere.
 */
#ifndef SUP_CG_ENFORCE_H
#define SUP_CG_ENFORCE_H

#include <stddef.h>

#include "cg_knob.h"
#include "../config/config.h"

#define SUP_CG_WHY_MAX 512

/* The controller a limit key is written to. */
enum sup_cg_ctrl sup_limit_ctrl(enum sup_limit l);

/* SUP_LIM_BIT()s of the limits set in l whose controller is not in live
 * (bit n: enum sup_cg_ctrl n is in cgroup2). */
unsigned sup_limits_unenforced(const struct sup_limits *l, unsigned live);

/* "pids_max, memory_max": the keys of bits, in enum order. What snprintf
 * returns. */
int sup_limits_format(unsigned bits, char *buf, size_t sz);

/* This host: which controllers the cgroup2 root offers (its
 * cgroup.controllers), and why each other one is missing (cg_proc's
 * explanation; "" when none is known). 0, or -errno when no cgroup2 is
 * mounted (then *ret_live is 0 and why[] says so). */
int sup_cg_host_controllers(unsigned *ret_live, char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX]);

/* One warning per agent and per tier with unenforced limits, appended to
 * errs (sup_config_check_host in host_check.c). */
void sup_config_check_host(const struct sup_config *c, unsigned live,
			   char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX], struct sup_config_errors *errs);

#endif
