/*
 * resolver.c - next hops of a destination over libunbound, driven by the
 * caller's libevent loop.
 *
 * One ub_ctx per resolver, in event mode (ub_ctx_create_event): its UDP
 * and TCP sockets and timers are events on the caller's loop, and each
 * answer comes as a DNS message to resolver_ask_answered(), which reads
 * it (dns_packet.c) into the fields the rest of this file uses.  No
 * thread, no pipe: in thread mode every question and answer crossed a
 * pipe with a thread wake-up each way, about a fifth of the daemon's CPU
 * for mail to many domains (issue 19).  Answers reach their askers from
 * our own event (ev_answered), never from inside libunbound: it calls
 * back from its events and also from inside ub_resolve_event() (answers
 * from its cache or local zones), where asking or cancelling again would
 * re-enter it.
 *
 * A request (a "job") is one MX or smart host look-up: an MX query, then
 * AAAA and A for every chosen host in parallel.  When the last answer is in,
 * the job assembles its hops in RFC 5321 section 5.1 order.
 *
 * Invariants:
 * - The user's callback runs only from the "deliver" event, one finished
 *   job per activation, and nothing of the resolver is touched after it
 *   returns: it may call resolver_free() or ask again.  So a callback never
 *   runs inside resolver_mx(), resolver_smarthosts() or libunbound.
 * - A job is on exactly one list: pending (queries or a timer outstanding)
 *   or ready (finished, waiting for delivery).  resolver_free() cancels
 *   the pending ones and drops the ready ones; no callback runs afterwards.
 * - DNS data is hostile: every loop over records is bounded by a named
 *   limit, the message is read with every length checked (dns_packet.c;
 *   a malformed one is a temporary failure), names are validated before
 *   use, and addresses that would reach this machine by accident
 *   (0.0.0.0, multicast, v4-mapped) are dropped.
 *
 * A reverse look-up (resolver_ptr) is a smaller job of its own: a PTR
 * query, then A or AAAA for each name it gives, on its own two lists and
 * delivery event, with the same rules (bounded loops, checked names,
 * callbacks only from its delivery event, cancellable by the asker).
 *
 * DNSSEC (resolver_new_dnssec): libunbound validates with the trust
 * anchors it was given.  What validation proved travels with the result:
 * the MX RRset's "secure" bit, each hop's address record's, and the
 * host's CNAME-expanded name, which is what RFC 7672 2.2 needs to decide
 * whether DANE applies to a host.  A bogus answer is never used as data.
 *
 * A look-up (resolver_lookup) is one question of any type, for TLSA and
 * TXT records: a job of its own on its own two lists, with the same rules
 * (bounded loops, callbacks only from its delivery event, cancellable by
 * the asker).
 *
 * The query cap (issue 19): every question to libunbound is a "struct
 * resolver_ask", and at most RESOLVER_QUERIES_MAX are out at once.  One
 * asked beyond that waits its turn, never fails: the next step of a
 * look-up already under way (an MX host's addresses, a PTR name's address)
 * on the follow-up FIFO, a new look-up's first question on the fresh FIFO;
 * as answers come in, the pump (its own event, never inside a callback)
 * sends follow-ups first, then fresh ones, each FIFO in order.  So earlier
 * look-ups finish first and a burst of destinations is a queue, not a
 * failure.  A job's and a look-up's time limit starts when its first
 * question goes out, so waiting for the cap is never a timeout.  The FIFOs
 * need no bound of their own: every entry lives inside a job, a reverse
 * look-up or a look-up, which their callers bound (the queue manager's
 * recipients in flight, the server's sessions).
 *
 * MX hosts' addresses are kept (RESOLVER_HOST_CACHE_SIZE, issue 19): a
 * host whose AAAA and A both came without a failure, with an address, is
 * kept for the smaller TTL (at most RESOLVER_HOST_CACHE_SEC), secure bits
 * and CNAME-expanded name included, so the next job that names it asks
 * nothing.  In thread mode that saved two trips through libunbound's
 * pipes per domain; in event mode a cached answer costs no system call,
 * and what is saved is libunbound's work for the question and ours for
 * the answer (encoding and reading the message).
 *
 * RFCs: 5321 5.1 (MX order, implicit MX), 7505 (null MX), 1035 (wire
 * names), 3596 (ip6.arpa), 1912 2.1 (PTR names should resolve back),
 * 4033-4035 (DNSSEC), 7672 2.1-2.2 (what DANE needs of DNS).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound-event.h>
#include <unbound.h>

#include "dns/dns_packet.h"
#include "dns/resolver.h"
#include "util/fnv.h"
#include "util/hostname.h"

/*
 * Queries in flight per resolver: bounds libunbound's memory and ours.
 * More wait their turn (see above); a DNS server answering at once turns
 * them over in milliseconds.
 */
#define RESOLVER_QUERIES_MAX 1024
/*
 * MX hosts (or smart hosts) looked up per destination.  Postfix stops at
 * 5 MX hosts; more than RESOLVER_HOPS_MAX can never be used anyway.
 */
#define RESOLVER_HOSTS_MAX RESOLVER_HOPS_MAX
/* MX records read from one answer; a DNS message holds thousands. */
#define RESOLVER_MX_RECORDS_MAX 256
/* Address records read from one answer. */
#define RESOLVER_RR_MAX 256
/*
 * Addresses kept per host and family, so that one host's long list
 * cannot hide its other family or the backup MX hosts.
 */
#define RESOLVER_FAMILY_ADDRS_MAX 4
/* A job not done by then is a temporary failure (libunbound retries). */
#define RESOLVER_TIMEOUT_SEC 30

/* PTR names forward-confirmed per client, at most. */
#define RESOLVER_PTR_NAMES_MAX 4
/*
 * Reverse look-up results kept per resolver (direct-mapped by address),
 * and for how long at most (less when the DNS records say so).  A client
 * that opens a connection per message would otherwise cost two queries
 * per message: about a third more CPU per connection, measured with
 * smtp-source (in thread mode, when each was a trip through its pipes).
 */
#define RESOLVER_PTR_CACHE_SIZE 256
#define RESOLVER_PTR_CACHE_SEC 60
/*
 * MX hosts' addresses kept per resolver (direct-mapped by name), and for
 * how long at most (less when the records say so).  libunbound caches
 * them too, but each question to it still costs its work and ours: mail
 * to many domains that share MX hosts (hosted mail, and the many-domains
 * benchmark) would otherwise cost three questions per domain, where one
 * (the MX question) is needed (issue 19).
 */
#define RESOLVER_HOST_CACHE_SIZE 256
#define RESOLVER_HOST_CACHE_SEC 60

#define RR_TYPE_A 1
#define RR_TYPE_PTR 12
#define RR_TYPE_MX 15
#define RR_TYPE_AAAA 28
#define RR_CLASS_IN 1
#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3

enum resolver_kind { JOB_MX, JOB_SMARTHOSTS };

/* What one query told us, from best to worst for the final verdict. */
enum resolver_outcome { OUT_DATA, OUT_NODATA, OUT_NXDOMAIN, OUT_TEMP };

struct resolver_job;
struct resolver;

/* Where a question to libunbound is. */
enum resolver_ask_state {
	ASK_IDLE,     /* not asked, answered or cancelled */
	ASK_WAITING,  /* on a FIFO: RESOLVER_QUERIES_MAX are out */
	ASK_OUT,      /* sent; counted in nqueries */
	ASK_ANSWERED, /* answered, on the answered FIFO until dispatched */
};

/* What an asker gets: err is a libunbound error (res NULL) or 0. */
typedef void (*resolver_ask_fn)(void *data, int err, struct dns_answer *res);

/* One question to libunbound, inside the job or look-up that asks it. */
struct resolver_ask {
	TAILQ_ENTRY(resolver_ask) link; /* on a FIFO while waiting */
	struct resolver *r;
	enum resolver_ask_state state;
	int followup;     /* a later step of a look-up under way */
	int id;           /* libunbound's async id while out */
	const char *name; /* lives as long as the asker */
	int type;
	resolver_ask_fn cb; /* the asker's, with data */
	void *data;
	/* the answer while ASK_ANSWERED (see resolver_ask_answered) */
	int err;
	struct dns_answer *res;
	/* the asker's time limit: started when its first question goes
	 * out (NULL: it has its own start) */
	struct event *timer;
};

TAILQ_HEAD(resolver_asks, resolver_ask);

