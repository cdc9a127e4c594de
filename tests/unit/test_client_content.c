/*
 * test_client_content.c - the SMTP client's content encoder
 * (src/deliver/client_content.c): what goes on the wire is CRLF only,
 * dot-stuffed for DATA, always ends in CRLF, and (on send connectors)
 * carries no X-Sluice-Organization-* header field and no line over 998
 * octets (longer ones are folded with CRLF SP, as Postfix does), whatever
 * the stored bytes are and wherever the chunks of a streamed body are
 * cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "deliver/client_content.h"

/* A sink into a growing buffer. */
struct out {
	char *p;
	size_t len, cap;
};

static int
out_sink(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		assert_non_null(o->p);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = '\0';
	return 0;
}

/* Encode in chunks cut every `step` bytes (0: one chunk). */
static char *
encode(const char *in, size_t n, unsigned flags, size_t step, long long *total)
{
	struct client_content cc;
	struct out o = {calloc(1, 1), 0, 1};

	client_content_init(&cc, flags, out_sink, &o);
	if (step == 0)
		step = n;
	for (size_t i = 0; i < n; i += step)
		assert_int_equal(client_content_feed(
		                     &cc, in + i, n - i < step ? n - i : step),
		    0);
	assert_int_equal(client_content_end(&cc), 0);
	*total = (long long)cc.total;
	assert_int_equal(*total, (long long)o.len);
	return o.p;
}

struct encode_case {
	const char *in;
	unsigned flags;
	const char *out;
};

#define DS CLIENT_CONTENT_DOTSTUFF
#define SO CLIENT_CONTENT_STRIP_ORG

static const struct encode_case encode_cases[] = {
    {"a\r\nb\r\n", 0, "a\r\nb\r\n"},
    {"a\r\nb\r\n", DS, "a\r\nb\r\n"},
    /* a final CRLF is added */
    {"no end", 0, "no end\r\n"},
    {"", 0, ""},
    /* bare LF and bare CR become CRLF */
    {"a\nb\n", 0, "a\r\nb\r\n"},
    {"a\rb\r", 0, "a\r\nb\r\n"},
    {"a\r\r\nb", 0, "a\r\n\r\nb\r\n"},
    {"x\n\ny", 0, "x\r\n\r\ny\r\n"},
    /* dot-stuffing at every line start, including the first */
    {".a\r\n..b\r\nc.d\r\n.\r\n", DS, "..a\r\n...b\r\nc.d\r\n..\r\n"},
    {".a\r\n", 0, ".a\r\n"},
    /* a dot after a bare LF is at a line start too */
    {"x\n.y", DS, "x\r\n..y\r\n"},
    /* the smuggling ending never survives as such */
    {"a\n.\nb", DS, "a\r\n..\r\nb\r\n"},
    {"a\r\n.\rMAIL FROM:<x>\r\n", DS, "a\r\n..\r\nMAIL FROM:<x>\r\n"},
    /* the organisation's header fields are left out on request ... */
    {"X-Sluice-Organization-AuthAs: Internal\r\nSubject: s\r\n\r\nb\r\n", SO,
        "Subject: s\r\n\r\nb\r\n"},
    /* ... in any case, with their continuation lines */
    {"From: a\r\nx-sluice-organization-authmechanism: Tls\r\n"
     " folded\r\n\tagain\r\nTo: b\r\n\r\n",
        SO, "From: a\r\nTo: b\r\n\r\n"},
    /* ... several, at the start and at the end of the header */
    {"X-Sluice-Organization-A: 1\r\nX-Sluice-Organization-B: 2\r\n"
     "Subject: x\r\nX-Sluice-Organization-C: 3\r\n\r\nbody\r\n",
        SO | DS, "Subject: x\r\n\r\nbody\r\n"},
    /* ... never without the flag */
    {"X-Sluice-Organization-AuthAs: Internal\r\n\r\n", DS,
        "X-Sluice-Organization-AuthAs: Internal\r\n\r\n"},
    /* ... never in the body, nor a name that only starts alike */
    {"Subject: x\r\n\r\nX-Sluice-Organization-AuthAs: Internal\r\n", SO,
        "Subject: x\r\n\r\nX-Sluice-Organization-AuthAs: Internal\r\n"},
    {"X-Sluice-Organisation: kept\r\nX-Sluice-Org: kept\r\n\r\n", SO,
        "X-Sluice-Organisation: kept\r\nX-Sluice-Org: kept\r\n\r\n"},
    /* a continuation of a kept field stays */
    {"Subject: a\r\n b\r\n\r\n", SO, "Subject: a\r\n b\r\n\r\n"},
    /* a line shorter than the prefix, at the very end */
    {"X-Sluice", SO, "X-Sluice\r\n"},
    /* a dropped field that ends the message without CRLF */
    {"Subject: a\r\nX-Sluice-Organization-AuthAs: x", SO, "Subject: a\r\n"},
    /* bare line ends in the header are line ends for the filter too */
    {"X-Sluice-Organization-A: 1\nSubject: y\r\n\nz", SO | DS,
        "Subject: y\r\n\r\nz\r\n"},
    /* a header that starts with a dot is still stuffed */
    {".X-Sluice-Organization-A: 1\r\n\r\n", SO | DS,
        "..X-Sluice-Organization-A: 1\r\n\r\n"},
};

