/*
 * status_http.c - the status listener (see status_http.h).
 *
 * Where it sits: beside the SMTP listeners, on the same event loop, so
 * every figure it shows is read on the thread that writes it and nothing
 * is locked.  A request is answered at once from memory and the queue
 * database's read-only connection (the posture, bounded:
 * POSTURE_REPORT_MAX partners).  The queue table is the one exception:
 * its walk of every waiting recipient runs on a thread of its own
 * (status_queues.c), and a request is answered with the last reading.
 *
 * Exposure: the status page has no authentication, so the listener only
 * binds loopback addresses (a configuration error otherwise) and answers
 * only requests whose Host is a loopback name or address: a web page on
 * the Internet cannot read it through the administrator's browser by
 * DNS rebinding.  Answers carry a Content-Security-Policy that allows
 * nothing but the page's own inline style, and are never cached.
 * Requests are bounded: GET and HEAD only (others get 405), 8 KB of
 * headers, no body (413), 10 s to send them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "conf/conf.h"
#include "control/control.h"
#include "daemon/daemon.h"
#include "queue/dqueue.h"
#include "queue/qmgr.h"
#include "server/server.h"
#include "spool/spool.h"
#include "status/metrics.h"
#include "status/status_http.h"
#include "status/status_page.h"
#include "status/status_queues.h"
#include "util/buf.h"
#include "util/log.h"

/* Largest answer: a page or a scrape of thousands of queues. */
#define STATUS_HTTP_OUT_MAX (16 * 1024 * 1024)
#define STATUS_HTTP_HEADERS_MAX 8192
#define STATUS_HTTP_TIMEOUT_SECONDS 10
/* Bindings of one listener at most (StatusListen is a short list). */
#define STATUS_HTTP_BINDINGS_MAX 8

struct status_http {
	struct daemon *daemon;
	struct server *srv; /* the sessions, the message memory */
	struct qmgr *qmgr;  /* the delivery side, NULL without one */
	struct evhttp *http;
	struct status_queues *queues; /* read every STATUS_QUEUES_SECONDS */
	char bindings[STATUS_HTTP_BINDINGS_MAX][80];
	size_t nbindings;
};

int
status_http_host_allowed(const char *host)
{
	char name[80];
	const char *end;
	size_t n;
	struct in_addr a4;

	if (host == NULL)
		return 0; /* HTTP/1.1 requires it; HTTP/1.0 clients send it */
	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return 0;
		n = (size_t)(end - host - 1);
		return n == 3 && strncmp(host + 1, "::1", 3) == 0 &&
		       (end[1] == '\0' || end[1] == ':');
	}
	end = strchr(host, ':');
	n = end != NULL ? (size_t)(end - host) : strlen(host);
	if (n == 0 || n >= sizeof(name))
		return 0;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0 ||
	    strcasecmp(name, "localhost.") == 0)
		return 1;
	return inet_pton(AF_INET, name, &a4) == 1 &&
	       (ntohl(a4.s_addr) >> 24) == 127;
}

static void
status_http_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Content-Security-Policy",
	    "default-src 'none'; style-src 'unsafe-inline'; "
	    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
}

static void
status_http_answer(struct evhttp_request *req, int code, const char *reason,
    const char *type, const struct buf *body)
{
	struct evbuffer *eb = evbuffer_new();

	status_http_headers(req, type);
	if (eb != NULL && body != NULL && body->len > 0)
		evbuffer_add(eb, body->data, body->len);
	evhttp_send_reply(req, code, reason, eb);
	if (eb != NULL)
		evbuffer_free(eb);
}

