/*
 * fuzz_reply.c - libFuzzer harness for the client's reply parser
 * (src/smtp/reply.c): hostile servers must give REPLY_ERROR, never a
 * crash or growth beyond the bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t off = 0;
	struct reply r;

	while (off < size) {
		size_t used = 0;
		enum reply_status st;

		reply_init(&r);
		st = reply_parse(&r, p + off, size - off, &used);
		if (used > size - off || r.text_len >= sizeof(r.text) ||
		    r.lines > REPLY_LINES_MAX + 1)
			abort();
		if (st != REPLY_OK)
			break;
		off += used;
	}
	return 0;
}