static void
test_encode_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]);
	     i++) {
		const struct encode_case *c = &encode_cases[i];
		size_t n = strlen(c->in);

		/* one chunk, and every way of cutting it into chunks */
		for (size_t step = 0; step <= n; step++) {
			long long total;
			char *got = encode(c->in, n, c->flags, step, &total);

			if (strcmp(got, c->out) != 0)
				fail_msg("case %zu step %zu: got \"%s\"", i,
				    step, got);
			/* the counting pass gives BDAT the same size */
			assert_int_equal(client_content_encode(
			                     c->in, n, c->flags, NULL, NULL),
			    total);
			free(got);
		}
	}
}

/* The longest line on the wire, CRLF not counted. */
static size_t
longest_line(const char *p)
{
	size_t best = 0;

	for (const char *e; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		if ((size_t)(e - p) > best)
			best = (size_t)(e - p);
	return best;
}

/* Whatever the input and the chunks, no bare CR or LF leaves, the end is
 * CRLF, no line is a lone dot and no organisation field survives. */
static void
test_encode_random(void **state)
{
	unsigned seed = 12345;
	static const char *const pieces[] = {"a", "b", ".", "\r", "\n", "\r\n",
	    " ", "X-Sluice-Organization-", "x-sluice-org", ": v"};

	(void)state;
	for (int round = 0; round < 3000; round++) {
		char in[512];
		size_t n = 0, k = (size_t)(round % 40) + 1;
		long long total;
		char *got;

		for (size_t i = 0; i < k; i++) {
			const char *p;

			seed = seed * 1103515245u + 12345u;
			p = pieces[(seed >> 16) % 10];
			memcpy(in + n, p, strlen(p));
			n += strlen(p);
		}
		seed = seed * 1103515245u + 12345u;
		got = encode(in, n, DS | SO, (seed >> 16) % 7, &total);
		if (total > 0) {
			assert_true(total >= 2);
			assert_memory_equal(got + total - 2, "\r\n", 2);
		}
		for (long long i = 0; i < total; i++) {
			if (got[i] == '\r')
				assert_true(
				    i + 1 < total && got[i + 1] == '\n');
			if (got[i] == '\n')
				assert_true(i > 0 && got[i - 1] == '\r');
			if (got[i] == '.' && (i == 0 || got[i - 1] == '\n'))
				assert_true(i + 1 < total && got[i + 1] == '.');
		}
		assert_true(longest_line(got) <= 998);
		/* in the header section, no line starts with the prefix */
		for (char *line = got; *line != '\0';) {
			char *eol = strstr(line, "\r\n");

			if (eol == line)
				break; /* the end of the header */
			assert_true(
			    strncasecmp(line, CLIENT_CONTENT_ORG_PREFIX,
			        strlen(CLIENT_CONTENT_ORG_PREFIX)) != 0);
			if (eol == NULL)
				break;
			line = eol + 2;
		}
		free(got);
	}
}

/* Drop every "\r\n " the encoder inserted: the line as stored. */
static size_t
unfold(char *p)
{
	size_t o = 0, n = strlen(p);

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 2 < n && p[i + 1] == '\n' &&
		    p[i + 2] == ' ') {
			i += 2;
			continue;
		}
		p[o++] = p[i];
	}
	p[o] = '\0';
	return o;
}

/*
 * Lines over 998 octets are folded with CRLF SP at 998 (Postfix's
 * smtp_line_length_limit), by DATA and BDAT, in the header and the body,
 * wherever the chunks are cut; 998 itself is not folded.
 */
static void
test_long_lines_folded(void **state)
{
	static const size_t lens[] = {997, 998, 999, 1996, 1997, 5000};

	(void)state;
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t n = lens[l];
		char *line = malloc(n + 64), *want = malloc(n + 64);

		assert_non_null(line);
		assert_non_null(want);
		memcpy(line, "Subject: ", 9);
		memset(line + 9, 'h', n - 9);
		memcpy(line + n, "\r\n\r\n", 4);
		memcpy(want, line, n + 4);
		want[n + 4] = '\0';
		for (unsigned flags = 0; flags <= DS; flags += DS)
			for (size_t step = 0; step < 1200; step += 397) {
				long long total;
				char *got =
				    encode(line, n + 4, flags, step, &total);

				assert_true(longest_line(got) <= 998);
				if (n <= 998)
					assert_string_equal(got, want);
				else
					assert_non_null(strstr(got, "\r\n h"));
				assert_int_equal(unfold(got), n + 4);
				assert_string_equal(got, want);
				assert_int_equal(client_content_encode(line,
				                     n + 4, flags, NULL, NULL),
				    total);
				free(got);
			}
		free(line);
		free(want);
	}
	/* in the body, a stuffed dot counts toward the 998 */
	{
		char body[1500];
		long long total;
		char *got;

		memcpy(body, "\r\n", 2);
		memset(body + 2, '.', 1200);
		memcpy(body + 1202, "\r\n", 2);
		got = encode(body, 1204, DS, 100, &total);
		assert_true(longest_line(got) <= 998);
		/* the first line: 1 stuffed dot and 997 of the stored ones */
		assert_memory_equal(got + 2 + 998, "\r\n ", 3);
		free(got);
	}
}

