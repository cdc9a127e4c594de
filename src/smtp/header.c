/*
 * header.c - reading one field of a stored message's header section
 * (RFC 5322 2.2), for the message tracking log and the queue views: the
 * Message-ID and the Subject are found once, when the message is
 * received, and stored with it.
 *
 * The input is a message as the spool keeps it: CRLF lines, the header
 * section ending at the first empty line (or at the end, for a message
 * without a body).  A field continues on lines that start with SP or HTAB;
 * unfolding removes the CRLF before them (RFC 5322 2.2.3).  Nothing here
 * allocates: the value is copied into the caller's bounded buffer and cut
 * there, so a hostile header can cost at most one pass over the header
 * section.  Control characters are replaced by spaces (the value goes into
 * one-line logs and views).
 */
#include <string.h>
#include <strings.h>

#include "smtp/header.h"

/* Does the line at p (n bytes, no CRLF) start the field "name:"? */
static int
header_is(const char *p, size_t n, const char *name)
{
	size_t nl = strlen(name), i = nl;

	if (n < nl || strncasecmp(p, name, nl) != 0)
		return 0;
	/* RFC 5322 allows white space before the colon (obsolete syntax). */
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* The next line of [p, end): its length without the line ending. */
static size_t
header_line(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (nl == NULL) {
		*next = end;
		return (size_t)(end - p);
	}
	*next = nl + 1;
	n = (size_t)(nl - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n;
}

/*
 * Append the bytes of one physical line, controls as spaces; white space
 * before the value is skipped, so that the cut keeps as much of it as
 * fits.
 */
static void
header_put(char *out, size_t outlen, size_t *w, const char *p, size_t n)
{
	for (size_t i = 0; i < n && *w + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)p[i];
		int space = ch < 0x20 || ch == 0x7f || ch == ' ';

		if (*w == 0 && space)
			continue;
		out[(*w)++] = space && ch != ' ' && ch != '\t' ? ' ' : (char)ch;
	}
}

long
header_find(
    const char *msg, size_t len, const char *name, char *out, size_t outlen)
{
	const char *p = msg, *end = msg + len, *next;
	size_t w = 0, start, stop;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	while (p < end) {
		size_t n = header_line(p, end, &next);

		if (n == 0)
			return -1; /* the empty line: no such field */
		if (!header_is(p, n, name)) {
			p = next;
			continue;
		}
		/* Found: the value after the colon, then continuation lines. */
		start = (size_t)((const char *)memchr(p, ':', n) - p) + 1;
		header_put(out, outlen, &w, p + start, n - start);
		for (p = next; p < end && (*p == ' ' || *p == '\t'); p = next) {
			n = header_line(p, end, &next);
			header_put(out, outlen, &w, p, n);
		}
		/* Trim the white space after the value. */
		for (stop = w; stop > 0 &&
		               (out[stop - 1] == ' ' || out[stop - 1] == '\t');
		     stop--)
			;
		out[stop] = '\0';
		return (long)stop;
	}
	return -1;
}

long
header_msgid(const char *msg, size_t len, char *out, size_t outlen)
{
	long n = header_find(msg, len, "Message-ID", out, outlen);
	char *lt, *gt;

	if (n <= 0)
		return -1;
	/* The msg-id itself, "<left@right>", without comments around it. */
	if ((lt = strchr(out, '<')) != NULL && (gt = strchr(lt, '>')) != NULL) {
		n = (long)(gt - lt + 1);
		memmove(out, lt, (size_t)n);
		out[n] = '\0';
	}
	return n;
}
