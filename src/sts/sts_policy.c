/*
 * sts_policy.c - MTA-STS texts, parsed strictly (see sts_policy.h).
 *
 * Where it sits: src/sts/sts.c fetches the TXT record and the policy and
 * hands their bytes here; the SMTP client asks sts_policy_match() which
 * MX hosts an "enforce" policy allows.
 *
 * The grammar is RFC 8461's ABNF, case-sensitive where it says %s (field
 * names, "STSv1", the modes).  A policy either parses whole or is
 * refused whole, with the line and the reason: a policy that is half
 * understood could send mail to a host its owner never listed, or stop
 * mail to one it did.  Input is hostile (it comes from any web server
 * the DNS names): it is read as a length-carrying slice, never as a C
 * string, every loop is bounded by its length, and every field by a
 * named limit.
 *
 * One leniency, documented in docs/tls.md: empty lines at the very end
 * (editors add them; the ABNF allows one final line end).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sts/sts_policy.h"

const char *
sts_policy_mode_name(enum sts_policy_mode m)
{
	switch (m) {
	case STS_POLICY_ENFORCE:
		return "enforce";
	case STS_POLICY_TESTING:
		return "testing";
	case STS_POLICY_NONE:
		return "none";
	}
	return "?";
}

static int
sts_alnum(int c)
{
	return isascii(c) && isalnum(c);
}

static int
sts_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* A slice equals a literal exactly (case-sensitive, %s in the ABNF). */
static int
sts_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/*
 * RFC 5321 Domain: sub-domain *("." sub-domain), sub-domain = Let-dig
 * [Ldh-str]: letters, digits, inner hyphens; labels of 1-63, at most 253
 * in all.  Written lower case into out (at least 256 bytes).
 */
static int
sts_domain(const char *s, size_t n, char *out)
{
	size_t label = 0;

	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
		} else if (sts_alnum(c) || (c == '-' && label > 0)) {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0 || s[n - 1] == '-')
		return -1;
	out[n] = '\0';
	return 0;
}

/* sts-policy-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_-.") */
static int
sts_ext_name(const char *s, size_t n)
{
	if (n == 0 || n > 32 || !sts_alnum((unsigned char)s[0]))
		return 0;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!sts_alnum(c) && c != '_' && c != '-' && c != '.')
			return 0;
	}
	return 1;
}

#define STS_FAIL(...)                                                          \
	do {                                                                   \
		snprintf(why, whylen, __VA_ARGS__);                            \
		return -1;                                                     \
	} while (0)

int
sts_policy_parse(const char *text, size_t len, struct sts_policy *p, char *why,
    size_t whylen)
{
	int have_version = 0, have_mode = 0, have_max_age = 0;
	size_t pos = 0, lineno = 0, blank = 0;

	memset(p, 0, sizeof(*p));
	if (len > STS_POLICY_MAX)
		STS_FAIL("policy larger than %d octets", STS_POLICY_MAX);
	while (pos < len) {
		const char *line = text + pos, *colon, *v;
		size_t n, end, vn, nn;

		lineno++;
		for (end = pos; end < len && text[end] != '\n'; end++)
			;
		n = end - pos;
		pos = end < len ? end + 1 : end;
		if (n > 0 && line[n - 1] == '\r' && end < len)
			n--; /* CRLF */
		if (n == 0) {
			blank = lineno;
			continue;
		}
		if (blank != 0)
			STS_FAIL(
			    "line %zu: empty line inside the policy", blank);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)line[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				STS_FAIL("line %zu: control character 0x%02x",
				    lineno, c);
		}
		if ((colon = memchr(line, ':', n)) == NULL)
			STS_FAIL("line %zu: no \"name: value\"", lineno);
		nn = (size_t)(colon - line);
		v = colon + 1;
		vn = n - nn - 1;
		while (vn > 0 && sts_wsp((unsigned char)*v))
			v++, vn--;
		while (vn > 0 && sts_wsp((unsigned char)v[vn - 1]))
			vn--;
		if (vn == 0)
			STS_FAIL("line %zu: empty value", lineno);
		if (sts_eq(line, nn, "version")) {
			if (have_version++)
				STS_FAIL("line %zu: second version", lineno);
			if (!sts_eq(v, vn, "STSv1"))
				STS_FAIL(
				    "line %zu: version is not STSv1", lineno);
		} else if (sts_eq(line, nn, "mode")) {
			if (have_mode++)
				STS_FAIL("line %zu: second mode", lineno);
			if (sts_eq(v, vn, "enforce"))
				p->mode = STS_POLICY_ENFORCE;
			else if (sts_eq(v, vn, "testing"))
				p->mode = STS_POLICY_TESTING;
			else if (sts_eq(v, vn, "none"))
				p->mode = STS_POLICY_NONE;
			else
				STS_FAIL("line %zu: mode is not enforce, "
				         "testing or none",
				    lineno);
		} else if (sts_eq(line, nn, "max_age")) {
			unsigned long age = 0;

			if (have_max_age++)
				STS_FAIL("line %zu: second max_age", lineno);
			if (vn > 10)
				STS_FAIL("line %zu: max_age has more than 10 "
				         "digits",
				    lineno);
			for (size_t i = 0; i < vn; i++) {
				if (!isdigit((unsigned char)v[i]))
					STS_FAIL("line %zu: max_age is not a "
					         "number",
					    lineno);
				age = age * 10 + (unsigned long)(v[i] - '0');
			}
			if (age > STS_MAX_AGE_MAX)
				STS_FAIL("line %zu: max_age over %lu", lineno,
				    STS_MAX_AGE_MAX);
			p->max_age = age;
		} else if (sts_eq(line, nn, "mx")) {
			char *out;
			int wild = vn > 2 && v[0] == '*' && v[1] == '.';

			if (p->nmx >= STS_MX_MAX)
				STS_FAIL("line %zu: more than %d mx patterns",
				    lineno, STS_MX_MAX);
			out = p->mx[p->nmx];
			if (wild)
				memcpy(out, "*.", 2);
			if (sts_domain(v + 2 * wild, vn - 2 * (size_t)wild,
			        out + 2 * wild) < 0)
				STS_FAIL("line %zu: mx is not a host name or "
				         "\"*.\" and a domain",
				    lineno);
			p->nmx++;
		} else if (!sts_ext_name(line, nn)) {
			STS_FAIL("line %zu: not a field name", lineno);
		}
		/* an extension: ignored (RFC 8461 3.2) */
	}
	if (!have_version)
		STS_FAIL("no version field");
	if (!have_mode)
		STS_FAIL("no mode field");
	if (!have_max_age)
		STS_FAIL("no max_age field");
	if (p->nmx == 0 && p->mode != STS_POLICY_NONE)
		STS_FAIL("no mx field (needed unless the mode is none)");
	return 0;
}

