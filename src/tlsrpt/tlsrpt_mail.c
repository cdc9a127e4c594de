/*
 * tlsrpt_mail.c - the email form of a TLS report (see tlsrpt_mail.h).
 * Pure; tlsrpt_send.c stores the result in the queue as a new message to
 * the rua address, so the queue delivers it, retries it and returns it
 * like any other.
 *
 * RFC 8460 5.3: Subject "Report Domain: D Submitter: S Report-ID: <id>",
 * TLS-Report-Domain and TLS-Report-Submitter header fields, a
 * multipart/report with report-type="tlsrpt", the text first, the report
 * second as application/tlsrpt+gzip named
 * SUBMITTER!DOMAIN!BEGIN!END.json.gz.  Everything that comes from DNS
 * (the domain, the address) was checked by tlsrpt_txt.c; it is checked
 * again here for the header's sake, and anything with a control
 * character is refused rather than written.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt/tlsrpt_mail.h"
#include "util/base64.h"
#include "util/buf.h"

#define CRLF "\r\n"

static int
tlsrpt_mail_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* Base64 lines of 76 characters (RFC 2045 6.8): 57 octets each. */
static int
tlsrpt_base64(struct buf *out, const unsigned char *p, size_t len)
{
	char line[BASE64_LEN(57) + 1];

	for (size_t i = 0; i < len; i += 57) {
		size_t n = len - i < 57 ? len - i : 57;
		int k = base64_encode(p + i, n, line, sizeof(line));

		if (k < 0 || buf_append(out, line, (size_t)k) != BUF_OK ||
		    buf_puts(out, CRLF) != BUF_OK)
			return -1;
	}
	return 0;
}

int
tlsrpt_mailto_addr(const char *uri, char *out, size_t len)
{
	size_t n = 0;

	if (strncasecmp(uri, "mailto:", 7) != 0)
		return -1;
	for (const char *p = uri + 7; *p != '\0'; p++) {
		int c = (unsigned char)*p;

		if (c == '%') {
			unsigned v;

			if (sscanf(p + 1, "%2x", &v) != 1 || p[1] == '\0' ||
			    p[2] == '\0')
				return -1;
			c = (int)v;
			p += 2;
		}
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' ||
		    n + 1 >= len)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return n > 2 && strchr(out, '@') != NULL ? 0 : -1;
}

int
tlsrpt_mail_compose(const struct tlsrpt_mail *m, struct buf *out)
{
	char date[64], boundary[80];
	struct tm tm;
	int rc;

	if (!tlsrpt_mail_clean(m->from) || !tlsrpt_mail_clean(m->to) ||
	    !tlsrpt_mail_clean(m->domain) || !tlsrpt_mail_clean(m->submitter) ||
	    !tlsrpt_mail_clean(m->report_id) ||
	    !tlsrpt_mail_clean(m->message_id))
		return -1;
	gmtime_r(&m->now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* The parts are a fixed text and base64: a boundary with "=_" can
	 * occur in neither. */
	snprintf(boundary, sizeof(boundary), "=_sluice_tlsrpt_%lld_%lld",
	    (long long)m->start, (long long)m->now);
	rc = buf_printf(out,
	    "From: <%s>" CRLF "To: <%s>" CRLF "Date: %s" CRLF
	    "Message-ID: <%s>" CRLF "Subject: Report Domain: %s" CRLF
	    " Submitter: %s" CRLF " Report-ID: <%s>" CRLF
	    "TLS-Report-Domain: %s" CRLF "TLS-Report-Submitter: %s" CRLF
	    "TLS-Required: No" CRLF "Auto-Submitted: auto-generated" CRLF
	    "MIME-Version: 1.0" CRLF
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";" CRLF
	    "\tboundary=\"%s\"" CRLF CRLF
	    "This is a multipart message in MIME format." CRLF CRLF,
	    m->from, m->to, date, m->message_id, m->domain, m->submitter,
	    m->report_id, m->domain, m->submitter, boundary);
	if (rc != BUF_OK)
		return -1;
	rc = buf_printf(out,
	    "--%s" CRLF "Content-Type: text/plain; charset=us-ascii" CRLF
	    "Content-Transfer-Encoding: 7bit" CRLF CRLF
	    "This is an aggregate TLS report (RFC 8460) from %s" CRLF
	    "about the SMTP sessions it made to %s." CRLF
	    "The report is attached, gzip-compressed JSON." CRLF CRLF,
	    boundary, m->submitter, m->domain);
	if (rc != BUF_OK)
		return -1;
	rc = buf_printf(out,
	    "--%s" CRLF "Content-Type: application/tlsrpt+gzip" CRLF
	    "Content-Transfer-Encoding: base64" CRLF
	    "Content-Disposition: attachment;" CRLF
	    "\tfilename=\"%s!%s!%lld!%lld.json.gz\"" CRLF CRLF,
	    boundary, m->submitter, m->domain, (long long)m->start,
	    (long long)m->end);
	if (rc != BUF_OK || tlsrpt_base64(out, m->gzip, m->gzip_len) < 0 ||
	    buf_printf(out, CRLF "--%s--" CRLF, boundary) != BUF_OK)
		return -1;
	return 0;
}
