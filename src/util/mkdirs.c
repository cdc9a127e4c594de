/*
 * mkdirs.c - mkdir -p for the queue and log directories, so that a fresh
 * configuration works without preparing directories by hand.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "util/mkdirs.h"

int
mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}
