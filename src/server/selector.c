/*
 * selector.c - receive connector selection, a pure function of the
 * configuration and the two endpoints.
 *
 * Exchange's rule: among connectors bound to the local address and port,
 * the one whose RemoteIPRanges entry that contains the client is the
 * narrowest wins.  Ties go to the connector bound to the explicit address
 * rather than a wildcard, then to the first in the file, so the choice is
 * always deterministic.  IPv4 clients on a dual-stack socket arrive as
 * v4-mapped IPv6 addresses and are treated as IPv4.
 */
#include <netinet/in.h>
#include <string.h>

#include "server/selector.h"
#include "util/addr.h"

/* IPv4 address of sa (also v4-mapped), or -1 when sa is real IPv6. */
static int
selector_v4(const struct sockaddr *sa, struct in_addr *out)
{
	const struct sockaddr_in6 *s6;

	if (sa->sa_family == AF_INET) {
		*out = ((const struct sockaddr_in *)sa)->sin_addr;
		return 0;
	}
	s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(&out->s_addr, &s6->sin6_addr.s6_addr[12], 4);
		return 0;
	}
	return -1;
}

int
selector_binding_matches(
    const struct conf_binding *b, const struct sockaddr *local)
{
	const struct sockaddr *bs = (const struct sockaddr *)&b->ss;
	struct in_addr la;
	int lv4;

	if (addr_port(bs) != addr_port(local))
		return 0;
	lv4 = selector_v4(local, &la) == 0;
	if (bs->sa_family == AF_INET) {
		const struct sockaddr_in *b4 = (const struct sockaddr_in *)bs;

		if (!lv4)
			return 0;
		return b4->sin_addr.s_addr == htonl(INADDR_ANY) ||
		       b4->sin_addr.s_addr == la.s_addr;
	} else {
		const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)bs;

		if (lv4)
			return 0;
		return IN6_IS_ADDR_UNSPECIFIED(&b6->sin6_addr) ||
		       memcmp(&b6->sin6_addr,
		           &((const struct sockaddr_in6 *)local)->sin6_addr,
		           16) == 0;
	}
}

static int
selector_binding_is_wildcard(const struct conf_binding *b)
{
	const struct sockaddr *bs = (const struct sockaddr *)&b->ss;

	if (bs->sa_family == AF_INET)
		return ((const struct sockaddr_in *)bs)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)bs)->sin6_addr);
}

/* Narrowest matching range of rc for the client, or -1 when none match. */
static int
selector_range_bits(
    const struct conf_receive_connector *rc, const struct sockaddr *remote)
{
	int best = -1;

	for (size_t i = 0; i < rc->nremote_ranges; i++) {
		const struct conf_iprange *r = &rc->remote_ranges[i];

		if (conf_iprange_contains(r, remote) &&
		    (best < 0 || r->bits < best))
			best = r->bits;
	}
	return best;
}

const struct conf_receive_connector *
selector_pick(const struct conf *conf, const struct sockaddr *local,
    const struct sockaddr *remote)
{
	const struct conf_receive_connector *best = NULL;
	int best_bits = 0, best_explicit = 0;

	for (size_t i = 0; i < conf->nreceive_connectors; i++) {
		const struct conf_receive_connector *rc =
		    &conf->receive_connectors[i];
		int bound = 0, explicit = 0, bits;

		if (!rc->enabled) /* Enabled = false serves nobody */
			continue;
		for (size_t j = 0; j < rc->nbindings; j++) {
			if (selector_binding_matches(&rc->bindings[j], local)) {
				bound = 1;
				if (!selector_binding_is_wildcard(
				        &rc->bindings[j]))
					explicit = 1;
			}
		}
		if (!bound || (bits = selector_range_bits(rc, remote)) < 0)
			continue;
		if (best == NULL || bits < best_bits ||
		    (bits == best_bits && explicit && !best_explicit)) {
			best = rc;
			best_bits = bits;
			best_explicit = explicit;
		}
	}
	return best;
}
