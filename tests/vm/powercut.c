/* SPDX-License-Identifier: MIT */
/*
 * VM: the task journal across a power cut. Driven by tests/vm/powercut.sh
 * on the host, which boots the VM twice on the same virtio-blk disk
 * (/dev/vda, cache=none) and kills qemu with SIGKILL in between; the init
 * runs this program only when asked for (tierd.only=powercut). The kernel
 * command line says what to do: tierd.pc=MODE:PHASE, MODE a journal_sync
 * value (off, batch, always) or "none" (no journal keys: the harness
 * against a tierd without a journal).
 *
 *   load   mke2fs -t ext4 /dev/vda, mount it, start tierd with its
 *          journal_dir there and an echo agent (this program again), then
 *          submit detached tasks with payload "pc-SEQ", eight in flight on
 *          one connection, and write "A SEQ TASK" to /dev/ttyS1 for each
 *          acknowledgement: the host reads that as it goes, and what it has
 *          read when it kills qemu is what was acknowledged.
 *   check  mount /dev/vda again (ext4 recovers its own journal), start
 *          tierd on the same journal_dir (it replays), read the host's list
 *          of acknowledged "SEQ TASK" lines from /dev/vdb, and ask tierd
 *          for each task's result until it is final: each must be there,
 *          "ok", and carry its own payload back (the id is that task's);
 *          ids of new tasks must not collide with them. With batch and
 *          always a missing or wrong one fails; off may lose tasks (said,
 *          not failed), but a wrong result or an id given twice fails.
 */
#include <jansson.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "../../include/tier/agent.h"
#include "vmtest.h"

#define DISK     "/dev/vda"
#define ACKDISK  "/dev/vdb"
#define MNT      "/mnt/pc"
#define SOCK     "/run/tierd-pc.sock"
#define CONF     "/tmp/tierd-pc.ini"
#define LOG      "/tmp/tierd-pc.log"
#define TOTAL    100000 /* more than the host lets it submit before the cut */
#define WINDOW   8

static char mode[16], test[48];

static int worker_echo(void)
{
	struct tier_agent *a = tier_agent_open(NULL);
	struct tier_task t;
	int r;

	if (!a)
		return 1;
	while ((r = tier_agent_next(a, &t, -1)) >= 0)
		if (r == 1 && tier_agent_reply(a, &t, TIER_ST_OK, -1, t.payload, t.len) < 0)
			break;
	return 1;
}

/* tierd.pc=MODE:PHASE from the kernel command line: the phase, or NULL. */
static const char *phase_arg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cmdline", "re");
	char *p, *colon;

	if (!f)
		return NULL;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	p = strstr(buf, "tierd.pc=");
	if (!p)
		return NULL;
	p += 9;
	p[strcspn(p, " \n")] = 0;
	colon = strchr(p, ':');
	if (!colon || colon - p >= (long)sizeof(mode))
		return NULL;
	memcpy(mode, p, (size_t)(colon - p));
	mode[colon - p] = 0;
	snprintf(test, sizeof(test), "powercut_%s", mode);
	return colon + 1;
}

static int write_conf(const char *self)
{
	FILE *f = fopen(CONF, "we");

	if (!f)
		return -errno;
	fprintf(f, "[supervisor]\ncgroup_root = tierd-pc\ncontrol_socket = " SOCK "\n"
		"metrics_address = off\nlog_level = notice\noptimiser = off\n"
		"task_queue_limit = 65536\nresult_retention = 1h\nresult_retention_max = 1000000\n");
	if (strcmp(mode, "none"))
		fprintf(f, "journal = yes\njournal_dir = " MNT "/journal\njournal_sync = %s\n", mode);
	fprintf(f, "[agent echo]\ntier = 1\nexec = %s --worker\nuser = 0\ngroup = 0\n", self);
	return fclose(f) ? -errno : 0;
}

