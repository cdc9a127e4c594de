/*
 * sts.c - MTA-STS for the sending side: the TXT record, the policy
 * cache and its refreshes (see sts.h).
 *
 * Where it sits: the delivery queue asks sts_get() for a recipient
 * domain when it resolves that domain's next hops; the answer becomes an
 * input of the TLS policy decision (src/tls/tls_policy.c).  `sluicectl
 * route` asks the same way, with a cache of its own.
 *
 * A query is a small state machine driven by callbacks from the loop:
 *   TXT     the "_mta-sts.DOMAIN" TXT look-up;
 *   ADDR    A and AAAA of "mta-sts.DOMAIN" (the daemon's resolver, so
 *           the policy host is found the way MX hosts are);
 *   FETCH   the HTTPS fetch (sts_fetch.c).
 * It ends by delivering a struct sts_state to its asker, unless the
 * asker cancelled or it is a background refresh; a fetch goes on without
 * an asker and still updates the cache.
 *
 * The cache: one entry per policy domain, chained in STS_BUCKETS hash
 * buckets, at most STS_CACHE_MAX entries; each holds the policy text as
 * fetched and its parse.  An entry is replaced only by a valid policy
 * (RFC 8461 5: a failed or broken fetch never removes a cached one).
 * Expired entries are not used and are dropped when met.
 *
 * Invariants: every query is on sts->queries until it ends; callbacks
 * from the resolver and the fetcher run on the loop, so a query is only
 * ever touched by one of them at a time; nothing of a query is used after
 * its asker's callback, which may free the whole sts.
 *
 * RFC 8461 3.1 (TXT), 3.3 (fetch), 5 (policy application and caching),
 * 5.1 (refresh).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "dns/resolver.h"
#include "spool/spool_sts.h"
#include "sts/sts.h"
#include "sts/sts_fetch.h"
#include "util/log.h"

/* About one entry per bucket at STS_CACHE_MAX: every new domain looks. */
#define STS_BUCKETS 8192
#define RR_TYPE_A 1
#define RR_TYPE_TXT 16
#define RR_TYPE_AAAA 28
/* TXT records read from one answer, and the longest one joined. */
#define STS_TXT_RECORDS_MAX 16
#define STS_TXT_MAX 1024

struct sts_entry {
	LIST_ENTRY(sts_entry) link;
	char domain[256];
	char id[STS_ID_MAX + 1];
	char *text; /* the policy as fetched */
	size_t len;
	struct sts_policy *policy;
	time_t fetched, expires;
	int refreshing; /* a background refresh is under way */
};

LIST_HEAD(sts_bucket, sts_entry);

enum sts_step { STS_STEP_TXT, STS_STEP_ADDR, STS_STEP_FETCH };

struct sts_query {
	TAILQ_ENTRY(sts_query) link;
	struct sts *sts;
	sts_fn fn; /* NULL: nobody waits (cancelled, or a refresh) */
	void *arg;
	enum sts_step step;
	int refresh; /* a background refresh: the cached entry stays */
	char domain[256];
	char txt_id[STS_ID_MAX + 1];
	struct resolver_lookup *lk[2];
	size_t naddrs;
	struct sockaddr_storage addrs[STS_FETCH_ADDRS_MAX];
	struct sts_fetch *fetch;
	struct sts_state *state;
};

TAILQ_HEAD(sts_queries, sts_query);

struct sts {
	struct event_base *base;
	struct resolver *resolver;
	struct spool *spool;
	struct sts_fetcher *fetcher;
	struct sts_bucket buckets[STS_BUCKETS];
	size_t nentries;
	struct sts_queries queries;
	unsigned long fetches;
};

unsigned
sts_port_from_env(void)
{
	const char *s = getenv("SLUICE_MTA_STS_PORT");
	char *end;
	unsigned long p;

	if (s == NULL || s[0] == '\0')
		return 443;
	p = strtoul(s, &end, 10);
	return *end == '\0' && p >= 1 && p <= 65535 ? (unsigned)p : 443;
}

/* The cache */

static unsigned
sts_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % STS_BUCKETS;
}

static void
sts_entry_free(struct sts *sts, struct sts_entry *e)
{
	LIST_REMOVE(e, link);
	sts->nentries--;
	free(e->text);
	free(e->policy);
	free(e);
}

