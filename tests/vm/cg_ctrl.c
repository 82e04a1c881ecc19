/* SPDX-License-Identifier: MIT */
/*
 * VM: every controller is live on a pure cgroup2 mount; each knob the
 * module writes reads back as the exact bytes formatted; the blocking and
 * the prepared (asynchronous) write paths both land; the kernel's refusal
 * of a well-formed value comes back as its errno with the file name.
 */
#include "vmtest.h"

struct rt {
	enum sup_cg_knob k;
	const char *text;  /* what an operator would write */
	const char *want;  /* first line of the file afterwards */
	bool leaf;
};

static bool read_back(int fd, const char *file, const char *want, char *got, size_t sz)
{
	int n = sup_cg_read_file(fd, file, got, sz);

	if (n < 0)
		return false;
	got[strcspn(got, "\n")] = '\0';
	return !strcmp(got, want);
}

static void controllers(struct sup_cg *cg)
{
	char live[128] = "";
	bool all = true;

	for (int c = 0; c < SUP_CG_NCTRL; c++) {
		if (!sup_cg_ctrl_live(cg, c)) {
			vt_note("%s missing: %s", sup_cg_ctrl_name(c), sup_cg_ctrl_reason(cg, c));
			all = false;
			continue;
		}
		strcat(live, " ");
		strcat(live, sup_cg_ctrl_name(c));
	}
	if (all)
		vt_pass("controllers", "live on %s:%s", sup_cg_mount_path(cg), live);
	else
		vt_fail("controllers", "only%s live on a pure cgroup2 mount", live);
}

static void round_trip(struct sup_cg *cg, int tier_fd, int leaf_fd, const char *dev)
{
	char io_max[96], io_max_want[128], got[256], msg[512];
	const struct rt cases[] = {
		{ SUP_CG_K_CPU_WEIGHT, "300", "300", false },
		{ SUP_CG_K_CPU_MAX, "50000 100000", "50000 100000", false },
		{ SUP_CG_K_CPU_IDLE, "1", "1", true },
		{ SUP_CG_K_MEMORY_LOW, "16M", "16777216", false },
		{ SUP_CG_K_MEMORY_HIGH, "96M", "100663296", true },
		{ SUP_CG_K_MEMORY_MAX, "128M", "134217728", true },
		{ SUP_CG_K_MEMORY_SWAP_MAX, "0", "0", true },
		{ SUP_CG_K_MEMORY_OOM_GROUP, "1", "1", true },
		{ SUP_CG_K_IO_WEIGHT, "default 200", "default 200", false },
		{ SUP_CG_K_IO_MAX, io_max, io_max_want, true },
		{ SUP_CG_K_PIDS_MAX, "100", "100", true },
		{ SUP_CG_K_CPUSET_CPUS, "0", "0", false },
	};
	int ok = 0, skipped = 0, bad = 0;

	snprintf(io_max, sizeof(io_max), "%s rbps=1048576 wiops=500", dev);
	snprintf(io_max_want, sizeof(io_max_want), "%s rbps=1048576 wbps=max riops=max wiops=500", dev);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rt *c = &cases[i];
		int fd = c->leaf ? leaf_fd : tier_fd;
		const char *file = sup_cg_knob_file(c->k);
		struct sup_cg_val v;
		int r;

		if (c->k == SUP_CG_K_IO_MAX && !dev[0]) {
			skipped++;
			continue;
		}
		if (sup_cg_knob_present(fd, c->k) == 0) {
			/* memory.swap.max needs swap accounting: say so. */
			vt_note("%s: not offered by this kernel, not checked", file);
			skipped++;
			continue;
		}
		r = sup_cg_knob_parse(c->k, c->text, &v);
		if (r == 0)
			r = sup_cg_knob_write(cg, fd, c->k, &v);
		if (r < 0) {
			vt_note("%s \"%s\": %s", file, c->text, sup_cg_errmsg(msg, sizeof(msg), NULL, file, r));
			bad++;
		} else if (!read_back(fd, file, c->want, got, sizeof(got))) {
			vt_note("%s: wrote \"%s\", reads \"%s\", want \"%s\"", file, c->text, got, c->want);
			bad++;
		} else {
			ok++;
		}
	}
	if (bad)
		vt_fail("knobs_round_trip", "%d knob(s) did not read back as written", bad);
	else
		vt_pass("knobs_round_trip", "%d knobs written and read back exactly (%d not offered)",
			ok, skipped);
}

