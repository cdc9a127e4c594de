/*
 * test_rules_route.c - routing with what transport rules decided
 * (src/route/route.c: route_recipient, the queue names and TLS policy
 * text, with tls_policy.c deciding the policy): a scoped connector only through
 * a rule, local delivery never overridden, a missing connector waits, the TLS
 * floor only where it raises the connector's policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/route.h"
#include "test_rules_util.h"

static const char conf_text[] = "[Transport]\n"
                                "QueueDirectory = /tmp/sluice-rules-route\n"
                                "TLSSendDomainSecureList = partner.example\n"
                                "[AcceptedDomain contoso.com]\n"
                                "[ReceiveConnector r]\n"
                                "Bindings = 127.0.0.1:2525\n"
                                "[SendConnector Internet]\n"
                                "AddressSpaces = *\n"
                                "IgnoreSTARTTLS = true\n"
                                "[SendConnector Strict]\n"
                                "AddressSpaces = strict.example\n"
                                "RequireTLS = true\n"
                                "TlsAuthLevel = DomainValidation\n"
                                "[SendConnector Partner]\n"
                                "AddressSpaces = partner.example\n"
                                "DomainSecureEnabled = true\n"
                                "[SendConnector Scoped]\n"
                                "IsTransportRuleScoped = true\n"
                                "DNSRoutingEnabled = false\n"
                                "SmartHosts = [192.0.2.1]\n"
                                "[SendConnector \"Scoped DNS\"]\n"
                                "IsTransportRuleScoped = true\n"
                                "[SendConnector \"Scoped off\"]\n"
                                "IsTransportRuleScoped = true\n"
                                "Enabled = false\n"
                                "[TransportRule uses]\n"
                                "SentTo = a@b.org\n"
                                "RouteMessageOutboundConnector = Scoped\n";

static struct conf *conf;

static int
setup(void **state)
{
	char err[2048];

	(void)state;
	conf = tr_load(conf_text, err, sizeof(err));
	if (conf == NULL)
		fprintf(stderr, "%s", err);
	return conf == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	conf_free(conf);
	return 0;
}

struct row {
	const char *domain;
	const char *tls_rule, *connector;
	enum route_kind kind;
	const char *via; /* connector name */
	int floor;
	const char *queue;
};

static const struct row rows[] = {
    /* normal routing never picks a scoped connector */
    {"anything.example", NULL, NULL, ROUTE_CONNECTOR, "Internet", 0,
        "anything.example"},
    /* a rule's connector wins, smart hosts: the connector's queue */
    {"anything.example", NULL, "Scoped", ROUTE_CONNECTOR, "Scoped", 0,
        "Scoped"},
    /* DNS-routed scoped connector: a queue of its own per domain */
    {"fabrikam.example", NULL, "Scoped DNS", ROUTE_CONNECTOR, "Scoped DNS", 0,
        "fabrikam.example/Scoped DNS"},
    /* gone, disabled or not scoped: wait */
    {"fabrikam.example", NULL, "Nowhere", ROUTE_WAIT, NULL, 0, "Unreachable"},
    {"fabrikam.example", NULL, "Scoped off", ROUTE_WAIT, NULL, 0,
        "Unreachable"},
    {"fabrikam.example", NULL, "Internet", ROUTE_WAIT, NULL, 0, "Unreachable"},
    /* local delivery is never overridden */
    {"contoso.com", "r", "Scoped", ROUTE_LOCAL, NULL, 0, "Local"},
    /* the TLS floor raises IgnoreSTARTTLS/opportunistic ... */
    {"fabrikam.example", "r", NULL, ROUTE_CONNECTOR, "Internet", 1,
        "fabrikam.example/RequireTls"},
    {"anything.example", "r", "Scoped", ROUTE_CONNECTOR, "Scoped", 1,
        "Scoped/RequireTls"},
    /* ... but not a connector that requires TLS, nor Domain Security */
    {"strict.example", "r", NULL, ROUTE_CONNECTOR, "Strict", 0,
        "strict.example"},
    {"partner.example", "r", NULL, ROUTE_CONNECTOR, "Partner", 0,
        "partner.example"},
};

static void
test_route_recipient(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *t = &rows[i];
		struct route_rules rr = {t->tls_rule, t->connector, "rule"};
		struct route r;
		char queue[300];
		const char *type;

		route_recipient(conf, t->domain, &rr, &r);
		if (r.kind != t->kind)
			fail_msg("row %zu: kind %d, want %d (%s)", i, r.kind,
			    t->kind, r.why);
		if (t->via != NULL)
			assert_string_equal(r.connector->name, t->via);
		assert_int_equal(r.tls_floor, t->floor);
		route_queue_name(&r, t->domain, queue, sizeof(queue), &type);
		assert_string_equal(queue, t->queue);
	}
}

/*
 * The rule's requirement is an input of the TLS policy (tls_policy.c),
 * the one the SMTP client decides per next hop: at least EncryptionOnly,
 * IgnoreSTARTTLS giving way, a stricter level and Domain Security kept.
 */
static void
test_tls_floor_and_policy(void **state)
{
	struct route_rules rr = {"Force TLS", NULL, NULL};
	struct route r;
	char policy[768];

	(void)state;
	route_recipient(conf, "fabrikam.example", &rr, &r);
	assert_string_equal(r.connector->name, "Internet");
	assert_int_equal(r.tls.level, TLS_POLICY_ENCRYPT);
	assert_int_equal(r.tls.source, TLS_SOURCE_TRANSPORT_RULE);
	assert_true(tls_policy_required(&r.tls));
	assert_string_equal(tls_policy_name(&r.tls), "EncryptionOnly");
	route_tls_policy(&r, policy, sizeof(policy));
	assert_non_null(strstr(policy, "RequireTLS by transport rule "
	                               "\"Force TLS\""));
	/* a stricter level stays, and the rule is named beside it */
	route_recipient(conf, "strict.example", &rr, &r);
	assert_int_equal(r.tls.level, TLS_POLICY_DOMAIN);
	assert_int_equal(r.tls.source, TLS_SOURCE_CONNECTOR);
	route_tls_policy(&r, policy, sizeof(policy));
	assert_non_null(strstr(policy, "DomainValidation"));
	assert_non_null(
	    strstr(policy, "(transport rule \"Force TLS\" requires TLS too)"));
	/* Domain Security too */
	route_recipient(conf, "partner.example", &rr, &r);
	assert_int_equal(r.tls.level, TLS_POLICY_DOMAIN_SECURE);
	assert_false(r.tls_floor);
	/* without rules: as route_domain */
	route_recipient(conf, "fabrikam.example", NULL, &r);
	assert_string_equal(r.connector->name, "Internet");
	assert_int_equal(r.tls.level, TLS_POLICY_NONE);
	assert_null(r.tls_rule);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_route_recipient),
	    cmocka_unit_test(test_tls_floor_and_policy),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
