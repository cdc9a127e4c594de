/*
 * test_rules_conf.c - [TransportRule] in the configuration: every
 * validation error with the line it names (src/conf/conf_rules.c and the
 * value checks of src/rules/rule_value.c), priorities derived from file
 * order, the `config check` warnings (rule_lint.c), and the INI dump of
 * rules loading back to the same values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_rules_util.h"

#define BASE                                                                   \
	"[Transport]\n"                                                        \
	"QueueDirectory = /tmp/sluice-rules-conf\n"                            \
	"MaxReceiveSize = 10MB\n"                                              \
	"[AcceptedDomain contoso.com]\n"                                       \
	"[ReceiveConnector r]\n"                                               \
	"Bindings = 127.0.0.1:2525\n"                                          \
	"[SendConnector Internet]\n"                                           \
	"AddressSpaces = *\n"                                                  \
	"[SendConnector Secure]\n"                                             \
	"IsTransportRuleScoped = true\n"                                       \
	"DNSRoutingEnabled = false\n"                                          \
	"SmartHosts = [192.0.2.1]\n"
/* BASE has 12 lines: a rule section starts at line 13 */

struct err_row {
	const char *text; /* after BASE */
	int line;
	const char *words;
};

static const struct err_row errs[] = {
    {"[TransportRule a]\nPriority = 3\nStopRuleProcessing = true\n"
     "[TransportRule b]\nPriority = 3\nStopRuleProcessing = true\n",
        17, "Priority 3 is already the priority of [TransportRule a]"},
    {"[TransportRule a]\nFromAddressMatchesPatterns = ok, \"(abc\"\n"
     "StopRuleProcessing = true\n",
        14, "missing closing parenthesis at offset 4"},
    {"[TransportRule a]\nSubjectMatchesPatterns = \"a{2,1}\"\n"
     "StopRuleProcessing = true\n",
        14, "pattern does not compile (PCRE2)"},
    {"[TransportRule a]\nRouteMessageOutboundConnector = Nowhere\n", 14,
        "no [SendConnector Nowhere]"},
    {"[TransportRule a]\nRouteMessageOutboundConnector = Internet\n", 14,
        "needs IsTransportRuleScoped = true"},
    {"[SendConnector S2]\nIsTransportRuleScoped = true\n"
     "AddressSpaces = x.example\n",
        15, "takes no AddressSpaces"},
    {"[SendConnector S2]\nPort = 25\n", 13, "needs AddressSpaces"},
    {"[TransportRule a]\nSetHeaderName = X-A\n", 14,
        "SetHeaderName needs SetHeaderValue"},
    {"[TransportRule a]\nSetHeaderValue = v\n", 14,
        "SetHeaderValue needs SetHeaderName"},
    {"[TransportRule a]\nSetHeaderName = X A\nSetHeaderValue = v\n", 14,
        "header name"},
    {"[TransportRule a]\nSetHeaderName = "
     "X-Sluice-Organization-Rules-Execution-History\nSetHeaderValue = v\n",
        14, "written by Sluice"},
    {"[TransportRule a]\nRejectMessageEnhancedStatusCode = 5.7.2\n", 14,
        "expected 5.7.1 or 5.7.900 to 5.7.999"},
    {"[TransportRule a]\nRejectMessageEnhancedStatusCode = 5.7.899\n", 14,
        "expected 5.7.1"},
    {"[TransportRule a]\nRejectMessageEnhancedStatusCode = 4.7.1\n", 14,
        "expected 5.7.1"},
    {"[TransportRule a]\nRedirectMessageTo = ok@x.org, not an address\n", 14,
        "RedirectMessageTo: not an address"},
    {"[TransportRule a]\nBlindCopyTo = a@\n", 14,
        "BlindCopyTo: not an address"},
    {"[TransportRule a]\nBlindCopyTo = <a@b.org>\n", 14,
        "BlindCopyTo: not an address"},
    {"[TransportRule a]\nFrom = a@b..org\nStopRuleProcessing = true\n", 14,
        "From: not an address"},
    {"[TransportRule a]\nRecipientDomainIs = contoso.com\n", 13,
        "has no action"},
    {"[TransportRule a]\nDeleteMessage = true\n"
     "RejectMessageReasonText = no\n",
        14, "DeleteMessage cannot be combined"},
    {"[TransportRule a]\nDeleteMessage = true\nBlindCopyTo = a@b.org\n", 15,
        "cannot also redirect or copy"},
    {"[TransportRule a]\nHeaderContainsMessageHeader = X-A\n"
     "StopRuleProcessing = true\n",
        14, "HeaderContainsMessageHeader needs HeaderContainsWords"},
    {"[TransportRule a]\nExceptIfHeaderMatchesPatterns = x\n"
     "StopRuleProcessing = true\n",
        14,
        "ExceptIfHeaderMatchesPatterns needs "
        "ExceptIfHeaderMatchesMessageHeader"},
    {"[TransportRule a]\nRecipientDomainIs = *.contoso.com\n"
     "StopRuleProcessing = true\n",
        14, "no wildcards"},
    {"[TransportRule a]\nMode = Test\nStopRuleProcessing = true\n", 14,
        "expected Enforce, Audit or AuditAndNotify"},
    {"[TransportRule a]\nFromScope = ExternalPartner\n"
     "StopRuleProcessing = true\n",
        14, "expected InOrganization or NotInOrganization"},
    {"[TransportRule a]\nSentToScope = Outside\nStopRuleProcessing = true\n",
        14, "ExternalPartner"},
    {"[TransportRule a]\nSubjectContainsWords = \"a, b\nStopRuleProcessing = "
     "true\n",
        14, "unterminated quote"},
    {"[TransportRule a]\nSubjectContainsWords = a\"b\n"
     "StopRuleProcessing = true\n",
        14, "quote inside an item"},
    {"[TransportRule a]\nMessageSizeOver = unlimited\n"
     "StopRuleProcessing = true\n",
        14, "expected a size"},
    {"[TransportRule a]\nPriority = -1\nStopRuleProcessing = true\n", 14,
        "expected a whole number from 0 to 100000"},
    {"[TransportRule a]\nPrependSubject = \"a\tb\"\n", 14,
        "control characters"},
    {"[TransportRule a]\nNoSuchCondition = 1\n", 14,
        "unknown key NoSuchCondition in [TransportRule]"},
    {"[TransportRule a]\nStopRuleProcessing = true\n[TransportRule A]\n"
     "StopRuleProcessing = true\n",
        15, "duplicate section [TransportRule A]"},
};

