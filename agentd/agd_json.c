/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "agd_json.h"

static const char hex[] = "0123456789abcdef";

size_t agd_json_string_max(size_t n)
{
	/* \u00XX is the longest escape: six bytes for one. */
	return 6 * n + 2;
}

/* ---- requests ----------------------------------------------------------- */

static char *put_lit(char *o, const char *s)
{
	size_t n = strlen(s);

	memcpy(o, s, n);
	return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		*o++ = tmp[--n];
	return o;
}

/* Write s as a JSON string; s is valid UTF-8 (checked by the caller), so
 * only quotes, backslashes and control characters need escapes. */
static char *put_string(char *o, const char *s, size_t n)
{
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"':  *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o++ = '"';
	return o;
}

/* ,"name":"text" when data is UTF-8, else ,"name_b64":"base64". */
static char *put_bytes(char *o, const char *name, const void *data, size_t n)
{
	o = put_lit(o, ",\"");
	o = put_lit(o, name);
	if (sup_utf8_valid(data, n)) {
		o = put_lit(o, "\":");
		return put_string(o, data, n);
	}
	o = put_lit(o, "_b64\":\"");
	o += sup_b64_encode(data, n, o);
	*o++ = '"';
	return o;
}

static size_t bytes_max(size_t n)
{
	size_t b = sup_b64_encoded_len(n), s = agd_json_string_max(n);

	return 24 + (b > s ? b : s);
}

int agd_json_encode_task(const struct tier_task *t, int64_t now_ns, struct agd_buf *out)
{
	size_t max = 160 + agd_json_string_max(t->type_len) + bytes_max(t->context_len) +
		     bytes_max(t->len);
	char *start, *o;

	if (!sup_utf8_valid(t->type, t->type_len))
		return -EINVAL;
	start = o = agd_buf_reserve(out, max);
	if (!o)
		return -ENOMEM;
	o = put_lit(o, "{\"id\":");
	o = put_u64(o, t->id);
	o = put_lit(o, ",\"type\":");
	o = put_string(o, t->type, t->type_len);
	if (t->deadline_ns) {
		int64_t left = t->deadline_ns - now_ns;

		o = put_lit(o, ",\"deadline_ms\":");
		o = put_u64(o, left > 0 ? (uint64_t)left / 1000000 : 0);
	}
	if (t->attempt > 1) {
		o = put_lit(o, ",\"attempt\":");
		o = put_u64(o, t->attempt);
	}
	if (t->context_len) {
		o = put_bytes(o, "context", t->context, t->context_len);
		if (t->flags & TIER_TASK_CONTEXT_TRUNCATED)
			o = put_lit(o, ",\"context_truncated\":true");
	}
	o = put_bytes(o, "payload", t->payload, t->len);
	*o++ = '}';
	*o++ = '\n';
	agd_buf_commit(out, (size_t)(o - start));
	return 0;
}

/* ---- replies ------------------------------------------------------------ */

/* Why a line is not JSON, for the reason sent to tierd. */
enum syn {
	SYN_OK = 0,
	SYN_BAD,        /* grammar */
	SYN_UTF8,       /* bytes that are not UTF-8 */
	SYN_DEEP,       /* nesting past AGD_JSON_MAX_DEPTH */
};

struct cur {
	char       *p, *end;
	unsigned    depth;
	enum syn    err;
};

static bool fail(struct cur *c, enum syn e)
{
	if (!c->err)
		c->err = e;
	return false;
}

static void skip_ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static bool eat(struct cur *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static long hex4(const char *p, const char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

static char *put_utf8(char *w, uint32_t cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | cp >> 6);
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | cp >> 12);
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | cp >> 18);
		*w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/* Length of the UTF-8 sequence at p (1..4), 0 if it is not one: overlong
 * forms, surrogates and values past U+10FFFF are refused. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		n = 2, cp = c & 0x1f;
	else if ((c & 0xf0) == 0xe0)
		n = 3, cp = c & 0x0f;
	else if ((c & 0xf8) == 0xf0)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* A string at c->p (on its opening quote), unescaped in place: the
 * decoded form is never longer than the text, so the write position
 * stays behind the read position. */
