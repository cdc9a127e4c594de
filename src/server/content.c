/*
 * content.c - validation and header filtering of received content.
 *
 * Sits between the session's DATA/BDAT readers and the spool: every byte
 * of every message passes through here once.  Header lines are stored in
 * the header buffer and checked in place when their LF arrives, since
 * the header section is filtered line by line.  Body bytes are checked as
 * they stream past, with one byte of state (was the last byte a CR?), so
 * a line may be longer than any read and needs no buffer of its own:
 * they go to the stage handed to the sink (the spool's body file) in
 * pieces, or, without a sink, after the header.
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
#include "util/crlf_scan.h"

#define CONTENT_ORG_PREFIX "x-sluice-organization-"

void
content_init(
    struct content *c, const struct content_limits *lim, size_t memory_max)
{
	memset(c, 0, sizeof(*c));
	c->lim = *lim;
	buf_init(&c->out, memory_max);
	c->in_header = 1;
	c->body_bol = 1;
}

void
content_set_sink(struct content *c, const struct content_sink *sink,
    size_t stage_max, size_t piece_max)
{
	c->sink = *sink;
	c->stage_max = stage_max;
	c->piece_max = piece_max > stage_max ? piece_max : stage_max;
	/* Room for the CRLF content_finish() may add to the last line. */
	buf_init(&c->stage, stage_max + 2);
}

void
content_free(struct content *c)
{
	buf_free(&c->out);
	buf_free(&c->stage);
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

/*
 * Body bytes, checked as they stream past, any number of lines at once:
 * only CRLF ends a line (a CR must be followed by LF, an LF preceded by
 * CR, across calls too) and no NUL.  One crlf_scan() pass, so a body
 * costs a few instructions per 16 octets, whatever its lines' length;
 * none when the caller has scanned these very bytes (content_clean_bytes).
 */
static void
content_body_check(struct content *c, const char *p, size_t n)
{
	struct crlf_scan r;
	size_t from = 0;

	if (!c->clean) {
		if (c->body_cr) {
			if (p[0] != '\n') {
				content_fail(c, CONTENT_BAD_EOL);
				return;
			}
			from = 1; /* the LF of a CRLF split between calls */
		}
		crlf_scan(p + from, n - from, SIZE_MAX, 0, &r);
		if (r.why != CRLF_END) {
			content_fail(c, CONTENT_BAD_EOL);
			return;
		}
	}
	c->body_cr = p[n - 1] == '\r';
	c->body_bol = p[n - 1] == '\n';
}

/* The stage is full: hand it to the sink. */
static void
content_flush(struct content *c)
{
	switch (c->sink.put(c->sink.arg, &c->stage)) {
	case 0:
		c->spilled = 1;
		c->blocked = 0;
		/* the buffer handed back is staged up to the larger size */
		c->stage_max = c->piece_max;
		c->stage.max = c->piece_max + 2;
		break;
	case 1:
		c->blocked = 1;
		break;
	default:
		c->blocked = 0;
		content_fail(c, CONTENT_STORE);
		break;
	}
}

/*
 * Store body bytes in the stage, handing it over each time it fills;
 * returns the bytes taken (fewer only when the sink is busy).
 */
static size_t
content_stage(struct content *c, const char *p, size_t n)
{
	size_t taken = 0;

	while (taken < n && c->error == CONTENT_OK) {
		size_t room, k;

		if (c->stage.len >= c->stage_max) {
			content_flush(c);
			if (c->blocked)
				break;
			continue;
		}
		room = c->stage_max - c->stage.len;
		k = n - taken < room ? n - taken : room;
		if (buf_append(&c->stage, p + taken, k) != BUF_OK) {
			content_fail(c, CONTENT_NOMEM);
			break;
		}
		taken += k;
	}
	if (c->error == CONTENT_OK && c->stage.len >= c->stage_max)
		content_flush(c); /* early, so the writer starts sooner */
	return c->error == CONTENT_OK ? taken : n;
}

/*
 * Store n bytes: in the header section one line (only the last byte may
 * be an LF), in the body any number of lines.  Returns the bytes taken.
 * After an error everything is taken and dropped: the session only looks
 * for the end.
 */
static size_t
content_store(struct content *c, const char *p, size_t n)
{
	size_t taken = n;

	if (c->error != CONTENT_OK)
		return n;
	if (c->in_header) {
		c->header_bytes += n;
		if (c->header_bytes > c->lim.max_header) {
			content_fail(c, CONTENT_HEADER_BIG);
			return n;
		}
		if (buf_append(&c->out, p, n) != BUF_OK) {
			content_fail(c, CONTENT_NOMEM);
			return n;
		}
		if (p[n - 1] == '\n')
			content_end_line(c);
		return n;
	}
	if (c->sink.put != NULL) {
		if (c->blocked)
			return 0;
		taken = content_stage(c, p, n);
	} else if (buf_append(&c->out, p, n) != BUF_OK) {
		content_fail(c, CONTENT_NOMEM);
		return n;
	}
	if (c->error == CONTENT_OK && taken > 0)
		content_body_check(c, p, taken);
	return taken;
}

size_t
content_line_part(struct content *c, const char *p, size_t n)
{
	size_t taken;

	if (n == 0)
		return 0;
	if (c->size + n > c->lim.max_size) {
		c->size += n;
		content_fail(c, CONTENT_TOO_BIG);
		return n;
	}
	taken = content_store(c, p, n);
	c->size += taken;
	return taken;
}

size_t
content_bytes(struct content *c, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		/* The header line by line, the body (or after an error,
		 * everything) in one go. */
		const char *lf = c->in_header && c->error == CONTENT_OK
		                     ? memchr(p + done, '\n', n - done)
		                     : NULL;
		size_t take =
		    lf != NULL ? (size_t)(lf - (p + done)) + 1 : n - done;
		size_t got = content_line_part(c, p + done, take);

		done += got;
		if (got < take)
			break;
	}
	return done;
}

