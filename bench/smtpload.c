/*
 * smtpload - SMTP acceptance load generator for the Sluice benchmarks.
 *
 * What it does: opens C concurrent SMTP sessions to HOST:PORT and sends M
 * messages of S bytes in total, one EHLO per connection and then, per
 * message, MAIL, RCPT, DATA and the content ended by ".".  Connections are
 * reused for as many messages as remain (or, with -1, carry one message
 * each).  For every message it measures the acceptance latency, from the
 * moment the final "." has been handed to the kernel to the arrival of
 * the server's reply, and at the end prints messages, seconds, messages
 * per second, p50/p99/max latency and errors.  With -i N it instead opens
 * N sessions, takes each through EHLO, prints "ready N" and holds them
 * idle until SIGTERM, so the caller can measure memory per idle session.
 *
 * Where it sits: bench/acceptance.sh runs it against sluiced and against
 * a private Postfix, next to Postfix's own smtp-source.  It is a client
 * only; nothing of Sluice is linked in.
 *
 * Design: one thread, one poll() loop, one small state machine per
 * session (enum sl_state, changed only by sl_enter()).  Sessions read and
 * write through an I/O vtable (struct sl_io): plain TCP, or, after
 * STARTTLS (-S), non-blocking OpenSSL; STARTTLS adds two states (S_STARTTLS,
 * S_HANDSHAKE) after the first EHLO and then EHLO is sent again inside
 * TLS, so the protocol code is the same for both.  TLS is compiled in
 * only with -DSL_TLS (and -lssl -lcrypto): bench/relay.sh builds it so,
 * acceptance.sh builds the plain tool without OpenSSL.  A single
 * thread keeps the generator's own CPU cost low on the 2-core machines
 * the benchmark runs on, where it competes with the server it measures.
 *
 * Invariants: every buffer has a fixed bound (SL_IN_MAX per session for
 * replies, the message buffer sized once from -s); a reply that does not
 * fit is a protocol error.  Any reply other than the expected one (220
 * greeting, 250 EHLO/MAIL/RCPT, 354 DATA, 250 end of data) fails the
 * message in flight: it is counted as an error, the first SL_SHOW_ERRORS
 * are printed, and the session is closed (a fresh one takes its place if
 * messages remain).  Every message is claimed exactly once, so the run
 * always ends: M = accepted + errors.
 *
 * TLS (-S): every session issues STARTTLS after EHLO and does a full
 * handshake (no client session cache: each load session is a new TLS
 * client); the server's certificate is not verified unless -A names the
 * CA file (then the chain must verify).  The report adds the handshakes
 * done, how many the server resumed (always 0 without a client cache),
 * and the protocol and cipher of the last one.  With -Q a connection sends no
 * mail: EHLO, STARTTLS, the handshake, EHLO again and QUIT make one unit
 * (bench/tls.sh's handshake rate); with -i the idle sessions are held
 * inside TLS (its memory per idle TLS session).
 *
 * RFCs: 5321 (SMTP: reply format 4.2, line limits 4.5.3.1, dot-stuffing
 * 4.5.2 - the generated content has no line starting with "."), 2920
 * (PIPELINING, -P), 5322 (the generated header).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifdef SL_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

/* Sessions at once; each is one descriptor, and 10000 is far beyond what
 * a benchmark on loopback needs while keeping the tables small. */
#define SL_MAX_SESSIONS 10000
/* Messages per run: the latency table holds one entry per message. */
#define SL_MAX_MESSAGES 100000000UL
/* Message size: the content is built once in memory. */
#define SL_MAX_SIZE (64UL * 1024 * 1024)
/* Read buffer per session.  A reply line is at most 512 bytes (RFC 5321
 * 4.5.3.1.5) and an EHLO reply a dozen lines; a reply that does not fit
 * is refused as a protocol error rather than grown. */
#define SL_IN_MAX 8192
/* Length of a generated content line including CRLF (RFC 5322 2.1.1
 * recommends at most 78 characters before the CRLF). */
#define SL_LINE_LEN 78
/* Connection attempts in progress at once: the servers' listen backlogs
 * are about 100, and overflowing them costs a 1 s SYN retransmission
 * that would be measured as latency. */
#define SL_MAX_CONNECTING 64
/* Errors printed in full; the rest are only counted. */
#define SL_SHOW_ERRORS 5
/* How long the poll loop sleeps at most, so timeouts are checked. */
#define SL_TICK_MS 100

