/*
 * test_sm_addrlist.c - the address-list splitter of sluice-sendmail -t
 * (src/sendmail/sm_addrlist.c) as a table of field bodies and the
 * envelope addresses they give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sendmail/sm_addrlist.h"

struct addr_case {
	const char *field;
	const char *want; /* addresses joined by "|", or NULL for an error */
};

static const struct addr_case cases[] = {
    {"a@b", "a@b"},
    {" a@b ", "a@b"},
    {"A B <a@b>, c@d", "a@b|c@d"},
    {"\"Doe, John\" <j@x>", "j@x"},
    {"(comment) a@b (other, with comma)", "a@b"},
    {"(nested (comment, too)) a@b", "a@b"},
    {"team: a@b, c@d;, e@f", "a@b|c@d|e@f"},
    {"undisclosed-recipients:;", ""},
    {"root", "root"},
    {"<a@b>", "a@b"},
    {"\"quoted local\"@x", "\"quoted local\"@x"},
    {"\"a\\\"b\"@x", "\"a\\\"b\"@x"},
    {"a@b,,c@d,", "a@b|c@d"},
    {"Name <a@b>,\tOther\r\n <c@d>", "a@b|c@d"},
    {"<@relay:a@b>", "@relay:a@b"},
    {"", ""},
    {"Name <a@b", NULL},
    {"a@b>", NULL},
    {"\"unterminated", NULL},
    {"(unbalanced a@b", NULL},
    {"<a@b <c@d>>", NULL},
};

struct collect {
	char out[1024];
	size_t n;
};

static int
collect(void *arg, const char *addr)
{
	struct collect *c = arg;

	c->n += (size_t)snprintf(c->out + c->n, sizeof(c->out) - c->n, "%s%s",
	    c->n ? "|" : "", addr);
	return 0;
}

/* Addresses in a "|"-joined list. */
static int
count(const char *want)
{
	int n = want[0] != '\0';

	for (; *want != '\0'; want++)
		n += *want == '|';
	return n;
}

static void
test_addrlist_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collect c;
		const char *why = NULL;
		int n;

		memset(&c, 0, sizeof(c));
		n = sm_addrlist_parse(cases[i].field, collect, &c, &why);
		if (cases[i].want == NULL) {
			if (n != -1)
				print_error("\"%s\": want an error, got %s\n",
				    cases[i].field, c.out);
			assert_int_equal(n, -1);
			assert_non_null(why);
			continue;
		}
		if (strcmp(c.out, cases[i].want) != 0)
			print_error("\"%s\": got [%s], want [%s]\n",
			    cases[i].field, c.out, cases[i].want);
		assert_string_equal(c.out, cases[i].want);
		assert_int_equal(n, count(cases[i].want));
	}
}

static int
refuse(void *arg, const char *addr)
{
	(void)arg;
	(void)addr;
	return -1;
}

static void
test_addrlist_limits(void **state)
{
	char big[SM_ADDR_MAX + 10];
	const char *why = NULL;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[5] = '@';
	assert_int_equal(
	    sm_addrlist_parse(big, collect, &(struct collect){0}, &why), -1);
	assert_string_equal(why, "address too long");
	assert_int_equal(sm_addrlist_parse("a@b", refuse, NULL, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addrlist_table),
	    cmocka_unit_test(test_addrlist_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