static void
test_validation_errors(void **state)
{
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		char text[4096], err[4096], want[64];
		struct conf *c;

		snprintf(text, sizeof(text), "%s%s", BASE, errs[i].text);
		c = tr_load(text, err, sizeof(err));
		snprintf(want, sizeof(want), ":%d: ", errs[i].line);
		if (c != NULL || strstr(err, want) == NULL ||
		    strstr(err, errs[i].words) == NULL) {
			print_error("row %zu: want \"%s...%s\", got %s:\n%s\n",
			    i, want, errs[i].words, c ? "accepted" : "", err);
			failures++;
		}
		conf_free(c);
	}
	assert_int_equal(failures, 0);
}

static void
test_accepted_values(void **state)
{
	char err[4096];
	struct conf *c =
	    tr_load(BASE "[TransportRule b]\n"
	                 "StopRuleProcessing = true\n"
	                 "[TransportRule a]\n"
	                 "Priority = 7\n"
	                 "RejectMessageEnhancedStatusCode = 5.7.950\n"
	                 "SubjectContainsWords = \"budget, q3\", plain,\n"
	                 "    \"with \\\"quotes\\\"\"\n"
	                 "RecipientDomainIs = Fabrikam.COM\n"
	                 "RouteMessageOutboundConnector = secure\n"
	                 "[TransportRule c]\n"
	                 "StopRuleProcessing = true\n",
	        err, sizeof(err));
	const struct conf_transport_rule *a, *b, *cc;

	(void)state;
	if (c == NULL)
		fail_msg("%s", err);
	a = conf_transport_rule(c, "a");
	b = conf_transport_rule(c, "B");
	cc = conf_transport_rule(c, "c");
	assert_non_null(a);
	assert_int_equal(a->priority, 7);
	/* without Priority: after the highest given, in file order */
	assert_int_equal(b->priority, 8);
	assert_int_equal(cc->priority, 9);
	assert_string_equal(rule_name(rule_set_rule(c->rules, 0)), "a");
	assert_int_equal(a->cond.subject_contains_words.n, 3);
	assert_string_equal(a->cond.subject_contains_words.v[0], "budget, q3");
	assert_string_equal(a->cond.subject_contains_words.v[1], "plain");
	assert_string_equal(
	    a->cond.subject_contains_words.v[2], "with \\\"quotes\\\"");
	assert_string_equal(a->cond.recipient_domain_is.v[0], "fabrikam.com");
	assert_string_equal(rule_reject_reply(rule_set_rule(c->rules, 0)),
	    "550 5.7.950 Delivery not authorized, message refused");
	conf_free(c);
}

