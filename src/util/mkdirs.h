/*
 * mkdirs.h - create a directory and its missing parents (mkdir -p).
 */
#ifndef SLUICE_MKDIRS_H
#define SLUICE_MKDIRS_H

#include <sys/types.h>

/*
 * 0 on success or when it exists; -1 with errno set.  What it creates
 * gets exactly mode (not masked by the umask); what exists is left alone.
 */
int mkdirs(const char *path, mode_t mode);

#endif
