/* SPDX-License-Identifier: MIT */
/*
 * config — tierd's INI configuration (docs/config.md).
 *
 *   [supervisor]     daemon-wide settings, allocator and monitor thresholds
 *   [tier1]..[tier4] per-tier shares, workflow pacing, cgroup limits
 *   [agent NAME]     one per agent: what to run, as whom, how to restart it
 *
 * sup_config_load() reads a whole file, checks every key, resolves users and
 * groups (so nothing blocks on NSS later, in the event loop), applies the
 * defaults below and cross-checks the result. A bad file yields NULL and a
 * list of every problem found, each naming file:line, section, key and what
 * was expected: nothing starts on a bad config, and a bad reload leaves the
 * running one in place.
 *
 * The result is plain data: arrays and owned strings, freed by
 * sup_config_free(). Agents keep file order. Numeric limits carry a bit in
 * sup_limits.set so "not configured" differs from any value: the allocator
 * treats configured values as static limits and pins.
 *
 * Library code: returns -errno / NULL+errno, never logs; messages are
 * returned for the caller to log.
 */
#ifndef SUP_CONFIG_H
#define SUP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/tiers.h"   /* SUP_NTIERS */
#include "common/units.h"   /* SUP_NS_PER_*, number, duration and size parsers */

/* ---- defaults: [supervisor] -------------------------------------------- */
#define SUP_DEF_CGROUP_ROOT          "tierd"
#define SUP_DEF_CONTROL_SOCKET       "/run/tierd/tierd.sock"
#define SUP_DEF_MONITOR_INTERVAL_NS  (1 * SUP_NS_PER_SEC)      /* seed */
#define SUP_DEF_LOG_LEVEL            6                         /* info */
#define SUP_DEF_METRICS_ADDRESS      "127.0.0.1:9464"
#define SUP_DEF_BACKOFF_BASE_NS      (100 * SUP_NS_PER_MS)
#define SUP_DEF_BACKOFF_CAP_NS       (30 * SUP_NS_PER_SEC)
#define SUP_DEF_STABLE_AFTER_NS      (10 * SUP_NS_PER_SEC)
#define SUP_DEF_CRASH_LOOP_COUNT     5
#define SUP_DEF_CRASH_LOOP_WINDOW_NS (60 * SUP_NS_PER_SEC)
#define SUP_DEF_TASK_RETRY_BUDGET    3
#define SUP_DEF_RESULT_RETENTION_NS  (300 * SUP_NS_PER_SEC)
#define SUP_DEF_RESULT_RETENTION_MAX   10000
#define SUP_DEF_RESULT_RETENTION_BYTES ((uint64_t)64 << 20)
#define SUP_DEF_CONTROL_IDLE_TIMEOUT_NS (60 * SUP_NS_PER_SEC)
#define SUP_DEF_CONTROL_MAX_PER_UID  32
#define SUP_DEF_TASK_QUEUE_LIMIT     1024
#define SUP_DEF_MAX_PAYLOAD          (60 * 1024)
#define SUP_DEF_SPIN_WINDOW_NS       (50 * SUP_NS_PER_US)
#define SUP_DEF_AGENT_RECORD_RATE    100000
#define SUP_DEF_AGENT_LOG_RATE       100
#define SUP_DEF_AGENT_OUTPUT_RATE    (1024 * 1024)
#define SUP_DEF_AGENT_WAKE_RATE      10000
#define SUP_DEF_AGENT_FLOOD_KILL_AFTER_NS (10 * SUP_NS_PER_SEC)
#define SUP_DEF_UTILISATION_THRESHOLD 80.0                     /* seed, % */
#define SUP_DEF_SAFETY_MARGIN        0.8                       /* seed, fraction */
#define SUP_DEF_HYSTERESIS           5.0                       /* % */
#define SUP_DEF_OPTIMISER            true
#define SUP_DEF_RESPONSE_TIME_TARGET_NS (5 * SUP_NS_PER_SEC)   /* seed */
#define SUP_DEF_EFFICIENCY_TARGET    70.0                      /* seed, % */
#define SUP_DEF_QUALITY_THRESHOLD    7.0                       /* seed, 0..10 */
#define SUP_DEF_STABILITY_TARGET     95.0                      /* seed, % */
#define SUP_DEF_JOURNAL_DIR          "/var/lib/tierd/journal"
#define SUP_DEF_JOURNAL_SYNC_WINDOW_NS (500 * SUP_NS_PER_US)  /* docs/journal.md: why */
#define SUP_DEF_JOURNAL_MAX_BYTES    ((uint64_t)1 << 30)
#define SUP_DEF_JOURNAL_SEGMENT_BYTES ((uint64_t)64 << 20)

