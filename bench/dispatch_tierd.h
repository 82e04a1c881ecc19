/* SPDX-License-Identifier: MIT */
/*
 * A real tierd for the dispatch benchmark: a generated config in the
 * benchmark's directory (own cgroup root, own control socket, warnings only,
 * no metrics), started, waited for, talked to over its control socket, and
 * stopped by its pid, its own tree killed through its cgroup if anything is
 * left.
 */
#ifndef DISPATCH_TIERD_H
#define DISPATCH_TIERD_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

struct disp_tierd {
	char     name[64];     /* cgroup_root */
	char     sock[108];
	char     conf[256];
	char     log[256];
	char     cg[512];      /* the cgroup root's directory, from status */
	pid_t    pid;
	int      fd;           /* control connection */
	uint64_t next_id;
	char    *buf;          /* bytes read, not yet a line */
	size_t   len, cap;
};

/* Write DIR/TAG.ini (the [supervisor] section, plus sup_extra lines if not
 * NULL, then agents, the text given) and start tierd with it; wait until
 * every agent is ready. On failure the log's tail is printed and everything
 * started is stopped. */
int disp_tierd_start(struct disp_tierd *t, const char *tierd_bin, const char *dir, const char *tag,
		     const char *sup_extra, const char *agents);
/* One request; returns the result object (a new reference) or NULL with
 * the error sentence in err. args is stolen (NULL: none). */
json_t *disp_tierd_call(struct disp_tierd *t, const char *cmd, json_t *args, char *err, size_t errlen);
/* Same, timing the round trip (ns, on our clock). */
json_t *disp_tierd_call_timed(struct disp_tierd *t, const char *cmd, json_t *args, int64_t *ret_ns,
			      char *err, size_t errlen);
/* <cgroup root>/SUB (e.g. "supervisor", "tier3"), for cpu.stat. */
void disp_tierd_cg(const struct disp_tierd *t, const char *sub, char *buf, size_t len);
void disp_tierd_stop(struct disp_tierd *t);

#endif
