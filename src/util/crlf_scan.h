/*
 * crlf_scan.h - one pass over message text that finds where its lines
 * stop being plain: the content checks (only CRLF ends a line, no NUL),
 * the end of DATA (a dot at a line start) and the outbound encoder's
 * lines that need work (a leading dot, a line too long) in one go.
 */
#ifndef SLUICE_CRLF_SCAN_H
#define SLUICE_CRLF_SCAN_H

#include <stddef.h>

/* Why crlf_scan() stopped. */
enum crlf_stop {
	CRLF_END,  /* the end of the text: all of it is plain */
	CRLF_DOT,  /* a line (not the first) starts with a dot */
	CRLF_BAD,  /* a NUL, a CR not followed by LF, an LF not after CR */
	CRLF_LONG, /* a line longer than line_max octets before its CRLF */
};

/* Flags of crlf_scan(). */
enum {
	CRLF_SCAN_DOT = 1 << 0, /* stop at a dot that starts a line */
};

struct crlf_scan {
	enum crlf_stop why;
	/*
	 * Where it stopped: CRLF_END n, CRLF_DOT the dot, CRLF_BAD the bad
	 * byte, CRLF_LONG the start of the long line.
	 */
	size_t stop;
	/* Just after the last CRLF before stop (0: no complete line). */
	size_t lines;
};

/*
 * Scan p[0..n) as lines ending in CRLF, the first starting at p[0]; a CR
 * as the very last byte is taken to be the start of a CRLF (CRLF_END),
 * and a line that runs to the end is not measured against line_max
 * (SIZE_MAX: no limit).  A pure function of its arguments.
 */
void crlf_scan(const char *p, size_t n, size_t line_max, unsigned flags,
    struct crlf_scan *r);

#endif