struct resolver_query {
	struct resolver_job *job;
	struct resolver_ask ask;
	int type;
	int host; /* index in job->hosts, -1 for the MX query */
};

struct resolver_host {
	char name[256];
	unsigned pref;
	unsigned port;
	struct resolver_query q[2]; /* AAAA, A */
	enum resolver_outcome worst;
	char why[256];   /* of the worst temporary failure */
	int sec6, sec4;  /* that family's address RRset was validated */
	char canon[256]; /* CNAME-expanded name, "" when it had none */
	size_t n6, n4;
	unsigned char a6[RESOLVER_FAMILY_ADDRS_MAX][16];
	unsigned char a4[RESOLVER_FAMILY_ADDRS_MAX][4];
	int clean;    /* answers that were data or no data (not failures) */
	unsigned ttl; /* the smallest TTL of those */
};

/* A host's addresses as both its answers gave them (see above). */
struct resolver_host_cached {
	double expires; /* CLOCK_MONOTONIC; 0: empty */
	char name[256];
	char canon[256];
	int sec6, sec4;
	size_t n6, n4;
	unsigned char a6[RESOLVER_FAMILY_ADDRS_MAX][16];
	unsigned char a4[RESOLVER_FAMILY_ADDRS_MAX][4];
};

struct resolver_job {
	TAILQ_ENTRY(resolver_job) link;
	struct resolver *r;
	resolver_fn fn;
	void *arg;
	enum resolver_kind kind;
	int implicit; /* no MX: the domain's own addresses */
	int finished; /* result final; on the ready list */
	int asked;    /* its first question is asked: the rest follow up */
	char domain[256];
	unsigned port;
	size_t pending; /* queries in flight */
	struct event *timer;
	struct resolver_query mxq;
	size_t nhosts;
	struct resolver_host hosts[RESOLVER_HOSTS_MAX];
	struct resolver_result res;
};

TAILQ_HEAD(resolver_jobs, resolver_job);

/* One query of a reverse look-up: the PTR (name -1) or a name's address. */
struct resolver_pquery {
	struct resolver_ptr *p;
	struct resolver_ask ask;
	int name;
};

struct resolver_ptr {
	TAILQ_ENTRY(resolver_ptr) link;
	struct resolver *r;
	resolver_ptr_fn fn;
	void *arg;
	int family; /* AF_INET or AF_INET6: which address record confirms */
	unsigned char addr[16];
	int finished;
	int verified; /* index in names[], -1 for none */
	int answered; /* every answer came (no timeout): may be cached */
	unsigned ttl; /* the smallest TTL of the answers used */
	size_t pending;
	struct event *timer;
	char rname[80]; /* the reverse name asked */
	struct resolver_pquery ptrq;
	size_t nnames;
	char names[RESOLVER_PTR_NAMES_MAX][256];
	struct resolver_pquery q[RESOLVER_PTR_NAMES_MAX];
};

TAILQ_HEAD(resolver_ptrs, resolver_ptr);

struct resolver_ptr_cached {
	int family; /* 0: empty */
	unsigned char addr[16];
	double expires; /* CLOCK_MONOTONIC */
	char name[256]; /* "" when no name was confirmed */
};

/* One question of any type (resolver_lookup). */
struct resolver_lookup {
	TAILQ_ENTRY(resolver_lookup) link;
	struct resolver *r;
	resolver_answer_fn fn;
	void *arg;
	struct resolver_ask ask;
	int finished; /* on the ready list */
	struct event *timer;
	char name[256];
	char canon[256];
	struct dns_answer *res; /* held until delivered */
	const unsigned char *data[RESOLVER_ANSWER_RR_MAX];
	size_t len[RESOLVER_ANSWER_RR_MAX];
	char why[512];
	struct resolver_answer ans;
};

TAILQ_HEAD(resolver_lookups, resolver_lookup);

struct resolver {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *ev_deliver; /* a job on the ready list */
	struct event *ev_ptr;     /* a reverse look-up on ptr_ready */
	struct event *ev_lookup;  /* a look-up on lk_ready */
	struct resolver_jobs pending, ready;
	struct resolver_ptrs ptr_pending, ptr_ready;
	struct resolver_ptr_cached *ptr_cache;   /* RESOLVER_PTR_CACHE_SIZE */
	struct resolver_host_cached *host_cache; /* RESOLVER_HOST_CACHE_SIZE */
	struct resolver_lookups lk_pending, lk_ready;
	size_t nqueries; /* asks out */
	/* asks waiting for the cap, and the event that sends them */
	struct resolver_asks follow, fresh;
	struct event *ev_pump;
	/* answers from libunbound, handed to their askers from this event */
	struct resolver_asks answered;
	struct event *ev_answered;
	int validates; /* a trust anchor was loaded */
};

static void resolver_finish(struct resolver_job *);

/* Names */

static int
resolver_ldh(int c)
{
	return isascii(c) && (isalnum(c) || c == '-');
}

/*
 * An uncompressed wire-format host name that fills data[0..len) exactly,
 * into out (at least 256 bytes) in lower case without the final dot.  The
 * root parses to "".  -1 for anything that is not a usable host name.
 */
static int
resolver_wire_name(const unsigned char *data, size_t len, char *out)
{
	size_t i = 0, w = 0;

	out[0] = '\0';
	/* Each label costs at least one octet, so this loop ends. */
	while (i < len) {
		size_t l = data[i++];

		if (l == 0) {
			if (i != len)
				return -1; /* trailing octets */
			if (w == 0)
				return 0; /* the root */
			out[w - 1] = '\0';
			return hostname_valid(out, HOSTNAME_FROM_DNS) ? 0 : -1;
		}
		/* Compression pointers and extended labels are not names. */
		if (l > 63 || l > len - i || w + l + 1 > 254)
			return -1;
		for (size_t k = 0; k < l; k++) {
			int c = data[i + k];

			if (!resolver_ldh(c))
				return -1;
			out[w++] = (char)tolower(c);
		}
		out[w++] = '.';
		i += l;
	}
	return -1; /* no terminating root label */
}

int
resolver_mx_parse(
    const unsigned char *rdata, size_t len, struct resolver_mx *out)
{
	if (rdata == NULL || len < 3)
		return -1;
	out->pref = (unsigned)rdata[0] << 8 | rdata[1];
	return resolver_wire_name(rdata + 2, len - 2, out->host);
}

