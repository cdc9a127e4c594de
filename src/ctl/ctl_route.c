/*
 * ctl_route.c - "sluicectl route ADDRESS": which way a recipient would
 * go, through which connector, to which next hop, under which TLS policy,
 * and why — computed by the same routing function sluiced uses.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "route/route.h"

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
		snprintf(out, len, "none: non-delivery (5.4.4)");
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

int
ctl_route(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c;
	struct route r;
	char domain[256], hop[1024], tls[512];
	const char *at;

	if (argc != 1 || (at = strrchr(argv[0], '@')) == NULL ||
	    at[1] == '\0' || strlen(at + 1) >= sizeof(domain)) {
		fprintf(stderr, "usage: sluicectl route user@domain\n");
		return 2;
	}
	for (size_t i = 0; at[1 + i] != '\0'; i++)
		domain[i] = (char)tolower((unsigned char)at[1 + i]);
	domain[strlen(at + 1)] = '\0';
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return 1;
	route_domain(c, domain, &r);
	ctl_route_nexthop(&r, domain, hop, sizeof(hop));
	route_tls_policy(&r, tls, sizeof(tls));
	printf("Recipient : %s\n", argv[0]);
	printf("Route     : %s%s%s\n",
	    r.kind == ROUTE_LOCAL  ? "local mailbox"
	    : r.kind == ROUTE_NONE ? "none"
	                           : "SendConnector \"",
	    r.kind == ROUTE_CONNECTOR ? r.connector->name : "",
	    r.kind == ROUTE_CONNECTOR ? "\"" : "");
	printf("NextHop   : %s\n", hop);
	printf("TlsPolicy : %s\n", tls);
	printf("Reason    : %s\n", r.why);
	conf_free(c);
	return r.kind == ROUTE_NONE ? 1 : 0;
}
