/*
 * dsn.c - compose a delivery status notification (RFC 3464) for the queue
 * manager: a multipart/report (RFC 6522) from the null sender with
 *
 *   1. text/plain, us-ascii: what happened, for a person;
 *   2. message/delivery-status: the per-message and per-recipient fields,
 *      for software (RFC 3464 section 2, status codes RFC 3463);
 *   3. message/rfc822 (the whole original) or text/rfc822-headers (its
 *      header section only), chosen from RET (RFC 3461 4.3), the size of
 *      the original and whether it is 7-bit clean.
 *
 * A pure function: no I/O, no globals, the result is a fresh buffer.
 *
 * Invariants of the output, whatever the input: every line ends in CRLF,
 * there is no bare CR or LF and no NUL, no line is longer than 998 octets
 * (RFC 5322 2.1.1), everything is 7-bit, and the MIME boundary occurs
 * nowhere in the content.  Everything that comes from outside (the remote
 * server's reply, the original message, envelope strings) is bounded and
 * sanitised here rather than trusted, because a hostile server chooses its
 * reply and a hostile sender chooses the message that comes back to it.
 *
 * Why the DSN is always 7-bit: it is sent from the null sender to whatever
 * host serves the original sender, and we cannot know whether that host
 * offers 8BITMIME.  A DSN that cannot be relayed cannot be bounced either
 * (the null sender never gets a bounce), so it would be lost.  Therefore an
 * original containing 8-bit octets (or NUL) is returned as its header only,
 * with any 8-bit octets of the header replaced by '?'.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "queue/dsn.h"
#include "smtp/command.h"
#include "util/buf.h"
#include "util/fnv.h"

/*
 * The original is returned in full only up to this size: a bounce is
 * useful for its explanation and the original's header, and returning a
 * large message to a (possibly forged) sender doubles the traffic and can
 * be refused by the sender's server for size, losing the notification.
 * 1 MB holds ordinary text mail.
 */
#define DSN_FULL_MAX DSN_ORIGINAL_MAX

/*
 * The original's header section returned as text/rfc822-headers is cut
 * (at a line boundary) after this many octets.  The same as the default
 * MaxHeaderSize, so any header accepted under the defaults comes back
 * whole; a larger configured limit must not make the DSN unbounded.
 */
#define DSN_HEADER_MAX (256 * 1024)

/*
 * A remote server's reply as reported, after its whitespace is collapsed.
 * Real multi-line replies (policy explanations with URLs) stay well under
 * this; a hostile server's 10 KB of junk is cut, and the cut is marked.
 */
#define DSN_DIAG_MAX 2048

/* The original subject copied into ours, so that ours stays one line. */
#define DSN_SUBJECT_MAX 160

/* How much of the original Subject field is looked at while unfolding. */
#define DSN_SUBJECT_SCAN 1024

/* Envelope strings are bounded by the SMTP server already; re-bounded here
 * because this file must not rely on it for its 998-octet guarantee. */
#define DSN_ADDR_MAX SMTP_PATH_MAX
#define DSN_HOST_MAX 255
#define DSN_ENVID_MAX SMTP_ENVID_MAX
#define DSN_ORCPT_MAX SMTP_ORCPT_MAX
#define DSN_MSGID_MAX 255
#define DSN_ADDRTYPE_MAX 32

/*
 * xtext at most triples a string; the encoded ORCPT is cut (never inside
 * a +XX escape) at this many octets, so that its field fits in 998.
 */
#define DSN_XTEXT_OUT_MAX 900

/* RFC 5322 2.1.1: the hard line limit, and the width we wrap text at. */
#define DSN_LINE_MAX 998
#define DSN_WRAP 76

/*
 * A header word with no whitespace longer than this is split with a
 * folding break (which inserts a space when unfolded).  Lower than 998
 * minus the longest field name, so a folded line never exceeds the limit.
 */
#define DSN_HARD_SPLIT 900

/* Room for the fixed text, the headers and the MIME structure. */
#define DSN_FIXED_OUT (64 * 1024)

/*
 * Output of one recipient in the text and the delivery-status parts:
 * the diagnostic twice, wrapped (a few octets per line more), the
 * addresses (ORCPT xtext-encoded), the host, the dates and the prose.
 */