static int run_tierd(const char *arg, bool wait_it)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int fd = open(LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl("/opt/tierd/bin/tierd", "tierd", "-c", CONF, arg, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || !wait_it)
		return pid;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int connect_sock(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };
	struct timeval tv = { .tv_sec = 30 };

	for (int i = 0; i < 600; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			/* A daemon that stops answering fails the test, never hangs it. */
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			return fd;
		}
		if (fd >= 0)
			close(fd);
		vt_sleep(0.1);
	}
	return -1;
}

/* Reads reply lines from one connection. */
struct conn {
	int fd;
	size_t len;
	char buf[1 << 16];
};

static json_t *next_reply(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t r;

		if (nl) {
			json_t *j;

			*nl = 0;
			j = json_loads(c->buf, 0, NULL);
			c->len -= (size_t)(nl + 1 - c->buf);
			memmove(c->buf, nl + 1, c->len);
			return j;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r <= 0)
			return NULL;
		c->len += (size_t)r;
	}
}

static json_t *call(struct conn *c, const char *cmd, json_t *args)
{
	json_t *req = json_pack("{s:i, s:s, s:o}", "id", 1, "cmd", cmd, "args", args);
	char *line = json_dumps(req, JSON_COMPACT);
	json_t *reply = NULL;

	json_decref(req);
	if (line && write(c->fd, line, strlen(line)) == (ssize_t)strlen(line) && write(c->fd, "\n", 1) == 1)
		reply = next_reply(c);
	free(line);
	return reply;
}

static int wait_ready(struct conn *c)
{
	for (int i = 0; i < 600; i++) {
		json_t *r = call(c, "agents", json_object());
		char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
		bool ok = s && strstr(s, "\"state\":\"ready\"");

		free(s);
		json_decref(r);
		if (ok)
			return 0;
		vt_sleep(0.1);
	}
	return -1;
}

static int send_submit(struct conn *c, long seq)
{
	char req[256];
	int n = snprintf(req, sizeof(req),
			 "{\"id\":%ld,\"cmd\":\"submit\",\"args\":{\"agent\":\"echo\",\"type\":\"pc\","
			 "\"payload\":\"pc-%ld\",\"detach\":true}}\n", seq, seq);

	return write(c->fd, req, (size_t)n) == n ? 0 : -1;
}

static int phase_load(void)
{
	static struct conn c;
	struct termios tio;
	long seq = 0, acked = 0;
	int tty;
	FILE *acks;

	if (system("/opt/e2fsprogs/mke2fs -q -F -t ext4 " DISK " >/tmp/mke2fs.log 2>&1")) {
		system("cat /tmp/mke2fs.log");
		vt_fail(test, "mke2fs -t ext4 " DISK " failed");
		return 1;
	}
	mkdir("/mnt", 0755);
	mkdir(MNT, 0755);
	if (mount(DISK, MNT, "ext4", 0, NULL) < 0) {
		vt_fail(test, "mount " DISK " on " MNT ": %s", strerror(errno));
		return 1;
	}
	tty = open("/dev/ttyS1", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (tty < 0 || tcgetattr(tty, &tio) < 0) {
		vt_fail(test, "/dev/ttyS1 (the host's acknowledgement log): %s", strerror(errno));
		return 1;
	}
	cfmakeraw(&tio);
	tcsetattr(tty, TCSANOW, &tio);
	acks = fdopen(tty, "w");
	if (strcmp(mode, "none") && run_tierd("--check-config", true) != 0) {
		fprintf(acks, "PCUT NOJOURNAL\n");
		fflush(acks);
		system("tail -5 " LOG);
		vt_pass(test, "SKIP: this tierd has no journal (its config check refused journal_sync)");
		return 0;
	}
	if (run_tierd(NULL, false) < 0 || (c.fd = connect_sock()) < 0 || wait_ready(&c) < 0) {
		system("tail -20 " LOG);
		vt_fail(test, "tierd did not start with its journal on ext4 (" LOG ")");
		return 1;
	}
	fprintf(acks, "PCUT READY\n");
	fflush(acks);
	vt_note("%s: submitting; the host cuts the power", test);
	while (seq < WINDOW)
		send_submit(&c, ++seq);
	while (acked < TOTAL) {
		json_t *r = next_reply(&c), *id, *task;

		if (!r) {
			vt_fail(test, "the control connection closed after %ld acknowledgements", acked);
			return 1;
		}
		id = json_object_get(r, "id");
		task = json_object_get(json_object_get(r, "result"), "task");
		if (!json_is_true(json_object_get(r, "ok")) || !json_is_integer(id) || !json_is_integer(task)) {
			char *s = json_dumps(r, JSON_COMPACT);

			vt_fail(test, "a submit was refused: %.200s", s ? s : "?");
			return 1;
		}
		/* The acknowledgement is durable under the mode: tell the host at once. */
		fprintf(acks, "A %lld %lld\n", (long long)json_integer_value(id),
			(long long)json_integer_value(task));
		fflush(acks);
		json_decref(r);
		acked++;
		if (seq < TOTAL)
			send_submit(&c, ++seq);
	}
	fprintf(acks, "PCUT END\n");
	fflush(acks);
	for (;;)
		pause();
}

struct ack {
	long seq;
	long long task;
};

static int read_acks(struct ack **ret, size_t *ret_n)
{
	FILE *f = fopen(ACKDISK, "re");
	struct ack *v = NULL;
	size_t n = 0, cap = 0;
	char line[128];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f) && line[0] != 0 && line[0] != '.') {
		struct ack a;

		if (sscanf(line, "%ld %lld", &a.seq, &a.task) != 2)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				return -ENOMEM;
		}
		v[n++] = a;
	}
	fclose(f);
	*ret = v;
	*ret_n = n;
	return 0;
}