static int
resolver_mx_cmp(const void *a, const void *b)
{
	const struct resolver_mx *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

size_t
resolver_mx_order(struct resolver_mx *v, size_t n,
    unsigned (*rnd)(void *arg, unsigned bound), void *arg)
{
	size_t out = 0;

	qsort(v, n, sizeof(*v), resolver_mx_cmp);
	/* RFC 5321 5.1: equal preferences in random order (Fisher-Yates). */
	for (size_t start = 0, end; start < n; start = end) {
		for (end = start + 1; end < n && v[end].pref == v[start].pref;
		     end++)
			;
		for (size_t i = end - 1; i > start; i--) {
			size_t j = start + rnd(arg, (unsigned)(i - start + 1));
			struct resolver_mx t = v[i];

			v[i] = v[j];
			v[j] = t;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < out && strcmp(v[k].host, v[i].host) != 0; k++)
			;
		if (k < out)
			continue;
		if (out != i)
			v[out] = v[i];
		out++;
	}
	return out;
}

static unsigned
resolver_random(void *arg, unsigned bound)
{
	(void)arg;
	return arc4random_uniform(bound);
}

/* Answers */

static const char *
resolver_rcode_name(int rcode)
{
	static const char *names[] = {
	    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};

	if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	return "an unexpected response code";
}

static enum resolver_outcome
resolver_classify(const char *name, int err, const struct dns_answer *res,
    char *why, size_t whylen)
{
	if (err != 0 || res == NULL) {
		snprintf(why, whylen, "DNS lookup of %s failed: %s", name,
		    ub_strerror(err));
		return OUT_TEMP;
	}
	if (res->error != NULL) {
		snprintf(why, whylen, "DNS lookup of %s failed: %s", name,
		    res->error);
		return OUT_TEMP;
	}
	if (res->bogus) {
		snprintf(why, whylen,
		    "DNS lookup of %s failed: DNSSEC validation failed", name);
		return OUT_TEMP;
	}
	if (res->rcode == RCODE_NXDOMAIN || res->nxdomain)
		return OUT_NXDOMAIN;
	if (res->rcode != 0) {
		snprintf(why, whylen, "DNS lookup of %s failed: %s", name,
		    resolver_rcode_name(res->rcode));
		return OUT_TEMP;
	}
	if (!res->havedata || res->n == 0)
		return OUT_NODATA;
	return OUT_DATA;
}

/* Addresses that would loop back to us or reach nobody by accident. */
static int
resolver_addr_ok(int family, const unsigned char *a)
{
	static const unsigned char zero[16],
	    mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (family == AF_INET)
		return a[0] != 0 && a[0] < 224;
	/* v4-mapped would slip past the IPv4 checks above. */
	return memcmp(a, zero, 16) != 0 && a[0] != 0xff &&
	       memcmp(a, mapped, 12) != 0;
}

static void
resolver_host_worst(
    struct resolver_host *h, enum resolver_outcome o, const char *why)
{
	if (o <= h->worst)
		return;
	h->worst = o;
	if (why != NULL)
		snprintf(h->why, sizeof(h->why), "%s", why);
}

/*
 * The name an answer ended at after CNAMEs, when that is another valid
 * host name; "" otherwise.
 */
static void
resolver_canon(
    const char *asked, const struct dns_answer *res, char *out, size_t outlen)
{
	char c[256];
	size_t n;

	out[0] = '\0';
	if ((n = strlen(res->canon)) == 0 || n >= sizeof(c))
		return;
	memcpy(c, res->canon, n + 1);
	if (c[n - 1] == '.')
		c[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		c[i] = (char)tolower((unsigned char)c[i]);
	if (strcasecmp(c, asked) == 0 || !hostname_valid(c, HOSTNAME_FROM_DNS))
		return;
	snprintf(out, outlen, "%s", c);
}

static enum resolver_outcome
resolver_addr_answer(
    struct resolver_host *h, int type, int err, const struct dns_answer *res)
{
	char why[256] = "";
	enum resolver_outcome o =
	    resolver_classify(h->name, err, res, why, sizeof(why));
	size_t want = type == RR_TYPE_AAAA ? 16 : 4;

	if (o != OUT_DATA) {
		resolver_host_worst(h, o, why);
		return o;
	}
	if (type == RR_TYPE_AAAA)
		h->sec6 = res->secure;
	else
		h->sec4 = res->secure;
	if (h->canon[0] == '\0')
		resolver_canon(h->name, res, h->canon, sizeof(h->canon));
	for (size_t i = 0; i < RESOLVER_RR_MAX && i < res->n; i++) {
		const unsigned char *a = res->data[i];

		if (res->len[i] != want ||
		    !resolver_addr_ok(
		        type == RR_TYPE_AAAA ? AF_INET6 : AF_INET, a))
			continue;
		if (type == RR_TYPE_AAAA && h->n6 < RESOLVER_FAMILY_ADDRS_MAX)
			memcpy(h->a6[h->n6++], a, 16);
		else if (type == RR_TYPE_A && h->n4 < RESOLVER_FAMILY_ADDRS_MAX)
			memcpy(h->a4[h->n4++], a, 4);
	}
	return o;
}

/* Asks: every question to libunbound, under the query cap */

static void
resolver_pump_soon(struct resolver *r)
{
	if (r->ev_pump != NULL &&
	    (!TAILQ_EMPTY(&r->follow) || !TAILQ_EMPTY(&r->fresh)) &&
	    r->nqueries < RESOLVER_QUERIES_MAX)
		event_active(r->ev_pump, EV_TIMEOUT, 1);
}

/*
 * libunbound's answer to a: read now (the packet is libunbound's and
 * lives only during this call), handed to the asker later from
 * ev_answered.  Never the asker's code here: this runs inside
 * libunbound, from its own events or from inside ub_resolve_event() (an
 * answer from its cache or local data), and an asker that asked or
 * cancelled again from here would re-enter it.
 */
static void
resolver_ask_answered(void *mydata, int rcode, void *pkt, int len, int sec,
    char *why_bogus, int was_ratelimited)
{
	struct resolver_ask *a = mydata;
	struct resolver *r = a->r;
	struct dns_answer *res;
	const char *why;

	(void)was_ratelimited;
	/* rcode: libunbound's own failure (SERVFAIL mostly); the packet is
	 * then not to be read */
	if (rcode != 0 || pkt == NULL || len <= 0)
		res = dns_answer_rcode(rcode != 0 ? rcode : RCODE_SERVFAIL);
	else
		res = dns_packet_parse(pkt, (size_t)len, a->type, &why);
	if (res != NULL && res->error == NULL) {
		res->secure = sec == 2;
		res->bogus = sec == 1;
		if (res->bogus)
			snprintf(res->why_bogus, sizeof(res->why_bogus), "%s",
			    why_bogus != NULL ? why_bogus : "bogus");
	}
	a->err = res == NULL ? UB_NOMEM : 0;
	a->res = res;
	a->state = ASK_ANSWERED;
	r->nqueries--;
	TAILQ_INSERT_TAIL(&r->answered, a, link);
	event_active(r->ev_answered, EV_TIMEOUT, 1);
	resolver_pump_soon(r);
}

/* Answers in: each to its asker, who may ask, finish or cancel anything. */
static void
resolver_answered_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	struct resolver_ask *a;

	(void)fd;
	(void)what;
	while ((a = TAILQ_FIRST(&r->answered)) != NULL) {
		struct dns_answer *res = a->res;

		TAILQ_REMOVE(&r->answered, a, link);
		a->state = ASK_IDLE;
		a->res = NULL;
		/* Last use of a: the asker owns res and may free a. */
		a->cb(a->data, a->err, res);
	}
}

/* Send a to libunbound now; -1 when libunbound refuses. */
static int
resolver_ask_out(struct resolver_ask *a)
{
	struct resolver *r = a->r;
	const struct timeval tv = {RESOLVER_TIMEOUT_SEC, 0};

	/* Counted first: the answer may come inside ub_resolve_event(). */
	a->state = ASK_OUT;
	r->nqueries++;
	if (ub_resolve_event(r->ctx, a->name, a->type, RR_CLASS_IN, a,
	        resolver_ask_answered, &a->id) != 0 &&
	    a->state == ASK_OUT) {
		a->state = ASK_IDLE;
		r->nqueries--;
		return -1;
	}
	if (a->timer != NULL && !evtimer_pending(a->timer, NULL))
		(void)evtimer_add(a->timer, &tv);
	return 0;
}

/*
 * Ask a question: out at once while under the cap and nothing older
 * waits, else at the end of its FIFO.  cb(data, err, res) follows exactly
 * once unless the ask is cancelled first, always from the loop.  -1 only
 * when libunbound refuses at once.
 */
static int
resolver_ask(struct resolver *r, struct resolver_ask *a, const char *name,
    int type, int followup, resolver_ask_fn cb, void *data, struct event *timer)
{
	a->r = r;
	a->name = name;
	a->type = type;
	a->followup = followup;
	a->cb = cb;
	a->data = data;
	a->timer = timer;
	if (r->nqueries < RESOLVER_QUERIES_MAX && TAILQ_EMPTY(&r->follow) &&
	    (followup || TAILQ_EMPTY(&r->fresh)))
		return resolver_ask_out(a);
	TAILQ_INSERT_TAIL(followup ? &r->follow : &r->fresh, a, link);
	a->state = ASK_WAITING;
	resolver_pump_soon(r);
	return 0;
}

/* The asker no longer wants the answer; its callback will not run. */
static void
resolver_ask_cancel(struct resolver_ask *a)
{
	struct resolver *r = a->r;

	switch (a->state) {
	case ASK_IDLE:
		return;
	case ASK_WAITING:
		TAILQ_REMOVE(a->followup ? &r->follow : &r->fresh, a, link);
		break;
	case ASK_OUT:
		/* libunbound finishes the query; its callback won't run. */
		(void)ub_cancel(r->ctx, a->id);
		r->nqueries--;
		resolver_pump_soon(r);
		break;
	case ASK_ANSWERED:
		TAILQ_REMOVE(&r->answered, a, link);
		dns_answer_free(a->res);
		a->res = NULL;
		break;
	}
	a->state = ASK_IDLE;
}

/* Answers came in: waiting questions go out, follow-ups first. */
static void
resolver_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	struct resolver_ask *a;

	(void)fd;
	(void)what;
	while (r->nqueries < RESOLVER_QUERIES_MAX &&
	       ((a = TAILQ_FIRST(&r->follow)) != NULL ||
	           (a = TAILQ_FIRST(&r->fresh)) != NULL)) {
		TAILQ_REMOVE(a->followup ? &r->follow : &r->fresh, a, link);
		a->state = ASK_IDLE;
		/* Refused: answered as a failure, as libunbound would. */
		if (resolver_ask_out(a) != 0)
			a->cb(a->data, UB_NOMEM, NULL);
	}
}

