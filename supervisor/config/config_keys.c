/* SPDX-License-Identifier: MIT */
/*
 * config_keys — the key tables of every section, and the parse and dump
 * functions of the keys whose values are more than a number or a word.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/un.h>

#include "config_internal.h"

#define ENV_NAME_MAX  128
#define SPECIALTY_MAX 64

static const char *const restart_names[] = { "always", "on-failure", "never", NULL };
static const char *const mode_names[] = { "native", "stdio", "exec", NULL };
static const char *const level_names[] = { "emerg", "alert", "crit", "err", "warning",
					   "notice", "info", "debug", NULL };

const char *sup_mode_name(enum sup_agent_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

/* ---- supervisor keys ------------------------------------------------------ */

static int parse_cgroup_root(struct cfg_ctx *x, const struct cfg_key *k, void *base,
			     const char *v)
{
	char **p = (char **)((char *)base + k->off);
	const char *s = v;

	/* Components of [A-Za-z0-9_.:@-], none of them "." or "..". */
	if (!*s || *s == '/')
		return -EINVAL;
	while (*s) {
		size_t n = strcspn(s, "/");

		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && !strncmp(s, "..", 2)))
			return -EINVAL;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr("_.:@-", s[i]))
				return -EINVAL;
		s += n;
		if (*s == '/' && !*++s)
			return -EINVAL;
	}
	return cfg_str_take(p, strdup(v));
}

static int dump_str(FILE *f, const struct cfg_key *k, const void *base)
{
	const char *v = *(char *const *)((const char *)base + k->off);

	return fprintf(f, "%s = %s\n", k->name, v) < 0 ? -EIO : 0;
}

