/*
 * ctl_queue.c - sluicectl commands that ask the running daemon about its
 * queues over the control socket (ControlSocket), with Exchange's verbs:
 * "queue" (Get-Queue), "messages" (Get-Message, with filters as -Filter),
 * "retry QUEUE" (Retry-Queue), "suspend NAME" / "resume NAME" (a queue:
 * Suspend-Queue, Resume-Queue; a message: Suspend-Message,
 * Resume-Message), "remove [--with-ndr] ID" (Remove-Message) and
 * "export ID" (Export-Message).  The daemon's answer ends with a "."
 * line; one whose first line starts with "error: " makes the exit status
 * 1.  An exported message comes as "ok SIZE", SIZE bytes, "." and is
 * copied as it arrives, so its size is not bounded by memory here.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl/ctl.h"

/* A request line, as the daemon reads it. */
#define CTL_REQUEST_MAX 510

/* Connect to the daemon's control socket and send the request. */
static int
ctl_connect(struct ctl *ctl, const char *request)
{
	struct sockaddr_un sun;
	struct conf *c;
	int fd;

	if (strlen(request) > CTL_REQUEST_MAX ||
	    strpbrk(request, "\r\n") != NULL) {
		fprintf(
		    stderr, "sluicectl: request too long or not one line\n");
		return -1;
	}
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    c->transport.control_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "sluicectl: %s: %s (is sluiced running?)\n",
		    c->transport.control_socket, strerror(errno));
		if (fd >= 0)
			close(fd);
		conf_free(c);
		return -1;
	}
	conf_free(c);
	if (dprintf(fd, "%s\r\n", request) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Copy the daemon's answer to stdout as it arrives (a view of 200,000
 * messages is far larger than anything worth holding), keeping back the
 * last two bytes, which must be the "." line.  The exit status is 1 when
 * the first line, or the last (a view that failed half-way), starts with
 * "error: ".
 */
int
ctl_ask(struct ctl *ctl, const char *request)
{
	char buf[2 + 65536], first[8] = "", last[8] = "";
	size_t held = 0, nlast = 0;
	int fd, line_start = 1, in_first = 1;
	ssize_t n;

	if ((fd = ctl_connect(ctl, request)) < 0)
		return 1;
	while ((n = read(fd, buf + held, sizeof(buf) - held)) > 0) {
		size_t have = held + (size_t)n, out = have >= 2 ? have - 2 : 0;

		/* the start of the first line and of the last */
		for (size_t i = 0; i < out; i++) {
			if (line_start)
				nlast = 0;
			if (nlast < sizeof(last) - 1) {
				last[nlast++] = buf[i];
				last[nlast] = '\0';
				if (in_first)
					memcpy(first, last, nlast + 1);
			}
			line_start = buf[i] == '\n';
			in_first &= !line_start;
		}
		if (fwrite(buf, 1, out, stdout) != out)
			break;
		memmove(buf, buf + out, have - out);
		held = have - out;
	}
	close(fd);
	if (n != 0 || held != 2 || memcmp(buf, ".\n", 2) != 0 || !line_start) {
		fflush(stdout);
		fprintf(stderr, "sluicectl: the answer was cut short\n");
		return 1;
	}
	return strncmp(first, "error: ", 7) == 0 ||
	               strncmp(last, "error: ", 7) == 0
	           ? 1
	           : 0;
}

/* Add "\tKEY=VALUE" to a request; -1 when it cannot be sent. */
static int
ctl_arg(char *req, size_t len, const char *key, const char *value)
{
	size_t n = strlen(req);
	int w;

	if (strpbrk(value, "\t\r\n") != NULL)
		return -1;
	w = snprintf(req + n, len - n, "\t%s%s%s", key ? key : "",
	    key ? "=" : "", value);
	return w < 0 || (size_t)w >= len - n ? -1 : 0;
}

/*
 * The views' options, as "\tKEY=VALUE" arguments of the request: -1 when
 * one is not understood (or has no place in a request line).
 */
