/* SPDX-License-Identifier: MIT */
/*
 * config_check — the checks that need the whole file: required keys,
 * users and groups (resolved now, so spawning never waits on NSS),
 * max_payload against every agent's ring, memory limits against each
 * other, the tiers' shares, and warnings for settings that do nothing.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

static void *alloc_buf(long hint, size_t *sz)
{
	*sz = hint > 0 ? (size_t)hint : 16384;
	return malloc(*sz);
}

/* Numeric ids are taken as they are; names are looked up now, so spawning
 * never waits on NSS. ret_gid gets the user's primary group, when known. */
static int lookup_user(const char *s, uid_t *ret_uid, gid_t *ret_gid, bool *ret_has_gid)
{
	struct passwd pw, *res = NULL;
	uint64_t num;
	bool numeric = sup_parse_u64(s, &num) == 0;
	size_t sz;
	char *buf = alloc_buf(sysconf(_SC_GETPW_R_SIZE_MAX), &sz);
	int r;

	if (numeric && num >= (uid_t)-1) {
		free(buf);
		return -ERANGE;
	}
	for (;;) {
		if (!buf)
			return -ENOMEM;
		r = numeric ? getpwuid_r((uid_t)num, &pw, buf, sz, &res)
			    : getpwnam_r(s, &pw, buf, sz, &res);
		if (r != ERANGE || sz >= (1u << 20))
			break;
		free(buf);
		sz *= 2;
		buf = malloc(sz);
	}
	if (res) {
		*ret_uid = pw.pw_uid;
		*ret_gid = pw.pw_gid;
		*ret_has_gid = true;
	} else if (numeric) {
		*ret_uid = (uid_t)num;
		*ret_has_gid = false;
	}
	free(buf);
	if (res || numeric)
		return 0;
	return r ? -r : -ENOENT;
}

static int lookup_group(const char *s, gid_t *ret_gid)
{
	struct group gr, *res = NULL;
	uint64_t num;
	size_t sz;
	char *buf;
	int r;

	if (sup_parse_u64(s, &num) == 0) {
		if (num >= (gid_t)-1)
			return -ERANGE;
		*ret_gid = (gid_t)num;
		return 0;
	}
	buf = alloc_buf(sysconf(_SC_GETGR_R_SIZE_MAX), &sz);
	for (;;) {
		if (!buf)
			return -ENOMEM;
		r = getgrnam_r(s, &gr, buf, sz, &res);
		if (r != ERANGE || sz >= (1u << 20))
			break;
		free(buf);
		sz *= 2;
		buf = malloc(sz);
	}
	if (res)
		*ret_gid = gr.gr_gid;
	free(buf);
	if (res)
		return 0;
	return r ? -r : -ENOENT;
}

static unsigned key_line(const struct cfg_lines *l, const struct cfg_table *t, const char *name)
{
	int i = cfg_key_index(t, name);

	if (i < 0) {
		i = cfg_key_index(&sup_cfg_limit_keys, name);
		if (i < 0)
			return 0;
		i += (int)t->n;
	}
	return l->key[i];
}

static void id_error(struct cfg_ctx *x, unsigned line, const char *label, const char *what,
		     const char *v, int r)
{
	char q[96];

	if (r == -ENOMEM)
		x->oom = true;
	else if (r == -ENOENT)
		cfg_diag(x, false, line, label, "key '%s': expected a %s name or id, got %s: no "
			 "such %s on this system", what, what, cfg_quote(v, q, sizeof(q)), what);
	else
		cfg_diag(x, false, line, label, "key '%s': cannot look up %s: %s", what,
			 cfg_quote(v, q, sizeof(q)), strerror(-r));
}

int sup_default_user(unsigned tier, char *buf, size_t sz)
{
	return snprintf(buf, sz, SUP_DEF_USER_FMT, tier);
}

/* No 'user': a root tierd runs the agent as its tier's user, never as
 * root by accident; any other tierd can only run it as itself. */
static void default_user(struct cfg_ctx *x, struct sup_agent_conf *a, const struct cfg_lines *l)
{
	char name[32];
	int r;

	if (geteuid() != 0 || a->tier < 1 || a->tier > SUP_NTIERS)
		return;
	sup_default_user(a->tier, name, sizeof(name));
	r = lookup_user(name, &a->uid, &a->gid, &a->has_gid);
	if (r == -ENOMEM) {
		x->oom = true;
		return;
	}
	if (r < 0) {
		cfg_diag(x, false, l->header, x->label, "no key 'user', and the default user of "
			 "tier %u, %s, does not exist on this system: create it with "
			 "scripts/setup-deps.sh (useradd --system --no-create-home --shell "
			 "/usr/sbin/nologin %s), or set 'user' (user = root runs the agent as root)",
			 a->tier, name, name);
		return;
	}
	a->has_uid = a->default_user = true;
}

