/*
 * rule_rewrite.c - the header actions of transport rules applied to one
 * copy of a message (SetHeaderName/SetHeaderValue, RemoveHeader,
 * PrependSubject), and the X-Sluice-Organization-Rules-Execution-History
 * field that records the rules that fired.
 *
 * Actions apply in priority order, as if one after the other: within a
 * rule RemoveHeader comes first, then SetHeader, then PrependSubject; a
 * later SetHeader or RemoveHeader of the same field wins over an earlier
 * one, and setting or removing Subject drops the prefixes before it.
 * SetHeader replaces every field of that name by one new field (Exchange:
 * "set the message header to this value"), added at the end of the header
 * section with the execution history.  PrependSubject puts its text in
 * front of the first Subject field's value (a Subject is added when there
 * is none) unless the subject already starts with that text, so a message
 * that passes twice is not marked twice.
 *
 * Text that is not ASCII is written as RFC 2047 encoded-words in UTF-8,
 * and long fields are folded, so every line stays under 998 octets.  The
 * body is copied as it is.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rule_int.h"

/* Fold before a line gets this long (RFC 5322 2.1.1's 78). */
#define REWRITE_FOLD 76

struct rewrite_op {
	const char *name;
	const char *value; /* NULL: removed */
};

struct rewrite_plan {
	struct rewrite_op *ops;
	size_t nops;
	const char *prefix[64]; /* PrependSubject texts, innermost first */
	size_t nprefix;
};

static int
rewrite_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

static void
rewrite_op(struct rewrite_plan *pl, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < pl->nops; i++)
		if (strcasecmp(pl->ops[i].name, name) == 0)
			break;
	if (i == pl->nops)
		pl->nops++;
	pl->ops[i].name = name;
	pl->ops[i].value = value;
	if (strcasecmp(name, "Subject") == 0)
		pl->nprefix = 0;
}