/* Queries of a job */

static void resolver_ub_cb(void *mydata, int err, struct dns_answer *res);

static int
resolver_send(struct resolver_job *job, struct resolver_query *q,
    const char *name, int type, int host)
{
	int followup = job->asked;

	q->job = job;
	q->type = type;
	q->host = host;
	job->asked = 1;
	if (resolver_ask(job->r, &q->ask, name, type, followup, resolver_ub_cb,
	        q, job->timer) != 0)
		return -1;
	job->pending++;
	return 0;
}

static void
resolver_cancel(struct resolver_job *job, struct resolver_query *q)
{
	if (q->ask.state == ASK_IDLE)
		return;
	resolver_ask_cancel(&q->ask);
	job->pending--;
}

static void resolver_fail(struct resolver_job *job, enum resolver_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
resolver_fail(
    struct resolver_job *job, enum resolver_status st, const char *fmt, ...)
{
	va_list ap;

	job->res.status = st;
	job->res.nhops = 0;
	va_start(ap, fmt);
	vsnprintf(job->res.why, sizeof(job->res.why), fmt, ap);
	va_end(ap);
	resolver_finish(job);
}

/* Host addresses kept (RESOLVER_HOST_CACHE_SIZE) */

static double resolver_now(void);

static struct resolver_host_cached *
resolver_host_slot(struct resolver *r, const char *name)
{
	if (r->host_cache == NULL &&
	    (r->host_cache = calloc(
	         RESOLVER_HOST_CACHE_SIZE, sizeof(*r->host_cache))) == NULL)
		return NULL;
	return &r->host_cache[fnv_32(FNV_32_INIT, name, strlen(name)) %
	                      RESOLVER_HOST_CACHE_SIZE];
}

/*
 * One of h's two answers came.  Once both have, without a failure, and
 * gave at least one address, h is kept for at most the smallest TTL:
 * what libunbound itself would answer from its cache until then.
 */
static void
resolver_host_note(struct resolver *r, struct resolver_host *h,
    enum resolver_outcome o, const struct dns_answer *res)
{
	struct resolver_host_cached *c;
	unsigned ttl;

	if (o != OUT_DATA && o != OUT_NODATA)
		return;
	ttl = res->ttl > 0 ? (unsigned)res->ttl : 0;
	if (h->clean++ == 0 || ttl < h->ttl)
		h->ttl = ttl;
	if (h->clean != 2 || h->n4 + h->n6 == 0 || h->ttl == 0 ||
	    (c = resolver_host_slot(r, h->name)) == NULL)
		return;
	ttl =
	    h->ttl < RESOLVER_HOST_CACHE_SEC ? h->ttl : RESOLVER_HOST_CACHE_SEC;
	c->expires = resolver_now() + ttl;
	memcpy(c->name, h->name, sizeof(c->name));
	memcpy(c->canon, h->canon, sizeof(c->canon));
	c->sec6 = h->sec6;
	c->sec4 = h->sec4;
	c->n6 = h->n6;
	c->n4 = h->n4;
	memcpy(c->a6, h->a6, sizeof(c->a6));
	memcpy(c->a4, h->a4, sizeof(c->a4));
}

/* h's addresses from the cache when they are fresh there: 1, else 0. */
static int
resolver_host_recall(struct resolver *r, struct resolver_host *h)
{
	struct resolver_host_cached *c = resolver_host_slot(r, h->name);

	if (c == NULL || c->expires == 0 || strcmp(c->name, h->name) != 0 ||
	    c->expires <= resolver_now())
		return 0;
	memcpy(h->canon, c->canon, sizeof(h->canon));
	h->sec6 = c->sec6;
	h->sec4 = c->sec4;
	h->n6 = c->n6;
	h->n4 = c->n4;
	memcpy(h->a6, c->a6, sizeof(h->a6));
	memcpy(h->a4, c->a4, sizeof(h->a4));
	return 1;
}

/* The next host of job, cleared (hosts[] is not cleared with the job). */
static struct resolver_host *
resolver_host_add(struct resolver_job *job)
{
	struct resolver_host *h = &job->hosts[job->nhosts++];

	memset(h, 0, sizeof(*h));
	return h;
}

/*
 * AAAA and A of every host; a host whose name is unusable is skipped, and
 * one whose addresses are kept needs no question.
 */
static void
resolver_send_hosts(struct resolver_job *job)
{
	for (size_t i = 0; i < job->nhosts; i++) {
		struct resolver_host *h = &job->hosts[i];

		if (h->worst != OUT_DATA || h->n4 + h->n6 > 0)
			continue; /* bad name, or a literal already known */
		if (resolver_host_recall(job->r, h))
			continue;
		if (resolver_send(
		        job, &h->q[0], h->name, RR_TYPE_AAAA, (int)i) != 0 ||
		    resolver_send(job, &h->q[1], h->name, RR_TYPE_A, (int)i) !=
		        0) {
			resolver_fail(job, RESOLVER_TEMPFAIL,
			    "DNS lookup of %s not started (libunbound "
			    "failing)",
			    h->name);
			return;
		}
	}
}

static void
resolver_mx_answer(struct resolver_job *job, int err, struct dns_answer *res)
{
	struct resolver_mx *mx;
	struct resolver_host *h;
	char why[256] = "";
	size_t n = 0, nrr = 0, cap;

	switch (resolver_classify(job->domain, err, res, why, sizeof(why))) {
	case OUT_TEMP:
		resolver_fail(job, RESOLVER_TEMPFAIL, "%s", why);
		return;
	case OUT_NXDOMAIN:
		resolver_fail(job, RESOLVER_PERMFAIL,
		    "domain %s does not exist (NXDOMAIN)", job->domain);
		return;
	case OUT_NODATA:
		job->res.mx_secure = res->secure;
		/* RFC 5321 5.1: the domain itself is the implicit MX. */
		job->implicit = 1;
		h = resolver_host_add(job);
		snprintf(h->name, sizeof(h->name), "%s", job->domain);
		h->port = job->port;
		resolver_send_hosts(job);
		return;
	case OUT_DATA:
		job->res.mx_secure = res->secure;
		break;
	}
	nrr = res->n < RESOLVER_RR_MAX ? res->n : RESOLVER_RR_MAX;
	/* room for what the answer holds: a domain with one MX record costs
	 * a 260-byte allocation, not 66 KB cleared (issue 19) */
	cap = nrr < RESOLVER_MX_RECORDS_MAX ? nrr : RESOLVER_MX_RECORDS_MAX;
	if ((mx = calloc(cap, sizeof(*mx))) == NULL) {
		resolver_fail(job, RESOLVER_TEMPFAIL,
		    "DNS lookup of %s failed: out of memory", job->domain);
		return;
	}
	for (size_t i = 0; i < nrr; i++) {
		if (n < cap &&
		    resolver_mx_parse(res->data[i], res->len[i], &mx[n]) == 0)
			n++;
	}
	if (nrr == 1 && n == 1 && mx[0].pref == 0 && mx[0].host[0] == '\0') {
		free(mx);
		resolver_fail(job, RESOLVER_NULLMX,
		    "%s accepts no mail (null MX, RFC 7505)", job->domain);
		return;
	}
	n = resolver_mx_order(mx, n, resolver_random, NULL);
	for (size_t i = 0; i < n && job->nhosts < RESOLVER_HOSTS_MAX; i++) {
		if (mx[i].host[0] == '\0')
			continue; /* "." beside other MX records: unusable */
		h = resolver_host_add(job);
		snprintf(h->name, sizeof(h->name), "%s", mx[i].host);
		h->pref = mx[i].pref;
		h->port = job->port;
	}
	free(mx);
	if (job->nhosts == 0) {
		resolver_fail(job, RESOLVER_TEMPFAIL,
		    "no usable MX host for %s (%zu MX records, none a valid "
		    "host name)",
		    job->domain, nrr);
		return;
	}
	resolver_send_hosts(job);
}

static void
resolver_sockaddr(
    struct resolver_hop *hop, int family, const unsigned char *a, unsigned port)
{
	memset(&hop->addr, 0, sizeof(hop->addr));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&hop->addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, a, 16);
		hop->addrlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&hop->addr;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, a, 4);
		hop->addrlen = sizeof(*s4);
	}
}

