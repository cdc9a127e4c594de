/*
 * sts_policy.h - MTA-STS (RFC 8461) texts, parsed strictly: the
 * "_mta-sts" TXT record (section 3.1), the policy file (section 3.2), and
 * the matching of MX host names against the policy's "mx" patterns
 * (section 4.1).  Pure functions over length-carrying input; nothing here
 * does I/O.
 */
#ifndef SLUICE_STS_POLICY_H
#define SLUICE_STS_POLICY_H

#include <stddef.h>

/* The largest policy fetched and parsed (RFC 8461 3.3 suggests 64 KB). */
#define STS_POLICY_MAX (64 * 1024)
/* "mx" patterns kept per policy; more is refused as broken. */
#define STS_MX_MAX 64
/* RFC 8461 3.2: max_age is at most 31557600 seconds (a year). */
#define STS_MAX_AGE_MAX 31557600ul
/* RFC 8461 3.1: the id is 1 to 32 letters and digits. */
#define STS_ID_MAX 32

enum sts_policy_mode {
	STS_POLICY_ENFORCE,
	STS_POLICY_TESTING,
	STS_POLICY_NONE,
};

struct sts_policy {
	enum sts_policy_mode mode;
	unsigned long max_age; /* seconds */
	size_t nmx;
	char mx[STS_MX_MAX][256]; /* lower case, "*.example.net" or a name */
};

/*
 * The policy file (RFC 8461 3.2).  0 and *p filled when the text is a
 * valid policy; -1 with *why (a static string naming the fault and, in
 * line, where) otherwise, and *p must not be used: a broken policy is
 * never half-used.  Accepted: LF or CRLF line ends, fields in any order,
 * unknown fields (extensions) ignored, empty lines at the very end.
 * Refused: a missing, repeated or bad version, mode or max_age; no "mx"
 * unless the mode is "none"; a bad mx pattern; whitespace before a
 * colon or at the start of a line; NUL or other control characters;
 * more than STS_MX_MAX patterns; more than STS_POLICY_MAX octets.
 */
int sts_policy_parse(const char *text, size_t len, struct sts_policy *p,
    char *why, size_t whylen);

/*
 * One "_mta-sts" TXT record, its character-strings already joined
 * (RFC 8461 3.1): "v=STSv1; id=20260101T000000;".  0 with the id in
 * id[STS_ID_MAX + 1]; -1 when it is not a valid STSv1 record.
 */
int sts_txt_parse(const char *text, size_t len, char *id);

/* Does the record begin with "v=STSv1" (so it counts as one of ours)? */
int sts_txt_is_sts(const char *text, size_t len);

/*
 * TXT RDATA in wire form (length-prefixed character-strings) joined
 * into out (NUL-terminated); -1 when malformed or longer than outlen - 1.
 */
int sts_txt_join(
    const unsigned char *rdata, size_t len, char *out, size_t outlen);

/*
 * RFC 8461 4.1: does the MX host name match one of the policy's
 * patterns?  Case-insensitive, a final dot ignored; "*.example.net"
 * matches exactly one more label (mx.example.net, not example.net, not
 * a.b.example.net).
 */
int sts_policy_match(const struct sts_policy *, const char *host);
int sts_pattern_match(const char *pattern, const char *host);

/* "enforce", "testing", "none". */
const char *sts_policy_mode_name(enum sts_policy_mode);

#endif
