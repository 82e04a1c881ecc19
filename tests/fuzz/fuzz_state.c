/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the workflows' and the event journal's readers of the
 * live-upgrade state (supervisor/workflow_state.c, events_state.c), as the
 * next tierd binary meets a section it did not write.
 *
 * Input = [module byte][section body]: bit 0 of the first byte picks the
 * workflows (1) or the events (0). The body goes into a state made right
 * around it (header, crc, one section of that tag, version 1), so the
 * module's own checks are what is fuzzed. A restore either refuses with a
 * sentence or takes the state; what it took must save again, restore
 * again, and save to the very same bytes (nothing is half-restored).
 *
 * The task table and the journal are stand-ins: every task is pending, and
 * re-binding some ids answers -EBUSY (another owner), to reach that path.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../supervisor/config/config.h"
#include "../../supervisor/events.h"
#include "../../supervisor/handover/internal.h"
#include "../../supervisor/loop.h"
#include "../../supervisor/tasks.h"
#include "../../supervisor/tasks_env.h"
#include "../../supervisor/wal/wal.h"
#include "../../supervisor/workflow.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/* The fuzz rule links the ring library, load hook on, into every target;
 * this one never touches a ring. */
void shm_fuzz_mutate(volatile void *p, size_t n);
void shm_fuzz_mutate(volatile void *p, size_t n)
{
	(void)p;
	(void)n;
}

/* ---- stand-ins for what the workflow links against -------------------------- */

void sup_timer_init(struct sup_timer *t, sup_timer_cb cb, void *data)
{
	*t = (struct sup_timer){ .cb = cb, .data = data };
}

bool sup_tasks_is_pending(const struct sup_tasks *ts, uint64_t id)
{
	(void)ts;
	return id != 0;
}

int sup_tasks_rebind(struct sup_tasks *ts, uint64_t id, sup_task_done_fn done, void *arg)
{
	(void)ts;
	(void)done;
	(void)arg;
	return id % 7 == 3 ? -EBUSY : 0;
}

int64_t sup_tasks_submit(struct sup_tasks *ts, const struct sup_task_spec *spec, char *err,
			 size_t errlen)
{
	(void)ts;
	(void)spec;
	snprintf(err, errlen, "no task table here");
	return -ENOENT;
}

void sup_task_info(const struct sup_task *t, struct sup_task_info *ret)
{
	(void)t;
	memset(ret, 0, sizeof(*ret));
}

const char *sup_task_status_name(int status)
{
	return status < 0 ? "pending" : "done";
}

json_t *sup_tasks_group_json(struct sup_tasks *ts, uint64_t group)
{
	(void)ts;
	(void)group;
	return json_array();
}

unsigned sup_tasks_replay_cancel_group(struct sup_tasks *ts, uint64_t group, const char *why)
{
	(void)ts;
	(void)group;
	(void)why;
	return 0;
}

int sup_wal_append(struct sup_wal *w, uint16_t type, const struct iovec *iov, int iovcnt,
		   bool reserve, uint64_t *ret_seg, char *err, size_t errlen)
{
	(void)w;
	(void)type;
	(void)iov;
	(void)iovcnt;
	(void)reserve;
	(void)ret_seg;
	(void)err;
	(void)errlen;
	return 0;
}

void sup_wal_ref(struct sup_wal *w, uint64_t seg)
{
	(void)w;
	(void)seg;
}

void sup_wal_unref(struct sup_wal *w, uint64_t seg)
{
	(void)w;
	(void)seg;
}

int sup_wal_reserve_ids(struct sup_wal *w, unsigned kind, uint64_t id, char *err, size_t errlen)
{
	(void)w;
	(void)kind;
	(void)id;
	(void)err;
	(void)errlen;
	return 0;
}

uint64_t sup_wal_reserved(const struct sup_wal *w, unsigned kind)
{
	(void)w;
	(void)kind;
	return 0;
}

/* ---- the workflow's world ----------------------------------------------------- */

static struct sup_config conf;
static unsigned armed;

static const struct sup_config *e_conf(void *ctx)
{
	(void)ctx;
	return &conf;
}

static int64_t e_now(void *ctx)
{
	(void)ctx;
	return 1000000000;
}

static void e_arm(void *ctx, struct sup_timer *t, int64_t deadline)
{
	(void)ctx;
	t->deadline = deadline;
	t->slot = 1;
	armed++;
}

static void e_disarm(void *ctx, struct sup_timer *t)
{
	(void)ctx;
	if (t->slot)
		armed--;
	t->slot = 0;
}

static size_t e_nagents(void *ctx)
{
	(void)ctx;
	return 0;
}