static void
resolver_add_hop(struct resolver_result *res, const struct resolver_host *h,
    int family, const unsigned char *a)
{
	struct resolver_hop *hop;

	if (res->nhops >= RESOLVER_HOPS_MAX)
		return;
	hop = &res->hops[res->nhops++];
	snprintf(hop->host, sizeof(hop->host), "%s", h->name);
	snprintf(hop->canon, sizeof(hop->canon), "%s", h->canon);
	hop->pref = h->pref;
	hop->secure = family == AF_INET6 ? h->sec6 : h->sec4;
	resolver_sockaddr(hop, family, a, h->port);
}

/* Every answer is in: hosts in order, each host's AAAA then A. */
static void
resolver_assemble(struct resolver_job *job)
{
	struct resolver_result *res = &job->res;
	const struct resolver_host *temp = NULL;
	int nx = 0;
	char names[200] = "";
	size_t w = 0;

	res->nhops = 0;
	for (size_t i = 0; i < job->nhosts; i++) {
		const struct resolver_host *h = &job->hosts[i];

		for (size_t k = 0; k < h->n6; k++)
			resolver_add_hop(res, h, AF_INET6, h->a6[k]);
		for (size_t k = 0; k < h->n4; k++)
			resolver_add_hop(res, h, AF_INET, h->a4[k]);
		if (h->n4 + h->n6 == 0) {
			if (h->worst == OUT_TEMP && temp == NULL)
				temp = h;
			nx |= h->worst == OUT_NXDOMAIN;
			if (w < sizeof(names))
				w += (size_t)snprintf(names + w,
				    sizeof(names) - w, "%s%s", w ? ", " : "",
				    h->name);
		}
	}
	if (res->nhops > 0) {
		res->status = RESOLVER_OK;
		res->why[0] = '\0';
	} else if (temp != NULL) {
		res->status = RESOLVER_TEMPFAIL;
		snprintf(res->why, sizeof(res->why), "%s", temp->why);
	} else if (job->kind == JOB_SMARTHOSTS) {
		res->status = RESOLVER_TEMPFAIL;
		snprintf(res->why, sizeof(res->why),
		    "no address for smart hosts %s", names);
	} else if (job->implicit) {
		res->status = RESOLVER_PERMFAIL;
		snprintf(res->why, sizeof(res->why),
		    nx ? "domain %s does not exist (NXDOMAIN)"
		       : "no MX or address for %s",
		    job->domain);
	} else {
		/* RFC 5321 5.1: MX hosts without addresses may get some. */
		res->status = RESOLVER_TEMPFAIL;
		snprintf(res->why, sizeof(res->why),
		    "no address for the MX hosts of %.100s (%.120s)",
		    job->domain, names);
	}
	resolver_finish(job);
}

static void
resolver_ub_cb(void *mydata, int err, struct dns_answer *res)
{
	struct resolver_query *q = mydata;
	struct resolver_job *job = q->job;

	job->pending--;
	if (q->host < 0) {
		resolver_mx_answer(job, err, res);
	} else {
		struct resolver_host *h = &job->hosts[q->host];

		resolver_host_note(
		    job->r, h, resolver_addr_answer(h, q->type, err, res), res);
	}
	dns_answer_free(res);
	if (!job->finished && job->pending == 0)
		resolver_assemble(job);
}

/* Jobs */

static void
resolver_job_free(struct resolver_job *job)
{
	if (job->timer != NULL)
		event_free(job->timer);
	free(job);
}

/* The result is final: stop everything and queue it for delivery. */
static void
resolver_finish(struct resolver_job *job)
{
	struct resolver *r = job->r;

	resolver_cancel(job, &job->mxq);
	for (size_t i = 0; i < job->nhosts; i++) {
		resolver_cancel(job, &job->hosts[i].q[0]);
		resolver_cancel(job, &job->hosts[i].q[1]);
	}
	if (job->timer != NULL) {
		event_free(job->timer);
		job->timer = NULL;
	}
	job->finished = 1;
	TAILQ_REMOVE(&r->pending, job, link);
	TAILQ_INSERT_TAIL(&r->ready, job, link);
	event_active(r->ev_deliver, EV_TIMEOUT, 1);
}

static void
resolver_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_job *job = arg;

	(void)fd;
	(void)what;
	resolver_fail(job, RESOLVER_TEMPFAIL, "DNS lookup of %s timed out",
	    job->kind == JOB_MX ? job->domain : "the smart hosts");
}

static void
resolver_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	struct resolver_job *job = TAILQ_FIRST(&r->ready);
	resolver_fn fn;
	void *fnarg;

	(void)fd;
	(void)what;
	if (job == NULL)
		return;
	TAILQ_REMOVE(&r->ready, job, link);
	if (!TAILQ_EMPTY(&r->ready))
		event_active(r->ev_deliver, EV_TIMEOUT, 1);
	fn = job->fn;
	fnarg = job->arg;
	/* Last use of r: the callback may free the resolver. */
	fn(fnarg, &job->res);
	resolver_job_free(job);
}

static struct resolver_job *
resolver_job_new(struct resolver *r, enum resolver_kind kind, unsigned port,
    resolver_fn fn, void *arg)
{
	struct resolver_job *job;
	if (port < 1 || port > 65535 || fn == NULL)
		return NULL;
	/*
	 * Not calloc: hosts[] and res.hops[] are 28 KB, and a destination
	 * uses one or two of each (issue 19: clearing them was most of a
	 * new destination's memset).  A host is cleared when it is added
	 * (resolver_host_add), a hop written whole (resolver_add_hop).
	 */
	if ((job = malloc(sizeof(*job))) == NULL)
		return NULL;
	memset(job, 0, offsetof(struct resolver_job, hosts));
	memset(&job->res, 0, offsetof(struct resolver_result, hops));
	job->r = r;
	job->kind = kind;
	job->port = port;
	job->fn = fn;
	job->arg = arg;
	job->mxq.host = -1;
	/* armed when the first question goes out (resolver_ask_out) */
	if ((job->timer = evtimer_new(r->base, resolver_timeout_cb, job)) ==
	    NULL) {
		resolver_job_free(job);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->pending, job, link);
	return job;
}

/* Undo a job that never got going; the caller sees -1, no callback. */
static int
resolver_job_abort(struct resolver_job *job)
{
	TAILQ_REMOVE(&job->r->pending, job, link);
	resolver_job_free(job);
	return -1;
}

int
resolver_mx(struct resolver *r, const char *domain, unsigned port,
    resolver_fn fn, void *arg)
{
	struct resolver_job *job;

	if ((job = resolver_job_new(r, JOB_MX, port, fn, arg)) == NULL)
		return -1;
	if (strlen(domain) >= sizeof(job->domain) ||
	    !hostname_valid(domain, HOSTNAME_FROM_DNS)) {
		/* Reported like any answer, so callers have one path. */
		snprintf(job->domain, sizeof(job->domain), "%.200s", domain);
		resolver_fail(job, RESOLVER_PERMFAIL,
		    "%s is not a valid mail domain", job->domain);
		return 0;
	}
	snprintf(job->domain, sizeof(job->domain), "%s", domain);
	if (resolver_send(job, &job->mxq, job->domain, RR_TYPE_MX, -1) != 0)
		return resolver_job_abort(job);
	return 0;
}

/* "192.0.2.1", "2001:db8::1" or "IPv6:2001:db8::1" (RFC 5321 4.1.3). */
static int
resolver_literal(struct resolver_host *h, const char *s)
{
	if (strncasecmp(s, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, s + 5, h->a6[0]) != 1)
			return -1;
		h->n6 = resolver_addr_ok(AF_INET6, h->a6[0]);
	} else if (inet_pton(AF_INET, s, h->a4[0]) == 1) {
		h->n4 = resolver_addr_ok(AF_INET, h->a4[0]);
	} else if (inet_pton(AF_INET6, s, h->a6[0]) == 1) {
		h->n6 = resolver_addr_ok(AF_INET6, h->a6[0]);
	} else {
		return -1;
	}
	return h->n4 + h->n6 > 0 ? 0 : -1;
}