static bool string(struct cur *c, char **ret_s, size_t *ret_len)
{
	char *r = c->p + 1, *w = r, *start = r;

	for (;;) {
		unsigned char ch;

		if (r >= c->end)
			return fail(c, SYN_BAD);
		ch = (unsigned char)*r;
		if (ch == '"')
			break;
		if (ch < 0x20)
			return fail(c, SYN_BAD);
		if (ch >= 0x80) {
			size_t n = utf8_len((const unsigned char *)r, (const unsigned char *)c->end);

			if (!n)
				return fail(c, SYN_UTF8);
			memmove(w, r, n);
			w += n;
			r += n;
			continue;
		}
		if (ch != '\\') {
			*w++ = *r++;
			continue;
		}
		if (r + 1 >= c->end)
			return fail(c, SYN_BAD);
		switch (r[1]) {
		case '"':  *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/':  *w++ = '/'; break;
		case 'b':  *w++ = '\b'; break;
		case 'f':  *w++ = '\f'; break;
		case 'n':  *w++ = '\n'; break;
		case 'r':  *w++ = '\r'; break;
		case 't':  *w++ = '\t'; break;
		case 'u': {
			long cp = hex4(r + 2, c->end), lo;

			if (cp < 0)
				return fail(c, SYN_BAD);
			r += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(c, SYN_BAD); /* a low surrogate alone */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - r < 6 || r[0] != '\\' || r[1] != 'u')
					return fail(c, SYN_BAD);
				lo = hex4(r + 2, c->end);
				if (lo < 0xdc00 || lo > 0xdfff)
					return fail(c, SYN_BAD);
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				r += 6;
			}
			w = put_utf8(w, (uint32_t)cp);
			continue;
		}
		default:
			return fail(c, SYN_BAD);
		}
		r += 2;
	}
	c->p = r + 1;
	*ret_s = start;
	*ret_len = (size_t)(w - start);
	return true;
}

/* A number token, by the grammar; *ret_int says whether it is a plain
 * non-negative integer (no sign, fraction or exponent). */
static bool number(struct cur *c, char **ret_tok, size_t *ret_n, bool *ret_int)
{
	char *p = c->p, *start = p;
	bool integer = true;

	if (p < c->end && *p == '-') {
		p++;
		integer = false;
	}
	if (p >= c->end || *p < '0' || *p > '9')
		return fail(c, SYN_BAD);
	if (*p == '0')
		p++;
	else
		while (p < c->end && *p >= '0' && *p <= '9')
			p++;
	if (p < c->end && *p == '.') {
		integer = false;
		if (++p >= c->end || *p < '0' || *p > '9')
			return fail(c, SYN_BAD);
		while (p < c->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < c->end && (*p == 'e' || *p == 'E')) {
		integer = false;
		p++;
		if (p < c->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= c->end || *p < '0' || *p > '9')
			return fail(c, SYN_BAD);
		while (p < c->end && *p >= '0' && *p <= '9')
			p++;
	}
	c->p = p;
	*ret_tok = start;
	*ret_n = (size_t)(p - start);
	*ret_int = integer;
	return true;
}

static bool literal(struct cur *c, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n))
		return fail(c, SYN_BAD);
	c->p += n;
	return true;
}

enum vtype { V_STRING, V_NUMBER, V_TRUE, V_FALSE, V_NULL, V_OBJECT, V_ARRAY };

struct value {
	enum vtype type;
	char      *s;       /* string (decoded) or number token */
	size_t     n;
	bool       integer;
};

static bool value(struct cur *c, struct value *v);

/* The members of an ignored object or array: checked, then dropped. */
static bool container(struct cur *c, char close, bool keyed)
{
	struct value v;

	if (++c->depth > AGD_JSON_MAX_DEPTH)
		return fail(c, SYN_DEEP);
	c->p++;
	if (eat(c, close)) {
		c->depth--;
		return true;
	}
	do {
		if (keyed) {
			char *k;
			size_t kn;

			skip_ws(c);
			if (c->p >= c->end || *c->p != '"' || !string(c, &k, &kn))
				return fail(c, SYN_BAD);
			if (!eat(c, ':'))
				return fail(c, SYN_BAD);
		}
		if (!value(c, &v))
			return false;
	} while (eat(c, ','));
	if (!eat(c, close))
		return fail(c, SYN_BAD);
	c->depth--;
	return true;
}

static bool value(struct cur *c, struct value *v)
{
	skip_ws(c);
	if (c->p >= c->end)
		return fail(c, SYN_BAD);
	switch (*c->p) {
	case '"':
		v->type = V_STRING;
		return string(c, &v->s, &v->n);
	case '{':
		v->type = V_OBJECT;
		return container(c, '}', true);
	case '[':
		v->type = V_ARRAY;
		return container(c, ']', false);
	case 't':
		v->type = V_TRUE;
		return literal(c, "true");
	case 'f':
		v->type = V_FALSE;
		return literal(c, "false");
	case 'n':
		v->type = V_NULL;
		return literal(c, "null");
	default:
		v->type = V_NUMBER;
		return number(c, &v->s, &v->n, &v->integer);
	}
}

enum field { F_ID, F_STATUS, F_QUALITY, F_PAYLOAD, F_PAYLOAD_B64, F_COUNT, F_OTHER = F_COUNT };

static enum field field_of(const char *k, size_t n)
{
	static const char *const names[F_COUNT] = { "id", "status", "quality", "payload",
						    "payload_b64" };

	for (int f = 0; f < F_COUNT; f++)
		if (strlen(names[f]) == n && !memcmp(names[f], k, n))
			return (enum field)f;
	return F_OTHER;
}