static int parse_socket(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	char **p = (char **)((char *)base + k->off);

	if (v[0] != '/')
		return -EINVAL;
	if (strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ERANGE;
	return cfg_str_take(p, strdup(v));
}

static int parse_metrics(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	char **p = (char **)((char *)base + k->off);
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (!strcmp(v, "off")) {
		free(*p);
		*p = NULL;
		return 0;
	}
	if (!colon || colon == v || sup_parse_u64(colon + 1, &port) < 0 || port == 0 || port > 65535)
		return -EINVAL;
	/* An IPv6 literal needs brackets, or its last group reads as the port. */
	if (memchr(v, ':', (size_t)(colon - v)) && (v[0] != '[' || colon[-1] != ']'))
		return -EINVAL;
	return cfg_str_take(p, strdup(v));
}

static int dump_metrics(FILE *f, const struct cfg_key *k, const void *base)
{
	const char *v = *(char *const *)((const char *)base + k->off);

	return fprintf(f, "%s = %s\n", k->name, v ? v : "off") < 0 ? -EIO : 0;
}

static int parse_level(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	int *p = (int *)((char *)base + k->off);

	for (int i = 0; level_names[i]; i++)
		if (!strcmp(v, level_names[i])) {
			*p = i;
			return 0;
		}
	if (!strcmp(v, "error") || !strcmp(v, "warn")) {
		*p = v[0] == 'e' ? 3 : 4;
		return 0;
	}
	return -EINVAL;
}

static int dump_level(FILE *f, const struct cfg_key *k, const void *base)
{
	int v = *(const int *)((const char *)base + k->off);

	return fprintf(f, "%s = %s\n", k->name, level_names[v]) < 0 ? -EIO : 0;
}

/* A size within the key's [min, max]. */
static int size_in_range(const struct cfg_key *k, const char *v, uint64_t *ret)
{
	uint64_t n;
	int r = sup_parse_size(v, &n);

	if (r < 0)
		return r;
	if (n < (uint64_t)k->min || n > (uint64_t)k->max)
		return -ERANGE;
	*ret = n;
	return 0;
}

static int parse_size64(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	uint64_t n;
	int r = size_in_range(k, v, &n);

	(void)x;
	if (r < 0)
		return r;
	*(uint64_t *)((char *)base + k->off) = n;
	return 0;
}

static int dump_size64(FILE *f, const struct cfg_key *k, const void *base)
{
	char buf[32];

	sup_format_size(*(const uint64_t *)((const char *)base + k->off), buf, sizeof(buf));
	return fprintf(f, "%s = %s\n", k->name, buf) < 0 ? -EIO : 0;
}

/* The key's max must fit 32 bits. */
static int parse_size32(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	uint64_t n;
	int r = size_in_range(k, v, &n);

	(void)x;
	if (r < 0)
		return r;
	*(uint32_t *)((char *)base + k->off) = (uint32_t)n;
	return 0;
}

static int dump_size32(FILE *f, const struct cfg_key *k, const void *base)
{
	char buf[32];

	sup_format_size(*(const uint32_t *)((const char *)base + k->off), buf, sizeof(buf));
	return fprintf(f, "%s = %s\n", k->name, buf) < 0 ? -EIO : 0;
}

#define S(field) offsetof(struct sup_supervisor_conf, field)
#define DUR(n, f, lo, hi) { .name = n, .type = CT_DUR, .off = S(f), .min = lo, .max = hi }
#define MS SUP_NS_PER_MS
#define SEC SUP_NS_PER_SEC

static const char *const journal_sync_names[] = { "batch", "always", "off", NULL };
static const char *const after_crash_names[] = { "interrupt", "rerun", NULL };

static const struct cfg_key sup_keys[] = {
	{ .name = "cgroup_root", .type = CT_FN, .off = S(cgroup_root),
	  .expect = "a relative path below the cgroup2 mount, like tierd or fleet/tierd",
	  .parse = parse_cgroup_root, .dump = dump_str },
	{ .name = "control_socket", .type = CT_FN, .off = S(control_socket),
	  .expect = "an absolute path shorter than 108 bytes", .parse = parse_socket,
	  .dump = dump_str },
	{ .name = "control_group", .type = CT_STR, .off = S(control_group),
	  .expect = "a group name or gid" },
	DUR("monitor_interval", monitor_interval_ns, 10 * MS, 3600 * SEC),
	{ .name = "log_level", .type = CT_FN, .off = S(log_level),
	  .expect = "one of emerg, alert, crit, err, warning, notice, info, debug",
	  .parse = parse_level, .dump = dump_level },
	{ .name = "metrics_address", .type = CT_FN, .off = S(metrics_address),
	  .expect = "HOST:PORT (an IPv6 host in brackets) or off",
	  .parse = parse_metrics, .dump = dump_metrics },
	DUR("restart_backoff_base", restart_backoff_base_ns, 1 * MS, 3600 * SEC),
	DUR("restart_backoff_cap", restart_backoff_cap_ns, 1 * MS, 86400 * SEC),
	DUR("restart_stable_after", restart_stable_after_ns, 0, 86400 * SEC),
	/* agent.c remembers the last 64 deaths of an agent. */
	{ .name = "crash_loop_count", .type = CT_U32, .off = S(crash_loop_count), .min = 1,
	  .max = 64 },
	DUR("crash_loop_window", crash_loop_window_ns, 1 * SEC, 86400 * SEC),
	{ .name = "task_retry_budget", .type = CT_U32, .off = S(task_retry_budget), .min = 0,
	  .max = 100 },
	DUR("result_retention", result_retention_ns, 0, 7 * 86400 * SEC),
	{ .name = "task_queue_limit", .type = CT_U32, .off = S(task_queue_limit), .min = 1,
	  .max = 1 << 20 },
	{ .name = "max_payload", .type = CT_FN, .off = S(max_payload),
	  .expect = "a size from 1 to 65456 bytes (a 64K record less 80 bytes of headers)",
	  .min = 1, .max = SUP_RING_RECORD_MAX - SUP_TASK_OVERHEAD, .parse = parse_size32,
	  .dump = dump_size32 },
	DUR("spin_window", spin_window_ns, 0, 1 * SEC),
	{ .name = "utilisation_threshold", .type = CT_PCT, .off = S(utilisation_threshold),
	  .dmin = 1, .dmax = 100 },
	{ .name = "safety_margin", .type = CT_DEC, .off = S(safety_margin), .dmin = 0.01,
	  .dmax = 1 },
	{ .name = "hysteresis", .type = CT_PCT, .off = S(hysteresis), .dmin = 0, .dmax = 50 },
	{ .name = "optimiser", .type = CT_BOOL, .off = S(optimiser) },
	DUR("response_time_target", response_time_target_ns, 1 * MS, 3600 * SEC),
	{ .name = "efficiency_target", .type = CT_PCT, .off = S(efficiency_target), .dmin = 0,
	  .dmax = 100 },
	{ .name = "quality_threshold", .type = CT_DEC, .off = S(quality_threshold), .dmin = 0,
	  .dmax = 10 },
	{ .name = "stability_target", .type = CT_PCT, .off = S(stability_target), .dmin = 0,
	  .dmax = 100 },
	{ .name = "agentd", .type = CT_PATH, .off = S(agentd) },
	{ .name = "admin_group", .type = CT_STR, .off = S(admin_group),
	  .expect = "a group name or gid" },
	{ .name = "result_retention_max", .type = CT_U32, .off = S(result_retention_max),
	  .min = 0, .max = 1000000 },
	{ .name = "result_retention_bytes", .type = CT_FN, .off = S(result_retention_bytes),
	  .min = 0, .max = (int64_t)1 << 40, .expect = "a size from 0 to 1T",
	  .parse = parse_size64, .dump = dump_size64 },
	DUR("control_idle_timeout", control_idle_timeout_ns, 0, 86400 * SEC),
	{ .name = "control_max_clients_per_uid", .type = CT_U32, .off = S(control_max_per_uid),
	  .min = 0, .max = 1024 },
	{ .name = "agent_record_rate", .type = CT_U32, .off = S(agent_record_rate), .min = 0,
	  .max = 1u << 30 },
	{ .name = "agent_log_rate", .type = CT_U32, .off = S(agent_log_rate), .min = 0,
	  .max = 1000000 },
	{ .name = "agent_output_rate", .type = CT_FN, .off = S(agent_output_rate),
	  .expect = "a size per second from 0 (unlimited) to 1G", .min = 0, .max = 1u << 30, .parse = parse_size32,
	  .dump = dump_size32 },
	{ .name = "agent_wake_rate", .type = CT_U32, .off = S(agent_wake_rate), .min = 0,
	  .max = 1u << 30 },
	DUR("agent_flood_kill_after", agent_flood_kill_after_ns, 0, 86400 * SEC),
	{ .name = "journal", .type = CT_BOOL, .off = S(journal) },
	{ .name = "journal_dir", .type = CT_PATH, .off = S(journal_dir) },
	{ .name = "journal_sync", .type = CT_ENUM, .off = S(journal_sync),
	  .names = journal_sync_names },
	DUR("journal_sync_window", journal_sync_window_ns, 0, 1 * SEC),
	{ .name = "journal_max_bytes", .type = CT_FN, .off = S(journal_max_bytes),
	  .min = 64 * 1024, .max = (int64_t)1 << 42, .expect = "a size from 64K to 4T",
	  .parse = parse_size64, .dump = dump_size64 },
	{ .name = "journal_segment_bytes", .type = CT_FN, .off = S(journal_segment_bytes),
	  .min = 4096, .max = (int64_t)1 << 32, .expect = "a size from 4K to 4G",
	  .parse = parse_size64, .dump = dump_size64 },
	{ .name = "workflow_after_crash", .type = CT_ENUM, .off = S(workflow_after_crash),
	  .names = after_crash_names },
};
#undef S
#undef DUR

/* ---- tier keys ------------------------------------------------------------ */

#define T(field) offsetof(struct sup_tier_conf, field)
#define SHARE(n, r) { .name = n, .type = CT_PCT, .off = T(share[r]), .dmin = 0, .dmax = 100 }

static const struct cfg_key tier_keys[] = {
	SHARE("cpu_share", SUP_RES_CPU),
	SHARE("memory_share", SUP_RES_MEMORY),
	SHARE("io_share", SUP_RES_IO),
	SHARE("network_share", SUP_RES_NETWORK),
	{ .name = "batch_size", .type = CT_U32, .off = T(batch_size), .min = 1, .max = 1024 },
	{ .name = "stagger", .type = CT_DUR, .off = T(stagger_ns), .min = 0, .max = 3600 * SEC },
	{ .name = "processing_timeout", .type = CT_DUR, .off = T(processing_timeout_ns),
	  .min = 1 * MS, .max = 86400 * SEC },
};
#undef T
#undef SHARE

/* ---- agent keys ----------------------------------------------------------- */

static int parse_exec(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	struct sup_agent_conf *a = base;
	char **argv;
	size_t argc;
	int r;

	r = sup_parse_argv(v, &argv, &argc);
	if (r < 0)
		return r;
	if (!argv[0][0]) {
		sup_argv_free(argv);
		return -EINVAL;
	}
	/* "./x" and "bin/x" mean "beside the config", not "wherever tierd
	 * was started"; a bare name is left to PATH. */
	if (argv[0][0] != '/' && strchr(argv[0], '/')) {
		char *abs = cfg_path(x, argv[0]);

		if (!abs) {
			sup_argv_free(argv);
			return -ENOMEM;
		}
		free(argv[0]);
		argv[0] = abs;
	}
	sup_argv_free(a->argv);
	a->argv = argv;
	a->argc = argc;
	return 0;
}

static int dump_exec(FILE *f, const struct cfg_key *k, const void *base)
{
	const struct sup_agent_conf *a = base;
	char *line;
	int r;

	if (!a->argv)
		return 0;
	line = sup_argv_format(a->argv);
	if (!line)
		return -ENOMEM;
	r = fprintf(f, "%s = %s\n", k->name, line) < 0 ? -EIO : 0;
	free(line);
	return r;
}

/* Append s to a NULL-terminated array of n strings; takes s. */
static int strv_push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));

	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

