/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint's HTTP side (supervisor/metrics.c): addresses,
 * errors, paths, snapshots, teardown. The exposition text comes from the
 * render callback given to sup_metrics_open: here a counter of renders;
 * tests/integration/test_metrics.py checks the daemon's real text with
 * promtool.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../supervisor/metrics.h"

static atomic_int builds;

static int count_renders(void *arg, char **ret_text, size_t *ret_len)
{
	char *t;

	(void)arg;
	if (asprintf(&t, "# HELP x_total x\n# TYPE x_total counter\nx_total %d\n",
		     atomic_fetch_add(&builds, 1) + 1) < 0)
		return -ENOMEM;
	*ret_text = t;
	*ret_len = strlen(t);
	return 0;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static int port_of(const struct sup_metrics *m)
{
	return atoi(strrchr(sup_metrics_address(m), ':') + 1);
}

/* One HTTP/1.0 request; the status code, or -errno; the whole reply in buf. */
static int request(int port, const char *method, const char *path, char *buf, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char req[256];
	size_t n = 0;
	ssize_t r;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return (int)r;
	}
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\n\r\n", method, path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -EIO;
	}
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
	return n > 12 ? atoi(buf + 9) : -EPROTO;
}

static struct sup_metrics *open_ephemeral(void)
{
	char err[256];
	struct sup_metrics *m = sup_metrics_open("127.0.0.1:0", count_renders, NULL, err, sizeof(err));

	cr_assert_not_null(m, "open: %s", err);
	return m;
}

Test(metrics, should_refuse_an_address_that_is_not_host_port)
{
	char err[256] = "";

	errno = 0;
	cr_assert_null(sup_metrics_open("nonsense", count_renders, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EINVAL);
	cr_assert(strstr(err, "is not HOST:PORT"), "%s", err);
	cr_assert_null(sup_metrics_open("[::1:9464", count_renders, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EINVAL);
}

Test(metrics, should_say_when_no_interface_has_the_address)
{
	char err[256] = "";

	/* 192.0.2.0/24 is TEST-NET-1: never a local address. */
	cr_assert_null(sup_metrics_open("192.0.2.1:9464", count_renders, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EADDRNOTAVAIL);
	cr_assert(strstr(err, "cannot listen on 192.0.2.1:9464: no local interface"), "%s", err);
}

Test(metrics, should_name_a_taken_port_in_its_error)
{
	struct sup_metrics *m = open_ephemeral();
	char addr[64], err[256] = "";

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port_of(m));
	cr_assert_null(sup_metrics_open(addr, count_renders, NULL, err, sizeof(err)));
	cr_assert_eq(errno, EADDRINUSE);
	cr_assert(strstr(err, "the port is already in use"), "%s", err);
	sup_metrics_close(m);
}

Test(metrics, should_answer_503_until_the_first_update_then_the_exposition)
{
	struct sup_metrics *m = open_ephemeral();
	char buf[4096];

	cr_assert_eq(request(port_of(m), "GET", "/metrics", buf, sizeof(buf)), 503);
	sup_metrics_update(m);
	cr_assert_eq(request(port_of(m), "GET", "/metrics", buf, sizeof(buf)), 200);
	cr_assert(strstr(buf, "Content-Type: text/plain; version=0.0.4"), "%s", buf);
	cr_assert(strstr(buf, "\r\n\r\n# HELP x_total x\n"), "%s", buf);
	sup_metrics_update(m);
	request(port_of(m), "GET", "/metrics", buf, sizeof(buf));
	cr_assert(strstr(buf, "\nx_total 2\n"), "the newest snapshot is served: %s", buf);
	sup_metrics_close(m);
}

Test(metrics, should_answer_404_elsewhere_and_405_to_other_methods)
{
	struct sup_metrics *m = open_ephemeral();
	char buf[4096];

	sup_metrics_update(m);
	cr_assert_eq(request(port_of(m), "GET", "/", buf, sizeof(buf)), 404);
	cr_assert_eq(request(port_of(m), "GET", "/metrics/x", buf, sizeof(buf)), 404);
	cr_assert_eq(request(port_of(m), "POST", "/metrics", buf, sizeof(buf)), 405);
	cr_assert(strstr(buf, "Allow: GET, HEAD"), "%s", buf);
	cr_assert_eq(request(port_of(m), "HEAD", "/metrics", buf, sizeof(buf)), 200);
	sup_metrics_close(m);
}

Test(metrics, should_release_the_port_and_every_fd_when_closed)
{
	int before = open_fds(), port;
	struct sup_metrics *m = open_ephemeral();
	char buf[256];

	port = port_of(m);
	sup_metrics_update(m);
	cr_assert_eq(request(port, "GET", "/metrics", buf, sizeof(buf)), 200);
	sup_metrics_close(m);
	cr_assert_eq(request(port, "GET", "/metrics", buf, sizeof(buf)), -ECONNREFUSED);
	cr_assert_eq(open_fds(), before);
	sup_metrics_close(NULL);
}

struct scraper {
	int         port;
	atomic_bool stop;
	int         ok, bad;
};

static void *scrape(void *arg)
{
	struct scraper *s = arg;
	char buf[4096];

	while (!atomic_load(&s->stop)) {
		if (request(s->port, "GET", "/metrics", buf, sizeof(buf)) == 200 &&
		    strstr(buf, "\nx_total "))
			s->ok++;
		else
			s->bad++;
	}
	return NULL;
}

Test(metrics, should_serve_whole_snapshots_while_updates_replace_them)
{
	struct sup_metrics *m = open_ephemeral();
	struct scraper s[4];
	pthread_t th[4];

	sup_metrics_update(m);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct scraper){ .port = port_of(m) };
		pthread_create(&th[i], NULL, scrape, &s[i]);
	}
	for (int i = 0; i < 2000; i++) {
		sup_metrics_update(m);
		usleep(200);
	}
	for (int i = 0; i < 4; i++)
		atomic_store(&s[i].stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_gt(s[i].ok, 0);
		cr_assert_eq(s[i].bad, 0, "scraper %d: %d bad replies", i, s[i].bad);
	}
	sup_metrics_close(m);
}
