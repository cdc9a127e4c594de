/*
 * conf_rules.c - validation of [TransportRule] sections and of the send
 * connectors they route to (SPEC 5), then the compiled rule set.
 *
 * Values were checked key by key while parsing (addresses, status codes,
 * patterns with their PCRE2 error offset); what is left needs the whole
 * file: unique priorities, halves of a pair given alone, actions that
 * contradict each other, and RouteMessageOutboundConnector naming a send
 * connector with IsTransportRuleScoped.  Each error is reported at the
 * line of the key to edit.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_keys.h"
#include "rules/rules.h"

/* Exchange allows 300 rules; beyond this many something is wrong. */
#define CONF_RULES_MAX 1000

static void
rules_scoped_connectors(struct conf *c, struct conf_parse *p)
{
	for (size_t i = 0; i < c->nsend_connectors; i++) {
		const struct conf_send_connector *sc = &c->send_connectors[i];

		if (sc->is_transport_rule_scoped && sc->naddress_spaces > 0)
			conf_error_at(p, CONF_SEC_SEND, i, "AddressSpaces",
			    "[SendConnector %s] is IsTransportRuleScoped: it "
			    "is "
			    "used only when a transport rule routes to it and "
			    "takes no AddressSpaces",
			    sc->name);
		else if (!sc->is_transport_rule_scoped &&
		         sc->naddress_spaces == 0)
			conf_error_at(p, CONF_SEC_SEND, i, NULL,
			    "[SendConnector %s] needs AddressSpaces", sc->name);
	}
}

/* A pair of keys given together or not at all. */
static void
rules_pair(struct conf_parse *p, size_t i, const char *a, int has_a,
    const char *b, int has_b)
{
	if (has_a && !has_b)
		conf_error_at(p, CONF_SEC_RULE, i, a, "%s needs %s", a, b);
	else if (has_b && !has_a)
		conf_error_at(p, CONF_SEC_RULE, i, b, "%s needs %s", b, a);
}

static void
rules_pairs(struct conf_parse *p, size_t i,
    const struct conf_rule_predicates *pr, const char *pfx)
{
	char a[80], b[80];

	snprintf(a, sizeof(a), "%sHeaderContainsMessageHeader", pfx);
	snprintf(b, sizeof(b), "%sHeaderContainsWords", pfx);
	rules_pair(p, i, a, pr->header_contains_name[0] != '\0', b,
	    pr->header_contains_words.n > 0);
	snprintf(a, sizeof(a), "%sHeaderMatchesMessageHeader", pfx);
	snprintf(b, sizeof(b), "%sHeaderMatchesPatterns", pfx);
	rules_pair(p, i, a, pr->header_matches_name[0] != '\0', b,
	    pr->header_matches_patterns.n > 0);
}

static void
rules_one(struct conf *c, struct conf_parse *p, size_t i)
{
	const struct conf_transport_rule *r = &c->transport_rules[i];
	int reject = r->reject_text[0] != '\0' || r->reject_code[0] != '\0';

	rules_pairs(p, i, &r->cond, "");
	rules_pairs(p, i, &r->except, "ExceptIf");
	rules_pair(p, i, "SetHeaderName", r->set_header_name[0] != '\0',
	    "SetHeaderValue", r->set_header_value[0] != '\0');
	if (r->set_header_name[0] != '\0' &&
	    strcasecmp(r->set_header_name, RULE_HISTORY_HEADER) == 0)
		conf_error_at(p, CONF_SEC_RULE, i, "SetHeaderName",
		    "SetHeaderName: %s is written by Sluice itself",
		    RULE_HISTORY_HEADER);
	if (r->route_connector[0] != '\0') {
		const struct conf_send_connector *sc =
		    conf_send_connector(c, r->route_connector);

		if (sc == NULL)
			conf_error_at(p, CONF_SEC_RULE, i,
			    "RouteMessageOutboundConnector",
			    "RouteMessageOutboundConnector: no [SendConnector "
			    "%s]",
			    r->route_connector);
		else if (!sc->is_transport_rule_scoped)
			conf_error_at(p, CONF_SEC_RULE, i,
			    "RouteMessageOutboundConnector",
			    "RouteMessageOutboundConnector: [SendConnector %s] "
			    "needs IsTransportRuleScoped = true",
			    r->route_connector);
	}
	if (reject && r->delete_message)
		conf_error_at(p, CONF_SEC_RULE, i, "DeleteMessage",
		    "DeleteMessage cannot be combined with "
		    "RejectMessageReasonText or "
		    "RejectMessageEnhancedStatusCode");
	if ((reject || r->delete_message) &&
	    (r->redirect_to.n > 0 || r->blind_copy_to.n > 0))
		conf_error_at(p, CONF_SEC_RULE, i,
		    r->redirect_to.n > 0 ? "RedirectMessageTo" : "BlindCopyTo",
		    "a rule that rejects or deletes the message cannot also "
		    "redirect or copy it");
	if (!r->route_require_tls && r->route_connector[0] == '\0' &&
	    r->set_header_name[0] == '\0' && r->remove_header[0] == '\0' &&
	    r->prepend_subject[0] == '\0' && !reject && !r->delete_message &&
	    r->redirect_to.n == 0 && r->blind_copy_to.n == 0 &&
	    !r->stop_rule_processing)
		conf_error_at(p, CONF_SEC_RULE, i, NULL,
		    "[TransportRule %s] has no action (expected at least one "
		    "of RouteMessageOutboundRequireTls, "
		    "RouteMessageOutboundConnector, SetHeaderName, "
		    "RemoveHeader, PrependSubject, RejectMessageReasonText, "
		    "DeleteMessage, RedirectMessageTo, BlindCopyTo, "
		    "StopRuleProcessing)",
		    r->name);
}

/* Unique priorities; rules without one come after, in file order. */
static void
rules_priorities(struct conf *c, struct conf_parse *p)
{
	unsigned next = 0;

	for (size_t i = 0; i < c->ntransport_rules; i++) {
		const struct conf_transport_rule *r = &c->transport_rules[i];

		if (!r->priority_set)
			continue;
		if (r->priority >= next)
			next = r->priority + 1;
		for (size_t j = 0; j < i; j++) {
			const struct conf_transport_rule *o =
			    &c->transport_rules[j];

			if (o->priority_set && o->priority == r->priority)
				conf_error_at(p, CONF_SEC_RULE, i, "Priority",
				    "Priority %u is already the priority of "
				    "[TransportRule %s] (line %d); priorities "
				    "are unique",
				    r->priority, o->name, o->line);
		}
	}
	for (size_t i = 0; i < c->ntransport_rules; i++) {
		struct conf_transport_rule *r = &c->transport_rules[i];

		if (!r->priority_set)
			r->priority = next++;
	}
}

void
conf_validate_rules(struct conf *c, struct conf_parse *p)
{
	char why[300];

	rules_scoped_connectors(c, p);
	if (c->ntransport_rules > CONF_RULES_MAX)
		conf_error_at(p, CONF_SEC_RULE, CONF_RULES_MAX, NULL,
		    "more than %d transport rules", CONF_RULES_MAX);
	rules_priorities(c, p);
	for (size_t i = 0; i < c->ntransport_rules; i++)
		rules_one(c, p, i);
	/* The compiled set, always (an empty one costs nothing): the
	 * patterns were compiled once already, so this only fails for want
	 * of memory. */
	if ((c->rules = rule_set_build(c, why, sizeof(why))) == NULL)
		conf_error_at(
		    p, CONF_SEC_TRANSPORT, 0, NULL, "transport rules: %s", why);
}
