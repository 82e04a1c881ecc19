/* SPDX-License-Identifier: MIT */
/*
 * cgtest — drive the cgroup module by hand.
 *
 *   cgtest [-r ROOT] status
 *       build the tier tree, show the mount, the root, which controllers are
 *       live (and why the others are not), what a stale-tree reclaim found;
 *       then remove the tree.
 *   cgtest [-r ROOT] [-T TIER] [-n NAME] [-S knob=value]... [-s knob=value]...
 *          [-k] run -- CMD [ARG]...
 *       build the tree, set tier knobs (-S) and leaf knobs (-s), spawn CMD
 *       into tierTIER/agent-NAME, wait for it, print what the leaf's files
 *       say, remove the tree (unless -k: it is then left for the next run to
 *       reclaim).
 *
 * Exit status: CMD's, or 1 on a setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/execpath.h"
#include "common/fdio.h"
#include "../cgroup.h"
#include "../cg_knob.h"
#include "../cg_leaf.h"
#include "../cg_spawn.h"
#include "../cg_stat.h"
#include "../cg_util.h"

#define KNOBS_MAX 32

struct knob_arg {
	enum sup_cg_knob k;
	struct sup_cg_val v;
	bool on_tier;
};

struct child {
	const char *path;
	char *const *argv;
	char *const *envp;
	sigset_t empty;
};

/* Runs in the vfork child: raw syscalls only (see cg_spawn.h). */
static int child_exec(void *arg)
{
	struct child *c = arg;

	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &c->empty, NULL, _NSIG / 8);
	syscall(SYS_execve, c->path, c->argv, c->envp);
	return 127;
}

/* A command that cannot be found is exec'd as given, to fail there. */
static const char *resolve(const char *cmd, char *buf, size_t sz)
{
	return sup_spawn_resolve(cmd, getenv("PATH"), buf, sz) == 0 ? buf : cmd;
}

static int parse_knob(const char *arg, bool on_tier, struct knob_arg *ret)
{
	char name[64];
	const char *eq = strchr(arg, '=');
	int k, r;

	if (!eq || (size_t)(eq - arg) >= sizeof(name)) {
		fprintf(stderr, "cgtest: knob %s: expected name=value\n", arg);
		return -EINVAL;
	}
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	k = sup_cg_knob_lookup(name);
	if (k < 0) {
		fprintf(stderr, "cgtest: %s: not a knob tierd sets\n", name);
		return k;
	}
	r = sup_cg_knob_parse(k, eq + 1, &ret->v);
	if (r < 0) {
		fprintf(stderr, "cgtest: %s: invalid value \"%s\": %s\n", name, eq + 1, strerror(-r));
		return r;
	}
	ret->k = k;
	ret->on_tier = on_tier;
	return 0;
}

static void print_status(struct sup_cg *cg)
{
	printf("mount      %s\n", sup_cg_mount_path(cg));
	printf("root       %s%s\n", sup_cg_root_path(cg), sup_cg_delegated(cg) ? " (delegated)" : "");
	printf("tiers      %u\n", sup_cg_ntiers(cg));
	for (int c = 0; c < SUP_CG_NCTRL; c++) {
		const char *why = sup_cg_ctrl_reason(cg, c);

		printf("%-10s %s%s%s\n", sup_cg_ctrl_name(c), why ? "missing" : "live",
		       why ? ": " : "", why ? why : "");
	}
	if (sup_cg_reclaim_report(cg))
		printf("%s\n", sup_cg_reclaim_report(cg));
}

static void print_leaf(int fd)
{
	struct sup_cg_cpu_stat cs;
	struct sup_cg_mem_events me;
	struct sup_cg_io_stat io;
	uint64_t v;

	if (sup_cg_read_cpu_stat(fd, &cs) == 0)
		printf("cpu.stat        usage_usec=%llu nr_throttled=%llu throttled_usec=%llu\n",
		       (unsigned long long)cs.usage_usec, (unsigned long long)cs.nr_throttled,
		       (unsigned long long)cs.throttled_usec);
	if (sup_cg_read_u64(fd, "memory.peak", &v) == 0)
		printf("memory.peak     %llu\n", (unsigned long long)v);
	if (sup_cg_read_mem_events(fd, &me) == 0)
		printf("memory.events   high=%llu max=%llu oom=%llu oom_kill=%llu oom_group_kill=%llu\n",
		       (unsigned long long)me.high, (unsigned long long)me.max,
		       (unsigned long long)me.oom, (unsigned long long)me.oom_kill,
		       (unsigned long long)me.oom_group_kill);
	if (sup_cg_read_io_stat(fd, &io) == 0)
		printf("io.stat         rbytes=%llu wbytes=%llu\n",
		       (unsigned long long)io.total.rbytes, (unsigned long long)io.total.wbytes);
}

