/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the hand-over state reader (supervisor/handover), as
 * the next tierd binary meets a state after execve.
 *
 * Input = [mode byte][nfds byte] then the bytes after the header. Mode bit
 * 0 set: the input is the whole state as is (header included), to reach the
 * header checks. Else a header is made for it: magic, this format, its size
 * and (unless mode bit 1) its crc made right, nfds from the second byte (mod
 * 8), and each fd table entry's number, dev and ino pointed at one of the
 * fds opened here of the kind the entry names (its kind kept, so a wrong one
 * is refused), so the reader gets past the checks into the sections.
 *
 * Every accepted state is walked with a generic section walker: in each
 * section, a byte of the section picks the next read (each value type, a
 * string into a small or large buffer, a bounded byte run, an fd of some
 * kind, a caller failure), until the reader's sticky error stops it. Every
 * byte run the reader hands out must be readable and found in the state,
 * and every fd it gives back must be one of the table's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../supervisor/handover/internal.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/* The fuzz rule links the ring library, load hook on, into every target;
 * this one never touches a ring. */
void shm_fuzz_mutate(volatile void *p, size_t n);
void shm_fuzz_mutate(volatile void *p, size_t n)
{
}

/* One open fd per kind that needs no privilege, opened once. */
static int kind_fd[SUP_HO_FD_KIND_END];

static void open_kinds(void)
{
	int p[2], s[2];

	if (kind_fd[SUP_HO_FD_EVENTFD])
		return;
	for (int k = 0; k < SUP_HO_FD_KIND_END; k++)
		kind_fd[k] = -1;
	kind_fd[SUP_HO_FD_MEMFD] = memfd_create("fuzz", MFD_CLOEXEC);
	kind_fd[SUP_HO_FD_EVENTFD] = eventfd(0, EFD_CLOEXEC);
	if (pipe2(p, O_CLOEXEC) == 0)
		kind_fd[SUP_HO_FD_PIPE] = p[0];
	kind_fd[SUP_HO_FD_DIR] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	kind_fd[SUP_HO_FD_FILE] = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	kind_fd[SUP_HO_FD_ANY] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) == 0)
		kind_fd[SUP_HO_FD_UNIX_STREAM] = s[0];
}

/* The state as written, to find what the reader hands out in it. */
static const unsigned char *state;
static size_t state_len;

static void walk(struct sup_ho_r *r, const struct sup_ho_fdent *tab, uint32_t nfds)
{
	uint32_t tag, ver;
	size_t it = 0;

	while (sup_ho_r_next_section(r, &it, &tag, &ver)) {
		uint8_t op;

		while (sup_ho_r_ok(r) && sup_ho_r_left(r) && sup_ho_r_u8(r, &op)) {
			union { uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; int64_t i64;
				double f64; } v;
			char small[8], big[300], *dup = NULL;
			const void *p;
			uint32_t len;
			int fd;

			switch (op % 12) {
			case 0: sup_ho_r_u8(r, &v.u8); break;
			case 1: sup_ho_r_u16(r, &v.u16); break;
			case 2: sup_ho_r_u32(r, &v.u32); break;
			case 3: sup_ho_r_u64(r, &v.u64); break;
			case 4: sup_ho_r_i64(r, &v.i64); break;
			case 5: sup_ho_r_f64(r, &v.f64); break;
			case 6:
				if (sup_ho_r_str(r, small, sizeof(small)))
					CHECK(strlen(small) < sizeof(small));
				break;
			case 7:
				if (sup_ho_r_str(r, big, sizeof(big)))
					CHECK(strlen(big) < sizeof(big));
				break;
			case 8:
				if (sup_ho_r_bytes(r, &p, &len, op)) {
					CHECK(len <= op);
					/* readable, and the state's own bytes */
					CHECK(!len || memmem(state, state_len, p, len));
				}
				break;
			case 9:
				if (sup_ho_r_strdup(r, &dup, 64) && dup)
					CHECK(strlen(dup) <= 64);
				free(dup);
				break;
			case 10:
				if (sup_ho_r_fd(r, (enum sup_ho_fd_kind)(op / 12 % SUP_HO_FD_KIND_END), &fd) &&
				    fd >= 0) {
					bool found = false;

					for (uint32_t i = 0; i < nfds; i++) {
						struct sup_ho_fdent e;

						memcpy(&e, (const unsigned char *)tab + i * sizeof(e), sizeof(e));
						found |= e.fd == fd;
					}
					CHECK(found);
				}
				break;
			default:
				if (op == 0xff)
					sup_ho_r_fail(r, "caller says no at %zu", sup_ho_r_left(r));
				break;
			}
		}
		if (!sup_ho_r_ok(r))
			CHECK(sup_ho_r_error(r)[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sup_ho_hdr h = { .format = SUP_HO_FORMAT, .hdr_size = sizeof(h) };
	unsigned char *buf;
	struct sup_ho_r *r;
	char err[256];
	uint8_t mode, nfds;
	size_t len;
	int fd;

	if (size < 2 || size > (1u << 20))
		return 0;
	open_kinds();
	mode = data[0];
	nfds = data[1] % 8;
	data += 2;
	size -= 2;
	len = mode & 1 ? size : sizeof(h) + size;
	buf = malloc(len ? len : 1);
	CHECK(buf);
	if (mode & 1) {
		memcpy(buf, data, size);
	} else {
		memcpy(buf + sizeof(h), data, size);
		if (size < (size_t)nfds * sizeof(struct sup_ho_fdent))
			nfds = (uint8_t)(size / sizeof(struct sup_ho_fdent));
		for (uint32_t i = 0; i < nfds; i++) {
			struct sup_ho_fdent e;
			struct stat st;
			unsigned char *at = buf + sizeof(h) + i * sizeof(e);

			memcpy(&e, at, sizeof(e));
			fd = e.kind < SUP_HO_FD_KIND_END ? kind_fd[e.kind] : -1;
			/* an entry of another kind's fd half the time: refused */
			if (fd < 0 || (e.dev & 1))
				fd = kind_fd[SUP_HO_FD_EVENTFD + (int)(e.ino % 5)];
			if (fd >= 0 && fstat(fd, &st) == 0) {
				e.fd = fd;
				e.dev = st.st_dev;
				e.ino = st.st_ino;
			}
			memcpy(at, &e, sizeof(e));
		}
		memcpy(h.magic, SUP_HO_MAGIC, sizeof(h.magic));
		h.total_size = len;
		h.nfds = nfds;
		h.crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf + sizeof(h), (uInt)size);
		if (mode & 2)
			h.crc ^= 1;
		memcpy(buf, &h, sizeof(h));
	}
	fd = memfd_create("fuzz-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0);
	CHECK(write(fd, buf, len) == (ssize_t)len);
	CHECK(fcntl(fd, F_ADD_SEALS, mode & 4 ? F_SEAL_GROW : SEALS) == 0);
	r = sup_ho_r_open(fd, err, sizeof(err));
	if (!r) {
		CHECK(err[0]);
	} else {
		state = buf;
		state_len = len;
		memcpy(&h, buf, sizeof(h));
		walk(r, (const struct sup_ho_fdent *)(buf + sizeof(h)), h.nfds);
		sup_ho_r_free(r);
	}
	close(fd);
	free(buf);
	return 0;
}
