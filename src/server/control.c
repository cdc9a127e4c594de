/*
 * control.c - the control socket: a UNIX stream socket, mode 0600 (root,
 * or the run-time user after the switch), one request line per connection,
 * answered with text lines and a final "." line.
 *
 * Requests:
 *   queue              the queues: one per next hop (Get-Queue)
 *   messages [QUEUE]   the messages waiting, in one queue or all
 *                      (Get-Message)
 *   retry QUEUE        try the queue's next hop now (Retry-Queue)
 *   suspend QUEUE      no more connections for it (Suspend-Queue; not
 *   resume QUEUE       kept across restarts, as in Exchange)
 *   remove ID          the message's pending recipients end, without a
 *                      notice (Remove-Message -WithNDR $false)
 *   status, reload, logs reopen
 *                      the daemon as a whole: control_admin.c
 * Queues are derived, not stored: each pending recipient is routed with
 * the live configuration, and its next hop names its queue — "Local" for
 * Authoritative domains, the recipient domain for DNS-routed connectors,
 * the connector's name for smart-host connectors, "Unreachable" when no
 * connector matches.  Requests are read through the bounded line reader.
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

#include "queue/dqueue.h"
#include "queue/qmgr.h"
#include "route/route.h"
#include "server/conn.h"
#include "server/control.h"
#include "server/control_admin.h"
#include "server/server.h"
#include "smtp/linereader.h"
#include "spool/spool.h"
#include "util/buf.h"
#include "util/log.h"

/* A request line, and the largest answer (then it says "(truncated)"). */
#define CONTROL_LINE_MAX 510
#define CONTROL_OUT_MAX (16 * 1024 * 1024)
/* Queues shown at most; each is one next hop. */
#define CONTROL_QUEUES_MAX 4096

struct control {
	struct server *srv;
	struct evconnlistener *ev;
	char *path;
};

struct control_client {
	struct control *ctl;
	struct conn *conn;
	int done;
	int waiting; /* an answer comes from the spool's callback */
	int gone;    /* the connection ended while waiting */
	char arg[CONTROL_LINE_MAX + 1];
};

struct control_queue {
	char identity[300];
	const char *type;
	unsigned messages;
	unsigned ready;
	time_t next_retry;
	char last_error[200];
	char last_queue_id[32];
};

struct control_walk {
	struct control *ctl;
	struct control_queue *queues;
	size_t nqueues;
	struct buf *out;
	const char *only; /* messages: this queue only, or NULL */
	time_t now;
};

static void
control_queue_of(const struct conf *conf, const char *addr, char *id,
    size_t idlen, const char **type)
{
	const char *at = strrchr(addr, '@');
	struct route r;

	route_domain(conf, at != NULL ? at + 1 : "", &r);
	route_queue_name(&r, at != NULL ? at + 1 : "", id, idlen, type);
}

