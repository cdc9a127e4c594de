/*
 * command.c - SMTP command and argument parsing (see command.h).
 *
 * Grammar from RFC 5321 4.1.2, extended by RFC 6531 (UTF-8 in local parts
 * and domains when SMTPUTF8 was negotiated).  The parser is strict where
 * leniency would be dangerous (control characters, lengths, xtext, BDAT
 * sizes) and lenient where real clients differ harmlessly (a space after
 * "FROM:", the case of keywords).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp/command.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} command_verbs[] = {
    {"HELO", SMTP_VERB_HELO},
    {"EHLO", SMTP_VERB_EHLO},
    {"MAIL", SMTP_VERB_MAIL},
    {"RCPT", SMTP_VERB_RCPT},
    {"DATA", SMTP_VERB_DATA},
    {"BDAT", SMTP_VERB_BDAT},
    {"RSET", SMTP_VERB_RSET},
    {"NOOP", SMTP_VERB_NOOP},
    {"QUIT", SMTP_VERB_QUIT},
    {"VRFY", SMTP_VERB_VRFY},
    {"EXPN", SMTP_VERB_EXPN},
    {"HELP", SMTP_VERB_HELP},
    {"STARTTLS", SMTP_VERB_STARTTLS},
    {"AUTH", SMTP_VERB_AUTH},
};

/* RFC 5321 4.1.1: Keyword = Ldh-str; we also take the other verbs' shape. */
static int
command_verb_char(unsigned char ch)
{
	return isascii(ch) && (isalnum(ch) || ch == '-');
}

void
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *c)
{
	size_t i = 0;

	memset(c, 0, sizeof(*c));
	c->verb = SMTP_VERB_UNKNOWN;
	c->verb_text = line;
	while (i < len && command_verb_char((unsigned char)line[i]))
		i++;
	c->verb_len = i;
	for (size_t k = 0; k < sizeof(command_verbs) / sizeof(command_verbs[0]);
	     k++) {
		if (strlen(command_verbs[k].name) == c->verb_len &&
		    strncasecmp(command_verbs[k].name, line, c->verb_len) ==
		        0) {
			c->verb = command_verbs[k].verb;
			break;
		}
	}
	/*
	 * "AUTH<TAB>PLAIN ..." is not AUTH with an argument, and must not
	 * become an unknown verb that swallows (and echoes) the credential:
	 * a known verb ends here and the line is refused as a syntax error.
	 * An unknown verb is everything up to the first space, as sent.
	 */
	if (c->verb != SMTP_VERB_UNKNOWN && i < len && line[i] != ' ')
		c->bad_separator = 1;
	if (c->verb == SMTP_VERB_UNKNOWN) {
		while (i < len && line[i] != ' ')
			i++;
		c->verb_len = i;
	}
	while (i < len && line[i] == ' ')
		i++;
	c->arg = line + i;
	c->arg_len = len - i;
	/* Trailing blanks are common and harmless. */
	while (c->arg_len > 0 && c->arg[c->arg_len - 1] == ' ')
		c->arg_len--;
}

size_t
smtp_cmd_public_len(const char *line, size_t len, const struct smtp_cmd *c)
{
	const char *sp;
	size_t i = 0;

	/* Blanks first do not make it less of a credential. */
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (len - i < 4 || strncasecmp(line + i, "AUTH", 4) != 0)
		return len;
	if (c->verb != SMTP_VERB_AUTH || c->bad_separator)
		return i + 4;
	/* "AUTH MECH": the mechanism is no secret; what follows may be. */
	sp = memchr(c->arg, ' ', c->arg_len);
	return (size_t)(c->arg - line) +
	       (sp != NULL ? (size_t)(sp - c->arg) : c->arg_len);
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	for (size_t k = 0; k < sizeof(command_verbs) / sizeof(command_verbs[0]);
	     k++)
		if (command_verbs[k].verb == v)
			return command_verbs[k].name;
	return "UNKNOWN";
}

/* --- characters -------------------------------------------------------- */