/* The domain's entry, expired or not. */
static struct sts_entry *
sts_entry_of(struct sts *sts, const char *domain)
{
	struct sts_entry *e;

	LIST_FOREACH(e, &sts->buckets[sts_hash(domain)], link)
	if (strcmp(e->domain, domain) == 0)
		return e;
	return NULL;
}

/* The domain's entry if it has not expired; an expired one is dropped. */
static struct sts_entry *
sts_find(struct sts *sts, const char *domain, time_t now)
{
	struct sts_entry *e = sts_entry_of(sts, domain);

	if (e != NULL && e->expires <= now) {
		sts_entry_free(sts, e);
		return NULL;
	}
	return e != NULL && e->expires > now ? e : NULL;
}

/* Room for one more: the entry that expires soonest goes. */
static void
sts_make_room(struct sts *sts)
{
	struct sts_entry *victim = NULL, *e;

	if (sts->nentries < STS_CACHE_MAX)
		return;
	for (size_t i = 0; i < STS_BUCKETS; i++) {
		LIST_FOREACH(e, &sts->buckets[i], link)
		{
			if (!e->refreshing &&
			    (victim == NULL || e->expires < victim->expires))
				victim = e;
		}
	}
	if (victim != NULL)
		sts_entry_free(sts, victim);
}

/*
 * Put a parsed policy in the cache (taking text and p), replacing the
 * domain's entry; NULL when out of memory (text and p are freed).
 */
static struct sts_entry *
sts_store(struct sts *sts, const char *domain, const char *id, char *text,
    size_t len, struct sts_policy *p, time_t fetched)
{
	struct sts_entry *e;

	if ((e = sts_entry_of(sts, domain)) == NULL) {
		sts_make_room(sts);
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			free(text);
			free(p);
			return NULL;
		}
		snprintf(e->domain, sizeof(e->domain), "%s", domain);
		LIST_INSERT_HEAD(&sts->buckets[sts_hash(domain)], e, link);
		sts->nentries++;
	}
	free(e->text);
	free(e->policy);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->text = text;
	e->len = len;
	e->policy = p;
	e->fetched = fetched;
	e->expires = fetched + (time_t)p->max_age;
	return e;
}

static void
sts_stored(void *arg, int ok, const char *queue_id)
{
	(void)queue_id;
	if (!ok)
		log_warn("mta-sts: %s: the policy could not be written to the "
		         "queue database (kept in memory)",
		    (const char *)arg);
	free(arg);
}

static void
sts_persist(struct sts *sts, const struct sts_entry *e)
{
	struct spool_sts_row row = {
	    e->domain, e->id, e->text, e->len, e->fetched, e->expires};
	char *name;

	if (sts->spool == NULL || (name = strdup(e->domain)) == NULL)
		return;
	if (spool_sts_put(sts->spool, &row, sts_stored, name) < 0) {
		log_warn("mta-sts: %s: the policy could not be queued for the "
		         "queue database (kept in memory)",
		    e->domain);
		free(name);
	}
}

static int
sts_load_row(void *arg, const struct spool_sts_row *row)
{
	struct sts *sts = arg;
	struct sts_policy *p = malloc(sizeof(*p));
	char why[256], *text;

	if (p == NULL)
		return 0;
	if (row->expires <= time(NULL) ||
	    sts_policy_parse(
	        row->policy, row->policy_len, p, why, sizeof(why)) != 0 ||
	    (text = malloc(row->policy_len + 1)) == NULL) {
		free(p);
		return 0;
	}
	memcpy(text, row->policy, row->policy_len);
	text[row->policy_len] = '\0';
	/* the row's own dates: a restart does not make a policy younger */
	(void)sts_store(
	    sts, row->domain, row->id, text, row->policy_len, p, row->fetched);
	return 0;
}

void
sts_preload(struct sts *sts, const struct spool_sts_row *row)
{
	(void)sts_load_row(sts, row);
}

/* Queries */

/*
 * A state with nothing in it.  Not calloc: policy.mx is 16 KB, read only
 * up to policy.nmx and written whole by sts_state_from(); clearing it
 * was the largest allocation of every new destination (issue 19).
 */
static struct sts_state *
sts_state_new(void)
{
	struct sts_state *st = malloc(sizeof(*st));
	size_t tail = offsetof(struct sts_state, id);

	if (st == NULL)
		return NULL;
	memset(st, 0, offsetof(struct sts_state, policy.mx));
	memset((char *)st + tail, 0, sizeof(*st) - tail);
	st->source = "";
	return st;
}

