/*
 * test_header.c - finding one header field of a stored message
 * (src/smtp/header.c): a table of messages, the field asked for and the
 * value expected, including folded, missing, hostile and cut values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/header.h"

struct header_case {
	const char *msg;
	const char *name;
	size_t outlen;
	const char *want; /* NULL: not found */
};

static const struct header_case header_cases[] = {
    {"Subject: hello\r\n\r\nbody\r\n", "Subject", 100, "hello"},
    {"subject:hello\r\n\r\n", "SUBJECT", 100, "hello"},
    {"Subject   :  spaced  \r\n\r\n", "Subject", 100, "spaced"},
    /* folded: the CRLF goes, the white space stays */
    {"Subject: one\r\n two\r\n\tthree\r\nTo: x\r\n\r\n", "Subject", 100,
        "one two\tthree"},
    /* the first of two */
    {"Subject: a\r\nSubject: b\r\n\r\n", "Subject", 100, "a"},
    /* only the header section counts */
    {"From: a\r\n\r\nSubject: in the body\r\n", "Subject", 100, NULL},
    {"From: a\r\n", "Subject", 100, NULL},
    /* a field whose name only starts with the one asked for */
    {"Subject-Extra: no\r\n\r\n", "Subject", 100, NULL},
    /* a continuation of another field is not a field */
    {"X-A: a\r\n Subject: no\r\n\r\n", "Subject", 100, NULL},
    /* no body, no empty line, no final CRLF */
    {"Subject: last", "Subject", 100, "last"},
    /* controls become spaces; cut to the buffer */
    {"Subject: a\x01"
     "b\r\n\r\n",
        "Subject", 100, "a b"},
    {"Subject: abcdefgh\r\n\r\n", "Subject", 5, "abcd"},
    {"Subject:\r\n\r\n", "Subject", 100, ""},
    {"", "Subject", 100, NULL},
};

static void
test_find(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]);
	     i++) {
		const struct header_case *c = &header_cases[i];
		char out[128];
		long n = header_find(
		    c->msg, strlen(c->msg), c->name, out, c->outlen);

		if (c->want == NULL) {
			assert_int_equal(n, -1);
			continue;
		}
		assert_int_equal(n, (long)strlen(c->want));
		assert_string_equal(out, c->want);
	}
}

static void
test_msgid(void **state)
{
	static const struct {
		const char *msg, *want;
	} cases[] = {
	    {"Message-ID: <a@b>\r\n\r\n", "<a@b>"},
	    {"Message-Id:\r\n <folded@b.example>\r\n\r\n",
	        "<folded@b.example>"},
	    {"Message-ID: (comment) <x@y> (more)\r\n\r\n", "<x@y>"},
	    {"Message-ID: no-brackets@host\r\n\r\n", "no-brackets@host"},
	    {"Message-ID:\r\n\r\n", NULL},
	    {"Subject: x\r\n\r\n", NULL},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long n = header_msgid(
		    cases[i].msg, strlen(cases[i].msg), out, sizeof(out));

		if (cases[i].want == NULL) {
			assert_int_equal(n, -1);
			continue;
		}
		assert_int_equal(n, (long)strlen(cases[i].want));
		assert_string_equal(out, cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_msgid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
