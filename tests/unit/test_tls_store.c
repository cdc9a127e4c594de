/*
 * test_tls_store.c - the server certificate store (src/tls/tls_store.c)
 * with real TLS handshakes in memory: loading and its error reports, SNI
 * selection, client certificate requests for Domain Security (with and
 * without CRLs, across session resumption), reference counting across a
 * reload, and the file watch that triggers reloads.
 */
#include <sys/stat.h>
#include <time.h>

#include "test_tls.h"

#include "tls/tls_store.h"

static const struct tls_store_params trust_params = {
    .trusted_ca_file = NULL, /* set in setup: DIR/trusted.pem */
};

/* Build a store from "name=file" pairs of the PKI: name=server etc. */
static struct tls_store *
store(const char *const *names, size_t n, const struct tls_store_params *p,
    FILE *err)
{
	struct tls_store_cert certs[8];
	static char pem[8][320], key[8][320];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(names[i], '=');
		static char nm[8][64];

		assert_non_null(eq);
		snprintf(nm[i], sizeof(nm[i]), "%.*s", (int)(eq - names[i]),
		    names[i]);
		snprintf(pem[i], sizeof(pem[i]), "%s/%s.pem", test_pki, eq + 1);
		snprintf(key[i], sizeof(key[i]), "%s/%s.key", test_pki, eq + 1);
		certs[i].name = nm[i];
		certs[i].certificate_file = pem[i];
		certs[i].key_file = key[i];
	}
	return tls_store_build(certs, n, p, err);
}

static struct tls_store_params
params(const char *ca, const char *client_ca, const char *crl)
{
	struct tls_store_params p = trust_params;

	p.trusted_ca_file = ca != NULL ? test_pki_path(ca) : NULL;
	p.client_ca_file = client_ca != NULL ? test_pki_path(client_ca) : NULL;
	p.crl_file = crl != NULL ? test_pki_path(crl) : NULL;
	return p;
}

/* Capture what a function writes to a FILE. */
struct capture {
	FILE *fp;
	char *text;
	size_t len;
};

static void
capture_open(struct capture *c)
{
	c->text = NULL;
	c->len = 0;
	c->fp = open_memstream(&c->text, &c->len);
	assert_non_null(c->fp);
}

static const char *
capture_text(struct capture *c)
{
	fflush(c->fp);
	return c->text;
}

static void
capture_close(struct capture *c)
{
	fclose(c->fp);
	free(c->text);
}

/* ---- loading ---- */

static void
test_load_rsa_ecdsa_chain(void **state)
{
	static const char *const names[] = {
	    "mx=server", "wild=wild", "ecdsa=ecdsa", "chain=chain"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 4, &p, stderr);
	struct capture c;

	(void)state;
	assert_non_null(st);
	assert_true(tls_store_has(st, "mx"));
	assert_true(tls_store_has(st, "MX"));
	assert_true(tls_store_has(st, "ecdsa"));
	assert_false(tls_store_has(st, "nope"));
	assert_false(tls_store_has(st, NULL));
	assert_null(tls_store_ssl(st, "nope", 0));
	capture_open(&c);
	tls_store_describe(st, c.fp);
	assert_non_null(strstr(capture_text(&c),
	    "mx: /CN=mx.sluice.test; names DNS:mx.sluice.test, "
	    "DNS:localhost, IP:127.0.0.1, IP:::1; expires "));
	assert_non_null(strstr(capture_text(&c), "; RSA 2048\n"));
	assert_non_null(
	    strstr(capture_text(&c), "ecdsa: /CN=ecdsa.sluice.test"));
	assert_non_null(strstr(capture_text(&c), "; EC 256\n"));
	assert_null(strstr(capture_text(&c), "EXPIRED"));
	capture_close(&c);
	tls_store_free(st);
}

static void
test_describe_marks_expired(void **state)
{
	static const char *const names[] = {"old=expired"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 1, &p, stderr);
	struct capture c;

	(void)state;
	assert_non_null(st); /* serving it is the administrator's choice */
	capture_open(&c);
	tls_store_describe(st, c.fp);
	assert_non_null(strstr(
	    capture_text(&c), "expires 2021-01-01 00:00:00 UTC (EXPIRED "));
	capture_close(&c);
	tls_store_unref(st);
}

