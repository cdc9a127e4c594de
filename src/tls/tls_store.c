/*
 * tls_store.c - server certificates and contexts (see tls_store.h).
 *
 * Every context is TLS 1.2 or 1.3 only, with forward-secret AEAD ciphers
 * (TlsCiphers, TlsCipherSuites), no renegotiation, no compression, server
 * cipher preference and session tickets.  SSL_MODE_RELEASE_BUFFERS lets an
 * idle connection give its record buffers back, which is most of the
 * memory of an idle TLS session.
 *
 * SNI: the client's server name is matched against each loaded
 * certificate with the same RFC 9525 rules used for peers; the first match
 * serves, else the connector's own certificate does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_store.h"

/* RFC 9525 name matching with OpenSSL 3.0 (GUIDE 4.9). */
#define TLS_NAME_FLAGS                                                         \
	(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |                                \
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)

struct tls_file {
	char *path;
	struct stat st;
};

struct tls_cert {
	char *name;
	SSL_CTX *ctx;
	X509 *leaf;
	struct tls_file files[2]; /* certificate, key */
};

struct tls_store {
	struct tls_cert *certs;
	size_t ncerts;
};

static void
tls_report(FILE *err, const char *file, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	if (err != NULL)
		fprintf(err, "%s: %s: %s\n", file, what, e ? buf : "error");
	ERR_clear_error();
}

/* SSL ex_data slot holding the first chain error + 1 (0: none). */
static int tls_error_slot = -1;

/*
 * Handshakes complete with any client certificate: Domain Security
 * decides per message, later.  What the chain check found is kept: the
 * first real error, not merely the last one OpenSSL saw.  A CA without a
 * CRL in CRLFile is not an error: revocation is checked where a CRL is
 * available (SPEC 3).
 */
static int
tls_accept_any(int ok, X509_STORE_CTX *ctx)
{
	int err = X509_STORE_CTX_get_error(ctx);
	SSL *ssl;

	if (ok || err == X509_V_ERR_UNABLE_TO_GET_CRL)
		return 1;
	ssl = X509_STORE_CTX_get_ex_data(
	    ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl != NULL && SSL_get_ex_data(ssl, tls_error_slot) == NULL)
		SSL_set_ex_data(
		    ssl, tls_error_slot, (void *)(intptr_t)(err + 1));
	return 1;
}

