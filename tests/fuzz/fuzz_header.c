/*
 * fuzz_header.c - libFuzzer harness for the header field finder
 * (src/smtp/header.c): any message must give a bounded, NUL-terminated
 * value without control characters, or -1, and never read past the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check(long n, const char *out, size_t outlen)
{
	if (n < 0)
		return;
	if ((size_t)n >= outlen || strlen(out) != (size_t)n)
		abort();
	for (long i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 && out[i] != '\t')
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: ASan sees any read past the end */
	char *msg = malloc(size ? size : 1), out[64];
	long n;

	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	n = header_find(msg, size, "Subject", out, sizeof(out));
	fuzz_check(n, out, sizeof(out));
	n = header_msgid(msg, size, out, sizeof(out));
	fuzz_check(n, out, sizeof(out));
	n = header_find(msg, size, "Subject", out, 1);
	fuzz_check(n, out, 1);
	free(msg);
	return 0;
}
