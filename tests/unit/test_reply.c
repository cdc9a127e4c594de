/*
 * test_reply.c - the client's SMTP reply parser (src/smtp/reply.c)
 * against well-formed and hostile replies, fed whole and byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/reply.h"

/* Feed in chunks of step bytes, as a socket might deliver them. */
static enum reply_status
feed(struct reply *r, const char *in, size_t len, size_t step, size_t *used)
{
	size_t have = 0, off = 0;
	enum reply_status st = REPLY_MORE;

	reply_init(r);
	*used = 0;
	while (st == REPLY_MORE && have < len) {
		size_t c;

		have = have + step > len ? len : have + step;
		st = reply_parse(r, in + off, have - off, &c);
		off += c;
	}
	*used = off;
	return st;
}

static void
test_good(void **state)
{
	static const char ehlo[] = "250-mx.example Hello\r\n250-SIZE 1000\r\n"
	                           "250-PIPELINING\r\n250 STARTTLS\r\nNEXT";
	struct reply r;
	size_t used;

	(void)state;
	for (size_t step = 1; step < sizeof(ehlo); step += 7) {
		assert_int_equal(
		    feed(&r, ehlo, sizeof(ehlo) - 1, step, &used), REPLY_OK);
		assert_int_equal(r.code, 250);
		assert_int_equal(r.lines, 4);
		assert_int_equal(used, sizeof(ehlo) - 1 - 4);
		assert_non_null(strstr(r.text, "STARTTLS"));
	}
	assert_int_equal(
	    feed(&r, "250 2.1.0 Sender OK\r\n", 21, 100, &used), REPLY_OK);
	assert_string_equal(r.enh, "2.1.0");
	assert_string_equal(r.text, "Sender OK");
	assert_int_equal(
	    feed(&r, "354 Go ahead\r\n", 14, 100, &used), REPLY_OK);
	assert_string_equal(r.enh, "");
	assert_int_equal(feed(&r, "250\r\n", 5, 100, &used), REPLY_OK);
	assert_int_equal(
	    feed(&r, "451 4.7.0 Try later\r\n", 21, 3, &used), REPLY_OK);
	assert_string_equal(r.enh, "4.7.0");
	/* an enhanced code of the wrong class is text, not a code */
	assert_int_equal(
	    feed(&r, "550 2.1.0 odd\r\n", 15, 100, &used), REPLY_OK);
	assert_string_equal(r.enh, "");
}

static void
test_hostile(void **state)
{
	static const char *bad[] = {
	    "25O Hello\r\n",
	    "250Hello\r\n",
	    "650 out of range\r\n",
	    "250-a\r\n251 b\r\n",
	    "250 bare lf\n",
	    "2\r\n",
	};
	struct reply r;
	size_t used;
	char *big;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (feed(&r, bad[i], strlen(bad[i]), 100, &used) != REPLY_ERROR)
			fail_msg("accepted: %s", bad[i]);
	/* a line over 512 octets */
	big = malloc(2000);
	memset(big, 'x', 2000);
	memcpy(big, "250 ", 4);
	assert_int_equal(feed(&r, big, 2000, 64, &used), REPLY_ERROR);
	/* an endless multi-line reply: stopped at REPLY_LINES_MAX */
	for (size_t i = 0; i + 8 <= 2000; i += 8)
		memcpy(big + i, "250-xx\r\n", 8);
	{
		size_t len = 2000, off = 0, c;
		enum reply_status st = REPLY_MORE;

		reply_init(&r);
		for (int round = 0; round < 10 && st == REPLY_MORE; round++) {
			st = reply_parse(&r, big + off, len - off, &c);
			off += c;
			if (off == len)
				off = 0; /* the server never stops */
		}
		assert_int_equal(st, REPLY_ERROR);
		assert_true(r.lines <= REPLY_LINES_MAX + 1);
	}
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
