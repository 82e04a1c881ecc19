/* SPDX-License-Identifier: MIT */
/*
 * acct module: the eBPF probe against the kernel's own counters (cpu.stat,
 * /proc/PID/schedstat), its io and net bytes, its failure counters, the
 * forced raw_tp path, and the /proc fallback.
 *
 * Every test builds a scratch tree on the host's cgroup2 mount,
 *   <mount>/tierd-acct-PID/          the "tier" (cgroup_skb is attached here)
 *   <mount>/tierd-acct-PID/agent-N   leaves the children are born in,
 * kills only the children it started (by pid, then the tree's cgroup.kill)
 * and removes the tree. Tests that need the probe skip, saying why, where
 * it does not load; they never pass without it.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../supervisor/acct.h"
#include "../supervisor/cgroup/cgroup.h"
#include "../supervisor/cgroup/cg_proc.h"
#include "../supervisor/cgroup/cg_spawn.h"
#include "../supervisor/cgroup/cg_stat.h"
#include "../supervisor/cgroup/cg_util.h"

#define MAX_KIDS  8
#define NLEAVES   2
#define WINDOW_S  5.0

static struct {
	int mnt_fd, tier_fd, leaf_fd[NLEAVES];
	char name[64];
	struct sup_acct *a;
	pid_t kids[MAX_KIDS];
	int nkids;
} F = { .mnt_fd = -1 };

/* ---- fixture ---------------------------------------------------------------- */

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void setup(void)
{
	memset(&F, 0, sizeof(F));
	F.mnt_fd = F.tier_fd = -1;
	for (int i = 0; i < NLEAVES; i++)
		F.leaf_fd[i] = -1;
}

static void teardown(void)
{
	for (int i = 0; i < F.nkids; i++)
		kill(F.kids[i], SIGKILL);
	for (int i = 0; i < F.nkids; i++)
		waitpid(F.kids[i], NULL, 0);
	F.nkids = 0;
	sup_acct_close(F.a);
	F.a = NULL;
	for (int i = 0; i < NLEAVES; i++)
		if (F.leaf_fd[i] >= 0)
			close(F.leaf_fd[i]);
	if (F.tier_fd >= 0)
		close(F.tier_fd);
	if (F.mnt_fd >= 0) {
		sup_cg_remove_tree(F.mnt_fd, F.name, 5000);
		close(F.mnt_fd);
	}
	F.mnt_fd = -1;
}

/* Trees of test processes that died before their teardown (a sanitizer
 * abort skips it): theirs was the pid in the name. */
static int sweep_one(int dirfd, const char *name, void *arg)
{
	int pid;

	(void)arg;
	if (sscanf(name, "tierd-acct-%d", &pid) == 1 && pid > 0 && kill(pid, 0) < 0 &&
	    errno == ESRCH)
		sup_cg_remove_tree(dirfd, name, 5000);
	return 0;
}