static void
status_http_text(
    struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct buf b;

	buf_init(&b, 4096);
	buf_puts(&b, text);
	status_http_answer(req, code, reason, "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

/* A gauge family: HELP, TYPE and its samples. */
static void
status_http_gauge_head(struct buf *out, const char *name, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static int
status_http_metrics(struct status_http *st, struct buf *out)
{
	struct server *srv = st->srv;
	const struct control_queue_info *q;
	size_t nq;
	int failed, ok = status_queues_get(st->queues, &q, &nq, &failed);
	if (metrics_render(st->daemon->metrics, out) < 0)
		return -1;
	status_http_gauge_head(
	    out, "sluice_sessions_active", "SMTP sessions open now.");
	metrics_gauge(out, "sluice_sessions_active", "direction", "inbound",
	    (double)srv->nsessions);
	metrics_gauge(out, "sluice_sessions_active", "direction", "outbound",
	    (double)dqueues_connections(
	        st->qmgr != NULL ? qmgr_dqueues(st->qmgr) : NULL));
	status_http_gauge_head(out, "sluice_queue_messages",
	    "Messages waiting, by queue (Get-Queue's MessageCount), read at "
	    "most every 10 seconds.");
	for (size_t i = 0; ok && i < nq; i++)
		metrics_gauge(out, "sluice_queue_messages", "queue",
		    q[i].identity, (double)q[i].messages);
	status_http_gauge_head(out, "sluice_queue_reading",
	    "1 while the queues are being read for sluice_queue_messages.");
	metrics_gauge(out, "sluice_queue_reading", NULL, NULL,
	    (double)status_queues_reading(st->queues));
	buf_printf(out,
	    "# HELP sluice_queue_readings_total Readings of the queues "
	    "finished.\n# TYPE sluice_queue_readings_total counter\n"
	    "sluice_queue_readings_total %lu\n",
	    status_queues_readings(st->queues));
	status_http_gauge_head(out, "sluice_queue_reading_cpu_seconds",
	    "CPU time the last finished reading of the queues took.");
	metrics_gauge(out, "sluice_queue_reading_cpu_seconds", NULL, NULL,
	    status_queues_cpu(st->queues));
	status_http_gauge_head(out, "sluice_commit_pending_messages",
	    "Messages and results handed to the queue's committer, not yet "
	    "durable.");
	metrics_gauge(out, "sluice_commit_pending_messages", NULL, NULL,
	    (double)spool_inflight(st->daemon->spool));
	status_http_gauge_head(out, "sluice_message_memory_bytes",
	    "Bytes of messages being received, held in memory.");
	return metrics_gauge(out, "sluice_message_memory_bytes", NULL, NULL,
	    (double)srv->memory_used);
}

static void
status_http_request(struct evhttp_request *req, void *arg)
{
	struct status_http *st = arg;
	const char *uri = evhttp_request_get_uri(req);
	const char *host =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	struct evhttp_uri *u = NULL;
	const char *path;
	struct buf out;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		status_http_text(req, 405, "Method Not Allowed",
		    "The status page is read-only: GET and HEAD only.\n");
		return;
	}
	if (!status_http_host_allowed(host)) {
		status_http_text(req, 403, "Forbidden",
		    "The status page answers loopback host names only "
		    "(localhost, 127.0.0.1, [::1]).\n");
		return;
	}
	if (uri == NULL || (u = evhttp_uri_parse(uri)) == NULL ||
	    (path = evhttp_uri_get_path(u)) == NULL) {
		status_http_text(req, 400, "Bad Request", "Bad request.\n");
		goto out;
	}
	buf_init(&out, STATUS_HTTP_OUT_MAX);
	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
		const struct control_queue_info *q;
		size_t nq;
		int failed,
		    ok = status_queues_get(st->queues, &q, &nq, &failed);

		if (status_page_render(st->daemon, st->srv->nsessions, q,
		        ok ? nq : 0,
		        ok       ? STATUS_PAGE_QUEUES_READ
		        : failed ? STATUS_PAGE_QUEUES_UNREADABLE
		                 : STATUS_PAGE_QUEUES_FIRST,
		        &out) < 0)
			buf_puts(&out, "<p>(truncated)</p>");
		status_http_answer(
		    req, 200, "OK", "text/html; charset=utf-8", &out);
	} else if (strcmp(path, "/metrics") == 0) {
		if (status_http_metrics(st, &out) < 0)
			log_warn("status: /metrics larger than %d bytes; cut",
			    STATUS_HTTP_OUT_MAX);
		status_http_answer(req, 200, "OK",
		    "text/plain; version=0.0.4; charset=utf-8", &out);
	} else {
		status_http_text(req, 404, "Not Found",
		    "Not found. The status page is at /, the metrics at "
		    "/metrics.\n");
	}
	buf_free(&out);
out:
	if (u != NULL)
		evhttp_uri_free(u);
}

static int
status_http_bind(const struct conf_binding *b)
{
	int fd, one = 1;

	if ((fd = socket(b->ss.ss_family,
	         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (b->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&b->ss, b->sslen) < 0 ||
	    listen(fd, 64) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

struct status_http *
status_http_start(struct daemon *daemon, struct server *srv, struct qmgr *qmgr,
    const struct conf_binding *b, size_t n, char *why, size_t whylen)
{
	struct status_http *st = calloc(1, sizeof(*st));
	struct timeval timeout = {STATUS_HTTP_TIMEOUT_SECONDS, 0};

	if (st == NULL || (st->http = evhttp_new(daemon->base)) == NULL) {
		snprintf(why, whylen, "out of memory");
		free(st);
		return NULL;
	}
	st->daemon = daemon;
	st->srv = srv;
	st->qmgr = qmgr;
	if ((st->queues = status_queues_new(daemon, qmgr)) == NULL) {
		snprintf(why, whylen, "out of memory");
		evhttp_free(st->http);
		free(st);
		return NULL;
	}
	/* Others get our 405 with Allow (evhttp itself would say 501). */
	evhttp_set_allowed_methods(
	    st->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                  EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(st->http, STATUS_HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(st->http, 0);
	evhttp_set_timeout_tv(st->http, &timeout);
	evhttp_set_gencb(st->http, status_http_request, st);
	for (size_t i = 0; i < n; i++) {
		int fd;

		if (i >= STATUS_HTTP_BINDINGS_MAX) {
			snprintf(why, whylen,
			    "StatusListen: at most %d bindings",
			    STATUS_HTTP_BINDINGS_MAX);
			status_http_stop(st);
			return NULL;
		}
		if ((fd = status_http_bind(&b[i])) < 0 ||
		    evhttp_accept_socket_with_handle(st->http, fd) == NULL) {
			snprintf(why, whylen, "StatusListen %s: %s", b[i].text,
			    fd < 0 ? strerror(errno) : "cannot listen");
			if (fd >= 0)
				close(fd);
			status_http_stop(st);
			return NULL;
		}
		snprintf(
		    st->bindings[i], sizeof(st->bindings[i]), "%s", b[i].text);
		st->nbindings++;
	}
	return st;
}

void
status_http_stop(struct status_http *st)
{
	if (st == NULL)
		return;
	evhttp_free(st->http);
	status_queues_free(st->queues);
	free(st);
}

int
status_http_same(
    const struct status_http *st, const struct conf_binding *b, size_t n)
{
	if (st == NULL)
		return n == 0;
	if (st->nbindings != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(st->bindings[i], b[i].text) != 0)
			return 0;
	return 1;
}