enum sl_state {
	S_FREE,       /* slot unused */
	S_CONNECTING, /* non-blocking connect in progress */
	S_GREETING,   /* waiting for 220 */
	S_EHLO,       /* EHLO sent, waiting for 250 */
	S_STARTTLS,   /* -S: STARTTLS sent, waiting for 220 */
	S_HANDSHAKE,  /* -S: TLS handshake; then EHLO again inside TLS */
	S_MAIL,       /* MAIL sent (with -P also RCPT and DATA), waiting */
	S_RCPT,       /* waiting for the RCPT reply */
	S_DATA,       /* waiting for 354 */
	S_DOT,        /* content and "." sent, waiting for the 250 */
	S_IDLE,       /* -i: EHLO done, holding the session open */
	S_QUIT,       /* QUIT sent, waiting for 221 or close */
};

static const char *const sl_state_names[] = {
    "free",
    "connecting",
    "greeting",
    "EHLO",
    "STARTTLS",
    "TLS handshake",
    "MAIL",
    "RCPT",
    "DATA",
    "end of data",
    "idle",
    "QUIT",
};

struct sl_session;

/* Byte transport of a session: plain TCP now, TLS later (same contract:
 * return bytes moved, 0 for EOF on read, -1 with errno, EAGAIN when the
 * socket is not ready). */
struct sl_io {
	ssize_t (*read)(struct sl_session *, void *, size_t);
	ssize_t (*write)(struct sl_session *, const void *, size_t);
};

struct sl_session {
	enum sl_state state;
	int fd;
	const struct sl_io *io;
	int pipelining; /* server offered PIPELINING */
	int starttls;   /* server offered STARTTLS */
#ifdef SL_TLS
	SSL *ssl;     /* after STARTTLS */
	int hs_write; /* the handshake waits for POLLOUT */
#endif
	int claimed; /* a message is in flight on this session */
	unsigned long msgno;
	char in[SL_IN_MAX];
	size_t inlen;
	const char *out; /* pending output (not owned) */
	size_t outlen, outoff;
	char cmd[1024]; /* command output buffer */
	char *msg;      /* this session's copy of the content, with "." */
	struct timespec deadline;
	struct timespec dot_sent; /* when the last byte of "." was written */
};

struct sl_options {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *target;
	unsigned long sessions;
	unsigned long messages;
	unsigned long size;
	unsigned long idle;
	int one_per_conn;
	int pipeline;
	int tls;
	int handshakes; /* -Q: count STARTTLS handshakes, send no mail */
	const char *cafile;
	int timeout_s;
	int hold_s;
	const char *from, *to, *helo;
	/* -D: message m goes to LOCAL@d((m-1) % domains).DOMAIN of -t */
	unsigned long domains;
};

static struct sl_options opt;
static struct sl_session *sessions;
static char *content;      /* the generated message, ".\r\n" included */
static size_t content_len; /* its length */
static size_t msgno_off;   /* offset of the fixed-width message number */
static uint32_t *lat_us;   /* acceptance latency per accepted message */
static unsigned long claimed, accepted, errors, connecting, live;
static volatile sig_atomic_t stop_requested;
#ifdef SL_TLS
static SSL_CTX *tls_ctx;
static unsigned long tls_sessions, tls_resumed;
static char tls_last[128] = "-";
#endif

static ssize_t
sl_plain_read(struct sl_session *s, void *buf, size_t len)
{
	return recv(s->fd, buf, len, 0);
}

static ssize_t
sl_plain_write(struct sl_session *s, const void *buf, size_t len)
{
	return send(s->fd, buf, len, MSG_NOSIGNAL);
}

static const struct sl_io sl_plain_io = {sl_plain_read, sl_plain_write};

#ifdef SL_TLS
/* Same contract as the plain io.  Reads until OpenSSL wants more from the
 * socket, so no decrypted record is left in OpenSSL's buffer where poll()
 * cannot see it. */
static ssize_t
sl_tls_read(struct sl_session *s, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		int r = SSL_read(s->ssl, (char *)buf + got, (int)(len - got));
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			if (got > 0)
				return (ssize_t)got;
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return (ssize_t)got; /* close_notify: EOF */
		case SSL_ERROR_SYSCALL:      /* then as default, unless EOF */
			if (ERR_peek_error() == 0 && got == 0)
				return 0; /* EOF without close_notify */
			ERR_clear_error();
			errno = EIO;
			return got > 0 ? (ssize_t)got : -1;
		default:
			ERR_clear_error();
			if (got > 0)
				return (ssize_t)got;
			errno = EIO;
			return -1;
		}
	}
	return (ssize_t)got;
}

