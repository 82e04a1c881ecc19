/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the config loader facing arbitrary bytes.
 *
 * The input is written to a memfd and loaded through its /proc path, as
 * tierd loads a file. A load that fails must say why (at least one error);
 * a load that succeeds is dumped and the dump parsed again, which must give
 * an equal configuration: the writer's quoting and units are checked
 * against the reader on every input that gets that far.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../supervisor/config/config.h"

/* The fuzz rule builds the ring library into every target with its load
 * hook on; this target never touches a ring. */
void shm_fuzz_mutate(volatile void *p, size_t n);
void shm_fuzz_mutate(volatile void *p, size_t n)
{
}

static struct sup_config *load(const uint8_t *data, size_t size, struct sup_config_errors *errs)
{
	struct sup_config *c;
	char path[64];
	int fd;

	fd = memfd_create("fuzz.ini", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c = sup_config_load(path, errs);
	close(fd);
	return c;
}

static void check_round_trip(const struct sup_config *c)
{
	struct sup_config_errors errs = { 0 };
	struct sup_config *again;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	if (sup_config_dump(c, f) < 0)
		abort();
	fclose(f);
	again = sup_config_parse("dump.ini", c->dir, buf, len, &errs);
	if (!again || !sup_config_equal(c, again)) {
		fprintf(stderr, "round trip failed:\n%s\n", buf);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "  %s\n", errs.v[i].msg);
		abort();
	}
	sup_config_free(again);
	sup_config_errors_clear(&errs);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sup_config_errors errs = { 0 };
	struct sup_config *c = load(data, size, &errs);

	if (c)
		check_round_trip(c);
	else if (errno == EINVAL && !errs.n_errors)
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (!errs.v[i].msg)
			abort();
	sup_config_free(c);
	sup_config_errors_clear(&errs);
	return 0;
}
