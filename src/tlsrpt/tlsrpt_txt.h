/*
 * tlsrpt_txt.h - a domain's TLS reporting policy (RFC 8460 section 3):
 * the TXT record at _smtp._tls.DOMAIN, "v=TLSRPTv1; rua=URI[,URI]",
 * with the rules for several records.
 */
#ifndef SLUICE_TLSRPT_TXT_H
#define SLUICE_TLSRPT_TXT_H

#include <stddef.h>

/* Report URIs of one record at most; longer lists are cut. */
#define TLSRPT_RUA_MAX 8
#define TLSRPT_URI_MAX 512

struct tlsrpt_rua {
	char uri[TLSRPT_RUA_MAX][TLSRPT_URI_MAX]; /* "mailto:..." "https:..." */
	size_t n;
};

/*
 * The policy of a domain from its TXT records (each already the
 * concatenation of its strings).  Records that do not start with
 * "v=TLSRPTv1" are ignored; unless exactly one is left, and it parses,
 * the domain has no policy (RFC 8460 3).  Only mailto: and https: URIs
 * are kept (others are unknown schemes); a record with none left is no
 * policy either.  0 with *out filled, -1 with *why.
 */
int tlsrpt_txt_parse(const char *const *records, size_t n,
    struct tlsrpt_rua *out, const char **why);

#endif