static int
ctl_view_args(char *req, size_t len, int messages, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"queue", required_argument, NULL, 'q'},
	    {"status", required_argument, NULL, 't'},
	    {"limit", required_argument, NULL, 'l'},
	    {"offset", required_argument, NULL, 'o'},
	    {"sender", required_argument, NULL, 's'},
	    {"recipient", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	/* getopt wants the command's own name first: the word before. */
	char **av = argv - 1;
	int ac = argc + 1, ch, bad = 0;

	optind = 0;
	while ((ch = getopt_long(ac, av, "q:s:r:t:l:o:", opts, NULL)) != -1) {
		const char *key = ch == 'q'   ? "queue"
		                  : ch == 't' ? "status"
		                  : ch == 'l' ? "limit"
		                  : ch == 'o' ? "offset"
		                  : ch == 's' ? "sender"
		                  : ch == 'r' ? "recipient"
		                              : NULL;

		if (key == NULL || (!messages && (ch == 's' || ch == 'r')) ||
		    ctl_arg(req, len, key, optarg) < 0)
			bad = 1;
	}
	/* "messages QUEUE" */
	if (ac - optind > (messages ? 1 : 0))
		bad = 1;
	else if (ac - optind == 1 && ctl_arg(req, len, "queue", av[optind]) < 0)
		bad = 1;
	return bad ? -1 : 0;
}

int
ctl_queue(struct ctl *ctl, int argc, char **argv)
{
	char req[CTL_REQUEST_MAX + 2] = "queue";

	if (ctl_view_args(req, sizeof(req), 0, argc, argv) < 0) {
		fprintf(stderr, "usage: sluicectl queue [--queue PATTERN] "
		                "[--status STATUS] "
		                "[--limit N] [--offset N]\n");
		return 2;
	}
	return ctl_ask(ctl, req);
}

int
ctl_messages(struct ctl *ctl, int argc, char **argv)
{
	char req[CTL_REQUEST_MAX + 2] = "messages";

	if (ctl_view_args(req, sizeof(req), 1, argc, argv) < 0) {
		fprintf(stderr,
		    "usage: sluicectl messages [QUEUE] [--queue QUEUE] "
		    "[--sender PATTERN] [--recipient PATTERN] "
		    "[--status STATUS] [--limit N] [--offset N]\n");
		return 2;
	}
	return ctl_ask(ctl, req);
}

/* The commands that take exactly one name. */
static int
ctl_one(
    struct ctl *ctl, const char *verb, const char *what, int argc, char **argv)
{
	char req[CTL_REQUEST_MAX + 2];

	snprintf(req, sizeof(req), "%s", verb);
	if (argc != 1 || ctl_arg(req, sizeof(req), NULL, argv[0]) < 0) {
		fprintf(stderr, "usage: sluicectl %s %s\n", verb, what);
		return 2;
	}
	return ctl_ask(ctl, req);
}

int
ctl_retry(struct ctl *ctl, int argc, char **argv)
{
	return ctl_one(ctl, "retry", "QUEUE", argc, argv);
}

int
ctl_suspend(struct ctl *ctl, int argc, char **argv)
{
	return ctl_one(ctl, "suspend", "QUEUE|MESSAGE", argc, argv);
}

int
ctl_resume(struct ctl *ctl, int argc, char **argv)
{
	return ctl_one(ctl, "resume", "QUEUE|MESSAGE", argc, argv);
}

int
ctl_remove(struct ctl *ctl, int argc, char **argv)
{
	char req[CTL_REQUEST_MAX + 2] = "remove";
	int ndr = argc == 2 && strcmp(argv[0], "--with-ndr") == 0;

	if (argc != 1 + ndr || argv[ndr][0] == '-' ||
	    ctl_arg(req, sizeof(req), NULL, argv[ndr]) < 0 ||
	    (ndr && ctl_arg(req, sizeof(req), NULL, "ndr") < 0)) {
		fprintf(
		    stderr, "usage: sluicectl remove [--with-ndr] MESSAGE\n");
		return 2;
	}
	return ctl_ask(ctl, req);
}

