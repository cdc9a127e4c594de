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
 * Bounds, in both modes:
 * - read-ahead is capped so a client that floods us only fills
 *   CONN_INPUT_MAX bytes; the rest waits in the kernel;
 * - output is capped: past CONN_OUTPUT_MAX waiting bytes reading stops and
 *   conn_held() tells the session to stop processing, until the client has
 *   taken all but CONN_OUTPUT_RESUME (then input() is reported again);
 * - a closing connection gets the linger time to flush, then is closed
 *   whatever its output state.
 * Whether reading is wanted is decided in one place, conn_arm().
 *
 * Deadlines are one timer per connection, re-armed by the session for
 * every request (command, or data progress), which is how per-request
 * timeouts and a minimum data rate are enforced; while closing, the same
 * timer bounds the flush.
 *
 * End of input is a half-close (RFC 5321 does not forbid it and Exim
 * pipelines "BDAT LAST", the data and QUIT, then shuts down its side):
 * reading stops, input already read is still processed, and replies are
 * still written; eof() tells the session, which closes once nothing it
 * owes is left.  TLS sessions are ended with close_notify (SSL_shutdown)
 * once the output is flushed.  Before closing a socket, unread input is
 * drained (bounded) so that the kernel sends FIN, not RST, which would
 * make the client lose our last replies.
 *
 * An idle plaintext connection holds its socket's read event, the deadline
 * timer, the kick, and empty input and output buffers; the write event is
 * made with them since a short write must never fail for want of it, but
 * the tarpit's timer and buffer are made at the first tarpitted reply.
 *
 * Callbacks into the session are made from the event loop only (an error
 * found while writing, end of input and resumption are reported from a
 * later loop turn), and a conn is never freed inside its own callback
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
/* Unread input discarded before close so that the peer gets a FIN. */
#define CONN_DRAIN_MAX (64 * 1024)

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
	/* tarpit and held exist from the first tarpitted reply on */
	struct event *tarpit;
	struct event *kick;    /* report eof() or input() from the loop */
	struct evbuffer *held; /* reply waiting for the tarpit to expire */
	const struct conn_ops *ops;
	void *arg;
	int fd;
	int closing;
	int finished;     /* flushed() was reported */
	int peer_eof;     /* the peer finished sending */
	int eof_pending;  /* ...and the session has not been told yet */
	int out_blocked;  /* too much output waits: reading is held */
	double linger;    /* seconds a closing connection may flush */
	SSL *pending_ssl; /* STARTTLS waiting for the 220 to be written */
	int handshaking;
};

static void conn_switch_to_tls(struct conn *);
static void conn_flush(struct conn *);
static void conn_tarpit_cb(evutil_socket_t, short, void *);

/* Is a reply being held back by the tarpit? */
static int
conn_tarpitted(const struct conn *c)
{
	return c->tarpit != NULL && evtimer_pending(c->tarpit, NULL);
}

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

static void
conn_timer_at(struct event *ev, double when)
{
	struct timeval tv;
	double delta = when - conn_now();

	if (delta < 0)
		delta = 0;
	tv.tv_sec = (time_t)delta;
	tv.tv_usec = (suseconds_t)((delta - (double)tv.tv_sec) * 1e6);
	evtimer_add(ev, &tv);
}

/*
 * Read only while the session wants input, no reply is tarpitted, the
 * client takes its replies, and (plaintext) there is room.  During the
 * TLS handshake the bufferevent reads on its own.
 */
