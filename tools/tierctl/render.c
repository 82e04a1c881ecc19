/* SPDX-License-Identifier: MIT */
/* tierctl: tables and result renderers. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define DASH "-"

/* ---- tables ------------------------------------------------------------ */

void tctl_table_init(struct tctl_table *t, unsigned ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

int tctl_table_add(struct tctl_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->cells = p;
		t->cap = cap;
	}
	for (unsigned i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] ? cells[i] : DASH);

		if (!s) {
			while (i--)
				free(t->cells[t->nrows * t->ncols + i]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
	return 0;
}

void tctl_table_print(const struct tctl_table *t, FILE *out)
{
	size_t *w = calloc(t->ncols, sizeof(*w));

	if (!w)
		return;
	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned i = 0; i < t->ncols; i++) {
			size_t n = strlen(t->cells[r * t->ncols + i]);

			if (n > w[i])
				w[i] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			/* No padding after the last column: no trailing blanks. */
			if (i + 1 == t->ncols)
				fprintf(out, "%s\n", s);
			else
				fprintf(out, "%-*s  ", (int)w[i], s);
		}
	}
	free(w);
}

void tctl_table_free(struct tctl_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ---- fields ------------------------------------------------------------ */

const char *tctl_fmt_str(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return DASH;
	snprintf(buf, len, "%s", json_string_value(v));
	return buf;
}

const char *tctl_fmt_int(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.0f", json_real_value(v));
	else
		return DASH;
	return buf;
}

const char *tctl_fmt_bool(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_boolean(v))
		return DASH;
	return json_is_true(v) ? "yes" : "no";
}

const char *tctl_fmt_duration(const json_t *obj, const char *key, char *buf, size_t len)
{
	const json_t *v = json_object_get(obj, key);
	double s;
	long long n;

	if (!json_is_number(v))
		return DASH;
	s = json_number_value(v);
	if (!isfinite(s) || s < 0)
		return DASH;
	n = (long long)s;
	if (s < 10)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 60)
		snprintf(buf, len, "%llds", n);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", n / 60, n % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", n / 3600, n / 60 % 60);
	else
		snprintf(buf, len, "%lldd%02lldh", n / 86400, n / 3600 % 24);
	return buf;
}

/* "a, b, c", "-" for an empty or missing list. */
static void print_names(FILE *out, const json_t *arr)
{
	size_t i, n = 0;
	const json_t *v;

	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			continue;
		fprintf(out, "%s%s", n++ ? ", " : "", json_string_value(v));
	}
	fputs(n ? "\n" : DASH "\n", out);
}

/* ---- status ------------------------------------------------------------ */

static const char *const CONTROLLERS[] = { "cpu", "memory", "io", "pids" };
static const char *const URING_FEATURES[] = {
	"poll_multishot", "accept_multishot", "futex_wait", "waitid", "timeout_multishot",
};
static const char *const STATES[] = {
	"starting", "ready", "stopping", "backoff", "failed", "stopped",
};

static void render_cgroup(FILE *out, const json_t *cg)
{
	const json_t *ctrls = json_object_get(cg, "controllers");
	const json_t *deleg = json_object_get(cg, "delegated");
	char root[512], mount[512];

	fprintf(out, "cgroup       %s (mount %s%s)\n",
		tctl_fmt_str(cg, "root", root, sizeof(root)),
		tctl_fmt_str(cg, "mount", mount, sizeof(mount)),
		!json_is_boolean(deleg) ? "" : json_is_true(deleg) ? ", delegated" : ", not delegated");
	for (size_t i = 0; i < sizeof(CONTROLLERS) / sizeof(CONTROLLERS[0]); i++) {
		const json_t *c = json_object_get(ctrls, CONTROLLERS[i]);
		const json_t *live = json_object_get(c, "live");
		char why[512];

		fprintf(out, "  %-10s %s", CONTROLLERS[i],
			!json_is_boolean(live) ? DASH : json_is_true(live) ? "live" : "not live");
		if (json_is_false(live) && json_is_string(json_object_get(c, "why")))
			fprintf(out, ": %s", tctl_fmt_str(c, "why", why, sizeof(why)));
		fputc('\n', out);
	}
}