/* Write text to DIR/name and return its path. */
static const char *
scratch_file(const char *name, const char *text)
{
	const char *path = test_pki_path(name);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	return path;
}

static const char *
encrypted_key(void)
{
	const char *path = test_pki_path("encrypted.key");
	EVP_PKEY *k;
	FILE *fp = fopen(test_pki_path("server.key"), "r");

	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, EVP_aes_128_cbc(),
	                     (const unsigned char *)"secret", 6, NULL, NULL),
	    1);
	fclose(fp);
	EVP_PKEY_free(k);
	return path;
}

struct error_row {
	const char *cert; /* path under the PKI, or an absolute path */
	const char *key;
	const char *ca, *client_ca, *crl;
	const char *ciphers, *suites;
	const char *want; /* substring of the report */
};

static void
test_load_errors_table(void **state)
{
	const char *garbage =
	    scratch_file("garbage.pem", "not a certificate\n");
	const char *enc = encrypted_key();
	const struct error_row rows[] = {
	    {"missing.pem", "server.key", "trusted.pem", NULL, NULL, NULL, NULL,
	        "/missing.pem: No such file or directory ([Certificate x])"},
	    {"server.pem", "missing.key", "trusted.pem", NULL, NULL, NULL, NULL,
	        "/missing.key: No such file or directory ([Certificate x])"},
	    {garbage, "server.key", "trusted.pem", NULL, NULL, NULL, NULL,
	        "/garbage.pem: cannot load the certificate chain (PEM, leaf "
	        "first): no start line ([Certificate x])"},
	    {"server.pem", "wild.key", "trusted.pem", NULL, NULL, NULL, NULL,
	        "/wild.key: private key does not match the certificate in "},
	    {"server.pem", "server.pem", "trusted.pem", NULL, NULL, NULL, NULL,
	        "/server.pem: no PEM private key found"},
	    {"server.pem", enc, "trusted.pem", NULL, NULL, NULL, NULL,
	        "/encrypted.key: the private key is encrypted; Sluice needs it "
	        "unencrypted"},
	    {"server.pem", "server.key", "missing-ca.pem", NULL, NULL, NULL,
	        NULL, "/missing-ca.pem: No such file or directory"},
	    {"server.pem", "server.key", garbage, NULL, NULL, NULL, NULL,
	        "/garbage.pem: no CA certificate found"},
	    {"server.pem", "server.key", "trusted.pem", "missing-ca.pem", NULL,
	        NULL, NULL, "/missing-ca.pem: No such file or directory"},
	    {"server.pem", "server.key", "trusted.pem", NULL, "missing.crl",
	        NULL, NULL, "/missing.crl: No such file or directory"},
	    {"server.pem", "server.key", "trusted.pem", NULL, garbage, NULL,
	        NULL, "/garbage.pem: no CRL found"},
	    /* Certificates in a CRL file would become trust anchors. */
	    {"server.pem", "server.key", "ca.pem", NULL, "trusted.pem", NULL,
	        NULL,
	        "/trusted.pem: holds a certificate or key; a CRL file "
	        "must hold CRLs only"},
	    {"server.pem", "server.key", "trusted.pem", NULL, "ca.key", NULL,
	        NULL, "/ca.key: holds a certificate or key"},
	    {"server.pem", "server.key", "trusted.pem", NULL, NULL, "NOPE",
	        NULL, "TlsCiphers = NOPE: selects no usable cipher"},
	    {"server.pem", "server.key", "trusted.pem", NULL, NULL, NULL,
	        "NOPE", "TlsCipherSuites = NOPE: selects no usable suite"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct error_row *r = &rows[i];
		struct tls_store_params p = params(NULL, NULL, NULL);
		struct tls_store_cert cert = {"x", NULL, NULL};
		char cpath[320], kpath[320], capath[320], ccpath[320],
		    crlpath[320];
		struct capture c;
		struct tls_store *st;

#define PKI(out, f)                                                            \
	((f) == NULL ? NULL                                                    \
	    : (f)[0] == '/'                                                    \
	        ? (f)                                                          \
	        : (snprintf(out, sizeof(out), "%s/%s", test_pki, f), out))
		cert.certificate_file = PKI(cpath, r->cert);
		cert.key_file = PKI(kpath, r->key);
		p.trusted_ca_file = PKI(capath, r->ca);
		p.client_ca_file = PKI(ccpath, r->client_ca);
		p.crl_file = PKI(crlpath, r->crl);
#undef PKI
		p.ciphers = r->ciphers;
		p.ciphersuites = r->suites;
		capture_open(&c);
		st = tls_store_build(&cert, 1, &p, c.fp);
		if (st != NULL)
			fail_msg("row %zu: loaded", i);
		if (strstr(capture_text(&c), r->want) == NULL)
			fail_msg("row %zu: report \"%s\", want \"%s\"", i,
			    capture_text(&c), r->want);
		/* One line per problem, each "FILE: reason". */
		assert_true(capture_text(&c)[0] == '/' || r->ciphers != NULL ||
		            r->suites != NULL);
		capture_close(&c);
	}
}

static void
test_load_reports_every_problem(void **state)
{
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store_cert certs[3] = {
	    {"a", "/nonexistent/a.pem", "/nonexistent/a.key"},
	    {"b", NULL, NULL},
	    {"c", "/nonexistent/c.pem", "/nonexistent/c.key"},
	};
	char bpem[320], bkey[320];
	struct capture c;
	int lines = 0;

	(void)state;
	snprintf(bpem, sizeof(bpem), "%s/server.pem", test_pki);
	snprintf(bkey, sizeof(bkey), "%s/server.key", test_pki);
	certs[1].certificate_file = bpem;
	certs[1].key_file = bkey;
	capture_open(&c);
	assert_null(tls_store_build(certs, 3, &p, c.fp));
	for (const char *s = capture_text(&c); *s != '\0'; s++)
		lines += *s == '\n';
	assert_int_equal(lines, 2);
	assert_non_null(strstr(capture_text(&c), "/nonexistent/a.pem: "));
	assert_non_null(strstr(capture_text(&c), "/nonexistent/c.pem: "));
	capture_close(&c);
	/* Twice the same name is ambiguous for TlsCertificateName. */
	certs[0] = certs[1];
	certs[2] = certs[1];
	certs[2].name = "B";
	capture_open(&c);
	assert_null(tls_store_build(certs, 3, &p, c.fp));
	assert_non_null(
	    strstr(capture_text(&c), "[Certificate B] is defined twice"));
	capture_close(&c);
	/* No certificates at all: an empty store, nothing is read. */
	p.trusted_ca_file = "/nonexistent/ca.pem";
	{
		struct tls_store *st = tls_store_build(NULL, 0, &p, stderr);

		assert_non_null(st);
		assert_false(tls_store_changed(st));
		tls_store_free(st);
	}
}

/* ---- SNI ---- */

struct sni_row {
	const char *connector; /* the connector's TlsCertificateName */
	const char *sni;       /* NULL: the client sends none */
	const char *want;      /* certificate served */
};

static const struct sni_row sni_rows[] = {
    {"mx", NULL, "mx"},
    {"mx", "mx.sluice.test", "mx"},
    {"mx", "MX.SLUICE.TEST", "mx"},
    {"mx", "mx.sluice.test.", "mx"},
    {"mx", "a.sluice.test", "wild"},
    /* An exact name beats a wildcard. */
    {"mx", "ecdsa.sluice.test", "ecdsa"},
    {"wild", "mx.sluice.test", "mx"},
    {"wild", "ecdsa.sluice.test", "ecdsa"},
    /* A wildcard stands for one label, never none or two. */
    {"mx", "a.b.sluice.test", "mx"},
    {"ecdsa", "sluice.test", "ecdsa"},
    {"ecdsa", "x.sluice.test", "wild"},
    /* Unknown or invalid names: the connector's certificate. */
    {"ecdsa", "unknown.example", "ecdsa"},
    {"mx", "*.sluice.test", "mx"},
    {"mx", ".sluice.test", "mx"},
    {"mx", "localhost", "mx"},
    /* Two certificates with the same name: the connector's own wins. */
    {"mx2", "mx.sluice.test", "mx2"},
    {"ecdsa", "mx.sluice.test", "mx"},
};

static void
test_sni_table(void **state)
{
	static const char *const names[] = {
	    "mx=server", "wild=wild", "ecdsa=ecdsa", "mx2=server"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 4, &p, stderr);

	(void)state;
	assert_non_null(st);
	for (size_t i = 0; i < sizeof(sni_rows) / sizeof(sni_rows[0]); i++) {
		const struct sni_row *r = &sni_rows[i];
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, NULL, r->sni, 0);
		SSL *server = tls_store_ssl(st, r->connector, 0);
		X509 *peer;
		char names_seen[256];

		assert_non_null(server);
		if (!test_handshake(client, server))
			fail_msg("row %zu: handshake failed", i);
		if (strcmp(tls_store_served(server), r->want) != 0)
			fail_msg("row %zu: SNI %s served %s, want %s", i,
			    r->sni ? r->sni : "(none)",
			    tls_store_served(server), r->want);
		/* The client really got that certificate. */
		peer = SSL_get0_peer_certificate(client);
		assert_non_null(peer);
		tls_cert_names(peer, names_seen, sizeof(names_seen));
		if (strcmp(r->want, "wild") == 0)
			assert_string_equal(names_seen, "DNS:*.sluice.test");
		else if (strcmp(r->want, "ecdsa") == 0)
			assert_string_equal(
			    names_seen, "DNS:ecdsa.sluice.test");
		else
			assert_non_null(
			    strstr(names_seen, "DNS:mx.sluice.test"));
		SSL_free(client);
		SSL_free(server);
		SSL_CTX_free(cctx);
	}
	tls_store_free(st);
}

