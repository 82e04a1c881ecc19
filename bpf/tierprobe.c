/* SPDX-License-Identifier: MIT */
/*
 * tierprobe loader: open → size maps and pick the tp_btf or raw_tp set →
 * load → attach, tp_btf first and raw_tp when tp_btf fails anywhere on
 * that path. The syscall exit tracepoints (perf events on tracefs ids) and
 * the cgroup_skb programs attach after that; when they cannot, the probe
 * still runs and says why (tierprobe__io_note, tierprobe__net_note).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tierprobe.h"
#include "tierprobe.skel.h"
#include "common/opts.h"

#define NOTE_MAX   256
#define NET_LINKS  16 /* ingress + egress for up to 8 cgroups */

struct tierprobe {
	struct tierprobe_bpf *skel;      /* NULL when adopted */
	struct tierprobe_fds f;          /* what every call after open uses */
	enum tierprobe_mode mode;
	int ncpus;                       /* possible CPUs: per-CPU value slots */
	struct bpf_link *net_links[NET_LINKS];
	size_t nnet_links;
	char btf_note[NOTE_MAX];         /* "" = no note */
	char io_note[NOTE_MAX];
	char net_note[NOTE_MAX];
};

static struct bpf_program *sched_prog(struct tierprobe_bpf *s, enum tierprobe_mode m, int which)
{
	struct bpf_program *btf[3] = { s->progs.tp_btf_switch, s->progs.tp_btf_wakeup,
				       s->progs.tp_btf_wakeup_new };
	struct bpf_program *raw[3] = { s->progs.raw_tp_switch, s->progs.raw_tp_wakeup,
				       s->progs.raw_tp_wakeup_new };

	return m == TIERPROBE_TP_BTF ? btf[which] : raw[which];
}

static struct bpf_link **sched_link(struct tierprobe_bpf *s, enum tierprobe_mode m, int which)
{
	struct bpf_link **btf[3] = { &s->links.tp_btf_switch, &s->links.tp_btf_wakeup,
				     &s->links.tp_btf_wakeup_new };
	struct bpf_link **raw[3] = { &s->links.raw_tp_switch, &s->links.raw_tp_wakeup,
				     &s->links.raw_tp_wakeup_new };

	return m == TIERPROBE_TP_BTF ? btf[which] : raw[which];
}

static const char *const sched_tp[3] = { "sched_switch", "sched_wakeup", "sched_wakeup_new" };

/* Open, load and attach the scheduler programs of one mode. */
static int load_mode(struct tierprobe *p, const struct tierprobe_opts *o, enum tierprobe_mode m,
		     char *why, size_t why_sz)
{
	struct tierprobe_bpf *s;
	const char *step = "open";
	char what[64] = "";
	int err = 0;

	s = tierprobe_bpf__open();
	if (!s) {
		err = -errno;
		goto destroy;
	}
	step = "size maps";
	err = bpf_map__set_max_entries(s->maps.cgroups, o->max_cgroups ? o->max_cgroups :
				       TIERPROBE_MAX_CGROUPS_DEFAULT);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.tasks, o->max_tasks ? o->max_tasks :
					       TIERPROBE_MAX_TASKS_DEFAULT);
	if (err)
		goto destroy;
	for (int i = 0; i < 3; i++)
		bpf_program__set_autoload(sched_prog(s, m == TIERPROBE_TP_BTF ? TIERPROBE_RAW_TP :
						     TIERPROBE_TP_BTF, i), false);
	if (!o->n_net_cgroup_fds) {
		bpf_program__set_autoload(s->progs.net_ingress, false);
		bpf_program__set_autoload(s->progs.net_egress, false);
	}
	step = "load";
	err = tierprobe_bpf__load(s);
	if (err)
		goto destroy;
	for (int i = 0; i < 3; i++) {
		struct bpf_link *l = bpf_program__attach(sched_prog(s, m, i));

		if (!l) {
			err = -errno;
			snprintf(what, sizeof(what), "attach %s", sched_tp[i]);
			step = what;
			goto destroy;
		}
		*sched_link(s, m, i) = l;
	}
	p->skel = s;
	p->mode = m;
	return 0;