static int parse_env(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	struct sup_agent_conf *a = base;
	size_t n = strcspn(v, "=");
	char q[96];
	char *dup;

	if (!v[n] || n == 0 || n > ENV_NAME_MAX || isdigit((unsigned char)v[0]))
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '_')
			goto bad;
	if (!strncmp(v, "TIER_", 5)) {
		cfg_key_error(x, k, "variables TIER_* are set by tierd for the agent, got %s",
			      cfg_quote(v, q, sizeof(q)));
		return 1;
	}
	for (size_t i = 0; i < a->n_env; i++)
		if (!strncmp(a->env[i], v, n + 1)) {
			cfg_key_error(x, k, "variable '%.*s' is set twice", (int)n, v);
			return 1;
		}
	dup = strdup(v);
	if (!dup)
		return -ENOMEM;
	return strv_push(&a->env, &a->n_env, dup);
bad:
	return -EINVAL;
}

static int dump_strv(FILE *f, const char *name, char *const *v)
{
	for (; v && *v; v++)
		if (fprintf(f, "%s = %s\n", name, *v) < 0)
			return -EIO;
	return 0;
}

static int dump_env(FILE *f, const struct cfg_key *k, const void *base)
{
	return dump_strv(f, k->name, ((const struct sup_agent_conf *)base)->env);
}

