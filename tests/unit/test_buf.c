/*
 * test_buf.c - the bounded buffer (src/util/buf.c): the maximum holds,
 * and the first failure is remembered so that a composer checks once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

static void
test_bounded(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "12345678"), BUF_OK);
	assert_int_equal(buf_append(&b, "9", 1), BUF_FULL);
	assert_int_equal(buf_printf(&b, "%d", 9), BUF_FULL);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	buf_free(&b);
}

struct sticky_case {
	const char *name;
	size_t max;
	const char *appends[4]; /* NULL ends */
	int want;               /* buf_error() after all of them */
};

static const struct sticky_case cases[] = {
    {"all fit", 16, {"abc", "def", NULL}, BUF_OK},
    {"exactly full", 6, {"abc", "def", NULL}, BUF_OK},
    {"second too long", 4, {"abc", "def", NULL}, BUF_FULL},
    /* a later append that fits does not clear the failure */
    {"failure then fit", 4, {"abc", "defgh", "d", NULL}, BUF_FULL},
    {"first too long", 2, {"abc", NULL}, BUF_FULL},
};

static void
test_sticky(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sticky_case *c = &cases[i];
		struct buf b;

		buf_init(&b, c->max);
		for (size_t k = 0; c->appends[k] != NULL; k++)
			buf_puts(&b, c->appends[k]);
		if (buf_error(&b) != c->want)
			fail_msg("%s: error %d want %d", c->name, buf_error(&b),
			    c->want);
		buf_free(&b);
	}
}

static void
test_error_lifetime(void **state)
{
	struct buf b;
	char *p;

	(void)state;
	buf_init(&b, 4);
	assert_int_equal(buf_error(&b), BUF_OK);
	buf_puts(&b, "too long");
	assert_int_equal(buf_error(&b), BUF_FULL);
	/* reset empties but keeps the error: it belongs to the composition */
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_error(&b), BUF_FULL);
	assert_int_equal(buf_puts(&b, "ok"), BUF_OK);
	assert_int_equal(buf_error(&b), BUF_FULL);
	/* steal hands the bytes over and keeps it too */
	p = buf_steal(&b, NULL);
	free(p);
	assert_int_equal(buf_error(&b), BUF_FULL);
	/* free and init start afresh */
	buf_free(&b);
	assert_int_equal(buf_error(&b), BUF_OK);
	buf_init(&b, 4);
	assert_int_equal(buf_error(&b), BUF_OK);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_sticky),
	    cmocka_unit_test(test_error_lifetime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
