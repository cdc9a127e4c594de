/*
 * conn.c - socket I/O for server sessions.
 *
 * Two modes.  A plaintext connection is a socket driven directly: one
 * persistent read event, read(2) into the input buffer, and replies written
 * straight to the socket, with a write event only when the kernel does not
 * take everything.  Replies produced while one batch of input is processed
 * are written together when the batch is done, so pipelined replies (and
 * multi-line ones) leave in one segment.  This costs a read and a write
 * per request where a bufferevent also pays an ioctl(FIONREAD) per read
 * and two epoll_ctl calls per reply to arm and disarm its write event;
 * with a new connection per message that was a third of the syscalls.
 * After STARTTLS the socket belongs to a libevent OpenSSL bufferevent.
 *
 * Read-ahead is capped so a client that floods us only fills
 * CONN_INPUT_MAX bytes; the rest waits in the kernel.  Deadlines are one
 * timer per connection, re-armed by the session for every request
 * (command, or data progress), which is how per-request timeouts and a
 * minimum data rate are enforced.  Callbacks into the session are made
 * from the event loop only (an error found while writing is reported from
 * a later loop turn), and a conn is never freed inside its own callback
 * chain by this layer: the session decides when to call conn_free().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server/conn.h"
#include "util/log.h"

/*
 * One read takes at most this much (and never past CONN_INPUT_MAX): 64 KB,
 * so that a large message costs a read (and a turn of the loop) per 64 KB
 * rather than per 16 KB.
 */
#define CONN_READ_CHUNK 65536

struct conn {
	struct event_base *base;
	/* plaintext mode */
	struct event *rev, *wev;
	struct evbuffer *in, *out;
	int reading;     /* the session wants input (not paused) */
	int in_batch;    /* inside input(): replies wait for its end */
	int write_error; /* errno of a failed write, reported by wev */
	/* TLS mode, after STARTTLS */
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
static void conn_flush(struct conn *);

double
conn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct evbuffer *
conn_inbuf(struct conn *c)
{
	return c->bev != NULL ? bufferevent_get_input(c->bev) : c->in;
}

static struct evbuffer *
conn_outbuf(struct conn *c)
{
	return c->bev != NULL ? bufferevent_get_output(c->bev) : c->out;
}

/* Plaintext: read only while wanted and while there is room. */
static void
conn_plain_arm(struct conn *c)
{
	int want = c->reading && !c->closing && c->pending_ssl == NULL &&
	           !evtimer_pending(c->tarpit, NULL) &&
	           evbuffer_get_length(c->in) < CONN_INPUT_MAX;

	if (want && !event_pending(c->rev, EV_READ, NULL))
		event_add(c->rev, NULL);
	else if (!want && event_pending(c->rev, EV_READ, NULL))
		event_del(c->rev);
}

/* Hand input to the session; what it replies leaves in one write. */
static void
conn_deliver_input(struct conn *c)
{
	c->in_batch = 1;
	c->ops->input(c->arg);
	c->in_batch = 0;
	if (c->bev == NULL)
		conn_flush(c);
}

static void
conn_plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	size_t room = CONN_INPUT_MAX - evbuffer_get_length(c->in);
	struct evbuffer_iovec v;
	ssize_t n;

	(void)what;
	if (room > CONN_READ_CHUNK)
		room = CONN_READ_CHUNK;
	if (room == 0 ||
	    evbuffer_reserve_space(c->in, (ev_ssize_t)room, &v, 1) < 1) {
		conn_plain_arm(c);
		return;
	}
	n = read(fd, v.iov_base, v.iov_len < room ? v.iov_len : room);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		const char *why =
		    n == 0 ? "connection closed by peer" : strerror(errno);

		event_del(c->rev);
		c->reading = 0;
		if (c->closing && n == 0)
			c->ops->flushed(c->arg);
		else
			c->ops->closed(c->arg, why);
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	conn_plain_arm(c);
	if (!c->closing)
		conn_deliver_input(c);
}

/* The kernel can take more, or a write failed earlier. */
static void
conn_plain_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->write_error != 0) {
		event_del(c->rev);
		c->reading = 0;
		c->ops->closed(c->arg, strerror(c->write_error));
		return;
	}
	conn_flush(c);
}

/*
 * Write what is queued.  Whatever the kernel does not take waits for the
 * write event; once all is out, a pending STARTTLS switches and a closing
 * connection reports flushed().
 */
static void
conn_flush(struct conn *c)
{
	if (c->bev != NULL || c->write_error != 0)
		return;
	while (evbuffer_get_length(c->out) > 0) {
		int n = evbuffer_write(c->out, c->fd);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!event_pending(c->wev, EV_WRITE, NULL))
				event_add(c->wev, NULL);
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* Report from the loop, not from inside the caller. */
		c->write_error = n < 0 ? errno : EPIPE;
		evbuffer_drain(c->out, evbuffer_get_length(c->out));
		event_active(c->wev, EV_WRITE, 0);
		return;
	}
	if (event_pending(c->wev, EV_WRITE, NULL))
		event_del(c->wev);
	if (c->pending_ssl != NULL)
		conn_switch_to_tls(c);
	else if (c->closing)
		c->ops->flushed(c->arg);
}