static void check_ids(struct cfg_ctx *x, struct sup_agent_conf *a, const struct cfg_lines *l)
{
	const struct cfg_table *t = &sup_cfg_agent_keys;
	int r;

	if (!a->user) {
		default_user(x, a, l);
	} else {
		r = lookup_user(a->user, &a->uid, &a->gid, &a->has_gid);
		if (r < 0) {
			id_error(x, key_line(l, t, "user"), x->label, "user", a->user, r);
			return;
		}
		a->has_uid = true;
		if (a->uid == 0)
			cfg_diag(x, true, key_line(l, t, "user"), x->label, "key 'user': the agent "
				 "runs as root; its sandbox keeps it out of the cgroup tree, but it can "
				 "still signal tierd and write root's files (docs/security.md)");
	}
	if (a->has_uid && a->uid == 0 && a->rlimits[RLIMIT_NPROC].set)
		cfg_diag(x, true, key_line(l, t, "rlimit_nproc"), x->label, "key 'rlimit_nproc' "
			 "does nothing for uid 0 (root is exempt): use pids_max");
	if (a->group) {
		r = lookup_group(a->group, &a->gid);
		if (r < 0) {
			id_error(x, key_line(l, t, "group"), x->label, "group", a->group, r);
			return;
		}
		a->has_gid = true;
	} else if (a->has_uid && !a->has_gid) {
		cfg_diag(x, false, key_line(l, t, "user"), x->label,
			 "key 'user': uid %s has no passwd entry, so no primary group: set 'group' "
			 "too", a->user);
	}
}

/* Largest record of a ring of this size (SUP_RING_RECORD_MAX). */
static uint32_t ring_record_max(uint32_t ring)
{
	return ring / 2 < SUP_RING_RECORD_MAX ? ring / 2 : SUP_RING_RECORD_MAX;
}

static void check_ring(struct cfg_ctx *x, const struct sup_agent_conf *a,
		       const struct cfg_lines *l)
{
	uint32_t need = x->c->sup.max_payload + SUP_TASK_OVERHEAD, min = SUP_RING_SIZE_MIN;
	unsigned line = key_line(l, &sup_cfg_agent_keys, "ring_size");
	char ring[32], rec[32], minb[32], pay[32];

	if (need <= ring_record_max(a->ring_size))
		return;
	while (ring_record_max(min) < need)
		min *= 2;
	sup_format_size(a->ring_size, ring, sizeof(ring));
	sup_format_size(ring_record_max(a->ring_size), rec, sizeof(rec));
	sup_format_size(min, minb, sizeof(minb));
	sup_format_size(x->c->sup.max_payload, pay, sizeof(pay));
	cfg_diag(x, false, line ? line : l->header, x->label,
		 "key 'ring_size': a %s ring carries records of at most %s bytes, too small for "
		 "max_payload %s plus %u bytes of headers: expected a ring_size of at least %s "
		 "(or a smaller max_payload)", ring, rec, pay, SUP_TASK_OVERHEAD, minb);
}

static void check_limits(struct cfg_ctx *x, const struct sup_limits *l,
			 const struct cfg_lines *lines, const struct cfg_table *t)
{
	const unsigned need = SUP_LIM_BIT(SUP_LIM_MEMORY_MAX);
	char a[32], b[32];

	if ((l->set & need) != need || l->memory_max == SUP_LIMIT_MAX)
		return;
	sup_format_size(l->memory_max, b, sizeof(b));
	if (sup_limit_is_set(l, SUP_LIM_MEMORY_HIGH) && l->memory_high != SUP_LIMIT_MAX &&
	    l->memory_high > l->memory_max) {
		sup_format_size(l->memory_high, a, sizeof(a));
		cfg_diag(x, false, key_line(lines, t, "memory_high"), x->label,
			 "key 'memory_high': %s is above memory_max %s: expected at most "
			 "memory_max", a, b);
	}
	if (sup_limit_is_set(l, SUP_LIM_MEMORY_LOW) && l->memory_low > l->memory_max) {
		sup_format_size(l->memory_low, a, sizeof(a));
		cfg_diag(x, false, key_line(lines, t, "memory_low"), x->label,
			 "key 'memory_low': %s is above memory_max %s: expected at most "
			 "memory_max", a, b);
	}
}

static int cmp_env(const void *pa, const void *pb)
{
	const char *a = *(char *const *)pa, *b = *(char *const *)pb;
	size_t la = strcspn(a, "="), lb = strcspn(b, "=");
	int r = memcmp(a, b, la < lb ? la : lb);

	return r ? r : (la > lb) - (la < lb);
}