#define DSN_RCPT_OUT (3 * DSN_DIAG_MAX + 4 * DSN_XTEXT_OUT_MAX + 4096)

enum dsn_return {
	RETURN_FULL, /* message/rfc822 */
	RETURN_HDRS, /* RET=HDRS, or RET absent and nothing failed */
	RETURN_SIZE, /* full requested but the original is too big */
	RETURN_8BIT, /* full requested but the original is not 7-bit */
	RETURN_NONE, /* REQUIRETLS: nothing of the original (RFC 8689 5) */
};

#define CRLF "\r\n"

/* RFC 5322 3.3 date-time in UTC, independent of the locale. */
static void
dsn_date(char *out, size_t outsz, time_t t)
{
	static const char days[7][4] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year > 9999 - 1900) {
		time_t zero = 0;

		gmtime_r(&zero, &tm);
	}
	snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * Copy an envelope string (address, host, id) into a header or a
 * delivery-status field: at most max octets, anything outside printable
 * ASCII becomes '?' so that no control character or 8-bit octet gets in.
 * Space is kept only where the syntax allows it (quoted local parts).
 */
static void
put_safe(struct buf *b, const char *s, size_t max, int allow_space)
{
	char tmp[256];
	size_t n = 0;

	for (size_t i = 0; i < max && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f)
			tmp[n++] = (char)c;
		else if (c == ' ' && allow_space)
			tmp[n++] = ' ';
		else
			tmp[n++] = '?';
		if (n == sizeof(tmp)) {
			buf_append(b, tmp, n);
			n = 0;
		}
	}
	buf_append(b, tmp, n);
}

/*
 * RFC 3461 4: xtext.  With strict set, '+' and '=' are encoded as the
 * grammar requires (ENVID, ORCPT); without, only octets outside printable
 * ASCII are, so that Final-Recipient keeps "user+tag@x" readable while an
 * SMTPUTF8 address still cannot put 8-bit into the report.  Stops before
 * an escape that would take the output past outmax.
 */
static void
put_xtext(struct buf *b, const char *s, size_t max, int strict, size_t outmax)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t out = 0;

	for (size_t i = 0; i < max && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3];

		if (c > 0x20 && c < 0x7f &&
		    !(strict && (c == '+' || c == '='))) {
			if (out + 1 > outmax)
				break;
			buf_append(b, &s[i], 1);
			out++;
		} else {
			if (out + 3 > outmax)
				break;
			esc[0] = '+';
			esc[1] = hex[c >> 4];
			esc[2] = hex[c & 15];
			buf_append(b, esc, 3);
			out += 3;
		}
	}
}

/*
 * An envelope value the sender gave in xtext (ENVID, ORCPT's address),
 * stored decoded, as RFC 3464 wants it in Original-Envelope-Id and
 * Original-Recipient: the text itself (RFC 3461 4: xtext is only how the
 * SMTP parameter carries it), as Postfix and sendmail print it.  Only
 * when the decoded value holds anything but printable ASCII (a space, a
 * control character, 8-bit; Postfix refuses those at MAIL and RCPT, our
 * server only CR, LF and NUL) does it go out in strict xtext instead, the
 * sender's own form: a 7-bit DSN cannot carry those octets, and a value
 * half decoded could not be told from one fully decoded.
 */
static void
put_decoded(struct buf *b, const char *s, size_t max, size_t outmax)
{
	size_t n = 0;

	while (n < max && s[n] != '\0' && (unsigned char)s[n] > 0x20 &&
	       (unsigned char)s[n] < 0x7f)
		n++;
	if (n == max || s[n] == '\0')
		buf_append(b, s, n < outmax ? n : outmax);
	else
		put_xtext(b, s, max, 1, outmax);
}

/*
 * Append free text (a remote reply) as one line of words: CR, LF, TAB and
 * other control characters become spaces, runs of spaces collapse, 8-bit
 * octets become '?', and the result is cut at max octets with a visible
 * "..." so that the cut is not silent.  Multi-line SMTP replies become one
 * line ("550-5.7.1 a 550 5.7.1 b"), which is what Diagnostic-Code wants.
 */
