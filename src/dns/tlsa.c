/*
 * tlsa.c - DANE TLSA records of a next hop over the validating resolver
 * (see tlsa.h).
 *
 * Where it sits: the SMTP client asks before it connects to a host whose
 * address records were DNSSEC-secure; the answer decides whether DANE
 * applies and is handed to OpenSSL's DANE verifier (src/tls/tls_dane.c)
 * after STARTTLS.
 *
 * One query, or two (RFC 7672 2.2.2): a host reached through a CNAME is
 * first looked up at its expanded name; when that securely has no TLSA
 * records (or is unsigned), at the name the MX record gave.  The result
 * is what the last query said, except that a failure at the expanded name
 * is final: a host whose TLSA records cannot be known is not used.
 *
 * DNS data is hostile: at most TLSA_RR_MAX records are kept, each with at
 * most TLSA_DATA_MAX octets, and every length comes from libunbound's
 * len[] and is checked before use.
 *
 * RFCs: 6698 (TLSA), 7671 (DANE operations, base domains), 7672 2.2 and
 * 3.1 (SMTP: which lookups, which usages count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/resolver.h"
#include "dns/tlsa.h"

#define RR_TYPE_TLSA 52

struct tlsa_query {
	struct resolver *r;
	tlsa_fn fn;
	void *arg;
	unsigned port;
	char host[256];
	char canon[256];
	int at_canon; /* the current question is for the expanded name */
	struct resolver_lookup *lk;
	struct tlsa_result *res; /* made up front: no failure when it comes */
};

int
tlsa_qname(const char *host, unsigned port, char *out, size_t len)
{
	int n = snprintf(out, len, "_%u._tcp.%s", port, host);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
tlsa_rr_parse(const unsigned char *rdata, size_t len, struct tlsa_rr *rr)
{
	memset(rr, 0, sizeof(*rr));
	if (rdata == NULL || len < 4 || len - 3 > TLSA_DATA_MAX)
		return -1;
	rr->usage = rdata[0];
	rr->selector = rdata[1];
	rr->mtype = rdata[2];
	rr->len = len - 3;
	if ((rr->data = malloc(rr->len)) == NULL)
		return -1;
	memcpy(rr->data, rdata + 3, rr->len);
	return 0;
}

int
tlsa_rr_usable(const struct tlsa_rr *rr)
{
	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP. */
	if (rr->usage != 2 && rr->usage != 3)
		return 0;
	if (rr->selector > 1)
		return 0;
	switch (rr->mtype) {
	case 0:
		return rr->len > 0;
	case 1:
		return rr->len == 32; /* SHA2-256 */
	case 2:
		return rr->len == 64; /* SHA2-512 */
	default:
		return 0;
	}
}

void
tlsa_rr_format(const struct tlsa_rr *rr, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	int n =
	    snprintf(out, len, "%u %u %u ", rr->usage, rr->selector, rr->mtype);
	size_t w;

	if (n < 0 || (size_t)n >= len)
		return;
	w = (size_t)n;
	for (size_t i = 0; i < rr->len && w + 2 < len; i++) {
		out[w++] = hex[rr->data[i] >> 4];
		out[w++] = hex[rr->data[i] & 0xf];
	}
	out[w] = '\0';
}

const char *
tlsa_status_name(enum tlsa_status st)
{
	switch (st) {
	case TLSA_SECURE:
		return "secure";
	case TLSA_NONE:
		return "none";
	case TLSA_INSECURE:
		return "insecure";
	case TLSA_BOGUS:
		return "bogus";
	case TLSA_TEMPFAIL:
		return "temporary failure";
	}
	return "?";
}

void
tlsa_result_free(struct tlsa_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++)
		free(res->rr[i].data);
	free(res);
}

static void tlsa_answer(void *arg, const struct resolver_answer *a);

static int
tlsa_ask(struct tlsa_query *q, const char *name)
{
	char qname[300];

	if (tlsa_qname(name, q->port, qname, sizeof(qname)) < 0)
		return -1;
	q->lk = resolver_lookup(q->r, qname, RR_TYPE_TLSA, tlsa_answer, q);
	return q->lk == NULL ? -1 : 0;
}

