/*
 * route.h - where a recipient goes (SPEC 3, "Routing and sending"): a
 * pure function of the configuration and the recipient's domain.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stddef.h>

#include "conf/conf.h"
#include "tls/tls_policy.h"

enum route_kind {
	ROUTE_LOCAL,     /* Authoritative accepted domain: a Maildir */
	ROUTE_CONNECTOR, /* through a send connector */
	ROUTE_NONE,      /* no connector: the Unreachable queue */
};

struct route {
	enum route_kind kind;
	const struct conf_accepted_domain *domain;   /* ROUTE_LOCAL */
	const struct conf_send_connector *connector; /* ROUTE_CONNECTOR */
	const struct conf_address_space *space;      /* the entry that won */
	/*
	 * ROUTE_CONNECTOR: the TLS policy for the recipient, decided by
	 * tls_policy_decide() before any next hop is known (it borrows the
	 * domain string the caller passed).
	 */
	struct tls_policy tls;
	char why[256]; /* one line an administrator can read */
};

/*
 * Route a recipient domain (lower case).  Accepted domains of type
 * Authoritative are local; every other domain goes to the enabled send
 * connector whose AddressSpaces entry matches most specifically (an
 * exact domain, then the longest "*.suffix", then "*"), and among equally
 * specific matches the lowest cost, then the first in the file.
 */
void route_domain(const struct conf *, const char *domain, struct route *);

/*
 * Where <Postmaster> without a domain (RFC 5321 4.5.1) goes: the
 * postmaster mailbox of the first Authoritative accepted domain.  NULL
 * when there is none (a relay-only server): it can then be delivered
 * nowhere, and is refused at RCPT rather than accepted and kept forever.
 */
const struct conf_accepted_domain *route_postmaster(const struct conf *);

/*
 * The delivery queue a routed recipient waits in (Exchange's next hop
 * domain): "Local" for Authoritative domains, the recipient domain for a
 * DNS-routed connector, the connector's name for smart hosts,
 * "Unreachable" without a route.  *type is Exchange's DeliveryType.
 */
void route_queue_name(const struct route *, const char *domain, char *out,
    size_t len, const char **type);

/*
 * The TLS policy that will apply, in words (tls_policy_describe()), or
 * "none (no network hop)".
 */
void route_tls_policy(const struct route *, char *out, size_t len);

#endif
