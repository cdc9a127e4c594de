/*
 * tls_verify.h - TLS policy decisions as pure functions: does a
 * certificate name a host or a TlsDomain, and does what a handshake
 * established satisfy a TlsAuthLevel or Domain Security.
 *
 * Nothing here does I/O or keeps state; the facts come in a struct
 * tls_outcome (filled from a live SSL by tls_peer_outcome(), or built by
 * hand in the unit tests) and the answer is an enum tls_check plus a
 * reason an administrator can act on.
 */
#ifndef SLUICE_TLS_VERIFY_H
#define SLUICE_TLS_VERIFY_H

#include <stddef.h>

#include <openssl/x509.h>

#include "conf/conf.h"

/*
 * What was checked and failed, in the order the checks are made: each
 * level of enum tls_auth_level needs every check up to its own.  The
 * names (tls_check_name) go to logs, DSNs and the message tracking log.
 */
enum tls_check {
	TLS_CHECK_OK,
	TLS_CHECK_NO_TLS,        /* no STARTTLS, or not tried */
	TLS_CHECK_HANDSHAKE,     /* the handshake failed */
	TLS_CHECK_NO_CERT,       /* the peer presented no certificate */
	TLS_CHECK_UNTRUSTED,     /* the chain does not lead to a trusted CA */
	TLS_CHECK_EXPIRED,       /* outside its validity period */
	TLS_CHECK_REVOKED,       /* revoked, or revocation status unknown */
	TLS_CHECK_NAME_MISMATCH, /* does not name the expected host/domain */
	/* Internet policies (SPEC 6), checked after the connector's: */
	TLS_CHECK_DANE,   /* no TLSA record matched (RFC 7672) */
	TLS_CHECK_STS_MX, /* the MX host is not in the MTA-STS policy */
};

/*
 * The facts of one connection's TLS, as far as policy cares.  cert is
 * borrowed (from the SSL, or from a test) and only read.
 */
struct tls_outcome {
	int tls;          /* TLS was attempted (STARTTLS sent/accepted) */
	int handshake_ok; /* and the handshake completed */
	X509 *cert;       /* the peer's leaf certificate; NULL: none */
	long verify;      /* X509_V_OK or the first chain error */
	int verify_depth; /* chain position of that error; -1: unknown */
};

/* Longest host name a reference identifier may have (RFC 1035 2.3.4). */
#define TLS_NAME_MAX 253

/*
 * Is this a syntactically valid host name to look for in a certificate
 * (LDH labels of 1-63 characters, at most TLS_NAME_MAX, one trailing dot
 * allowed, no wildcard)?  SNI names and domains from the envelope are
 * checked with it before any matching.
 */
int tls_name_valid(const char *name);

/*
 * RFC 9525 reference identity check.  name is a host name, an IP address
 * ("192.0.2.1", "2001:db8::1") or an SMTP address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]").  A host name is compared with the DNS-ID
 * subjectAltNames only: a wildcard counts only as the whole left-most
 * label, matches exactly one label and needs two labels after it (so
 * "*.com" never matches); partial wildcards ("w*.example.com") never
 * match; the subject CN is never used.  An address is compared with the
 * IP-ID subjectAltNames only.  Returns 1 on a match, else 0.
 */
int tls_name_matches(X509 *cert, const char *name);

/*
 * Exchange's TlsDomain rule.  "*.contoso.com" stands for contoso.com and
 * every name below it: the certificate matches when one of its DNS-ID
 * subjectAltNames is contoso.com or ends in ".contoso.com" (that includes
 * a wildcard SAN "*.contoso.com" or "*.mail.contoso.com"; partial
 * wildcards and wildcards with fewer than two labels after them are
 * ignored).  Without a leading "*." the value is one host name and is
 * matched by tls_name_matches().  A pattern with fewer than two labels
 * after "*." ("*.com") or any other '*' matches nothing.
 */
int tls_domain_matches(X509 *cert, const char *tls_domain);

/*
 * Does this outcome satisfy a send connector's TLS level?
 *   TLS_AUTH_NONE            (opportunistic) anything is acceptable;
 *   ENCRYPTION_ONLY          TLS must be up;
 *   CERTIFICATE_VALIDATION   and the chain trusted, valid now, not
 *                            revoked (where a CRL is configured);
 *   DOMAIN_VALIDATION        and the certificate names tls_domain
 *                            (tls_domain_matches) or, when tls_domain is
 *                            NULL or "", the recipient domain
 *                            (tls_name_matches).
 * Returns the first failed check, TLS_CHECK_OK if none; why (may be
 * NULL) receives a one-line reason, e.g. "certificate name mx.other.test
 * does not match TlsDomain *.contoso.com".  To log what an opportunistic
 * connection would have failed, evaluate it at DOMAIN_VALIDATION.
 */
enum tls_check tls_evaluate(enum tls_auth_level, const struct tls_outcome *,
    const char *tls_domain, const char *domain, char *why, size_t whylen);

/*
 * Domain Security, inbound: may mail from sender_domain (a domain of
 * TLSReceiveDomainSecureList) be accepted over this connection?  Needs
 * TLS, a client certificate, a trusted, valid, unrevoked chain and a
 * certificate that names sender_domain (tls_name_matches).  why gets a
 * reason for the partner's administrator, e.g. "the client certificate
 * does not name partner.example (it names other.example)".
 */
enum tls_check tls_domain_secure_check(const struct tls_outcome *,
    const char *sender_domain, char *why, size_t whylen);

/*
 * Domain Security, inbound: may this certificate of a client's chain
 * (depth 0: the leaf) authenticate the client although OpenSSL found it
 * without the clientAuth extended key usage (X509_V_ERR_INVALID_PURPOSE)?
 * Yes when it is a valid TLS server certificate (serverAuth): public CAs
 * issue serverAuth-only certificates from 2026, and Postfix and Exim
 * present their server certificate as their client certificate.  A
 * certificate fit for neither (emailProtection only, a key usage that
 * cannot sign) stays refused.  Returns 1 or 0.
 */
int tls_client_purpose_ok(X509 *cert, int depth);

/*
 * What a chain verification result means for policy: TLS_CHECK_OK,
 * UNTRUSTED, EXPIRED or REVOKED.  A CA without a CRL
 * (X509_V_ERR_UNABLE_TO_GET_CRL) is OK: revocation is checked where a
 * CRL is available.
 */
enum tls_check tls_verify_classify(long verify);

/* "OK", "NoTLS", "Handshake", ... for logs; never NULL. */
const char *tls_check_name(enum tls_check);

/*
 * The TlsAuthLevel names, one table both ways: "EncryptionOnly",
 * "CertificateValidation", "DomainValidation"; "" for TLS_AUTH_NONE.
 * tls_level_parse() is case-insensitive and returns 0, or -1 for an
 * unknown name (the empty string parses as TLS_AUTH_NONE).
 */
const char *tls_level_name(enum tls_auth_level);
int tls_level_parse(const char *, enum tls_auth_level *);

/*
 * The certificate's subjectAltNames for logs and reasons: "DNS:a, IP:b";
 * "" when it has none.  Bounded by len; a list that does not fit ends in
 * "...".  Names with control characters are shown as "(invalid)".
 */
void tls_cert_names(X509 *cert, char *out, size_t len);

#endif