static void
sts_query_free(struct sts_query *q)
{
	for (int i = 0; i < 2; i++)
		resolver_lookup_cancel(q->lk[i]);
	sts_fetch_cancel(q->fetch);
	TAILQ_REMOVE(&q->sts->queries, q, link);
	free(q->state);
	free(q);
}

/* The end: hand the state over (if anybody waits) and go. */
static void
sts_finish(struct sts_query *q)
{
	sts_fn fn = q->fn;
	void *arg = q->arg;
	struct sts_state *st = q->state;

	q->state = NULL; /* kept for the callback */
	sts_query_free(q);
	if (fn != NULL)
		fn(arg, st);
	free(st);
}

static void
sts_state_from(
    struct sts_state *st, const struct sts_entry *e, const char *source)
{
	st->has_policy = 1;
	st->policy = *e->policy;
	snprintf(st->id, sizeof(st->id), "%s", e->id);
	st->fetched = e->fetched;
	st->expires = e->expires;
	st->source = source;
}

/* Use what the cache has (or nothing), saying why in words. */
static void
sts_use_cache(struct sts_query *q, const char *why)
{
	struct sts_entry *e = sts_find(q->sts, q->domain, time(NULL));
	struct sts_state *st = q->state;

	/* past a valid TXT record: the policy itself could not be had */
	if (q->txt_id[0] != '\0' && st->failed == STS_FAILED_NONE)
		st->failed = STS_FAILED_FETCH;
	if (e != NULL) {
		sts_state_from(st, e, "cached");
		snprintf(st->why, sizeof(st->why),
		    "%s; the cached policy (id %s) stays in force until it "
		    "expires",
		    why, e->id);
	} else {
		snprintf(st->why, sizeof(st->why), "%s; no policy", why);
	}
	sts_finish(q);
}

static void sts_fetched(
    void *arg, int ok, const char *body, size_t len, const char *why);

static void
sts_addr_answer(void *arg, const struct resolver_answer *a)
{
	struct sts_query *q = arg;
	char why[600];

	for (size_t i = 0; a->status == RESOLVER_ANSWER_DATA && i < a->n &&
	                   q->naddrs < STS_FETCH_ADDRS_MAX;
	     i++) {
		struct sockaddr_storage *ss = &q->addrs[q->naddrs];

		memset(ss, 0, sizeof(*ss));
		if (a->len[i] == 4) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, a->data[i], 4);
			q->naddrs++;
		} else if (a->len[i] == 16) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, a->data[i], 16);
			q->naddrs++;
		}
	}
	if (q->lk[0] != NULL || q->lk[1] != NULL)
		return; /* the other answer is still to come */
	if (q->naddrs == 0) {
		snprintf(why, sizeof(why),
		    "the policy host mta-sts.%s has no address", q->domain);
		log_info("mta-sts: %s: %s", q->domain, why);
		if (q->refresh) {
			sts_finish(q);
			return;
		}
		sts_use_cache(q, why);
		return;
	}
	q->step = STS_STEP_FETCH;
	{
		char host[300];

		snprintf(host, sizeof(host), "mta-sts.%s", q->domain);
		q->sts->fetches++;
		if ((q->fetch = sts_fetch_start(q->sts->fetcher, host, q->addrs,
		         q->naddrs, sts_fetched, q)) == NULL)
			sts_use_cache(q, "the policy fetch could not start");
	}
}

/*
 * Both address look-ups report through here; lk[] tells them apart by
 * the handle, which the resolver has finished with when it calls.
 */
static void
sts_addr_answer6(void *arg, const struct resolver_answer *a)
{
	struct sts_query *q = arg;

	q->lk[1] = NULL;
	sts_addr_answer(arg, a);
}

static void
sts_addr_answer4(void *arg, const struct resolver_answer *a)
{
	struct sts_query *q = arg;

	q->lk[0] = NULL;
	sts_addr_answer(arg, a);
}

static void
sts_start_fetch(struct sts_query *q)
{
	char host[300];

	q->step = STS_STEP_ADDR;
	snprintf(host, sizeof(host), "mta-sts.%s", q->domain);
	q->lk[0] = resolver_lookup(
	    q->sts->resolver, host, RR_TYPE_A, sts_addr_answer4, q);
	q->lk[1] = resolver_lookup(
	    q->sts->resolver, host, RR_TYPE_AAAA, sts_addr_answer6, q);
	if (q->lk[0] == NULL || q->lk[1] == NULL) {
		resolver_lookup_cancel(q->lk[0]);
		resolver_lookup_cancel(q->lk[1]);
		q->lk[0] = q->lk[1] = NULL;
		if (q->refresh)
			sts_finish(q);
		else
			sts_use_cache(q, "the policy host lookup could not "
			                 "start");
	}
}

