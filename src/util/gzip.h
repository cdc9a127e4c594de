/*
 * gzip.h - a buffer compressed as a gzip file (RFC 1952) with zlib, for
 * TLS reports (application/tlsrpt+gzip).
 */
#ifndef SLUICE_GZIP_H
#define SLUICE_GZIP_H

#include <stddef.h>

struct buf;

/* Append the gzip file of in[0..len) to out; -1 on error or when full. */
int gzip_compress(const void *in, size_t len, struct buf *out);

#endif
