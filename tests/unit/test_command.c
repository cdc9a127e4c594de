/*
 * test_command.c - SMTP command and argument parsing
 * (src/smtp/command.c): paths, ESMTP parameters, xtext, BDAT sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/command.h"

static const struct smtp_ext all = {1, 1, 1, 1, 1, 1};
static const struct smtp_ext none = {0, 0, 0, 0, 0, 0};
/* what a session offers before STARTTLS: everything but REQUIRETLS */
static const struct smtp_ext plain = {1, 1, 1, 1, 1, 0};

struct path_case {
	const char *arg;
	int want;
	const char *addr;
};

static const struct path_case mail_cases[] = {
    {"FROM:<a@example.org>", SMTP_PARSE_OK, "a@example.org"},
    {"from:<A.B@Example.ORG>", SMTP_PARSE_OK, "A.B@example.org"},
    {"FROM: <a@example.org>", SMTP_PARSE_OK, "a@example.org"},
    {"FROM:<>", SMTP_PARSE_OK, ""},
    {"FROM:<\"john doe\"@example.org>", SMTP_PARSE_OK,
        "\"john doe\"@example.org"},
    {"FROM:<@relay.example,@b.example:u@d.example>", SMTP_PARSE_OK,
        "u@d.example"},
    {"FROM:<u@[127.0.0.1]>", SMTP_PARSE_OK, "u@[127.0.0.1]"},
    {"FROM:<u@[IPv6:::1]>", SMTP_PARSE_OK, "u@[IPv6:::1]"},
    {"FROM:a@example.org", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<a@example.org", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<a..b@example.org>", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<.a@example.org>", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<a@example..org>", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<a@>", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<postmaster>", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<a b@example.org>", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<a@example.org>x", SMTP_PARSE_SYNTAX, NULL},
    {"TO:<a@example.org>", SMTP_PARSE_SYNTAX, NULL},
    /* SMTPUTF8: UTF-8 only with the parameter */
    {"FROM:<j\xc3\xb6rg@example.org> SMTPUTF8", SMTP_PARSE_OK,
        "j\xc3\xb6rg@example.org"},
    {"FROM:<j\xc3\xb6rg@example.org>", SMTP_PARSE_UTF8, NULL},
    {"FROM:<j\xc3@example.org> SMTPUTF8", SMTP_PARSE_SYNTAX, NULL},
    {"FROM:<\xc0\xafx@example.org> SMTPUTF8", SMTP_PARSE_SYNTAX, NULL},
};

static void
test_mail_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]);
	     i++) {
		const struct path_case *c = &mail_cases[i];
		struct smtp_mail_args m;
		const char *why = NULL;
		int rc =
		    smtp_mail_parse(c->arg, strlen(c->arg), &all, &m, &why);

		if (rc != c->want)
			fail_msg("%s: got %d want %d (%s)", c->arg, rc, c->want,
			    why ? why : "");
		if (rc == SMTP_PARSE_OK)
			assert_string_equal(m.path.addr, c->addr);
	}
}

static void
test_rcpt_paths(void **state)
{
	struct smtp_rcpt_args r;
	const char *why;

	(void)state;
	assert_int_equal(smtp_rcpt_parse("TO:<Postmaster>", 15, &all, &r, &why),
	    SMTP_PARSE_OK);
	assert_true(r.path.postmaster);
	assert_int_equal(
	    smtp_rcpt_parse("TO:<>", 5, &all, &r, &why), SMTP_PARSE_SYNTAX);
	assert_int_equal(
	    smtp_rcpt_parse("TO:<u@x.example>", 16, &all, &r, &why),
	    SMTP_PARSE_OK);
	assert_string_equal(r.path.domain, "x.example");
}

