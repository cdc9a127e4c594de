/*
 * tls_verify.c - TLS policy decisions (see tls_verify.h).
 *
 * Where it sits: the server session asks tls_domain_secure_check() at MAIL
 * FROM for a domain of TLSReceiveDomainSecureList; the SMTP client asks
 * tls_evaluate() after its handshake, before it sends anything, and defers
 * when a check its TlsAuthLevel needs has failed.  Both get their facts
 * from tls_peer_outcome(); the functions here only read them.
 *
 * Name matching is RFC 9525 (which obsoletes RFC 6125): DNS-ID and IP-ID
 * subjectAltNames only, never the subject CN; a wildcard only as the
 * complete left-most label, standing for one label.  OpenSSL 3.0's
 * X509_check_host() does this with NO_PARTIAL_WILDCARDS and
 * NEVER_CHECK_SUBJECT (its defaults accept "w*.example.com" and fall back
 * to the CN); it also refuses a wildcard with fewer than two labels after
 * it ("*.com").  It does not know the public suffix list, so "*.co.uk"
 * matches "example.co.uk"; CAs may not issue such certificates.  It does
 * accept reference names that are not host names (".example.com",
 * "*.example.com" match the SAN "*.example.com"), so every reference name
 * is checked by tls_name_valid() first.
 *
 * Invariants: no I/O, no allocation beyond OpenSSL's decoding of the
 * subjectAltName extension, every output bounded by its caller's size,
 * and no byte of a certificate or the envelope reaches a reason string
 * unless it is printable ASCII (reasons end up in SMTP replies and logs).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "tls/tls_verify.h"

#define TLS_VERIFY_FLAGS                                                       \
	(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |                                \
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)

/* RFC 1035 2.3.4: a label is at most 63 octets. */
#define TLS_LABEL_MAX 63

/* Longest name echoed into a reason; longer ones are not host names. */
#define TLS_ECHO_MAX 255

/* Room for the certificate names quoted in one reason. */
#define TLS_REASON_NAMES 256

static const struct {
	enum tls_auth_level level;
	const char *name;
} tls_levels[] = {
    {TLS_AUTH_NONE, ""},
    {TLS_AUTH_ENCRYPTION_ONLY, "EncryptionOnly"},
    {TLS_AUTH_CERTIFICATE_VALIDATION, "CertificateValidation"},
    {TLS_AUTH_DOMAIN_VALIDATION, "DomainValidation"},
};

static const char *const tls_check_names[] = {
    [TLS_CHECK_OK] = "OK",
    [TLS_CHECK_NO_TLS] = "NoTLS",
    [TLS_CHECK_HANDSHAKE] = "HandshakeFailed",
    [TLS_CHECK_NO_CERT] = "NoCertificate",
    [TLS_CHECK_UNTRUSTED] = "Untrusted",
    [TLS_CHECK_EXPIRED] = "Expired",
    [TLS_CHECK_REVOKED] = "Revoked",
    [TLS_CHECK_NAME_MISMATCH] = "NameMismatch",
    [TLS_CHECK_DANE] = "DaneNoMatch",
    [TLS_CHECK_STS_MX] = "MxNotInPolicy",
};

const char *
tls_level_name(enum tls_auth_level level)
{
	for (size_t i = 0; i < sizeof(tls_levels) / sizeof(tls_levels[0]); i++)
		if (tls_levels[i].level == level)
			return tls_levels[i].name;
	return "";
}

int
tls_level_parse(const char *s, enum tls_auth_level *level)
{
	for (size_t i = 0; i < sizeof(tls_levels) / sizeof(tls_levels[0]);
	     i++) {
		if (strcasecmp(s, tls_levels[i].name) == 0) {
			*level = tls_levels[i].level;
			return 0;
		}
	}
	return -1;
}

const char *
tls_check_name(enum tls_check c)
{
	if ((unsigned)c >= sizeof(tls_check_names) / sizeof(tls_check_names[0]))
		return "Unknown";
	return tls_check_names[c];
}

int
tls_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > TLS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			/* RFC 1123 2.1: no empty label, no hyphen at an end. */
			if (label == 0 || name[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if ((label == 0 && c == '-') || ++label > TLS_LABEL_MAX)
			return 0;
	}
	return name[len - 1] != '-';
}

/*
 * An address reference identity: "192.0.2.1", "2001:db8::1",
 * "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 4.1.3).  Fills addr
 * (4 or 16 bytes) and returns its length, 0 when name is no address.
 */
