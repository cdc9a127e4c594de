/*
 * test_rules_eval.c - running a rule set over messages
 * (src/rules/rule_eval.c) and the header actions (rule_rewrite.c):
 * priority order, StopRuleProcessing per recipient, reject and delete of
 * all or some recipients, redirect, blind copies without duplicates,
 * Audit mode, disabled rules, RuleErrorAction, the copies a message is
 * split into, and what each copy's header looks like.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_rules_util.h"

static const char conf_text[] =
    "[Transport]\n"
    "QueueDirectory = /tmp/sluice-rules-eval\n"
    "[AcceptedDomain contoso.com]\n"
    "[ReceiveConnector r]\n"
    "Bindings = 127.0.0.1:2525\n"
    "[SendConnector Internet]\n"
    "AddressSpaces = *\n"
    "[SendConnector Secure]\n"
    "IsTransportRuleScoped = true\n"
    "DNSRoutingEnabled = false\n"
    "SmartHosts = [192.0.2.1]\n"
    "[TransportRule \"After stop\"]\n" /* file order is not run order */
    "Priority = 40\n"
    "RecipientDomainIs = fabrikam.com\n"
    "PrependSubject = \"[F] \"\n"
    "[TransportRule \"Tag fabrikam\"]\n"
    "Priority = 10\n"
    "RecipientDomainIs = fabrikam.com\n"
    "SetHeaderName = X-Tag\n"
    "SetHeaderValue = fab\n"
    "[TransportRule \"TLS fabrikam\"]\n"
    "Priority = 20\n"
    "RecipientDomainIs = fabrikam.com\n"
    "RouteMessageOutboundRequireTls = true\n"
    "[TransportRule \"Route legal\"]\n"
    "Priority = 30\n"
    "SentTo = legal@fabrikam.com\n"
    "RouteMessageOutboundConnector = Secure\n"
    "StopRuleProcessing = true\n"
    "[TransportRule \"Reject spam\"]\n"
    "Priority = 5\n"
    "SubjectContainsWords = viagra\n"
    "RejectMessageReasonText = no spam here\n"
    "RejectMessageEnhancedStatusCode = 5.7.901\n"
    "[TransportRule \"Reject one\"]\n"
    "Priority = 6\n"
    "SentTo = blocked@other.org\n"
    "RejectMessageReasonText = blocked\n"
    "[TransportRule Delete]\n"
    "Priority = 7\n"
    "SentTo = void@other.org\n"
    "DeleteMessage = true\n"
    "[TransportRule Redirect]\n"
    "Priority = 8\n"
    "SentTo = old@other.org\n"
    "RedirectMessageTo = new@other.org, new2@other.org\n"
    "[TransportRule Bcc]\n"
    "Priority = 9\n"
    "SubjectContainsWords = audit\n"
    "BlindCopyTo = auditor@contoso.com, new@other.org\n"
    "[TransportRule \"Audit big\"]\n"
    "Priority = 60\n"
    "Mode = Audit\n"
    "MessageSizeOver = 1MB\n"
    "DeleteMessage = true\n"
    "[TransportRule Disabled]\n"
    "Priority = 61\n"
    "Enabled = false\n"
    "DeleteMessage = true\n"
    "[TransportRule Remove]\n"
    "Priority = 50\n"
    "HeaderContainsMessageHeader = X-Remove-Me\n"
    "HeaderContainsWords = yes\n"
    "RemoveHeader = X-Remove-Me\n"
    "[TransportRule \"TLS other\"]\n"
    "Priority = 51\n"
    "SentTo = tls@other.org\n"
    "RouteMessageOutboundRequireTls = true\n"
    "[TransportRule Defer]\n"
    "Priority = 1\n"
    "RuleErrorAction = Defer\n"
    "SubjectMatchesPatterns = \"^(a|aa)+$\"\n"
    "DeleteMessage = true\n"
    "[TransportRule Unicode]\n"
    "Priority = 52\n"
    "SentTo = uni@other.org\n"
    "PrependSubject = \"[Extérieur] \"\n"
    "SetHeaderName = X-Note\n"
    "SetHeaderValue = café au lait\n";

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

static size_t
idx(const char *name)
{
	const struct rule *r = tr_rule(conf, name);

	assert_non_null(r);
	for (size_t i = 0; i < rule_set_count(conf->rules); i++)
		if (rule_set_rule(conf->rules, i) == r)
			return i;
	return 0;
}

