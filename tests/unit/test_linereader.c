/*
 * test_linereader.c - the bounded CRLF line reader (src/smtp/linereader.c):
 * every kind of line ending, the length bound, and skipping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/linereader.h"

struct lr_case {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	size_t max;
	enum lr_status want;
	size_t linelen, consumed;
};

static const struct lr_case cases[] = {
    {"crlf", "EHLO x\r\nrest", 0, 510, LR_OK, 6, 8},
    {"empty line", "\r\n", 0, 510, LR_OK, 0, 2},
    {"no end yet", "EHLO x", 0, 510, LR_MORE, 0, 0},
    {"cr last", "EHLO x\r", 0, 510, LR_MORE, 0, 0},
    {"bare lf", "EHLO x\nMAIL", 0, 510, LR_BADEOL, 6, 7},
    {"bare cr mid", "EH\rLO\r\n", 0, 510, LR_BADEOL, 2, 3},
    {"cr cr lf", "a\r\r\n", 0, 510, LR_BADEOL, 1, 2},
    {"lf first", "\n", 0, 510, LR_BADEOL, 0, 1},
    {"exactly max", "abcd\r\n", 0, 4, LR_OK, 4, 6},
    {"max plus one", "abcde\r\n", 0, 4, LR_TOOLONG, 4, 0},
    {"too long no end", "abcdefgh", 0, 4, LR_TOOLONG, 4, 0},
    {"max then cr waiting", "abcd\r", 0, 4, LR_MORE, 0, 0},
    {"nul is data", "a\0b\r\n", 5, 510, LR_OK, 3, 5},
};

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct lr_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		size_t linelen = 0, consumed = 0;
		enum lr_status st =
		    linereader_next(c->in, len, c->max, &linelen, &consumed);

		if (st != c->want)
			fail_msg("%s: status %d want %d", c->name, st, c->want);
		if (st == LR_OK || st == LR_BADEOL) {
			if (linelen != c->linelen || consumed != c->consumed)
				fail_msg("%s: linelen %zu consumed %zu",
				    c->name, linelen, consumed);
		}
	}
}

static void
test_skip(void **state)
{
	int found;

	(void)state;
	assert_int_equal(linereader_skip("xxxx\r\nNEXT", 10, &found), 6);
	assert_true(found);
	/* a bare LF does not end the skipped line */
	assert_int_equal(linereader_skip("xx\nyy\r\nN", 8, &found), 7);
	assert_true(found);
	assert_int_equal(linereader_skip("xxxx", 4, &found), 4);
	assert_false(found);
	/* a trailing CR is kept: its LF may come with the next read */
	assert_int_equal(linereader_skip("xxx\r", 4, &found), 3);
	assert_false(found);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_skip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
