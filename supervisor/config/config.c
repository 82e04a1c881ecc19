/* SPDX-License-Identifier: MIT */
/*
 * config — loading: reading the file, then the sections and keys the line
 * reader (config_read.c) finds in it; then config_check.c checks the whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdio.h"
#include "config_internal.h"

/* ---- diagnostics ---------------------------------------------------------- */

void sup_config_errors_clear(struct sup_config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i].msg);
	free(errs->v);
	*errs = (struct sup_config_errors){ 0 };
}

__attribute__((format(printf, 5, 0)))
static void cfg_vdiag(struct cfg_ctx *x, bool warning, unsigned line, const char *label,
		      const char *fmt, va_list ap)
{
	struct sup_config_errors *e = x->errs;
	char *text = NULL, *msg = NULL, where[32] = "";

	if (!warning)
		e->n_errors++;
	if (e->n >= SUP_CONFIG_MAX_DIAGS) {
		e->dropped++;
		return;
	}
	if (line)
		snprintf(where, sizeof(where), "%u:", line);
	if (vasprintf(&text, fmt, ap) < 0 ||
	    asprintf(&msg, "%s:%s %s%s%s%s", x->path, where, warning ? "warning: " : "",
		     label ? label : "", label ? " " : "", text) < 0) {
		free(text);
		x->oom = true;
		return;
	}
	free(text);
	/* Capacity is 2^k - 1: grow when n reaches it. */
	if (!(e->n & (e->n + 1))) {
		struct sup_config_diag *nv = realloc(e->v, (2 * e->n + 1) * sizeof(*nv));

		if (!nv) {
			free(msg);
			x->oom = true;
			return;
		}
		e->v = nv;
	}
	e->v[e->n++] = (struct sup_config_diag){ .warning = warning, .line = line, .msg = msg };
}

void cfg_diag(struct cfg_ctx *x, bool warning, unsigned line, const char *label,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_vdiag(x, warning, line, label, fmt, ap);
	va_end(ap);
}

void cfg_key_error(struct cfg_ctx *x, const struct cfg_key *k, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	cfg_diag(x, false, x->line, x->label, "key '%s': %s", k->name, text);
}

const char *cfg_quote(const char *v, char *buf, size_t sz)
{
	static const size_t show = 48;
	size_t n = 0, i;

	if (sz < 8)
		return "";
	buf[n++] = '\'';
	for (i = 0; i < show && v[i] && n + 6 < sz; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 0x20 || ch == 0x7f)
			n += (size_t)snprintf(buf + n, sz - n, "\\x%02x", ch);
		else
			buf[n++] = (char)ch;
	}
	if (v[i] && n + 5 < sz) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return buf;
}

