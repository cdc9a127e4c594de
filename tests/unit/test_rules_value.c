/*
 * test_rules_value.c - the small parsers under transport rules, as
 * tables: quoted lists (rule_value.c), whole words (rule_words.c), header
 * values unfolded and RFC 2047 decoded, and the address of a From field
 * (rule_header.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/rules.h"

struct items {
	char out[512];
	size_t w;
};

static int
collect(void *arg, const char *item, const char **why)
{
	struct items *it = arg;

	(void)why;
	it->w += (size_t)snprintf(
	    it->out + it->w, sizeof(it->out) - it->w, "[%s]", item);
	return 0;
}

static void
test_lists(void **state)
{
	static const struct {
		const char *in, *want; /* want NULL: an error */
	} t[] = {
	    {"a, b,c", "[a][b][c]"},
	    {"  a  ,  b  ", "[a][b]"},
	    {"\"budget, q3\", plain", "[budget, q3][plain]"},
	    {"\"^\\d{1,3}@\"", "[^\\d{1,3}@]"},
	    {"\"say \\\"hi\\\"\", x", "[say \\\"hi\\\"][x]"},
	    {"a, b,", "[a][b]"}, /* before a continuation line */
	    {"", ""},
	    {"a,,b", NULL},
	    {"\"a, b", NULL},
	    {"\"a\" b", NULL},
	    {"a\"b", NULL},
	    {"\"\"", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct items it = {"", 0};
		const char *why = NULL;
		int rc = rule_value_each(t[i].in, collect, &it, &why);

		if (t[i].want == NULL) {
			if (rc == 0)
				fail_msg("row %zu: \"%s\" accepted as %s", i,
				    t[i].in, it.out);
			assert_non_null(why);
		} else {
			if (rc != 0)
				fail_msg(
				    "row %zu: \"%s\": %s", i, t[i].in, why);
			assert_string_equal(it.out, t[i].want);
		}
	}
}

static void
test_quote_round_trip(void **state)
{
	static const char *items[] = {
	    "plain", "a, b", "x;y", "#hash", " lead", "trail ", "q\\\"q"};

	(void)state;
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		char q[64];
		struct items it = {"", 0};
		const char *why;
		char want[80];

		rule_value_quote(items[i], q, sizeof(q));
		assert_int_equal(rule_value_each(q, collect, &it, &why), 0);
		snprintf(want, sizeof(want), "[%s]", items[i]);
		assert_string_equal(it.out, want);
	}
}

static void
test_values(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(rule_value_address("a.b+c@mx.example.org", &why), 0);
	assert_int_equal(rule_value_address("a@b", &why), 0);
	assert_int_equal(rule_value_address("@b.org", &why), -1);
	assert_int_equal(rule_value_address("a b@c.org", &why), -1);
	assert_int_equal(rule_value_address("a@b_c..org", &why), -1);
	assert_int_equal(rule_value_address("<a@b.org>", &why), -1);
	assert_int_equal(rule_value_domain("Sub.Example.COM", &why), 0);
	assert_int_equal(rule_value_domain("*.example.com", &why), -1);
	assert_int_equal(rule_value_domain("a..b", &why), -1);
	assert_int_equal(rule_value_status("5.7.1", &why), 0);
	assert_int_equal(rule_value_status("5.7.900", &why), 0);
	assert_int_equal(rule_value_status("5.7.999", &why), 0);
	assert_int_equal(rule_value_status("5.7.10", &why), -1);
	assert_int_equal(rule_value_status("5.7.1000", &why), -1);
	assert_int_equal(rule_value_status("5.1.1", &why), -1);
	assert_int_equal(rule_value_header_name("X-Policy", &why), 0);
	assert_int_equal(rule_value_header_name("X Policy", &why), -1);
	assert_int_equal(rule_value_header_name("X:P", &why), -1);
	assert_int_equal(rule_value_text("café [ext]", &why), 0);
	assert_int_equal(rule_value_text("a\r\nBcc: x", &why), -1);
}

