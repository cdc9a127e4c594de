/*
 * client_conn.c - socket and TLS I/O for outbound SMTP connections (see
 * client_conn.h).
 *
 * Where it sits: under smtp_client.c, as src/server/conn.c sits under
 * the server session.  A socket bufferevent carries the plaintext part;
 * STARTTLS puts a libevent OpenSSL filter over it, and from then on all
 * reading and writing goes through the filter.  The protocol code gets
 * events and slices and never sees either.
 *
 * Invariants:
 * - input is bounded: reading stops while CLIENT_CONN_INPUT_MAX bytes
 *   wait for the protocol;
 * - the deadline timer is armed from the connect to the free; the
 *   protocol only ever moves it (client_conn_set_timeout()), and output
 *   leaving the socket moves it too (progress, not a stall);
 * - STARTTLS drops whatever plaintext was read ahead before the filter
 *   takes the socket (CVE-2021-38371), so no byte the server sent before
 *   TLS can be taken for a reply inside it;
 * - after a TLS error or the peer's close the connection is finished:
 *   there is no way back to plaintext on the same socket;
 * - callbacks come from the event loop only, never from inside a call
 *   the protocol made, and never after client_conn_free().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "deliver/client_conn.h"
#include "util/addr.h"

struct client_conn {
	struct event_base *base;
	struct bufferevent *sock; /* the socket, plaintext */
	struct bufferevent *bev;  /* what we use: sock, or the TLS filter */
	SSL *ssl;                 /* owned by the filter once it exists */
	struct event *timer;
	struct timeval timeout;
	const struct client_conn_ops *ops;
	void *arg;
	int connected;
	int handshaking;
	int tls_up;    /* the handshake completed */
	int tls_error; /* a TLS error ended it: no close_notify */
	char local[64], remote[64];
	char why[256];
};

static void
client_conn_arm(struct client_conn *c)
{
	evtimer_add(c->timer, &c->timeout);
}

void
client_conn_set_timeout(struct client_conn *c, unsigned seconds)
{
	c->timeout.tv_sec = (time_t)seconds;
	c->timeout.tv_usec = 0;
	client_conn_arm(c);
}

/* Bytes left for the peer: the connection is alive, whatever it says. */
static void
client_conn_progress_cb(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	if (info->n_deleted > 0)
		client_conn_arm(arg);
}

static void
client_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_conn *c = arg;

	(void)fd;
	(void)what;
	c->ops->timeout(c->arg);
}

static void
client_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct client_conn *c = arg;

	(void)bev;
	c->ops->input(c->arg);
}

static void
client_conn_fill_local(struct client_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(
	        bufferevent_getfd(c->sock), (struct sockaddr *)&ss, &len) == 0)
		addr_endpoint(
		    (const struct sockaddr *)&ss, c->local, sizeof(c->local));
}

/* The plaintext socket: connected, closed, or failed. */
static void
client_conn_sock_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client_conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->connected = 1;
		client_conn_fill_local(c);
		c->ops->connected(c->arg);
		return;
	}
	if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	bufferevent_disable(c->sock, EV_READ | EV_WRITE);
	if (what & BEV_EVENT_EOF)
		snprintf(c->why, sizeof(c->why),
		    "connection closed by the "
		    "server");
	else
		snprintf(c->why, sizeof(c->why), "%s%s",
		    c->connected ? "" : "connection failed: ",
		    err != 0 ? strerror(err) : "I/O error");
	c->ops->closed(c->arg, c->why);
}

/*
 * Why TLS failed, in OpenSSL's words when it has some ("wrong version
 * number", "certificate verify failed", "tlsv1 alert unknown ca"), else
 * the socket's, else that the peer went away.
 */
static const char *
client_conn_tls_error(struct client_conn *c, short what)
{
	unsigned long e, first = 0;
	int err = EVUTIL_SOCKET_ERROR();

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0)
			first = e;
	if (first != 0 && ERR_reason_error_string(first) != NULL)
		snprintf(c->why, sizeof(c->why), "%s",
		    ERR_reason_error_string(first));
	else if (first != 0)
		snprintf(c->why, sizeof(c->why), "TLS error %lx", first);
	else if ((what & BEV_EVENT_EOF) || err == 0)
		snprintf(c->why, sizeof(c->why), "peer closed the connection");
	else
		snprintf(c->why, sizeof(c->why), "%s", strerror(err));
	return c->why;
}