static int cmp_task(const void *x, const void *y)
{
	const struct ack *a = x, *b = y;

	return a->task < b->task ? -1 : a->task > b->task;
}

/* 0 final and right, 1 lost (ENOENT), 2 wrong (status, payload), 3 still pending. */
static int check_one(struct conn *c, const struct ack *a, double until, char *why, size_t wlen)
{
	char want[32];

	snprintf(want, sizeof(want), "pc-%ld", a->seq);
	for (;;) {
		json_t *r = call(c, "result", json_pack("{s:I}", "task", (json_int_t)a->task));
		json_t *res = json_object_get(r, "result");
		const char *st = json_string_value(json_object_get(res, "status"));
		const char *pl = json_string_value(json_object_get(res, "payload"));
		const char *code = json_string_value(json_object_get(r, "code"));
		int v = -1;

		if (!r)
			v = 1, snprintf(why, wlen, "no reply");
		else if (!json_is_true(json_object_get(r, "ok")))
			v = 1, snprintf(why, wlen, "%s", code ? code : "error");
		else if (st && !strcmp(st, "pending"))
			v = vt_now() > until ? 3 : -1;
		else if (!st || strcmp(st, "ok") || !pl || strcmp(pl, want))
			v = 2, snprintf(why, wlen, "status %s, payload %.40s, want %s", st ? st : "?",
					pl ? pl : "?", want);
		else
			v = 0;
		json_decref(r);
		if (v >= 0)
			return v;
		vt_sleep(0.05);
	}
}

