/* SPDX-License-Identifier: MIT */
/* cg_ctrl — see cg_ctrl.h. */
#include "cg_ctrl.h"

static const char *const ctrl_names[SUP_CG_NCTRL] = {
	[SUP_CG_CPU] = "cpu",
	[SUP_CG_CPUSET] = "cpuset",
	[SUP_CG_MEMORY] = "memory",
	[SUP_CG_IO] = "io",
	[SUP_CG_PIDS] = "pids",
};

const char *sup_cg_ctrl_name(enum sup_cg_ctrl c)
{
	return (unsigned)c < SUP_CG_NCTRL ? ctrl_names[c] : "?";
}
