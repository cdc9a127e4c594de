/*
 * test_tls_verify.c - the TLS policy decisions of src/tls/tls_verify.c as
 * tables: RFC 9525 name matching (next to what OpenSSL's defaults would
 * say, to show why they are not used), the TlsDomain rule, TlsAuthLevel
 * evaluation over the test PKI's good, self-signed, expired, revoked and
 * wrong-name certificates, Domain Security's inbound decision, and the
 * level name table.
 */
#include "test_tls.h"

#include "conf/conf.h"
#include "tls/tls_verify.h"

/* ---- RFC 9525 name matching ---- */

struct name_row {
	const char *san; /* NULL: no subjectAltName (CN-only) */
	const char *cn;
	const char *name;
	int want;            /* tls_name_matches() */
	int openssl_default; /* X509_check_host() with flags 0; -1: n/a */
};

static const struct name_row name_rows[] = {
    {"DNS:mx.example.com", "x", "mx.example.com", 1, 1},
    {"DNS:mx.example.com", "x", "MX.Example.COM", 1, 1},
    {"DNS:MX.EXAMPLE.COM", "x", "mx.example.com", 1, 1},
    /* The absolute form names the same host. */
    {"DNS:mx.example.com", "x", "mx.example.com.", 1, 0},
    {"DNS:mx.example.com", "x", "mx.example.org", 0, 0},
    {"DNS:mx.example.com", "x", "example.com", 0, 0},
    {"DNS:mx.example.com", "x", "", 0, -1},
    /* Wildcards: whole left-most label, exactly one label. */
    {"DNS:*.example.com", "x", "mx.example.com", 1, 1},
    {"DNS:*.example.com", "x", "a.b.example.com", 0, 0},
    {"DNS:*.example.com", "x", "example.com", 0, 0},
    /* Partial wildcards: OpenSSL's default accepts them, RFC 9525 not. */
    {"DNS:w*.example.com", "x", "www.example.com", 0, 1},
    {"DNS:*w.example.com", "x", "aw.example.com", 0, 1},
    {"DNS:*.*.example.com", "x", "a.b.example.com", 0, 0},
    {"DNS:a.*.example.com", "x", "a.b.example.com", 0, 0},
    /* A wildcard directly under a TLD: OpenSSL refuses it itself. */
    {"DNS:*.com", "x", "example.com", 0, 0},
    {"DNS:*", "x", "localhost", 0, 0},
    /*
     * No public suffix list: "*.co.uk" does match; CAs may not issue
     * such certificates (CA/B Forum baseline requirements).
     */
    {"DNS:*.co.uk", "x", "example.co.uk", 1, 1},
    /* Reference names that are not host names never match. */
    {"DNS:*.example.com", "x", ".example.com", 0, 1},
    {"DNS:*.example.com", "x", "*.example.com", 0, 1},
    {"DNS:mx_1.example.com", "x", "mx_1.example.com", 0, 1},
    {"DNS:-mx.example.com", "x", "-mx.example.com", 0, 1},
    /* No CN fallback: OpenSSL's default uses the CN without SANs. */
    {NULL, "mx.example.com", "mx.example.com", 0, 1},
    {"DNS:other.example.com", "mx.example.com", "mx.example.com", 0, 0},
    /* Addresses match IP-IDs only, never DNS-IDs. */
    {"IP:127.0.0.1", "x", "127.0.0.1", 1, -1},
    {"IP:127.0.0.1", "x", "[127.0.0.1]", 1, -1},
    {"IP:127.0.0.1", "x", "127.0.0.2", 0, -1},
    {"IP:127.0.0.1", "x", "localhost", 0, 0},
    {"DNS:127.0.0.1", "x", "127.0.0.1", 0, 1},
    {"IP:::1", "x", "::1", 1, -1},
    {"IP:::1", "x", "[IPv6:::1]", 1, -1},
    {"IP:::1", "x", "[ipv6:0:0:0:0:0:0:0:1]", 1, -1},
    /* RFC 5321 4.1.3: an IPv6 literal needs its "IPv6:" tag. */
    {"IP:::1", "x", "[::1]", 0, -1},
    {"IP:127.0.0.1", "x", "[127.0.0.1", 0, -1},
    {"DNS:mx.example.com,IP:192.0.2.1", "x", "192.0.2.1", 1, -1},
    {"DNS:mx.example.com,IP:192.0.2.1", "x", "mx.example.com", 1, 1},
};

