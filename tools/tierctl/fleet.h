/* SPDX-License-Identifier: MIT */
/*
 * tierctl fleet: submit tasks to and read results from the NATS JetStream
 * streams of a fleet of tierd nodes (docs/fleet.md), and ask one node about
 * its intake over its control socket.
 *
 *   fleet.c       the subcommands, their options and output
 *   fleet_nats.c  the libnats side: connect, publish a task, read a result
 */
#ifndef TCTL_FLEET_H
#define TCTL_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands.h"

#define TCTL_FLEET_SERVERS_ENV     "TIERD_FLEET_SERVERS"
#define TCTL_FLEET_SERVERS_DEFAULT "nats://127.0.0.1:4222"

/* Where the streams are and how to log in: the [fleet] keys of the nodes. */
struct tctl_fleet_conn_opts {
	const char *servers;        /* comma-separated URLs */
	const char *credentials;    /* .creds file */
	const char *nkey_public, *nkey_seed;
	const char *tls_cert, *tls_key, *tls_ca;
	const char *prefix;         /* subject prefix, default "tierd" */
	const char *tasks_stream, *results_stream;
};

/* One task to publish: subject and the headers of docs/fleet.md (NULL =
 * not sent). */
struct tctl_fleet_task {
	const char *subject;
	const void *payload;
	size_t      len;
	const char *type, *timeout, *deadline, *key, *context;
};

struct tctl_nats;

/* Connect (failing fast when no server answers). -errno with the sentence
 * in err. */
int tctl_nats_open(struct tctl_nats **ret, const struct tctl_fleet_conn_opts *o, char *err,
		   size_t errlen);
void tctl_nats_close(struct tctl_nats *n);

/* A JetStream publish of t; the tasks-stream sequence (the task id) in
 * *ret_id, *ret_dup when the server took it as a duplicate of an earlier
 * publish with the same key. */
int tctl_nats_submit(struct tctl_nats *n, const struct tctl_fleet_task *t, uint64_t *ret_id,
		     bool *ret_dup, char *err, size_t errlen);

/* The stored result of task id, waiting up to wait_ms for it (0: look once,
 * < 0: forever). 0 with the result object in *ret (the caller decrefs),
 * -ENOENT when there is none (yet), -errno otherwise; err says which. */
int tctl_nats_result(struct tctl_nats *n, uint64_t id, int64_t wait_ms, json_t **ret, char *err,
		     size_t errlen);

/* The `fleet` command's whole exchange (commands.c's table row). */
int tctl_run_fleet(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv);

#endif