destroy:
	snprintf(why, why_sz, "%s: %s", step, strerror(-err));
	tierprobe_bpf__destroy(s);
	return err;
}

/* The events/ directory of tracefs: where it is mounted, else a detached
 * mount of our own (fsopen/fsmount: nothing appears in any mount table,
 * and it goes away with the last fd). */
static int tracefs_events(void)
{
	static const char *const paths[] = { "/sys/kernel/tracing/events",
					     "/sys/kernel/debug/tracing/events" };
	int fs, mnt, fd;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		fd = open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	fs = (int)syscall(SYS_fsopen, "tracefs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	mnt = -1;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
	fd = mnt >= 0 ? openat(mnt, "events", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd < 0)
		fd = -errno;
	if (mnt >= 0)
		close(mnt);
	close(fs);
	return fd;
}

static int tracepoint_id(int events_fd, const char *cat, const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/id", cat, name);
	fd = openat(events_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	return atoi(buf);
}

static struct bpf_link *attach_tracepoint(struct bpf_program *prog, int id)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_TRACEPOINT,
		.size = sizeof(attr),
		.config = (__u64)id,
		.sample_period = 1,
		.wakeup_events = 1,
	};
	struct bpf_link *l;
	int pfd, err;

	/* One event on CPU 0 is enough: a tracepoint's BPF programs hang
	 * off the event's class and run on every CPU. */
	pfd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return NULL;
	l = bpf_program__attach_perf_event(prog, pfd);
	if (!l) {
		err = errno;
		close(pfd);
		errno = err;
	}
	return l;
}

/* All ten or none: half the read family would be a wrong number. */
static void attach_io(struct tierprobe *p)
{
	struct tierprobe_bpf *s = p->skel;
	struct { const char *name; struct bpf_program *prog; struct bpf_link **link; } io[] = {
		{ "sys_exit_read", s->progs.io_read, &s->links.io_read },
		{ "sys_exit_readv", s->progs.io_readv, &s->links.io_readv },
		{ "sys_exit_pread64", s->progs.io_pread64, &s->links.io_pread64 },
		{ "sys_exit_preadv", s->progs.io_preadv, &s->links.io_preadv },
		{ "sys_exit_preadv2", s->progs.io_preadv2, &s->links.io_preadv2 },
		{ "sys_exit_write", s->progs.io_write, &s->links.io_write },
		{ "sys_exit_writev", s->progs.io_writev, &s->links.io_writev },
		{ "sys_exit_pwrite64", s->progs.io_pwrite64, &s->links.io_pwrite64 },
		{ "sys_exit_pwritev", s->progs.io_pwritev, &s->links.io_pwritev },
		{ "sys_exit_pwritev2", s->progs.io_pwritev2, &s->links.io_pwritev2 },
	};
	size_t n = sizeof(io) / sizeof(io[0]), i;
	int events = tracefs_events(), id = 0;

	if (events < 0) {
		snprintf(p->io_note, sizeof(p->io_note),
			 "tracefs is not mounted and could not be mounted: %s", strerror(-events));
		return;
	}
	for (i = 0; i < n; i++) {
		id = tracepoint_id(events, "syscalls", io[i].name);
		if (id < 0)
			break;
		*io[i].link = attach_tracepoint(io[i].prog, id);
		if (!*io[i].link) {
			id = -errno;
			break;
		}
	}
	close(events);
	if (i == n)
		return;
	snprintf(p->io_note, sizeof(p->io_note), "tracepoint syscalls/%s: %s", io[i].name,
		 strerror(-id));
	while (i-- > 0) {
		bpf_link__destroy(*io[i].link);
		*io[i].link = NULL;
	}
}

