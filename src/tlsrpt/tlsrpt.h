/*
 * tlsrpt.h - SMTP TLS Reporting (RFC 8460) in the daemon: what every
 * outbound session met is recorded per policy domain and UTC day
 * (tlsrpt_store.c); once a day each domain that publishes an
 * _smtp._tls record gets the day's report at each of its rua addresses
 * (tlsrpt_send.c); `sluicectl tls-report` prints the report that would
 * be sent.  This file assembles a report for one domain and day:
 * organization, contact, report id, and the JSON.
 */
#ifndef SLUICE_TLSRPT_H
#define SLUICE_TLSRPT_H

#include <stddef.h>

struct buf;
struct conf;
struct daemon;
struct tlsrpt_report;
struct tlsrpt_store;

/*
 * Who we are in a report: organization-name (TlsReportingOrganization,
 * or our Fqdn when it is not set), contact-info (TlsReportingContact, or
 * postmaster@Fqdn) and the submitter domain (the contact's domain when
 * it is an address, else the Fqdn).
 */
struct tlsrpt_who {
	char organization[256];
	char contact[320];
	char submitter[256];
	char from[320]; /* our address for mailto: reports */
};
void tlsrpt_who(const struct daemon *, struct tlsrpt_who *);

/*
 * The report id of one domain and day, the same every time it is made
 * (so a retry or a preview names the same report): "YYYYMMDD.HASH.DOMAIN@
 * SUBMITTER", which is also a valid Message-ID-like Report-ID.
 */
void tlsrpt_report_id(const char *day, const char *domain,
    const char *submitter, char *out, size_t len);

/*
 * The report of one domain and day from the store (flushed before) as
 * JSON into out; 0 when there is one, 1 when there were no sessions, -1
 * on error.
 */
int tlsrpt_make(struct daemon *, struct tlsrpt_store *, const char *day,
    const char *domain, int pretty, struct buf *out);

#endif
