/*
 * tls_client.h - the SMTP client's side of TLS: one context per
 * configuration, an SSL per outbound connection (SNI, our certificate for
 * mutual TLS, the trust anchors for the connection's policy), a session
 * cache keyed by next hop, and the post-handshake check against the send
 * connector's TlsAuthLevel.
 *
 * Use, per connection: tls_client_ssl() before the handshake; after it,
 * tls_client_done() and tls_client_check(), and nothing is sent (not even
 * EHLO) until tls_client_check() says TLS_CHECK_OK: an untrusted server
 * does not fail the handshake (tls_peer_verify_cb), policy does.  End the
 * connection with SSL_shutdown() after QUIT: OpenSSL invalidates the
 * session of a TLS 1.2 connection freed without close_notify, and the
 * next connection to that hop then needs a full handshake.
 */
#ifndef SLUICE_TLS_CLIENT_H
#define SLUICE_TLS_CLIENT_H

#include <stdio.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "tls/tls_store.h"
#include "tls/tls_verify.h"

struct tls_client;

/* NULL or "" means "none" for files, "the default" for cipher lists. */
struct tls_client_params {
	const char *trusted_ca_file; /* server certificates chain to these */
	/*
	 * Partner CAs trusted only for Domain Security next hops (the
	 * partner's private root, as in Exchange's cross-imported roots),
	 * in addition to trusted_ca_file.
	 */
	const char *domain_secure_ca_file;
	const char *crl_file;     /* PEM CRLs; revocation checks need it */
	const char *ciphers;      /* TLS 1.2 list; default TLS_STORE_CIPHERS */
	const char *ciphersuites; /* TLS 1.3 suites */
};

/* NULL after "FILE: reason" lines on err (which may be NULL). */
struct tls_client *tls_client_new(const struct tls_client_params *, FILE *err);

/* tls_client_new() with the [Transport] settings of conf. */
struct tls_client *tls_client_from_conf(const struct conf *, FILE *err);

void tls_client_free(struct tls_client *);

/* One outbound connection. */
struct tls_client_target {
	const char *host; /* next hop name, or an address literal */
	unsigned port;
	const char *cert_name; /* TlsCertificateName, or NULL: none */
	int domain_secure;     /* also trust domain_secure_ca_file */
	/*
	 * Under DANE: tls_dane_digest() of the records the connection is
	 * verified against, or NULL.  Part of the session cache key: a
	 * resumed session carries its first handshake's verdict, which
	 * only counts under the same records.
	 */
	const char *dane;
};

/*
 * A client SSL for the target: SNI is the host name (never for an
 * address), our certificate comes from certs (which may be NULL when no
 * cert_name is asked for), and a cached session for the same host, port,
 * certificate and trust is offered for resumption.  NULL with *why set
 * when the certificate is unknown or OpenSSL fails.
 */
SSL *tls_client_ssl(struct tls_client *, const struct tls_client_target *,
    const struct tls_store *certs, const char **why);

/*
 * The handshake ended (ok or not).  A failed handshake drops the cached
 * session of that next hop, so a broken session is not offered again.
 */
void tls_client_done(SSL *, int handshake_ok);

/*
 * tls_peer_outcome() and tls_evaluate() in one: may the message go over
 * this connection at this level?  tls_domain is the connector's
 * TlsDomain (NULL or "" for none), domain the recipient domain.
 */
enum tls_check tls_client_check(SSL *, int handshake_ok, enum tls_auth_level,
    const char *tls_domain, const char *domain, char *why, size_t whylen);

/* Next hops with cached sessions (for tests and sluicectl). */
size_t tls_client_cached(struct tls_client *);

#endif
