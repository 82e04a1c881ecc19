/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the VM test programs (tests/vm/NAME.c), which run inside
 * the qemu guest on a pure cgroup2 mount with every controller.
 *
 * Protocol with the runner (tests/vm/init, tests/vm/run.sh): each program
 * prints one line per test it proves,
 *     VMTEST PASS <test>: <what was measured>
 *     VMTEST FAIL <test>: <what was wrong>
 *     VMTEST SKIP <test>: <why it could not run>
 * and exits non-zero if any failed. Each program is its own workload too:
 * it re-executes itself with "--worker MODE [ARG]" inside a leaf, so the
 * agents under test are real exec'd processes spawned by the module.
 */
#ifndef TIER_VMTEST_H
#define TIER_VMTEST_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../supervisor/cgroup/cgroup.h"
#include "../../supervisor/cgroup/cg_knob.h"
#include "../../supervisor/cgroup/cg_leaf.h"
#include "../../supervisor/cgroup/cg_proc.h"
#include "../../supervisor/cgroup/cg_spawn.h"
#include "../../supervisor/cgroup/cg_stat.h"
#include "../../supervisor/cgroup/cg_util.h"

/* Each program uses a subset of these helpers. */
#define VT_FN static inline __attribute__((unused))

static int vt_failures;

VT_FN __attribute__((format(printf, 3, 0))) void vt_result(const char *verdict, const char *test,
							 const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	printf("VMTEST %s %s: %s\n", verdict, test, msg);
	fflush(stdout);
}

VT_FN __attribute__((format(printf, 2, 3))) void vt_pass(const char *test, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vt_result("PASS", test, fmt, ap);
	va_end(ap);
}

VT_FN __attribute__((format(printf, 2, 3))) void vt_fail(const char *test, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vt_result("FAIL", test, fmt, ap);
	va_end(ap);
	vt_failures++;
}

VT_FN __attribute__((format(printf, 1, 2))) void vt_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("  ");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
}

VT_FN double vt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

VT_FN int64_t vt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

VT_FN void vt_burn_until_ns(int64_t end)
{
	while (vt_now_ns() < end)
		;
}

VT_FN int vt_cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

/* Time this thread spent runnable but not running (schedstat run_delay). */
VT_FN int64_t vt_run_delay_ns(void)
{
	long long on_cpu = 0, delay = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	if (f) {
		if (fscanf(f, "%lld %lld", &on_cpu, &delay) != 2)
			delay = 0;
		fclose(f);
	}
	return delay;
}

/* One period of a periodic task: sleep until *next + period (absolute),
 * then work work_ns. Returns how long the thread waited in the run queue
 * after the timer woke it; *late (if not NULL) gets how late it ran
 * against the timer. */
VT_FN int64_t vt_tick(int64_t *next, int64_t period_ns, int64_t work_ns, int64_t *late)
{
	struct timespec ts;
	int64_t rd, rq;

	*next += period_ns;
	ts.tv_sec = *next / 1000000000;
	ts.tv_nsec = *next % 1000000000;
	rd = vt_run_delay_ns();
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	if (late)
		*late = vt_now_ns() - *next;
	rq = vt_run_delay_ns() - rd;
	vt_burn_until_ns(vt_now_ns() + work_ns);
	return rq;
}

