/* SPDX-License-Identifier: MIT */
/*
 * agentd — runs as a tierd agent and bridges an external binary to the
 * rings: mode stdio (one long-lived child, JSON lines) or mode exec (one
 * process per task). See agentd(8) and docs/protocol.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tier/agent.h"
#include "tier/proto.h"

#include "agd_bridge.h"
#include "agd_exec.h"
#include "agd_loop.h"
#include "agd_proc.h"
#include "common/execpath.h"
#include "common/fdio.h"
#include "agd_stdio.h"

#define AGD_VERSION "0.1.0"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define MS 1000000LL
#define DEF_TIMEOUT_MS       30000
#define DEF_PIPELINE         64
#define MAX_PIPELINE         4096
#define MAX_JOBS             1024
#define DEF_GRACE_MS         2000
#define DEF_RESTART_MAX      5
#define DEF_RESTART_WINDOW_MS 60000
#define DEF_RESTART_DELAY_MS 100
#define DEF_LOG_RATE         100
#define DEF_FLOOD_BYTES      (1u << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: agentd --mode=stdio|exec [OPTIONS] -- PROGRAM [ARGS...]\n"
		"  --mode=stdio|exec        one long-lived child fed JSON lines, or one process per task\n"
		"  --timeout-ms=N           per-task timeout (default %d; 0 = tierd's deadline only)\n"
		"  --hang-ms=N              stdio: silence with tasks outstanding before the child\n"
		"                           counts as hung (default: the timeout; 0 = never)\n"
		"  --pipeline=N             stdio: requests outstanding at once (default %d)\n"
		"  --jobs=N                 exec: processes at once (default 1)\n"
		"  --grace-ms=N             on SIGTERM: time to finish, then to exit after SIGTERM (default %d)\n"
		"  --restart-max=N          stdio: restarts within the window before giving up (default %d)\n"
		"  --restart-window-ms=N    (default %d)\n"
		"  --restart-delay-ms=N     first backoff step; the first restart is immediate (default %d)\n"
		"  --log-rate=N             stderr lines per second forwarded to tierd (default %d)\n"
		"  --flood-bytes=N          stderr bytes per second that count as a flood (default %u; 0 = off)\n"
		"  -V, --version\n"
		"  -h, --help\n",
		DEF_TIMEOUT_MS, DEF_PIPELINE, DEF_GRACE_MS, DEF_RESTART_MAX, DEF_RESTART_WINDOW_MS,
		DEF_RESTART_DELAY_MS, DEF_LOG_RATE, DEF_FLOOD_BYTES);
}

static int parse_num(const char *name, const char *s, long long min, long long max,
		     long long *ret)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "agentd: --%s: '%s' is not a number from %lld to %lld\n", name, s,
			min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct agd_opts *o)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "hang-ms", required_argument, NULL, 'H' },
		{ "pipeline", required_argument, NULL, 'p' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "grace-ms", required_argument, NULL, 'g' },
		{ "restart-max", required_argument, NULL, 'r' },
		{ "restart-window-ms", required_argument, NULL, 'w' },
		{ "restart-delay-ms", required_argument, NULL, 'd' },
		{ "log-rate", required_argument, NULL, 'l' },
		{ "flood-bytes", required_argument, NULL, 'f' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long long hang = -1, v = 0;
	bool have_mode = false;
	int opt, r = 0;

	/* "+": stop at the first non-option, so the program's own options are
	 * never taken for ours even without "--". */
	while ((opt = getopt_long(argc, argv, "+Vh", longopts, NULL)) != -1) {
		const char *name = NULL;

		for (const struct option *lo = longopts; lo->name; lo++)
			if (lo->val == opt)
				name = lo->name;
		switch (opt) {
		case 'm':
			if (!strcmp(optarg, "stdio"))
				o->mode = AGD_MODE_STDIO;
			else if (!strcmp(optarg, "exec"))
				o->mode = AGD_MODE_EXEC;
			else {
				fprintf(stderr, "agentd: --mode: '%s' is neither stdio nor exec\n", optarg);
				return -EINVAL;
			}
			have_mode = true;
			break;
		case 't':
			r = parse_num(name, optarg, 0, 86400000, &v);
			o->timeout_ns = v * MS;
			break;
		case 'H':
			r = parse_num(name, optarg, 0, 86400000, &hang);
			break;
		case 'p':
			r = parse_num(name, optarg, 1, MAX_PIPELINE, &v);
			o->pipeline = (unsigned)v;
			break;
		case 'j':
			r = parse_num(name, optarg, 1, MAX_JOBS, &v);
			o->jobs = (unsigned)v;
			break;
		case 'g':
			r = parse_num(name, optarg, 0, 3600000, &v);
			o->grace_ns = v * MS;
			break;
		case 'r':
			r = parse_num(name, optarg, 0, 1000, &v);
			o->restart_max = (unsigned)v;
			break;
		case 'w':
			r = parse_num(name, optarg, 1, 86400000, &v);
			o->restart_window_ns = v * MS;
			break;
		case 'd':
			r = parse_num(name, optarg, 0, 3600000, &v);
			o->restart_delay_ns = v * MS;
			break;
		case 'l':
			r = parse_num(name, optarg, 0, 1000000, &v);
			o->log_rate = (double)v;
			break;
		case 'f':
			r = parse_num(name, optarg, 0, 1LL << 40, &v);
			o->flood_bytes = (uint64_t)v;
			break;
		case 'V':
			printf("agentd %s\n", AGD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	if (!have_mode || optind >= argc) {
		fprintf(stderr, "agentd: %s\n", have_mode ? "no program to run (after --)" :
			"--mode=stdio|exec is required");
		usage(stderr);
		return -EINVAL;
	}
	o->hang_ns = hang < 0 ? o->timeout_ns : hang * MS;
	o->argv = argv + optind;
	return 0;
}

/* fds 0-2 exist (children get their pipes dup2'ed there, which must not
 * collide with a pipe that landed on a free low number), and the ring fds
 * tierd placed at 3-5 stay out of the children. */
static int setup_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		if (open("/dev/null", O_RDWR) != fd)
			return -EBADF;
	}
	for (int fd = TIER_FD_RING; fd <= TIER_FD_SQ_BELL; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl < 0)
			return -errno;
		if (fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
			return -errno;
	}
	/* Anything else inherited (tierd passes nothing more, a shell or a test
	 * might) must not reach the agent either. Best effort: kernels before
	 * 5.11 lack the flag, and tierd closes them anyway. */
	syscall(SYS_close_range, TIER_FD_SQ_BELL + 1, ~0U, CLOSE_RANGE_CLOEXEC);
	/* Shared with tierd's copy, which is non-blocking already; read it
	 * without risk of sleeping in read() either way. */
	if (fcntl(TIER_FD_SQ_BELL, F_SETFL, fcntl(TIER_FD_SQ_BELL, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int setup_signals(void)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, dfl = { .sa_handler = SIG_DFL };
	sigset_t set;
	int fd;

	/* Writes to a child that closed its stdin must fail with EPIPE, not
	 * end agentd. SIGCHLD must not be ignored: that would reap children
	 * behind the pidfds' back. */
	if (sigaction(SIGPIPE, &ign, NULL) < 0 || sigaction(SIGCHLD, &dfl, NULL) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Only a wake-up: where pidfds are missing, the modes look at their
	 * children every turn. */
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static void on_signal(void *ctx, int fd, short revents)
{
	struct agd *g = ctx;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD || g->stopping)
			continue;
		agd_log(6, "%s: finishing outstanding tasks, then stopping %s",
			strsignal((int)si.ssi_signo), g->path);
		g->stopping = true;
		g->stop_ns = g->now;
	}
}

static void on_sq_bell(void *ctx, int fd, short revents)
{
	uint64_t v;

	/* Reset the counter; the next turn reads the ring. */
	(void)sup_read(fd, &v, sizeof(v));
}

static int run(struct agd *g, int sigfd)
{
	struct agd_stdio *st = NULL;
	struct agd_exec *ex = NULL;
	struct agd_loop l = { 0 };
	int r = 0;

	if (g->o->mode == AGD_MODE_STDIO)
		st = agd_stdio_new(g);
	else
		ex = agd_exec_new(g);
	if (!st && !ex) {
		agd_log(3, "setting up: %s", strerror(errno));
		return AGD_EXIT_USAGE;
	}
	while (!g->done) {
		int64_t deadline = 0;
		int want_tasks = 0;

		g->now = agd_clock();
		agd_loop_reset(&l);
		r = st ? agd_stdio_turn(st, &l, &deadline, &want_tasks) :
			 agd_exec_turn(ex, &l, &deadline, &want_tasks);
		if (!r)
			r = agd_loop_add(&l, sigfd, POLLIN, on_signal, g);
		if (!r && want_tasks)
			r = agd_loop_add(&l, tier_agent_fd(g->a), POLLIN, on_sq_bell, g);
		if (r < 0) {
			agd_log(3, "main loop: %s", strerror(-r));
			agd_quit(g, AGD_EXIT_USAGE);
		}
		if (g->done)
			break;
		/* Results of this turn go out in one publish (TIER_AGENT_BATCH). */
		r = tier_agent_flush(g->a);
		if (r < 0) {
			agd_log(3, "publishing results: %s", tier_strerror(r));
			agd_quit(g, AGD_EXIT_RING);
			break;
		}
		r = agd_loop_run(&l, deadline, &g->now);
		if (r < 0) {
			agd_log(3, "ppoll: %s", strerror(-r));
			agd_quit(g, AGD_EXIT_USAGE);
		}
	}
	agd_stdio_free(st);
	agd_exec_free(ex);
	agd_loop_free(&l);
	tier_agent_flush(g->a);
	return g->exit_code;
}

int main(int argc, char **argv)
{
	struct agd_opts o = {
		.timeout_ns = DEF_TIMEOUT_MS * MS,
		.jobs = 1,
		.pipeline = DEF_PIPELINE,
		.grace_ns = DEF_GRACE_MS * MS,
		.restart_max = DEF_RESTART_MAX,
		.restart_window_ns = DEF_RESTART_WINDOW_MS * MS,
		.restart_delay_ns = DEF_RESTART_DELAY_MS * MS,
		.log_rate = DEF_LOG_RATE,
		.flood_bytes = DEF_FLOOD_BYTES,
	};
	/* agentd's whole state lives here, owned by main. */
	static struct agd g;
	struct tier_agent_opts ao = { .sz = sizeof(ao), .spin_ns = 0 };
	int sigfd, r, code;

	if (parse_args(argc, argv, &o) < 0)
		return AGD_EXIT_USAGE;
	g.o = &o;
	g.now = g.log_refill_ns = agd_clock();
	g.log_tokens = o.log_rate;
	r = sup_spawn_resolve(o.argv[0], getenv("PATH"), g.path, sizeof(g.path));
	if (r < 0) {
		agd_log(3, "cannot run %s: %s", o.argv[0], strerror(-r));
		return AGD_EXIT_USAGE;
	}
	r = setup_fds();
	if (r < 0) {
		agd_log(3, "the ring fds 3-5 are missing (%s): agentd runs under tierd",
			strerror(-r));
		return AGD_EXIT_USAGE;
	}
	sigfd = setup_signals();
	if (sigfd < 0) {
		agd_log(3, "signals: %s", strerror(-sigfd));
		return AGD_EXIT_USAGE;
	}
	g.env = agd_env_base(o.mode);
	if (!g.env) {
		agd_log(3, "environment: %s", strerror(errno));
		code = AGD_EXIT_USAGE;
		goto close_sigfd;
	}
	/* The doorbell, not the futex: agentd sleeps in ppoll with its pipes.
	 * HELLO's max_inflight lets tierd keep the excess queued on its side,
	 * where another agent of the tier can take it. */
	ao.flags = TIER_AGENT_EVENTFD | TIER_AGENT_BATCH;
	ao.max_inflight = o.mode == AGD_MODE_STDIO ? o.pipeline : o.jobs;
	g.a = tier_agent_open(&ao);
	if (!g.a) {
		agd_log(3, "attaching to tierd's rings: %s", tier_strerror(-errno));
		code = AGD_EXIT_USAGE;
		goto free_env;
	}
	g.max_payload = tier_agent_max_payload(g.a);
	code = run(&g, sigfd);
	agd_log(code ? 4 : 6, "exiting (%d): %" PRIu64 " tasks, %" PRIu64 " ok, %" PRIu64
		" errors, %" PRIu64 " timeouts, %" PRIu64 " restarts, %" PRIu64 " events, %"
		PRIu64 " stderr lines dropped", code, g.st.tasks, g.st.ok, g.st.errors,
		g.st.timeouts, g.st.restarts, g.st.events, g.st.log_dropped);
	tier_agent_close(g.a);
free_env:
	agd_env_free(g.env);
close_sigfd:
	close(sigfd);
	return code;
}
