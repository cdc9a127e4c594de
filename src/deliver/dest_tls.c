/*
 * dest_tls.c - the DANE and MTA-STS facts of one destination (see
 * dest_tls.h).
 *
 * Where it sits: between the resolver and the SMTP client.  dqueue.c
 * asks the domain's MTA-STS question (src/sts/sts.c) with its MX question
 * (dest_tls_begin() next to resolver_mx(): it needs only the domain), and
 * once the next hops are in, dest_tls_gather_from() adds the TLSA
 * look-ups (src/dns/tlsa.c, one per distinct host and port whose address
 * was secure); all run in parallel, and when the last answer is in the
 * facts are handed over, frozen.  The client then decides each hop's
 * policy with them.  dest_tls_gather() does both steps at once
 * (sluicectl's test-tls, which has its hops already).
 *
 * Invariants: the callback runs from the loop (an answer's callback, or
 * a zero timer when nothing had to be asked), exactly once unless the
 * query is cancelled, and never before the hops are given (fn is NULL
 * until then: an MTA-STS answer that comes first is kept); the facts are
 * never changed after they are handed over; a hop shares its host's TLSA
 * result (first[]), freed once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "deliver/dest_tls.h"

struct dest_tls {
	unsigned refs;
	size_t nhops;
	/* tlsa[first[i]] is hop i's; only tlsa[i] with first[i] == i owned */
	struct tlsa_result *tlsa[RESOLVER_HOPS_MAX];
	size_t first[RESOLVER_HOPS_MAX];
	struct sts_state *sts;
	/* no policy in force because it could not be had (TLS reports) */
	struct sts_state *sts_failed;
};

struct dest_tls_query;

/* The callback argument of one TLSA look-up. */
struct dest_tls_slot {
	struct dest_tls_query *q;
	size_t hop;
};

struct dest_tls_query {
	struct dest_tls *dt;
	struct tlsa_query *tq[RESOLVER_HOPS_MAX];
	struct dest_tls_slot slot[RESOLVER_HOPS_MAX];
	struct sts_query *sq;
	struct event *later; /* nothing was asked: deliver from the loop */
	size_t pending;
	int sts_asked;  /* the MTA-STS question was asked (or could not be) */
	dest_tls_fn fn; /* NULL until the hops are given */
	void *arg;
};

struct dest_tls *
dest_tls_ref(struct dest_tls *dt)
{
	if (dt != NULL)
		dt->refs++;
	return dt;
}

void
dest_tls_unref(struct dest_tls *dt)
{
	if (dt == NULL || --dt->refs > 0)
		return;
	for (size_t i = 0; i < dt->nhops; i++)
		if (dt->first[i] == i)
			tlsa_result_free(dt->tlsa[i]);
	free(dt->sts);
	free(dt->sts_failed);
	free(dt);
}

const struct tlsa_result *
dest_tls_tlsa(const struct dest_tls *dt, size_t hop)
{
	if (dt == NULL || hop >= dt->nhops)
		return NULL;
	return dt->tlsa[dt->first[hop]];
}

const struct sts_state *
dest_tls_sts(const struct dest_tls *dt)
{
	return dt != NULL ? dt->sts : NULL;
}

const struct sts_state *
dest_tls_sts_failed(const struct dest_tls *dt)
{
	return dt != NULL ? dt->sts_failed : NULL;
}

static int
dest_tls_dane(const struct conf_send_connector *sc)
{
	return sc->smtp_dane_mode != DANE_MODE_NONE && !sc->ignore_starttls;
}

static int
dest_tls_mta_sts(const struct conf_send_connector *sc, int sts_available)
{
	return sts_available && sc->dns_routing_enabled &&
	       sc->mta_sts_mode != MTASTS_MODE_NONE && !sc->ignore_starttls;
}

int
dest_tls_needed(const struct conf_send_connector *sc,
    const struct resolver_result *res, int sts_available)
{
	if (dest_tls_mta_sts(sc, sts_available))
		return 1;
	if (!dest_tls_dane(sc))
		return 0;
	for (size_t i = 0; i < res->nhops; i++)
		if (res->hops[i].secure)
			return 1;
	return 0;
}

static unsigned
dest_tls_port(const struct resolver_hop *h)
{
	return h->addr.ss_family == AF_INET6
	           ? ntohs(((const struct sockaddr_in6 *)&h->addr)->sin6_port)
	           : ntohs(((const struct sockaddr_in *)&h->addr)->sin_port);
}

/* The last answer is in: hand the facts over and go. */
static void
dest_tls_done(struct dest_tls_query *q)
{
	dest_tls_fn fn = q->fn;
	void *arg = q->arg;
	struct dest_tls *dt = q->dt;

	if (q->later != NULL)
		event_free(q->later);
	free(q);
	fn(arg, dt);
}