static void
sts_fetched(void *arg, int ok, const char *body, size_t len, const char *why)
{
	struct sts_query *q = arg;
	struct sts *sts = q->sts;
	struct sts_policy *p = NULL;
	struct sts_entry *e, *old;
	char perr[256], msg[700];
	char *text;

	q->fetch = NULL;
	if ((old = sts_entry_of(sts, q->domain)) != NULL)
		old->refreshing = 0;
	old = sts_find(sts, q->domain, time(NULL));
	if (!ok) {
		snprintf(msg, sizeof(msg), "policy fetch failed: %s", why);
		log_warn("mta-sts: %s: %s%s", q->domain, msg,
		    old != NULL ? "; the cached policy is kept" : "");
		if (q->refresh)
			sts_finish(q);
		else
			sts_use_cache(q, msg);
		return;
	}
	if ((p = malloc(sizeof(*p))) == NULL ||
	    (text = malloc(len + 1)) == NULL) {
		free(p);
		sts_use_cache(q, "out of memory");
		return;
	}
	if (sts_policy_parse(body, len, p, perr, sizeof(perr)) != 0) {
		free(p);
		free(text);
		snprintf(msg, sizeof(msg),
		    "broken policy at https://mta-sts.%s/.well-known/"
		    "mta-sts.txt ignored: %s",
		    q->domain, perr);
		log_warn("mta-sts: %s: %s%s", q->domain, msg,
		    old != NULL ? "; the cached policy is kept" : "");
		q->state->failed = STS_FAILED_INVALID;
		if (q->refresh)
			sts_finish(q);
		else
			sts_use_cache(q, msg);
		return;
	}
	memcpy(text, body, len);
	text[len] = '\0';
	if ((e = sts_store(sts, q->domain, q->txt_id, text, len, p,
	         time(NULL))) == NULL) {
		sts_use_cache(q, "out of memory");
		return;
	}
	log_info("mta-sts: %s: policy id %s fetched: mode %s, max_age %lu, "
	         "%zu mx pattern%s",
	    q->domain, e->id, sts_policy_mode_name(e->policy->mode),
	    e->policy->max_age, e->policy->nmx, e->policy->nmx == 1 ? "" : "s");
	sts_persist(sts, e);
	sts_state_from(q->state, e, "fetched");
	snprintf(q->state->why, sizeof(q->state->why),
	    "policy id %s fetched from https://mta-sts.%s/.well-known/"
	    "mta-sts.txt",
	    e->id, q->domain);
	sts_finish(q);
}

/* A background refresh of a policy in use (RFC 8461 5.1). */
static void
sts_refresh(struct sts *sts, struct sts_entry *e, const char *txt_id)
{
	struct sts_query *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->state = sts_state_new()) == NULL) {
		free(q);
		return;
	}
	q->sts = sts;
	q->refresh = 1;
	snprintf(q->domain, sizeof(q->domain), "%s", e->domain);
	snprintf(q->txt_id, sizeof(q->txt_id), "%s", txt_id);
	TAILQ_INSERT_TAIL(&sts->queries, q, link);
	e->refreshing = 1;
	log_info("mta-sts: %s: refreshing policy id %s (fetched %ld s ago, "
	         "max_age %lu)",
	    e->domain, e->id, (long)(time(NULL) - e->fetched),
	    e->policy->max_age);
	sts_start_fetch(q);
}