/* ---- protocol floor ---- */

static void
test_protocol_floor(void **state)
{
	static const char *const names[] = {"mx=server"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 1, &p, stderr);
	static const struct {
		int max;
		int ok;
		const char *version;
	} rows[] = {
	    {TLS1_VERSION, 0, NULL},
	    {TLS1_1_VERSION, 0, NULL},
	    {TLS1_2_VERSION, 1, "TLSv1.2"},
	    {TLS1_3_VERSION, 1, "TLSv1.3"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, NULL, NULL, rows[i].max);
		SSL *server = tls_store_ssl(st, "mx", 0);

		/* Let the client offer what OpenSSL's policy would refuse. */
		SSL_set_security_level(client, 0);
		SSL_set_cipher_list(client, "ALL:@SECLEVEL=0");
		assert_int_equal(test_handshake(client, server), rows[i].ok);
		if (rows[i].ok) {
			struct tls_peer info;

			tls_peer_describe(server, &info);
			assert_string_equal(info.version, rows[i].version);
			assert_false(info.has_cert);
		}
		SSL_free(client);
		SSL_free(server);
		SSL_CTX_free(cctx);
	}
	/* A TLS 1.2 client offering only CBC ciphers gets nothing. */
	{
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, NULL, NULL, TLS1_2_VERSION);
		SSL *server = tls_store_ssl(st, "mx", 0);

		SSL_set_cipher_list(client, "ECDHE-RSA-AES128-SHA");
		assert_false(test_handshake(client, server));
		SSL_free(client);
		SSL_free(server);
		SSL_CTX_free(cctx);
	}
	tls_store_free(st);
}

