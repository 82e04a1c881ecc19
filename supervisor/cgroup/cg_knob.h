/* SPDX-License-Identifier: MIT */
/*
 * cg_knob — the cgroup v2 knobs tierd sets on tiers and leaves.
 *
 * Each knob has a typed value (struct sup_cg_val). Parsing (from config or
 * a command line), validation and formatting are pure functions, so the
 * exact bytes that reach the kernel are unit-tested. Two ways to apply a
 * value:
 *   - sup_cg_knob_write(): validate, format, write; blocks the caller.
 *   - sup_cg_knob_prepare(): validate and format into a sup_cg_write (dir
 *     fd, file name, bytes); the caller opens dirfd/file O_WRONLY and issues
 *     the write itself, e.g. as an io_uring write, so that a write which
 *     reclaims memory (sup_cg_knob_may_stall) never stalls its loop.
 * Both return -EOPNOTSUPP when the knob's controller is not live on this
 * system (reported once by sup_cg_open; the caller skips the knob), and the
 * kernel's -errno when it refuses the write. sup_cg_errmsg() names it.
 */
#ifndef SUP_CG_KNOB_H
#define SUP_CG_KNOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cg_ctrl.h"
#include "cg_stat.h"

struct sup_cg;

enum sup_cg_knob {
	SUP_CG_K_CPU_WEIGHT,      /* 1..10000 */
	SUP_CG_K_CPU_MAX,         /* quota µs (or max) per period µs */
	SUP_CG_K_CPU_IDLE,        /* 0 or 1 */
	SUP_CG_K_MEMORY_LOW,      /* bytes or max */
	SUP_CG_K_MEMORY_HIGH,
	SUP_CG_K_MEMORY_MAX,
	SUP_CG_K_MEMORY_SWAP_MAX,
	SUP_CG_K_MEMORY_OOM_GROUP, /* 0 or 1 */
	SUP_CG_K_IO_WEIGHT,       /* 1..10000, default or per device */
	SUP_CG_K_IO_BFQ_WEIGHT,   /* 1..1000, default or per device */
	SUP_CG_K_IO_MAX,          /* per device rbps/wbps/riops/wiops */
	SUP_CG_K_PIDS_MAX,        /* 0..4194304 or max */
	SUP_CG_K_CPUSET_CPUS,     /* "0-3,6", or "" for the parent's */
	SUP_CG_K_COUNT,
};

/* io.max: a key left at SUP_CG_UNSET is not written (the kernel keeps its
 * current value); SUP_CG_MAX writes "max". */
#define SUP_CG_UNSET 0
#define SUP_CG_CPU_PERIOD_DEFAULT 100000u
#define SUP_CG_CPUS_MAX 128   /* cpuset.cpus text, NUL included */
#define SUP_CG_VAL_MAX  192   /* longest formatted value */

struct sup_cg_val {
	uint64_t num;            /* weight, bytes, count, 0/1, cpu.max quota; SUP_CG_MAX = max */
	uint64_t period;         /* cpu.max period µs; 0 = SUP_CG_CPU_PERIOD_DEFAULT */
	uint32_t major, minor;   /* io.*: device; 0:0 = the default weight */
	uint64_t rbps, wbps, riops, wiops; /* io.max */
	char     cpus[SUP_CG_CPUS_MAX];    /* cpuset.cpus */
};

/* A write ready to be issued: openat(dirfd, file, O_WRONLY|O_CLOEXEC), then
 * one write of buf[0..len). */
struct sup_cg_write {
	int         dirfd;
	const char *file;        /* static string */
	size_t      len;
	char        buf[SUP_CG_VAL_MAX];
};

const char *sup_cg_knob_file(enum sup_cg_knob k);
enum sup_cg_ctrl sup_cg_knob_ctrl(enum sup_cg_knob k);
/* True for writes that can reclaim memory synchronously in write(2). */
bool sup_cg_knob_may_stall(enum sup_cg_knob k);
/* File name ("memory.max") to knob; -ENOENT if not a knob tierd sets. */
int sup_cg_knob_lookup(const char *file);

/* Kernel syntax: "max", "123", "64M" (K/M/G/T suffixes for bytes),
 * "25000 100000", "8:0 rbps=1048576 wiops=max", "default 100", "0-3,6". */
int sup_cg_knob_parse(enum sup_cg_knob k, const char *text, struct sup_cg_val *ret);
/* 0, or -EINVAL (wrong shape) / -ERANGE (out of the kernel's bounds). */
int sup_cg_knob_validate(enum sup_cg_knob k, const struct sup_cg_val *v);
/* Validate and write the exact bytes for the kernel into buf (no newline
 * except for an empty cpuset, which is "\n": an empty write would not
 * reach the kernel). Returns the length; -ENOBUFS if sz is too small. */
int sup_cg_knob_format(enum sup_cg_knob k, const struct sup_cg_val *v, char *buf, size_t sz);

/* cg may be NULL to skip the controller check (tools, tests). */
int sup_cg_knob_prepare(const struct sup_cg *cg, int dirfd, enum sup_cg_knob k,
			const struct sup_cg_val *v, struct sup_cg_write *ret);
int sup_cg_knob_write(const struct sup_cg *cg, int dirfd, enum sup_cg_knob k,
		      const struct sup_cg_val *v);
/* 1 if dirfd holds the knob's file, 0 if not (io.bfq.weight without BFQ,
 * memory.swap.max without swap accounting), -errno on other errors. */
int sup_cg_knob_present(int dirfd, enum sup_cg_knob k);

#endif
