/* SPDX-License-Identifier: MIT */
/* The dispatch benchmark's report: medians of the repetitions, ratios
 * against their targets. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "dispatch_bench.h"

static double med(const double *v, int n)
{
	double tmp[DISP_MAX_REPS];

	memcpy(tmp, v, sizeof(*v) * (size_t)n);
	return bench_median(tmp, (size_t)n);
}

/* Median over the repetitions of one field of a part-1 result. */
static double rmed(const struct disp_bench *B, enum disp_contender c, enum disp_loadkind l, size_t off)
{
	double v[DISP_MAX_REPS];

	for (int i = 0; i < B->reps; i++)
		v[i] = *(const double *)((const char *)&B->f.r[c][l][i] + off);
	return med(v, B->reps);
}

#define RMED(B, c, l, field) rmed(B, c, l, offsetof(struct disp_result, field))

static void target(struct disp_tally *t, const char *name, double v, const char *op, double goal)
{
	t->total++;
	t->met += bench_ratio(name, v, op, goal);
}

static void skipped(struct disp_tally *t, const char *name, const char *why)
{
	t->total++;
	t->skipped++;
	printf("  %-44s %8s   %s\n", name, "-", why);
}

void disp_report_dispatch(const struct disp_bench *B, struct disp_tally *t)
{
	double tput[NC], hot[NC], cold[NC], in_c;

	printf("1. dispatch to %d no-op agents/workers, 64-byte tasks\n", DISP_NW);
	printf("   throughput: window %u; latency: one task in flight, hot = back to back,\n"
	       "   cold = %lld ms gap; latencies in us: bench-dispatch's are queued->accepted on tierd's\n"
	       "   clock, the others submit->result on the submitter's\n\n",
	       B->window, DISP_COLD_GAP_NS / DISP_MS);
	printf("  %-36s %10s  %8s %8s  %8s %8s  %9s %7s\n", "", "tasks/s", "hot p50", "hot p99",
	       "cold p50", "cold p99", "disp ns/t", "client");
	for (int c = 0; c < NC; c++) {
		double ccpu = RMED(B, c, L_TPUT, client_cpu_ns);

		tput[c] = RMED(B, c, L_TPUT, tasks_per_s);
		hot[c] = RMED(B, c, L_HOT, p50_us);
		cold[c] = RMED(B, c, L_COLD, p50_us);
		printf("  %-36s %10.0f  %8.1f %8.1f  %8.1f %8.1f  %9.0f ", disp_contender_name[c], tput[c],
		       hot[c], RMED(B, c, L_HOT, p99_us), cold[c], RMED(B, c, L_COLD, p99_us),
		       RMED(B, c, L_TPUT, disp_cpu_ns));
		if (ccpu >= 0)
			printf("%7.0f\n", ccpu);
		else
			printf("%7s\n", "-");
	}
	printf("  CPU ns per task at the throughput load: \"disp\" = the dispatcher (tierd, from its\n"
	       "  cgroup's cpu.stat; the broker; the pool's driver; the PUSH/PULL client, which is its\n"
	       "  own dispatcher); \"client\" = the separate client process\n\n");
	printf("ratios (same run)\n");
	in_c = tput[C_IN] / tput[C_POOL];
	target(t, "tierd inside tput / (a) tput", tput[C_IN] / tput[C_LRU], ">=", 10);
	target(t, "tierd external tput / (a) tput", tput[C_EXT] / tput[C_LRU], ">=", 10);
	target(t, "tierd inside tput / (c) tput", in_c, ">=", 1);
	printf("  %-44s %8.3f   stretch >= 2      %s\n", "tierd inside tput / (c) tput", in_c,
	       in_c >= 2 ? "ok" : "MISS (not counted)");
	target(t, "tierd inside hot p50 / (c) hot p50", hot[C_IN] / hot[C_POOL], "<=", 0.1);
	target(t, "tierd external hot p50 / (c) hot p50", hot[C_EXT] / hot[C_POOL], "<=", 0.1);
	target(t, "tierd inside cold p50 / (c) hot p50", cold[C_IN] / hot[C_POOL], "<=", 1);
	target(t, "tierd external cold p50 / (c) hot p50", cold[C_EXT] / hot[C_POOL], "<=", 1);
	printf("  info:\n");
	printf("  %-44s %8.3f\n", "tierd external tput / (c) tput", tput[C_EXT] / tput[C_POOL]);
	printf("  %-44s %8.3f\n", "tierd inside tput / (b) tput", tput[C_IN] / tput[C_PUSH]);
	printf("  %-44s %8.3f\n", "tierd inside cold p50 / (c) cold p50", cold[C_IN] / cold[C_POOL]);
	printf("  %-44s %8.3f\n", "tierd external hot p50 / (a) hot p50", hot[C_EXT] / hot[C_LRU]);
	printf("\n");
}