static void attach_net(struct tierprobe *p, const int *fds, size_t n)
{
	struct bpf_program *progs[2] = { p->skel->progs.net_ingress, p->skel->progs.net_egress };

	if (!n) {
		snprintf(p->net_note, sizeof(p->net_note), "no tier cgroup to attach cgroup_skb to");
		return;
	}
	if (n * 2 > NET_LINKS) {
		snprintf(p->net_note, sizeof(p->net_note), "more than %d cgroups for cgroup_skb",
			 NET_LINKS / 2);
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 2; k++) {
			struct bpf_link *l = bpf_program__attach_cgroup(progs[k], fds[i]);

			if (!l) {
				snprintf(p->net_note, sizeof(p->net_note), "cgroup_skb/%s on fd %d: %s",
					 k ? "egress" : "ingress", fds[i], strerror(errno));
				while (p->nnet_links)
					bpf_link__destroy(p->net_links[--p->nnet_links]);
				return;
			}
			p->net_links[p->nnet_links++] = l;
		}
}

/* Every program of the set tierprobe__prog_stats and the hand-over know,
 * in the order of tierprobe_fds.progs. */
static void prog_set(struct tierprobe_bpf *s, enum tierprobe_mode m,
		     struct bpf_program *set[TIERPROBE_NPROGFD])
{
	struct bpf_program *all[TIERPROBE_NPROGFD] = {
		sched_prog(s, m, 0), sched_prog(s, m, 1), sched_prog(s, m, 2),
		s->progs.io_read, s->progs.io_readv, s->progs.io_pread64, s->progs.io_preadv,
		s->progs.io_preadv2, s->progs.io_write, s->progs.io_writev, s->progs.io_pwrite64,
		s->progs.io_pwritev, s->progs.io_pwritev2,
		s->progs.net_ingress, s->progs.net_egress,
	};

	memcpy(set, all, sizeof(all));
}

static void fill_fds(struct tierprobe *p)
{
	struct tierprobe_bpf *s = p->skel;
	struct bpf_object_skeleton *sk = s->skeleton;
	struct bpf_program *set[TIERPROBE_NPROGFD];
	struct tierprobe_fds *f = &p->f;

	f->mode = p->mode;
	f->cgroups = bpf_map__fd(s->maps.cgroups);
	f->tasks = bpf_map__fd(s->maps.tasks);
	f->errors = bpf_map__fd(s->maps.errors);
	f->flush = bpf_program__fd(s->progs.flush);
	prog_set(s, p->mode, set);
	for (int i = 0; i < TIERPROBE_NPROGFD; i++)
		f->progs[i] = bpf_program__fd(set[i]) >= 0 ? bpf_program__fd(set[i]) : -1;
	f->nlinks = 0;
	for (int i = 0; i < sk->prog_cnt && f->nlinks < TIERPROBE_MAX_LINKS; i++)
		if (sk->progs[i].link && *sk->progs[i].link)
			f->links[f->nlinks++] = bpf_link__fd(*sk->progs[i].link);
	for (size_t i = 0; i < p->nnet_links && f->nlinks < TIERPROBE_MAX_LINKS; i++)
		f->links[f->nlinks++] = bpf_link__fd(p->net_links[i]);
}

struct tierprobe *tierprobe__open(const struct tierprobe_opts *opts)
{
	char why_btf[NOTE_MAX] = "", why_raw[NOTE_MAX] = "";
	struct tierprobe_opts o;
	struct tierprobe *p;
	int err;

	err = sup_opts_copy(&o, sizeof(o), opts);
	if (err)
		goto fail;
	p = calloc(1, sizeof(*p));
	if (!p) {
		err = -ENOMEM;
		goto fail;
	}
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = p->ncpus < 0 ? p->ncpus : -EINVAL;
		snprintf(why_raw, sizeof(why_raw), "possible CPUs: %s", strerror(-err));
		goto free;
	}
	err = -1;
	if (!o.force_raw_tp) {
		err = load_mode(p, &o, TIERPROBE_TP_BTF, why_btf, sizeof(why_btf));
		if (err)
			snprintf(p->btf_note, sizeof(p->btf_note), "tp_btf %s", why_btf);
	}
	if (err)
		err = load_mode(p, &o, TIERPROBE_RAW_TP, why_raw, sizeof(why_raw));
	if (err)
		goto free;
	attach_io(p);
	attach_net(p, o.net_cgroup_fds, o.n_net_cgroup_fds);
	fill_fds(p);
	return p;