/* ---- defaults: [fleet] (docs/fleet.md) ----------------------------------- */
#define SUP_DEF_FLEET_TASKS_STREAM   "TIERD_TASKS"
#define SUP_DEF_FLEET_RESULTS_STREAM "TIERD_RESULTS"
#define SUP_DEF_FLEET_PREFIX         "tierd"
#define SUP_DEF_FLEET_ACK_WAIT_NS    (30 * SUP_NS_PER_SEC)
#define SUP_DEF_FLEET_MAX_DELIVER    5
#define SUP_DEF_FLEET_FETCH_BATCH_MAX 64
#define SUP_DEF_FLEET_FETCH_WAIT_NS  (1 * SUP_NS_PER_SEC)
#define SUP_DEF_FLEET_MAX_MESSAGE_BYTES 65536
#define SUP_DEF_FLEET_MAX_HEADER_BYTES  4096
#define SUP_DEF_FLEET_IN_PROGRESS_FRACTION 0.5
#define SUP_DEF_FLEET_MAX_RUNS       1

/* ---- defaults: [tierN] (the seed's tier_allocations, tier 1..4) -------- */
#define SUP_DEF_CPU_SHARES     { 15.0, 35.0, 40.0, 10.0 }
#define SUP_DEF_MEMORY_SHARES  { 10.0, 30.0, 50.0, 10.0 }
#define SUP_DEF_IO_SHARES      { 20.0, 30.0, 40.0, 10.0 }
#define SUP_DEF_NETWORK_SHARES { 15.0, 35.0, 40.0, 10.0 }
#define SUP_DEF_BATCH_SIZE            4                        /* seed */
#define SUP_DEF_STAGGER_NS            (200 * SUP_NS_PER_MS)    /* seed */
#define SUP_DEF_PROCESSING_TIMEOUT_NS (30 * SUP_NS_PER_SEC)    /* seed */

/* ---- defaults: [agent NAME] -------------------------------------------- */
#define SUP_DEF_RESTART          SUP_RESTART_ON_FAILURE
#define SUP_DEF_START_TIMEOUT_NS (5 * SUP_NS_PER_SEC)
#define SUP_DEF_STOP_TIMEOUT_NS  (5 * SUP_NS_PER_SEC)
#define SUP_DEF_RING_SIZE        (256u * 1024u)
#define SUP_DEF_MODE             SUP_MODE_NATIVE
#define SUP_DEF_EXEC_TIMEOUT_NS  (30 * SUP_NS_PER_SEC)
#define SUP_DEF_SANDBOX          true
/* Without 'user', a root tierd runs a tier-N agent as this user (one per
 * tier, so agents of one tier cannot signal or ptrace another's). */
#define SUP_DEF_USER_FMT         "tierd-t%u"

/* ---- bounds ------------------------------------------------------------- */
#define SUP_AGENT_NAME_MAX   48          /* [A-Za-z0-9_.-], not starting with '.' */
#define SUP_RING_SIZE_MIN    4096u
#define SUP_RING_SIZE_MAX    (1u << 30)
/* The largest record a ring accepts: half the ring, at most 64 KiB. */
#define SUP_RING_RECORD_MAX  (64u * 1024u)
/* Bytes a task adds around its payload: the record header (16) and the task
 * header with its type name (budgeted at 64). */
