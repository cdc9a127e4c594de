/*
 * client_conn.c - socket and TLS I/O for outbound SMTP connections (see
 * client_conn.h).
 *
 * Where it sits: under smtp_client.c, as src/server/conn.c sits under
 * the server session.  The plaintext part drives the socket directly, as
 * the server's conn.c does: one write event while connecting, then one
 * persistent read event; one read(2) per readiness into the input
 * buffer; output queued during a turn of the loop leaves in one
 * sendmsg(2) when the turn's callbacks are done (a "kick" event made
 * active, which costs no system call), so a pipelined MAIL/RCPT/DATA or
 * a message's content is one write, and the write event is added only
 * when the kernel did not take everything (or a writer waits for room).
 * A socket bufferevent paid an ioctl(FIONREAD) per read and two
 * epoll_ctl per command (its write event added and removed around every
 * write); with one connection per message that was most of the 17
 * epoll_ctl a delivery cost.  STARTTLS hands the socket to a libevent
 * OpenSSL bufferevent, and from then on all reading and writing goes
 * through it.  The protocol code gets events and slices and never sees
 * either mode.
 *
 * Invariants:
 * - input is bounded: reading stops while CLIENT_CONN_INPUT_MAX bytes
 *   wait for the protocol;
 * - the deadline timer is armed from the connect to the free; the
 *   protocol only ever moves it (client_conn_set_timeout()), and output
 *   leaving the socket moves it too (progress, not a stall);
 * - STARTTLS drops whatever plaintext was read ahead before TLS takes
 *   the socket (CVE-2021-38371), so no byte the server sent before TLS
 *   can be taken for a reply inside it;
 * - after a TLS error or the peer's close the connection is finished:
 *   there is no way back to plaintext on the same socket;
 * - callbacks come from the event loop only, never from inside a call
 *   the protocol made, and never after client_conn_free(); each is the
 *   last thing a callback of this layer does, since the protocol may
 *   free the conn in it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "deliver/client_conn.h"
#include "util/addr.h"

/*
 * One read takes at most what is left of CLIENT_CONN_INPUT_MAX; one
 * write hands the kernel at most this many pieces of the output buffer.
 */
#define CLIENT_CONN_IOV 32

struct client_conn {
	struct event_base *base;
	int fd;
	/* plaintext mode */
	struct event *rev, *wev; /* wev: the connect, then a full kernel */
	struct event *kick;      /* flush, or report an error, from the loop */
	struct evbuffer *in, *out;
	int connecting;
	int ended;         /* closed() was reported: no more plaintext I/O */
	int kicked;        /* kick is active */
	int want_writable; /* the output reached HIGH: writable() at LOW */
	int error;         /* errno to report from kick: connect, write */
	/* TLS mode, after STARTTLS */
	struct bufferevent *bev;
	SSL *ssl; /* owned by bev once it exists */
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

/* Bytes left for the peer (TLS): the connection is alive. */
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
client_conn_fill_local(struct client_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_endpoint(
		    (const struct sockaddr *)&ss, c->local, sizeof(c->local));
}

/* --- plaintext: the socket driven directly ------------------------------ */

/* The connection failed or ended: no more I/O in plaintext, then tell. */
static void
client_conn_plain_closed(struct client_conn *c, int err)
{
	c->ended = 1;
	event_del(c->rev);
	event_del(c->wev);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	c->want_writable = 0;
	if (err == 0)
		snprintf(
		    c->why, sizeof(c->why), "connection closed by the server");
	else
		snprintf(c->why, sizeof(c->why), "%s%s",
		    c->connected ? "" : "connection failed: ", strerror(err));
	c->ops->closed(c->arg, c->why);
}

/* Report err from the loop (a failed write found inside a call). */
static void
client_conn_fail_later(struct client_conn *c, int err)
{
	c->error = err;
	if (!c->kicked) {
		c->kicked = 1;
		event_active(c->kick, EV_TIMEOUT, 0);
	}
}

/*
 * Write what is queued, as far as the kernel takes it.  A short write
 * means the socket buffer is full: the write event takes over rather
 * than a second call that would only say EAGAIN.
 */
static void
client_conn_flush(struct client_conn *c)
{
	size_t len;

	if (!c->connected || c->error != 0 || c->ended)
		return;
	if (evbuffer_get_length(c->out) >= CLIENT_CONN_OUTPUT_HIGH)
		c->want_writable = 1; /* the writer stops at this mark */
	while ((len = evbuffer_get_length(c->out)) > 0) {
		struct evbuffer_iovec v[CLIENT_CONN_IOV];
		struct iovec iov[CLIENT_CONN_IOV];
		struct msghdr msg;
		int n = evbuffer_peek(c->out, -1, NULL, v, CLIENT_CONN_IOV);
		ssize_t w;

		if (n > CLIENT_CONN_IOV)
			n = CLIENT_CONN_IOV;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		/* MSG_NOSIGNAL: a peer that reset must not kill the caller */
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			client_conn_fail_later(c, errno);
			return;
		}
		if (w > 0) {
			evbuffer_drain(c->out, (size_t)w);
			client_conn_arm(c); /* progress */
		}
		if (w < 0 || (size_t)w < len) {
			size_t all = 0;

			for (int i = 0; i < n; i++)
				all += iov[i].iov_len;
			/* short of what was offered: the kernel is full */
			if (w < 0 || (size_t)w < all)
				break;
		}
	}
	/*
	 * The write event stays while output waits or a writer waits for
	 * room (then it fires at once, and writable() follows from it).
	 */
	if (evbuffer_get_length(c->out) > 0 || c->want_writable) {
		if (!event_pending(c->wev, EV_WRITE, NULL))
			event_add(c->wev, NULL);
	} else if (event_pending(c->wev, EV_WRITE, NULL))
		event_del(c->wev);
}