/* The scratch tree; skips without root or cgroup2. */
static void need_tree(void)
{
	struct sup_cg_mount m;
	char buf[65536], path[96];
	ssize_t n;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root to create cgroups and load BPF");
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || sup_cg_parse_mountinfo(buf, (size_t)n, &m) < 0)
		cr_skip_test("no cgroup2 mount on this host");
	F.mnt_fd = open(m.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(F.mnt_fd, 0, "%s: %s", m.path, strerror(errno));
	sup_cg_for_each_child(F.mnt_fd, sweep_one, NULL);
	snprintf(F.name, sizeof(F.name), "tierd-acct-%d", (int)getpid());
	cr_assert_eq(mkdirat(F.mnt_fd, F.name, 0755), 0, "mkdir %s: %s", F.name, strerror(errno));
	F.tier_fd = openat(F.mnt_fd, F.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(F.tier_fd, 0);
	for (int i = 0; i < NLEAVES; i++) {
		snprintf(path, sizeof(path), "agent-%d", i);
		cr_assert_eq(mkdirat(F.tier_fd, path, 0755), 0);
		F.leaf_fd[i] = openat(F.tier_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		cr_assert_geq(F.leaf_fd[i], 0);
	}
}

static struct sup_acct *open_acct(bool fallback, bool raw_tp, uint32_t max_cgroups,
				  uint32_t max_tasks)
{
	struct sup_acct_opts o = { .sz = sizeof(o), .force_fallback = fallback,
				   .force_raw_tp = raw_tp, .max_cgroups = max_cgroups,
				   .max_tasks = max_tasks, .tier_fds = { -1, -1, -1, -1, -1 } };

	o.tier_fds[1] = F.tier_fd;
	F.a = sup_acct_open(&o);
	cr_assert_not_null(F.a, "sup_acct_open: %s", strerror(errno));
	return F.a;
}

/* The tree and the probe; skips, saying why, when the probe does not load. */
static struct sup_acct *need_probe(bool raw_tp)
{
	need_tree();
	open_acct(false, raw_tp, 0, 0);
	if (!sup_acct_is_bpf(F.a))
		cr_skip_test("the eBPF probe is unavailable here: %s", sup_acct_source(F.a));
	cr_log_info("source: %s", sup_acct_source(F.a));
	return F.a;
}

static uint64_t track(int leaf)
{
	uint64_t id = 0;
	int r = sup_acct_track(F.a, F.leaf_fd[leaf], &id);

	cr_assert_eq(r, 0, "sup_acct_track: %s", strerror(-r));
	return id;
}

static struct sup_acct_sample sample(uint64_t id, int leaf)
{
	struct sup_acct_sample s;
	int r = sup_acct_read(F.a, id, F.leaf_fd[leaf], &s);

	cr_assert_eq(r, 0, "sup_acct_read: %s", strerror(-r));
	return s;
}

static uint64_t usage_usec(int leaf)
{
	struct sup_cg_cpu_stat cs;

	cr_assert_eq(sup_cg_read_cpu_stat(F.leaf_fd[leaf], &cs), 0);
	return cs.usage_usec;
}

/* ---- children: born in a leaf, raw syscalls only (cg_spawn.h) --------------- */

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	syscall(SYS_sched_setaffinity, 0, sizeof(set), &set);
}

static __attribute__((noreturn)) void spin_forever(void)
{
	for (;;)
		__asm__ __volatile__("" ::: "memory");
}

/* Fork into leaf: returns 0 in the child, the pid (remembered for the
 * teardown) in the parent. */
static pid_t kid(int leaf)
{
	pid_t pid;

	cr_assert_lt(F.nkids, MAX_KIDS);
	pid = sup_cg_fork_into(F.leaf_fd[leaf], 0, NULL);
	cr_assert_geq(pid, 0, "sup_cg_fork_into: %s", strerror(-pid));
	if (pid > 0)
		F.kids[F.nkids++] = pid;
	return pid;
}

static pid_t spinner(int leaf, int cpu)
{
	pid_t pid = kid(leaf);

	if (pid == 0) {
		if (cpu >= 0)
			pin(cpu);
		spin_forever();
	}
	return pid;
}

/* Wait for a child of ours to exit; its exit status. */
static int reap(pid_t pid)
{
	int st = 0;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	for (int i = 0; i < F.nkids; i++)
		if (F.kids[i] == pid)
			F.kids[i] = F.kids[--F.nkids];
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	reap(pid);
}

static uint64_t schedstat_delay(pid_t pid)
{
	char path[64], buf[128];
	unsigned long long rt = 0, delay = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_eq(sscanf(buf, "%llu %llu", &rt, &delay), 2);
	return delay;
}

/* ---- the probe ----------------------------------------------------------------- */

TestSuite(probe, .init = setup, .fini = teardown, .timeout = 90);

Test(probe, should_key_cgroups_by_the_leaf_inode)
{
	struct { struct file_handle fh; unsigned char id[8]; } h = { .fh.handle_bytes = 8 };
	struct sup_acct_sample s;
	struct stat st;
	uint64_t id, fh_id;
	int mnt;
	pid_t pid;

	need_probe(false);
	cr_assert_eq(fstat(F.leaf_fd[0], &st), 0);
	cr_assert_eq(name_to_handle_at(F.leaf_fd[0], "", &h.fh, &mnt, AT_EMPTY_PATH), 0);
	memcpy(&fh_id, h.fh.f_handle, sizeof(fh_id));
	id = track(0);
	cr_assert_eq(id, (uint64_t)st.st_ino, "cgid %llu, inode %llu", (unsigned long long)id,
		     (unsigned long long)st.st_ino);
	cr_assert_eq(id, fh_id, "cgid %llu, file handle %llu", (unsigned long long)id,
		     (unsigned long long)fh_id);
	/* The programs key by bpf_get_current_cgroup_id(): a write from the
	 * leaf lands under this id only if the two agree. */
	pid = kid(0);
	if (pid == 0) {
		static const char buf[12345];
		int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);

		syscall(SYS_write, fd, buf, sizeof(buf));
		syscall(SYS_exit_group, 0);
	}
	cr_assert_eq(reap(pid), 0);
	s = sample(id, 0);
	cr_assert_eq(s.write_bytes, 12345, "write_bytes %llu under id %llu",
		     (unsigned long long)s.write_bytes, (unsigned long long)id);
}

