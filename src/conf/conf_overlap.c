/*
 * conf_overlap.c - receive connectors that silently take clients from
 * each other.
 *
 * A connection goes to the connector bound to the local address and port
 * whose RemoteIPRanges entry containing the client is the narrowest; a
 * tie goes to an explicit binding over a wildcard, then to the first
 * connector in the file (src/server/selector.c).  Exchange accepts
 * overlapping connectors, and a narrower range winning is the point of
 * having several.  But when two connectors match a client with ranges of
 * the same size, only their order in the file decides, and the second one
 * is shadowed for those clients without anybody having said so: issue
 * 11's `0.0.0.0/0` beside `0.0.0.0/0, ::/0` loses every IPv4 client.
 * That is worth a warning, never an error (Exchange takes it).
 *
 * Exact, not a sample: for each local endpoint both connectors listen on
 * with equal explicitness, the narrowest-range function of each connector
 * only changes value where some range starts or ends, so evaluating both
 * at every range start, every range end + 1, and the bounds of the
 * endpoint's client family finds a tie if there is one.  Disabled
 * connectors serve nobody and are left out.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_keys.h"

/* A local endpoint: an explicit address, or "any other" of a wildcard. */
struct overlap_ep {
	int family;
	unsigned port;
	uint8_t addr[16];
	int other; /* an address neither connector names explicitly */
	char text[80];
};

static unsigned
overlap_port(const struct conf_binding *b)
{
	if (b->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&b->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&b->ss)->sin6_port);
}

/* The binding's address as 16 bytes; 1 when it is a wildcard. */
static int
overlap_addr(const struct conf_binding *b, uint8_t out[16])
{
	static const uint8_t zero[16];

	memset(out, 0, 16);
	if (b->ss.ss_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)&b->ss)->sin_addr, 4);
		return memcmp(out, zero, 4) == 0;
	}
	memcpy(out, &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16);
	return memcmp(out, zero, 16) == 0;
}

/* Does rc listen on ep, and through an explicit binding? */
static int
overlap_bound(const struct conf_receive_connector *rc,
    const struct overlap_ep *ep, int *explicit)
{
	int bound = 0;

	*explicit = 0;
	for (size_t i = 0; i < rc->nbindings; i++) {
		const struct conf_binding *b = &rc->bindings[i];
		uint8_t a[16];
		int wild;

		if (b->ss.ss_family != ep->family ||
		    overlap_port(b) != ep->port)
			continue;
		wild = overlap_addr(b, a);
		if (wild) {
			bound = 1;
		} else if (!ep->other && memcmp(a, ep->addr, 16) == 0) {
			bound = 1;
			*explicit = 1;
		}
	}
	return bound;
}

/* The narrowest range of rc containing x, or NULL. */
static const struct conf_iprange *
overlap_narrowest(const struct conf_receive_connector *rc, const uint8_t x[16])
{
	const struct conf_iprange *best = NULL;

	for (size_t i = 0; i < rc->nremote_ranges; i++) {
		const struct conf_iprange *r = &rc->remote_ranges[i];

		if (memcmp(x, r->lo, 16) >= 0 && memcmp(x, r->hi, 16) <= 0 &&
		    (best == NULL || r->bits < best->bits))
			best = r;
	}
	return best;
}

/* IPv4 clients arrive as ::ffff:a.b.c.d; the block is where they are. */
static const uint8_t overlap_v4_lo[16] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
static const uint8_t overlap_v4_hi[16] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static int
overlap_in_family(const uint8_t x[16], int family)
{
	int v4 = memcmp(x, overlap_v4_lo, 16) >= 0 &&
	         memcmp(x, overlap_v4_hi, 16) <= 0;

	return family == AF_INET ? v4 : !v4;
}

/* x + 1; 0 when it wraps (x was the last address). */
static int
overlap_next(uint8_t x[16])
{
	for (int i = 15; i >= 0; i--)
		if (++x[i] != 0)
			return 1;
	return 0;
}

struct overlap_points {
	uint8_t (*v)[16];
	size_t n, max;
};

static void
overlap_add(struct overlap_points *pts, const uint8_t x[16], int plus_one)
{
	uint8_t y[16];

	if (pts->n == pts->max)
		return;
	memcpy(y, x, 16);
	if (plus_one && !overlap_next(y))
		return;
	memcpy(pts->v[pts->n++], y, 16);
}

