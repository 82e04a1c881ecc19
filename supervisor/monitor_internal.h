/* SPDX-License-Identifier: MIT */
/*
 * The monitor's insides, shared by monitor.c and monitor_state.c (its part
 * of the live-upgrade state). Nothing else includes this.
 */
#ifndef SUP_MONITOR_INTERNAL_H
#define SUP_MONITOR_INTERNAL_H

#include "agent.h"
#include "monitor.h"

struct mon_agent {
	struct sup_agent         *ag;
	uint64_t                  cgid;
	bool                      tracked;
	bool                      have_last;
	struct sup_acct_sample    last;
	struct sup_mon_agent_view view;
	int64_t                   resp[SUP_MON_RESP_WINDOW];
	float                     qual[SUP_MON_RESP_WINDOW];
	unsigned                  nresp, resp_pos;
	unsigned                  nqual, qual_pos;
	uint8_t                   ready[SUP_MON_STABILITY];
	unsigned                  nready, ready_pos;
	struct mon_agent         *next;
};

struct hist_point {
	int64_t ts_ns;
	float   cpu, runq, p95_ms, mem, quality;
};

/* Alert keys: which threshold, for which tier (0 = machine). */
enum { AL_RESPONSE, AL_UTIL, AL_EFFICIENCY, AL_QUALITY, AL_STABILITY, AL_N };

struct sup_monitor {
	struct sup_monitor_deps  dep;
	struct sup_acct         *acct;
	struct mon_agent        *agents;
	struct sup_mon_machine   m;
	struct sup_mon_tier_view tiers[SUP_NTIERS + 1];
	struct hist_point        hist[SUP_NTIERS + 1][SUP_MON_HISTORY];
	unsigned                 nhist, hist_pos;
	int64_t                  last_ns;
	uint64_t                 stat_busy, stat_steal, stat_total;
	uint64_t                 self_usec;
	bool                     alert[AL_N][SUP_NTIERS + 1];
	long                     hz;
	struct sup_agent_observer obs;   /* hears of replaced leaves */
};

#endif
