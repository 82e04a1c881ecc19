/* SPDX-License-Identifier: MIT */
/* handover fd table: every kind validated and a wrong one refused, a
 * replaced or closed fd refused, close-on-exec cleared by finish and put back
 * by abort and commit, unclaimed fds closed by commit and nothing on failure. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "handover_test.h"
#include "supervisor/handover/handover.h"

#define TAG_FDS SUP_HO_TAG('f', 'd', 's', ' ')

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static bool cloexec(int fd)
{
	return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

static int unix_listener(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	/* abstract name: nothing to clean up */
	snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "tierd-ho-test-%d", getpid());
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %m");
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

static int tcp_listener(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %m");
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/* The smallest program of a type: r0 = 0; exit. -errno when BPF is denied. */
static int tiny_prog(enum bpf_prog_type type)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(type, NULL, "GPL", insns, 2, NULL);

	return fd < 0 ? -errno : fd;
}

struct kinds {
	int fd[SUP_HO_FD_KIND_END];
	int pipe_w, sock_peer;
	bool bpf;
};

/* One open fd of every kind (the bpf ones only where BPF is allowed). */
static void open_kinds(struct kinds *k)
{
	int p[2], sp[2];

	memset(k, 0xff, sizeof(*k));
	k->fd[SUP_HO_FD_PIDFD] = (int)syscall(SYS_pidfd_open, getpid(), 0);
	cr_assert_geq(k->fd[SUP_HO_FD_PIDFD], 0, "pidfd_open: %m");
	k->fd[SUP_HO_FD_MEMFD] = memfd_create("ho-test", MFD_CLOEXEC);
	k->fd[SUP_HO_FD_EVENTFD] = eventfd(0, EFD_CLOEXEC);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	k->fd[SUP_HO_FD_PIPE] = p[0];
	k->pipe_w = p[1];
	k->fd[SUP_HO_FD_UNIX_LISTEN] = unix_listener();
	k->fd[SUP_HO_FD_TCP_LISTEN] = tcp_listener();
	k->fd[SUP_HO_FD_DIR] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	k->fd[SUP_HO_FD_FILE] = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	k->fd[SUP_HO_FD_ANY] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	k->fd[SUP_HO_FD_UNIX_STREAM] = sp[0];
	k->sock_peer = sp[1];
	k->fd[SUP_HO_FD_BPF_MAP] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ho_test", 4, 8, 1, NULL);
	k->fd[SUP_HO_FD_BPF_PROG] = tiny_prog(BPF_PROG_TYPE_RAW_TRACEPOINT);
	k->bpf = k->fd[SUP_HO_FD_BPF_MAP] >= 0 && k->fd[SUP_HO_FD_BPF_PROG] >= 0;
	if (k->bpf)
		k->fd[SUP_HO_FD_BPF_LINK] = bpf_raw_tracepoint_open("sys_enter",
								    k->fd[SUP_HO_FD_BPF_PROG]);
	k->bpf = k->bpf && k->fd[SUP_HO_FD_BPF_LINK] >= 0;
	for (int i = SUP_HO_FD_PIDFD; i < SUP_HO_FD_KIND_END; i++)
		if (k->fd[i] < 0 && !(i >= SUP_HO_FD_BPF_MAP && i <= SUP_HO_FD_BPF_PROG))
			cr_assert_fail("no fd of kind %s", sup_ho_fd_kind_name(i));
}

static void close_kinds(struct kinds *k)
{
	for (int i = SUP_HO_FD_PIDFD; i < SUP_HO_FD_KIND_END; i++)
		if (k->fd[i] >= 0)
			close(k->fd[i]);
	close(k->pipe_w);
	close(k->sock_peer);
}

static bool kind_present(const struct kinds *k, int kind)
{
	return k->fd[kind] >= 0;
}

/* A state of one section referring to every present kind's fd as kind_of(i). */
static int state_of(const struct kinds *k, int (*kind_of)(int))
{
	struct sup_ho_w *w = sup_ho_w_new();
	int fd;

	sup_ho_w_begin(w, TAG_FDS, 1);
	for (int i = SUP_HO_FD_PIDFD; i < SUP_HO_FD_KIND_END; i++)
		if (kind_present(k, i))
			sup_ho_w_fd(w, k->fd[i], kind_of(i));
	sup_ho_w_end(w);
	fd = ho_finish(w);
	sup_ho_w_free(w);
	return fd;
}

static int same(int i) { return i; }

