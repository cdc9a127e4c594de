/*
 * test_tls_client.c - the SMTP client's TLS (src/tls/tls_client.c) in
 * real in-memory handshakes against the server store: SNI, the
 * TlsAuthLevel check per level and certificate, our certificate for
 * mutual TLS, the Domain Security trust anchors, and the session cache
 * (resumption per next hop, bounded, dropped after a failure).
 */
#include "test_tls.h"

#include "tls/tls_client.h"
#include "tls/tls_store.h"

/* The server side: every certificate of the PKI a test may serve. */
static struct tls_store *servers;

static int
setup(void **state)
{
	static const char *const certs[] = {"server", "wild", "self", "expired",
	    "wrong", "partner", "cn-only", "revoked"};
	struct tls_store_cert c[8];
	static char pem[8][320], key[8][320];
	struct tls_store_params p = {0};

	(void)state;
	if (test_pki_dir() == NULL)
		return -1;
	for (size_t i = 0; i < 8; i++) {
		snprintf(
		    pem[i], sizeof(pem[i]), "%s/%s.pem", test_pki, certs[i]);
		snprintf(
		    key[i], sizeof(key[i]), "%s/%s.key", test_pki, certs[i]);
		c[i].name = certs[i];
		c[i].certificate_file = pem[i];
		c[i].key_file = key[i];
	}
	p.trusted_ca_file = test_pki_path("trusted.pem");
	servers = tls_store_build(c, 8, &p, stderr);
	return servers == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	tls_store_free(servers);
	test_pki_cleanup();
	return 0;
}

static struct tls_client *
client(const char *ds_ca, const char *crl)
{
	struct tls_client_params p = {0};
	struct tls_client *c;

	p.trusted_ca_file = test_pki_path("trusted.pem");
	p.domain_secure_ca_file = ds_ca != NULL ? test_pki_path(ds_ca) : NULL;
	p.crl_file = crl != NULL ? test_pki_path(crl) : NULL;
	c = tls_client_new(&p, stderr);
	assert_non_null(c);
	return c;
}

/*
 * Connect: client SSL for the target, server SSL serving `served`
 * (asking for a client certificate when ask).  Returns 1 on a completed
 * handshake; *out_client and *out_server stay for inspection.
 */
static int
connect_to(struct tls_client *c, const struct tls_client_target *t,
    const char *served, int ask, const struct tls_store *ours, SSL **out_client,
    SSL **out_server)
{
	const char *why = NULL;
	SSL *cl = tls_client_ssl(c, t, ours, &why);
	SSL *sv = tls_store_ssl(servers, served, ask);
	int ok;

	if (cl == NULL)
		fail_msg("tls_client_ssl: %s", why);
	assert_non_null(sv);
	ok = test_handshake(cl, sv);
	tls_client_done(cl, ok);
	*out_client = cl;
	*out_server = sv;
	return ok;
}

static void
finish(SSL *cl, SSL *sv)
{
	test_close(cl, sv);
	SSL_free(cl);
	SSL_free(sv);
}

/* ---- the check per level ---- */

struct level_row {
	const char *served; /* certificate the next hop presents */
	const char *host;   /* next hop name (SNI) */
	enum tls_auth_level level;
	const char *tls_domain;
	const char *domain; /* recipient domain */
	enum tls_check want;
	const char *reason;
};

#define EO TLS_AUTH_ENCRYPTION_ONLY
#define CV TLS_AUTH_CERTIFICATE_VALIDATION
#define DV TLS_AUTH_DOMAIN_VALIDATION

