/*
 * listener.c - listening sockets and the accept path.
 *
 * One socket per distinct binding.  A wildcard binding (0.0.0.0:25,
 * [::]:25) covers every specific address on the same port and family, so
 * specific ones are not bound beside it (Linux would refuse); the receive
 * connector is chosen per connection from the local address the client
 * actually reached (selector.c).  IPv6 sockets are V6ONLY so that an IPv4
 * and an IPv6 wildcard can coexist.
 *
 * The accept path enforces MaxInboundConnection (per connector) and
 * MaxInboundConnectionPerSource before any byte is read from the client,
 * answering 421 4.3.2 as Exchange does, and the limit the descriptors set
 * (server_fd_limits), answered the same way without making a session.
 *
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) the waiting connection stays in the kernel's backlog
 * and the listening socket stays readable: accepting again at once would
 * spin the loop.  Every listener is paused instead, until a session frees
 * its descriptor or LISTENER_PAUSE_MS have passed (other parts of the
 * daemon free descriptors too).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "server/listener.h"
#include "server/selector.h"
#include "server/server.h"
#include "server/session.h"
#include "util/log.h"

/* Kernel accept queue; large enough for bursts of new connections. */
#define LISTENER_BACKLOG 1024
/* How long accepting pauses after EMFILE, unless a session ends sooner. */
#define LISTENER_PAUSE_MS 1000
/* At most one warning a minute about refused or paused accepting. */
#define LISTENER_WARN_EVERY 60

struct listener {
	struct listener *next;
	struct evconnlistener *ev;
	struct server *srv;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[80];
	int keep;  /* still bound by the configuration being applied */
	int fresh; /* opened by the sync in progress */
};

static int
listener_same(
    const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
		                         *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *x = (const void *)a,
		                          *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
}

/* Is b made redundant by a wildcard binding of conf on its port/family? */
static int
listener_covered(const struct conf *conf, const struct conf_binding *b)
{
	struct sockaddr_storage wild;

	memset(&wild, 0, sizeof(wild));
	wild.ss_family = b->ss.ss_family;
	if (b->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&wild)->sin_port =
		    ((const struct sockaddr_in *)&b->ss)->sin_port;
	else
		((struct sockaddr_in6 *)&wild)->sin6_port =
		    ((const struct sockaddr_in6 *)&b->ss)->sin6_port;
	if (listener_same(&wild, &b->ss))
		return 0;
	for (size_t i = 0; i < conf->nreceive_connectors; i++) {
		const struct conf_receive_connector *rc =
		    &conf->receive_connectors[i];

		for (size_t j = 0; j < rc->nbindings && rc->enabled; j++)
			if (listener_same(&rc->bindings[j].ss, &wild))
				return 1;
	}
	return 0;
}

static int
listener_wildcard(const struct listener *l)
{
	if (l->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&l->ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)&l->ss)->sin6_addr);
}

/* Rate-limited: a flood must not turn into a flood of log lines. */
static void
listener_warn(const char *what)
{
	static time_t last;
	static unsigned long missed;
	time_t now = time(NULL);

	if (last != 0 && now - last < LISTENER_WARN_EVERY) {
		missed++;
		return;
	}
	if (missed > 0)
		log_warn("%s (and %lu more times since the last warning)", what,
		    missed);
	else
		log_warn("%s", what);
	last = now;
	missed = 0;
}

/*
 * No descriptor to spare for a session: say so in one write and close.
 * The socket is non-blocking and the reply far smaller than any send
 * buffer; a client that went away meanwhile just misses it.
 */
static void
listener_refuse(int fd)
{
	static const char reply[] =
	    "421 4.3.2 The maximum number of concurrent server connections "
	    "has exceeded a limit, closing transmission channel\r\n";
	ssize_t n = write(fd, reply, sizeof(reply) - 1);

	(void)n;
	close(fd);
	listener_warn("descriptor limit reached: new connections are "
	              "refused with 421 4.3.2");
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	listener_resume(arg);
}

static void
listener_pause(struct server *srv, int err)
{
	struct timeval tv = {0, LISTENER_PAUSE_MS * 1000};
	char what[160];

	if (srv->accept_paused)
		return;
	if (srv->accept_timer == NULL &&
	    (srv->accept_timer = evtimer_new(
	         srv->daemon->base, listener_resume_cb, srv)) == NULL)
		log_fatal("out of memory");
	for (struct listener *l = srv->listeners; l != NULL; l = l->next)
		evconnlistener_disable(l->ev);
	srv->accept_paused = 1;
	evtimer_add(srv->accept_timer, &tv);
	snprintf(what, sizeof(what),
	    "accept: %s; not accepting until a connection ends", strerror(err));
	listener_warn(what);
}

void
listener_resume(struct server *srv)
{
	if (!srv->accept_paused)
		return;
	srv->accept_paused = 0;
	evtimer_del(srv->accept_timer);
	for (struct listener *l = srv->listeners; l != NULL; l = l->next)
		evconnlistener_enable(l->ev);
}

static void
listener_error(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)ev;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		listener_pause(l->srv, err);
		return;
	}
	log_warn("accept on %s: %s", l->text, strerror(err));
}

