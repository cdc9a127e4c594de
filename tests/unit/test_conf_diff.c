/*
 * test_conf_diff.c - what a reload reports (src/conf/conf_diff.c), as a
 * table: a running configuration, a new one, and the lines that say
 * what changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/conf_diff.h"
#include "util/buf.h"

#define BASE                                                                   \
	"[Transport]\n"                                                        \
	"QueueDirectory = /tmp/q\n"                                            \
	"LogDirectory = /tmp/l\n"                                              \
	"[AcceptedDomain contoso.com]\n"                                       \
	"[ReceiveConnector \"Default Frontend\"]\n"                            \
	"Bindings = 127.0.0.1:2525\n"                                          \
	"AuthMechanism = None\n"                                               \
	"[SendConnector Contoso]\n"                                            \
	"AddressSpaces = contoso.com\n"

struct diff_case {
	const char *what;
	const char *old, *new;
	const char *want; /* lines, in order */
	int n;
};

static const struct diff_case cases[] = {
    {"nothing", BASE, BASE, "", 0},
    {"a default written out is no change", BASE,
        BASE "Port = 25\nMaxMessageSize = unlimited\n", "", 0},
    {"keys of a connector", BASE,
        "[Transport]\nQueueDirectory = /tmp/q\nLogDirectory = /tmp/l\n"
        "[AcceptedDomain contoso.com]\n"
        "[ReceiveConnector \"Default Frontend\"]\n"
        "Bindings = 127.0.0.1:2525\nAuthMechanism = None\n"
        "Banner = \"220 hello\"\nMaxMessageSize = 10MB\n"
        "[SendConnector Contoso]\nAddressSpaces = contoso.com\n",
        "[ReceiveConnector \"Default Frontend\"]: changed: Banner, "
        "MaxMessageSize\n",
        1},
    {"added and removed, names matched without case", BASE,
        "[Transport]\nQueueDirectory = /tmp/q\nLogDirectory = /tmp/l\n"
        "MaxReceiveSize = 20MB\n"
        "[AcceptedDomain CONTOSO.com]\n"
        "[AcceptedDomain fabrikam.com]\nDomainType = InternalRelay\n"
        "[ReceiveConnector \"Default Frontend\"]\n"
        "Bindings = 127.0.0.1:2525\nAuthMechanism = None\n",
        "[Transport]: changed: MaxReceiveSize\n"
        "[AcceptedDomain fabrikam.com]: added\n"
        "[SendConnector Contoso]: removed\n",
        3},
    {"transport rules by name",
        BASE "[TransportRule Tag]\nPriority = 0\n"
             "SubjectContainsWords = x\nPrependSubject = \"[x] \"\n"
             "[TransportRule Old]\nPriority = 1\nDeleteMessage = true\n",
        BASE "[TransportRule \"Force TLS\"]\nPriority = 1\n"
             "RouteMessageOutboundRequireTls = true\n"
             "[TransportRule TAG]\nPriority = 0\n"
             "SubjectContainsWords = \"x\", y\nPrependSubject = \"[x] \"\n",
        "[TransportRule \"Force TLS\"]: added\n"
        "[TransportRule TAG]: changed: SubjectContainsWords\n"
        "[TransportRule Old]: removed\n",
        3},
};

static struct conf *
load(const char *text)
{
	char path[] = "/tmp/test_conf_diff.XXXXXX";
	int fd = mkstemp(path);
	struct conf *c;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	c = conf_load(path, stderr);
	unlink(path);
	assert_non_null(c);
	return c;
}

static void
test_diff_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *a = load(cases[i].old), *b = load(cases[i].new);
		struct buf out;
		int n;

		buf_init(&out, 65536);
		n = conf_diff(a, b, &out);
		if (n != cases[i].n ||
		    strcmp(out.data ? out.data : "", cases[i].want) != 0)
			print_error("case \"%s\": %d lines:\n%s\n",
			    cases[i].what, n, out.data ? out.data : "");
		assert_int_equal(n, cases[i].n);
		assert_string_equal(out.data ? out.data : "", cases[i].want);
		buf_free(&out);
		conf_free(a);
		conf_free(b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diff_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
