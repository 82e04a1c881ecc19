/* SPDX-License-Identifier: MIT */
/*
 * VM: the accounting probe on Debian's 6.1 kernel (CO-RE object built
 * against the build host's BTF).
 *  acct_load_<mode>  the probe loads and attaches in that mode (tp_btf, then
 *                    raw_tp forced); which one loaded is reported
 *  acct_cpu_<mode>   a busy child in a leaf: the probe's CPU ns over 3 s
 *                    within 2 % of cpu.stat usage_usec over the same window
 *  acct_io           a child writes 1 MiB: write_bytes >= 1 MiB, < 1 MiB + 4 KiB
 *                    (tracefs is not mounted here: the loader's detached
 *                    tracefs mount is what finds the tracepoint ids)
 *  acct_net          a child sends 200 UDP datagrams of 1000 bytes to a socket
 *                    of ours over loopback: tx within [200000, 200000 + 200 *
 *                    28 + 4096] (IP + UDP headers), via cgroup_skb on its tier
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "vmtest.h"
#include "../../supervisor/acct.h"

#define WINDOW_S   3.0
#define CPU_BOUND  0.02
#define IO_BYTES   (1 << 20)
#define NET_DGRAMS 200
#define NET_SIZE   1000

/* ---- workers of this program -------------------------------------------------- */

static int worker_write(void)
{
	static char buf[64 * 1024];
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	for (int i = 0; i < IO_BYTES / (int)sizeof(buf); i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 2;
	return 0;
}

static int worker_udp(const char *port)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static char buf[NET_SIZE];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	for (int i = 0; i < NET_DGRAMS; i++)
		if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)) != NET_SIZE)
			return 2;
	return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static int wait_exit(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

static struct sup_acct *open_acct(struct sup_cg *cg, bool raw)
{
	struct sup_acct_opts o = { .sz = sizeof(o), .force_raw_tp = raw };

	o.tier_fds[0] = -1;
	for (unsigned t = 1; t <= 4; t++)
		o.tier_fds[t] = sup_cg_tier_fd(cg, t);
	return sup_acct_open(&o);
}

/* ---- the tests -------------------------------------------------------------------- */

static void cpu(struct sup_acct *a, const char *mode, int leaf)
{
	char test[32];
	struct sup_acct_sample s0, s1;
	uint64_t id, u0, u1;
	double ratio;
	pid_t pid;

	snprintf(test, sizeof(test), "acct_cpu_%s", mode);
	if (sup_acct_track(a, leaf, &id) < 0) {
		vt_fail(test, "sup_acct_track failed");
		return;
	}
	pid = vt_spawn(leaf, "spin", NULL);
	if (pid < 0) {
		vt_fail(test, "spawn: %s", strerror(-pid));
		goto untrack;
	}
	vt_sleep(0.5);
	u0 = vt_usage(leaf);
	sup_acct_read(a, id, leaf, &s0);
	vt_sleep(WINDOW_S);
	u1 = vt_usage(leaf);
	sup_acct_read(a, id, leaf, &s1);
	kill(pid, SIGKILL);
	wait_exit(pid);
	ratio = u1 > u0 ? (double)(s1.cpu_ns - s0.cpu_ns) / ((double)(u1 - u0) * 1e3) : 0;
	if (ratio >= 1 - CPU_BOUND && ratio <= 1 + CPU_BOUND)
		vt_pass(test, "busy child: probe %.1f ms, cpu.stat %.1f ms over %.0f s, ratio %.4f "
			"(bound +-%.0f%%); runq %.1f ms in %llu waits", (double)(s1.cpu_ns - s0.cpu_ns) / 1e6,
			(double)(u1 - u0) / 1e3, WINDOW_S, ratio, CPU_BOUND * 100,
			(double)(s1.runq_delay_ns - s0.runq_delay_ns) / 1e6,
			(unsigned long long)(s1.runq_waits - s0.runq_waits));
	else
		vt_fail(test, "busy child: probe %.1f ms, cpu.stat %.1f ms, ratio %.4f (bound +-%.0f%%)",
			(double)(s1.cpu_ns - s0.cpu_ns) / 1e6, (double)(u1 - u0) / 1e3, ratio,
			CPU_BOUND * 100);
untrack:
	sup_acct_untrack(a, id);
}

static void io(struct sup_acct *a, int leaf)
{
	const char *test = "acct_io";
	struct sup_acct_sample s;
	uint64_t id;
	pid_t pid;
	int rc;

	if (sup_acct_track(a, leaf, &id) < 0) {
		vt_fail(test, "sup_acct_track failed");
		return;
	}
	pid = vt_spawn(leaf, "acct-write", NULL);
	rc = pid < 0 ? -1 : wait_exit(pid);
	if (rc != 0) {
		vt_fail(test, "writer failed (%d)", rc);
	} else if (sup_acct_read(a, id, leaf, &s) < 0 || !s.has_io) {
		vt_fail(test, "no io counters: %s", sup_acct_source(a));
	} else if (s.write_bytes >= IO_BYTES && s.write_bytes < IO_BYTES + 4096) {
		vt_pass(test, "child wrote %d bytes, probe counted %llu", IO_BYTES,
			(unsigned long long)s.write_bytes);
	} else {
		vt_fail(test, "child wrote %d bytes, probe counted %llu (bound [%d, %d))", IO_BYTES,
			(unsigned long long)s.write_bytes, IO_BYTES, IO_BYTES + 4096);
	}
	sup_acct_untrack(a, id);
}

static void net(struct sup_acct *a, int leaf)
{
	const char *test = "acct_net";
	const uint64_t lo = NET_DGRAMS * NET_SIZE, hi = lo + NET_DGRAMS * 28 + 4096;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	struct sup_acct_sample s;
	char port[16];
	uint64_t id;
	pid_t pid;
	int fd, rc;

	lo_up();
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		vt_fail(test, "receiver socket: %s", strerror(errno));
		goto close;
	}
	snprintf(port, sizeof(port), "%u", ntohs(sin.sin_port));
	if (sup_acct_track(a, leaf, &id) < 0) {
		vt_fail(test, "sup_acct_track failed");
		goto close;
	}
	pid = vt_spawn(leaf, "acct-udp", port);
	rc = pid < 0 ? -1 : wait_exit(pid);
	if (rc != 0)
		vt_fail(test, "sender failed (%d)", rc);
	else if (sup_acct_read(a, id, leaf, &s) < 0 || !s.has_net)
		vt_fail(test, "no net counters: %s", sup_acct_source(a));
	else if (s.net_tx_bytes >= lo && s.net_tx_bytes <= hi)
		vt_pass(test, "child sent %llu payload bytes, probe tx %llu (bound [%llu, %llu])",
			(unsigned long long)lo, (unsigned long long)s.net_tx_bytes,
			(unsigned long long)lo, (unsigned long long)hi);
	else
		vt_fail(test, "child sent %llu payload bytes, probe tx %llu (bound [%llu, %llu])",
			(unsigned long long)lo, (unsigned long long)s.net_tx_bytes,
			(unsigned long long)lo, (unsigned long long)hi);
	sup_acct_untrack(a, id);
close:
	if (fd >= 0)
		close(fd);
}