/* ---- client certificates (Domain Security) ---- */

struct ccert_row {
	const char *client_cert; /* NULL: none */
	const char *crl;
	int max_version;
	enum tls_check want; /* tls_domain_secure_check(..., "partner.test") */
	const char *reason;
};

static const struct ccert_row ccert_rows[] = {
    {"partner", NULL, 0, TLS_CHECK_OK, NULL},
    {"partner", NULL, TLS1_2_VERSION, TLS_CHECK_OK, NULL},
    {"partner-by-ca", NULL, 0, TLS_CHECK_OK, NULL},
    {NULL, NULL, 0, TLS_CHECK_NO_CERT, "no client certificate"},
    {"partner-self", NULL, 0, TLS_CHECK_UNTRUSTED, "self-signed"},
    {"partner-expired", NULL, 0, TLS_CHECK_EXPIRED, "has expired"},
    {"partner-wrong", NULL, 0, TLS_CHECK_NAME_MISMATCH, "does not name"},
    {"partner-cn", NULL, 0, TLS_CHECK_NAME_MISMATCH, "does not name"},
    /* Revocation: only with a CRL, and only for CAs that have one. */
    {"partner-revoked", NULL, 0, TLS_CHECK_OK, NULL},
    {"partner-revoked", "partner-ca.crl", 0, TLS_CHECK_REVOKED, "revoked"},
    {"partner-revoked", "crls.pem", TLS1_2_VERSION, TLS_CHECK_REVOKED,
        "revoked"},
    {"partner-revoked", "ca.crl", 0, TLS_CHECK_OK, NULL},
    {"partner", "crls.pem", 0, TLS_CHECK_OK, NULL},
    {"partner-by-ca", "partner-ca.crl", 0, TLS_CHECK_OK, NULL},
    /*
     * The first error is kept: with CRL checks an untrusted chain must
     * not end up as the harmless "unable to get CRL".
     */
    {"partner-self", "crls.pem", 0, TLS_CHECK_UNTRUSTED, "self-signed"},
    {"partner-expired", "crls.pem", 0, TLS_CHECK_EXPIRED, "has expired"},
    {"partner-by-ca", "ca-stale.crl", 0, TLS_CHECK_REVOKED,
        "revocation status unknown: CRL has expired"},
    /*
     * A server certificate (serverAuth only) presented as a client
     * certificate, as Postfix and Exim do: accepted (issue 10.19); one
     * fit for neither side is not.
     */
    {"partner-server", NULL, 0, TLS_CHECK_OK, NULL},
    {"partner-server", NULL, TLS1_2_VERSION, TLS_CHECK_OK, NULL},
    {"partner-server", "crls.pem", 0, TLS_CHECK_OK, NULL},
    {"partner-email", NULL, 0, TLS_CHECK_UNTRUSTED,
        "unsuitable certificate purpose"},
};

