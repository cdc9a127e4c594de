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
	ROUTE_WAIT,      /* a rule's connector is missing: Unreachable, 4.4.3 */
};

/*
 * What transport rules decided for a recipient at acceptance (SPEC 5),
 * stored with it in the queue: NULL or "" when a rule did not decide.
 */
struct route_rules {
	const char *tls_rule;       /* RouteMessageOutboundRequireTls */
	const char *connector;      /* RouteMessageOutboundConnector */
	const char *connector_rule; /* the rule that chose it */
};

struct route {
	enum route_kind kind;
	const struct conf_accepted_domain *domain;   /* ROUTE_LOCAL */
	const struct conf_send_connector *connector; /* ROUTE_CONNECTOR */
	const struct conf_address_space *space;      /* the entry that won */
	/*
	 * ROUTE_CONNECTOR: the TLS policy for the recipient, decided by
	 * tls_policy_decide() before any next hop is known (it borrows the
	 * domain string the caller passed), a transport rule's TLS
	 * requirement included.
	 */
	struct tls_policy tls;
	/* set by route_recipient() from the rules' decisions */
	const char *connector_rule; /* the connector came from this rule */
	const char *tls_rule;       /* this rule requires TLS ... */
	int tls_floor;              /* ... and that raises the policy */
	char why[256];              /* one line an administrator can read */
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
 * Route a recipient with what transport rules decided for it (rules may
 * be NULL: as route_domain).  Local delivery is never overridden.  A
 * rule's connector (IsTransportRuleScoped) replaces the connector routing
 * would pick; if it is gone or disabled since (a reload), the recipient
 * waits in the Unreachable queue (ROUTE_WAIT) rather than leaving by
 * another way.  A rule that requires TLS is an input of the TLS policy
 * (tls_policy_decide()); tls_floor says it raised the connector's own
 * policy to RequireTLS with EncryptionOnly.
 */
void route_recipient(const struct conf *, const char *domain,
    const struct route_rules *, struct route *);

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
 * Rules give queues of their own, so that a TLS requirement or a scoped
 * connector never holds up (or lowers the policy of) other mail:
 * "DOMAIN/CONNECTOR" for a DNS-routed scoped connector, "/RequireTls"
 * appended under a TLS floor.
 */
void route_queue_name(const struct route *, const char *domain, char *out,
    size_t len, const char **type);

/*
 * The TLS policy that will apply, in words (tls_policy_describe()), or
 * "none (no network hop)".
 */
void route_tls_policy(const struct route *, char *out, size_t len);

#endif
