/* SPDX-License-Identifier: MIT */
/* The Prometheus endpoint: see metrics.h. The text comes from its render
 * callback (tierd's is daemon_metrics.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

#define METRICS_PATH          "/metrics"
#define METRICS_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_CONN_LIMIT    32u   /* scrapers are few; a flood is refused */
#define METRICS_CONN_TIMEOUT  10u   /* seconds an idle connection is kept */
#define METRICS_LISTEN_BACKLOG 16

/* One published exposition. Immutable once published; freed by whoever
 * drops the last reference (the loop thread or the HTTP thread). */
struct snap {
	struct sup_metrics *m;
	unsigned            refs;   /* under m->lock */
	size_t              len;
	char               *text;
};

struct sup_metrics {
	struct MHD_Daemon *httpd;
	pthread_mutex_t    lock;    /* guards cur and every snap's refs */
	struct snap       *cur;     /* NULL until the first update */
	char               address[INET6_ADDRSTRLEN + 16];
	sup_metrics_render_fn render;   /* loop thread only */
	void              *render_arg;
};

/* ---- snapshots ------------------------------------------------------------ */

static void snap_release(struct snap *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&s->m->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->m->lock);
	if (last) {
		free(s->text);
		free(s);
	}
}

/* The response is done with the body (HTTP thread, or MHD_stop_daemon). */
static void snap_release_cb(void *cls)
{
	snap_release(cls);
}

static struct snap *snap_acquire(struct sup_metrics *m)
{
	struct snap *s;

	pthread_mutex_lock(&m->lock);
	s = m->cur;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&m->lock);
	return s;
}

/* Takes text (malloc'd); the old snapshot goes once its scrapes are sent. */
static int publish(struct sup_metrics *m, char *text, size_t len)
{
	struct snap *s = malloc(sizeof(*s)), *old;

	if (!s)
		return -ENOMEM;
	*s = (struct snap){ .m = m, .refs = 1, .len = len, .text = text };
	/* The unlock releases the text written above to the HTTP thread; its
	 * lock in snap_acquire is the matching acquire. */
	pthread_mutex_lock(&m->lock);
	old = m->cur;
	m->cur = s;
	pthread_mutex_unlock(&m->lock);
	snap_release(old);
	return 0;
}

void sup_metrics_update(struct sup_metrics *m)
{
	char *text;
	size_t len;

	if (!m)
		return;
	/* A failed build (out of memory) keeps the last exposition served. */
	if (m->render(m->render_arg, &text, &len) < 0)
		return;
	if (publish(m, text, len) < 0)
		free(text);
}

/* ---- HTTP (the server's thread) ------------------------------------------------ */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text,
				  const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *upload,
			     size_t *upload_len, void **req_cls)
{
	struct sup_metrics *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct snap *s;

	(void)version;
	(void)upload;
	/* First call: headers only. Answer once any body has been read. */
	if (!*req_cls) {
		*req_cls = m;
		return MHD_YES;
	}
	if (*upload_len) {
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n", "GET, HEAD");
	if (strcmp(url, METRICS_PATH))
		return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: tierd's metrics are at "
				  METRICS_PATH "\n", NULL);
	s = snap_acquire(m);
	if (!s)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "tierd has not taken its first "
				  "sample yet; try again after one monitor interval\n", NULL);
	r = MHD_create_response_from_buffer_with_free_callback_cls(s->len, s->text,
								    snap_release_cb, s);
	if (!r) {
		snap_release(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- listening ------------------------------------------------------------------- */

/* "HOST:PORT" or "[V6]:PORT" into host and port (copies in buf). */
static int split_address(const char *address, char *buf, size_t len, const char **ret_host,
			 const char **ret_port)
{
	char *colon, *host;

	if (snprintf(buf, len, "%s", address) >= (int)len)
		return -EINVAL;
	colon = strrchr(buf, ':');
	if (!colon || colon == buf || !colon[1])
		return -EINVAL;
	*colon = '\0';
	host = buf;
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 3 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		host++;
	}
	*ret_host = host;
	*ret_port = colon + 1;
	return 0;
}

static void format_bound(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
	}
}