static void
put_clean(struct buf *b, const char *s, size_t max)
{
	size_t out = 0;
	int space = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f) {
			space = out > 0;
			continue;
		}
		if (out + space + 1 > max) {
			buf_puts(b, " ...");
			return;
		}
		if (space)
			buf_append(b, " ", 1);
		out += (size_t)space;
		space = 0;
		buf_append(b, c < 0x80 ? (const char *)s : "?", 1);
		out++;
	}
}

/*
 * Append words (separated by single or multiple spaces) wrapped at width,
 * starting at column col; continuation lines begin with indent.  A word
 * longer than hard is split.  For header fields indent is whitespace, so
 * the breaks are RFC 5322 folding; for the text part hard is the width.
 * Ends with CRLF.
 */
static void
put_wrapped(struct buf *b, size_t col, const char *s, size_t width, size_t hard,
    const char *indent)
{
	size_t ilen = strlen(indent);
	int at_start = 1;

	if (s == NULL)
		s = ""; /* an empty buf has no data yet */
	for (;;) {
		size_t n;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		n = strcspn(s, " ");
		while (n > 0) {
			size_t piece = n < hard ? n : hard;

			if (!at_start && col + 1 + piece > width) {
				buf_puts(b, CRLF);
				buf_puts(b, indent);
				col = ilen;
			} else if (!at_start) {
				buf_append(b, " ", 1);
				col++;
			}
			buf_append(b, s, piece);
			col += piece;
			s += piece;
			n -= piece;
			at_start = 0;
			if (n > 0) {
				buf_puts(b, CRLF);
				buf_puts(b, indent);
				col = ilen;
				at_start = 1;
			}
		}
	}
	buf_puts(b, CRLF);
}

/*
 * The next line of the original from offset off: its length without the
 * terminator in *n, the offset after the terminator returned.  CRLF, a
 * bare CR and a bare LF all end a line, so that none of them can reach
 * the output except as CRLF; "\r\r\n" is two lines.
 */
static size_t
next_line(const char *s, size_t len, size_t off, size_t *n)
{
	size_t i = off;

	while (i < len && s[i] != '\r' && s[i] != '\n')
		i++;
	*n = i - off;
	if (i < len && s[i] == '\r')
		return i + 1 < len && s[i + 1] == '\n' ? i + 2 : i + 1;
	return i < len ? i + 1 : i;
}

/* True when the original may be returned as is in a 7-bit message. */
static int
is_7bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || (unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

/* Append n octets, with NUL (and, if no8bit, 8-bit octets) as '?'. */
static void
put_octets(struct buf *b, const char *s, size_t n, int no8bit)
{
	char tmp[512];
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		tmp[k++] = c == '\0' || (no8bit && c >= 0x80) ? '?' : (char)c;
		if (k == sizeof(tmp)) {
			buf_append(b, tmp, k);
			k = 0;
		}
	}
	buf_append(b, tmp, k);
}

/*
 * Append the original, normalised: every line re-terminated with CRLF,
 * lines over 998 octets split (in the header section the rest becomes a
 * folded continuation, so a split cannot create a new header field or end
 * the header early).  With headers_only, stop at the empty line ending
 * the header section, and after DSN_HEADER_MAX octets (at a line
 * boundary; *cut is set).
 */
static void
put_original(
    struct buf *b, const char *s, size_t len, int headers_only, int *cut)
{
	size_t off = 0, start = b->len;
	int in_header = 1;

	*cut = 0;
	while (off < len) {
		size_t n, next = next_line(s, len, off, &n);
		const char *p = s + off;
		int first = 1;

		if (n == 0 && in_header) {
			if (headers_only)
				break;
			in_header = 0;
		}
		/* The line as emitted: octets, a CRLF and a space per split. */
		if (headers_only &&
		    b->len - start + n + 3 * (n / (DSN_LINE_MAX - 1) + 1) >
		        DSN_HEADER_MAX) {
			*cut = 1;
			break;
		}
		do {
			int cont = !first && in_header;
			size_t room = DSN_LINE_MAX - (cont ? 1 : 0);
			size_t piece = n < room ? n : room;

			if (cont)
				buf_append(b, " ", 1);
			put_octets(b, p, piece, headers_only);
			buf_puts(b, CRLF);
			p += piece;
			n -= piece;
			first = 0;
		} while (n > 0);
		off = next;
	}
}