static const struct level_row level_rows[] = {
    {"server", "mx.sluice.test", TLS_AUTH_NONE, NULL, "sluice.test",
        TLS_CHECK_OK, NULL},
    {"self", "mx.sluice.test", TLS_AUTH_NONE, NULL, "sluice.test", TLS_CHECK_OK,
        NULL},
    {"self", "mx.sluice.test", EO, NULL, "sluice.test", TLS_CHECK_OK, NULL},
    {"self", "mx.sluice.test", CV, NULL, "sluice.test", TLS_CHECK_UNTRUSTED,
        "certificate chain not trusted: self-signed certificate"},
    {"expired", "mx.sluice.test", EO, NULL, "sluice.test", TLS_CHECK_OK, NULL},
    {"expired", "mx.sluice.test", CV, NULL, "sluice.test", TLS_CHECK_EXPIRED,
        "certificate has expired"},
    {"wrong", "mx.other.test", CV, NULL, "sluice.test", TLS_CHECK_OK, NULL},
    {"wrong", "mx.other.test", DV, "*.sluice.test", "sluice.test",
        TLS_CHECK_NAME_MISMATCH,
        "certificate name mx.other.test does not match TlsDomain "
        "*.sluice.test"},
    {"server", "mx.sluice.test", DV, "*.sluice.test", "x.example", TLS_CHECK_OK,
        NULL},
    {"server", "mx.sluice.test", DV, NULL, "mx.sluice.test", TLS_CHECK_OK,
        NULL},
    {"server", "mx.sluice.test", DV, "*.contoso.com", "contoso.com",
        TLS_CHECK_NAME_MISMATCH, "do not match TlsDomain *.contoso.com"},
    /* (an unknown SNI name: the connector's certificate serves) */
    {"cn-only", "unknown.example", DV, "*.sluice.test", NULL,
        TLS_CHECK_NAME_MISMATCH, "no subjectAltName"},
    /* SNI picks the wildcard certificate, which covers the host. */
    {"server", "a.sluice.test", DV, "*.sluice.test", NULL, TLS_CHECK_OK, NULL},
    /* A smart host given as an address: no SNI, the IP SAN matches. */
    {"server", "[127.0.0.1]", DV, NULL, "[127.0.0.1]", TLS_CHECK_OK, NULL},
    {"server", "127.0.0.1", DV, "127.0.0.1", NULL, TLS_CHECK_OK, NULL},
    /* No CRL: a revoked certificate is not noticed (docs/tls.md). */
    {"revoked", "mx.sluice.test", CV, NULL, NULL, TLS_CHECK_OK, NULL},
};

static void
test_levels_table(void **state)
{
	struct tls_client *c = client(NULL, NULL);

	(void)state;
	for (size_t i = 0; i < sizeof(level_rows) / sizeof(level_rows[0]);
	     i++) {
		const struct level_row *r = &level_rows[i];
		struct tls_client_target t = {.host = r->host, .port = 25};
		SSL *cl, *sv;
		char why[512] = "";
		enum tls_check got;

		assert_true(connect_to(c, &t, r->served, 0, NULL, &cl, &sv));
		/* SNI may choose another: the row must test what it says. */
		if (strcmp(tls_store_served(sv), r->served) != 0 &&
		    strcmp(r->host, "a.sluice.test") != 0)
			fail_msg("row %zu: %s served instead of %s", i,
			    tls_store_served(sv), r->served);
		got = tls_client_check(cl, 1, r->level, r->tls_domain,
		    r->domain, why, sizeof(why));
		if (got != r->want)
			fail_msg("row %zu (%s at %s): got %s (%s), want %s", i,
			    r->served, tls_level_name(r->level),
			    tls_check_name(got), why, tls_check_name(r->want));
		if (r->reason != NULL && strstr(why, r->reason) == NULL)
			fail_msg("row %zu: reason \"%s\", want \"%s\"", i, why,
			    r->reason);
		finish(cl, sv);
	}
	tls_client_free(c);
}

static void
test_sni_sent(void **state)
{
	static const struct {
		const char *host;
		const char *sni; /* what the server saw; NULL: none */
	} rows[] = {
	    {"mx.sluice.test", "mx.sluice.test"},
	    {"MX.sluice.test.", "MX.sluice.test"},
	    {"[127.0.0.1]", NULL},
	    {"127.0.0.1", NULL},
	    {"[IPv6:::1]", NULL},
	};
	struct tls_client *c = client(NULL, NULL);

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tls_client_target t = {.host = rows[i].host, .port = 25};
		SSL *cl, *sv;
		const char *seen;

		assert_true(connect_to(c, &t, "server", 0, NULL, &cl, &sv));
		seen = SSL_get_servername(sv, TLSEXT_NAMETYPE_host_name);
		if (rows[i].sni == NULL)
			assert_null(seen);
		else
			assert_string_equal(seen, rows[i].sni);
		finish(cl, sv);
	}
	tls_client_free(c);
}

