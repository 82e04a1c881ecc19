/* SPDX-License-Identifier: MIT */
/*
 * intake — tasks from NATS JetStream (docs/fleet.md). One thread of tierd
 * owns the fetches (libnats has no asynchronous pull subscription); it
 * hands messages to the loop through a bounded queue and an eventfd the
 * loop polls. The loop submits them to the task table (not journaled: the
 * broker is their journal), publishes each result to the results stream
 * (libnats' asynchronous publish: it never blocks the loop) and acks the
 * task message only once JetStream stored the result. Fetches ask only for
 * what the node has room to start.
 */
#ifndef SUP_INTAKE_H
#define SUP_INTAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sup_loop;
struct sup_tasks;
struct sup_wf;
struct sup_fleet;
struct sup_fleet_conf;
struct sup_intake;
struct sup_ho_w;
struct sup_ho_r;

struct sup_intake_env {
	struct sup_loop            *loop;
	struct sup_tasks           *tasks;
	struct sup_wf              *wf;
	const struct sup_fleet     *fleet;   /* the agents: their room */
	const struct sup_fleet_conf *conf;   /* copied at new */
	/* An event (fleet_connected, fleet_disconnected, fleet_drained) or a
	 * log line (ev NULL); called on the loop thread. ev is taken. */
	void (*event)(void *arg, int prio, const char *kind, json_t *ev, const char *msg);
	void                       *arg;
};

/* Starts the thread (it connects, with retries, in the background): NULL
 * with errno set and err filled. */
struct sup_intake *sup_intake_new(const struct sup_intake_env *env, char *err, size_t errlen);
/* Stops the thread, closes the connection; what it held is redelivered by
 * the broker after AckWait. NULL is fine. */
void sup_intake_free(struct sup_intake *in);

/* fleet-status. */
json_t *sup_intake_status(struct sup_intake *in);
/* fleet-drain: stop fetching; true once nothing broker-fed is in flight. */
bool sup_intake_drain(struct sup_intake *in);
bool sup_intake_drained(const struct sup_intake *in);
void sup_intake_undrain(struct sup_intake *in);

struct sup_intake_stats {
	bool     connected, draining;
	uint64_t fetched, acked, termed, naked, duplicates, published, publish_errors;
	uint64_t in_progress, poison, rejected, reconnects;
	uint32_t leases;
	double   thread_cpu_s;   /* the fetch thread's CPU (also in tierd's) */
};
void sup_intake_stats(const struct sup_intake *in, struct sup_intake_stats *ret);

/* Live upgrade. quiet: stop fetching, have the thread hand back all it
 * fetched and park, flush the acks; true once that is done (polled).
 * resume: the upgrade did not happen, fetch again. save/restore: the
 * section 'flet' with every broker task in flight (restore after the task
 * table and the workflows). */
bool sup_intake_quiet(struct sup_intake *in);
void sup_intake_resume(struct sup_intake *in);
int  sup_intake_save(struct sup_intake *in, struct sup_ho_w *w);
int  sup_intake_restore(struct sup_intake *in, struct sup_ho_r *r);

#endif