static const struct rewrite_op *
rewrite_find(const struct rewrite_plan *pl, const char *name, size_t len)
{
	for (size_t i = 0; i < pl->nops; i++)
		if (strlen(pl->ops[i].name) == len &&
		    strncasecmp(pl->ops[i].name, name, len) == 0)
			return &pl->ops[i];
	return NULL;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* One =?UTF-8?B?...?= word for n bytes of s. */
static int
rewrite_b64_word(struct buf *out, const unsigned char *s, size_t n)
{
	int rc = buf_puts(out, "=?UTF-8?B?");

	for (size_t i = 0; rc == BUF_OK && i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		char q[4];

		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = b64[(v >> 18) & 63];
		q[1] = b64[(v >> 12) & 63];
		q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64[v & 63] : '=';
		rc = buf_append(out, q, 4);
	}
	return rc == BUF_OK ? buf_puts(out, "?=") : rc;
}

/*
 * Text for a header: ASCII as it is (folded at blanks when long), other
 * text as encoded-words of at most 45 octets each, never splitting a UTF-8
 * sequence, separated by folding.  *col is the current column.
 */
static int
rewrite_text(struct buf *out, const char *s, size_t *col)
{
	size_t n = strlen(s);
	int rc = BUF_OK;

	if (rewrite_ascii(s)) {
		while (rc == BUF_OK && *s != '\0') {
			const char *sp = strchr(s + 1, ' ');
			size_t w = sp != NULL ? (size_t)(sp - s) : strlen(s);

			if (*col + w > REWRITE_FOLD && *col > 1 && *s == ' ') {
				rc = buf_puts(out, "\r\n");
				*col = 0;
			}
			if (rc == BUF_OK)
				rc = buf_append(out, s, w);
			*col += w;
			s += w;
		}
		return rc;
	}
	for (int first = 1; rc == BUF_OK && n > 0; first = 0) {
		size_t take = n < 45 ? n : 45, w;

		/* back up to the start of a UTF-8 sequence */
		while (take < n && take > 0 &&
		       ((unsigned char)s[take] & 0xc0) == 0x80)
			take--;
		if (take == 0)
			take = n < 45 ? n : 45;
		w = 12 + (take + 2) / 3 * 4;
		/* encoded-words are always separated by a blank (RFC 2047 5) */
		if (*col + w + !first > REWRITE_FOLD && *col > 1) {
			rc = buf_puts(out, "\r\n ");
			*col = 1;
		} else if (!first) {
			rc = buf_puts(out, " ");
			*col += 1;
		}
		if (rc == BUF_OK)
			rc = rewrite_b64_word(
			    out, (const unsigned char *)s, take);
		*col += w;
		s += take;
		n -= take;
	}
	return rc;
}

static int
rewrite_field(struct buf *out, const char *name, const char *value)
{
	size_t col = strlen(name) + 2;
	int rc = buf_printf(out, "%s: ", name);

	if (rc == BUF_OK)
		rc = rewrite_text(out, value, &col);
	return rc == BUF_OK ? buf_puts(out, "\r\n") : rc;
}

/* The prefixes joined, outermost first: "[B] [A] " -> "[B] [A] ". */
static int
rewrite_prefix(const struct rewrite_plan *pl, char *out, size_t len)
{
	size_t w = 0;

	out[0] = '\0';
	for (size_t i = pl->nprefix; i-- > 0;) {
		size_t n = strlen(pl->prefix[i]);

		if (w + n + 2 >= len)
			return -1;
		memcpy(out + w, pl->prefix[i], n);
		w += n;
		/* a prefix ending in a letter needs a blank before the rest */
		if (n > 0 && !isspace((unsigned char)pl->prefix[i][n - 1]))
			out[w++] = ' ';
		out[w] = '\0';
	}
	return 0;
}

static int
rewrite_subject(struct buf *out, const char *data, const struct rule_field *f,
    const char *prefix)
{
	const char *v = data + f->value;
	size_t vl = f->value_len, pl = strlen(prefix), col;
	char *decoded = rule_header_decode(v, vl, NULL), text[2048];
	int rc, already, encoded_next;

	if (decoded == NULL)
		return BUF_NOMEM;
	/* compare without the blank the prefix ends with */
	while (pl > 0 && prefix[pl - 1] == ' ')
		pl--;
	already = pl > 0 && strncasecmp(decoded, prefix, pl) == 0;
	free(decoded);
	if (already)
		return buf_append(out, data + f->start, f->end - f->start);
	/* the old value without its leading blanks, folding kept */
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	encoded_next = vl >= 2 && v[0] == '=' && v[1] == '?';
	/*
	 * An encoded prefix keeps its blank inside when an encoded-word
	 * follows (a blank between two encoded-words is not displayed);
	 * otherwise the blank is written as a blank.
	 */
	snprintf(text, sizeof(text), "%.*s",
	    (int)(rewrite_ascii(prefix) || encoded_next ? strlen(prefix) : pl),
	    prefix);
	rc = buf_append(out, data + f->start, f->name_len);
	if (rc == BUF_OK)
		rc = buf_puts(out, ": ");
	col = f->name_len + 2;
	if (rc == BUF_OK)
		rc = rewrite_text(out, text, &col);
	if (rc == BUF_OK && !rewrite_ascii(prefix))
		rc = buf_puts(out, " ");
	if (rc == BUF_OK)
		rc = buf_append(out, v, vl);
	if (rc == BUF_OK && (vl == 0 || v[vl - 1] != '\n'))
		rc = buf_puts(out, "\r\n");
	return rc;
}

static int
rewrite_history(
    const struct rule_set *set, const struct rule_copy *copy, struct buf *out)
{
	size_t col = sizeof(RULE_HISTORY_HEADER) + 1;
	int rc = buf_puts(out, RULE_HISTORY_HEADER ":"), first = 1;

	for (size_t i = 0; rc == BUF_OK && i < set->n; i++) {
		const char *name = set->v[i].c->name;

		if (!rule_bit(copy->history, i))
			continue;
		if (!first)
			rc = buf_puts(out, ";");
		col += 1;
		if (rc == BUF_OK && !first &&
		    col + strlen(name) + 1 > REWRITE_FOLD) {
			rc = buf_puts(out, "\r\n");
			col = 0;
		}
		if (rc == BUF_OK)
			rc = buf_puts(out, " ");
		col += 1;
		if (rc == BUF_OK)
			rc = rewrite_text(out, name, &col);
		first = 0;
	}
	return rc == BUF_OK ? buf_puts(out, "\r\n") : rc;
}

int
rule_rewrite(const struct rule_set *set, const struct rule_copy *copy,
    const char *data, size_t len, struct buf *out)
{
	struct rewrite_plan pl;
	struct rule_headers h;
	char prefix[2048];
	int rc = BUF_OK, subject_seen = 0;

	memset(&pl, 0, sizeof(pl));
	if ((pl.ops = calloc(2 * set->n + 1, sizeof(*pl.ops))) == NULL)
		return -1;
	for (size_t i = 0; i < set->n; i++) {
		const struct conf_transport_rule *c = set->v[i].c;

		if (!rule_bit(copy->headers, i))
			continue;
		if (c->remove_header[0] != '\0')
			rewrite_op(&pl, c->remove_header, NULL);
		if (c->set_header_name[0] != '\0')
			rewrite_op(
			    &pl, c->set_header_name, c->set_header_value);
		if (c->prepend_subject[0] != '\0' &&
		    pl.nprefix < sizeof(pl.prefix) / sizeof(pl.prefix[0]))
			pl.prefix[pl.nprefix++] = c->prepend_subject;
	}
	if (rewrite_prefix(&pl, prefix, sizeof(prefix)) < 0 ||
	    rule_headers_parse(data, len, &h) < 0) {
		free(pl.ops);
		return -1;
	}
	for (size_t i = 0; rc == BUF_OK && i < h.n; i++) {
		const struct rule_field *f = &h.v[i];
		const char *name = data + f->start;

		if (rewrite_find(&pl, name, f->name_len) != NULL)
			continue; /* removed, or set anew below */
		if (f->name_len == sizeof(RULE_HISTORY_HEADER) - 1 &&
		    strncasecmp(name, RULE_HISTORY_HEADER, f->name_len) == 0)
			continue;
		if (prefix[0] != '\0' && !subject_seen && f->name_len == 7 &&
		    strncasecmp(name, "Subject", 7) == 0) {
			subject_seen = 1;
			rc = rewrite_subject(out, data, f, prefix);
			continue;
		}
		rc = buf_append(out, data + f->start, f->end - f->start);
	}
	for (size_t i = 0; rc == BUF_OK && i < pl.nops; i++) {
		char v[RULE_HEADER_VALUE_MAX + sizeof(prefix)];

		if (pl.ops[i].value == NULL)
			continue;
		/* a Subject set by a rule takes the prefixes after it */
		if (strcasecmp(pl.ops[i].name, "Subject") == 0 &&
		    prefix[0] != '\0') {
			snprintf(v, sizeof(v), "%s%s", prefix, pl.ops[i].value);
			subject_seen = 1;
		} else {
			snprintf(v, sizeof(v), "%s", pl.ops[i].value);
		}
		rc = rewrite_field(out, pl.ops[i].name, v);
	}
	if (rc == BUF_OK && prefix[0] != '\0' && !subject_seen) {
		size_t n = strlen(prefix);

		while (n > 0 && prefix[n - 1] == ' ')
			prefix[--n] = '\0';
		rc = rewrite_field(out, "Subject", prefix);
	}
	for (size_t w = 0; rc == BUF_OK && w < (set->n / 64 + 1); w++)
		if (copy->history[w] != 0) {
			rc = rewrite_history(set, copy, out);
			break;
		}
	if (rc == BUF_OK)
		rc = buf_append(out, data + h.body, len - h.body);
	rule_headers_free(&h);
	free(pl.ops);
	return rc == BUF_OK ? 0 : -1;
}
