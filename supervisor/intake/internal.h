/* SPDX-License-Identifier: MIT */
/*
 * intake/internal — what the loop side (intake.c, intake_lease.c) and the
 * thread (intake_nats.c) share. Fields under "shared" are guarded by mu;
 * the rest belong to the loop thread, but nc/js which libnats guards.
 */
#ifndef SUP_INTAKE_INTERNAL_H
#define SUP_INTAKE_INTERNAL_H

#include <nats/nats.h>
#include <pthread.h>

#include "../config/config.h"
#include "intake.h"
#include "intake_msg.h"
#include "../loop.h"

#define IN_CONS_MAX   (SUP_NTIERS + 1 + 64) /* tiers, runs, agents */
#define IN_QUEUE_MAX  8192                   /* events from the thread */
#define IN_HASH       1024

enum in_ev_kind { IN_EV_MSG, IN_EV_PUBACK, IN_EV_CONN, IN_EV_DISC };

struct in_ev {
	struct in_ev   *next;
	enum in_ev_kind kind;
	int             cons;
	natsMsg        *msg;          /* IN_EV_MSG: ours to destroy */
	uint64_t        seq;          /* IN_EV_PUBACK */
	int             status;       /* 0 stored, 1 already stored, -1 failed */
	char            err[120];
};

enum in_cons_kind { IN_C_TIER, IN_C_AGENT, IN_C_RUN };

struct in_cons {
	enum in_cons_kind kind;
	int               tier;
	char              agent[SUP_AGENT_NAME_MAX + 1];
	char              durable[128];
	char              subject[192];
	natsSubscription *sub;        /* the thread's */
	uint32_t          want;       /* shared: what the loop has room for */
	uint32_t          outstanding;/* shared: fetched, not yet taken */
	uint64_t          fetched;
	/* cached by the thread, shared */
	uint64_t          pending, ack_pending, redelivered;
};

enum in_verb { IN_ACK, IN_TERM, IN_NAK };
enum in_lstate { IN_L_RUNNING, IN_L_PUBLISHING };

struct in_lease {
	struct in_lease *prev, *next, *hnext;
	struct sup_intake *in;
	uint64_t       seq, local, run;
	uint32_t       deliveries;
	int            cons;
	bool           is_run;
	enum in_lstate state;
	enum in_verb   verb;           /* once the result is stored */
	char          *reply;          /* the message's ack subject */
	char           key[SUP_IN_KEY_MAX + 1];
	char          *subject;
	char          *result;         /* the result's JSON, until stored */
	size_t         result_len;
	char           status[16];
	int64_t        started, next_wpi, published;
};

struct sup_intake {
	struct sup_intake_env env;
	struct sup_fleet_conf conf;    /* names resolved; strings borrowed from env.conf */
	const char     *prefix, *cprefix, *tasks_stream, *results_stream;
	char            node[65];
	char           *own[5];        /* the strings above, owned */

	/* the thread */
	pthread_t       thr;
	bool            thr_started;
	natsOptions    *opts;
	natsConnection *nc;
	jsCtx          *js;
	clockid_t       thr_clock;
	bool            thr_clock_ok;

	/* shared (mu) */
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stop, park, parked, connected, set_up;
	struct in_ev   *q_head, *q_tail;
	uint32_t        q_n;
	struct in_cons  cons[IN_CONS_MAX];
	size_t          ncons;
	uint64_t        stream_msgs, stream_bytes, results_msgs, results_bytes;
	char            last_error[200];

	/* the loop */
	int             efd;
	uint64_t        efd_buf;
	struct sup_ev   efd_ev;
	bool            efd_armed;
	struct sup_timer timer;
	struct sup_defer wants_df;
	struct in_lease *head;
	struct in_lease *hash[IN_HASH];
	uint32_t        nleases, nruns;
	bool            draining, drained_sent, quiescing, was_connected;
	int64_t         quiesce_since;
	struct sup_intake_stats st;
	int64_t         rate_t0;
	uint64_t        rate_n0;
	double          fetch_rate;
};

/* intake_nats.c: the thread and libnats. */
int  sup_in_nats_start(struct sup_intake *in, char *err, size_t errlen);
void sup_in_nats_stop(struct sup_intake *in);
void sup_in_wake(struct sup_intake *in);          /* cv */
void sup_in_post(struct sup_intake *in, struct in_ev *ev); /* to the loop */
/* Loop side publishes (non-blocking: libnats buffers). 0 or -errno. */
int  sup_in_publish_result(struct sup_intake *in, const struct in_lease *l);
int  sup_in_reply(struct sup_intake *in, const char *reply, const char *what);
void sup_in_flush(struct sup_intake *in, int64_t timeout_ms);

/* intake_lease.c: the loop's leases and results. */
struct in_lease *sup_in_lease_find(struct sup_intake *in, uint64_t seq);
struct in_lease *sup_in_lease_new(struct sup_intake *in, uint64_t seq);
void sup_in_lease_free(struct in_lease *l);
void sup_in_take_msg(struct sup_intake *in, int cons, natsMsg *msg);
void sup_in_puback(struct sup_intake *in, uint64_t seq, int status, const char *err);
/* End the lease with a result made here (not by a task): status, error. */
void sup_in_finish_local(struct in_lease *l, const char *status, const char *why,
			 enum in_verb verb);
void sup_in_publish(struct in_lease *l);
/* The done callbacks of a broker task and run (arg: the lease). */
struct sup_tasks;
struct sup_task;
struct sup_wf;
struct sup_run;
bool sup_in_task_done(struct sup_tasks *ts, struct sup_task *t, void *arg);
void sup_in_run_done(struct sup_wf *wf, struct sup_run *run, json_t *aggregate, void *arg);

/* intake.c */
void sup_in_update_wants(struct sup_intake *in);
void sup_in_log(struct sup_intake *in, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int64_t sup_in_now(struct sup_intake *in);

#endif