/* Is this token an RFC 2047 encoded-word (or meant to look like one)? */
static int
is_encoded_word(const char *w, size_t n)
{
	return n >= 2 && memmem(w, n, "=?", 2) != NULL;
}

/*
 * The original Subject, unfolded and made safe to copy into ours, into
 * out (NUL-terminated, at most DSN_SUBJECT_MAX plus " ..."), or "" when
 * there is none or it is not safe: raw 8-bit octets (we would have to
 * guess the charset and our header must be ASCII) or control characters
 * are left out altogether.  Encoded-words are ASCII and copied as they
 * are, but never cut: a cut encoded-word would not decode, so the cut is
 * made before it.
 */
static void
original_subject(const char *s, size_t len, char *out, size_t outsz)
{
	char raw[DSN_SUBJECT_SCAN + 1];
	size_t off = 0, rn = 0, on = 0;
	int found = 0, more = 0;

	out[0] = '\0';
	if (len > DSN_HEADER_MAX)
		len = DSN_HEADER_MAX;
	while (off < len) {
		size_t n, next = next_line(s, len, off, &n);
		const char *p = s + off;

		if (n == 0)
			break;
		if (found && (p[0] == ' ' || p[0] == '\t')) {
			/* Unfolding removes only the line break. */
			if (rn + n > DSN_SUBJECT_SCAN) {
				n = DSN_SUBJECT_SCAN - rn;
				more = 1;
			}
			memcpy(raw + rn, p, n);
			rn += n;
		} else if (found) {
			break;
		} else if (n >= 8 && strncasecmp(p, "Subject:", 8) == 0) {
			found = 1;
			n -= 8;
			if (n > DSN_SUBJECT_SCAN) {
				n = DSN_SUBJECT_SCAN;
				more = 1;
			}
			memcpy(raw, p + 8, n);
			rn = n;
		}
		off = next;
	}
	for (size_t i = 0; i < rn; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c >= 0x80 || c == 0x7f || (c < 0x20 && c != '\t'))
			return;
		if (c == '\t')
			raw[i] = ' ';
	}
	raw[rn] = '\0';
	for (const char *w = raw;;) {
		size_t n;

		while (*w == ' ')
			w++;
		if (*w == '\0')
			break;
		n = strcspn(w, " ");
		if (on + (on > 0) + n > DSN_SUBJECT_MAX) {
			if (on == 0 && !is_encoded_word(w, n)) {
				memcpy(out, w, DSN_SUBJECT_MAX);
				on = DSN_SUBJECT_MAX;
			}
			more = 1;
			break;
		}
		if (on > 0)
			out[on++] = ' ';
		memcpy(out + on, w, n);
		on += n;
		w += n;
	}
	if (more && on > 0 && on + 5 <= outsz) {
		memcpy(out + on, " ...", 4);
		on += 4;
	}
	out[on] = '\0';
}

/* RFC 3463 status syntax: class.subject.detail. */
static int
status_ok(const char *s)
{
	size_t n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	s += 2;
	for (int part = 0; part < 2; part++) {
		n = strspn(s, "0123456789");
		if (n < 1 || n > 3)
			return 0;
		s += n;
		if (part == 0 && *s++ != '.')
			return 0;
	}
	return *s == '\0';
}

static const char *
rcpt_status(const struct dsn_rcpt *r)
{
	if (status_ok(r->status))
		return r->status;
	switch (r->action) {
	case DSN_FAILED:
		return "5.0.0";
	case DSN_DELAYED:
		return "4.0.0";
	default:
		return "2.0.0";
	}
}

static const char *
action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	case DSN_DELIVERED:
		return "delivered";
	case DSN_RELAYED:
		return "relayed";
	}
	return "failed";
}

static const char *
str(const char *s)
{
	return s != NULL ? s : "";
}

/*
 * RFC 3464 2.3.6: the diagnostic type is "smtp" only when the text is an
 * SMTP reply; our own reasons (timeouts, TLS checks, no route) are not,
 * so they get an X- type rather than a false claim.
 */
