/*
 * test_crlf_scan.c - the one-pass scan of message text
 * (src/util/crlf_scan.c): a table of the cases that decide (bare CR,
 * bare LF, NUL, a CR as the last byte, a dot at a line start, a line at
 * and over the limit), then every text of a small alphabet against a
 * byte-by-byte reference, at every alignment the 16-octet loop sees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/crlf_scan.h"

struct scan_case {
	const char *text;
	size_t line_max;
	unsigned flags;
	enum crlf_stop why;
	size_t stop;
	size_t lines;
};

#define NOMAX SIZE_MAX
#define DOT CRLF_SCAN_DOT

static const struct scan_case cases[] = {
    {"", NOMAX, DOT, CRLF_END, 0, 0}, {"abc", NOMAX, DOT, CRLF_END, 3, 0},
    {"abc\r\n", NOMAX, DOT, CRLF_END, 5, 5},
    {"abc\r\ndef\r\nxy", NOMAX, DOT, CRLF_END, 12, 10},
    /* a CR at the very end: maybe the start of a CRLF */
    {"abc\r", NOMAX, DOT, CRLF_END, 4, 0}, {"\r", NOMAX, DOT, CRLF_END, 1, 0},
    /* bare CR, bare LF, NUL */
    {"ab\rc\r\n", NOMAX, DOT, CRLF_BAD, 2, 0},
    {"ab\r\r\n", NOMAX, DOT, CRLF_BAD, 2, 0},
    {"ab\nc\r\n", NOMAX, DOT, CRLF_BAD, 2, 0},
    {"\nabc", NOMAX, DOT, CRLF_BAD, 0, 0},
    {"ab\r\n\n", NOMAX, DOT, CRLF_BAD, 4, 4},
    {"ab\r\n\r\r\n", NOMAX, DOT, CRLF_BAD, 4, 4},
    {"a\0b\r\n", 3, DOT, CRLF_BAD, 1, 0},
    /* a dot at a line start, not the first line's */
    {".ab\r\n", NOMAX, DOT, CRLF_END, 5, 5},
    {"ab\r\n.\r\n", NOMAX, DOT, CRLF_DOT, 4, 4},
    {"ab\r\n.", NOMAX, DOT, CRLF_DOT, 4, 4},
    {"ab\r\n.", NOMAX, 0, CRLF_END, 5, 4},
    {"ab.\r\nc.d\r\n", NOMAX, DOT, CRLF_END, 10, 10},
    /* the line limit: octets before the CRLF */
    {"abc\r\nde\r\n", 3, 0, CRLF_END, 9, 9},
    {"ab\r\nabcd\r\n", 3, 0, CRLF_LONG, 4, 4},
    {"abcd\r\n", 3, 0, CRLF_LONG, 0, 0},
    {"ab\r\nabcdefg", 3, 0, CRLF_END, 11, 4}, /* the end is not measured */
};

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct scan_case *c = &cases[i];
		/* the NUL case is 5 octets; strlen would stop at it */
		size_t n =
		    c->why == CRLF_BAD && c->stop == 1 && c->text[1] == '\0'
		        ? 5
		        : strlen(c->text);
		struct crlf_scan r;

		crlf_scan(c->text, n, c->line_max, c->flags, &r);
		if (r.why != c->why || r.stop != c->stop || r.lines != c->lines)
			fail_msg("case %zu: why %d stop %zu lines %zu, want "
			         "%d %zu %zu",
			    i, (int)r.why, r.stop, r.lines, (int)c->why,
			    c->stop, c->lines);
	}
}

/* The reference: byte by byte, the rules as crlf_scan.h states them. */
static void
reference(const char *p, size_t n, size_t line_max, unsigned flags,
    struct crlf_scan *r)
{
	size_t bol = 0;

	for (size_t j = 0; j < n; j++) {
		if (p[j] == '\r' && j + 1 == n)
			break;
		if (p[j] == '\0' || p[j] == '\n' ||
		    (p[j] == '\r' && p[j + 1] != '\n')) {
			r->why = CRLF_BAD;
			r->stop = j;
			r->lines = bol;
			return;
		}
		if (p[j] != '\r')
			continue;
		if (j - bol > line_max) {
			r->why = CRLF_LONG;
			r->stop = r->lines = bol;
			return;
		}
		bol = ++j + 1;
		if ((flags & CRLF_SCAN_DOT) && bol < n && p[bol] == '.') {
			r->why = CRLF_DOT;
			r->stop = r->lines = bol;
			return;
		}
	}
	r->why = CRLF_END;
	r->stop = n;
	r->lines = bol;
}

/*
 * Texts of 40 octets, mostly plain with a few of the bytes that matter,
 * from a fixed seed, each scanned from every offset of a buffer so that
 * every byte falls at every place of a 16-octet block.
 */
static void
test_against_reference(void **state)
{
	static const char alphabet[] = "aaaaaaaaaaaaaa\r\n\r\n.\0";
	char text[40 + 16];
	unsigned seed = 12;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand_r(&seed) % 40);
		size_t off = (size_t)(rand_r(&seed) % 16);
		size_t line_max = (size_t)(rand_r(&seed) % 12);
		unsigned flags = (unsigned)(rand_r(&seed) % 2);
		struct crlf_scan r, want;

		if (rand_r(&seed) % 4 == 0)
			line_max = SIZE_MAX;
		for (size_t i = 0; i < n; i++) {
			/* two in three: CRLF-clean text with dots */
			size_t k =
			    (size_t)rand_r(&seed) % (sizeof(alphabet) - 1);
			text[off + i] = alphabet[k];
			if (round % 3 != 0 && text[off + i] != '.' &&
			    text[off + i] != 'a')
				text[off + i] = 'a';
		}
		if (round % 3 != 0)
			for (size_t i = 0; i + 1 < n; i += 7) {
				text[off + i] = '\r';
				text[off + i + 1] = '\n';
			}
		crlf_scan(text + off, n, line_max, flags, &r);
		reference(text + off, n, line_max, flags, &want);
		if (r.why != want.why || r.stop != want.stop ||
		    r.lines != want.lines)
			fail_msg("round %d: why %d stop %zu lines %zu, want "
			         "%d %zu %zu",
			    round, (int)r.why, r.stop, r.lines, (int)want.why,
			    want.stop, want.lines);
	}
}

/* A long plain text: one stop a line, the end found past many blocks. */
static void
test_long_text(void **state)
{
	size_t n = 80 * 1000;
	char *p = malloc(n);
	struct crlf_scan r;

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' : 'x';
	crlf_scan(p, n, 78, CRLF_SCAN_DOT, &r);
	assert_int_equal(r.why, CRLF_END);
	assert_int_equal(r.lines, n);
	crlf_scan(p, n, 77, 0, &r);
	assert_int_equal(r.why, CRLF_LONG);
	assert_int_equal(r.stop, 0);
	p[80 * 600] = '.';
	p[80 * 900 + 5] = '\0';
	crlf_scan(p, n, SIZE_MAX, CRLF_SCAN_DOT, &r);
	assert_int_equal(r.why, CRLF_DOT);
	assert_int_equal(r.stop, 80 * 600);
	crlf_scan(p, n, SIZE_MAX, 0, &r);
	assert_int_equal(r.why, CRLF_BAD);
	assert_int_equal(r.stop, 80 * 900 + 5);
	assert_int_equal(r.lines, 80 * 900);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_against_reference),
	    cmocka_unit_test(test_long_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
