/* SPDX-License-Identifier: MIT */
/*
 * metrics — the Prometheus endpoint (text exposition format 0.0.4, served
 * by libmicrohttpd). docs/metrics.md lists every metric.
 *
 * tierd is single-threaded and no other thread may read daemon state, so
 * the work is split in two:
 *  - the loop thread has the whole exposition rendered once per monitor
 *    tick (sup_metrics_update calls the render callback given to
 *    sup_metrics_open: this module never sees what the text is built from)
 *    into a fresh, immutable snapshot and publishes it by swapping one
 *    pointer under a mutex;
 *  - libmicrohttpd's own polling thread answers GET /metrics by taking a
 *    reference to the current snapshot and sending it; it never sees
 *    anything else. Other paths get 404, other methods 405.
 * The mutex is held only for a pointer swap or a reference count change,
 * so a slow scraper never stalls the loop.
 *
 * The address is what the operator configured (metrics_address), bound as
 * given: the default is loopback; a wildcard or public address is served
 * without authentication, which docs/metrics.md warns about.
 */
#ifndef SUP_METRICS_H
#define SUP_METRICS_H

#include <stddef.h>

struct sup_metrics;

/* The whole exposition, malloc'd and NUL-terminated, in *ret_text; its
 * length in *ret_len. 0, or -ENOMEM (out-parameters untouched). Called on
 * the loop thread only, from sup_metrics_update. */
typedef int (*sup_metrics_render_fn)(void *arg, char **ret_text, size_t *ret_len);

/*
 * Listen on address ("HOST:PORT", "[V6]:PORT"; a name is resolved now,
 * once); render(arg, ...) makes the text each update serves. NULL with
 * errno and a sentence in err on failure: EINVAL a bad address, EADDRINUSE
 * the port is taken, EADDRNOTAVAIL no such local address, EACCES a
 * privileged port, ENOMEM, or what starting the HTTP thread failed with.
 * Call it after the daemon blocked its signals or before: the HTTP thread
 * blocks every signal either way.
 */
struct sup_metrics *sup_metrics_open(const char *address, sup_metrics_render_fn render,
				     void *arg, char *err, size_t errlen);

/* Render the exposition anew and publish it (loop thread only). Until the
 * first call GET /metrics answers 503. NULL m: nothing to do. */
/* The same on a listening socket already bound (a live upgrade's). */
struct sup_metrics *sup_metrics_open_fd(const char *address, int listen_fd,
					sup_metrics_render_fn render, void *arg, char *err,
					size_t errlen);
/* Live upgrade: stop accepting; the listening socket is returned (the
 * caller's from now on: close() no longer closes it), or -EIO. */
int sup_metrics_quiesce(struct sup_metrics *m);
void sup_metrics_update(struct sup_metrics *m);

/* The address actually bound, e.g. "127.0.0.1:9464". */
const char *sup_metrics_address(const struct sup_metrics *m);

/* Stop the HTTP thread (waits for it), close the socket, free. NULL is
 * fine. */
void sup_metrics_close(struct sup_metrics *m);

#endif