/* RFC 5321 atext (RFC 5322 3.2.3). */
static int
command_atext(unsigned char ch)
{
	return isalnum(ch) || strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/*
 * Length of the well-formed UTF-8 sequence at p (2 to 4 bytes), or 0.
 * Overlong forms, surrogates and values past U+10FFFF are refused.
 */
static size_t
command_utf8_seq(const unsigned char *p, size_t len)
{
	unsigned cp;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* --- paths ------------------------------------------------------------- */

struct command_cursor {
	const unsigned char *p;
	size_t len;
	size_t pos;
};

static int
command_peek(const struct command_cursor *c)
{
	return c->pos < c->len ? c->p[c->pos] : -1;
}

/* A domain: sub-domains of letters, digits, hyphens (and UTF-8), dots. */
static int
command_domain(struct command_cursor *c, char *out, size_t outsz, int *utf8)
{
	size_t start = c->pos, label = 0, n = 0;

	while (c->pos < c->len) {
		unsigned char ch = c->p[c->pos];
		size_t seq;

		if (isalnum(ch) || ch == '-') {
			label++;
			c->pos++;
		} else if (ch == '.') {
			if (label == 0)
				return SMTP_PARSE_SYNTAX;
			label = 0;
			c->pos++;
		} else if (ch >= 0x80 && (seq = command_utf8_seq(c->p + c->pos,
		                              c->len - c->pos)) > 0) {
			*utf8 = 1;
			label += seq;
			c->pos += seq;
		} else {
			break;
		}
	}
	n = c->pos - start;
	if (n == 0 || label == 0)
		return SMTP_PARSE_SYNTAX;
	if (n > SMTP_DOMAIN_MAX || n >= outsz)
		return SMTP_PARSE_TOOLONG;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower(c->p[start + i]);
	out[n] = '\0';
	return SMTP_PARSE_OK;
}

/* An address literal: [IPv4] or [IPv6:...] or [tag:text], kept as is. */
static int
command_literal(struct command_cursor *c, char *out, size_t outsz)
{
	size_t start = c->pos, n;

	c->pos++; /* '[' */
	while (c->pos < c->len && c->p[c->pos] != ']') {
		unsigned char ch = c->p[c->pos];

		/* RFC 5321 dcontent: printable US-ASCII except [ \ ] */
		if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
			return SMTP_PARSE_SYNTAX;
		c->pos++;
	}
	if (c->pos >= c->len)
		return SMTP_PARSE_SYNTAX;
	c->pos++;
	n = c->pos - start;
	if (n > SMTP_DOMAIN_MAX || n >= outsz)
		return SMTP_PARSE_TOOLONG;
	memcpy(out, c->p + start, n);
	out[n] = '\0';
	return SMTP_PARSE_OK;
}

static int
command_local_part(struct command_cursor *c, struct smtp_path *path)
{
	size_t start = c->pos, n;

	if (command_peek(c) == '"') {
		c->pos++;
		for (;;) {
			int ch = command_peek(c);

			if (ch < 0)
				return SMTP_PARSE_SYNTAX;
			if (ch == '"') {
				c->pos++;
				break;
			}
			if (ch == '\\') {
				c->pos++;
				ch = command_peek(c);
				/* quoted-pairSMTP: %d92 %d32-126 */
				if (ch < 32 || ch > 126)
					return SMTP_PARSE_SYNTAX;
				c->pos++;
			} else if (ch >= 0x80) {
				size_t seq = command_utf8_seq(
				    c->p + c->pos, c->len - c->pos);

				if (seq == 0)
					return SMTP_PARSE_SYNTAX;
				path->utf8 = 1;
				c->pos += seq;
			} else if (ch < 32 || ch == 127) {
				return SMTP_PARSE_SYNTAX;
			} else {
				c->pos++;
			}
		}
	} else {
		int last_dot = 1;

		while (c->pos < c->len) {
			unsigned char ch = c->p[c->pos];
			size_t seq;

			if (command_atext(ch)) {
				last_dot = 0;
				c->pos++;
			} else if (ch == '.' && !last_dot) {
				last_dot = 1;
				c->pos++;
			} else if (ch >= 0x80 &&
			           (seq = command_utf8_seq(
			                c->p + c->pos, c->len - c->pos)) > 0) {
				path->utf8 = 1;
				last_dot = 0;
				c->pos += seq;
			} else {
				break;
			}
		}
		if (c->pos == start || last_dot)
			return SMTP_PARSE_SYNTAX;
	}
	n = c->pos - start;
	if (n > SMTP_LOCAL_MAX)
		return SMTP_PARSE_TOOLONG;
	memcpy(path->local, c->p + start, n);
	path->local[n] = '\0';
	return SMTP_PARSE_OK;
}

/*
 * "<" [ A-d-l ":" ] Mailbox ">", or "<>" when allow_null.  The source
 * route (RFC 5321 4.1.2, deprecated) is accepted and discarded.
 */
static int
command_path(struct command_cursor *c, struct smtp_path *path, int allow_null,
    int allow_postmaster)
{
	size_t start = c->pos;
	int rc;

	memset(path, 0, sizeof(*path));
	if (command_peek(c) != '<')
		return SMTP_PARSE_SYNTAX;
	c->pos++;
	if (command_peek(c) == '>') {
		if (!allow_null)
			return SMTP_PARSE_SYNTAX;
		c->pos++;
		path->null = 1;
		return SMTP_PARSE_OK;
	}
	if (command_peek(c) == '@') {
		while (c->pos < c->len && c->p[c->pos] != ':') {
			unsigned char ch = c->p[c->pos];

			if (!(isalnum(ch) || ch == '-' || ch == '.' ||
			        ch == '@' || ch == ',' || ch == '[' ||
			        ch == ']'))
				return SMTP_PARSE_SYNTAX;
			c->pos++;
		}
		if (command_peek(c) != ':')
			return SMTP_PARSE_SYNTAX;
		c->pos++;
	}
	if ((rc = command_local_part(c, path)) != SMTP_PARSE_OK)
		return rc;
	if (command_peek(c) == '>' && allow_postmaster &&
	    strcasecmp(path->local, "postmaster") == 0) {
		c->pos++;
		path->postmaster = 1;
		snprintf(path->addr, sizeof(path->addr), "%s", path->local);
		return SMTP_PARSE_OK;
	}
	if (command_peek(c) != '@')
		return SMTP_PARSE_SYNTAX;
	c->pos++;
	if (command_peek(c) == '[')
		rc = command_literal(c, path->domain, sizeof(path->domain));
	else
		rc = command_domain(
		    c, path->domain, sizeof(path->domain), &path->utf8);
	if (rc != SMTP_PARSE_OK)
		return rc;
	if (command_peek(c) != '>')
		return SMTP_PARSE_SYNTAX;
	c->pos++;
	if (c->pos - start > SMTP_PATH_MAX)
		return SMTP_PARSE_TOOLONG;
	{
		size_t ll = strlen(path->local), dl = strlen(path->domain);

		if (ll + 1 + dl > SMTP_PATH_MAX)
			return SMTP_PARSE_TOOLONG;
		memcpy(path->addr, path->local, ll);
		path->addr[ll] = '@';
		memcpy(path->addr + ll + 1, path->domain, dl + 1);
	}
	return SMTP_PARSE_OK;
}

/* --- xtext ------------------------------------------------------------- */

static int
command_hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
smtp_xtext_decode(const char *in, size_t len, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '+') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = command_hex(in[i + 1]);
			lo = command_hex(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (ch < 33 || ch > 126 || ch == '=') {
			return -1;
		}
		/* Decoded control characters never reach a store (GUIDE 4.4).
		 */
		if (ch < 32 || ch == 127)
			return -1;
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return (int)o;
}

int
smtp_xtext_encode(const char *in, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in != '\0'; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch >= 33 && ch <= 126 && ch != '+' && ch != '=') {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= outsz)
				return -1;
			out[o++] = '+';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* --- parameters -------------------------------------------------------- */

/* Next "KEY[=VALUE]" after one or more spaces; 0 at the end. */
static int
command_param(struct command_cursor *c, const char **key, size_t *klen,
    const char **val, size_t *vlen)
{
	size_t start;

	while (command_peek(c) == ' ')
		c->pos++;
	if (c->pos >= c->len)
		return 0;
	start = c->pos;
	while (c->pos < c->len && c->p[c->pos] != ' ' && c->p[c->pos] != '=')
		c->pos++;
	*key = (const char *)c->p + start;
	*klen = c->pos - start;
	*val = NULL;
	*vlen = 0;
	if (command_peek(c) == '=') {
		c->pos++;
		start = c->pos;
		while (c->pos < c->len && c->p[c->pos] != ' ')
			c->pos++;
		*val = (const char *)c->p + start;
		*vlen = c->pos - start;
	}
	return 1;
}

static int
command_is(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && strncasecmp(k, name, klen) == 0;
}

/* Decimal digits only, no sign, no overflow. */
static int
command_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
command_prefix(struct command_cursor *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->pos < n ||
	    strncasecmp((const char *)c->p + c->pos, word, n) != 0)
		return -1;
	c->pos += n;
	/* Many clients send "MAIL FROM: <a@b>"; tolerate the space. */
	while (command_peek(c) == ' ')
		c->pos++;
	return 0;
}

static int
command_fail(const char **why, const char *reason, int rc)
{
	if (why != NULL)
		*why = reason;
	return rc;
}

/*
 * The start shared by MAIL and RCPT: "FROM:" or "TO:", the path, then
 * the end of the argument or a space before the parameters.
 */
static int
command_path_arg(struct command_cursor *c, struct smtp_path *path, int is_rcpt,
    const char **why)
{
	const char *bad = is_rcpt ? "Bad recipient address syntax"
	                          : "Bad sender address syntax";
	int rc;

	if (command_prefix(c, is_rcpt ? "TO:" : "FROM:") < 0)
		return command_fail(why,
		    is_rcpt ? "Syntax: RCPT TO:<address>"
		            : "Syntax: MAIL FROM:<address>",
		    SMTP_PARSE_SYNTAX);
	if ((rc = command_path(c, path, !is_rcpt, is_rcpt)) != SMTP_PARSE_OK)
		return command_fail(why,
		    rc != SMTP_PARSE_TOOLONG ? bad
		    : is_rcpt                ? "Recipient address too long"
		                             : "Sender address too long",
		    rc);
	if (c->pos < c->len && c->p[c->pos] != ' ')
		return command_fail(why, bad, SMTP_PARSE_SYNTAX);
	return SMTP_PARSE_OK;
}

int
smtp_mail_parse(const char *arg, size_t len, const struct smtp_ext *ext,
    struct smtp_mail_args *m, const char **why)
{
	struct command_cursor c = {(const unsigned char *)arg, len, 0};
	const char *k, *v;
	size_t kl, vl;
	unsigned seen = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = command_path_arg(&c, &m->path, 0, why)) != SMTP_PARSE_OK)
		return rc;
	while (command_param(&c, &k, &kl, &v, &vl)) {
		unsigned bit;

		if (command_is(k, kl, "SIZE") && ext->size) {
			bit = 1;
			if (v == NULL || command_number(v, vl, &m->size) < 0)
				return command_fail(
				    why, "Invalid SIZE", SMTP_PARSE_BADPARAM);
			m->has_size = 1;
		} else if (command_is(k, kl, "BODY") && ext->eightbitmime) {
			bit = 2;
			if (v != NULL && command_is(v, vl, "7BIT"))
				m->body = SMTP_BODY_7BIT;
			else if (v != NULL && command_is(v, vl, "8BITMIME"))
				m->body = SMTP_BODY_8BITMIME;
			else
				return command_fail(why,
				    "Unsupported BODY type",
				    SMTP_PARSE_BADPARAM);
		} else if (command_is(k, kl, "SMTPUTF8") && ext->smtputf8) {
			bit = 4;
			if (v != NULL)
				return command_fail(why,
				    "SMTPUTF8 takes no value",
				    SMTP_PARSE_BADPARAM);
			m->smtputf8 = 1;
		} else if (command_is(k, kl, "RET") && ext->dsn) {
			bit = 8;
			if (v != NULL && command_is(v, vl, "FULL"))
				m->ret = SMTP_RET_FULL;
			else if (v != NULL && command_is(v, vl, "HDRS"))
				m->ret = SMTP_RET_HDRS;
			else
				return command_fail(
				    why, "Invalid RET", SMTP_PARSE_BADPARAM);
		} else if (command_is(k, kl, "ENVID") && ext->dsn) {
			bit = 16;
			if (v == NULL || vl == 0 ||
			    smtp_xtext_decode(
			        v, vl, m->envid, sizeof(m->envid)) < 0)
				return command_fail(
				    why, "Invalid ENVID", SMTP_PARSE_BADVALUE);
		} else if (command_is(k, kl, "REQUIRETLS")) {
			bit = 64;
			if (!ext->requiretls)
				return command_fail(why,
				    "REQUIRETLS is offered only inside TLS; "
				    "issue STARTTLS first",
				    SMTP_PARSE_NEEDTLS);
			if (v != NULL)
				return command_fail(why,
				    "REQUIRETLS takes no value",
				    SMTP_PARSE_BADPARAM);
			m->requiretls = 1;
		} else if (command_is(k, kl, "AUTH")) {
			bit = 32;
			if (v == NULL || smtp_xtext_decode(v, vl, m->auth,
			                     sizeof(m->auth)) < 0)
				return command_fail(
				    why, "Invalid AUTH", SMTP_PARSE_BADVALUE);
		} else {
			return command_fail(
			    why, "Unsupported parameter", SMTP_PARSE_BADPARAM);
		}
		if (seen & bit)
			return command_fail(
			    why, "Duplicate parameter", SMTP_PARSE_BADPARAM);
		seen |= bit;
	}
	if (m->path.utf8 && !m->smtputf8)
		return command_fail(why, "Non-ASCII address requires SMTPUTF8",
		    SMTP_PARSE_UTF8);
	return SMTP_PARSE_OK;
}