/* Without TLS at all, and after a failed handshake. */
static void
test_check_without_tls(void **state)
{
	char why[256];
	struct tls_client *c = client(NULL, NULL);
	struct tls_client_target t = {.host = "mx.sluice.test", .port = 25};
	const char *err = NULL;
	SSL *cl = tls_client_ssl(c, &t, NULL, &err);

	(void)state;
	assert_int_equal(tls_client_check(NULL, 0, TLS_AUTH_NONE, NULL,
	                     "sluice.test", why, sizeof(why)),
	    TLS_CHECK_OK);
	assert_int_equal(tls_client_check(NULL, 0, EO, NULL, "sluice.test", why,
	                     sizeof(why)),
	    TLS_CHECK_NO_TLS);
	assert_int_equal(
	    tls_client_check(cl, 0, EO, NULL, "sluice.test", why, sizeof(why)),
	    TLS_CHECK_HANDSHAKE);
	SSL_free(cl);
	tls_client_free(c);
}

/* ---- our certificate, Domain Security trust ---- */

static void
test_client_certificate(void **state)
{
	static const char *const names[] = {"partner", "server"};
	struct tls_store_cert certs[2];
	char pem[2][320], key[2][320];
	struct tls_store_params p = {0};
	struct tls_store *ours;
	struct tls_client *c = client(NULL, NULL);
	struct tls_client_target t = {
	    .host = "mx.sluice.test", .port = 25, .cert_name = "partner"};
	struct tls_outcome o;
	const char *why = NULL;
	SSL *cl, *sv;

	(void)state;
	for (int i = 0; i < 2; i++) {
		snprintf(
		    pem[i], sizeof(pem[i]), "%s/%s.pem", test_pki, names[i]);
		snprintf(
		    key[i], sizeof(key[i]), "%s/%s.key", test_pki, names[i]);
		certs[i].name = names[i];
		certs[i].certificate_file = pem[i];
		certs[i].key_file = key[i];
	}
	p.trusted_ca_file = test_pki_path("trusted.pem");
	ours = tls_store_build(certs, 2, &p, stderr);
	assert_non_null(ours);
	/* The server asks: our partner certificate is what it gets. */
	assert_true(connect_to(c, &t, "server", 1, ours, &cl, &sv));
	tls_peer_outcome(sv, 1, &o);
	assert_int_equal(
	    tls_domain_secure_check(&o, "partner.test", NULL, 0), TLS_CHECK_OK);
	finish(cl, sv);
	/* Unknown certificate names, or no store: no connection. */
	t.cert_name = "nope";
	assert_null(tls_client_ssl(c, &t, ours, &why));
	assert_non_null(strstr(why, "TlsCertificateName"));
	t.cert_name = "partner";
	assert_null(tls_client_ssl(c, &t, NULL, &why));
	tls_store_free(ours);
	tls_client_free(c);
}

/*
 * A partner whose server certificate comes from its private CA: trusted
 * for Domain Security connections only, when that CA is configured.
 */
static void
test_domain_secure_trust(void **state)
{
	struct tls_client_params p = {0};
	struct tls_client *c;
	static const struct {
		int domain_secure;
		enum tls_check want;
	} rows[] = {
	    {0, TLS_CHECK_UNTRUSTED},
	    {1, TLS_CHECK_OK},
	};

	(void)state;
	p.trusted_ca_file = test_pki_path("ca.pem");
	p.domain_secure_ca_file = test_pki_path("partner-ca.pem");
	c = tls_client_new(&p, stderr);
	assert_non_null(c);
	for (size_t i = 0; i < 2; i++) {
		struct tls_client_target t = {.host = "mx.partner.test",
		    .port = 25,
		    .domain_secure = rows[i].domain_secure};
		SSL *cl, *sv;
		char why[256];

		assert_true(connect_to(c, &t, "partner", 0, NULL, &cl, &sv));
		assert_int_equal(tls_client_check(cl, 1, DV, NULL,
		                     "partner.test", why, sizeof(why)),
		    rows[i].want);
		finish(cl, sv);
	}
	tls_client_free(c);
}

