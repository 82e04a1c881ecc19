/* SPDX-License-Identifier: MIT */
/*
 * agd_errlog — one child's stderr: cut into lines, forwarded through
 * agd_forward, the last line kept (exec mode reports it as the reason of a
 * failure), and a flood (more bytes in one second than --flood-bytes)
 * reported once.
 */
#ifndef AGD_ERRLOG_H
#define AGD_ERRLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agd_bridge.h"

#define AGD_ERRLOG_LINE 480   /* longer lines are cut */
#define AGD_ERRLOG_LAST 256

struct agd_errlog {
	char     line[AGD_ERRLOG_LINE];
	size_t   len;
	bool     cut;                  /* dropping the rest of an overlong line */
	char     last[AGD_ERRLOG_LAST]; /* last non-empty line, NUL-terminated */
	int64_t  win_ns;
	uint64_t win_bytes;
	bool     flooded;
};

void agd_errlog_init(struct agd_errlog *e, int64_t now);
/* Bytes read from the stderr pipe. Returns true the first time the flood
 * threshold is crossed; the caller decides what a flood costs the child. */
bool agd_errlog_feed(struct agd_errlog *e, struct agd *g, const char *buf, size_t n);
/* End of the stream: a last line without newline still counts. */
void agd_errlog_eof(struct agd_errlog *e, struct agd *g);
/* Read and feed until the pipe is empty or budget bytes were read. Returns
 * 1 on a flood, 0 when more may come, -1 at EOF or on an error (*fd is
 * closed then). */
int agd_errlog_drain(struct agd_errlog *e, struct agd *g, int *fd, size_t budget);

#endif
