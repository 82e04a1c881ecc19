/* SPDX-License-Identifier: MIT */
/*
 * VM: pids.max. A fork bomb in a leaf with pids.max 16 reaches the limit
 * and never passes it: the processes listed in cgroup.procs, sampled for
 * 2 s, peak at exactly 16. pids.current may read a little higher for an
 * instant: the kernel charges a fork before checking the limit and reverts
 * a refused one, so each CPU can hold one such charge (bounded by limit +
 * CPUs here). cgroup.kill then empties the leaf and every process of the
 * bomb is gone.
 */
#include "vmtest.h"

#define LIMIT 16

static uint64_t pids_events_max(int fd)
{
	char buf[128];
	unsigned long long v = 0;

	if (sup_cg_read_file(fd, "pids.events", buf, sizeof(buf)) > 0)
		sscanf(buf, "max %llu", &v);
	return v;
}

int main(int argc, char **argv)
{
	const char *test = "pids_max";
	struct sup_cg_leaf *leaf;
	struct sup_cg *cg;
	uint64_t cur, top = 0, after = 1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pid_t pids[64];
	int procs, top_procs = 0;
	double t0, t_kill;
	int fd, r, reaped;
	char lim[16];
	pid_t pid;

	if (vt_is_worker(argc, argv))
		return vt_worker(argc, argv);
	vt_setup_process();
	cg = vt_open(test, "vmt-pids");
	if (!cg)
		return 1;
	if (!vt_need(cg, test, SUP_CG_PIDS) || sup_cg_leaf_open(cg, 4, "bomb", &leaf) < 0)
		goto destroy_cg;
	fd = sup_cg_leaf_fd(leaf);
	snprintf(lim, sizeof(lim), "%d", LIMIT);
	if (!vt_set(cg, test, fd, "tier4/agent-bomb", SUP_CG_K_PIDS_MAX, lim))
		goto out_leaf;
	pid = vt_spawn(fd, "bomb", NULL);
	if (pid < 0) {
		vt_fail(test, "spawn: %s", strerror(-pid));
		goto out_leaf;
	}
	for (t0 = vt_now(); vt_now() - t0 < 2.0; vt_sleep(0.02)) {
		procs = sup_cg_list_pids(fd, pids, 64);
		if (procs > top_procs)
			top_procs = procs;
		if (sup_cg_read_u64(fd, "pids.current", &cur) == 0 && cur > top)
			top = cur;
	}
	t_kill = vt_now();
	r = sup_cg_kill(fd);
	if (r == 0)
		r = sup_cg_wait_empty(fd, 5000);
	t_kill = vt_now() - t_kill;
	/* A zombie still holds its pid charge: count after reaping. */
	reaped = vt_reap_all(5.0);
	sup_cg_read_u64(fd, "pids.current", &after);
	vt_note("cgroup.procs peaked at %d, pids.current at %llu; pids.events max=%llu; "
		"%d processes reaped", top_procs, (unsigned long long)top,
		(unsigned long long)pids_events_max(fd), reaped);
	if (top_procs != LIMIT)
		vt_fail(test, "the bomb peaked at %d processes, limit %d", top_procs, LIMIT);
	else if (top < LIMIT || top > (uint64_t)(LIMIT + ncpu))
		vt_fail(test, "pids.current peaked at %llu, limit %d (+%ld CPUs of transient charge)",
			(unsigned long long)top, LIMIT, ncpu);
	else if (pids_events_max(fd) == 0)
		vt_fail(test, "pids.events reports no refused fork");
	else if (r < 0 || after != 0)
		vt_fail(test, "cgroup.kill left %llu processes (%s)", (unsigned long long)after,
			strerror(-r));
	else if (reaped < LIMIT)
		vt_fail(test, "reaped %d processes, expected %d", reaped, LIMIT);
	else
		vt_pass(test, "fork bomb held at pids.max=%d (peak %d processes, pids.current "
			"peak %llu, %llu forks refused), cgroup.kill emptied the leaf in %.0f ms, "
			"%d processes reaped", LIMIT, top_procs, (unsigned long long)top,
			(unsigned long long)pids_events_max(fd), t_kill * 1000, reaped);
out_leaf:
	sup_cg_leaf_free(leaf);
destroy_cg:
	vt_destroy(cg, test);
	return vt_failures ? 1 : 0;
}