VT_FN void vt_sleep(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- workers: what runs inside the leaves ----------------------------------- */

VT_FN void vt_pin(const char *cpu)
{
	cpu_set_t set;

	if (!cpu)
		return;
	CPU_ZERO(&set);
	CPU_SET(atoi(cpu), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

VT_FN __attribute__((noreturn)) void worker_spin(const char *cpu)
{
	vt_pin(cpu);
	for (;;)
		__asm__ __volatile__("" ::: "memory");
}

/* Touch memory a MiB at a time until the OOM killer stops us. */
VT_FN int worker_alloc(const char *mib)
{
	long max = mib ? atol(mib) : 1024;

	for (long i = 0; i < max; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 2;
		memset(p, (int)i, 1 << 20);
	}
	return 0; /* survived: the limit did not hold */
}

/* Every process forks forever; at the limit fork fails and it retries. */
VT_FN __attribute__((noreturn)) void worker_bomb(void)
{
	for (;;)
		if (fork() < 0)
			usleep(1000);
}

/* Three children that pause; the parent pauses too. */
VT_FN __attribute__((noreturn)) void worker_family(void)
{
	for (int i = 0; i < 3; i++)
		if (fork() == 0)
			break;
	for (;;)
		pause();
}

VT_FN __attribute__((noreturn)) void worker_stubborn(void)
{
	signal(SIGTERM, SIG_IGN);
	for (;;)
		pause();
}

/* O_DIRECT reads of 64 KiB over the first 64 MiB of a block device. */
VT_FN int worker_read(const char *dev)
{
	const size_t bs = 64 * 1024;
	const off_t span = 64 << 20;
	void *buf;
	off_t off = 0;
	int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd < 0 || posix_memalign(&buf, 4096, bs))
		return 2;
	for (;;) {
		if (pread(fd, buf, bs, off) != (ssize_t)bs)
			return 3;
		off = (off + (off_t)bs) % span;
	}
}

/* main() of every VM test calls this first. */
VT_FN bool vt_is_worker(int argc, char **argv)
{
	return argc >= 3 && !strcmp(argv[1], "--worker");
}

VT_FN int vt_worker(int argc, char **argv)
{
	const char *mode = argv[2], *arg = argc > 3 ? argv[3] : NULL;

	if (!strcmp(mode, "spin"))
		worker_spin(arg);
	if (!strcmp(mode, "alloc"))
		return worker_alloc(arg);
	if (!strcmp(mode, "bomb"))
		worker_bomb();
	if (!strcmp(mode, "family"))
		worker_family();
	if (!strcmp(mode, "stubborn"))
		worker_stubborn();
	if (!strcmp(mode, "sleep"))
		for (;;)
			pause();
	if (!strcmp(mode, "read"))
		return worker_read(arg);
	return 64;
}

/* ---- spawning a worker into a leaf ----------------------------------------- */

struct vt_exec {
	char  path[PATH_MAX];
	char *argv[5];
	char  mode[32], arg[64];
	sigset_t empty;
};

/* vfork child: plain syscalls only (cg_spawn.h). */
VT_FN int vt_exec_fn(void *p)
{
	extern char **environ;
	struct vt_exec *e = p;

	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &e->empty, NULL, _NSIG / 8);
	syscall(SYS_execve, e->path, e->argv, environ);
	return 127;
}

VT_FN pid_t vt_spawn(int leaf_fd, const char *mode, const char *arg)
{
	static struct vt_exec e;
	ssize_t n;
	pid_t pid;

	n = readlink("/proc/self/exe", e.path, sizeof(e.path) - 1);
	if (n < 0)
		return -errno;
	e.path[n] = '\0';
	snprintf(e.mode, sizeof(e.mode), "%s", mode);
	snprintf(e.arg, sizeof(e.arg), "%s", arg ? arg : "");
	e.argv[0] = e.path;
	e.argv[1] = "--worker";
	e.argv[2] = e.mode;
	e.argv[3] = arg ? e.arg : NULL;
	e.argv[4] = NULL;
	sigemptyset(&e.empty);
	pid = sup_cg_spawn_fn(leaf_fd, vt_exec_fn, &e, NULL, 0, 0, NULL);
	return pid;
}

/* ---- the tree --------------------------------------------------------------- */

VT_FN struct sup_cg *vt_open(const char *test, const char *root)
{
	static char err[1024];
	struct sup_cg_opts o = { .sz = sizeof(o), .root = root, .errbuf = err,
				 .errbuf_sz = sizeof(err) };
	struct sup_cg *cg = sup_cg_open(&o);

	if (!cg)
		vt_fail(test, "sup_cg_open: %s", err);
	return cg;
}

/* The VM exists to have every controller: a missing one is a failure. */
VT_FN bool vt_need(struct sup_cg *cg, const char *test, enum sup_cg_ctrl c)
{
	if (sup_cg_ctrl_live(cg, c))
		return true;
	vt_fail(test, "controller %s not live: %s", sup_cg_ctrl_name(c), sup_cg_ctrl_reason(cg, c));
	return false;
}

VT_FN bool vt_set(struct sup_cg *cg, const char *test, int fd, const char *where,
		   enum sup_cg_knob k, const char *text)
{
	struct sup_cg_val v;
	char msg[512];
	int r = sup_cg_knob_parse(k, text, &v);

	if (r == 0)
		r = sup_cg_knob_write(cg, fd, k, &v);
	if (r < 0) {
		vt_fail(test, "%s = \"%s\": %s", sup_cg_knob_file(k), text,
			sup_cg_errmsg(msg, sizeof(msg), where, sup_cg_knob_file(k), r));
		return false;
	}
	vt_note("%s/%s = %s", where, sup_cg_knob_file(k), text);
	return true;
}

VT_FN uint64_t vt_usage(int fd)
{
	struct sup_cg_cpu_stat cs = { 0 };

	sup_cg_read_cpu_stat(fd, &cs);
	return cs.usage_usec;
}

/* Reap every child (we are a subreaper) until none is left or timeout. */
VT_FN int vt_reap_all(double timeout)
{
	double end = vt_now() + timeout;
	int n = 0;

	while (vt_now() < end) {
		pid_t p = waitpid(-1, NULL, WNOHANG);

		if (p > 0) {
			n++;
			continue;
		}
		if (p < 0 && errno == ECHILD)
			return n;
		vt_sleep(0.01);
	}
	return -1;
}

/* Destroy the tree; true if its root is gone and no child is left. */
VT_FN bool vt_destroy(struct sup_cg *cg, const char *test)
{
	char root[PATH_MAX];
	struct stat st;
	int r;

	snprintf(root, sizeof(root), "%s", sup_cg_root_path(cg));
	r = sup_cg_destroy(cg);
	if (r < 0) {
		vt_fail(test, "sup_cg_destroy: %s", strerror(-r));
		return false;
	}
	if (stat(root, &st) == 0) {
		vt_fail(test, "%s still exists after destroy", root);
		return false;
	}
	if (vt_reap_all(5.0) < 0) {
		vt_fail(test, "children still running after destroy");
		return false;
	}
	return true;
}

VT_FN void vt_setup_process(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Orphans of the workers come back to us: nothing escapes the final
	 * "nothing left running" check. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

#endif