static const char *on_off(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return !json_is_boolean(v) ? DASH : json_is_true(v) ? "on" : "off";
}

/* allocator on, optimiser on; io weights no (why) */
static void render_adapt(FILE *out, const json_t *al)
{
	const char *why = json_string_value(json_object_get(al, "io_why"));

	if (!al)
		return;
	fprintf(out, "allocator    %s, optimiser %s; io weights %s", on_off(al, "enabled"),
		on_off(al, "optimiser"), tctl_fmt_bool(al, "io_weights"));
	if (why && *why)
		fprintf(out, " (%s)", why);
	fputc('\n', out);
}

static void render_metrics(FILE *out, const json_t *m)
{
	const char *state = json_string_value(json_object_get(m, "state"));
	char s[512];

	if (!state)
		return;
	if (!strcmp(state, "listening"))
		fprintf(out, "metrics      http://%s/metrics\n", tctl_fmt_str(m, "address", s, sizeof(s)));
	else if (!strcmp(state, "failed"))
		fprintf(out, "metrics      not served: %s\n", tctl_fmt_str(m, "error", s, sizeof(s)));
	else
		fprintf(out, "metrics      %s\n", state);
}

static void render_tasks(FILE *out, const json_t *t)
{
	char a[5][32];

	if (!t)
		return;
	fprintf(out, "tasks        %s submitted, %s pending, %s queued, %s retries, %s late results\n",
		tctl_fmt_int(t, "submitted", a[0], 32), tctl_fmt_int(t, "pending", a[1], 32),
		tctl_fmt_int(t, "queued", a[2], 32), tctl_fmt_int(t, "retries", a[3], 32),
		tctl_fmt_int(t, "late_results", a[4], 32));
}

/* not enforced  tier2: pids_max; agent a: memory_max, pids_max */
static void render_unenforced(FILE *out, const json_t *un)
{
	const char *const kinds[2] = { "tiers", "agents" };
	const char *sep = "";
	bool any = false;

	for (int k = 0; k < 2; k++) {
		const json_t *obj = json_object_get(un, kinds[k]), *keys;
		const char *name;

		json_object_foreach((json_t *)obj, name, keys) {
			const json_t *key;
			size_t i;

			if (!any)
				fputs("not enforced on this host:", out);
			any = true;
			fprintf(out, "%s %s%s:", sep, k ? "agent " : "", name);
			json_array_foreach(keys, i, key)
				fprintf(out, "%s %s", i ? "," : "", json_string_value(key) ?
					json_string_value(key) : DASH);
			sep = ";";
		}
	}
	if (any)
		fputs(" (their controller is not in cgroup2: see above)\n", out);
}

