/*
 * tls_store.h - the server side's certificates: one OpenSSL context per
 * [Certificate] section, chosen per connection by SNI, plus the trust
 * settings used to check client certificates (Domain Security).
 *
 * A store is built from a configuration and never changes.  It is
 * reference counted: the configuration that built it holds one reference
 * and every SSL made from it holds another, so a reload swaps in a new
 * store while live connections keep the old one until they end.  A
 * reload that fails keeps the old store.
 */
#ifndef SLUICE_TLS_STORE_H
#define SLUICE_TLS_STORE_H

#include <stdio.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "tls/tls_peer.h"

struct tls_store;

/* One certificate to load: a [Certificate NAME] section. */
struct tls_store_cert {
	const char *name; /* the section name, for TlsCertificateName */
	const char *certificate_file; /* PEM chain, leaf first */
	const char *key_file;         /* PEM private key, RSA or EC */
};

/*
 * Trust and protocol settings.  NULL or "" means "none" for the files and
 * "the built-in default" for the cipher lists.
 */
struct tls_store_params {
	const char *trusted_ca_file; /* client certificates chain to these */
	/*
	 * Partner CAs (the proposed [Transport] DomainSecureCAFile):
	 * trusted like trusted_ca_file, and their names are listed in the
	 * certificate request, so that a partner's server picks the right
	 * client certificate.  Without it the request lists no CA (RFC 8446
	 * 4.3.2 and RFC 5246 7.4.4 allow that: any CA); TrustedCAFile is
	 * not listed, a public bundle would make every request ~15 KB.
	 */
	const char *client_ca_file;
	const char *crl_file;     /* PEM CRLs; revocation checks need it */
	const char *ciphers;      /* TLS 1.2 cipher list (OpenSSL syntax) */
	const char *ciphersuites; /* TLS 1.3 cipher suites */
};

/* Defaults when the parameters leave the cipher lists empty. */
#define TLS_STORE_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
#define TLS_STORE_CIPHERSUITES                                                 \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"                 \
	"TLS_AES_128_GCM_SHA256"

/*
 * Load every certificate and build one server context each.  Every
 * problem is reported as a "FILE: reason" line on err (which may be
 * NULL), all of them, not only the first; then NULL is returned.  The
 * new store has one reference.
 */
struct tls_store *tls_store_build(const struct tls_store_cert *certs,
    size_t ncerts, const struct tls_store_params *, FILE *err);

/* tls_store_build() over conf's [Certificate] sections and [Transport]. */
struct tls_store *tls_store_new(const struct conf *, FILE *err);

/* Take and drop a reference; the last one frees the store. */
struct tls_store *tls_store_ref(struct tls_store *);
void tls_store_unref(struct tls_store *);

/* Drop the caller's reference (the same as tls_store_unref). */
void tls_store_free(struct tls_store *);

/*
 * Build a store for conf and, on success, drop the reference *current
 * held and put the new store there (0).  On failure report as
 * tls_store_build() does and leave *current as it was (-1).
 */
int tls_store_reload(
    struct tls_store **current, const struct conf *, FILE *err);

/*
 * Have the files the store was built from changed on disk since they were
 * loaded (inode, size or modification time of a certificate, key, CA or
 * CRL file)?  The daemon polls this and reloads, so a renewed
 * certificate or a fresh CRL is used without a restart.  After a reload
 * that failed, tls_store_rescan() accepts the files' current state so
 * that the same broken file is not retried until it changes again.
 */
int tls_store_changed(const struct tls_store *);
void tls_store_rescan(struct tls_store *);

/* Is there a certificate of this name (case-insensitive)? */
int tls_store_has(const struct tls_store *, const char *name);

/*
 * A server SSL for a connection offered the certificate named cert_name
 * (another certificate may be chosen by SNI).  With request_client_cert
 * the handshake asks for a client certificate but completes without one
 * or with an untrusted one: Domain Security decides per message later,
 * on facts from tls_peer_outcome().  The SSL holds a reference to the
 * store until SSL_free().  NULL when the certificate is unknown.
 */
SSL *tls_store_ssl(
    struct tls_store *, const char *cert_name, int request_client_cert);

/*
 * The name of the certificate an SSL from tls_store_ssl() serves (after
 * SNI), for the logs; NULL for an SSL that is not the store's.
 */
const char *tls_store_served(SSL *);

/*
 * Present certificate `name` of the store as our certificate on ssl
 * (the SMTP client's TlsCertificateName: mutual TLS).  0, or -1 when the
 * store has no such certificate or OpenSSL refuses it.
 */
int tls_store_use_cert(const struct tls_store *, const char *name, SSL *ssl);

/*
 * One line per certificate for sluicectl and the start-up log: name,
 * subject names, issuer, expiry, key type; expired certificates are
 * marked.
 */
void tls_store_describe(const struct tls_store *, FILE *out);

#endif