/* One handshake against a store with a client certificate request. */
static enum tls_check
domain_secure_handshake(struct tls_store *st, const char *client_cert,
    int max_version, char *why, size_t len, SSL_SESSION **keep,
    SSL_SESSION *resume, int *reused)
{
	SSL_CTX *cctx;
	SSL *client =
	    test_client(&cctx, client_cert, "mx.sluice.test", max_version);
	SSL *server = tls_store_ssl(st, "mx", 1);
	struct tls_outcome o;
	struct tls_peer info;
	enum tls_check c;

	assert_non_null(server);
	if (resume != NULL)
		assert_int_equal(SSL_set_session(client, resume), 1);
	assert_true(test_handshake(client, server));
	tls_peer_outcome(server, 1, &o);
	c = tls_domain_secure_check(&o, "partner.test", why, len);
	/* The description for the logs agrees with the decision. */
	tls_peer_describe(server, &info);
	assert_int_equal(info.has_cert, client_cert != NULL);
	if (client_cert != NULL)
		assert_int_equal(info.verify == X509_V_OK,
		    tls_verify_classify(o.verify) == TLS_CHECK_OK);
	if (reused != NULL)
		*reused = SSL_session_reused(server);
	test_close(client, server);
	if (keep != NULL)
		*keep = SSL_get1_session(client);
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	return c;
}

static void
test_client_cert_table(void **state)
{
	static const char *const names[] = {"mx=server"};

	(void)state;
	for (size_t i = 0; i < sizeof(ccert_rows) / sizeof(ccert_rows[0]);
	     i++) {
		const struct ccert_row *r = &ccert_rows[i];
		struct tls_store_params p = params("trusted.pem", NULL, r->crl);
		struct tls_store *st = store(names, 1, &p, stderr);
		char why[512] = "";
		enum tls_check got;

		assert_non_null(st);
		got = domain_secure_handshake(st, r->client_cert,
		    r->max_version, why, sizeof(why), NULL, NULL, NULL);
		if (got != r->want)
			fail_msg("row %zu (%s, CRL %s): got %s (%s), want %s",
			    i, r->client_cert ? r->client_cert : "none",
			    r->crl ? r->crl : "none", tls_check_name(got), why,
			    tls_check_name(r->want));
		if (r->reason != NULL && strstr(why, r->reason) == NULL)
			fail_msg("row %zu: reason \"%s\", want \"%s\"", i, why,
			    r->reason);
		tls_store_free(st);
	}
}

/*
 * A resumed session has no chain to verify: its verdict must be the one
 * of the first handshake, for both TLS versions.
 */