static void
eval(struct rule_result *res, const char *subject, const char *const *rcpts,
    size_t n, uint64_t size)
{
	char headers[256];
	static struct tr_msg msg;

	snprintf(headers, sizeof(headers),
	    "From: a@b.org\r\nSubject: %s\r\nX-Tag: old\r\n", subject);
	tr_msg(&msg, "a@b.org", rcpts, n, headers, NULL);
	if (size)
		msg.m.size = size;
	assert_int_equal(rule_eval(conf->rules, conf, &msg.m, res), 0);
}

static void
test_priority_and_stop(void **state)
{
	const char *rcpts[] = {"legal@fabrikam.com", "sales@fabrikam.com"};
	struct rule_result res;
	const struct rule_track *legal, *sales;

	(void)state;
	/* sorted by Priority, not by file order */
	assert_string_equal(rule_name(rule_set_rule(conf->rules, 0)), "Defer");
	assert_true(idx("Tag fabrikam") < idx("After stop"));
	eval(&res, "hello", rcpts, 2, 0);
	legal = &res.tracks[0];
	sales = &res.tracks[1];
	assert_true(rule_bit(legal->fired, idx("Tag fabrikam")));
	assert_true(rule_bit(legal->fired, idx("TLS fabrikam")));
	assert_true(rule_bit(legal->fired, idx("Route legal")));
	/* StopRuleProcessing stops legal's pass, not sales' */
	assert_false(rule_bit(legal->fired, idx("After stop")));
	assert_true(rule_bit(sales->fired, idx("After stop")));
	assert_ptr_equal(legal->tls_rule, tr_rule(conf, "TLS fabrikam"));
	assert_ptr_equal(legal->connector_rule, tr_rule(conf, "Route legal"));
	assert_null(sales->connector_rule);
	/* different header actions: two copies */
	assert_int_equal(res.ncopies, 2);
	assert_int_not_equal(legal->copy, sales->copy);
	assert_int_equal(res.nrcpts, 2);
	assert_true(res.fired_any);
	rule_result_free(&res);
}

static void
test_copies(void **state)
{
	const char *same[] = {"a@fabrikam.com", "b@sub.fabrikam.com"};
	const char *split[] = {"a@fabrikam.com", "x@other.org"};
	const char *tls[] = {"tls@other.org", "plain@other.org"};
	const char *none[] = {"x@other.org"};
	struct rule_result res;

	(void)state;
	eval(&res, "hello", same, 2, 0);
	assert_int_equal(res.ncopies, 1);
	assert_int_equal(res.copies[0].nrcpts, 2);
	assert_true(res.copies[0].rewrite);
	rule_result_free(&res);

	eval(&res, "hello", split, 2, 0);
	assert_int_equal(res.ncopies, 2);
	assert_true(res.copies[res.tracks[0].copy].rewrite);
	assert_false(res.copies[res.tracks[1].copy].rewrite);
	assert_int_equal(res.copies[0].nrcpts, 1);
	rule_result_free(&res);

	/* a rule without header actions never splits: one copy whose
	 * history names the rule */
	eval(&res, "hello", tls, 2, 0);
	assert_int_equal(res.ncopies, 1);
	assert_true(rule_bit(res.copies[0].history, idx("TLS other")));
	assert_true(res.copies[0].rewrite);
	assert_non_null(res.tracks[0].tls_rule);
	assert_null(res.tracks[1].tls_rule);
	rule_result_free(&res);

	eval(&res, "hello", none, 1, 0);
	assert_int_equal(res.ncopies, 1);
	assert_false(res.copies[0].rewrite);
	assert_false(res.fired_any);
	rule_result_free(&res);
}