static void
sts_txt_answer(void *arg, const struct resolver_answer *a)
{
	struct sts_query *q = arg;
	struct sts *sts = q->sts;
	time_t now = time(NULL);
	struct sts_entry *e;
	char text[STS_TXT_MAX], id[STS_ID_MAX + 1], why[300];
	size_t nsts = 0;
	int valid = 0;

	q->lk[0] = NULL;
	if (a->status == RESOLVER_ANSWER_TEMPFAIL ||
	    a->status == RESOLVER_ANSWER_BOGUS) {
		snprintf(why, sizeof(why),
		    "the _mta-sts TXT lookup failed (%s)", a->why);
		sts_use_cache(q, why);
		return;
	}
	for (size_t i = 0; a->status == RESOLVER_ANSWER_DATA && i < a->n &&
	                   i < STS_TXT_RECORDS_MAX;
	     i++) {
		if (sts_txt_join(a->data[i], a->len[i], text, sizeof(text)) <
		        0 ||
		    !sts_txt_is_sts(text, strlen(text)))
			continue;
		/* RFC 8461 3.1: exactly one record that starts so */
		if (nsts++ == 0)
			valid = sts_txt_parse(text, strlen(text), id) == 0;
	}
	if (nsts != 1 || !valid) {
		snprintf(why, sizeof(why), "%s",
		    nsts == 0  ? "no _mta-sts TXT record"
		    : nsts > 1 ? "several _mta-sts TXT records (ignored, "
		                 "RFC 8461 3.1)"
		               : "the _mta-sts TXT record is not valid");
		sts_use_cache(q, why);
		return;
	}
	snprintf(q->txt_id, sizeof(q->txt_id), "%s", id);
	snprintf(q->state->txt_id, sizeof(q->state->txt_id), "%s", id);
	e = sts_find(sts, q->domain, now);
	if (e != NULL && strcmp(e->id, id) == 0) {
		sts_state_from(q->state, e, "cached");
		snprintf(q->state->why, sizeof(q->state->why),
		    "cached policy id %s (the TXT record's)", e->id);
		/* Half its life gone: fetch again, use this one meanwhile. */
		if (!e->refreshing &&
		    now - e->fetched >= (time_t)(e->policy->max_age / 2))
			sts_refresh(sts, e, id);
		sts_finish(q);
		return;
	}
	if (e != NULL)
		log_info("mta-sts: %s: the TXT record's id is now %s (cached "
		         "policy: %s): fetching the policy",
		    q->domain, id, e->id);
	sts_start_fetch(q);
}

struct sts_query *
sts_get(struct sts *sts, const char *domain, sts_fn fn, void *arg)
{
	struct sts_query *q;
	char name[300];

	if (fn == NULL || strlen(domain) >= sizeof(q->domain) ||
	    (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->state = sts_state_new()) == NULL) {
		free(q);
		return NULL;
	}
	q->sts = sts;
	q->fn = fn;
	q->arg = arg;
	q->state->source = "";
	for (size_t i = 0; domain[i] != '\0'; i++)
		q->domain[i] = (char)tolower((unsigned char)domain[i]);
	snprintf(name, sizeof(name), "_mta-sts.%s", q->domain);
	if ((q->lk[0] = resolver_lookup(sts->resolver, name, RR_TYPE_TXT,
	         sts_txt_answer, q)) == NULL) {
		free(q->state);
		free(q);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&sts->queries, q, link);
	return q;
}

void
sts_cancel(struct sts_query *q)
{
	if (q == NULL)
		return;
	q->fn = NULL;
	/* A fetch under way may still give the cache a policy. */
	if (q->step == STS_STEP_FETCH && q->fetch != NULL)
		return;
	sts_query_free(q);
}

unsigned long
sts_fetch_count(const struct sts *sts)
{
	return sts->fetches;
}

struct sts *
sts_new(const struct sts_params *p, const char **why)
{
	struct sts *sts = calloc(1, sizeof(*sts));

	if (sts == NULL) {
		*why = "out of memory";
		return NULL;
	}
	sts->base = p->base;
	sts->resolver = p->resolver;
	sts->spool = p->spool;
	TAILQ_INIT(&sts->queries);
	for (size_t i = 0; i < STS_BUCKETS; i++)
		LIST_INIT(&sts->buckets[i]);
	if ((sts->fetcher = sts_fetcher_new(
	         p->base, p->ca_file, p->port ? p->port : 443, why)) == NULL) {
		free(sts);
		return NULL;
	}
	if (sts->spool != NULL &&
	    spool_sts_load(sts->spool, sts_load_row, sts) < 0)
		log_warn("mta-sts: the cached policies could not be read from "
		         "the queue database; they will be fetched again");
	*why = NULL;
	return sts;
}

void
sts_free(struct sts *sts)
{
	struct sts_query *q;

	if (sts == NULL)
		return;
	while ((q = TAILQ_FIRST(&sts->queries)) != NULL)
		sts_query_free(q);
	sts_fetcher_free(sts->fetcher);
	for (size_t i = 0; i < STS_BUCKETS; i++)
		while (!LIST_EMPTY(&sts->buckets[i]))
			sts_entry_free(sts, LIST_FIRST(&sts->buckets[i]));
	free(sts);
}