/* Probe CPU ns against cpu.stat usage over a window, with n busy children. */
static void cpu_vs_cpu_stat(int nbusy, double window, double bound)
{
	struct sup_acct_sample s0, s1;
	uint64_t id = track(0), u0, u1;
	double probe_ms, stat_ms, ratio;

	for (int i = 0; i < nbusy; i++)
		spinner(0, -1);
	sleep_s(0.5);
	s0 = sample(id, 0);
	u0 = usage_usec(0);
	sleep_s(window);
	s1 = sample(id, 0);
	u1 = usage_usec(0);
	probe_ms = (double)(s1.cpu_ns - s0.cpu_ns) / 1e6;
	stat_ms = (double)(u1 - u0) / 1e3;
	cr_assert_gt(stat_ms, 100, "the children got %.1f ms of CPU in %.0f s: machine too busy",
		     stat_ms, window);
	ratio = probe_ms / stat_ms;
	cr_log_info("cpu over %.0f s, %d busy children: probe %.3f ms, cpu.stat %.3f ms, ratio %.5f",
		    window, nbusy, probe_ms, stat_ms, ratio);
	cr_expect(ratio >= 1 - bound && ratio <= 1 + bound,
		  "probe %.3f ms vs cpu.stat %.3f ms: ratio %.5f outside 1 +- %.2f", probe_ms, stat_ms,
		  ratio, bound);
}

Test(probe, should_match_cpu_stat_within_one_percent_over_five_seconds)
{
	need_probe(false);
	cpu_vs_cpu_stat(2, WINDOW_S, 0.01);
}

Test(probe, should_match_schedstat_run_delay_within_five_percent)
{
	struct sup_acct_sample s0, s1;
	uint64_t id, d0 = 0, d1 = 0, hist = 0;
	double probe_ms, sched_ms, ratio;
	pid_t p[2];

	need_probe(false);
	id = track(0);
	/* Two busy children on one CPU: each waits about half the time. */
	p[0] = spinner(0, 1);
	p[1] = spinner(0, 1);
	sleep_s(0.5);
	s0 = sample(id, 0);
	for (int i = 0; i < 2; i++)
		d0 += schedstat_delay(p[i]);
	sleep_s(WINDOW_S);
	s1 = sample(id, 0);
	for (int i = 0; i < 2; i++)
		d1 += schedstat_delay(p[i]);
	probe_ms = (double)(s1.runq_delay_ns - s0.runq_delay_ns) / 1e6;
	sched_ms = (double)(d1 - d0) / 1e6;
	cr_assert_gt(sched_ms, 100, "schedstat saw only %.1f ms of waiting", sched_ms);
	ratio = probe_ms / sched_ms;
	cr_log_info("run-queue delay over %.0f s: probe %.3f ms in %llu waits, schedstat %.3f ms, "
		    "ratio %.5f", WINDOW_S, probe_ms,
		    (unsigned long long)(s1.runq_waits - s0.runq_waits), sched_ms, ratio);
	cr_expect(ratio >= 0.95 && ratio <= 1.05,
		  "probe %.3f ms vs schedstat %.3f ms: ratio %.5f outside 1 +- 0.05", probe_ms,
		  sched_ms, ratio);
	cr_expect_gt(s1.invol_switches - s0.invol_switches, 0, "no involuntary switch counted");
	for (int i = 0; i < SUP_ACCT_HIST; i++)
		hist += s1.runq_hist[i];
	cr_expect(s1.has_hist);
	cr_expect_eq(hist, s1.runq_waits, "histogram holds %llu waits, runq_waits %llu",
		     (unsigned long long)hist, (unsigned long long)s1.runq_waits);
}

