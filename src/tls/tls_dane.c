/*
 * tls_dane.c - DANE for SMTP on the TLS side (see tls_dane.h).
 *
 * Where it sits: between src/dns/tlsa.c (the records, with their DNSSEC
 * status) and the SMTP client's TLS policy.  tls_dane_decide() is the
 * per-host rule of RFC 7672 2.2 as a pure function; the rest drives
 * OpenSSL's own DANE implementation (SSL_dane_enable, SSL_dane_tlsa_add,
 * SSL_get0_dane_authority), which does the matching, chain building for
 * DANE-TA(2) and the name checks; nothing here compares certificates
 * itself.
 *
 * Decisions where RFC 7672 leaves room, as Postfix's "dane" level does:
 * - A secure TLSA RRset whose records are all unusable (PKIX-TA/EE, an
 *   unknown selector or matching type, a digest of the wrong length)
 *   still says "this server does TLS": TLS is required, without
 *   authentication (RFC 7672 2.2, Postfix "encrypt").
 * - DANE-EE(3) matches the public key or certificate alone: no name
 *   check, no validity dates (RFC 7672 3.1.1).  DANE-TA(2) builds a
 *   chain to the matched trust anchor, checks its dates and the names
 *   (the TLSA base domain and the MX host name; RFC 7672 3.2.2).
 * - Wildcards in the peer's names count only as a whole left-most label
 *   (RFC 9525, as everywhere in Sluice).
 * - SNI is the TLSA base domain (RFC 7672 8.1), so a server with a
 *   certificate per name presents the one its records describe.
 *
 * RFCs: 6698, 7671, 7672 (2.2, 3.1, 3.2), 7218 (usage names).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tls/tls_dane.h"

const char *
tls_dane_need_name(enum tls_dane_need n)
{
	switch (n) {
	case TLS_DANE_OFF:
		return "off";
	case TLS_DANE_ENCRYPT:
		return "encrypt";
	case TLS_DANE_VERIFY:
		return "verify";
	case TLS_DANE_SKIP:
		return "skip";
	}
	return "?";
}

enum tls_dane_need
tls_dane_decide(enum conf_dane_mode mode, const char *host, int addr_secure,
    const struct tlsa_result *t, char *why, size_t len)
{
	int mandatory = mode == DANE_MODE_MANDATORY;

	if (mode == DANE_MODE_NONE) {
		snprintf(why, len, "DANE: not used (SmtpDaneMode None)");
		return TLS_DANE_OFF;
	}
	if (!addr_secure) {
		snprintf(why, len,
		    "DANE: the address records of %s are not DNSSEC-signed%s",
		    host, mandatory ? " (SmtpDaneMode Mandatory)" : "");
		return mandatory ? TLS_DANE_SKIP : TLS_DANE_OFF;
	}
	if (t == NULL) {
		snprintf(why, len, "DANE: the TLSA records of %s are not known",
		    host);
		return TLS_DANE_SKIP;
	}
	switch (t->status) {
	case TLSA_SECURE:
		if (t->nusable > 0) {
			snprintf(why, len,
			    "DANE: %s has %zu usable TLSA record%s (%s)", host,
			    t->nusable, t->nusable == 1 ? "" : "s", t->qname);
			return TLS_DANE_VERIFY;
		}
		snprintf(why, len,
		    "DANE: the TLSA records of %s (%s) are all unusable "
		    "(RFC 7672 3.1)%s",
		    host, t->qname,
		    mandatory ? " (SmtpDaneMode Mandatory)"
		              : ": TLS without authentication");
		return mandatory ? TLS_DANE_SKIP : TLS_DANE_ENCRYPT;
	case TLSA_NONE:
	case TLSA_INSECURE:
		snprintf(why, len, "DANE: %s has no %sTLSA records (%s)%s",
		    host, t->status == TLSA_INSECURE ? "DNSSEC-signed " : "",
		    t->qname, mandatory ? " (SmtpDaneMode Mandatory)" : "");
		return mandatory ? TLS_DANE_SKIP : TLS_DANE_OFF;
	case TLSA_BOGUS:
		snprintf(why, len,
		    "DANE: the TLSA records of %s failed DNSSEC validation "
		    "(%s)",
		    host, t->why);
		return TLS_DANE_SKIP;
	case TLSA_TEMPFAIL:
		snprintf(why, len,
		    "DANE: the TLSA records of %s could not be looked up (%s)",
		    host, t->why);
		return TLS_DANE_SKIP;
	}
	snprintf(why, len, "DANE: unexpected TLSA status for %s", host);
	return TLS_DANE_SKIP;
}

int
tls_dane_enable(
    SSL *ssl, const struct tlsa_result *t, const char *host, const char **why)
{
	int added = 0;

	*why = NULL;
	/* Idempotent: the client context may have done it already. */
	if (SSL_CTX_dane_enable(SSL_get_SSL_CTX(ssl)) <= 0 ||
	    SSL_dane_enable(ssl, t->base) <= 0) {
		ERR_clear_error();
		*why = "cannot enable DANE verification";
		return -1;
	}
	/* RFC 7672 8.1: SNI names the TLSA base domain. */
	if (SSL_set_tlsext_host_name(ssl, t->base) != 1) {
		ERR_clear_error();
		*why = "cannot set the server name (SNI)";
		return -1;
	}
	/* RFC 7672 3.1.1: a DANE-EE(3) match says nothing about names. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	X509_VERIFY_PARAM_set_hostflags(
	    SSL_get0_param(ssl), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
	                             X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (host != NULL && strcasecmp(host, t->base) != 0 &&
	    SSL_add1_host(ssl, host) != 1) {
		ERR_clear_error();
		*why = "cannot add the MX host name to the DANE names";
		return -1;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct tlsa_rr *rr = &t->rr[i];

		if (!tlsa_rr_usable(rr))
			continue;
		/* >0 added, 0 unusable to OpenSSL, <0 an error */
		if (SSL_dane_tlsa_add(ssl, rr->usage, rr->selector, rr->mtype,
		        rr->data, rr->len) > 0)
			added++;
		ERR_clear_error();
	}
	if (added == 0) {
		*why = "no TLSA record could be used";
		return -1;
	}
	return 0;
}

