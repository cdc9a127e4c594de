/*
 * tlsrpt_txt.c - parsing _smtp._tls TXT records (see tlsrpt_txt.h).
 * Pure; its input is DNS data anyone can publish, so every length is
 * bounded and the URIs are checked before they are ever used: a mailto:
 * must be one address of printable ASCII without spaces, an https: must
 * be printable ASCII without spaces (libcurl parses the rest).
 *
 * RFC 8460 3, the grammar:
 *   tlsrpt-record = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]
 *   field-delim   = *WSP ";" *WSP
 *   tlsrpt-field  = "rua=" uri *(*WSP "," *WSP uri) / ext-name "=" ext-value
 * Unknown extensions are ignored; "rua" must come exactly once.  Commas
 * and semicolons inside a URI are percent-encoded by the publisher, so
 * they always separate.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt/tlsrpt_txt.h"

static int
tlsrpt_txt_is_version(const char *r)
{
	size_t n = strlen("v=TLSRPTv1");

	/* the version, then a field delimiter (WSP or ";") or the end */
	return strncmp(r, "v=TLSRPTv1", n) == 0 &&
	       (r[n] == ';' || r[n] == ' ' || r[n] == '\t' || r[n] == '\0');
}

/* Is one URI usable?  Printable ASCII, no space, a scheme we send to. */
static int
tlsrpt_txt_uri_ok(const char *u, size_t n)
{
	const char *at;

	if (n == 0 || n >= TLSRPT_URI_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (u[i] <= 0x20 || u[i] >= 0x7f)
			return 0;
	if (n > 8 && strncasecmp(u, "https://", 8) == 0)
		return 1;
	if (n > 7 && strncasecmp(u, "mailto:", 7) == 0) {
		/* one address: local@domain, no "?" header fields */
		at = memchr(u + 7, '@', n - 7);
		return at != NULL && at > u + 7 && at < u + n - 1 &&
		       memchr(u + 7, '?', n - 7) == NULL &&
		       memchr(at + 1, '@', (size_t)(u + n - at - 1)) == NULL;
	}
	return 0;
}

static int
tlsrpt_txt_record(const char *r, struct tlsrpt_rua *out, const char **why)
{
	const char *p = r + strlen("v=TLSRPTv1");
	int have_rua = 0;

	memset(out, 0, sizeof(*out));
	while (*p != '\0') {
		const char *name, *eq, *end;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p != ';') {
			*why = "fields are separated by \";\"";
			return -1;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break; /* a trailing delimiter */
		name = p;
		if ((end = strchr(p, ';')) == NULL)
			end = p + strlen(p);
		if ((eq = memchr(name, '=', (size_t)(end - name))) == NULL ||
		    eq == name) {
			*why = "a field is not NAME=VALUE";
			return -1;
		}
		if (eq - name == 3 && strncmp(name, "rua", 3) == 0) {
			const char *u = eq + 1;

			if (have_rua++) {
				*why = "rua is given twice";
				return -1;
			}
			while (u < end) {
				const char *comma =
				    memchr(u, ',', (size_t)(end - u));
				const char *ue = comma != NULL ? comma : end;
				const char *b = u, *e = ue;

				while (b < e && (*b == ' ' || *b == '\t'))
					b++;
				while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
				if (tlsrpt_txt_uri_ok(b, (size_t)(e - b)) &&
				    out->n < TLSRPT_RUA_MAX) {
					memcpy(out->uri[out->n], b,
					    (size_t)(e - b));
					out->uri[out->n][e - b] = '\0';
					out->n++;
				}
				u = ue + (comma != NULL);
			}
		}
		/* other fields are extensions: ignored */
		p = end;
	}
	if (!have_rua) {
		*why = "no rua";
		return -1;
	}
	if (out->n == 0) {
		*why = "no mailto: or https: address in rua";
		return -1;
	}
	return 0;
}

int
tlsrpt_txt_parse(const char *const *records, size_t n, struct tlsrpt_rua *out,
    const char **why)
{
	const char *only = NULL;
	size_t found = 0;

	for (size_t i = 0; i < n; i++)
		if (records[i] != NULL && tlsrpt_txt_is_version(records[i])) {
			only = records[i];
			found++;
		}
	if (found == 0) {
		*why = "no v=TLSRPTv1 record";
		return -1;
	}
	if (found > 1) {
		*why = "more than one v=TLSRPTv1 record";
		return -1;
	}
	return tlsrpt_txt_record(only, out, why);
}