Test(probe, should_count_voluntary_switches_of_a_sleeper)
{
	struct sup_acct_sample s;
	uint64_t id;
	pid_t pid;

	need_probe(false);
	id = track(0);
	pid = kid(0);
	if (pid == 0) {
		struct timespec ts = { 0, 1000000 };

		for (int i = 0; i < 100; i++)
			syscall(SYS_nanosleep, &ts, NULL);
		syscall(SYS_exit_group, 0);
	}
	cr_assert_eq(reap(pid), 0);
	s = sample(id, 0);
	cr_log_info("sleeper: %llu voluntary, %llu involuntary, %llu waits, %.3f ms delay",
		    (unsigned long long)s.vol_switches, (unsigned long long)s.invol_switches,
		    (unsigned long long)s.runq_waits, (double)s.runq_delay_ns / 1e6);
	cr_expect_geq(s.vol_switches, 100, "vol_switches %llu after 100 sleeps",
		      (unsigned long long)s.vol_switches);
	/* Each wake-up is a wait, however short. */
	cr_expect_geq(s.runq_waits, 100, "runq_waits %llu after 100 wake-ups",
		      (unsigned long long)s.runq_waits);
}

/* A child that writes and reads known amounts with every syscall of the
 * family; it does nothing else that moves bytes. */
#define IO_W   (1 << 20)
#define IO_R   (256 << 10)
#define IO_VEC (64 << 10)
static void io_child(void)
{
	static char buf[IO_W];
	struct iovec iov = { buf, IO_VEC };
	int fd = (int)syscall(SYS_memfd_create, "acct", MFD_CLOEXEC);

	for (int i = 0; i < 4; i++)
		syscall(SYS_write, fd, buf, IO_W / 4);
	syscall(SYS_pwrite64, fd, buf, IO_VEC, 0);
	syscall(SYS_writev, fd, &iov, 1);
	syscall(SYS_pread64, fd, buf, IO_R, 0);
	syscall(SYS_lseek, fd, 0, SEEK_SET);
	syscall(SYS_read, fd, buf, IO_R);
	syscall(SYS_readv, fd, &iov, 1);
	syscall(SYS_exit_group, 0);
}

Test(probe, should_count_read_and_write_bytes)
{
	const uint64_t w = IO_W + 2 * IO_VEC, r = 2 * IO_R + IO_VEC;
	struct sup_acct_sample s;
	uint64_t id;
	pid_t pid;

	need_probe(false);
	id = track(0);
	pid = kid(0);
	if (pid == 0)
		io_child();
	cr_assert_eq(reap(pid), 0);
	s = sample(id, 0);
	cr_assert(s.has_io, "io not counted: %s", sup_acct_source(F.a));
	cr_log_info("io: wrote %llu read %llu; probe write_bytes %llu read_bytes %llu",
		    (unsigned long long)w, (unsigned long long)r, (unsigned long long)s.write_bytes,
		    (unsigned long long)s.read_bytes);
	/* The fork+join fallback of cg_spawn reads a byte in the child. */
	cr_expect(s.write_bytes == w, "write_bytes %llu, wrote %llu",
		  (unsigned long long)s.write_bytes, (unsigned long long)w);
	cr_expect(s.read_bytes >= r && s.read_bytes <= r + 64, "read_bytes %llu, read %llu",
		  (unsigned long long)s.read_bytes, (unsigned long long)r);
}