int
resolver_smarthosts(struct resolver *r, const struct conf_smarthost *sh,
    size_t n, unsigned default_port, resolver_fn fn, void *arg)
{
	struct resolver_job *job;

	if (n == 0 || (job = resolver_job_new(
	                   r, JOB_SMARTHOSTS, default_port, fn, arg)) == NULL)
		return -1;
	for (size_t i = 0; i < n && i < RESOLVER_HOSTS_MAX; i++) {
		struct resolver_host *h = resolver_host_add(job);

		snprintf(h->name, sizeof(h->name), "%s", sh[i].host);
		h->port = sh[i].port ? sh[i].port : default_port;
		/*
		 * An address is used as it is, flagged or not (Exchange
		 * writes SmartHosts = 10.10.10.1): DNS is never asked
		 * about an address literal.
		 */
		if (resolver_literal(h, sh[i].host) == 0)
			continue;
		if (sh[i].literal ||
		    !hostname_valid(sh[i].host, HOSTNAME_FROM_DNS))
			h->worst = OUT_NODATA;
	}
	resolver_send_hosts(job);
	if (!job->finished && job->pending == 0)
		resolver_assemble(job); /* literals only: delivered later */
	return 0;
}

/* Reverse look-ups */

int
resolver_reverse_name(const struct sockaddr *sa, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *a;
	size_t w = 0;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		a = s6->sin6_addr.s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (len < 64 + sizeof("ip6.arpa"))
				return -1;
			for (int i = 15; i >= 0; i--) {
				out[w++] = hex[a[i] & 0xf];
				out[w++] = '.';
				out[w++] = hex[a[i] >> 4];
				out[w++] = '.';
			}
			memcpy(out + w, "ip6.arpa", sizeof("ip6.arpa"));
			return 0;
		}
		a += 12;
	} else if (sa->sa_family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)
		        ->sin_addr;
	} else {
		return -1;
	}
	if (snprintf(out, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
	        a[0]) >= (int)len)
		return -1;
	return 0;
}

static void resolver_ptr_ub_cb(void *mydata, int err, struct dns_answer *res);

static double
resolver_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct resolver_ptr_cached *
resolver_ptr_slot(struct resolver *r, int family, const unsigned char *a)
{
	uint32_t h;

	if (r->ptr_cache == NULL &&
	    (r->ptr_cache = calloc(
	         RESOLVER_PTR_CACHE_SIZE, sizeof(*r->ptr_cache))) == NULL)
		return NULL;
	h = fnv_32(FNV_32_INIT, a, family == AF_INET6 ? 16u : 4u);
	return &r->ptr_cache[h % RESOLVER_PTR_CACHE_SIZE];
}

/* A finished look-up whose answers all came is kept for the next ones. */
static void
resolver_ptr_remember(struct resolver_ptr *p)
{
	struct resolver_ptr_cached *c =
	    resolver_ptr_slot(p->r, p->family, p->addr);
	unsigned ttl =
	    p->ttl < RESOLVER_PTR_CACHE_SEC ? p->ttl : RESOLVER_PTR_CACHE_SEC;

	if (c == NULL || !p->answered || ttl == 0)
		return;
	c->family = p->family;
	memcpy(c->addr, p->addr, sizeof(c->addr));
	c->expires = resolver_now() + ttl;
	snprintf(c->name, sizeof(c->name), "%s",
	    p->verified >= 0 ? p->names[p->verified] : "");
}

/* A fresh cached result: p is finished at once (delivered later). */
static int
resolver_ptr_recall(struct resolver_ptr *p)
{
	struct resolver_ptr_cached *c =
	    resolver_ptr_slot(p->r, p->family, p->addr);

	if (c == NULL || c->family != p->family ||
	    memcmp(c->addr, p->addr, sizeof(c->addr)) != 0 ||
	    c->expires <= resolver_now())
		return 0;
	if (c->name[0] != '\0') {
		memcpy(p->names[0], c->name, sizeof(p->names[0]));
		p->nnames = 1;
		p->verified = 0;
	}
	p->finished = 1;
	TAILQ_INSERT_TAIL(&p->r->ptr_ready, p, link);
	event_active(p->r->ev_ptr, EV_TIMEOUT, 1);
	return 1;
}

/* The PTR question first; a name's address follows up. */
static int
resolver_ptr_send(struct resolver_ptr *p, struct resolver_pquery *q,
    const char *name, int type, int idx)
{
	q->p = p;
	q->name = idx;
	if (resolver_ask(p->r, &q->ask, name, type, idx >= 0,
	        resolver_ptr_ub_cb, q, NULL) != 0)
		return -1;
	p->pending++;
	return 0;
}

static void
resolver_ptr_cancel_query(struct resolver_ptr *p, struct resolver_pquery *q)
{
	if (q->ask.state == ASK_IDLE)
		return;
	resolver_ask_cancel(&q->ask);
	p->pending--;
}

static void
resolver_ptr_stop(struct resolver_ptr *p)
{
	resolver_ptr_cancel_query(p, &p->ptrq);
	for (size_t i = 0; i < p->nnames; i++)
		resolver_ptr_cancel_query(p, &p->q[i]);
	if (p->timer != NULL) {
		event_free(p->timer);
		p->timer = NULL;
	}
}

/* The verdict is in (or the time is up): queue it for delivery. */
static void
resolver_ptr_finish(struct resolver_ptr *p)
{
	struct resolver *r = p->r;

	resolver_ptr_stop(p);
	p->finished = 1;
	TAILQ_REMOVE(&r->ptr_pending, p, link);
	TAILQ_INSERT_TAIL(&r->ptr_ready, p, link);
	event_active(r->ev_ptr, EV_TIMEOUT, 1);
}

/* The answer's TTL bounds how long the verdict may be kept. */
static void
resolver_ptr_ttl(struct resolver_ptr *p, int err, const struct dns_answer *res)
{
	unsigned ttl = 0;

	if (err == 0 && res != NULL && !res->bogus && res->rcode != 2 &&
	    res->ttl > 0)
		ttl = (unsigned)res->ttl;
	else if (err == 0 && res != NULL && res->nxdomain)
		ttl = RESOLVER_PTR_CACHE_SEC;
	if (ttl < p->ttl)
		p->ttl = ttl;
}

static void
resolver_ptr_names(struct resolver_ptr *p, int err, struct dns_answer *res)
{
	char why[256];

	resolver_ptr_ttl(p, err, res);
	if (resolver_classify("", err, res, why, sizeof(why)) != OUT_DATA)
		return;
	for (size_t i = 0; i < RESOLVER_RR_MAX && i < res->n &&
	                   p->nnames < RESOLVER_PTR_NAMES_MAX;
	     i++) {
		char *name = p->names[p->nnames];

		if (res->len[i] < 1 ||
		    resolver_wire_name(res->data[i], res->len[i], name) != 0 ||
		    name[0] == '\0')
			continue;
		p->nnames++;
	}
	for (size_t i = 0; i < p->nnames; i++)
		if (resolver_ptr_send(p, &p->q[i], p->names[i],
		        p->family == AF_INET6 ? RR_TYPE_AAAA : RR_TYPE_A,
		        (int)i) != 0)
			break; /* the names sent so far may still confirm */
}

static void
resolver_ptr_addrs(
    struct resolver_ptr *p, int idx, int err, struct dns_answer *res)
{
	size_t want = p->family == AF_INET6 ? 16 : 4;
	char why[256];

	resolver_ptr_ttl(p, err, res);
	if (resolver_classify("", err, res, why, sizeof(why)) != OUT_DATA)
		return;
	for (size_t i = 0; i < RESOLVER_RR_MAX && i < res->n; i++)
		if (res->len[i] == want &&
		    memcmp(res->data[i], p->addr, want) == 0 &&
		    (p->verified < 0 || idx < p->verified))
			p->verified = idx;
}

static void
resolver_ptr_ub_cb(void *mydata, int err, struct dns_answer *res)
{
	struct resolver_pquery *q = mydata;
	struct resolver_ptr *p = q->p;

	p->pending--;
	if (q->name < 0)
		resolver_ptr_names(p, err, res);
	else
		resolver_ptr_addrs(p, q->name, err, res);
	dns_answer_free(res);
	/* The first PTR name that confirms wins; later ones cannot beat it. */
	if (!p->finished && (p->pending == 0 || p->verified == 0)) {
		p->answered = 1;
		resolver_ptr_remember(p);
		resolver_ptr_finish(p);
	}
}

static void
resolver_ptr_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_ptr *p = arg;

	(void)fd;
	(void)what;
	p->verified = -1;
	resolver_ptr_finish(p);
}