static void
test_name_matches_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(name_rows) / sizeof(name_rows[0]); i++) {
		const struct name_row *r = &name_rows[i];
		X509 *x = test_make_cert(r->san, r->cn);
		int got = tls_name_matches(x, r->name);

		if (got != r->want)
			fail_msg(
			    "row %zu: SAN %s, name \"%s\": got %d, want %d", i,
			    r->san ? r->san : "(none)", r->name, got, r->want);
		if (r->openssl_default >= 0) {
			int d = X509_check_host(x, r->name, 0, 0, NULL) == 1;

			if (d != r->openssl_default)
				fail_msg("row %zu: OpenSSL default for %s: "
				         "got %d, documented %d",
				    i, r->name, d, r->openssl_default);
		}
		X509_free(x);
	}
}

static void
test_name_matches_edge(void **state)
{
	char label[80], longname[300];
	X509 *x = test_make_cert("DNS:mx.example.com", "x");

	(void)state;
	assert_int_equal(tls_name_matches(NULL, "mx.example.com"), 0);
	assert_int_equal(tls_name_matches(x, NULL), 0);
	/* A 64-character label is not a host name (RFC 1035). */
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(longname, sizeof(longname), "%s.example.com", label);
	assert_int_equal(tls_name_valid(longname), 0);
	label[63] = '\0';
	snprintf(longname, sizeof(longname), "%s.example.com", label);
	assert_int_equal(tls_name_valid(longname), 1);
	/* 254 characters: over TLS_NAME_MAX. */
	memset(longname, 'a', 254);
	for (int i = 63; i < 254; i += 64)
		longname[i] = '.';
	longname[254] = '\0';
	assert_int_equal(tls_name_valid(longname), 0);
	longname[253] = '\0';
	assert_int_equal(tls_name_valid(longname), 1);
	assert_int_equal(tls_name_valid("a..b"), 0);
	assert_int_equal(tls_name_valid("."), 0);
	assert_int_equal(tls_name_valid("a.b."), 1);
	assert_int_equal(tls_name_valid("a-.b"), 0);
	assert_int_equal(tls_name_valid("a b"), 0);
	assert_int_equal(tls_name_valid("xn--bcher-kva.example"), 1);
	X509_free(x);
}

/* ---- TlsDomain ---- */

struct domain_row {
	const char *san;
	const char *tls_domain;
	int want;
};

static const struct domain_row domain_rows[] = {
    /* "*.contoso.com": the domain itself and everything below it. */
    {"DNS:contoso.com", "*.contoso.com", 1},
    {"DNS:mx.contoso.com", "*.contoso.com", 1},
    {"DNS:a.b.contoso.com", "*.contoso.com", 1},
    {"DNS:*.contoso.com", "*.contoso.com", 1},
    {"DNS:*.mail.contoso.com", "*.contoso.com", 1},
    {"DNS:CONTOSO.COM", "*.contoso.com", 1},
    {"DNS:mx.contoso.com", "*.Contoso.Com", 1},
    {"DNS:mx.contoso.com.", "*.contoso.com", 1},
    {"DNS:mx.contoso.com", "*.contoso.com.", 1},
    {"DNS:other.example,DNS:mx.contoso.com", "*.contoso.com", 1},
    {"DNS:notcontoso.com", "*.contoso.com", 0},
    {"DNS:contoso.com.evil.example", "*.contoso.com", 0},
    {"DNS:mx.contoso.co", "*.contoso.com", 0},
    {"DNS:com", "*.contoso.com", 0},
    /* Certificate wildcards that RFC 9525 never honours do not count. */
    {"DNS:w*.contoso.com", "*.contoso.com", 0},
    {"DNS:*mx.contoso.com", "*.contoso.com", 0},
    {"DNS:*.com", "*.contoso.com", 0},
    {"DNS:mx.*.contoso.com", "*.contoso.com", 0},
    {"IP:192.0.2.1", "*.contoso.com", 0},
    {NULL, "*.contoso.com", 0}, /* CN-only: CN is "mx.contoso.com" */
    /* Without "*.": one host, RFC 9525 matching. */
    {"DNS:mx.contoso.com", "mx.contoso.com", 1},
    {"DNS:*.contoso.com", "mx.contoso.com", 1},
    {"DNS:contoso.com", "mx.contoso.com", 0},
    {"DNS:mx.contoso.com", "contoso.com", 0},
    {"DNS:*.contoso.com", "contoso.com", 0},
    /* Patterns that would accept too much match nothing. */
    {"DNS:example.com", "*.com", 0},
    {"DNS:mx.contoso.com", "*", 0},
    {"DNS:mx.contoso.com", "mx.*.com", 0},
    {"DNS:mx.contoso.com", "*.*.com", 0},
    {"DNS:mx.contoso.com", "w*.contoso.com", 0},
    {"DNS:mx.contoso.com", "", 0},
};