size_t
content_clean_bytes(struct content *c, const char *p, size_t n)
{
	size_t taken;

	c->clean = 1;
	taken = content_bytes(c, p, n);
	c->clean = 0;
	return taken;
}

int
content_blocked(const struct content *c)
{
	return c->blocked && c->error == CONTENT_OK;
}

void
content_resume(struct content *c)
{
	if (c->blocked && c->error == CONTENT_OK)
		content_flush(c);
}

enum content_error
content_finish(struct content *c)
{
	/*
	 * BDAT content need not end with CRLF (RFC 3030 does not ask for
	 * it, and Postfix and Exim accept it); what we store always does.
	 * A CR left at the very end becomes a bare CR, as anywhere else.
	 */
	if (c->error == CONTENT_OK && c->in_header &&
	    c->out.len > c->line_start) {
		if (buf_append(&c->out, "\r\n", 2) != BUF_OK)
			content_fail(c, CONTENT_NOMEM);
		else
			content_end_line(c);
	} else if (c->error == CONTENT_OK && !c->in_header && !c->body_bol) {
		if (c->body_cr)
			content_fail(c, CONTENT_BAD_EOL);
		else if (buf_append(c->sink.put != NULL ? &c->stage : &c->out,
		             "\r\n", 2) != BUF_OK)
			content_fail(c, CONTENT_NOMEM);
		c->body_bol = 1;
	}
	/* Nothing went to the sink: the body joins the header (inline). */
	if (c->error == CONTENT_OK && c->sink.put != NULL && !c->spilled &&
	    c->stage.len > 0) {
		if (buf_append(&c->out, c->stage.data, c->stage.len) != BUF_OK)
			content_fail(c, CONTENT_NOMEM);
		c->stage.len = 0;
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
	case CONTENT_STORE:
		return "451 4.3.0 Failed to store the message; try again later";
	}
	return "451 4.3.0 Internal error";
}
