/*
 * content.h - the message content as it is received: validated line by
 * line, headers filtered, stored in one bounded buffer.
 *
 * The same checks apply whether the content came by DATA (after the
 * session removed dot-stuffing) or by BDAT (raw chunks): only CRLF ends a
 * line, no NUL, lines of at most 998 octets, a bounded header block, a
 * bounded number of Received headers, and the message size limit.  The
 * first error is remembered and decides the reply at the end of the
 * message; after it, bytes are still parsed (to find the end) but no
 * longer stored.
 */
#ifndef SLUICE_CONTENT_H
#define SLUICE_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* RFC 5321 4.5.3.1.6: 1000 octets per line including the CRLF. */
#define CONTENT_LINE_MAX 998

enum content_error {
	CONTENT_OK,
	CONTENT_TOO_BIG,    /* 552 5.3.4 */
	CONTENT_HEADER_BIG, /* 552 5.3.4 */
	CONTENT_HOPS,       /* 554 5.4.14 */
	CONTENT_LINE_LONG,  /* 500 5.5.2 */
	CONTENT_BAD_EOL,    /* 550 5.6.11 bare CR, bare LF or NUL */
	CONTENT_NOMEM,      /* 452 4.3.1 */
};

struct content_limits {
	uint64_t max_size;   /* of the client's content, bytes */
	uint64_t max_header; /* of the client's header block */
	unsigned max_hops;   /* Received headers */
};

struct content {
	struct buf out; /* our prefix headers, then the client's content */
	struct content_limits lim;
	uint64_t size;       /* client bytes seen, stored or not */
	size_t header_bytes; /* client header bytes seen so far */
	unsigned hops;
	int in_header;   /* still inside the header block */
	int skipping;    /* dropping an X-Sluice-Organization-* field */
	int overlong;    /* BDAT: inside a line longer than the limit */
	struct buf line; /* BDAT: the partial line, bounded */
	enum content_error error;
};

void content_init(
    struct content *, const struct content_limits *, size_t memory_max);
void content_free(struct content *);
/* Our own header lines (Received, X-Sluice-Organization-*), CRLF-ended. */
int content_prefix(struct content *, const char *, size_t);
/* One complete line including its CRLF (DATA path, already unstuffed). */
void content_line(struct content *, const char *, size_t);
/* Flag a line-ending violation seen by the DATA reader. */
void content_fail(struct content *, enum content_error);
/* Raw bytes (BDAT path); lines may span calls. */
void content_bytes(struct content *, const char *, size_t);
/* End of message: returns the first error, CONTENT_OK if storable. */
enum content_error content_finish(struct content *);

/* The reply for an error, e.g. "552 5.3.4 Message size exceeds ...". */
const char *content_error_reply(enum content_error);

#endif
