/*
 * route.c - recipient routing, as Exchange selects send connectors.
 *
 * Pure: no I/O, no clock, no DNS; the next hop (MX or smart hosts) is the
 * delivery side's business.  Specificity is a number so that the rule
 * stays one comparison: an exact domain beats any wildcard, a longer
 * "*.suffix" beats a shorter one, and "*" matches everything last.
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
		    "matches %s (5.4.4)",
		    domain);
		return;
	}
	r->kind = ROUTE_CONNECTOR;
	r->domain = ad;
	r->domain_secure =
	    r->connector->domain_secure_enabled &&
	    conf_strlist_has(&conf->transport.send_domain_secure, domain);
	snprintf(r->why, sizeof(r->why),
	    "send connector \"%s\": address space %s;%u is the most specific "
	    "match%s",
	    r->connector->name, r->space->domain, r->space->cost,
	    best == 0 ? " (catch-all)" : "");
}

void
route_recipient(const struct conf *conf, const char *domain,
    const struct route_rules *rr, struct route *r)
{
	const struct conf_send_connector *sc;
	const struct conf_send_connector *tls_from;

	route_domain(conf, domain, r);
	if (rr == NULL || r->kind == ROUTE_LOCAL)
		return;
	if (rr->connector != NULL && rr->connector[0] != '\0') {
		sc = conf_send_connector(conf, rr->connector);
		if (sc == NULL || !sc->enabled ||
		    !sc->is_transport_rule_scoped) {
			r->kind = ROUTE_WAIT;
			r->connector = NULL;
			r->connector_rule = rr->connector_rule;
			snprintf(r->why, sizeof(r->why),
			    "transport rule \"%s\" routes to send connector "
			    "\"%s\", which is %s: the recipient waits (4.4.3)",
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
		r->domain_secure =
		    sc->domain_secure_enabled &&
		    conf_strlist_has(
		        &conf->transport.send_domain_secure, domain);
		snprintf(r->why, sizeof(r->why),
		    "send connector \"%s\": chosen by transport rule \"%s\" "
		    "(RouteMessageOutboundConnector)",
		    sc->name, rr->connector_rule ? rr->connector_rule : "?");
	}
	if (rr->tls_rule != NULL && rr->tls_rule[0] != '\0' &&
	    r->kind == ROUTE_CONNECTOR) {
		tls_from = r->connector;
		r->tls_rule = rr->tls_rule;
		r->tls_floor = !r->domain_secure && !tls_from->require_tls;
	}
}

void
route_tls_floor(
    const struct conf_send_connector *sc, struct conf_send_connector *out)
{
	*out = *sc;
	out->require_tls = 1;
	out->ignore_starttls = 0;
	if (out->tls_auth_level < TLS_AUTH_ENCRYPTION_ONLY)
		out->tls_auth_level = TLS_AUTH_ENCRYPTION_ONLY;
}

void
route_tls_policy(const struct route *r, char *out, size_t len)
{
	const struct conf_send_connector *sc = r->connector;
	size_t w;

	if (r->kind != ROUTE_CONNECTOR) {
		snprintf(out, len, "none (no network hop)");
		return;
	}
	if (r->tls_floor) {
		snprintf(out, len,
		    "RequireTLS by transport rule \"%s\" "
		    "(RouteMessageOutboundRequireTls), EncryptionOnly: TLS "
		    "required, certificate not checked; otherwise defer",
		    r->tls_rule);
		return;
	}
	if (r->tls_rule != NULL) {
		/* the connector requires TLS already, perhaps more */
		struct route plain = *r;

		plain.tls_rule = NULL;
		route_tls_policy(&plain, out, len);
		w = strlen(out);
		snprintf(out + w, len > w ? len - w : 0,
		    " (transport rule \"%s\" requires TLS too)", r->tls_rule);
		return;
	}
	if (r->domain_secure) {
		snprintf(out, len,
		    "Domain Security: TLS required, our certificate %s%s%s "
		    "presented, peer chain validated and must name the "
		    "recipient domain; otherwise defer",
		    sc->tls_certificate_name[0] ? "\"" : "",
		    sc->tls_certificate_name[0] ? sc->tls_certificate_name
		                                : "(none configured)",
		    sc->tls_certificate_name[0] ? "\"" : "");
		return;
	}
	if (sc->ignore_starttls) {
		snprintf(
		    out, len, "IgnoreSTARTTLS: plaintext, TLS never tried");
		return;
	}
	if (!sc->require_tls) {
		snprintf(out, len,
		    "opportunistic: STARTTLS when offered, no certificate "
		    "checks; plaintext when TLS is not offered or fails");
		return;
	}
	switch (sc->tls_auth_level) {
	case TLS_AUTH_NONE:
	case TLS_AUTH_ENCRYPTION_ONLY:
		snprintf(out, len,
		    "RequireTLS, EncryptionOnly: TLS required, "
		    "certificate not checked; otherwise defer");
		break;
	case TLS_AUTH_CERTIFICATE_VALIDATION:
		snprintf(out, len,
		    "RequireTLS, CertificateValidation: TLS with a certificate "
		    "chaining to TrustedCAFile; otherwise defer");
		break;
	case TLS_AUTH_DOMAIN_VALIDATION:
		snprintf(out, len,
		    "RequireTLS, DomainValidation: TLS with a trusted "
		    "certificate naming %s; otherwise defer",
		    sc->tls_domain[0] ? sc->tls_domain
		                      : "the recipient domain");
		break;
	}
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
		snprintf(out, len, "Unreachable");
		*type = "Unreachable";
		break;
	case ROUTE_WAIT:
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
