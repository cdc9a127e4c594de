/*
 * test_content.c - message content validation and header filtering
 * (src/server/content.c), for both the DATA path (whole lines) and the
 * BDAT path (raw chunks split anywhere), with the body kept after the
 * header or streamed to a sink in small pieces (as to the spool).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/content.h"

static const struct content_limits limits = {
    .max_size = 4096,
    .max_header = 512,
    .max_hops = 3,
};

/* Feed text through the DATA path: one content_line_part() per line. */
static enum content_error
feed_lines(struct content *c, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *e = strstr(p, "\r\n");
		size_t n = e != NULL ? (size_t)(e - p) + 2 : strlen(p);

		content_line_part(c, p, n);
		p += n;
	}
	return content_finish(c);
}

/* Feed text through the BDAT path in chunks of the given size. */
static enum content_error
feed_chunks(struct content *c, const char *text, size_t chunk)
{
	size_t len = strlen(text);

	for (size_t off = 0; off < len; off += chunk)
		content_bytes(
		    c, text + off, len - off < chunk ? len - off : chunk);
	return content_finish(c);
}

/* A sink that keeps what it is given, and can play busy. */
struct sink {
	char got[8192];
	size_t len;
	int busy; /* refuse this many times before taking */
	int calls;
	size_t first, largest; /* the first piece taken, the largest */
};

static int
sink_put(void *arg, struct buf *stage)
{
	struct sink *k = arg;

	k->calls++;
	if (k->busy > 0) {
		k->busy--;
		return 1;
	}
	assert_true(k->len + stage->len <= sizeof(k->got));
	memcpy(k->got + k->len, stage->data, stage->len);
	if (k->len == 0)
		k->first = stage->len;
	if (stage->len > k->largest)
		k->largest = stage->len;
	k->len += stage->len;
	stage->len = 0;
	return 0;
}

/* What a sink-fed content stored: header + pieces + tail, or inline. */
static void
sink_stored(struct content *c, struct sink *k, char *out, size_t *len)
{
	size_t n = 0;

	memcpy(out, c->out.data, c->out.len);
	n += c->out.len;
	if (c->spilled) {
		memcpy(out + n, k->got, k->len);
		n += k->len;
		memcpy(out + n, c->stage.data, c->stage.len);
		n += c->stage.len;
	}
	out[n] = '\0';
	*len = n;
}

struct case_ {
	const char *name;
	const char *text;
	enum content_error want;
	const char *stored; /* NULL: do not check */
};

static const struct case_ cases[] = {
    {"plain", "Subject: hi\r\n\r\nbody\r\n", CONTENT_OK,
        "Subject: hi\r\n\r\nbody\r\n"},
    {"org headers removed",
        "X-Sluice-Organization-AuthAs: Partner\r\n"
        "x-sluice-ORGANIZATION-authdomain: evil.example\r\n"
        "\tcontinued\r\n"
        "Subject: ok\r\n\r\n"
        "X-Sluice-Organization-AuthAs: in body stays\r\n",
        CONTENT_OK,
        "Subject: ok\r\n\r\nX-Sluice-Organization-AuthAs: in body "
        "stays\r\n"},
    {"three hops ok", "Received: a\r\nReceived: b\r\nReceived: c\r\n\r\nx\r\n",
        CONTENT_OK, NULL},
    {"four hops loop",
        "Received: a\r\nReceived: b\r\nReceived: c\r\nreceived: d\r\n\r\n",
        CONTENT_HOPS, NULL},
    {"received in body not counted",
        "S: x\r\n\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n"
        "Received: d\r\n",
        CONTENT_OK, NULL},
    {"bare LF", "Subject: x\r\n\r\nline\nsmuggled\r\n", CONTENT_BAD_EOL, NULL},
    {"bare CR", "Subject: x\r\n\r\nline\rmore\r\n", CONTENT_BAD_EOL, NULL},
    /* BDAT need not end in CRLF; what is stored does (RFC 3030). */
    {"no final CRLF", "Subject: x\r\n\r\nno end", CONTENT_OK,
        "Subject: x\r\n\r\nno end\r\n"},
    {"final bare CR", "Subject: x\r\n\r\nno end\r", CONTENT_BAD_EOL, NULL},
    {"final bare LF", "Subject: x\r\n\r\nend\n", CONTENT_BAD_EOL, NULL},
    /* A continuation first would extend the last header we prepend. */
    {"continuation first",
        " Internal; X-Sluice-Organization-AuthAs=Internal\r\n"
        "Subject: x\r\n\r\nbody\r\n",
        CONTENT_HEADER_CONT, NULL},
    {"tab continuation first", "\tx\r\n\r\nbody\r\n", CONTENT_HEADER_CONT,
        NULL},
    {"continuation after a removed field",
        "X-Sluice-Organization-AuthAs: Partner\r\n Internal\r\n"
        "Subject: ok\r\n\r\nb\r\n",
        CONTENT_OK, "Subject: ok\r\n\r\nb\r\n"},
    {"continuation in the body", "S: x\r\n\r\n indented\r\n", CONTENT_OK,
        "S: x\r\n\r\n indented\r\n"},
    {"no header at all", "\r\n indented body\r\n", CONTENT_OK,
        "\r\n indented body\r\n"},
};