static void
dest_tls_tlsa_answer(void *arg, struct tlsa_result *res)
{
	struct dest_tls_slot *s = arg;
	struct dest_tls_query *q = s->q;

	q->tq[s->hop] = NULL;
	q->dt->tlsa[s->hop] = res;
	if (--q->pending == 0 && q->fn != NULL)
		dest_tls_done(q);
}

static void
dest_tls_sts_answer(void *arg, const struct sts_state *st)
{
	struct dest_tls_query *q = arg;

	q->sq = NULL;
	if (st->has_policy && (q->dt->sts = malloc(sizeof(*st))) != NULL)
		*q->dt->sts = *st;
	if (!st->has_policy && st->failed != STS_FAILED_NONE &&
	    (q->dt->sts_failed = malloc(sizeof(*st))) != NULL)
		*q->dt->sts_failed = *st;
	/* before the hops (dest_tls_begin): kept until they come */
	if (--q->pending == 0 && q->fn != NULL)
		dest_tls_done(q);
}

static void
dest_tls_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dest_tls_done(arg);
}

/* A look-up that could not start: that hop fails DANE (skipped). */
static struct tlsa_result *
dest_tls_failed(const char *host)
{
	struct tlsa_result *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->status = TLSA_TEMPFAIL;
	snprintf(r->base, sizeof(r->base), "%s", host);
	snprintf(r->why, sizeof(r->why),
	    "the TLSA look-up of %s could not start", host);
	return r;
}

static struct dest_tls_query *
dest_tls_query_new(void)
{
	struct dest_tls_query *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->dt = calloc(1, sizeof(*q->dt))) == NULL) {
		free(q);
		return NULL;
	}
	q->dt->refs = 1;
	return q;
}

/* The domain's MTA-STS question, when it applies (once per query). */
static void
dest_tls_ask_sts(struct dest_tls_query *q, struct sts *sts,
    const struct conf_send_connector *sc, const char *domain)
{
	q->sts_asked = 1;
	if (dest_tls_mta_sts(sc, sts != NULL) &&
	    (q->sq = sts_get(sts, domain, dest_tls_sts_answer, q)) != NULL)
		q->pending++;
}

struct dest_tls_query *
dest_tls_begin(
    struct sts *sts, const struct conf_send_connector *sc, const char *domain)
{
	struct dest_tls_query *q;

	if (!dest_tls_mta_sts(sc, sts != NULL) ||
	    (q = dest_tls_query_new()) == NULL)
		return NULL;
	dest_tls_ask_sts(q, sts, sc, domain);
	return q;
}

struct dest_tls_query *
dest_tls_gather_from(struct dest_tls_query *q, struct event_base *base,
    struct resolver *r, struct sts *sts, const struct conf_send_connector *sc,
    const char *domain, const struct resolver_result *res, dest_tls_fn fn,
    void *arg)
{
	if (q == NULL && (q = dest_tls_query_new()) == NULL)
		return NULL;
	q->dt->nhops = res->nhops;
	for (size_t i = 0; i < res->nhops; i++) {
		const struct resolver_hop *h = &res->hops[i];
		size_t k;

		/* One look-up per host and port: its addresses share it. */
		for (k = 0; k < i; k++)
			if (strcmp(res->hops[k].host, h->host) == 0 &&
			    dest_tls_port(&res->hops[k]) == dest_tls_port(h))
				break;
		q->dt->first[i] = k;
		if (k < i || !h->secure || !dest_tls_dane(sc))
			continue;
		q->slot[i] = (struct dest_tls_slot){q, i};
		q->tq[i] = tlsa_lookup(r, h->host, h->canon, dest_tls_port(h),
		    dest_tls_tlsa_answer, &q->slot[i]);
		if (q->tq[i] != NULL)
			q->pending++;
		else
			q->dt->tlsa[i] = dest_tls_failed(h->host);
	}
	if (!q->sts_asked)
		dest_tls_ask_sts(q, sts, sc, domain);
	if (q->pending == 0) {
		const struct timeval now = {0, 0};

		if ((q->later = evtimer_new(base, dest_tls_later, q)) == NULL ||
		    evtimer_add(q->later, &now) != 0) {
			dest_tls_cancel(q);
			return NULL;
		}
	}
	/* From here on an answer that completes the facts hands them over. */
	q->fn = fn;
	q->arg = arg;
	return q;
}

struct dest_tls_query *
dest_tls_gather(struct event_base *base, struct resolver *r, struct sts *sts,
    const struct conf_send_connector *sc, const char *domain,
    const struct resolver_result *res, dest_tls_fn fn, void *arg)
{
	return dest_tls_gather_from(
	    NULL, base, r, sts, sc, domain, res, fn, arg);
}

void
dest_tls_cancel(struct dest_tls_query *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < RESOLVER_HOPS_MAX; i++)
		tlsa_cancel(q->tq[i]);
	sts_cancel(q->sq);
	if (q->later != NULL)
		event_free(q->later);
	dest_tls_unref(q->dt);
	free(q);
}
