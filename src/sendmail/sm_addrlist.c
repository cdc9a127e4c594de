/*
 * sm_addrlist.c - splitting an address-list (see sm_addrlist.h).
 *
 * One pass with four states that nest the way RFC 5322 lets them: a
 * quoted string (with backslash escapes), a comment (which nests), an
 * angle-addr, and plain text.  Only plain-text commas and semicolons end
 * an entry and only a plain-text colon starts a group.  The result is an
 * addr-spec for the envelope, so the quotes of a quoted local part stay.
 */
#include <string.h>

#include "sendmail/sm_addrlist.h"

struct sm_addrlist_entry {
	char plain[SM_ADDR_MAX + 1]; /* outside <>, comments, blanks */
	char angle[SM_ADDR_MAX + 1]; /* inside <> */
	size_t nplain, nangle;
	int saw_angle;
	int too_long;
};

static void
sm_addrlist_put(struct sm_addrlist_entry *e, int in_angle, char c)
{
	char *buf = in_angle ? e->angle : e->plain;
	size_t *n = in_angle ? &e->nangle : &e->nplain;

	if (*n >= SM_ADDR_MAX) {
		e->too_long = 1;
		return;
	}
	buf[(*n)++] = c;
	buf[*n] = '\0';
}

/* An entry is over: hand its address on.  -1 on error. */
static int
sm_addrlist_flush(struct sm_addrlist_entry *e, int (*fn)(void *, const char *),
    void *arg, int *count, const char **why)
{
	const char *addr = e->saw_angle ? e->angle : e->plain;
	int rc = 0;

	if (e->too_long) {
		*why = "address too long";
		return -1;
	}
	if (addr[0] != '\0') {
		if (fn(arg, addr) < 0) {
			*why = "too many addresses";
			rc = -1;
		} else {
			(*count)++;
		}
	}
	memset(e, 0, sizeof(*e));
	return rc;
}

int
sm_addrlist_parse(const char *field, int (*fn)(void *, const char *), void *arg,
    const char **why)
{
	struct sm_addrlist_entry e;
	int count = 0, comment = 0, quote = 0, angle = 0;

	memset(&e, 0, sizeof(e));
	for (const char *p = field;; p++) {
		char c = *p;

		if (c == '\0') {
			if (quote || comment || angle) {
				*why = quote     ? "unterminated quoted string"
				       : comment ? "unbalanced parenthesis"
				                 : "unbalanced angle bracket";
				return -1;
			}
			break;
		}
		if (quote) {
			if (c == '\\' && p[1] != '\0') {
				sm_addrlist_put(&e, angle, c);
				c = *++p;
			} else if (c == '"') {
				quote = 0;
			}
			sm_addrlist_put(&e, angle, c);
			continue;
		}
		if (comment) {
			if (c == '\\' && p[1] != '\0')
				p++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
			continue;
		}
		switch (c) {
		case '"':
			quote = 1;
			sm_addrlist_put(&e, angle, c);
			break;
		case '(':
			comment = 1;
			break;
		case '<':
			if (angle) {
				*why = "unbalanced angle bracket";
				return -1;
			}
			angle = 1;
			e.saw_angle = 1;
			e.nangle = 0;
			e.angle[0] = '\0';
			break;
		case '>':
			if (!angle) {
				*why = "unbalanced angle bracket";
				return -1;
			}
			angle = 0;
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			break;
		case ':':
			if (angle) {
				sm_addrlist_put(&e, angle, c);
				break;
			}
			/* "group:" - what came before was its name */
			memset(&e, 0, sizeof(e));
			break;
		case ',':
		case ';':
			if (angle) {
				sm_addrlist_put(&e, angle, c);
				break;
			}
			if (sm_addrlist_flush(&e, fn, arg, &count, why) < 0)
				return -1;
			break;
		default:
			sm_addrlist_put(&e, angle, c);
			break;
		}
	}
	if (sm_addrlist_flush(&e, fn, arg, &count, why) < 0)
		return -1;
	return count;
}
