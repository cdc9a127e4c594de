/*
 * tls_result.c - RFC 8460 result types (see tls_result.h): one name
 * table, and the mapping from tls_verify.c's checks.  Pure functions.
 */
#include <string.h>

#include "tls/tls_result.h"

static const char *const tls_result_names[TLS_RESULT_COUNT] = {
    [TLS_RESULT_OK] = "ok",
    [TLS_RESULT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
    [TLS_RESULT_CERTIFICATE_HOST_MISMATCH] = "certificate-host-mismatch",
    [TLS_RESULT_CERTIFICATE_EXPIRED] = "certificate-expired",
    [TLS_RESULT_CERTIFICATE_NOT_TRUSTED] = "certificate-not-trusted",
    [TLS_RESULT_VALIDATION_FAILURE] = "validation-failure",
    [TLS_RESULT_TLSA_INVALID] = "tlsa-invalid",
    [TLS_RESULT_DNSSEC_INVALID] = "dnssec-invalid",
    [TLS_RESULT_DANE_REQUIRED] = "dane-required",
    [TLS_RESULT_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
    [TLS_RESULT_STS_POLICY_INVALID] = "sts-policy-invalid",
    [TLS_RESULT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
};

const char *
tls_result_name(enum tls_result r)
{
	if ((unsigned)r >= TLS_RESULT_COUNT)
		return "validation-failure";
	return tls_result_names[r];
}

int
tls_result_from_name(const char *name)
{
	for (int r = 0; r < TLS_RESULT_COUNT; r++)
		if (strcmp(tls_result_names[r], name) == 0)
			return r;
	return -1;
}

enum tls_result
tls_result_from_check(enum tls_check check)
{
	switch (check) {
	case TLS_CHECK_OK:
		return TLS_RESULT_OK;
	case TLS_CHECK_NO_TLS:
		return TLS_RESULT_STARTTLS_NOT_SUPPORTED;
	case TLS_CHECK_NO_CERT:
	case TLS_CHECK_UNTRUSTED:
		return TLS_RESULT_CERTIFICATE_NOT_TRUSTED;
	case TLS_CHECK_EXPIRED:
		return TLS_RESULT_CERTIFICATE_EXPIRED;
	case TLS_CHECK_NAME_MISMATCH:
		return TLS_RESULT_CERTIFICATE_HOST_MISMATCH;
	case TLS_CHECK_DANE:
		/* no record of the RRset matched (RFC 8460 4.3.2.2) */
		return TLS_RESULT_TLSA_INVALID;
	case TLS_CHECK_HANDSHAKE:
	case TLS_CHECK_REVOKED:
	case TLS_CHECK_STS_MX: /* RFC 8460 has no word for it */
	default:
		return TLS_RESULT_VALIDATION_FAILURE;
	}
}