Test(handover_fd, should_validate_every_kind_and_give_each_fd_back)
{
	struct kinds k;
	struct sup_ho_r *r;
	char err[256] = "";
	int st;

	open_kinds(&k);
	if (!k.bpf)
		cr_log_warn("bpf kinds untested here: BPF is not allowed (%s)", strerror(-k.fd[SUP_HO_FD_BPF_PROG]));
	st = state_of(&k, same);
	r = sup_ho_r_open(st, err, sizeof(err));
	cr_assert_not_null(r, "open: %s", err);
	cr_assert(sup_ho_r_section(r, TAG_FDS, NULL));
	for (int i = SUP_HO_FD_PIDFD; i < SUP_HO_FD_KIND_END; i++) {
		int fd = -2;

		if (!kind_present(&k, i))
			continue;
		cr_expect(sup_ho_r_fd(r, i, &fd), "%s: %s", sup_ho_fd_kind_name(i), sup_ho_r_error(r));
		cr_expect_eq(fd, k.fd[i], "%s", sup_ho_fd_kind_name(i));
	}
	sup_ho_r_free(r);
	close(st);
	close_kinds(&k);
	if (!k.bpf)
		cr_skip_test("bpf map, prog and link kinds need BPF (root), absent here");
}

/* Every kind's fd declared as the next kind: each must be refused. */
static int next_kind(int i)
{
	return i + 1 < SUP_HO_FD_KIND_END ? i + 1 : SUP_HO_FD_PIDFD;
}

Test(handover_fd, should_refuse_each_fd_that_is_not_of_its_kind)
{
	struct kinds k;
	char err[256];

	open_kinds(&k);
	for (int i = SUP_HO_FD_PIDFD; i < SUP_HO_FD_KIND_END; i++) {
		struct sup_ho_w *w;
		struct sup_ho_r *r;
		int st, wrong = next_kind(i);

		if (!kind_present(&k, i) || wrong == SUP_HO_FD_ANY)
			continue;
		w = sup_ho_w_new();
		sup_ho_w_begin(w, TAG_FDS, 1);
		sup_ho_w_fd(w, k.fd[i], wrong);
		sup_ho_w_end(w);
		st = ho_finish(w);
		err[0] = '\0';
		r = sup_ho_r_open(st, err, sizeof(err));
		cr_expect_null(r, "a %s accepted as a %s", sup_ho_fd_kind_name(i),
			       sup_ho_fd_kind_name(wrong));
		cr_expect(strstr(err, sup_ho_fd_kind_name(wrong)), "'%s' does not name %s", err,
			  sup_ho_fd_kind_name(wrong));
		cr_expect(is_open(k.fd[i]), "a refused state closed fd %d", k.fd[i]);
		sup_ho_r_free(r);
		sup_ho_w_abort(w);
		sup_ho_w_free(w);
		close(st);
	}
	close_kinds(&k);
}

Test(handover_fd, should_refuse_claiming_an_fd_as_another_kind)
{
	struct kinds k;
	struct sup_ho_r *r;
	char err[256];
	int st, fd = 0;

	open_kinds(&k);
	st = state_of(&k, same);
	r = sup_ho_r_open(st, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert(sup_ho_r_section(r, TAG_FDS, NULL));
	cr_expect_not(sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &fd), "the pidfd claimed as an eventfd");
	cr_expect_eq(fd, -1);
	cr_expect(strstr(sup_ho_r_error(r), "is a pidfd, expected a eventfd"), "%s",
		  sup_ho_r_error(r));
	sup_ho_r_free(r);
	close(st);
	close_kinds(&k);
}

Test(handover_fd, should_refuse_an_fd_closed_or_replaced_since)
{
	int p[2], q[2], f;
	struct sup_ho_w *w = sup_ho_w_new();
	char err[256];
	int st;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(q, O_CLOEXEC), 0);
	f = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sup_ho_w_begin(w, TAG_FDS, 1);
	sup_ho_w_fd(w, f, SUP_HO_FD_DIR);
	sup_ho_w_fd(w, p[0], SUP_HO_FD_PIPE);
	sup_ho_w_end(w);
	st = ho_finish(w);
	/* a pipe under the same number is still caught when it is another
	 * pipe than the one written (anonymous inodes, eventfds and bpf
	 * objects, all share one inode: for them only the kind is checked) */
	cr_assert_eq(dup2(q[0], p[0]), p[0]);
	cr_assert_null(sup_ho_r_open(st, err, sizeof(err)));
	cr_expect(strstr(err, "fd table entry 1") && strstr(err, "not the file handed over"), "%s", err);
	close(f);
	cr_assert_null(sup_ho_r_open(st, err, sizeof(err)));
	cr_expect(strstr(err, "fd table entry 0") && strstr(err, "not open"), "%s", err);
	close(st);
	sup_ho_w_free(w);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

