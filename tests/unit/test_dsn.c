/*
 * test_dsn.c - delivery status notifications (src/queue/dsn.c): the
 * header, the three parts of the multipart/report and their boundary, the
 * per-recipient fields for mixed actions, ENVID and ORCPT decoded, RET
 * FULL/HDRS/absent, 8-bit and oversized originals, and hostile input (a
 * 10 KB reply with CR, LF and NUL, an original with bare CR/LF and
 * overlong lines).  Every composed DSN goes through check_wire(): CRLF
 * only, no NUL, 7-bit, no line over 998 octets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/dsn.h"
#include "smtp/command.h"

#define NOW 1700000000         /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define ARRIVAL 1699990000     /* Tue, 14 Nov 2023 19:26:40 +0000 */
#define ATTEMPT 1699999000     /* Tue, 14 Nov 2023 21:56:40 +0000 */
#define RETRY_UNTIL 1700400000 /* Sun, 19 Nov 2023 13:20:00 +0000 */

static const char original[] =
    "Received: from client.example.org by mx.contoso.com\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Hello\r\n"
    " there\r\n"
    "Message-ID: <orig-1@example.org>\r\n"
    "\r\n"
    "First body line.\r\n"
    "BODY-MARKER\r\n";

static const struct dsn_rcpt bob_failed = {
    .addr = "bob@example.net",
    .orcpt = "",
    .action = DSN_FAILED,
    .status = "5.1.1",
    .remote_mta = "mx.example.net",
    .diagnostic = "550 5.1.1 No such user",
    .last_attempt = ATTEMPT,
};

static struct dsn_msg
base_msg(const struct dsn_rcpt *rcpts, size_t n)
{
	struct dsn_msg m = {
	    .reporting_mta = "mx.contoso.com",
	    .queue_id = "Q123ABC",
	    .envid = "",
	    .sender = "alice@example.org",
	    .arrival = ARRIVAL,
	    .ret = SMTP_RET_NONE,
	    .original = original,
	    .original_len = sizeof(original) - 1,
	    .rcpts = rcpts,
	    .nrcpts = n,
	    .now = NOW,
	    .message_id = "dsn-1@mx.contoso.com",
	};
	return m;
}

/*
 * The wire invariants: every line ends in CRLF (no bare CR or LF), no
 * NUL, only 7-bit octets, no line over 998 octets without its CRLF.
 */
static void
check_wire(const char *s, size_t len)
{
	size_t linelen = 0;

	assert_true(len >= 2);
	assert_memory_equal(s + len - 2, "\r\n", 2);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		assert_true(c != '\0');
		assert_true(c < 0x80);
		if (c == '\r') {
			assert_true(i + 1 < len && s[i + 1] == '\n');
			if (linelen > 998)
				print_error(
				    "line of %zu octets at %zu\n", linelen, i);
			assert_true(linelen <= 998);
			linelen = 0;
			i++;
		} else {
			assert_true(c != '\n');
			linelen++;
		}
	}
}

static char *
compose(const struct dsn_msg *m, size_t *lenp)
{
	size_t len = 0;
	char *s = dsn_compose(m, &len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	check_wire(s, len);
	if (lenp != NULL)
		*lenp = len;
	return s;
}

/* The boundary parameter of the top-level Content-Type. */
static char *
boundary_of(const char *s)
{
	const char *p = strstr(s, "boundary=\""), *e;

	assert_non_null(p);
	p += 10;
	e = strchr(p, '"');
	assert_non_null(e);
	assert_true(e - p > 0 && e - p <= 70);
	return strndup(p, (size_t)(e - p));
}

/*
 * Part idx (0-based) of the multipart, part header and body, as a new
 * string; NULL when there is no such part.  Also checks that the parts
 * are closed by the final delimiter.
 */
static char *
part(const char *s, int idx)
{
	char *b = boundary_of(s), delim[80], close[84];
	const char *p = s, *end;

	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", b);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", b);
	free(b);
	assert_non_null(strstr(s, close));
	for (int i = 0; i <= idx; i++) {
		p = strstr(p, delim);
		if (p == NULL)
			return NULL;
		p += strlen(delim);
	}
	end = strstr(p, delim);
	if (end == NULL)
		end = strstr(p, close);
	assert_non_null(end);
	return strndup(p, (size_t)(end - p));
}

/* The n-th (0-based) value of a field, unfolded, or NULL. */
static char *
field_n(const char *s, const char *name, int n)
{
	size_t nl = strlen(name);
	const char *p = s;
	char *v;
	size_t k = 0;

	for (;;) {
		if ((p == s || p[-1] == '\n') && strncmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			if (n-- == 0)
				break;
		}
		p = strchr(p, '\n');
		if (p == NULL)
			return NULL;
		p++;
	}
	p += nl + 1;
	while (*p == ' ')
		p++;
	v = malloc(strlen(p) + 1);
	assert_non_null(v);
	for (; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			if (p[2] != ' ' && p[2] != '\t')
				break;
			p++;
			continue;
		}
		v[k++] = *p;
	}
	v[k] = '\0';
	return v;
}

static char *
field(const char *s, const char *name)
{
	return field_n(s, name, 0);
}

