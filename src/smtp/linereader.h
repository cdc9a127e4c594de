/*
 * linereader.h - the one bounded line reader all network input goes
 * through (GUIDE 3.5).
 *
 * Only CRLF ends a line.  A bare LF, or a CR not followed by LF, is a bad
 * line ending (SMTP smuggling, CVE-2023-51764/5/6) and is reported as such
 * rather than silently accepted.  A line longer than the caller's maximum
 * is reported as too long; the caller then skips to the next CRLF with
 * linereader_skip().
 */
#ifndef SLUICE_LINEREADER_H
#define SLUICE_LINEREADER_H

#include <stddef.h>

enum lr_status {
	LR_OK,      /* a complete line: *linelen bytes without the CRLF */
	LR_MORE,    /* no complete line yet and still within the maximum */
	LR_TOOLONG, /* max bytes seen without CRLF */
	LR_BADEOL,  /* bare LF or bare CR at offset *linelen */
};

/*
 * Look for one line at the start of data[0..len).  max is the longest
 * acceptable line without its CRLF.  On LR_OK, *consumed is linelen + 2.
 * On LR_BADEOL, *linelen is the offset of the offending byte and
 * *consumed covers up to and including it.  A CR as the very last byte
 * is LR_MORE (its LF may still come).
 */
enum lr_status linereader_next(const char *data, size_t len, size_t max,
    size_t *linelen, size_t *consumed);

/*
 * Discard input up to and including the next CRLF.  Returns the number of
 * bytes that may be dropped and sets *found when the CRLF was seen.  A
 * trailing CR is kept so that a CRLF split across reads is still found.
 */
size_t linereader_skip(const char *data, size_t len, int *found);

#endif
