/*
 * test_sts_policy.c - MTA-STS texts as tables (src/sts/sts_policy.c):
 * policy files that RFC 8461 3.2 accepts and every way one can be broken,
 * "_mta-sts" TXT records (3.1), TXT character-strings joined from wire
 * form, and MX host names against mx patterns with wildcards (4.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sts/sts_policy.h"

static void
test_good_policies(void **state)
{
	static const struct {
		const char *text;
		enum sts_policy_mode mode;
		unsigned long max_age;
		size_t nmx;
		const char *mx0;
	} t[] = {
	    {"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	     "max_age: 604800\r\n",
	        STS_POLICY_ENFORCE, 604800, 1, "mail.example.com"},
	    /* LF only, no final line end, any order, wildcards, case */
	    {"mx: *.Example.NET\nmax_age: 86400\nmx: backup.example.org\n"
	     "mode: testing\nversion: STSv1",
	        STS_POLICY_TESTING, 86400, 2, "*.example.net"},
	    /* whitespace after the colon and after the value */
	    {"version:STSv1\nmode:\t enforce \nmx:  mx.example.com\t\n"
	     "max_age: 0\n",
	        STS_POLICY_ENFORCE, 0, 1, "mx.example.com"},
	    /* none needs no mx; extensions are ignored */
	    {"version: STSv1\nmode: none\nmax_age: 31557600\n"
	     "ext_name.v2-x: anything at all, even: colons\n",
	        STS_POLICY_NONE, 31557600, 0, NULL},
	    /* empty lines at the very end */
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n\n\r\n",
	        STS_POLICY_ENFORCE, 1, 1, "a.example"},
	    /* UTF-8 in an extension's value */
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n"
	     "comment: caf\xc3\xa9\n",
	        STS_POLICY_ENFORCE, 1, 1, "a.example"},
	};
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sts_policy *p = malloc(sizeof(*p));

		assert_non_null(p);
		if (sts_policy_parse(
		        t[i].text, strlen(t[i].text), p, why, sizeof(why)) != 0)
			fail_msg("row %zu refused: %s", i, why);
		assert_int_equal(p->mode, t[i].mode);
		assert_int_equal(p->max_age, t[i].max_age);
		assert_int_equal(p->nmx, t[i].nmx);
		if (t[i].mx0 != NULL)
			assert_string_equal(p->mx[0], t[i].mx0);
		free(p);
	}
}

