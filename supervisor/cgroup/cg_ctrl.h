/* SPDX-License-Identifier: MIT */
/*
 * cg_ctrl — the cgroup v2 controllers tierd drives, and their names. Its
 * own module because both the tier tree (cgroup.h: which controllers are
 * live) and the knobs (cg_knob.h: which controller a knob belongs to) name
 * them, and the knobs need the tree handle: sharing them here keeps the
 * tree from depending on the knobs.
 */
#ifndef SUP_CG_CTRL_H
#define SUP_CG_CTRL_H

enum sup_cg_ctrl {
	SUP_CG_CPU,
	SUP_CG_CPUSET,
	SUP_CG_MEMORY,
	SUP_CG_IO,
	SUP_CG_PIDS,
	SUP_CG_NCTRL,
};

/* "cpu", "memory" ... as in cgroup.controllers; "?" out of range. */
const char *sup_cg_ctrl_name(enum sup_cg_ctrl c);

#endif