char *cfg_path(const struct cfg_ctx *x, const char *v)
{
	const char *dir = x->c->dir;
	char *out;

	if (v[0] == '/')
		return strdup(v);
	while (v[0] == '.' && v[1] == '/')
		v += 2 + strspn(v + 2, "/");
	if (asprintf(&out, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", v) < 0)
		return NULL;
	return out;
}

/* ---- sections ------------------------------------------------------------- */

static void set_defaults(struct sup_config *c)
{
	static const double shares[SUP_NRES][SUP_NTIERS] = {
		SUP_DEF_CPU_SHARES, SUP_DEF_MEMORY_SHARES, SUP_DEF_IO_SHARES, SUP_DEF_NETWORK_SHARES,
	};
	struct sup_supervisor_conf *s = &c->sup;

	s->monitor_interval_ns = SUP_DEF_MONITOR_INTERVAL_NS;
	s->log_level = SUP_DEF_LOG_LEVEL;
	s->restart_backoff_base_ns = SUP_DEF_BACKOFF_BASE_NS;
	s->restart_backoff_cap_ns = SUP_DEF_BACKOFF_CAP_NS;
	s->restart_stable_after_ns = SUP_DEF_STABLE_AFTER_NS;
	s->crash_loop_count = SUP_DEF_CRASH_LOOP_COUNT;
	s->crash_loop_window_ns = SUP_DEF_CRASH_LOOP_WINDOW_NS;
	s->task_retry_budget = SUP_DEF_TASK_RETRY_BUDGET;
	s->result_retention_ns = SUP_DEF_RESULT_RETENTION_NS;
	s->task_queue_limit = SUP_DEF_TASK_QUEUE_LIMIT;
	s->max_payload = SUP_DEF_MAX_PAYLOAD;
	s->spin_window_ns = SUP_DEF_SPIN_WINDOW_NS;
	s->agent_record_rate = SUP_DEF_AGENT_RECORD_RATE;
	s->agent_log_rate = SUP_DEF_AGENT_LOG_RATE;
	s->agent_output_rate = SUP_DEF_AGENT_OUTPUT_RATE;
	s->agent_wake_rate = SUP_DEF_AGENT_WAKE_RATE;
	s->agent_flood_kill_after_ns = SUP_DEF_AGENT_FLOOD_KILL_AFTER_NS;
	s->utilisation_threshold = SUP_DEF_UTILISATION_THRESHOLD;
	s->safety_margin = SUP_DEF_SAFETY_MARGIN;
	s->hysteresis = SUP_DEF_HYSTERESIS;
	s->optimiser = SUP_DEF_OPTIMISER;
	s->response_time_target_ns = SUP_DEF_RESPONSE_TIME_TARGET_NS;
	s->efficiency_target = SUP_DEF_EFFICIENCY_TARGET;
	s->quality_threshold = SUP_DEF_QUALITY_THRESHOLD;
	s->stability_target = SUP_DEF_STABILITY_TARGET;
	s->result_retention_max = SUP_DEF_RESULT_RETENTION_MAX;
	s->result_retention_bytes = SUP_DEF_RESULT_RETENTION_BYTES;
	s->control_idle_timeout_ns = SUP_DEF_CONTROL_IDLE_TIMEOUT_NS;
	s->control_max_per_uid = SUP_DEF_CONTROL_MAX_PER_UID;
	s->journal = true;
	s->journal_sync_window_ns = SUP_DEF_JOURNAL_SYNC_WINDOW_NS;
	s->journal_max_bytes = SUP_DEF_JOURNAL_MAX_BYTES;
	s->journal_segment_bytes = SUP_DEF_JOURNAL_SEGMENT_BYTES;
	for (int t = 0; t < SUP_NTIERS; t++) {
		struct sup_tier_conf *tc = &c->tiers[t];

		for (int r = 0; r < SUP_NRES; r++)
			tc->share[r] = shares[r][t];
		tc->batch_size = SUP_DEF_BATCH_SIZE;
		tc->stagger_ns = SUP_DEF_STAGGER_NS;
		tc->processing_timeout_ns = SUP_DEF_PROCESSING_TIMEOUT_NS;
	}
}

static bool agent_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > SUP_AGENT_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

static void begin_agent(struct cfg_ctx *x, const char *name, size_t n)
{
	struct sup_config *c = x->c;
	struct sup_agent_conf *na, *a;
	struct cfg_lines *nl;
	char q[96];

	if (!agent_name_valid(name, n)) {
		cfg_diag(x, false, x->line, NULL,
			 "section [agent NAME]: expected a NAME of 1..%d characters [A-Za-z0-9_.-], "
			 "not starting with '.', got %s", SUP_AGENT_NAME_MAX,
			 cfg_quote(name, q, sizeof(q)));
		return;
	}
	for (size_t i = 0; i < c->n_agents; i++)
		if (strlen(c->agents[i].name) == n && !memcmp(c->agents[i].name, name, n)) {
			cfg_diag(x, false, x->line, NULL,
				 "[agent %s]: duplicate agent name (first defined at line %u)",
				 c->agents[i].name, c->agents[i].line);
			return;
		}
	if (c->n_agents == SUP_CONFIG_MAX_AGENTS) {
		cfg_diag(x, false, x->line, NULL, "[agent %.*s]: too many agents (at most %d)",
			 (int)n, name, SUP_CONFIG_MAX_AGENTS);
		return;
	}
	na = realloc(c->agents, (c->n_agents + 1) * sizeof(*na));
	if (na)
		c->agents = na;
	nl = realloc(x->agent_lines, (c->n_agents + 1) * sizeof(*nl));
	if (nl)
		x->agent_lines = nl;
	if (!na || !nl)
		goto oom;
	a = &c->agents[c->n_agents];
	*a = (struct sup_agent_conf){
		.restart = SUP_DEF_RESTART,
		.start_timeout_ns = SUP_DEF_START_TIMEOUT_NS,
		.stop_timeout_ns = SUP_DEF_STOP_TIMEOUT_NS,
		.ring_size = SUP_DEF_RING_SIZE,
		.mode = SUP_DEF_MODE,
		.exec_timeout_ns = SUP_DEF_EXEC_TIMEOUT_NS,
		.sandbox = SUP_DEF_SANDBOX,
		.line = x->line,
	};
	a->name = strndup(name, n);
	if (!a->name)
		goto oom;
	x->agent_lines[c->n_agents] = (struct cfg_lines){ .header = x->line };
	x->agent = c->n_agents++;
	x->sec = SEC_AGENT;
	snprintf(x->label, sizeof(x->label), "[agent %s]", a->name);
	return;
oom:
	x->oom = true;
}

void cfg_on_section(struct cfg_ctx *x, const char *name)
{
	struct cfg_lines *lines = NULL;

	x->sec = SEC_BAD;
	if (!strcmp(name, "supervisor")) {
		x->sec = SEC_SUP;
		lines = &x->sup_lines;
	} else if (!strncmp(name, "tier", 4) && name[4] >= '1' && name[4] < '1' + SUP_NTIERS &&
		   !name[5]) {
		x->sec = SEC_TIER;
		x->tier = (unsigned)(name[4] - '1');
		lines = &x->tier_lines[x->tier];
	} else if (!strcmp(name, "fleet")) {
		x->sec = SEC_FLEET;
		lines = &x->fleet_lines;
	} else if (!strncmp(name, "agent", 5) &&
		   (name[5] == ' ' || name[5] == '\t' || !name[5])) {
		const char *an = name + 5 + strspn(name + 5, " \t");

		begin_agent(x, an, strlen(an));
		return;
	} else {
		cfg_diag(x, false, x->line, NULL,
			 "unknown section [%.64s]: expected [supervisor], [tier1]..[tier%d], "
			 "[agent NAME] or [fleet]", name, SUP_NTIERS);
		return;
	}
	snprintf(x->label, sizeof(x->label), "[%s]", name);
	if (lines->header)
		cfg_diag(x, false, x->line, x->label, "section given twice (first at line %u)",
			 lines->header);
	else
		lines->header = x->line;
}

/* ---- keys ----------------------------------------------------------------- */

int cfg_key_index(const struct cfg_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->keys[i].name, name))
			return (int)i;
	return -1;
}