/* --- TLS mode: the OpenSSL bufferevent ----------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (!c->closing)
		conn_deliver_input(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->closing)
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

/* --- both modes --------------------------------------------------------- */

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
	evbuffer_add_buffer(conn_outbuf(c), c->held);
	if (c->closing) {
		conn_flush(c);
		return;
	}
	if (c->bev != NULL)
		bufferevent_enable(c->bev, EV_READ);
	else
		conn_plain_arm(c);
	conn_deliver_input(c);
}

struct conn *
conn_new(struct event_base *base, int fd, const struct conn_ops *ops, void *arg)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return NULL;
	}
	c->base = base;
	c->fd = fd;
	c->ops = ops;
	c->arg = arg;
	c->rev =
	    event_new(base, fd, EV_READ | EV_PERSIST, conn_plain_read_cb, c);
	c->wev =
	    event_new(base, fd, EV_WRITE | EV_PERSIST, conn_plain_write_cb, c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->timer = evtimer_new(base, conn_timer_cb, c);
	c->tarpit = evtimer_new(base, conn_tarpit_cb, c);
	c->held = evbuffer_new();
	if (c->rev == NULL || c->wev == NULL || c->in == NULL ||
	    c->out == NULL || c->timer == NULL || c->tarpit == NULL ||
	    c->held == NULL) {
		conn_free(c);
		return NULL;
	}
	c->reading = 1;
	conn_plain_arm(c);
	return c;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->tarpit != NULL)
		event_free(c->tarpit);
	if (c->held != NULL)
		evbuffer_free(c->held);
	if (c->pending_ssl != NULL)
		SSL_free(c->pending_ssl);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the socket */
	else
		close(c->fd);
	free(c);
}

const char *
conn_peek(struct conn *c, size_t *len)
{
	struct evbuffer *in = conn_inbuf(c);

	*len = evbuffer_get_length(in);
	if (*len == 0)
		return "";
	return (const char *)evbuffer_pullup(in, -1);
}

const char *
conn_peek_some(struct conn *c, size_t min, size_t *len)
{
	struct evbuffer *in = conn_inbuf(c);
	struct evbuffer_iovec v;
	size_t all = evbuffer_get_length(in);

	*len = 0;
	if (all == 0)
		return "";
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 ||
	    (v.iov_len < min && v.iov_len < all)) {
		/* too short to decide on: join just enough of it */
		*len = min < all ? min : all;
		return (const char *)evbuffer_pullup(in, (ev_ssize_t)*len);
	}
	*len = v.iov_len;
	return v.iov_base;
}

void
conn_consume(struct conn *c, size_t n)
{
	evbuffer_drain(conn_inbuf(c), n);
	if (c->bev == NULL)
		conn_plain_arm(c); /* room again */
}

size_t
conn_input_len(struct conn *c)
{
	return evbuffer_get_length(conn_inbuf(c));
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	/* Keep replies in order behind one that is being tarpitted. */
	if (evtimer_pending(c->tarpit, NULL)) {
		evbuffer_add(c->held, p, n);
		return;
	}
	if (c->bev != NULL) {
		bufferevent_write(c->bev, p, n);
		return;
	}
	evbuffer_add(c->out, p, n);
	if (!c->in_batch)
		conn_flush(c);
}

void
conn_pause(struct conn *c)
{
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	c->reading = 0;
	conn_plain_arm(c);
}

void
conn_resume(struct conn *c)
{
	if (c->closing || evtimer_pending(c->tarpit, NULL))
		return;
	if (c->bev != NULL) {
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	c->reading = 1;
	conn_plain_arm(c);
}

void
conn_close_after_flush(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	evtimer_del(c->timer);
	if (evtimer_pending(c->tarpit, NULL)) {
		evtimer_del(c->tarpit);
		evbuffer_add_buffer(conn_outbuf(c), c->held);
	}
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			c->ops->flushed(c->arg);
		return;
	}
	conn_plain_arm(c);
	if (!c->in_batch)
		conn_flush(c); /* reports flushed() once all is out */
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
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->tarpit, &tv);
	if (c->bev == NULL)
		conn_plain_arm(c); /* reading waits for the tarpit's end */
}

int
conn_held(const struct conn *c)
{
	return evtimer_pending(c->tarpit, NULL);
}

int
conn_starttls(struct conn *c, SSL *ssl)
{
	if (c->bev != NULL || evbuffer_get_length(c->in) > 0) {
		SSL_free(ssl);
		return -1;
	}
	c->pending_ssl = ssl;
	conn_plain_arm(c); /* no more plaintext is read */
	if (!c->in_batch)
		conn_flush(c); /* switches once the 220 is out */
	return 0;
}

/*
 * Hand the socket to a TLS bufferevent.  Reading stopped when STARTTLS
 * was parsed, so the client's handshake is still in the kernel and no
 * plaintext can leak into the TLS session.
 */
static void
conn_switch_to_tls(struct conn *c)
{
	struct bufferevent *tls;
	SSL *ssl = c->pending_ssl;

	c->pending_ssl = NULL;
	event_del(c->rev);
	event_del(c->wev);
	tls = bufferevent_openssl_socket_new(c->base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		/* Cannot continue in either mode: the session ends. */
		SSL_free(ssl);
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
	if (c->bev == NULL || c->handshaking)
		return NULL;
	return bufferevent_openssl_get_ssl(c->bev);
}

int
conn_socket_has_data(struct conn *c)
{
	char b;
	ssize_t n;

	if (evbuffer_get_length(conn_inbuf(c)) > 0)
		return 1;
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n > 0;
}
