/*
 * client_content.c - the outbound content encoder (see client_content.h).
 *
 * Where it sits: between the stored message and the client's I/O layer;
 * smtp_client.c feeds it the body and it hands CRLF-clean, dot-stuffed
 * (DATA) bytes to a sink.  A count-only pass gives BDAT its chunk size.
 *
 * It is a byte-level state machine with a fast path: inside a line
 * outside a dropped field, everything up to the next CR or LF is copied
 * as one run.  State carried across chunks: at a line start or not, a CR
 * that may be half of a CRLF, the header section or the body, the
 * current header field kept or dropped, and how much of the organisation
 * prefix the current line has shown so far (held back until it either
 * completes the prefix, and the line is dropped, or does not, and the
 * held bytes go out as they were).
 *
 * Invariants: every line produced ends in CRLF and nothing else ends a
 * line (GUIDE 4.2); with DOTSTUFF no produced line is "." alone; a
 * dropped field takes its continuation lines (starting with SP or HT)
 * with it and nothing else; the header section ends at the first empty
 * line, after which nothing is dropped.
 */
#include <string.h>

#include "deliver/client_content.h"
#include "util/crlf_scan.h"

static const char client_content_prefix[] = "x-sluice-organization-";

static void
client_content_flush(struct client_content *cc)
{
	if (cc->nstage > 0 && cc->sink != NULL && !cc->failed &&
	    cc->sink(cc->arg, cc->stage, cc->nstage) < 0)
		cc->failed = 1;
	cc->nstage = 0;
}

static void
client_content_put(struct client_content *cc, const char *p, size_t n)
{
	cc->total += n;
	cc->line_out += n;
	if (cc->sink == NULL)
		return;
	while (n > 0) {
		size_t room = sizeof(cc->stage) - cc->nstage;
		size_t k = n < room ? n : room;

		memcpy(cc->stage + cc->nstage, p, k);
		cc->nstage += k;
		p += k;
		n -= k;
		if (cc->nstage == sizeof(cc->stage))
			client_content_flush(cc);
	}
}

/*
 * Whole lines that go out as they are, straight to the sink: what is
 * staged goes first, to keep the order, and these bytes are not copied
 * into the stage (a 1 MB body is some 13,000 lines; byte by byte through
 * the stage it cost two memchr and two copies a line).  A run that fits
 * the stage is staged all the same: a small message still reaches the
 * sink in one call (for BDAT, one chunk: BDAT n LAST).
 */
static void
client_content_direct(struct client_content *cc, const char *p, size_t n)
{
	cc->total += n;
	if (cc->sink == NULL)
		return;
	if (n <= sizeof(cc->stage) - cc->nstage) {
		memcpy(cc->stage + cc->nstage, p, n);
		cc->nstage += n;
		return;
	}
	client_content_flush(cc);
	if (!cc->failed && cc->sink(cc->arg, p, n) < 0)
		cc->failed = 1;
}

void
client_content_init(struct client_content *cc, unsigned flags,
    client_content_sink sink, void *arg)
{
	memset(cc, 0, sizeof(*cc));
	cc->flags = flags;
	cc->sink = sink;
	cc->arg = arg;
	cc->bol = 1;
	cc->in_header = 1;
}

/*
 * Text of the current line: folded with CRLF SP each time the line
 * reaches CLIENT_CONTENT_LINE_MAX octets and more follows.
 */
static void
client_content_text(struct client_content *cc, const char *p, size_t n)
{
	while (n > 0) {
		size_t room, k;

		if (cc->line_out >= CLIENT_CONTENT_LINE_MAX) {
			client_content_put(cc, "\r\n ", 3);
			cc->line_out = 1; /* the space */
		}
		room = CLIENT_CONTENT_LINE_MAX - cc->line_out;
		k = n < room ? n : room;
		client_content_put(cc, p, k);
		p += k;
		n -= k;
	}
}

/* A line ended (its CRLF is out, unless the line was dropped). */
static void
client_content_eol(struct client_content *cc)
{
	if (!cc->drop_line)
		client_content_put(cc, "\r\n", 2);
	cc->bol = 1;
	cc->drop_line = 0;
	cc->line_out = 0;
}

/* The held start of a line is not the prefix after all: it goes out. */
static void
client_content_release(struct client_content *cc)
{
	size_t n = cc->matched;

	cc->matched = 0;
	client_content_text(cc, cc->held, n);
}