static void
test_resumption_keeps_verdict(void **state)
{
	static const char *const names[] = {"mx=server"};
	static const struct {
		const char *cert;
		const char *crl;
		enum tls_check want;
	} rows[] = {
	    {"partner-self", "crls.pem", TLS_CHECK_UNTRUSTED},
	    {"partner-revoked", "crls.pem", TLS_CHECK_REVOKED},
	    {"partner", "crls.pem", TLS_CHECK_OK},
	    {"partner-wrong", NULL, TLS_CHECK_NAME_MISMATCH},
	};
	static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

	(void)state;
	for (size_t v = 0; v < 2; v++) {
		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			struct tls_store_params p =
			    params("trusted.pem", NULL, rows[i].crl);
			struct tls_store *st = store(names, 1, &p, stderr);
			SSL_SESSION *sess = NULL;
			char why1[512], why2[512];
			int reused = 0;

			assert_int_equal(
			    domain_secure_handshake(st, rows[i].cert,
			        versions[v], why1, sizeof(why1), &sess, NULL,
			        &reused),
			    rows[i].want);
			assert_false(reused);
			assert_non_null(sess);
			assert_int_equal(domain_secure_handshake(st,
			                     rows[i].cert, versions[v], why2,
			                     sizeof(why2), NULL, sess, &reused),
			    rows[i].want);
			if (!reused)
				fail_msg("%s over %s: not resumed",
				    rows[i].cert,
				    versions[v] == TLS1_2_VERSION ? "TLS 1.2"
				                                  : "TLS 1.3");
			/* Same words, except the chain depth (not kept). */
			assert_string_equal(why1, why2);
			SSL_SESSION_free(sess);
			tls_store_free(st);
		}
	}
}

static void
test_client_ca_names(void **state)
{
	static const char *const names[] = {"mx=server"};

	(void)state;
	for (int with = 0; with < 2; with++) {
		struct tls_store_params p =
		    params("ca.pem", with ? "partner-ca.pem" : NULL, NULL);
		struct tls_store *st = store(names, 1, &p, stderr);
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, "partner", NULL, 0);
		SSL *server = tls_store_ssl(st, "mx", 1);
		STACK_OF(X509_NAME) * seen;
		struct tls_outcome o;
		char why[256];

		assert_true(test_handshake(client, server));
		seen = SSL_get_client_CA_list(client);
		if (with) {
			char cn[64];

			assert_int_equal(sk_X509_NAME_num(seen), 1);
			X509_NAME_get_text_by_NID(sk_X509_NAME_value(seen, 0),
			    NID_commonName, cn, sizeof(cn));
			assert_string_equal(cn, "Partner Test CA");
		} else {
			assert_true(sk_X509_NAME_num(seen) <= 0);
		}
		/* The client CA file is trusted too. */
		tls_peer_outcome(server, 1, &o);
		assert_int_equal(tls_domain_secure_check(
		                     &o, "partner.test", why, sizeof(why)),
		    with ? TLS_CHECK_OK : TLS_CHECK_UNTRUSTED);
		SSL_free(client);
		SSL_free(server);
		SSL_CTX_free(cctx);
		tls_store_free(st);
	}
}

/* Without a request, no client certificate is asked for or seen. */
static void
test_no_request_no_cert(void **state)
{
	static const char *const names[] = {"mx=server"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 1, &p, stderr);
	SSL_CTX *cctx;
	SSL *client = test_client(&cctx, "partner", NULL, 0);
	SSL *server = tls_store_ssl(st, "mx", 0);
	struct tls_outcome o;

	(void)state;
	assert_true(test_handshake(client, server));
	tls_peer_outcome(server, 1, &o);
	assert_null(o.cert);
	assert_int_equal(tls_domain_secure_check(&o, "partner.test", NULL, 0),
	    TLS_CHECK_NO_CERT);
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	tls_store_free(st);
}

/* ---- lifetime and reload ---- */

