/*
 * test_dns_packet.c - src/dns/dns_packet.c as tables: DNS responses built
 * here byte by byte (names compressed as servers write them) and what the
 * resolver must get from them: MX, A, AAAA, TLSA, TXT and PTR records,
 * CNAME chains, negative answers and their TTL; and hostile packets
 * (every truncation, pointer loops and forward pointers, counts the
 * packet cannot hold, overlong names, wrong class, wrong question), each
 * a SERVFAIL with a reason and, under the sanitizers, no read outside.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns_packet.h"

#define T_A 1
#define T_NS 2
#define T_CNAME 5
#define T_SOA 6
#define T_PTR 12
#define T_MX 15
#define T_TXT 16
#define T_AAAA 28
#define T_TLSA 52
#define C_IN 1
#define C_CH 3

/* A packet under construction. */
struct pk {
	unsigned char b[70000];
	size_t n;
};

/* A wire string and its length, without the literal's own NUL. */
#define W(s) (const unsigned char *)(s), sizeof(s) - 1

static void
put(struct pk *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static void
put16(struct pk *p, unsigned v)
{
	unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

	put(p, b, 2);
}

static void
put32(struct pk *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

/* Header (rcode, counts) and the question: qname at offset 12. */
static void
head(struct pk *p, unsigned rcode, unsigned an, unsigned ns, unsigned ar,
    const unsigned char *qname, size_t qlen, unsigned qtype)
{
	p->n = 0;
	put16(p, 0);
	put16(p, 0x8180 | rcode); /* QR RD RA */
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, ar);
	put(p, qname, qlen);
	put16(p, qtype);
	put16(p, C_IN);
}

static void
rr(struct pk *p, const unsigned char *owner, size_t olen, unsigned type,
    unsigned cls, uint32_t ttl, const unsigned char *rd, size_t rdlen)
{
	put(p, owner, olen);
	put16(p, type);
	put16(p, cls);
	put32(p, ttl);
	put16(p, (unsigned)rdlen);
	put(p, rd, rdlen);
}

/* "example.test" at offset 12, pointed to by \xc0\x0c. */
#define QNAME                                                                  \
	"\x07"                                                                 \
	"example\x04test\x00"
#define PQ "\xc0\x0c"

static struct dns_answer *
parse(const struct pk *p, int qtype, const char **why)
{
	struct dns_answer *a = dns_packet_parse(p->b, p->n, qtype, why);

	assert_non_null(a);
	return a;
}

/* A packet the parser must refuse (a reason given), freed. */
static void
refused(const struct pk *p, int qtype)
{
	const char *why = NULL;

	dns_answer_free(parse(p, qtype, &why));
	assert_non_null(why);
}

static void
test_mx_compressed(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	const char *why;
	struct dns_answer *a;
	static const unsigned char want[] = "\x00\x0a\x02mx\x07"
	                                    "example\x04test\x00";

	(void)state;
	head(p, 0, 2, 0, 0, W(QNAME), T_MX);
	/* MX 10 mx.<pointer to example.test>, MX 20 backup.example.test */
	rr(p, W(PQ), T_MX, C_IN, 300, W("\x00\x0a\x02mx" PQ));
	rr(p, W(PQ), T_MX, C_IN, 200,
	    W("\x00\x14\x06"
	      "backup" PQ));
	a = parse(p, T_MX, &why);
	assert_null(why);
	assert_int_equal(a->rcode, 0);
	assert_int_equal(a->havedata, 1);
	assert_int_equal(a->nxdomain, 0);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->len[0], sizeof(want) - 1);
	assert_memory_equal(a->data[0], want, sizeof(want) - 1);
	assert_int_equal(a->len[1], 2 + 1 + 6 + 14);
	assert_int_equal(a->ttl, 200);
	assert_string_equal(a->canon, "");
	dns_answer_free(a);
	free(p);
}

