/* SPDX-License-Identifier: MIT */
/* Bounds on the numbers control clients send. */
#include <errno.h>

#include "ctl_args.h"

int sup_ctl_arg_int(const json_t *v, int64_t lo, int64_t hi, int64_t dflt, int64_t *ret)
{
	if (!v) {
		*ret = dflt;
		return 0;
	}
	if (!json_is_integer(v))
		return -EINVAL;
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return -ERANGE;
	*ret = json_integer_value(v);
	return 0;
}

int sup_ctl_arg_ms(const json_t *v, double lo, int lo_open, double hi, int64_t dflt_ns,
		   int64_t *ret_ns)
{
	double ms;

	if (!v) {
		*ret_ns = dflt_ns;
		return 0;
	}
	if (!json_is_number(v))
		return -EINVAL;
	ms = json_number_value(v);
	/* Compared as doubles before any conversion: converting one out of
	 * int64_t's range is itself undefined. */
	if (ms < lo || (lo_open && ms == lo) || ms > hi)
		return -ERANGE;
	*ret_ns = (int64_t)(ms * 1e6);
	return 0;
}

int sup_ctl_arg_tier(const json_t *v, int missing)
{
	int64_t t;

	if (!v)
		return missing;
	return sup_ctl_arg_int(v, 0, 4, 0, &t) < 0 ? -1 : (int)t;
}