static void
test_domain_matches_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(domain_rows) / sizeof(domain_rows[0]);
	     i++) {
		const struct domain_row *r = &domain_rows[i];
		X509 *x = test_make_cert(r->san, "mx.contoso.com");
		int got = tls_domain_matches(x, r->tls_domain);

		if (got != r->want)
			fail_msg("row %zu: SAN %s, TlsDomain \"%s\": got %d, "
			         "want %d",
			    i, r->san ? r->san : "(none)", r->tls_domain, got,
			    r->want);
		X509_free(x);
	}
}

static void
test_domain_matches_hostile_san(void **state)
{
	static const char nul[] = "evil.example\0.contoso.com";
	static const char ctl[] = "mx\n.contoso.com";
	X509 *x;
	char names[128];

	(void)state;
	/* A NUL inside a DNS-ID must not make it end in ".contoso.com". */
	x = test_make_cert_raw_dns(nul, (int)sizeof(nul) - 1);
	assert_int_equal(tls_domain_matches(x, "*.contoso.com"), 0);
	assert_int_equal(tls_name_matches(x, "evil.example"), 0);
	tls_cert_names(x, names, sizeof(names));
	assert_string_equal(names, "DNS:(invalid)");
	X509_free(x);
	x = test_make_cert_raw_dns(ctl, (int)sizeof(ctl) - 1);
	assert_int_equal(tls_domain_matches(x, "*.contoso.com"), 0);
	tls_cert_names(x, names, sizeof(names));
	assert_null(strchr(names, '\n'));
	X509_free(x);
}

/* ---- names for logs ---- */

static void
test_cert_names(void **state)
{
	X509 *x = test_load_cert("server.pem");
	char out[256], small[24];

	(void)state;
	tls_cert_names(x, out, sizeof(out));
	assert_string_equal(out, "DNS:mx.sluice.test, DNS:localhost, "
	                         "IP:127.0.0.1, IP:::1");
	/* A list that does not fit says so. */
	tls_cert_names(x, small, sizeof(small));
	assert_string_equal(small, "DNS:mx.sluice.test...");
	X509_free(x);
	x = test_load_cert("cn-only.pem");
	tls_cert_names(x, out, sizeof(out));
	assert_string_equal(out, "");
	X509_free(x);
}

/* ---- TlsAuthLevel evaluation over the test PKI ---- */

struct eval_row {
	const char *cert;      /* PKI file; NULL: no certificate */
	const char *ca;        /* trust anchors */
	const char *untrusted; /* intermediates sent by the peer */
	const char *crl;
	enum tls_auth_level level;
	const char *tls_domain;
	const char *domain;
	enum tls_check want;
	const char *reason; /* substring of why; NULL: empty */
};

#define EO TLS_AUTH_ENCRYPTION_ONLY
#define CV TLS_AUTH_CERTIFICATE_VALIDATION
#define DV TLS_AUTH_DOMAIN_VALIDATION