/* Edit distance, for "did you mean"; short strings only. */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[41];

	if (la > 40 || lb > 40)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static void unknown_key(struct cfg_ctx *x, const char *name, const struct cfg_table *own,
			bool limits)
{
	const struct cfg_table *all[] = { &sup_cfg_sup_keys, &sup_cfg_tier_keys,
					  &sup_cfg_agent_keys, &sup_cfg_limit_keys,
					  &sup_cfg_fleet_keys };
	static const char *const where[] = { "[supervisor]", "[tierN]", "[agent NAME]",
					     "[tierN] and [agent NAME]", "[fleet]" };
	const char *best = NULL;
	unsigned best_d = 3;
	char q[96];

	for (int t = 0; t < 5; t++)
		if (cfg_key_index(all[t], name) >= 0) {
			cfg_diag(x, false, x->line, x->label, "key '%s' belongs in %s sections", name,
				 where[t]);
			return;
		}
	for (int t = 0; t < 5; t++) {
		if (all[t] != own && !(limits && all[t] == &sup_cfg_limit_keys))
			continue;
		for (size_t i = 0; i < all[t]->n; i++) {
			unsigned d = distance(name, all[t]->keys[i].name);

			if (d < best_d) {
				best_d = d;
				best = all[t]->keys[i].name;
			}
		}
	}
	if (best)
		cfg_diag(x, false, x->line, x->label, "unknown key %s (did you mean '%s'?)",
			 cfg_quote(name, q, sizeof(q)), best);
	else
		cfg_diag(x, false, x->line, x->label, "unknown key %s",
			 cfg_quote(name, q, sizeof(q)));
}

