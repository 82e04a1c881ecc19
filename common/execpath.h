/* SPDX-License-Identifier: MIT */
/*
 * execpath — find the executable an agent's exec line names. Pure but for
 * access(2): tierd resolves before it spawns (so a missing binary is a
 * config error, not a failed child), agentd before it runs its command.
 */
#ifndef SUP_EXECPATH_H
#define SUP_EXECPATH_H

#include <stddef.h>

/* Find an executable: a name with '/' must be executable as it is;
 * otherwise each directory of path_env (":"-separated; NULL: the usual
 * system directories) is tried. Writes into buf; -ENOENT, -EACCES … */
int sup_spawn_resolve(const char *name, const char *path_env, char *buf, size_t len);

#endif
