/*
 * content.c - validation and header filtering of received content.
 *
 * Sits between the session's DATA/BDAT readers and the spool: every byte
 * of every message passes through here once, and is stored straight into
 * the bounded message buffer.  A line is checked in place when its LF
 * arrives (or at the end of the message), so a line may be longer than
 * any read and needs no buffer of its own: the message buffer, bounded by
 * the size limit and charged to the server, is the only one.
 *
 * Header handling (RFC 5322 2.2): a field starts in column 0, continues on
 * lines that start with SP or HTAB, and the header block ends at the first
 * empty line.  X-Sluice-Organization-* fields carry trust decisions Sluice
 * makes itself (SPEC 3), so any copy arriving from outside is removed with
 * its continuation lines before ours are added.  Ours come right before
 * the client's first line, so a client whose content starts with a
 * continuation line would extend the last header we wrote (forging its
 * value): that message is refused (CONTENT_HEADER_CONT).  Received fields
 * are counted against MaxHopCount to stop mail loops (RFC 5321 6.3).
 */
#include <string.h>
#include <strings.h>

#include "server/content.h"

#define CONTENT_ORG_PREFIX "x-sluice-organization-"

void
content_init(
    struct content *c, const struct content_limits *lim, size_t memory_max)
{
	memset(c, 0, sizeof(*c));
	c->lim = *lim;
	buf_init(&c->out, memory_max);
	c->in_header = 1;
}

void
content_free(struct content *c)
{
	buf_free(&c->out);
}

int
content_prefix(struct content *c, const char *p, size_t n)
{
	if (buf_append(&c->out, p, n) != BUF_OK) {
		c->error = CONTENT_NOMEM;
		return -1;
	}
	c->line_start = c->out.len;
	return 0;
}

void
content_fail(struct content *c, enum content_error e)
{
	if (c->error == CONTENT_OK)
		c->error = e;
}

static int
content_field_is(const char *p, size_t n, const char *name)
{
	size_t len = strlen(name);

	return n >= len && strncasecmp(p, name, len) == 0;
}

/* Header-block processing of one line; returns 0 to drop the line. */
static int
content_header_line(struct content *c, const char *p, size_t n)
{
	if (n == 2) { /* the empty line ending the header block */
		c->in_header = 0;
		c->skipping = 0;
		return 1;
	}
	if (p[0] == ' ' || p[0] == '\t') {
		if (c->fields == 0)
			content_fail(c, CONTENT_HEADER_CONT);
		return !c->skipping;
	}
	c->fields++;
	c->skipping = content_field_is(p, n, CONTENT_ORG_PREFIX);
	if (content_field_is(p, n, "received:") && ++c->hops > c->lim.max_hops)
		content_fail(c, CONTENT_HOPS);
	return !c->skipping;
}

/*
 * The line out[line_start..len) is complete: it must end in CRLF and hold
 * no other CR and no NUL; in the header block it may be dropped.
 */
static void
content_end_line(struct content *c)
{
	const char *p = c->out.data + c->line_start;
	size_t n = c->out.len - c->line_start;

	if (n < 2 || p[n - 2] != '\r' || memchr(p, '\r', n - 2) != NULL ||
	    memchr(p, '\0', n) != NULL) {
		content_fail(c, CONTENT_BAD_EOL);
		return;
	}
	if (c->in_header && !content_header_line(c, p, n)) {
		c->out.len = c->line_start;
		c->out.data[c->out.len] = '\0';
	}
	c->line_start = c->out.len;
}

/* Store n bytes of which only the last may be an LF. */
static void
content_store(struct content *c, const char *p, size_t n)
{
	if (c->error != CONTENT_OK)
		return;
	if (c->in_header) {
		c->header_bytes += n;
		if (c->header_bytes > c->lim.max_header) {
			content_fail(c, CONTENT_HEADER_BIG);
			return;
		}
	}
	if (buf_append(&c->out, p, n) != BUF_OK) {
		content_fail(c, CONTENT_NOMEM);
		return;
	}
	if (p[n - 1] == '\n')
		content_end_line(c);
}

void
content_line_part(struct content *c, const char *p, size_t n)
{
	if (n == 0)
		return;
	c->size += n;
	if (c->size > c->lim.max_size)
		content_fail(c, CONTENT_TOO_BIG);
	content_store(c, p, n);
}

void
content_bytes(struct content *c, const char *p, size_t n)
{
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;

		content_line_part(c, p, take);
		p += take;
		n -= take;
	}
}

enum content_error
content_finish(struct content *c)
{
	/*
	 * BDAT content need not end with CRLF (RFC 3030 does not ask for
	 * it, and Postfix and Exim accept it); what we store always does.
	 * A CR left at the very end becomes a bare CR, as anywhere else.
	 */
	if (c->error == CONTENT_OK && c->out.len > c->line_start) {
		if (buf_append(&c->out, "\r\n", 2) != BUF_OK)
			content_fail(c, CONTENT_NOMEM);
		else
			content_end_line(c);
	}
	return c->error;
}

const char *
content_error_reply(enum content_error e)
{
	switch (e) {
	case CONTENT_OK:
		return "250 2.6.0 OK";
	case CONTENT_TOO_BIG:
		return "552 5.3.4 Message size exceeds fixed maximum message "
		       "size";
	case CONTENT_HEADER_BIG:
		return "552 5.3.4 Message header size exceeds fixed maximum "
		       "size";
	case CONTENT_HOPS:
		return "554 5.4.14 Hop count exceeded - possible mail loop";
	case CONTENT_BAD_EOL:
		return "550 5.6.11 Bare CR, bare LF or NUL in message content "
		       "(SMTP smuggling protection)";
	case CONTENT_HEADER_CONT:
		return "550 5.6.0 Message header starts with a continuation "
		       "line (RFC 5322 2.2.3)";
	case CONTENT_NOMEM:
		return "452 4.3.1 Insufficient system resources";
	}
	return "451 4.3.0 Internal error";
}