int
sts_txt_is_sts(const char *text, size_t len)
{
	static const char v[] = "v=STSv1";

	/* "v=STSv1" then ";", whitespace or the end (RFC 8461 3.1). */
	if (len < sizeof(v) - 1 || memcmp(text, v, sizeof(v) - 1) != 0)
		return 0;
	return len == sizeof(v) - 1 || text[sizeof(v) - 1] == ';' ||
	       sts_wsp((unsigned char)text[sizeof(v) - 1]);
}

/*
 * sts-text-record = sts-version 1*(sts-field-delim sts-field)
 *                   [sts-field-delim]
 * sts-field-delim = *WSP ";" *WSP; sts-field = sts-id / sts-extension.
 */
int
sts_txt_parse(const char *text, size_t len, char *id)
{
	size_t i = 7, fields = 0;
	int have_id = 0;

	id[0] = '\0';
	if (!sts_txt_is_sts(text, len))
		return -1;
	for (;;) {
		size_t start, eq, n;

		while (i < len && sts_wsp((unsigned char)text[i]))
			i++;
		if (i == len)
			break; /* no final ";": fine */
		if (text[i] != ';')
			return -1;
		i++;
		while (i < len && sts_wsp((unsigned char)text[i]))
			i++;
		if (i == len)
			break; /* the optional final delimiter */
		start = i;
		while (i < len && text[i] != '=' && text[i] != ';' &&
		       !sts_wsp((unsigned char)text[i]))
			i++;
		if (i == len || text[i] != '=')
			return -1;
		eq = i++;
		while (i < len && text[i] != ';' &&
		       !sts_wsp((unsigned char)text[i]))
			i++;
		n = i - eq - 1;
		if (n == 0)
			return -1;
		if (sts_eq(text + start, eq - start, "id")) {
			if (have_id++ || n > STS_ID_MAX)
				return -1;
			for (size_t k = 0; k < n; k++)
				if (!sts_alnum((unsigned char)text[eq + 1 + k]))
					return -1;
			memcpy(id, text + eq + 1, n);
			id[n] = '\0';
		} else {
			if (!sts_ext_name(text + start, eq - start))
				return -1;
			/* sts-ext-value: %x21-3A / %x3C / %x3E-7E */
			for (size_t k = 0; k < n; k++) {
				unsigned char c =
				    (unsigned char)text[eq + 1 + k];

				if (c < 0x21 || c > 0x7e || c == '=')
					return -1;
			}
		}
		fields++;
	}
	if (fields == 0 || !have_id) {
		id[0] = '\0';
		return -1;
	}
	return 0;
}

int
sts_txt_join(const unsigned char *rdata, size_t len, char *out, size_t outlen)
{
	size_t i = 0, w = 0;

	if (outlen == 0)
		return -1;
	while (i < len) {
		size_t n = rdata[i++];

		if (n > len - i || w + n >= outlen)
			return -1;
		memcpy(out + w, rdata + i, n);
		w += n;
		i += n;
	}
	out[w] = '\0';
	/* A NUL inside would cut the text short for every later reader. */
	return memchr(out, '\0', w) != NULL ? -1 : 0;
}

int
sts_pattern_match(const char *pattern, const char *host)
{
	size_t hl = strlen(host), pl = strlen(pattern);

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (hl == 0 || pl == 0)
		return 0;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = memchr(host, '.', hl);

		/* exactly one label in front of the pattern's domain */
		return dot != NULL && dot > host &&
		       (size_t)(host + hl - dot - 1) == pl - 2 &&
		       strncasecmp(dot + 1, pattern + 2, pl - 2) == 0;
	}
	return hl == pl && strncasecmp(host, pattern, hl) == 0;
}

int
sts_policy_match(const struct sts_policy *p, const char *host)
{
	for (size_t i = 0; i < p->nmx; i++)
		if (sts_pattern_match(p->mx[i], host))
			return 1;
	return 0;
}