static const char *bind_hint(int e)
{
	switch (e) {
	case EADDRINUSE:
		return "the port is already in use (another tierd, or another exporter?)";
	case EADDRNOTAVAIL:
		return "no local interface has that address";
	case EACCES:
		return "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)";
	default:
		return strerror(e);
	}
}

/* A bound, listening, non-blocking, close-on-exec socket, or -errno. */
static int listen_on(const char *address, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	const char *host, *port;
	char buf[256];
	int r, fd = -1, e = EINVAL;

	if (split_address(address, buf, sizeof(buf), &host, &port) < 0) {
		snprintf(err, errlen, "metrics_address '%s' is not HOST:PORT ([ADDR]:PORT for IPv6)",
			 address);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		snprintf(err, errlen, "metrics_address '%s': %s", address,
			 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		/* Restarting tierd must not wait out TIME_WAIT; a live listener
		 * on the port still makes bind fail. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, METRICS_LISTEN_BACKLOG) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", address, bind_hint(e));
		return -e;
	}
	return fd;
}

/* Close fd unless it is no longer the socket that was. */
static void close_if_same(int fd, const struct stat *was)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && st.st_dev == was->st_dev && st.st_ino == was->st_ino)
		close(fd);
}

struct sup_metrics *sup_metrics_open(const char *address, sup_metrics_render_fn render,
				     void *arg, char *err, size_t errlen)
{
	return sup_metrics_open_fd(address, -1, render, arg, err, errlen);
}

struct sup_metrics *sup_metrics_open_fd(const char *address, int listen_fd,
					sup_metrics_render_fn render, void *arg, char *err,
					size_t errlen)
{
	struct sup_metrics *m = calloc(1, sizeof(*m));
	sigset_t all, old;
	struct stat st;
	int fd, e;

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->render = render;
	m->render_arg = arg;
	e = pthread_mutex_init(&m->lock, NULL);
	if (e) {
		snprintf(err, errlen, "%s", strerror(e));
		goto free_m;
	}
	fd = listen_fd >= 0 ? listen_fd : listen_on(address, err, errlen);
	if (fd < 0) {
		e = -fd;
		goto destroy_lock;
	}
	format_bound(fd, m->address, sizeof(m->address));
	if (fstat(fd, &st) < 0) {
		e = errno;
		snprintf(err, errlen, "%s", strerror(e));
		close(fd);
		goto destroy_lock;
	}
	/* The HTTP thread inherits this mask: tierd takes its signals through
	 * a signalfd, which works only while no thread can receive them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	m->httpd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC, 0, NULL, NULL, serve, m,
				    MHD_OPTION_LISTEN_SOCKET, fd,
				    MHD_OPTION_CONNECTION_LIMIT, METRICS_CONN_LIMIT,
				    MHD_OPTION_CONNECTION_TIMEOUT, METRICS_CONN_TIMEOUT,
				    MHD_OPTION_END);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->httpd) {
		if (!e)
			e = EIO;
		snprintf(err, errlen, "cannot start the HTTP server on %s: %s", address,
			 strerror(e));
		/* Whether a failed start closed the socket it was given depends
		 * on where it failed; the inode tells whether the number is
		 * still ours (an io_uring accept may have reused it). */
		close_if_same(fd, &st);
		goto destroy_lock;
	}
	return m;

destroy_lock:
	pthread_mutex_destroy(&m->lock);
free_m:
	free(m);
	errno = e;
	return NULL;
}

const char *sup_metrics_address(const struct sup_metrics *m)
{
	return m->address;
}

int sup_metrics_quiesce(struct sup_metrics *m)
{
	/* Stops accepting and hands the socket back; the thread stops after. */
	MHD_socket fd = MHD_quiesce_daemon(m->httpd);

	return fd == MHD_INVALID_SOCKET ? -EIO : (int)fd;
}

void sup_metrics_close(struct sup_metrics *m)
{
	if (!m)
		return;
	/* Joins the HTTP thread; every response (and its snapshot reference)
	 * is released by the time it returns. It closes the listen socket. */
	MHD_stop_daemon(m->httpd);
	snap_release(m->cur);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