static void
test_lengths(void **state)
{
	char arg[700], local[80], domain[300];
	struct smtp_mail_args m;
	const char *why;

	(void)state;
	memset(local, 'l', sizeof(local));
	local[64] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<%s@example.org>", local);
	assert_int_equal(
	    smtp_mail_parse(arg, strlen(arg), &all, &m, &why), SMTP_PARSE_OK);
	local[64] = 'l';
	local[65] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<%s@example.org>", local);
	assert_int_equal(smtp_mail_parse(arg, strlen(arg), &all, &m, &why),
	    SMTP_PARSE_TOOLONG);
	/* domain of 256 octets: labels of 50 */
	domain[0] = '\0';
	for (int i = 0; i < 5; i++)
		strcat(domain,
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(domain, "example");
	snprintf(arg, sizeof(arg), "FROM:<a@%s>", domain);
	assert_true(strlen(domain) > 255);
	assert_int_equal(smtp_mail_parse(arg, strlen(arg), &all, &m, &why),
	    SMTP_PARSE_TOOLONG);
}

struct param_case {
	const char *arg;
	const struct smtp_ext *ext;
	int want;
};

static const struct param_case params[] = {
    {"FROM:<a@b.example> SIZE=1000", &all, SMTP_PARSE_OK},
    {"FROM:<a@b.example> SIZE=1000", &none, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> SIZE=-1", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> SIZE=99999999999999999999999", &all,
        SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> SIZE=1 SIZE=2", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> BODY=8BITMIME", &all, SMTP_PARSE_OK},
    {"FROM:<a@b.example> BODY=7bit", &all, SMTP_PARSE_OK},
    {"FROM:<a@b.example> BODY=BINARYMIME", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> RET=HDRS ENVID=abc+2Bdef", &all, SMTP_PARSE_OK},
    {"FROM:<a@b.example> RET=ALL", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> ENVID=x+0Dy", &all, SMTP_PARSE_BADVALUE},
    {"FROM:<a@b.example> ENVID=x+0Ay", &all, SMTP_PARSE_BADVALUE},
    {"FROM:<a@b.example> ENVID=x+00y", &all, SMTP_PARSE_BADVALUE},
    {"FROM:<a@b.example> ENVID=x+4", &all, SMTP_PARSE_BADVALUE},
    {"FROM:<a@b.example> ENVID=x+zz", &all, SMTP_PARSE_BADVALUE},
    {"FROM:<a@b.example> SMTPUTF8=yes", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> XFOO=1", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> AUTH=<>", &all, SMTP_PARSE_OK},
    /* RFC 8689: offered inside TLS only, no value, once */
    {"FROM:<a@b.example> REQUIRETLS", &all, SMTP_PARSE_OK},
    {"FROM:<a@b.example> requiretls", &all, SMTP_PARSE_OK},
    {"FROM:<a@b.example> REQUIRETLS", &plain, SMTP_PARSE_NEEDTLS},
    {"FROM:<a@b.example> REQUIRETLS", &none, SMTP_PARSE_NEEDTLS},
    {"FROM:<a@b.example> REQUIRETLS=YES", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> REQUIRETLS REQUIRETLS", &all, SMTP_PARSE_BADPARAM},
    {"FROM:<a@b.example> SIZE=10 REQUIRETLS BODY=8BITMIME", &all,
        SMTP_PARSE_OK},
};

static void
test_mail_params(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		struct smtp_mail_args m;
		const char *why = NULL;
		int rc = smtp_mail_parse(params[i].arg, strlen(params[i].arg),
		    params[i].ext, &m, &why);

		if (rc != params[i].want)
			fail_msg("%s: got %d want %d", params[i].arg, rc,
			    params[i].want);
	}
}

/* The flag itself: set only by the parameter. */
static void
test_mail_requiretls(void **state)
{
	static const char with[] = "FROM:<a@b.example> SIZE=10 REQUIRETLS";
	static const char without[] = "FROM:<a@b.example> SIZE=10";
	struct smtp_mail_args m;
	const char *why = NULL;

	(void)state;
	assert_int_equal(
	    smtp_mail_parse(with, strlen(with), &all, &m, &why), SMTP_PARSE_OK);
	assert_int_equal(m.requiretls, 1);
	assert_int_equal(
	    smtp_mail_parse(without, strlen(without), &all, &m, &why),
	    SMTP_PARSE_OK);
	assert_int_equal(m.requiretls, 0);
	assert_int_equal(smtp_mail_parse(with, strlen(with), &plain, &m, &why),
	    SMTP_PARSE_NEEDTLS);
	assert_non_null(why);
	assert_non_null(strstr(why, "STARTTLS"));
}

static void
test_rcpt_params(void **state)
{
	static const struct {
		const char *arg;
		int want;
		unsigned notify;
	} t[] = {
	    {"TO:<u@x.example> NOTIFY=NEVER", SMTP_PARSE_OK, SMTP_NOTIFY_NEVER},
	    {"TO:<u@x.example> NOTIFY=SUCCESS,FAILURE,DELAY", SMTP_PARSE_OK,
	        SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY},
	    {"TO:<u@x.example> NOTIFY=NEVER,DELAY", SMTP_PARSE_BADPARAM, 0},
	    {"TO:<u@x.example> NOTIFY=SUCCESS,", SMTP_PARSE_BADPARAM, 0},
	    {"TO:<u@x.example> NOTIFY=", SMTP_PARSE_BADPARAM, 0},
	    {"TO:<u@x.example> ORCPT=rfc822;u+40x.example", SMTP_PARSE_OK, 0},
	    {"TO:<u@x.example> ORCPT=rfc822;u+0D+0Ax", SMTP_PARSE_BADVALUE, 0},
	    {"TO:<u@x.example> ORCPT=nosemicolon", SMTP_PARSE_BADVALUE, 0},
	};
	struct smtp_rcpt_args r;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc =
		    smtp_rcpt_parse(t[i].arg, strlen(t[i].arg), &all, &r, &why);

		if (rc != t[i].want)
			fail_msg("%s: got %d want %d", t[i].arg, rc, t[i].want);
		if (rc == SMTP_PARSE_OK && t[i].notify)
			assert_int_equal(r.notify, t[i].notify);
	}
	{
		static const char arg[] =
		    "TO:<u@x.example> ORCPT=rfc822;u+40x.example";

		assert_int_equal(
		    smtp_rcpt_parse(arg, sizeof(arg) - 1, &all, &r, &why),
		    SMTP_PARSE_OK);
	}
	assert_string_equal(r.orcpt, "rfc822;u@x.example");
}

static void
test_xtext_round_trip(void **state)
{
	char enc[64], dec[64];

	(void)state;
	assert_true(smtp_xtext_encode("a+b=c d", enc, sizeof(enc)) > 0);
	assert_string_equal(enc, "a+2Bb+3Dc+20d");
	assert_int_equal(
	    smtp_xtext_decode(enc, strlen(enc), dec, sizeof(dec)), 7);
	assert_string_equal(dec, "a+b=c d");
	assert_int_equal(smtp_xtext_encode("long", enc, 3), -1);
}

static void
test_bdat(void **state)
{
	static const struct {
		const char *arg;
		int ok;
		uint64_t size;
		int last;
	} t[] = {
	    {"0", 1, 0, 0},
	    {"1 LAST", 1, 1, 1},
	    {"5 last", 1, 5, 1},
	    {"18446744073709551615", 1, UINT64_MAX, 0},
	    {"18446744073709551616", 0, 0, 0},
	    {"99999999999999999999", 0, 0, 0},
	    {"-1", 0, 0, 0},
	    {"+5", 0, 0, 0},
	    {" 5", 0, 0, 0},
	    {"5 LASTX", 0, 0, 0},
	    {"5  LAST", 0, 0, 0},
	    {"", 0, 0, 0},
	    {"abc", 0, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t size = 0;
		int last = 0;
		int rc =
		    smtp_bdat_parse(t[i].arg, strlen(t[i].arg), &size, &last);

		if ((rc == 0) != t[i].ok)
			fail_msg("BDAT \"%s\": rc %d", t[i].arg, rc);
		if (rc == 0) {
			assert_true(size == t[i].size);
			assert_int_equal(last, t[i].last);
		}
	}
}

static void
test_verbs_and_helo(void **state)
{
	struct smtp_cmd c;
	char helo[SMTP_HELO_MAX + 1];
	const char *why;

	(void)state;
	smtp_cmd_parse("ehlo  client.example  ", 22, &c);
	assert_int_equal(c.verb, SMTP_VERB_EHLO);
	assert_int_equal(c.arg_len, strlen("client.example"));
	smtp_cmd_parse("StartTLS", 8, &c);
	assert_int_equal(c.verb, SMTP_VERB_STARTTLS);
	smtp_cmd_parse("MAILX FROM:<>", 13, &c);
	assert_int_equal(c.verb, SMTP_VERB_UNKNOWN);
	assert_int_equal(
	    smtp_helo_parse("[127.0.0.1]", 11, helo, sizeof(helo), &why), 0);
	assert_int_equal(smtp_helo_parse("", 0, helo, sizeof(helo), &why), -1);
	assert_int_equal(
	    smtp_helo_parse("a\tb", 3, helo, sizeof(helo), &why), -1);
	assert_int_equal(
	    smtp_helo_parse("[IPv6:::1]", 10, helo, sizeof(helo), &why), 0);
	assert_string_equal(helo, "[IPv6:::1]");
	assert_int_equal(
	    smtp_helo_parse("mx_1.Example-2.org", 18, helo, sizeof(helo), &why),
	    0);
	assert_string_equal(helo, "mx_1.Example-2.org");
	assert_int_equal(smtp_helo_parse("\xc3\xa9vil(x);\"y\"\x9b", 13, helo,
	                     sizeof(helo), &why),
	    0);
	assert_string_equal(helo, "??vil?x???y??");
}

/*
 * RFC 5321 4.1.1: SP separates a verb from its argument.  Any other byte
 * ends the verb and makes the line a syntax error; an AUTH-like line shows
 * at most "AUTH" and its mechanism, whatever the separator.
 */
static void
test_verb_separator_and_masking(void **state)
{
	static const struct {
		const char *line;
		enum smtp_verb verb;
		int bad;
		const char *shown;
	} t[] = {
	    {"AUTH PLAIN AGFsaWNlAHNlY3JldA==", SMTP_VERB_AUTH, 0,
	        "AUTH PLAIN"},
	    {"auth login", SMTP_VERB_AUTH, 0, "auth login"},
	    {"AUTH\tPLAIN AGFsaWNlAHNlY3JldA==", SMTP_VERB_AUTH, 1, "AUTH"},
	    {"AUTH\x01PLAIN AGFs", SMTP_VERB_AUTH, 1, "AUTH"},
	    {"AUTHPLAIN AGFsaWNlAHNlY3JldA==", SMTP_VERB_UNKNOWN, 0, "AUTH"},
	    {"  AUTH PLAIN AGFs", SMTP_VERB_UNKNOWN, 0, "  AUTH"},
	    {"\tAUTH PLAIN AGFs", SMTP_VERB_UNKNOWN, 0, "\tAUTH"},
	    {"AUTH", SMTP_VERB_AUTH, 0, "AUTH"},
	    {"AUTH ", SMTP_VERB_AUTH, 0, "AUTH "},
	    {"NOOP\tx", SMTP_VERB_NOOP, 1, "NOOP\tx"},
	    {"MAILFROM:<a@b>", SMTP_VERB_UNKNOWN, 0, "MAILFROM:<a@b>"},
	    {"MAIL FROM:<a@b>", SMTP_VERB_MAIL, 0, "MAIL FROM:<a@b>"},
	    {"QUIT.", SMTP_VERB_QUIT, 1, "QUIT."},
	    {"X-FOO bar", SMTP_VERB_UNKNOWN, 0, "X-FOO bar"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct smtp_cmd c;
		size_t len = strlen(t[i].line), shown;

		smtp_cmd_parse(t[i].line, len, &c);
		shown = smtp_cmd_public_len(t[i].line, len, &c);
		if (c.verb != t[i].verb || c.bad_separator != t[i].bad ||
		    shown != strlen(t[i].shown) ||
		    memcmp(t[i].line, t[i].shown, shown) != 0)
			fail_msg("%zu: verb %d bad %d shown %zu", i, c.verb,
			    c.bad_separator, shown);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mail_paths),
	    cmocka_unit_test(test_rcpt_paths),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_mail_params),
	    cmocka_unit_test(test_mail_requiretls),
	    cmocka_unit_test(test_rcpt_params),
	    cmocka_unit_test(test_xtext_round_trip),
	    cmocka_unit_test(test_bdat),
	    cmocka_unit_test(test_verbs_and_helo),
	    cmocka_unit_test(test_verb_separator_and_masking),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
