/* SPDX-License-Identifier: MIT */
/*
 * handover — the state one tierd binary hands to the next across execve(2)
 * (docs/handover.md is the format's reference).
 *
 * The writer collects sections of plain little-endian values and a table of
 * the fds they refer to; sup_ho_w_finish puts both in a sealed memfd whose
 * number is all that passes in the environment (SUP_HO_ENV). The reader
 * checks the whole state before the caller touches anything: seals, sizes,
 * magic, format version, CRC, every section's bounds and every fd of the
 * table (open, of its kind, the same open file). It never closes anything on
 * failure, so the rollback can re-exec the old binary with the same state.
 *
 * Errors are sticky on both sides: a run of writes or reads is checked once
 * at its end (sup_ho_w_finish, sup_ho_r_ok), and the first problem is the
 * one reported.
 */
#ifndef SUP_HANDOVER_H
#define SUP_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A binary reads exactly its own format: the tests build one with a bumped
 * number to see it refused. */
#ifndef SUP_HO_FORMAT
#define SUP_HO_FORMAT 1
#endif

/* The environment variable carrying the state memfd's number. */
#define SUP_HO_ENV "TIERD_STATE_FD"

/* The memfd's name (seen as /memfd:tierd-state in /proc/PID/fd). */
#define SUP_HO_MEMFD_NAME "tierd-state"

/* Section tags: four characters, readable in a hex dump of the state. */
#define SUP_HO_TAG(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SUP_HO_TAG_DAEMON	SUP_HO_TAG('d', 'a', 'e', 'm')
#define SUP_HO_TAG_AGENTS	SUP_HO_TAG('a', 'g', 'n', 't')
#define SUP_HO_TAG_TASKS	SUP_HO_TAG('t', 'a', 's', 'k')
#define SUP_HO_TAG_WORKFLOWS	SUP_HO_TAG('w', 'f', 'l', 'w')
#define SUP_HO_TAG_ALLOCATOR	SUP_HO_TAG('a', 'l', 'l', 'o')
#define SUP_HO_TAG_EVENTS	SUP_HO_TAG('e', 'v', 'n', 't')
#define SUP_HO_TAG_WAL		SUP_HO_TAG('w', 'a', 'l', ' ')
#define SUP_HO_TAG_ACCT		SUP_HO_TAG('a', 'c', 'c', 't')
#define SUP_HO_TAG_CTL		SUP_HO_TAG('c', 't', 'l', ' ')
#define SUP_HO_TAG_METRICS	SUP_HO_TAG('m', 't', 'r', 'c')
#define SUP_HO_TAG_MONITOR	SUP_HO_TAG('m', 'o', 'n', 'i')
#define SUP_HO_TAG_CGROUP	SUP_HO_TAG('c', 'g', 'r', 'p')
#define SUP_HO_TAG_FLEET	SUP_HO_TAG('f', 'l', 'e', 't')  /* the NATS intake */

/* What an fd of the table must be when the next binary reads it. Every fd
 * is also checked to be the same open file (st_dev and st_ino) it was when
 * written. Values are part of the format: append only. */
enum sup_ho_fd_kind {
	SUP_HO_FD_PIDFD = 1,	/* anon_inode:[pidfd] */
	SUP_HO_FD_MEMFD,	/* /memfd:... */
	SUP_HO_FD_EVENTFD,	/* anon_inode:[eventfd] */
	SUP_HO_FD_PIPE,		/* a FIFO, either end */
	SUP_HO_FD_UNIX_LISTEN,	/* AF_UNIX stream socket, listening */
	SUP_HO_FD_TCP_LISTEN,	/* AF_INET/AF_INET6 stream socket, listening */
	SUP_HO_FD_DIR,		/* a directory */
	SUP_HO_FD_FILE,		/* a regular file */
	SUP_HO_FD_BPF_MAP,	/* anon_inode:bpf-map */
	SUP_HO_FD_BPF_LINK,	/* anon_inode:bpf_link */
	SUP_HO_FD_BPF_PROG,	/* anon_inode:bpf-prog */
	SUP_HO_FD_ANY,		/* open and the same file; no kind check */
	SUP_HO_FD_UNIX_STREAM,	/* AF_UNIX stream socket, not listening */
	SUP_HO_FD_KIND_END
};

/* "pidfd", "memfd" ... or "kind N" for a value outside the enum. */
const char *sup_ho_fd_kind_name(enum sup_ho_fd_kind kind);
/* "daemon", "tasks" ... for the tags above, else NULL. */
const char *sup_ho_tag_name(uint32_t tag);

/* ---- writer --------------------------------------------------------------- */
struct sup_ho_w;

/* NULL with errno set on allocation failure. */
struct sup_ho_w *sup_ho_w_new(void);
/* Open a section; sections do not nest (opening one while one is open is a
 * sticky error). */
void sup_ho_w_begin(struct sup_ho_w *w, uint32_t tag, uint32_t version);
/* Close it: its length is patched in. */
void sup_ho_w_end(struct sup_ho_w *w);
/* Values, in the open section (a value outside a section is an error). */
void sup_ho_w_u8(struct sup_ho_w *w, uint8_t v);
void sup_ho_w_u16(struct sup_ho_w *w, uint16_t v);
void sup_ho_w_u32(struct sup_ho_w *w, uint32_t v);
void sup_ho_w_u64(struct sup_ho_w *w, uint64_t v);
void sup_ho_w_i64(struct sup_ho_w *w, int64_t v);
void sup_ho_w_f64(struct sup_ho_w *w, double v);
/* u32 length, then the bytes (n < 2^32 - 1). */
void sup_ho_w_bytes(struct sup_ho_w *w, const void *p, size_t n);
/* u32 length, then the bytes without NUL; NULL is its own value (read back
 * as "" by sup_ho_r_str, as NULL by sup_ho_r_strdup). */