static const char *
diag_type(const char *d)
{
	if (d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' &&
	    d[2] >= '0' && d[2] <= '9' &&
	    (d[3] == ' ' || d[3] == '-' || d[3] == '\0'))
		return "smtp";
	return "X-Sluice";
}

/* A paragraph of the text part: a blank line, then p wrapped; p emptied. */
static void
put_paragraph(struct buf *t, struct buf *p)
{
	buf_puts(t, CRLF);
	put_wrapped(t, 0, p->data, DSN_WRAP, DSN_WRAP, "");
	buf_reset(p);
}

/*
 * The text/plain part: a paragraph per recipient, wrapped.  Each is
 * composed in p first and checked once, with t, at the end.
 */
static int
text_part(struct buf *t, const struct dsn_msg *m, int any_failed,
    int any_delayed, enum dsn_return ret, int hdr_cut)
{
	struct buf p;
	char date[64];
	int rc;

	buf_init(&p, 4 * DSN_DIAG_MAX + 8 * DSN_XTEXT_OUT_MAX);
	buf_puts(&p, "This is the mail system at host ");
	put_safe(&p, str(m->reporting_mta), DSN_HOST_MAX, 0);
	buf_puts(&p, ".");
	put_wrapped(t, 0, p.data, DSN_WRAP, DSN_WRAP, "");
	buf_reset(&p);
	if (any_failed)
		buf_puts(&p, "Your message could not be delivered to one "
		             "or more recipients. The details follow.");
	else if (any_delayed)
		buf_puts(&p,
		    "Delivery of your message to one or more recipients has "
		    "been delayed. You do not need to do anything: the mail "
		    "system will keep trying to deliver it.");
	else
		buf_puts(&p, "This is a delivery report for your message, "
		             "as you requested.");
	put_paragraph(t, &p);

	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct dsn_rcpt *r = &m->rcpts[i];
		const char *host = str(r->remote_mta),
		           *diag = str(r->diagnostic);

		switch (r->action) {
		case DSN_FAILED:
			buf_puts(&p, "The message could not be delivered to ");
			break;
		case DSN_DELAYED:
			buf_puts(&p, "Delivery has been delayed to ");
			break;
		case DSN_DELIVERED:
			buf_puts(&p, "The message was delivered to ");
			break;
		case DSN_RELAYED:
			buf_puts(&p, "The message was relayed to ");
			break;
		}
		put_safe(&p, str(r->addr), DSN_ADDR_MAX, 0);
		buf_puts(&p, ".");
		if (*host != '\0' && *diag != '\0') {
			buf_puts(&p, " Remote server ");
			put_safe(&p, host, DSN_HOST_MAX, 0);
			buf_puts(&p, " said: ");
			put_clean(&p, diag, DSN_DIAG_MAX);
		} else if (*diag != '\0') {
			buf_puts(&p, " Reason: ");
			put_clean(&p, diag, DSN_DIAG_MAX);
		} else if (*host != '\0') {
			buf_puts(&p, " Remote server: ");
			put_safe(&p, host, DSN_HOST_MAX, 0);
			buf_puts(&p, ".");
		}
		buf_printf(&p, " (status %s).", rcpt_status(r));
		if (r->action == DSN_DELAYED && r->retry_until != 0) {
			dsn_date(date, sizeof(date), r->retry_until);
			buf_printf(&p,
			    " The mail system will keep trying until %s.",
			    date);
		} else if (r->action == DSN_RELAYED) {
			buf_puts(&p,
			    " The next server does not support delivery "
			    "notifications, so you will not be told more.");
		}
		put_paragraph(t, &p);
	}

	switch (ret) {
	case RETURN_FULL:
		buf_puts(&p, "The original message is attached.");
		break;
	case RETURN_HDRS:
		buf_puts(&p, "The header of the original message is "
		             "attached.");
		break;
	case RETURN_SIZE:
		buf_printf(&p,
		    "Only the header of the original message is attached: "
		    "the message is larger than %d KB.",
		    DSN_FULL_MAX / 1024);
		break;
	case RETURN_8BIT:
		buf_puts(&p, "Only the header of the original message is "
		             "attached: the message contains 8-bit data, "
		             "which this notification cannot carry.");
		break;
	case RETURN_NONE:
		buf_puts(&p,
		    "Nothing of the original message is attached: its sender "
		    "required TLS for it (REQUIRETLS), and this notification "
		    "may not travel the way the message had to.");
		break;
	}
	if (hdr_cut)
		buf_puts(&p, " The header was cut short: it is too long.");
	put_paragraph(t, &p);

	dsn_date(date, sizeof(date), m->arrival);
	buf_puts(&p, "Queue ID: ");
	put_safe(&p, str(m->queue_id), DSN_MSGID_MAX, 0);
	put_paragraph(t, &p);
	buf_printf(t, "Arrival date: %s" CRLF, date);
	rc = buf_error(&p) != BUF_OK ? buf_error(&p) : buf_error(t);
	buf_free(&p);
	return rc;
}

