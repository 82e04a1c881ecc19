/* SPDX-License-Identifier: MIT */
/* Parsers of cgroup v2 stat files and the file watch. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "cg_stat.h"

/* Enough for every flat-keyed file we parse; io.stat grows with devices. */
#define STAT_BUF   4096
#define IOSTAT_BUF 16384

/* Split off the next space-separated token of s[0..n). */
static bool next_tok(const char **s, size_t *n, const char **ret_t, size_t *ret_tn)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	if (!*n)
		return false;
	*ret_t = *s;
	while (*n && **s != ' ' && **s != '\t') {
		(*s)++;
		(*n)--;
	}
	*ret_tn = (size_t)(*s - *ret_t);
	return true;
}

static bool tok_eq(const char *t, size_t tn, const char *lit)
{
	return strlen(lit) == tn && !memcmp(t, lit, tn);
}

/* Strict decimal u64 of exactly t[0..tn): no sign, no trailing junk. */
static int tok_u64(const char *t, size_t tn, uint64_t *ret)
{
	uint64_t v = 0;

	if (tn == 3 && !memcmp(t, "max", 3)) {
		*ret = SUP_CG_MAX;
		return 0;
	}
	if (!tn || tn > 20)
		return -EBADMSG;
	for (size_t i = 0; i < tn; i++) {
		unsigned d;

		if (t[i] < '0' || t[i] > '9')
			return -EBADMSG;
		d = (unsigned)(t[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* PSI averages are "12.34"; parsed by hand so the locale cannot interfere. */
static int tok_double(const char *t, size_t tn, double *ret)
{
	double v = 0, scale = 0.1;
	size_t i = 0;
	bool digits = false;

	for (; i < tn && t[i] >= '0' && t[i] <= '9'; i++, digits = true)
		v = v * 10 + (t[i] - '0');
	if (i < tn && t[i] == '.')
		for (i++; i < tn && t[i] >= '0' && t[i] <= '9'; i++, digits = true, scale /= 10)
			v += (t[i] - '0') * scale;
	if (!digits || i != tn)
		return -EBADMSG;
	*ret = v;
	return 0;
}

struct key_slot {
	const char *key;
	size_t      off;
};

/* "key value" lines into the u64 fields named by slots. */
static int parse_flat(const char *buf, size_t len, const struct key_slot *slots, size_t nslots,
		      void *out)
{
	struct sup_lines it = { buf, buf + len };
	const char *line, *k, *v;
	size_t n, kn, vn;

	while (sup_next_line(&it, &line, &n)) {
		if (!next_tok(&line, &n, &k, &kn) || !next_tok(&line, &n, &v, &vn))
			continue;
		for (size_t i = 0; i < nslots; i++) {
			if (!tok_eq(k, kn, slots[i].key))
				continue;
			if (tok_u64(v, vn, (uint64_t *)((char *)out + slots[i].off)) < 0)
				return -EBADMSG;
			break;
		}
	}
	return 0;
}

#define SLOT(type, f) { #f, offsetof(type, f) }

int sup_cg_parse_cpu_stat(const char *buf, size_t len, struct sup_cg_cpu_stat *ret)
{
	static const struct key_slot slots[] = {
		SLOT(struct sup_cg_cpu_stat, usage_usec),
		SLOT(struct sup_cg_cpu_stat, user_usec),
		SLOT(struct sup_cg_cpu_stat, system_usec),
		SLOT(struct sup_cg_cpu_stat, nr_periods),
		SLOT(struct sup_cg_cpu_stat, nr_throttled),
		SLOT(struct sup_cg_cpu_stat, throttled_usec),
	};
	struct sup_cg_cpu_stat s = { 0 };
	int r = parse_flat(buf, len, slots, sizeof(slots) / sizeof(slots[0]), &s);

	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

int sup_cg_parse_mem_events(const char *buf, size_t len, struct sup_cg_mem_events *ret)
{
	static const struct key_slot slots[] = {
		SLOT(struct sup_cg_mem_events, low),
		SLOT(struct sup_cg_mem_events, high),
		SLOT(struct sup_cg_mem_events, max),
		SLOT(struct sup_cg_mem_events, oom),
		SLOT(struct sup_cg_mem_events, oom_kill),
		SLOT(struct sup_cg_mem_events, oom_group_kill),
	};
	struct sup_cg_mem_events e = { 0 };
	int r = parse_flat(buf, len, slots, sizeof(slots) / sizeof(slots[0]), &e);

	if (r < 0)
		return r;
	*ret = e;
	return 0;
}

int sup_cg_parse_events(const char *buf, size_t len, struct sup_cg_events *ret)
{
	struct { uint64_t populated, frozen; } v = { 0, 0 };
	static const struct key_slot slots[] = {
		{ "populated", 0 },
		{ "frozen", sizeof(uint64_t) },
	};
	int r = parse_flat(buf, len, slots, 2, &v);

	if (r < 0)
		return r;
	if (v.populated > 1 || v.frozen > 1)
		return -EBADMSG;
	ret->populated = v.populated;
	ret->frozen = v.frozen;
	return 0;
}

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" */
static int psi_line(const char *s, size_t n, struct sup_cg_psi_line *ret)
{
	struct sup_cg_psi_line l = { 0 };
	const char *t;
	size_t tn;

	while (next_tok(&s, &n, &t, &tn)) {
		const char *eq = memchr(t, '=', tn);
		size_t kn, vn;
		int r = 0;

		if (!eq)
			continue;
		kn = (size_t)(eq - t);
		vn = tn - kn - 1;
		if (tok_eq(t, kn, "avg10"))
			r = tok_double(eq + 1, vn, &l.avg10);
		else if (tok_eq(t, kn, "avg60"))
			r = tok_double(eq + 1, vn, &l.avg60);
		else if (tok_eq(t, kn, "avg300"))
			r = tok_double(eq + 1, vn, &l.avg300);
		else if (tok_eq(t, kn, "total"))
			r = tok_u64(eq + 1, vn, &l.total);
		if (r < 0)
			return r;
	}
	*ret = l;
	return 0;
}

int sup_cg_parse_psi(const char *buf, size_t len, struct sup_cg_psi *ret)
{
	struct sup_lines it = { buf, buf + len };
	struct sup_cg_psi p = { 0 };
	const char *line, *k;
	size_t n, kn;

	while (sup_next_line(&it, &line, &n)) {
		int r = 0;

		if (!next_tok(&line, &n, &k, &kn))
			continue;
		if (tok_eq(k, kn, "some")) {
			r = psi_line(line, n, &p.some);
		} else if (tok_eq(k, kn, "full")) {
			r = psi_line(line, n, &p.full);
			p.has_full = true;
		}
		if (r < 0)
			return r;
	}
	*ret = p;
	return 0;
}

static int parse_devno(const char *t, size_t tn, uint32_t *ret_major, uint32_t *ret_minor)
{
	const char *colon = memchr(t, ':', tn);
	uint64_t maj, min;

	if (!colon || tok_u64(t, (size_t)(colon - t), &maj) < 0 ||
	    tok_u64(colon + 1, tn - (size_t)(colon - t) - 1, &min) < 0 ||
	    maj > UINT32_MAX || min > UINT32_MAX)
		return -EBADMSG;
	*ret_major = (uint32_t)maj;
	*ret_minor = (uint32_t)min;
	return 0;
}

/* "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device. */
int sup_cg_parse_io_stat(const char *buf, size_t len, struct sup_cg_io_stat *ret)
{
	static const struct key_slot slots[] = {
		SLOT(struct sup_cg_io_dev, rbytes), SLOT(struct sup_cg_io_dev, wbytes),
		SLOT(struct sup_cg_io_dev, rios),   SLOT(struct sup_cg_io_dev, wios),
		SLOT(struct sup_cg_io_dev, dbytes), SLOT(struct sup_cg_io_dev, dios),
	};
	struct sup_lines it = { buf, buf + len };
	struct sup_cg_io_stat s = { 0 };
	const char *line, *t;
	size_t n, tn;

	while (sup_next_line(&it, &line, &n)) {
		struct sup_cg_io_dev d = { 0 };

		if (!next_tok(&line, &n, &t, &tn))
			continue;
		if (parse_devno(t, tn, &d.major, &d.minor) < 0)
			return -EBADMSG;
		while (next_tok(&line, &n, &t, &tn)) {
			const char *eq = memchr(t, '=', tn);
			size_t kn;

			if (!eq)
				continue;
			kn = (size_t)(eq - t);
			for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
				if (!tok_eq(t, kn, slots[i].key))
					continue;
				if (tok_u64(eq + 1, tn - kn - 1,
					    (uint64_t *)((char *)&d + slots[i].off)) < 0)
					return -EBADMSG;
				break;
			}
		}
		s.total.rbytes += d.rbytes;
		s.total.wbytes += d.wbytes;
		s.total.rios += d.rios;
		s.total.wios += d.wios;
		s.total.dbytes += d.dbytes;
		s.total.dios += d.dios;
		if (s.ndev < SUP_CG_IO_DEV_MAX)
			s.dev[s.ndev++] = d;
		s.ndev_seen++;
	}
	*ret = s;
	return 0;
}

int sup_cg_parse_u64(const char *buf, size_t len, uint64_t *ret)
{
	const char *t;
	size_t tn;

	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\0'))
		len--;
	if (!next_tok(&buf, &len, &t, &tn) || len)
		return -EBADMSG;
	return tok_u64(t, tn, ret);
}

/* ---- readers ------------------------------------------------------------ */

int sup_cg_read_cpu_stat(int dirfd, struct sup_cg_cpu_stat *ret)
{
	char buf[STAT_BUF];
	int n = (int)sup_read_file_at(dirfd, "cpu.stat", buf, sizeof(buf));

	return n < 0 ? n : sup_cg_parse_cpu_stat(buf, (size_t)n, ret);
}

int sup_cg_read_mem_events(int dirfd, struct sup_cg_mem_events *ret)
{
	char buf[STAT_BUF];
	int n = (int)sup_read_file_at(dirfd, "memory.events", buf, sizeof(buf));

	return n < 0 ? n : sup_cg_parse_mem_events(buf, (size_t)n, ret);
}

int sup_cg_read_events(int dirfd, struct sup_cg_events *ret)
{
	char buf[STAT_BUF];
	int n = (int)sup_read_file_at(dirfd, "cgroup.events", buf, sizeof(buf));

	return n < 0 ? n : sup_cg_parse_events(buf, (size_t)n, ret);
}

int sup_cg_read_psi(int dirfd, enum sup_cg_psi_res res, struct sup_cg_psi *ret)
{
	static const char *const files[] = {
		[SUP_CG_PSI_CPU] = "cpu.pressure",
		[SUP_CG_PSI_MEMORY] = "memory.pressure",
		[SUP_CG_PSI_IO] = "io.pressure",
	};
	char buf[STAT_BUF];
	int n;

	if ((unsigned)res > SUP_CG_PSI_IO)
		return -EINVAL;
	n = (int)sup_read_file_at(dirfd, files[res], buf, sizeof(buf));
	return n < 0 ? n : sup_cg_parse_psi(buf, (size_t)n, ret);
}

int sup_cg_read_io_stat(int dirfd, struct sup_cg_io_stat *ret)
{
	char *buf = malloc(IOSTAT_BUF);
	int n;

	if (!buf)
		return -ENOMEM;
	n = (int)sup_read_file_at(dirfd, "io.stat", buf, IOSTAT_BUF);
	if (n >= 0)
		n = sup_cg_parse_io_stat(buf, (size_t)n, ret);
	free(buf);
	return n;
}

int sup_cg_read_u64(int dirfd, const char *file, uint64_t *ret)
{
	char buf[64];
	int n = (int)sup_read_file_at(dirfd, file, buf, sizeof(buf));

	return n < 0 ? n : sup_cg_parse_u64(buf, (size_t)n, ret);
}

/* ---- watch ---------------------------------------------------------------- */

int sup_cg_watch_read(int fd, char *buf, size_t sz)
{
	return (int)sup_pread_file(fd, buf, sz);
}

int sup_cg_watch_open(int dirfd, const char *file)
{
	char buf[STAT_BUF];
	int fd, r;

	fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* kernfs reports a change to an fd that has not read since open; the
	 * first read records the current event count. */
	r = sup_cg_watch_read(fd, buf, sizeof(buf));
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int sup_cg_watch_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };
	int r;

	r = sup_poll(&p, 1, timeout_ms);
	if (r < 0)
		return r;
	if (r == 0)
		return 0;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return 1;
}

bool sup_next_line(struct sup_lines *it, const char **ret_s, size_t *ret_n)
{
	const char *nl;

	if (it->p >= it->end)
		return false;
	nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	*ret_s = it->p;
	*ret_n = nl ? (size_t)(nl - it->p) : (size_t)(it->end - it->p);
	it->p = nl ? nl + 1 : it->end;
	return true;
}
