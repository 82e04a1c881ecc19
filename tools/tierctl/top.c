/* SPDX-License-Identifier: MIT */
/* tierctl top: the monitor's view of the fleet, refreshed in place. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "adapt.h"
#include "client.h"

#define DASH "-"
#define TOP_REFRESH_MS 1000
#define TOP_ROWS_DEFAULT 24

/* ---- one frame ------------------------------------------------------------ */

static const char *count(const json_t *o, const char *a, const char *b, char *buf, size_t len)
{
	double x, y = 0;

	if (!tctl_num(o, a, &x) || (b && !tctl_num(o, b, &y)))
		return DASH;
	snprintf(buf, len, "%.0f", x + y);
	return buf;
}

static const char *bytes_of(const json_t *o, const char *key, char *buf, size_t len)
{
	double v;

	return tctl_num(o, key, &v) ? tctl_fmt_bytes(v, buf, len) : DASH;
}

static double fleet_memory(const json_t *tiers)
{
	const json_t *t;
	double sum = 0, v;
	size_t i;

	json_array_foreach(tiers, i, t)
		if (tctl_num(json_object_get(t, "rates"), "mem_bytes", &v))
			sum += v;
	return sum;
}

static void render_head(FILE *out, const json_t *r)
{
	const json_t *m = json_object_get(r, "machine"), *pe = json_object_get(r, "probe_errors");
	double busy, cpus, mf = 0, mi = 0, ot = 0;
	char a[8][32], src[512], when[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(out, "tierd top  %s  tick %s  accounting: %s\n", when,
		tctl_fmt_int(m, "tick", a[0], 32), tctl_fmt_str(r, "source", src, sizeof(src)));
	snprintf(a[2], 32, DASH);
	if (tctl_num(m, "busy", &busy) && tctl_num(m, "cpus", &cpus) && cpus > 0)
		snprintf(a[2], 32, "%.0f", busy / cpus * 100);
	fprintf(out, "machine  %s cpus, busy %s cores (%s%%), steal %s; memory %s available of %s\n",
		tctl_fmt_fixed(m, "cpus", 1, 0, a[0], 32), tctl_fmt_fixed(m, "busy", 1, 2, a[1], 32),
		a[2], tctl_fmt_fixed(m, "steal", 1, 2, a[3], 32), bytes_of(m, "mem_available", a[4], 32),
		bytes_of(m, "mem_total", a[5], 32));
	fprintf(out, "fleet    %s cores, %s memory; tierd itself %s%% of a core\n",
		tctl_fmt_fixed(m, "fleet_cpu", 1, 2, a[0], 32),
		tctl_fmt_bytes(fleet_memory(json_object_get(r, "tiers")), a[1], 32),
		tctl_fmt_fixed(m, "self_cpu", 100, 1, a[2], 32));
	tctl_num(pe, "map_full", &mf);
	tctl_num(pe, "missed", &mi);
	tctl_num(pe, "other", &ot);
	if (mf + mi + ot > 0)
		fprintf(out, "probe errors: map full %.0f, missed %.0f, other %.0f\n", mf, mi, ot);
}

static void render_tiers(FILE *out, const json_t *tiers)
{
	static const char *const head[] = { "TIER", "AGENTS", "READY", "CPU%", "RUNQ ms/s", "MEM",
					    "P95 ms", "OK", "ERR", "TMO", "QUALITY", "PRESSURE",
					    "PSI%" };
	struct tctl_table tab;
	const json_t *t;
	size_t i;

	tctl_table_init(&tab, 13);
	tctl_table_add(&tab, head);
	json_array_foreach(tiers, i, t) {
		const json_t *rt = json_object_get(t, "rates");
		char c[13][32];
		const char *row[13] = {
			tctl_fmt_int(t, "tier", c[0], 32), tctl_fmt_int(t, "agents", c[1], 32),
			tctl_fmt_int(t, "ready", c[2], 32), tctl_fmt_fixed(rt, "cpu", 100, 1, c[3], 32),
			tctl_fmt_fixed(rt, "runq", 1000, 1, c[4], 32), bytes_of(rt, "mem_bytes", c[5], 32),
			tctl_fmt_fixed(t, "p95_ms", 1, 1, c[6], 32), count(t, "ok", NULL, c[7], 32),
			count(t, "errors", NULL, c[8], 32), count(t, "timeouts", NULL, c[9], 32),
			tctl_fmt_fixed(t, "quality", 1, 2, c[10], 32),
			tctl_fmt_fixed(t, "pressure", 1, 2, c[11], 32),
			tctl_fmt_fixed(t, "psi_some10", 1, 1, c[12], 32),
		};

		tctl_table_add(&tab, row);
	}
	tctl_table_print(&tab, out);
	tctl_table_free(&tab);
}

static void render_agents(FILE *out, const json_t *agents)
{
	static const char *const head[] = { "AGENT", "TIER", "STATE", "CPU%", "RUNQ ms/s", "MEM",
					    "READ/s", "WRITE/s", "RX/s", "TX/s", "P50 ms", "P95 ms",
					    "OK", "ERR", "TMO", "QUALITY", "RESTARTS" };
	struct tctl_table tab;
	const json_t *ag;
	size_t i;

	if (!json_array_size(agents)) {
		fputs("no agents\n", out);
		return;
	}
	tctl_table_init(&tab, 17);
	tctl_table_add(&tab, head);
	json_array_foreach(agents, i, ag) {
		const json_t *rt = json_object_get(ag, "rates");
		char c[17][64];
		const char *row[17] = {
			tctl_fmt_str(ag, "name", c[0], 64), tctl_fmt_int(ag, "tier", c[1], 64),
			tctl_fmt_str(ag, "state", c[2], 64), tctl_fmt_fixed(rt, "cpu", 100, 1, c[3], 64),
			tctl_fmt_fixed(rt, "runq", 1000, 1, c[4], 64), bytes_of(rt, "mem_bytes", c[5], 64),
			bytes_of(rt, "read_bps", c[6], 64), bytes_of(rt, "write_bps", c[7], 64),
			bytes_of(rt, "rx_bps", c[8], 64), bytes_of(rt, "tx_bps", c[9], 64),
			tctl_fmt_fixed(ag, "p50_ms", 1, 1, c[10], 64),
			tctl_fmt_fixed(ag, "p95_ms", 1, 1, c[11], 64), count(ag, "ok", NULL, c[12], 64),
			count(ag, "errors", "crashed", c[13], 64), count(ag, "timeouts", NULL, c[14], 64),
			tctl_fmt_fixed(ag, "quality", 1, 2, c[15], 64),
			tctl_fmt_int(ag, "restarts", c[16], 64),
		};

		tctl_table_add(&tab, row);
	}
	tctl_table_print(&tab, out);
	tctl_table_free(&tab);
}

void tctl_render_top(FILE *out, const char *label, const json_t *r)
{
	(void)label;
	render_head(out, r);
	fputc('\n', out);
	render_tiers(out, json_object_get(r, "tiers"));
	fputc('\n', out);
	render_agents(out, json_object_get(r, "agents"));
}

/* ---- the terminal ------------------------------------------------------------ */

struct term {
	bool           tty_in, tty_out, raw;
	struct termios saved;
	int            sfd;         /* SIGINT, SIGTERM, SIGHUP, SIGWINCH */
	sigset_t       oldmask;
};

static int term_open(struct term *t)
{
	sigset_t set;

	memset(t, 0, sizeof(*t));
	t->tty_in = isatty(STDIN_FILENO);
	t->tty_out = isatty(STDOUT_FILENO);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGWINCH);
	/* Signals become reads, so the terminal is always put back. */
	if (sigprocmask(SIG_BLOCK, &set, &t->oldmask) < 0)
		return -errno;
	t->sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (t->sfd < 0) {
		int e = errno;

		sigprocmask(SIG_SETMASK, &t->oldmask, NULL);
		return -e;
	}
	if (t->tty_in && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		struct termios raw = t->saved;

		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	if (t->tty_out)
		fputs("\033[?1049h\033[?25l", stdout);   /* alternate screen, no cursor */
	return 0;
}

static void term_close(struct term *t)
{
	if (t->tty_out) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
	}
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	close(t->sfd);
	sigprocmask(SIG_SETMASK, &t->oldmask, NULL);
}

