/*
 * route.c - recipient routing, as Exchange selects send connectors.
 *
 * Pure: no I/O, no clock, no DNS; the next hop (MX or smart hosts) is the
 * delivery side's business.  Specificity is a number so that the rule
 * stays one comparison: an exact domain beats any wildcard, a longer
 * "*.suffix" beats a shorter one, and "*" matches everything last.
 *
 * The TLS policy of a routed recipient is not decided here but by
 * tls_policy_decide() (src/tls/tls_policy.c), the function the SMTP client
 * calls for every next hop, so `sluicectl route` prints the daemon's
 * policy and not a copy of it.  What transport rules decided at
 * acceptance (route_recipient: a scoped connector, a TLS requirement) is
 * applied on top of the same decision, never instead of it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route/route.h"

/* -1: no match; otherwise larger is more specific. */
static int
route_specificity(const char *space, const char *domain)
{
	size_t dl = strlen(domain), sl;

	if (strcmp(space, "*") == 0)
		return 0;
	if (strncmp(space, "*.", 2) == 0) {
		space += 2;
		sl = strlen(space);
		/* the domain itself and every subdomain (SPEC: TlsDomain too)
		 */
		if (strcasecmp(domain, space) == 0)
			return 1 + (int)sl;
		if (dl > sl + 1 && domain[dl - sl - 1] == '.' &&
		    strcasecmp(domain + dl - sl, space) == 0)
			return 1 + (int)sl;
		return -1;
	}
	if (strcasecmp(space, domain) == 0)
		return 1000 + (int)dl;
	return -1;
}

void
route_domain(const struct conf *conf, const char *domain, struct route *r)
{
	const struct conf_accepted_domain *ad =
	    conf_accepted_domain(conf, domain);
	int best = -1;

	memset(r, 0, sizeof(*r));
	if (ad != NULL && ad->type == DOMAIN_AUTHORITATIVE) {
		r->kind = ROUTE_LOCAL;
		r->domain = ad;
		snprintf(r->why, sizeof(r->why),
		    "%s is an Authoritative accepted domain: local delivery",
		    domain);
		return;
	}
	for (size_t i = 0; i < conf->nsend_connectors; i++) {
		const struct conf_send_connector *sc =
		    &conf->send_connectors[i];

		/* a scoped connector is only ever chosen by a rule */
		if (!sc->enabled || sc->is_transport_rule_scoped)
			continue;
		for (size_t j = 0; j < sc->naddress_spaces; j++) {
			const struct conf_address_space *as =
			    &sc->address_spaces[j];
			int spec = route_specificity(as->domain, domain);

			if (spec < 0)
				continue;
			if (spec > best ||
			    (spec == best && as->cost < r->space->cost)) {
				best = spec;
				r->connector = sc;
				r->space = as;
			}
		}
	}
	if (r->connector == NULL) {
		r->kind = ROUTE_NONE;
		snprintf(r->why, sizeof(r->why),
		    "no enabled send connector has an address space that "
		    "matches %s: the mail waits in the Unreachable queue",
		    domain);
		return;
	}
	r->kind = ROUTE_CONNECTOR;
	r->domain = ad;
	{
		struct tls_policy_input in = {
		    .conf = conf, .connector = r->connector, .domain = domain};

		tls_policy_decide(&in, &r->tls);
	}
	snprintf(r->why, sizeof(r->why),
	    "send connector \"%s\": address space %s;%u is the most specific "
	    "match%s",
	    r->connector->name, r->space->domain, r->space->cost,
	    best == 0 ? " (catch-all)" : "");
}

const struct conf_accepted_domain *
route_postmaster(const struct conf *conf)
{
	for (size_t i = 0; i < conf->naccepted_domains; i++)
		if (conf->accepted_domains[i].type == DOMAIN_AUTHORITATIVE)
			return &conf->accepted_domains[i];
	return NULL;
}

/* The TLS policy of a connector route, with a rule's requirement. */
static void
route_policy(const struct conf *conf, const char *domain, const char *rule,
    struct route *r)
{
	struct tls_policy_input in = {.conf = conf,
	    .connector = r->connector,
	    .domain = domain,
	    .rule = rule};

	tls_policy_decide(&in, &r->tls);
}

void
route_recipient(const struct conf *conf, const char *domain,
    const struct route_rules *rr, struct route *r)
{
	const struct conf_send_connector *sc;
	const char *tls_rule;

	route_domain(conf, domain, r);
	if (rr == NULL || r->kind == ROUTE_LOCAL)
		return;
	if (rr->connector != NULL && rr->connector[0] != '\0') {
		sc = conf_send_connector(conf, rr->connector);
		if (sc == NULL || !sc->enabled ||
		    !sc->is_transport_rule_scoped) {
			memset(&r->tls, 0, sizeof(r->tls));
			r->kind = ROUTE_WAIT;
			r->connector = NULL;
			r->space = NULL;
			r->connector_rule = rr->connector_rule;
			snprintf(r->why, sizeof(r->why),
			    "transport rule \"%s\" routes to send connector "
			    "\"%s\", which is %s: the mail waits in the "
			    "Unreachable queue",
			    rr->connector_rule ? rr->connector_rule : "?",
			    rr->connector,
			    sc == NULL     ? "not configured"
			    : !sc->enabled ? "disabled"
			                   : "not IsTransportRuleScoped");
			return;
		}
		r->kind = ROUTE_CONNECTOR;
		r->connector = sc;
		r->space = NULL;
		r->connector_rule = rr->connector_rule;
		route_policy(conf, domain, NULL, r);
		snprintf(r->why, sizeof(r->why),
		    "send connector \"%s\": chosen by transport rule \"%s\" "
		    "(RouteMessageOutboundConnector)",
		    sc->name, rr->connector_rule ? rr->connector_rule : "?");
	}
	tls_rule = rr->tls_rule;
	if (tls_rule != NULL && tls_rule[0] != '\0' &&
	    r->kind == ROUTE_CONNECTOR) {
		r->tls_rule = tls_rule;
		route_policy(conf, domain, tls_rule, r);
		r->tls_floor = r->tls.source == TLS_SOURCE_TRANSPORT_RULE;
	}
}

void
route_tls_policy(const struct route *r, char *out, size_t len)
{
	if (r->kind != ROUTE_CONNECTOR) {
		snprintf(out, len, "none (no network hop)");
		return;
	}
	tls_policy_describe(&r->tls, out, len);
}

void
route_queue_name(const struct route *r, const char *domain, char *out,
    size_t len, const char **type)
{
	switch (r->kind) {
	case ROUTE_LOCAL:
		snprintf(out, len, "Local");
		*type = "MaildirDelivery";
		break;
	case ROUTE_NONE:
	case ROUTE_WAIT: /* a rule's connector is gone: as unroutable */
		snprintf(out, len, "Unreachable");
		*type = "Unreachable";
		break;
	case ROUTE_CONNECTOR:
		if (r->connector->dns_routing_enabled) {
			if (r->connector_rule != NULL)
				snprintf(out, len, "%s/%s", domain,
				    r->connector->name);
			else
				snprintf(out, len, "%s", domain);
			*type = "DnsConnectorDelivery";
		} else {
			snprintf(out, len, "%s", r->connector->name);
			*type = "SmartHostConnectorDelivery";
		}
		if (r->tls_floor) {
			size_t w = strlen(out);

			snprintf(out + w, len > w ? len - w : 0, "/RequireTls");
		}
		break;
	}
}