/* The TLS filter: handshake done, or the connection ended. */
static void
client_conn_tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client_conn *c = arg;
	const char *why;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->handshaking = 0;
		c->tls_up = 1;
		c->ops->tls_done(c->arg, NULL);
		return;
	}
	if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	why = client_conn_tls_error(c, what);
	if (what & BEV_EVENT_ERROR)
		c->tls_error = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->handshaking) {
		c->handshaking = 0;
		c->tls_error = 1;
		c->ops->tls_done(c->arg, why);
		return;
	}
	c->ops->closed(c->arg, why);
}

struct client_conn *
client_conn_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, unsigned timeout, const struct client_conn_ops *ops,
    void *arg, const char **why)
{
	struct client_conn *c = calloc(1, sizeof(*c));

	*why = "out of memory";
	if (c == NULL)
		return NULL;
	c->base = base;
	c->ops = ops;
	c->arg = arg;
	addr_endpoint(addr, c->remote, sizeof(c->remote));
	c->timer = evtimer_new(base, client_conn_timer_cb, c);
	c->sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->timer == NULL || c->sock == NULL ||
	    evbuffer_add_cb(bufferevent_get_output(c->sock),
	        client_conn_progress_cb, c) == NULL) {
		client_conn_free(c);
		return NULL;
	}
	c->bev = c->sock;
	bufferevent_setwatermark(c->sock, EV_READ, 0, CLIENT_CONN_INPUT_MAX);
	bufferevent_setcb(
	    c->sock, client_conn_read_cb, NULL, client_conn_sock_event_cb, c);
	bufferevent_enable(c->sock, EV_READ | EV_WRITE);
	client_conn_set_timeout(c, timeout);
	if (bufferevent_socket_connect(c->sock, addr, (int)addrlen) < 0) {
		*why = strerror(errno);
		client_conn_free(c);
		return NULL;
	}
	return c;
}

void
client_conn_free(struct client_conn *c)
{
	if (c == NULL)
		return;
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->ssl != NULL && c->tls_up && !c->tls_error) {
		/*
		 * close_notify: into the socket's output through the filter,
		 * then one try to write it before the socket closes.
		 */
		SSL_shutdown(c->ssl);
		evbuffer_write(bufferevent_get_output(c->sock),
		    bufferevent_getfd(c->sock));
	}
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* the filter frees the socket */
	else if (c->ssl != NULL)
		SSL_free(c->ssl);
	free(c);
}

const char *
client_conn_peek(struct client_conn *c, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	*len = evbuffer_get_length(in);
	if (*len == 0)
		return "";
	return (const char *)evbuffer_pullup(in, (ev_ssize_t)*len);
}

void
client_conn_consume(struct client_conn *c, size_t n)
{
	evbuffer_drain(bufferevent_get_input(c->bev), n);
}

int
client_conn_write(struct client_conn *c, const void *p, size_t n)
{
	return bufferevent_write(c->bev, p, n);
}

long
client_conn_starttls(struct client_conn *c, SSL *ssl)
{
	struct evbuffer *in = bufferevent_get_input(c->sock);
	size_t discarded = evbuffer_get_length(in);
	struct bufferevent *tls;

	evbuffer_drain(in, discarded);
	tls = bufferevent_openssl_filter_new(c->base, c->sock, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	/* A peer that ends without close_notify has still ended. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->ssl = ssl;
	c->handshaking = 1;
	bufferevent_setwatermark(tls, EV_READ, 0, CLIENT_CONN_INPUT_MAX);
	bufferevent_setcb(
	    tls, client_conn_read_cb, NULL, client_conn_tls_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	client_conn_arm(c);
	return (long)discarded;
}

SSL *
client_conn_ssl(struct client_conn *c)
{
	return c->ssl;
}

const char *
client_conn_local(const struct client_conn *c)
{
	return c->local;
}

const char *
client_conn_remote(const struct client_conn *c)
{
	return c->remote;
}

struct client_conn_later {
	struct event *ev;
	void (*fn)(void *);
	void *arg;
};

static void
client_conn_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_conn_later *l = arg;

	(void)fd;
	(void)what;
	l->fn(l->arg);
}

struct client_conn_later *
client_conn_later_new(struct event_base *base, void (*fn)(void *), void *arg)
{
	struct client_conn_later *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->fn = fn;
	l->arg = arg;
	if ((l->ev = event_new(base, -1, 0, client_conn_later_cb, l)) == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void
client_conn_later_fire(struct client_conn_later *l)
{
	event_active(l->ev, EV_TIMEOUT, 0);
}

void
client_conn_later_free(struct client_conn_later *l)
{
	if (l == NULL)
		return;
	event_free(l->ev);
	free(l);
}
