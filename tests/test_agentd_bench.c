/* SPDX-License-Identifier: MIT */
/*
 * agentd's throughput against a direct pipe driver: a measurement, skipped
 * unless AGD_BENCH=1 (tests/agentd_test.h drives agentd).
 */
#include "agentd_test.h"

/* ---- throughput: the bridge against a direct pipe driver -------------------------- */

/* The trivial C agent for the measurement is this binary: started with
 * AGD_TEST_CHILD=echo it answers JSON lines and never reaches Criterion. */
static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			_exit(1);
		p += w;
		n -= (size_t)w;
	}
}

static void echo_child(void)
{
	static char in[1 << 16], out[1 << 16];
	size_t have = 0, olen = 0;

	for (;;) {
		ssize_t n = read(0, in + have, sizeof(in) - have);
		char *p = in, *end, *nl;

		if (n <= 0)
			_exit(0);
		have += (size_t)n;
		end = in + have;
		while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
			unsigned long long id = strtoull(p + 6, NULL, 10); /* {"id":N */

			if (olen + 64 > sizeof(out)) {
				write_all(1, out, olen);
				olen = 0;
			}
			olen += (size_t)sprintf(out + olen, "{\"id\":%llu,\"status\":\"ok\",\"payload\":\"ok\"}\n", id);
			p = nl + 1;
		}
		have = (size_t)(end - p);
		memmove(in, p, have);
		if (have == sizeof(in))
			_exit(2);
		if (olen) {
			write_all(1, out, olen);
			olen = 0;
		}
	}
}

__attribute__((constructor)) static void maybe_echo_child(void)
{
	const char *role = getenv("AGD_TEST_CHILD");

	if (role && !strcmp(role, "echo"))
		echo_child();
}

enum { BENCH_DEPTH = 64 };

/* The baseline: a minimal C driver feeding the child over pipes directly,
 * with the same requests and the same pipelining depth as agentd. */
static double direct_rate(char *const argv[], char *const envp[], int n)
{
	int in[2], out[2], sent = 0, got = 0;
	char buf[65536], req[128];
	int64_t t0;
	pid_t pid;

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	/* One warm-up round trip: interpreter start-up is not the bridge's. */
	snprintf(req, sizeof(req), "{\"id\":0,\"type\":\"upper\",\"payload\":\"warm up\"}\n");
	write_all(in[1], req, strlen(req));
	cr_assert_gt(read(out[0], buf, sizeof(buf)), 0);
	t0 = now_ns();
	while (got < n) {
		size_t len = 0;

		ssize_t r;

		while (sent < n && sent - got < BENCH_DEPTH) {
			sent++;
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"{\"id\":%d,\"type\":\"upper\",\"payload\":\"task %d\"}\n",
						sent, sent);
		}
		if (len)
			write_all(in[1], buf, len);
		r = read(out[0], buf, sizeof(buf));
		cr_assert_gt(r, 0);
		for (ssize_t i = 0; i < r; i++)
			got += buf[i] == '\n';
	}
	t0 = now_ns() - t0;
	close(in[1]);
	close(out[0]);
	waitpid(pid, NULL, 0);
	return n / (t0 * 1e-9);
}

/* The same child behind agentd, tasks fed through the SQ as tierd would
 * (at most BENCH_DEPTH in flight, published once per batch). */
static double bridged_rate(struct h *h, int n)
{
	int sent = 0, got = 0;
	int64_t t0;
	char p[32];

	expect(h_call(h, "upper", "warm up", 5000), TIER_ST_OK, NULL);
	t0 = now_ns();
	while (got < n) {
		while (sent < n && sent - got < BENCH_DEPTH) {
			struct tier_task_hdr hdr = { .type_len = 5, .attempt = 1 };
			int len = snprintf(p, sizeof(p), "task %d", ++sent);
			char *dst;
			int r = tier_prod_reserve(h->sq, (uint32_t)(sizeof(hdr) + 5 + (size_t)len),
						  (void **)&dst);

			if (r == -EAGAIN) {
				/* Full: tierd would queue it; send it next round. */
				sent--;
				break;
			}
			cr_assert_eq(r, 0, "%s", tier_strerror(r));
			memcpy(dst, &hdr, sizeof(hdr));
			memcpy(dst + sizeof(hdr), "upper", 5);
			memcpy(dst + sizeof(hdr) + 5, p, (size_t)len);
			cr_assert_eq(tier_prod_commit(h->sq, TIER_MSG_TASK, 0, ++h->next_id,
						      (uint32_t)(sizeof(hdr) + 5 + (size_t)len)), 0);
		}
		tier_prod_publish(h->sq);
		cr_assert(h_recv(h, 5000 * MS), "no result within 5 s");
		while (h_recv(h, 0))
			;
		for (size_t i = 0; i < h->nres; i++) {
			cr_assert_eq(h->res[i].status, TIER_ST_OK, "%s", h->res[i].payload);
			free(h->res[i].payload);
		}
		got += (int)h->nres;
		h->nres = 0;
	}
	return n / ((now_ns() - t0) * 1e-9);
}

/* CPU time (user + system) a process has used so far, in seconds. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	cr_assert_not_null(p);
	/* Fields 14 and 15 (utime, stime), counted after the comm field. */
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st), 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void bench(const char *name, char *const argv[], const char *const *extra_env, int n)
{
	const char *args[16];
	const char *env[8] = { "PATH=/usr/local/bin:/usr/bin:/bin" };
	double direct, bridged, cpu;
	size_t na = 0, ne = 1;
	struct h h;

	if (!getenv("AGD_BENCH"))
		cr_skip_test("a measurement, not a test: run with AGD_BENCH=1");
	for (size_t i = 0; extra_env && extra_env[i]; i++)
		env[ne++] = extra_env[i];
	env[ne] = NULL;
	/* Best of three on both sides: on a small shared machine one run
	 * measures the scheduler's luck as much as the code. */
	direct = 0;
	for (int i = 0; i < 3; i++) {
		double d = direct_rate(argv, (char *const *)env, n);

		direct = d > direct ? d : direct;
	}
	args[na++] = "--mode=stdio";
	args[na++] = "--pipeline=64";
	args[na++] = "--";
	for (size_t i = 0; argv[i]; i++)
		args[na++] = argv[i];
	args[na] = NULL;
	h_start_full(&h, args, extra_env, false);
	cpu = cpu_seconds(h.pid);
	bridged = 0;
	for (int i = 0; i < 3; i++) {
		double b = bridged_rate(&h, n);

		bridged = b > bridged ? b : bridged;
	}
	cpu = (cpu_seconds(h.pid) - cpu) / 3;
	h_free(&h);
	fprintf(stderr, "agentd bench %-8s direct %9.0f tasks/s   via agentd %9.0f tasks/s   ratio %.2f"
		"   (agentd: %.2f us of CPU per task)\n", name, direct, bridged, bridged / direct,
		cpu * 1e6 / n);
	cr_expect_geq(bridged / direct, 0.5, "%s: the bridge is the bottleneck", name);
}

Test(agentd_bench, should_bridge_a_c_agent_at_half_the_direct_rate_or_better, .timeout = 120)
{
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = 0;
	bench("C", (char *const[]){ exe, NULL }, (const char *const[]){ "AGD_TEST_CHILD=echo", NULL },
	      200000);
}

Test(agentd_bench, should_bridge_a_python_agent_at_half_the_direct_rate_or_better, .timeout = 120)
{
	bench("python", (char *const[]){ "/usr/bin/python3", (char *)repo_file("examples/agents/upper.py"),
					 NULL }, NULL, 50000);
}
