/* SPDX-License-Identifier: MIT */
/* common/fdio: EINTR retried inside the wrappers, and the whole-file reader's
 * bounds (exact fit, one byte over, growth, limit, pipes). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdio.h"

static volatile sig_atomic_t interrupted;

static void on_usr1(int sig)
{
	(void)sig;
	interrupted++;
}

/* A handler without SA_RESTART: a blocked read, write or wait fails with
 * EINTR instead of being restarted by the kernel. */
static void install_interrupting_handler(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	interrupted = 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct poke {
	pthread_t target;
	int       fd;        /* written after the signal, unless -1 */
	char      byte;
};

/* Interrupt the target while it blocks, then give it what it waits for. */
static void *poke_main(void *arg)
{
	struct poke *p = arg;

	sleep_ms(100);
	pthread_kill(p->target, SIGUSR1);
	sleep_ms(100);
	if (p->fd >= 0 && write(p->fd, &p->byte, 1) != 1)
		abort();
	return NULL;
}

Test(fdio, should_retry_a_read_that_a_signal_interrupted)
{
	struct poke p = { .byte = 'x' };
	pthread_t th;
	int pfd[2];
	char c = 0;

	install_interrupting_handler();
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	p.target = pthread_self();
	p.fd = pfd[1];
	cr_assert_eq(pthread_create(&th, NULL, poke_main, &p), 0);
	cr_assert_eq(sup_read(pfd[0], &c, 1), 1, "the byte written after the signal");
	pthread_join(th, NULL);
	cr_assert_eq(c, 'x');
	cr_assert_geq(interrupted, 1, "the signal did arrive during the read");
	close(pfd[0]);
	close(pfd[1]);
}

Test(fdio, should_retry_a_wait_that_a_signal_interrupted)
{
	struct poke p = { .fd = -1 };
	pthread_t th;
	int status = 0;
	pid_t pid;

	install_interrupting_handler();
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		sleep_ms(300);
		_exit(7);
	}
	p.target = pthread_self();
	cr_assert_eq(pthread_create(&th, NULL, poke_main, &p), 0);
	cr_assert_eq(sup_waitpid(pid, &status, 0), pid);
	pthread_join(th, NULL);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	cr_assert_geq(interrupted, 1, "the signal did arrive during the wait");
}

Test(fdio, should_return_minus_errno_not_minus_one)
{
	char c;
	siginfo_t si;

	cr_assert_eq(sup_read(-1, &c, 1), -EBADF);
	cr_assert_eq(sup_write(-1, &c, 1), -EBADF);
	cr_assert_eq(sup_pread(-1, &c, 1, 0), -EBADF);
	cr_assert_eq(sup_waitpid(-1, NULL, WNOHANG), -ECHILD);
	cr_assert_eq(sup_waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -ECHILD);
}

Test(fdio, should_write_all_and_report_how_much_went_into_a_full_pipe)
{
	static char big[1 << 20];
	size_t done = 12345;
	int pfd[2];

	cr_assert_eq(pipe2(pfd, O_CLOEXEC | O_NONBLOCK), 0);
	cr_assert_eq(sup_write_all(pfd[1], "abc", 3, &done), 0);
	cr_assert_eq(done, 3);
	cr_assert_eq(sup_write_all(pfd[1], big, sizeof(big), &done), -EAGAIN,
		     "a pipe holds less than 1 MiB");
	cr_assert_gt(done, 0, "what fitted went out");
	cr_assert_lt(done, sizeof(big));
	close(pfd[0]);
	close(pfd[1]);
}

Test(fdio, should_carry_bytes_over_a_socket_and_name_a_missing_one)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int sv[2], fd;
	char buf[8];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(sup_send(sv[0], "ping", 4, MSG_NOSIGNAL), 4);
	cr_assert_eq(sup_recv(sv[1], buf, sizeof(buf), 0), 4);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	close(sv[1]);
	cr_assert_eq(sup_send(sv[0], "x", 1, MSG_NOSIGNAL), -EPIPE, "the peer is gone");
	close(sv[0]);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test_fdio.absent.%d", (int)getpid());
	cr_assert_eq(sup_connect_unix(fd, (struct sockaddr *)&sa, sizeof(sa)), -ENOENT);
	close(fd);
}