static int apply(struct sup_cg *cg, int fd, const char *where, const struct knob_arg *ka)
{
	char msg[512];
	int r = sup_cg_knob_write(cg, fd, ka->k, &ka->v);

	if (r == -EOPNOTSUPP) {
		printf("skipped    %s/%s: %s\n", where, sup_cg_knob_file(ka->k),
		       sup_cg_ctrl_reason(cg, sup_cg_knob_ctrl(ka->k)));
		return 0;
	}
	if (r < 0)
		fprintf(stderr, "cgtest: %s\n",
			sup_cg_errmsg(msg, sizeof(msg), where, sup_cg_knob_file(ka->k), r));
	return r;
}

static int run(struct sup_cg *cg, unsigned tier, const char *name, const struct knob_arg *knobs,
	       int nknobs, char **argv)
{
	extern char **environ;
	struct sup_cg_leaf *leaf = NULL;
	char tname[16], pathbuf[4096];
	struct child c = { .argv = argv, .envp = environ };
	int r, status;
	pid_t pid;

	snprintf(tname, sizeof(tname), "tier%u", tier);
	r = sup_cg_leaf_open(cg, tier, name, &leaf);
	if (r < 0) {
		fprintf(stderr, "cgtest: leaf %s: %s\n", name, strerror(-r));
		return 1;
	}
	for (int i = 0; i < nknobs; i++) {
		int fd = knobs[i].on_tier ? sup_cg_tier_fd(cg, tier) : sup_cg_leaf_fd(leaf);

		if (apply(cg, fd, knobs[i].on_tier ? tname : sup_cg_leaf_path(leaf), &knobs[i]) < 0) {
			sup_cg_leaf_free(leaf);
			return 1;
		}
	}
	c.path = resolve(argv[0], pathbuf, sizeof(pathbuf));
	sigemptyset(&c.empty);
	pid = sup_cg_spawn_fn(sup_cg_leaf_fd(leaf), child_exec, &c, NULL, 0, 0, NULL);
	if (pid < 0) {
		fprintf(stderr, "cgtest: spawn into %s: %s\n", sup_cg_leaf_path(leaf), strerror(-pid));
		sup_cg_leaf_free(leaf);
		return 1;
	}
	(void)sup_waitpid(pid, &status, 0);
	printf("exit            %s %d\n", WIFSIGNALED(status) ? "signal" : "status",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	print_leaf(sup_cg_leaf_fd(leaf));
	sup_cg_leaf_free(leaf);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	struct knob_arg knobs[KNOBS_MAX];
	struct sup_cg_opts o = { .sz = sizeof(o) };
	const char *name = "cgtest";
	unsigned tier = 1;
	char err[1024];
	struct sup_cg *cg;
	int nknobs = 0, opt, rc;
	bool keep = false;

	o.errbuf = err;
	o.errbuf_sz = sizeof(err);
	while ((opt = getopt(argc, argv, "+r:T:n:s:S:k")) != -1) {
		switch (opt) {
		case 'r': o.root = optarg; break;
		case 'T': tier = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': name = optarg; break;
		case 'k': keep = true; break;
		case 's':
		case 'S':
			if (nknobs == KNOBS_MAX || parse_knob(optarg, opt == 'S', &knobs[nknobs]) < 0)
				return 1;
			nknobs++;
			break;
		default:
			fprintf(stderr, "usage: cgtest [-r ROOT] status | [-T TIER] [-n NAME] "
				"[-S knob=value] [-s knob=value] [-k] run -- CMD [ARG]...\n");
			return 1;
		}
	}
	if (optind >= argc || (strcmp(argv[optind], "status") && strcmp(argv[optind], "run")) ||
	    (!strcmp(argv[optind], "run") && optind + 1 >= argc)) {
		fprintf(stderr, "cgtest: expected \"status\" or \"run -- CMD\"\n");
		return 1;
	}
	cg = sup_cg_open(&o);
	if (!cg) {
		fprintf(stderr, "cgtest: %s\n", err);
		return 1;
	}
	print_status(cg);
	rc = 0;
	if (!strcmp(argv[optind], "run")) {
		char **cmd = argv + optind + 1;

		if (!strcmp(cmd[0], "--"))
			cmd++;
		rc = cmd[0] ? run(cg, tier, name, knobs, nknobs, cmd) : 1;
	}
	if (keep) {
		sup_cg_close(cg);
		return rc;
	}
	if (sup_cg_destroy(cg) < 0) {
		fprintf(stderr, "cgtest: removing the tree failed\n");
		return rc ? rc : 1;
	}
	return rc;
}
