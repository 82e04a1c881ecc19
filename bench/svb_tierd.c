/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "svb_tierd.h"

/* A reply that takes longer than this means tierd is stuck. */
#define CALL_TIMEOUT_S 20

int svb_tierd_prepare(struct svb_tierd *t, const struct svb_env *env, unsigned n, unsigned seq)
{
	const char *sb;
	FILE *f;

	memset(t, 0, sizeof(*t));
	t->proc.gate = t->proc.errp = -1;
	t->env = env;
	t->n = n;
	t->fd = -1;
	sup_ctl_buf_init(&t->in, 0);
	snprintf(t->cg_rel, sizeof(t->cg_rel), "%s/tierd-%u", env->top_rel, seq);
	snprintf(t->cg, sizeof(t->cg), "%s/%s", env->mount, t->cg_rel);
	if ((size_t)snprintf(t->sock, sizeof(t->sock), "%s/tierd-%u.sock", env->dir, seq) >=
	    sizeof(t->sock))
		return -ENAMETOOLONG;
	snprintf(t->conf, sizeof(t->conf), "%s/tierd-%u.ini", env->dir, seq);
	snprintf(t->log, sizeof(t->log), "%s/tierd-%u.log", env->dir, seq);
	t->pids = calloc(n, sizeof(*t->pids));
	if (!t->pids)
		return -ENOMEM;
	f = fopen(t->conf, "we");
	if (!f)
		return -errno;
	fprintf(f, "[supervisor]\ncgroup_root = %s\ncontrol_socket = %s\nlog_level = warning\n"
		"metrics_address = off\njournal_dir = %s.journal\n", t->cg_rel, t->sock, t->sock);
	sb = getenv("BENCH_SANDBOX");
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "\n[agent a%04u]\ntier = %u\nexec = %s\nrestart = always\n%s", i, 1 + i % 4,
			env->agent, sb && !strcmp(sb, "no") ? "sandbox = no\n" : "");
	return fclose(f) ? -errno : 0;
}

int svb_tierd_arm(struct svb_tierd *t)
{
	char *argv[] = { (char *)t->env->tierd, "-c", t->conf, NULL };

	return svb_spawn_park(&t->proc, argv, NULL, NULL, t->log);
}

int svb_tierd_start(struct svb_tierd *t)
{
	pid_t pid = t->proc.pid;
	int r = svb_spawn_go(&t->proc);

	if (r < 0)
		return r;
	t->pid = pid;
	return 0;
}

static int try_connect(struct svb_tierd *t)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CALL_TIMEOUT_S };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(a.sun_path, t->sock, strlen(t->sock) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return e == ENOENT || e == ECONNREFUSED ? 0 : -e;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t->fd = fd;
	t->connected_ns = bench_now_ns();
	return 1;
}

static int send_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One request over the persistent connection; the reply's result (a new
 * reference) or NULL with errno set (EPROTO: tierd refused, said in err). */
static json_t *call(struct svb_tierd *t, const char *cmd, json_t *args, char *err, size_t errlen)
{
	uint64_t id = ++t->next_id;
	json_t *req = sup_ctl_msg_request(id, cmd, args);
	size_t len = 0;
	int r;

	if (!req || sup_ctl_encode(req, t->out, t->outcap, &len) < 0) {
		json_decref(req);
		errno = ENOMEM;
		return NULL;
	}
	if (len > t->outcap) {
		char *b = realloc(t->out, len);

		if (!b || sup_ctl_encode(req, b, len, &len) < 0) {
			t->out = b ? b : t->out;
			json_decref(req);
			errno = ENOMEM;
			return NULL;
		}
		t->out = b;
		t->outcap = len;
	}
	json_decref(req);
	r = send_all(t->fd, t->out, len);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	for (;;) {
		struct sup_ctl_msg m;
		const char *line;
		size_t ll, space;
		char *p;
		ssize_t got;

		while ((r = sup_ctl_buf_next(&t->in, &line, &ll)) == 1) {
			json_t *res;

			if (sup_ctl_parse_msg(line, ll, err, errlen, &m) < 0) {
				errno = EPROTO;
				return NULL;
			}
			if (m.kind != SUP_CTL_MSG_REPLY || !m.has_id || m.id != id) {
				json_decref(m.root);
				continue;
			}
			if (!m.ok) {
				snprintf(err, errlen, "%s: %s (%s)", cmd, m.error, m.code);
				json_decref(m.root);
				errno = EPROTO;
				return NULL;
			}
			res = json_incref(m.result);
			json_decref(m.root);
			return res;
		}
		if (r < 0 || (r = sup_ctl_buf_space(&t->in, &p, &space)) < 0) {
			errno = -r;
			return NULL;
		}
		do
			got = recv(t->fd, p, space, 0);
		while (got < 0 && errno == EINTR && !*t->env->stop);
		if (got <= 0) {
			if (got == 0)
				errno = ECONNRESET;
			return NULL;
		}
		sup_ctl_buf_commit(&t->in, (size_t)got);
	}
}