/* The asynchronous path: the caller opens and writes what prepare gave. */
static void prepared_write(struct sup_cg *cg, int leaf_fd)
{
	struct sup_cg_val v;
	struct sup_cg_write w;
	char got[64];
	int fd, r;

	r = sup_cg_knob_parse(SUP_CG_K_MEMORY_HIGH, "48M", &v);
	if (r == 0)
		r = sup_cg_knob_prepare(cg, leaf_fd, SUP_CG_K_MEMORY_HIGH, &v, &w);
	if (r < 0) {
		vt_fail("prepared_write", "prepare: %s", strerror(-r));
		return;
	}
	fd = openat(w.dirfd, w.file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, w.buf, w.len) != (ssize_t)w.len) {
		vt_fail("prepared_write", "write %s: %s", w.file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	if (read_back(leaf_fd, "memory.high", "50331648", got, sizeof(got)))
		vt_pass("prepared_write", "memory.high set through (dirfd, \"%s\", \"%s\")", w.file, w.buf);
	else
		vt_fail("prepared_write", "memory.high reads %s", got);
}

static void kernel_rejects(struct sup_cg *cg, int tier_fd, int leaf_fd)
{
	struct sup_cg_val v;
	char msg[512];
	int r1, r2;

	/* Well-formed, passes validation, names a cpu this VM lacks. */
	sup_cg_knob_parse(SUP_CG_K_CPUSET_CPUS, "7", &v);
	r1 = sup_cg_knob_write(cg, tier_fd, SUP_CG_K_CPUSET_CPUS, &v);
	sup_cg_errmsg(msg, sizeof(msg), "tier1", "cpuset.cpus", r1);
	vt_note("%s", msg);
	/* A device that does not exist. */
	sup_cg_knob_parse(SUP_CG_K_IO_MAX, "259:4000 rbps=1000", &v);
	r2 = sup_cg_knob_write(cg, leaf_fd, SUP_CG_K_IO_MAX, &v);
	vt_note("%s", sup_cg_errmsg(msg, sizeof(msg), "tier1/agent-knobs", "io.max", r2));
	/* cpulist_parse says ERANGE for a cpu past nr_cpu_ids, some kernels
	 * EINVAL for one outside the possible mask. */
	if ((r1 == -ERANGE || r1 == -EINVAL) && r2 == -ENODEV && strstr(msg, "io.max"))
		vt_pass("kernel_rejects", "cpuset.cpus=7 -> %s, io.max on 259:4000 -> ENODEV, "
			"each named with its file", r1 == -ERANGE ? "ERANGE" : "EINVAL");
	else
		vt_fail("kernel_rejects", "cpuset.cpus=7 gave %d, io.max on a missing device gave %d",
			r1, r2);
}

static void readers(int leaf_fd)
{
	struct sup_cg_psi psi;
	struct sup_cg_mem_events me;
	struct sup_cg_io_stat io;
	uint64_t cur, pids;
	int r;

	r = sup_cg_read_psi(leaf_fd, SUP_CG_PSI_MEMORY, &psi);
	if (r == 0)
		r = sup_cg_read_psi(leaf_fd, SUP_CG_PSI_CPU, &psi);
	if (r == 0)
		r = sup_cg_read_mem_events(leaf_fd, &me);
	if (r == 0)
		r = sup_cg_read_io_stat(leaf_fd, &io);
	if (r == 0)
		r = sup_cg_read_u64(leaf_fd, "memory.current", &cur);
	if (r == 0)
		r = sup_cg_read_u64(leaf_fd, "pids.current", &pids);
	if (r < 0)
		vt_fail("readers", "%s", strerror(-r));
	else
		vt_pass("readers", "cpu/memory pressure (full: %s), memory.events, io.stat, "
			"memory.current=%llu, pids.current=%llu parsed",
			psi.has_full ? "yes" : "no", (unsigned long long)cur, (unsigned long long)pids);
}

static void block_dev(char *out, size_t sz)
{
	static const char *const devs[] = { "/dev/nullb0", "/dev/ram0" };
	struct stat st;

	out[0] = '\0';
	for (size_t i = 0; i < 2; i++)
		if (stat(devs[i], &st) == 0 && S_ISBLK(st.st_mode)) {
			snprintf(out, sz, "%u:%u", major(st.st_rdev), minor(st.st_rdev));
			return;
		}
}

int main(int argc, char **argv)
{
	struct sup_cg_leaf *leaf;
	struct sup_cg *cg;
	char dev[32];

	if (vt_is_worker(argc, argv))
		return vt_worker(argc, argv);
	vt_setup_process();
	cg = vt_open("controllers", "vmt-ctrl");
	if (!cg)
		return 1;
	controllers(cg);
	if (sup_cg_leaf_open(cg, 1, "knobs", &leaf) < 0) {
		vt_fail("knobs_round_trip", "cannot create the leaf");
		sup_cg_destroy(cg);
		return 1;
	}
	block_dev(dev, sizeof(dev));
	round_trip(cg, sup_cg_tier_fd(cg, 1), sup_cg_leaf_fd(leaf), dev);
	prepared_write(cg, sup_cg_leaf_fd(leaf));
	kernel_rejects(cg, sup_cg_tier_fd(cg, 1), sup_cg_leaf_fd(leaf));
	readers(sup_cg_leaf_fd(leaf));
	sup_cg_leaf_free(leaf);
	vt_destroy(cg, "controllers");
	return vt_failures ? 1 : 0;
}
