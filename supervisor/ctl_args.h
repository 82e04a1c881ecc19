/* SPDX-License-Identifier: MIT */
/*
 * ctl_args — the numbers a control client sends, checked before use: a
 * client's integer or milliseconds must never wrap, overflow a deadline or
 * size an allocation beyond what the command allows. Pure functions on
 * jansson values (unit-tested in tests/test_ctl_proto.c); the commands reply
 * with the error naming the argument and its range.
 */
#ifndef SUP_CTL_ARGS_H
#define SUP_CTL_ARGS_H

#include <jansson.h>
#include <stdint.h>

/* The longest deadline a client may ask for: a week, in ms. Beyond it a
 * deadline in ns would come near int64_t's end, and no task is meant to
 * run that long. */
#define SUP_CTL_TIMEOUT_MS_MAX (7 * 86400 * 1000.0)

/* An integer in [lo, hi]: 0 and *ret; v NULL (absent): 0 and dflt;
 * -EINVAL not an integer; -ERANGE outside. */
int sup_ctl_arg_int(const json_t *v, int64_t lo, int64_t hi, int64_t dflt, int64_t *ret);
/* Milliseconds (any JSON number) in [lo, hi], lo itself excluded when
 * lo_open, as ns in *ret_ns (hi * 1e6 must fit int64_t); absent: dflt_ns.
 * -EINVAL, -ERANGE as above. */
int sup_ctl_arg_ms(const json_t *v, double lo, int lo_open, double hi, int64_t dflt_ns,
		   int64_t *ret_ns);
/* A "tier": 0..4; missing when absent; -1 for anything else (a cast of
 * 2^32 + 1 would otherwise make it tier 1). */
int sup_ctl_arg_tier(const json_t *v, int missing);

#endif
