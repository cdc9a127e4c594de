/*
 * test_tls.h - helpers shared by the TLS unit tests (test_tls_*.c): the
 * test PKI, loading its files, certificates made on the spot for name
 * tables, and a real TLS handshake in memory over a BIO pair.
 *
 * The PKI: $SLUICE_PKI when set (a directory made by
 * tests/pki/make-pki.sh), else tests/pki/make-pki.sh is run into a fresh
 * temporary directory, which test_pki_cleanup() removes.  Tests run from
 * the repository root, or with $SLUICE_ROOT naming it (as test_docs).
 */
#ifndef SLUICE_TEST_TLS_H
#define SLUICE_TEST_TLS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Enough rounds for any TLS 1.2 or 1.3 handshake, with margin. */
#define TEST_TLS_ROUNDS 64

static char test_pki[256];
static int test_pki_made;

static inline void
test_pki_cleanup(void)
{
	char cmd[512];

	if (!test_pki_made)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_pki);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", test_pki);
}

static inline const char *
test_pki_dir(void)
{
	const char *env = getenv("SLUICE_PKI");
	char cmd[512];

	if (test_pki[0] != '\0')
		return test_pki;
	if (env != NULL && env[0] != '\0') {
		snprintf(test_pki, sizeof(test_pki), "%s", env);
	} else {
		snprintf(test_pki, sizeof(test_pki), "/tmp/sluice-pki-XXXXXX");
		if (mkdtemp(test_pki) == NULL)
			return NULL;
		test_pki_made = 1;
	}
	snprintf(cmd, sizeof(cmd), "'%s/tests/pki/make-pki.sh' '%s'",
	    getenv("SLUICE_ROOT") != NULL ? getenv("SLUICE_ROOT") : ".",
	    test_pki);
	if (system(cmd) != 0) {
		fprintf(stderr, "cannot make the test PKI: %s\n", cmd);
		test_pki_cleanup();
		return NULL;
	}
	return test_pki;
}

/* Group setup and teardown for the suites that need only the PKI. */
static inline int
test_pki_group_setup(void **state)
{
	(void)state;
	return test_pki_dir() == NULL ? -1 : 0;
}

static inline int
test_pki_group_teardown(void **state)
{
	(void)state;
	test_pki_cleanup();
	return 0;
}

/* DIR/name, in a rotating set of buffers so several can be in use. */
static inline const char *
test_pki_path(const char *name)
{
	static char bufs[8][320];
	static int next;
	char *b = bufs[next++ % 8];

	if (name == NULL || name[0] == '\0')
		return name;
	snprintf(b, sizeof(bufs[0]), "%s/%s", test_pki, name);
	return b;
}

