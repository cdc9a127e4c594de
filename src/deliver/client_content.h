/*
 * client_content.h - a message's content as the SMTP client puts it on
 * the wire, produced as a stream.
 *
 * The stored message goes through this encoder chunk by chunk (today one
 * chunk, the whole body; a later issue streams bodies from the spool):
 * every line ends in CRLF (a bare CR or LF becomes CRLF), a final CRLF is
 * added when missing, for DATA every line starting with "." gets another
 * one (RFC 5321 4.5.2), and on request the header fields named
 * X-Sluice-Organization-* are left out, with their continuation lines,
 * wherever the chunk boundaries fall.
 */
#ifndef SLUICE_CLIENT_CONTENT_H
#define SLUICE_CLIENT_CONTENT_H

#include <stddef.h>

/* Flags of client_content_init(). */
enum {
	CLIENT_CONTENT_DOTSTUFF = 1 << 0, /* DATA: stuff leading dots */
	/* leave out the organisation's own header fields (SPEC 3) */
	CLIENT_CONTENT_STRIP_ORG = 1 << 1,
};

/* Where the bytes go; returns 0, or -1 to stop (out of memory). */
typedef int (*client_content_sink)(void *arg, const char *, size_t);

/* The header name prefix that CLIENT_CONTENT_STRIP_ORG removes. */
#define CLIENT_CONTENT_ORG_PREFIX "X-Sluice-Organization-"

/* Bytes of output gathered before each call of the sink. */
#define CLIENT_CONTENT_STAGE 4096

struct client_content {
	unsigned flags;
	client_content_sink sink; /* NULL: only count */
	void *arg;
	unsigned long long total; /* bytes produced so far */
	int failed;               /* the sink said -1 */
	/* where we are in the input */
	int bol;         /* at the start of a line */
	int pending_cr;  /* the last chunk ended in CR */
	int in_header;   /* still in the header section */
	int drop_field;  /* the current header field is being left out */
	int drop_line;   /* and so is the rest of this line */
	size_t matched;  /* bytes of the prefix seen at this line's start */
	size_t line_out; /* bytes produced on the current line */
	char held[sizeof(CLIENT_CONTENT_ORG_PREFIX)];
	size_t nstage;
	char stage[CLIENT_CONTENT_STAGE];
};

void client_content_init(
    struct client_content *, unsigned flags, client_content_sink, void *arg);
/* Feed the next chunk of the stored message; 0, or -1 (sink failed). */
int client_content_feed(struct client_content *, const char *, size_t);
/* The end: the final CRLF if needed, and everything staged is written. */
int client_content_end(struct client_content *);

/*
 * A whole message in one go: the number of bytes produced, or -1 when
 * the sink failed.  A NULL sink only counts them (BDAT's size).
 */
long long client_content_encode(const char *data, size_t len, unsigned flags,
    client_content_sink, void *arg);

#endif