/* Address, TLSA, TXT and PTR records: the type asked, class IN only. */
static void
test_record_types(void **state)
{
	static const struct {
		unsigned qtype;
		/* records: type, class, rdata */
		struct {
			unsigned type, cls;
			const char *rd;
			size_t len;
		} rr[4];
		size_t nrr;
		size_t n;        /* records of the answer */
		const char *rd0; /* the first, as the resolver gets it */
		size_t len0;
	} t[] = {
	    {T_A,
	        {{T_A, C_IN, "\xc0\x00\x02\x01", 4},
	            {T_A, C_CH, "\xc0\x00\x02\x09", 4},
	            {T_AAAA, C_IN, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1",
	                16},
	            {T_A, C_IN, "\xc0\x00\x02\x02", 4}},
	        4, 2, "\xc0\x00\x02\x01", 4},
	    {T_AAAA,
	        {{T_AAAA, C_IN, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1",
	            16}},
	        1, 1, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1", 16},
	    {T_TLSA, {{T_TLSA, C_IN, "\x03\x01\x01\xaa\xbb\xcc", 6}}, 1, 1,
	        "\x03\x01\x01\xaa\xbb\xcc", 6},
	    {T_TXT, {{T_TXT, C_IN, "\x0cv=STSv1; id=", 13}}, 1, 1,
	        "\x0cv=STSv1; id=", 13},
	    /* PTR: the compressed name comes out whole */
	    {T_PTR, {{T_PTR, C_IN, "\x04host" PQ, 7}}, 1, 1,
	        "\x04host\x07"
	        "example\x04test\x00",
	        19},
	    /* only another class: no data */
	    {T_A, {{T_A, C_CH, "\x7f\x00\x00\x01", 4}}, 1, 0, NULL, 0},
	};
	struct pk *p = calloc(1, sizeof(*p));

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *why;
		struct dns_answer *a;

		head(p, 0, (unsigned)t[i].nrr, 0, 0, W(QNAME), t[i].qtype);
		for (size_t k = 0; k < t[i].nrr; k++)
			rr(p, W(PQ), t[i].rr[k].type, t[i].rr[k].cls, 60,
			    (const unsigned char *)t[i].rr[k].rd,
			    t[i].rr[k].len);
		a = parse(p, (int)t[i].qtype, &why);
		assert_null(why);
		assert_int_equal(a->n, t[i].n);
		assert_int_equal(a->havedata, t[i].n > 0);
		if (t[i].n > 0) {
			assert_int_equal(a->len[0], t[i].len0);
			assert_memory_equal(a->data[0], t[i].rd0, t[i].len0);
		}
		dns_answer_free(a);
	}
	free(p);
}

