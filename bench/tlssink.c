/*
 * tlssink - a counting SMTP sink with STARTTLS, for bench/relay.sh (TLS=1).
 *
 * What it does: listens on HOST:PORT, answers every SMTP session
 * (EHLO/HELO, STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, QUIT; PIPELINING
 * offered, CHUNKING not), stores nothing and counts: sessions, TLS
 * handshakes, resumed TLS sessions (RFC 8446 tickets or RFC 5077/5246
 * session IDs), messages (each "." that ends a DATA) and those of them
 * that came inside TLS, QUITs, and the bytes of content (as sent, line
 * ends and dot-stuffing included, the final "." line not), so that a
 * script can tell whole messages from cut ones.  It is
 * smtp-sink's job (Postfix's sink cannot do TLS), with smtp-sink -c's
 * counter line, so the same script reads both:
 *
 *     sess=N quit=N mesg=N tlsmesg=N tls=N resumed=N proto=TLSv1.3
 *
 * written to stdout (a file) at most every STATUS_MS milliseconds while
 * the counters change, and once more on SIGTERM/SIGINT before it exits.
 * The last line always holds the exact totals.
 *
 *   tlssink -C cert.pem -K key.pem [-t tickets] HOST:PORT
 *
 * TLS: the certificate/key given (the test PKI's server.pem), TLS 1.2 and
 * 1.3 with Debian OpenSSL's defaults, stateless session tickets on (-t
 * tickets per handshake, OpenSSL's default 2) and a server-side session
 * cache for TLS 1.2 session IDs, so a client that resumes is seen to.
 *
 * Design: one thread, epoll (level-triggered), non-blocking sockets and
 * OpenSSL; fixed buffers per connection (a command line longer than
 * SINK_IN is refused with 500; DATA lines may be any length).  After the
 * 220 to STARTTLS, plaintext already received is discarded (RFC 3207 /
 * CVE-2021-38371) and EHLO is expected again inside TLS.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SINK_IN 16384   /* input buffer per connection */
#define SINK_OUT 4096   /* pending replies per connection */
#define SINK_EVENTS 256 /* epoll events per wait */
#define STATUS_MS 10    /* counter line at most this often */

enum phase { P_PLAIN, P_HANDSHAKE, P_TLS };

struct conn {
	int fd;
	SSL *ssl;
	enum phase phase;
	int data;     /* inside DATA */
	int midline;  /* DATA: the buffer start is not a line start */
	int closing;  /* close once the output is written */
	int want_out; /* EPOLLOUT registered */
	char in[SINK_IN];
	size_t inlen;
	char out[SINK_OUT];
	size_t outlen;
};

static SSL_CTX *ctx;
static int ep;
static unsigned long n_sess, n_quit, n_mesg, n_tlsmesg, n_tls, n_resumed;
static unsigned long long n_bytes; /* content bytes of every DATA */
static char proto[32] = "-";
static int dirty = 1;
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
status(void)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
	    "sess=%lu quit=%lu mesg=%lu tlsmesg=%lu tls=%lu resumed=%lu "
	    "bytes=%llu proto=%s\n",
	    n_sess, n_quit, n_mesg, n_tlsmesg, n_tls, n_resumed, n_bytes,
	    proto);

	if (n > 0 && write(1, line, (size_t)n) < 0)
		exit(1);
	dirty = 0;
}

static void
conn_close(struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl != NULL)
		/* No close_notify: the peer is gone or has quit. */
		SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

static void
interest(struct conn *c, int out)
{
	struct epoll_event ev;

	if (out == c->want_out)
		return;
	ev.events = out ? EPOLLOUT : EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->want_out = out;
}

static void
reply(struct conn *c, const char *s)
{
	size_t n = strlen(s);

	if (c->outlen + n > sizeof(c->out)) {
		c->closing = 1; /* a client that never reads its replies */
		return;
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

/* Write pending replies: 1 done (or waiting for the socket), 0 closed. */
static int
flush(struct conn *c)
{
	while (c->outlen > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, c->out, (int)c->outlen);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ) {
					interest(c, e == SSL_ERROR_WANT_WRITE);
					return 1;
				}
				conn_close(c);
				return 0;
			}
			n = r;
		} else {
			n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					interest(c, 1);
					return 1;
				}
				conn_close(c);
				return 0;
			}
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	if (c->closing) {
		conn_close(c);
		return 0;
	}
	interest(c, 0);
	return 1;
}

