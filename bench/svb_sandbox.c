/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../supervisor/sandbox.h"
#include "../supervisor/spawn.h"
#include "bench.h"
#include "svb_sandbox.h"

enum mode { M_OFF, M_SHARED, M_PER_AGENT, M_N };
static const char *const mode_name[M_N] = {
	"sandbox off", "shared namespace (setns)", "namespace per agent",
};

static int one(int leaf, enum mode m, int nsfd, const struct sup_sandbox_plan *plan,
	       const char *agent, double *spawn_us, double *reap_us)
{
	char *argv[] = { (char *)agent, "1000", NULL };
	char *envp[] = { NULL };
	struct sup_spawn_req req = {
		.leaf_fd = leaf, .path = agent, .argv = argv, .envp = envp,
		.fd_ring = -1, .fd_cq_bell = -1, .fd_sq_bell = -1,
		.fd_stdin = -1, .fd_stdout = -1, .fd_stderr = -1,
		.pdeath_signal = SIGKILL,
		.sandbox = m != M_OFF, .mntns_fd = m == M_SHARED ? nsfd : -1, .sandbox_plan = plan,
	};
	struct sup_spawn_result res;
	siginfo_t si;
	int64_t t0, t1, t2;
	int r;

	t0 = bench_now_ns();
	r = sup_spawn(&req, &res);
	t1 = bench_now_ns();
	if (r < 0)
		return r;
	syscall(SYS_pidfd_send_signal, res.pidfd, SIGKILL, NULL, 0);
	while (waitid(P_PIDFD, (id_t)res.pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	t2 = bench_now_ns();
	close(res.pidfd);
	*spawn_us = (double)(t1 - t0) / 1e3;
	*reap_us = (double)(t2 - t1) / 1e3;
	return 0;
}

int svb_sandbox_run(const struct svb_env *env, unsigned n)
{
	struct sup_sandbox_plan plan;
	enum sup_spawn_step step;
	char leaf_path[600];
	double *sp[M_N], *rp[M_N];
	int leaf = -1, nsfd = -1, r;

	snprintf(leaf_path, sizeof(leaf_path), "%s/sandbox-leaf", env->top);
	if (mkdir(leaf_path, 0755) < 0 && errno != EEXIST)
		return -errno;
	leaf = open(leaf_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (leaf < 0) {
		r = -errno;
		goto out_rmdir;
	}
	r = sup_sandbox_plan_load(&plan, NULL);
	if (r < 0)
		goto out_close;
	r = sup_sandbox_prepare(&plan, &nsfd, &step);
	if (r < 0) {
		printf("sandbox spawn cost: NOT MEASURED: %s: %s\n", sup_spawn_step_name(step),
		       strerror(-r));
		goto out_plan;
	}
	for (int m = 0; m < M_N; m++) {
		sp[m] = calloc(n, sizeof(double));
		rp[m] = calloc(n, sizeof(double));
	}
	/* Interleaved, so machine noise hits the three alike. */
	for (unsigned i = 0; i < n && r == 0 && !*env->stop; i++)
		for (int m = 0; m < M_N && r == 0; m++)
			r = one(leaf, (enum mode)m, nsfd, &plan, "/bin/sleep", &sp[m][i], &rp[m][i]);
	if (r < 0)
		printf("sandbox spawn cost: a spawn failed: %s\n", strerror(-r));
	else
		printf("sandbox spawn cost (%u spawns each of /bin/sleep into one leaf, "
		       "interleaved; %zu cgroup mounts):\n", n, plan.n_ro);
	for (int m = 0; m < M_N; m++) {
		if (r == 0)
			printf("  %-28s spawn (tierd blocked) median %7.1f us   kill to reaped "
			       "median %7.1f us\n", mode_name[m], bench_median(sp[m], n),
			       bench_median(rp[m], n));
		free(sp[m]);
		free(rp[m]);
	}
	close(nsfd);
out_plan:
	sup_sandbox_plan_free(&plan);
out_close:
	close(leaf);
out_rmdir:
	rmdir(leaf_path);
	return r;
}
