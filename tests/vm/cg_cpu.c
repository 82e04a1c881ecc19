/* SPDX-License-Identifier: MIT */
/*
 * VM: CPU limits, measured from cpu.stat.
 *  cpu_max    a CPU-bound agent in a tier capped at 25 % of one CPU
 *             (cpu.max 25000 100000) gets 25 % +- 5 points over 5 s.
 *  cpu_weight two CPU-bound tiers at cpu.weight 300 and 100, both on one
 *             CPU (cpuset.cpus), split 3:1 +- 10 %.
 */
#include "vmtest.h"

#define MEASURE_S 5.0
#define WARMUP_S  0.5

/* CPU share of tier fds[i] over MEASURE_S, after a warm-up. */
static void measure(const int *fds, int n, double *ret_share)
{
	uint64_t u0[4], u1[4];
	double t0, t1;

	vt_sleep(WARMUP_S);
	t0 = vt_now();
	for (int i = 0; i < n; i++)
		u0[i] = vt_usage(fds[i]);
	vt_sleep(MEASURE_S);
	t1 = vt_now();
	for (int i = 0; i < n; i++) {
		u1[i] = vt_usage(fds[i]);
		ret_share[i] = (double)(u1[i] - u0[i]) / ((t1 - t0) * 1e6);
	}
}

static void cpu_max(struct sup_cg *cg)
{
	const char *test = "cpu_max";
	struct sup_cg_cpu_stat cs = { 0 };
	struct sup_cg_leaf *leaf;
	int tier = sup_cg_tier_fd(cg, 2);
	double share;
	pid_t pid;

	if (!vt_need(cg, test, SUP_CG_CPU))
		return;
	if (!vt_set(cg, test, tier, "tier2", SUP_CG_K_CPU_MAX, "25000 100000"))
		return;
	if (sup_cg_leaf_open(cg, 2, "spin", &leaf) < 0) {
		vt_fail(test, "leaf");
		return;
	}
	pid = vt_spawn(sup_cg_leaf_fd(leaf), "spin", NULL);
	if (pid < 0) {
		vt_fail(test, "spawn: %s", strerror(-pid));
		sup_cg_leaf_free(leaf);
		return;
	}
	measure(&tier, 1, &share);
	sup_cg_read_cpu_stat(tier, &cs);
	vt_note("tier2 cpu.stat: nr_periods=%llu nr_throttled=%llu throttled_usec=%llu",
		(unsigned long long)cs.nr_periods, (unsigned long long)cs.nr_throttled,
		(unsigned long long)cs.throttled_usec);
	sup_cg_leaf_remove(cg, leaf);
	if (share >= 0.20 && share <= 0.30 && cs.nr_throttled > 0)
		vt_pass(test, "busy loop capped at 25%% got %.1f%% of a CPU over %.0f s "
			"(bound 20-30%%), throttled %llu times", share * 100, MEASURE_S,
			(unsigned long long)cs.nr_throttled);
	else
		vt_fail(test, "busy loop capped at 25%% got %.1f%% (bound 20-30%%), throttled %llu "
			"times", share * 100, (unsigned long long)cs.nr_throttled);
}

static void cpu_weight(struct sup_cg *cg)
{
	const char *test = "cpu_weight";
	struct sup_cg_leaf *leaf[2] = { NULL, NULL };
	const unsigned tiers[2] = { 3, 4 };
	const char *weights[2] = { "300", "100" };
	int fds[2];
	double share[2], ratio;
	char eff[64], where[16];

	if (!vt_need(cg, test, SUP_CG_CPU) || !vt_need(cg, test, SUP_CG_CPUSET))
		return;
	for (int i = 0; i < 2; i++) {
		pid_t pid;

		fds[i] = sup_cg_tier_fd(cg, tiers[i]);
		snprintf(where, sizeof(where), "tier%u", tiers[i]);
		if (!vt_set(cg, test, fds[i], where, SUP_CG_K_CPU_WEIGHT, weights[i]) ||
		    !vt_set(cg, test, fds[i], where, SUP_CG_K_CPUSET_CPUS, "1"))
			goto remove_leaves;
		if (sup_cg_leaf_open(cg, tiers[i], "spin", &leaf[i]) < 0) {
			vt_fail(test, "leaf in %s", where);
			goto remove_leaves;
		}
		pid = vt_spawn(sup_cg_leaf_fd(leaf[i]), "spin", NULL);
		if (pid < 0) {
			vt_fail(test, "spawn: %s", strerror(-pid));
			goto remove_leaves;
		}
	}
	if (sup_cg_read_file(sup_cg_leaf_fd(leaf[0]), "cpuset.cpus.effective", eff, sizeof(eff)) < 0 ||
	    strcmp(eff, "1\n")) {
		vt_fail(test, "the leaves are not confined to CPU 1 (cpuset.cpus.effective: %s)", eff);
		goto remove_leaves;
	}
	measure(fds, 2, share);
	ratio = share[1] > 0 ? share[0] / share[1] : 0;
	if (ratio >= 2.7 && ratio <= 3.3 && share[0] + share[1] <= 1.1)
		vt_pass(test, "weights 300:100 on one CPU split %.1f%%:%.1f%% = %.2f:1 over %.0f s "
			"(bound 2.7-3.3)", share[0] * 100, share[1] * 100, ratio, MEASURE_S);
	else
		vt_fail(test, "weights 300:100 split %.1f%%:%.1f%% = %.2f:1 (bound 2.7-3.3, "
			"both on one CPU)", share[0] * 100, share[1] * 100, ratio);
remove_leaves:
	for (int i = 0; i < 2; i++)
		if (leaf[i])
			sup_cg_leaf_remove(cg, leaf[i]);
}

int main(int argc, char **argv)
{
	struct sup_cg *cg;

	if (vt_is_worker(argc, argv))
		return vt_worker(argc, argv);
	vt_setup_process();
	cg = vt_open("cpu_max", "vmt-cpu");
	if (!cg)
		return 1;
	cpu_max(cg);
	cpu_weight(cg);
	vt_destroy(cg, "cpu_weight");
	return vt_failures ? 1 : 0;
}