static size_t
tls_parse_address(const char *name, unsigned char addr[16])
{
	char inner[64];
	size_t len = strlen(name);

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		if (len - 2 >= sizeof(inner))
			return 0;
		memcpy(inner, name + 1, len - 2);
		inner[len - 2] = '\0';
		if (strncasecmp(inner, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, inner + 5, addr) == 1 ? 16
			                                                 : 0;
		return inet_pton(AF_INET, inner, addr) == 1 ? 4 : 0;
	}
	if (inet_pton(AF_INET, name, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, name, addr) == 1)
		return 16;
	return 0;
}

int
tls_name_matches(X509 *cert, const char *name)
{
	unsigned char addr[16];
	size_t alen, len;

	if (cert == NULL || name == NULL)
		return 0;
	if ((alen = tls_parse_address(name, addr)) > 0)
		return X509_check_ip(cert, addr, alen, 0) == 1;
	if (!tls_name_valid(name))
		return 0;
	len = strlen(name);
	if (name[len - 1] == '.') /* absolute form: same name */
		len--;
	return X509_check_host(cert, name, len, TLS_VERIFY_FLAGS, NULL) == 1;
}

/*
 * A DNS-ID as a lower-case C string in out (TLS_NAME_MAX + 1 bytes), the
 * trailing dot removed; 0 when it is not a usable name: embedded NUL,
 * characters outside LDH, too long, or a wildcard other than a whole
 * left-most label with at least two labels after it.
 */
static int
tls_dns_id(const ASN1_IA5STRING *s, char out[TLS_NAME_MAX + 2])
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);
	const char *host = out;

	if (n <= 0 || n > TLS_NAME_MAX + 1)
		return 0;
	for (int i = 0; i < n; i++) {
		unsigned char c = d[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
	if (strlen(out) != (size_t)n) /* embedded NUL */
		return 0;
	if (out[0] == '*') {
		if (out[1] != '.')
			return 0;
		host = out + 2;
	}
	if (strchr(host, '*') != NULL || !tls_name_valid(host))
		return 0;
	if (host != out && strchr(host, '.') == NULL)
		return 0; /* "*.com": a wildcard directly under a TLD */
	if (out[n - 1] == '.')
		out[n - 1] = '\0';
	return 1;
}

int
tls_domain_matches(X509 *cert, const char *tls_domain)
{
	char base[TLS_NAME_MAX + 2], id[TLS_NAME_MAX + 2];
	GENERAL_NAMES *gens;
	size_t blen;
	int found = 0;

	if (cert == NULL || tls_domain == NULL)
		return 0;
	if (strncmp(tls_domain, "*.", 2) != 0)
		return strchr(tls_domain, '*') == NULL &&
		       tls_name_matches(cert, tls_domain);
	if (!tls_name_valid(tls_domain + 2) ||
	    strchr(tls_domain + 2, '.') == NULL)
		return 0; /* "*.com" would accept a whole TLD */
	blen = strlen(tls_domain + 2);
	memcpy(base, tls_domain + 2, blen + 1);
	if (base[blen - 1] == '.')
		base[--blen] = '\0';
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; !found && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		size_t ilen;

		if (g->type != GEN_DNS || !tls_dns_id(g->d.dNSName, id))
			continue;
		ilen = strlen(id);
		if (strcasecmp(id, base) == 0 ||
		    (ilen > blen + 1 && id[ilen - blen - 1] == '.' &&
		        strcasecmp(id + ilen - blen, base) == 0))
			found = 1;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

/* Append "s" to out (bounded); returns 0 when it did not fit. */
static int
tls_append(char *out, size_t len, const char *s)
{
	size_t have = strlen(out), add = strlen(s);

	if (have + add + 1 > len)
		return 0;
	memcpy(out + have, s, add + 1);
	return 1;
}

/* Printable ASCII, no space: safe to quote in a reply or a log. */
static int
tls_printable(const unsigned char *d, int n)
{
	if (n <= 0 || n > TLS_ECHO_MAX)
		return 0;
	for (int i = 0; i < n; i++)
		if (d[i] <= 0x20 || d[i] >= 0x7f)
			return 0;
	return 1;
}

static const char *
tls_safe(const char *s)
{
	return s != NULL && tls_printable((const unsigned char *)s,
	                        (int)strnlen(s, TLS_ECHO_MAX + 1))
	           ? s
	           : "(invalid name)";
}

/*
 * The subjectAltNames, ", "-separated, with "DNS:"/"IP:" prefixes when
 * prefixed; *count gets how many there are.  A list that does not fit in
 * len ends in "...".
 */
static void
tls_names(X509 *cert, char *out, size_t len, int prefixed, int *count)
{
	GENERAL_NAMES *gens;
	int n = 0, full = 0;

	if (len == 0)
		return;
	out[0] = '\0';
	if (count != NULL)
		*count = 0;
	if (cert == NULL || len < 4)
		return;
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; !full && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[TLS_ECHO_MAX + 16], ip[INET6_ADDRSTRLEN];
		const unsigned char *d;
		int dn;

		if (g->type == GEN_DNS) {
			d = ASN1_STRING_get0_data(g->d.dNSName);
			dn = ASN1_STRING_length(g->d.dNSName);
			snprintf(one, sizeof(one), "%s%s%.*s",
			    n > 0 ? ", " : "", prefixed ? "DNS:" : "",
			    tls_printable(d, dn) ? dn : 9,
			    tls_printable(d, dn) ? (const char *)d
			                         : "(invalid)");
		} else if (g->type == GEN_IPADD) {
			d = ASN1_STRING_get0_data(g->d.iPAddress);
			dn = ASN1_STRING_length(g->d.iPAddress);
			if ((dn != 4 && dn != 16) ||
			    inet_ntop(dn == 4 ? AF_INET : AF_INET6, d, ip,
			        sizeof(ip)) == NULL)
				snprintf(ip, sizeof(ip), "(invalid)");
			snprintf(one, sizeof(one), "%s%s%s", n > 0 ? ", " : "",
			    prefixed ? "IP:" : "", ip);
		} else {
			continue;
		}
		/* Keep 4 bytes for "...": the list must not look complete. */
		if (strlen(out) + strlen(one) + 4 > len) {
			tls_append(out, len, "...");
			full = 1;
		} else {
			tls_append(out, len, one);
		}
		n++;
	}
	GENERAL_NAMES_free(gens);
	if (count != NULL)
		*count = n;
}

void
tls_cert_names(X509 *cert, char *out, size_t len)
{
	tls_names(cert, out, len, 1, NULL);
}

int
tls_client_purpose_ok(X509 *cert, int depth)
{
	if (cert == NULL)
		return 0;
	/* What OpenSSL requires of a server's chain, at the same depth. */
	return X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, depth > 0) ==
	       1;
}

