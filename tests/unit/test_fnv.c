/*
 * test_fnv.c - FNV-1a (src/util/fnv.c) against the reference values of
 * the FNV authors' test suite; the spool's stored checksums depend on
 * fnv_64() never changing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/fnv.h"

struct fnv_case {
	const char *in;
	uint32_t h32;
	uint64_t h64;
};

static const struct fnv_case cases[] = {
    {"", 0x811c9dc5u, 0xcbf29ce484222325ull},
    {"a", 0xe40c292cu, 0xaf63dc4c8601ec8cull},
    {"b", 0xe70c2de5u, 0xaf63df4c8601f1a5ull},
    {"foo", 0xa9f37ed7u, 0xdcb27518fed9d577ull},
    {"foobar", 0xbf9cf968u, 0x85944171f73967e8ull},
};

static void
test_reference_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fnv_case *c = &cases[i];
		size_t n = strlen(c->in);

		if (fnv_32(FNV_32_INIT, c->in, n) != c->h32)
			fail_msg("fnv_32(\"%s\")", c->in);
		if (fnv_32_str(c->in) != c->h32)
			fail_msg("fnv_32_str(\"%s\")", c->in);
		if (fnv_64(c->in, n) != c->h64)
			fail_msg("fnv_64(\"%s\")", c->in);
	}
}

static void
test_continued_and_lower(void **state)
{
	(void)state;
	/* a hash continued over pieces is the hash of the whole */
	assert_int_equal(fnv_32(fnv_32(FNV_32_INIT, "foo", 3), "bar", 3),
	    fnv_32_str("foobar"));
	/* case-blind: ASCII letters only */
	assert_int_equal(fnv_32_lower("FooBAR"), fnv_32_str("foobar"));
	assert_int_equal(
	    fnv_32_lower("x-1.EXAMPLE"), fnv_32_str("x-1.example"));
	assert_int_not_equal(fnv_32_lower("\xc4"), fnv_32_str("\xe4"));
	/* bytes above 0x7f count as themselves, not as negative chars */
	assert_int_equal(fnv_32(FNV_32_INIT, "\xff", 1), fnv_32_str("\xff"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reference_values),
	    cmocka_unit_test(test_continued_and_lower),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
