/*
 * sm_submit.c - sluice-sendmail's side of the local submission socket
 * (see sm_submit.h and src/server/local_submit.c).
 *
 * Plain blocking I/O with a deadline per read and write
 * (SM_SUBMIT_TIMEOUT, RFC 5321 4.5.3.2's ten minutes for the end of
 * data, which covers the daemon's commit), replies through the same
 * bounded parser the SMTP client uses.  Nothing here decides who the
 * sender is: the daemon asks the kernel (SO_PEERCRED) and writes that in
 * the Received header.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "sendmail/sm_message.h"
#include "sendmail/sm_submit.h"
#include "smtp/reply.h"
#include "util/fd.h"

#define SM_SUBMIT_TIMEOUT 600 /* seconds */

struct sm_conn {
	const char *prog;
	int fd;
	int verbose;
	char in[8192];
	size_t inlen;
	char out[65536];
	size_t outlen;
	struct reply r;
};

static int
sm_connect(const char *prog, const char *path)
{
	struct sockaddr_un sun;
	struct timeval tv = {SM_SUBMIT_TIMEOUT, 0};
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "%s: %s: path too long\n", prog, path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr,
		    "%s: cannot reach sluiced at %s: %s (is sluiced "
		    "running?); nothing was sent\n",
		    prog, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int
sm_flush(struct sm_conn *c)
{
	int rc = fd_write_all(c->fd, c->out, c->outlen);

	c->outlen = 0;
	return rc;
}

static int
sm_put(struct sm_conn *c, const char *p, size_t n)
{
	while (n > 0) {
		size_t room = sizeof(c->out) - c->outlen,
		       k = n < room ? n : room;

		memcpy(c->out + c->outlen, p, k);
		c->outlen += k;
		p += k;
		n -= k;
		if (c->outlen == sizeof(c->out) && sm_flush(c) < 0)
			return -1;
	}
	return 0;
}

/* Read one reply into c->r; -1 when the connection broke. */
static int
sm_reply(struct sm_conn *c)
{
	reply_init(&c->r);
	for (;;) {
		size_t used = 0;
		enum reply_status st =
		    c->inlen > 0 ? reply_parse(&c->r, c->in, c->inlen, &used)
		                 : REPLY_MORE;
		ssize_t n;

		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
		if (st == REPLY_OK) {
			if (c->verbose)
				fprintf(stderr, "<<< %d %s%s%s\n", c->r.code,
				    c->r.enh, c->r.enh[0] ? " " : "",
				    c->r.text);
			return 0;
		}
		if (st == REPLY_ERROR) {
			fprintf(stderr, "%s: bad reply from sluiced: %s\n",
			    c->prog, c->r.why);
			return -1;
		}
		if (c->inlen == sizeof(c->in))
			return -1;
		do
			n = read(
			    c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			fprintf(stderr, "%s: the connection to sluiced %s\n",
			    c->prog,
			    n == 0 ? "was closed"
			           : (errno == EAGAIN ? "timed out"
			                              : strerror(errno)));
			return -1;
		}
		c->inlen += (size_t)n;
	}
}

/* A command line and its reply. */
static int sm_cmd(struct sm_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
sm_cmd(struct sm_conn *c, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	if (c->verbose)
		fprintf(stderr, ">>> %s\n", line);
	memcpy(line + n, "\r\n", 3);
	if (sm_put(c, line, (size_t)n + 2) < 0 || sm_flush(c) < 0)
		return -1;
	return sm_reply(c);
}

static int
sm_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* What the daemon said to EHLO: SIZE, and whether it takes SMTPUTF8. */
static void
sm_ehlo_facts(const struct reply *r, unsigned long long *size, int *utf8)
{
	const char *p = r->text;

	*size = 0;
	*utf8 = 0;
	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		if (n > 5 && strncasecmp(p, "SIZE ", 5) == 0)
			*size = strtoull(p + 5, NULL, 10);
		if (n == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0)
			*utf8 = 1;
		p += n;
		if (*p == '\n')
			p++;
	}
}

/* What the prepended fields add to the message as sent. */
static long long
sm_prepend_size(const char *prepend, const struct sm_message *m)
{
	long long n = 0;

	if (prepend[0] == '\0')
		return 0;
	for (const char *p = prepend; *p != '\0'; p++)
		n += *p == '\n' ? 2 : 1;
	return n + (m->needs_separator ? 2 : 0);
}

/* The message, dot-stuffed, with CRLF line ends. */
static int
sm_send_text(struct sm_conn *c, const struct sm_submit *o, struct sm_message *m)
{
	char line[8192];
	int start = 1;

	if (o->prepend[0] != '\0') {
		for (const char *p = o->prepend; *p != '\0';) {
			size_t n = strcspn(p, "\n");

			if (sm_put(c, p, n) < 0 || sm_put(c, "\r\n", 2) < 0)
				return -1;
			p += n + (p[n] == '\n');
		}
		if (m->needs_separator && sm_put(c, "\r\n", 2) < 0)
			return -1;
	}
	while (fgets(line, sizeof(line), m->text) != NULL) {
		size_t n = strlen(line);
		int eol = n > 0 && line[n - 1] == '\n';

		if (eol)
			n--;
		if (start && line[0] == '.' && sm_put(c, ".", 1) < 0)
			return -1;
		if (sm_put(c, line, n) < 0 || (eol && sm_put(c, "\r\n", 2) < 0))
			return -1;
		start = eol;
	}
	if (ferror(m->text))
		return -1;
	if (sm_put(c, ".\r\n", 3) < 0 || sm_flush(c) < 0)
		return -1;
	if (c->verbose)
		fprintf(
		    stderr, ">>> (%lld bytes of message)\n>>> .\n", m->size);
	return 0;
}

static int
sm_fail(struct sm_conn *c, const char *what, int code)
{
	fprintf(stderr, "%s: %s: %d %s%s%s\n", c->prog, what, c->r.code,
	    c->r.enh, c->r.enh[0] ? " " : "", c->r.text);
	return code;
}

static void
sm_quit(struct sm_conn *c)
{
	if (sm_cmd(c, "QUIT") < 0)
		return;
}

int
sm_submit_run(const char *prog, const struct sm_submit *o, struct sm_message *m)
{
	struct sm_conn *c = calloc(1, sizeof(*c));
	unsigned long long size_max;
	char params[512];
	size_t accepted = 0, failed_perm = 0;
	int utf8_ok, need_utf8, rc = EX_PROTOCOL;
	long long total;

	if (c == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return EX_OSERR;
	}
	c->prog = prog;
	c->verbose = o->verbose;
	if ((c->fd = sm_connect(prog, o->socket)) < 0) {
		free(c);
		return EX_TEMPFAIL;
	}
	if (sm_reply(c) < 0)
		goto broken;
	if (c->r.code != 220) {
		rc = sm_fail(c, "sluiced does not take mail now",
		    c->r.code / 100 == 4 ? EX_TEMPFAIL : EX_UNAVAILABLE);
		goto out;
	}
	if (sm_cmd(c, "EHLO localhost") < 0)
		goto broken;
	if (c->r.code != 250) {
		rc = sm_fail(c, "EHLO refused", EX_PROTOCOL);
		goto out;
	}
	sm_ehlo_facts(&c->r, &size_max, &utf8_ok);
	total = m->size + sm_prepend_size(o->prepend, m);
	if (size_max > 0 && (unsigned long long)total > size_max) {
		fprintf(stderr,
		    "%s: the message is %lld bytes; sluiced takes at most "
		    "%llu (MaxMessageSize, MaxReceiveSize); nothing was "
		    "sent\n",
		    prog, total, size_max);
		rc = EX_DATAERR;
		goto quit;
	}
	need_utf8 = sm_has_8bit(o->sender);
	for (size_t i = 0; i < o->nrcpts; i++)
		need_utf8 |= sm_has_8bit(o->rcpts[i]);
	snprintf(params, sizeof(params), " SIZE=%lld%s%s%s%s%s%s", total,
	    m->eightbit || o->body_8bit ? " BODY=8BITMIME" : "",
	    o->ret != NULL ? " RET=" : "", o->ret != NULL ? o->ret : "",
	    o->envid != NULL ? " ENVID=" : "", o->envid != NULL ? o->envid : "",
	    utf8_ok && need_utf8 ? " SMTPUTF8" : "");
	if (sm_cmd(c, "MAIL FROM:<%s>%s", o->sender, params) < 0)
		goto broken;
	if (c->r.code != 250) {
		rc = sm_fail(c, "sender refused",
		    c->r.code / 100 == 4 ? EX_TEMPFAIL : EX_DATAERR);
		goto quit;
	}
	for (size_t i = 0; i < o->nrcpts; i++) {
		if (sm_cmd(c, "RCPT TO:<%s>%s%s", o->rcpts[i],
		        o->notify != NULL ? " NOTIFY=" : "",
		        o->notify != NULL ? o->notify : "") < 0)
			goto broken;
		if (c->r.code == 250 || c->r.code == 251) {
			accepted++;
			continue;
		}
		sm_fail(c, o->rcpts[i], 0);
		if (c->r.code / 100 == 5)
			failed_perm++;
	}
	if (accepted == 0) {
		fprintf(stderr,
		    "%s: no recipient was accepted; nothing was "
		    "sent\n",
		    prog);
		rc = failed_perm == o->nrcpts ? EX_NOUSER : EX_TEMPFAIL;
		goto quit;
	}
	if (sm_cmd(c, "DATA") < 0)
		goto broken;
	if (c->r.code != 354) {
		rc = sm_fail(c, "DATA refused",
		    c->r.code / 100 == 4 ? EX_TEMPFAIL : EX_DATAERR);
		goto quit;
	}
	if (sm_send_text(c, o, m) < 0 || sm_reply(c) < 0)
		goto broken;
	if (c->r.code != 250) {
		rc = sm_fail(c, "message refused",
		    c->r.code / 100 == 4 ? EX_TEMPFAIL : EX_DATAERR);
		goto quit;
	}
	/* 250: durable in the queue. */
	rc = 0;
quit:
	sm_quit(c);
out:
	close(c->fd);
	free(c);
	return rc;
broken:
	fprintf(stderr,
	    "%s: sluiced did not confirm the message; it was "
	    "not accepted\n",
	    prog);
	close(c->fd);
	free(c);
	return EX_TEMPFAIL;
}

/* stdin to the socket, a bare LF made CRLF; -1 on error. */
static int
sm_pipe_in(int fd, int *last_cr)
{
	char in[4096], out[8192];
	ssize_t n = read(STDIN_FILENO, in, sizeof(in));
	size_t o = 0;

	if (n <= 0)
		return (int)n;
	for (ssize_t i = 0; i < n; i++) {
		if (in[i] == '\n' && !*last_cr)
			out[o++] = '\r';
		out[o++] = in[i];
		*last_cr = in[i] == '\r';
	}
	return fd_write_all(fd, out, o) < 0 ? -1 : 1;
}

int
sm_submit_pipe(const char *prog, const char *socket)
{
	int fd = sm_connect(prog, socket), last_cr = 0, in_open = 1;
	struct pollfd p[2];
	char buf[8192];

	if (fd < 0)
		return EX_TEMPFAIL;
	for (;;) {
		int n;

		p[0].fd = in_open ? STDIN_FILENO : -1;
		p[0].events = POLLIN;
		p[1].fd = fd;
		p[1].events = POLLIN;
		if ((n = poll(p, 2, SM_SUBMIT_TIMEOUT * 1000)) <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			fprintf(stderr, "%s: timed out\n", prog);
			close(fd);
			return EX_TEMPFAIL;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0)
				break; /* the daemon closed: after QUIT */
			if (fd_write_all(STDOUT_FILENO, buf, (size_t)r) < 0)
				break;
		}
		if (in_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			int r = sm_pipe_in(fd, &last_cr);

			if (r < 0) {
				fprintf(
				    stderr, "%s: %s\n", prog, strerror(errno));
				break;
			}
			if (r == 0) {
				in_open = 0;
				shutdown(fd, SHUT_WR);
			}
		}
	}
	close(fd);
	return 0;
}
