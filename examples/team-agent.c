/* SPDX-License-Identifier: MIT */
/*
 * team-agent — the example agent of the bundled 24-agent team.
 *
 *   team-agent --role orchestrator|primary|secondary|specialist [--work-us N]
 *
 * Every role does real, checkable work on the task payload (text) and
 * derives its quality score from that work:
 *   orchestrator  word statistics: words, distinct words, sentences, the
 *                 most frequent word, an FNV-1a digest of the normalised
 *                 words; quality = 10 x share of tokens that are words
 *   primary       readability: mean word and sentence length; quality
 *                 falls as sentences stray from 10-25 words
 *   secondary     its shard (k of 16, from its name's number) of the tokens:
 *                 word count, letter histogram, digest of the shard; the
 *                 shards' word counts add up to the orchestrator's; quality
 *                 = 10 x share of the shard's tokens that are words
 *   specialist    its specialty's findings (numbers, markers, headings,
 *                 URLs); quality from how much of the text it could read
 * Task types "sleep" (payload: milliseconds) and "burn" (CPU ms) exist for
 * tests and benchmarks; "crash" exits, "hang" never answers.
 *
 * Every role's result also says how many lines of workflow context it got
 * ("context_lines") and whether tierd marked the context truncated, so the
 * context passed forward can be checked from outside.
 *
 * Options for tests: --hang-on TYPE (never answer tasks of that type),
 * --max-inflight N (announced in HELLO).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tier/agent.h"

enum role { R_ORCH, R_PRIMARY, R_SECONDARY, R_SPECIALIST };

struct stats {
	unsigned words, tokens, sentences, letters, bytes, distinct;
	unsigned long word_chars;
	uint64_t digest;
	char top[32];
	unsigned top_n;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Distinct words through a small open-addressing table of hashes. */
#define SLOTS 4096
struct wordset {
	uint64_t h[SLOTS];
	unsigned n[SLOTS];
	char     w[SLOTS][32];
};

static void count_text(const char *s, size_t len, unsigned shard, unsigned nshards, struct stats *st,
		       struct wordset *ws, unsigned hist[26])
{
	size_t i = 0;
	unsigned idx = 0;

	memset(st, 0, sizeof(*st));
	memset(ws, 0, sizeof(*ws));
	st->digest = 0xcbf29ce484222325ull;
	st->bytes = (unsigned)len;
	while (i < len) {
		char w[32];
		size_t wl = 0, start;
		int alpha = 1;

		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && !isspace((unsigned char)s[i])) {
			unsigned char c = (unsigned char)s[i];

			if (c == '.' || c == '!' || c == '?')
				st->sentences += (i + 1 == len || isspace((unsigned char)s[i + 1]));
			if (isalpha(c)) {
				if (wl < sizeof(w) - 1)
					w[wl++] = (char)tolower(c);
			} else if (!strchr(".,;:!?'\"()-", c)) {
				alpha = 0;
			}
			i++;
		}
		/* Shards split the tokens, so the shards' word counts add up
		 * to the orchestrator's. */
		if (nshards && idx++ % nshards != shard)
			continue;
		st->tokens++;
		if (!alpha || !wl)
			continue;
		w[wl] = 0;
		st->words++;
		st->word_chars += wl;
		st->digest = fnv1a(st->digest, w, wl + 1);
		for (size_t k = 0; k < wl; k++) {
			st->letters++;
			if (hist)
				hist[w[k] - 'a']++;
		}
		uint64_t h = fnv1a(0xcbf29ce484222325ull, w, wl);
		for (unsigned p = (unsigned)(h % SLOTS), probes = 0; probes < SLOTS; p = (p + 1) % SLOTS, probes++) {
			if (!ws->n[p]) {
				ws->h[p] = h;
				ws->n[p] = 1;
				memcpy(ws->w[p], w, wl + 1);
				st->distinct++;
				break;
			}
			if (ws->h[p] == h) {
				ws->n[p]++;
				break;
			}
		}
		(void)start;
	}
	for (unsigned p = 0; p < SLOTS; p++)
		if (ws->n[p] > st->top_n || (ws->n[p] == st->top_n && ws->n[p] &&
					     strcmp(ws->w[p], st->top) < 0)) {
			st->top_n = ws->n[p];
			snprintf(st->top, sizeof(st->top), "%s", ws->w[p]);
		}
	if (!st->sentences && st->words)
		st->sentences = 1;
}

