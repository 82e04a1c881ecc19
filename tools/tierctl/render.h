/* SPDX-License-Identifier: MIT */
/*
 * tierctl's human output: aligned tables and the renderers of each
 * command's result. A field that is missing, null or of the wrong type
 * prints as "-", so an older or newer tierd still renders.
 */
#ifndef TCTL_RENDER_H
#define TCTL_RENDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

struct tctl_table {
	unsigned ncols;
	size_t   nrows, cap;
	char   **cells;     /* nrows * ncols, row-major; row 0 is the header */
};

void tctl_table_init(struct tctl_table *t, unsigned ncols);
/* Copies ncols strings (NULL prints as "-"). 0 or -ENOMEM. */
int tctl_table_add(struct tctl_table *t, const char *const *cells);
/* Columns padded to their widest cell, two spaces apart. */
void tctl_table_print(const struct tctl_table *t, FILE *out);
void tctl_table_free(struct tctl_table *t);

/* Field formatters: return buf (or a constant), "-" when the field is
 * absent or not of the expected type. */
const char *tctl_fmt_str(const json_t *obj, const char *key, char *buf, size_t len);
const char *tctl_fmt_int(const json_t *obj, const char *key, char *buf, size_t len);
const char *tctl_fmt_bool(const json_t *obj, const char *key);
/* Seconds as "4.2s", "37s", "5m07s", "3h12m", "2d04h". */
const char *tctl_fmt_duration(const json_t *obj, const char *key, char *buf, size_t len);

/* Renderers: out, the command's label (from its table row), the result. */
typedef void (*tctl_render_fn)(FILE *out, const char *label, const json_t *result);
void tctl_render_status(FILE *out, const char *label, const json_t *result);
void tctl_render_agents(FILE *out, const char *label, const json_t *result);
/* {"agents": [names]}: "<label>: a, b" */
void tctl_render_affected(FILE *out, const char *label, const json_t *result);
void tctl_render_reload(FILE *out, const char *label, const json_t *result);
/* Prints label as a sentence, ignores the result. */
void tctl_render_message(FILE *out, const char *label, const json_t *result);

#endif
