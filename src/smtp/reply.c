/*
 * reply.c - bounded SMTP reply parser (see reply.h).  Uses the same line
 * reader as the server, so a reply line ends only at CRLF.
 */
#include <string.h>

#include "smtp/linereader.h"
#include "smtp/reply.h"

void
reply_init(struct reply *r)
{
	memset(r, 0, sizeof(*r));
}

static int
reply_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "2.1.0 " at the start of text: class 2, 4 or 5, 1-3 digits, 1-3 digits. */
static size_t
reply_enhanced(const char *p, size_t n, int code, char *out, size_t outsz)
{
	size_t i = 0, parts = 0, digits;

	if (n < 5 || p[0] != (char)('0' + code / 100) || p[1] != '.')
		return 0;
	i = 2;
	for (parts = 0; parts < 2; parts++) {
		for (digits = 0; i < n && reply_digit(p[i]) && digits < 3; i++)
			digits++;
		if (digits == 0 || i >= n)
			return 0;
		if (parts == 0 && p[i++] != '.')
			return 0;
	}
	if (i < n && p[i] != ' ')
		return 0;
	if (i >= outsz)
		return 0;
	memcpy(out, p, i);
	out[i] = '\0';
	return i < n ? i + 1 : i;
}

enum reply_status
reply_parse(struct reply *r, const char *data, size_t len, size_t *consumed)
{
	size_t off = 0;

	*consumed = 0;
	for (;;) {
		size_t linelen, used, skip, tl;
		const char *line = data + off;
		enum lr_status st = linereader_next(
		    line, len - off, REPLY_LINE_MAX, &linelen, &used);
		int code, last;

		if (st == LR_MORE)
			return REPLY_MORE;
		if (st == LR_TOOLONG) {
			r->why = "reply line longer than 512 octets";
			return REPLY_ERROR;
		}
		if (st == LR_BADEOL) {
			r->why = "reply line not ended by CRLF";
			return REPLY_ERROR;
		}
		if (linelen < 3 || !reply_digit(line[0]) ||
		    !reply_digit(line[1]) || !reply_digit(line[2]) ||
		    line[0] < '2' || line[0] > '5' ||
		    (linelen > 3 && line[3] != ' ' && line[3] != '-')) {
			r->why = "malformed reply line";
			return REPLY_ERROR;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		       (line[2] - '0');
		if (r->lines > 0 && code != r->code) {
			r->why = "reply code changed within a multi-line reply";
			return REPLY_ERROR;
		}
		if (++r->lines > REPLY_LINES_MAX) {
			r->why = "reply has too many lines";
			return REPLY_ERROR;
		}
		r->code = code;
		last = linelen == 3 || line[3] == ' ';
		skip = linelen > 3 ? 4 : 3;
		if (r->lines == 1)
			skip += reply_enhanced(line + skip, linelen - skip,
			    code, r->enh, sizeof(r->enh));
		/* Keep what fits of the text; the rest is dropped, not grown.
		 */
		tl = linelen - skip;
		if (r->text_len > 0 && r->text_len + 1 < sizeof(r->text))
			r->text[r->text_len++] = '\n';
		if (tl > sizeof(r->text) - 1 - r->text_len)
			tl = sizeof(r->text) - 1 - r->text_len;
		memcpy(r->text + r->text_len, line + skip, tl);
		r->text_len += tl;
		r->text[r->text_len] = '\0';
		off += used;
		*consumed = off;
		if (last)
			return REPLY_OK;
	}
}
