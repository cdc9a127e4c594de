/*
 * ctl_queue.c - sluicectl commands that ask the running daemon about its
 * queues over the control socket (ControlSocket): "queue" as Get-Queue,
 * "messages [QUEUE]" as Get-Message, "retry QUEUE" (Retry-Queue),
 * "suspend QUEUE" / "resume QUEUE" (Suspend-Queue, Resume-Queue) and
 * "remove ID" (Remove-Message).  The answer ends with a "." line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "util/buf.h"

/* The daemon's answer is bounded by its own limit; allow a bit more. */
#define CTL_ANSWER_MAX (17 * 1024 * 1024)

static int
ctl_ask(struct ctl *ctl, const char *request)
{
	struct sockaddr_un sun;
	struct conf *c = conf_load(ctl->conf_path, stderr);
	struct buf ans;
	char chunk[8192];
	int fd = -1, rc = 1;
	ssize_t n;

	if (c == NULL)
		return 1;
	buf_init(&ans, CTL_ANSWER_MAX);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    c->transport.control_socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "sluicectl: %s: %s (is sluiced running?)\n",
		    c->transport.control_socket, strerror(errno));
		goto out;
	}
	if (dprintf(fd, "%s\r\n", request) < 0)
		goto out;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(&ans, chunk, (size_t)n) != BUF_OK)
			break;
	if (ans.len < 2 || strcmp(ans.data + ans.len - 2, ".\n") != 0 ||
	    (ans.len > 2 && ans.data[ans.len - 3] != '\n')) {
		fprintf(stderr, "sluicectl: the answer was cut short\n");
		goto out;
	}
	fwrite(ans.data, 1, ans.len - 2, stdout);
	rc = strncmp(ans.data, "error: ", 7) == 0 ? 1 : 0;
out:
	if (fd >= 0)
		close(fd);
	buf_free(&ans);
	conf_free(c);
	return rc;
}

int
ctl_queue(struct ctl *ctl, int argc, char **argv)
{
	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: sluicectl queue\n");
		return 2;
	}
	return ctl_ask(ctl, "queue");
}

int
ctl_messages(struct ctl *ctl, int argc, char **argv)
{
	char req[600];

	if (argc > 1) {
		fprintf(stderr, "usage: sluicectl messages [QUEUE]\n");
		return 2;
	}
	snprintf(req, sizeof(req), "messages%s%s", argc ? " " : "",
	    argc ? argv[0] : "");
	if (strpbrk(req, "\r\n") != NULL)
		return 2;
	return ctl_ask(ctl, req);
}

/* The commands that take exactly one name. */
static int
ctl_one(
    struct ctl *ctl, const char *verb, const char *what, int argc, char **argv)
{
	char req[600];

	if (argc != 1) {
		fprintf(stderr, "usage: sluicectl %s %s\n", verb, what);
		return 2;
	}
	snprintf(req, sizeof(req), "%s %s", verb, argv[0]);
	if (strpbrk(req, "\r\n") != NULL)
		return 2;
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
	return ctl_one(ctl, "suspend", "QUEUE", argc, argv);
}

int
ctl_resume(struct ctl *ctl, int argc, char **argv)
{
	return ctl_one(ctl, "resume", "QUEUE", argc, argv);
}

int
ctl_remove(struct ctl *ctl, int argc, char **argv)
{
	return ctl_one(ctl, "remove", "ID", argc, argv);
}