static ssize_t
sl_tls_write(struct sl_session *s, const void *buf, size_t len)
{
	int r = SSL_write(s->ssl, buf, (int)len);

	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	default:
		ERR_clear_error();
		errno = EIO;
		return -1;
	}
}

static const struct sl_io sl_tls_io = {sl_tls_read, sl_tls_write};
#endif

static void
sl_usage(void)
{
	fprintf(stderr,
	    "usage: smtpload [-1PQS] [-c sessions] [-m messages] [-s size] "
	    "[-f from] [-t to]\n"
	    "                [-D domains] [-H helo] [-T timeout] HOST:PORT\n"
	    "       smtpload -i sessions [-d hold] HOST:PORT\n"
	    "  -c  concurrent sessions (20)       -m  messages in total "
	    "(1000)\n"
	    "  -s  message size in bytes (2048)   -1  one message per "
	    "connection\n"
	    "  -P  pipeline MAIL/RCPT/DATA when offered\n"
	    "  -D  spread the messages over this many domains: the Kth to\n"
	    "      LOCAL@dK.DOMAIN of -t, K counting from 0 and wrapping\n"
	    "  -S  STARTTLS on every session (built with -DSL_TLS)\n"
	    "  -A  with -S: verify the server's chain against this CA file\n"
	    "  -Q  with -S: handshakes only (EHLO, STARTTLS, a full "
	    "handshake,\n"
	    "      EHLO, QUIT); -m counts connections, latency is the "
	    "handshake's\n"
	    "  -T  seconds to wait for a reply (60)\n"
	    "  -i  open this many idle sessions, print \"ready N\", hold "
	    "until\n"
	    "      SIGTERM or -d seconds (600)\n");
	exit(2);
}

static unsigned long
sl_number(const char *s, unsigned long min, unsigned long max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min ||
	    v > max) {
		fprintf(stderr, "smtpload: bad %s \"%s\" (%lu..%lu)\n", what, s,
		    min, max);
		exit(2);
	}
	return v;
}

/* HOST:PORT or [HOST]:PORT, numeric only: benchmarks never use DNS. */
static void
sl_parse_target(const char *arg)
{
	char host[256];
	const char *port, *h = arg;
	size_t hlen;
	struct addrinfo hints, *res;
	int rc;

	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (close == NULL || close[1] != ':')
			sl_usage();
		h = arg + 1;
		hlen = (size_t)(close - h);
		port = close + 2;
	} else {
		port = strrchr(arg, ':');
		if (port == NULL)
			sl_usage();
		hlen = (size_t)(port - arg);
		port++;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		sl_usage();
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "smtpload: %s: %s\n", arg, gai_strerror(rc));
		exit(2);
	}
	memcpy(&opt.addr, res->ai_addr, res->ai_addrlen);
	opt.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	opt.target = arg;
}

/*
 * The content: a fixed header (with a fixed-width message number patched
 * in per message, so its length never changes), then lines of
 * SL_LINE_LEN bytes until the total is opt.size bytes, then ".\r\n".  No
 * line starts with "." so no dot-stuffing is needed.  If the header alone
 * is longer than the size, the message is just the header.
 */
static void
sl_build_content(void)
{
	char hdr[1024];
	int n;
	size_t body, pos, i;

	n = snprintf(hdr, sizeof(hdr),
	    "From: <%s>\r\nTo: <%s>\r\nSubject: smtpload test message\r\n"
	    "Message-ID: <%010lu.%ld@smtpload.test>\r\n\r\n",
	    opt.from, opt.to, 0UL, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(hdr)) {
		fprintf(stderr, "smtpload: addresses too long\n");
		exit(2);
	}
	msgno_off = (size_t)(strstr(hdr, "Message-ID: <") - hdr) + 13;
	body = opt.size > (size_t)n ? opt.size - (size_t)n : 0;
	if (body == 1)
		body = 0; /* a line needs at least its CRLF */
	content_len = (size_t)n + body + 3;
	content = malloc(content_len);
	if (content == NULL) {
		perror("smtpload: malloc");
		exit(1);
	}
	memcpy(content, hdr, (size_t)n);
	pos = (size_t)n;
	while (body > 0) {
		size_t len = body < SL_LINE_LEN ? body : SL_LINE_LEN;
		if (body - len == 1)
			len--; /* never leave a 1-byte remainder */
		for (i = 0; i + 2 < len; i++)
			content[pos + i] =
			    (char)('A' + (pos / SL_LINE_LEN + i) % 26);
		content[pos + len - 2] = '\r';
		content[pos + len - 1] = '\n';
		pos += len;
		body -= len;
	}
	memcpy(content + pos, ".\r\n", 3);
}

