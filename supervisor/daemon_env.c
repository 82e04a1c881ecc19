/* SPDX-License-Identifier: MIT */
/* The daemon as the task table's and the workflow's env (tasks_env.h). */
#include "agent.h"
#include "config/config.h"
#include "daemon.h"
#include "incarnation/incarnation.h"
#include "loop.h"
#include "monitor.h"
#include "tasks_env.h"
#include "tier/ring.h"

static const struct sup_config *env_conf(void *ctx)
{
	return ((struct sup_daemon *)ctx)->conf;
}

static int64_t env_now(void *ctx)
{
	return sup_loop_time(((struct sup_daemon *)ctx)->loop);
}

static int64_t env_now_fresh(void *ctx)
{
	return sup_loop_now(((struct sup_daemon *)ctx)->loop);
}

static void env_timer_arm(void *ctx, struct sup_timer *t, int64_t deadline)
{
	sup_timer_arm(((struct sup_daemon *)ctx)->loop, t, deadline);
}

static void env_timer_disarm(void *ctx, struct sup_timer *t)
{
	sup_timer_disarm(((struct sup_daemon *)ctx)->loop, t);
}

static void env_defer(void *ctx, struct sup_defer *df)
{
	sup_defer_queue(((struct sup_daemon *)ctx)->loop, df);
}

static size_t env_nagents(void *ctx)
{
	return ((struct sup_daemon *)ctx)->fleet.n;
}

static struct sup_agent *env_agent(void *ctx, size_t i)
{
	return ((struct sup_daemon *)ctx)->fleet.agents[i];
}

static struct sup_agent *env_find_agent(void *ctx, const char *name)
{
	return sup_daemon_find_agent(ctx, name);
}

static void env_task_done(void *ctx, struct sup_agent *ag, int status, int64_t latency_ns,
			  double quality)
{
	sup_monitor_task_done(((struct sup_daemon *)ctx)->monitor, ag, status, latency_ns, quality);
}

static void env_event(void *ctx, const char *kind, json_t *data, const char *msg)
{
	sup_daemon_event(ctx, SUP_LOG_INFO, kind, data, "%s", msg);
}

static uint64_t env_fleet_cpu_ns(void *ctx)
{
	return sup_monitor_fleet_cpu_ns(((struct sup_daemon *)ctx)->monitor);
}

static bool env_shutting_down(void *ctx)
{
	return ((struct sup_daemon *)ctx)->shutting_down;
}

/* The ring half: tasks into real agents' incarnations, over the
 * incarnation's channel (incarnation/incarnation.h), which alone touches
 * the rings. */
static int env_ring_send(void *d, struct sup_agent *ag, const struct tier_task_hdr *h, uint64_t id,
			 const void *body, uint32_t len)
{
	const struct sup_inc_task t = {
		.id = id,
		.deadline_ns = h->deadline_ns,
		.attempt = h->attempt,
		.flags = h->flags,
		.type_len = h->type_len,
		.context_len = h->context_len,
		.len = len - h->type_len - h->context_len,
		.data = body,
	};

	(void)d;
	return sup_inc_send(ag->inc, &t);
}

static int env_ring_cancel(void *d, struct sup_agent *ag, uint64_t id)
{
	(void)d;
	return sup_inc_cancel(ag->inc, id);
}

/* A corrupt ring faults the incarnation inside sup_inc_flush; a failed
 * wake-up is tierd's, and only logged: the agent polls anyway. */
static void env_ring_publish(void *d, struct sup_agent *ag)
{
	struct sup_daemon *dm = d;
	int r = sup_inc_flush(ag->inc);

	if (r < 0)
		sup_log(&dm->log, SUP_LOG_ERR, "agent %s: waking it: %s", ag->name, tier_strerror(r));
}

static uint32_t env_ring_max_record(void *d, struct sup_agent *ag)
{
	(void)d;
	return sup_inc_max_payload(ag->inc);
}

static void env_ring_fault(void *d, struct sup_agent *ag, const char *what, int err)
{
	(void)d;
	sup_inc_fault(ag->inc, what, err);
}

void sup_daemon_tasks_env(struct sup_daemon *d, struct sup_tasks_env *env)
{
	*env = (struct sup_tasks_env){
		.ctx = d,
		.conf = env_conf,
		.now = env_now,
		.now_fresh = env_now_fresh,
		.timer_arm = env_timer_arm,
		.timer_disarm = env_timer_disarm,
		.defer = env_defer,
		.nagents = env_nagents,
		.agent = env_agent,
		.find_agent = env_find_agent,
		.send = env_ring_send,
		.cancel = env_ring_cancel,
		.publish = env_ring_publish,
		.max_record = env_ring_max_record,
		.fault = env_ring_fault,
		.task_done = env_task_done,
		.event = env_event,
		.fleet_cpu_ns = env_fleet_cpu_ns,
		.shutting_down = env_shutting_down,
	};
}
