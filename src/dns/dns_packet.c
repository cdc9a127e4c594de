/*
 * dns_packet.c - a DNS response in wire format read into struct dns_answer
 * (RFC 1035 4.1; names and compression 3.1 and 4.1.4).
 *
 * Why: libunbound's event mode (resolver.c) hands each answer over as the
 * DNS message it would send a client, not as a struct ub_result.  This
 * file gives the resolver the same fields ub_result had, with
 * libunbound's meaning: the records are those of the type asked at the
 * name the CNAME chain from the question ends at (libunbound puts the
 * chain in the answer section), canon is that name when it is another,
 * and the TTL is the smallest of the answer section (RFC 2308 5 for
 * negative answers: the SOA's TTL or MINIMUM; without an SOA, the 5 s
 * libunbound's cache keeps such an answer, where ub_result said 0: only
 * the resolver's caches read it).  Names inside the RDATA of
 * MX, PTR, CNAME and NS records (the types RFC 3597 4 lets a server
 * compress) are written out uncompressed, as ub_result had them, so the
 * resolver's strict name checks (no pointers) stay as they are.
 *
 * The packet is hostile input, even from our own resolver library:
 * - every read is checked against the packet's length first;
 * - a compression pointer must point before the start of the run of
 *   labels it ends (so every jump goes further back and the walk ends),
 *   and a name stops at 255 octets and DNS_PACKET_NAME_JUMPS jumps;
 * - the section counts must be met by the packet (every record read and
 *   bounds-checked), records of another class are not the answer;
 * - the CNAME chain stops at DNS_PACKET_CNAME_MAX, records kept at
 *   DNS_PACKET_RR_MAX.
 * Anything malformed is the whole answer's failure (SERVFAIL, a reason),
 * which the resolver turns into a temporary failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_packet.h"

#define DNS_HEADER_LEN 12
#define DNS_NAME_MAX 255
/* Pointer jumps in one name; each goes further back, so this is spare. */
#define DNS_PACKET_NAME_JUMPS 128

#define DNS_CLASS_IN 1
#define DNS_TYPE_NS 2
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SOA 6
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3

/* One resource record's fixed fields, where its parts are. */
struct dns_rr {
	size_t owner; /* offset of its (possibly compressed) owner name */
	unsigned type, rclass;
	uint32_t ttl;
	size_t rdoff, rdlen;
};

/* The sections as read: where each record of the answer section starts. */
struct dns_msg {
	const unsigned char *p;
	size_t len;
	unsigned qtype;
	unsigned char qname[DNS_NAME_MAX];
	size_t qnamelen;
	unsigned an, ns, ar;
	size_t an_start, ns_start; /* offsets of the first record of each */
};

