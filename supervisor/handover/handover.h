/* SPDX-License-Identifier: MIT */
/*
 * handover — the state one tierd hands to the next across execve (live
 * upgrade): a versioned binary image in a sealed memfd, plus the table of
 * file descriptors it names by number (docs/handover.md).
 *
 * The writer collects sections of typed fields and fds; finish() clears
 * FD_CLOEXEC on every fd in the table and seals the memfd. The reader
 * validates everything (seals, size, magic, version, checksum, each fd's
 * kind) before a caller touches anything; its getters bounds-check and
 * latch the first error, so a restore reads on and checks once.
 */
#ifndef SUP_HANDOVER_H
#define SUP_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef SUP_HO_FORMAT
#define SUP_HO_FORMAT 1            /* tests build a bumped one: -DSUP_HO_FORMAT=N */
#endif

/* The environment variable that carries the state memfd's number. */
#define SUP_HO_ENV "TIERD_STATE_FD"

enum sup_ho_fd_kind {
	SUP_HO_FD_ANY,          /* not checked beyond being open */
	SUP_HO_FD_PIDFD,
	SUP_HO_FD_MEMFD,
	SUP_HO_FD_EVENTFD,
	SUP_HO_FD_PIPE,
	SUP_HO_FD_UNIX_LISTEN,  /* AF_UNIX SOCK_STREAM, listening */
	SUP_HO_FD_UNIX_STREAM,  /* AF_UNIX SOCK_STREAM, connected */
	SUP_HO_FD_TCP_LISTEN,   /* AF_INET/AF_INET6 SOCK_STREAM, listening */
	SUP_HO_FD_DIR,
	SUP_HO_FD_FILE,         /* regular file */
	SUP_HO_FD_NSFS,         /* a namespace (/proc/PID/ns/...) */
	SUP_HO_FD_BPF_MAP,
	SUP_HO_FD_BPF_LINK,
	SUP_HO_FD_BPF_PROG,
	SUP_HO_FD_NKINDS,
};

/* Section tags. */
enum {
	SUP_HO_SEC_DAEMON = 1,
	SUP_HO_SEC_CGROUP,
	SUP_HO_SEC_AGENTS,
	SUP_HO_SEC_TASKS,
	SUP_HO_SEC_WORKFLOWS,
	SUP_HO_SEC_ALLOCATOR,
	SUP_HO_SEC_EVENTS,
	SUP_HO_SEC_WAL,
	SUP_HO_SEC_ACCT,
	SUP_HO_SEC_CTL,
	SUP_HO_SEC_METRICS,
	SUP_HO_SEC_MONITOR,
};

struct sup_ho_w;

struct sup_ho_w *sup_ho_w_new(void);
/* Open a section (sections do not nest); end() patches its length. */
void sup_ho_w_begin(struct sup_ho_w *w, uint32_t tag, uint32_t version);
void sup_ho_w_end(struct sup_ho_w *w);
void sup_ho_w_u8(struct sup_ho_w *w, uint8_t v);
void sup_ho_w_u16(struct sup_ho_w *w, uint16_t v);
void sup_ho_w_u32(struct sup_ho_w *w, uint32_t v);
void sup_ho_w_u64(struct sup_ho_w *w, uint64_t v);
void sup_ho_w_i64(struct sup_ho_w *w, int64_t v);
void sup_ho_w_f64(struct sup_ho_w *w, double v);
/* u32 length + bytes (p may be NULL when n is 0). */
void sup_ho_w_bytes(struct sup_ho_w *w, const void *p, size_t n);
/* A string; NULL is kept apart from "". */
void sup_ho_w_str(struct sup_ho_w *w, const char *s);
/* An fd in the table (-1: "none"); the field holds its table index. */
void sup_ho_w_fd(struct sup_ho_w *w, int fd, enum sup_ho_fd_kind kind);
/* Clear FD_CLOEXEC on every table fd, write the image into a sealed memfd
 * (itself not close-on-exec): its fd, or -errno with err filled (an
 * allocation failure anywhere before is sticky and reported here). */
int  sup_ho_w_finish(struct sup_ho_w *w, char *err, size_t errlen);
/* The exec failed and this process goes on: FD_CLOEXEC back on the table's
 * fds (the memfd is the caller's to close). */
void sup_ho_w_abort(struct sup_ho_w *w);
void sup_ho_w_free(struct sup_ho_w *w);

struct sup_ho_r;

/* Validate before anything is touched: seals, size, magic, version (==
 * SUP_HO_FORMAT; both numbers named when not), checksum, every table fd
 * open and of its kind. NULL with err filled naming the first problem;
 * nothing is closed on failure (a rollback needs the fds). */
struct sup_ho_r *sup_ho_r_open(int memfd, char *err, size_t errlen);
/* Enter the first section with that tag: false if absent. Sections are
 * read in any order; reading past a section's end is an error, unread
 * bytes at its end are not (a newer writer's additions). */
bool sup_ho_r_section(struct sup_ho_r *r, uint32_t tag, uint32_t *version);
bool sup_ho_r_u8(struct sup_ho_r *r, uint8_t *v);
bool sup_ho_r_u16(struct sup_ho_r *r, uint16_t *v);
bool sup_ho_r_u32(struct sup_ho_r *r, uint32_t *v);
bool sup_ho_r_u64(struct sup_ho_r *r, uint64_t *v);
bool sup_ho_r_i64(struct sup_ho_r *r, int64_t *v);
bool sup_ho_r_f64(struct sup_ho_r *r, double *v);
/* Bytes: a pointer into the mapped image (valid until free), at most max
 * long (longer is an error). */
bool sup_ho_r_bytes(struct sup_ho_r *r, const void **p, uint32_t *len, uint32_t max);
/* A string copied into buf (NUL-terminated); an error if it does not fit.
 * *was_null (may be NULL) says the writer passed NULL. */
bool sup_ho_r_str(struct sup_ho_r *r, char *buf, size_t cap, bool *was_null);
/* A malloc'd copy (NULL for a NULL string) at most max bytes long. */
bool sup_ho_r_strdup(struct sup_ho_r *r, char **ret, size_t max);
/* Claim the fd at this field: -1 for "none"; an error if the table says
 * another kind or it was claimed already. */
bool sup_ho_r_fd(struct sup_ho_r *r, enum sup_ho_fd_kind kind, int *fd);
bool sup_ho_r_ok(const struct sup_ho_r *r);
/* The first error: "section 3 (tasks): truncated at offset 1234 ..." */
const char *sup_ho_r_error(const struct sup_ho_r *r);
/* A problem the caller found in what it read (sticky, like the others). */
void sup_ho_r_fail(struct sup_ho_r *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Success: FD_CLOEXEC on every claimed fd; close table fds never claimed. */
void sup_ho_r_commit(struct sup_ho_r *r);
/* Unmaps; closes nothing (after commit, or for a rollback). */
void sup_ho_r_free(struct sup_ho_r *r);

#endif