static void
test_reject_and_delete(void **state)
{
	const char *two[] = {"blocked@other.org", "ok@other.org"};
	const char *one[] = {"blocked@other.org"};
	const char *del[] = {"void@other.org"};
	const char *deltwo[] = {"void@other.org", "ok@other.org"};
	const char *mixed[] = {"void@other.org", "blocked@other.org"};
	struct rule_result res;

	(void)state;
	eval(&res, "cheap viagra", two, 2, 0);
	assert_true(res.reject_all);
	assert_string_equal(
	    rule_reject_reply(res.reject_rule), "550 5.7.901 no spam here");
	assert_int_equal(res.nrcpts, 0);
	rule_result_free(&res);

	/* some refused: stored to fail with an NDR, the rest delivered */
	eval(&res, "hi", two, 2, 0);
	assert_false(res.reject_all);
	assert_int_equal(res.nrcpts, 2);
	assert_int_equal(res.tracks[0].fate, RULE_FATE_REJECT);
	assert_int_equal(res.tracks[1].fate, RULE_FATE_DELIVER);
	rule_result_free(&res);

	eval(&res, "hi", one, 1, 0);
	assert_true(res.reject_all);
	assert_string_equal(
	    rule_reject_reply(res.reject_rule), "550 5.7.1 blocked");
	rule_result_free(&res);

	eval(&res, "hi", del, 1, 0);
	assert_true(res.delete_all);
	assert_false(res.reject_all);
	assert_int_equal(res.nrcpts, 0);
	rule_result_free(&res);

	eval(&res, "hi", deltwo, 2, 0);
	assert_false(res.delete_all);
	assert_int_equal(res.nrcpts, 1);
	assert_string_equal(res.rcpts[0].addr, "ok@other.org");
	rule_result_free(&res);

	/* one deleted, one refused, none left: the refusal is the reply */
	eval(&res, "hi", mixed, 2, 0);
	assert_true(res.reject_all);
	assert_string_equal(
	    rule_reject_reply(res.reject_rule), "550 5.7.1 blocked");
	rule_result_free(&res);
}

static void
test_redirect_and_bcc(void **state)
{
	const char *old[] = {"old@other.org"};
	const char *two[] = {"new@other.org", "x@other.org"};
	struct rule_result res;

	(void)state;
	eval(&res, "hi", old, 1, 0);
	assert_int_equal(res.nrcpts, 2);
	assert_string_equal(res.rcpts[0].addr, "new@other.org");
	assert_string_equal(res.rcpts[1].addr, "new2@other.org");
	assert_int_equal(res.rcpts[0].origin, RULE_ORIGIN_REDIRECT);
	assert_ptr_equal(res.rcpts[0].added_by, tr_rule(conf, "Redirect"));
	rule_result_free(&res);

	/* BlindCopyTo adds once; an address already there is not added */
	eval(&res, "audit this", two, 2, 0);
	assert_int_equal(res.nrcpts, 3);
	assert_string_equal(res.rcpts[0].addr, "new@other.org");
	assert_int_equal(res.rcpts[0].origin, RULE_ORIGIN_ENVELOPE);
	assert_string_equal(res.rcpts[1].addr, "auditor@contoso.com");
	assert_int_equal(res.rcpts[1].origin, RULE_ORIGIN_BLIND_COPY);
	assert_int_equal(res.rcpts[1].track, 0);
	assert_string_equal(res.rcpts[2].addr, "x@other.org");
	rule_result_free(&res);
}

static void
test_audit_disabled_defer(void **state)
{
	const char *one[] = {"x@other.org"};
	struct rule_result res;

	(void)state;
	/* Audit: matched and reported, nothing done */
	eval(&res, "hi", one, 1, 2 * 1024 * 1024);
	assert_true(res.audited_any);
	assert_true(rule_bit(res.tracks[0].audited, idx("Audit big")));
	assert_false(rule_bit(res.tracks[0].fired, idx("Audit big")));
	assert_int_equal(res.tracks[0].fate, RULE_FATE_DELIVER);
	assert_false(res.delete_all);
	assert_false(rule_bit(res.tracks[0].fired, idx("Disabled")));
	assert_false(res.copies[0].rewrite);
	rule_result_free(&res);

	/* a failing pattern under RuleErrorAction = Defer */
	eval(&res, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", one,
	    1, 0);
	assert_ptr_equal(res.defer_rule, tr_rule(conf, "Defer"));
	rule_result_free(&res);
}

/* The copy of track t of a message with these headers, rewritten. */
static char *
rewrite(const char *headers, const char *rcpt, size_t *len)
{
	const char *rcpts[1] = {rcpt};
	struct tr_msg msg;
	struct rule_result res;
	struct buf out;

	tr_msg(&msg, "a@b.org", rcpts, 1, headers, NULL);
	assert_int_equal(rule_eval(conf->rules, conf, &msg.m, &res), 0);
	buf_init(&out, 1 << 20);
	assert_int_equal(rule_rewrite(conf->rules, &res.copies[0], msg.m.data,
	                     msg.m.len, &out),
	    0);
	rule_result_free(&res);
	return buf_steal(&out, len);
}