static void
listener_accept(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *remote, int rlen, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	const struct conf_receive_connector *rc;
	struct conf_ref *cref;
	const char *refuse = NULL;
	unsigned per_connector = 0;

	(void)ev;
	(void)rlen;
	if (srv->daemon->draining) {
		close(fd);
		return;
	}
	if (srv->session_limit != 0 && srv->nsessions >= srv->session_limit) {
		listener_refuse(fd);
		return;
	}
	/* Only a wildcard listener needs to ask which address was hit. */
	if (listener_wildcard(l)) {
		if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0) {
			close(fd);
			return;
		}
	} else {
		memcpy(&local, &l->ss, sizeof(local));
	}
	cref = daemon_conf_acquire(srv->daemon);
	rc = selector_pick(cref->conf, (struct sockaddr *)&local, remote);
	if (rc == NULL) {
		/* No connector admits this client here: as if not listening. */
		daemon_conf_release(cref);
		close(fd);
		return;
	}
	per_connector = server_connector_count(srv, rc->name);
	if (per_connector >= rc->max_inbound_connection)
		refuse = "421 4.3.2 The maximum number of concurrent server "
		         "connections has exceeded a limit, closing "
		         "transmission channel";
	else if (server_source_count(srv, remote) >=
	         rc->max_inbound_connection_per_source)
		refuse = "421 4.3.2 The maximum number of concurrent "
		         "connections has exceeded a limit, closing "
		         "transmission channel";
	session_start(
	    srv, cref, rc, fd, (struct sockaddr *)&local, remote, refuse);
}

static int
listener_open(
    struct server *srv, const struct conf_binding *b, const char **why)
{
	struct listener *l;
	int fd, on = 1;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	if ((fd = socket(b->ss.ss_family,
	         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/*
	 * Replies and TLS handshake flights are small writes that the peer
	 * waits for: without TCP_NODELAY, Nagle's algorithm and the peer's
	 * delayed ACK stall every second one by up to 40 ms.  Set on the
	 * listening socket, Linux gives it to every accepted one, which saves
	 * a system call per connection.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (b->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&b->ss, b->sslen) < 0 ||
	    listen(fd, LISTENER_BACKLOG) < 0) {
		close(fd);
		goto fail;
	}
	l->ev = evconnlistener_new(srv->daemon->base, listener_accept, l,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (l->ev == NULL) {
		close(fd);
		goto fail;
	}
	evconnlistener_set_error_cb(l->ev, listener_error);
	if (srv->accept_paused)
		evconnlistener_disable(l->ev);
	l->srv = srv;
	l->ss = b->ss;
	l->sslen = b->sslen;
	snprintf(l->text, sizeof(l->text), "%s", b->text);
	l->keep = 1;
	l->fresh = 1;
	l->next = srv->listeners;
	srv->listeners = l;
	log_info("listening on %s", b->text);
	return 0;
fail:
	log_err("cannot listen on %s: %s", b->text, strerror(errno));
	*why = "cannot listen on a binding (see the log)";
	free(l);
	return -1;
}

int
listener_sync(struct server *srv, const struct conf *conf, const char **why)
{
	for (struct listener *l = srv->listeners; l != NULL; l = l->next) {
		l->keep = 0;
		l->fresh = 0;
	}
	for (size_t i = 0; i < conf->nreceive_connectors; i++) {
		const struct conf_receive_connector *rc =
		    &conf->receive_connectors[i];

		/* A disabled connector listens nowhere (Exchange's -Enabled).
		 */
		for (size_t j = 0; j < rc->nbindings && rc->enabled; j++) {
			const struct conf_binding *b = &rc->bindings[j];
			struct listener *l;

			if (listener_covered(conf, b))
				continue;
			for (l = srv->listeners; l != NULL; l = l->next)
				if (listener_same(&l->ss, &b->ss))
					break;
			if (l != NULL) {
				l->keep = 1;
				continue;
			}
			if (listener_open(srv, b, why) < 0)
				return -1;
		}
	}
	return 0;
}

static void
listener_prune(struct server *srv, int drop_fresh)
{
	struct listener **lp = &srv->listeners;

	while (*lp != NULL) {
		struct listener *l = *lp;

		if ((drop_fresh && l->fresh) || (!drop_fresh && !l->keep)) {
			*lp = l->next;
			log_info("no longer listening on %s", l->text);
			evconnlistener_free(l->ev);
			free(l);
			continue;
		}
		l->keep = 1;
		l->fresh = 0;
		lp = &l->next;
	}
}

void
listener_commit(struct server *srv)
{
	listener_prune(srv, 0);
}

void
listener_rollback(struct server *srv)
{
	listener_prune(srv, 1);
}

void
listener_close_all(struct server *srv)
{
	if (srv->accept_timer != NULL) {
		event_free(srv->accept_timer);
		srv->accept_timer = NULL;
	}
	srv->accept_paused = 0;
	while (srv->listeners != NULL) {
		struct listener *l = srv->listeners;

		srv->listeners = l->next;
		evconnlistener_free(l->ev);
		free(l);
	}
}