static void
test_client_crl(void **state)
{
	struct tls_client *c = client(NULL, "crls.pem");
	struct tls_client_target t = {.host = "mx.sluice.test", .port = 25};
	SSL *cl, *sv;
	char why[256];

	(void)state;
	assert_true(connect_to(c, &t, "revoked", 0, NULL, &cl, &sv));
	assert_int_equal(
	    tls_client_check(cl, 1, CV, NULL, NULL, why, sizeof(why)),
	    TLS_CHECK_REVOKED);
	assert_non_null(strstr(why, "revoked"));
	/* EncryptionOnly does not care. */
	assert_int_equal(
	    tls_client_check(cl, 1, EO, NULL, NULL, NULL, 0), TLS_CHECK_OK);
	finish(cl, sv);
	assert_true(connect_to(c, &t, "server", 0, NULL, &cl, &sv));
	assert_int_equal(
	    tls_client_check(cl, 1, CV, NULL, NULL, NULL, 0), TLS_CHECK_OK);
	finish(cl, sv);
	tls_client_free(c);
}

static void
test_client_new_errors(void **state)
{
	struct tls_client_params p = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *err = open_memstream(&text, &len);

	(void)state;
	p.trusted_ca_file = "/nonexistent/ca.pem";
	assert_null(tls_client_new(&p, err));
	p.trusted_ca_file = test_pki_path("trusted.pem");
	p.crl_file = test_pki_path("server.key");
	assert_null(tls_client_new(&p, err));
	p.crl_file = NULL;
	p.ciphers = "NOPE";
	assert_null(tls_client_new(&p, err));
	fflush(err);
	assert_non_null(
	    strstr(text, "/nonexistent/ca.pem: No such file or directory\n"));
	assert_non_null(strstr(text, "/server.key: holds a certificate or key; "
	                             "a CRL file must hold CRLs only"));
	assert_non_null(strstr(text, "selects no usable cipher"));
	fclose(err);
	free(text);
}

/* ---- session cache ---- */

struct resume_row {
	const char *host;
	unsigned port;
	const char *cert_name;
	int max_version;
	int want_reused;
};

static void
test_session_cache(void **state)
{
	static const struct resume_row rows[] = {
	    {"mx.sluice.test", 25, NULL, TLS1_3_VERSION, 0},
	    {"mx.sluice.test", 25, NULL, TLS1_3_VERSION, 1},
	    {"MX.SLUICE.TEST", 25, NULL, TLS1_3_VERSION, 1},
	    /* Another port, another identity: another next hop. */
	    {"mx.sluice.test", 587, NULL, TLS1_3_VERSION, 0},
	    {"mx.sluice.test", 25, "partner", TLS1_3_VERSION, 0},
	    {"mx.sluice.test", 25, "partner", TLS1_3_VERSION, 1},
	    {"mx.sluice.test", 25, NULL, TLS1_3_VERSION, 1},
	    {"localhost", 25, NULL, TLS1_2_VERSION, 0},
	    {"localhost", 25, NULL, TLS1_2_VERSION, 1},
	    {"localhost", 25, NULL, TLS1_2_VERSION, 1},
	};
	static const char *const names[] = {"partner"};
	struct tls_store_cert cert;
	char pem[320], key[320];
	struct tls_store_params p = {0};
	struct tls_store *ours;
	struct tls_client *c = client(NULL, NULL);

	(void)state;
	snprintf(pem, sizeof(pem), "%s/%s.pem", test_pki, names[0]);
	snprintf(key, sizeof(key), "%s/%s.key", test_pki, names[0]);
	cert.name = names[0];
	cert.certificate_file = pem;
	cert.key_file = key;
	p.trusted_ca_file = test_pki_path("trusted.pem");
	ours = tls_store_build(&cert, 1, &p, stderr);
	assert_non_null(ours);
	assert_int_equal(tls_client_cached(c), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct resume_row *r = &rows[i];
		struct tls_client_target t = {.host = r->host,
		    .port = r->port,
		    .cert_name = r->cert_name};
		SSL *cl, *sv;
		char why[256];

		/* This client speaks at most max_version. */
		{
			const char *err = NULL;

			cl = tls_client_ssl(c, &t, ours, &err);
			assert_non_null(cl);
			SSL_set_max_proto_version(cl, r->max_version);
			sv = tls_store_ssl(servers, "server", 0);
			assert_true(test_handshake(cl, sv));
			tls_client_done(cl, 1);
		}
		if (SSL_session_reused(cl) != r->want_reused)
			fail_msg("row %zu (%s:%u %s): reused %d", i, r->host,
			    r->port, r->cert_name ? r->cert_name : "-",
			    SSL_session_reused(cl));
		/* A resumed session is judged like the first one. */
		assert_int_equal(tls_client_check(cl, 1, DV, "*.sluice.test",
		                     NULL, why, sizeof(why)),
		    TLS_CHECK_OK);
		assert_int_equal(tls_client_check(cl, 1, DV, "*.contoso.com",
		                     NULL, why, sizeof(why)),
		    TLS_CHECK_NAME_MISMATCH);
		finish(cl, sv);
	}
	/* Next hops: mx:25, mx:587, mx:25/partner, localhost:25. */
	assert_int_equal(tls_client_cached(c), 4);
	tls_store_free(ours);
	tls_client_free(c);
}

