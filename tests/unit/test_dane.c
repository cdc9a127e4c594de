/*
 * test_dane.c - DANE (RFC 7672) as tables: TLSA records parsed from
 * hostile RDATA, which records are usable for SMTP, their zone-file form,
 * what a host's DNSSEC and TLSA facts require (tls_dane_decide, every
 * mode against every status), the order-blind digest that keys the
 * session cache; then OpenSSL's DANE verifier set up by tls_dane_enable()
 * in real in-memory handshakes: DANE-EE matching a key whatever the CA
 * and dates, DANE-TA through an intermediate with its name checks, and
 * records that match nothing.
 */
#include "test_tls.h"

#include "dns/tlsa.h"
#include "tls/tls_client.h"
#include "tls/tls_dane.h"
#include "tls/tls_store.h"

/* ---- TLSA records ---- */

static void
test_rr_parse(void **state)
{
	static const unsigned char ok[] = {3, 1, 1, 0xab, 0xcd};
	unsigned char *big = calloc(3 + TLSA_DATA_MAX + 1, 1);
	struct tlsa_rr rr;

	(void)state;
	assert_non_null(big);
	assert_int_equal(tlsa_rr_parse(ok, sizeof(ok), &rr), 0);
	assert_int_equal(rr.usage, 3);
	assert_int_equal(rr.selector, 1);
	assert_int_equal(rr.mtype, 1);
	assert_int_equal(rr.len, 2);
	assert_int_equal(rr.data[1], 0xcd);
	free(rr.data);
	/* no data at all, or nothing */
	assert_int_equal(tlsa_rr_parse(ok, 3, &rr), -1);
	assert_int_equal(tlsa_rr_parse(ok, 0, &rr), -1);
	assert_int_equal(tlsa_rr_parse(NULL, 5, &rr), -1);
	/* the cap, and one over it */
	assert_int_equal(tlsa_rr_parse(big, 3 + TLSA_DATA_MAX, &rr), 0);
	free(rr.data);
	assert_int_equal(tlsa_rr_parse(big, 3 + TLSA_DATA_MAX + 1, &rr), -1);
	free(big);
}

static void
test_rr_usable(void **state)
{
	static const struct {
		uint8_t usage, selector, mtype;
		size_t len;
		int usable;
	} t[] = {
	    {3, 1, 1, 32, 1},  /* DANE-EE SPKI SHA2-256 */
	    {3, 0, 1, 32, 1},  /* DANE-EE whole certificate */
	    {2, 1, 2, 64, 1},  /* DANE-TA SHA2-512 */
	    {2, 0, 0, 900, 1}, /* DANE-TA full certificate */
	    {3, 1, 1, 31, 0},  /* digest of the wrong length */
	    {3, 1, 2, 32, 0},
	    {3, 1, 0, 0, 0},  /* exact match of nothing */
	    {1, 1, 1, 32, 0}, /* PKIX-EE: not for SMTP (3.1.3) */
	    {0, 0, 1, 32, 0}, /* PKIX-TA */
	    {4, 1, 1, 32, 0}, /* unknown usage */
	    {3, 2, 1, 32, 0}, /* unknown selector */
	    {3, 1, 3, 32, 0}, /* unknown matching type */
	    {255, 255, 255, 32, 0},
	};
	unsigned char data[900] = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tlsa_rr rr = {
		    t[i].usage, t[i].selector, t[i].mtype, t[i].len, data};

		if (tlsa_rr_usable(&rr) != t[i].usable)
			fail_msg("row %zu: %u %u %u len %zu", i, t[i].usage,
			    t[i].selector, t[i].mtype, t[i].len);
	}
}

static void
test_rr_format_and_qname(void **state)
{
	unsigned char data[] = {0x00, 0x0f, 0xa0, 0xff};
	struct tlsa_rr rr = {3, 1, 1, sizeof(data), data};
	char out[64], small[8], name[300], big[400];

	(void)state;
	tlsa_rr_format(&rr, out, sizeof(out));
	assert_string_equal(out, "3 1 1 000fa0ff");
	/* cut, but terminated and never mid-byte */
	tlsa_rr_format(&rr, small, sizeof(small));
	assert_string_equal(small, "3 1 1 ");
	assert_int_equal(
	    tlsa_qname("mx.example.net", 25, name, sizeof(name)), 0);
	assert_string_equal(name, "_25._tcp.mx.example.net");
	assert_int_equal(tlsa_qname("relay.example.net", 587, name, 300), 0);
	assert_string_equal(name, "_587._tcp.relay.example.net");
	memset(big, 'a', 295);
	big[295] = '\0';
	assert_int_equal(tlsa_qname(big, 25, name, sizeof(name)), -1);
	assert_string_equal(tlsa_status_name(TLSA_BOGUS), "bogus");
}

