/* SPDX-License-Identifier: MIT */
/* One incarnation of an agent (see agent.h for struct sup_inc). */
#ifndef SUP_INC_H
#define SUP_INC_H

#include <stddef.h>

#include "agent.h"

/* Spawn a new incarnation of ag into its leaf; on success ag->inc is set
 * and its exit, doorbell and output are watched. On failure err says which
 * step failed and why (e.g. "…/bin/x: execve: No such file or directory"). */
int sup_inc_spawn(struct sup_agent *ag, char *err, size_t errlen);

/* Send a signal through the pidfd (0 if it already exited). */
int sup_inc_signal(struct sup_inc *inc, int sig);

/* ag's current incarnation broke the protocol (what: a sentence naming the
 * fault; err: a ring error or 0): the first call per incarnation records
 * one protocol_violation event and kills it, later ones do nothing. */
void sup_inc_fault(struct sup_agent *ag, const char *what, int err);

/* The loop's idle hook (see sup_idle_hook): poll the completion rings of
 * agents with tasks in flight, then put them to sleep on their doorbells. */
int sup_inc_idle_spin(void *arg);
int sup_inc_before_sleep(void *arg);

/* Free detached incarnations whose io_uring operations have all ended. */
void sup_inc_reap_dead(struct sup_daemon *d);

#endif
