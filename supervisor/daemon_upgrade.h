/* SPDX-License-Identifier: MIT */
/*
 * Live upgrade: tierd re-executes itself (or another binary) in place, with
 * the same pid, handing every agent, task, run, socket and counter across
 * in a sealed memfd (docs/operations.md for operators, docs/handover.md
 * for the format). A new binary that cannot take the state over hands it
 * back to the old one, which goes on as if nothing happened, and the
 * client that asked is told why.
 */
#ifndef SUP_DAEMON_UPGRADE_H
#define SUP_DAEMON_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sup_daemon;
struct sup_daemon_cmds;
struct sup_ctl_client;
struct sup_ho_r;

/* The environment the old binary passes besides SUP_HO_ENV. */
#define SUP_UPGRADE_ROLLBACK_ENV "TIERD_ROLLBACK_FD"
#define SUP_UPGRADE_ERROR_ENV    "TIERD_UPGRADE_ERROR"

/* The `upgrade` command (c may be NULL: SIGUSR2). Refusals are answered
 * here; once it starts, the answer comes from the binary that runs
 * afterwards (the new one, or this one again after a rollback). */
void sup_daemon_upgrade(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id,
			const char *binary);

/* main() of a binary started by an upgrade (SUP_HO_ENV set): restore, or
 * hand the state back to the previous binary. Returns only to exit. */
int sup_daemon_restore_main(struct sup_daemon *d, char **argv, const char *self_dir,
			    const struct sup_daemon_cmds *cmds);

/* Answer the client that asked for the upgrade on its own socket (one
 * line, blocking; msg stolen). */
#include <jansson.h>
void sup_upgrade_answer(int fd, json_t *msg);

#endif