static int exited(struct svb_tierd *t)
{
	int st;

	if (t->pid > 0 && waitpid(t->pid, &st, WNOHANG) == t->pid) {
		t->pid = 0;
		return 1;
	}
	return 0;
}

int svb_tierd_ready_count(struct svb_tierd *t)
{
	char err[256];
	json_t *res, *tiers, *tier, *root;
	size_t i;
	int n = 0, r;

	if (t->fd < 0) {
		if (exited(t))
			return -ECHILD;
		r = try_connect(t);
		if (r <= 0)
			return r;
	}
	res = call(t, "status", NULL, err, sizeof(err));
	if (!res)
		return exited(t) ? -ECHILD : -errno;
	tiers = json_object_get(res, "tiers");
	json_array_foreach(tiers, i, tier)
		n += (int)json_integer_value(json_object_get(json_object_get(tier, "states"), "ready"));
	/* tierd says where its tree is; keep that for cpu.stat. */
	root = json_object_get(json_object_get(res, "cgroup"), "root");
	if (json_is_string(root) && json_string_value(root)[0] == '/')
		snprintf(t->cg, sizeof(t->cg), "%s", json_string_value(root));
	json_decref(res);
	return n;
}

int svb_tierd_agents(struct svb_tierd *t)
{
	char err[256];
	json_t *res = call(t, "agents", NULL, err, sizeof(err)), *a;
	size_t i;

	if (!res)
		return -errno;
	memset(t->pids, 0, t->n * sizeof(*t->pids));
	json_array_foreach(json_object_get(res, "agents"), i, a) {
		const char *name = json_string_value(json_object_get(a, "name"));
		const char *state = json_string_value(json_object_get(a, "state"));
		json_t *pid = json_object_get(a, "pid");
		unsigned k;

		if (!name || !state || sscanf(name, "a%u", &k) != 1 || k >= t->n)
			continue;
		if (!strcmp(state, "ready") && json_is_integer(pid))
			t->pids[k] = (pid_t)json_integer_value(pid);
	}
	json_decref(res);
	return 0;
}

static json_t *events_after(struct svb_tierd *t, uint64_t after, uint64_t *ret_last)
{
	char err[256];
	json_t *res = call(t, "events", json_pack("{s:I}", "after", (json_int_t)after), err,
			   sizeof(err));

	if (res)
		*ret_last = (uint64_t)json_integer_value(json_object_get(res, "last"));
	return res;
}

int svb_tierd_mark(struct svb_tierd *t)
{
	uint64_t last;
	json_t *res = events_after(t, UINT32_MAX, &last);

	if (!res)
		return -errno;
	json_decref(res);
	t->mark = last;
	return 0;
}

int svb_tierd_ready_since_mark(struct svb_tierd *t, unsigned i)
{
	char name[16];
	uint64_t last;
	json_t *res = events_after(t, t->mark, &last), *ev;
	size_t k;
	int found = 0;

	if (!res)
		return -errno;
	snprintf(name, sizeof(name), "a%04u", i);
	json_array_foreach(json_object_get(res, "events"), k, ev) {
		const char *kind = json_string_value(json_object_get(ev, "kind"));
		const char *agent = json_string_value(json_object_get(ev, "agent"));
		const char *to = json_string_value(json_object_get(ev, "to"));

		if (kind && agent && to && !strcmp(kind, "agent_state") && !strcmp(agent, name) &&
		    !strcmp(to, "ready"))
			found = 1;
	}
	json_decref(res);
	return found;
}

