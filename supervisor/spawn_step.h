/* SPDX-License-Identifier: MIT */
/*
 * spawn_step — where a failed spawn stopped. Its own header because both the
 * child's set-up (spawn.h) and the sandbox steps it runs (sandbox.h) report
 * one, and spawn.c calls into the sandbox: sharing the enum here keeps
 * sandbox.h from including spawn.h.
 */
#ifndef SUP_SPAWN_STEP_H
#define SUP_SPAWN_STEP_H

enum sup_spawn_step {
	SUP_STEP_NONE = 0,
	SUP_STEP_CLONE, SUP_STEP_FDS, SUP_STEP_SETSID, SUP_STEP_CHDIR, SUP_STEP_RLIMIT,
	SUP_STEP_CAPBSET, SUP_STEP_SETGROUPS, SUP_STEP_SETGID, SUP_STEP_KEEPCAPS,
	SUP_STEP_SETUID, SUP_STEP_CAPSET, SUP_STEP_AMBIENT, SUP_STEP_NO_NEW_PRIVS,
	SUP_STEP_PDEATHSIG, SUP_STEP_PARENT_GONE, SUP_STEP_SIGNALS, SUP_STEP_EXEC,
	SUP_STEP_CGROUPNS, SUP_STEP_MNTNS, SUP_STEP_SB_UNSHARE, SUP_STEP_SB_SLAVE,
	SUP_STEP_SB_CGROUP_RO, SUP_STEP_SB_HIDE_SOCKET, SUP_STEP_SB_PROC_SYS,
};

#endif
