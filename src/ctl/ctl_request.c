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

/* Connect to the socket and send the request: the descriptor, or -1. */
static int
ctl_request_send(
    const char *path, const char *request, char *why, size_t whylen)
{
	struct sockaddr_un sun;
	int fd;

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
		close(fd);
		return -1;
	}
	return fd;
}

int
ctl_request(const char *path, const char *request, struct buf *ans, char *why,
    size_t whylen)
{
	char chunk[8192];
	int fd, rc = -1;
	ssize_t n;

	if ((fd = ctl_request_send(path, request, why, whylen)) < 0)
		return -1;
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

int
ctl_request_lines(const char *path, const char *request,
    int (*fn)(void *, char *line), void *arg, char *why, size_t whylen)
{
	struct buf line;
	char chunk[65536];
	int fd, ended = 0, stopped = 0;
	ssize_t n = 0;

	if ((fd = ctl_request_send(path, request, why, whylen)) < 0)
		return -1;
	buf_init(&line, CTL_REQUEST_LINE_MAX);
	while (!stopped && (n = read(fd, chunk, sizeof(chunk))) > 0) {
		for (char *p = chunk, *end = chunk + n, *nl;
		     p < end && !stopped; p = nl + 1) {
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
				if (buf_append(&line, p, (size_t)(end - p)) !=
				    BUF_OK)
					stopped = 1;
				break;
			}
			if (buf_append(&line, p, (size_t)(nl - p)) != BUF_OK ||
			    buf_append(&line, "", 1) != BUF_OK || ended) {
				ended = 0; /* something after the "." line */
				stopped = 1;
				break;
			}
			if (strcmp(line.data, ".") == 0)
				ended = 1;
			else if (fn(arg, line.data) != 0)
				ended = stopped = 1; /* the caller has enough */
			buf_reset(&line);
		}
	}
	close(fd);
	if (!ended || line.len != 0 || n < 0) {
		snprintf(why, whylen, "the answer was cut short");
		buf_free(&line);
		return -1;
	}
	buf_free(&line);
	return 0;
}