static const struct eval_row eval_rows[] = {
    /* EncryptionOnly: any certificate will do. */
    {"server.pem", "trusted.pem", NULL, NULL, EO, NULL, NULL, TLS_CHECK_OK,
        NULL},
    {"self.pem", "trusted.pem", NULL, NULL, EO, NULL, NULL, TLS_CHECK_OK, NULL},
    {"expired.pem", "trusted.pem", NULL, NULL, EO, NULL, NULL, TLS_CHECK_OK,
        NULL},
    {"wrong.pem", "trusted.pem", NULL, NULL, EO, NULL, NULL, TLS_CHECK_OK,
        NULL},
    /* CertificateValidation: the chain, not the name. */
    {"server.pem", "trusted.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_OK,
        NULL},
    {"wrong.pem", "trusted.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_OK,
        NULL},
    {"self.pem", "trusted.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_UNTRUSTED,
        "certificate chain not trusted: self-signed certificate"},
    {"partner.pem", "ca.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_UNTRUSTED,
        "certificate chain not trusted: unable to get local issuer "
        "certificate"},
    {"expired.pem", "trusted.pem", NULL, NULL, CV, NULL, NULL,
        TLS_CHECK_EXPIRED,
        "certificate has expired (not after 2021-01-01 00:00:00 UTC)"},
    {"notyet.pem", "trusted.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_EXPIRED,
        "certificate is not yet valid (not before 2099-12-31 00:00:00 "
        "UTC)"},
    {"revoked.pem", "trusted.pem", NULL, "ca.crl", CV, NULL, NULL,
        TLS_CHECK_REVOKED, "certificate revoked by its CA"},
    /* No CRL configured: no revocation check (docs/tls.md). */
    {"revoked.pem", "trusted.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_OK,
        NULL},
    {"server.pem", "trusted.pem", NULL, "ca.crl", CV, NULL, NULL, TLS_CHECK_OK,
        NULL},
    {"server.pem", "ca.pem", NULL, "ca-stale.crl", CV, NULL, NULL,
        TLS_CHECK_REVOKED,
        "certificate revocation status unknown: CRL has expired; the "
        "CRLFile needs a current CRL from that CA"},
    /* Leaf first, then the intermediate: the chain is complete. */
    {"chain.pem", "ca.pem", "inter-ca.pem", NULL, DV, NULL, "chain.sluice.test",
        TLS_CHECK_OK, NULL},
    {"chain.pem", "ca.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_UNTRUSTED,
        "unable to get local issuer certificate"},
    /* DomainValidation: TlsDomain, else the recipient domain. */
    {"server.pem", "trusted.pem", NULL, NULL, DV, "*.sluice.test", NULL,
        TLS_CHECK_OK, NULL},
    {"wild.pem", "trusted.pem", NULL, NULL, DV, "*.sluice.test", NULL,
        TLS_CHECK_OK, NULL},
    {"server.pem", "trusted.pem", NULL, NULL, DV, "mx.sluice.test", NULL,
        TLS_CHECK_OK, NULL},
    {"server.pem", "trusted.pem", NULL, NULL, DV, "", "mx.sluice.test",
        TLS_CHECK_OK, NULL},
    {"server.pem", "trusted.pem", NULL, NULL, DV, NULL, "localhost",
        TLS_CHECK_OK, NULL},
    {"server.pem", "trusted.pem", NULL, NULL, DV, NULL, "[127.0.0.1]",
        TLS_CHECK_OK, NULL},
    {"wrong.pem", "trusted.pem", NULL, NULL, DV, "*.sluice.test", NULL,
        TLS_CHECK_NAME_MISMATCH,
        "certificate name mx.other.test does not match TlsDomain "
        "*.sluice.test"},
    {"server.pem", "trusted.pem", NULL, NULL, DV, "*.contoso.com", NULL,
        TLS_CHECK_NAME_MISMATCH,
        "certificate names mx.sluice.test, localhost, 127.0.0.1, ::1 do not "
        "match TlsDomain *.contoso.com"},
    {"wild.pem", "trusted.pem", NULL, NULL, DV, NULL, "sluice.test",
        TLS_CHECK_NAME_MISMATCH,
        "certificate name *.sluice.test does not match the recipient "
        "domain sluice.test"},
    {"cn-only.pem", "trusted.pem", NULL, NULL, DV, "*.sluice.test", NULL,
        TLS_CHECK_NAME_MISMATCH,
        "certificate has no subjectAltName (its subject CN is never used)"},
    {"server.pem", "trusted.pem", NULL, NULL, DV, NULL, NULL,
        TLS_CHECK_NAME_MISMATCH, "no TlsDomain and no recipient domain"},
    /* The chain is judged before the name. */
    {"self.pem", "trusted.pem", NULL, NULL, DV, "*.sluice.test", NULL,
        TLS_CHECK_UNTRUSTED, "self-signed"},
    {"expired.pem", "trusted.pem", NULL, NULL, DV, "*.other.test", NULL,
        TLS_CHECK_EXPIRED, "has expired"},
    /* A partner certificate from either CA. */
    {"partner-by-ca.pem", "ca.pem", NULL, NULL, DV, NULL, "partner.test",
        TLS_CHECK_OK, NULL},
    {"partner.pem", "trusted.pem", NULL, "crls.pem", DV, NULL, "partner.test",
        TLS_CHECK_OK, NULL},
    /* Nothing at all. */
    {NULL, "trusted.pem", NULL, NULL, CV, NULL, NULL, TLS_CHECK_NO_CERT,
        "no certificate was presented"},
    {NULL, "trusted.pem", NULL, NULL, EO, NULL, NULL, TLS_CHECK_OK, NULL},
};

