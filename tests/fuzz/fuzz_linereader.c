/*
 * fuzz_linereader.c - libFuzzer harness for the line reader and the
 * content checks (src/smtp/linereader.c, src/server/content.c): walks the
 * input as a session would, line by line and as BDAT chunks, and checks
 * the reader's invariants.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/content.h"
#include "smtp/linereader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct content_limits lim = {4096, 1024, 5};
	struct content c;
	size_t off = 0;

	while (off < size) {
		size_t linelen = 0, used = 0;
		enum lr_status st =
		    linereader_next(p + off, size - off, 64, &linelen, &used);

		if (st == LR_MORE)
			break;
		if (st == LR_TOOLONG) {
			int found;

			used = linereader_skip(p + off, size - off, &found);
			if (used == 0)
				break;
		} else if (used == 0 || used > size - off ||
		           (st == LR_OK &&
		               (linelen > 64 || used != linelen + 2))) {
			abort();
		}
		off += used;
	}
	content_init(&c, &lim, 8192);
	content_bytes(&c, p, size / 2);
	content_bytes(&c, p + size / 2, size - size / 2);
	content_finish(&c);
	if (c.out.len > 8192)
		abort();
	content_free(&c);
	return 0;
}