static struct timespec
sl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static double
sl_seconds(struct timespec a, struct timespec b)
{
	return (double)(b.tv_sec - a.tv_sec) +
	       (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static void
sl_arm(struct sl_session *s)
{
	s->deadline = sl_now();
	s->deadline.tv_sec += opt.timeout_s;
}

/* The only way to change a session's state. */
static void
sl_enter(struct sl_session *s, enum sl_state next)
{
	s->state = next;
	sl_arm(s);
}

static void
sl_close(struct sl_session *s)
{
	if (s->state == S_CONNECTING)
		connecting--;
#ifdef SL_TLS
	if (s->ssl != NULL)
		SSL_free(s->ssl); /* no close_notify: QUIT already ended it */
	s->ssl = NULL;
#endif
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->claimed = 0;
	s->inlen = 0;
	s->outlen = s->outoff = 0;
	s->state = S_FREE;
	live--;
}

/* A failure of the message in flight (or of the session before it took
 * one: then it takes one, so that a refusing server still ends the run). */
static void
sl_fail(struct sl_session *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->claimed) {
		if (claimed < opt.messages || opt.idle > 0)
			claimed++;
		else
			goto out; /* nothing left to send: not an error */
	}
	errors++;
	if (errors <= SL_SHOW_ERRORS) {
		fprintf(stderr,
		    "smtpload: error: session %ld, %s: ", (long)(s - sessions),
		    sl_state_names[s->state]);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
out:
	sl_close(s);
}

static void
sl_send(struct sl_session *s, const char *buf, size_t len)
{
	s->out = buf;
	s->outlen = len;
	s->outoff = 0;
}

static void
sl_cmd(struct sl_session *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->cmd, sizeof(s->cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(s->cmd)) {
		fprintf(stderr, "smtpload: command too long\n");
		exit(2);
	}
	sl_send(s, s->cmd, (size_t)n);
}

/*
 * The recipient of the session's message: -t as it is, or with -D N its
 * domain prefixed by "dK." (K from 0 to N-1 in turn), so that N
 * destinations get the same number of messages (bench/domains.sh).
 */
static const char *
sl_rcpt(const struct sl_session *s)
{
	static char buf[600];
	const char *at = strrchr(opt.to, '@');

	if (opt.domains == 0 || at == NULL)
		return opt.to;
	snprintf(buf, sizeof(buf), "%.*s@d%lu.%s", (int)(at - opt.to), opt.to,
	    (s->msgno - 1) % opt.domains, at + 1);
	return buf;
}

/* Start a transaction if a message is left, else QUIT. */
static void
sl_next_message(struct sl_session *s)
{
	if (claimed >= opt.messages || stop_requested) {
		sl_cmd(s, "QUIT\r\n");
		sl_enter(s, S_QUIT);
		return;
	}
	s->msgno = ++claimed;
	s->claimed = 1;
	if (opt.pipeline && s->pipelining)
		sl_cmd(s, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n",
		    opt.from, sl_rcpt(s));
	else
		sl_cmd(s, "MAIL FROM:<%s>\r\n", opt.from);
	sl_enter(s, S_MAIL);
}

static void
sl_open(struct sl_session *s)
{
	int one = 1, fd;
	char *msg;

	msg = s->msg; /* the only thing kept from a previous session */
	memset(s, 0, sizeof(*s));
	s->msg = msg;
	s->fd = -1;
	s->io = &sl_plain_io;
	live++;
	fd = socket(
	    opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		s->state = S_CONNECTING;
		connecting++;
		sl_fail(s, "socket: %s", strerror(errno));
		return;
	}
	s->fd = fd;
	/* Commands are small and answered one by one: never let Nagle hold
	 * the "." back, which would be measured as server latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	connecting++;
	sl_enter(s, S_CONNECTING);
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0 &&
	    errno != EINPROGRESS)
		sl_fail(s, "connect: %s", strerror(errno));
}

static void
sl_connected(struct sl_session *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		sl_fail(s, "connect: %s", strerror(err));
		return;
	}
	connecting--;
	sl_enter(s, S_GREETING);
}

#ifdef SL_TLS
/* Drive the handshake; when it is done, EHLO again inside TLS. */
static void
sl_handshake(struct sl_session *s)
{
	int r = SSL_do_handshake(s->ssl);

	if (r == 1) {
		tls_sessions++;
		if (SSL_session_reused(s->ssl))
			tls_resumed++;
		snprintf(tls_last, sizeof(tls_last), "%s %s",
		    SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
		s->io = &sl_tls_io;
		s->pipelining = s->starttls = 0; /* capabilities are new */
		sl_cmd(s, "EHLO %s\r\n", opt.helo);
		sl_enter(s, S_EHLO);
		return;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->hs_write = 0;
		return;
	case SSL_ERROR_WANT_WRITE:
		s->hs_write = 1;
		return;
	default: {
		unsigned long e = ERR_get_error();
		char why[256];
		ERR_error_string_n(e, why, sizeof(why));
		ERR_clear_error();
		sl_fail(s, "TLS handshake: %s", e ? why : "connection closed");
	}
	}
}

static void
sl_starttls(struct sl_session *s)
{
	s->ssl = SSL_new(tls_ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1) {
		sl_fail(s, "SSL_new failed");
		return;
	}
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_connect_state(s->ssl);
	s->dot_sent = sl_now(); /* -Q measures the handshake from here */
	sl_enter(s, S_HANDSHAKE);
	sl_handshake(s);
}
#else
static void
sl_starttls(struct sl_session *s)
{
	sl_fail(s, "built without TLS");
}
#endif

/*
 * -Q: the EHLO inside TLS has been answered, which ends one unit of work;
 * its latency runs from the STARTTLS 220 (the handshake's start), and the
 * connection QUITs so that the next unit is a new handshake.
 */
static void
sl_handshake_done(struct sl_session *s)
{
	double us = sl_seconds(s->dot_sent, sl_now()) * 1e6;

	if (claimed < opt.messages) {
		claimed++;
		lat_us[accepted++] =
		    us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	}
	sl_cmd(s, "QUIT\r\n");
	sl_enter(s, S_QUIT);
}

/* One complete reply: its code, its last line (for messages) and whether
 * the EHLO keyword list named PIPELINING. */
static void
sl_reply(struct sl_session *s, int code, const char *last)
{
	struct timespec now;
	double us;

	switch (s->state) {
	case S_GREETING:
		if (code != 220)
			break;
		sl_cmd(s, "EHLO %s\r\n", opt.helo);
		sl_enter(s, S_EHLO);
		return;
	case S_EHLO:
		if (code != 250)
			break;
		if (opt.tls && s->io == &sl_plain_io) {
			if (!s->starttls) {
				sl_fail(s, "STARTTLS not offered");
				return;
			}
			sl_cmd(s, "STARTTLS\r\n");
			sl_enter(s, S_STARTTLS);
			return;
		}
		if (opt.idle > 0) {
			sl_enter(s, S_IDLE);
			return;
		}
		if (opt.handshakes) {
			sl_handshake_done(s);
			return;
		}
		sl_next_message(s);
		return;
	case S_MAIL:
		if (code != 250)
			break;
		if (!(opt.pipeline && s->pipelining))
			sl_cmd(s, "RCPT TO:<%s>\r\n", sl_rcpt(s));
		sl_enter(s, S_RCPT);
		return;
	case S_RCPT:
		if (code != 250)
			break;
		if (!(opt.pipeline && s->pipelining))
			sl_cmd(s, "DATA\r\n");
		sl_enter(s, S_DATA);
		return;
	case S_DATA:
		if (code != 354)
			break;
		memcpy(s->msg, content, content_len);
		{
			char num[16];
			snprintf(num, sizeof(num), "%010lu", s->msgno);
			memcpy(s->msg + msgno_off, num, 10);
		}
		sl_send(s, s->msg, content_len);
		sl_enter(s, S_DOT);
		return;
	case S_DOT:
		if (code != 250)
			break;
		now = sl_now();
		us = sl_seconds(s->dot_sent, now) * 1e6;
		lat_us[accepted++] =
		    us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		s->claimed = 0;
		if (opt.one_per_conn) {
			sl_cmd(s, "QUIT\r\n");
			sl_enter(s, S_QUIT);
		} else
			sl_next_message(s);
		return;
	case S_STARTTLS:
		if (code != 220)
			break;
		sl_starttls(s);
		return;
	case S_QUIT:
		sl_close(s);
		return;
	default:
		break;
	}
	sl_fail(s, "unexpected reply \"%s\"", last);
}

/* Split the input into lines and replies (RFC 5321 4.2: "ddd-" continues,
 * "ddd " or "ddd" ends a reply). */
static void
sl_parse(struct sl_session *s)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(s->in + start, '\n', s->inlen - start);
		char *line = s->in + start;
		size_t len;
		int code;

		if (nl == NULL)
			break;
		len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		start = (size_t)(nl - s->in) + 1;
		if (len < 3 || line[0] < '1' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' ||
		    (len > 3 && line[3] != ' ' && line[3] != '-')) {
			sl_fail(s, "malformed reply line \"%.80s\"", line);
			return;
		}
		if (s->state == S_EHLO && len > 4 &&
		    strncasecmp(line + 4, "PIPELINING", 10) == 0 &&
		    (len == 14 || line[14] == ' '))
			s->pipelining = 1;
		if (s->state == S_EHLO && len == 12 &&
		    strncasecmp(line + 4, "STARTTLS", 8) == 0)
			s->starttls = 1;
		if (len > 3 && line[3] == '-')
			continue;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		       (line[2] - '0');
		sl_reply(s, code, line);
		if (s->state == S_FREE)
			return;
		if (s->state == S_HANDSHAKE) {
			/* Plaintext after the 220 is never carried into TLS
			 * (RFC 3207 / CVE-2021-38371). */
			s->inlen = 0;
			return;
		}
		/* Replies to a pipelined group arrive together: go on. */
	}
	memmove(s->in, s->in + start, s->inlen - start);
	s->inlen -= start;
	if (s->inlen == sizeof(s->in) - 1)
		sl_fail(s, "reply longer than %d bytes", SL_IN_MAX - 1);
}

static void
sl_readable(struct sl_session *s)
{
	ssize_t n =
	    s->io->read(s, s->in + s->inlen, sizeof(s->in) - 1 - s->inlen);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			sl_fail(s, "read: %s", strerror(errno));
		return;
	}
	if (n == 0) {
		if (s->state == S_QUIT)
			sl_close(s);
		else
			sl_fail(s, "connection closed by the server");
		return;
	}
	if (s->state == S_IDLE) {
		sl_fail(s, "unexpected data on an idle session");
		return;
	}
	s->inlen += (size_t)n;
	sl_parse(s);
}

static void
sl_writable(struct sl_session *s)
{
	ssize_t n = s->io->write(s, s->out + s->outoff, s->outlen - s->outoff);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			sl_fail(s, "write: %s", strerror(errno));
		return;
	}
	s->outoff += (size_t)n;
	if (s->outoff == s->outlen) {
		s->outlen = s->outoff = 0;
		if (s->state == S_DOT)
			s->dot_sent = sl_now();
	}
}