static const char *
tls_dane_usage_name(uint8_t usage)
{
	switch (usage) {
	case 0:
		return "PKIX-TA(0)";
	case 1:
		return "PKIX-EE(1)";
	case 2:
		return "DANE-TA(2)";
	case 3:
		return "DANE-EE(3)";
	}
	return "unknown usage";
}

int
tls_dane_verified(SSL *ssl, const char *host, char *match, size_t matchlen,
    char *why, size_t whylen)
{
	long v = SSL_get_verify_result(ssl);
	uint8_t usage = 0, selector = 0, mtype = 0;
	int depth;

	match[0] = '\0';
	why[0] = '\0';
	if (SSL_get0_peer_certificate(ssl) == NULL) {
		snprintf(why, whylen,
		    "DANE: %s presented no certificate to match the TLSA "
		    "records",
		    host);
		return 0;
	}
	if (v == X509_V_ERR_HOSTNAME_MISMATCH) {
		snprintf(why, whylen,
		    "DANE: the certificate of %s chains to a DANE-TA record "
		    "but does not name the host",
		    host);
		return 0;
	}
	if (v != X509_V_OK && v != X509_V_ERR_DANE_NO_MATCH) {
		snprintf(why, whylen,
		    "DANE: the certificate of %s failed DANE verification (%s)",
		    host, X509_verify_cert_error_string(v));
		return 0;
	}
	if (v != X509_V_OK) {
		snprintf(why, whylen,
		    "DANE: no TLSA record matched the certificate of %s", host);
		return 0;
	}
	if (SSL_session_reused(ssl)) {
		/* verified under the same records: see tls_dane_digest */
		snprintf(match, matchlen, "resumed session");
		return 1;
	}
	depth = SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, NULL, NULL);
	if (depth < 0 || SSL_get0_dane_authority(ssl, NULL, NULL) < 0) {
		snprintf(why, whylen,
		    "DANE: no TLSA record matched the certificate of %s", host);
		return 0;
	}
	snprintf(match, matchlen, "%s %u %u at depth %d",
	    tls_dane_usage_name(usage), selector, mtype, depth);
	return 1;
}

