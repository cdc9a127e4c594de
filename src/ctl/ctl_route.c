/*
 * ctl_route.c - "sluicectl route ADDRESS": which way a recipient would
 * go, through which connector, to which next hop, under which TLS policy,
 * and why — computed by the same routing function sluiced uses.
 *
 * Through a send connector, the next hops are then resolved as sluiced
 * resolves them (src/dns/resolver.c, [Transport] Resolver) on a private
 * event loop, bounded by CTL_ROUTE_DNS_WAIT, and printed in the order the
 * SMTP client would try them.  --no-dns skips that, for scripts offline.
 */
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "dns/resolver.h"
#include "route/route.h"
#include "rules/rules.h"
#include "util/addr.h"

/* Longer than the resolver's own timeout would be no use to a person. */
#define CTL_ROUTE_DNS_WAIT 10 /* seconds */

static void
ctl_route_nexthop(
    const struct route *r, const char *domain, char *out, size_t len)
{
	const struct conf_send_connector *sc = r->connector;
	size_t w = 0;

	if (r->kind == ROUTE_LOCAL) {
		snprintf(out, len, "Maildir %s", r->domain->mailboxes);
		return;
	}
	if (r->kind == ROUTE_NONE) {
		snprintf(out, len,
		    "none: waits in the Unreachable queue until a connector "
		    "matches or it expires");
		return;
	}
	if (r->kind == ROUTE_WAIT) {
		snprintf(out, len,
		    "none: waits in the Unreachable queue (4.4.3) until the "
		    "rule's connector is back or it expires");
		return;
	}
	if (sc->dns_routing_enabled) {
		snprintf(out, len,
		    "MX records of %s (else its A/AAAA), port %u", domain,
		    sc->port);
		return;
	}
	out[0] = '\0';
	for (size_t i = 0; i < sc->nsmart_hosts; i++)
		w += (size_t)snprintf(out + w, w < len ? len - w : 0,
		    "%s%s%s%s:%u", i ? ", " : "smart hosts ",
		    sc->smart_hosts[i].literal ? "[" : "",
		    sc->smart_hosts[i].host,
		    sc->smart_hosts[i].literal ? "]" : "",
		    sc->smart_hosts[i].port ? sc->smart_hosts[i].port
		                            : sc->port);
}

struct ctl_route_wait {
	struct event_base *base;
	int done;
	struct resolver_result res;
};

static void
ctl_route_resolved(void *arg, const struct resolver_result *res)
{
	struct ctl_route_wait *w = arg;

	w->res = *res;
	w->done = 1;
}

static const char *
ctl_route_status(enum resolver_status st)
{
	switch (st) {
	case RESOLVER_OK:
		return "ok";
	case RESOLVER_TEMPFAIL:
		return "temporary failure";
	case RESOLVER_PERMFAIL:
		return "permanent failure";
	case RESOLVER_NULLMX:
		return "null MX";
	}
	return "?";
}

int
ctl_resolve(const struct conf *c, const char *domain,
    const struct conf_smarthost *hosts, size_t nhosts, unsigned port,
    struct resolver_result *out, char *why, size_t whylen)
{
	struct ctl_route_wait w = {0};
	struct resolver *res = NULL;
	const char *err = NULL;
	int rc;

	if ((w.base = event_base_new()) == NULL) {
		snprintf(why, whylen, "cannot create an event loop");
		return -1;
	}
	if ((res = resolver_new_dnssec(w.base, c->transport.resolver,
	         c->transport.dnssec_trust_anchor_file, &err)) == NULL) {
		snprintf(why, whylen, "resolver: %s", err);
		event_base_free(w.base);
		return -1;
	}
	rc = hosts == NULL
	         ? resolver_mx(res, domain, port, ctl_route_resolved, &w)
	         : resolver_smarthosts(
	               res, hosts, nhosts, port, ctl_route_resolved, &w);
	if (rc == 0)
		(void)ctl_wait(w.base, &w.done, CTL_ROUTE_DNS_WAIT);
	resolver_free(res);
	event_base_free(w.base);
	if (rc != 0) {
		snprintf(why, whylen,
		    "temporary failure: could not start the DNS lookup");
		return -1;
	}
	if (!w.done) {
		snprintf(why, whylen,
		    "temporary failure: no answer within %d seconds",
		    CTL_ROUTE_DNS_WAIT);
		return -1;
	}
	*out = w.res;
	return 0;
}