/* The message/delivery-status part, in the order of RFC 3464 2.2, 2.3. */
static int
status_part(struct buf *d, const struct dsn_msg *m)
{
	struct buf p;
	char date[64];
	int rc;

	if (m->envid != NULL && m->envid[0] != '\0') {
		buf_puts(d, "Original-Envelope-Id: ");
		put_decoded(d, m->envid, DSN_ENVID_MAX, DSN_XTEXT_OUT_MAX);
		buf_puts(d, CRLF);
	}
	dsn_date(date, sizeof(date), m->arrival);
	buf_puts(d, "Reporting-MTA: dns;");
	put_safe(d, str(m->reporting_mta), DSN_HOST_MAX, 0);
	buf_printf(d, CRLF "Arrival-Date: %s" CRLF, date);
	buf_puts(d, "X-Sluice-Queue-ID: ");
	put_safe(d, str(m->queue_id), DSN_MSGID_MAX, 0);
	buf_puts(d, CRLF);

	buf_init(&p, 2 * DSN_DIAG_MAX);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct dsn_rcpt *r = &m->rcpts[i];
		const char *orcpt = str(r->orcpt), *host = str(r->remote_mta);
		const char *diag = str(r->diagnostic);

		buf_puts(d, CRLF);
		if (*orcpt != '\0') {
			/* Stored decoded as "type;address". */
			const char *semi = strchr(orcpt, ';');
			size_t tlen = semi != NULL ? (size_t)(semi - orcpt) : 0;
			int typeok =
			    tlen > 0 && tlen <= DSN_ADDRTYPE_MAX &&
			    strspn(orcpt,
			        "abcdefghijklmnopqrstuvwxyz"
			        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
			        tlen;

			buf_puts(d, "Original-Recipient: ");
			if (typeok)
				buf_append(d, orcpt, tlen);
			else
				buf_puts(d, "rfc822");
			buf_puts(d, ";");
			put_decoded(d, typeok ? semi + 1 : orcpt, DSN_ORCPT_MAX,
			    DSN_XTEXT_OUT_MAX);
			buf_puts(d, CRLF);
		}
		buf_puts(d, "Final-Recipient: rfc822;");
		put_xtext(d, str(r->addr), DSN_ADDR_MAX, 0, DSN_XTEXT_OUT_MAX);
		buf_printf(d, CRLF "Action: %s" CRLF "Status: %s" CRLF,
		    action_name(r->action), rcpt_status(r));
		if (*host != '\0') {
			buf_puts(d, "Remote-MTA: dns;");
			put_safe(d, host, DSN_HOST_MAX, 0);
			buf_puts(d, CRLF);
		}
		buf_reset(&p);
		put_clean(&p, diag, DSN_DIAG_MAX);
		/* Only when something printable is left (found by fuzzing). */
		if (p.len > 0 && p.data != NULL) {
			const char *type = diag_type(diag);

			buf_printf(d, "Diagnostic-Code: %s; ", type);
			put_wrapped(d, strlen(type) + 19, p.data, DSN_WRAP,
			    DSN_HARD_SPLIT, " ");
		}
		if (r->last_attempt != 0) {
			dsn_date(date, sizeof(date), r->last_attempt);
			buf_printf(d, "Last-Attempt-Date: %s" CRLF, date);
		}
		if (r->action == DSN_DELAYED && r->retry_until != 0) {
			dsn_date(date, sizeof(date), r->retry_until);
			buf_printf(d, "Will-Retry-Until: %s" CRLF, date);
		}
	}
	rc = buf_error(&p) != BUF_OK ? buf_error(&p) : buf_error(d);
	buf_free(&p);
	return rc;
}

