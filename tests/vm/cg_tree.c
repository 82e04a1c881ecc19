/* SPDX-License-Identifier: MIT */
/*
 * VM: the whole tree goes away with nothing left running. Agents of every
 * kind in all four tiers (one with children, one that ignores SIGTERM, a
 * frozen one, a fork bomb held by pids.max) and one leaf left behind by a
 * "crashed" instance; sup_cg_destroy kills and removes everything, and no
 * process of it survives (we are their subreaper and reap each one).
 */
#include "vmtest.h"

/* Processes, other than us, whose cgroup path contains rel. */
static int count_in_tree(const char *rel)
{
	char path[64], buf[512];
	int n = 0;

	for (int pid = 2; pid < 65536; pid++) {
		int fd;
		ssize_t len;

		if (pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		if (strstr(buf, rel))
			n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *test = "tree_removed";
	static const char *const modes[4] = { "family", "stubborn", "spin", "bomb" };
	struct sup_cg_leaf *leaf[4] = { 0 };
	struct sup_cg *cg;
	char root[PATH_MAX];
	double t0;
	int before, after, reaped;
	struct stat st;

	if (vt_is_worker(argc, argv))
		return vt_worker(argc, argv);
	vt_setup_process();
	cg = vt_open(test, "vmt-tree");
	if (!cg)
		return 1;
	snprintf(root, sizeof(root), "%s", sup_cg_root_path(cg));
	for (unsigned t = 1; t <= 4; t++) {
		char name[16];
		pid_t pid;

		snprintf(name, sizeof(name), "a%u", t);
		if (sup_cg_leaf_open(cg, t, name, &leaf[t - 1]) < 0) {
			vt_fail(test, "leaf tier%u/%s", t, name);
			goto free_leaves;
		}
		if (t == 4)
			vt_set(cg, test, sup_cg_leaf_fd(leaf[3]), "tier4/agent-a4", SUP_CG_K_PIDS_MAX, "8");
		pid = vt_spawn(sup_cg_leaf_fd(leaf[t - 1]), modes[t - 1], NULL);
		if (pid < 0) {
			vt_fail(test, "spawn %s: %s", modes[t - 1], strerror(-pid));
			goto free_leaves;
		}
	}
	vt_sleep(0.5);
	sup_cg_freeze(sup_cg_leaf_fd(leaf[2]), true);
	sup_cg_wait_frozen(sup_cg_leaf_fd(leaf[2]), true, 5000);
	before = count_in_tree("/vmt-tree/");
	for (int i = 0; i < 4; i++) {
		sup_cg_leaf_free(leaf[i]);
		leaf[i] = NULL;
	}
	t0 = vt_now();
	if (sup_cg_destroy(cg) < 0) {
		vt_fail(test, "sup_cg_destroy failed");
		return 1;
	}
	t0 = vt_now() - t0;
	reaped = vt_reap_all(5.0);
	after = count_in_tree("/vmt-tree/");
	if (stat(root, &st) == 0)
		vt_fail(test, "%s still exists", root);
	else if (reaped < 0 || after != 0 || waitpid(-1, NULL, WNOHANG) != -1)
		vt_fail(test, "%d processes still in the tree, reaped %d", after, reaped);
	else if (before < 4 + 1 + 1 + 8)
		vt_fail(test, "only %d processes ran in the tree before destroy", before);
	else
		vt_pass(test, "%d processes in 4 tiers (one frozen, one ignoring SIGTERM, a fork "
			"bomb) killed and the tree removed in %.0f ms; %d reaped, none left",
			before, t0 * 1000, reaped);
	return vt_failures ? 1 : 0;
free_leaves:
	for (int i = 0; i < 4; i++)
		sup_cg_leaf_free(leaf[i]);
	sup_cg_destroy(cg);
	return 1;
}