static int
tls_sni(SSL *ssl, int *alert, void *arg)
{
	struct tls_store *st = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* A certificate naming the host exactly beats a wildcard one. */
	for (int pass = 0; pass < 2; pass++) {
		unsigned flags = TLS_NAME_FLAGS |
		                 (pass == 0 ? X509_CHECK_FLAG_NO_WILDCARDS : 0);

		for (size_t i = 0; i < st->ncerts; i++) {
			if (X509_check_host(
			        st->certs[i].leaf, name, 0, flags, NULL) != 1)
				continue;
			if (SSL_get_SSL_CTX(ssl) != st->certs[i].ctx)
				SSL_set_SSL_CTX(ssl, st->certs[i].ctx);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK; /* keep the connector's certificate */
}

static SSL_CTX *
tls_make_ctx(struct tls_store *st, const struct conf *conf,
    const struct conf_certificate *c, X509 **leaf, FILE *err)
{
	const struct conf_transport *t = &conf->transport;
	static const unsigned char sid[] = "sluice";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_report(err, c->certificate_file, "cannot create context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_COMPRESSION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (SSL_CTX_set_cipher_list(ctx, t->tls_ciphers) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, t->tls_ciphersuites) != 1) {
		tls_report(err, conf->path, "TlsCiphers/TlsCipherSuites");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, c->certificate_file) != 1) {
		tls_report(err, c->certificate_file, "cannot load certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) !=
	    1) {
		tls_report(err, c->key_file, "cannot load private key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_report(err, c->key_file,
		    "private key does not match the certificate");
		goto fail;
	}
	/* Client certificates (Domain Security) chain to TrustedCAFile. */
	if (t->trusted_ca_file[0] != '\0' &&
	    SSL_CTX_load_verify_locations(ctx, t->trusted_ca_file, NULL) != 1) {
		tls_report(err, t->trusted_ca_file, "cannot load CA file");
		goto fail;
	}
	/*
	 * With a CRL file, every certificate of a peer's chain is checked
	 * against it; a chain whose CA has no CRL there fails, so the file
	 * must hold a CRL for each CA (documented in docs/tls.md).
	 */
	if (t->crl_file[0] != '\0') {
		X509_STORE *store = SSL_CTX_get_cert_store(ctx);

		if (X509_STORE_load_file(store, t->crl_file) != 1) {
			tls_report(err, t->crl_file, "cannot load CRL file");
			goto fail;
		}
		X509_STORE_set_flags(
		    store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni);
	SSL_CTX_set_tlsext_servername_arg(ctx, st);
	if ((*leaf = SSL_CTX_get0_certificate(ctx)) == NULL) {
		tls_report(err, c->certificate_file, "no certificate");
		goto fail;
	}
	X509_up_ref(*leaf);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_store *
tls_store_new(const struct conf *conf, FILE *err)
{
	struct tls_store *st = calloc(1, sizeof(*st));
	int failed = 0;

	if (st == NULL)
		return NULL;
	if (tls_error_slot < 0)
		tls_error_slot =
		    SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (conf->ncertificates > 0 && (st->certs = calloc(conf->ncertificates,
	                                    sizeof(*st->certs))) == NULL) {
		free(st);
		return NULL;
	}
	for (size_t i = 0; i < conf->ncertificates; i++) {
		const struct conf_certificate *c = &conf->certificates[i];
		struct tls_cert *tc = &st->certs[st->ncerts];

		tc->ctx = tls_make_ctx(st, conf, c, &tc->leaf, err);
		if (tc->ctx == NULL) {
			failed = 1;
			continue;
		}
		tc->files[0].path = strdup(c->certificate_file);
		tc->files[1].path = strdup(c->key_file);
		if ((tc->name = strdup(c->name)) == NULL ||
		    tc->files[0].path == NULL || tc->files[1].path == NULL) {
			free(tc->files[0].path);
			free(tc->files[1].path);
			SSL_CTX_free(tc->ctx);
			X509_free(tc->leaf);
			failed = 1;
			continue;
		}
		st->ncerts++;
	}
	tls_store_rescan(st);
	if (failed) {
		tls_store_free(st);
		return NULL;
	}
	return st;
}

void
tls_store_free(struct tls_store *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->ncerts; i++) {
		SSL_CTX_free(st->certs[i].ctx);
		X509_free(st->certs[i].leaf);
		free(st->certs[i].name);
		free(st->certs[i].files[0].path);
		free(st->certs[i].files[1].path);
	}
	free(st->certs);
	free(st);
}

void
tls_store_rescan(struct tls_store *st)
{
	for (size_t i = 0; i < st->ncerts; i++)
		for (int f = 0; f < 2; f++)
			if (stat(st->certs[i].files[f].path,
			        &st->certs[i].files[f].st) < 0)
				memset(&st->certs[i].files[f].st, 0,
				    sizeof(struct stat));
}

int
tls_store_changed(const struct tls_store *st)
{
	for (size_t i = 0; i < st->ncerts; i++) {
		for (int f = 0; f < 2; f++) {
			const struct stat *old = &st->certs[i].files[f].st;
			struct stat now;

			if (stat(st->certs[i].files[f].path, &now) < 0)
				memset(&now, 0, sizeof(now));
			if (now.st_ino != old->st_ino ||
			    now.st_size != old->st_size ||
			    now.st_mtim.tv_sec != old->st_mtim.tv_sec ||
			    now.st_mtim.tv_nsec != old->st_mtim.tv_nsec)
				return 1;
		}
	}
	return 0;
}

SSL *
tls_store_ssl(
    struct tls_store *st, const char *cert_name, int request_client_cert)
{
	SSL *ssl;

	for (size_t i = 0; i < st->ncerts; i++) {
		if (strcasecmp(st->certs[i].name, cert_name) != 0)
			continue;
		if ((ssl = SSL_new(st->certs[i].ctx)) == NULL)
			return NULL;
		if (request_client_cert)
			SSL_set_verify(ssl, SSL_VERIFY_PEER, tls_accept_any);
		return ssl;
	}
	return NULL;
}

static void
tls_name_line(const X509_NAME *name, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	n = BIO_read(b, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

void
tls_peer_describe(SSL *ssl, struct tls_peer *p)
{
	X509 *cert;

	memset(p, 0, sizeof(*p));
	snprintf(p->version, sizeof(p->version), "%s", SSL_get_version(ssl));
	snprintf(p->cipher, sizeof(p->cipher), "%s",
	    SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return;
	p->verify =
	    tls_error_slot >= 0 && SSL_get_ex_data(ssl, tls_error_slot) != NULL
	        ? (long)(intptr_t)SSL_get_ex_data(ssl, tls_error_slot) - 1
	        : SSL_get_verify_result(ssl);
	if (p->verify == X509_V_ERR_UNABLE_TO_GET_CRL)
		p->verify = X509_V_OK;
	p->has_cert = 1;
	tls_name_line(
	    X509_get_subject_name(cert), p->subject, sizeof(p->subject));
	tls_name_line(X509_get_issuer_name(cert), p->issuer, sizeof(p->issuer));
	{
		BIO *b = BIO_new(BIO_s_mem());
		int n;

		if (b != NULL) {
			ASN1_TIME_print(b, X509_get0_notAfter(cert));
			n = BIO_read(b, p->not_after, sizeof(p->not_after) - 1);
			p->not_after[n > 0 ? n : 0] = '\0';
			BIO_free(b);
		}
	}
	X509_free(cert);
}

int
tls_peer_names(SSL *ssl, const char *domain)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	int ok;

	if (cert == NULL)
		return 0;
	ok = X509_check_host(cert, domain, 0, TLS_NAME_FLAGS, NULL) == 1;
	X509_free(cert);
	return ok;
}