static void check_agent(struct cfg_ctx *x, size_t i)
{
	struct sup_agent_conf *a = &x->c->agents[i];
	const struct cfg_lines *l = &x->agent_lines[i];
	const struct cfg_table *t = &sup_cfg_agent_keys;
	bool complete = true;

	x->line = l->header;
	snprintf(x->label, sizeof(x->label), "[agent %s]", a->name);
	for (size_t k = 0; k < t->n; k++)
		if ((t->keys[k].flags & KF_REQUIRED) && !l->key[k]) {
			cfg_diag(x, false, l->header, x->label, "missing required key '%s'",
				 t->keys[k].name);
			complete = false;
		}
	/* Sorted: order means nothing, and equal sets compare equal. */
	if (a->n_env)
		qsort(a->env, a->n_env, sizeof(*a->env), cmp_env);
	check_ids(x, a, l);
	check_ring(x, a, l);
	check_limits(x, &a->limits, l, t);
	if (!complete)
		return;
	if (a->tier == SUP_NTIERS && !a->n_specialties)
		cfg_diag(x, true, l->header, x->label, "a tier-%d agent without 'specialties' "
			 "matches no task type, so it takes part in no workflow", SUP_NTIERS);
	if (a->tier != SUP_NTIERS && a->n_specialties)
		cfg_diag(x, true, key_line(l, t, "specialties"), x->label,
			 "key 'specialties' is used only in tier %d; ignored in tier %u", SUP_NTIERS,
			 a->tier);
	/* The default is dumped for every agent, so only a changed value is
	 * worth a word. */
	if (a->mode != SUP_MODE_EXEC && a->exec_timeout_ns != SUP_DEF_EXEC_TIMEOUT_NS)
		cfg_diag(x, true, key_line(l, t, "exec_timeout"), x->label,
			 "key 'exec_timeout' applies only to mode exec; ignored in mode %s",
			 sup_mode_name(a->mode));
}

void cfg_check_all(struct cfg_ctx *x)
{
	static const char *const share_key[SUP_NRES] = { "cpu_share", "memory_share", "io_share",
							 "network_share" };
	struct sup_config *c = x->c;
	struct sup_supervisor_conf *s = &c->sup;
	const struct cfg_table *st = &sup_cfg_sup_keys;
	char a[32], b[32];

	for (size_t i = 0; i < c->n_agents; i++)
		check_agent(x, i);
	for (int r = 0; r < SUP_NRES; r++) {
		double sum = 0;
		unsigned line = 0;

		for (int t = 0; t < SUP_NTIERS; t++) {
			unsigned kl = key_line(&x->tier_lines[t], &sup_cfg_tier_keys, share_key[r]);

			sum += c->tiers[t].share[r];
			line = kl > line ? kl : line;
		}
		/* Shares are typed with a few decimals; the slack absorbs the
		 * binary rounding of their sum. */
		if (sum > 100.0 + 1e-6) {
			sup_format_decimal(sum, a, sizeof(a));
			cfg_diag(x, false, line, "[tier1]..[tier4]", "key '%s': the tiers' shares add "
				 "up to %s%%: expected at most 100%%", share_key[r], a);
		}
	}
	for (int t = 0; t < SUP_NTIERS; t++) {
		snprintf(x->label, sizeof(x->label), "[tier%d]", t + 1);
		check_limits(x, &c->tiers[t].limits, &x->tier_lines[t], &sup_cfg_tier_keys);
	}
	if (s->restart_backoff_base_ns > s->restart_backoff_cap_ns) {
		sup_format_duration(s->restart_backoff_base_ns, a, sizeof(a));
		sup_format_duration(s->restart_backoff_cap_ns, b, sizeof(b));
		cfg_diag(x, false, key_line(&x->sup_lines, st, "restart_backoff_base"),
			 "[supervisor]", "key 'restart_backoff_base': %s is above "
			 "restart_backoff_cap %s: expected at most the cap", a, b);
	}
	if (s->journal_segment_bytes > s->journal_max_bytes)
		cfg_diag(x, false, key_line(&x->sup_lines, st, "journal_segment_bytes"),
			 "[supervisor]", "key 'journal_segment_bytes': %llu bytes is above "
			 "journal_max_bytes (%llu): expected at most the cap",
			 (unsigned long long)s->journal_segment_bytes,
			 (unsigned long long)s->journal_max_bytes);
	if (s->control_group) {
		int r = lookup_group(s->control_group, &s->control_gid);

		if (r < 0)
			id_error(x, key_line(&x->sup_lines, st, "control_group"), "[supervisor]",
				 "group", s->control_group, r);
	}
	if (s->admin_group) {
		int r = lookup_group(s->admin_group, &s->admin_gid);

		if (r < 0)
			id_error(x, key_line(&x->sup_lines, st, "admin_group"), "[supervisor]",
				 "group", s->admin_group, r);
	}
	if (!c->n_agents)
		cfg_diag(x, true, 0, NULL, "no [agent NAME] section: there is nothing to supervise");
}
