/* SPDX-License-Identifier: MIT */
/* The daemon as the task table's and the workflow's env (tasks_env.h). */
#include "agent.h"
#include "config/config.h"
#include "daemon.h"
#include "loop.h"
#include "monitor.h"
#include "tasks_env.h"
#include "tasks_ring.h"

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
		.send = sup_tasks_ring_send,
		.cancel = sup_tasks_ring_cancel,
		.publish = sup_tasks_ring_publish,
		.max_record = sup_tasks_ring_max_record,
		.fault = sup_tasks_ring_fault,
		.task_done = env_task_done,
		.event = env_event,
		.fleet_cpu_ns = env_fleet_cpu_ns,
		.shutting_down = env_shutting_down,
	};
}
