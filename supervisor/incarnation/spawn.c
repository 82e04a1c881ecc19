/* SPDX-License-Identifier: MIT */
/* Starting an incarnation: its argv and environment, fresh rings, doorbells
 * and pipes, the spawn into its agent's leaf; and signalling it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tier/proto.h"
#include "tier/ring.h"

#include "../cgroup/cgroup.h"
#include "../cgroup/cg_leaf.h"
#include "../cgroup/cg_spawn.h"
#include "../cgroup/cg_stat.h"
#include "../config/config.h"
#include "../spawn.h"
#include "internal.h"

/* ---- environment and argv ---------------------------------------------- */

struct strv {
	char  **v;
	size_t  n, cap;
};

static int strv_add(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int strv_add(struct strv *s, const char *fmt, ...)
{
	va_list ap;
	char *str;
	int r;

	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	va_start(ap, fmt);
	r = vasprintf(&str, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static bool env_has(const struct sup_agent_conf *c, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < c->n_env; i++)
		if (!strncmp(c->env[i], key, kl) && c->env[i][kl] == '=')
			return true;
	return false;
}

static int build_env(const struct sup_inc_fleet *f, const struct sup_inc_owner *own,
		     struct strv *env)
{
	const struct sup_agent_conf *c = own->conf;
	const struct sup_config *conf = *f->env.conf;
	int r = 0;

	for (size_t i = 0; i < c->n_env && !r; i++)
		r = strv_add(env, "%s", c->env[i]);
	if (!r && !env_has(c, "PATH"))
		r = strv_add(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!r && c->user && strspn(c->user, "0123456789") != strlen(c->user) && !env_has(c, "USER"))
		r = strv_add(env, "USER=%s", c->user);
	if (!r)
		r = strv_add(env, "TIER_AGENT=%s", own->name);
	if (!r)
		r = strv_add(env, "TIER_TIER=%d", own->tier);
	if (!r)
		r = strv_add(env, "TIER_INCARNATION=%u", own->n);
	if (!r)
		r = strv_add(env, "TIER_PROTO=%u", TIER_PROTO_VERSION);
	if (!r)
		r = strv_add(env, "TIER_SPIN_NS=%lld", (long long)conf->sup.spin_window_ns);
	return r;
}

/* Native agents run their own argv; the others run agentd, which runs it. */
static int build_argv(const struct sup_inc_fleet *f, const struct sup_inc_owner *own,
		      struct strv *argv)
{
	const struct sup_agent_conf *c = own->conf;
	int r = 0;

	if (c->mode != SUP_MODE_NATIVE) {
		r = strv_add(argv, "%s", f->env.agentd_path);
		if (!r)
			r = strv_add(argv, "--mode=%s", c->mode == SUP_MODE_STDIO ? "stdio" : "exec");
		if (!r)
			r = strv_add(argv, "--timeout-ms=%lld", (long long)(c->exec_timeout_ns / 1000000));
		if (!r)
			r = strv_add(argv, "--");
	}
	for (size_t i = 0; i < c->argc && !r; i++)
		r = strv_add(argv, "%s", c->argv[i]);
	return r;
}

static int make_pipe(int fds[2])
{
	/* Read end blocking: io_uring then waits for data instead of
	 * returning -EAGAIN. Both ends close-on-exec; the child gets a dup. */
	return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

/* A fresh window of the per-agent budgets (the dropped-line count stays). */
void sup_inc_budget_init(const struct sup_inc_fleet *f, const struct sup_inc_owner *own, int64_t now)
{
	const struct sup_supervisor_conf *s = &(*f->env.conf)->sup;
	const uint64_t lim[SUP_BUDGET_NKINDS] = {
		[SUP_BUDGET_RECORDS] = s->agent_record_rate,
		[SUP_BUDGET_LINES] = s->agent_log_rate,
		[SUP_BUDGET_BYTES] = s->agent_output_rate,
		[SUP_BUDGET_WAKES] = s->agent_wake_rate,
		[SUP_BUDGET_EVENTS] = s->agent_log_rate,
	};
	uint64_t dropped = own->budget->dropped_lines;

	sup_budget_init(own->budget, lim, s->agent_flood_kill_after_ns, now);
	own->budget->dropped_lines = dropped;
}

int sup_inc_spawn(struct sup_inc_fleet *f, const struct sup_inc_owner *own, char *err,
		  size_t errlen)
{
	const struct sup_inc_env *ienv = &f->env;
	const struct sup_agent_conf *c = own->conf;
	struct sup_spawn_req req = { 0 };
	struct sup_spawn_result res;
	struct strv argv = { 0 }, env = { 0 };
	struct tier_shm_opts so = { .sz = sizeof(so) };
	struct sup_inc *inc;
	char path[4096];
	int pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int r;

	inc = calloc(1, sizeof(*inc));
	if (!inc)
		return -ENOMEM;
	inc->fleet = f;
	inc->own = *own;
	inc->pidfd = inc->cq_bell = inc->sq_bell = inc->out[0].fd = inc->out[1].fd = -1;
	inc->n = own->n;
	so.sq_capacity = so.cq_capacity = c->ring_size;
	so.max_record = c->ring_size / 2 < TIER_RING_DEFAULT_MAX_REC ? c->ring_size / 2 :
			TIER_RING_DEFAULT_MAX_REC;
	inc->shm = tier_shm_create(&so);
	if (!inc->shm) {
		r = -errno;
		snprintf(err, errlen, "creating its ring: %s", tier_strerror(r));
		goto fail;
	}
	inc->cq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	inc->sq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (inc->cq_bell < 0 || inc->sq_bell < 0 || make_pipe(pout) < 0 || make_pipe(perr) < 0) {
		r = -errno;
		snprintf(err, errlen, "creating its doorbells and pipes: %s", strerror(errno));
		goto fail;
	}
	r = build_argv(f, own, &argv);
	if (!r)
		r = build_env(f, own, &env);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = sup_spawn_resolve(argv.v[0], NULL, path, sizeof(path));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", argv.v[0], strerror(-r));
		goto fail;
	}
	if (ienv->kill_taints_clone3 && sup_cg_leaf_killed(own->leaf)) {
		/* A killed leaf would kill the child clone3 puts in it: use a
		 * fresh one, or join by fork while it still empties. */
		if (sup_cg_leaf_recreate(ienv->cg, own->leaf) < 0)
			req.cg_flags |= SUP_CG_SPAWN_NO_CLONE3;
		else
			own->ops->leaf_recreated(own->ag);
	}
	req.leaf_fd = sup_cg_leaf_fd(own->leaf);
	req.path = path;
	req.argv = argv.v;
	req.envp = env.v;
	req.workdir = c->workdir;
	req.set_creds = c->has_uid || c->has_gid;
	req.uid = c->has_uid ? c->uid : getuid();
	req.gid = c->has_gid ? c->gid : getgid();
	req.caps_keep = c->caps;
	for (int i = 0; i < SUP_RLIMIT_COUNT && req.n_rlimits < SUP_SPAWN_MAX_RLIMITS; i++) {
		if (!c->rlimits[i].set)
			continue;
		req.rlimits[req.n_rlimits].resource = i;
		req.rlimits[req.n_rlimits].lim.rlim_cur = c->rlimits[i].cur;
		req.rlimits[req.n_rlimits].lim.rlim_max = c->rlimits[i].max;
		req.n_rlimits++;
	}
	req.fd_ring = tier_shm_fd(inc->shm);
	req.fd_cq_bell = inc->cq_bell;
	req.fd_sq_bell = inc->sq_bell;
	req.fd_stdin = ienv->devnull;
	req.fd_stdout = pout[1];
	req.fd_stderr = perr[1];
	req.pdeath_signal = SIGKILL;
	req.sandbox = c->sandbox;
	req.mntns_fd = *ienv->sandbox_fd;
	if (c->sandbox && *ienv->sandbox_fd < 0) {
		r = -*ienv->sandbox_err;
		snprintf(err, errlen, "sandbox unavailable: %s: %s (sandbox = no runs it without)",
			 sup_spawn_step_name(*ienv->sandbox_step), strerror(*ienv->sandbox_err));
		goto fail;
	}
	if (sup_cg_ctrl_live(ienv->cg, SUP_CG_MEMORY)) {
		struct sup_cg_mem_events me;

		if (sup_cg_read_mem_events(req.leaf_fd, &me) == 0)
			inc->oom_kills_at_spawn = me.oom_kill;
	}
	r = sup_spawn(&req, &res);
	close(pout[1]);
	close(perr[1]);
	pout[1] = perr[1] = -1;
	if (r < 0) {
		snprintf(err, errlen, "%s: %s: %s", path, sup_spawn_step_name(res.failed_step),
			 strerror(-r));
		goto fail;
	}
	strv_free(&argv);
	strv_free(&env);
	inc->ag = own->ag;
	inc->pid = res.pid;
	inc->pidfd = res.pidfd;
	inc->spawned_ns = sup_loop_now(f->env.loop);
	tier_prod_set_eventfd(tier_shm_prod(inc->shm), inc->sq_bell);
	sup_ev_init(&inc->pid_ev, sup_inc_pid_done, inc);
	sup_ev_init(&inc->bell_ev, sup_inc_bell_done, inc);
	sup_defer_init(&inc->drain, sup_inc_drain_fired, inc);
	sup_timer_init(&inc->resume, sup_inc_resume_fired, inc);
	sup_inc_budget_init(f, own, inc->spawned_ns);
	inc->out[0] = (struct sup_out){ .inc = inc, .fd = pout[0], .stream = 1 };
	inc->out[1] = (struct sup_out){ .inc = inc, .fd = perr[0], .stream = 2 };
	for (int i = 0; i < 2; i++) {
		sup_ev_init(&inc->out[i].ev, sup_inc_out_done, &inc->out[i]);
		sup_inc_out_arm(&inc->out[i]);
	}
	/* tierd sleeps on the CQ from the start: the HELLO rings the bell. */
	tier_cons_prepare_sleep(tier_shm_cons(inc->shm), TIER_SLEEP_EVENTFD, NULL);
	sup_loop_poll(f->env.loop, &inc->bell_ev, inc->cq_bell, POLLIN, true);
	sup_loop_poll(f->env.loop, &inc->pid_ev, inc->pidfd, POLLIN, false);
	sup_defer_queue(f->env.loop, &inc->drain);
	own->ops->spawned(own->ag, inc);
	return 0;

fail:
	strv_free(&argv);
	strv_free(&env);
	for (int i = 0; i < 2; i++) {
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	sup_inc_free(inc);
	return r;
}

int sup_inc_signal(struct sup_inc *inc, int sig)
{
	if (syscall(SYS_pidfd_send_signal, inc->pidfd, sig, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno;
	return 0;
}