static void
test_bdat_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Every chunk size, so lines are split at every position. */
		for (size_t chunk = 1; chunk <= 9; chunk++) {
			struct content c;
			enum content_error got;

			content_init(&c, &limits, 8192);
			got = feed_chunks(&c, cases[i].text, chunk);
			if (got != cases[i].want)
				fail_msg("%s (chunk %zu): got %d want %d",
				    cases[i].name, chunk, got, cases[i].want);
			if (cases[i].stored != NULL)
				assert_string_equal(
				    c.out.data, cases[i].stored);
			content_free(&c);
		}
	}
}

/*
 * The same cases with the body streamed to a sink in pieces of 1 to 5
 * bytes: the checks hold across every piece boundary, and what the sink
 * got plus the header is what would have been stored.
 */
static void
test_sink_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t stage = 1; stage <= 5; stage++) {
			for (size_t chunk = 1; chunk <= 9; chunk += 4) {
				struct content_sink ks = {sink_put, NULL};
				struct sink k;
				struct content c;
				enum content_error got;
				char stored[8192];
				size_t n;

				memset(&k, 0, sizeof(k));
				ks.arg = &k;
				content_init(&c, &limits, 8192);
				content_set_sink(&c, &ks, stage, stage);
				got = feed_chunks(&c, cases[i].text, chunk);
				if (got != cases[i].want)
					fail_msg("%s (stage %zu chunk %zu): "
					         "got %d want %d",
					    cases[i].name, stage, chunk, got,
					    cases[i].want);
				sink_stored(&c, &k, stored, &n);
				if (cases[i].stored != NULL)
					assert_string_equal(
					    stored, cases[i].stored);
				content_free(&c);
			}
		}
	}
}

/* A body larger than the stage goes to the sink; the header stays. */
static void
test_sink_spills_body(void **state)
{
	struct content_sink ks = {sink_put, NULL};
	struct content_limits big = limits;
	struct sink k;
	struct content c;
	char body[3000], stored[8192];
	size_t n;

	(void)state;
	memset(&k, 0, sizeof(k));
	ks.arg = &k;
	big.max_size = 1 << 20;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : 'b';
	content_init(&c, &big, 1024);
	content_set_sink(&c, &ks, 256, 256);
	assert_int_equal(content_bytes(&c, "S: x\r\n\r\n", 8), 8);
	assert_int_equal(content_bytes(&c, body, sizeof(body)), sizeof(body));
	assert_int_equal(content_finish(&c), CONTENT_OK);
	assert_true(c.spilled);
	/* the header buffer never held the body */
	assert_int_equal(c.out.len, 8);
	assert_true(c.out.cap <= 1025);
	assert_true(c.stage.cap <= 256 + 3);
	sink_stored(&c, &k, stored, &n);
	assert_int_equal(n, 8 + sizeof(body));
	assert_memory_equal(stored + 8, body, sizeof(body));
	content_free(&c);

	/* a body that fits the stage stays inline */
	memset(&k, 0, sizeof(k));
	content_init(&c, &big, 1024);
	content_set_sink(&c, &ks, 256, 256);
	content_bytes(&c, "S: x\r\n\r\nsmall\r\n", 15);
	assert_int_equal(content_finish(&c), CONTENT_OK);
	assert_false(c.spilled);
	assert_int_equal(k.calls, 0);
	assert_string_equal(c.out.data, "S: x\r\n\r\nsmall\r\n");
	content_free(&c);
}