/* Tokens separated by commas and/or blanks. Returns the next token's length
 * and moves *s to it; 0 at the end. */
static size_t next_token(const char **s)
{
	*s += strspn(*s, ", \t");
	return strcspn(*s, ", \t");
}

/* A token of a list, NUL-terminated and cut to fit, for messages. */
static const char *token_quote(const char *t, size_t n, char *buf, size_t sz)
{
	char tok[64];

	if (n >= sizeof(tok))
		n = sizeof(tok) - 1;
	memcpy(tok, t, n);
	tok[n] = '\0';
	return cfg_quote(tok, buf, sz);
}

static int parse_caps(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	struct sup_agent_conf *a = base;
	uint64_t caps = 0;
	size_t n;
	char q[96];

	if (!strcmp(v, "none")) {
		a->caps = 0;
		return 0;
	}
	while ((n = next_token(&v))) {
		char name[64];
		cap_value_t cap;
		size_t off = 0;

		/* "net_admin", "CAP_NET_ADMIN" and "cap_net_admin" alike. */
		if (n + 5 > sizeof(name))
			goto unknown;
		if (n < 4 || strncasecmp(v, "cap_", 4)) {
			memcpy(name, "cap_", 4);
			off = 4;
		}
		for (size_t i = 0; i < n; i++)
			name[off + i] = (char)tolower((unsigned char)v[i]);
		name[off + n] = '\0';
		if (cap_from_name(name, &cap) < 0 || cap < 0 || cap >= 64)
			goto unknown;
		caps |= 1ull << cap;
		v += n;
	}
	a->caps = caps;
	return 0;
unknown:
	cfg_key_error(x, k, "expected capability names like cap_net_bind_service, got %s",
		      token_quote(v, n, q, sizeof(q)));
	return 1;
}