static struct sup_wf *new_wf(void)
{
	struct sup_tasks_env env = {
		.conf = e_conf, .now = e_now, .now_fresh = e_now, .timer_arm = e_arm,
		.timer_disarm = e_disarm, .nagents = e_nagents,
	};

	conf.tiers[2].batch_size = 2;
	return sup_wf_new(&env, NULL);
}

/* ---- states ---------------------------------------------------------------------- */

/* A sealed state holding one section (tag, version 1) with body as is. */
static int state_with(uint32_t tag, const uint8_t *body, size_t n)
{
	struct sup_ho_hdr h = { .magic = SUP_HO_MAGIC, .format = SUP_HO_FORMAT,
				.hdr_size = sizeof(h) };
	struct sup_ho_sect s = { .tag = tag, .version = 1, .len = n };
	size_t total = sizeof(h) + sizeof(s) + n;
	uint8_t *b = malloc(total);
	int fd;

	CHECK(b);
	memcpy(b + sizeof(h), &s, sizeof(s));
	if (n)
		memcpy(b + sizeof(h) + sizeof(s), body, n);
	h.total_size = total;
	h.crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + sizeof(h), (uInt)(total - sizeof(h)));
	memcpy(b, &h, sizeof(h));
	fd = memfd_create("tierd-state-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK(write(fd, b, total) == (ssize_t)total);
	CHECK(fcntl(fd, F_ADD_SEALS, SEALS) == 0);
	free(b);
	return fd;
}

static uint8_t *bytes_of(int fd, size_t *n)
{
	struct stat st;
	uint8_t *b;

	CHECK(fstat(fd, &st) == 0);
	*n = (size_t)st.st_size;
	b = malloc(*n);
	CHECK(b);
	CHECK(pread(fd, b, *n, 0) == (ssize_t)*n);
	return b;
}

struct module {
	uint32_t tag;
	void *(*make)(void);
	void (*destroy)(void *o);
	int (*save)(void *o, struct sup_ho_w *w);
	int (*restore)(void *o, struct sup_ho_r *r);
};

static void *wf_make(void) { return new_wf(); }
static void wf_destroy(void *o) { sup_wf_free(o); }
static int wf_save(void *o, struct sup_ho_w *w) { return sup_wf_save(o, w); }
static int wf_restore(void *o, struct sup_ho_r *r) { return sup_wf_restore(o, r); }
static void *ev_make(void) { return sup_events_new(16); }
static void ev_destroy(void *o) { sup_events_free(o); }
static int ev_save(void *o, struct sup_ho_w *w) { return sup_events_save(o, w); }
static int ev_restore(void *o, struct sup_ho_r *r) { return sup_events_restore(o, r); }

static const struct module modules[2] = {
	{ SUP_HO_TAG_EVENTS, ev_make, ev_destroy, ev_save, ev_restore },
	{ SUP_HO_TAG_WORKFLOWS, wf_make, wf_destroy, wf_save, wf_restore },
};

/* Restore the state in fd into a new object: NULL if refused (with a
 * sentence, checked). */
static void *restore_from(const struct module *m, int fd)
{
	char err[256];
	struct sup_ho_r *r = sup_ho_r_open(fd, err, sizeof(err));
	void *o;
	int rc;

	CHECK(r);
	o = m->make();
	CHECK(o);
	rc = m->restore(o, r);
	CHECK((rc == 0) == sup_ho_r_ok(r));
	if (rc < 0) {
		CHECK(sup_ho_r_error(r)[0]);
		m->destroy(o);
		o = NULL;
	}
	sup_ho_r_free(r);
	return o;
}

static int save_of(const struct module *m, void *o)
{
	struct sup_ho_w *w = sup_ho_w_new();
	char err[256];
	int fd;

	CHECK(w);
	CHECK(m->save(o, w) == 0);
	fd = sup_ho_w_finish(w, err, sizeof(err));
	CHECK(fd >= 0);
	sup_ho_w_free(w);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct module *m;
	void *a, *b;
	int fd, fa, fb;
	uint8_t *ba, *bb;
	size_t na, nb;

	if (size < 1)
		return 0;
	m = &modules[data[0] & 1];
	fd = state_with(m->tag, data + 1, size - 1);
	a = restore_from(m, fd);
	close(fd);
	if (a) {
		/* Taken: it saves, restores and saves to the same bytes. */
		fa = save_of(m, a);
		b = restore_from(m, fa);
		CHECK(b);
		fb = save_of(m, b);
		ba = bytes_of(fa, &na);
		bb = bytes_of(fb, &nb);
		CHECK(na == nb && memcmp(ba, bb, na) == 0);
		free(ba);
		free(bb);
		close(fa);
		close(fb);
		m->destroy(b);
		m->destroy(a);
	}
	CHECK(armed == 0);
	return 0;
}
