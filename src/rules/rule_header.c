/*
 * rule_header.c - the header section of a message as transport rules see
 * it (RFC 5322 2.2): an index of fields, values unfolded with their
 * encoded-words decoded (RFC 2047), and the address of a From field.
 *
 * Input is the message as stored (CRLF lines, checked by content.c), but
 * nothing here trusts that: a bare LF also ends a line, a line without a
 * colon ends the header section as a body line would, and at most
 * RULE_FIELDS_MAX fields are indexed.  Decoding never writes more than
 * twice the raw length (ISO-8859-1 to UTF-8), which bounds its memory.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules.h"

/* Offset just after the line starting at i (after its LF), or len. */
static size_t
header_line_end(const char *d, size_t len, size_t i)
{
	const char *nl = memchr(d + i, '\n', len - i);

	return nl != NULL ? (size_t)(nl - d) + 1 : len;
}

int
rule_headers_parse(const char *d, size_t len, struct rule_headers *h)
{
	size_t i = 0, cap = 0;

	memset(h, 0, sizeof(*h));
	while (i < len) {
		size_t end = header_line_end(d, len, i), name = 0;
		struct rule_field *f;

		/* the empty line: the body follows */
		if (d[i] == '\n' ||
		    (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n')) {
			h->body = i;
			return 0;
		}
		/* a continuation line of the previous field */
		if ((d[i] == ' ' || d[i] == '\t') && h->n > 0) {
			h->v[h->n - 1].end = end;
			h->v[h->n - 1].value_len = end - h->v[h->n - 1].value;
			i = end;
			continue;
		}
		while (i + name < end && d[i + name] != ':' &&
		       d[i + name] > ' ' && d[i + name] < 0x7f)
			name++;
		if (name == 0 || i + name >= end || d[i + name] != ':' ||
		    h->n >= RULE_FIELDS_MAX)
			break; /* not a field: the header section ends */
		if (h->n == cap) {
			size_t ncap = cap ? cap * 2 : 32;

			if ((f = realloc(h->v, ncap * sizeof(*f))) == NULL) {
				rule_headers_free(h);
				return -1;
			}
			h->v = f;
			cap = ncap;
		}
		f = &h->v[h->n++];
		f->start = i;
		f->end = end;
		f->name_len = name;
		f->value = i + name + 1;
		f->value_len = end - f->value;
		i = end;
	}
	h->body = i;
	return 0;
}

void
rule_headers_free(struct rule_headers *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

long
rule_headers_find(
    const struct rule_headers *h, const char *d, const char *name, size_t from)
{
	size_t n = strlen(name);

	for (size_t i = from; i < h->n; i++)
		if (h->v[i].name_len == n &&
		    strncasecmp(d + h->v[i].start, name, n) == 0)
			return (long)i;
	return -1;
}

static int
header_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
header_b64(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Append a decoded octet, as UTF-8 when the charset is ISO-8859-1. */
static void
header_put(char *out, size_t *o, unsigned char c, int latin1)
{
	if (latin1 && c >= 0x80) {
		out[(*o)++] = (char)(0xc0 | (c >> 6));
		out[(*o)++] = (char)(0x80 | (c & 0x3f));
	} else {
		out[(*o)++] = (char)c;
	}
}

/*
 * One encoded-word at s (=?charset?enc?text?=, RFC 2047 2) of at most n
 * bytes: decoded into out, its length returned in *used; 0 when it is
 * not a well-formed encoded-word (then it is kept as text).
 */
static int
header_word(const char *s, size_t n, char *out, size_t *o, size_t *used)
{
	const char *cs, *q1, *q2, *end;
	int latin1;

	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	cs = s + 2;
	if ((q1 = memchr(cs, '?', n - 2)) == NULL || q1 + 3 > s + n ||
	    q1[2] != '?')
		return 0;
	q2 = q1 + 2;
	end = NULL;
	for (const char *p = q2 + 1; p + 1 < s + n; p++) {
		if (p[0] == '?' && p[1] == '=') {
			end = p;
			break;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			return 0;
	}
	if (end == NULL)
		return 0;
	/* "iso-8859-1" or "iso-8859-1*lang" (RFC 2231 language) */
	latin1 = (size_t)(q1 - cs) >= 10 &&
	         strncasecmp(cs, "iso-8859-1", 10) == 0 &&
	         (q1 - cs == 10 || cs[10] == '*');
	if (q1[1] == 'B' || q1[1] == 'b') {
		unsigned acc = 0;
		int bits = 0;

		for (const char *p = q2 + 1; p < end; p++) {
			int v = header_b64((unsigned char)*p);

			if (*p == '=')
				break;
			if (v < 0)
				return 0;
			acc = (acc << 6) | (unsigned)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				header_put(out, o,
				    (unsigned char)((acc >> bits) & 0xff),
				    latin1);
			}
		}
	} else if (q1[1] == 'Q' || q1[1] == 'q') {
		for (const char *p = q2 + 1; p < end; p++) {
			int hi, lo;

			if (*p == '_') {
				out[(*o)++] = ' ';
			} else if (*p == '=' && p + 2 < end &&
			           (hi = header_hex((unsigned char)p[1])) >=
			               0 &&
			           (lo = header_hex((unsigned char)p[2])) >=
			               0) {
				header_put(out, o,
				    (unsigned char)(hi * 16 + lo), latin1);
				p += 2;
			} else {
				header_put(out, o, (unsigned char)*p, latin1);
			}
		}
	} else {
		return 0;
	}
	*used = (size_t)(end + 2 - s);
	return 1;
}

char *
rule_header_decode(const char *raw, size_t len, size_t *outlen)
{
	char *out = malloc(2 * len + 1);
	size_t o = 0, i = 0, blank_at = (size_t)-1;
	int after_word = 0;

	if (out == NULL)
		return NULL;
	while (i < len) {
		unsigned char c = (unsigned char)raw[i];
		size_t used;

		if (c == '\r' || c == '\n') {
			/* unfolding: the line break goes, the blank stays */
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			if (blank_at == (size_t)-1)
				blank_at = o;
			out[o++] = ' ';
			i++;
			continue;
		}
		if (c == '=' && i + 1 < len && raw[i + 1] == '?') {
			size_t mark = o;

			/* blanks between two encoded-words are dropped */
			if (after_word && blank_at != (size_t)-1)
				o = blank_at;
			if (header_word(raw + i, len - i, out, &o, &used)) {
				i += used;
				after_word = 1;
				blank_at = (size_t)-1;
				continue;
			}
			o = mark;
		}
		out[o++] = (char)c;
		i++;
		after_word = 0;
		blank_at = (size_t)-1;
	}
	/* trim, and collapse nothing else: words match across blanks */
	{
		size_t s = 0;

		while (s < o && out[s] == ' ')
			s++;
		while (o > s && out[o - 1] == ' ')
			o--;
		memmove(out, out + s, o - s);
		o -= s;
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

int
rule_header_address(const char *v, char *out, size_t outlen)
{
	const char *lt = NULL, *p, *start, *end;
	int quoted = 0, depth = 0;
	size_t n;

	/* "<" outside quotes and comments starts the address */
	for (p = v; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == '"' && depth == 0)
			quoted = !quoted;
		else if (!quoted && *p == '(')
			depth++;
		else if (!quoted && *p == ')' && depth > 0)
			depth--;
		else if (!quoted && depth == 0 && *p == '<') {
			lt = p;
			break;
		} else if (!quoted && depth == 0 && *p == ',')
			break; /* the first mailbox only */
	}
	if (lt != NULL) {
		start = lt + 1;
		end = strchr(start, '>');
		if (end == NULL)
			return -1;
	} else {
		/* a bare addr-spec, perhaps followed by a comment */
		start = v;
		while (*start == ' ' || *start == '\t')
			start++;
		end = start;
		while (*end != '\0' && *end != ' ' && *end != '\t' &&
		       *end != '(' && *end != ',')
			end++;
	}
	n = (size_t)(end - start);
	if (n == 0 || n >= outlen || memchr(start, '@', n) == NULL)
		return -1;
	memcpy(out, start, n);
	out[n] = '\0';
	return 0;
}
