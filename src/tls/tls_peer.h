/*
 * tls_peer.h - what a TLS handshake established about the other side:
 * facts for logs and headers (struct tls_peer) and for policy (struct
 * tls_outcome, judged by tls_verify.h), collected the same way on the
 * server and on the client side.
 */
#ifndef SLUICE_TLS_PEER_H
#define SLUICE_TLS_PEER_H

#include <openssl/ssl.h>

#include "tls/tls_verify.h"

/* Room for the subjectAltNames quoted in a log line. */
#define TLS_PEER_NAMES_MAX 256

/* What the handshake established, for logs, headers and policy. */
struct tls_peer {
	char version[16];  /* "TLSv1.3" */
	char cipher[64];   /* "TLS_AES_256_GCM_SHA384" */
	int has_cert;      /* the peer presented a certificate */
	long verify;       /* X509_V_OK or the chain's first error */
	int verify_depth;  /* where that error was found; -1: unknown */
	int resumed;       /* an earlier session was resumed */
	char subject[256]; /* one-line RFC 2253 form */
	char issuer[256];
	char not_after[32];
	char names[TLS_PEER_NAMES_MAX]; /* "DNS:a, IP:b" (tls_cert_names) */
};

/*
 * The verify callback both sides install with SSL_VERIFY_PEER: it lets
 * every handshake complete, whatever the chain, so that policy can decide
 * afterwards with a precise reason (tls_verify.h), and it keeps the
 * *first* real chain error (not the last one OpenSSL happened to see) as
 * the SSL's verify result, which is also what a resumed session reports.
 * A CA without a CRL is not an error (revocation is checked where a CRL
 * is available).  Callers MUST judge the outcome before trusting the
 * peer: an untrusted certificate does not fail the handshake.
 */
int tls_peer_verify_cb(int ok, X509_STORE_CTX *);

/*
 * The facts for policy after a handshake (handshake_ok: did it complete).
 * o->cert is borrowed from the SSL and valid while the SSL lives.  A NULL
 * ssl gives the outcome of a session without TLS.
 */
void tls_peer_outcome(SSL *, int handshake_ok, struct tls_outcome *o);

/* Fill *p for logs and headers. */
void tls_peer_describe(SSL *, struct tls_peer *p);

/*
 * Does the peer certificate name this host or domain?  tls_name_matches()
 * on the peer's certificate: RFC 9525, DNS-ID or IP-ID only.
 */
int tls_peer_names(SSL *, const char *domain);

#endif
