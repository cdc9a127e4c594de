/*
 * content.h - the message content as it is received: validated line by
 * line, headers filtered, stored in one bounded buffer.
 *
 * The same checks apply whether the content came by DATA (after the
 * session removed dot-stuffing) or by BDAT (raw chunks): only CRLF ends a
 * line, no NUL, a bounded header block that does not start with a
 * continuation line, a bounded number of Received headers, and the
 * message size limit.  Lines may be of any length within the size limit
 * (Postfix and Exim accept longer lines than RFC 5322's 998 octets, and
 * refusing them refused real mail).  The first error is remembered and
 * decides the reply at the end of the message; after it, bytes are still
 * counted (the session finds the end) but no longer stored.
 */
#ifndef SLUICE_CONTENT_H
#define SLUICE_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum content_error {
	CONTENT_OK,
	CONTENT_TOO_BIG,     /* 552 5.3.4 */
	CONTENT_HEADER_BIG,  /* 552 5.3.4 */
	CONTENT_HOPS,        /* 554 5.4.14 */
	CONTENT_BAD_EOL,     /* 550 5.6.11 bare CR, bare LF or NUL */
	CONTENT_HEADER_CONT, /* 550 5.6.0 header starts with a continuation */
	CONTENT_NOMEM,       /* 452 4.3.1 */
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
	size_t line_start;   /* offset in out of the line being received */
	unsigned hops;
	unsigned fields; /* client header lines that start a field */
	int in_header;   /* still inside the header block */
	int skipping;    /* dropping an X-Sluice-Organization-* field */
	enum content_error error;
};

void content_init(
    struct content *, const struct content_limits *, size_t memory_max);
void content_free(struct content *);
/* Our own header lines (Received, X-Sluice-Organization-*), CRLF-ended. */
int content_prefix(struct content *, const char *, size_t);
/*
 * Part of one line (DATA path, already unstuffed): the caller guarantees
 * that only the last byte may be an LF, which then ends the line.
 */
void content_line_part(struct content *, const char *, size_t);
/* Flag an error found outside (memory budget of the server). */
void content_fail(struct content *, enum content_error);
/* Raw bytes (BDAT path); lines may span calls. */
void content_bytes(struct content *, const char *, size_t);
/*
 * End of message: returns the first error, CONTENT_OK if storable.  A
 * last line without CRLF (BDAT allows it) is completed with CRLF.
 */
enum content_error content_finish(struct content *);

/* The reply for an error, e.g. "552 5.3.4 Message size exceeds ...". */
const char *content_error_reply(enum content_error);

#endif
