/*
 * conf_value.c - parsers and formatters for configuration values (SPEC 2,
 * "Value syntax"): booleans, Exchange TimeSpans, sizes, address ranges and
 * listening addresses.
 *
 * Each parser takes the whole value and either accepts all of it or fails
 * with a static reason; nothing is ever partially accepted.  Formatters
 * print values back in a form the parsers read, so a dumped configuration
 * loads again to the same values.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "util/hostname.h"

static int
value_fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return -1;
}

int
conf_parse_bool(const char *s, int *out, const char **why)
{
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "$true") == 0)
		*out = 1;
	else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "$false") == 0)
		*out = 0;
	else
		return value_fail(why, "expected true or false");
	return 0;
}

/* Digits only, into *out, with an upper bound; no sign, no overflow. */
static int
value_digits(
    const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (v > (max - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * TimeSpan: [d.]hh:mm:ss as Exchange prints it, or a short form 30s, 5m,
 * 2h, 2d.  The result must fit in 32 bits of seconds (136 years).
 */
int
conf_parse_timespan(const char *s, unsigned *seconds, const char **why)
{
	const char *bad = "expected a TimeSpan like 00:05:00 or 1.00:00:00, "
	                  "or 30s, 5m, 2h, 2d";
	unsigned long long d = 0, h, m, sec, total;
	size_t n = strlen(s);
	const char *colon1, *colon2, *dot;

	if (n >= 2 && strchr("smhd", s[n - 1]) != NULL &&
	    strchr(s, ':') == NULL) {
		static const unsigned mult[] = {1, 60, 3600, 86400};
		unsigned long long v;

		if (value_digits(s, n - 1, 0xffffffffull, &v) < 0)
			return value_fail(why, bad);
		total = v * mult[strchr("smhd", s[n - 1]) - "smhd"];
	} else {
		if ((colon1 = strchr(s, ':')) == NULL ||
		    (colon2 = strchr(colon1 + 1, ':')) == NULL ||
		    strchr(colon2 + 1, ':') != NULL)
			return value_fail(why, bad);
		dot = memchr(s, '.', (size_t)(colon1 - s));
		if (dot != NULL &&
		    value_digits(s, (size_t)(dot - s), 100000, &d) < 0)
			return value_fail(why, bad);
		if (dot == NULL)
			dot = s - 1;
		if (value_digits(dot + 1, (size_t)(colon1 - dot - 1), 23, &h) <
		        0 ||
		    value_digits(colon1 + 1, (size_t)(colon2 - colon1 - 1), 59,
		        &m) < 0 ||
		    value_digits(colon2 + 1, strlen(colon2 + 1), 59, &sec) < 0)
			return value_fail(why, bad);
		total = d * 86400 + h * 3600 + m * 60 + sec;
	}
	if (total > 0xffffffffull)
		return value_fail(why, "TimeSpan too large");
	*seconds = (unsigned)total;
	return 0;
}

void
conf_format_timespan(unsigned secs, char *out, size_t len)
{
	unsigned d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60,
	         s = secs % 60;

	if (d > 0)
		snprintf(out, len, "%u.%02u:%02u:%02u", d, h, m, s);
	else
		snprintf(out, len, "%02u:%02u:%02u", h, m, s);
}

/* Sizes: 36MB, 36 MB, 512KB, 1GB, 1024, 1024B, unlimited (binary units). */
int
conf_parse_size(const char *s, uint64_t *bytes, const char **why)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {{"B", 1}, {"KB", 1024}, {"MB", 1024 * 1024},
	    {"GB", 1024ull * 1024 * 1024},
	    {"TB", 1024ull * 1024 * 1024 * 1024}};
	const char *bad = "expected a size like 36MB, 512KB, 1GB, a number of "
	                  "bytes, or unlimited";
	unsigned long long v;
	size_t digits = 0;
	const char *u;

	if (strcasecmp(s, "unlimited") == 0) {
		*bytes = SIZE_UNLIMITED;
		return 0;
	}
	while (isdigit((unsigned char)s[digits]))
		digits++;
	if (value_digits(s, digits, UINT64_MAX - 1, &v) < 0)
		return value_fail(why, bad);
	u = s + digits;
	while (*u == ' ')
		u++;
	if (*u == '\0') {
		*bytes = v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(u, units[i].unit) == 0) {
			if (v > (UINT64_MAX - 1) / units[i].mult)
				return value_fail(why, "size too large");
			*bytes = v * units[i].mult;
			return 0;
		}
	}
	return value_fail(why, bad);
}

void
conf_format_size(uint64_t b, char *out, size_t len)
{
	if (b == SIZE_UNLIMITED)
		snprintf(out, len, "unlimited");
	else if (b >= 1024ull * 1024 * 1024 && b % (1024ull * 1024 * 1024) == 0)
		snprintf(out, len, "%lluGB",
		    (unsigned long long)(b / (1024ull * 1024 * 1024)));
	else if (b >= 1024 * 1024 && b % (1024 * 1024) == 0)
		snprintf(out, len, "%lluMB",
		    (unsigned long long)(b / (1024 * 1024)));
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(out, len, "%lluKB", (unsigned long long)(b / 1024));
	else
		snprintf(out, len, "%llu", (unsigned long long)b);
}

/* An IPv4 or IPv6 address (RFC 5321's "IPv6:" tag accepted)? */
static int
value_is_address(const char *s)
{
	unsigned char buf[16];

	if (strncasecmp(s, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, s + 5, buf) == 1;
	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

/* The port after a smart host: 1-65535, digits only. */
static int
value_port(const char *s, unsigned short *port)
{
	unsigned long long p;

	if (value_digits(s, strlen(s), 65535, &p) < 0 || p == 0)
		return -1;
	*port = (unsigned short)p;
	return 0;
}

/*
 * One smart host, in every form Exchange and Sluice accept:
 *
 *   relay.contoso.com  relay.contoso.com:587   (a name, resolved)
 *   10.10.10.1         10.10.10.1:2525         (Exchange's own form)
 *   [10.10.10.1]       [10.10.10.1]:2525
 *   2001:db8::1        ::1                     (bare IPv6: never a port)
 *   [2001:db8::1]      [::1]:2525              ([IPv6:...] too)
 *
 * An address, bracketed or not, is used as it is: the resolver is never
 * asked about it.  Without brackets, an item with two or more colons can
 * only be an IPv6 address, so its last group is never taken for a port.
 */
int
conf_parse_smarthost(const char *item, char *host, size_t hostlen,
    unsigned short *port, int *literal, const char **why)
{
	const char *portstr = NULL, *colon;
	int bracketed = item[0] == '[';
	size_t n;

	*port = 0;
	*literal = 0;
	if (bracketed) {
		const char *end = strchr(item, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return value_fail(
			    why, "expected [address] or [address]:port");
		n = (size_t)(end - item - 1);
		item++;
		*literal = 1;
		if (end[1] == ':')
			portstr = end + 2;
	} else if ((colon = strchr(item, ':')) != NULL &&
	           strchr(colon + 1, ':') != NULL) {
		n = strlen(item); /* bare IPv6 */
		*literal = 1;
	} else {
		n = colon != NULL ? (size_t)(colon - item) : strlen(item);
		if (colon != NULL)
			portstr = colon + 1;
	}
	if (n == 0 || n >= hostlen)
		return value_fail(why, "expected a host name or an address");
	memcpy(host, item, n);
	host[n] = '\0';
	if (!*literal && value_is_address(host))
		*literal = 1;
	if (*literal && !value_is_address(host))
		return value_fail(
		    why, strchr(host, ':') != NULL && !bracketed
		             ? "not an IPv6 address (an IPv6 smart host with a "
		               "port is written [address]:port)"
		             : "not an IPv4 or IPv6 address");
	if (!*literal && !hostname_valid(host, HOSTNAME_STRICT))
		return value_fail(why, "not a host name or an IP address");
	/* RFC 5321's tag says nothing inet_pton does not: keep the address. */
	if (strncasecmp(host, "IPv6:", 5) == 0)
		memmove(host, host + 5, strlen(host + 5) + 1);
	if (portstr != NULL && value_port(portstr, port) < 0)
		return value_fail(why, "bad port (1 to 65535)");
	return 0;
}

/* An address as 16 bytes; IPv4 is mapped into ::ffff:0:0/96. */
static int
value_addr(const char *s, uint8_t out[16], int *family)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Number of host bits spanned by lo..hi (0 for a single address). */
static int
value_span_bits(const uint8_t lo[16], const uint8_t hi[16])
{
	for (int i = 0; i < 16; i++) {
		unsigned diff = (unsigned)(lo[i] ^ hi[i]);

		if (diff != 0) {
			int bits = 8;

			while (bits > 0 && !(diff & (1u << (bits - 1))))
				bits--;
			return (15 - i) * 8 + bits;
		}
	}
	return 0;
}

int
conf_parse_iprange(const char *s, struct conf_iprange *r, const char **why)
{
	char tmp[96];
	char *sep;
	int fam2;

	memset(r, 0, sizeof(*r));
	if (strlen(s) >= sizeof(tmp))
		return value_fail(why, "address range too long");
	snprintf(tmp, sizeof(tmp), "%s", s);
	snprintf(r->text, sizeof(r->text), "%s", s);
	if ((sep = strchr(tmp, '/')) != NULL) {
		unsigned long long prefix;
		int max, host;

		*sep++ = '\0';
		if (value_addr(tmp, r->lo, &r->family) < 0)
			return value_fail(why, "bad address in CIDR range");
		max = r->family == AF_INET ? 32 : 128;
		if (value_digits(sep, strlen(sep), (unsigned)max, &prefix) < 0)
			return value_fail(why, "bad CIDR prefix length");
		host = max - (int)prefix;
		memcpy(r->hi, r->lo, 16);
		for (int bit = 0; bit < host; bit++) {
			int byte = 15 - bit / 8;

			r->lo[byte] &= (uint8_t) ~(1u << (bit % 8));
			r->hi[byte] |= (uint8_t)(1u << (bit % 8));
		}
	} else if ((sep = strchr(tmp, '-')) != NULL) {
		*sep++ = '\0';
		if (value_addr(tmp, r->lo, &r->family) < 0 ||
		    value_addr(sep, r->hi, &fam2) < 0 || fam2 != r->family)
			return value_fail(why, "bad address range (a-b)");
		if (memcmp(r->lo, r->hi, 16) > 0)
			return value_fail(why, "range start is after its end");
	} else {
		if (value_addr(tmp, r->lo, &r->family) < 0)
			return value_fail(why, "bad address or range");
		memcpy(r->hi, r->lo, 16);
	}
	r->bits = value_span_bits(r->lo, r->hi);
	return 0;
}

int
conf_iprange_contains(const struct conf_iprange *r, const struct sockaddr *sa)
{
	uint8_t a[16];

	if (sa->sa_family == AF_INET) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return 0;
	}
	return memcmp(a, r->lo, 16) >= 0 && memcmp(a, r->hi, 16) <= 0;
}

/* 0.0.0.0:25, 127.0.0.1:2525, [::]:25, [::1]:2525 */
int
conf_parse_binding(const char *s, struct conf_binding *b, const char **why)
{
	char host[INET6_ADDRSTRLEN];
	const char *port;
	unsigned long long p;
	size_t hl;

	memset(b, 0, sizeof(*b));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':')
			return value_fail(why, "expected [address]:port");
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host))
			return value_fail(why, "address too long");
		memcpy(host, s + 1, hl);
		port = end + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL)
			return value_fail(why, "expected address:port");
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return value_fail(why, "address too long");
		memcpy(host, s, hl);
		port = colon + 1;
	}
	host[hl] = '\0';
	if (value_digits(port, strlen(port), 65535, &p) < 0 || p == 0)
		return value_fail(why, "bad port number");
	if (s[0] != '[') {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&b->ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return value_fail(why, "bad IPv4 address (write IPv6 "
			                       "as [address]:port)");
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		b->sslen = sizeof(*s4);
		snprintf(b->text, sizeof(b->text), "%s:%llu", host, p);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&b->ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return value_fail(why, "bad IPv6 address");
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		b->sslen = sizeof(*s6);
		snprintf(b->text, sizeof(b->text), "[%s]:%llu", host, p);
	}
	return 0;
}