static int phase_check(void)
{
	static struct conn c;
	size_t n = 0, lost = 0, wrong = 0, pending = 0, dup = 0;
	struct ack *acks = NULL;
	char why[160] = "", first[200] = "";
	double until;

	mkdir("/mnt", 0755);
	mkdir(MNT, 0755);
	if (mount(DISK, MNT, "ext4", 0, NULL) < 0) {
		vt_fail(test, "mount " DISK " on " MNT " after the power cut: %s", strerror(errno));
		return 1;
	}
	if (read_acks(&acks, &n) < 0 || n == 0) {
		vt_fail(test, "no acknowledged task in the host's list on " ACKDISK);
		return 1;
	}
	qsort(acks, n, sizeof(*acks), cmp_task);
	for (size_t i = 1; i < n; i++)
		dup += acks[i].task == acks[i - 1].task;
	if (run_tierd(NULL, false) < 0 || (c.fd = connect_sock()) < 0 || wait_ready(&c) < 0) {
		system("tail -20 " LOG);
		vt_fail(test, "tierd did not start again on the journal (" LOG ")");
		return 1;
	}
	system("grep -i journal " LOG " | tail -5 | sed 's/^/VMTEST NOTE tierd: /'");
	until = vt_now() + 90;
	for (size_t i = 0; i < n; i++) {
		int v = check_one(&c, &acks[i], until, why, sizeof(why));

		lost += v == 1;
		wrong += v == 2;
		pending += v == 3;
		if (v && !first[0])
			snprintf(first, sizeof(first), "task %lld (seq %ld): %s", acks[i].task, acks[i].seq,
				 v == 3 ? "still pending after 90 s" : why);
	}
	/* A new task's id must not be one an acknowledged task already holds. */
	for (int k = 0; k < 20; k++) {
		json_t *r = call(&c, "submit", json_pack("{s:s, s:s, s:s, s:b}", "agent", "echo", "type",
							  "pc", "payload", "new", "detach", 1));
		struct ack key = { .task = json_integer_value(json_object_get(json_object_get(r, "result"),
									       "task")) };

		if (bsearch(&key, acks, n, sizeof(*acks), cmp_task))
			dup++;
		json_decref(r);
	}
	system("du -sk " MNT "/journal 2>/dev/null | sed 's/^/VMTEST NOTE journal size KiB: /'");
	printf("PCUT RESULT %s acked %zu lost %zu wrong %zu pending %zu dup %zu\n", mode, n, lost, wrong,
	       pending, dup);
	if (!strcmp(mode, "none")) {
		/* No journal: everything is lost and ids start again; shown, never failed. */
		vt_pass(test, "no journal: %zu acknowledged, %zu lost, %zu ids given again", n, lost, dup);
	} else if (!strcmp(mode, "off")) {
		/* Lost tasks are what off may cost: shown. Their ids are never given
		 * again (the id reservation is durable before they are acknowledged),
		 * so a result that is not its own task's, or a new task with an
		 * acknowledged one's id, fails as in every mode. */
		if (wrong || dup)
			vt_fail(test, "%zu acknowledged, %zu with another task's result, %zu ids given "
				"twice (a new task got a lost one's id): %s", n, wrong, dup, first);
		else
			vt_pass(test, "%zu acknowledged before the cut, %zu lost (journal_sync=off may lose), "
				"%zu pending, the rest final exactly once; no id given twice", n, lost,
				pending);
	} else if (lost || wrong || pending || dup) {
		vt_fail(test, "%zu acknowledged before the cut: %zu lost, %zu wrong, %zu not final, %zu ids "
			"given twice; first: %s", n, lost, wrong, pending, dup, first);
	} else {
		vt_pass(test, "all %zu tasks acknowledged before the cut have exactly one final result, "
			"their own payload", n);
	}
	free(acks);
	return 0;
}

int main(int argc, char **argv)
{
	char cmdline[4096], self[PATH_MAX];
	const char *phase;

	if (argc >= 2 && !strcmp(argv[1], "--worker"))
		return worker_echo();
	phase = phase_arg(cmdline, sizeof(cmdline));
	if (!phase) {
		printf("VMTEST SKIP powercut: run by tests/vm/powercut.sh (no tierd.pc= on the command line)\n");
		return 0;
	}
	if (access("/opt/tierd/bin/tierd", X_OK) < 0) {
		printf("VMTEST SKIP %s: tierd is not in the image\n", test);
		return 0;
	}
	snprintf(self, sizeof(self), "/vmtests/%s", basename(argv[0]));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (write_conf(self) < 0) {
		vt_fail(test, "cannot write " CONF);
		return 1;
	}
	if (!strcmp(phase, "load"))
		return phase_load();
	if (!strcmp(phase, "check"))
		return phase_check();
	vt_fail(test, "unknown phase '%s'", phase);
	return 1;
}
