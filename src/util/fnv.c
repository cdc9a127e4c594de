/*
 * fnv.c - FNV-1a, 32 and 64 bits (see fnv.h): for each byte, xor it in,
 * then multiply by the FNV prime.  One copy for the whole daemon; the
 * spool's stored checksums depend on fnv_64() staying what it is.
 */
#include <ctype.h>

#include "util/fnv.h"

#define FNV_32_PRIME 16777619u
#define FNV_64_PRIME 1099511628211ull

uint32_t
fnv_32(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV_32_PRIME;
	return h;
}

uint32_t
fnv_32_str(const char *s)
{
	uint32_t h = FNV_32_INIT;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * FNV_32_PRIME;
	return h;
}

uint32_t
fnv_32_lower(const char *s)
{
	uint32_t h = FNV_32_INIT;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) *
		    FNV_32_PRIME;
	return h;
}

uint64_t
fnv_64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = FNV_64_INIT;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV_64_PRIME;
	return h;
}
