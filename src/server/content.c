/*
 * content.c - validation and header filtering of received content.
 *
 * Sits between the session's DATA/BDAT readers and the spool: every byte
 * of every message passes through content_line(), so it does one pass and
 * no allocation beyond the bounded output buffer.
 *
 * Header handling (RFC 5322 2.2): a field starts in column 0, continues on
 * lines that start with SP or HTAB, and the header block ends at the first
 * empty line.  X-Sluice-Organization-* fields carry trust decisions Sluice
 * makes itself (SPEC 3), so any copy arriving from outside is removed with
 * its continuation lines before ours are added.  Received fields are
 * counted against MaxHopCount to stop mail loops (RFC 5321 6.3).
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
	/* A BDAT line may be split across chunks: hold at most one line. */
	buf_init(&c->line, CONTENT_LINE_MAX + 2);
	c->in_header = 1;
}

void
content_free(struct content *c)
{
	buf_free(&c->out);
	buf_free(&c->line);
}

int
content_prefix(struct content *c, const char *p, size_t n)
{
	if (buf_append(&c->out, p, n) != BUF_OK) {
		c->error = CONTENT_NOMEM;
		return -1;
	}
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
	c->header_bytes += n;
	if (c->header_bytes > c->lim.max_header)
		content_fail(c, CONTENT_HEADER_BIG);
	if (p[0] == ' ' || p[0] == '\t')
		return !c->skipping;
	c->skipping = content_field_is(p, n, CONTENT_ORG_PREFIX);
	if (content_field_is(p, n, "received:") && ++c->hops > c->lim.max_hops)
		content_fail(c, CONTENT_HOPS);
	return !c->skipping;
}

void
content_line(struct content *c, const char *p, size_t n)
{
	int keep = 1;

	c->size += n;
	if (c->size > c->lim.max_size)
		content_fail(c, CONTENT_TOO_BIG);
	if (n > CONTENT_LINE_MAX + 2)
		content_fail(c, CONTENT_LINE_LONG);
	if (memchr(p, '\0', n) != NULL)
		content_fail(c, CONTENT_BAD_EOL);
	if (c->in_header)
		keep = content_header_line(c, p, n);
	if (keep && c->error == CONTENT_OK &&
	    buf_append(&c->out, p, n) != BUF_OK)
		content_fail(c, CONTENT_NOMEM);
}

/* A complete line must end in CRLF and hold no other CR. */
static void
content_checked_line(struct content *c, const char *p, size_t n)
{
	if (n < 2 || p[n - 2] != '\r' || memchr(p, '\r', n - 2) != NULL)
		content_fail(c, CONTENT_BAD_EOL);
	content_line(c, p, n);
}

/*
 * BDAT: split raw bytes into lines.  A line split across chunks waits in
 * c->line (at most one line long); a longer one is counted and dropped.
 */
void
content_bytes(struct content *c, const char *p, size_t n)
{
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;

		if (c->overlong) {
			c->size += take;
		} else if (c->line.len == 0 && lf != NULL) {
			content_checked_line(c, p, take);
		} else if (buf_append(&c->line, p, take) != BUF_OK) {
			c->overlong = 1;
			c->size += c->line.len + take;
			buf_reset(&c->line);
		} else if (lf != NULL) {
			content_checked_line(c, c->line.data, c->line.len);
			buf_reset(&c->line);
		}
		if (lf != NULL && c->overlong) {
			content_fail(c, CONTENT_LINE_LONG);
			c->overlong = 0;
		}
		p += take;
		n -= take;
	}
}

enum content_error
content_finish(struct content *c)
{
	/* BDAT content must end with CRLF like any other message. */
	if (c->line.len > 0 || c->overlong) {
		content_fail(c, CONTENT_BAD_EOL);
		buf_reset(&c->line);
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
	case CONTENT_LINE_LONG:
		return "500 5.5.2 Line too long (over 1000 octets)";
	case CONTENT_BAD_EOL:
		return "550 5.6.11 Bare CR, bare LF or NUL in message content "
		       "(SMTP smuggling protection)";
	case CONTENT_NOMEM:
		return "452 4.3.1 Insufficient system resources";
	}
	return "451 4.3.0 Internal error";
}