/* One "NextHops" line per address, or one saying why there is none. */
static int
ctl_route_hops(const struct conf *c, const struct route *r, const char *domain)
{
	const struct conf_send_connector *sc = r->connector;
	struct resolver_result res;
	char why[300];

	if (ctl_resolve(c, domain,
	        sc->dns_routing_enabled ? NULL : sc->smart_hosts,
	        sc->nsmart_hosts, sc->port, &res, why, sizeof(why)) < 0) {
		printf("NextHops  : none (%s)\n", why);
		return 1;
	}
	if (res.status != RESOLVER_OK) {
		printf("NextHops  : none (%s: %s)\n",
		    ctl_route_status(res.status), res.why);
		return 1;
	}
	for (size_t i = 0; i < res.nhops; i++) {
		const struct resolver_hop *h = &res.hops[i];
		char addr[ADDR_IP_MAX];
		unsigned port = addr_port((const struct sockaddr *)&h->addr);

		addr_ip((const struct sockaddr *)&h->addr, addr, sizeof(addr));
		if (!sc->dns_routing_enabled)
			printf("NextHops  : %s [%s]:%u (smart host)\n", h->host,
			    addr, port);
		else if (strcmp(h->host, domain) == 0 && h->pref == 0)
			printf("NextHops  : %s [%s]:%u (implicit MX)\n",
			    h->host, addr, port);
		else
			printf("NextHops  : %s [%s]:%u (MX %u)\n", h->host,
			    addr, port, h->pref);
	}
	fflush(stdout);
	ctl_dane_show(c, &res, sc);
	fflush(stdout);
	ctl_sts_show(c, &res, sc, domain);
	return 0;
}

void
ctl_route_print(const struct conf *c, const struct route *r, const char *domain,
    const char *addr)
{
	char hop[1024], tls[768];

	ctl_route_nexthop(r, domain, hop, sizeof(hop));
	route_tls_policy(r, tls, sizeof(tls));
	printf("Recipient : %s\n", addr);
	printf("Route     : %s%s%s%s%s%s\n",
	    r->kind == ROUTE_LOCAL  ? "local mailbox"
	    : r->kind == ROUTE_NONE ? "none"
	    : r->kind == ROUTE_WAIT ? "none for now (waits)"
	                            : "SendConnector \"",
	    r->kind == ROUTE_CONNECTOR ? r->connector->name : "",
	    r->kind == ROUTE_CONNECTOR ? "\"" : "",
	    r->connector_rule != NULL ? " (transport rule \"" : "",
	    r->connector_rule != NULL ? r->connector_rule : "",
	    r->connector_rule != NULL ? "\")" : "");
	printf("NextHop   : %s\n", hop);
	printf("TlsPolicy : %s\n", tls);
	printf("Reason    : %s\n", r->why);
	(void)c;
}

int
ctl_route(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c;
	struct route r;
	struct route_rules rr;
	char domain[256], rules[1024] = "";
	const char *at, *from = NULL;
	int dns = 1, rc;

	for (; argc > 1; argc--, argv++) {
		if (strcmp(argv[0], "--no-dns") == 0)
			dns = 0;
		else if (strcmp(argv[0], "--from") == 0 && argc > 2) {
			from = argv[1];
			argc--;
			argv++;
		} else
			break;
	}
	if (argc != 1 || (at = strrchr(argv[0], '@')) == NULL ||
	    at[1] == '\0' || strlen(at + 1) >= sizeof(domain)) {
		fprintf(stderr, "usage: sluicectl route [--no-dns] [--from "
		                "sender] user@domain\n");
		return 2;
	}
	for (size_t i = 0; at[1 + i] != '\0'; i++)
		domain[i] = (char)tolower((unsigned char)at[1 + i]);
	domain[strlen(at + 1)] = '\0';
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return 1;
	memset(&rr, 0, sizeof(rr));
	/* --from: the transport rules run as for a message from that
	 * sender to this recipient alone */
	if (from != NULL && (rc = ctl_rules_for(c, from, argv[0], &rr, rules,
	                         sizeof(rules))) != 0) {
		if (rc > 0)
			printf("Recipient : %s\nRoute     : none\n"
			       "TransportRules : %s\n",
			    argv[0], rules);
		conf_free(c);
		return 1;
	}
	route_recipient(c, domain, from != NULL ? &rr : NULL, &r);
	ctl_route_print(c, &r, domain, argv[0]);
	if (from != NULL)
		printf("TransportRules : %s\n", rules[0] ? rules : "(none)");
	rc = r.kind == ROUTE_NONE || r.kind == ROUTE_WAIT ? 1 : 0;
	if (dns && r.kind == ROUTE_CONNECTOR) {
		fflush(stdout);
		rc = ctl_route_hops(c, &r, domain);
	}
	conf_free(c);
	return rc;
}