static void
conn_arm(struct conn *c)
{
	int want = c->reading && !c->closing && !c->peer_eof &&
	           !c->out_blocked && c->pending_ssl == NULL &&
	           !conn_tarpitted(c);

	if (c->bev != NULL) {
		if (c->handshaking)
			return;
		if (want)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	want = want && evbuffer_get_length(c->in) < CONN_INPUT_MAX;
	if (want && !event_pending(c->rev, EV_READ, NULL))
		event_add(c->rev, NULL);
	else if (!want && event_pending(c->rev, EV_READ, NULL))
		event_del(c->rev);
}

/* Output grew: past the bound the session is held and reading stops. */
static void
conn_output_grew(struct conn *c)
{
	if (c->out_blocked ||
	    evbuffer_get_length(conn_outbuf(c)) <= CONN_OUTPUT_MAX)
		return;
	c->out_blocked = 1;
	conn_arm(c);
}

/* Output shrank: once the client took enough, go on with its input. */
static void
conn_output_shrank(struct conn *c)
{
	if (!c->out_blocked ||
	    evbuffer_get_length(conn_outbuf(c)) > CONN_OUTPUT_RESUME)
		return;
	c->out_blocked = 0;
	conn_arm(c);
	if (!c->closing)
		event_active(c->kick, EV_TIMEOUT, 0);
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

/* The peer finished sending; tell the session from the loop. */
static void
conn_got_eof(struct conn *c)
{
	c->peer_eof = 1;
	conn_arm(c);
	if (c->closing)
		return; /* go on flushing; the linger time bounds it */
	c->eof_pending = 1;
	event_active(c->kick, EV_TIMEOUT, 0);
}

static void
conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->closing)
		return;
	if (c->eof_pending) {
		c->eof_pending = 0;
		if (c->ops->eof != NULL)
			c->ops->eof(c->arg);
		else
			c->ops->closed(c->arg, "connection closed by peer");
		return;
	}
	if (conn_held(c) || c->handshaking || c->pending_ssl != NULL)
		return;
	if (evbuffer_get_length(conn_inbuf(c)) > 0 || c->peer_eof)
		conn_deliver_input(c);
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
		conn_arm(c);
		return;
	}
	n = read(fd, v.iov_base, v.iov_len < room ? v.iov_len : room);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n == 0) {
		conn_got_eof(c);
		return;
	}
	if (n < 0) {
		event_del(c->rev);
		c->reading = 0;
		c->ops->closed(c->arg, strerror(errno));
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	conn_arm(c);
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
 * The output is all out and the connection is closing: end a TLS session
 * with close_notify, then report.  The peer's close_notify is not
 * awaited (RFC 8446 6.1 allows that when the connection is closed); with
 * ours sent, OpenSSL keeps the session for TLS 1.2 resumption, which it
 * drops after an unclean end.
 */
static void
conn_finish_close(struct conn *c)
{
	if (c->finished)
		return;
	c->finished = 1;
	if (c->bev != NULL && !c->handshaking) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

		if (ssl != NULL && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
			(void)SSL_shutdown(ssl);
		ERR_clear_error();
	}
	evtimer_del(c->timer);
	c->ops->flushed(c->arg);
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
			conn_output_shrank(c);
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
	conn_output_shrank(c);
	if (c->pending_ssl != NULL)
		conn_switch_to_tls(c);
	else if (c->closing)
		conn_finish_close(c);
}

/* --- TLS mode: the OpenSSL bufferevent ----------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (!c->closing && !conn_held(c))
		conn_deliver_input(c);
}

/* The output fell to its low-water mark (CONN_OUTPUT_RESUME; 0 closing). */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	conn_output_shrank(c);
	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_finish_close(c);
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
		conn_arm(c);
		c->ops->tls_done(c->arg, 1);
		return;
	}
	/*
	 * close_notify: the peer finished sending.  Replies still go out
	 * (libevent stopped its write event; writing re-enables it), but
	 * nothing is read again, in TLS or in plaintext.
	 */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !c->handshaking) {
		conn_got_eof(c);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			bufferevent_enable(c->bev, EV_WRITE);
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
	c->ops->closed(c->arg, why);
}

/* --- both modes --------------------------------------------------------- */

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->closing) {
		/* The client did not take our last replies in time. */
		c->ops->closed(c->arg, "output not taken before the deadline");
		return;
	}
	c->ops->timeout(c->arg);
}

static void
conn_tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->bev != NULL)
		bufferevent_write_buffer(c->bev, c->held);
	else
		evbuffer_add_buffer(c->out, c->held);
	conn_output_grew(c);
	if (c->closing) {
		conn_flush(c);
		return;
	}
	conn_arm(c);
	if (!conn_held(c))
		conn_deliver_input(c);
	else if (c->bev == NULL)
		conn_flush(c);
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
	c->linger = CONN_LINGER_MAX;
	c->rev =
	    event_new(base, fd, EV_READ | EV_PERSIST, conn_plain_read_cb, c);
	c->wev =
	    event_new(base, fd, EV_WRITE | EV_PERSIST, conn_plain_write_cb, c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->timer = evtimer_new(base, conn_timer_cb, c);
	c->kick = evtimer_new(base, conn_kick_cb, c);
	if (c->rev == NULL || c->wev == NULL || c->in == NULL ||
	    c->out == NULL || c->timer == NULL || c->kick == NULL) {
		conn_free(c);
		return NULL;
	}
	c->reading = 1;
	conn_arm(c);
	return c;
}

/*
 * Discard what the peer sent and we will never read, so that close()
 * sends a FIN: with unread data the kernel sends RST, and a client that
 * has not yet read our last reply (the 552 that refused its BDAT chunk)
 * may lose it.  Bounded: a peer that keeps sending gets its RST.
 */