/*
 * The first piece is the stage's size (up to it a body stays inline), the
 * later ones piece_max: fewer hand-overs, and the stage never grows past
 * it.  The body arrives whole and in order, fed in any chunks.
 */
static void
test_sink_larger_pieces(void **state)
{
	struct content_sink ks = {sink_put, NULL};
	struct content_limits big = limits;
	char body[5000], stored[8192];

	(void)state;
	big.max_size = 1 << 20;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : 'b';
	for (size_t chunk = 1; chunk <= 5000; chunk = chunk * 3 + 1) {
		struct sink k;
		struct content c;
		size_t n;

		memset(&k, 0, sizeof(k));
		ks.arg = &k;
		content_init(&c, &big, 1024);
		content_set_sink(&c, &ks, 256, 1024);
		assert_int_equal(content_bytes(&c, "S: x\r\n\r\n", 8), 8);
		for (size_t off = 0; off < sizeof(body); off += chunk) {
			size_t k2 = sizeof(body) - off < chunk
			                ? sizeof(body) - off
			                : chunk;

			assert_int_equal(content_bytes(&c, body + off, k2), k2);
			assert_true(c.stage.cap <= 1024 + 3);
		}
		assert_int_equal(content_finish(&c), CONTENT_OK);
		assert_int_equal(k.first, 256);
		assert_int_equal(k.largest, 1024);
		/* 256 + 4 x 1024, then the tail with the stage */
		assert_int_equal(k.calls, 5);
		sink_stored(&c, &k, stored, &n);
		assert_int_equal(n, 8 + sizeof(body));
		assert_memory_equal(stored + 8, body, sizeof(body));
		content_free(&c);
	}
}

/* A busy sink makes the content take nothing more until it resumes. */
static void
test_sink_busy(void **state)
{
	struct content_sink ks = {sink_put, NULL};
	struct content_limits big = limits;
	struct sink k;
	struct content c;
	const char *text = "S: x\r\n\r\n0123456789abcdef\r\nmore\r\n";
	size_t len = strlen(text), off = 0, took;
	char stored[256];
	size_t n;
	int rounds = 0;

	(void)state;
	memset(&k, 0, sizeof(k));
	ks.arg = &k;
	k.busy = 3;
	big.max_size = 1 << 20;
	content_init(&c, &big, 1024);
	content_set_sink(&c, &ks, 8, 8);
	while (off < len) {
		took = content_bytes(&c, text + off, len - off);
		off += took;
		if (off < len) {
			assert_true(content_blocked(&c));
			assert_int_equal(content_bytes(&c, text + off, 1), 0);
			content_resume(&c);
			assert_true(++rounds < 10);
		}
	}
	assert_true(rounds >= 1);
	assert_int_equal(content_finish(&c), CONTENT_OK);
	sink_stored(&c, &k, stored, &n);
	assert_int_equal(n, len);
	assert_memory_equal(stored, text, len);
	assert_int_equal(c.size, len);
	content_free(&c);
}

static void
test_data_path_strips_and_counts(void **state)
{
	struct content c;

	(void)state;
	content_init(&c, &limits, 8192);
	assert_int_equal(content_prefix(&c, "Received: ours\r\n", 16), 0);
	assert_int_equal(
	    feed_lines(&c, "X-Sluice-Organization-AuthAs: Internal\r\n"
	                   "Subject: s\r\n\r\nbody\r\n"),
	    CONTENT_OK);
	assert_string_equal(
	    c.out.data, "Received: ours\r\nSubject: s\r\n\r\nbody\r\n");
	/* Our own prefix is not counted against the client's size. */
	assert_int_equal(
	    c.size, strlen("X-Sluice-Organization-AuthAs: "
	                   "Internal\r\nSubject: s\r\n\r\nbody\r\n"));
	content_free(&c);
}