#define SUP_TASK_OVERHEAD    (16u + 64u)
#define SUP_IO_MAX_DEVICES   8
#define SUP_CPUSET_MAX       128         /* cpuset_cpus text, NUL included */
#define SUP_RLIMIT_COUNT     RLIM_NLIMITS
#define SUP_CONFIG_MAX_BYTES (4u << 20)  /* larger files are refused */
#define SUP_CONFIG_MAX_DIAGS 100         /* further messages are counted only */
#define SUP_CONFIG_MAX_AGENTS 10000

/* "max" in a limit (memory_*, pids_max, io_max keys, cpu_max quota). */
#define SUP_LIMIT_MAX UINT64_MAX

enum sup_resource { SUP_RES_CPU, SUP_RES_MEMORY, SUP_RES_IO, SUP_RES_NETWORK, SUP_NRES };

enum sup_restart { SUP_RESTART_ALWAYS, SUP_RESTART_ON_FAILURE, SUP_RESTART_NEVER };

/* native: the binary speaks the rings through libtier; stdio and exec run it
 * under agentd (one long-lived process fed tasks on stdin, or one process
 * per task). */
enum sup_agent_mode { SUP_MODE_NATIVE, SUP_MODE_STDIO, SUP_MODE_EXEC };

/* cgroup knobs an operator may set on a tier or an agent. */
enum sup_limit {
	SUP_LIM_CPU_WEIGHT,
	SUP_LIM_CPU_MAX,
	SUP_LIM_CPU_IDLE,
	SUP_LIM_MEMORY_LOW,
	SUP_LIM_MEMORY_HIGH,
	SUP_LIM_MEMORY_MAX,
	SUP_LIM_MEMORY_SWAP_MAX,
	SUP_LIM_MEMORY_OOM_GROUP,
	SUP_LIM_IO_WEIGHT,
	SUP_LIM_IO_MAX,
	SUP_LIM_PIDS_MAX,
	SUP_LIM_CPUSET_CPUS,
	SUP_LIM_COUNT,
};
#define SUP_LIM_BIT(l) (1u << (l))

/* One io.max line. A key left at 0 was not given (the kernel keeps its
 * value); SUP_LIMIT_MAX is "max". */
struct sup_io_max {
	uint32_t major, minor;
	uint64_t rbps, wbps, riops, wiops;
};

/* A field is meaningful only when its SUP_LIM_BIT is in set; unset fields
 * are zero. */
struct sup_limits {
	uint32_t          set;
	uint32_t          cpu_weight;         /* 1..10000 */
	uint64_t          cpu_max_quota_us;   /* SUP_LIMIT_MAX = no quota */
	uint64_t          cpu_max_period_us;
	bool              cpu_idle;
	uint64_t          memory_low;         /* bytes; SUP_LIMIT_MAX = max */
	uint64_t          memory_high;
	uint64_t          memory_max;
	uint64_t          memory_swap_max;
	bool              memory_oom_group;
	uint32_t          io_weight;          /* 1..10000 */
	uint32_t          n_io_max;           /* one entry per device */
	struct sup_io_max io_max[SUP_IO_MAX_DEVICES];
	uint64_t          pids_max;           /* SUP_LIMIT_MAX = max */
	char              cpuset_cpus[SUP_CPUSET_MAX];
};

static inline bool sup_limit_is_set(const struct sup_limits *l, enum sup_limit which)
{
	return l->set & SUP_LIM_BIT(which);
}