static double clamp10(double q)
{
	return q < 0 ? 0 : q > 10 ? 10 : q;
}

static unsigned name_number(const char *name)
{
	const char *d = name + strlen(name);

	while (d > name && isdigit((unsigned char)d[-1]))
		d--;
	return (unsigned)atoi(d);
}

static void burn_ms(long ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static int is_type(const struct tier_task *t, const char *s)
{
	return t->type_len == strlen(s) && !memcmp(t->type, s, t->type_len);
}

static long payload_number(const struct tier_task *t)
{
	char buf[32];
	size_t n = t->len < sizeof(buf) - 1 ? t->len : sizeof(buf) - 1;

	memcpy(buf, t->payload, n);
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static unsigned context_lines(const struct tier_task *t)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < t->context_len; i++)
		n += t->context[i] == '\n';
	return n;
}

static int handle(struct tier_agent *a, enum role role, const char *specialty,
		  const struct tier_task *t, struct wordset *ws)
{
	char out[1200];
	struct stats st;
	unsigned hist[26] = { 0 };
	double q;
	int n;

	if (is_type(t, "sleep")) {
		long ms = payload_number(t);
		struct timespec d = { ms / 1000, (ms % 1000) * 1000000 };

		nanosleep(&d, NULL);
		return tier_agent_reply(a, t, TIER_ST_OK, -1, NULL, 0);
	}
	if (is_type(t, "burn")) {
		burn_ms(payload_number(t));
		return tier_agent_reply(a, t, TIER_ST_OK, -1, NULL, 0);
	}
	if (is_type(t, "noop"))
		return tier_agent_reply(a, t, TIER_ST_OK, -1, NULL, 0);
	if (is_type(t, "crash"))
		_exit(3);
	if (is_type(t, "hang"))
		for (;;)
			pause();
	if (is_type(t, "fail"))
		return tier_agent_reply(a, t, TIER_ST_ERROR, 0, "asked to fail", 13);

	switch (role) {
	case R_ORCH:
		count_text(t->payload, t->len, 0, 0, &st, ws, NULL);
		q = st.tokens ? 10.0 * st.words / st.tokens : 0;
		n = snprintf(out, sizeof(out),
			     "{\"role\":\"orchestrator\",\"words\":%u,\"distinct\":%u,\"sentences\":%u,"
			     "\"top\":\"%s\",\"top_count\":%u,\"digest\":\"%016llx\"}",
			     st.words, st.distinct, st.sentences, st.top, st.top_n,
			     (unsigned long long)st.digest);
		break;
	case R_PRIMARY: {
		double wlen, slen;

		count_text(t->payload, t->len, 0, 0, &st, ws, NULL);
		wlen = st.words ? (double)st.word_chars / st.words : 0;
		slen = st.sentences ? (double)st.words / st.sentences : 0;
		q = slen < 10 ? slen : slen > 25 ? 10 - (slen - 25) / 3 : 10;
		q = st.words ? clamp10(q) : 0;
		n = snprintf(out, sizeof(out),
			     "{\"role\":\"primary\",\"agent\":\"%s\",\"mean_word_len\":%.2f,"
			     "\"mean_sentence_words\":%.2f}", tier_agent_name(a), wlen, slen);
		break;
	}
	case R_SECONDARY: {
		unsigned k = name_number(tier_agent_name(a));
		const unsigned nsh = 16;

		count_text(t->payload, t->len, k % nsh, nsh, &st, ws, hist);
		q = st.tokens ? 10.0 * st.words / st.tokens : 0;
		n = snprintf(out, sizeof(out), "{\"role\":\"secondary\",\"shard\":%u,\"of\":%u,"
			     "\"words\":%u,\"digest\":\"%016llx\",\"e\":%u,\"t\":%u,\"a\":%u}",
			     k % nsh, nsh, st.words, (unsigned long long)st.digest,
			     hist['e' - 'a'], hist['t' - 'a'], hist['a' - 'a']);
		break;
	}
	default: {
		const char *p = t->payload;
		unsigned digits = 0, findings = 0, readable = 0;

		for (uint32_t i = 0; i < t->len; i++) {
			unsigned char c = (unsigned char)p[i];

			readable += isprint(c) || isspace(c);
			digits += isdigit(c) != 0;
			if (!strcmp(specialty, "docs") && c == '#' && (i == 0 || p[i - 1] == '\n'))
				findings++;
			if (!strcmp(specialty, "security") && i + 8 <= t->len &&
			    !strncasecmp(p + i, "password", 8))
				findings++;
			if (!strcmp(specialty, "performance") && i + 7 <= t->len &&
			    (!strncasecmp(p + i, "latency", 7) || !strncasecmp(p + i, "seconds", 7)))
				findings++;
			if (!strcmp(specialty, "data") && i + 4 <= t->len && !strncmp(p + i, "http", 4))
				findings++;
		}
		q = t->len ? 10.0 * readable / t->len : 0;
		n = snprintf(out, sizeof(out), "{\"role\":\"specialist\",\"specialty\":\"%s\","
			     "\"findings\":%u,\"digits\":%u}", specialty, findings, digits);
		break;
	}
	}
	/* Close the object with what the agent saw of the context. */
	if (n > 1 && (size_t)n < sizeof(out) - 64 && out[n - 1] == '}')
		n = n - 1 + snprintf(out + n - 1, sizeof(out) - (size_t)n + 1,
				     ",\"context_lines\":%u,\"context_truncated\":%s}", context_lines(t),
				     t->flags & TIER_TASK_CONTEXT_TRUNCATED ? "true" : "false");
	return tier_agent_reply(a, t, TIER_ST_OK, q, out, (uint32_t)(n < 0 ? 0 : n));
}