static void
test_nul_in_line_rejected(void **state)
{
	struct content c;
	static const char line[] = "a\0b\r\n";

	(void)state;
	content_init(&c, &limits, 8192);
	content_bytes(&c, "S: x\r\n", 6);
	content_bytes(&c, "\r\n", 2);
	content_bytes(&c, line, sizeof(line) - 1);
	assert_int_equal(content_finish(&c), CONTENT_BAD_EOL);
	content_free(&c);
}

static void
test_size_limit(void **state)
{
	struct content c;
	char line[100];

	(void)state;
	memset(line, 'a', sizeof(line));
	line[98] = '\r';
	line[99] = '\n';
	content_init(&c, &limits, 8192);
	content_line_part(&c, "\r\n", 2);
	for (int i = 0; i < 41; i++)
		content_line_part(&c, line, sizeof(line));
	assert_int_equal(content_finish(&c), CONTENT_TOO_BIG);
	/* Storing stopped at the error; memory stays within the budget. */
	assert_true(c.out.len <= 4096);
	content_free(&c);
}

static void
test_header_limit(void **state)
{
	struct content c;
	char line[64];

	(void)state;
	memset(line, 'h', sizeof(line));
	memcpy(line, "X-Long: ", 8);
	line[62] = '\r';
	line[63] = '\n';
	content_init(&c, &limits, 8192);
	for (int i = 0; i < 9; i++)
		content_line_part(&c, line, sizeof(line));
	assert_int_equal(content_finish(&c), CONTENT_HEADER_BIG);
	content_free(&c);
}

/*
 * Lines longer than RFC 5322's 998 octets are accepted (as Postfix and
 * Exim do) whether they come in one piece or split anywhere, by BDAT or
 * by the DATA path, and stored unchanged.
 */
static void
test_long_lines_accepted(void **state)
{
	struct content c;
	static char text[3000];
	size_t n;

	(void)state;
	memcpy(text, "S: x\r\n\r\n", 8);
	memset(text + 8, 'x', 2500);
	memcpy(text + 2508, "\r\nok\r\n", 7);
	n = strlen(text);
	for (size_t chunk = 1; chunk <= 3000; chunk += 499) {
		content_init(&c, &limits, 8192);
		assert_int_equal(feed_chunks(&c, text, chunk), CONTENT_OK);
		assert_int_equal(c.out.len, n);
		assert_memory_equal(c.out.data, text, n);
		content_free(&c);
	}
	/* The DATA path: the long line in pieces, the LF last. */
	content_init(&c, &limits, 8192);
	content_line_part(&c, text, 6);
	content_line_part(&c, text + 6, 2);
	for (size_t off = 8; off < 2510; off += 100)
		content_line_part(
		    &c, text + off, 2510 - off < 100 ? 2510 - off : 100);
	content_line_part(&c, "ok\r\n", 4);
	assert_int_equal(content_finish(&c), CONTENT_OK);
	assert_memory_equal(c.out.data, text, n);
	content_free(&c);
	/* A long header line still counts against the header limit. */
	memset(text, 'h', 600);
	memcpy(text, "X-Long: ", 8);
	memcpy(text + 600, "\r\n\r\nb\r\n", 8);
	content_init(&c, &limits, 8192);
	assert_int_equal(feed_chunks(&c, text, 77), CONTENT_HEADER_BIG);
	content_free(&c);
}

static void
test_memory_budget(void **state)
{
	struct content c;
	struct content_limits big = limits;

	(void)state;
	big.max_size = 1 << 20;
	content_init(&c, &big, 64);
	assert_int_equal(feed_lines(&c, "\r\n0123456789012345678901234567890"
	                                "1234567890123456789012345678901234"
	                                "56789\r\n"),
	    CONTENT_NOMEM);
	content_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bdat_cases),
	    cmocka_unit_test(test_sink_cases),
	    cmocka_unit_test(test_sink_spills_body),
	    cmocka_unit_test(test_sink_larger_pieces),
	    cmocka_unit_test(test_sink_busy),
	    cmocka_unit_test(test_data_path_strips_and_counts),
	    cmocka_unit_test(test_nul_in_line_rejected),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_header_limit),
	    cmocka_unit_test(test_long_lines_accepted),
	    cmocka_unit_test(test_memory_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
