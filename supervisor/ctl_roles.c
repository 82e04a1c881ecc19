/* SPDX-License-Identifier: MIT */
/* The control commands anyone with the read role may use. */
#include <stddef.h>
#include <string.h>

#include "ctl_roles.h"

/* Pure reads: they change nothing and cost tierd a bounded reply. */
static const char *const reads[] = {
	"status", "agents", "events", "top", "history", "limits", "analyze",
	"runs", "trace", "result", "fleet-status",
};

const char *sup_ctl_role_name(enum sup_ctl_role r)
{
	switch (r) {
	case SUP_CTL_ROLE_READ:  return "read-only";
	case SUP_CTL_ROLE_ADMIN: return "admin";
	case SUP_CTL_ROLE_NONE:  break;
	}
	return "none";
}

enum sup_ctl_role sup_ctl_cmd_role(const char *cmd)
{
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (!strcmp(reads[i], cmd))
			return SUP_CTL_ROLE_READ;
	return SUP_CTL_ROLE_ADMIN;
}