static int
sl_expired(const struct sl_session *s, struct timespec now)
{
	return now.tv_sec > s->deadline.tv_sec ||
	       (now.tv_sec == s->deadline.tv_sec &&
	           now.tv_nsec > s->deadline.tv_nsec);
}

static int
sl_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted latencies, in milliseconds. */
static double
sl_percentile(double q)
{
	size_t rank;

	if (accepted == 0)
		return 0.0;
	rank = (size_t)(q * (double)accepted + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > accepted)
		rank = accepted;
	return lat_us[rank - 1] / 1000.0;
}

static void
sl_on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
sl_options(int argc, char **argv)
{
	int ch;

	opt.sessions = 20;
	opt.messages = 1000;
	opt.size = 2048;
	opt.timeout_s = 60;
	opt.hold_s = 600;
	opt.from = "a@example.org";
	opt.to = "b@example.com";
	opt.helo = "smtpload.test";
	while ((ch = getopt(argc, argv, "1PQSA:c:d:D:f:H:i:m:s:t:T:")) != -1) {
		switch (ch) {
		case 'S':
			opt.tls = 1;
			break;
		case 'Q':
			opt.handshakes = 1;
			break;
		case 'A':
			opt.cafile = optarg;
			break;
		case '1':
			opt.one_per_conn = 1;
			break;
		case 'P':
			opt.pipeline = 1;
			break;
		case 'c':
			opt.sessions = sl_number(
			    optarg, 1, SL_MAX_SESSIONS, "session count");
			break;
		case 'd':
			opt.hold_s =
			    (int)sl_number(optarg, 0, 86400, "hold time");
			break;
		case 'D':
			opt.domains =
			    sl_number(optarg, 1, 10000000, "domain count");
			break;
		case 'f':
			opt.from = optarg;
			break;
		case 'H':
			opt.helo = optarg;
			break;
		case 'i':
			opt.idle = sl_number(
			    optarg, 1, SL_MAX_SESSIONS, "idle session count");
			break;
		case 'm':
			opt.messages = sl_number(
			    optarg, 1, SL_MAX_MESSAGES, "message count");
			break;
		case 's':
			opt.size =
			    sl_number(optarg, 0, SL_MAX_SIZE, "message size");
			break;
		case 't':
			opt.to = optarg;
			break;
		case 'T':
			opt.timeout_s =
			    (int)sl_number(optarg, 1, 3600, "timeout");
			break;
		default:
			sl_usage();
		}
	}
	if (optind != argc - 1 || (opt.handshakes && !opt.tls))
		sl_usage();
	if (strpbrk(opt.from, "\r\n<>") || strpbrk(opt.to, "\r\n<>") ||
	    strpbrk(opt.helo, "\r\n ")) {
		fprintf(stderr, "smtpload: bad address or EHLO name\n");
		exit(2);
	}
	sl_parse_target(argv[optind]);
#ifdef SL_TLS
	if (opt.tls) {
		tls_ctx = SSL_CTX_new(TLS_client_method());
		if (tls_ctx == NULL) {
			fprintf(stderr, "smtpload: SSL_CTX_new failed\n");
			exit(1);
		}
		SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
		if (opt.cafile != NULL) {
			if (SSL_CTX_load_verify_locations(
			        tls_ctx, opt.cafile, NULL) != 1) {
				fprintf(stderr, "smtpload: cannot load %s\n",
				    opt.cafile);
				exit(2);
			}
			SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
		} else
			SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	}
#else
	if (opt.tls) {
		fprintf(stderr, "smtpload: -S needs a build with -DSL_TLS "
		                "-lssl -lcrypto\n");
		exit(2);
	}
#endif
}

