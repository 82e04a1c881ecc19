/* SPDX-License-Identifier: MIT */
/*
 * The baselines of the supervision benchmark: s6 (s6-svscan, s6-supervise)
 * and runit (runsvdir, runsv), each over a scan directory of n service
 * directories on the run's tmpfs whose `run` is a symlink to the trivial
 * agent, the whole tree in a cgroup of its own below the run's.
 *
 * Readiness is read from each service's supervise/status file, the file
 * s6-svstat and sv read (both supervisors write it to a temporary name and
 * rename it, so a read never sees half a record):
 *   s6     35 bytes: pid (big-endian u64) at 24, flags at 34 (bit 3: the
 *          service wrote to its notification-fd); ready = pid != 0 and bit 3
 *   runit  20 bytes: pid (little-endian u32) at 12, state at 19 (1 = run);
 *          runit has no readiness protocol: ready = state run with a pid,
 *          which runsv writes right after fork, before the agent even execs
 */
#ifndef SVB_SVDIR_H
#define SVB_SVDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "svb_util.h"

enum svb_svd_kind { SVB_SVD_S6, SVB_SVD_RUNIT };

struct svb_svd {
	enum svb_svd_kind      kind;
	const struct svb_env  *env;
	unsigned               n;
	char                   scan[PATH_MAX];   /* the scan directory, on the tmpfs */
	char                   cg_rel[128];      /* below the cgroup2 mount */
	char                   cg[PATH_MAX];
	char                   log[PATH_MAX];    /* the supervisor's stdout and stderr */
	char                  *paths;            /* n status paths, SVB_SVD_PATH bytes apart */
	unsigned               nready;           /* the last nready services were seen ready */
	struct svb_proc        proc;             /* s6-svscan or runsvdir, parked */
	pid_t                  pid;              /* the same, once started */
};

/* Service directories and the cgroup; nothing runs yet. seq names them. */
int svb_svd_prepare(struct svb_svd *s, enum svb_svd_kind kind, const struct svb_env *env,
		    unsigned n, unsigned seq);
/* Fork the scanner (s6-svscan or runsvdir) into the cgroup, parked before
 * exec; then start it. */
int svb_svd_arm(struct svb_svd *s);
int svb_svd_start(struct svb_svd *s);
/* How many services are ready, from the last down to the first not ready
 * (n once all are): the count all-ready waits for. */
int svb_svd_ready_count(struct svb_svd *s);
/* Service i's pid when it is ready (as defined above), else 0; -errno. */
pid_t svb_svd_ready_pid(const struct svb_svd *s, unsigned i);
/* Stop the scanner the way an operator would (s6: SIGTERM to s6-svscan;
 * runit: "dx" to every supervise/control, SIGHUP to runsvdir), time it until
 * the cgroup is empty (*ret_ns), then remove the cgroup and the service
 * directories. 0 when nothing was left; -EBUSY when something had to be
 * killed or could not be removed (what is said in why). */
int svb_svd_stop(struct svb_svd *s, int64_t timeout_ns, int64_t *ret_ns, char *why, size_t whylen);
/* CPU time (ns) of the supervision processes (scanner and supervisors,
 * not the agents) and how many there are. */
int64_t svb_svd_cpu_ns(const struct svb_svd *s, unsigned *ret_nproc);
/* Kill whatever is left and remove everything (after a failure). */
void svb_svd_abandon(struct svb_svd *s);
const char *svb_svd_name(const struct svb_svd *s);

#endif