static int
occurs(const struct buf *b, const char *needle)
{
	return b->len > 0 &&
	       memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

/*
 * A boundary made of the queue id, the time and a hash of the content,
 * then a counter tried until the boundary occurs in none of the parts.
 * The hash makes a collision something a sender cannot plan (it would
 * have to put the hash of its message into the message); the counter
 * makes the result certain: all candidates have the same length, so each
 * offset in the content can match only one of them, and the loop ends
 * after at most the content's length tries.  Length <= 70 (RFC 2046).
 */
static void
choose_boundary(char *out, size_t outsz, const struct dsn_msg *m,
    const struct buf *parts[], size_t nparts)
{
	char qid[25];
	size_t n = 0;
	uint32_t h = FNV_32_INIT; /* the boundary depends on the content */

	for (const char *q = str(m->queue_id); *q != '\0' && n < 24; q++) {
		unsigned char c = (unsigned char)*q;

		if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z'))
			qid[n++] = (char)c;
	}
	qid[n] = '\0';
	for (size_t i = 0; i < nparts; i++)
		h = fnv_32(h, parts[i]->data != NULL ? parts[i]->data : "",
		    parts[i]->len);
	for (uint32_t k = 0;; k++) {
		int found = 0;

		snprintf(out, outsz, "=_sluice_%s_%08llx_%08lx_%08lx", qid,
		    (unsigned long long)m->now & 0xffffffffULL,
		    (unsigned long)h, (unsigned long)k);
		for (size_t i = 0; i < nparts && !found; i++)
			found = occurs(parts[i], out);
		if (!found || k == UINT32_MAX)
			return;
	}
}

static int
put_header(struct buf *o, const struct dsn_msg *m, int any_failed,
    int any_delayed, const char *boundary)
{
	char date[64], subj[DSN_SUBJECT_MAX + 8];
	const char *label;
	struct buf s;
	int rc;

	if (m->no_original)
		subj[0] = '\0';
	else
		original_subject(str(m->original),
		    m->original != NULL ? m->original_len : 0, subj,
		    sizeof(subj));
	label = any_failed    ? "Undeliverable"
	        : any_delayed ? "Delivery delayed"
	                      : "Delivered";
	buf_init(&s, sizeof(subj) + 32);
	if (subj[0] != '\0')
		buf_printf(&s, "%s: %s", label, subj);
	else
		buf_puts(&s, label);

	dsn_date(date, sizeof(date), m->now);
	buf_puts(o, "From: \"Mail Delivery System\" <MAILER-DAEMON@");
	put_safe(o, str(m->reporting_mta), DSN_HOST_MAX, 0);
	buf_puts(o, ">" CRLF);
	/* The null sender never gets a DSN; should one be asked for anyway,
	 * an empty group keeps the header valid. */
	if (m->sender == NULL || m->sender[0] == '\0') {
		buf_puts(o, "To: undisclosed-recipients:;" CRLF);
	} else {
		buf_puts(o, "To: <");
		put_safe(o, m->sender, DSN_ADDR_MAX, 1);
		buf_puts(o, ">" CRLF);
	}
	buf_puts(o, "Subject: ");
	put_wrapped(o, 9, s.data, DSN_WRAP, DSN_HARD_SPLIT, " ");
	buf_printf(o, "Date: %s" CRLF, date);
	buf_puts(o, "Message-ID: <");
	put_safe(o, str(m->message_id), DSN_MSGID_MAX, 0);
	buf_puts(o, ">" CRLF "Auto-Submitted: auto-replied" CRLF
	            "MIME-Version: 1.0" CRLF "Content-Type: multipart/report; "
	            "report-type=delivery-status;" CRLF);
	buf_printf(o, "\tboundary=\"%s\"" CRLF, boundary);
	buf_puts(o, CRLF "This is a MIME-encapsulated message." CRLF CRLF);
	rc = buf_error(&s) != BUF_OK ? buf_error(&s) : buf_error(o);
	buf_free(&s);
	return rc;
}

char *
dsn_compose(const struct dsn_msg *m, size_t *len)
{
	struct buf out, text, status, orig;
	const struct buf *parts[3];
	const char *original = m->original != NULL ? m->original : "";
	size_t olen = m->original != NULL ? m->original_len : 0;
	size_t per = DSN_FIXED_OUT + m->nrcpts * DSN_RCPT_OUT;
	enum dsn_return ret;
	char boundary[80];
	int any_failed = 0, any_delayed = 0, want_full, hdr_cut = 0, rc;
	char *result = NULL;

	if (m->nrcpts > (SIZE_MAX / 4 - DSN_FIXED_OUT) / DSN_RCPT_OUT)
		return NULL;
	for (size_t i = 0; i < m->nrcpts; i++) {
		any_failed |= m->rcpts[i].action == DSN_FAILED;
		any_delayed |= m->rcpts[i].action == DSN_DELAYED;
	}

	/*
	 * RFC 3461 4.3: RET=FULL or RET=HDRS as asked; without RET the full
	 * message comes back only when something failed (the sender may need
	 * to resend it), while a delay or success notice needs only enough
	 * to identify the message.
	 */
	want_full =
	    m->ret == SMTP_RET_FULL || (m->ret != SMTP_RET_HDRS && any_failed);
	if (m->no_original)
		ret = RETURN_NONE;
	else if (!want_full)
		ret = RETURN_HDRS;
	else if (olen > DSN_FULL_MAX || m->original_size > DSN_FULL_MAX)
		ret = RETURN_SIZE;
	else if (!is_7bit(original, olen))
		ret = RETURN_8BIT;
	else
		ret = RETURN_FULL;

	buf_init(&out, 3 * per + 2 * DSN_FULL_MAX + 2 * DSN_HEADER_MAX);
	buf_init(&text, per);
	buf_init(&status, per);
	/* Normalising bare LFs to CRLF at most doubles the original. */
	buf_init(&orig, 2 * DSN_FULL_MAX + DSN_HEADER_MAX + 4096);

	if (ret != RETURN_NONE)
		put_original(
		    &orig, original, olen, ret != RETURN_FULL, &hdr_cut);
	if (buf_error(&orig) != BUF_OK ||
	    text_part(&text, m, any_failed, any_delayed, ret, hdr_cut) !=
	        BUF_OK ||
	    status_part(&status, m) != BUF_OK)
		goto out;

	parts[0] = &text;
	parts[1] = &status;
	parts[2] = &orig;
	choose_boundary(boundary, sizeof(boundary), m, parts, 3);

	rc = put_header(&out, m, any_failed, any_delayed, boundary);
	buf_printf(&out,
	    "--%s" CRLF "Content-Description: Notification" CRLF
	    "Content-Type: text/plain; charset=us-ascii" CRLF CRLF,
	    boundary);
	buf_append(&out, text.data, text.len);
	buf_printf(&out,
	    CRLF "--%s" CRLF "Content-Description: Delivery report" CRLF
	         "Content-Type: message/delivery-status" CRLF CRLF,
	    boundary);
	buf_append(&out, status.data, status.len);
	/* RFC 6522: the third part (the original) is optional. */
	if (ret != RETURN_NONE) {
		buf_printf(&out,
		    CRLF "--%s" CRLF "Content-Description: %s" CRLF
		         "Content-Type: %s" CRLF CRLF,
		    boundary,
		    ret == RETURN_FULL ? "Original message"
		                       : "Original message header",
		    ret == RETURN_FULL ? "message/rfc822"
		                       : "text/rfc822-headers");
		buf_append(&out, orig.data, orig.len);
	}
	buf_printf(&out, CRLF "--%s--" CRLF, boundary);
	if (rc != BUF_OK || buf_error(&out) != BUF_OK)
		goto out;
	result = buf_steal(&out, len);
out:
	buf_free(&out);
	buf_free(&text);
	buf_free(&status);
	buf_free(&orig);
	return result;
}