/* ---- what a host's facts require ---- */

static void
test_decide(void **state)
{
	enum {
		S = TLSA_SECURE,
		N = TLSA_NONE,
		I = TLSA_INSECURE,
		B = TLSA_BOGUS,
		T = TLSA_TEMPFAIL,
		X = -1 /* not looked up */
	};
	static const struct {
		enum conf_dane_mode mode;
		int addr_secure;
		int status;
		size_t nusable;
		enum tls_dane_need need;
		const char *words;
	} t[] = {
	    {DANE_MODE_OPPORTUNISTIC, 1, S, 1, TLS_DANE_VERIFY, "1 usable"},
	    {DANE_MODE_OPPORTUNISTIC, 1, S, 0, TLS_DANE_ENCRYPT, "unusable"},
	    {DANE_MODE_OPPORTUNISTIC, 1, N, 0, TLS_DANE_OFF, "no TLSA"},
	    {DANE_MODE_OPPORTUNISTIC, 1, I, 0, TLS_DANE_OFF, "DNSSEC-signed"},
	    {DANE_MODE_OPPORTUNISTIC, 1, B, 0, TLS_DANE_SKIP, "validation"},
	    {DANE_MODE_OPPORTUNISTIC, 1, T, 0, TLS_DANE_SKIP, "looked up"},
	    {DANE_MODE_OPPORTUNISTIC, 1, X, 0, TLS_DANE_SKIP, "not known"},
	    {DANE_MODE_OPPORTUNISTIC, 0, X, 0, TLS_DANE_OFF, "not DNSSEC"},
	    {DANE_MODE_MANDATORY, 1, S, 2, TLS_DANE_VERIFY, "2 usable"},
	    {DANE_MODE_MANDATORY, 1, S, 0, TLS_DANE_SKIP, "Mandatory"},
	    {DANE_MODE_MANDATORY, 1, N, 0, TLS_DANE_SKIP, "Mandatory"},
	    {DANE_MODE_MANDATORY, 1, I, 0, TLS_DANE_SKIP, "Mandatory"},
	    {DANE_MODE_MANDATORY, 1, B, 0, TLS_DANE_SKIP, "validation"},
	    {DANE_MODE_MANDATORY, 0, X, 0, TLS_DANE_SKIP, "Mandatory"},
	    {DANE_MODE_NONE, 1, S, 1, TLS_DANE_OFF, "None"},
	    {DANE_MODE_NONE, 1, B, 0, TLS_DANE_OFF, "None"},
	    {DANE_MODE_NONE, 0, X, 0, TLS_DANE_OFF, "None"},
	};
	char why[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tlsa_result r;
		enum tls_dane_need got;

		memset(&r, 0, sizeof(r));
		r.status = t[i].status == X ? TLSA_SECURE
		                            : (enum tlsa_status)t[i].status;
		r.n = r.nusable = t[i].nusable;
		snprintf(r.qname, sizeof(r.qname), "_25._tcp.mx.example.net");
		snprintf(r.why, sizeof(r.why), "SERVFAIL");
		got = tls_dane_decide(t[i].mode, "mx.example.net",
		    t[i].addr_secure, t[i].status == X ? NULL : &r, why,
		    sizeof(why));
		if (got != t[i].need || strstr(why, t[i].words) == NULL ||
		    strncmp(why, "DANE: ", 6) != 0)
			fail_msg("row %zu: %s, \"%s\"", i,
			    tls_dane_need_name(got), why);
	}
}

static void
test_digest(void **state)
{
	unsigned char a[32], b[32];
	struct tlsa_result *r = calloc(1, sizeof(*r));
	char d1[64], d2[64], d3[64];

	(void)state;
	assert_non_null(r);
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	r->n = 3;
	r->rr[0] = (struct tlsa_rr){3, 1, 1, 32, a};
	r->rr[1] = (struct tlsa_rr){2, 1, 1, 32, b};
	r->rr[2] = (struct tlsa_rr){1, 1, 1, 32, b}; /* unusable: ignored */
	tls_dane_digest(r, d1, sizeof(d1));
	/* the DNS gives the records in any order */
	r->rr[0] = (struct tlsa_rr){2, 1, 1, 32, b};
	r->rr[1] = (struct tlsa_rr){3, 1, 1, 32, a};
	r->n = 2;
	tls_dane_digest(r, d2, sizeof(d2));
	assert_string_equal(d1, d2);
	/* another key: another digest */
	b[5] = 9;
	tls_dane_digest(r, d3, sizeof(d3));
	assert_string_not_equal(d1, d3);
	free(r);
}