Test(handover_fd, should_clear_close_on_exec_at_finish_and_restore_it_on_abort)
{
	int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, 0);
	struct sup_ho_w *w = sup_ho_w_new();
	int st;

	sup_ho_w_begin(w, TAG_FDS, 1);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_fd(w, b, SUP_HO_FD_EVENTFD);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_end(w);
	st = ho_finish(w);
	cr_expect_not(cloexec(a), "finish leaves the table's fds inheritable");
	cr_expect_not(cloexec(b));
	sup_ho_w_abort(w);
	cr_expect(cloexec(a), "abort restores close-on-exec");
	cr_expect_not(cloexec(b), "abort restores the flag as it was, not set");
	sup_ho_w_free(w);
	close(st);
	close(a);
	close(b);
}

Test(handover_fd, should_share_one_entry_for_an_fd_written_twice)
{
	int a = eventfd(0, EFD_CLOEXEC);
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	char err[256];
	int st, x = -1, y = -1;
	size_t len;
	unsigned char *bytes;
	struct sup_ho_hdr h;

	sup_ho_w_begin(w, TAG_FDS, 1);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_end(w);
	st = ho_finish(w);
	bytes = ho_bytes(st, &len);
	memcpy(&h, bytes, sizeof(h));
	cr_expect_eq(h.nfds, 1);
	r = sup_ho_r_open(st, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert(sup_ho_r_section(r, TAG_FDS, NULL));
	cr_expect(sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &x) && sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &y));
	cr_expect(x == a && y == a);
	sup_ho_r_free(r);
	free(bytes);
	sup_ho_w_free(w);
	close(st);
	close(a);
}

Test(handover_fd, should_refuse_one_fd_twice_in_the_table)
{
	int a = eventfd(0, EFD_CLOEXEC);
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_fdent e[2];
	char err[256];
	int st, t;
	size_t len;
	unsigned char *b;

	sup_ho_w_begin(w, TAG_FDS, 1);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_fd(w, STDERR_FILENO, SUP_HO_FD_ANY);
	sup_ho_w_end(w);
	st = ho_finish(w);
	b = ho_bytes(st, &len);
	memcpy(e, b + sizeof(struct sup_ho_hdr), sizeof(e));
	e[1] = e[0];
	memcpy(b + sizeof(struct sup_ho_hdr), e, sizeof(e));
	ho_fix_header(b, len);
	t = ho_memfd(b, len);
	cr_assert_null(sup_ho_r_open(t, err, sizeof(err)));
	cr_expect(strstr(err, "in the table twice"), "%s", err);
	sup_ho_w_abort(w);
	sup_ho_w_free(w);
	free(b);
	close(t);
	close(st);
	close(a);
}

Test(handover_fd, should_close_unclaimed_fds_and_keep_claimed_ones_at_commit)
{
	int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
	struct sup_ho_w *w = sup_ho_w_new();
	struct sup_ho_r *r;
	char err[256];
	int st, x = -1;

	sup_ho_w_begin(w, TAG_FDS, 1);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_fd(w, b, SUP_HO_FD_EVENTFD);
	sup_ho_w_end(w);
	st = ho_finish(w);
	sup_ho_w_free(w);
	cr_assert_not(cloexec(a));
	r = sup_ho_r_open(st, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert(sup_ho_r_section(r, TAG_FDS, NULL));
	cr_assert(sup_ho_r_fd(r, SUP_HO_FD_EVENTFD, &x));
	cr_expect(is_open(a) && is_open(b) && is_open(st), "nothing is closed before commit");
	sup_ho_r_commit(r);
	cr_expect(is_open(a), "the claimed fd stays");
	cr_expect(cloexec(a), "and is close-on-exec again");
	cr_expect_not(is_open(b), "the unclaimed one is closed");
	cr_expect_not(is_open(st), "and so is the state memfd");
	sup_ho_r_free(r);
	close(a);
}

Test(handover_fd, should_close_nothing_when_the_state_is_refused)
{
	int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
	struct sup_ho_w *w = sup_ho_w_new();
	char err[256];
	int st;

	sup_ho_w_begin(w, TAG_FDS, 1);
	sup_ho_w_fd(w, a, SUP_HO_FD_EVENTFD);
	sup_ho_w_fd(w, b, SUP_HO_FD_PIDFD);
	sup_ho_w_end(w);
	st = ho_finish(w);
	sup_ho_w_free(w);
	cr_assert_null(sup_ho_r_open(st, err, sizeof(err)));
	cr_expect(strstr(err, "fd table entry 1: fd"), "the sentence names the entry: %s", err);
	cr_expect(is_open(a) && is_open(b) && is_open(st), "a refused state closes nothing");
	cr_expect_not(cloexec(a), "nor makes the fds close-on-exec (the rollback execs with them)");
	close(st);
	close(a);
	close(b);
}