void sup_ho_w_str(struct sup_ho_w *w, const char *s);
/* A reference to fd (-1: "none") as an index into the fd table. The same fd
 * written twice is one table entry (twice with different kinds is an error);
 * an fd that fstat(2) refuses is an error. */
void sup_ho_w_fd(struct sup_ho_w *w, int fd, enum sup_ho_fd_kind kind);
/* Bytes written so far (header and table excluded): for the caller's logs. */
size_t sup_ho_w_size(const struct sup_ho_w *w);
/* Clears FD_CLOEXEC on every fd of the table, writes the memfd (itself not
 * close-on-exec), seals it; its fd, or -errno with err filled (a failure of
 * any call before, allocation included, is reported here). On failure the
 * fds' flags are as they were. */
int sup_ho_w_finish(struct sup_ho_w *w, char *err, size_t errlen);
/* Restore the table fds' FD_CLOEXEC as it was before sup_ho_w_finish (the
 * exec failed and this process goes on; close the memfd yourself). */
void sup_ho_w_abort(struct sup_ho_w *w);
/* NULL is fine. Closes none of the table's fds. */
void sup_ho_w_free(struct sup_ho_w *w);

/* ---- reader --------------------------------------------------------------- */
struct sup_ho_r;

/* Validate memfd's state, touching nothing: NULL with err filled by a
 * sentence naming the first problem (errno set: EINVAL for a bad state,
 * EPROTO for another format version, ENOMEM, or the failing call's). Closes
 * nothing, on failure or success; the reader does not own memfd until
 * sup_ho_r_commit. */
struct sup_ho_r *sup_ho_r_open(int memfd, char *err, size_t errlen);
/* Enter the first section with that tag, at its start (again, if entered
 * before); *version set when not NULL. False if absent or after an error.
 * Sections may be read in any order; unread bytes at a section's end are
 * fine (a newer writer of the same version added none, but the rule lets
 * a section version grow by appending only when the reader allows it). */
bool sup_ho_r_section(struct sup_ho_r *r, uint32_t tag, uint32_t *version);
/* Walk all sections in order: *it starts at 0. Enters the next one and
 * fills its tag and version; false at the end. */
bool sup_ho_r_next_section(struct sup_ho_r *r, size_t *it, uint32_t *tag, uint32_t *version);
/* Bytes left in the entered section. */
size_t sup_ho_r_left(const struct sup_ho_r *r);
/* Values: false (and *v zeroed) on an error, now or before; reading past the
 * end of the section is one. */
bool sup_ho_r_u8(struct sup_ho_r *r, uint8_t *v);
bool sup_ho_r_u16(struct sup_ho_r *r, uint16_t *v);
bool sup_ho_r_u32(struct sup_ho_r *r, uint32_t *v);
bool sup_ho_r_u64(struct sup_ho_r *r, uint64_t *v);
bool sup_ho_r_i64(struct sup_ho_r *r, int64_t *v);
bool sup_ho_r_f64(struct sup_ho_r *r, double *v);
/* A pointer into the mapped state (valid until sup_ho_r_free) and its
 * length; longer than max is an error. */
bool sup_ho_r_bytes(struct sup_ho_r *r, const void **p, uint32_t *len, uint32_t max);
/* NUL-terminated into buf; longer than cap - 1, or with a NUL inside, is an
 * error. A NULL written reads as "". */
bool sup_ho_r_str(struct sup_ho_r *r, char *buf, size_t cap);
/* malloc'ed copy in *s (NULL when NULL was written); at most max bytes. */
bool sup_ho_r_strdup(struct sup_ho_r *r, char **s, size_t max);
/* An fd reference: its number in *fd (-1 for "none"); the table entry must
 * be of that kind. Claims it: sup_ho_r_commit keeps it. Claiming one twice
 * gives the same fd (the writer shares an entry for an fd written twice). */
bool sup_ho_r_fd(struct sup_ho_r *r, enum sup_ho_fd_kind kind, int *fd);
bool sup_ho_r_ok(const struct sup_ho_r *r);
/* The first error ("section 'tasks' v1: truncated at offset 1234 reading a
 * u32 (2 bytes left)"), "" when none. */
const char *sup_ho_r_error(const struct sup_ho_r *r);
/* A problem the caller found in what it read (a value out of range):
 * sticky like the reader's own, prefixed with the section. */
void sup_ho_r_fail(struct sup_ho_r *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Point of no return: FD_CLOEXEC on every claimed fd, every table fd never
 * claimed closed, the state memfd closed (the mapping, and so the pointers
 * of sup_ho_r_bytes, stay valid until sup_ho_r_free). */
void sup_ho_r_commit(struct sup_ho_r *r);
/* Unmaps; closes nothing unless committed before. NULL is fine. */
void sup_ho_r_free(struct sup_ho_r *r);

/* ---- ring regions (tier/ring.h) ------------------------------------------ */
struct tier_shm;
struct tier_shm_owner_state;

/* The creator side of a ring region, in the open section: its memfd, its
 * doorbell eventfd (or none) and tier_shm_owner_state's fields. -EBUSY with
 * a reservation outstanding, -EINVAL for an attacher's handle (nothing
 * written); 0 else (write errors are reported by sup_ho_w_finish). */
int sup_ho_w_ring(struct sup_ho_w *w, const struct tier_shm *shm);
/* What sup_ho_w_ring wrote: the memfd (claimed) in *fd, the state in *st
 * with its doorbell claimed in st->sq_efd; then tier_shm_adopt(*fd, st)
 * checks the region against it. */
bool sup_ho_r_ring(struct sup_ho_r *r, int *fd, struct tier_shm_owner_state *st);

#endif