/* The first real error, as tls_peer_verify_cb keeps it. */
static int
tls_dane_pkix_cb(int ok, X509_STORE_CTX *ctx)
{
	long *first = X509_STORE_CTX_get_app_data(ctx);
	int err = X509_STORE_CTX_get_error(ctx);

	if (!ok && err != X509_V_ERR_UNABLE_TO_GET_CRL && first[0] == 0) {
		first[0] = err;
		first[1] = X509_STORE_CTX_get_error_depth(ctx);
	}
	return 1;
}

long
tls_dane_pkix(SSL *ssl, int *depth)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx;
	long first[2] = {0, -1};

	*depth = -1;
	if (leaf == NULL)
		return X509_V_ERR_UNSPECIFIED;
	SSL_get0_verify_cert_store(ssl, &store);
	if (store == NULL)
		store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, leaf, chain) != 1) {
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return X509_V_ERR_UNSPECIFIED;
	}
	X509_STORE_CTX_set_default(ctx, "ssl_server");
	X509_STORE_CTX_set_app_data(ctx, first);
	X509_STORE_CTX_set_verify_cb(ctx, tls_dane_pkix_cb);
	(void)X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	*depth = (int)first[1];
	return first[0];
}

static int
tls_dane_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void
tls_dane_digest(const struct tlsa_result *t, char *out, size_t len)
{
	uint64_t h[TLSA_RR_MAX], all = 14695981039346656037ull;
	size_t n = 0;

	/* FNV-1a of each usable record, sorted: the DNS order is random. */
	for (size_t i = 0; i < t->n && n < TLSA_RR_MAX; i++) {
		const struct tlsa_rr *rr = &t->rr[i];
		uint64_t x = 14695981039346656037ull;
		unsigned char head[3] = {rr->usage, rr->selector, rr->mtype};

		if (!tlsa_rr_usable(rr))
			continue;
		for (size_t k = 0; k < 3; k++)
			x = (x ^ head[k]) * 1099511628211ull;
		for (size_t k = 0; k < rr->len; k++)
			x = (x ^ rr->data[k]) * 1099511628211ull;
		h[n++] = x;
	}
	qsort(h, n, sizeof(h[0]), tls_dane_u64_cmp);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < 8; k++)
			all = (all ^ ((h[i] >> (8 * k)) & 0xff)) *
			      1099511628211ull;
	snprintf(out, len, "dane-%016llx", (unsigned long long)all);
}

int
tls_dane_cert_rr(
    X509 *cert, int usage, int selector, int mtype, struct tlsa_rr *rr)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int dlen;

	memset(rr, 0, sizeof(*rr));
	if (cert == NULL || usage < 0 || usage > 3 || selector < 0 ||
	    selector > 1 || mtype < 0 || mtype > 2)
		return -1;
	dlen = selector == 1 ? i2d_PUBKEY(X509_get0_pubkey(cert), &der)
	                     : i2d_X509(cert, &der);
	if (dlen <= 0)
		return -1;
	rr->usage = (uint8_t)usage;
	rr->selector = (uint8_t)selector;
	rr->mtype = (uint8_t)mtype;
	if (mtype == 0) {
		/* malloc'ed like every record's data: tlsa_result_free */
		if ((rr->data = malloc((size_t)dlen)) != NULL) {
			memcpy(rr->data, der, (size_t)dlen);
			rr->len = (size_t)dlen;
		}
	} else if (EVP_Digest(der, (size_t)dlen, md, &mdlen,
	               mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL) == 1 &&
	           (rr->data = malloc(mdlen)) != NULL) {
		memcpy(rr->data, md, mdlen);
		rr->len = mdlen;
	}
	OPENSSL_free(der);
	return rr->data != NULL ? 0 : -1;
}