static int dump_caps(FILE *f, const struct cfg_key *k, const void *base)
{
	uint64_t caps = ((const struct sup_agent_conf *)base)->caps;
	bool first = true;

	if (fprintf(f, "%s =", k->name) < 0)
		return -EIO;
	if (!caps && fputs(" none", f) < 0)
		return -EIO;
	for (int i = 0; i < 64; i++) {
		char *name;
		int r;

		if (!(caps & (1ull << i)))
			continue;
		name = cap_to_name(i);
		if (!name)
			return -ENOMEM;
		r = fprintf(f, "%s%s", first ? " " : ",", name);
		cap_free(name);
		if (r < 0)
			return -EIO;
		first = false;
	}
	return fputc('\n', f) == EOF ? -EIO : 0;
}

static int parse_ring(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	uint32_t *p = (uint32_t *)((char *)base + k->off);
	uint64_t n;
	int r;

	r = sup_parse_size(v, &n);
	if (r < 0)
		return r;
	if (n < SUP_RING_SIZE_MIN || n > SUP_RING_SIZE_MAX || (n & (n - 1)))
		return -ERANGE;
	*p = (uint32_t)n;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_specialties(struct cfg_ctx *x, const struct cfg_key *k, void *base,
			     const char *v)
{
	struct sup_agent_conf *a = base;
	char **list = NULL;
	size_t n_list = 0, n;
	char q[96];
	int r = 0;

	while ((n = next_token(&v))) {
		char *t;

		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)v[i]) && !strchr("_.:/-", v[i]))
				goto bad;
		if (n > SPECIALTY_MAX)
			goto bad;
		for (size_t i = 0; i < n_list; i++)
			if (strlen(list[i]) == n && !memcmp(list[i], v, n)) {
				cfg_key_error(x, k, "task type %s is listed twice",
					      token_quote(v, n, q, sizeof(q)));
				r = 1;
				goto free_list;
			}
		t = strndup(v, n);
		if (!t) {
			r = -ENOMEM;
			goto free_list;
		}
		r = strv_push(&list, &n_list, t);
		if (r < 0)
			goto free_list;
		v += n;
	}
	if (!n_list) {
		r = -EINVAL;
		goto free_list;
	}
	/* Sorted: order means nothing, and equal sets compare equal. */
	qsort(list, n_list, sizeof(*list), cmp_str);
	sup_argv_free(a->specialties);
	a->specialties = list;
	a->n_specialties = n_list;
	return 0;
bad:
	cfg_key_error(x, k, "expected task types of [A-Za-z0-9_.:/-] (at most %d characters), "
		      "separated by commas, got %s", SPECIALTY_MAX, token_quote(v, n, q, sizeof(q)));
	r = 1;
free_list:
	sup_argv_free(list);
	return r;
}

static int dump_specialties(FILE *f, const struct cfg_key *k, const void *base)
{
	const struct sup_agent_conf *a = base;

	if (!a->n_specialties)
		return 0;
	if (fprintf(f, "%s = ", k->name) < 0)
		return -EIO;
	for (size_t i = 0; i < a->n_specialties; i++)
		if (fprintf(f, "%s%s", i ? ", " : "", a->specialties[i]) < 0)
			return -EIO;
	return fputc('\n', f) == EOF ? -EIO : 0;
}

static bool rlimit_bytes(int res)
{
	return res == RLIMIT_AS || res == RLIMIT_CORE || res == RLIMIT_DATA ||
	       res == RLIMIT_FSIZE || res == RLIMIT_MEMLOCK || res == RLIMIT_MSGQUEUE ||
	       res == RLIMIT_RSS || res == RLIMIT_STACK;
}

static int parse_rlimit(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v)
{
	struct sup_rlimit_conf *rl = &((struct sup_agent_conf *)base)->rlimits[k->arg];
	uint64_t cur, max;
	int r;

	r = sup_parse_rlimit(v, rlimit_bytes(k->arg), &cur, &max);
	if (r < 0)
		return r;
	rl->set = true;
	rl->cur = cur;
	rl->max = max;
	return 0;
}

static void format_rlim(uint64_t v, bool bytes, char *buf, size_t sz)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, sz, "infinity");
	else if (bytes)
		sup_format_size(v, buf, sz);
	else
		snprintf(buf, sz, "%" PRIu64, v);
}

static int dump_rlimit(FILE *f, const struct cfg_key *k, const void *base)
{
	const struct sup_rlimit_conf *rl = &((const struct sup_agent_conf *)base)->rlimits[k->arg];
	char cur[32], max[32];

	if (!rl->set)
		return 0;
	format_rlim(rl->cur, rlimit_bytes(k->arg), cur, sizeof(cur));
	format_rlim(rl->max, rlimit_bytes(k->arg), max, sizeof(max));
	return fprintf(f, "%s = %s:%s\n", k->name, cur, max) < 0 ? -EIO : 0;
}