static unsigned term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 2)
		return ws.ws_row;
	return TOP_ROWS_DEFAULT;
}

/* In place on a terminal, cut to its height; one frame after another
 * otherwise. */
static void draw(const struct term *t, const json_t *r)
{
	char *buf = NULL, *line, *next;
	size_t len = 0;
	unsigned rows, n = 0, total = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	tctl_render_top(f, NULL, r);
	if (fclose(f) != 0) {
		free(buf);
		return;
	}
	if (!t->tty_out) {
		fputs(buf, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(buf);
		return;
	}
	for (const char *p = buf; *p; p++)
		total += *p == '\n';
	rows = term_rows();
	fputs("\033[H", stdout);
	for (line = buf; *line && n + 1 < rows; line = next, n++) {
		next = strchr(line, '\n');
		*next++ = '\0';
		if (n + 2 == rows && total > rows - 1) {
			printf("... %u more lines (tierctl top --once prints everything)\033[K\n",
			       total - n);
			break;
		}
		printf("%s\033[K\n", line);
	}
	fputs("\033[J", stdout);
	fflush(stdout);
	free(buf);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Until the next frame is due: false to quit (q, Ctrl-C, SIGTERM). */
static bool wait_frame(const struct term *t)
{
	int64_t until = now_ms() + TOP_REFRESH_MS;

	for (;;) {
		struct pollfd p[2] = { { .fd = t->sfd, .events = POLLIN },
				       { .fd = STDIN_FILENO, .events = POLLIN } };
		int64_t left = until - now_ms();
		int r;

		if (left <= 0)
			return true;
		r = poll(p, t->raw ? 2 : 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return false;
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(t->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo == SIGWINCH)
				return true;   /* redraw at the new size now */
			return false;
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			char ch;

			if (read(STDIN_FILENO, &ch, 1) != 1 || ch == 'q' || ch == 'Q')
				return false;
		}
	}
}

int tctl_run_top(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv)
{
	struct tctl_conn conn;
	struct sup_ctl_msg m;
	struct term t;
	bool once = false, live;
	char err[512];
	int r, rc = TCTL_EXIT_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once")) {
			fprintf(stderr, "tierctl %s: unknown argument '%s' (only --once)\n", cmd->name,
				argv[i]);
			tctl_usage(stderr);
			return TCTL_EXIT_USAGE;
		}
		once = true;
	}
	r = tctl_connect(&conn, o->socket, o->timeout_ms, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tierctl: %s\n", err);
		return TCTL_EXIT_FAIL;
	}
	live = !once && !o->json;
	if (live && (r = term_open(&t)) < 0) {
		fprintf(stderr, "tierctl: cannot watch signals: %s\n", strerror(-r));
		tctl_close(&conn);
		return TCTL_EXIT_FAIL;
	}
	for (;;) {
		r = tctl_call(&conn, cmd->name, NULL, NULL, NULL, err, sizeof(err), &m);
		if (r == 0 && !m.ok) {
			snprintf(err, sizeof(err), "%s", m.error);
			json_decref(m.root);
			r = -EPROTO;
		}
		if (r < 0) {
			rc = TCTL_EXIT_FAIL;
			break;
		}
		if (o->json) {
			json_dumpf(m.result, stdout, JSON_COMPACT);
			fputc('\n', stdout);
		} else if (live) {
			draw(&t, m.result);
		} else {
			tctl_render_top(stdout, NULL, m.result);
		}
		json_decref(m.root);
		if (!live || !wait_frame(&t))
			break;
	}
	if (live)
		term_close(&t);
	if (rc != TCTL_EXIT_OK)
		fprintf(stderr, "tierctl: %s\n", err);
	tctl_close(&conn);
	return rc;
}
