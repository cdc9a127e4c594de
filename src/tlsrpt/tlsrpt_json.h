/*
 * tlsrpt_json.h - one SMTP TLS report (RFC 8460 section 4) as a value
 * and as the JSON text that is sent: the policies applied to one domain
 * over one UTC day, each with its successful and failed sessions and the
 * details of the failures.
 */
#ifndef SLUICE_TLSRPT_JSON_H
#define SLUICE_TLSRPT_JSON_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* Failure detail rows of one policy at most; the rest are only counted. */
#define TLSRPT_DETAILS_MAX 1000

struct tlsrpt_failure {
	char result[32]; /* an RFC 8460 result type */
	char sending_ip[64];
	char mx_host[256];     /* receiving-mx-hostname */
	char mx_helo[256];     /* receiving-mx-helo, "" when unknown */
	char receiving_ip[64]; /* "" when unknown */
	char reason[256];      /* failure-reason-code, "" when none */
	uint64_t count;
};

struct tlsrpt_policy {
	char type[24];    /* "sts", "tlsa", "no-policy-found" */
	char domain[256]; /* policy-domain */
	char *strings;    /* policy-string lines joined by \n, or NULL */
	char *mx_hosts;   /* mx-host patterns joined by \n, or NULL */
	uint64_t ok, failed;
	struct tlsrpt_failure *details;
	size_t ndetails;
};

struct tlsrpt_report {
	const char *organization; /* organization-name */
	const char *contact;      /* contact-info */
	char report_id[300];
	char day[11]; /* "YYYY-MM-DD", UTC */
	struct tlsrpt_policy *policies;
	size_t npolicies;
};

/*
 * The report as RFC 8460 JSON into out (compact, or indented for people).
 * Strings are escaped as RFC 8259 says; bytes that are not printable
 * ASCII are written as \u escapes, so the text is plain ASCII.  -1 when
 * out is full.
 */
int tlsrpt_json(const struct tlsrpt_report *, int pretty, struct buf *out);

/* Free what a report owns (its policies' arrays and strings). */
void tlsrpt_report_clear(struct tlsrpt_report *);

/* start and end of a UTC day: 00:00:00 and 23:59:59; -1 for a bad day. */
int tlsrpt_day_range(const char *day, int64_t *start, int64_t *end);

#endif
