/*
 * test_smtp_client.c - the SMTP client's content encoding
 * (smtp_client_encode): what goes on the wire is CRLF only, dot-stuffed
 * for DATA, and always ends in CRLF, whatever the stored bytes are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "deliver/smtp_client.h"

struct encode_case {
	const char *in;
	int dotstuff;
	const char *out;
};

static const struct encode_case encode_cases[] = {
    {"a\r\nb\r\n", 0, "a\r\nb\r\n"},
    {"a\r\nb\r\n", 1, "a\r\nb\r\n"},
    /* a final CRLF is added */
    {"no end", 0, "no end\r\n"},
    {"", 0, ""},
    /* bare LF and bare CR become CRLF */
    {"a\nb\n", 0, "a\r\nb\r\n"},
    {"a\rb\r", 0, "a\r\nb\r\n"},
    {"a\r\r\nb", 0, "a\r\n\r\nb\r\n"},
    {"x\n\ny", 0, "x\r\n\r\ny\r\n"},
    /* dot-stuffing at every line start, including the first */
    {".a\r\n..b\r\nc.d\r\n.\r\n", 1, "..a\r\n...b\r\nc.d\r\n..\r\n"},
    {".a\r\n", 0, ".a\r\n"},
    /* a dot after a bare LF is at a line start too */
    {"x\n.y", 1, "x\r\n..y\r\n"},
    /* the smuggling ending never survives as such */
    {"a\n.\nb", 1, "a\r\n..\r\nb\r\n"},
    {"a\r\n.\rMAIL FROM:<x>\r\n", 1, "a\r\n..\r\nMAIL FROM:<x>\r\n"},
};

static void
test_encode_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]);
	     i++) {
		const struct encode_case *c = &encode_cases[i];
		struct evbuffer *out = evbuffer_new();
		long n =
		    smtp_client_encode(c->in, strlen(c->in), c->dotstuff, out);
		size_t len = evbuffer_get_length(out);
		char *got = calloc(1, len + 1);

		assert_non_null(got);
		evbuffer_remove(out, got, len);
		assert_int_equal(n, (long)strlen(c->out));
		assert_string_equal(got, c->out);
		free(got);
		evbuffer_free(out);
	}
}

/* Whatever the input, no bare CR or LF leaves and the end is CRLF. */
static void
test_encode_random(void **state)
{
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		char in[64];
		size_t n = (size_t)(round % 63) + 1;
		struct evbuffer *out = evbuffer_new();
		unsigned char *p;
		size_t len;

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = "ab.\r\n"[(seed >> 16) % 5];
		}
		assert_true(smtp_client_encode(in, n, 1, out) >= 0);
		len = evbuffer_get_length(out);
		p = evbuffer_pullup(out, -1);
		assert_true(len >= 2);
		assert_memory_equal(p + len - 2, "\r\n", 2);
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '\r')
				assert_true(i + 1 < len && p[i + 1] == '\n');
			if (p[i] == '\n')
				assert_true(i > 0 && p[i - 1] == '\r');
			/* a line of just "." would end DATA early */
			if (p[i] == '.' && (i == 0 || p[i - 1] == '\n'))
				assert_true(i + 1 < len && p[i + 1] == '.');
		}
		evbuffer_free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_table),
	    cmocka_unit_test(test_encode_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
