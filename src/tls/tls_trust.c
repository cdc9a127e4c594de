/*
 * tls_trust.c - trust anchors and CRLs (see tls_trust.h).
 *
 * Where it sits: tls_store.c (one store per configuration, shared by all
 * its server contexts) and tls_client.c (one per trust set) call
 * tls_trust_build() when a configuration is loaded; OpenSSL then uses the
 * result during every handshake.
 *
 * Invariant: a CRL file adds CRLs and nothing else.  OpenSSL's
 * X509_STORE_load_file() would also take any certificate in it as a
 * trust anchor, so a CRLFile pointed at a certificate bundle by mistake
 * would silently widen trust; here it is an error instead.
 */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "tls/tls_trust.h"

static int
tls_trust_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static void
tls_trust_report(FILE *err, const char *file, const char *what)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (err != NULL)
		fprintf(err, "%s: %s%s%s\n", file, what,
		    reason != NULL ? ": " : "", reason != NULL ? reason : "");
	ERR_clear_error();
}

static int
tls_trust_ca(X509_STORE *st, const char *file, FILE *err)
{
	BIO *b = BIO_new_file(file, "r");

	if (b == NULL) {
		ERR_clear_error();
		if (err != NULL)
			fprintf(err, "%s: %s\n", file, strerror(errno));
		return 0;
	}
	BIO_free(b);
	if (X509_STORE_load_file(st, file) != 1) {
		tls_trust_report(err, file, "no CA certificate found");
		return 0;
	}
	return 1;
}

static int
tls_trust_crls(X509_STORE *st, const char *file, FILE *err)
{
	BIO *b = BIO_new_file(file, "r");
	STACK_OF(X509_INFO) * infos;
	int ncrls = 0, ok = 1;

	if (b == NULL) {
		ERR_clear_error();
		if (err != NULL)
			fprintf(err, "%s: %s\n", file, strerror(errno));
		return 0;
	}
	infos = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
	BIO_free(b);
	if (infos == NULL) {
		tls_trust_report(err, file, "no CRL found");
		return 0;
	}
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *in = sk_X509_INFO_value(infos, i);

		if (in->x509 != NULL || in->x_pkey != NULL) {
			if (err != NULL)
				fprintf(err,
				    "%s: holds a certificate or key; a CRL "
				    "file must hold CRLs only\n",
				    file);
			ok = 0;
			break;
		}
		if (in->crl != NULL) {
			if (X509_STORE_add_crl(st, in->crl) != 1) {
				tls_trust_report(err, file, "cannot use a CRL");
				ok = 0;
				break;
			}
			ncrls++;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	if (ok && ncrls == 0) {
		if (err != NULL)
			fprintf(err, "%s: no CRL found\n", file);
		ok = 0;
	}
	ERR_clear_error();
	return ok;
}

X509_STORE *
tls_trust_build(const char *ca_file, const char *extra_ca_file,
    const char *crl_file, FILE *err)
{
	X509_STORE *st = X509_STORE_new();
	int ok = st != NULL;

	if (ok && !tls_trust_empty(ca_file) && !tls_trust_ca(st, ca_file, err))
		ok = 0;
	if (st != NULL && !tls_trust_empty(extra_ca_file) &&
	    !tls_trust_ca(st, extra_ca_file, err))
		ok = 0;
	if (st != NULL && !tls_trust_empty(crl_file)) {
		if (!tls_trust_crls(st, crl_file, err))
			ok = 0;
		else
			X509_STORE_set_flags(st,
			    X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	if (!ok) {
		X509_STORE_free(st);
		return NULL;
	}
	X509_STORE_set_depth(st, TLS_TRUST_VERIFY_DEPTH);
	return st;
}