static void
client_conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_conn *c = arg;

	(void)fd;
	(void)what;
	c->kicked = 0;
	if (c->ended)
		return;
	if (c->error != 0) {
		client_conn_plain_closed(c, c->error);
		return;
	}
	client_conn_flush(c);
}

static void
client_conn_read_some(struct client_conn *c)
{
	size_t room = CLIENT_CONN_INPUT_MAX - evbuffer_get_length(c->in);
	struct evbuffer_iovec v;
	ssize_t n;

	if (room == 0 ||
	    evbuffer_reserve_space(c->in, (ev_ssize_t)room, &v, 1) < 1) {
		event_del(c->rev); /* client_conn_consume() resumes */
		return;
	}
	n = read(c->fd, v.iov_base, v.iov_len < room ? v.iov_len : room);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		client_conn_plain_closed(c, n == 0 ? 0 : errno);
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	c->ops->input(c->arg);
}

static void
client_conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_conn_read_some(arg);
}

/* The connect finished, or the kernel takes output again. */
static void
client_conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client_conn *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (c->connecting) {
		c->connecting = 0;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			client_conn_plain_closed(c, err);
			return;
		}
		c->connected = 1;
		event_del(c->wev);
		event_add(c->rev, NULL);
		client_conn_fill_local(c);
		client_conn_flush(c); /* anything queued before the connect */
		c->ops->connected(c->arg);
		return;
	}
	client_conn_flush(c);
	if (c->error != 0)
		return; /* kick reports it */
	if (c->want_writable &&
	    evbuffer_get_length(c->out) <= CLIENT_CONN_OUTPUT_LOW) {
		/* wev stays until the writer's output is flushed */
		c->want_writable = 0;
		if (c->ops->writable != NULL)
			c->ops->writable(c->arg);
	}
}

/* --- TLS: the OpenSSL bufferevent --------------------------------------- */

static void
client_conn_tls_read_cb(struct bufferevent *bev, void *arg)
{
	struct client_conn *c = arg;

	(void)bev;
	c->ops->input(c->arg);
}

/* The output fell to the low-water mark: a paused writer may go on. */
static void
client_conn_tls_write_cb(struct bufferevent *bev, void *arg)
{
	struct client_conn *c = arg;

	(void)bev;
	if (c->ops->writable != NULL)
		c->ops->writable(c->arg);
}

/*
 * Why TLS failed, in OpenSSL's words when it has some ("wrong version
 * number", "certificate verify failed", "tlsv1 alert unknown ca"), else
 * the socket's, else that the peer went away.
 *
 * On a socket, libevent also queues SSL_get_error()'s bare code (5,
 * SSL_ERROR_SYSCALL, for a peer that closed or reset): that is no
 * OpenSSL reason, and errno, read from a deferred callback, may belong
 * to another socket by now, so only a network error is believed.
 */