/* Quality: a number token from 0 to 10 (or null for none). */
static const char *check_quality(const struct value *v, double *ret)
{
	char tok[128];

	*ret = -1;
	if (v->type == V_NULL)
		return NULL;
	/* A copy: the token may end the buffer, and strtod needs a NUL. Longer
	 * tokens (thousands of digits) are not honest scores. */
	if (v->type == V_NUMBER && v->n < sizeof(tok)) {
		memcpy(tok, v->s, v->n);
		tok[v->n] = 0;
		/* agentd never changes the "C" locale: '.' is the point. */
		*ret = strtod(tok, NULL);
		if (*ret >= 0 && *ret <= 10)
			return NULL;
	}
	*ret = -1;
	return "the agent's reply has a quality that is not a number from 0 to 10";
}

/* What the known fields hold, in a line known to be a JSON object with an
 * id. Returns the first problem, or NULL. */
static const char *check_fields(const struct value *fv, unsigned seen, struct agd_reply *r)
{
	const struct value *st = &fv[F_STATUS], *p = &fv[F_PAYLOAD], *pb = &fv[F_PAYLOAD_B64];
	const char *why;

	if (!(seen & 1u << F_STATUS) || st->type != V_STRING)
		return "the agent's reply has no status string";
	if (st->n == 2 && !memcmp(st->s, "ok", 2))
		r->status = TIER_ST_OK;
	else if (st->n == 5 && !memcmp(st->s, "error", 5))
		r->status = TIER_ST_ERROR;
	else
		return "the agent's reply has a status other than \"ok\" or \"error\"";
	if (seen & 1u << F_QUALITY && (why = check_quality(&fv[F_QUALITY], &r->quality)))
		return why;
	if (!(seen & 1u << F_PAYLOAD) || p->type == V_NULL)
		p = NULL;
	if (!(seen & 1u << F_PAYLOAD_B64) || pb->type == V_NULL)
		pb = NULL;
	if (p && pb)
		return "the agent's reply has both payload and payload_b64";
	if (!p)
		p = pb;
	if (p && p->type != V_STRING)
		return "the agent's reply has a payload that is not a string";
	if (p) {
		r->payload = p->s;
		r->len = p->n;
		r->b64 = p == pb;
	}
	return NULL;
}

/* Non-negative integer token to uint64; false on overflow. */
static bool to_u64(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*ret = v;
	return true;
}

static int bad_line(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return -EBADMSG;
}

/* The members of the reply object; known fields are kept in fv. Strings
 * were unescaped in place within their own span, so the values stay valid
 * while the rest of the line is parsed. */
static bool members(struct cur *c, struct value *fv, unsigned *seen, bool *dup)
{
	struct value v;

	c->p++;
	c->depth = 1;
	if (eat(c, '}'))
		return true;
	do {
		enum field f;
		char *k;
		size_t kn;

		skip_ws(c);
		if (c->p >= c->end || *c->p != '"' || !string(c, &k, &kn) || !eat(c, ':'))
			return fail(c, SYN_BAD);
		f = field_of(k, kn);
		if (!value(c, &v))
			return false;
		if (f == F_OTHER)
			continue;
		*dup |= (*seen & 1u << f) != 0;
		*seen |= 1u << f;
		fv[f] = v;
	} while (eat(c, ','));
	return eat(c, '}') || fail(c, SYN_BAD);
}

int agd_json_parse_reply(char *line, size_t len, struct agd_reply *ret, char *why, size_t whylen)
{
	struct cur c = { .p = line, .end = line + len };
	struct agd_reply r = { .quality = -1 };
	struct value fv[F_COUNT], v;
	const char *problem;
	unsigned seen = 0;
	bool dup = false, object;

	skip_ws(&c);
	object = c.p < c.end && *c.p == '{';
	if (object ? members(&c, fv, &seen, &dup) : value(&c, &v)) {
		skip_ws(&c);
		if (c.p != c.end)
			fail(&c, SYN_BAD);
	}
	switch (c.err) {
	case SYN_UTF8:
		return bad_line(why, whylen, "the agent wrote a line that is not valid UTF-8");
	case SYN_DEEP:
		return bad_line(why, whylen, "the agent wrote JSON nested too deeply");
	case SYN_BAD:
		snprintf(why, whylen, "the agent wrote a line that is not JSON (error at byte %zu)",
			 (size_t)(c.p - line));
		return -EBADMSG;
	case SYN_OK:
		break;
	}
	if (!object)
		return bad_line(why, whylen, "the agent wrote JSON that is not an object");
	/* A key twice leaves no telling which one was meant, not even the id. */
	if (dup)
		return bad_line(why, whylen, "the agent wrote a reply with a key twice");
	if (!(seen & 1u << F_ID))
		return bad_line(why, whylen, "the agent wrote a reply without an id");
	if (fv[F_ID].type != V_NUMBER || !fv[F_ID].integer ||
	    !to_u64(fv[F_ID].s, fv[F_ID].n, &r.id))
		return bad_line(why, whylen, "the agent wrote a reply whose id is not a non-negative "
				"integer of 64 bits");
	problem = check_fields(fv, seen, &r);
	*ret = r;
	if (problem) {
		snprintf(why, whylen, "%s", problem);
		return -EPROTO;
	}
	return 0;
}
