/*
 * tls_store.h - the server side's certificates: one OpenSSL context per
 * [Certificate] section, chosen per connection by SNI.
 *
 * A store is built from a configuration and never changes; a reload builds
 * a new one (and keeps the old one when that fails), and each connection
 * keeps the store of the configuration it started with.
 */
#ifndef SLUICE_TLS_STORE_H
#define SLUICE_TLS_STORE_H

#include <stdio.h>

#include <openssl/ssl.h>

#include "conf/conf.h"

struct tls_store;

/* Load every certificate; NULL after writing "FILE: reason" lines to err. */
struct tls_store *tls_store_new(const struct conf *, FILE *err);
void tls_store_free(struct tls_store *);

/*
 * Have the certificate or key files changed on disk since they were
 * loaded (inode, size or modification time)?  The daemon polls this and
 * reloads, so a renewed certificate is used without a restart.  After a
 * reload that failed, tls_store_rescan() accepts the files' current state
 * so that the same broken file is not retried until it changes again.
 */
int tls_store_changed(const struct tls_store *);
void tls_store_rescan(struct tls_store *);

/*
 * A server SSL for a connection offered the certificate named cert_name
 * (another certificate may be chosen by SNI).  With request_client_cert
 * the handshake asks for a client certificate but completes without one
 * or with an untrusted one: Domain Security decides per message later, on
 * facts from tls_peer_describe().  NULL when the certificate is unknown.
 */
SSL *tls_store_ssl(
    struct tls_store *, const char *cert_name, int request_client_cert);

/* What the handshake established, for logs, headers and policy. */
struct tls_peer {
	char version[16];  /* "TLSv1.3" */
	char cipher[64];   /* "TLS_AES_256_GCM_SHA384" */
	int has_cert;      /* the peer presented a certificate */
	long verify;       /* X509_V_OK or the chain's error */
	char subject[256]; /* one-line RFC 2253 form */
	char issuer[256];
	char not_after[32];
};

void tls_peer_describe(SSL *, struct tls_peer *);

/*
 * Does the peer certificate name this domain in a DNS subjectAltName?
 * RFC 9525: no partial wildcards, a wildcard only as the whole left-most
 * label and matching one label, never a fallback to the subject CN.
 */
int tls_peer_names(SSL *, const char *domain);

#endif
