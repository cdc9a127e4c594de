/*
 * control.c - the control socket: a UNIX stream socket, mode 0600 (root,
 * or the run-time user after the switch), one request line per connection,
 * answered with text lines and a final "." line.
 *
 * A request is a verb and its arguments ("verb ARG", or with several
 * "verb\tARG\tARG"); an answer whose first line starts with "error: "
 * is a failure.  The queue and message commands are in control_queue.c,
 * the views (queue, messages), which stream their answer from a worker
 * thread, in control_view.c; status, reload and logs reopen (the daemon
 * as a whole) in control_admin.c; tls-report in control_tlsrpt.c;
 * get-tlsposture [DOMAIN] answers with src/status/posture_view.c.
 * Requests are read through the bounded line reader; a request must come
 * within 10 seconds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "control/control.h"
#include "control/control_admin.h"
#include "control/control_int.h"
#include "server/conn.h"
#include "server/server.h"
#include "smtp/linereader.h"
#include "status/posture_view.h"
#include "util/buf.h"
#include "util/log.h"

static void
control_free(struct control_client *c)
{
	conn_free(c->conn);
	free(c);
}

void
control_answer(struct control_client *c, struct buf *out)
{
	c->waiting = 0;
	if (c->gone) {
		control_free(c);
		return;
	}
	if (out->len >= CONTROL_OUT_MAX - 4096)
		buf_puts(out, "(truncated)\n");
	buf_puts(out, ".\n");
	conn_write(c->conn, out->data, out->len);
	conn_close_after_flush(c->conn);
}

void
control_answer_raw(
    struct control_client *c, const char *head, const char *data, size_t len)
{
	c->waiting = 0;
	if (c->gone) {
		control_free(c);
		return;
	}
	conn_write(c->conn, head, strlen(head));
	conn_write(c->conn, data, len);
	conn_write(c->conn, ".\n", 2);
	conn_close_after_flush(c->conn);
}

/* Split the line: see struct control_request. */
static void
control_parse(struct control_request *r, const char *line)
{
	char *p;

	memset(r, 0, sizeof(*r));
	snprintf(r->line, sizeof(r->line), "%s", line);
	r->verb = r->line;
	if ((p = strpbrk(r->line, " \t")) == NULL)
		return;
	if (*p == ' ' && strchr(p, '\t') == NULL) {
		*p = '\0';
		r->args[r->nargs++] = p + 1;
		return;
	}
	while (p != NULL && r->nargs < CONTROL_ARGS_MAX) {
		*p = '\0';
		r->args[r->nargs++] = p + 1;
		p = strchr(p + 1, '\t');
	}
}

/* See control_queue_run() for what it returns. */
static int
control_run(struct control_client *c, const char *line, struct buf *out)
{
	struct control_request req;
	int rc;

	/* status, reload, logs reopen: control_admin.c */
	if (control_admin_run(c->ctl, line, out))
		return 0;
	control_parse(&req, line);
	if ((rc = control_queue_run(c, &req, out)) >= 0)
		return rc;
	if ((rc = control_tlsrpt_run(c, &req, out)) >= 0)
		return rc;
	if (strcmp(req.verb, "get-tlsposture") == 0) {
		/* Exchange Online's TLS report (src/status/posture_view.c) */
		posture_view_text(c->ctl->daemon,
		    req.nargs > 0 ? req.args[0] : NULL, time(NULL), out);
		return 0;
	}
	buf_printf(out, "error: unknown request (status, reload, logs reopen, "
	                "queue, messages, retry, suspend, resume, remove, "
	                "export, get-tlsposture, tls-report)\n");
	return 0;
}

static void
control_input(void *arg)
{
	struct control_client *c = arg;
	size_t len, linelen, used;
	const char *p;
	char line[CONTROL_LINE_MAX + 1];
	struct buf out;

	if (c->done) {
		/* a view streaming its answer: the client took some */
		if (c->view != NULL)
			control_view_pump(c->view);
		return;
	}
	p = conn_peek(c->conn, &len);
	switch (linereader_next(p, len, CONTROL_LINE_MAX, &linelen, &used)) {
	case LR_MORE:
		return;
	case LR_OK:
		memcpy(line, p, linelen);
		line[linelen] = '\0';
		break;
	default:
		snprintf(line, sizeof(line), "bad request");
		break;
	}
	c->done = 1;
	buf_init(&out, CONTROL_OUT_MAX);
	/* Waiting until answered, which may happen before control_run
	 * returns (control_answer clears it). */
	c->waiting = 1;
	if (control_run(c, line, &out) == 0)
		control_answer(c, &out);
	buf_free(&out);
}

static void
control_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;

	(void)fd;
	(void)what;
	if (c->waiting) {
		c->gone = 1; /* control_answer frees it */
		return;
	}
	control_free(c);
}

static void
control_end(void *arg, const char *why)
{
	struct control_client *c = arg;

	(void)why;
	/* a view ends with its client (its worker is joined here) */
	if (c->view != NULL) {
		control_view_cancel(c->view);
		c->waiting = 0;
	}
	conn_pause(c->conn);
	event_base_once(
	    c->ctl->daemon->base, -1, EV_TIMEOUT, control_free_cb, c, NULL);
}

static void
control_flushed(void *arg)
{
	control_end(arg, NULL);
}

static void
control_timeout(void *arg)
{
	control_end(arg, "timeout");
}

static void
control_tls(void *arg, int ok)
{
	(void)ok;
	control_end(arg, "no TLS here");
}

static const struct conn_ops control_ops = {
    .input = control_input,
    .closed = control_end,
    .timeout = control_timeout,
    .flushed = control_flushed,
    .tls_done = control_tls,
};

static void
control_accept(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct control *ctl = arg;
	struct control_client *c = calloc(1, sizeof(*c));

	(void)ev;
	(void)sa;
	(void)len;
	if (c == NULL) {
		close(fd);
		return;
	}
	c->ctl = ctl;
	if ((c->conn = conn_new(ctl->daemon->base, fd, &control_ops, c)) ==
	    NULL) {
		free(c);
		return;
	}
	/* A request must come within 10 seconds. */
	conn_set_deadline(c->conn, conn_now() + 10);
}

struct control *
control_start(struct daemon *daemon, struct server *srv, struct qmgr *qmgr,
    const char *path)
{
	struct sockaddr_un sun;
	struct control *ctl;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("ControlSocket %s: path too long", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL ||
	    (ctl->path = strdup(path)) == NULL) {
		free(ctl);
		return NULL;
	}
	ctl->daemon = daemon;
	ctl->srv = srv;
	ctl->qmgr = qmgr;
	unlink(path); /* a socket left by a previous run */
	if ((fd = socket(
	         AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	old = umask(0177); /* 0600: root, or the run-time user */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0) {
		umask(old);
		close(fd);
		goto fail;
	}
	umask(old);
	ctl->ev = evconnlistener_new(
	    daemon->base, control_accept, ctl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (ctl->ev == NULL) {
		close(fd);
		goto fail;
	}
	return ctl;
fail:
	log_err("ControlSocket %s: %s", path, strerror(errno));
	free(ctl->path);
	free(ctl);
	return NULL;
}

void
control_stop(struct control *ctl)
{
	if (ctl == NULL)
		return;
	control_view_stop_all(ctl);
	evconnlistener_free(ctl->ev);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
