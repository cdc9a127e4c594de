/*
 * tls_dane.h - DANE for SMTP (RFC 7672) on the TLS side: what a next
 * hop's TLSA records require, OpenSSL's own DANE verifier set up with
 * them, and its verdict after the handshake; and the TLSA record that
 * publishes our own certificate (`sluicectl tlsa`).
 */
#ifndef SLUICE_TLS_DANE_H
#define SLUICE_TLS_DANE_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "dns/tlsa.h"

/* What DANE requires of one next hop, from strictest to nothing. */
enum tls_dane_need {
	TLS_DANE_OFF,     /* DANE does not apply: the connector's policy */
	TLS_DANE_ENCRYPT, /* secure TLSA records, none usable: TLS without
	                     authentication (RFC 7672 2.2), never plaintext */
	TLS_DANE_VERIFY,  /* TLS, and the certificate must match a record */
	TLS_DANE_SKIP,    /* do not use this host (bogus, failed look-up,
	                     or Mandatory without usable records) */
};

/*
 * RFC 7672 2.2 as a pure function.  addr_secure: the host's address
 * record was DNSSEC-validated (only then are TLSA records looked up, and
 * tlsa is their result; NULL when not looked up).  why receives one line
 * for logs and DSNs ("DANE: TLSA records of mx.example.net could not be
 * validated (bogus)", ...).
 */
enum tls_dane_need tls_dane_decide(enum conf_dane_mode, const char *host,
    int addr_secure, const struct tlsa_result *tlsa, char *why, size_t len);

/* "off", "encrypt", "verify", "skip". */
const char *tls_dane_need_name(enum tls_dane_need);

/*
 * Before the handshake of a TLS_DANE_VERIFY connection: OpenSSL's DANE
 * verifier with the usable records; the reference names for DANE-TA(2)
 * are the TLSA base domain and the host name the MX record gave (RFC
 * 7672 3.2.2); DANE-EE(3) matches the key alone, no name, no dates
 * (3.1.1).  -1 with *why when nothing usable could be added.
 */
int tls_dane_enable(
    SSL *, const struct tlsa_result *, const char *host, const char **why);

/*
 * After the handshake: did the peer match a TLSA record?  1 yes (match
 * receives "DANE-EE(3) 1 1 at depth 0"), 0 no (why receives "DANE: no
 * TLSA record matched the certificate of HOST" with OpenSSL's reason).
 * A resumed session counts when its first handshake verified under the
 * same records (the session cache key carries tls_dane_digest).
 */
int tls_dane_verified(SSL *, const char *host, char *match, size_t matchlen,
    char *why, size_t whylen);

/*
 * The peer's chain judged by PKIX alone (the SSL's trust anchors and
 * CRLs, as without DANE): with DANE on, OpenSSL's verify result is
 * DANE's, and a connector that asks for CertificateValidation or more
 * still gets its own check (the connector is the floor).  X509_V_OK or
 * the first error, its depth in *depth.
 */
long tls_dane_pkix(SSL *, int *depth);

/*
 * A digest of the usable records, independent of their order in the
 * DNS answer: part of the session cache key, so a session verified
 * under one TLSA RRset is never resumed under another.
 */
void tls_dane_digest(const struct tlsa_result *, char *out, size_t len);

/*
 * The TLSA record for a certificate: selector 0 (whole certificate) or 1
 * (public key), matching type 0 (exact), 1 (SHA2-256) or 2 (SHA2-512).
 * rr->data is malloc'ed.  -1 on failure.
 */
int tls_dane_cert_rr(
    X509 *, int usage, int selector, int mtype, struct tlsa_rr *rr);

#endif