static char dir_tmpl[] = "/tmp/test_fdio.XXXXXX";
static int dirfd_ = -1;

static void make_dir(void)
{
	strcpy(dir_tmpl, "/tmp/test_fdio.XXXXXX");
	cr_assert_not_null(mkdtemp(dir_tmpl));
	dirfd_ = open(dir_tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd_, 0);
}

static void remove_dir(void)
{
	static const char *const names[] = { "f", "big" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlinkat(dirfd_, names[i], 0);
	close(dirfd_);
	rmdir(dir_tmpl);
}

static void put(const char *name, const void *data, size_t n)
{
	int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(sup_write_all(fd, data, n, NULL), 0);
	close(fd);
}

TestSuite(read_file, .init = make_dir, .fini = remove_dir);

Test(read_file, should_accept_a_file_that_fills_the_buffer_exactly)
{
	char buf[6];

	put("f", "hello", 5);
	cr_assert_eq(sup_read_file_at(dirfd_, "f", buf, sizeof(buf)), 5);
	cr_assert_str_eq(buf, "hello", "NUL-terminated");
}

Test(read_file, should_refuse_a_file_one_byte_longer_than_the_buffer)
{
	char buf[6];

	put("f", "hello!", 6);
	cr_assert_eq(sup_read_file_at(dirfd_, "f", buf, sizeof(buf)), -ENOBUFS);
}

Test(read_file, should_name_a_missing_file_and_a_useless_buffer)
{
	char buf[8];

	cr_assert_eq(sup_read_file_at(dirfd_, "absent", buf, sizeof(buf)), -ENOENT);
	put("f", "x", 1);
	cr_assert_eq(sup_read_file_at(dirfd_, "f", buf, 1), -EINVAL, "no room for a byte");
}

Test(read_file, should_reread_an_open_file_from_its_start)
{
	char buf[16];
	int fd;

	put("f", "0123456789", 10);
	fd = openat(dirfd_, "f", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(sup_read(fd, buf, 4), 4, "the fd's offset moves to 4");
	cr_assert_eq(sup_pread_file(fd, buf, sizeof(buf)), 10);
	cr_assert_str_eq(buf, "0123456789");
	cr_assert_eq(sup_pread_file(fd, buf, 8), -ENOBUFS);
	close(fd);
}

Test(read_file, should_grow_past_its_first_buffer_up_to_the_limit)
{
	size_t n = 100000, len = 0;
	char *data = malloc(n), *got = NULL;

	cr_assert_not_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	put("big", data, n);
	cr_assert_eq(sup_read_file_alloc(dirfd_, "big", n, &got, &len), 0, "exactly the limit");
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(got, data, n), 0);
	cr_assert_eq(got[n], '\0');
	free(got);
	got = NULL;
	len = 77;
	cr_assert_eq(sup_read_file_alloc(dirfd_, "big", n - 1, &got, &len), -EFBIG);
	cr_assert_null(got, "untouched on failure");
	cr_assert_eq(len, 77);
	free(data);
}

Test(read_file, should_read_an_empty_file_as_an_empty_string)
{
	size_t len = 1;
	char *got = NULL;

	put("f", "", 0);
	cr_assert_eq(sup_read_file_alloc(dirfd_, "f", 10, &got, &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(got, "");
	free(got);
}

Test(read_file, should_read_a_pipe_to_its_end)
{
	int pfd[2];
	size_t len;
	char *got;

	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	cr_assert_eq(sup_write_all(pfd[1], "from a pipe", 11, NULL), 0);
	close(pfd[1]);
	cr_assert_eq(sup_read_fd_alloc(pfd[0], 1024, &got, &len), 0);
	cr_assert_eq(len, 11);
	cr_assert_str_eq(got, "from a pipe");
	free(got);
	close(pfd[0]);
}