static void
test_evaluate_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(eval_rows) / sizeof(eval_rows[0]); i++) {
		const struct eval_row *r = &eval_rows[i];
		struct tls_outcome o = {.tls = 1, .handshake_ok = 1};
		char why[512];
		enum tls_check got;

		o.verify_depth = -1;
		if (r->cert != NULL) {
			o.cert = test_load_cert(r->cert);
			o.verify = test_verify(o.cert, r->ca, r->untrusted,
			    r->crl, &o.verify_depth);
		}
		got = tls_evaluate(
		    r->level, &o, r->tls_domain, r->domain, why, sizeof(why));
		if (got != r->want)
			fail_msg("row %zu (%s, %s): got %s (%s), want %s", i,
			    r->cert ? r->cert : "none",
			    tls_level_name(r->level), tls_check_name(got), why,
			    tls_check_name(r->want));
		if (r->reason == NULL ? why[0] != '\0'
		                      : strstr(why, r->reason) == NULL)
			fail_msg("row %zu: reason \"%s\", want \"%s\"", i, why,
			    r->reason ? r->reason : "");
		X509_free(o.cert);
	}
}

static void
test_evaluate_without_tls(void **state)
{
	struct tls_outcome none = {.verify_depth = -1};
	struct tls_outcome failed = {.tls = 1, .verify_depth = -1};
	char why[256];

	(void)state;
	/* Opportunistic: nothing is required, not even TLS. */
	assert_int_equal(
	    tls_evaluate(TLS_AUTH_NONE, &none, NULL, NULL, why, sizeof(why)),
	    TLS_CHECK_OK);
	for (int l = EO; l <= DV; l++) {
		assert_int_equal(
		    tls_evaluate((enum tls_auth_level)l, &none, "*.x.example",
		        "x.example", why, sizeof(why)),
		    TLS_CHECK_NO_TLS);
		assert_non_null(strstr(why, "no STARTTLS"));
		assert_int_equal(tls_evaluate((enum tls_auth_level)l, &failed,
		                     NULL, "x.example", why, sizeof(why)),
		    TLS_CHECK_HANDSHAKE);
	}
	/* why may be NULL. */
	assert_int_equal(
	    tls_evaluate(EO, &none, NULL, NULL, NULL, 0), TLS_CHECK_NO_TLS);
	/* A short why buffer is filled, bounded, terminated. */
	assert_int_equal(
	    tls_evaluate(EO, &none, NULL, NULL, why, 8), TLS_CHECK_NO_TLS);
	assert_int_equal(strlen(why), 7);
}

/* ---- Domain Security, inbound ---- */

struct secure_row {
	const char *cert; /* NULL: no client certificate */
	int tls;
	const char *crl;
	const char *sender;
	enum tls_check want;
	const char *reason;
};