free:
	free(p);
fail:
	if (o.errbuf && o.errbuf_sz) {
		if (why_btf[0] || why_raw[0])
			snprintf(o.errbuf, o.errbuf_sz, "%s%s%s%s%s", why_btf[0] ? "tp_btf " : "",
				 why_btf, why_btf[0] && why_raw[0] ? "; " : "",
				 why_raw[0] ? "raw_tp " : "", why_raw);
		else
			snprintf(o.errbuf, o.errbuf_sz, "options: %s", strerror(-err));
	}
	errno = -err;
	return NULL;
}

static void *destroy_link(void *arg)
{
	bpf_link__destroy(arg);
	return NULL;
}

/* Detaching a link waits for RCU grace periods (a perf-event tracepoint
 * even for two kinds); one after another that took seconds at exit. Done
 * from one thread per link the waits overlap. A thread that cannot be
 * started detaches its link inline. */
static void destroy_links(struct bpf_link **links, size_t n)
{
	pthread_t th[64];
	bool started[64] = { false };

	for (size_t i = 0; i < n && i < 64; i++)
		started[i] = pthread_create(&th[i], NULL, destroy_link, links[i]) == 0;
	for (size_t i = 0; i < n; i++) {
		if (i < 64 && started[i])
			pthread_join(th[i], NULL);
		else
			bpf_link__destroy(links[i]);
	}
}

static void *close_fd(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

/* The links first, in parallel as destroy_links does (each close that
 * detaches waits for RCU), then the programs and maps they held. */
static void close_adopted(struct tierprobe *p)
{
	pthread_t th[TIERPROBE_MAX_LINKS];
	bool started[TIERPROBE_MAX_LINKS] = { false };
	struct tierprobe_fds *f = &p->f;

	for (size_t i = 0; i < f->nlinks; i++)
		started[i] = pthread_create(&th[i], NULL, close_fd,
					    (void *)(intptr_t)f->links[i]) == 0;
	for (size_t i = 0; i < f->nlinks; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			close(f->links[i]);
	}
	for (int i = 0; i < TIERPROBE_NPROGFD; i++)
		if (f->progs[i] >= 0)
			close(f->progs[i]);
	close(f->flush);
	close(f->cgroups);
	close(f->tasks);
	close(f->errors);
	free(p);
}

void tierprobe__destroy(struct tierprobe *p)
{
	struct bpf_object_skeleton *sk;
	struct bpf_link *links[64];
	size_t n = 0;

	if (!p)
		return;
	if (!p->skel) {
		close_adopted(p);
		return;
	}
	while (p->nnet_links && n < 64)
		links[n++] = p->net_links[--p->nnet_links];
	sk = p->skel ? p->skel->skeleton : NULL;
	for (int i = 0; sk && i < sk->prog_cnt && n < 64; i++)
		if (sk->progs[i].link && *sk->progs[i].link) {
			links[n++] = *sk->progs[i].link;
			*sk->progs[i].link = NULL;
		}
	destroy_links(links, n);
	while (p->nnet_links)
		bpf_link__destroy(p->net_links[--p->nnet_links]);
	tierprobe_bpf__destroy(p->skel);
	free(p);
}

enum tierprobe_mode tierprobe__mode(const struct tierprobe *p)
{
	return p->mode;
}

const char *tierprobe__btf_note(const struct tierprobe *p)
{
	return p->btf_note[0] ? p->btf_note : NULL;
}

const char *tierprobe__io_note(const struct tierprobe *p)
{
	return p->io_note[0] ? p->io_note : NULL;
}

const char *tierprobe__net_note(const struct tierprobe *p)
{
	return p->net_note[0] ? p->net_note : NULL;
}

int tierprobe__add_cgroup(struct tierprobe *p, __u64 cgid)
{
	size_t sz = (size_t)p->ncpus * sizeof(struct tierprobe_cg);
	void *zero = calloc(1, sz);
	int err;

	if (!zero)
		return -ENOMEM;
	err = bpf_map_update_elem(p->f.cgroups, &cgid, zero, BPF_NOEXIST);
	free(zero);
	return err < 0 ? -errno : 0;
}

int tierprobe__del_cgroup(struct tierprobe *p, __u64 cgid)
{
	return bpf_map_delete_elem(p->f.cgroups, &cgid) < 0 ? -errno : 0;
}

int tierprobe__flush(struct tierprobe *p)
{
	int fd = p->f.flush;

	for (int cpu = 0; cpu < p->ncpus; cpu++) {
		LIBBPF_OPTS(bpf_test_run_opts, t, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = (__u32)cpu);

		/* ENXIO: that CPU is offline, nothing runs there. */
		if (bpf_prog_test_run_opts(fd, &t) < 0 && errno != ENXIO)
			return -errno;
	}
	return 0;
}

int tierprobe__read(const struct tierprobe *p, __u64 cgid, struct tierprobe_cg *ret)
{
	struct tierprobe_cg *v = calloc((size_t)p->ncpus, sizeof(*v)), sum;
	int err = 0;

	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(p->f.cgroups, &cgid, v) < 0) {
		err = -errno;
		goto free;
	}
	memset(&sum, 0, sizeof(sum));
	for (int c = 0; c < p->ncpus; c++) {
		sum.cpu_ns += v[c].cpu_ns;
		sum.runq_delay_ns += v[c].runq_delay_ns;
		sum.runq_waits += v[c].runq_waits;
		sum.vol_switches += v[c].vol_switches;
		sum.invol_switches += v[c].invol_switches;
		sum.read_bytes += v[c].read_bytes;
		sum.write_bytes += v[c].write_bytes;
		sum.net_rx_bytes += v[c].net_rx_bytes;
		sum.net_tx_bytes += v[c].net_tx_bytes;
		for (int i = 0; i < TIERPROBE_HIST; i++)
			sum.runq_hist[i] += v[c].runq_hist[i];
	}
	*ret = sum;
free:
	free(v);
	return err;
}

