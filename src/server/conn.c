/*
 * conn.c - socket I/O for server sessions over a libevent bufferevent.
 *
 * Read-ahead is capped by a high watermark so a client that floods us
 * only fills CONN_INPUT_MAX bytes; the rest waits in the kernel.  Deadlines
 * are one timer per connection, re-armed by the session for every request
 * (command, or data progress), which is how per-request timeouts and a
 * minimum data rate are enforced.  Callbacks into the session are made from
 * the event loop only, and a conn is never freed inside its own callback
 * chain by this layer: the session decides when to call conn_free().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/conn.h"
#include "util/log.h"

struct conn {
	struct bufferevent *bev;
	struct event *timer;
	struct event *tarpit;
	struct evbuffer *held; /* reply waiting for the tarpit to expire */
	const struct conn_ops *ops;
	void *arg;
	int fd;
	int closing;
	SSL *pending_ssl; /* STARTTLS waiting for the 220 to be written */
	int handshaking;
};

static void conn_switch_to_tls(struct conn *);

double
conn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (!c->closing)
		c->ops->input(c->arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->pending_ssl != NULL)
		conn_switch_to_tls(c);
	else if (c->closing)
		c->ops->flushed(c->arg);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *why = "connection closed by peer";

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake completed. */
		c->handshaking = 0;
		bufferevent_enable(c->bev, EV_READ);
		c->ops->tls_done(c->arg, 1);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);

		why = e != 0 ? ERR_reason_error_string(e)
		             : strerror(EVUTIL_SOCKET_ERROR());
		if (why == NULL)
			why = "TLS error";
	}
	if (c->handshaking) {
		c->handshaking = 0;
		c->ops->tls_done(c->arg, 0);
		return;
	}
	if (c->closing && !(what & BEV_EVENT_ERROR)) {
		c->ops->flushed(c->arg);
		return;
	}
	c->ops->closed(c->arg, why);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->ops->timeout(c->arg);
}

static void
conn_tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	bufferevent_write_buffer(c->bev, c->held);
	if (c->closing)
		return;
	bufferevent_enable(c->bev, EV_READ);
	c->ops->input(c->arg);
}

struct conn *
conn_new(struct event_base *base, int fd, const struct conn_ops *ops, void *arg)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(base, conn_timer_cb, c);
	c->tarpit = evtimer_new(base, conn_tarpit_cb, c);
	c->held = evbuffer_new();
	if (c->bev == NULL || c->timer == NULL || c->tarpit == NULL ||
	    c->held == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->tarpit != NULL)
			event_free(c->tarpit);
		if (c->held != NULL)
			evbuffer_free(c->held);
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->ops = ops;
	c->arg = arg;
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_MAX);
	bufferevent_setcb(
	    c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	event_free(c->timer);
	event_free(c->tarpit);
	evbuffer_free(c->held);
	bufferevent_free(c->bev);
	free(c);
}

const char *
conn_peek(struct conn *c, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	*len = evbuffer_get_length(in);
	if (*len == 0)
		return "";
	return (const char *)evbuffer_pullup(in, -1);
}

void
conn_consume(struct conn *c, size_t n)
{
	evbuffer_drain(bufferevent_get_input(c->bev), n);
}

size_t
conn_input_len(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	/* Keep replies in order behind one that is being tarpitted. */
	if (evtimer_pending(c->tarpit, NULL))
		evbuffer_add(c->held, p, n);
	else
		bufferevent_write(c->bev, p, n);
}

void
conn_pause(struct conn *c)
{
	bufferevent_disable(c->bev, EV_READ);
}

void
conn_resume(struct conn *c)
{
	if (!c->closing && !evtimer_pending(c->tarpit, NULL))
		bufferevent_enable(c->bev, EV_READ);
}

void
conn_close_after_flush(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	if (evtimer_pending(c->tarpit, NULL)) {
		evtimer_del(c->tarpit);
		bufferevent_write_buffer(c->bev, c->held);
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		c->ops->flushed(c->arg);
}

void
conn_set_deadline(struct conn *c, double when)
{
	struct timeval tv;
	double delta;

	if (when <= 0) {
		evtimer_del(c->timer);
		return;
	}
	delta = when - conn_now();
	if (delta < 0)
		delta = 0;
	tv.tv_sec = (time_t)delta;
	tv.tv_usec = (suseconds_t)((delta - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->timer, &tv);
}

void
conn_write_later(struct conn *c, const void *p, size_t n, double delay)
{
	struct timeval tv;

	if (delay <= 0 || c->closing) {
		conn_write(c, p, n);
		return;
	}
	evbuffer_add(c->held, p, n);
	if (evtimer_pending(c->tarpit, NULL))
		return;
	bufferevent_disable(c->bev, EV_READ);
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->tarpit, &tv);
}

int
conn_held(const struct conn *c)
{
	return evtimer_pending(c->tarpit, NULL);
}

int
conn_starttls(struct conn *c, SSL *ssl)
{
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_disable(c->bev, EV_READ);
	c->pending_ssl = ssl;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_switch_to_tls(c);
	return 0;
}

/*
 * Replace the plain bufferevent by a TLS one on the same socket.  Reading
 * was disabled since STARTTLS was parsed, so the client's handshake is
 * still in the kernel and no plaintext can leak into the TLS session.
 */
static void
conn_switch_to_tls(struct conn *c)
{
	struct event_base *base = bufferevent_get_base(c->bev);
	struct bufferevent *tls;
	SSL *ssl = c->pending_ssl;

	c->pending_ssl = NULL;
	bufferevent_setfd(c->bev, -1);
	bufferevent_free(c->bev);
	tls = bufferevent_openssl_socket_new(
	    base, c->fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		/* Cannot continue in either mode: close the socket. */
		SSL_free(ssl);
		c->bev =
		    bufferevent_socket_new(base, c->fd, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL)
			log_fatal("out of memory");
		c->ops->tls_done(c->arg, 0);
		return;
	}
	c->bev = tls;
	c->handshaking = 1;
	/* A dirty shutdown is still the end: never read plaintext after. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 0);
	bufferevent_setwatermark(tls, EV_READ, 0, CONN_INPUT_MAX);
	bufferevent_setcb(tls, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

SSL *
conn_ssl(struct conn *c)
{
	if (c->pending_ssl != NULL || c->handshaking)
		return NULL;
	return bufferevent_openssl_get_ssl(c->bev);
}

int
conn_socket_has_data(struct conn *c)
{
	char b;
	ssize_t n;

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return 1;
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n > 0;
}