int svb_tierd_restart_phases(struct svb_tierd *t, unsigned i, int64_t kill_rt_ns, double ret_ms[3])
{
	static const char *const kinds[3] = { "agent_exit", "spawned", "agent_state" };
	char name[16];
	uint64_t last;
	json_t *res = events_after(t, t->mark, &last), *ev;
	size_t k;

	if (!res)
		return -errno;
	snprintf(name, sizeof(name), "a%04u", i);
	for (int p = 0; p < 3; p++)
		ret_ms[p] = -1;
	json_array_foreach(json_object_get(res, "events"), k, ev) {
		const char *kind = json_string_value(json_object_get(ev, "kind"));
		const char *agent = json_string_value(json_object_get(ev, "agent"));
		const char *to = json_string_value(json_object_get(ev, "to"));
		double ts = json_number_value(json_object_get(ev, "ts"));

		if (!kind || !agent || strcmp(agent, name))
			continue;
		for (int p = 0; p < 3; p++)
			if (!strcmp(kind, kinds[p]) && ret_ms[p] < 0 &&
			    (p < 2 || (to && !strcmp(to, "ready"))))
				ret_ms[p] = (ts - (double)kill_rt_ns * 1e-9) * 1e3;
	}
	json_decref(res);
	return 0;
}

static void release(struct svb_tierd *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	sup_ctl_buf_free(&t->in);
	free(t->out);
	free(t->pids);
	t->out = NULL;
	t->pids = NULL;
}

int svb_tierd_stop(struct svb_tierd *t, int64_t timeout_ns, int64_t *ret_ns, char *why, size_t whylen)
{
	char rootdir[PATH_MAX];
	int64_t t0;
	int st = 0, left = 0, npids;
	pid_t *pids;

	why[0] = 0;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	snprintf(rootdir, sizeof(rootdir), "%s/%s", t->env->mount, t->cg_rel);
	/* Every process in tierd's tree now (its agents, tierd itself): none
	 * may outlive tierd. Read from the cgroups, not from tierd. */
	pids = calloc(t->n + 64, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	npids = svb_cg_tree_pids(rootdir, pids, t->n + 64);
	if (npids > (int)t->n + 64)
		npids = (int)t->n + 64;
	t0 = bench_now_ns();
	if (t->pid > 0) {
		kill(t->pid, SIGTERM);
		st = svb_wait_exit(t->pid, timeout_ns);
		*ret_ns = bench_now_ns() - t0;
		if (st < 0) {
			snprintf(why, whylen, "tierd did not exit within %.0f s", (double)timeout_ns * 1e-9);
			kill(t->pid, SIGKILL);
			svb_wait_exit(t->pid, 5 * SVB_SEC);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			snprintf(why, whylen, "tierd ended with status 0x%x", st);
		}
		t->pid = 0;
	} else {
		*ret_ns = 0;
		snprintf(why, whylen, "tierd was not running");
	}
	for (int i = 0; i < npids; i++)
		/* A pid reused since would not be in tierd's tree. */
		if (svb_pid_alive(pids[i]) && svb_pid_in_cg(pids[i], t->cg_rel) == 1)
			left++;
	free(pids);
	if (npids < (int)t->n && !why[0])
		snprintf(why, whylen, "only %d processes in tierd's tree before the stop", npids);
	if (left && !why[0])
		snprintf(why, whylen, "%d of its %d processes still running after tierd exited", left,
			 npids);
	if (access(rootdir, F_OK) == 0) {
		if (!why[0])
			snprintf(why, whylen, "cgroup %s left behind (%s)", rootdir,
				 svb_cg_populated(rootdir) == 1 ? "with processes" : "empty");
		svb_cg_kill(rootdir, 10 * SVB_SEC);
		svb_cg_remove(rootdir);
	}
	if (access(t->sock, F_OK) == 0 && !why[0])
		snprintf(why, whylen, "control socket %s left behind", t->sock);
	unlink(t->sock);
	if (why[0])
		bench_log_tail(t->log);
	release(t);
	return why[0] ? -EBUSY : 0;
}

int svb_tierd_cpu(const struct svb_tierd *t, int64_t *ret_cg_ns, int64_t *ret_sched_ns)
{
	char leaf[PATH_MAX + 16];

	snprintf(leaf, sizeof(leaf), "%s/supervisor", t->cg);
	*ret_cg_ns = svb_cg_usage_ns(leaf);
	*ret_sched_ns = t->pid > 0 ? bench_pid_cpu_ns(t->pid) : -ESRCH;
	return *ret_cg_ns < 0 ? (int)*ret_cg_ns : 0;
}

void svb_tierd_abandon(struct svb_tierd *t)
{
	char rootdir[PATH_MAX];

	bench_log_tail(t->log);
	if (t->proc.gate >= 0)
		svb_spawn_cancel(&t->proc);
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		svb_wait_exit(t->pid, 5 * SVB_SEC);
		t->pid = 0;
	}
	snprintf(rootdir, sizeof(rootdir), "%s/%s", t->env->mount, t->cg_rel);
	svb_cg_kill(rootdir, 10 * SVB_SEC);
	svb_cg_remove(rootdir);
	unlink(t->sock);
	release(t);
}