enum tls_check
tls_verify_classify(long verify)
{
	switch (verify) {
	case X509_V_OK:
	case X509_V_ERR_UNABLE_TO_GET_CRL: /* no CRL for this CA: unchecked */
		return TLS_CHECK_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		return TLS_CHECK_EXPIRED;
	case X509_V_ERR_CERT_REVOKED:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		return TLS_CHECK_REVOKED;
	default:
		return TLS_CHECK_UNTRUSTED;
	}
}

static void
tls_time(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, len, "an unreadable date");
}

/*
 * The reason for a failed chain check, about "what" ("certificate",
 * "client certificate").  Own words where an administrator needs more
 * than OpenSSL's text (dates, CRL advice), OpenSSL's text otherwise.
 */
static void
tls_chain_reason(const struct tls_outcome *o, enum tls_check c,
    const char *what, char *why, size_t len)
{
	const char *err = X509_verify_cert_error_string(o->verify);
	char when[64], depth[48] = "";

	if (o->verify_depth > 0)
		snprintf(depth, sizeof(depth), " (CA certificate at depth %d)",
		    o->verify_depth);
	switch (c) {
	case TLS_CHECK_EXPIRED:
		if (o->verify_depth > 0 || o->cert == NULL) {
			snprintf(why, len, "%s chain not valid now: %s%s", what,
			    err, depth);
		} else if (o->verify == X509_V_ERR_CERT_NOT_YET_VALID) {
			tls_time(
			    X509_get0_notBefore(o->cert), when, sizeof(when));
			snprintf(why, len,
			    "%s is not yet valid (not before %s)", what, when);
		} else {
			tls_time(
			    X509_get0_notAfter(o->cert), when, sizeof(when));
			snprintf(why, len, "%s has expired (not after %s)",
			    what, when);
		}
		break;
	case TLS_CHECK_REVOKED:
		if (o->verify == X509_V_ERR_CERT_REVOKED)
			snprintf(
			    why, len, "%s revoked by its CA%s", what, depth);
		else
			snprintf(why, len,
			    "%s revocation status unknown: %s%s; the CRLFile "
			    "needs a current CRL from that CA",
			    what, err, depth);
		break;
	default:
		snprintf(
		    why, len, "%s chain not trusted: %s%s", what, err, depth);
		break;
	}
}

