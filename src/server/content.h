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
 *
 * Memory: the header section is kept (our prefix headers, then the
 * client's header lines, bounded by max_header) since it is parsed and
 * filtered.  Without a sink the body follows it in the same buffer.  With
 * a sink (content_set_sink) the body is staged in a buffer of stage_max
 * bytes that is handed to the sink each time it fills, piece_max bytes
 * once the sink has taken the first (the first decides whether the body
 * goes inline, the later ones only how often it is handed over): what a message
 * holds in memory is then bounded by a constant, whatever its size.  A
 * sink that is still busy with the last piece makes the content take no
 * more (content_line_part and content_bytes return what they took) until
 * content_resume(); the caller leaves the rest of its input unread
 * meanwhile.  A message whose body never filled the stage is handed to
 * nobody: content_finish() joins it to the header section (inline).
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
	CONTENT_STORE,       /* 451 4.3.0 the sink could not store the body */
};

struct content_limits {
	uint64_t max_size;   /* of the client's content, bytes */
	uint64_t max_header; /* of the client's header block */
	unsigned max_hops;   /* Received headers */
};

/*
 * Where a body goes piece by piece.  put() takes the staged bytes by
 * swapping in an empty buffer of the same maximum: 0 when taken, 1 when
 * busy (nothing taken; call content_resume() once it is ready), -1 when
 * it failed (the message fails with CONTENT_STORE).
 */
struct content_sink {
	int (*put)(void *arg, struct buf *stage);
	void *arg;
};

struct content {
	struct buf out;   /* our prefix headers, then the client's content */
	struct buf stage; /* with a sink: body bytes not yet handed over */
	struct content_sink sink;
	size_t stage_max;
	size_t piece_max; /* stage_max once the first piece has gone */
	int spilled;      /* the sink has taken bytes: the body is not inline */
	int blocked;      /* the stage is full and the sink busy */
	int body_cr;      /* body: the last byte stored was a CR */
	int body_bol; /* body: at a line start (no bytes yet, or after LF) */
	int clean;    /* content_clean_bytes: the caller has checked them */
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

/* memory_max bounds the header section (and, without a sink, the body). */
void content_init(
    struct content *, const struct content_limits *, size_t memory_max);
/*
 * Stage the body in pieces for the sink: the first of stage_max bytes,
 * the next of piece_max (at least stage_max).
 */
void content_set_sink(struct content *, const struct content_sink *,
    size_t stage_max, size_t piece_max);
void content_free(struct content *);
/* Our own header lines (Received, X-Sluice-Organization-*), CRLF-ended. */
int content_prefix(struct content *, const char *, size_t);
/*
 * Part of one line (DATA path, already unstuffed): the caller guarantees
 * that only the last byte may be an LF, which then ends the line.
 * Returns the bytes taken: fewer than given only while the sink is busy
 * (content_blocked).  content_bytes() takes many lines at once (what the
 * DATA path has between two line-start dots, or a BDAT chunk).
 */
size_t content_line_part(struct content *, const char *, size_t);
/* Flag an error found outside (memory budget of the server). */
void content_fail(struct content *, enum content_error);
/* Raw bytes (BDAT path); lines may span calls.  Returns the bytes taken. */
size_t content_bytes(struct content *, const char *, size_t);
/*
 * content_bytes() for bytes the caller has checked with crlf_scan() as
 * plain (CRLF_END or CRLF_DOT: only CRLF ends their lines, no NUL), the
 * last byte taken before them not a CR: the body check is not repeated
 * (the header section's checks still run).
 */
size_t content_clean_bytes(struct content *, const char *, size_t);
/* Is the content waiting for its sink?  content_resume() tries again. */
int content_blocked(const struct content *);
void content_resume(struct content *);
/*
 * End of message: returns the first error, CONTENT_OK if storable.  A
 * last line without CRLF (BDAT allows it) is completed with CRLF.  Then
 * out holds the whole message when nothing was spilled, and otherwise its
 * first part, with the body's last bytes in stage (for the sink's owner
 * to finish the body with).
 */
enum content_error content_finish(struct content *);

/* The reply for an error, e.g. "552 5.3.4 Message size exceeds ...". */
const char *content_error_reply(enum content_error);

#endif
