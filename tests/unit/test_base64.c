/*
 * test_base64.c - base64 (src/util/base64.c) both ways: RFC 4648's test
 * vectors, what SMTP AUTH sends, every kind of malformed input, and the
 * output bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/base64.h"

struct b64_case {
	const char *plain;
	size_t plen; /* 0: strlen */
	const char *encoded;
};

static const struct b64_case cases[] = {
    /* RFC 4648 section 10 */
    {"", 0, ""},
    {"f", 0, "Zg=="},
    {"fo", 0, "Zm8="},
    {"foo", 0, "Zm9v"},
    {"foob", 0, "Zm9vYg=="},
    {"fooba", 0, "Zm9vYmE="},
    {"foobar", 0, "Zm9vYmFy"},
    /* AUTH PLAIN's NULs (RFC 4616), LOGIN's prompts */
    {"\0user\0pass", 10, "AHVzZXIAcGFzcw=="},
    {"Username:", 0, "VXNlcm5hbWU6"},
    {"Password:", 0, "UGFzc3dvcmQ6"},
    /* the last two letters of the alphabet and 8-bit octets */
    {"\xfb\xff\xbf", 0, "+/+/"},
};

static void
test_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct b64_case *c = &cases[i];
		size_t plen = c->plen ? c->plen : strlen(c->plain);
		char enc[64], dec[64];
		int n;

		n = base64_encode(c->plain, plen, enc, sizeof(enc));
		if (n != (int)strlen(c->encoded) ||
		    strcmp(enc, c->encoded) != 0)
			fail_msg("encode %s: %d \"%s\"", c->encoded, n, enc);
		if ((size_t)n != BASE64_LEN(plen))
			fail_msg("BASE64_LEN(%zu) is not %d", plen, n);
		n = base64_decode(
		    c->encoded, strlen(c->encoded), dec, sizeof(dec));
		if (n != (int)plen || memcmp(dec, c->plain, plen) != 0 ||
		    dec[n] != '\0')
			fail_msg("decode %s: %d", c->encoded, n);
	}
}

/* Refused by the decoder: RFC 4954's syntax is padded standard base64. */
static const char *const bad[] = {
    "Zg",       /* no padding */
    "Zg=",      /* short padding */
    "Zm9",      /* not a multiple of 4 */
    "Zg===",    /* three pads, and length */
    "Z===",     /* three pads */
    "Z=g=",     /* padding inside */
    "Zg==Zg==", /* padding before the end */
    "=Zg=",     /* padding first */
    "Zm 9",     /* a space */
    "Zm9\n",    /* a line end */
    "Zm-_",     /* the URL-safe alphabet */
    "Zm9*",     /* outside any alphabet */
};

static void
test_malformed(void **state)
{
	char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)) !=
		    -1)
			fail_msg("accepted \"%s\"", bad[i]);
	/* a NUL inside the line */
	assert_int_equal(base64_decode("Zm\0v", 4, out, sizeof(out)), -1);
}

static void
test_bounds(void **state)
{
	char out[8];

	(void)state;
	/* "foobar" needs 6 octets and the NUL */
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 7), 6);
	assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 6), -1);
	assert_int_equal(base64_decode("", 0, out, 0), -1);
	/* "Zm9vYmFy" needs 8 octets and the NUL */
	memset(out, 'x', sizeof(out));
	assert_int_equal(base64_encode("foobar", 6, out, 8), -1);
	assert_string_equal(out, "");
	assert_int_equal(base64_encode("foobar", 6, out, 0), -1);
	assert_int_equal(out[1], 'x'); /* nothing written at all */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
