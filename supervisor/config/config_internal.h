/* SPDX-License-Identifier: MIT */
/*
 * config_internal — what config.c (the loader), config_keys.c (the key
 * tables) and config_dump.c (the writer) share. Not for other modules.
 *
 *   config.c         sections, keys, diagnostics, load/parse/free
 *   config_read.c    the INI line reader: lines, headers, "key = value"
 *   config_check.c   checks that need the whole file
 *   config_keys.c    [supervisor], [tierN], [agent NAME] keys
 *   config_types.c   the generic key types: parse, dump, expectation
 *   config_limits.c  cgroup limit keys
 *   config_parse.c   value parsers and formatters (public, pure)
 *   config_dump.c    writing INI back; comparing configurations
 *
 * Every key is a row in a table: its type, where it lives in the section's
 * struct, its bounds, and for the odd ones a parse and a dump function. The
 * loader and the writer both walk the tables, so a key cannot be readable
 * but not dumped, or the other way round.
 */
#ifndef SUP_CONFIG_INTERNAL_H
#define SUP_CONFIG_INTERNAL_H

#include <stdarg.h>

#include "config.h"

enum cfg_sec { SEC_NONE, SEC_SUP, SEC_TIER, SEC_AGENT, SEC_FLEET, SEC_BAD };

enum cfg_type {
	CT_STR,    /* char *, any non-empty text */
	CT_PATH,   /* char *, relative paths resolved against the config's dir */
	CT_DUR,    /* int64_t ns in [min, max] */
	CT_U32,    /* uint32_t in [min, max] */
	CT_PCT,    /* double, percent in [dmin, dmax] */
	CT_DEC,    /* double in [dmin, dmax] */
	CT_BOOL,   /* bool */
	CT_ENUM,   /* int, index into names */
	CT_FN,     /* parse and dump functions */
};

#define KF_REQUIRED 0x1u   /* a section without it is an error */
#define KF_REPEAT   0x2u   /* may be given several times */
#define KF_LIMIT    0x4u   /* lives in struct sup_limits; dumped when set */

struct cfg_ctx;
struct cfg_key;

/* Returns 0, -EINVAL/-ERANGE for the generic "expected …, got …" message,
 * or 1 when it has reported the problem itself (cfg_key_error). */
typedef int (*cfg_parse_fn)(struct cfg_ctx *x, const struct cfg_key *k, void *base,
			    const char *v);
/* Writes zero or more "key = value" lines; returns 0 or -errno. */
typedef int (*cfg_dump_fn)(FILE *f, const struct cfg_key *k, const void *base);

struct cfg_key {
	const char         *name;
	uint8_t             type;
	uint8_t             flags;
	uint16_t            off;      /* in the section's struct */
	int                 arg;      /* CT_FN: which limit or rlimit */
	int64_t             min, max;
	double              dmin, dmax;
	const char         *expect;   /* for messages; NULL: derived from type */
	const char *const  *names;    /* CT_ENUM, NULL-terminated */
	cfg_parse_fn        parse;
	cfg_dump_fn         dump;
};

struct cfg_table {
	const struct cfg_key *keys;
	size_t                n;
};

/* Section tables; the limit keys come after a tier's or agent's own. */
extern const struct cfg_table sup_cfg_sup_keys, sup_cfg_tier_keys, sup_cfg_agent_keys,
	sup_cfg_limit_keys, sup_cfg_fleet_keys;
#define CFG_MAX_KEYS 64  /* own + limit keys of the largest section */

/* Where each key of one section was given (0: not given). */
struct cfg_lines {
	unsigned header;
	unsigned key[CFG_MAX_KEYS];
};

struct cfg_ctx {
	struct sup_config        *c;
	struct sup_config_errors *errs;
	const char               *path;      /* for messages */
	unsigned                  line;      /* being parsed */
	enum cfg_sec              sec;
	unsigned                  tier;      /* SEC_TIER: 0..3 */
	size_t                    agent;     /* SEC_AGENT: index */
	char                      label[SUP_AGENT_NAME_MAX + 16]; /* "[agent x]" */
	struct cfg_lines          sup_lines;
	struct cfg_lines          tier_lines[SUP_NTIERS];
	struct cfg_lines          fleet_lines;
	struct cfg_lines         *agent_lines; /* parallel to c->agents */
	bool                      oom;
};

/* Record an error about the key being parsed: "file:line: [sec] key 'k': …". */
void cfg_key_error(struct cfg_ctx *x, const struct cfg_key *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Any message, warning or error, with the given line (0: none) and label. */
void cfg_diag(struct cfg_ctx *x, bool warning, unsigned line, const char *label,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "'text'" made printable and cut to a readable length, into buf. */
const char *cfg_quote(const char *v, char *buf, size_t sz);
/* Resolve a relative path against the config's directory; malloc'd. */
char *cfg_path(const struct cfg_ctx *x, const char *v);

/* Split buf into lines and hand each header and key to the two below
 * (config_read.c); malformed lines are reported. x->line counts lines. */
void cfg_read(struct cfg_ctx *x, const char *buf, size_t len);
/* The section "[name]" (trimmed) begins on line x->line. */
void cfg_on_section(struct cfg_ctx *x, const char *name);
/* "name = value" (both trimmed, the comment cut) on line x->line. */
void cfg_on_key(struct cfg_ctx *x, const char *name, const char *value);

/* [fleet] (config_fleet.c). */
void cfg_fleet_defaults(struct sup_fleet_conf *f);
void cfg_fleet_free(struct sup_fleet_conf *f);
void cfg_fleet_check(struct cfg_ctx *x, unsigned header);

/* Index of the key called name in t, or -1. */
int cfg_key_index(const struct cfg_table *t, const char *name);
/* After the last line: required keys, ids, rings, shares (config_check.c). */
void cfg_check_all(struct cfg_ctx *x);

/* Parse v into the key's field of base (the section's struct, or its
 * struct sup_limits for KF_LIMIT keys); returns as cfg_parse_fn. */
int cfg_apply(struct cfg_ctx *x, const struct cfg_key *k, void *base, const char *v);
/* *p, a string the config owns, becomes s (just allocated; NULL if that
 * failed): 0 or -ENOMEM. */
int cfg_str_take(char **p, char *s);
/* Write the key's "key = value" lines (none for an unset optional key). */
int cfg_dump_key(FILE *f, const struct cfg_key *k, const void *base);
/* What a valid value of k looks like, for messages. */
void cfg_expect(const struct cfg_key *k, char *buf, size_t sz);

#endif