struct sup_supervisor_conf {
	char    *cgroup_root;            /* below the cgroup2 mount */
	char    *control_socket;         /* absolute path */
	char    *control_group;          /* as written; NULL = root only */
	gid_t    control_gid;            /* resolved when control_group is set */
	int64_t  monitor_interval_ns;
	int      log_level;              /* 0 emerg .. 7 debug (syslog numbers) */
	char    *metrics_address;        /* "HOST:PORT"; NULL = off */
	int64_t  restart_backoff_base_ns;
	int64_t  restart_backoff_cap_ns;
	int64_t  restart_stable_after_ns; /* up this long: backoff starts over */
	uint32_t crash_loop_count;       /* this many deaths ... */
	int64_t  crash_loop_window_ns;   /* ... within this: the agent failed */
	uint32_t task_retry_budget;
	int64_t  result_retention_ns;    /* results kept for gone clients */
	uint32_t task_queue_limit;       /* per agent and per tier queue */
	uint32_t max_payload;            /* bytes; fits every agent's ring */
	int64_t  spin_window_ns;
	double   utilisation_threshold;  /* % */
	double   safety_margin;          /* fraction of the free capacity */
	double   hysteresis;             /* %: smaller moves are not written */
	bool     optimiser;
	int64_t  response_time_target_ns;
	double   efficiency_target;      /* % */
	double   quality_threshold;      /* 0..10 */
	double   stability_target;       /* % */
	char    *agentd;                 /* absolute path; NULL = next to tierd */
	char    *admin_group;            /* as written; NULL = root and tierd's uid only */
	gid_t    admin_gid;              /* resolved when admin_group is set */
	uint32_t result_retention_max;   /* results kept at most, oldest dropped */
	uint64_t result_retention_bytes; /* ... and their bytes at most */
	int64_t  control_idle_timeout_ns; /* 0 = never */
	uint32_t control_max_per_uid;    /* connections per non-admin uid; 0 = no cap */
	/* Per-agent budgets, per second (0 = unlimited); see budget.h. */
	uint32_t agent_record_rate;      /* CQ records other than results */
	uint32_t agent_log_rate;         /* lines into tierd's log */
	uint32_t agent_output_rate;      /* stdout + stderr bytes */
	uint32_t agent_wake_rate;        /* doorbell wake-ups without a record */
	int64_t  agent_flood_kill_after_ns; /* over budget this long: killed; 0 never */
	/* The task journal (docs/journal.md). */
	bool     journal;                /* journal = no: none */
	char    *journal_dir;            /* absolute; NULL = SUP_DEF_JOURNAL_DIR */
	int      journal_sync;           /* 0 batch, 1 always, 2 off (enum sup_wal_sync) */
	int64_t  journal_sync_window_ns;
	uint64_t journal_max_bytes;
	uint64_t journal_segment_bytes;
	int      workflow_after_crash;   /* 0 interrupt, 1 rerun */
};

struct sup_tier_conf {
	double            share[SUP_NRES];   /* % of each resource */
	uint32_t          batch_size;        /* agents per batch (tier 3) */
	int64_t           stagger_ns;        /* between batches */
	int64_t           processing_timeout_ns; /* per batch */
	struct sup_limits limits;
};

struct sup_rlimit_conf {
	bool     set;
	uint64_t cur, max;                /* RLIM_INFINITY = unlimited */
};

struct sup_agent_conf {
	char             *name;
	unsigned          tier;            /* 1..SUP_NTIERS */
	/* NULL-terminated. argv[0] is what exec runs: a bare name (looked up
	 * in PATH at spawn) or an absolute path (a relative one is resolved
	 * against the config file's directory at load). */
	char            **argv;
	size_t            argc;
	char            **env;             /* "KEY=VALUE", sorted by KEY, NULL-terminated */
	size_t            n_env;
	char             *workdir;         /* absolute; NULL = spawn's default */
	char             *user;            /* as written; NULL = tierd's own */
	char             *group;           /* as written; NULL = the user's primary group */
	bool              has_uid, has_gid;
	uid_t             uid;
	gid_t             gid;
	uint64_t          caps;            /* bit n: keep capability n */
	struct sup_rlimit_conf rlimits[SUP_RLIMIT_COUNT]; /* by RLIMIT_* */
	enum sup_restart  restart;
	int64_t           start_timeout_ns;
	int64_t           stop_timeout_ns;
	uint32_t          ring_size;       /* bytes per ring, power of two */
	char            **specialties;     /* task types (tier 4), sorted, NULL-terminated */
	size_t            n_specialties;
	enum sup_agent_mode mode;
	int64_t           exec_timeout_ns; /* per task, mode exec */
	struct sup_limits limits;
	unsigned          line;            /* of its [agent NAME]; not compared */
	bool              sandbox;         /* private mount and cgroup namespaces */
	bool              default_user;    /* no 'user': the tier's own user */
};