static void
resolver_ptr_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	struct resolver_ptr *p = TAILQ_FIRST(&r->ptr_ready);

	(void)fd;
	(void)what;
	if (p == NULL)
		return;
	TAILQ_REMOVE(&r->ptr_ready, p, link);
	if (!TAILQ_EMPTY(&r->ptr_ready))
		event_active(r->ev_ptr, EV_TIMEOUT, 1);
	/* Last use of r: the callback may free the resolver. */
	p->fn(p->arg, p->verified >= 0 ? p->names[p->verified] : NULL);
	free(p);
}

struct resolver_ptr *
resolver_ptr(struct resolver *r, const struct sockaddr *sa, resolver_ptr_fn fn,
    void *arg)
{
	const struct timeval tv = {RESOLVER_PTR_TIMEOUT_SEC, 0};
	struct resolver_ptr *p;

	if (fn == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if (resolver_reverse_name(sa, p->rname, sizeof(p->rname)) < 0) {
		free(p);
		return NULL;
	}
	p->r = r;
	p->fn = fn;
	p->arg = arg;
	p->verified = -1;
	p->ptrq.name = -1;
	p->ttl = RESOLVER_PTR_CACHE_SEC;
	if (sa->sa_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(
	        &((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		p->family = AF_INET6;
		memcpy(
		    p->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET6) {
		p->family = AF_INET;
		memcpy(p->addr,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[12],
		    4);
	} else {
		p->family = AF_INET;
		memcpy(p->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
	if (resolver_ptr_recall(p))
		return p;
	if ((p->timer = evtimer_new(r->base, resolver_ptr_timeout_cb, p)) ==
	        NULL ||
	    evtimer_add(p->timer, &tv) != 0) {
		if (p->timer != NULL)
			event_free(p->timer);
		free(p);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->ptr_pending, p, link);
	if (resolver_ptr_send(p, &p->ptrq, p->rname, RR_TYPE_PTR, -1) != 0) {
		TAILQ_REMOVE(&r->ptr_pending, p, link);
		event_free(p->timer);
		free(p);
		return NULL;
	}
	return p;
}

void
resolver_ptr_cancel(struct resolver *r, struct resolver_ptr *p)
{
	if (p->finished) {
		TAILQ_REMOVE(&r->ptr_ready, p, link);
	} else {
		resolver_ptr_stop(p);
		TAILQ_REMOVE(&r->ptr_pending, p, link);
	}
	free(p);
}

/* Look-ups of one question */

static void
resolver_lookup_free(struct resolver_lookup *lk)
{
	if (lk->timer != NULL)
		event_free(lk->timer);
	if (lk->res != NULL)
		dns_answer_free(lk->res);
	free(lk);
}

/* The answer is final: off the pending list, onto the ready one. */
static void
resolver_lookup_finish(struct resolver_lookup *lk)
{
	struct resolver *r = lk->r;

	resolver_ask_cancel(&lk->ask);
	if (lk->timer != NULL) {
		event_free(lk->timer);
		lk->timer = NULL;
	}
	lk->finished = 1;
	TAILQ_REMOVE(&r->lk_pending, lk, link);
	TAILQ_INSERT_TAIL(&r->lk_ready, lk, link);
	event_active(r->ev_lookup, EV_TIMEOUT, 1);
}

static void
resolver_lookup_ub_cb(void *mydata, int err, struct dns_answer *res)
{
	struct resolver_lookup *lk = mydata;
	struct resolver_answer *a = &lk->ans;

	lk->res = res;
	a->why = lk->why;
	if (err != 0 || res == NULL) {
		a->status = RESOLVER_ANSWER_TEMPFAIL;
		snprintf(lk->why, sizeof(lk->why),
		    "DNS lookup of %s failed: %s", lk->name, ub_strerror(err));
	} else if (res->error != NULL) {
		a->status = RESOLVER_ANSWER_TEMPFAIL;
		snprintf(lk->why, sizeof(lk->why),
		    "DNS lookup of %s failed: %s", lk->name, res->error);
	} else if (res->bogus) {
		a->status = RESOLVER_ANSWER_BOGUS;
		snprintf(lk->why, sizeof(lk->why),
		    "DNS lookup of %s failed: DNSSEC validation failed "
		    "(%.150s)",
		    lk->name, res->why_bogus);
	} else if (res->rcode == RCODE_NXDOMAIN || res->nxdomain) {
		a->status = RESOLVER_ANSWER_NXDOMAIN;
	} else if (res->rcode != 0) {
		a->status = RESOLVER_ANSWER_TEMPFAIL;
		snprintf(lk->why, sizeof(lk->why),
		    "DNS lookup of %s failed: %s", lk->name,
		    resolver_rcode_name(res->rcode));
	} else if (!res->havedata || res->n == 0) {
		a->status = RESOLVER_ANSWER_NODATA;
	} else {
		a->status = RESOLVER_ANSWER_DATA;
		for (size_t i = 0; i < RESOLVER_ANSWER_RR_MAX && i < res->n;
		     i++) {
			lk->data[a->n] = res->data[i];
			lk->len[a->n++] = res->len[i];
		}
	}
	if (res != NULL && a->status != RESOLVER_ANSWER_BOGUS &&
	    a->status != RESOLVER_ANSWER_TEMPFAIL) {
		a->secure = res->secure;
		a->ttl = res->ttl > 0 ? (unsigned)res->ttl : 0;
		resolver_canon(lk->name, res, lk->canon, sizeof(lk->canon));
	}
	if (lk->canon[0] == '\0')
		snprintf(lk->canon, sizeof(lk->canon), "%s", lk->name);
	resolver_lookup_finish(lk);
}

static void
resolver_lookup_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_lookup *lk = arg;

	(void)fd;
	(void)what;
	lk->ans.status = RESOLVER_ANSWER_TEMPFAIL;
	lk->ans.why = lk->why;
	snprintf(
	    lk->why, sizeof(lk->why), "DNS lookup of %s timed out", lk->name);
	snprintf(lk->canon, sizeof(lk->canon), "%s", lk->name);
	resolver_lookup_finish(lk);
}

static void
resolver_lookup_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	struct resolver_lookup *lk = TAILQ_FIRST(&r->lk_ready);

	(void)fd;
	(void)what;
	if (lk == NULL)
		return;
	TAILQ_REMOVE(&r->lk_ready, lk, link);
	if (!TAILQ_EMPTY(&r->lk_ready))
		event_active(r->ev_lookup, EV_TIMEOUT, 1);
	lk->ans.name = lk->name;
	lk->ans.canon = lk->canon;
	lk->ans.data = lk->data;
	lk->ans.len = lk->len;
	/* The callback may free the resolver: nothing of r after it. */
	lk->fn(lk->arg, &lk->ans);
	resolver_lookup_free(lk);
}

/*
 * Names asked here may start with underscore labels (_25._tcp.mx,
 * _mta-sts.example): those are fine, the rest must be a host name.
 */
static int
resolver_query_name_ok(const char *name)
{
	while (name[0] == '_') {
		const char *dot = strchr(name, '.');

		if (dot == NULL || dot - name > 63)
			return 0;
		for (const char *p = name + 1; p < dot; p++)
			if (!resolver_ldh((unsigned char)*p))
				return 0;
		name = dot + 1;
	}
	return hostname_valid(name, HOSTNAME_FROM_DNS);
}

struct resolver_lookup *
resolver_lookup(struct resolver *r, const char *name, int rrtype,
    resolver_answer_fn fn, void *arg)
{
	struct resolver_lookup *lk;

	if (fn == NULL || strlen(name) >= sizeof(lk->name) ||
	    !resolver_query_name_ok(name) ||
	    (lk = calloc(1, sizeof(*lk))) == NULL)
		return NULL;
	lk->r = r;
	lk->fn = fn;
	lk->arg = arg;
	snprintf(lk->name, sizeof(lk->name), "%s", name);
	/* its time limit starts when the question goes out */
	if ((lk->timer = evtimer_new(r->base, resolver_lookup_timeout, lk)) ==
	        NULL ||
	    resolver_ask(r, &lk->ask, lk->name, rrtype, 0,
	        resolver_lookup_ub_cb, lk, lk->timer) != 0) {
		resolver_lookup_free(lk);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->lk_pending, lk, link);
	return lk;
}

void
resolver_lookup_cancel(struct resolver_lookup *lk)
{
	struct resolver *r;

	if (lk == NULL)
		return;
	r = lk->r;
	resolver_ask_cancel(&lk->ask);
	TAILQ_REMOVE(lk->finished ? &r->lk_ready : &r->lk_pending, lk, link);
	resolver_lookup_free(lk);
}

/* Resolvers */

/* "ADDR@PORT" with an IPv4 or IPv6 address and a port of 1 to 65535. */
static int
resolver_spec_ok(const char *spec)
{
	const char *at = strrchr(spec, '@');
	char addr[64];
	unsigned char buf[16];
	char *end;
	unsigned long port;

	if (at == NULL || at == spec || (size_t)(at - spec) >= sizeof(addr))
		return 0;
	memcpy(addr, spec, (size_t)(at - spec));
	addr[at - spec] = '\0';
	if (inet_pton(AF_INET, addr, buf) != 1 &&
	    inet_pton(AF_INET6, addr, buf) != 1)
		return 0;
	if (!isdigit((unsigned char)at[1]))
		return 0;
	port = strtoul(at + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535;
}

struct resolver *
resolver_new(struct event_base *base, const char *spec, const char **why)
{
	return resolver_new_dnssec(base, spec, NULL, why);
}

int
resolver_validates(const struct resolver *r)
{
	return r->validates;
}

struct resolver *
resolver_new_dnssec(struct event_base *base, const char *spec,
    const char *anchor_file, const char **why)
{
	struct resolver *r;
	int system = spec != NULL && strcmp(spec, "system") == 0;

	if (spec == NULL || (!system && !resolver_spec_ok(spec))) {
		*why = "Resolver must be \"system\" or ADDRESS@PORT";
		return NULL;
	}
	/*
	 * Event mode: libunbound's sockets and timers are events on our
	 * loop and its answers come to resolver_ask_answered() from there;
	 * no thread, no pipe.  The libevent it was built with must be ours
	 * (libevent-2.1.so.7, Debian's libunbound8 and sluiced alike).
	 */
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->ctx = ub_ctx_create_event(base)) == NULL) {
		free(r);
		*why = "cannot create a libunbound context";
		return NULL;
	}
	r->base = base;
	TAILQ_INIT(&r->pending);
	TAILQ_INIT(&r->ready);
	TAILQ_INIT(&r->lk_pending);
	TAILQ_INIT(&r->lk_ready);
	TAILQ_INIT(&r->ptr_pending);
	TAILQ_INIT(&r->ptr_ready);
	TAILQ_INIT(&r->follow);
	TAILQ_INIT(&r->fresh);
	TAILQ_INIT(&r->answered);
	*why = "cannot set up libunbound";
	/*
	 * Loopback servers (a local unbound, systemd-resolved) are ordinary
	 * here.  Every option comes before the first ub_resolve_event(),
	 * which finalizes the context (later ones fail with AFTERFINAL).
	 */
	if (ub_ctx_set_option(r->ctx, "do-not-query-localhost:", "no") != 0)
		goto fail;
	if (anchor_file != NULL && anchor_file[0] != '\0') {
		FILE *fp = fopen(anchor_file, "r");

		/* As whoever runs now (sluiced drops root before this). */
		if (fp == NULL) {
			*why =
			    errno == EACCES
			        ? "cannot read the DNSSEC trust anchors "
			          "(DnssecTrustAnchorFile): permission denied"
			        : "cannot read the DNSSEC trust anchors "
			          "(DnssecTrustAnchorFile)";
			goto fail;
		}
		fclose(fp);
		if (ub_ctx_add_ta_file(r->ctx, anchor_file) != 0) {
			*why = "cannot load the DNSSEC trust anchors "
			       "(DnssecTrustAnchorFile)";
			goto fail;
		}
		/*
		 * A lab server's "test." names cannot chain to the real
		 * root, where "test." does not exist; only an anchor of
		 * their own (below "test.") makes them secure.
		 */
		if (!system &&
		    ub_ctx_set_option(r->ctx, "domain-insecure:", "test.") != 0)
			goto fail;
		r->validates = 1;
	}
	if (system) {
		int rc;

		if (ub_ctx_resolvconf(r->ctx, NULL) != 0) {
			*why = "cannot read /etc/resolv.conf";
			goto fail;
		}
		/* A missing /etc/hosts is no reason to refuse to start. */
		rc = ub_ctx_hosts(r->ctx, NULL);
		if (rc != 0 && rc != UB_READFILE) {
			*why = "cannot parse /etc/hosts";
			goto fail;
		}
	} else if (ub_ctx_set_fwd(r->ctx, spec) != 0) {
		*why = "Resolver must be \"system\" or ADDRESS@PORT";
		goto fail;
	}
	/*
	 * libunbound reads the anchors only when the context is finalized;
	 * removing a zone that does not exist finalizes it here, so a bad
	 * file is an error at start, not a resolver that fails every query.
	 * All options come before this.
	 */
	if (r->validates &&
	    ub_ctx_zone_remove(r->ctx, "sluice-finalize.invalid.") != 0) {
		*why = "cannot load the DNSSEC trust anchors "
		       "(DnssecTrustAnchorFile): no DS or DNSKEY records";
		goto fail;
	}
	/*
	 * libunbound answers RFC 6761 "test." itself (NXDOMAIN), and the
	 * reverse names of 127.0.0.0/8 (only 127.0.0.1 has one); a server
	 * named explicitly is a lab or test server whose zones there are the
	 * point of naming it.
	 */
	if (!system &&
	    (ub_ctx_zone_remove(r->ctx, "test.") != 0 ||
	        ub_ctx_zone_remove(r->ctx, "127.in-addr.arpa.") != 0))
		goto fail;
	if ((r->ev_answered =
	            event_new(base, -1, 0, resolver_answered_cb, r)) == NULL ||
	    (r->ev_deliver = event_new(base, -1, 0, resolver_deliver_cb, r)) ==
	        NULL ||
	    (r->ev_ptr = event_new(base, -1, 0, resolver_ptr_deliver_cb, r)) ==
	        NULL ||
	    (r->ev_lookup = event_new(
	         base, -1, 0, resolver_lookup_deliver, r)) == NULL ||
	    (r->ev_pump = event_new(base, -1, 0, resolver_pump_cb, r)) == NULL)
		goto fail;
	*why = NULL;
	return r;
fail:
	resolver_free(r);
	return NULL;
}

void
resolver_free(struct resolver *r)
{
	struct resolver_job *job;
	struct resolver_lookup *lk;
	struct resolver_ptr *p;
	struct resolver_ask *a;

	if (r == NULL)
		return;
	/*
	 * Deleting the context removes its events from the loop: no answer
	 * after this.  Answers not yet handed over go with their askers.
	 */
	ub_ctx_delete(r->ctx);
	while ((a = TAILQ_FIRST(&r->answered)) != NULL) {
		TAILQ_REMOVE(&r->answered, a, link);
		dns_answer_free(a->res);
		a->res = NULL;
	}
	while ((job = TAILQ_FIRST(&r->pending)) != NULL) {
		TAILQ_REMOVE(&r->pending, job, link);
		resolver_job_free(job);
	}
	while ((job = TAILQ_FIRST(&r->ready)) != NULL) {
		TAILQ_REMOVE(&r->ready, job, link);
		resolver_job_free(job);
	}
	while ((p = TAILQ_FIRST(&r->ptr_pending)) != NULL) {
		TAILQ_REMOVE(&r->ptr_pending, p, link);
		if (p->timer != NULL)
			event_free(p->timer);
		free(p);
	}
	while ((p = TAILQ_FIRST(&r->ptr_ready)) != NULL) {
		TAILQ_REMOVE(&r->ptr_ready, p, link);
		free(p);
	}
	while ((lk = TAILQ_FIRST(&r->lk_pending)) != NULL) {
		TAILQ_REMOVE(&r->lk_pending, lk, link);
		resolver_lookup_free(lk);
	}
	while ((lk = TAILQ_FIRST(&r->lk_ready)) != NULL) {
		TAILQ_REMOVE(&r->lk_ready, lk, link);
		resolver_lookup_free(lk);
	}
	if (r->ev_answered != NULL)
		event_free(r->ev_answered);
	if (r->ev_deliver != NULL)
		event_free(r->ev_deliver);
	if (r->ev_lookup != NULL)
		event_free(r->ev_lookup);
	if (r->ev_ptr != NULL)
		event_free(r->ev_ptr);
	if (r->ev_pump != NULL)
		event_free(r->ev_pump);
	free(r->ptr_cache);
	free(r->host_cache);
	free(r);
}
