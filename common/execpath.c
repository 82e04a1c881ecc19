/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "execpath.h"

int sup_spawn_resolve(const char *name, const char *path_env, char *buf, size_t len)
{
	const char *p = path_env;

	if (!name || !*name)
		return -EINVAL;
	if (strchr(name, '/')) {
		if ((size_t)snprintf(buf, len, "%s", name) >= len)
			return -ENAMETOOLONG;
		return access(buf, X_OK) < 0 ? -errno : 0;
	}
	if (!p)
		p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*p) {
		size_t dl = strcspn(p, ":");

		if (dl && (size_t)snprintf(buf, len, "%.*s/%s", (int)dl, p, name) < len &&
		    access(buf, X_OK) == 0)
			return 0;
		p += dl;
		if (*p == ':')
			p++;
	}
	return -ENOENT;
}
