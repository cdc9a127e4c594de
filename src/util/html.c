/*
 * html.c - HTML escaping (see html.h).  Bytes of 0x80 and above are
 * copied: the page is UTF-8, and a broken sequence is shown by the
 * browser as U+FFFD, which is harmless.
 */
#include "util/buf.h"
#include "util/html.h"

int
html_escape(struct buf *b, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		const char *rep = NULL;
		int rc;

		switch (ch) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				rep = "\xef\xbf\xbd";
			break;
		}
		rc = rep != NULL ? buf_puts(b, rep) : buf_append(b, s, 1);
		if (rc != BUF_OK)
			return -1;
	}
	return 0;
}
