/* SPDX-License-Identifier: MIT */
/*
 * acct across execve: the 'acct' section of the hand-over state (layout in
 * docs/handover.md). The probe crosses as its fds, so it keeps running and
 * counting through the exec; the fallback crosses as its baselines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bpf/tierprobe.h"
#include "acct.h"
#include "acct_internal.h"
#include "common/opts.h"
#include "handover/handover.h"

#define ACCT_SECTION_VERSION 1
#define ACCT_MAX_CGROUPS (1u << 20)

enum { SRC_FALLBACK, SRC_BPF };

static void save_probe(const struct tierprobe *p, struct sup_ho_w *w)
{
	struct tierprobe_fds f;

	tierprobe__fds(p, &f);
	sup_ho_w_u8(w, (uint8_t)f.mode);
	sup_ho_w_str(w, tierprobe__btf_note(p));
	sup_ho_w_str(w, tierprobe__io_note(p));
	sup_ho_w_str(w, tierprobe__net_note(p));
	sup_ho_w_fd(w, f.cgroups, SUP_HO_FD_BPF_MAP);
	sup_ho_w_fd(w, f.tasks, SUP_HO_FD_BPF_MAP);
	sup_ho_w_fd(w, f.errors, SUP_HO_FD_BPF_MAP);
	sup_ho_w_fd(w, f.flush, SUP_HO_FD_BPF_PROG);
	sup_ho_w_u32(w, TIERPROBE_NPROGFD);
	for (int i = 0; i < TIERPROBE_NPROGFD; i++)
		sup_ho_w_fd(w, f.progs[i], SUP_HO_FD_BPF_PROG);
	sup_ho_w_u32(w, (uint32_t)f.nlinks);
	for (size_t i = 0; i < f.nlinks; i++)
		sup_ho_w_fd(w, f.links[i], SUP_HO_FD_BPF_LINK);
}

int sup_acct_handover(struct sup_acct *a, struct sup_ho_w *w)
{
	sup_ho_w_begin(w, SUP_HO_TAG_ACCT, ACCT_SECTION_VERSION);
	sup_ho_w_u8(w, a->probe ? SRC_BPF : SRC_FALLBACK);
	sup_ho_w_str(w, a->source);
	sup_ho_w_i64(w, a->flushed_ns);
	sup_ho_w_u64(w, a->cg_full);
	sup_ho_w_u64(w, a->flush_errors);
	if (a->probe)
		save_probe(a->probe, w);
	sup_ho_w_u32(w, (uint32_t)a->ncgs);
	for (size_t i = 0; i < a->ncgs; i++) {
		sup_ho_w_u64(w, a->cgs[i].cgid);
		sup_ho_w_u8(w, a->cgs[i].has_net);
		if (!a->probe)
			sup_acct_fb_save(a->cgs[i].fb, w);
	}
	sup_ho_w_end(w);
	return 0;
}

/* The probe's fds and notes out of the section, then the probe from them. */
static struct tierprobe *load_probe(struct sup_ho_r *r, char *err, size_t errlen)
{
	char notes[3][256], why[512] = "";
	struct tierprobe_fds f;
	struct tierprobe *p;
	uint32_t nprog = 0, nlinks = 0;
	uint8_t mode = 0;

	memset(&f, 0xff, sizeof(f));
	sup_ho_r_u8(r, &mode);
	f.mode = (enum tierprobe_mode)mode;
	for (int i = 0; i < 3; i++)
		sup_ho_r_str(r, notes[i], sizeof(notes[i]));
	sup_ho_r_fd(r, SUP_HO_FD_BPF_MAP, &f.cgroups);
	sup_ho_r_fd(r, SUP_HO_FD_BPF_MAP, &f.tasks);
	sup_ho_r_fd(r, SUP_HO_FD_BPF_MAP, &f.errors);
	sup_ho_r_fd(r, SUP_HO_FD_BPF_PROG, &f.flush);
	if (sup_ho_r_u32(r, &nprog) && nprog != TIERPROBE_NPROGFD)
		sup_ho_r_fail(r, "%u probe programs, this binary has %d", nprog, TIERPROBE_NPROGFD);
	for (int i = 0; i < TIERPROBE_NPROGFD && sup_ho_r_ok(r); i++)
		sup_ho_r_fd(r, SUP_HO_FD_BPF_PROG, &f.progs[i]);
	if (sup_ho_r_u32(r, &nlinks) && nlinks > TIERPROBE_MAX_LINKS)
		sup_ho_r_fail(r, "%u probe links, at most %d", nlinks, TIERPROBE_MAX_LINKS);
	f.nlinks = sup_ho_r_ok(r) ? nlinks : 0;
	for (size_t i = 0; i < f.nlinks && sup_ho_r_ok(r); i++)
		sup_ho_r_fd(r, SUP_HO_FD_BPF_LINK, &f.links[i]);
	if (!sup_ho_r_ok(r) || f.cgroups < 0 || f.tasks < 0 || f.errors < 0 || f.flush < 0) {
		snprintf(err, errlen, "acct: %s", sup_ho_r_ok(r) ? "a probe without its maps"
								  : sup_ho_r_error(r));
		return NULL;
	}
	p = tierprobe__adopt(&f, notes[0][0] ? notes[0] : NULL, notes[1][0] ? notes[1] : NULL,
			     notes[2][0] ? notes[2] : NULL, why, sizeof(why));
	if (!p)
		snprintf(err, errlen, "acct: the probe handed over: %s", why);
	return p;
}