void tctl_render_status(FILE *out, const char *label, const json_t *r)
{
	const json_t *uring = json_object_get(r, "io_uring");
	const json_t *tiers = json_object_get(r, "tiers");
	const json_t *tier;
	struct tctl_table t;
	char a[64], b[64], c[64], path[512];
	size_t i;

	fprintf(out, "tierd %s  pid %s  up %s\n", tctl_fmt_str(r, "version", a, sizeof(a)),
		tctl_fmt_int(r, "pid", b, sizeof(b)), tctl_fmt_duration(r, "uptime_s", c, sizeof(c)));
	fprintf(out, "config       %s\n", tctl_fmt_str(r, "config", path, sizeof(path)));
	render_cgroup(out, json_object_get(r, "cgroup"));
	render_unenforced(out, json_object_get(r, "unenforced"));
	fputs("io_uring    ", out);
	for (i = 0; i < sizeof(URING_FEATURES) / sizeof(URING_FEATURES[0]); i++)
		fprintf(out, " %s %s", URING_FEATURES[i], tctl_fmt_bool(uring, URING_FEATURES[i]));
	fputc('\n', out);
	fprintf(out, "accounting   %s\n", tctl_fmt_str(r, "accounting", path, sizeof(path)));
	render_adapt(out, json_object_get(r, "allocator"));
	render_metrics(out, json_object_get(r, "metrics"));
	render_tasks(out, json_object_get(r, "tasks"));
	fprintf(out, "agents       %s\n", tctl_fmt_int(r, "agents", a, sizeof(a)));
	if (!json_is_array(tiers) || !json_array_size(tiers))
		return;

	fputc('\n', out);
	tctl_table_init(&t, 8);
	tctl_table_add(&t, (const char *const[]){ "TIER", "AGENTS", "STARTING", "READY",
						  "STOPPING", "BACKOFF", "FAILED", "STOPPED" });
	json_array_foreach(tiers, i, tier) {
		const json_t *st = json_object_get(tier, "states");
		char cell[8][32];
		const char *row[8];

		row[0] = tctl_fmt_int(tier, "tier", cell[0], sizeof(cell[0]));
		row[1] = tctl_fmt_int(tier, "agents", cell[1], sizeof(cell[1]));
		for (size_t s = 0; s < sizeof(STATES) / sizeof(STATES[0]); s++)
			row[2 + s] = tctl_fmt_int(st, STATES[s], cell[2 + s], sizeof(cell[2 + s]));
		tctl_table_add(&t, row);
	}
	tctl_table_print(&t, out);
	tctl_table_free(&t);
}

/* ---- agents ------------------------------------------------------------ */

void tctl_render_agents(FILE *out, const char *label, const json_t *r)
{
	const json_t *agents = json_object_get(r, "agents");
	const json_t *ag;
	struct tctl_table t;
	size_t i;

	if (!json_is_array(agents) || !json_array_size(agents)) {
		fputs("no agents\n", out);
		return;
	}
	tctl_table_init(&t, 11);
	tctl_table_add(&t, (const char *const[]){ "NAME", "TIER", "STATE", "PID", "INC",
						  "RESTARTS", "UPTIME", "LAST EXIT", "INFLIGHT",
						  "MODE", "BACKOFF" });
	json_array_foreach(agents, i, ag) {
		char name[256], tier[32], state[32], pid[32], inc[32], rst[32], up[32];
		char last[128], infl[32], mode[32], back[32];
		const char *row[] = {
			tctl_fmt_str(ag, "name", name, sizeof(name)),
			tctl_fmt_int(ag, "tier", tier, sizeof(tier)),
			tctl_fmt_str(ag, "state", state, sizeof(state)),
			tctl_fmt_int(ag, "pid", pid, sizeof(pid)),
			tctl_fmt_int(ag, "incarnation", inc, sizeof(inc)),
			tctl_fmt_int(ag, "restarts", rst, sizeof(rst)),
			tctl_fmt_duration(ag, "uptime_s", up, sizeof(up)),
			tctl_fmt_str(ag, "last_exit", last, sizeof(last)),
			tctl_fmt_int(ag, "inflight", infl, sizeof(infl)),
			tctl_fmt_str(ag, "mode", mode, sizeof(mode)),
			tctl_fmt_duration(ag, "backoff_s", back, sizeof(back)),
		};

		tctl_table_add(&t, row);
	}
	tctl_table_print(&t, out);
	tctl_table_free(&t);
}

/* ---- lifecycle --------------------------------------------------------- */

void tctl_render_affected(FILE *out, const char *label, const json_t *r)
{
	fprintf(out, "%s: ", label);
	print_names(out, json_object_get(r, "agents"));
}

void tctl_render_reload(FILE *out, const char *label, const json_t *r)
{
	char n[32];

	fputs("added:      ", out);
	print_names(out, json_object_get(r, "added"));
	fputs("removed:    ", out);
	print_names(out, json_object_get(r, "removed"));
	fputs("restarted:  ", out);
	print_names(out, json_object_get(r, "restarted"));
	fprintf(out, "unchanged:  %s\n", tctl_fmt_int(r, "unchanged", n, sizeof(n)));
}

void tctl_render_message(FILE *out, const char *label, const json_t *r)
{
	fprintf(out, "%s\n", label);
}
