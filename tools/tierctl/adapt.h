/* SPDX-License-Identifier: MIT */
/*
 * tierctl commands that measure and adapt: top (live view), history,
 * limits and limit (the allocator's values and operator pins), analyze
 * (the optimiser's bottleneck report), optimiser and allocator on|off.
 */
#ifndef TCTL_ADAPT_H
#define TCTL_ADAPT_H

#include "commands.h"

int tctl_args_limits(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		     json_t **ret_args);
int tctl_args_limit(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		    json_t **ret_args);
int tctl_args_history(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		      json_t **ret_args);
int tctl_args_onoff(const struct tctl_cmd *cmd, int argc, char **argv, char *err, size_t errlen,
		    json_t **ret_args);

void tctl_render_limits(FILE *out, const char *label, const json_t *r);
void tctl_render_history(FILE *out, const char *label, const json_t *r);
void tctl_render_analyze(FILE *out, const char *label, const json_t *r);
/* {"<label>": bool}: "<label> on" / "<label> off". */
void tctl_render_onoff(FILE *out, const char *label, const json_t *r);
/* One frame of `top`. */
void tctl_render_top(FILE *out, const char *label, const json_t *r);

/* top: refresh in place every second until q or Ctrl-C; --once (or
 * --json) prints one snapshot. */
int tctl_run_top(const struct tctl_cmd *cmd, const struct tctl_opts *o, int argc, char **argv);

/* Shared by the renderers. A number field (false: absent or not a number). */
bool tctl_num(const json_t *o, const char *key, double *ret);
/* "1.5K", "12M", "3.2G" (binary units); "-" for a negative or non-finite
 * value. */
const char *tctl_fmt_bytes(double v, char *buf, size_t len);
/* A number field times scale with prec decimals; "-" when absent. */
const char *tctl_fmt_fixed(const json_t *o, const char *key, double scale, int prec, char *buf,
			   size_t len);

#endif
