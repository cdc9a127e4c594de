/*
 * gzip.c - gzip compression with zlib (see gzip.h).  deflate with
 * windowBits 15 + 16 writes the gzip header and trailer (CRC-32 and
 * size) itself; one call of deflate with Z_FINISH over the whole input,
 * into output grown chunk by chunk within the buffer's maximum.
 */
#include <stdint.h>
#include <string.h>

#include <zlib.h>

#include "util/buf.h"
#include "util/gzip.h"

#define GZIP_CHUNK 16384

int
gzip_compress(const void *in, size_t len, struct buf *out)
{
	z_stream z;
	unsigned char chunk[GZIP_CHUNK];
	int rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9,
	        Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	if ((size_t)z.avail_in != len) { /* over 4 GB: never for a report */
		deflateEnd(&z);
		return -1;
	}
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		if ((rc != Z_OK && rc != Z_STREAM_END) ||
		    buf_append(out, chunk, sizeof(chunk) - z.avail_out) !=
		        BUF_OK) {
			deflateEnd(&z);
			return -1;
		}
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
	return 0;
}
