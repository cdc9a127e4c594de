/*
 * fd.c - write everything to a blocking descriptor (see fd.h).  Not for
 * the event loop's sockets, which conn.c writes without blocking.
 */
#include <errno.h>
#include <unistd.h>

#include "util/fd.h"

int
fd_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}