static void
test_cert_rr(void **state)
{
	X509 *x = test_load_cert("server.pem");
	unsigned char *der = NULL;
	struct tlsa_rr full, spki, sha512, bad;
	int len;

	(void)state;
	assert_int_equal(tls_dane_cert_rr(x, 3, 0, 0, &full), 0);
	len = i2d_X509(x, &der);
	assert_int_equal(full.len, (size_t)len);
	assert_memory_equal(full.data, der, (size_t)len);
	OPENSSL_free(der);
	assert_int_equal(tls_dane_cert_rr(x, 3, 1, 1, &spki), 0);
	assert_int_equal(spki.len, 32);
	assert_true(tlsa_rr_usable(&spki));
	assert_int_equal(tls_dane_cert_rr(x, 2, 1, 2, &sha512), 0);
	assert_int_equal(sha512.len, 64);
	/* selector 2 does not exist */
	assert_int_equal(tls_dane_cert_rr(x, 3, 2, 1, &bad), -1);
	free(full.data);
	free(spki.data);
	free(sha512.data);
	X509_free(x);
}

/* ---- OpenSSL's verifier, set up by tls_dane_enable ---- */

static struct tls_store *servers;
static struct tls_client *cli;

static int
setup_tls(void **state)
{
	static const char *const certs[] = {
	    "server", "wrong", "self", "expired", "chain"};
	struct tls_store_cert c[5];
	static char pem[5][320], key[5][320];
	struct tls_store_params p = {0};
	struct tls_client_params cp = {0};

	(void)state;
	if (test_pki_dir() == NULL)
		return -1;
	for (size_t i = 0; i < 5; i++) {
		snprintf(
		    pem[i], sizeof(pem[i]), "%s/%s.pem", test_pki, certs[i]);
		snprintf(
		    key[i], sizeof(key[i]), "%s/%s.key", test_pki, certs[i]);
		c[i].name = certs[i];
		c[i].certificate_file = pem[i];
		c[i].key_file = key[i];
	}
	p.trusted_ca_file = test_pki_path("trusted.pem");
	servers = tls_store_build(c, 5, &p, stderr);
	/* DANE trusts the records, not this file: an empty-ish store. */
	cp.trusted_ca_file = test_pki_path("partner-ca.pem");
	cli = tls_client_new(&cp, stderr);
	return servers == NULL || cli == NULL ? -1 : 0;
}

static int
teardown_tls(void **state)
{
	(void)state;
	tls_store_free(servers);
	tls_client_free(cli);
	test_pki_cleanup();
	return 0;
}

/* A TLSA result holding one record made from a PKI certificate. */
static void
record_of(struct tlsa_result *r, const char *base, const char *pem, int index,
    int usage, int selector, int mtype)
{
	FILE *fp = fopen(test_pki_path(pem), "r");
	X509 *x = NULL;

	assert_non_null(fp);
	for (int i = 0; i <= index; i++) {
		X509_free(x);
		x = PEM_read_X509(fp, NULL, NULL, NULL);
		assert_non_null(x);
	}
	fclose(fp);
	assert_true(r->n < TLSA_RR_MAX);
	assert_int_equal(
	    tls_dane_cert_rr(x, usage, selector, mtype, &r->rr[r->n]), 0);
	r->nusable += tlsa_rr_usable(&r->rr[r->n]) != 0;
	r->n++;
	r->status = TLSA_SECURE;
	snprintf(r->base, sizeof(r->base), "%s", base);
	X509_free(x);
}