static const struct secure_row secure_rows[] = {
    {"partner.pem", 1, NULL, "partner.test", TLS_CHECK_OK, NULL},
    {"partner.pem", 1, NULL, "PARTNER.TEST", TLS_CHECK_OK, NULL},
    {"partner.pem", 1, NULL, "mx.partner.test", TLS_CHECK_OK, NULL},
    {"partner-by-ca.pem", 1, NULL, "partner.test", TLS_CHECK_OK, NULL},
    {"partner.pem", 1, "crls.pem", "partner.test", TLS_CHECK_OK, NULL},
    {"partner.pem", 1, NULL, "sub.partner.test", TLS_CHECK_NAME_MISMATCH,
        "the client certificate does not name sub.partner.test (it names "
        "partner.test, mx.partner.test)"},
    {"partner-wrong.pem", 1, NULL, "partner.test", TLS_CHECK_NAME_MISMATCH,
        "the client certificate does not name partner.test (it names "
        "other.test)"},
    {"partner-cn.pem", 1, NULL, "partner.test", TLS_CHECK_NAME_MISMATCH,
        "does not name partner.test (it has no subjectAltName; the subject "
        "CN is never used)"},
    {"partner-expired.pem", 1, NULL, "partner.test", TLS_CHECK_EXPIRED,
        "client certificate has expired (not after 2021-01-01"},
    {"partner-self.pem", 1, NULL, "partner.test", TLS_CHECK_UNTRUSTED,
        "client certificate chain not trusted: self-signed certificate"},
    {"partner-revoked.pem", 1, "partner-ca.crl", "partner.test",
        TLS_CHECK_REVOKED, "client certificate revoked by its CA"},
    {"partner-revoked.pem", 1, NULL, "partner.test", TLS_CHECK_OK, NULL},
    {NULL, 1, NULL, "partner.test", TLS_CHECK_NO_CERT,
        "no client certificate was presented"},
    {NULL, 0, NULL, "partner.test", TLS_CHECK_NO_TLS,
        "the session is not encrypted; use STARTTLS with a client "
        "certificate"},
    /* Envelope bytes never reach the reason (it becomes an SMTP reply). */
    {"partner.pem", 1, NULL, "evil\r\n250 ok", TLS_CHECK_NAME_MISMATCH,
        "does not name (invalid name)"},
};

static void
test_domain_secure_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(secure_rows) / sizeof(secure_rows[0]);
	     i++) {
		const struct secure_row *r = &secure_rows[i];
		struct tls_outcome o = {.tls = r->tls, .handshake_ok = r->tls};
		char why[512];
		enum tls_check got;

		o.verify_depth = -1;
		if (r->cert != NULL) {
			o.cert = test_load_cert(r->cert);
			o.verify = test_verify(o.cert, "trusted.pem", NULL,
			    r->crl, &o.verify_depth);
		}
		got = tls_domain_secure_check(&o, r->sender, why, sizeof(why));
		if (got != r->want)
			fail_msg("row %zu (%s): got %s (%s), want %s", i,
			    r->cert ? r->cert : "none", tls_check_name(got),
			    why, tls_check_name(r->want));
		if (r->reason == NULL ? why[0] != '\0'
		                      : strstr(why, r->reason) == NULL)
			fail_msg("row %zu: reason \"%s\", want \"%s\"", i, why,
			    r->reason ? r->reason : "");
		assert_null(strpbrk(why, "\r\n"));
		X509_free(o.cert);
	}
}

/* ---- classification and names ---- */

/* Which certificates of a client's chain Domain Security takes. */
static void
test_client_purpose(void **state)
{
	static const struct {
		const char *cert;
		int depth, want;
	} t[] = {
	    {"partner.pem", 0, 1},        /* serverAuth, clientAuth */
	    {"partner-server.pem", 0, 1}, /* serverAuth only (issue 10.19) */
	    {"partner-email.pem", 0, 0},  /* emailProtection only */
	    {"partner-ca.pem", 1, 1},     /* a CA above them */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		X509 *x = test_load_cert(t[i].cert);

		if (tls_client_purpose_ok(x, t[i].depth) != t[i].want)
			fail_msg("%s: want %d", t[i].cert, t[i].want);
		X509_free(x);
	}
	assert_int_equal(tls_client_purpose_ok(NULL, 0), 0);
}