static void readable(struct conn *c);

static void
handshake(struct conn *c)
{
	int r = SSL_accept(c->ssl);

	if (r == 1) {
		const char *v = SSL_get_version(c->ssl);
		c->phase = P_TLS;
		n_tls++;
		if (SSL_session_reused(c->ssl))
			n_resumed++;
		snprintf(proto, sizeof(proto), "%s", v ? v : "?");
		dirty = 1;
		interest(c, 0);
		readable(c); /* data may have come with the Finished */
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		interest(c, 0);
		return;
	case SSL_ERROR_WANT_WRITE:
		interest(c, 1);
		return;
	default:
		conn_close(c);
	}
}

static int
is_cmd(const char *line, size_t len, const char *cmd)
{
	size_t n = strlen(cmd);

	return len >= n && strncasecmp(line, cmd, n) == 0 &&
	       (len == n || line[n] == ' ');
}

/*
 * Consume complete lines of c->in.  Returns 1 to go on, 0 if the
 * connection is gone, 2 when STARTTLS was accepted (the rest of the
 * input is dropped and the handshake starts).
 */
static int
process(struct conn *c)
{
	size_t start = 0;

	for (;;) {
		char *line = c->in + start;
		char *nl = memchr(line, '\n', c->inlen - start);
		size_t len, raw;

		if (nl == NULL)
			break;
		len = (size_t)(nl - line);
		start += len + 1;
		raw = len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (c->data) {
			if (!c->midline && len == 1 && line[0] == '.') {
				c->data = 0;
				n_mesg++;
				if (c->ssl != NULL)
					n_tlsmesg++;
				dirty = 1;
				reply(c, "250 2.0.0 Ok: queued\r\n");
			} else {
				n_bytes += raw; /* content; the "." is not */
			}
			c->midline = 0;
			continue;
		}
		if (is_cmd(line, len, "EHLO")) {
			reply(c, "250-tlssink.bench\r\n250-PIPELINING\r\n"
			         "250-8BITMIME\r\n250-SIZE 104857600\r\n");
			if (c->phase == P_PLAIN && ctx != NULL)
				reply(c, "250-STARTTLS\r\n");
			reply(c, "250 ENHANCEDSTATUSCODES\r\n");
		} else if (is_cmd(line, len, "HELO")) {
			reply(c, "250 tlssink.bench\r\n");
		} else if (is_cmd(line, len, "STARTTLS")) {
			if (c->phase != P_PLAIN || ctx == NULL) {
				reply(c, "503 5.5.1 TLS not available\r\n");
				continue;
			}
			reply(c, "220 2.0.0 Ready to start TLS\r\n");
			c->inlen = 0; /* no plaintext carried into TLS */
			return 2;
		} else if (is_cmd(line, len, "MAIL") ||
		           is_cmd(line, len, "RCPT") ||
		           is_cmd(line, len, "RSET") ||
		           is_cmd(line, len, "NOOP")) {
			reply(c, "250 2.0.0 Ok\r\n");
		} else if (is_cmd(line, len, "DATA")) {
			c->data = 1;
			c->midline = 0;
			reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
		} else if (is_cmd(line, len, "QUIT")) {
			n_quit++;
			dirty = 1;
			reply(c, "221 2.0.0 Bye\r\n");
			c->closing = 1;
			c->inlen = 0;
			return 1;
		} else {
			reply(c, "502 5.5.2 Command not recognized\r\n");
		}
	}
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen == sizeof(c->in)) {
		if (!c->data) {
			reply(c, "500 5.5.0 Line too long\r\n");
			c->closing = 1;
		} else
			n_bytes += c->inlen; /* content, counted here */
		c->inlen = 0; /* a long DATA line: its rest follows */
		c->midline = 1;
	}
	return 1;
}