/* Handshake with `served` under the records; 1 when DANE verified. */
static int
dane_connect(const struct tlsa_result *r, const char *host, const char *served,
    char *why, size_t whylen)
{
	struct tls_client_target t = {host, 25, NULL, 0, NULL};
	const char *err = NULL;
	SSL *cl = tls_client_ssl(cli, &t, NULL, &err);
	SSL *sv = tls_store_ssl(servers, served, 0);
	char match[128];
	int ok;

	assert_non_null(cl);
	assert_non_null(sv);
	if (tls_dane_enable(cl, r, host, &err) < 0)
		fail_msg("tls_dane_enable: %s", err);
	assert_int_equal(test_handshake(cl, sv), 1);
	ok = tls_dane_verified(cl, host, match, sizeof(match), why, whylen);
	if (ok)
		assert_non_null(strstr(match, "at depth"));
	test_close(cl, sv);
	SSL_free(cl);
	SSL_free(sv);
	return ok;
}

static void
test_handshakes(void **state)
{
	static const struct {
		const char *record_pem; /* the TLSA record is of this cert */
		int index;              /* 0 leaf, 1 its issuer in the file */
		int usage, selector, mtype;
		const char *base, *host; /* TLSA base domain, MX host */
		const char *served;
		int verified;
		const char *why;
	} t[] = {
	    /* DANE-EE: the key alone decides, whoever signed it */
	    {"server.pem", 0, 3, 1, 1, "mx.sluice.test", "mx.sluice.test",
	        "server", 1, NULL},
	    {"self.pem", 0, 3, 1, 1, "mx.sluice.test", "mx.sluice.test", "self",
	        1, NULL},
	    {"expired.pem", 0, 3, 0, 2, "mx.sluice.test", "mx.sluice.test",
	        "expired", 1, NULL},
	    /* ... and no name check: the record is for this host (a name
	       no certificate has, so SNI leaves the server its own) */
	    {"wrong.pem", 0, 3, 1, 1, "mx.elsewhere.test", "mx.elsewhere.test",
	        "wrong", 1, NULL},
	    /* a record for another key */
	    {"wrong.pem", 0, 3, 1, 1, "mx.sluice.test", "mx.sluice.test",
	        "server", 0, "no TLSA record matched"},
	    /* DANE-TA: the intermediate of chain.pem, names checked */
	    {"chain.pem", 1, 2, 1, 1, "chain.sluice.test", "chain.sluice.test",
	        "chain", 1, NULL},
	    {"chain.pem", 1, 2, 0, 1, "chain.sluice.test", "mx.sluice.test",
	        "chain", 1, NULL},
	    {"chain.pem", 1, 2, 1, 1, "other.sluice.test", "mx2.sluice.test",
	        "chain", 0, "does not name the host"},
	    /* a DANE-TA record for a CA that did not sign this server */
	    {"chain.pem", 1, 2, 1, 1, "mx.sluice.test", "mx.sluice.test",
	        "server", 0, "no TLSA record matched"},
	};
	char why[512];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tlsa_result *r = calloc(1, sizeof(*r));
		int got;

		assert_non_null(r);
		record_of(r, t[i].base, t[i].record_pem, t[i].index, t[i].usage,
		    t[i].selector, t[i].mtype);
		got = dane_connect(r, t[i].host, t[i].served, why, sizeof(why));
		if (got != t[i].verified ||
		    (t[i].why != NULL && strstr(why, t[i].why) == NULL))
			fail_msg("row %zu: verified %d, \"%s\"", i, got, why);
		tlsa_result_free(r);
	}
}

static void
test_nothing_usable(void **state)
{
	struct tlsa_result *r = calloc(1, sizeof(*r));
	struct tls_client_target t = {"mx.sluice.test", 25, NULL, 0, NULL};
	const char *err = NULL;
	SSL *cl;

	(void)state;
	assert_non_null(r);
	record_of(r, "mx.sluice.test", "server.pem", 0, 1, 1, 1); /* PKIX */
	assert_int_equal(r->nusable, 0);
	cl = tls_client_ssl(cli, &t, NULL, &err);
	assert_non_null(cl);
	assert_int_equal(tls_dane_enable(cl, r, "mx.sluice.test", &err), -1);
	assert_non_null(err);
	SSL_free(cl);
	tlsa_result_free(r);
}

int
main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_rr_parse),
	    cmocka_unit_test(test_rr_usable),
	    cmocka_unit_test(test_rr_format_and_qname),
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_digest),
	};
	const struct CMUnitTest tls[] = {
	    cmocka_unit_test(test_cert_rr),
	    cmocka_unit_test(test_handshakes),
	    cmocka_unit_test(test_nothing_usable),
	};
	int failed = cmocka_run_group_tests_name("dane pure", pure, NULL, NULL);

	return failed + cmocka_run_group_tests_name(
	                    "dane handshakes", tls, setup_tls, teardown_tls);
}
