/*
 * mkdirs.c - mkdir -p for the queue and log directories, so that a fresh
 * configuration works without preparing directories by hand.
 *
 * The directories it creates get exactly the mode asked for, whatever the
 * umask: sluiced runs with umask 077 (everything private), yet the
 * directory of the local submission socket and of a PID file must be
 * reachable by every user.  Directories that exist keep their mode.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/mkdirs.h"

/* One component: made with the mode exactly, or already there. */
static int
mkdirs_one(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) < 0)
		return errno == EEXIST ? 0 : -1;
	return chmod(dir, mode);
}

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
		if (mkdirs_one(tmp, mode) < 0)
			return -1;
		*p = '/';
	}
	return mkdirs_one(tmp, mode);
}