static const char *
client_conn_tls_error(struct client_conn *c, short what)
{
	unsigned long e, first = 0;
	int err = EVUTIL_SOCKET_ERROR();

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (first == 0 && ERR_GET_LIB(e) != 0)
			first = e;
	if (err != ECONNRESET && err != EPIPE && err != ETIMEDOUT &&
	    err != ECONNABORTED && err != EHOSTUNREACH && err != ENETUNREACH)
		err = 0;
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
	c->fd = socket(addr->sa_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (c->fd < 0) {
		*why = strerror(errno);
		free(c);
		return NULL;
	}
	addr_endpoint(addr, c->remote, sizeof(c->remote));
	c->timer = evtimer_new(base, client_conn_timer_cb, c);
	c->rev = event_new(
	    base, c->fd, EV_READ | EV_PERSIST, client_conn_read_cb, c);
	c->wev = event_new(
	    base, c->fd, EV_WRITE | EV_PERSIST, client_conn_write_cb, c);
	c->kick = event_new(base, -1, 0, client_conn_kick_cb, c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	if (c->timer == NULL || c->rev == NULL || c->wev == NULL ||
	    c->kick == NULL || c->in == NULL || c->out == NULL) {
		client_conn_free(c);
		return NULL;
	}
	client_conn_set_timeout(c, timeout);
	c->connecting = 1;
	if (connect(c->fd, addr, addrlen) == 0 || errno == EINPROGRESS ||
	    errno == EINTR) {
		/* done or under way: the write event says which */
		event_add(c->wev, NULL);
		return c;
	}
	if (errno == ECONNREFUSED) {
		/* as a refusal found later: through closed() */
		c->connecting = 0;
		client_conn_fail_later(c, errno);
		return c;
	}
	*why = strerror(errno);
	client_conn_free(c);
	return NULL;
}

void
client_conn_free(struct client_conn *c)
{
	if (c == NULL)
		return;
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->kick != NULL)
		event_free(c->kick);
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->ssl != NULL && c->tls_up && !c->tls_error) {
		/*
		 * close_notify, with one non-blocking try to write it before
		 * the socket closes.
		 */
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the socket */
	else if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static struct evbuffer *
client_conn_inbuf(struct client_conn *c)
{
	return c->bev != NULL ? bufferevent_get_input(c->bev) : c->in;
}

const char *
client_conn_peek(struct client_conn *c, size_t *len)
{
	struct evbuffer *in = client_conn_inbuf(c);

	*len = evbuffer_get_length(in);
	if (*len == 0)
		return "";
	return (const char *)evbuffer_pullup(in, (ev_ssize_t)*len);
}

void
client_conn_consume(struct client_conn *c, size_t n)
{
	evbuffer_drain(client_conn_inbuf(c), n);
	/* reading stopped at the cap resumes with room */
	if (c->bev == NULL && c->connected && c->error == 0 && !c->ended &&
	    !event_pending(c->rev, EV_READ, NULL) &&
	    evbuffer_get_length(c->in) < CLIENT_CONN_INPUT_MAX)
		event_add(c->rev, NULL);
}

int
client_conn_write(struct client_conn *c, const void *p, size_t n)
{
	if (c->bev != NULL)
		return bufferevent_write(c->bev, p, n);
	if (c->ended)
		return 0; /* as to a socket that is gone: dropped */
	if (evbuffer_add(c->out, p, n) < 0)
		return -1;
	/* written when this turn's callbacks are done, or by wev */
	if (!c->kicked && !event_pending(c->wev, EV_WRITE, NULL)) {
		c->kicked = 1;
		event_active(c->kick, EV_TIMEOUT, 0);
	}
	return 0;
}

size_t
client_conn_output_len(struct client_conn *c)
{
	return evbuffer_get_length(
	    c->bev != NULL ? bufferevent_get_output(c->bev) : c->out);
}

long
client_conn_starttls(struct client_conn *c, SSL *ssl)
{
	size_t discarded = evbuffer_get_length(c->in);
	struct bufferevent *tls;

	/*
	 * Nothing of the plaintext survives: what was read ahead (an
	 * injection), and output, which cannot be waiting here since the
	 * 220 answered all of it.
	 */
	evbuffer_drain(c->in, discarded);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	c->want_writable = 0;
	event_del(c->rev);
	event_del(c->wev);
	tls = bufferevent_openssl_socket_new(c->base, c->fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	if (evbuffer_add_cb(bufferevent_get_output(tls),
	        client_conn_progress_cb, c) == NULL) {
		bufferevent_free(tls); /* with the SSL and the socket */
		c->fd = -1;
		return -1;
	}
	/* A peer that ends without close_notify has still ended. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->ssl = ssl;
	c->handshaking = 1;
	bufferevent_setwatermark(tls, EV_READ, 0, CLIENT_CONN_INPUT_MAX);
	bufferevent_setwatermark(tls, EV_WRITE, CLIENT_CONN_OUTPUT_LOW, 0);
	bufferevent_set_max_single_write(tls, CLIENT_CONN_OUTPUT_HIGH);
	bufferevent_setcb(tls, client_conn_tls_read_cb,
	    client_conn_tls_write_cb, client_conn_tls_event_cb, c);
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