static int load_cgroups(struct sup_acct *a, struct sup_ho_r *r)
{
	uint32_t n = 0;

	if (!sup_ho_r_u32(r, &n))
		return -EINVAL;
	/* at least 9 bytes a cgroup: a count the section cannot hold is
	 * refused before it is allocated */
	if (n > ACCT_MAX_CGROUPS || n > sup_ho_r_left(r) / 9) {
		sup_ho_r_fail(r, "%u tracked cgroups", n);
		return -EINVAL;
	}
	a->cgs = calloc(n ? n : 1, sizeof(*a->cgs));
	if (!a->cgs)
		return -ENOMEM;
	a->cap = n ? n : 1;
	for (uint32_t i = 0; i < n; i++) {
		struct acct_cg *c = &a->cgs[i];
		uint8_t net = 0;
		int rc;

		sup_ho_r_u64(r, &c->cgid);
		sup_ho_r_u8(r, &net);
		c->has_net = net != 0;
		if (!a->probe) {
			rc = sup_acct_fb_load(r, &c->fb);
			if (rc < 0)
				return rc;
		}
		if (!sup_ho_r_ok(r))
			return -EINVAL;
		a->ncgs++;
	}
	return 0;
}

struct sup_acct *sup_acct_adopt(struct sup_ho_r *r, const struct sup_acct_opts *opts,
				char *err, size_t errlen)
{
	struct sup_acct_opts o;
	struct sup_acct *a;
	uint32_t ver = 0;
	uint8_t src = 0;
	int rc;

	if (!opts || sup_opts_copy(&o, sizeof(o), opts) < 0) {
		snprintf(err, errlen, "acct: bad options");
		errno = EINVAL;
		return NULL;
	}
	if (!sup_ho_r_section(r, SUP_HO_TAG_ACCT, &ver)) {
		snprintf(err, errlen, "acct: %s", sup_ho_r_ok(r) ? "no 'acct' section in the state"
								  : sup_ho_r_error(r));
		errno = EINVAL;
		return NULL;
	}
	if (ver != ACCT_SECTION_VERSION) {
		sup_ho_r_fail(r, "version %u, this binary reads %d", ver, ACCT_SECTION_VERSION);
		snprintf(err, errlen, "acct: %s", sup_ho_r_error(r));
		errno = EPROTO;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "acct: out of memory");
		return NULL;
	}
	for (int t = 1; t <= SUP_NTIERS; t++)
		if (sup_acct_is_cgroup2_dir(o.tier_fds[t], &a->net_dirs[a->nnet]))
			a->nnet++;
	sup_ho_r_u8(r, &src);
	sup_ho_r_str(r, a->source, sizeof(a->source));
	sup_ho_r_i64(r, &a->flushed_ns);
	sup_ho_r_u64(r, &a->cg_full);
	sup_ho_r_u64(r, &a->flush_errors);
	if (sup_ho_r_ok(r) && src != SRC_FALLBACK && src != SRC_BPF)
		sup_ho_r_fail(r, "source %u unknown", src);
	if (!sup_ho_r_ok(r)) {
		snprintf(err, errlen, "acct: %s", sup_ho_r_error(r));
		rc = -EINVAL;
		goto close;
	}
	if (src == SRC_BPF) {
		a->probe = load_probe(r, err, errlen);
		if (!a->probe) {
			rc = -errno;
			goto close;
		}
	}
	rc = load_cgroups(a, r);
	if (rc < 0) {
		snprintf(err, errlen, "acct: %s", sup_ho_r_ok(r) ? strerror(-rc) : sup_ho_r_error(r));
		goto close;
	}
	return a;
close:
	sup_acct_abandon(a);
	errno = -rc;
	return NULL;
}

void sup_acct_abandon(struct sup_acct *a)
{
	if (!a)
		return;
	/* the probe's fds stay open: they are the state's, for the rollback */
	tierprobe__forget(a->probe);
	a->probe = NULL;
	sup_acct_close(a);
}