/*
 * Export-Message: "ok SIZE\n", then SIZE bytes of the message, then
 * ".\n"; copied to out as it comes.
 */
static int
ctl_export_copy(int fd, FILE *out, const char *where)
{
	char chunk[65536], head[64];
	size_t hn = 0, left, have = 0, start = 0;
	unsigned long long size;
	char *end;
	ssize_t n;

	/* The first line: "ok SIZE" or "error: ..." (then the rest). */
	while ((n = read(fd, chunk + have, sizeof(chunk) - have)) > 0) {
		have += (size_t)n;
		if (memchr(chunk, '\n', have) != NULL)
			break;
	}
	end = memchr(chunk, '\n', have);
	if (end == NULL) {
		fprintf(stderr, "sluicectl: the answer was cut short\n");
		return 1;
	}
	hn = (size_t)(end - chunk);
	if (strncmp(chunk, "ok ", 3) != 0) {
		/* an error and its "." line */
		if (have >= 2 && memcmp(chunk + have - 2, ".\n", 2) == 0)
			have -= 2;
		fwrite(chunk, 1, have, stdout);
		return 1;
	}
	snprintf(head, sizeof(head), "%.*s", (int)(hn < 63 ? hn : 63), chunk);
	errno = 0;
	size = strtoull(head + 3, &end, 10);
	if (errno != 0 || *end != '\0' || end == head + 3) {
		fprintf(stderr, "sluicectl: bad answer \"%s\"\n", head);
		return 1;
	}
	start = hn + 1;
	left = (size_t)size;
	for (;;) {
		size_t take = have - start < left ? have - start : left;

		if (take > 0 && fwrite(chunk + start, 1, take, out) != take) {
			fprintf(stderr, "sluicectl: %s: %s\n", where,
			    strerror(errno));
			return 1;
		}
		left -= take;
		start += take;
		if (left == 0)
			break;
		start = have = 0;
		if ((n = read(fd, chunk, sizeof(chunk))) <= 0) {
			fprintf(
			    stderr, "sluicectl: the message was cut short\n");
			return 1;
		}
		have = (size_t)n;
	}
	/* the "." line */
	memmove(chunk, chunk + start, have - start);
	have -= start;
	while (have < 2 && (n = read(fd, chunk + have, 2 - have)) > 0)
		have += (size_t)n;
	if (have != 2 || memcmp(chunk, ".\n", 2) != 0) {
		fprintf(stderr, "sluicectl: the answer was cut short\n");
		return 1;
	}
	return 0;
}

int
ctl_export(struct ctl *ctl, int argc, char **argv)
{
	char req[CTL_REQUEST_MAX + 2] = "export";
	const char *path = NULL, *ident = NULL;
	FILE *out = stdout;
	int fd, rc, bad = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && path == NULL)
			path = argv[++i];
		else if (argv[i][0] != '-' && ident == NULL)
			ident = argv[i];
		else
			bad = 1;
	}
	if (bad || ident == NULL ||
	    ctl_arg(req, sizeof(req), NULL, ident) < 0) {
		fprintf(stderr, "usage: sluicectl export MESSAGE [-o FILE]\n");
		return 2;
	}
	if ((fd = ctl_connect(ctl, req)) < 0)
		return 1;
	if (path != NULL) {
		/* The message may be private: only its owner reads it. */
		int ofd =
		    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (ofd < 0 || (out = fdopen(ofd, "w")) == NULL) {
			fprintf(stderr, "sluicectl: %s: %s\n", path,
			    strerror(errno));
			if (ofd >= 0)
				close(ofd);
			close(fd);
			return 1;
		}
	}
	rc = ctl_export_copy(fd, out, path != NULL ? path : "stdout");
	close(fd);
	if (fflush(out) != 0 && rc == 0) {
		fprintf(stderr, "sluicectl: %s: %s\n",
		    path != NULL ? path : "stdout", strerror(errno));
		rc = 1;
	}
	if (path != NULL) {
		fclose(out);
		if (rc != 0)
			unlink(path); /* no half-written message left behind */
	}
	return rc;
}
