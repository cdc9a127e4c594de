/*
 * header.h - one field of a message's header section (RFC 5322), found
 * without allocating: what the tracking log records of a message.
 */
#ifndef SLUICE_HEADER_H
#define SLUICE_HEADER_H

#include <stddef.h>

/*
 * The first field called name (case-insensitive) in the header section
 * of msg (CRLF lines; the section ends at the first empty line):
 * unfolded, trimmed, control characters as spaces, cut to outlen - 1
 * bytes.  Returns the value's length, or -1 when there is no such field.
 */
long header_find(
    const char *msg, size_t len, const char *name, char *out, size_t outlen);

/* The Message-ID: its "<...>" part when there is one; -1 when absent or
 * empty. */
long header_msgid(const char *msg, size_t len, char *out, size_t outlen);

#endif
