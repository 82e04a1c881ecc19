/* SPDX-License-Identifier: MIT */
/*
 * The limits of a loaded config that this host cannot enforce (cg_enforce.h),
 * reported as config warnings. Kept apart from config_check.c so the config
 * parser does not depend on the cgroup code (the config fuzzer links the
 * parser alone).
 */
#include <stdio.h>
#include <string.h>

#include "cgroup/cg_enforce.h"
#include "config/config_internal.h"

/* "memory_max, pids_max (memory: why; pids: why)" for the limits in bits. */
static void unenforced_text(unsigned bits, char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX], char *buf,
			    size_t sz)
{
	unsigned ctrls = 0;
	size_t n;

	sup_limits_format(bits, buf, sz);
	for (int i = 0; i < SUP_LIM_COUNT; i++)
		if (bits & SUP_LIM_BIT(i))
			ctrls |= 1u << sup_limit_ctrl((enum sup_limit)i);
	for (int c = 0; c < SUP_CG_NCTRL; c++) {
		n = strlen(buf);
		if ((ctrls & (1u << c)) && n + 1 < sz)
			snprintf(buf + n, sz - n, "%s%s: %s", ctrls & ((1u << c) - 1) ? "; " : " (",
				 sup_cg_ctrl_name((enum sup_cg_ctrl)c), why[c][0] ? why[c] : "unavailable");
	}
	n = strlen(buf);
	if (ctrls && n + 1 < sz)
		snprintf(buf + n, sz - n, ")");
}

void sup_config_check_host(const struct sup_config *c, unsigned live,
			   char why[SUP_CG_NCTRL][SUP_CG_WHY_MAX], struct sup_config_errors *errs)
{
	struct cfg_ctx x = { .c = (struct sup_config *)c, .errs = errs, .path = c->path };
	char text[2048], label[SUP_AGENT_NAME_MAX + 16];

	for (int t = 0; t < SUP_NTIERS; t++) {
		unsigned bits = sup_limits_unenforced(&c->tiers[t].limits, live);

		if (!bits)
			continue;
		unenforced_text(bits, why, text, sizeof(text));
		snprintf(label, sizeof(label), "[tier%d]", t + 1);
		cfg_diag(&x, true, 0, label, "not enforceable on this host: %s", text);
	}
	for (size_t i = 0; i < c->n_agents; i++) {
		const struct sup_agent_conf *a = &c->agents[i];
		unsigned bits = sup_limits_unenforced(&a->limits, live);

		if (!bits)
			continue;
		unenforced_text(bits, why, text, sizeof(text));
		snprintf(label, sizeof(label), "[agent %s]", a->name);
		cfg_diag(&x, true, a->line, label, "not enforceable on this host: %s", text);
	}
}