/* TCP over loopback: a receiver born in leaf 1, a sender born in leaf 0. */
#define NET_N (4u << 20)
Test(probe, should_count_loopback_tcp_bytes_per_leaf)
{
	/* Headers: at most 52 bytes (IPv4 + TCP with timestamps) per packet of
	 * at least 1 KiB, plus handshake, teardown and acks. */
	const uint64_t hi = NET_N + NET_N / 1024 * 52 + 16384;
	struct sup_acct_sample tx, rx;
	uint64_t ida, idb;
	int pfd[2], sfd[2];
	uint16_t port = 0;
	uint32_t got = 0;
	pid_t recv, send;

	need_probe(false);
	cr_assert(sup_acct_source(F.a) && !strstr(sup_acct_source(F.a), "net bytes unavailable"),
		  "%s", sup_acct_source(F.a));
	ida = track(0);
	idb = track(1);
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(sfd, O_CLOEXEC), 0);
	recv = kid(1);
	if (recv == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);
		static char buf[65536];
		uint32_t total = 0;
		long n;
		int l = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c;

		if (syscall(SYS_bind, l, &a, sizeof(a)) || syscall(SYS_listen, l, 1) ||
		    syscall(SYS_getsockname, l, &a, &len))
			syscall(SYS_exit_group, 2);
		syscall(SYS_write, pfd[1], &a.sin_port, sizeof(a.sin_port));
		c = (int)syscall(SYS_accept4, l, NULL, NULL, SOCK_CLOEXEC);
		while ((n = syscall(SYS_read, c, buf, sizeof(buf))) > 0)
			total += (uint32_t)n;
		syscall(SYS_write, sfd[1], &total, sizeof(total));
		syscall(SYS_exit_group, 0);
	}
	cr_assert_eq(read(pfd[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	send = kid(0);
	if (send == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = port,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		static char buf[65536];
		int s = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (syscall(SYS_connect, s, &a, sizeof(a)))
			syscall(SYS_exit_group, 2);
		for (uint32_t sent = 0; sent < NET_N;) {
			long n = syscall(SYS_write, s, buf, sizeof(buf));

			if (n <= 0)
				syscall(SYS_exit_group, 3);
			sent += (uint32_t)n;
		}
		syscall(SYS_close, s);
		syscall(SYS_exit_group, 0);
	}
	cr_assert_eq(reap(send), 0);
	cr_assert_eq(read(sfd[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	cr_assert_eq(reap(recv), 0);
	cr_assert_eq(got, NET_N);
	tx = sample(ida, 0);
	rx = sample(idb, 1);
	cr_log_info("tcp %u bytes: sender tx %llu rx %llu; receiver rx %llu tx %llu", NET_N,
		    (unsigned long long)tx.net_tx_bytes, (unsigned long long)tx.net_rx_bytes,
		    (unsigned long long)rx.net_rx_bytes, (unsigned long long)rx.net_tx_bytes);
	cr_expect(tx.has_net && rx.has_net);
	cr_expect(tx.net_tx_bytes >= NET_N && tx.net_tx_bytes <= hi,
		  "sender tx %llu outside [%u, %llu]", (unsigned long long)tx.net_tx_bytes, NET_N,
		  (unsigned long long)hi);
	cr_expect(rx.net_rx_bytes >= NET_N && rx.net_rx_bytes <= hi,
		  "receiver rx %llu outside [%u, %llu]", (unsigned long long)rx.net_rx_bytes, NET_N,
		  (unsigned long long)hi);
	/* The other directions carry only acks and the handshake. */
	cr_expect_lt(tx.net_rx_bytes, NET_N / 10);
	cr_expect_lt(rx.net_tx_bytes, NET_N / 10);
	close(pfd[0]);
	close(pfd[1]);
	close(sfd[0]);
	close(sfd[1]);
}

Test(probe, should_work_with_raw_tp_forced)
{
	need_probe(true);
	cr_assert(!strncmp(sup_acct_source(F.a), "bpf (raw_tp", 11), "source: %s",
		  sup_acct_source(F.a));
	cpu_vs_cpu_stat(2, WINDOW_S, 0.01);
}

Test(probe, should_refuse_a_cgroup_when_its_map_is_full)
{
	struct sup_acct_errors e;
	uint64_t id;

	need_tree();
	open_acct(false, false, 1, 0);
	if (!sup_acct_is_bpf(F.a))
		cr_skip_test("the eBPF probe is unavailable here: %s", sup_acct_source(F.a));
	track(0);
	cr_assert_eq(sup_acct_track(F.a, F.leaf_fd[1], &id), -ENOSPC);
	sup_acct_errors(F.a, &e);
	cr_expect_eq(e.map_full, 1, "map_full %llu", (unsigned long long)e.map_full);
}

Test(probe, should_count_threads_it_cannot_record_and_still_charge_their_cpu)
{
	struct sup_acct_sample s0, s1;
	struct sup_acct_errors e;
	uint64_t id, u0, u1;
	double ratio;

	need_tree();
	open_acct(false, false, 0, 1);
	if (!sup_acct_is_bpf(F.a))
		cr_skip_test("the eBPF probe is unavailable here: %s", sup_acct_source(F.a));
	id = track(0);
	/* Three busy threads share two CPUs and one task record. */
	for (int i = 0; i < 3; i++)
		spinner(0, -1);
	sleep_s(0.5);
	s0 = sample(id, 0);
	u0 = usage_usec(0);
	sleep_s(2.0);
	s1 = sample(id, 0);
	u1 = usage_usec(0);
	sup_acct_errors(F.a, &e);
	ratio = (double)(s1.cpu_ns - s0.cpu_ns) / ((double)(u1 - u0) * 1e3);
	cr_log_info("tasks map of 1: map_full %llu, cpu ratio %.4f", (unsigned long long)e.map_full,
		    ratio);
	cr_expect_gt(e.map_full, 0);
	/* Slice-by-slice charging misses only the slices running at the
	 * window's ends. */
	cr_expect(ratio >= 0.95 && ratio <= 1.05, "cpu ratio %.4f with a full tasks map", ratio);
}

Test(probe, should_forget_threads_when_they_exit)
{
	struct sup_acct_errors e;
	struct sup_acct_sample s;
	uint64_t id;

	need_tree();
	/* Room for 32 threads; 400 come and go, one at a time. */
	open_acct(false, false, 0, 32);
	if (!sup_acct_is_bpf(F.a))
		cr_skip_test("the eBPF probe is unavailable here: %s", sup_acct_source(F.a));
	id = track(0);
	for (int i = 0; i < 400; i++) {
		pid_t pid = kid(0);

		if (pid == 0) {
			struct timespec ts = { 0, 100000 };

			syscall(SYS_nanosleep, &ts, NULL);
			syscall(SYS_exit_group, 0);
		}
		cr_assert_eq(reap(pid), 0);
	}
	s = sample(id, 0);
	sup_acct_errors(F.a, &e);
	cr_log_info("400 short-lived children: map_full %llu, vol %llu, waits %llu",
		    (unsigned long long)e.map_full, (unsigned long long)s.vol_switches,
		    (unsigned long long)s.runq_waits);
	cr_expect_eq(e.map_full, 0, "records of exited threads are not removed");
	cr_expect_geq(s.vol_switches, 400);
}

Test(probe, should_fail_to_read_an_untracked_cgroup)
{
	struct sup_acct_sample s;
	uint64_t id;

	need_probe(false);
	id = track(0);
	cr_assert_eq(sup_acct_untrack(F.a, id), 0);
	cr_expect_eq(sup_acct_read(F.a, id, F.leaf_fd[0], &s), -ENOENT);
	cr_expect_eq(sup_acct_untrack(F.a, id), -ENOENT);
}

/* ---- the fallback ---------------------------------------------------------------- */

TestSuite(fallback, .init = setup, .fini = teardown, .timeout = 90);

Test(fallback, should_use_cpu_stat_schedstat_and_proc_io)
{
	struct sup_acct_sample s0, s1, s2;
	uint64_t id, u0, u1, d0 = 0, d1 = 0;
	int hold[2], go[2];
	pid_t p[2], w;
	char c = 0;

	need_tree();
	open_acct(true, false, 0, 0);
	cr_assert(!sup_acct_is_bpf(F.a));
	cr_assert(!strncmp(sup_acct_source(F.a), "fallback: cgroup cpu.stat + /proc (", 35), "%s",
		  sup_acct_source(F.a));
	id = track(0);
	p[0] = spinner(0, 1);
	p[1] = spinner(0, 1);
	sleep_s(0.3);
	s0 = sample(id, 0);
	u0 = usage_usec(0);
	for (int i = 0; i < 2; i++)
		d0 += schedstat_delay(p[i]);
	sleep_s(2.0);
	s1 = sample(id, 0);
	u1 = usage_usec(0);
	for (int i = 0; i < 2; i++)
		d1 += schedstat_delay(p[i]);
	cr_expect(!s1.has_net, "net must be reported unavailable");
	cr_expect(!s1.has_hist);
	cr_expect(s1.has_io);
	cr_expect_eq(s1.net_rx_bytes + s1.net_tx_bytes, 0);
	/* Read a few µs apart from our own reads: a tick at most. */
	cr_expect_leq(llabs((long long)(s1.cpu_ns - s0.cpu_ns) - (long long)(u1 - u0) * 1000),
		      8000000, "cpu %llu ns vs cpu.stat %llu us", (unsigned long long)(s1.cpu_ns - s0.cpu_ns),
		      (unsigned long long)(u1 - u0));
	cr_expect_leq(llabs((long long)(s1.runq_delay_ns - s0.runq_delay_ns) - (long long)(d1 - d0)),
		      (long long)(d1 - d0) / 20 + 8000000, "runq %llu ns vs schedstat %llu ns",
		      (unsigned long long)(s1.runq_delay_ns - s0.runq_delay_ns),
		      (unsigned long long)(d1 - d0));
	cr_log_info("fallback over 2 s: cpu %.3f ms (cpu.stat %.3f), runq %.3f ms (schedstat %.3f)",
		    (double)(s1.cpu_ns - s0.cpu_ns) / 1e6, (double)(u1 - u0) / 1e3,
		    (double)(s1.runq_delay_ns - s0.runq_delay_ns) / 1e6, (double)(d1 - d0) / 1e6);
	stop(p[0]);
	stop(p[1]);
	/* /proc/PID/task/TID/io of a live writer (see the next test for one
	 * that exits). */
	cr_assert_eq(pipe2(hold, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
	w = kid(0);
	if (w == 0) {
		static char buf[1 << 20];
		int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
		char b;

		syscall(SYS_write, fd, buf, sizeof(buf));
		syscall(SYS_write, hold[1], buf, 1);
		syscall(SYS_read, go[0], &b, 1);
		syscall(SYS_exit_group, 0);
	}
	cr_assert_eq(read(hold[0], &c, 1), 1);
	s2 = sample(id, 0);
	cr_log_info("fallback io: a live child wrote %d + 1 bytes, write_bytes %llu", 1 << 20,
		    (unsigned long long)(s2.write_bytes - s1.write_bytes));
	cr_expect_eq(s2.write_bytes - s1.write_bytes, (1 << 20) + 1);
	cr_assert_eq(write(go[1], &c, 1), 1);
	cr_assert_eq(reap(w), 0);
	for (int i = 0; i < 2; i++) {
		close(hold[i]);
		close(go[i]);
	}
}

Test(fallback, should_not_go_backwards_when_a_process_exits)
{
	struct sup_acct_sample s1, s2;
	int ready[2], go[2];
	uint64_t id;
	pid_t pid;
	char c;

	need_tree();
	open_acct(true, false, 0, 0);
	id = track(0);
	spinner(0, 1);
	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
	pid = kid(0);
	if (pid == 0) {
		static char buf[1 << 20];
		int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
		char b = 0;

		pin(1);
		syscall(SYS_write, fd, buf, sizeof(buf));
		for (volatile long i = 0; i < 50000000; i++)
			;
		syscall(SYS_write, ready[1], &b, 1);
		syscall(SYS_read, go[0], &b, 1);
		syscall(SYS_exit_group, 0);
	}
	cr_assert_eq(read(ready[0], &c, 1), 1);
	s1 = sample(id, 0);
	cr_assert_geq(s1.write_bytes, 1 << 20);
	cr_assert_eq(write(go[1], &c, 1), 1);
	cr_assert_eq(reap(pid), 0);
	s2 = sample(id, 0);
	cr_log_info("before exit: cpu %llu runq %llu waits %llu vol %llu invol %llu w %llu; "
		    "after: cpu %llu runq %llu waits %llu vol %llu invol %llu w %llu",
		    (unsigned long long)s1.cpu_ns, (unsigned long long)s1.runq_delay_ns,
		    (unsigned long long)s1.runq_waits, (unsigned long long)s1.vol_switches,
		    (unsigned long long)s1.invol_switches, (unsigned long long)s1.write_bytes,
		    (unsigned long long)s2.cpu_ns, (unsigned long long)s2.runq_delay_ns,
		    (unsigned long long)s2.runq_waits, (unsigned long long)s2.vol_switches,
		    (unsigned long long)s2.invol_switches, (unsigned long long)s2.write_bytes);
	cr_expect_geq(s2.cpu_ns, s1.cpu_ns);
	cr_expect_geq(s2.runq_delay_ns, s1.runq_delay_ns);
	cr_expect_geq(s2.runq_waits, s1.runq_waits);
	cr_expect_geq(s2.vol_switches, s1.vol_switches);
	cr_expect_geq(s2.invol_switches, s1.invol_switches);
	cr_expect_geq(s2.read_bytes, s1.read_bytes);
	cr_expect_geq(s2.write_bytes, s1.write_bytes);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}

/* ---- options ---------------------------------------------------------------------- */

Test(api, should_reject_options_without_a_size)
{
	struct sup_acct_opts o = { .sz = 0 };

	cr_expect_null(sup_acct_open(&o));
	cr_expect_eq(errno, EINVAL);
	cr_expect_null(sup_acct_open(NULL));
}