/* Open sessions until `want` are live, SL_MAX_CONNECTING at a time, and
 * (when sending) no more than the messages left can keep busy. */
static void
sl_fill(unsigned long want, unsigned long slots)
{
	unsigned long i, starting = 0;

	for (i = 0; i < slots; i++)
		if (sessions[i].state >= S_CONNECTING &&
		    sessions[i].state <= S_HANDSHAKE)
			starting++;
	for (i = 0; i < slots && live < want &&
	            (opt.idle > 0 || starting < opt.messages - claimed) &&
	            connecting < SL_MAX_CONNECTING;
	     i++)
		if (sessions[i].state == S_FREE) {
			sl_open(&sessions[i]);
			starting++;
		}
}

static void
sl_report(double secs)
{
	qsort(lat_us, accepted, sizeof(*lat_us), sl_cmp_u32);
	printf("target: %s\n", opt.target);
	printf("sessions: %lu\n", opt.sessions);
	printf("size: %lu\n", opt.size);
	printf("messages: %lu\n", claimed);
	printf("accepted: %lu\n", accepted);
	printf("errors: %lu\n", errors);
	printf("seconds: %.3f\n", secs);
	printf("msgs/s: %.1f\n", secs > 0 ? accepted / secs : 0.0);
	printf("p50_ms: %.2f\n", sl_percentile(0.50));
	printf("p99_ms: %.2f\n", sl_percentile(0.99));
	printf(
	    "max_ms: %.2f\n", accepted ? lat_us[accepted - 1] / 1000.0 : 0.0);
#ifdef SL_TLS
	if (opt.tls) {
		printf("tls_sessions: %lu\n", tls_sessions);
		printf("tls_resumed: %lu\n", tls_resumed);
		printf("tls_last: %s\n", tls_last);
	}
#endif
}

