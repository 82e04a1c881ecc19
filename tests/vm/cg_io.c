/* SPDX-License-Identifier: MIT */
/*
 * VM: io.max on a block device (null_blk, else brd). A reader doing O_DIRECT
 * reads is first measured unlimited (it must be able to go well past the
 * limit, or the test proves nothing), then limited to RATE bytes/s with
 * io.max rbps on its leaf: over 5 s, io.stat's rbytes grows at RATE +- 10 %.
 */
#include "vmtest.h"

#define RATE      (8ull << 20)
#define MEASURE_S 5.0
#define WARMUP_S  0.5

static const char *block_dev(struct stat *st)
{
	static const char *const devs[] = { "/dev/nullb0", "/dev/ram0" };

	for (size_t i = 0; i < 2; i++)
		if (stat(devs[i], st) == 0 && S_ISBLK(st->st_mode))
			return devs[i];
	return NULL;
}

static uint64_t rbytes(int fd, uint32_t maj, uint32_t min)
{
	struct sup_cg_io_stat io;

	if (sup_cg_read_io_stat(fd, &io) < 0)
		return 0;
	for (unsigned i = 0; i < io.ndev; i++)
		if (io.dev[i].major == maj && io.dev[i].minor == min)
			return io.dev[i].rbytes;
	return 0;
}

/* Bytes/s read by the leaf's processes over `secs`, after a warm-up. */
static double rate(int fd, uint32_t maj, uint32_t min, double secs)
{
	uint64_t b0, b1;
	double t0;

	vt_sleep(WARMUP_S);
	t0 = vt_now();
	b0 = rbytes(fd, maj, min);
	vt_sleep(secs);
	b1 = rbytes(fd, maj, min);
	return (double)(b1 - b0) / (vt_now() - t0);
}

int main(int argc, char **argv)
{
	const char *test = "io_max";
	struct sup_cg_leaf *leaf;
	struct sup_cg *cg;
	struct stat st;
	const char *dev;
	char val[96];
	double free_rate, lim_rate;
	uint32_t maj, min;
	int fd;
	pid_t pid;

	if (vt_is_worker(argc, argv))
		return vt_worker(argc, argv);
	vt_setup_process();
	dev = block_dev(&st);
	if (!dev) {
		vt_fail(test, "no /dev/nullb0 or /dev/ram0: the init did not load null_blk or brd");
		return 1;
	}
	maj = major(st.st_rdev);
	min = minor(st.st_rdev);
	cg = vt_open(test, "vmt-io");
	if (!cg)
		return 1;
	if (!vt_need(cg, test, SUP_CG_IO) || sup_cg_leaf_open(cg, 3, "reader", &leaf) < 0)
		goto destroy_cg;
	fd = sup_cg_leaf_fd(leaf);
	pid = vt_spawn(fd, "read", dev);
	if (pid < 0) {
		vt_fail(test, "spawn: %s", strerror(-pid));
		goto out_leaf;
	}
	free_rate = rate(fd, maj, min, 1.0);
	vt_note("%s (%u:%u) unlimited: %.1f MiB/s", dev, maj, min, free_rate / (1 << 20));
	if (free_rate < 2.0 * (double)RATE) {
		vt_fail(test, "%s reads only %.1f MiB/s unlimited: too slow to show a %.0f MiB/s "
			"limit", dev, free_rate / (1 << 20), (double)RATE / (1 << 20));
		goto out_leaf;
	}
	snprintf(val, sizeof(val), "%u:%u rbps=%llu", maj, min, (unsigned long long)RATE);
	if (!vt_set(cg, test, fd, "tier3/agent-reader", SUP_CG_K_IO_MAX, val))
		goto out_leaf;
	lim_rate = rate(fd, maj, min, MEASURE_S);
	if (lim_rate >= 0.9 * (double)RATE && lim_rate <= 1.1 * (double)RATE)
		vt_pass(test, "reader on %s limited to %.1f MiB/s read %.2f MiB/s over %.0f s "
			"(%+.1f%%, bound +-10%%); unlimited it read %.1f MiB/s", dev,
			(double)RATE / (1 << 20), lim_rate / (1 << 20), MEASURE_S,
			(lim_rate / (double)RATE - 1) * 100, free_rate / (1 << 20));
	else
		vt_fail(test, "reader limited to %.1f MiB/s read %.2f MiB/s (bound +-10%%)",
			(double)RATE / (1 << 20), lim_rate / (1 << 20));
out_leaf:
	sup_cg_leaf_free(leaf);
destroy_cg:
	vt_destroy(cg, test);
	return vt_failures ? 1 : 0;
}