static void
conn_drain_socket(int fd)
{
	char junk[4096];
	size_t total = 0;
	ssize_t n;

	while (total < CONN_DRAIN_MAX &&
	       (n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
		total += (size_t)n;
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
	if (c->kick != NULL)
		event_free(c->kick);
	if (c->held != NULL)
		evbuffer_free(c->held);
	if (c->pending_ssl != NULL)
		SSL_free(c->pending_ssl);
	/*
	 * Input left unread says the client was still sending (a BDAT chunk
	 * we refused, commands pipelined after an error); after a plain QUIT
	 * there is none, and the common case costs no system call.
	 */
	if (c->write_error == 0 && !c->peer_eof &&
	    evbuffer_get_length(conn_inbuf(c)) > 0)
		conn_drain_socket(c->fd);
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
		conn_arm(c); /* room again */
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
	if (conn_tarpitted(c)) {
		evbuffer_add(c->held, p, n);
		return;
	}
	if (c->bev != NULL) {
		bufferevent_write(c->bev, p, n);
		/* After close_notify libevent stopped writing; restart it. */
		if (c->peer_eof)
			bufferevent_enable(c->bev, EV_WRITE);
		conn_output_grew(c);
		return;
	}
	evbuffer_add(c->out, p, n);
	conn_output_grew(c);
	if (!c->in_batch)
		conn_flush(c);
}

void
conn_pause(struct conn *c)
{
	c->reading = 0;
	conn_arm(c);
}

void
conn_resume(struct conn *c)
{
	c->reading = 1;
	conn_arm(c);
}

void
conn_close_after_flush(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->eof_pending = 0;
	conn_timer_at(c->timer, conn_now() + c->linger);
	if (conn_tarpitted(c)) {
		evtimer_del(c->tarpit);
		if (c->bev != NULL)
			bufferevent_write_buffer(c->bev, c->held);
		else
			evbuffer_add_buffer(c->out, c->held);
	}
	conn_arm(c);
	if (c->bev != NULL) {
		if (c->handshaking ||
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
			conn_finish_close(c);
			return;
		}
		/* Report when all is out, not at the resume mark. */
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	if (!c->in_batch)
		conn_flush(c); /* reports flushed() once all is out */
}

void
conn_set_linger(struct conn *c, double seconds)
{
	c->linger = seconds < CONN_LINGER_MAX ? seconds : CONN_LINGER_MAX;
}

void
conn_set_deadline(struct conn *c, double when)
{
	if (when <= 0) {
		evtimer_del(c->timer);
		return;
	}
	if (c->closing)
		return; /* the linger bound stays */
	conn_timer_at(c->timer, when);
}

void
conn_write_later(struct conn *c, const void *p, size_t n, double delay)
{
	struct timeval tv;

	/*
	 * Most sessions never have a reply tarpitted, so the timer and its
	 * buffer are made on first use; without memory for them the reply
	 * simply leaves at once (the delay only slows a client down).
	 */
	if (delay > 0 && !c->closing && c->tarpit == NULL) {
		c->tarpit = evtimer_new(c->base, conn_tarpit_cb, c);
		c->held = evbuffer_new();
		if (c->tarpit == NULL || c->held == NULL) {
			if (c->tarpit != NULL)
				event_free(c->tarpit);
			if (c->held != NULL)
				evbuffer_free(c->held);
			c->tarpit = NULL;
			c->held = NULL;
		}
	}
	if (delay <= 0 || c->closing || c->tarpit == NULL) {
		conn_write(c, p, n);
		return;
	}
	evbuffer_add(c->held, p, n);
	if (conn_tarpitted(c))
		return;
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = (suseconds_t)((delay - (double)tv.tv_sec) * 1e6);
	evtimer_add(c->tarpit, &tv);
	conn_arm(c); /* reading waits for the tarpit's end */
}

int
conn_held(const struct conn *c)
{
	return conn_tarpitted(c) || c->out_blocked;
}

int
conn_peer_eof(const struct conn *c)
{
	return c->peer_eof;
}

int
conn_starttls(struct conn *c, SSL *ssl)
{
	if (c->bev != NULL || evbuffer_get_length(c->in) > 0 || c->peer_eof) {
		SSL_free(ssl);
		return -1;
	}
	c->pending_ssl = ssl;
	conn_arm(c); /* no more plaintext is read */
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
	bufferevent_setwatermark(tls, EV_WRITE, CONN_OUTPUT_RESUME, 0);
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
	n = recv(c->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
	return n > 0;
}
