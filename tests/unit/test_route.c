/*
 * test_route.c - recipient routing (src/route/route.c) as a table over a
 * configuration loaded from text: local domains, the most specific
 * address space, cost, disabled connectors, no route, Domain Security.
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
#include "route/route.h"

static const char conf_text[] =
    "[Transport]\n"
    "QueueDirectory = /tmp/sluice-route-test\n"
    "TLSSendDomainSecureList = partner.example\n"
    "[AcceptedDomain contoso.com]\n"
    "[AcceptedDomain relay.contoso.com]\n"
    "DomainType = InternalRelay\n"
    "[SendConnector Internet]\n"
    "AddressSpaces = *;5\n"
    "[SendConnector Cheap]\n"
    "AddressSpaces = *;1\n"
    "[SendConnector Fabrikam]\n"
    "AddressSpaces = *.fabrikam.example;1, fabrikam.example;3\n"
    "[SendConnector Sub]\n"
    "AddressSpaces = *.eu.fabrikam.example\n"
    "[SendConnector Off]\n"
    "AddressSpaces = off.example\n"
    "Enabled = false\n"
    "[SendConnector Partner]\n"
    "AddressSpaces = partner.example, other.example\n"
    "DomainSecureEnabled = true\n"
    "[SendConnector Relay]\n"
    "AddressSpaces = relay.contoso.com\n"
    "DNSRoutingEnabled = false\n"
    "SmartHosts = [192.0.2.10]\n";

static struct conf *conf;

static int
setup(void **state)
{
	char path[] = "/tmp/sluice-route-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	if (fd < 0 || write(fd, conf_text, sizeof(conf_text) - 1) < 0)
		return -1;
	close(fd);
	conf = conf_load(path, stderr);
	unlink(path);
	return conf == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	conf_free(conf);
	return 0;
}

static void
test_table(void **state)
{
	static const struct {
		const char *domain;
		enum route_kind kind;
		const char *connector;
		int secure;
	} t[] = {
	    {"contoso.com", ROUTE_LOCAL, NULL, 0},
	    {"relay.contoso.com", ROUTE_CONNECTOR, "Relay", 0},
	    {"example.org", ROUTE_CONNECTOR, "Cheap", 0}, /* lowest cost */
	    {"fabrikam.example", ROUTE_CONNECTOR, "Fabrikam", 0}, /* exact */
	    {"mx.fabrikam.example", ROUTE_CONNECTOR, "Fabrikam", 0},
	    {"a.eu.fabrikam.example", ROUTE_CONNECTOR, "Sub", 0}, /* longer */
	    {"xfabrikam.example", ROUTE_CONNECTOR, "Cheap", 0},
	    {"off.example", ROUTE_CONNECTOR, "Cheap", 0}, /* disabled */
	    {"partner.example", ROUTE_CONNECTOR, "Partner", 1},
	    {"other.example", ROUTE_CONNECTOR, "Partner", 0}, /* not listed */
	};
	struct route r;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		route_domain(conf, t[i].domain, &r);
		if (r.kind != t[i].kind)
			fail_msg("%s: kind %d want %d", t[i].domain, r.kind,
			    t[i].kind);
		if (t[i].connector != NULL &&
		    strcmp(r.connector->name, t[i].connector) != 0)
			fail_msg("%s: connector %s want %s", t[i].domain,
			    r.connector->name, t[i].connector);
		assert_int_equal(r.kind == ROUTE_CONNECTOR &&
		                     r.tls.level == TLS_POLICY_DOMAIN_SECURE,
		    t[i].secure);
		assert_true(r.why[0] != '\0');
	}
}

static void
test_no_route(void **state)
{
	struct conf c;
	struct route r;

	(void)state;
	memset(&c, 0, sizeof(c));
	route_domain(&c, "example.org", &r);
	assert_int_equal(r.kind, ROUTE_NONE);
	assert_non_null(strstr(r.why, "Unreachable queue"));
}

static void
test_tls_policy_words(void **state)
{
	struct route r;
	char out[512];

	(void)state;
	route_domain(conf, "partner.example", &r);
	route_tls_policy(&r, out, sizeof(out));
	assert_non_null(strstr(out, "Domain Security"));
	route_domain(conf, "example.org", &r);
	route_tls_policy(&r, out, sizeof(out));
	assert_non_null(strstr(out, "opportunistic"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_no_route),
	    cmocka_unit_test(test_tls_policy_words),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