static void
test_rewrite(void **state)
{
	size_t len;
	char *m;

	(void)state;
	/* SetHeader replaces every X-Tag; the prefix goes in front */
	m = rewrite("Received: by x\r\nX-Tag: one\r\nSubject: Hello\r\n"
	            "x-tag: two\r\n\tfolded\r\n",
	    "sales@fabrikam.com", &len);
	assert_string_equal(m,
	    "Received: by x\r\nSubject: [F] Hello\r\nX-Tag: fab\r\n"
	    "X-Sluice-Organization-Rules-Execution-History: Tag fabrikam; "
	    "TLS fabrikam;\r\n After stop\r\n\r\nThe body.\r\n");
	free(m);
	/* no Subject: one is added; an existing prefix is not doubled */
	m = rewrite("From: a@b.org\r\n", "sales@fabrikam.com", &len);
	assert_non_null(strstr(m, "\r\nSubject: [F]\r\n"));
	free(m);
	m = rewrite("Subject: [f] Hello\r\n", "sales@fabrikam.com", &len);
	assert_non_null(strstr(m, "Subject: [f] Hello\r\n"));
	assert_null(strstr(m, "[F]"));
	free(m);
	/* RemoveHeader removes every field of that name */
	m = rewrite("X-Remove-Me: yes\r\nA: b\r\nx-remove-me: no\r\n",
	    "x@other.org", &len);
	assert_null(strcasestr(m, "X-Remove-Me"));
	assert_non_null(strstr(m, "A: b\r\n"));
	assert_non_null(strstr(m, "Execution-History: Remove\r\n\r\n"));
	free(m);
	/* non-ASCII text is written as encoded-words */
	m = rewrite("Subject: Salut\r\n", "uni@other.org", &len);
	assert_non_null(strstr(m, "Subject: =?UTF-8?B?W0V4dMOpcmlldXJd?= "
	                          "Salut\r\n"));
	assert_non_null(strstr(m, "X-Note: =?UTF-8?B?Y2Fmw6kgYXUgbGFpdA==?="));
	free(m);
}

/* A long execution history is folded: no line over 78 octets. */
static void
test_history_folding(void **state)
{
	char text[16384], err[2048];
	size_t w = 0;
	struct conf *c;
	struct tr_msg msg;
	const char *rcpts[1] = {"x@y.org"};
	struct rule_result res;
	struct buf out;
	const char *line;

	(void)state;
	w += (size_t)snprintf(text + w, sizeof(text) - w,
	    "[Transport]\nQueueDirectory = /tmp/x\n"
	    "[ReceiveConnector r]\nBindings = 127.0.0.1:2525\n");
	for (int i = 0; i < 60; i++)
		w += (size_t)snprintf(text + w, sizeof(text) - w,
		    "[TransportRule \"A rule with a long name number %d\"]\n"
		    "BlindCopyTo = a%d@x.org\n",
		    i, i);
	c = tr_load(text, err, sizeof(err));
	assert_non_null(c);
	tr_msg(&msg, "a@b.org", rcpts, 1, "Subject: s\r\n", NULL);
	assert_int_equal(rule_eval(c->rules, c, &msg.m, &res), 0);
	assert_int_equal(res.nrcpts, 61);
	buf_init(&out, 1 << 20);
	assert_int_equal(
	    rule_rewrite(c->rules, &res.copies[0], msg.m.data, msg.m.len, &out),
	    0);
	for (line = out.data; *line != '\0';) {
		const char *nl = strstr(line, "\r\n");

		assert_non_null(nl);
		assert_true(nl - line <= 78);
		line = nl + 2;
	}
	assert_non_null(strstr(out.data, "number 59\r\n\r\nThe body"));
	buf_free(&out);
	rule_result_free(&res);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_priority_and_stop),
	    cmocka_unit_test(test_copies),
	    cmocka_unit_test(test_reject_and_delete),
	    cmocka_unit_test(test_redirect_and_bcc),
	    cmocka_unit_test(test_audit_disabled_defer),
	    cmocka_unit_test(test_rewrite),
	    cmocka_unit_test(test_history_folding),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