/* [fleet]: the NATS JetStream intake; servers NULL = off. Names NULL = the
 * default (sup_fleet_*() below give the effective one). */
struct sup_fleet_conf {
	char    *servers;                /* as written: comma-separated URLs */
	char    *credentials, *nkey_seed; /* absolute paths or NULL */
	char    *tls_cert, *tls_key, *tls_ca;
	char    *tasks_stream, *results_stream;
	char    *subject_prefix, *consumer_prefix;
	char    *node;                   /* NULL = the host name */
	uint32_t replicas;
	int64_t  ack_wait_ns;
	uint32_t max_deliver;
	uint32_t fetch_batch_max;
	int64_t  fetch_wait_ns;
	uint32_t max_message_bytes;
	uint32_t max_header_bytes;
	double   in_progress_fraction;
	uint32_t max_runs;
	int64_t  result_max_age_ns;      /* 0 = forever */
};

const char *sup_fleet_tasks_stream(const struct sup_fleet_conf *f);
const char *sup_fleet_results_stream(const struct sup_fleet_conf *f);
const char *sup_fleet_subject_prefix(const struct sup_fleet_conf *f);
const char *sup_fleet_consumer_prefix(const struct sup_fleet_conf *f);
/* Subject tokens joined by '.', no wildcard, space or control character. */
bool sup_fleet_subject_ok(const char *v, size_t max);
bool sup_fleet_conf_equal(const struct sup_fleet_conf *a, const struct sup_fleet_conf *b);

struct sup_config {
	char                      *path;   /* the file as given to load */
	char                      *dir;    /* absolute directory relative paths are resolved in */
	char                      *text;   /* what was parsed (NUL-terminated), for a live upgrade */
	size_t                     text_len;
	struct sup_supervisor_conf sup;
	struct sup_tier_conf       tiers[SUP_NTIERS];  /* tiers[0] is [tier1] */
	struct sup_agent_conf     *agents; /* file order */
	size_t                     n_agents;
	struct sup_fleet_conf      fleet;  /* [fleet] */
};

/* ---- diagnostics -------------------------------------------------------- */

struct sup_config_diag {
	bool     warning;     /* does not fail the load */
	unsigned line;        /* 0: not tied to one line */
	char    *msg;         /* complete, e.g. "team.ini:12: [agent foo] key 'tier': ..." */
};

/* Zero-initialise before first use. */
struct sup_config_errors {
	struct sup_config_diag *v;
	size_t                  n;        /* entries in v */
	size_t                  n_errors; /* entries that are errors */
	size_t                  dropped;  /* past SUP_CONFIG_MAX_DIAGS, counted only */
};

/* Free the messages; the struct is empty and reusable afterwards. */
void sup_config_errors_clear(struct sup_config_errors *errs);

/* ---- loading ------------------------------------------------------------ */

/* Read and check the file at path. errs is cleared first, then receives
 * every error and warning in line order (errs may be NULL). Returns NULL
 * with errno set: EINVAL for a bad configuration, ENOMEM, EFBIG (larger
 * than SUP_CONFIG_MAX_BYTES), or why the file could not be read; but for
 * ENOMEM, errs then holds a message saying so. */
struct sup_config *sup_config_load(const char *path, struct sup_config_errors *errs);

/* The same from memory. path names the file in messages and, unless dir is
 * given, supplies the directory relative paths are resolved in. */
struct sup_config *sup_config_parse(const char *path, const char *dir, const char *buf,
				    size_t len, struct sup_config_errors *errs);