int tierprobe__errors(const struct tierprobe *p, __u64 ret[TIERPROBE_NERR])
{
	__u64 *v = calloc((size_t)p->ncpus, sizeof(*v)), out[TIERPROBE_NERR] = { 0 };
	int fd = p->f.errors, err = 0;

	if (!v)
		return -ENOMEM;
	for (__u32 k = 0; k < TIERPROBE_NERR; k++) {
		if (bpf_map_lookup_elem(fd, &k, v) < 0) {
			err = -errno;
			goto free;
		}
		for (int c = 0; c < p->ncpus; c++)
			out[k] += v[c];
	}
	memcpy(ret, out, sizeof(out));
free:
	free(v);
	return err;
}

int tierprobe__prog_stats(const struct tierprobe *p, enum tierprobe_prog which,
			  struct tierprobe_prog_stats *ret)
{
	/* [first, end) of tierprobe_fds.progs per kind */
	static const int range[TIERPROBE_NPROG][2] = {
		[TIERPROBE_PROG_SWITCH] = { 0, 1 }, [TIERPROBE_PROG_WAKEUP] = { 1, 3 },
		[TIERPROBE_PROG_IO] = { 3, 13 }, [TIERPROBE_PROG_NET] = { 13, 15 },
	};
	struct tierprobe_prog_stats sum = { 0 };

	if ((unsigned)which >= TIERPROBE_NPROG)
		return -EINVAL;
	for (int i = range[which][0]; i < range[which][1]; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = p->f.progs[i];

		if (fd < 0)
			continue; /* not loaded (no net cgroups) */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			return -errno;
		sum.run_cnt += info.run_cnt;
		sum.run_time_ns += info.run_time_ns;
		sum.recursion_misses += info.recursion_misses;
	}
	*ret = sum;
	return 0;
}