static void
test_broken_policies(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} t[] = {
	    {"", "no version"},
	    {"mode: enforce\nmx: a.example\nmax_age: 1\n", "no version"},
	    {"version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"},
	    {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	        "line 1: version is not STSv1"},
	    {"version: stsv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	        "line 1: version"},
	    /* field names are case-sensitive: "Mode" is an extension */
	    {"version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1\n",
	        "no mode"},
	    {"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
	        "line 2: mode"},
	    {"version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\n"
	     "max_age: 1\n",
	        "line 3: second mode"},
	    {"version: STSv1\nversion: STSv1\nmode: enforce\nmx: a.example\n"
	     "max_age: 1\n",
	        "line 2: second version"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n"
	     "max_age: 2\n",
	        "line 5: second max_age"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
	        "line 4: max_age is not a number"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: "
	     "31557601\n",
	        "line 4: max_age over"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\n"
	     "max_age: 12345678901\n",
	        "more than 10 digits"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1 day\n",
	        "line 4: max_age is not a number"},
	    {"version: STSv1\nmode: enforce\nmx: *example.com\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: -a.example\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: a-.example\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx: 192.0.2.1 x\nmax_age: 1\n",
	        "line 3: mx"},
	    {"version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",
	        "line 3: empty value"},
	    /* whitespace where the grammar has none */
	    {"version : STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	        "line 1: not a field name"},
	    {" version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	        "line 1: not a field name"},
	    {"version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	        "line 2: empty line"},
	    {"version: STSv1\nmode: enforce\nthis is not a field\n"
	     "mx: a.example\nmax_age: 1\n",
	        "line 3: no \"name: value\""},
	    {"version: STSv1\nmode: enforce\nmx: a.example\rmax_age: 1\n",
	        "line 3: control character 0x0d"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\r",
	        "line 4: control character 0x0d"},
	    {"<html><body>Not Found</body></html>\n",
	        "line 1: no \"name: value\""},
	};
	char why[256];
	struct sts_policy *p = malloc(sizeof(*p));

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		why[0] = '\0';
		if (sts_policy_parse(
		        t[i].text, strlen(t[i].text), p, why, sizeof(why)) == 0)
			fail_msg("row %zu accepted", i);
		if (strstr(why, t[i].why) == NULL)
			fail_msg("row %zu: want \"%s\", got \"%s\"", i,
			    t[i].why, why);
	}
	free(p);
}

static void
test_policy_limits(void **state)
{
	size_t cap = STS_POLICY_MAX + 64;
	char *text = malloc(cap), why[256];
	struct sts_policy *p = malloc(sizeof(*p));
	size_t n = 0;

	(void)state;
	assert_non_null(text);
	assert_non_null(p);
	/* a NUL inside: a control character, not the end */
	memcpy(text,
	    "version: STSv1\nmode: enforce\nmx: a.example\0x\n"
	    "max_age: 1\n",
	    56);
	assert_int_equal(sts_policy_parse(text, 56, p, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "control character 0x00"));
	/* STS_MX_MAX patterns are fine, one more is not */
	n = (size_t)snprintf(text, cap,
	    "version: STSv1\nmode: enforce\n"
	    "max_age: 1\n");
	for (int i = 0; i < STS_MX_MAX; i++)
		n += (size_t)snprintf(
		    text + n, cap - n, "mx: mx%d.example.net\n", i);
	assert_int_equal(sts_policy_parse(text, n, p, why, sizeof(why)), 0);
	assert_int_equal(p->nmx, STS_MX_MAX);
	n += (size_t)snprintf(text + n, cap - n, "mx: one.more.example\n");
	assert_int_equal(sts_policy_parse(text, n, p, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "more than"));
	/* over 64 KB in all, however valid it starts */
	memset(text + n, '#', cap - n);
	assert_int_equal(
	    sts_policy_parse(text, STS_POLICY_MAX + 1, p, why, sizeof(why)),
	    -1);
	assert_non_null(strstr(why, "larger than"));
	free(text);
	free(p);
}

static void
test_txt(void **state)
{
	static const struct {
		const char *text;
		int ok;
		const char *id;
	} t[] = {
	    {"v=STSv1; id=20160831085700Z;", 0, "20160831085700Z"},
	    {"v=STSv1;id=abc", 0, "abc"},
	    {"v=STSv1 ; id=1 ; ext-a.b_c=x!#:<>~", 0, "1"},
	    {"v=STSv1; id=12345678901234567890123456789012;", 0,
	        "12345678901234567890123456789012"},
	    {"v=STSv1; id=123456789012345678901234567890123;", -1, NULL},
	    {"v=STSv1;", -1, NULL},         /* no id */
	    {"v=STSv1", -1, NULL},          /* no field at all */
	    {"v=STSv1; id=;", -1, NULL},    /* empty id */
	    {"v=STSv1; id=a-b;", -1, NULL}, /* not alnum */
	    {"v=STSv1; id=1; id=2;", -1, NULL},
	    {"v=STSv1; ext=a=b; id=1", -1, NULL},
	    {"v=STSv1; id 1", -1, NULL},
	    {"v=STSv1 id=1", -1, NULL}, /* no delimiter */
	    {"v=STSv2; id=1;", -1, NULL},
	    {"v=stsv1; id=1;", -1, NULL},
	    {" v=STSv1; id=1;", -1, NULL},
	    {"id=1; v=STSv1;", -1, NULL},
	    {"v=STSv1; id=1;;", -1, NULL},
	};
	char id[STS_ID_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = sts_txt_parse(t[i].text, strlen(t[i].text), id);

		if (rc != t[i].ok)
			fail_msg("row %zu (%s): %d", i, t[i].text, rc);
		if (rc == 0)
			assert_string_equal(id, t[i].id);
	}
	assert_true(sts_txt_is_sts("v=STSv1; id=1", 13));
	assert_true(sts_txt_is_sts("v=STSv1", 7));
	assert_false(sts_txt_is_sts("v=STSv10; id=1", 14));
	assert_false(sts_txt_is_sts("v=spf1 -all", 11));
}

static void
test_txt_join(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(sts_txt_join((const unsigned char *)"\x07v=STSv1"
	                                                     "\x06; id=1",
	                     15, out, sizeof(out)),
	    0);
	assert_string_equal(out, "v=STSv1; id=1");
	assert_int_equal(
	    sts_txt_join((const unsigned char *)"", 0, out, 32), 0);
	assert_string_equal(out, "");
	/* a length past the end, a NUL inside, no room */
	assert_int_equal(sts_txt_join((const unsigned char *)"\x09v=STSv1", 8,
	                     out, sizeof(out)),
	    -1);
	assert_int_equal(sts_txt_join((const unsigned char *)"\x03"
	                                                     "a\0b",
	                     4, out, sizeof(out)),
	    -1);
	assert_int_equal(
	    sts_txt_join((const unsigned char *)"\x05hello", 6, out, 5), -1);
}

static void
test_mx_match(void **state)
{
	static const struct {
		const char *pattern, *host;
		int match;
	} t[] = {
	    {"mail.example.com", "mail.example.com", 1},
	    {"mail.example.com", "MAIL.Example.COM", 1},
	    {"mail.example.com", "mail.example.com.", 1},
	    {"mail.example.com", "mail2.example.com", 0},
	    {"mail.example.com", "example.com", 0},
	    {"*.example.com", "mx1.example.com", 1},
	    {"*.example.com", "MX1.EXAMPLE.COM.", 1},
	    {"*.example.com", "example.com", 0},     /* one label more */
	    {"*.example.com", "a.b.example.com", 0}, /* exactly one */
	    {"*.example.com", "mx1.example.com.evil", 0},
	    {"*.example.com", "mx1.notexample.com", 0},
	    {"*.example.com", ".example.com", 0},
	    {"*.example.com", "xexample.com", 0},
	    {"*.example.com", "*.example.com", 1}, /* a label is a label */
	    {"mail.example.com", "", 0},
	    {"mail.example.com", ".", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (sts_pattern_match(t[i].pattern, t[i].host) != t[i].match)
			fail_msg(
			    "row %zu: %s vs %s", i, t[i].pattern, t[i].host);
}

static void
test_policy_match(void **state)
{
	static const char text[] = "version: STSv1\nmode: enforce\n"
	                           "mx: mail.example.com\nmx: *.example.net\n"
	                           "max_age: 86400\n";
	struct sts_policy *p = malloc(sizeof(*p));
	char why[256];

	(void)state;
	assert_non_null(p);
	assert_int_equal(
	    sts_policy_parse(text, sizeof(text) - 1, p, why, sizeof(why)), 0);
	assert_true(sts_policy_match(p, "mail.example.com"));
	assert_true(sts_policy_match(p, "mx3.example.net"));
	assert_false(sts_policy_match(p, "mx3.example.com"));
	assert_false(sts_policy_match(p, "example.net"));
	assert_string_equal(sts_policy_mode_name(p->mode), "enforce");
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_policies),
	    cmocka_unit_test(test_broken_policies),
	    cmocka_unit_test(test_policy_limits),
	    cmocka_unit_test(test_txt),
	    cmocka_unit_test(test_txt_join),
	    cmocka_unit_test(test_mx_match),
	    cmocka_unit_test(test_policy_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
