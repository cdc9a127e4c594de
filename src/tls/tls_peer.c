/*
 * tls_peer.c - facts about the other side of a TLS connection (see
 * tls_peer.h).
 *
 * Where it sits: between OpenSSL and policy.  The server (tls_store.c)
 * and the client (tls_client.c) install tls_peer_verify_cb(); after the
 * handshake the session asks tls_peer_describe() for its logs and
 * Received: header and tls_peer_outcome() for tls_verify.c's decisions.
 *
 * Why a verify callback that accepts everything: a handshake that fails
 * on an untrusted certificate tells nobody why, and on the server side
 * Domain Security can only decide per message, once MAIL FROM names the
 * sender domain.  So the handshake completes and the chain's first error
 * is kept; the decision is made later with a reason.
 *
 * Why the *first* error: OpenSSL reports the last error it saw, and with
 * CRL checks a chain that is not trusted at all can end on "unable to get
 * CRL", which alone is harmless (no CRL for that CA).  The callback
 * therefore writes the first real error back into the store context, so
 * that SSL_get_verify_result() -- and the verify result saved in the
 * session, which is all a resumed session has -- is that first error.
 * Its chain depth is kept in SSL ex_data for the reason text.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "tls/tls_peer.h"

/* SSL ex_data slot: the first chain error, encoded by tls_peer_encode. */
static int tls_peer_slot = -1;
static pthread_once_t tls_peer_once = PTHREAD_ONCE_INIT;

static void
tls_peer_init(void)
{
	tls_peer_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Error codes and depths are small non-negative ints; 0 means "none". */
static uintptr_t
tls_peer_encode(int err, int depth)
{
	return ((uintptr_t)(depth < 0 ? 0 : depth) << 16) |
	       (uintptr_t)((err + 1) & 0xffff);
}

static int
tls_peer_err(uintptr_t v)
{
	return (int)(v & 0xffff) - 1;
}

static int
tls_peer_depth(uintptr_t v)
{
	return (int)(v >> 16);
}

static uintptr_t
tls_peer_first(SSL *ssl)
{
	pthread_once(&tls_peer_once, tls_peer_init);
	if (ssl == NULL || tls_peer_slot < 0)
		return 0;
	return (uintptr_t)SSL_get_ex_data(ssl, tls_peer_slot);
}

int
tls_peer_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
	    ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	uintptr_t first = tls_peer_first(ssl);
	int err = X509_STORE_CTX_get_error(ctx);

	if (ssl == NULL)
		return ok; /* not a handshake: OpenSSL's own verdict */
	/*
	 * A client's certificate without clientAuth but fit for a server
	 * is accepted (Domain Security, see tls_client_purpose_ok()).
	 */
	if (!ok && err == X509_V_ERR_INVALID_PURPOSE && SSL_is_server(ssl) &&
	    tls_client_purpose_ok(X509_STORE_CTX_get_current_cert(ctx),
	        X509_STORE_CTX_get_error_depth(ctx)))
		ok = 1;
	if (!ok && err != X509_V_ERR_UNABLE_TO_GET_CRL && first == 0) {
		first =
		    tls_peer_encode(err, X509_STORE_CTX_get_error_depth(ctx));
		SSL_set_ex_data(ssl, tls_peer_slot, (void *)first);
	}
	X509_STORE_CTX_set_error(
	    ctx, first != 0 ? tls_peer_err(first) : X509_V_OK);
	return 1;
}

void
tls_peer_outcome(SSL *ssl, int handshake_ok, struct tls_outcome *o)
{
	uintptr_t first;

	memset(o, 0, sizeof(*o));
	o->verify_depth = -1;
	if (ssl == NULL)
		return;
	o->tls = 1;
	o->handshake_ok = handshake_ok;
	if (!handshake_ok)
		return;
	o->cert = SSL_get0_peer_certificate(ssl);
	o->verify = SSL_get_verify_result(ssl);
	first = tls_peer_first(ssl);
	if (first != 0 && tls_peer_err(first) == o->verify)
		o->verify_depth = tls_peer_depth(first);
}

static void
tls_peer_name_line(const X509_NAME *name, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	/* RFC 2253, which escapes control and non-ASCII characters. */
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	n = BIO_read(b, out, (int)len - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
	for (char *p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
}

void
tls_peer_describe(SSL *ssl, struct tls_peer *p)
{
	struct tls_outcome o;
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	BIO *b;
	int n;

	memset(p, 0, sizeof(*p));
	p->verify_depth = -1;
	snprintf(p->version, sizeof(p->version), "%s", SSL_get_version(ssl));
	snprintf(p->cipher, sizeof(p->cipher), "%s",
	    cipher != NULL ? SSL_CIPHER_get_name(cipher) : "(none)");
	p->resumed = SSL_session_reused(ssl);
	tls_peer_outcome(ssl, 1, &o);
	if (o.cert == NULL)
		return;
	p->has_cert = 1;
	/* A CA without a CRL is no error (tls_verify_classify). */
	p->verify = tls_verify_classify(o.verify) == TLS_CHECK_OK ? X509_V_OK
	                                                          : o.verify;
	p->verify_depth = p->verify == X509_V_OK ? -1 : o.verify_depth;
	tls_peer_name_line(
	    X509_get_subject_name(o.cert), p->subject, sizeof(p->subject));
	tls_peer_name_line(
	    X509_get_issuer_name(o.cert), p->issuer, sizeof(p->issuer));
	tls_cert_names(o.cert, p->names, sizeof(p->names));
	if ((b = BIO_new(BIO_s_mem())) != NULL) {
		ASN1_TIME_print(b, X509_get0_notAfter(o.cert));
		n = BIO_read(b, p->not_after, sizeof(p->not_after) - 1);
		p->not_after[n > 0 ? n : 0] = '\0';
		BIO_free(b);
	}
}

int
tls_peer_names(SSL *ssl, const char *domain)
{
	return tls_name_matches(SSL_get0_peer_certificate(ssl), domain);
}