#define A(field) offsetof(struct sup_agent_conf, field)
#define RL(n, res) { .name = "rlimit_" n, .type = CT_FN, .arg = res, \
		     .expect = "SOFT:HARD or one value for both (a number or infinity)", \
		     .parse = parse_rlimit, .dump = dump_rlimit }

static const struct cfg_key agent_keys[] = {
	{ .name = "tier", .type = CT_U32, .flags = KF_REQUIRED, .off = A(tier), .min = 1,
	  .max = SUP_NTIERS },
	{ .name = "exec", .type = CT_FN, .flags = KF_REQUIRED,
	  .expect = "a command line (words, '…' or \"…\" quotes, \\ escapes)",
	  .parse = parse_exec, .dump = dump_exec },
	{ .name = "env", .type = CT_FN, .flags = KF_REPEAT,
	  .expect = "NAME=VALUE with NAME of [A-Za-z0-9_] not starting with a digit",
	  .parse = parse_env, .dump = dump_env },
	{ .name = "workdir", .type = CT_PATH, .off = A(workdir) },
	{ .name = "user", .type = CT_STR, .off = A(user), .expect = "a user name or uid" },
	{ .name = "group", .type = CT_STR, .off = A(group), .expect = "a group name or gid" },
	{ .name = "capabilities", .type = CT_FN,
	  .expect = "capability names like cap_net_bind_service, or none",
	  .parse = parse_caps, .dump = dump_caps },
	RL("as", RLIMIT_AS), RL("core", RLIMIT_CORE), RL("cpu", RLIMIT_CPU),
	RL("data", RLIMIT_DATA), RL("fsize", RLIMIT_FSIZE), RL("locks", RLIMIT_LOCKS),
	RL("memlock", RLIMIT_MEMLOCK), RL("msgqueue", RLIMIT_MSGQUEUE), RL("nice", RLIMIT_NICE),
	RL("nofile", RLIMIT_NOFILE), RL("nproc", RLIMIT_NPROC), RL("rss", RLIMIT_RSS),
	RL("rtprio", RLIMIT_RTPRIO), RL("rttime", RLIMIT_RTTIME),
	RL("sigpending", RLIMIT_SIGPENDING), RL("stack", RLIMIT_STACK),
	{ .name = "restart", .type = CT_ENUM, .off = A(restart), .names = restart_names },
	{ .name = "start_timeout", .type = CT_DUR, .off = A(start_timeout_ns), .min = 1 * MS,
	  .max = 3600 * SEC },
	{ .name = "stop_timeout", .type = CT_DUR, .off = A(stop_timeout_ns), .min = 1 * MS,
	  .max = 3600 * SEC },
	{ .name = "ring_size", .type = CT_FN, .off = A(ring_size),
	  .expect = "a power of two from 4K to 1G bytes", .parse = parse_ring,
	  .dump = dump_size32 },
	{ .name = "specialties", .type = CT_FN, .expect = "task types separated by commas",
	  .parse = parse_specialties, .dump = dump_specialties },
	{ .name = "mode", .type = CT_ENUM, .off = A(mode), .names = mode_names },
	{ .name = "exec_timeout", .type = CT_DUR, .off = A(exec_timeout_ns), .min = 1 * MS,
	  .max = 86400 * SEC },
	{ .name = "sandbox", .type = CT_BOOL, .off = A(sandbox) },
};
#undef A
#undef RL

#define TABLE(t) { t, sizeof(t) / sizeof(t[0]) }
const struct cfg_table sup_cfg_sup_keys = TABLE(sup_keys);
const struct cfg_table sup_cfg_tier_keys = TABLE(tier_keys);
const struct cfg_table sup_cfg_agent_keys = TABLE(agent_keys);
_Static_assert(sizeof(agent_keys) / sizeof(agent_keys[0]) + SUP_LIM_COUNT <= CFG_MAX_KEYS,
	       "struct cfg_lines too small");
_Static_assert(sizeof(sup_keys) / sizeof(sup_keys[0]) <= CFG_MAX_KEYS,
	       "struct cfg_lines too small");
