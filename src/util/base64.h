/*
 * base64.h - base64 (RFC 4648 section 4, the standard alphabet, padded),
 * as SMTP AUTH carries credentials both ways (RFC 4954): the server
 * decodes what a client sends, the client encodes what it sends.
 */
#ifndef SLUICE_BASE64_H
#define SLUICE_BASE64_H

#include <stddef.h>

/* The encoded length of n octets, without the terminating NUL. */
#define BASE64_LEN(n) (4 * (((n) + 2) / 3))

/*
 * Encode len octets into out, NUL-terminated; returns the length, or -1
 * (and out is "") when out has less than BASE64_LEN(len) + 1 octets.
 */
int base64_encode(const void *in, size_t len, char *out, size_t outsz);

/*
 * Decode into out, NUL-terminated; returns the length, or -1 when the
 * input is not padded base64 (a length that is not a multiple of 4, a
 * character outside the alphabet, padding anywhere but at the end) or
 * the result with its NUL does not fit.
 */
int base64_decode(const char *in, size_t len, char *out, size_t outsz);

#endif