/* Hand the result over; q is gone afterwards. */
static void
tlsa_done(struct tlsa_query *q)
{
	tlsa_fn fn = q->fn;
	void *arg = q->arg;
	struct tlsa_result *res = q->res;

	free(q);
	fn(arg, res);
}

/* Back to empty, for the second question. */
static void
tlsa_reset(struct tlsa_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		free(res->rr[i].data);
	memset(res, 0, sizeof(*res));
}

static void
tlsa_answer(void *arg, const struct resolver_answer *a)
{
	struct tlsa_query *q = arg;
	struct tlsa_result *res = q->res;

	q->lk = NULL;
	tlsa_reset(res);
	snprintf(res->base, sizeof(res->base), "%s",
	    q->at_canon ? q->canon : q->host);
	snprintf(res->qname, sizeof(res->qname), "%s", a->name);
	switch (a->status) {
	case RESOLVER_ANSWER_BOGUS:
		res->status = TLSA_BOGUS;
		snprintf(res->why, sizeof(res->why), "%s", a->why);
		break;
	case RESOLVER_ANSWER_TEMPFAIL:
		res->status = TLSA_TEMPFAIL;
		snprintf(res->why, sizeof(res->why), "%s", a->why);
		break;
	case RESOLVER_ANSWER_NODATA:
	case RESOLVER_ANSWER_NXDOMAIN:
		res->status = a->secure ? TLSA_NONE : TLSA_INSECURE;
		break;
	case RESOLVER_ANSWER_DATA:
		if (!a->secure) {
			res->status = TLSA_INSECURE;
			break;
		}
		res->status = TLSA_SECURE;
		for (size_t i = 0; i < a->n && res->n < TLSA_RR_MAX; i++) {
			struct tlsa_rr *rr = &res->rr[res->n];

			if (tlsa_rr_parse(a->data[i], a->len[i], rr) < 0)
				continue;
			res->n++;
			res->nusable += tlsa_rr_usable(rr) != 0;
		}
		/* Records that do not even parse are no records at all. */
		if (res->n == 0)
			res->status = TLSA_NONE;
		break;
	}
	/*
	 * RFC 7672 2.2.2: nothing at the expanded name, so the name the
	 * MX record gave is the base domain.
	 */
	if (q->at_canon &&
	    (res->status == TLSA_NONE || res->status == TLSA_INSECURE)) {
		q->at_canon = 0;
		if (tlsa_ask(q, q->host) == 0)
			return;
		tlsa_reset(res);
		res->status = TLSA_TEMPFAIL;
		snprintf(res->base, sizeof(res->base), "%s", q->host);
		snprintf(res->why, sizeof(res->why),
		    "TLSA lookup for %s not started", q->host);
	}
	tlsa_done(q);
}

struct tlsa_query *
tlsa_lookup(struct resolver *r, const char *host, const char *canon,
    unsigned port, tlsa_fn fn, void *arg)
{
	struct tlsa_query *q;

	if (fn == NULL || port < 1 || port > 65535 ||
	    strlen(host) >= sizeof(q->host) ||
	    (canon != NULL && strlen(canon) >= sizeof(q->canon)) ||
	    (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->res = calloc(1, sizeof(*q->res))) == NULL) {
		free(q);
		return NULL;
	}
	q->r = r;
	q->fn = fn;
	q->arg = arg;
	q->port = port;
	snprintf(q->host, sizeof(q->host), "%s", host);
	if (canon != NULL && canon[0] != '\0' && strcmp(canon, host) != 0) {
		snprintf(q->canon, sizeof(q->canon), "%s", canon);
		q->at_canon = 1;
	}
	if (tlsa_ask(q, q->at_canon ? q->canon : q->host) < 0) {
		tlsa_result_free(q->res);
		free(q);
		return NULL;
	}
	return q;
}

void
tlsa_cancel(struct tlsa_query *q)
{
	if (q == NULL)
		return;
	resolver_lookup_cancel(q->lk);
	tlsa_result_free(q->res);
	free(q);
}
