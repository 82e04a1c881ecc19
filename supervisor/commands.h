/* SPDX-License-Identifier: MIT */
/* Control commands (see docs/control.md for each one's arguments). */
#ifndef SUP_COMMANDS_H
#define SUP_COMMANDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sup_daemon;
struct sup_ctl_client;

void sup_cmd_dispatch(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, const char *cmd,
		      json_t *args);
/* Control client c closed: what it waits for is kept to be fetched by id. */
void sup_cmd_client_gone(struct sup_daemon *d, struct sup_ctl_client *c);
/* At the end, after the task table and the workflow are freed. */
void sup_cmd_fini(struct sup_daemon *d);
void sup_cmd_upgrade_notify(struct sup_daemon *d);

#endif