/* NULL is fine. */
void sup_config_free(struct sup_config *c);

/* NULL if there is no agent of that name. */
const struct sup_agent_conf *sup_config_agent(const struct sup_config *c, const char *name);

/* Write the effective configuration (defaults included) as INI. Loading the
 * output gives a configuration sup_config_equal() to c. Returns 0 or -errno. */
int sup_config_dump(const struct sup_config *c, FILE *f);

/* ---- comparing (reload) -------------------------------------------------- */

/* What differs between two versions of an agent: */
#define SUP_AGENT_DIFF_PROCESS (1u << 0) /* tier, exec, env, workdir, ids, caps,
					    rlimits, mode, ring: respawn needed */
#define SUP_AGENT_DIFF_LIMITS  (1u << 1) /* cgroup limits: applied in place */
#define SUP_AGENT_DIFF_POLICY  (1u << 2) /* restart, timeouts, specialties */
unsigned sup_agent_conf_diff(const struct sup_agent_conf *a, const struct sup_agent_conf *b);
/* Same name and no difference at all: a reload leaves the agent alone. */
bool sup_agent_conf_equal(const struct sup_agent_conf *a, const struct sup_agent_conf *b);
bool sup_tier_conf_equal(const struct sup_tier_conf *a, const struct sup_tier_conf *b);
bool sup_limits_equal(const struct sup_limits *a, const struct sup_limits *b);
bool sup_supervisor_conf_equal(const struct sup_supervisor_conf *a,
			       const struct sup_supervisor_conf *b);
/* Everything but path, dir and line numbers. */
bool sup_config_equal(const struct sup_config *a, const struct sup_config *b);

/* ---- value parsers (config_parse.c) --------------------------------------
 * Whole-string parsers: no surrounding spaces, nothing trailing. Return 0,
 * -EINVAL (not of that form) or -ERANGE (overflow, out of bounds); the
 * out-parameter is untouched on failure. Numbers, durations and sizes:
 * common/units.h. */

/* "max", "max PERIOD", "QUOTA", "QUOTA PERIOD" (µs; quota >= 1000, period
 * 1000..1000000), or "25%" of one CPU (period 100000). */
int sup_parse_cpu_max(const char *s, uint64_t *ret_quota_us, uint64_t *ret_period_us);
/* "0-3,6": ascending ranges of CPUs below 8192. */
int sup_parse_cpus(const char *s);
/* "MAJ:MIN rbps=N wbps=N riops=N wiops=N" (any non-empty subset; N a
 * number, bps with size suffixes, or "max"). */
int sup_parse_io_max(const char *s, struct sup_io_max *ret);
/* "SOFT:HARD" or "N" (both); numbers or infinity/unlimited. Byte-valued
 * limits (bytes) take size suffixes. */
int sup_parse_rlimit(const char *s, bool bytes, uint64_t *ret_cur, uint64_t *ret_max);
/* Shell-like words: whitespace separates; '…' is literal; "…" is literal
 * but for \" and \\; outside quotes a backslash keeps the next character.
 * No expansion of any kind. *ret_argv is NULL-terminated, each string and
 * the array malloc'd (free with sup_argv_free); ret_argc may be NULL.
 * -EINVAL for an unterminated quote, a trailing backslash or no word. */
int sup_parse_argv(const char *s, char ***ret_argv, size_t *ret_argc);
void sup_argv_free(char **argv);

/* Join argv into one line that sup_parse_argv splits back into argv and
 * that an INI value can hold unchanged (no leading or trailing blank, no
 * blank followed by ';', which starts a comment). malloc'd; NULL and
 * errno ENOMEM on failure. */
char *sup_argv_format(char *const *argv);

/* The default user of a tier's agents (SUP_DEF_USER_FMT). Returns what
 * snprintf does. */
int sup_default_user(unsigned tier, char *buf, size_t sz);

const char *sup_mode_name(enum sup_agent_mode m);
const char *sup_limit_key(enum sup_limit l);

#endif