static int
sl_run(void)
{
	unsigned long slots = opt.idle > 0 ? opt.idle : opt.sessions;
	unsigned long i, idle, want;
	struct pollfd *pfd;
	unsigned long *map;
	struct timespec start, end, now;
	int ready_printed = 0, rc;

	sessions = calloc(slots, sizeof(*sessions));
	pfd = calloc(slots, sizeof(*pfd));
	map = calloc(slots, sizeof(*map));
	if (opt.idle == 0)
		lat_us = calloc(opt.messages, sizeof(*lat_us));
	if (sessions == NULL || pfd == NULL || map == NULL ||
	    (opt.idle == 0 && lat_us == NULL)) {
		perror("smtpload: calloc");
		return 1;
	}
	for (i = 0; i < slots; i++) {
		sessions[i].fd = -1;
		if (opt.idle == 0) {
			sessions[i].msg = malloc(content_len);
			if (sessions[i].msg == NULL) {
				perror("smtpload: malloc");
				return 1;
			}
		}
	}
	start = sl_now();
	for (;;) {
		unsigned long n = 0;
		int ready;

		/* Keep `slots` sessions while messages are left (or until the
		 * idle target is reached once). */
		if (opt.idle > 0)
			want = ready_printed || stop_requested ? 0 : opt.idle;
		else
			want = stop_requested || claimed >= opt.messages
			           ? 0
			           : opt.sessions;
		if (live < want)
			sl_fill(want, slots);
		if (live == 0)
			break;
		idle = 0;
		for (i = 0; i < slots; i++) {
			struct sl_session *s = &sessions[i];
			if (s->state == S_FREE)
				continue;
			if (s->state == S_IDLE)
				idle++;
			pfd[n].fd = s->fd;
			pfd[n].events =
			    s->state == S_CONNECTING || s->outlen > s->outoff
			        ? POLLOUT
			        : POLLIN;
#ifdef SL_TLS
			if (s->state == S_HANDSHAKE)
				pfd[n].events = s->hs_write ? POLLOUT : POLLIN;
#endif
			pfd[n].revents = 0;
			map[n++] = i;
		}
		if (opt.idle > 0 && !ready_printed && idle == opt.idle) {
			printf("ready %lu\n", idle);
			fflush(stdout);
			ready_printed = 1;
			start = sl_now();
		}
		if (opt.idle > 0 && ready_printed &&
		    (stop_requested ||
		        sl_seconds(start, sl_now()) > opt.hold_s))
			break;
		ready = poll(pfd, n, SL_TICK_MS);
		if (ready < 0 && errno != EINTR) {
			perror("smtpload: poll");
			return 1;
		}
		for (i = 0; ready > 0 && i < n; i++) {
			struct sl_session *s = &sessions[map[i]];
			if (pfd[i].revents == 0 || s->state == S_FREE)
				continue;
			if (s->state == S_CONNECTING)
				sl_connected(s);
#ifdef SL_TLS
			else if (s->state == S_HANDSHAKE)
				sl_handshake(s);
#endif
			else if (pfd[i].revents & POLLOUT)
				sl_writable(s);
			else
				sl_readable(s);
		}
		now = sl_now();
		for (i = 0; i < slots; i++) {
			struct sl_session *s = &sessions[i];
			if (s->state != S_FREE && s->state != S_IDLE &&
			    sl_expired(s, now))
				sl_fail(
				    s, "no reply within %d s", opt.timeout_s);
		}
		if (opt.idle > 0 && !ready_printed && errors > 0)
			break;
	}
	end = sl_now();
	if (opt.idle > 0) {
		for (i = 0; i < slots; i++)
			if (sessions[i].state != S_FREE)
				sl_close(&sessions[i]);
		if (!ready_printed)
			fprintf(stderr,
			    "smtpload: only %lu of %lu idle sessions opened\n",
			    opt.idle - errors, opt.idle);
		rc = ready_printed && errors == 0 ? 0 : 1;
	} else {
		sl_report(sl_seconds(start, end));
		rc = errors == 0 && accepted == opt.messages ? 0 : 1;
	}
	for (i = 0; i < slots; i++)
		free(sessions[i].msg);
	free(sessions);
	free(pfd);
	free(map);
	free(lat_us);
	return rc;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	int rc;

	sl_options(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sl_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (opt.idle == 0)
		sl_build_content();
	rc = sl_run();
	free(content);
	return rc;
}
