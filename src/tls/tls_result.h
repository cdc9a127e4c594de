/*
 * tls_result.h - what one outbound session's TLS came to, in the words
 * of RFC 8460 (SMTP TLS Reporting), section 4.3: the result types that
 * the posture table, the metrics and the TLS reports share.
 *
 * A session either met its policy (TLS_RESULT_OK: TLS was used, or the
 * policy did not ask for it) or failed with one of the RFC's types.  The
 * types name what went wrong at the next hop's door, not what we did
 * about it (under an opportunistic policy a failed handshake is followed
 * by plaintext, and is still a validation-failure of that session).
 */
#ifndef SLUICE_TLS_RESULT_H
#define SLUICE_TLS_RESULT_H

#include "tls/tls_verify.h"

enum tls_result {
	TLS_RESULT_OK,
	/* negotiation failures (RFC 8460 4.3.2.1) */
	TLS_RESULT_STARTTLS_NOT_SUPPORTED,
	TLS_RESULT_CERTIFICATE_HOST_MISMATCH,
	TLS_RESULT_CERTIFICATE_EXPIRED,
	TLS_RESULT_CERTIFICATE_NOT_TRUSTED,
	TLS_RESULT_VALIDATION_FAILURE,
	/* policy failures: DANE (4.3.2.2) */
	TLS_RESULT_TLSA_INVALID,
	TLS_RESULT_DNSSEC_INVALID,
	TLS_RESULT_DANE_REQUIRED,
	/* policy failures: MTA-STS (4.3.2.3) */
	TLS_RESULT_STS_POLICY_FETCH_ERROR,
	TLS_RESULT_STS_POLICY_INVALID,
	TLS_RESULT_STS_WEBPKI_INVALID,
	TLS_RESULT_COUNT
};

/* "starttls-not-supported", ...; "ok" for TLS_RESULT_OK; never NULL. */
const char *tls_result_name(enum tls_result);
/* The result of a name (exact, as tls_result_name gives it); -1 none. */
int tls_result_from_name(const char *);

/*
 * A failed check of tls_verify.c as a result type: no TLS is
 * starttls-not-supported, an untrusted chain or a missing certificate
 * certificate-not-trusted, an expired one certificate-expired, a name
 * that does not match certificate-host-mismatch, no TLSA record matching
 * tlsa-invalid, and what the RFC has no word for (a failed handshake, a
 * revoked certificate, an MX host outside the MTA-STS policy)
 * validation-failure.  The client names a certificate that only MTA-STS
 * asked for sts-webpki-invalid itself (it knows the policy).
 */
enum tls_result tls_result_from_check(enum tls_check);

#endif