int main(int argc, char **argv)
{
	enum role role = R_SECONDARY;
	const char *specialty = "docs", *hang_on = NULL;
	/* Replies are batched: published every few, or as soon as no task is
	 * waiting, so a lone task's reply is not delayed. */
	struct tier_agent_opts ao = { .sz = sizeof(ao), .spin_ns = -1, .flags = TIER_AGENT_BATCH };
	static struct wordset ws;
	struct tier_agent *a;
	struct tier_task t;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--role") && i + 1 < argc) {
			const char *v = argv[++i];

			if (!strcmp(v, "orchestrator"))
				role = R_ORCH;
			else if (!strcmp(v, "primary"))
				role = R_PRIMARY;
			else if (!strcmp(v, "secondary"))
				role = R_SECONDARY;
			else if (!strcmp(v, "specialist"))
				role = R_SPECIALIST;
			else {
				fprintf(stderr, "team-agent: unknown role '%s'\n", v);
				return 2;
			}
		} else if (!strcmp(argv[i], "--specialty") && i + 1 < argc) {
			specialty = argv[++i];
		} else if (!strcmp(argv[i], "--hang-on") && i + 1 < argc) {
			hang_on = argv[++i];
		} else if (!strcmp(argv[i], "--max-inflight") && i + 1 < argc) {
			ao.max_inflight = (uint32_t)atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: team-agent --role orchestrator|primary|secondary|specialist "
				"[--specialty S] [--hang-on TYPE] [--max-inflight N]\n");
			return 2;
		}
	}
	a = tier_agent_open(&ao);
	if (!a) {
		fprintf(stderr, "team-agent: cannot attach to tierd: %s\n", tier_strerror(errno));
		return 1;
	}
	while ((r = tier_agent_next(a, &t, -1)) >= 0 || r == -EINTR) {
		if (r != 1)
			continue;
		if (hang_on && is_type(&t, hang_on))
			continue; /* never answered: tierd's deadline must end it */
		r = handle(a, role, specialty, &t, &ws);
		if (r < 0) {
			fprintf(stderr, "team-agent: reply failed: %s\n", tier_strerror(r));
			break;
		}
	}
	if (r < 0 && r != -EINTR)
		fprintf(stderr, "team-agent: ring: %s\n", tier_strerror(r));
	tier_agent_close(a);
	return r < 0 ? 1 : 0;
}
