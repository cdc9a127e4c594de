/*
 * tlsa.h - the DANE TLSA records of one next hop (RFC 6698, 7671, 7672),
 * looked up over the daemon's validating resolver.
 *
 * What the SMTP client needs to know about a host before it connects:
 * does DANE apply (the TLSA RRset is DNSSEC-secure), and with which
 * records; or is there secure proof that the host has none; or is the
 * host unsigned (no DANE); or did the look-up fail or fail validation
 * (then RFC 7672 2.2 says: do not use that host at all).
 */
#ifndef SLUICE_TLSA_H
#define SLUICE_TLSA_H

#include <stddef.h>
#include <stdint.h>

struct resolver;

/* Records kept per host: a key rollover publishes two or three. */
#define TLSA_RR_MAX 16
/* Bytes of one record's data: a full certificate (matching type 0). */
#define TLSA_DATA_MAX 4096

enum tlsa_status {
	TLSA_SECURE,   /* a validated TLSA RRset: DANE applies */
	TLSA_NONE,     /* validated proof that there are no records */
	TLSA_INSECURE, /* unsigned: DANE does not apply to this host */
	TLSA_BOGUS,    /* validation failed: do not use this host */
	TLSA_TEMPFAIL, /* the look-up failed: do not use this host now */
};

struct tlsa_rr {
	uint8_t usage, selector, mtype;
	size_t len;
	unsigned char *data; /* len bytes, owned by the result */
};

struct tlsa_result {
	enum tlsa_status status;
	/* The TLSA base domain (RFC 7671 7): the CNAME-expanded host name
	 * when it has records, else the host name as the MX gave it. */
	char base[256];
	char qname[300]; /* the name looked up last: "_25._tcp.BASE" */
	size_t n;        /* records (usable or not), at most TLSA_RR_MAX */
	size_t nusable;  /* of which DANE-TA(2) or DANE-EE(3) with a known
	                    selector and matching type (RFC 7672 3.1) */
	struct tlsa_rr rr[TLSA_RR_MAX];
	char why[512]; /* BOGUS and TEMPFAIL */
};

/*
 * The receiver owns the result (tlsa_result_free); it runs on the event
 * loop, never inside tlsa_lookup().  host is the name the MX record (or
 * the smart host setting) gave, canon its CNAME-expanded name ("" or
 * NULL when none): RFC 7672 2.2.2 looks at the expanded name first and
 * falls back to the original when the expanded one securely has none.
 * Only ask for hosts whose address records were secure (RFC 7672 2.2).
 */
typedef void (*tlsa_fn)(void *arg, struct tlsa_result *);
struct tlsa_query;

struct tlsa_query *tlsa_lookup(struct resolver *, const char *host,
    const char *canon, unsigned port, tlsa_fn, void *arg);
/* Before the callback only; never after resolver_free(). */
void tlsa_cancel(struct tlsa_query *);
void tlsa_result_free(struct tlsa_result *);

/* The pure parts, for the unit tests and the tools. */

/* "_PORT._tcp.HOST"; -1 when it does not fit. */
int tlsa_qname(const char *host, unsigned port, char *out, size_t len);
/*
 * One TLSA RDATA into rr (data malloc'ed: free it, or let the result
 * that holds rr free it); -1 for anything shorter than 4 octets or with
 * more data than TLSA_DATA_MAX, or out of memory.
 */
int tlsa_rr_parse(const unsigned char *rdata, size_t len, struct tlsa_rr *);
/* RFC 7672 3.1: DANE-TA(2) or DANE-EE(3), selector 0 or 1, matching type
 * 0, 1 (32 octets) or 2 (64 octets). */
int tlsa_rr_usable(const struct tlsa_rr *);
/* "3 1 1 0c72...": the record as a zone file writes it (data in hex). */
void tlsa_rr_format(const struct tlsa_rr *, char *out, size_t len);
/* "secure", "none", "insecure", "bogus", "temporary failure". */
const char *tlsa_status_name(enum tlsa_status);

#endif
