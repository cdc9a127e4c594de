/*
 * linereader.c - the bounded CRLF line reader (see linereader.h).
 *
 * One memchr for the LF, one for a stray CR before it: two linear passes
 * over each line in the common case, no per-byte branching in C.
 */
#include <string.h>

#include "smtp/linereader.h"

enum lr_status
linereader_next(
    const char *data, size_t len, size_t max, size_t *linelen, size_t *consumed)
{
	size_t scan = len < max + 2 ? len : max + 2;
	const char *lf = memchr(data, '\n', scan);
	const char *cr;
	size_t end;

	if (lf == NULL) {
		/* Still searching: a CR that is not the last byte is bare. */
		cr = memchr(data, '\r', scan);
		if (cr != NULL && (size_t)(cr - data) + 1 < scan) {
			*linelen = (size_t)(cr - data);
			*consumed = *linelen + 1;
			return LR_BADEOL;
		}
		if (len >= max + 2 || (len == max + 1 && cr == NULL)) {
			*linelen = max;
			*consumed = 0;
			return LR_TOOLONG;
		}
		return LR_MORE;
	}
	end = (size_t)(lf - data);
	cr = memchr(data, '\r', end);
	if (cr != NULL && cr != lf - 1) {
		*linelen = (size_t)(cr - data);
		*consumed = *linelen + 1;
		return LR_BADEOL;
	}
	if (cr == NULL) {
		*linelen = end;
		*consumed = end + 1;
		return LR_BADEOL;
	}
	if (end - 1 > max) {
		*linelen = max;
		*consumed = 0;
		return LR_TOOLONG;
	}
	*linelen = end - 1;
	*consumed = end + 1;
	return LR_OK;
}

size_t
linereader_skip(const char *data, size_t len, int *found)
{
	const char *p = data;
	size_t left = len;

	*found = 0;
	while (left > 0) {
		const char *lf = memchr(p, '\n', left);

		if (lf == NULL)
			break;
		if (lf > data && lf[-1] == '\r') {
			*found = 1;
			return (size_t)(lf - data) + 1;
		}
		left -= (size_t)(lf - p) + 1;
		p = lf + 1;
	}
	/* Keep a trailing CR: its LF may arrive with the next read. */
	if (len > 0 && data[len - 1] == '\r')
		return len - 1;
	return len;
}
