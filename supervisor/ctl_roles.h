/* SPDX-License-Identifier: MIT */
/*
 * ctl_roles — who may do what on the control socket. A peer gets one role
 * at connect (ctl_sock.c decides it from its credentials); each command
 * needs one. Pure reads need SUP_CTL_ROLE_READ (members of control_group);
 * everything that changes tierd, its agents or its tasks, or costs it work
 * on request, needs SUP_CTL_ROLE_ADMIN (root, tierd's own uid, members of
 * admin_group). A command not in the table needs admin: a new command is
 * closed until someone decides it is a read.
 */
#ifndef SUP_CTL_ROLES_H
#define SUP_CTL_ROLES_H

enum sup_ctl_role {
	SUP_CTL_ROLE_NONE,    /* refused at connect */
	SUP_CTL_ROLE_READ,
	SUP_CTL_ROLE_ADMIN,
};

/* "none", "read-only", "admin". */
const char *sup_ctl_role_name(enum sup_ctl_role r);
/* The role cmd needs; SUP_CTL_ROLE_ADMIN for a name not in the table. */
enum sup_ctl_role sup_ctl_cmd_role(const char *cmd);

#endif
