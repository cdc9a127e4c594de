/*
 * tls_trust.h - trust anchors and revocation lists: the X509_STORE that
 * peer certificates are verified against, built the same way for the
 * server side (client certificates, Domain Security) and the client side
 * (next hops).
 */
#ifndef SLUICE_TLS_TRUST_H
#define SLUICE_TLS_TRUST_H

#include <stdio.h>

#include <openssl/x509.h>

/*
 * Longest chain a peer certificate may have: root, one or two
 * intermediates, leaf is usual; 10 leaves room and bounds the work a
 * hostile peer can cause.
 */
#define TLS_TRUST_VERIFY_DEPTH 10

/*
 * A store trusting the CA certificates of ca_file and extra_ca_file
 * (PEM; NULL or "" for none) and checking revocation against the CRLs of
 * crl_file (PEM CRLs only; NULL or "": no revocation checks at all).
 * With CRLs, every certificate of a chain is checked against its
 * issuer's CRL when the file has one (X509_V_FLAG_CRL_CHECK_ALL; a CA
 * without one is tolerated by tls_peer_verify_cb).  NULL after one
 * "FILE: reason" line per problem on err (which may be NULL).
 */
X509_STORE *tls_trust_build(const char *ca_file, const char *extra_ca_file,
    const char *crl_file, FILE *err);

#endif