void cfg_on_key(struct cfg_ctx *x, const char *name, const char *value)
{
	const struct cfg_table *t;
	const struct cfg_key *k;
	struct cfg_lines *lines;
	void *base, *limits;
	char expect[256], q[96];
	int i, r;

	switch (x->sec) {
	case SEC_NONE:
		cfg_diag(x, false, x->line, NULL, "key %s comes before any [section]",
			 cfg_quote(name, q, sizeof(q)));
		return;
	case SEC_BAD:
		return;   /* the header was reported */
	case SEC_SUP:
		t = &sup_cfg_sup_keys;
		base = &x->c->sup;
		limits = NULL;
		lines = &x->sup_lines;
		break;
	case SEC_TIER:
		t = &sup_cfg_tier_keys;
		base = &x->c->tiers[x->tier];
		limits = &x->c->tiers[x->tier].limits;
		lines = &x->tier_lines[x->tier];
		break;
	case SEC_FLEET:
		t = &sup_cfg_fleet_keys;
		base = &x->c->fleet;
		limits = NULL;
		lines = &x->fleet_lines;
		break;
	default:
		t = &sup_cfg_agent_keys;
		base = &x->c->agents[x->agent];
		limits = &x->c->agents[x->agent].limits;
		lines = &x->agent_lines[x->agent];
		break;
	}
	i = cfg_key_index(t, name);
	if (i >= 0) {
		k = &t->keys[i];
	} else if (limits && (i = cfg_key_index(&sup_cfg_limit_keys, name)) >= 0) {
		k = &sup_cfg_limit_keys.keys[i];
		base = limits;
		i += (int)t->n;
	} else {
		unknown_key(x, name, t, limits != NULL);
		return;
	}
	if (lines->key[i] && !(k->flags & KF_REPEAT)) {
		cfg_key_error(x, k, "given twice (first at line %u)", lines->key[i]);
		return;
	}
	if (!lines->key[i])
		lines->key[i] = x->line;
	r = cfg_apply(x, k, base, value);
	if (r == -ENOMEM) {
		x->oom = true;
	} else if (r < 0) {
		cfg_expect(k, expect, sizeof(expect));
		cfg_key_error(x, k, "expected %s, got %s", expect, cfg_quote(value, q, sizeof(q)));
	}
}

/* File order reads best; messages about the whole file go last. Stable,
 * so messages about one line keep the order they were found in. */
static void sort_diags(struct sup_config_errors *e)
{
	for (size_t i = 1; i < e->n; i++) {
		struct sup_config_diag d = e->v[i];
		unsigned key = d.line ? d.line : UINT_MAX;
		size_t j = i;

		for (; j > 0 && (e->v[j - 1].line ? e->v[j - 1].line : UINT_MAX) > key; j--)
			e->v[j] = e->v[j - 1];
		e->v[j] = d;
	}
}

/* ---- entry points --------------------------------------------------------- */