/* CNAMEs in either order; canon is where the chain ends. */
static void
test_cname_chain(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	const char *why;
	struct dns_answer *a;

	(void)state;
	for (int order = 0; order < 2; order++) {
		/* example.test -> a.example.test -> B.Example.test A */
		head(p, 0, 3, 0, 0, W(QNAME), T_A);
		if (order == 1)
			rr(p,
			    W("\x01"
			      "b" PQ),
			    T_A, C_IN, 40, W("\xc0\x00\x02\x07"));
		rr(p, W(PQ), T_CNAME, C_IN, 100,
		    W("\x01"
		      "a" PQ));
		rr(p,
		    W("\x01"
		      "a" PQ),
		    T_CNAME, C_IN, 90,
		    W("\x01"
		      "B\x07"
		      "Example\x04test\x00"));
		if (order == 0)
			rr(p,
			    W("\x01"
			      "b" PQ),
			    T_A, C_IN, 400, W("\xc0\x00\x02\x07"));
		a = parse(p, T_A, &why);
		assert_null(why);
		assert_int_equal(a->n, 1);
		assert_memory_equal(a->data[0], "\xc0\x00\x02\x07", 4);
		assert_string_equal(a->canon, "B.Example.test");
		assert_int_equal(a->ttl, order == 0 ? 90 : 40);
		dns_answer_free(a);
	}
	/* a chain to a name without the type: no data, canon still set */
	head(p, 0, 1, 1, 0, W(QNAME), T_AAAA);
	rr(p, W(PQ), T_CNAME, C_IN, 100,
	    W("\x01"
	      "a" PQ));
	rr(p, W(PQ), T_SOA, C_IN, 500,
	    W("\x02ns" PQ "\x02hm" PQ
	      "\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0\x1e"));
	a = parse(p, T_AAAA, &why);
	assert_null(why);
	assert_int_equal(a->n, 0);
	assert_int_equal(a->havedata, 0);
	assert_string_equal(a->canon, "a.example.test");
	assert_int_equal(a->ttl, 30);
	dns_answer_free(a);
	/* a loop (example.test -> a -> example.test) never ends by itself */
	head(p, 0, 2, 0, 0, W(QNAME), T_A);
	rr(p, W(PQ), T_CNAME, C_IN, 100,
	    W("\x01"
	      "a" PQ));
	rr(p,
	    W("\x01"
	      "a" PQ),
	    T_CNAME, C_IN, 100, W(PQ));
	a = parse(p, T_A, &why);
	assert_non_null(why);
	assert_int_equal(a->rcode, 2);
	assert_int_equal(a->n, 0);
	dns_answer_free(a);
	/* asking for the CNAME itself: no chasing */
	head(p, 0, 1, 0, 0, W(QNAME), T_CNAME);
	rr(p, W(PQ), T_CNAME, C_IN, 100,
	    W("\x01"
	      "a" PQ));
	a = parse(p, T_CNAME, &why);
	assert_null(why);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->canon, "");
	dns_answer_free(a);
	free(p);
}

/* NXDOMAIN and NODATA: no records, the SOA's TTL bounded by MINIMUM. */
static void
test_negative(void **state)
{
	static const struct {
		unsigned rcode;
		uint32_t soa_ttl, minimum;
		int with_soa;
		unsigned ttl;
	} t[] = {
	    {3, 3600, 300, 1, 300},
	    {0, 120, 300, 1, 120},
	    /* no SOA: as long as libunbound keeps it (NORR_TTL) */
	    {0, 120, 300, 0, DNS_PACKET_NORR_TTL},
	    {3, 0, 0, 0, DNS_PACKET_NORR_TTL},
	    {2, 0, 0, 0, 0},
	};
	struct pk *p = calloc(1, sizeof(*p));

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *why;
		struct dns_answer *a;
		unsigned char soa[64];
		size_t n = 0;

		head(p, t[i].rcode, 0, (unsigned)t[i].with_soa, 0, W(QNAME),
		    T_MX);
		memcpy(soa, "\x02ns" PQ "\x02hm" PQ, 10);
		n = 10;
		memcpy(soa + n, "\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4", 16);
		n += 16;
		soa[n++] = (unsigned char)(t[i].minimum >> 24);
		soa[n++] = (unsigned char)(t[i].minimum >> 16);
		soa[n++] = (unsigned char)(t[i].minimum >> 8);
		soa[n++] = (unsigned char)t[i].minimum;
		if (t[i].with_soa)
			rr(p, W(PQ), T_SOA, C_IN, t[i].soa_ttl, soa, n);
		a = parse(p, T_MX, &why);
		assert_null(why);
		assert_int_equal(a->rcode, (int)t[i].rcode);
		assert_int_equal(a->nxdomain, t[i].rcode == 3);
		assert_int_equal(a->n, 0);
		assert_int_equal(a->havedata, 0);
		assert_int_equal(a->ttl, t[i].ttl);
		dns_answer_free(a);
	}
	free(p);
}

