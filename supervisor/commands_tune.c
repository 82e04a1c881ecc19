/* SPDX-License-Identifier: MIT */
/* Control commands that measure and adapt: top, history, limits, limit,
 * analyze, optimiser, allocator. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "allocator.h"
#include "commands_internal.h"
#include "config/config.h"
#include "ctl.h"
#include "ctl_args.h"
#include "daemon.h"
#include "monitor.h"
#include "optimiser.h"

/* ---- measure and adapt ------------------------------------------------------- */

void sup_cmd_top(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	(void)args;
	sup_ctl_reply_ok(c, id, sup_monitor_json(d->monitor));
}

void sup_cmd_history(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	int tier = sup_ctl_arg_tier(json_object_get(args, "tier"), 0);
	int64_t n;

	if (tier < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'tier' must be 0 (machine) or 1..4");
		return;
	}
	if (sup_ctl_arg_int(json_object_get(args, "n"), 1, SUP_MON_HISTORY, 60, &n) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "'n' must be 1..%d (the points kept)", SUP_MON_HISTORY);
		return;
	}
	sup_ctl_reply_ok(c, id, json_pack("{s:i, s:o}", "tier", tier, "points",
		sup_monitor_history_json(d->monitor, tier, (unsigned)n)));
}

void sup_cmd_limits(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	sup_ctl_reply_ok(c, id, sup_allocator_json(d->alloc, json_is_true(json_object_get(args, "explain"))));
}

/* "30%" of the machine, "1.5" cores; "2G" bytes; "off" clears a pin. */
static int pin_value(json_t *v, bool cpu, double cores, double *ret)
{
	const char *s = json_string_value(v);
	char *end;
	double x;

	if (!v) {
		*ret = -2;  /* not given: keep */
		return 0;
	}
	if (json_is_number(v)) {
		*ret = json_number_value(v);
		return *ret >= 0 ? 0 : -EINVAL;
	}
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "off") || !strcmp(s, "none")) {
		*ret = -1;
		return 0;
	}
	if (cpu) {
		x = strtod(s, &end);
		if (end == s || x < 0)
			return -EINVAL;
		if (*end == '%' && !end[1])
			x = x / 100.0 * cores;
		else if (*end)
			return -EINVAL;
		*ret = x;
		return 0;
	}
	{
		uint64_t bytes;

		if (sup_parse_size(s, &bytes) < 0)
			return -EINVAL;
		*ret = (double)bytes;
	}
	return 0;
}

void sup_cmd_limit(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	json_t *jt = json_object_get(args, "tier");
	double cores = sup_monitor_machine(d->monitor)->cpus, cpu, mem;
	int tier = sup_ctl_arg_tier(jt, -1);

	if (tier < 1) {
		sup_ctl_reply_err(c, id, EINVAL, "'tier' must be 1..4");
		return;
	}
	if (pin_value(json_object_get(args, "cpu"), true, cores, &cpu) < 0 ||
	    pin_value(json_object_get(args, "memory"), false, 0, &mem) < 0) {
		sup_ctl_reply_err(c, id, EINVAL, "cpu takes a percent of the machine (\"30%%\") or cores "
				  "(\"1.5\"); memory takes a size (\"2G\"); \"off\" removes a pin");
		return;
	}
	if (cpu > cores * 64) {
		sup_ctl_reply_err(c, id, ERANGE, "cpu %.2f cores is more than this machine has", cpu);
		return;
	}
	sup_allocator_pin(d->alloc, tier, cpu, mem);
	sup_daemon_event(d, SUP_LOG_NOTICE, "pin", json_pack("{s:i, s:f, s:f}", "tier", tier,
			 "cpu_cores", cpu, "memory_bytes", mem),
			 "operator pin on tier %d: cpu %s, memory %s", tier,
			 cpu == -1 ? "unpinned" : cpu == -2 ? "unchanged" : "pinned",
			 mem == -1 ? "unpinned" : mem == -2 ? "unchanged" : "pinned");
	sup_ctl_reply_ok(c, id, sup_allocator_json(d->alloc, true));
}

void sup_cmd_analyze(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	(void)args;
	sup_ctl_reply_ok(c, id, sup_optimiser_analyze(d->opt));
}

static int onoff(struct sup_ctl_client *c, uint64_t id, json_t *args, bool *ret)
{
	const char *v = json_string_value(json_object_get(args, "state"));

	if (v && (!strcmp(v, "on") || !strcmp(v, "off"))) {
		*ret = !strcmp(v, "on");
		return 0;
	}
	sup_ctl_reply_err(c, id, EINVAL, "'state' must be \"on\" or \"off\"");
	return -EINVAL;
}

void sup_cmd_optimiser(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	bool on;

	if (onoff(c, id, args, &on) < 0)
		return;
	sup_optimiser_enable(d->opt, on);
	sup_daemon_event(d, SUP_LOG_NOTICE, "optimiser", json_pack("{s:b}", "enabled", on),
			 "optimiser switched %s by an operator", on ? "on" : "off");
	sup_ctl_reply_ok(c, id, json_pack("{s:b}", "optimiser", on));
}

void sup_cmd_allocator(struct sup_daemon *d, struct sup_ctl_client *c, uint64_t id, json_t *args)
{
	bool on;

	if (onoff(c, id, args, &on) < 0)
		return;
	sup_allocator_enable(d->alloc, on);
	sup_daemon_event(d, SUP_LOG_NOTICE, "allocator", json_pack("{s:b}", "enabled", on),
			 "allocator switched %s by an operator (knobs left as they are)", on ? "on" : "off");
	sup_ctl_reply_ok(c, id, json_pack("{s:b}", "allocator", on));
}