void tierprobe__fds(const struct tierprobe *p, struct tierprobe_fds *ret)
{
	*ret = p->f;
}

/* 0 when fd is a map of that shape, else a sentence in why. */
static int check_map(int fd, const char *name, __u32 type, __u32 key, __u32 value,
		     __u32 entries, char *why, size_t why_sz)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		snprintf(why, why_sz, "map %s (fd %d): %s", name, fd, strerror(errno));
		return -errno;
	}
	if (info.type != type || info.key_size != key || info.value_size != value ||
	    (entries && info.max_entries != entries)) {
		snprintf(why, why_sz, "map %s (fd %d) is type %u, key %u, value %u bytes, "
			 "%u entries; this binary's layout is type %u, key %u, value %u bytes",
			 name, fd, info.type, info.key_size, info.value_size, info.max_entries,
			 type, key, value);
		return -EPROTO;
	}
	return 0;
}

static int check_obj(int fd, bool link, char *why, size_t why_sz)
{
	union { struct bpf_prog_info prog; struct bpf_link_info link; } info;
	__u32 len = link ? sizeof(info.link) : sizeof(info.prog);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		snprintf(why, why_sz, "%s fd %d: %s", link ? "link" : "program", fd, strerror(errno));
		return -errno;
	}
	return 0;
}

struct tierprobe *tierprobe__adopt(const struct tierprobe_fds *fds, const char *btf_note,
				   const char *io_note, const char *net_note,
				   char *errbuf, size_t errbuf_sz)
{
	char why[NOTE_MAX * 2] = "";
	struct tierprobe *p;
	int err;

	if (fds->nlinks > TIERPROBE_MAX_LINKS ||
	    (fds->mode != TIERPROBE_TP_BTF && fds->mode != TIERPROBE_RAW_TP)) {
		snprintf(why, sizeof(why), "mode %d with %zu links", (int)fds->mode, fds->nlinks);
		err = -EINVAL;
		goto fail;
	}
	err = check_map(fds->cgroups, "cgroups", BPF_MAP_TYPE_PERCPU_HASH, sizeof(__u64),
			sizeof(struct tierprobe_cg), 0, why, sizeof(why));
	if (!err)
		err = check_map(fds->tasks, "tasks", BPF_MAP_TYPE_HASH, sizeof(__u32),
				sizeof(struct tierprobe_task), 0, why, sizeof(why));
	if (!err)
		err = check_map(fds->errors, "errors", BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32),
				sizeof(__u64), TIERPROBE_NERR, why, sizeof(why));
	if (!err)
		err = check_obj(fds->flush, false, why, sizeof(why));
	for (int i = 0; !err && i < TIERPROBE_NPROGFD; i++)
		if (fds->progs[i] >= 0)
			err = check_obj(fds->progs[i], false, why, sizeof(why));
	if (!err && fds->progs[0] < 0) {
		snprintf(why, sizeof(why), "no sched_switch program");
		err = -EINVAL;
	}
	for (size_t i = 0; !err && i < fds->nlinks; i++)
		err = check_obj(fds->links[i], true, why, sizeof(why));
	if (err)
		goto fail;
	p = calloc(1, sizeof(*p));
	if (!p) {
		err = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = p->ncpus < 0 ? p->ncpus : -EINVAL;
		snprintf(why, sizeof(why), "possible CPUs: %s", strerror(-err));
		free(p);
		goto fail;
	}
	p->f = *fds;
	p->mode = fds->mode;
	snprintf(p->btf_note, sizeof(p->btf_note), "%s", btf_note ? btf_note : "");
	snprintf(p->io_note, sizeof(p->io_note), "%s", io_note ? io_note : "");
	snprintf(p->net_note, sizeof(p->net_note), "%s", net_note ? net_note : "");
	return p;
fail:
	if (errbuf && errbuf_sz)
		snprintf(errbuf, errbuf_sz, "%s", why);
	errno = -err;
	return NULL;
}

void tierprobe__forget(struct tierprobe *p)
{
	if (p && !p->skel)
		free(p);
	else
		tierprobe__destroy(p);
}