static void
assert_field(const char *s, const char *name, const char *want)
{
	char *v = field(s, name);

	if (v == NULL)
		print_error("no field %s\n", name);
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

static void
assert_no_field(const char *s, const char *name)
{
	char *v = field(s, name);

	if (v != NULL)
		print_error("unexpected %s: %s\n", name, v);
	assert_null(v);
}

/* The top-level header: everything up to the first empty line. */
static char *
top_header(const char *s)
{
	const char *e = strstr(s, "\r\n\r\n");

	assert_non_null(e);
	return strndup(s, (size_t)(e - s) + 2);
}

/* The body of a part (after its own header). */
static const char *
body_of(const char *p)
{
	const char *e = strstr(p, "\r\n\r\n");

	if (p[0] == '\r' && p[1] == '\n')
		return p + 2;
	assert_non_null(e);
	return e + 4;
}

/* Undo the line splitting: drop each CRLF and a folding space after it. */
static char *
squash(const char *s)
{
	char *o = malloc(strlen(s) + 1);
	size_t k = 0;

	assert_non_null(o);
	while (*s != '\0') {
		if (s[0] == '\r' && s[1] == '\n') {
			s += s[2] == ' ' ? 3 : 2;
			continue;
		}
		o[k++] = *s++;
	}
	o[k] = '\0';
	return o;
}

/* Replace CRLF by a space, collapsing spaces, for prose matching. */
static char *
unwrap(const char *s)
{
	char *o = malloc(strlen(s) + 1);
	size_t k = 0;

	assert_non_null(o);
	for (; *s != '\0'; s++) {
		char c = *s == '\r' || *s == '\n' ? ' ' : *s;

		if (c == ' ' && k > 0 && o[k - 1] == ' ')
			continue;
		o[k++] = c;
	}
	o[k] = '\0';
	return o;
}

static void
test_header(void **state)
{
	struct dsn_msg m = base_msg(&bob_failed, 1);
	char *s = compose(&m, NULL), *h = top_header(s), *b = boundary_of(s);
	char *ct;

	(void)state;
	assert_field(h, "From",
	    "\"Mail Delivery System\" <MAILER-DAEMON@mx.contoso.com>");
	assert_field(h, "To", "<alice@example.org>");
	assert_field(h, "Subject", "Undeliverable: Hello there");
	assert_field(h, "Date", "Tue, 14 Nov 2023 22:13:20 +0000");
	assert_field(h, "Message-ID", "<dsn-1@mx.contoso.com>");
	assert_field(h, "Auto-Submitted", "auto-replied");
	assert_field(h, "MIME-Version", "1.0");
	ct = field(h, "Content-Type");
	assert_non_null(ct);
	assert_non_null(
	    strstr(ct, "multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(ct, b));
	/* Derived from the queue id, and varies with time. */
	assert_non_null(strstr(b, "Q123ABC"));
	free(ct);
	free(b);
	free(h);
	free(s);
}

static void
test_three_parts(void **state)
{
	struct dsn_msg m = base_msg(&bob_failed, 1);
	char *s = compose(&m, NULL), *p0 = part(s, 0), *p1 = part(s, 1);
	char *p2 = part(s, 2), *p3 = part(s, 3), *text;

	(void)state;
	assert_non_null(p0);
	assert_non_null(p1);
	assert_non_null(p2);
	assert_null(p3);
	assert_field(p0, "Content-Type", "text/plain; charset=us-ascii");
	assert_field(p1, "Content-Type", "message/delivery-status");
	assert_field(p2, "Content-Type", "message/rfc822");

	text = unwrap(body_of(p0));
	assert_non_null(strstr(text,
	    "The message could not be delivered to bob@example.net. Remote "
	    "server mx.example.net said: 550 5.1.1 No such user"));
	assert_non_null(strstr(text, "Queue ID: Q123ABC"));
	assert_non_null(strstr(text, "The original message is attached."));
	free(text);
	/* Text lines are wrapped for reading. */
	for (const char *l = body_of(p0); *l != '\0';) {
		const char *e = strstr(l, "\r\n");

		assert_non_null(e);
		assert_true(e - l <= 76);
		l = e + 2;
	}

	/* RET absent and a failure: the whole original, as stored. */
	assert_non_null(strstr(body_of(p2), original));
	free(p0);
	free(p1);
	free(p2);
	free(s);
}

static void
test_recipients(void **state)
{
	static const struct dsn_rcpt r[] = {
	    {
	        .addr = "bob@example.net",
	        .orcpt = "rfc822;bob@example.net",
	        .action = DSN_FAILED,
	        .status = "5.1.1",
	        .remote_mta = "mx.example.net",
	        .diagnostic = "550 5.1.1 No such user",
	        .last_attempt = ATTEMPT,
	    },
	    {
	        .addr = "carol@slow.example",
	        .orcpt = "",
	        .action = DSN_DELAYED,
	        .status = "4.4.1",
	        .remote_mta = "",
	        .diagnostic = "connection timed out",
	        .last_attempt = ATTEMPT,
	        .retry_until = RETRY_UNTIL,
	    },
	    {
	        .addr = "dave@contoso.com",
	        .orcpt = "",
	        .action = DSN_DELIVERED,
	        .status = "2.0.0",
	        .remote_mta = "",
	        .diagnostic = "",
	    },
	    {
	        .addr = "erin@old.example",
	        .orcpt = "",
	        .action = DSN_RELAYED,
	        .status = "bogus",
	        .remote_mta = "relay.old.example",
	        .diagnostic = "250 2.0.0 Ok queued",
	        .last_attempt = ATTEMPT,
	    },
	};
	struct dsn_msg m = base_msg(r, 4);
	char *s = compose(&m, NULL), *p0 = part(s, 0), *p1 = part(s, 1);
	const char *ds = body_of(p1), *blk[4], *e;
	char *text = unwrap(body_of(p0)), *v;

	(void)state;
	/* Per-message fields first, then one block per recipient. */
	assert_field(ds, "Reporting-MTA", "dns;mx.contoso.com");
	assert_field(ds, "X-Sluice-Queue-ID", "Q123ABC");
	assert_field(ds, "Arrival-Date", "Tue, 14 Nov 2023 19:26:40 +0000");
	assert_no_field(ds, "Original-Envelope-Id");
	e = strstr(ds, "\r\n\r\n");
	assert_non_null(e);
	for (int i = 0; i < 4; i++) {
		blk[i] = e + 4;
		e = strstr(blk[i], "\r\n\r\n");
		if (i < 3)
			assert_non_null(e);
	}

	{
		char *b0 = strndup(blk[0], (size_t)(blk[1] - blk[0]));

		assert_field(
		    b0, "Original-Recipient", "rfc822;bob@example.net");
		assert_field(b0, "Final-Recipient", "rfc822;bob@example.net");
		assert_field(b0, "Action", "failed");
		assert_field(b0, "Status", "5.1.1");
		assert_field(b0, "Remote-MTA", "dns;mx.example.net");
		assert_field(
		    b0, "Diagnostic-Code", "smtp; 550 5.1.1 No such user");
		assert_field(
		    b0, "Last-Attempt-Date", "Tue, 14 Nov 2023 21:56:40 +0000");
		assert_no_field(b0, "Will-Retry-Until");
		/* RFC 3464 field order within the block. */
		assert_true(strstr(b0, "Original-Recipient") <
		            strstr(b0, "Final-Recipient"));
		assert_true(strstr(b0, "Action:") < strstr(b0, "Status:"));
		assert_true(
		    strstr(b0, "Remote-MTA") < strstr(b0, "Diagnostic-Code"));
		free(b0);
	}
	{
		char *b1 = strndup(blk[1], (size_t)(blk[2] - blk[1]));

		assert_no_field(b1, "Original-Recipient");
		assert_field(
		    b1, "Final-Recipient", "rfc822;carol@slow.example");
		assert_field(b1, "Action", "delayed");
		assert_field(b1, "Status", "4.4.1");
		assert_no_field(b1, "Remote-MTA");
		/* Not an SMTP reply: not claimed to be one. */
		assert_field(
		    b1, "Diagnostic-Code", "X-Sluice; connection timed out");
		assert_field(
		    b1, "Will-Retry-Until", "Sun, 19 Nov 2023 13:20:00 +0000");
		free(b1);
	}
	{
		char *b2 = strndup(blk[2], (size_t)(blk[3] - blk[2]));

		assert_field(b2, "Final-Recipient", "rfc822;dave@contoso.com");
		assert_field(b2, "Action", "delivered");
		assert_field(b2, "Status", "2.0.0");
		assert_no_field(b2, "Remote-MTA");
		assert_no_field(b2, "Diagnostic-Code");
		assert_no_field(b2, "Last-Attempt-Date");
		assert_no_field(b2, "Will-Retry-Until");
		free(b2);
	}
	assert_field(blk[3], "Action", "relayed");
	/* A malformed status is replaced by the action's generic one. */
	assert_field(blk[3], "Status", "2.0.0");
	assert_field(blk[3], "Remote-MTA", "dns;relay.old.example");
	v = field_n(ds, "Final-Recipient", 3);
	assert_string_equal(v, "rfc822;erin@old.example");
	free(v);
	assert_null(field_n(ds, "Final-Recipient", 4));

	assert_non_null(strstr(text, "Your message could not be delivered"));
	assert_non_null(strstr(text,
	    "Delivery has been delayed to carol@slow.example. Reason: "
	    "connection timed out (status 4.4.1). The mail system will keep "
	    "trying until Sun, 19 Nov 2023 13:20:00 +0000."));
	assert_non_null(
	    strstr(text, "The message was delivered to dave@contoso.com."));
	assert_non_null(
	    strstr(text, "The message was relayed to erin@old.example."));

	/* Any failure makes it an NDR. */
	v = field(s, "Subject");
	assert_string_equal(v, "Undeliverable: Hello there");
	free(v);
	free(text);
	free(p0);
	free(p1);
	free(s);
}

static void
test_subject(void **state)
{
	static const struct {
		enum dsn_action action;
		const char *orig;
		const char *want;
	} t[] = {
	    {DSN_DELAYED, "Subject: Lunch\r\n\r\nx\r\n",
	        "Delivery delayed: Lunch"},
	    {DSN_DELIVERED, "Subject: Lunch\r\n\r\nx\r\n", "Delivered: Lunch"},
	    {DSN_RELAYED, "subject:   Lunch \r\n\tat noon\r\n\r\nx\r\n",
	        "Delivered: Lunch at noon"},
	    /* No subject, and a Subject only in the body. */
	    {DSN_FAILED, "From: a@b\r\n\r\nSubject: body\r\n", "Undeliverable"},
	    /* Raw 8-bit: the charset is unknown, so it is left out. */
	    {DSN_FAILED, "Subject: Caf\xc3\xa9\r\n\r\nx\r\n", "Undeliverable"},
	    /* A control character: left out too. */
	    {DSN_FAILED, "Subject: a\x01z\r\n\r\nx\r\n", "Undeliverable"},
	    /* Encoded-words are ASCII and are kept as they are. */
	    {DSN_FAILED, "Subject: =?UTF-8?Q?Caf=C3=A9?= ok\r\n\r\nx\r\n",
	        "Undeliverable: =?UTF-8?Q?Caf=C3=A9?= ok"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct dsn_rcpt r = bob_failed;
		struct dsn_msg m = base_msg(&r, 1);
		char *s, *v;

		r.action = t[i].action;
		m.original = t[i].orig;
		m.original_len = strlen(t[i].orig);
		s = compose(&m, NULL);
		v = field(s, "Subject");
		assert_non_null(v);
		assert_string_equal(v, t[i].want);
		free(v);
		free(s);
	}
}

static void
test_subject_long(void **state)
{
	struct dsn_msg m = base_msg(&bob_failed, 1);
	char orig[4096], *s, *v, *last;
	size_t n;

	(void)state;
	/* Many short words, then encoded-words across the cut. */
	n = (size_t)snprintf(orig, sizeof(orig), "Subject:");
	for (int i = 0; i < 30; i++)
		n += (size_t)snprintf(
		    orig + n, sizeof(orig) - n, " word%02d", i);
	for (int i = 0; i < 10; i++)
		n += (size_t)snprintf(orig + n, sizeof(orig) - n,
		    "\r\n =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6k=?=");
	snprintf(orig + n, sizeof(orig) - n, "\r\n\r\nbody\r\n");
	m.original = orig;
	m.original_len = strlen(orig);
	s = compose(&m, NULL);
	v = field(s, "Subject");
	assert_non_null(v);
	assert_true(strncmp(v, "Undeliverable: word00 word01", 28) == 0);
	assert_true(strlen(v) <= strlen("Undeliverable: ") + 160 + 4);
	/* The cut is marked and is not inside an encoded-word. */
	last = strrchr(v, ' ');
	assert_string_equal(last, " ...");
	*last = '\0';
	last = strrchr(v, ' ');
	assert_true(strncmp(last + 1, "=?", 2) != 0 ||
	            strcmp(last + strlen(last) - 2, "?=") == 0);
	free(v);
	free(s);

	/* One 3000-octet word: cut hard, the header stays within limits. */
	memset(orig, 'x', sizeof(orig));
	memcpy(orig, "Subject: ", 9);
	memcpy(orig + 3009, "\r\n\r\nb\r\n", 8);
	m.original = orig;
	m.original_len = strlen(orig);
	s = compose(&m, NULL);
	v = field(s, "Subject");
	assert_int_equal(strlen(v), strlen("Undeliverable: ") + 160 + 4);
	free(v);
	free(s);
}

static void
test_envid_orcpt(void **state)
{
	struct dsn_rcpt r[2] = {bob_failed, bob_failed};
	struct dsn_msg m = base_msg(r, 2);
	char *s, *p1, *v;

	(void)state;
	/* Not printable ASCII: the whole value in xtext, the sender's form */
	m.envid = "env+id=1 x\x7f";
	r[0].orcpt = "rfc822;b+tag=x@example.net";
	r[0].addr = "b+tag=x@example.net";
	/* A stored ORCPT without a type, and a UTF-8 final address. */
	r[1].orcpt = "caf\xc3\xa9@example.net";
	r[1].addr = "caf\xc3\xa9@example.net";
	s = compose(&m, NULL);
	p1 = part(s, 1);
	assert_field(p1, "Original-Envelope-Id", "env+2Bid+3D1+20x+7F");
	/* RFC 3464 2.2: the envelope id comes before Reporting-MTA. */
	assert_true(
	    strstr(p1, "Original-Envelope-Id") < strstr(p1, "Reporting-MTA"));
	v = field_n(p1, "Original-Recipient", 0);
	assert_string_equal(v, "rfc822;b+tag=x@example.net");
	free(v);
	v = field_n(p1, "Original-Recipient", 1);
	assert_string_equal(v, "rfc822;caf+C3+A9@example.net");
	free(v);
	free(p1);
	free(s);
	/* Printable: decoded, as RFC 3464 and Postfix have it (10.20). */
	m.envid = "env+c6f=1";
	s = compose(&m, NULL);
	p1 = part(s, 1);
	assert_field(p1, "Original-Envelope-Id", "env+c6f=1");
	free(p1);
	free(s);
	m.envid = "env+id=1 x\x7f";
	s = compose(&m, NULL);
	p1 = part(s, 1);
	/* Final-Recipient keeps '+' readable; 8-bit is still escaped. */
	v = field_n(p1, "Final-Recipient", 0);
	assert_string_equal(v, "rfc822;b+tag=x@example.net");
	free(v);
	v = field_n(p1, "Final-Recipient", 1);
	assert_string_equal(v, "rfc822;caf+C3+A9@example.net");
	free(v);
	free(p1);
	free(s);
}

/* Which kind of part 3 a DSN carries: 'F' full, 'H' headers. */
static char
returned(int ret, enum dsn_action action, const char *orig, size_t olen,
    char **bodyp)
{
	struct dsn_rcpt r = bob_failed;
	struct dsn_msg m = base_msg(&r, 1);
	char *s, *p2, *ct;
	char kind;

	r.action = action;
	m.ret = ret;
	m.original = orig;
	m.original_len = olen;
	s = compose(&m, NULL);
	p2 = part(s, 2);
	assert_non_null(p2);
	ct = field(p2, "Content-Type");
	if (strcmp(ct, "message/rfc822") == 0)
		kind = 'F';
	else if (strcmp(ct, "text/rfc822-headers") == 0)
		kind = 'H';
	else
		kind = '?';
	if (bodyp != NULL)
		*bodyp = strdup(body_of(p2));
	free(ct);
	free(p2);
	free(s);
	return kind;
}

static void
test_ret(void **state)
{
	static const struct {
		int ret;
		enum dsn_action action;
		char want;
	} t[] = {
	    {SMTP_RET_FULL, DSN_FAILED, 'F'},
	    {SMTP_RET_FULL, DSN_DELAYED, 'F'},
	    {SMTP_RET_HDRS, DSN_FAILED, 'H'},
	    {SMTP_RET_HDRS, DSN_DELIVERED, 'H'},
	    {SMTP_RET_NONE, DSN_FAILED, 'F'},
	    {SMTP_RET_NONE, DSN_DELAYED, 'H'},
	    {SMTP_RET_NONE, DSN_DELIVERED, 'H'},
	    {SMTP_RET_NONE, DSN_RELAYED, 'H'},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *body;
		char k = returned(t[i].ret, t[i].action, original,
		    sizeof(original) - 1, &body);

		assert_int_equal(k, t[i].want);
		/* The header always, the body only with the full message. */
		assert_non_null(strstr(body, "Subject: Hello\r\n there\r\n"));
		assert_non_null(
		    strstr(body, "Message-ID: <orig-1@example.org>"));
		if (k == 'F')
			assert_non_null(strstr(body, "BODY-MARKER"));
		else
			assert_null(strstr(body, "BODY-MARKER"));
		free(body);
	}
}

/* RFC 8689 5: a REQUIRETLS original is not returned at all, whatever RET. */
static void
test_no_original(void **state)
{
	static const int rets[] = {SMTP_RET_FULL, SMTP_RET_HDRS, SMTP_RET_NONE};

	(void)state;
	for (size_t i = 0; i < sizeof(rets) / sizeof(rets[0]); i++) {
		struct dsn_msg m = base_msg(&bob_failed, 1);
		char *s;

		m.ret = rets[i];
		m.no_original = 1;
		s = compose(&m, NULL);
		assert_null(strstr(s, "BODY-MARKER"));
		assert_null(strstr(s, "orig-1@example.org"));
		assert_null(strstr(s, "Hello"));
		assert_null(strstr(s, "message/rfc822"));
		assert_null(strstr(s, "text/rfc822-headers"));
		assert_non_null(strstr(s, "Subject: Undeliverable\r\n"));
		assert_non_null(strstr(s, "REQUIRETLS"));
		/* still a report: the text and the delivery status */
		assert_non_null(
		    strstr(s, "Content-Type: message/delivery-status"));
		assert_non_null(strstr(s, "Status: 5.1.1"));
		free(s);
	}
}

static void
test_8bit_original(void **state)
{
	static const char body8[] = "Subject: plain\r\n"
	                            "Content-Transfer-Encoding: 8bit\r\n"
	                            "\r\n"
	                            "Caf\xc3\xa9 BODY-MARKER\r\n";
	static const char hdr8[] = "Subject: plain\r\n"
	                           "X-Name: Jos\xc3\xa9\r\n"
	                           "\r\n"
	                           "BODY-MARKER\r\n";
	static const char nul[] = "Subject: plain\r\n\r\nNUL\0 BODY-MARKER\r\n";
	struct dsn_msg m = base_msg(&bob_failed, 1);
	char *body, *s, *text;

	(void)state;
	/* Full was asked for, but the DSN stays 7-bit: header only. */
	assert_int_equal(returned(SMTP_RET_FULL, DSN_FAILED, body8,
	                     sizeof(body8) - 1, &body),
	    'H');
	assert_non_null(strstr(body, "Content-Transfer-Encoding: 8bit\r\n"));
	assert_null(strstr(body, "BODY-MARKER"));
	free(body);

	/* 8-bit octets in the returned header become '?'. */
	assert_int_equal(
	    returned(SMTP_RET_NONE, DSN_FAILED, hdr8, sizeof(hdr8) - 1, &body),
	    'H');
	assert_non_null(strstr(body, "X-Name: Jos??\r\n"));
	free(body);

	/* A NUL in the original: not returned in full either. */
	assert_int_equal(
	    returned(SMTP_RET_FULL, DSN_FAILED, nul, sizeof(nul) - 1, &body),
	    'H');
	free(body);

	/* The text says why. */
	m.ret = SMTP_RET_FULL;
	m.original = body8;
	m.original_len = sizeof(body8) - 1;
	s = compose(&m, NULL);
	text = unwrap(s);
	assert_non_null(strstr(text, "contains 8-bit data"));
	free(text);
	free(s);
}

static void
test_huge_original(void **state)
{
	size_t n = 2 * 1024 * 1024, len;
	char *big = malloc(n), *body, *s, *text;
	static const char hdr[] = "Subject: big\r\nX-Big: yes\r\n\r\n";
	struct dsn_msg m = base_msg(&bob_failed, 1);

	(void)state;
	assert_non_null(big);
	memcpy(big, hdr, sizeof(hdr) - 1);
	for (size_t i = sizeof(hdr) - 1; i < n; i += 80)
		memcpy(big + i, "BODY-MARKER", n - i < 11 ? n - i : 11);
	for (size_t i = sizeof(hdr) - 1; i + 80 <= n; i += 80) {
		memset(big + i + 11, 'y', 67);
		memcpy(big + i + 78, "\r\n", 2);
	}
	assert_int_equal(
	    returned(SMTP_RET_FULL, DSN_FAILED, big, n, &body), 'H');
	assert_non_null(strstr(body, "X-Big: yes\r\n"));
	assert_null(strstr(body, "BODY-MARKER"));
	free(body);

	m.original = big;
	m.original_len = n;
	s = compose(&m, &len);
	assert_true(len < 64 * 1024);
	text = unwrap(s);
	assert_non_null(strstr(text, "larger than 1024 KB"));
	free(text);
	free(s);

	/* Just under the bound: returned whole. */
	memcpy(big + 1024 * 1024 - 2, "\r\n", 2);
	assert_int_equal(
	    returned(SMTP_RET_FULL, DSN_FAILED, big, 1024 * 1024, &body), 'F');
	assert_non_null(strstr(body, "BODY-MARKER"));
	free(body);
	free(big);
}

static void
test_huge_header(void **state)
{
	size_t n = 300 * 1024, k = 0;
	char *orig = malloc(n + 64), *body, *s, *text;
	struct dsn_msg m = base_msg(&bob_failed, 1);

	(void)state;
	assert_non_null(orig);
	k += (size_t)snprintf(orig, n, "Subject: many\r\n");
	while (k + 100 < n)
		k += (size_t)snprintf(
		    orig + k, n - k, "X-Filler: %090zu\r\n", k);
	memcpy(orig + k, "\r\nBODY-MARKER\r\n", 15);
	k += 15;
	/* Cut at a line boundary within the bound, and said so. */
	assert_int_equal(
	    returned(SMTP_RET_HDRS, DSN_FAILED, orig, k, &body), 'H');
	assert_true(strlen(body) <= 256 * 1024);
	assert_true(strlen(body) > 200 * 1024);
	assert_non_null(strstr(body, "Subject: many\r\n"));
	assert_null(strstr(body, "BODY-MARKER"));
	free(body);
	m.ret = SMTP_RET_HDRS;
	m.original = orig;
	m.original_len = k;
	s = compose(&m, NULL);
	text = unwrap(s);
	assert_non_null(strstr(text, "The header was cut short"));
	free(text);
	free(s);
	free(orig);
}

static void
test_hostile_diagnostic(void **state)
{
	size_t n = 10 * 1024;
	char *diag = malloc(n + 64), *s, *p1, *v, *text;
	struct dsn_rcpt r = bob_failed;
	struct dsn_msg m = base_msg(&r, 1);

	(void)state;
	assert_non_null(diag);
	/* Words, CR, LF, CRLF.CRLF, TAB, 8-bit; then a NUL-cut tail. */
	memcpy(diag, "550-5.7.1 evil\r\n.\r\nMAIL FROM:<x>\r", 33);
	for (size_t i = 33; i < n; i++) {
		static const char junk[] = "ab\rc\nd\te\x80 \x01"
		                           "fgh ";

		diag[i] = junk[(i - 33) % (sizeof(junk) - 1)];
	}
	diag[n - 100] = '\0';
	memcpy(diag + n - 99, "AFTER-NUL", 10);
	r.diagnostic = diag;
	s = compose(&m, NULL);
	assert_null(strstr(s, "AFTER-NUL"));
	assert_null(strstr(s, "\r\n.\r\n"));
	p1 = part(s, 1);
	v = field(p1, "Diagnostic-Code");
	assert_non_null(v);
	assert_true(
	    strncmp(v,
	        "smtp; 550-5.7.1 evil . MAIL FROM:<x> ab c d e? fgh ab c",
	        55) == 0);
	/* Bounded, and the cut is visible. */
	assert_true(strlen(v) <= 2048 + 32);
	assert_string_equal(v + strlen(v) - 4, " ...");
	/* Folded into short lines, not one long one. */
	for (const char *l = strstr(p1, "Diagnostic-Code:");
	     *l == 'D' || *l == ' ';) {
		const char *e = strstr(l, "\r\n");

		assert_true(e - l <= 78);
		l = e + 2;
	}
	free(v);
	free(p1);
	text = unwrap(s);
	assert_non_null(strstr(text, "Remote server mx.example.net said: "
	                             "550-5.7.1 evil . MAIL FROM:<x>"));
	free(text);
	free(s);

	/* One 10 KB word: split, every line within 998. */
	memset(diag, 'Z', n);
	memcpy(diag, "550 ", 4);
	diag[n] = '\0';
	s = compose(&m, NULL);
	p1 = part(s, 1);
	v = field(p1, "Diagnostic-Code");
	assert_true(strlen(v) <= 2048 + 32);
	free(v);
	free(p1);
	free(s);
	free(diag);
}

/* A diagnostic with nothing printable in it (found by fuzzing). */
static void
test_blank_diagnostic(void **state)
{
	static const char *const blanks[] = {" ", "   ", "\r\n", "\x01\x02"};
	struct dsn_rcpt r = bob_failed;
	struct dsn_msg m = base_msg(&r, 1);

	(void)state;
	for (size_t i = 0; i < sizeof(blanks) / sizeof(blanks[0]); i++) {
		char *s, *p1, *v;

		r.diagnostic = blanks[i];
		s = compose(&m, NULL);
		p1 = part(s, 1);
		v = field(p1, "Diagnostic-Code");
		/* no field, or one with something in it: never a crash */
		assert_true(v == NULL || strlen(v) > 6);
		free(v);
		free(p1);
		free(s);
	}
}

static void
test_hostile_envelope(void **state)
{
	struct dsn_rcpt r = bob_failed;
	struct dsn_msg m = base_msg(&r, 1);
	char longaddr[2000], *s, *h;

	(void)state;
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	m.sender = "evil\r\nBcc: victim@example.com";
	m.reporting_mta = "mx\r\nX-Injected: 1";
	m.message_id = "id>\r\nX-Injected: 2";
	r.addr = longaddr;
	r.orcpt = longaddr;
	r.remote_mta = "host\r\nX-Injected: 3";
	s = compose(&m, NULL);
	h = top_header(s);
	assert_null(strstr(s, "\r\nBcc:"));
	assert_null(strstr(s, "\r\nX-Injected"));
	assert_field(h, "To", "<evil??Bcc: victim@example.com>");
	free(h);
	free(s);

	/* The null sender: a valid (empty) To, should a DSN be made. */
	m = base_msg(&bob_failed, 1);
	m.sender = "";
	s = compose(&m, NULL);
	assert_field(s, "To", "undisclosed-recipients:;");
	free(s);
}

static void
test_hostile_original(void **state)
{
	static const char head[] = "Subject: x\r\nX-Bare: a\nX-CR: b\rX-Long: ";
	static const char mid[] =
	    "\r\nX-Both: c\r\r\nbody\nline\rthree\r\n.\r\n";
	size_t n = sizeof(head) - 1 + 5000 + sizeof(mid) - 1 + 5000;
	char *orig = malloc(n), *body, *sq, *hs, *bs;
	size_t k = 0;

	(void)state;
	assert_non_null(orig);
	memcpy(orig + k, head, sizeof(head) - 1);
	k += sizeof(head) - 1;
	memset(orig + k, 'H', 5000);
	k += 5000;
	memcpy(orig + k, mid, sizeof(mid) - 1);
	k += sizeof(mid) - 1;
	memset(orig + k, 'B', 5000); /* no final line break either */
	k += 5000;
	hs = calloc(1, 5001);
	bs = calloc(1, 5001);
	memset(hs, 'H', 5000);
	memset(bs, 'B', 5000);

	/* The whole: line ends become CRLF, long lines are split. */
	assert_int_equal(
	    returned(SMTP_RET_FULL, DSN_FAILED, orig, n, &body), 'F');
	check_wire(body, strlen(body));
	assert_non_null(
	    strstr(body, "Subject: x\r\nX-Bare: a\r\nX-CR: b\r\nX-Long: "));
	/* A split header line continues as a folded line ("\r\r\n" is a
	 * bare CR and then a CRLF: an empty line, the end of the header). */
	assert_non_null(strstr(body, "HHH\r\n HHH"));
	assert_non_null(strstr(
	    body, "\r\nX-Both: c\r\n\r\nbody\r\nline\r\nthree\r\n.\r\nBBB"));
	/* A split body line does not get a space. */
	assert_non_null(strstr(body, "BBB\r\nBBB"));
	assert_null(strstr(body, "BBB\r\n BBB"));
	/* Nothing was lost in the splitting. */
	sq = squash(body);
	assert_non_null(strstr(sq, hs));
	assert_non_null(strstr(sq, bs));
	free(sq);
	free(body);

	/* The header alone, up to that empty line, split the same way. */
	assert_int_equal(
	    returned(SMTP_RET_HDRS, DSN_FAILED, orig, n, &body), 'H');
	check_wire(body, strlen(body));
	assert_non_null(strstr(body, "HHH\r\n HHH"));
	assert_non_null(strstr(body, "\r\nX-Both: c\r\n"));
	assert_null(strstr(body, "body"));
	assert_null(strstr(body, "BBB"));
	free(hs);
	free(bs);
	free(body);
	free(orig);
}

static void
test_boundary_not_in_content(void **state)
{
	struct dsn_msg m = base_msg(&bob_failed, 1);
	char *s1 = compose(&m, NULL), *b1 = boundary_of(s1), *s2, *b2, *orig;
	char *p;
	size_t n;

	(void)state;
	/* Bounce a message that carries the first DSN's boundary lines. */
	n = strlen(s1) + 64;
	orig = malloc(n);
	snprintf(
	    orig, n, "Subject: loop\r\n\r\n--%s\r\n%s--%s--\r\n", b1, s1, b1);
	m.original = orig;
	m.original_len = strlen(orig);
	m.ret = SMTP_RET_FULL;
	s2 = compose(&m, NULL);
	b2 = boundary_of(s2);
	assert_string_not_equal(b1, b2);
	/* The new boundary is nowhere but in the delimiters. */
	p = strstr(s2, "\r\n\r\n");
	for (int count = 0;; count++) {
		p = strstr(p + 1, b2);
		if (p == NULL) {
			assert_int_equal(count, 4);
			break;
		}
		assert_memory_equal(p - 4, "\r\n--", 4);
	}
	/* And the old one survives inside the returned message. */
	p = part(s2, 2);
	assert_non_null(strstr(p, b1));
	free(p);

	/* The same inputs give the same boundary; another time, another. */
	{
		char *s3 = compose(&m, NULL), *b3 = boundary_of(s3);

		assert_string_equal(b2, b3);
		free(b3);
		free(s3);
		m.now++;
		s3 = compose(&m, NULL);
		b3 = boundary_of(s3);
		assert_string_not_equal(b2, b3);
		free(b3);
		free(s3);
	}
	free(orig);
	free(b1);
	free(b2);
	free(s1);
	free(s2);
}

static void
test_empty_original(void **state)
{
	struct dsn_rcpt r = bob_failed;
	struct dsn_msg m = base_msg(&r, 1);
	char *s, *v;

	(void)state;
	m.original = NULL;
	m.original_len = 0;
	r.remote_mta = "";
	r.diagnostic = "";
	r.last_attempt = 0;
	s = compose(&m, NULL);
	v = field(s, "Subject");
	assert_string_equal(v, "Undeliverable");
	free(v);
	v = part(s, 2);
	assert_non_null(v);
	free(v);
	free(s);
}

/* A small LCG, so that the random test is the same on every run. */
static unsigned
rnd(uint32_t *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) & 0x7fff;
}

/* Random bytes everywhere, fixed seed: the wire invariants always hold. */
static void
test_random(void **state)
{
	static const char alphabet[] = "\r\n\r\n\t -:;+=.<>\"?aZ0\x80\xff\x01";
	uint32_t seed = 12345;
	char orig[3000], diag[1500], addr[300], subj[] = "Subject: ";

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		struct dsn_rcpt r[3] = {bob_failed, bob_failed, bob_failed};
		struct dsn_msg m = base_msg(r, 3);
		size_t olen = 0;
		char *s;

		memcpy(orig, subj, sizeof(subj) - 1);
		olen = sizeof(subj) - 1 + rnd(&seed) % (sizeof(orig) - 10);
		for (size_t i = sizeof(subj) - 1; i < olen; i++)
			orig[i] =
			    rnd(&seed) % 4 == 0
			        ? alphabet[rnd(&seed) % (sizeof(alphabet) - 1)]
			        : (char)rnd(&seed);
		for (size_t i = 0; i < sizeof(diag) - 1; i++)
			diag[i] =
			    (char)(rnd(&seed) % 3 == 0 ? ' '
			                               : rnd(&seed) % 255 + 1);
		diag[sizeof(diag) - 1] = '\0';
		for (size_t i = 0; i < sizeof(addr) - 1; i++)
			addr[i] = (char)(rnd(&seed) % 255 + 1);
		addr[sizeof(addr) - 1] = '\0';
		for (int i = 0; i < 3; i++) {
			r[i].action = (enum dsn_action)(rnd(&seed) % 4);
			r[i].diagnostic = diag + rnd(&seed) % 1000;
		}
		r[1].addr = addr;
		r[2].orcpt = addr + rnd(&seed) % 100;
		m.envid = addr + rnd(&seed) % 250;
		m.ret = (int)(rnd(&seed) % 3);
		m.original = orig;
		m.original_len = olen;
		s = compose(&m, NULL);
		free(s);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header),
	    cmocka_unit_test(test_three_parts),
	    cmocka_unit_test(test_recipients),
	    cmocka_unit_test(test_subject),
	    cmocka_unit_test(test_subject_long),
	    cmocka_unit_test(test_envid_orcpt),
	    cmocka_unit_test(test_ret),
	    cmocka_unit_test(test_no_original),
	    cmocka_unit_test(test_8bit_original),
	    cmocka_unit_test(test_huge_original),
	    cmocka_unit_test(test_huge_header),
	    cmocka_unit_test(test_hostile_diagnostic),
	    cmocka_unit_test(test_blank_diagnostic),
	    cmocka_unit_test(test_hostile_envelope),
	    cmocka_unit_test(test_hostile_original),
	    cmocka_unit_test(test_boundary_not_in_content),
	    cmocka_unit_test(test_empty_original),
	    cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