static void
test_verify_classify(void **state)
{
	static const struct {
		long verify;
		enum tls_check want;
	} rows[] = {
	    {X509_V_OK, TLS_CHECK_OK},
	    {X509_V_ERR_UNABLE_TO_GET_CRL, TLS_CHECK_OK},
	    {X509_V_ERR_CERT_HAS_EXPIRED, TLS_CHECK_EXPIRED},
	    {X509_V_ERR_CERT_NOT_YET_VALID, TLS_CHECK_EXPIRED},
	    {X509_V_ERR_CERT_REVOKED, TLS_CHECK_REVOKED},
	    {X509_V_ERR_CRL_HAS_EXPIRED, TLS_CHECK_REVOKED},
	    {X509_V_ERR_CRL_SIGNATURE_FAILURE, TLS_CHECK_REVOKED},
	    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, TLS_CHECK_UNTRUSTED},
	    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, TLS_CHECK_UNTRUSTED},
	    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, TLS_CHECK_UNTRUSTED},
	    {X509_V_ERR_CERT_SIGNATURE_FAILURE, TLS_CHECK_UNTRUSTED},
	    {X509_V_ERR_INVALID_PURPOSE, TLS_CHECK_UNTRUSTED},
	    {X509_V_ERR_CERT_CHAIN_TOO_LONG, TLS_CHECK_UNTRUSTED},
	    {X509_V_ERR_UNSPECIFIED, TLS_CHECK_UNTRUSTED},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (tls_verify_classify(rows[i].verify) != rows[i].want)
			fail_msg("verify %ld: got %s", rows[i].verify,
			    tls_check_name(
			        tls_verify_classify(rows[i].verify)));
}

static void
test_check_names(void **state)
{
	(void)state;
	for (int a = TLS_CHECK_OK; a <= TLS_CHECK_NAME_MISMATCH; a++) {
		const char *na = tls_check_name((enum tls_check)a);

		assert_true(na[0] != '\0');
		assert_string_not_equal(na, "Unknown");
		for (int b = a + 1; b <= TLS_CHECK_NAME_MISMATCH; b++)
			assert_string_not_equal(
			    na, tls_check_name((enum tls_check)b));
	}
	assert_string_equal(tls_check_name((enum tls_check)99), "Unknown");
}

static void
test_level_names(void **state)
{
	static const struct {
		const char *text;
		int ok;
		enum tls_auth_level level;
	} rows[] = {
	    {"EncryptionOnly", 1, TLS_AUTH_ENCRYPTION_ONLY},
	    {"CertificateValidation", 1, TLS_AUTH_CERTIFICATE_VALIDATION},
	    {"DomainValidation", 1, TLS_AUTH_DOMAIN_VALIDATION},
	    {"domainvalidation", 1, TLS_AUTH_DOMAIN_VALIDATION},
	    {"", 1, TLS_AUTH_NONE},
	    {"None", 0, TLS_AUTH_NONE},
	    {"Domain Validation", 0, TLS_AUTH_NONE},
	    {"DomainValidationX", 0, TLS_AUTH_NONE},
	};
	enum tls_auth_level l;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		l = TLS_AUTH_NONE;
		assert_int_equal(
		    tls_level_parse(rows[i].text, &l), rows[i].ok ? 0 : -1);
		if (rows[i].ok)
			assert_int_equal(l, rows[i].level);
	}
	/* Round trip, and the same names as the configuration's table. */
	for (int i = TLS_AUTH_NONE; i <= TLS_AUTH_DOMAIN_VALIDATION; i++) {
		const char *name = tls_level_name((enum tls_auth_level)i);

		assert_int_equal(tls_level_parse(name, &l), 0);
		assert_int_equal(l, i);
		assert_string_equal(
		    name, conf_tls_level_name((enum tls_auth_level)i));
	}
	/* The levels are ordered: each needs the checks of those below. */
	assert_true(TLS_AUTH_NONE < TLS_AUTH_ENCRYPTION_ONLY);
	assert_true(TLS_AUTH_ENCRYPTION_ONLY < TLS_AUTH_CERTIFICATE_VALIDATION);
	assert_true(
	    TLS_AUTH_CERTIFICATE_VALIDATION < TLS_AUTH_DOMAIN_VALIDATION);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_matches_table),
	    cmocka_unit_test(test_name_matches_edge),
	    cmocka_unit_test(test_domain_matches_table),
	    cmocka_unit_test(test_domain_matches_hostile_san),
	    cmocka_unit_test(test_cert_names),
	    cmocka_unit_test(test_evaluate_table),
	    cmocka_unit_test(test_evaluate_without_tls),
	    cmocka_unit_test(test_domain_secure_table),
	    cmocka_unit_test(test_client_purpose),
	    cmocka_unit_test(test_verify_classify),
	    cmocka_unit_test(test_check_names),
	    cmocka_unit_test(test_level_names),
	};

	return cmocka_run_group_tests(
	    tests, test_pki_group_setup, test_pki_group_teardown);
}