static struct conf
one_cert_conf(struct conf_certificate *cert, const char *pem, const char *key)
{
	struct conf c;

	memset(&c, 0, sizeof(c));
	cert->name = (char *)(uintptr_t) "mx";
	cert->certificate_file = (char *)(uintptr_t)pem;
	cert->key_file = (char *)(uintptr_t)key;
	c.certificates = cert;
	c.ncertificates = 1;
	c.transport.trusted_ca_file =
	    (char *)(uintptr_t)test_pki_path("trusted.pem");
	c.transport.crl_file = (char *)(uintptr_t) "";
	c.transport.tls_ciphers = (char *)(uintptr_t) "";
	c.transport.tls_ciphersuites = (char *)(uintptr_t) "";
	return c;
}

static void
test_ssl_outlives_store(void **state)
{
	static const char *const names[] = {"mx=server", "wild=wild"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 2, &p, stderr);
	SSL *server = tls_store_ssl(st, "mx", 1);
	SSL_CTX *cctx;
	SSL *client = test_client(&cctx, NULL, "a.sluice.test", 0);

	(void)state;
	/* The configuration lets go; the connection still needs SNI. */
	tls_store_unref(st);
	assert_true(test_handshake(client, server));
	assert_string_equal(tls_store_served(server), "wild");
	SSL_free(server); /* the last reference: ASan sees the store go */
	SSL_free(client);
	SSL_CTX_free(cctx);
}

static void
test_reload_keeps_old_on_failure(void **state)
{
	struct conf_certificate cert;
	char pem[320], key[320];
	struct conf good, bad;
	struct tls_store *cur, *before;
	SSL *live;
	struct capture c;

	(void)state;
	snprintf(pem, sizeof(pem), "%s/server.pem", test_pki);
	snprintf(key, sizeof(key), "%s/server.key", test_pki);
	good = one_cert_conf(&cert, pem, key);
	cur = tls_store_new(&good, stderr);
	assert_non_null(cur);
	before = cur;
	live = tls_store_ssl(cur, "mx", 0); /* a connection of the old one */

	/* A broken certificate: refused, reported, the old store stays. */
	{
		struct conf_certificate bcert;
		const char *garbage =
		    scratch_file("broken.pem", "-----BEGIN CERTIFICATE-----\n");

		bad = one_cert_conf(&bcert, garbage, key);
		capture_open(&c);
		assert_int_equal(tls_store_reload(&cur, &bad, c.fp), -1);
		assert_ptr_equal(cur, before);
		assert_non_null(strstr(capture_text(&c), "/broken.pem: "));
		capture_close(&c);
	}
	/* A key that belongs to another certificate: the same. */
	{
		struct conf_certificate mcert;
		char wkey[320];

		snprintf(wkey, sizeof(wkey), "%s/wild.key", test_pki);
		bad = one_cert_conf(&mcert, pem, wkey);
		capture_open(&c);
		assert_int_equal(tls_store_reload(&cur, &bad, c.fp), -1);
		assert_ptr_equal(cur, before);
		assert_non_null(strstr(capture_text(&c),
		    "private key does not match the certificate"));
		capture_close(&c);
	}
	/* The old store still serves. */
	{
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, NULL, NULL, 0);
		SSL *server = tls_store_ssl(cur, "mx", 0);

		assert_true(test_handshake(client, server));
		SSL_free(client);
		SSL_free(server);
		SSL_CTX_free(cctx);
	}
	/* A good reload swaps; the old connection still completes. */
	snprintf(pem, sizeof(pem), "%s/ecdsa.pem", test_pki);
	snprintf(key, sizeof(key), "%s/ecdsa.key", test_pki);
	good = one_cert_conf(&cert, pem, key);
	assert_int_equal(tls_store_reload(&cur, &good, stderr), 0);
	assert_ptr_not_equal(cur, before);
	{
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, NULL, NULL, 0);
		char cn[64];

		assert_true(test_handshake(client, live));
		test_peer_name(client, cn, sizeof(cn));
		assert_string_equal(cn, "mx.sluice.test"); /* the old one */
		SSL_free(client);
		SSL_CTX_free(cctx);
	}
	SSL_free(live);
	{
		SSL_CTX *cctx;
		SSL *client = test_client(&cctx, NULL, NULL, 0);
		SSL *server = tls_store_ssl(cur, "mx", 0);
		char cn[64];

		assert_true(test_handshake(client, server));
		test_peer_name(client, cn, sizeof(cn));
		assert_string_equal(cn, "ecdsa.sluice.test"); /* the new one */
		SSL_free(client);
		SSL_free(server);
		SSL_CTX_free(cctx);
	}
	tls_store_free(cur);
}