/* "certificate name a does not match", "certificate names a, b do not". */
static void
tls_mismatch_reason(
    X509 *cert, const char *rule, const char *name, char *why, size_t len)
{
	char names[TLS_REASON_NAMES];
	int n;

	tls_names(cert, names, sizeof(names), 0, &n);
	if (n == 0)
		snprintf(why, len,
		    "certificate has no subjectAltName (its subject CN is "
		    "never used) and so does not match %s %s",
		    rule, tls_safe(name));
	else
		snprintf(why, len, "certificate name%s %s do%s not match %s %s",
		    n > 1 ? "s" : "", names, n > 1 ? "" : "es", rule,
		    tls_safe(name));
}

static void
tls_set(char *why, size_t len, const char *text)
{
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", text);
}

enum tls_check
tls_evaluate(enum tls_auth_level level, const struct tls_outcome *o,
    const char *tls_domain, const char *domain, char *why, size_t whylen)
{
	enum tls_check c;
	char scratch[2];
	int by_tls_domain = tls_domain != NULL && tls_domain[0] != '\0';

	if (why == NULL || whylen == 0) {
		why = scratch;
		whylen = sizeof(scratch);
	}
	why[0] = '\0';
	if (level == TLS_AUTH_NONE)
		return TLS_CHECK_OK; /* opportunistic: nothing is required */
	if (!o->tls) {
		tls_set(why, whylen,
		    "TLS is required but was not used (no STARTTLS)");
		return TLS_CHECK_NO_TLS;
	}
	if (!o->handshake_ok) {
		tls_set(why, whylen, "TLS handshake failed");
		return TLS_CHECK_HANDSHAKE;
	}
	if (level == TLS_AUTH_ENCRYPTION_ONLY)
		return TLS_CHECK_OK;
	if (o->cert == NULL) {
		tls_set(why, whylen, "no certificate was presented");
		return TLS_CHECK_NO_CERT;
	}
	if ((c = tls_verify_classify(o->verify)) != TLS_CHECK_OK) {
		tls_chain_reason(o, c, "certificate", why, whylen);
		return c;
	}
	if (level == TLS_AUTH_CERTIFICATE_VALIDATION)
		return TLS_CHECK_OK;
	if (by_tls_domain ? tls_domain_matches(o->cert, tls_domain)
	                  : tls_name_matches(o->cert, domain))
		return TLS_CHECK_OK;
	if (!by_tls_domain && (domain == NULL || domain[0] == '\0'))
		tls_set(why, whylen,
		    "no TlsDomain and no recipient domain to compare the "
		    "certificate with");
	else
		tls_mismatch_reason(o->cert,
		    by_tls_domain ? "TlsDomain" : "the recipient domain",
		    by_tls_domain ? tls_domain : domain, why, whylen);
	return TLS_CHECK_NAME_MISMATCH;
}

enum tls_check
tls_domain_secure_check(const struct tls_outcome *o, const char *sender_domain,
    char *why, size_t whylen)
{
	enum tls_check c;
	char scratch[2], names[TLS_REASON_NAMES];
	int n;

	if (why == NULL || whylen == 0) {
		why = scratch;
		whylen = sizeof(scratch);
	}
	why[0] = '\0';
	if (!o->tls) {
		tls_set(why, whylen,
		    "the session is not encrypted; use STARTTLS with a client "
		    "certificate");
		return TLS_CHECK_NO_TLS;
	}
	if (!o->handshake_ok) {
		tls_set(why, whylen, "the TLS handshake failed");
		return TLS_CHECK_HANDSHAKE;
	}
	if (o->cert == NULL) {
		tls_set(why, whylen, "no client certificate was presented");
		return TLS_CHECK_NO_CERT;
	}
	if ((c = tls_verify_classify(o->verify)) != TLS_CHECK_OK) {
		tls_chain_reason(o, c, "client certificate", why, whylen);
		return c;
	}
	if (sender_domain != NULL && tls_name_matches(o->cert, sender_domain))
		return TLS_CHECK_OK;
	tls_names(o->cert, names, sizeof(names), 0, &n);
	if (n == 0)
		snprintf(why, whylen,
		    "the client certificate does not name %s (it has no "
		    "subjectAltName; the subject CN is never used)",
		    tls_safe(sender_domain));
	else
		snprintf(why, whylen,
		    "the client certificate does not name %s (it names %s)",
		    tls_safe(sender_domain), names);
	return TLS_CHECK_NAME_MISMATCH;
}
