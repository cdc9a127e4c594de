/*
 * fd.h - writing to a blocking descriptor (a Maildir file, a pipe to a
 * parent, sluice-sendmail's socket), where a short write or EINTR is not
 * an error but a reason to go on.
 */
#ifndef SLUICE_FD_H
#define SLUICE_FD_H

#include <stddef.h>

/* Write all n bytes: 0, or -1 on an error or when nothing more is taken. */
int fd_write_all(int fd, const void *p, size_t n);

#endif