/* Copy a PKI file to DIR/name (a file the test may change). */
static const char *
copy_file(const char *from, const char *to)
{
	static char bufs[4][320];
	static int next;
	char *path = bufs[next++ % 4];
	char cmd[800];

	snprintf(path, sizeof(bufs[0]), "%s/%s", test_pki, to);
	snprintf(cmd, sizeof(cmd), "cp '%s/%s' '%s'", test_pki, from, path);
	assert_int_equal(system(cmd), 0);
	return path;
}

static void
test_changed_on_disk(void **state)
{
	const char *pem = copy_file("server.pem", "watch.pem");
	const char *key = copy_file("server.key", "watch.key");
	const char *crl = copy_file("crls.pem", "watch.crl");
	const char *ca = copy_file("trusted.pem", "watch-ca.pem");
	struct tls_store_cert cert = {"mx", pem, key};
	struct tls_store_params p = {.trusted_ca_file = ca, .crl_file = crl};
	struct tls_store *st = tls_store_build(&cert, 1, &p, stderr);
	char cmd[800];
	static const struct {
		const char *what; /* shell step; %s is the PKI directory */
		int changed;
	} steps[] = {
	    {"true", 0},
	    /* A renewal: a new file renamed over the old (new inode). */
	    {"cp %s/ecdsa.pem %s/new.pem && mv %s/new.pem %s/watch.pem", 1},
	    /* Written in place, bigger. */
	    {"cat %s/ca.crl >> %s/watch.crl", 1},
	    /* The CA bundle replaced. */
	    {"cp %s/ca.pem %s/watch-ca.pem", 1},
	    /* A key deleted. */
	    {"rm %s/watch.key", 1},
	};

	(void)state;
	assert_non_null(st);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_false(tls_store_changed(st));
		snprintf(cmd, sizeof(cmd), steps[i].what, test_pki, test_pki,
		    test_pki, test_pki);
		assert_int_equal(system(cmd), 0);
		if (tls_store_changed(st) != steps[i].changed)
			fail_msg("step %zu (%s): changed %d", i, steps[i].what,
			    !steps[i].changed);
		/* After a refused reload: wait for the next change. */
		tls_store_rescan(st);
	}
	assert_false(tls_store_changed(st));
	tls_store_free(st);
}

/* ---- our certificate as a client (mutual TLS outbound) ---- */

static void
test_use_cert(void **state)
{
	static const char *const names[] = {"mx=server", "partner=partner"};
	struct tls_store_params p = params("trusted.pem", NULL, NULL);
	struct tls_store *st = store(names, 2, &p, stderr);
	SSL_CTX *cctx;
	SSL *client = test_client(&cctx, NULL, NULL, 0);
	SSL *server = tls_store_ssl(st, "mx", 1);
	struct tls_outcome o;

	(void)state;
	assert_int_equal(tls_store_use_cert(st, "nope", client), -1);
	assert_int_equal(tls_store_use_cert(st, "partner", client), 0);
	assert_true(test_handshake(client, server));
	tls_peer_outcome(server, 1, &o);
	assert_int_equal(
	    tls_domain_secure_check(&o, "partner.test", NULL, 0), TLS_CHECK_OK);
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	tls_store_free(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_rsa_ecdsa_chain),
	    cmocka_unit_test(test_describe_marks_expired),
	    cmocka_unit_test(test_load_errors_table),
	    cmocka_unit_test(test_load_reports_every_problem),
	    cmocka_unit_test(test_sni_table),
	    cmocka_unit_test(test_protocol_floor),
	    cmocka_unit_test(test_client_cert_table),
	    cmocka_unit_test(test_resumption_keeps_verdict),
	    cmocka_unit_test(test_client_ca_names),
	    cmocka_unit_test(test_no_request_no_cert),
	    cmocka_unit_test(test_ssl_outlives_store),
	    cmocka_unit_test(test_reload_keeps_old_on_failure),
	    cmocka_unit_test(test_changed_on_disk),
	    cmocka_unit_test(test_use_cert),
	};

	return cmocka_run_group_tests(
	    tests, test_pki_group_setup, test_pki_group_teardown);
}