static void run_mode(struct sup_cg *cg, int leaf, bool raw)
{
	const char *mode = raw ? "raw_tp" : "tp_btf";
	struct sup_acct *a = open_acct(cg, raw);
	char test[32];
	struct utsname u;

	snprintf(test, sizeof(test), "acct_load_%s", mode);
	uname(&u);
	if (!a) {
		vt_fail(test, "sup_acct_open: %s", strerror(errno));
		return;
	}
	if (!sup_acct_is_bpf(a) || strncmp(sup_acct_source(a) + 5, mode, 6)) {
		vt_fail(test, "on %s the source is \"%s\"", u.release, sup_acct_source(a));
		sup_acct_close(a);
		return;
	}
	vt_pass(test, "on %s: %s", u.release, sup_acct_source(a));
	cpu(a, mode, leaf);
	if (!raw) {
		io(a, leaf);
		net(a, leaf);
	}
	sup_acct_close(a);
}

int main(int argc, char **argv)
{
	struct sup_cg_leaf *leaf;
	struct sup_cg *cg;

	if (vt_is_worker(argc, argv)) {
		if (!strcmp(argv[2], "acct-write"))
			return worker_write();
		if (!strcmp(argv[2], "acct-udp") && argc > 3)
			return worker_udp(argv[3]);
		return vt_worker(argc, argv);
	}
	vt_setup_process();
	cg = vt_open("acct_load_tp_btf", "vmt-acct");
	if (!cg)
		return 1;
	if (sup_cg_leaf_open(cg, 2, "acct", &leaf) < 0) {
		vt_fail("acct_load_tp_btf", "leaf");
	} else {
		run_mode(cg, sup_cg_leaf_fd(leaf), false);
		run_mode(cg, sup_cg_leaf_fd(leaf), true);
		sup_cg_leaf_remove(cg, leaf);
	}
	vt_destroy(cg, "acct_cleanup");
	return vt_failures ? 1 : 0;
}