static unsigned
dns_u16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
dns_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * The name at off, uncompressed, into out (DNS_NAME_MAX octets, lengths
 * and labels, ending with the root's 0); *end is where the name ends in
 * place (after its first pointer, or its root label).  -1 if malformed.
 */
static int
dns_name(const unsigned char *p, size_t len, size_t off, unsigned char *out,
    size_t *outlen, size_t *end)
{
	size_t pos = off, w = 0, run = off;
	int jumps = 0;

	*end = 0;
	for (;;) {
		unsigned c;

		if (pos >= len)
			return -1;
		c = p[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t to;

			if (pos + 1 >= len)
				return -1;
			to = (size_t)(c & 0x3f) << 8 | p[pos + 1];
			if (*end == 0)
				*end = pos + 2;
			/* back, before this run of labels: the walk ends */
			if (to >= run || ++jumps > DNS_PACKET_NAME_JUMPS)
				return -1;
			pos = run = to;
			continue;
		}
		if (c & 0xc0)
			return -1; /* extended label types (RFC 6891 5) */
		if (c == 0) {
			if (w + 1 > DNS_NAME_MAX)
				return -1;
			out[w++] = 0;
			if (*end == 0)
				*end = pos + 1;
			*outlen = w;
			return 0;
		}
		if (c > len - pos - 1 || w + 1 + c + 1 > DNS_NAME_MAX)
			return -1;
		memcpy(out + w, p + pos, c + 1);
		w += c + 1;
		pos += c + 1;
	}
}

/* Wire names equal, ASCII letters in any case (RFC 4343). */
static int
dns_name_eq(
    const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	if (alen != blen)
		return 0;
	/* Length octets are at most 63, below 'A': folding leaves them. */
	for (size_t i = 0; i < alen; i++) {
		unsigned x = a[i], y = b[i];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return 0;
	}
	return 1;
}

/*
 * A wire name as text without the final dot; octets other than letters,
 * digits, '-' and '_' as \DDD (RFC 4343 2.1), so a '.' inside a label can
 * never pass for a label boundary.  out holds at least 4 * 255 + 1.
 */
static void
dns_name_text(const unsigned char *n, char *out, size_t outlen)
{
	size_t i = 0, w = 0;

	out[0] = '\0';
	while (n[i] != 0) {
		size_t l = n[i++];

		if (w > 0 && w + 1 < outlen)
			out[w++] = '.';
		for (size_t k = 0; k < l; k++, i++) {
			unsigned c = n[i];

			if (w + 5 >= outlen)
				continue; /* cannot happen: outlen fits 255 */
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_')
				out[w++] = (char)c;
			else
				w += (size_t)snprintf(
				    out + w, outlen - w, "\\%03u", c);
		}
	}
	out[w] = '\0';
}

/* The record at *off; *off moves past it.  -1 if it does not fit. */
static int
dns_rr_read(const struct dns_msg *m, size_t *off, struct dns_rr *rr)
{
	unsigned char name[DNS_NAME_MAX];
	size_t namelen, end;

	rr->owner = *off;
	if (dns_name(m->p, m->len, *off, name, &namelen, &end) != 0 ||
	    m->len - end < 10)
		return -1;
	rr->type = dns_u16(m->p + end);
	rr->rclass = dns_u16(m->p + end + 2);
	rr->ttl = dns_u32(m->p + end + 4);
	/* RFC 2181 8: a TTL with the top bit set is zero */
	if (rr->ttl & 0x80000000u)
		rr->ttl = 0;
	rr->rdlen = dns_u16(m->p + end + 8);
	rr->rdoff = end + 10;
	if (rr->rdlen > m->len - rr->rdoff)
		return -1;
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

/* Header, question, and every record of every section fit. */
static const char *
dns_msg_read(struct dns_msg *m, const unsigned char *p, size_t len, int qtype)
{
	size_t off, end;
	struct dns_rr rr;

	memset(m, 0, sizeof(*m));
	m->p = p;
	m->len = len;
	if (p == NULL || len < DNS_HEADER_LEN)
		return "truncated DNS header";
	if (dns_u16(p + 4) != 1)
		return "DNS answer without exactly one question";
	m->an = dns_u16(p + 6);
	m->ns = dns_u16(p + 8);
	m->ar = dns_u16(p + 10);
	if (dns_name(p, len, DNS_HEADER_LEN, m->qname, &m->qnamelen, &end) !=
	        0 ||
	    len - end < 4)
		return "malformed question in DNS answer";
	m->qtype = dns_u16(p + end);
	if (m->qtype != (unsigned)qtype || dns_u16(p + end + 2) != DNS_CLASS_IN)
		return "DNS answer to another question";
	off = m->an_start = end + 4;
	for (unsigned i = 0; i < m->an; i++)
		if (dns_rr_read(m, &off, &rr) != 0)
			return "malformed record in DNS answer";
	m->ns_start = off;
	/* the other two sections must fit too: the counts are checked */
	for (unsigned i = 0; i < m->ns + m->ar; i++)
		if (dns_rr_read(m, &off, &rr) != 0)
			return "malformed record in DNS answer";
	return NULL;
}

/* Does rr's owner equal name? */
static int
dns_owner_is(const struct dns_msg *m, const struct dns_rr *rr,
    const unsigned char *name, size_t namelen)
{
	unsigned char o[DNS_NAME_MAX];
	size_t olen, end;

	return dns_name(m->p, m->len, rr->owner, o, &olen, &end) == 0 &&
	       dns_name_eq(o, olen, name, namelen);
}

/*
 * Follow CNAMEs from the question to the name whose records answer it:
 * *name, *namelen.  -1 for a malformed CNAME or a chain too long.
 */
static const char *
dns_chain(const struct dns_msg *m, unsigned char *name, size_t *namelen)
{
	memcpy(name, m->qname, m->qnamelen);
	*namelen = m->qnamelen;
	if (m->qtype == DNS_TYPE_CNAME)
		return NULL; /* the CNAME itself is the answer */
	for (int hop = 0; hop <= DNS_PACKET_CNAME_MAX; hop++) {
		size_t off = m->an_start, end;
		int have = 0, found = 0;
		struct dns_rr rr;

		for (unsigned i = 0; i < m->an && !have && !found; i++) {
			(void)dns_rr_read(m, &off, &rr); /* checked before */
			if (rr.rclass != DNS_CLASS_IN ||
			    (rr.type != m->qtype &&
			        rr.type != DNS_TYPE_CNAME) ||
			    !dns_owner_is(m, &rr, name, *namelen))
				continue;
			if (rr.type == m->qtype) {
				have = 1;
			} else {
				/* the name changes: look again from the top */
				found = 1;
				if (dns_name(m->p, m->len, rr.rdoff, name,
				        namelen, &end) != 0 ||
				    end != rr.rdoff + rr.rdlen)
					return "malformed CNAME in DNS answer";
			}
		}
		if (have || !found)
			return NULL;
		if (hop == DNS_PACKET_CNAME_MAX)
			break;
	}
	return "CNAME chain too long in DNS answer";
}

/*
 * The RDATA of rr as the resolver gets it: names in MX, PTR, CNAME and NS
 * uncompressed.  With out NULL, only its length.  -1 if malformed.
 */
static int
dns_rdata(const struct dns_msg *m, const struct dns_rr *rr, unsigned char *out,
    size_t *outlen)
{
	unsigned char name[DNS_NAME_MAX];
	size_t namelen, end, skip = 0;

	switch (rr->type) {
	case DNS_TYPE_MX:
		skip = 2;
		/* FALLTHROUGH */
	case DNS_TYPE_PTR:
	case DNS_TYPE_CNAME:
	case DNS_TYPE_NS:
		if (rr->rdlen < skip + 1 ||
		    dns_name(m->p, m->len, rr->rdoff + skip, name, &namelen,
		        &end) != 0 ||
		    end != rr->rdoff + rr->rdlen)
			return -1;
		if (out != NULL) {
			memcpy(out, m->p + rr->rdoff, skip);
			memcpy(out + skip, name, namelen);
		}
		*outlen = skip + namelen;
		return 0;
	default:
		if (out != NULL)
			memcpy(out, m->p + rr->rdoff, rr->rdlen);
		*outlen = rr->rdlen;
		return 0;
	}
}

static void
dns_ttl_min(struct dns_answer *a, int *seen, uint32_t ttl)
{
	if (!*seen || ttl < a->ttl)
		a->ttl = ttl;
	*seen = 1;
}

/* RFC 2308 5: a negative answer lasts the SOA's TTL or MINIMUM. */
static void
dns_negative_ttl(const struct dns_msg *m, struct dns_answer *a, int *seen)
{
	size_t off = m->ns_start;
	struct dns_rr rr;
	unsigned rcode = m->p[3] & 0x0fu;

	for (unsigned i = 0; i < m->ns; i++) {
		(void)dns_rr_read(m, &off, &rr); /* checked before */
		if (rr.type != DNS_TYPE_SOA || rr.rclass != DNS_CLASS_IN ||
		    rr.rdlen < 22)
			continue;
		dns_ttl_min(a, seen, rr.ttl);
		dns_ttl_min(a, seen,
		    dns_u32(m->p + rr.rdoff + rr.rdlen - 4) & 0x7fffffffu);
		return;
	}
	/* No SOA: libunbound keeps the answer NORR_TTL, or less when a
	 * CNAME of the chain says so; a failure is kept by nobody. */
	if (rcode != 0 && rcode != DNS_RCODE_NXDOMAIN) {
		*seen = 0;
		a->ttl = 0;
		return;
	}
	dns_ttl_min(a, seen, DNS_PACKET_NORR_TTL);
}

struct dns_answer *
dns_answer_rcode(int rcode)
{
	struct dns_answer *a = calloc(1, sizeof(*a));

	if (a != NULL) {
		a->rcode = rcode;
		a->nxdomain = rcode == DNS_RCODE_NXDOMAIN;
	}
	return a;
}

void
dns_answer_free(struct dns_answer *a)
{
	if (a == NULL)
		return;
	free(a->buf);
	free(a);
}

/* The records of the type asked at name, into a (two passes). */
static const char *
dns_collect(const struct dns_msg *m, struct dns_answer *a,
    const unsigned char *name, size_t namelen)
{
	size_t total = 0, off, w = 0, l;
	struct dns_rr rr;
	int pass, seen = 0;

	for (pass = 0; pass < 2; pass++) {
		off = m->an_start;
		a->n = 0;
		for (unsigned i = 0; i < m->an; i++) {
			(void)dns_rr_read(m, &off, &rr); /* checked before */
			if (pass == 0 && rr.rclass == DNS_CLASS_IN)
				dns_ttl_min(a, &seen, rr.ttl);
			if (rr.type != m->qtype || rr.rclass != DNS_CLASS_IN ||
			    a->n >= DNS_PACKET_RR_MAX ||
			    !dns_owner_is(m, &rr, name, namelen))
				continue;
			if (pass == 0) {
				if (dns_rdata(m, &rr, NULL, &l) != 0)
					return "malformed record data in DNS "
					       "answer";
				total += l;
				a->n++;
				continue;
			}
			(void)dns_rdata(m, &rr, a->buf + w, &l);
			a->data[a->n] = a->buf + w;
			a->len[a->n++] = l;
			w += l;
		}
		if (pass == 0 && a->n == 0)
			break;
		if (pass == 0) {
			/* data[], len[], then the RDATA, in one block */
			size_t head =
			    a->n * (sizeof(*a->data) + sizeof(*a->len));

			if ((a->buf = malloc(head + total)) == NULL)
				return "out of memory";
			a->data = (const unsigned char **)(void *)a->buf;
			a->len = (size_t *)(void *)(a->buf +
			                            a->n * sizeof(*a->data));
			w = head;
		}
	}
	if (a->n == 0)
		dns_negative_ttl(m, a, &seen);
	return NULL;
}

struct dns_answer *
dns_packet_parse(
    const unsigned char *pkt, size_t len, int qtype, const char **why)
{
	struct dns_answer *a = dns_answer_rcode(0);
	struct dns_msg m;
	unsigned char name[DNS_NAME_MAX];
	size_t namelen;

	*why = NULL;
	if (a == NULL)
		return NULL;
	if ((*why = dns_msg_read(&m, pkt, len, qtype)) == NULL &&
	    (*why = dns_chain(&m, name, &namelen)) == NULL)
		*why = dns_collect(&m, a, name, namelen);
	if (*why != NULL) {
		free(a->buf);
		memset(a, 0, sizeof(*a));
		a->rcode = DNS_RCODE_SERVFAIL;
		a->error = *why;
		return a;
	}
	a->rcode = (int)(pkt[3] & 0x0f);
	a->nxdomain = a->rcode == DNS_RCODE_NXDOMAIN;
	a->havedata = a->n > 0;
	if (!dns_name_eq(name, namelen, m.qname, m.qnamelen))
		dns_name_text(name, a->canon, sizeof(a->canon));
	return a;
}