/* Every prefix of a good packet is malformed: its counts promise more. */
static void
test_every_truncation(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	size_t full;

	(void)state;
	head(p, 0, 2, 1, 1, W(QNAME), T_MX);
	rr(p, W(PQ), T_MX, C_IN, 300, W("\x00\x0a\x02mx" PQ));
	rr(p,
	    W("\x01"
	      "x" PQ),
	    T_TXT, C_IN, 300, W("\x02hi"));
	rr(p, W(PQ), T_NS, C_IN, 300, W("\x02ns" PQ));
	rr(p, W("\x02ns" PQ), T_A, C_IN, 300, W("\xc0\x00\x02\x01"));
	full = p->n;
	for (size_t len = 0; len < full; len++) {
		/* a copy of exactly len bytes, so ASan sees any read past */
		unsigned char *b = malloc(len > 0 ? len : 1);
		const char *why;
		struct dns_answer *a;

		memcpy(b, p->b, len);
		a = dns_packet_parse(b, len, T_MX, &why);
		assert_non_null(a);
		assert_non_null(why);
		assert_ptr_equal(a->error, why);
		assert_int_equal(a->rcode, 2);
		assert_int_equal(a->n, 0);
		assert_int_equal(a->havedata, 0);
		dns_answer_free(a);
		free(b);
	}
	{
		const char *why;
		struct dns_answer *a = parse(p, T_MX, &why);

		assert_null(why);
		assert_null(a->error);
		assert_int_equal(a->n, 1);
		dns_answer_free(a);
	}
	free(p);
}

/* Hostile names, lengths and counts: each the whole answer's failure. */
static void
test_hostile(void **state)
{
	static const struct {
		const char *what;
		const char *owner; /* of the one answer record */
		size_t olen;
		unsigned type;
		const char *rd;
		size_t rdlen;
		int rdfix; /* rdlength as given (0) or this value */
	} t[] = {
	    {"pointer to itself", "\xc0\x1e", 2, T_MX, "\x00\x0a\x00", 3, 0},
	    {"pointer forward", "\xc0\x40", 2, T_MX, "\x00\x0a\x00", 3, 0},
	    {"pointer out of the packet", "\xff\xff", 2, T_MX, "\x00\x0a\x00",
	        3, 0},
	    {"label then pointer back to it", "\x01x\xc0\x1e", 4, T_MX,
	        "\x00\x0a\x00", 3, 0},
	    {"extended label", "\x41x", 2, T_MX, "\x00\x0a\x00", 3, 0},
	    {"rdlength past the end", PQ, 2, T_MX, "\x00\x0a\x00", 3, 200},
	    {"MX name past its rdata", PQ, 2, T_MX, "\x00\x0a\x02mx\x00", 6, 4},
	    {"MX name short of its rdata", PQ, 2, T_MX, "\x00\x0a\x00\x00\x00",
	        5, 0},
	    {"MX rdata without a name", PQ, 2, T_MX, "\x00\x0a", 2, 0},
	    {"MX name pointer loop", PQ, 2, T_MX, "\x00\x0a\xc0\x2c", 4, 0},
	};
	struct pk *p = calloc(1, sizeof(*p));

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *why;
		struct dns_answer *a;

		head(p, 0, 1, 0, 0, W(QNAME), T_MX);
		/* offset 30: the answer record's owner */
		assert_int_equal(p->n, 30);
		put(p, t[i].owner, t[i].olen);
		put16(p, t[i].type);
		put16(p, C_IN);
		put32(p, 60);
		put16(p,
		    t[i].rdfix ? (unsigned)t[i].rdfix : (unsigned)t[i].rdlen);
		put(p, t[i].rd, t[i].rdlen);
		a = parse(p, T_MX, &why);
		if (why == NULL)
			fail_msg("%s: parsed", t[i].what);
		assert_int_equal(a->rcode, 2);
		assert_int_equal(a->n, 0);
		dns_answer_free(a);
	}
	free(p);
}

