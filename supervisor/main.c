/* SPDX-License-Identifier: MIT */
/* tierd: supervise a fleet of agents in a cgroup v2 tier tree. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup/cg_enforce.h"
#include "commands.h"
#include "config/config.h"
#include "daemon.h"
#include "daemon_upgrade.h"
#include "handover/handover.h"
#include "log.h"

#include <bpf/libbpf.h>

#define DEFAULT_CONFIG "/etc/tierd/tierd.ini"

/* The daemon runs its control requests with these; it includes no command. */
static const struct sup_daemon_cmds commands = {
	.dispatch = sup_cmd_dispatch,
	.client_gone = sup_cmd_client_gone,
	.fini = sup_cmd_fini,
	.upgrade_notify = sup_cmd_upgrade_notify,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tierd [-c CONFIG] [--check-config] [--dump-config] [--log-level LEVEL]\n"
		"  -c, --config FILE     configuration (default " DEFAULT_CONFIG ")\n"
		"      --check-config    load and check the configuration, then exit\n"
		"      --dump-config     print the effective configuration, then exit\n"
		"      --log-level L     emerg..debug, overrides the file\n"
		"  -V, --version\n");
}

/* The directory of the running binary, to find agentd beside it. */
static void self_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0) {
		snprintf(buf, len, ".");
		return;
	}
	exe[n] = 0;
	/* dirname() works in place on exe: copy its result out. */
	snprintf(buf, len, "%s", dirname(exe));
}

/* libbpf writes its own warnings (a refused program's verifier log …); they
 * go to tierd's log with its priorities, debug chatter only at debug. */
static struct sup_logger *libbpf_log;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int prio = level == LIBBPF_WARN ? SUP_LOG_WARNING : level == LIBBPF_INFO ? SUP_LOG_INFO :
		   SUP_LOG_DEBUG;

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	if (libbpf_log && line[0])
		sup_log(libbpf_log, prio, "libbpf: %s", line);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "dump-config", no_argument, NULL, 'D' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* The daemon context is main's: no global state elsewhere. */
	static struct sup_daemon daemon;
	struct sup_config_errors errs = { 0 };
	const char *path = DEFAULT_CONFIG;
	struct sup_config *conf;
	struct sup_logger boot;
	bool check = false, dump = false;
	int level = -1, opt, r;
	char dir[PATH_MAX];

	sup_logger_init(&boot, SUP_LOG_INFO);
	daemon.argv = argv;
	/* Started by a live upgrade: the state says everything. */
	if (getenv(SUP_HO_ENV)) {
		self_dir(dir, sizeof(dir));
		libbpf_log = &daemon.log;
		libbpf_set_print(libbpf_print);
		return sup_daemon_restore_main(&daemon, argv, dir, &commands);
	}
	while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'D':
			dump = true;
			break;
		case 'l':
			level = sup_log_level_parse(optarg);
			if (level < 0) {
				fprintf(stderr, "tierd: unknown log level '%s' (emerg..debug)\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("tierd %s\n", sup_daemon_build());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	conf = sup_config_load(path, &errs);
	for (size_t i = 0; i < errs.n; i++)
		sup_log(&boot, errs.v[i].warning ? SUP_LOG_WARNING : SUP_LOG_ERR, "%s", errs.v[i].msg);
	if (errs.dropped)
		sup_log(&boot, SUP_LOG_ERR, "%zu more problems not shown", errs.dropped);
	sup_config_errors_clear(&errs);
	if (!conf) {
		if (errno != EINVAL)
			sup_log(&boot, SUP_LOG_ERR, "cannot read %s: %s", path, strerror(errno));
		sup_log(&boot, SUP_LOG_ERR, "configuration %s refused; nothing started", path);
		return 1;
	}
	if (check) {
		char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX];
		unsigned live;

		sup_cg_host_controllers(&live, why);
		sup_config_check_host(conf, live, why, &errs);
		for (size_t i = 0; i < errs.n; i++)
			sup_log(&boot, SUP_LOG_WARNING, "%s", errs.v[i].msg);
		sup_config_errors_clear(&errs);
	}
	if (check || dump) {
		if (dump)
			sup_config_dump(conf, stdout);
		else
			printf("%s: configuration OK (%zu agents)\n", path, conf->n_agents);
		sup_config_free(conf);
		return 0;
	}
	if (level >= 0)
		conf->sup.log_level = level;
	self_dir(dir, sizeof(dir));
	libbpf_log = &daemon.log;
	libbpf_set_print(libbpf_print);
	r = sup_daemon_init(&daemon, conf, path, dir, &commands);
	if (r < 0) {
		sup_daemon_fini(&daemon);
		return 1;
	}
	r = sup_daemon_run(&daemon);
	sup_daemon_fini(&daemon);
	return r < 0 ? 1 : r;
}
