/* SPDX-License-Identifier: MIT */
/*
 * config_read — the INI line reader: splits the file into numbered lines
 * and each line into a section header or "key = value", and hands them to
 * the loader (cfg_on_section, cfg_on_key in config.c).
 *
 * The syntax is inih's, which tierd used until the reader in front of it
 * did every part of the job (docs/config.md, "Why tierd reads INI itself"):
 * a line is trimmed of C isspace, ';' or '#' first makes it a comment,
 * "[name]" opens a section, the first '=' or ':' separates a key from its
 * value, and a ';' after a blank ends the value. Unlike inih's shared
 * build, lines have no length limit, an indented line is a line of its own
 * (not the continuation of the previous value), and every malformed line
 * is reported, not only the first.
 */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static const char bom[] = "\xef\xbb\xbf";

/* C isspace, in any locale. */
static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The first of chars in s, or a ';' that follows a blank (a comment). */
static char *find_sep(char *s, const char *chars)
{
	bool was_space = false;

	while (*s && !(chars && strchr(chars, *s)) && !(was_space && *s == ';')) {
		was_space = is_space(*s);
		s++;
	}
	return s;
}

static char *rstrip(char *s)
{
	size_t n = strlen(s);

	while (n && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* A header line "[...]", trimmed; the name goes to cfg_on_section. */
static void read_header(struct cfg_ctx *x, char *line)
{
	char *close = strchr(line, ']'), *name, *end, *rest, q[96];

	for (char *p = line + 1; close && *p && p != close; p++)
		if (*p == ';' && is_space(p[-1]))
			close = NULL;
	if (!close) {
		x->sec = SEC_BAD;
		cfg_diag(x, false, x->line, NULL, "expected a section header like [tier1], got %s",
			 cfg_quote(line, q, sizeof(q)));
		return;
	}
	rest = close + 1 + strspn(close + 1, " \t");
	if (*rest && *rest != ';' && *rest != '#') {
		x->sec = SEC_BAD;
		cfg_diag(x, false, x->line, NULL, "unexpected text %s after the section header",
			 cfg_quote(rest, q, sizeof(q)));
		return;
	}
	name = line + 1 + strspn(line + 1, " \t");
	end = close;
	while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	cfg_on_section(x, name);
}

/* "key = value" split in place; or the line reported as malformed. */
static void read_key(struct cfg_ctx *x, char *line)
{
	char *sep = find_sep(line, "=:"), *v, q[96];

	if (*sep != '=' && *sep != ':') {
		cfg_diag(x, false, x->line, NULL, "expected 'key = value' or a [section], got %s",
			 cfg_quote(line, q, sizeof(q)));
		return;
	}
	*sep = '\0';
	v = sep + 1;
	*find_sep(v, NULL) = '\0';
	while (is_space(*v))
		v++;
	cfg_on_key(x, rstrip(line), rstrip(v));
}

void cfg_read(struct cfg_ctx *x, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *line, *eol, *nl;
	char *scratch = NULL;
	size_t cap = 0, n;

	while (p < end && !x->oom) {
		line = p;
		nl = memchr(line, '\n', (size_t)(end - line));
		eol = nl ? nl : end;
		p = nl ? nl + 1 : end;
		x->line++;
		if (x->line == 1 && eol - line >= 3 && !memcmp(line, bom, 3))
			line += 3;
		while (line < eol && is_space(*line))
			line++;
		while (eol > line && is_space(eol[-1]))
			eol--;
		n = (size_t)(eol - line);
		if (n == 0 || *line == ';' || *line == '#')
			continue;
		if (memchr(line, '\0', n)) {
			cfg_diag(x, false, x->line, NULL, "the line holds a NUL byte");
			continue;
		}
		if (n + 1 > cap) {
			char *ns = realloc(scratch, n + 1);

			if (!ns) {
				x->oom = true;
				break;
			}
			scratch = ns;
			cap = n + 1;
		}
		memcpy(scratch, line, n);
		scratch[n] = '\0';
		if (*scratch == '[')
			read_header(x, scratch);
		else
			read_key(x, scratch);
	}
	free(scratch);
}