/* The header and question: one question, the type asked, class IN. */
static void
test_question(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	const char *why;
	struct dns_answer *a;

	(void)state;
	head(p, 0, 0, 0, 0, W(QNAME), T_A);
	refused(p, T_MX);      /* answer to another question */
	p->b[p->n - 1] = C_CH; /* class CH */
	refused(p, T_A);
	head(p, 0, 0, 0, 0, W(QNAME), T_A);
	p->b[5] = 2; /* two questions */
	refused(p, T_A);
	head(p, 0, 0, 0, 0, W(QNAME), T_A);
	a = parse(p, T_A, &why); /* NODATA, no SOA */
	assert_null(why);
	assert_int_equal(a->n, 0);
	assert_null(a->data);
	assert_int_equal(a->ttl, DNS_PACKET_NORR_TTL);
	dns_answer_free(a);
	a = dns_packet_parse(NULL, 0, T_A, &why);
	assert_non_null(a);
	assert_non_null(why);
	assert_int_equal(a->rcode, 2);
	dns_answer_free(a);
	free(p);
}

/* A name of 255 octets passes, through pointers; one octet more fails. */
static void
test_name_lengths(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	unsigned char q[300];
	size_t n = 0;
	const char *why;
	struct dns_answer *a;

	(void)state;
	/* four labels of 63 and one of 1: 4 * 64 + 2 + 1 = 259 octets */
	for (int i = 0; i < 4; i++) {
		q[n++] = 63;
		memset(q + n, 'a' + i, 63);
		n += 63;
	}
	q[n++] = 0;
	/* 4 * 64 + 1 = 257: over 255 already */
	head(p, 0, 0, 0, 0, q, n, T_A);
	refused(p, T_A);
	/* three labels of 63, one of 61: 3 * 64 + 62 + 1 = 255 */
	n = 3 * 64;
	q[n++] = 61;
	memset(q + n, 'z', 61);
	n += 61;
	q[n++] = 0;
	assert_int_equal(n, 255);
	head(p, 0, 1, 0, 0, q, n, T_A);
	rr(p, W(PQ), T_A, C_IN, 60, W("\xc0\x00\x02\x01"));
	a = parse(p, T_A, &why);
	assert_null(why);
	assert_int_equal(a->n, 1);
	dns_answer_free(a);
	/* the same name plus one more label through a pointer: 257 */
	head(p, 0, 1, 0, 0, q, n, T_A);
	rr(p, W("\x01x" PQ), T_A, C_IN, 60, W("\xc0\x00\x02\x01"));
	refused(p, T_A);
	free(p);
}

/* Odd octets in the canonical name are escaped, never a false dot. */
static void
test_canon_escaped(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	const char *why;
	struct dns_answer *a;

	(void)state;
	head(p, 0, 2, 0, 0, W(QNAME), T_A);
	rr(p, W(PQ), T_CNAME, C_IN, 60,
	    W("\x03"
	      "a.b" PQ));
	rr(p,
	    W("\x03"
	      "a.b" PQ),
	    T_A, C_IN, 60, W("\xc0\x00\x02\x01"));
	a = parse(p, T_A, &why);
	assert_null(why);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->canon, "a\\046b.example.test");
	dns_answer_free(a);
	free(p);
}

/* More records than DNS_PACKET_RR_MAX: the first ones are kept. */
static void
test_many_records(void **state)
{
	struct pk *p = calloc(1, sizeof(*p));
	const char *why;
	struct dns_answer *a;
	unsigned n = DNS_PACKET_RR_MAX + 50;

	(void)state;
	head(p, 0, n, 0, 0, W(QNAME), T_A);
	for (unsigned i = 0; i < n; i++) {
		unsigned char ip[4] = {
		    192, 0, (unsigned char)(i >> 8), (unsigned char)i};

		rr(p, W(PQ), T_A, C_IN, 60, ip, 4);
	}
	a = parse(p, T_A, &why);
	assert_null(why);
	assert_int_equal(a->n, DNS_PACKET_RR_MAX);
	assert_memory_equal(
	    a->data[DNS_PACKET_RR_MAX - 1], "\xc0\x00\x00\xff", 4);
	dns_answer_free(a);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mx_compressed),
	    cmocka_unit_test(test_record_types),
	    cmocka_unit_test(test_cname_chain),
	    cmocka_unit_test(test_negative),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_question),
	    cmocka_unit_test(test_name_lengths),
	    cmocka_unit_test(test_canon_escaped),
	    cmocka_unit_test(test_many_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