static inline X509 *
test_load_cert(const char *name)
{
	FILE *fp = fopen(test_pki_path(name), "r");
	X509 *x;

	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

/*
 * A throw-away self-signed certificate with these subjectAltNames
 * (OpenSSL's "DNS:a,IP:b" syntax; NULL: no extension) and subject CN.
 */
static inline X509 *
test_make_cert(const char *san, const char *cn)
{
	static EVP_PKEY *key;
	X509 *x = X509_new();

	if (key == NULL)
		key = EVP_EC_gen("P-256");
	assert_non_null(key);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, key);
	if (san != NULL) {
		X509V3_CTX v3;
		X509_EXTENSION *e;

		X509V3_set_ctx_nodb(&v3);
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

/* A certificate whose one DNS SAN holds exactly these bytes (NULs too). */
static inline X509 *
test_make_cert_raw_dns(const char *bytes, int len)
{
	X509 *x = test_make_cert(NULL, "raw");
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ASN1_STRING_set(s, bytes, len);
	GENERAL_NAME_set0_value(g, GEN_DNS, s);
	sk_GENERAL_NAME_push(gens, g);
	X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
	GENERAL_NAMES_free(gens);
	return x;
}

/*
 * The chain verification result for a PKI certificate, as OpenSSL's
 * plain verification reports it: trust anchors from ca_file, optional
 * untrusted intermediates and CRLs.
 */
static inline long
test_verify(X509 *cert, const char *ca_file, const char *untrusted,
    const char *crl_file, int *depth)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = NULL;
	long r;

	assert_int_equal(X509_STORE_load_file(st, test_pki_path(ca_file)), 1);
	if (crl_file != NULL) {
		assert_int_equal(
		    X509_STORE_load_file(st, test_pki_path(crl_file)), 1);
		X509_STORE_set_flags(
		    st, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	if (untrusted != NULL) {
		chain = sk_X509_new_null();
		sk_X509_push(chain, test_load_cert(untrusted));
	}
	X509_STORE_CTX_init(ctx, st, cert, chain);
	X509_verify_cert(ctx);
	r = X509_STORE_CTX_get_error(ctx);
	if (depth != NULL)
		*depth =
		    r == X509_V_OK ? -1 : X509_STORE_CTX_get_error_depth(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return r;
}

/*
 * Run a handshake between client and server over an in-memory BIO pair
 * until both are done or one fails; then let the client read once, so
 * that TLS 1.3 session tickets are processed.  Returns 1 when both
 * sides completed.  The SSLs keep the BIOs.
 */
static inline int
test_handshake(SSL *client, SSL *server)
{
	BIO *cb, *sb;
	int cdone = 0, sdone = 0, failed = 0;
	char byte;

	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(client, cb, cb);
	SSL_set_bio(server, sb, sb);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (int i = 0; i < TEST_TLS_ROUNDS && !failed && !(cdone && sdone);
	     i++) {
		if (!cdone) {
			int r = SSL_do_handshake(client);

			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(client, r) !=
			         SSL_ERROR_WANT_READ)
				failed = 1;
		}
		if (!sdone && !failed) {
			int r = SSL_do_handshake(server);

			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(server, r) !=
			         SSL_ERROR_WANT_READ)
				failed = 1;
		}
	}
	if (cdone && sdone) {
		/* Server's tickets (TLS 1.3) reach the client here. */
		(void)SSL_read(client, &byte, 1);
	}
	ERR_clear_error();
	return cdone && sdone && !failed;
}

/*
 * Close both sides with close_notify, as a finished SMTP session does.
 * OpenSSL invalidates the session of a TLS 1.2 connection that is freed
 * without it, so resumption tests must end their connections this way.
 */
static inline void
test_close(SSL *client, SSL *server)
{
	for (int i = 0; i < 4; i++) {
		if (SSL_shutdown(client) == 1 && SSL_shutdown(server) == 1)
			break;
	}
	ERR_clear_error();
}

/* A plain client: no verification of its own, optional cert and SNI. */
static inline SSL *
test_client(SSL_CTX **ctxp, const char *cert, const char *sni, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;

	assert_non_null(ctx);
	if (max_version != 0)
		SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_min_proto_version(ctx, 0);
	if (cert != NULL) {
		char pem[64], key[64];

		snprintf(pem, sizeof(pem), "%s.pem", cert);
		snprintf(key, sizeof(key), "%s.key", cert);
		assert_int_equal(
		    SSL_CTX_use_certificate_chain_file(ctx, test_pki_path(pem)),
		    1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(
		                     ctx, test_pki_path(key), SSL_FILETYPE_PEM),
		    1);
	}
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	*ctxp = ctx;
	return ssl;
}

/* The first DNS SAN (or CN) of the certificate the peer presented. */
static inline void
test_peer_name(SSL *ssl, char *out, size_t len)
{
	X509 *x = SSL_get0_peer_certificate(ssl);

	out[0] = '\0';
	if (x != NULL)
		X509_NAME_get_text_by_NID(
		    X509_get_subject_name(x), NID_commonName, out, (int)len);
}

#endif
