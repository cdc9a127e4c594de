/*
 * test_hostname.c - host name syntax (src/util/hostname.c): what a
 * configuration may name (Fqdn, smart hosts) and what the resolver takes
 * from the DNS, which differ only in hyphens at a label's edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/hostname.h"

static const struct {
	const char *name;
	int strict, from_dns;
} cases[] = {
    {"mx.contoso.com", 1, 1},
    {"localhost", 1, 1},
    {"MX-1.Contoso.COM", 1, 1},
    {"a.b-c.d", 1, 1},
    {"xn--bcher-kva.example", 1, 1},
    {"not a hostname!", 0, 0},
    {"", 0, 0},
    {"mx..contoso.com", 0, 0},
    {".contoso.com", 0, 0},
    {"mx.contoso.com.", 0, 0},
    /* RFC 1123 for what we write, the DNS as it is for what we find */
    {"-mx.contoso.com", 0, 1},
    {"mx-.contoso.com", 0, 1},
    {"mx.contoso-", 0, 1},
    {"mx_1.contoso.com", 0, 0},
    {"192.0.2.1", 0, 0},
    {"mx.123", 0, 0},
    {"123.example", 1, 1},
    {"*.contoso.com", 0, 0},
    {"m\xc3\xbc.example", 0, 0},
    {"a\tb.example", 0, 0},
};

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (hostname_valid(cases[i].name, HOSTNAME_STRICT) !=
		    cases[i].strict)
			fail_msg("%s: strict, expected %d", cases[i].name,
			    cases[i].strict);
		if (hostname_valid(cases[i].name, HOSTNAME_FROM_DNS) !=
		    cases[i].from_dns)
			fail_msg("%s: from DNS, expected %d", cases[i].name,
			    cases[i].from_dns);
	}
}

static void
test_lengths(void **state)
{
	char name[300];

	(void)state;
	/* a label of 63 is a label; 64 is not */
	memset(name, 'a', 63);
	memcpy(name + 63, ".example", 9);
	assert_int_equal(hostname_valid(name, HOSTNAME_STRICT), 1);
	memset(name, 'a', 64);
	memcpy(name + 64, ".example", 9);
	assert_int_equal(hostname_valid(name, HOSTNAME_STRICT), 0);
	/* 253 characters in all, not 254 */
	for (size_t i = 0; i < 253; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[253] = '\0';
	assert_int_equal(hostname_valid(name, HOSTNAME_FROM_DNS), 1);
	name[253] = 'a';
	name[252] = '.';
	name[254] = '\0';
	assert_int_equal(hostname_valid(name, HOSTNAME_FROM_DNS), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