static void
test_failed_handshake_drops_session(void **state)
{
	struct tls_client *c = client(NULL, NULL);
	struct tls_client_target t = {.host = "mx.sluice.test", .port = 25};
	SSL *cl, *sv;
	const char *why = NULL;

	(void)state;
	/* TLS 1.2: a session that stays in the cache when it is offered. */
	for (int i = 0; i < 2; i++) {
		cl = tls_client_ssl(c, &t, NULL, &why);
		sv = tls_store_ssl(servers, "server", 0);
		SSL_set_max_proto_version(cl, TLS1_2_VERSION);
		assert_true(test_handshake(cl, sv));
		tls_client_done(cl, 1);
		assert_int_equal(SSL_session_reused(cl), i);
		finish(cl, sv);
		assert_int_equal(tls_client_cached(c), 1);
	}
	/* The next attempt fails (the server wants TLS 1.3 only here). */
	cl = tls_client_ssl(c, &t, NULL, &why);
	sv = tls_store_ssl(servers, "server", 0);
	SSL_set_max_proto_version(cl, TLS1_2_VERSION);
	SSL_set_min_proto_version(sv, TLS1_3_VERSION);
	assert_false(test_handshake(cl, sv));
	tls_client_done(cl, 0);
	assert_int_equal(tls_client_cached(c), 0);
	SSL_free(cl);
	SSL_free(sv);
	tls_client_free(c);
}

/*
 * A queue opens many connections to one next hop at once: each TLS 1.3
 * ticket is used once, so the cache keeps several per next hop and
 * connections opened together all resume.
 */
static void
test_several_tickets_per_next_hop(void **state)
{
	struct tls_client *c = client(NULL, NULL);
	struct tls_client_target t = {.host = "mx.sluice.test", .port = 25};
	SSL *cl[4], *sv[4];
	const char *why = NULL;
	int resumed = 0;

	(void)state;
	/* Two full handshakes at once: the server sends two tickets each
	 * (a resumed one would send one for the one it used). */
	for (int i = 0; i < 2; i++) {
		cl[i] = tls_client_ssl(c, &t, NULL, &why);
		sv[i] = tls_store_ssl(servers, "server", 0);
	}
	for (int i = 0; i < 2; i++) {
		assert_true(test_handshake(cl[i], sv[i]));
		assert_false(SSL_session_reused(cl[i]));
		tls_client_done(cl[i], 1);
		finish(cl[i], sv[i]);
	}
	/* Four connections at once, each offered a ticket of its own. */
	for (int i = 0; i < 4; i++) {
		cl[i] = tls_client_ssl(c, &t, NULL, &why);
		sv[i] = tls_store_ssl(servers, "server", 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_true(test_handshake(cl[i], sv[i]));
		tls_client_done(cl[i], 1);
		resumed += SSL_session_reused(cl[i]);
	}
	for (int i = 0; i < 4; i++)
		finish(cl[i], sv[i]);
	assert_int_equal(resumed, 4);
	tls_client_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels_table),
	    cmocka_unit_test(test_sni_sent),
	    cmocka_unit_test(test_check_without_tls),
	    cmocka_unit_test(test_client_certificate),
	    cmocka_unit_test(test_domain_secure_trust),
	    cmocka_unit_test(test_client_crl),
	    cmocka_unit_test(test_client_new_errors),
	    cmocka_unit_test(test_session_cache),
	    cmocka_unit_test(test_failed_handshake_drops_session),
	    cmocka_unit_test(test_several_tickets_per_next_hop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