static void
test_words(void **state)
{
	static const struct {
		const char *text, *word;
		int want;
	} t[] = {
	    {"Q3 Budget!", "budget", 1},
	    {"budgeting", "budget", 0},
	    {"prebudget", "budget", 0},
	    {"budget-plan", "budget", 1},
	    {"the q3   report", "q3 report", 1},
	    {"the q3\treport", "q3 report", 1},
	    {"the q3report", "q3 report", 0},
	    {"[EXT]hello", "[ext]", 1},
	    {"a [ext] b", "[ext]", 1},
	    {"die größe", "größe", 1},
	    {"übergröße", "größe", 0},
	    {"größer", "größe", 0},
	    {"", "x", 0},
	    {"x", "", 0},
	    {"secret_file", "secret", 0},
	    {"SECRET.", "secret", 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (rule_words_contain(
		        t[i].text, strlen(t[i].text), t[i].word) != t[i].want)
			fail_msg("row %zu: \"%s\" in \"%s\": want %d", i,
			    t[i].word, t[i].text, t[i].want);
}

static void
test_decode(void **state)
{
	static const struct {
		const char *raw, *want;
	} t[] = {
	    {" plain value\r\n", "plain value"},
	    {" folded\r\n\tover lines\r\n", "folded over lines"},
	    {" =?UTF-8?Q?caf=C3=A9_au_lait?=\r\n", "café au lait"},
	    {" =?utf-8?b?Y2Fmw6k=?=\r\n", "café"},
	    {" =?ISO-8859-1?Q?caf=E9?=\r\n", "café"},
	    {" =?iso-8859-1*fr?q?caf=E9?=\r\n", "café"},
	    /* blanks between encoded-words go, around text they stay */
	    {" =?UTF-8?Q?a?= =?UTF-8?Q?b?= c\r\n", "ab c"},
	    {" x =?UTF-8?Q?a?=\r\n", "x a"},
	    /* not encoded-words: kept as they are */
	    {" =?UTF-8?X?abc?=\r\n", "=?UTF-8?X?abc?="},
	    {" =?UTF-8?B?not base64!?=\r\n", "=?UTF-8?B?not base64!?="},
	    {" =?broken\r\n", "=?broken"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n;
		char *d = rule_header_decode(t[i].raw, strlen(t[i].raw), &n);

		assert_non_null(d);
		if (strcmp(d, t[i].want) != 0 || n != strlen(d))
			fail_msg("row %zu: got \"%s\", want \"%s\"", i, d,
			    t[i].want);
		free(d);
	}
}

static void
test_from_address(void **state)
{
	static const struct {
		const char *value, *want; /* want NULL: none */
	} t[] = {
	    {"\"The Boss\" <boss@contoso.com>", "boss@contoso.com"},
	    {"boss@contoso.com (the boss)", "boss@contoso.com"},
	    {"boss@contoso.com", "boss@contoso.com"},
	    {"\"a <fake@x.org>\" <real@y.org>", "real@y.org"},
	    {"(c <x@y>) <z@w.org>", "z@w.org"},
	    {"a@b.org, c@d.org", "a@b.org"},
	    {"Undisclosed recipients:;", NULL},
	    {"<broken@x.org", NULL},
	    {"", NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[300];
		int rc = rule_header_address(t[i].value, out, sizeof(out));

		if (t[i].want == NULL)
			assert_int_equal(rc, -1);
		else if (rc != 0 || strcmp(out, t[i].want) != 0)
			fail_msg("row %zu: \"%s\": got %s", i, t[i].value,
			    rc == 0 ? out : "none");
	}
}

static void
test_headers_parse(void **state)
{
	static const char m[] = "A: 1\r\nB-c:2\r\n\tmore\r\nA: 3\r\n"
	                        "\r\nbody: not a field\r\n";
	struct rule_headers h;

	(void)state;
	assert_int_equal(rule_headers_parse(m, sizeof(m) - 1, &h), 0);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.body, strstr(m, "\r\n\r\n") - m + 2);
	assert_int_equal(rule_headers_find(&h, m, "a", 0), 0);
	assert_int_equal(rule_headers_find(&h, m, "A", 1), 2);
	assert_int_equal(rule_headers_find(&h, m, "body", 0), -1);
	assert_int_equal(h.v[1].value_len, strlen("2\r\n\tmore\r\n"));
	rule_headers_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_quote_round_trip),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_words),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_from_address),
	    cmocka_unit_test(test_headers_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
