/* SPDX-License-Identifier: MIT */
/*
 * VM: memory.max with memory.oom.group. An agent allocating past its
 * leaf's 32 MiB limit is OOM-killed together with its sibling in the leaf;
 * memory.events counts it, and the module sees the change through a
 * POLLPRI watch on memory.events (no polling loop).
 */
#include "vmtest.h"

#define LIMIT     "32M"
#define LIMIT_B   (32ull << 20)
#define ALLOC_MIB "256"

static int exit_signal(pid_t pid, double timeout)
{
	double end = vt_now() + timeout;
	int st;

	while (vt_now() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFSIGNALED(st) ? WTERMSIG(st) : -WEXITSTATUS(st) - 1000;
		vt_sleep(0.01);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *test = "memory_oom_group";
	struct sup_cg_mem_events ev = { 0 };
	struct sup_cg_leaf *leaf;
	struct sup_cg *cg;
	char buf[512];
	int fd, wfd, wakeups = 0, sig_hog, sig_sib;
	uint64_t peak = 0;
	double t0, seen = -1;
	pid_t sib, hog;

	if (vt_is_worker(argc, argv))
		return vt_worker(argc, argv);
	vt_setup_process();
	cg = vt_open(test, "vmt-mem");
	if (!cg)
		return 1;
	if (!vt_need(cg, test, SUP_CG_MEMORY) || sup_cg_leaf_open(cg, 3, "hog", &leaf) < 0)
		goto destroy_cg;
	fd = sup_cg_leaf_fd(leaf);
	if (!vt_set(cg, test, fd, "tier3/agent-hog", SUP_CG_K_MEMORY_MAX, LIMIT) ||
	    !vt_set(cg, test, fd, "tier3/agent-hog", SUP_CG_K_MEMORY_OOM_GROUP, "1"))
		goto out_leaf;
	if (sup_cg_knob_present(fd, SUP_CG_K_MEMORY_SWAP_MAX) == 1 &&
	    !vt_set(cg, test, fd, "tier3/agent-hog", SUP_CG_K_MEMORY_SWAP_MAX, "0"))
		goto out_leaf;
	wfd = sup_cg_watch_open(fd, "memory.events");
	if (wfd < 0) {
		vt_fail(test, "watch memory.events: %s", strerror(-wfd));
		goto out_leaf;
	}
	sib = vt_spawn(fd, "sleep", NULL);
	hog = vt_spawn(fd, "alloc", ALLOC_MIB);
	if (sib < 0 || hog < 0) {
		vt_fail(test, "spawn failed");
		goto out_watch;
	}
	/* Block on the watch: every wake-up re-reads and re-parses. */
	t0 = vt_now();
	while (vt_now() - t0 < 30) {
		int r = sup_cg_watch_wait(wfd, 1000), n;

		if (r <= 0)
			continue;
		wakeups++;
		n = sup_cg_watch_read(wfd, buf, sizeof(buf));
		if (n > 0 && sup_cg_parse_mem_events(buf, (size_t)n, &ev) == 0 && ev.oom_kill > 0) {
			seen = vt_now() - t0;
			break;
		}
	}
	sig_hog = exit_signal(hog, 10);
	sig_sib = exit_signal(sib, 10);
	sup_cg_read_mem_events(fd, &ev);
	sup_cg_read_u64(fd, "memory.peak", &peak);
	vt_note("memory.events: max=%llu oom=%llu oom_kill=%llu oom_group_kill=%llu; "
		"memory.peak=%llu; %d watch wake-ups",
		(unsigned long long)ev.max, (unsigned long long)ev.oom,
		(unsigned long long)ev.oom_kill, (unsigned long long)ev.oom_group_kill,
		(unsigned long long)peak, wakeups);
	if (seen < 0)
		vt_fail(test, "no oom_kill seen through the memory.events watch in 30 s");
	else if (sig_hog != SIGKILL || sig_sib != SIGKILL)
		vt_fail(test, "hog ended with %d, sibling with %d; both should be SIGKILLed (group)",
			sig_hog, sig_sib);
	else if (ev.oom_kill < 1 || ev.oom_group_kill < 1)
		vt_fail(test, "memory.events oom_kill=%llu oom_group_kill=%llu",
			(unsigned long long)ev.oom_kill, (unsigned long long)ev.oom_group_kill);
	else if (peak > LIMIT_B)
		vt_fail(test, "memory.peak %llu above the %s limit", (unsigned long long)peak, LIMIT);
	else
		vt_pass(test, "allocating past memory.max=%s: OOM-killed after %.2f s with its "
			"sibling (oom_kill=%llu, oom_group_kill=%llu, peak %.1f MiB), seen via "
			"POLLPRI on memory.events", LIMIT, seen, (unsigned long long)ev.oom_kill,
			(unsigned long long)ev.oom_group_kill, (double)peak / (1 << 20));
out_watch:
	close(wfd);
out_leaf:
	sup_cg_leaf_free(leaf);
destroy_cg:
	vt_destroy(cg, test);
	return vt_failures ? 1 : 0;
}
