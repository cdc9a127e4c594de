/*
 * base64.c - RFC 4648 base64 (see base64.h).  Strict on input: whitespace,
 * missing padding and the URL-safe alphabet are all refused, since what
 * arrives here is a single SMTP line whose syntax RFC 4954 fixes.  Written
 * here rather than taken from OpenSSL so that protocol code that needs it
 * (the SMTP client's AUTH) includes no OpenSSL header.
 */
#include <string.h>

#include "util/base64.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_encode(const void *in, size_t len, char *out, size_t outsz)
{
	const unsigned char *p = in;
	size_t o = 0;

	if (outsz < BASE64_LEN(len) + 1) {
		if (outsz > 0)
			out[0] = '\0';
		return -1;
	}
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = base64_alphabet[(v >> 18) & 63];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? base64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

int
base64_decode(const char *in, size_t len, char *out, size_t outsz)
{
	unsigned acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0;

	if (len % 4 != 0 || outsz == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p;

		if (in[i] == '=') {
			if (++pad > 2 || i < len - 2)
				return -1;
			continue;
		}
		if (pad || in[i] == '\0' ||
		    (p = memchr(base64_alphabet, in[i], 64)) == NULL)
			return -1;
		acc = (acc << 6) | (unsigned)(p - base64_alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return (int)o;
}