static void
test_dump_round_trip(void **state)
{
	char err[4096], *d1 = NULL, *d2 = NULL,
	                path[] = "/tmp/sluice-rd-XXXXXX";
	size_t l1 = 0, l2 = 0;
	struct conf *c =
	    tr_load(BASE "[TransportRule \"Every, key; here\"]\n"
	                 "Priority = 3\n"
	                 "Mode = AuditAndNotify\n"
	                 "Comments = a; b\n"
	                 "SenderAddressLocation = HeaderOrEnvelope\n"
	                 "RuleErrorAction = Defer\n"
	                 "SenderDomainIs = a.org, b.org\n"
	                 "ExceptIfSentTo = x@y.org\n"
	                 "FromScope = InOrganization\n"
	                 "ExceptIfSentToScope = ExternalPartner\n"
	                 "FromAddressMatchesPatterns = \"^a,b\", \"x;y#z\"\n"
	                 "SenderIpRanges = 10.0.0.0/8, 192.0.2.1-192.0.2.9\n"
	                 "HeaderContainsMessageHeader = X-A\n"
	                 "HeaderContainsWords = \"two words\", one\n"
	                 "MessageSizeOver = 2MB\n"
	                 "RouteMessageOutboundRequireTls = true\n"
	                 "RouteMessageOutboundConnector = Secure\n"
	                 "SetHeaderName = X-B\n"
	                 "SetHeaderValue = \"v; w\"\n"
	                 "PrependSubject = \"[EXT] \"\n"
	                 "RedirectMessageTo = r@x.org\n"
	                 "StopRuleProcessing = true\n",
	        err, sizeof(err));
	struct conf *c2;
	FILE *fp;
	int fd;

	(void)state;
	if (c == NULL)
		fail_msg("%s", err);
	fp = open_memstream(&d1, &l1);
	conf_dump_ini(c, fp);
	fclose(fp);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d1, l1), (ssize_t)l1);
	close(fd);
	c2 = conf_load(path, stderr);
	unlink(path);
	assert_non_null(c2);
	fp = open_memstream(&d2, &l2);
	conf_dump_ini(c2, fp);
	fclose(fp);
	/* the first line names the file */
	assert_string_equal(strchr(d1, '\n'), strchr(d2, '\n'));
	assert_string_equal(conf_transport_rule(c2, "Every, key; here")
	                        ->cond.from_address_patterns.v[1],
	    "x;y#z");
	assert_string_equal(
	    conf_transport_rule(c2, "Every, key; here")->prepend_subject,
	    "[EXT] ");
	free(d1);
	free(d2);
	conf_free(c);
	conf_free(c2);
}

struct lint_out {
	char text[4096];
	size_t w;
};

static void
lint_cb(void *arg, int line, const char *rule, const char *msg)
{
	struct lint_out *o = arg;

	o->w += (size_t)snprintf(o->text + o->w, sizeof(o->text) - o->w,
	    "%d %s: %s\n", line, rule, msg);
}

static void
test_lint(void **state)
{
	char err[4096];
	struct lint_out o = {"", 0};
	struct conf *c =
	    tr_load(BASE "[TransportRule good]\n" /* 13 */
	                 "Priority = 1\n"
	                 "RecipientDomainIs = fabrikam.com\n"
	                 "RouteMessageOutboundRequireTls = true\n"
	                 "[TransportRule all]\n" /* 17 */
	                 "Priority = 2\n"
	                 "SetHeaderName = X-A\n"
	                 "SetHeaderValue = b\n"
	                 "[TransportRule covered]\n" /* 21 */
	                 "Priority = 3\n"
	                 "RecipientDomainIs = sub.contoso.com\n"
	                 "ExceptIfRecipientDomainIs = contoso.com\n"
	                 "StopRuleProcessing = true\n"
	                 "[TransportRule contradiction]\n" /* 26 */
	                 "Priority = 4\n"
	                 "SenderDomainIs = contoso.com\n"
	                 "From = a@fabrikam.com\n"
	                 "StopRuleProcessing = true\n"
	                 "[TransportRule huge]\n" /* 31 */
	                 "Priority = 5\n"
	                 "MessageSizeOver = 10MB\n"
	                 "StopRuleProcessing = true\n"
	                 "[TransportRule outside]\n" /* 35 */
	                 "Priority = 6\n"
	                 "FromScope = InOrganization\n"
	                 "SenderDomainIs = fabrikam.com\n"
	                 "StopRuleProcessing = true\n"
	                 "[TransportRule stopper]\n" /* 40 */
	                 "Priority = 7\n"
	                 "StopRuleProcessing = true\n"
	                 "[TransportRule shadowed]\n" /* 43 */
	                 "Priority = 8\n"
	                 "SentTo = a@b.org\n"
	                 "StopRuleProcessing = true\n",
	        err, sizeof(err));
	unsigned n;

	(void)state;
	if (c == NULL)
		fail_msg("%s", err);
	n = rule_lint(c->rules, c, lint_cb, &o);
	assert_null(strstr(o.text, "good:"));
	assert_non_null(
	    strstr(o.text, "17 all: rule \"all\" has no condition"));
	assert_non_null(strstr(o.text,
	    "21 covered: rule \"covered\" can never match: "
	    "ExceptIfRecipientDomainIs covers RecipientDomainIs"));
	assert_non_null(strstr(o.text,
	    "26 contradiction: rule \"contradiction\" can never match: no "
	    "From address is in a SenderDomainIs domain"));
	assert_non_null(
	    strstr(o.text, "31 huge: rule \"huge\" can never match: "
	                   "MessageSizeOver is not below"));
	assert_non_null(strstr(o.text, "35 outside: rule \"outside\" can never "
	                               "match: FromScope InOrganization"));
	assert_non_null(strstr(o.text, "43 shadowed: rule \"shadowed\" never "
	                               "runs: rule \"stopper\" comes first"));
	/* all, covered, contradiction, huge, outside, stopper, shadowed */
	assert_int_equal(n, 7);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validation_errors),
	    cmocka_unit_test(test_accepted_values),
	    cmocka_unit_test(test_dump_round_trip),
	    cmocka_unit_test(test_lint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