/* The directory relative paths are resolved in, absolute. */
static char *config_dir(const char *path, const char *dir)
{
	char *cwd, *out = NULL, *own = NULL;
	const char *slash;

	if (!dir) {
		slash = strrchr(path, '/');
		if (!slash)
			dir = ".";
		else if (slash == path)
			dir = "/";
		else
			dir = own = strndup(path, (size_t)(slash - path));
		if (!dir)
			return NULL;
	}
	if (dir[0] == '/') {
		out = strdup(dir);
	} else {
		cwd = getcwd(NULL, 0);
		if (cwd) {
			if (!strcmp(dir, "."))
				out = cwd, cwd = NULL;
			else if (asprintf(&out, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", dir) < 0)
				out = NULL;
			free(cwd);
		}
	}
	free(own);
	return out;
}

struct sup_config *sup_config_parse(const char *path, const char *dir, const char *buf,
				    size_t len, struct sup_config_errors *errs)
{
	struct sup_config_errors local = { 0 };
	struct sup_config *c;
	struct cfg_ctx x = { .path = path, .errs = errs ? errs : &local };
	int err = ENOMEM;

	sup_config_errors_clear(errs);
	c = calloc(1, sizeof(*c));
	if (!c)
		goto clear_errors;
	x.c = c;
	set_defaults(c);
	cfg_fleet_defaults(&c->fleet);
	c->path = strdup(path);
	c->dir = config_dir(path, dir);
	c->sup.cgroup_root = strdup(SUP_DEF_CGROUP_ROOT);
	c->sup.control_socket = strdup(SUP_DEF_CONTROL_SOCKET);
	c->sup.metrics_address = strdup(SUP_DEF_METRICS_ADDRESS);
	if (!c->path || !c->dir || !c->sup.cgroup_root || !c->sup.control_socket ||
	    !c->sup.metrics_address) {
		err = c->dir ? ENOMEM : errno;
		goto err_free;
	}
	cfg_read(&x, buf, len);
	if (x.oom)
		goto err_free;
	cfg_check_all(&x);
	cfg_fleet_check(&x, x.fleet_lines.header);
	sort_diags(x.errs);
	if (x.oom)
		goto err_free;
	if (x.errs->n_errors) {
		err = EINVAL;
		goto err_free;
	}
	/* Kept: a live upgrade hands the configuration in force, not whatever
	 * the file says by then. */
	c->text = malloc(len + 1);
	if (!c->text) {
		err = ENOMEM;
		goto err_free;
	}
	memcpy(c->text, buf, len);
	c->text[len] = 0;
	c->text_len = len;
	free(x.agent_lines);
	sup_config_errors_clear(&local);
	return c;

err_free:
	free(x.agent_lines);
	sup_config_free(c);
clear_errors:
	sup_config_errors_clear(&local);
	errno = err;
	return NULL;
}

struct sup_config *sup_config_load(const char *path, struct sup_config_errors *errs)
{
	struct sup_config_errors local = { 0 };
	struct sup_config *c = NULL;
	struct cfg_ctx x = { .path = path, .errs = errs ? errs : &local };
	char *buf = NULL, *rdir = NULL, *slash;
	size_t len = 0;
	struct stat st;
	int fd, err;

	sup_config_errors_clear(errs);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = errno;
		goto free_buf;
	}
	if (fstat(fd, &st) < 0) {
		err = errno;
		goto fail_close;
	}
	if (S_ISDIR(st.st_mode)) {
		err = EISDIR;
		goto fail_close;
	}
	if (st.st_size > SUP_CONFIG_MAX_BYTES) {
		err = EFBIG;
		goto fail_close;
	}
	/* To EOF rather than to st_size: pipes and /dev/stdin work too. */
	err = -sup_read_fd_alloc(fd, SUP_CONFIG_MAX_BYTES, &buf, &len);
	if (err)
		goto fail_close;
	close(fd);
	/* Symlinks resolved: exec paths name the real directory. */
	slash = strrchr(path, '/');
	if (slash) {
		char *d = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));

		rdir = d ? realpath(d, NULL) : NULL;
		free(d);
	}
	c = sup_config_parse(path, rdir, buf, len, errs);
	err = errno;
	free(rdir);
	free(buf);
	if (!c)
		errno = err;
	return c;

fail_close:
	close(fd);
free_buf:
	free(buf);
	if (err == EFBIG)
		cfg_diag(&x, false, 0, NULL, "the file is larger than %u bytes",
			 SUP_CONFIG_MAX_BYTES);
	else
		cfg_diag(&x, false, 0, NULL, "cannot read: %s", strerror(err));
	sup_config_errors_clear(&local);
	errno = err;
	return NULL;
}

static void free_agent(struct sup_agent_conf *a)
{
	free(a->name);
	sup_argv_free(a->argv);
	sup_argv_free(a->env);
	free(a->workdir);
	free(a->user);
	free(a->group);
	sup_argv_free(a->specialties);
}

void sup_config_free(struct sup_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_agents; i++)
		free_agent(&c->agents[i]);
	free(c->agents);
	cfg_fleet_free(&c->fleet);
	free(c->sup.cgroup_root);
	free(c->sup.control_socket);
	free(c->sup.control_group);
	free(c->sup.metrics_address);
	free(c->sup.agentd);
	free(c->sup.admin_group);
	free(c->sup.journal_dir);
	free(c->path);
	free(c->dir);
	free(c->text);
	free(c);
}

const struct sup_agent_conf *sup_config_agent(const struct sup_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_agents; i++)
		if (!strcmp(c->agents[i].name, name))
			return &c->agents[i];
	return NULL;
}
