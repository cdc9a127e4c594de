/*
 * ctl_request.c - the client side of the control socket (see
 * ctl_request.h and src/control/control.c for the other side).
 *
 * The daemon closes the connection after its answer; an answer that does
 * not end in a "." line was cut short (the daemon stopped, or the answer
 * hit the bound) and is reported as an error rather than shown as if it
 * were whole.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/ctl_request.h"
#include "util/buf.h"

int
ctl_request(const char *path, const char *request, struct buf *ans, char *why,
    size_t whylen)
{
	struct sockaddr_un sun;
	char chunk[8192];
	int fd, rc = -1;
	ssize_t n;

	if (strpbrk(request, "\r\n") != NULL) {
		snprintf(why, whylen, "a request is one line");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "%s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (dprintf(fd, "%s\r\n", request) < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(ans, chunk, (size_t)n) != BUF_OK)
			break;
	if (ans->len < 2 || strcmp(ans->data + ans->len - 2, ".\n") != 0 ||
	    (ans->len > 2 && ans->data[ans->len - 3] != '\n')) {
		snprintf(why, whylen, "the answer was cut short");
		goto out;
	}
	ans->len -= 2;
	ans->data[ans->len] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}
