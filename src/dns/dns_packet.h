/*
 * dns_packet.h - one DNS response in wire format (RFC 1035 4.1), read into
 * what the resolver uses: the response code, the records of the type asked
 * at the end of the CNAME chain, that name, and a TTL.
 *
 * libunbound's event mode hands every answer over as the DNS message it
 * would send a client (names compressed); this turns it into the fields
 * the thread mode's struct ub_result had, with the same meaning (see
 * dns_packet.c).  The packet is hostile input: every length, count and
 * compression pointer is checked, and anything malformed is an error,
 * never a read outside the packet.
 */
#ifndef SLUICE_DNS_PACKET_H
#define SLUICE_DNS_PACKET_H

#include <stddef.h>

/* Records of the type asked kept from one answer; more are ignored. */
#define DNS_PACKET_RR_MAX 256
/*
 * How long libunbound keeps an answer with no SOA to bound it (its
 * NORR_TTL, util/data/msgreply.h): the TTL a negative answer without one
 * gets here, so that what the resolver keeps lasts as long as
 * libunbound's cache would answer the same.
 */
#define DNS_PACKET_NORR_TTL 5
/* CNAMEs followed from the name asked (libunbound itself stops at 11). */
#define DNS_PACKET_CNAME_MAX 16

struct dns_answer {
	int rcode;    /* the header's, or the resolver's when it failed */
	int nxdomain; /* rcode is NXDOMAIN */
	int havedata; /* n > 0 */
	int secure;   /* validated (set by the resolver, not the parser) */
	int bogus;    /* validation failed (likewise) */
	char why_bogus[160]; /* libunbound's reason, when bogus */
	/* why the answer is a failure: malformed (a static string), or
	 * NULL */
	const char *error;
	/* the name the answer is for after CNAMEs, in text without the
	 * final dot; "" when it is the name asked */
	char canon[1024];
	/*
	 * Positive answers: the smallest TTL of the answer section (the
	 * records and the CNAMEs that led to them); negative ones: the
	 * SOA's TTL or MINIMUM, whichever is smaller (RFC 2308 5), and
	 * without an SOA (NOERROR or NXDOMAIN) DNS_PACKET_NORR_TTL or a
	 * CNAME's TTL if smaller, as libunbound keeps such an answer; else 0.
	 */
	unsigned ttl;
	size_t n;
	/* RDATA of each record (data[i], len[i] for i < n; NULL when n is
	 * 0), names in it (MX, PTR, CNAME, NS) written out uncompressed, as
	 * libunbound's ub_result had them.  Sized to the answer, in buf: a
	 * fixed array of DNS_PACKET_RR_MAX was 4 KB cleared for every
	 * answer, four answers per new destination (issue 19) */
	const unsigned char **data;
	size_t *len;
	unsigned char
	    *buf; /* holds data[], len[] and what data[] points into */
};

/*
 * Read pkt[0..len), the answer to a question of type qtype, class IN.
 * NULL when out of memory; otherwise an answer to free with
 * dns_answer_free().  A malformed packet (truncated, a compression loop
 * or forward pointer, a count the packet cannot hold, a question that is
 * not of qtype and IN) gives rcode SERVFAIL, no records, and *why (a
 * static string for logs); *why is NULL for a well-formed packet.
 */
struct dns_answer *dns_packet_parse(
    const unsigned char *pkt, size_t len, int qtype, const char **why);
/* An answer with only a response code (a failed resolution). */
struct dns_answer *dns_answer_rcode(int rcode);
void dns_answer_free(struct dns_answer *);

#endif