/*
 * A body of many lines goes out in one run of whole lines up to the
 * first that needs work (a dot to stuff, a line to fold, a bare CR or
 * LF), which the byte machine then takes: fed whole and fed an octet at
 * a time (where no whole line is ever in view) the output is the same,
 * lines of 998 octets and the end of a chunk included.
 */
static void
test_body_runs(void **state)
{
#define LINE(s)                                                                \
	{                                                                      \
		s, sizeof(s) - 1, 0                                            \
	}
	/* a text, its length (NULs included), or a line of `fill` x's */
	static const struct {
		const char *text;
		size_t len, fill;
	} lines[] = {LINE("plain text\r\n"), LINE(".dot\r\n"), LINE("..\r\n"),
	    LINE("a.b\r\n"), LINE("\r\n"), LINE("bare\rcr\r\n"),
	    LINE("bare\nlf\r\n"), LINE("nul\0in\r\n"), LINE(".\r\n"),
	    {NULL, 0, 997}, {NULL, 0, 998}, {NULL, 0, 999}};
#undef LINE
	size_t cap = 64 * 1024;
	char *in = malloc(cap);
	unsigned seed = 7;

	(void)state;
	assert_non_null(in);
	for (int round = 0; round < 300; round++) {
		size_t n = 0, k = (size_t)(round % 60) + 1;

		memcpy(in, "Subject: s\r\n\r\n", 15);
		n = 15;
		for (size_t i = 0; i < k; i++) {
			size_t w = (size_t)rand_r(&seed) %
			           (sizeof(lines) / sizeof(lines[0]));

			if (lines[w].text == NULL) {
				memset(in + n, 'x', lines[w].fill);
				memcpy(in + n + lines[w].fill, "\r\n", 2);
				n += lines[w].fill + 2;
			} else {
				memcpy(in + n, lines[w].text, lines[w].len);
				n += lines[w].len;
			}
		}
		if (round % 2 == 1)
			n -= (size_t)rand_r(&seed) % 3; /* end mid-line */
		for (unsigned flags = 0; flags <= DS; flags += DS) {
			long long whole_n, bytes_n;
			char *whole = encode(in, n, flags, 0, &whole_n);
			char *bytes = encode(in, n, flags, 1, &bytes_n);

			assert_int_equal(whole_n, bytes_n);
			assert_memory_equal(whole, bytes, (size_t)whole_n);
			assert_int_equal(
			    client_content_encode(in, n, flags, NULL, NULL),
			    whole_n);
			free(whole);
			free(bytes);
		}
	}
	free(in);
}

/* A sink that counts its calls. */
static int
counting_sink(void *arg, const char *p, size_t n)
{
	(void)p;
	(void)n;
	(*(int *)arg)++;
	return 0;
}

/*
 * A small message reaches the sink in one call, at the end, however its
 * plain lines went (for BDAT: one chunk, BDAT n LAST); a large one in
 * runs of whole lines.
 */
static void
test_small_message_one_call(void **state)
{
	static const char small[] =
	    "Subject: s\r\n\r\nline one\r\nline two\r\n";
	char *big = malloc(64 * 1024);
	struct client_content cc;
	int calls = 0;

	(void)state;
	assert_non_null(big);
	client_content_init(&cc, DS, counting_sink, &calls);
	assert_int_equal(client_content_feed(&cc, small, sizeof(small) - 1), 0);
	assert_int_equal(calls, 0);
	assert_int_equal(client_content_end(&cc), 0);
	assert_int_equal(calls, 1);

	memcpy(big, "S: x\r\n\r\n", 8);
	for (size_t i = 8; i < 64 * 1024; i++)
		big[i] = (i - 8) % 80 == 78   ? '\r'
		         : (i - 8) % 80 == 79 ? '\n'
		                              : 'y';
	calls = 0;
	client_content_init(&cc, DS, counting_sink, &calls);
	assert_int_equal(client_content_feed(&cc, big, 64 * 1024), 0);
	assert_true(calls >= 1 && calls <= 3);
	assert_int_equal(client_content_end(&cc), 0);
	free(big);
}

/* A sink that fails stops the encoder, which says so. */
static int
failing_sink(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return -1;
}

static void
test_sink_failure(void **state)
{
	(void)state;
	assert_int_equal(
	    client_content_encode("a\r\n", 3, 0, failing_sink, NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_table),
	    cmocka_unit_test(test_encode_random),
	    cmocka_unit_test(test_long_lines_folded),
	    cmocka_unit_test(test_body_runs),
	    cmocka_unit_test(test_small_message_one_call),
	    cmocka_unit_test(test_sink_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