void disp_report_workflow(const struct disp_bench *B, struct disp_tally *t)
{
	int n = B->reps;
	double ovh = med(B->f.wf_ovh50, n), fx = med(B->f.fx50, n), fxu = med(B->f.fxu50, n);

	printf("2. full-team workflow: `run` noop, stagger 0, batch 4; 1/3/16/4 team-agents, %llu runs"
	       " per repetition\n", (unsigned long long)disp_scaled(B, DISP_WF_RUNS));
	printf("  %-44s %8.2f ms  p99 %8.2f ms\n", "run round trip (client) p50", med(B->f.wf_rt50, n),
	       med(B->f.wf_rt99, n));
	printf("  %-44s %8.2f ms  p99 %8.2f ms\n", "run wall time (tierd's wall_ms) p50",
	       med(B->f.wf_wall50, n), med(B->f.wf_wall99, n));
	printf("  %-44s %8.0f\n", "sequential steps per run", med(B->f.wf_steps, n));
	printf("  %-44s %8.1f us  p99 %8.1f us\n", "overhead per step p50", ovh, med(B->f.wf_ovh99, n));
	printf("  %-44s %8.1f us  p99 %8.1f us\n", "futex round trip, 2 CPUs, both asleep", fx,
	       med(B->f.fx99, n));
	printf("  %-44s %8.1f us  p99 %8.1f us\n", "futex round trip, unpinned, both asleep", fxu,
	       med(B->f.fxu99, n));
	printf("  overhead per step = (wall_ms - sum over steps of the slowest agent's run_ms) / steps;\n"
	       "  steps = tier 1, tier 2, each tier-3 batch, tier 4. Futex reference: ends pinned to\n"
	       "  CPUs 0 and 1, both asleep (200 us) before each round trip: two wakes of an idle CPU,\n"
	       "  as a step whose agents run on both CPUs pays. Unpinned, the scheduler may keep both\n"
	       "  ends on one CPU: two context switches, no idle wake.\n");
	target(t, "overhead per step / futex round trip (2 CPUs)", ovh / fx, "<=", 2);
	printf("  %-44s %8.3f   (info)\n", "overhead per step / futex (unpinned)", ovh / fxu);
	printf("  %-44s %8.3f   (the run aggregate's \"efficiency\"; burn %d ms,\n"
	       "  %44s            %.1f ms per run)\n", "workflow efficiency", med(B->f.wfb_eff, n),
	       DISP_BURN_MS, "", med(B->f.wfb_wall, n));
	printf("  %-44s %8.3f   (tier 1 alone, 3 agents on %d CPUs, ... with equal tasks)\n",
	       "  bound set by the shape", med(B->f.wfb_bound, n), B->ncpus);
	printf("  %-44s %8.3f   (tiers' cgroup CPU / (wall x CPUs - steal))\n",
	       "  CPU-time efficiency of the same runs", med(B->f.wfb_cpu_eff, n));
	printf("  %-44s %8.3f   (info)\n", "  CPU-time efficiency / bound",
	       med(B->f.wfb_cpu_eff, n) / med(B->f.wfb_bound, n));
	printf("\n");
}