static void
readable(struct conn *c)
{
	int eof = 0, r = 1;

	for (;;) {
		ssize_t n;
		size_t room = sizeof(c->in) - c->inlen;

		if (room == 0) { /* a full buffer of DATA: consume, go on */
			r = process(c);
			if (r != 1 || c->closing)
				break;
			continue;
		}
		if (c->ssl != NULL) {
			int k = SSL_read(c->ssl, c->in + c->inlen, (int)room);
			if (k <= 0) {
				int e = SSL_get_error(c->ssl, k);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					interest(c, 1);
					break;
				}
				eof = 1;
				break;
			}
			n = k;
		} else {
			n = recv(c->fd, c->in + c->inlen, room, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				eof = 1;
				break;
			}
		}
		c->inlen += (size_t)n;
		if (c->ssl == NULL)
			break; /* level-triggered: the rest comes next turn */
	}
	if (r == 1)
		r = process(c);
	if (r == 2) {
		if (!flush(c))
			return;
		if (c->outlen > 0) { /* the 220 must go out in plaintext */
			conn_close(c);
			return;
		}
		c->ssl = SSL_new(ctx);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
			conn_close(c);
			return;
		}
		SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
		                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		c->phase = P_HANDSHAKE;
		handshake(c);
		return;
	}
	if (!flush(c))
		return;
	if (eof && c->outlen == 0)
		conn_close(c);
}

static void
accept_all(int lfd)
{
	for (;;) {
		int one = 1,
		    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev;
		struct conn *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		n_sess++;
		dirty = 1;
		reply(c, "220 tlssink.bench ESMTP\r\n");
		flush(c);
	}
}

static int
listen_on(const char *arg)
{
	char host[256];
	const char *port = strrchr(arg, ':');
	struct addrinfo hints, *res;
	int fd, one = 1;
	size_t hlen;

	if (port == NULL || (hlen = (size_t)(port - arg)) == 0 ||
	    hlen >= sizeof(host))
		return -1;
	memcpy(host, arg, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host, port + 1, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 512) < 0) {
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
usage(void)
{
	fprintf(stderr, "usage: tlssink [-C cert.pem -K key.pem] [-t tickets] "
	                "HOST:PORT\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	struct epoll_event evs[SINK_EVENTS], ev;
	struct sigaction sa;
	int lfd, ch, tickets = -1;
	long last = 0;

	while ((ch = getopt(argc, argv, "C:K:t:")) != -1) {
		switch (ch) {
		case 'C':
			cert = optarg;
			break;
		case 'K':
			key = optarg;
			break;
		case 't':
			tickets = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || (cert == NULL) != (key == NULL))
		usage();
	if (cert != NULL) {
		static const unsigned char sid[] = "tlssink";
		ctx = SSL_CTX_new(TLS_server_method());
		if (ctx == NULL ||
		    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) !=
		        1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
		if (tickets >= 0)
			SSL_CTX_set_num_tickets(ctx, (size_t)tickets);
	}
	lfd = listen_on(argv[optind]);
	if (lfd < 0) {
		fprintf(stderr, "tlssink: cannot listen on %s: %s\n",
		    argv[optind], strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL; /* the listener */
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("tlssink: epoll");
		return 1;
	}
	while (!stop) {
		int i, n = epoll_wait(
		           ep, evs, SINK_EVENTS, dirty ? STATUS_MS : 1000);
		long t;

		if (n < 0 && errno != EINTR) {
			perror("tlssink: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == NULL) {
				accept_all(lfd);
				continue;
			}
			if (c->phase == P_HANDSHAKE)
				handshake(c);
			else if (c->want_out) {
				/* A read that wanted to write goes on. */
				if (flush(c) && c->ssl != NULL && !c->want_out)
					readable(c);
			} else
				readable(c);
		}
		t = now_ms();
		if (dirty && t - last >= STATUS_MS) {
			status();
			last = t;
		}
	}
	status();
	return 0;
}