/* The first byte of a line: header bookkeeping, then dot-stuffing. */
static void
client_content_line_start(struct client_content *cc, char ch)
{
	cc->bol = 0;
	if (cc->in_header) {
		if (ch == '\r' || ch == '\n') {
			cc->in_header = 0; /* the empty line */
			cc->drop_field = 0;
		} else if (ch == ' ' || ch == '\t') {
			cc->drop_line = cc->drop_field; /* a continuation */
			return;
		} else {
			cc->drop_field = 0;
			if (cc->flags & CLIENT_CONTENT_STRIP_ORG)
				cc->matched =
				    0; /* maybe the prefix: see feed */
		}
	}
	if ((cc->flags & CLIENT_CONTENT_DOTSTUFF) && ch == '.')
		client_content_put(cc, ".", 1);
}

/* Does the current header line still look like the prefix? */
static int
client_content_matching(const struct client_content *cc)
{
	return cc->in_header && (cc->flags & CLIENT_CONTENT_STRIP_ORG) &&
	       !cc->drop_field && !cc->drop_line && cc->line_out == 0 &&
	       cc->matched < sizeof(cc->held);
}

int
client_content_feed(struct client_content *cc, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && !cc->failed) {
		char ch = p[i];

		if (cc->pending_cr) {
			/* CR ended the last chunk: CRLF, or a bare CR. */
			cc->pending_cr = 0;
			client_content_eol(cc);
			if (ch == '\n')
				i++;
			continue;
		}
		if (cc->bol && !cc->in_header &&
		    !((cc->flags & CLIENT_CONTENT_DOTSTUFF) && ch == '.')) {
			/* the body's plain lines: no dot to stuff, none
			 * to fold, nothing but CRLF ending them */
			struct crlf_scan r;

			crlf_scan(p + i, n - i, CLIENT_CONTENT_LINE_MAX,
			    cc->flags & CLIENT_CONTENT_DOTSTUFF ? CRLF_SCAN_DOT
			                                        : 0,
			    &r);
			if (r.lines > 0) {
				client_content_direct(cc, p + i, r.lines);
				i += r.lines;
				continue;
			}
		}
		if (cc->bol)
			client_content_line_start(cc, ch);
		if (client_content_matching(cc)) {
			char lc = ch >= 'A' && ch <= 'Z'
			              ? (char)(ch - 'A' + 'a')
			              : ch;

			if (lc == client_content_prefix[cc->matched]) {
				cc->held[cc->matched++] = ch;
				i++;
				if (cc->matched ==
				    sizeof(client_content_prefix) - 1) {
					/* X-Sluice-Organization-*: left out */
					cc->matched = 0;
					cc->drop_field = cc->drop_line = 1;
				}
				continue;
			}
			client_content_release(cc);
		}
		if (ch == '\r') {
			if (i + 1 == n) {
				cc->pending_cr = 1;
				i++;
				continue;
			}
			/* CRLF, or a bare CR: either way one line end */
			i += p[i + 1] == '\n' ? 2 : 1;
			client_content_eol(cc);
			continue;
		}
		if (ch == '\n') {
			i++; /* a bare LF */
			client_content_eol(cc);
			continue;
		}
		{
			/* A run up to the next CR or LF, found with memchr. */
			const char *cr = memchr(p + i + 1, '\r', n - i - 1);
			const char *end = cr != NULL ? cr : p + n;
			const char *lf = memchr(
			    p + i + 1, '\n', (size_t)(end - (p + i + 1)));
			size_t j = (size_t)((lf != NULL ? lf : end) - p);

			if (!cc->drop_line)
				client_content_text(cc, p + i, j - i);
			i = j;
		}
	}
	return cc->failed ? -1 : 0;
}

int
client_content_end(struct client_content *cc)
{
	if (cc->matched > 0)
		client_content_release(cc);
	if (cc->pending_cr) {
		cc->pending_cr = 0;
		client_content_eol(cc);
	} else if (!cc->bol && cc->line_out > 0) {
		client_content_put(cc, "\r\n", 2);
		cc->bol = 1;
	}
	client_content_flush(cc);
	return cc->failed ? -1 : 0;
}

long long
client_content_encode(const char *data, size_t len, unsigned flags,
    client_content_sink sink, void *arg)
{
	struct client_content cc;

	client_content_init(&cc, flags, sink, arg);
	if (client_content_feed(&cc, data, len) < 0 ||
	    client_content_end(&cc) < 0)
		return -1;
	return (long long)cc.total;
}
