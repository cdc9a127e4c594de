/*
 * tlsrpt_mail.h - a TLS report as an email message (RFC 8460 5.3): a
 * multipart/report; report-type="tlsrpt" with a short text part and the
 * gzip'd JSON as application/tlsrpt+gzip, addressed to a mailto: rua.
 */
#ifndef SLUICE_TLSRPT_MAIL_H
#define SLUICE_TLSRPT_MAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

struct tlsrpt_mail {
	const char *from;      /* our reporting address (the contact) */
	const char *to;        /* the rua's address, without "mailto:" */
	const char *domain;    /* the policy domain: TLS-Report-Domain */
	const char *submitter; /* our domain: TLS-Report-Submitter */
	const char *report_id; /* "id@host", the Subject's Report-ID */
	const char *message_id;
	int64_t start, end; /* the report's day, for the file name */
	time_t now;
	const void *gzip; /* the report, gzip'd */
	size_t gzip_len;
};

/*
 * The whole message, CRLF lines (under 998 octets), 7-bit (the
 * attachment in base64).  It carries "TLS-Required: No" (RFC 8689 3):
 * a report about a domain's broken TLS must still reach it.  -1 when out
 * is full or a field would break the header (CR, LF, NUL).
 */
int tlsrpt_mail_compose(const struct tlsrpt_mail *, struct buf *out);

/* The address of a mailto: URI, percent-decoded; -1 when unusable. */
int tlsrpt_mailto_addr(const char *uri, char *out, size_t len);

#endif
