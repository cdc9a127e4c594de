/*
 * reply.h - parsing SMTP replies (RFC 5321 4.2) as a client reads them
 * from a server that may be hostile.
 *
 * Bytes are fed as they arrive; a complete reply (one or more lines with
 * the same code, the last with a space after the code) comes out with its
 * code, enhanced status code (RFC 3463) when present, and text.  Every
 * way a server can misbehave is a clear error, never unbounded memory or a
 * crash: overlong lines, endless multi-line replies, codes that change
 * between lines, non-digit codes, bare LF.
 */
#ifndef SLUICE_REPLY_H
#define SLUICE_REPLY_H

#include <stddef.h>

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with CRLF. */
#define REPLY_LINE_MAX 510
/* Lines of one reply; EHLO replies run to about 20. */
#define REPLY_LINES_MAX 100
/* The text kept of a reply (lines joined with "\n"). */
#define REPLY_TEXT_MAX 4096

enum reply_status {
	REPLY_OK,    /* a complete reply is in the struct */
	REPLY_MORE,  /* feed more bytes */
	REPLY_ERROR, /* the server broke the protocol: see why */
};

struct reply {
	int code;     /* 220, 250, 354, 421, ... */
	char enh[16]; /* "2.1.0", "" when absent */
	char text[REPLY_TEXT_MAX];
	size_t lines;
	size_t text_len;
	const char *why; /* REPLY_ERROR: what was wrong */
};

void reply_init(struct reply *);
/*
 * Parse one reply from data[0..len).  *consumed is how many bytes were
 * used (a complete reply, or complete lines of an unfinished one).  On
 * REPLY_MORE call again with the rest plus new bytes; the struct keeps the
 * lines seen so far.  After REPLY_OK, reply_init() before the next one.
 */
enum reply_status reply_parse(
    struct reply *, const char *data, size_t len, size_t *consumed);

#endif