void disp_report_agentd(const struct disp_bench *B, struct disp_tally *t)
{
	int n = B->reps;
	double st = med(B->f.ag_stdio, n), ex = med(B->f.ag_exec, n);
	double dir = med(B->f.ag_direct, n), xa = med(B->f.ag_xargs, n);

	printf("3. agentd: one agent running bench/agents/echo-json, 64-byte tasks\n");
	if (B->have_agentd) {
		printf("  %-44s %10.0f tasks/s\n", "agentd stdio via tierd (window 64)", st);
		printf("  %-44s %10.0f tasks/s\n", "agentd exec via tierd (window 4)", ex);
	} else {
		printf("  *** agentd not built or not started (%s): agentd rows SKIPPED ***\n", B->p.agentd);
	}
	printf("  %-44s %10.0f tasks/s\n", "direct pipe driver, echo-json --stdio (w 64)", dir);
	printf("  %-44s %10.0f tasks/s\n", "xargs -P 2 -n 1 echo-json --arg", xa);
	if (B->have_agentd) {
		target(t, "agentd stdio / xargs -P 2", st / xa, ">=", 50);
		target(t, "agentd stdio / direct pipe driver", st / dir, ">=", 0.5);
		printf("  %-44s %8.1f   (info)\n", "agentd stdio / agentd exec", ex > 0 ? st / ex : 0);
		printf("  %-44s %8.2f   (info)\n", "agentd exec / xargs -P 2", ex / xa);
	} else {
		skipped(t, "agentd stdio / xargs -P 2", "SKIPPED: agentd not built");
		skipped(t, "agentd stdio / direct pipe driver", "SKIPPED: agentd not built");
	}
	printf("\n");
}

void disp_report_efficiency(const struct disp_bench *B, struct disp_tally *t)
{
	int n = B->reps;

	printf("4. parallel efficiency: \"burn\" %d ms tasks to tier 3 (%d agents), window %d, %llu tasks\n",
	       DISP_BURN_MS, DISP_NW, 2 * DISP_NW, (unsigned long long)disp_scaled(B, 720));
	printf("  wall %.2f s, agent CPU %.2f s (tier3 cpu.stat), steal %.3f s, %d CPUs\n",
	       med(B->f.eff_wall, n), med(B->f.eff_cpu, n), med(B->f.eff_steal, n), B->ncpus);
	target(t, "agent CPU / (wall x CPUs - steal)", med(B->f.eff, n), ">=", 0.95);
	printf("\n");
}

void disp_report_raw(const struct disp_bench *B)
{
	static const char *const lname[NL] = { "tput", "hot", "cold" };

	fprintf(stderr, "\nper repetition:\n");
	for (int c = 0; c < NC; c++)
		for (int l = 0; l < NL; l++) {
			fprintf(stderr, "  %-36s %-4s", disp_contender_name[c], lname[l]);
			for (int i = 0; i < B->reps; i++) {
				const struct disp_result *r = &B->f.r[c][l][i];

				if (l == L_TPUT)
					fprintf(stderr, " %10.0f", r->tasks_per_s);
				else
					fprintf(stderr, " %6.1f/%-6.1f", r->p50_us, r->p99_us);
			}
			fprintf(stderr, "\n");
		}
#define ROW(name, v, fmt)                                               \
	do {                                                            \
		fprintf(stderr, "  %-41s", name);                       \
		for (int i = 0; i < B->reps; i++)                       \
			fprintf(stderr, " " fmt, B->f.v[i]);           \
		fprintf(stderr, "\n");                                  \
	} while (0)
	ROW("workflow overhead/step p50 us", wf_ovh50, "%7.1f");
	ROW("futex 2 CPUs p50 us", fx50, "%7.1f");
	ROW("futex unpinned p50 us", fxu50, "%7.1f");
	ROW("workflow wall p50 ms", wf_wall50, "%7.2f");
	ROW("workflow burn cpu efficiency", wfb_cpu_eff, "%7.3f");
	ROW("agentd stdio tasks/s", ag_stdio, "%7.0f");
	ROW("direct pipe driver tasks/s", ag_direct, "%7.0f");
	ROW("xargs tasks/s", ag_xargs, "%7.0f");
	ROW("agentd exec tasks/s", ag_exec, "%7.0f");
	ROW("efficiency (4)", eff, "%7.3f");
#undef ROW
}