static void
overlap_add_ranges(
    struct overlap_points *pts, const struct conf_receive_connector *rc)
{
	for (size_t i = 0; i < rc->nremote_ranges; i++) {
		overlap_add(pts, rc->remote_ranges[i].lo, 0);
		overlap_add(pts, rc->remote_ranges[i].hi, 1);
	}
}

/*
 * A client both connectors match with equally narrow ranges on ep, if
 * there is one: its address in *x and the two ranges.
 */
static int
overlap_tie(const struct conf_receive_connector *a,
    const struct conf_receive_connector *b, const struct overlap_ep *ep,
    uint8_t x[16], const struct conf_iprange **ra,
    const struct conf_iprange **rb)
{
	static const uint8_t zero[16];
	struct overlap_points pts;
	int found = 0;

	pts.n = 0;
	pts.max = 3 + 2 * (a->nremote_ranges + b->nremote_ranges);
	if ((pts.v = calloc(pts.max, sizeof(*pts.v))) == NULL)
		return 0; /* a warning is not worth failing the load */
	overlap_add(&pts, zero, 0);
	overlap_add(&pts, overlap_v4_lo, 0);
	overlap_add(&pts, overlap_v4_hi, 1);
	overlap_add_ranges(&pts, a);
	overlap_add_ranges(&pts, b);
	for (size_t i = 0; i < pts.n; i++) {
		if (!overlap_in_family(pts.v[i], ep->family))
			continue;
		*ra = overlap_narrowest(a, pts.v[i]);
		*rb = overlap_narrowest(b, pts.v[i]);
		if (*ra != NULL && *rb != NULL && (*ra)->bits == (*rb)->bits) {
			memcpy(x, pts.v[i], 16);
			found = 1;
			break;
		}
	}
	free(pts.v);
	return found;
}

/* Every endpoint either connector names, plus "any other" per wildcard. */
static size_t
overlap_endpoints(const struct conf_receive_connector *a,
    const struct conf_receive_connector *b, struct overlap_ep *eps, size_t max)
{
	const struct conf_receive_connector *both[2] = {a, b};
	size_t n = 0;

	for (int c = 0; c < 2; c++) {
		for (size_t i = 0; i < both[c]->nbindings && n < max; i++) {
			const struct conf_binding *bd = &both[c]->bindings[i];
			struct overlap_ep *ep = &eps[n++];

			ep->family = bd->ss.ss_family;
			ep->port = overlap_port(bd);
			ep->other = overlap_addr(bd, ep->addr);
			snprintf(ep->text, sizeof(ep->text), "%s", bd->text);
		}
	}
	return n;
}

static void
overlap_text(const uint8_t x[16], char *out, size_t len)
{
	if (overlap_in_family(x, AF_INET))
		inet_ntop(AF_INET, x + 12, out, (socklen_t)len);
	else
		inet_ntop(AF_INET6, x, out, (socklen_t)len);
}

void
conf_overlap_check(struct conf *c, struct conf_parse *p)
{
	struct overlap_ep eps[128];

	for (size_t i = 0; i < c->nreceive_connectors; i++) {
		const struct conf_receive_connector *b =
		    &c->receive_connectors[i];

		for (size_t j = 0; j < i && b->enabled; j++) {
			const struct conf_receive_connector *a =
			    &c->receive_connectors[j];
			size_t n;

			if (!a->enabled)
				continue;
			n = overlap_endpoints(
			    a, b, eps, sizeof(eps) / sizeof(eps[0]));
			for (size_t e = 0; e < n; e++) {
				const struct conf_iprange *ra, *rb;
				uint8_t x[16];
				char client[INET6_ADDRSTRLEN];
				int ea, eb;

				if (!overlap_bound(a, &eps[e], &ea) ||
				    !overlap_bound(b, &eps[e], &eb) ||
				    ea != eb ||
				    !overlap_tie(a, b, &eps[e], x, &ra, &rb))
					continue;
				overlap_text(x, client, sizeof(client));
				conf_warn_at(p, CONF_SEC_RECEIVE, i,
				    "RemoteIPRanges",
				    "receive connector \"%s\" is shadowed by "
				    "\"%s\" on %s for clients such as %s: both "
				    "match them with ranges of the same size "
				    "(%s and %s), so the one first in the file "
				    "serves them; give one of them a narrower "
				    "range",
				    b->name, a->name, eps[e].text, client,
				    rb->text, ra->text);
				break;
			}
		}
	}
}