static void
control_stamp(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
control_collect(void *arg, const struct spool_pending *p)
{
	struct control_walk *w = arg;
	struct control_queue *q = NULL;
	char id[300];
	const char *type;

	control_queue_of(
	    w->ctl->srv->conf->conf, p->addr, id, sizeof(id), &type);
	for (size_t i = 0; i < w->nqueues; i++)
		if (strcmp(w->queues[i].identity, id) == 0)
			q = &w->queues[i];
	if (q == NULL) {
		if (w->nqueues == CONTROL_QUEUES_MAX)
			return 0;
		q = &w->queues[w->nqueues++];
		memset(q, 0, sizeof(*q));
		snprintf(q->identity, sizeof(q->identity), "%s", id);
		q->type = type;
	}
	if (strcmp(q->last_queue_id, p->queue_id) != 0) {
		q->messages++;
		snprintf(q->last_queue_id, sizeof(q->last_queue_id), "%s",
		    p->queue_id);
	}
	if (p->next_attempt <= w->now)
		q->ready++;
	else if (q->next_retry == 0 || p->next_attempt < q->next_retry)
		q->next_retry = p->next_attempt;
	if (p->last_error[0] != '\0')
		snprintf(
		    q->last_error, sizeof(q->last_error), "%s", p->last_error);
	return 0;
}

static void
control_queues(struct control *ctl, struct buf *out)
{
	struct control_walk w = {ctl, NULL, 0, out, NULL, time(NULL)};
	char when[32];

	if ((w.queues = calloc(CONTROL_QUEUES_MAX, sizeof(*w.queues))) ==
	    NULL) {
		buf_puts(out, "error: out of memory\n");
		return;
	}
	if (spool_foreach_pending(ctl->srv->spool, control_collect, &w) < 0)
		buf_puts(out, "error: cannot read the queue\n");
	buf_printf(out, "%-32s %-27s %-9s %12s %-20s %s\n", "Identity",
	    "DeliveryType", "Status", "MessageCount", "NextRetryTime",
	    "LastError");
	for (size_t i = 0; i < w.nqueues; i++) {
		const struct control_queue *q = &w.queues[i];
		const char *status = q->ready > 0 ? "Ready" : "Retry";
		char live_error[200] = "";
		unsigned conns = 0;
		const char *live = dqueues_status(qmgr_dqueues(ctl->srv->qmgr),
		    q->identity, &conns, live_error, sizeof(live_error));

		/* The live queue knows better: Active, Suspended. */
		if (live != NULL && (strcmp(live, "Active") == 0 ||
		                        strcmp(live, "Suspended") == 0))
			status = live;
		if (q->next_retry != 0)
			control_stamp(q->next_retry, when, sizeof(when));
		else
			snprintf(when, sizeof(when), "-");
		buf_printf(out, "%-32s %-27s %-9s %12u %-20s %s\n", q->identity,
		    q->type, status, q->messages, when,
		    q->last_error[0] ? q->last_error : live_error);
	}
	free(w.queues);
}

static int
control_message(void *arg, const struct spool_pending *p)
{
	struct control_walk *w = arg;
	char id[300], when[32], next[32];
	const char *type;

	control_queue_of(
	    w->ctl->srv->conf->conf, p->addr, id, sizeof(id), &type);
	if (w->only != NULL && strcasecmp(w->only, id) != 0)
		return 0;
	control_stamp(p->received, when, sizeof(when));
	control_stamp(p->next_attempt, next, sizeof(next));
	buf_printf(w->out,
	    "Identity      : %s\\%s\nFromAddress   : %s\nRecipient     : "
	    "%s\nSize          : %lld\nDateReceived  : %s\nStatus        : "
	    "%s\nRetryCount    : %u\nNextRetryTime : %s\nLastError     : "
	    "%s\n\n",
	    id, p->queue_id, p->sender[0] ? p->sender : "<>", p->addr,
	    (long long)p->size, when,
	    p->next_attempt <= w->now ? "Ready" : "Retry", p->attempts, next,
	    p->last_error);
	return w->out->len >= w->out->max - 4096;
}

static void control_answer(struct control_client *, struct buf *);

/* The spool made an administrator's change durable (or not). */
static void
control_changed(void *arg, int ok, const char *queue_id)
{
	struct control_client *c = arg;
	struct buf out;

	c->waiting = 0;
	if (c->gone) {
		conn_free(c->conn);
		free(c);
		return;
	}
	buf_init(&out, CONTROL_OUT_MAX);
	if (!ok)
		buf_printf(&out, "error: the queue could not be changed\n");
	else if (strncmp(c->arg, "remove ", 7) == 0 && queue_id[0] == '\0')
		buf_printf(&out, "error: no pending message %s\n", c->arg + 7);
	else
		buf_printf(&out, "ok\n");
	control_answer(c, &out);
	buf_free(&out);
}

/* Returns 1 when the answer comes later (control_changed). */
static int
control_run(struct control_client *c, const char *line, struct buf *out)
{
	struct control *ctl = c->ctl;
	struct control_walk w = {ctl, NULL, 0, out, NULL, time(NULL)};
	struct dqueues *dqs = qmgr_dqueues(ctl->srv->qmgr);

	if (control_admin_run(ctl->srv, line, out)) {
		/* status, reload, logs reopen: control_admin.c */
	} else if (strcmp(line, "queue") == 0) {
		control_queues(ctl, out);
	} else if (strcmp(line, "messages") == 0 ||
	           strncmp(line, "messages ", 9) == 0) {
		w.only = line[8] == ' ' ? line + 9 : NULL;
		if (spool_foreach_pending(
		        ctl->srv->spool, control_message, &w) < 0)
			buf_puts(out, "error: cannot read the queue\n");
	} else if (strncmp(line, "suspend ", 8) == 0) {
		dqueues_suspend(dqs, line + 8, 1);
		buf_printf(out, "queue %s suspended\n", line + 8);
	} else if (strncmp(line, "resume ", 7) == 0) {
		if (dqueues_suspend(dqs, line + 7, 0) < 0)
			buf_printf(out, "error: queue %s is not suspended\n",
			    line + 7);
		else
			buf_printf(out, "queue %s resumed\n", line + 7);
	} else if (strncmp(line, "retry ", 6) == 0) {
		dqueues_retry(dqs, line + 6);
		snprintf(c->arg, sizeof(c->arg), "%s", line);
		if (spool_retry(ctl->srv->spool, line + 6, control_changed, c) <
		    0) {
			buf_printf(out, "error: out of memory\n");
			return 0;
		}
		return 1;
	} else if (strncmp(line, "remove ", 7) == 0) {
		dqueues_forget_message(dqs, line + 7);
		snprintf(c->arg, sizeof(c->arg), "%s", line);
		if (spool_remove(
		        ctl->srv->spool, line + 7, control_changed, c) < 0) {
			buf_printf(out, "error: out of memory\n");
			return 0;
		}
		return 1;
	} else {
		buf_printf(out, "error: unknown request (status, reload, logs "
		                "reopen, queue, messages [QUEUE], retry QUEUE, "
		                "suspend QUEUE, resume QUEUE, remove ID)\n");
	}
	return 0;
}

static void
control_answer(struct control_client *c, struct buf *out)
{
	if (out->len >= CONTROL_OUT_MAX - 4096)
		buf_puts(out, "(truncated)\n");
	buf_puts(out, ".\n");
	conn_write(c->conn, out->data, out->len);
	conn_close_after_flush(c->conn);
}

static void
control_input(void *arg)
{
	struct control_client *c = arg;
	size_t len, linelen, used;
	const char *p;
	char line[CONTROL_LINE_MAX + 1];
	struct buf out;

	if (c->done)
		return;
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
	if (control_run(c, line, &out) == 0)
		control_answer(c, &out);
	else
		c->waiting = 1;
	buf_free(&out);
}

static void
control_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *c = arg;

	(void)fd;
	(void)what;
	if (c->waiting) {
		c->gone = 1; /* control_changed frees it */
		return;
	}
	conn_free(c->conn);
	free(c);
}

static void
control_end(void *arg, const char *why)
{
	struct control_client *c = arg;

	(void)why;
	conn_pause(c->conn);
	event_base_once(
	    c->ctl->srv->base, -1, EV_TIMEOUT, control_free_cb, c, NULL);
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
	if ((c->conn = conn_new(ctl->srv->base, fd, &control_ops, c)) == NULL) {
		free(c);
		return;
	}
	/* A request must come within 10 seconds. */
	conn_set_deadline(c->conn, conn_now() + 10);
}

struct control *
control_start(struct server *srv, const char *path)
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
	ctl->srv = srv;
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
	    srv->base, control_accept, ctl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
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
	evconnlistener_free(ctl->ev);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