static int
command_notify(const char *v, size_t vl, unsigned *out)
{
	size_t i = 0;

	*out = 0;
	while (i < vl) {
		size_t j = i;
		unsigned bit;

		while (j < vl && v[j] != ',')
			j++;
		if (command_is(v + i, j - i, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (command_is(v + i, j - i, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (command_is(v + i, j - i, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (command_is(v + i, j - i, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (*out & bit)
			return -1;
		*out |= bit;
		i = j + 1;
		if (j < vl && i == vl)
			return -1; /* trailing comma */
	}
	if (*out == 0 ||
	    ((*out & SMTP_NOTIFY_NEVER) && *out != SMTP_NOTIFY_NEVER))
		return -1;
	return 0;
}

int
smtp_rcpt_parse(const char *arg, size_t len, const struct smtp_ext *ext,
    struct smtp_rcpt_args *r, const char **why)
{
	struct command_cursor c = {(const unsigned char *)arg, len, 0};
	const char *k, *v;
	size_t kl, vl;
	unsigned seen = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = command_path_arg(&c, &r->path, 1, why)) != SMTP_PARSE_OK)
		return rc;
	while (command_param(&c, &k, &kl, &v, &vl)) {
		unsigned bit;

		if (command_is(k, kl, "NOTIFY") && ext->dsn) {
			bit = 1;
			if (v == NULL || command_notify(v, vl, &r->notify) < 0)
				return command_fail(
				    why, "Invalid NOTIFY", SMTP_PARSE_BADPARAM);
		} else if (command_is(k, kl, "ORCPT") && ext->dsn) {
			const char *semi;

			bit = 2;
			semi = v != NULL ? memchr(v, ';', vl) : NULL;
			if (semi == NULL || semi == v ||
			    smtp_xtext_decode(
			        v, vl, r->orcpt, sizeof(r->orcpt)) < 0)
				return command_fail(
				    why, "Invalid ORCPT", SMTP_PARSE_BADVALUE);
		} else {
			return command_fail(
			    why, "Unsupported parameter", SMTP_PARSE_BADPARAM);
		}
		if (seen & bit)
			return command_fail(
			    why, "Duplicate parameter", SMTP_PARSE_BADPARAM);
		seen |= bit;
	}
	return SMTP_PARSE_OK;
}

int
smtp_helo_parse(
    const char *arg, size_t len, char *out, size_t outsz, const char **why)
{
	if (len == 0)
		return command_fail(
		    why, "HELO/EHLO requires a domain name", -1);
	if (len > SMTP_HELO_MAX || len >= outsz)
		return command_fail(why, "Domain name too long", -1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)arg[i];

		/* Lenient like real servers, but never spaces or controls. */
		if (ch <= 32 || ch == 127)
			return command_fail(why, "Invalid domain name", -1);
		/*
		 * It goes into our Received header, where 8-bit bytes do not
		 * belong (RFC 5322) and "(", ")" or ";" could fake a comment
		 * or end the field: what is not a domain or an address
		 * literal is kept as '?', and the client is not refused.
		 */
		out[i] = isascii(ch) && (isalnum(ch) || strchr("-._:[]", ch))
		             ? (char)ch
		             : '?';
	}
	out[len] = '\0';
	return 0;
}

int
smtp_bdat_parse(const char *arg, size_t len, uint64_t *size, int *last)
{
	size_t i = 0;

	while (i < len && arg[i] >= '0' && arg[i] <= '9')
		i++;
	/* RFC 3030: chunk-size = 1*DIGIT; it must fit in 64 bits. */
	if (i == 0 || command_number(arg, i, size) < 0)
		return -1;
	*last = 0;
	if (i == len)
		return 0;
	if (arg[i] != ' ' || !command_is(arg + i + 1, len - i - 1, "LAST"))
		return -1;
	*last = 1;
	return 0;
}
