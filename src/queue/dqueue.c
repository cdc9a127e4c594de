/*
 * dqueue.c - delivery queues (see dqueue.h).
 *
 * Memory: a queue holds copies of the envelope of its waiting recipients
 * only; a message's content is read from the spool when a connection
 * takes it and freed when its outcome is handed to outcome_settle().  The
 * queue manager bounds how many recipients are handed out at once.
 *
 * Lifetimes: every connection holds a reference to the configuration it
 * started with (its send connector and TLS context live there), so a
 * reload never pulls a connector from under a delivery.
 *
 * Slots (issue 19): MaxOutboundConnections bounds the connections of all
 * queues together, parked ones included.  A queue that wants a connection
 * when every slot is taken joins the slot waiters (a FIFO of queues), and
 * parked connections of other queues give way: the least recently parked
 * one (the head of the parked LRU) is sent QUIT for each connection the
 * waiters still lack, from the next loop turn (dq_yield), and every slot
 * that frees goes to the first waiter (dq_give_slots).  A connection that
 * finds nothing to do while queues wait is therefore closed at once rather
 * than held for its parking time.  A queue's own parked connections take
 * its mail before it asks for a slot, so MaxPerDomainOutboundConnections
 * never waits on parking.  Invariants: a client is on the parked list
 * exactly while dc->parked; a queue is on the waiters exactly while
 * q->waiting; nyielding counts the clients sent QUIT to make room and not
 * yet closed.
 *
 * Reuse (issue 19): before it opens a connection, a queue takes over one
 * parked by another queue to the same MX host name and address, when that
 * is one of its most preferred hops and the TLS policy would be the same
 * (dq_adopt, smtp_client_retarget); parked connections are indexed by
 * "connector|host|addr:port" (dqs->hosts) exactly while dc->parked.  The
 * slot waiters are offered parked connections that way before any is
 * sent QUIT to make room.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "daemon/daemon.h"
#include "deliver/smtp_client.h"
#include "deliver/dest_tls.h"
#include "dns/resolver.h"
#include "log/tracklog.h"
#include "queue/dqueue.h"
#include "spool/spool.h"
#include "status/metrics.h"
#include "status/posture.h"
#include "tlsrpt/tlsrpt_store.h"
#include "tls/tls_client.h"
#include "util/addr.h"
#include "util/fnv.h"
#include "util/log.h"

/* "connector|host|addr:port": parked connections are found by it. */
#define DQUEUE_KEY_MAX 600
/*
 * Parked connections looked at for one take-over, at most: under one
 * provider's MX hundreds may be parked, and those that cannot serve a
 * queue (DANE, MTA-STS, another floor) fail alike; a bound keeps a
 * queue's start cheap.
 */
#define DQUEUE_ADOPT_TRIES 16
/* Resolved next hops are reused this long (no TTLs from the resolver). */
#define DQUEUE_HOPS_TTL 60
/* Queues are found by name through a hash table (mail to many domains). */
#define DQUEUE_BUCKETS 1024

struct dq_rcpt {
	int64_t rcpt_id;
	char *addr, *orcpt;
	unsigned notify, attempts;
	int delay_notified;
	char *note; /* after a failure's text: the transport rule */
};

struct dq_msg {
	struct dq_msg *next;
	struct dq *q;
	int64_t message_id;
	char queue_id[32];
	char sender[257];
	time_t received;
	struct dq_rcpt *rcpts;
	size_t nrcpts, cap;
	/* while a connection has it */
	struct spool_stored stored;
	struct spool_reader *reader; /* the content, read as it is sent */
	struct smtp_client_msg cm;
	struct smtp_client_rcpt *crcpts;
};

struct dq_client {
	struct dq_client *next;
	struct dq *q;
	struct smtp_client *client;
	struct conf_ref *ref;
	int connecting; /* has not asked for a message yet */
	/* on dqs->parked, oldest first: it had nothing to do */
	TAILQ_ENTRY(dq_client) lru;
	int parked;
	int yielded; /* sent QUIT to give its slot to another queue */
	char user[256], pass[256];
	/* while parked: in dqs->hosts under "connector|host|addr:port" */
	struct dq_client *hnext;
	char key[DQUEUE_KEY_MAX];
};

TAILQ_HEAD(dq_parked, dq_client);

struct dq {
	struct dq *next;  /* every queue */
	struct dq *hnext; /* same bucket */
	struct dq *dnext; /* queues with new mail since the last kick */
	int dirty;
	struct dqueues *owner;
	char name[256];
	char connector[256];
	char domain[256];
	/* a transport rule requires TLS here (route.c: the queue's name
	 * says so), and the first such rule, for the policy's words */
	int tls_floor;
	char tls_rule[256];
	int tls_optional; /* its messages said "TLS-Required: No" */
	int suspended;
	struct dq_msg *head, **tail;
	size_t nwaiting;
	struct dq_client *clients;
	unsigned nclients;
	unsigned nconnecting; /* clients on their way to their first message */
	int resolving;
	struct resolver_result hops;
	time_t hops_at;
	/* DANE and MTA-STS facts of these hops (issue 16), and their
	 * gathering while it runs (still "resolving") */
	struct dest_tls *tls;
	struct dest_tls_query *tlsq;
	time_t retry_until;
	char last_error[512];
	/* on dqs->waiters: every outbound slot is taken and this queue
	 * wants more connections */
	TAILQ_ENTRY(dq) wlink;
	int waiting;
};

TAILQ_HEAD(dq_waiters, dq);

struct dqueues {
	struct daemon *daemon;
	outcome_released_fn released;
	void *arg;
	struct dq *queues;
	struct dq *buckets[DQUEUE_BUCKETS];
	struct dq *dirty; /* dqueues_kick(..., 0) looks at these only */
	unsigned nclients;
	/* slots (see the comment at the top) */
	struct dq_parked parked;
	/* the parked connections by connector, host and address (reuse) */
	struct dq_client *hosts[DQUEUE_BUCKETS];
	struct dq_waiters waiters;
	unsigned nyielding;
	struct event *yield_ev; /* dq_yield on the next loop turn */
	struct resolver *resolver;
	char resolver_spec[256];
	char resolver_anchor[4096]; /* DnssecTrustAnchorFile it was made with */
	/* MTA-STS (src/sts/sts.c) on that resolver, TrustedCAFile for its
	 * fetches; made again with the resolver or when the file changes */
	struct sts *sts;
	char sts_ca[4096];
	unsigned resolving;
};

static void dq_start_clients(struct dq *);
static int dq_adopt(struct dq *);

/* --- slots: parked connections give way to queues that wait --- */

static unsigned dq_hash(const char *);

static void
dq_unpark(struct dq_client *dc)
{
	struct dqueues *dqs = dc->q->owner;
	struct dq_client **pp;

	if (!dc->parked)
		return;
	TAILQ_REMOVE(&dqs->parked, dc, lru);
	for (pp = &dqs->hosts[dq_hash(dc->key)]; *pp != NULL;
	     pp = &(*pp)->hnext)
		if (*pp == dc) {
			*pp = dc->hnext;
			break;
		}
	dc->hnext = NULL;
	dc->parked = 0;
}

/* The index key of a connection to host at endpoint ("addr:port"). */
static void
dq_host_key(
    char *key, const char *connector, const char *host, const char *endpoint)
{
	snprintf(key, DQUEUE_KEY_MAX, "%s|%s|%s", connector, host, endpoint);
}

/* dc had nothing to do: the newest parked connection. */
static void
dq_park(struct dq_client *dc)
{
	struct dqueues *dqs = dc->q->owner;

	if (dc->parked)
		return;
	TAILQ_INSERT_TAIL(&dqs->parked, dc, lru);
	dc->parked = 1;
	dq_host_key(dc->key, dc->q->connector,
	    smtp_client_connected_host(dc->client),
	    smtp_client_remote(dc->client));
	dc->hnext = dqs->hosts[dq_hash(dc->key)];
	dqs->hosts[dq_hash(dc->key)] = dc;
	/* Not from here: dc is inside its own transition to idle. */
	if (!TAILQ_EMPTY(&dqs->waiters))
		event_active(dqs->yield_ev, EV_TIMEOUT, 1);
}

static void
dq_unwait(struct dq *q)
{
	if (!q->waiting)
		return;
	TAILQ_REMOVE(&q->owner->waiters, q, wlink);
	q->waiting = 0;
}

/* Every slot is taken and q wants more: it waits in line for one. */
static void
dq_wait(struct dq *q)
{
	struct dqueues *dqs = q->owner;

	if (!q->waiting) {
		TAILQ_INSERT_TAIL(&dqs->waiters, q, wlink);
		q->waiting = 1;
	}
	if (!TAILQ_EMPTY(&dqs->parked))
		event_active(dqs->yield_ev, EV_TIMEOUT, 1);
}

/* The connections q would open now if slots were free. */
static size_t
dq_wanted(const struct dq *q)
{
	const struct conf_transport *t =
	    &q->owner->daemon->conf->conf->transport;
	size_t want =
	    q->nwaiting > q->nconnecting ? q->nwaiting - q->nconnecting : 0;
	size_t room = q->nclients < t->max_per_domain_outbound_connections
	                  ? t->max_per_domain_outbound_connections - q->nclients
	                  : 0;

	return want < room ? want : room;
}

/*
 * Parked connections give way, least recently parked first, until the
 * connections already leaving for this reason cover what the waiting
 * queues want, in their order.  Run from the loop (yield_ev), never inside
 * a client's own callback.
 */
static void
dq_yield(struct dqueues *dqs)
{
	size_t need = 0;
	struct dq *q;

	if (dqs->daemon->draining)
		return;
	/* A parked connection that can serve a waiter goes on there
	 * rather than QUIT (reuse, dq_adopt): it keeps its slot. */
	TAILQ_FOREACH(q, &dqs->waiters, wlink)
	{
		while (dq_wanted(q) > 0 && dq_adopt(q))
			;
	}
	TAILQ_FOREACH(q, &dqs->waiters, wlink)
	{
		if (TAILQ_EMPTY(&dqs->parked))
			return;
		need += dq_wanted(q);
		while (dqs->nyielding < need && !TAILQ_EMPTY(&dqs->parked)) {
			struct dq_client *dc = TAILQ_FIRST(&dqs->parked);
			char why[400];

			dq_unpark(dc);
			/* leaving already: its parking time ran out */
			if (!smtp_client_idle(dc->client))
				continue;
			dc->yielded = 1;
			dqs->nyielding++;
			snprintf(why, sizeof(why),
			    "its slot goes to queue %.255s "
			    "(MaxOutboundConnections %u reached)",
			    q->name,
			    q->owner->daemon->conf->conf->transport
			        .max_outbound_connections);
			log_debug("queue %s: a parked connection of %s gives "
			          "way",
			    q->name, dc->q->name);
			smtp_client_quit(dc->client, why);
		}
	}
}

static void
dq_yield_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dq_yield(arg);
}

/* Slots are free: they go to the waiting queues, first come first. */
static void
dq_give_slots(struct dqueues *dqs)
{
	const struct conf_transport *t = &dqs->daemon->conf->conf->transport;
	struct dq *q;

	while (!dqs->daemon->draining &&
	       dqs->nclients < t->max_outbound_connections &&
	       (q = TAILQ_FIRST(&dqs->waiters)) != NULL) {
		/* back at the end of the line if the slots run out again */
		dq_unwait(q);
		dq_start_clients(q);
	}
}

/* dc leaves its queue's clients (its slot, dqs->nclients, is the caller's). */
static void
dq_detach(struct dq_client *dc)
{
	struct dq_client **pp;

	for (pp = &dc->q->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == dc) {
			*pp = dc->next;
			break;
		}
	dc->q->nclients--;
}

/* dc becomes one of q's clients. */
static void
dq_attach(struct dq *q, struct dq_client *dc)
{
	dc->q = q;
	dc->next = q->clients;
	q->clients = dc;
	q->nclients++;
}

/* Every recipient of m goes back to being due: nothing was recorded. */
static void
dq_release(struct dqueues *dqs, const struct dq_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		dqs->released(dqs->arg, m->rcpts[i].rcpt_id, 0);
}

static void
dq_msg_free(struct dq_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].orcpt);
		free(m->rcpts[i].note);
	}
	free(m->rcpts);
	spool_reader_close(m->reader);
	free(m->crcpts);
	free(m);
}

static unsigned
dq_hash(const char *name)
{
	return fnv_32_lower(name) % DQUEUE_BUCKETS;
}

static struct dq *
dq_find(struct dqueues *dqs, const char *name)
{
	for (struct dq *q = dqs->buckets[dq_hash(name)]; q != NULL;
	     q = q->hnext)
		if (strcasecmp(q->name, name) == 0)
			return q;
	return NULL;
}

static struct dq *
dq_get(struct dqueues *dqs, const char *name, const char *connector,
    const char *domain)
{
	struct dq *q = dq_find(dqs, name);

	if (q != NULL) {
		/* Suspended before any mail came: now it is known where to. */
		if (q->connector[0] == '\0' && connector[0] != '\0') {
			snprintf(q->connector, sizeof(q->connector), "%s",
			    connector);
			snprintf(q->domain, sizeof(q->domain), "%s", domain);
		}
		return q;
	}
	/* Cleared but for the room of the hops (10 KB, filled to nhops by
	 * dq_resolved): a queue per new destination (issue 19). */
	if ((q = malloc(sizeof(*q))) == NULL)
		return NULL;
	memset(q, 0, offsetof(struct dq, hops.hops));
	memset(&q->hops_at, 0, sizeof(*q) - offsetof(struct dq, hops_at));
	q->owner = dqs;
	snprintf(q->name, sizeof(q->name), "%s", name);
	snprintf(q->connector, sizeof(q->connector), "%s", connector);
	snprintf(q->domain, sizeof(q->domain), "%s", domain);
	q->tail = &q->head;
	q->next = dqs->queues;
	dqs->queues = q;
	q->hnext = dqs->buckets[dq_hash(q->name)];
	dqs->buckets[dq_hash(q->name)] = q;
	return q;
}

/* An empty, idle, unsuspended queue is forgotten. */
static void
dq_collect(struct dqueues *dqs)
{
	struct dq **pp = &dqs->queues;

	while (*pp != NULL) {
		struct dq *q = *pp;

		if (q->head == NULL && q->clients == NULL && !q->resolving &&
		    !q->suspended && q->retry_until <= time(NULL)) {
			struct dq **hp = &dqs->buckets[dq_hash(q->name)];

			while (*hp != q)
				hp = &(*hp)->hnext;
			*hp = q->hnext;
			*pp = q->next;
			dq_unwait(q);
			dest_tls_unref(q->tls);
			free(q);
		} else {
			pp = &q->next;
		}
	}
}

struct dqueues *
dqueues_new(struct daemon *daemon, outcome_released_fn released, void *arg)
{
	struct dqueues *dqs = calloc(1, sizeof(*dqs));

	if (dqs == NULL)
		return NULL;
	dqs->daemon = daemon;
	dqs->released = released;
	dqs->arg = arg;
	TAILQ_INIT(&dqs->parked);
	TAILQ_INIT(&dqs->waiters);
	if ((dqs->yield_ev =
	            event_new(daemon->base, -1, 0, dq_yield_cb, dqs)) == NULL) {
		free(dqs);
		return NULL;
	}
	return dqs;
}

void
dqueues_free(struct dqueues *dqs)
{
	if (dqs == NULL)
		return;
	while (dqs->queues != NULL) {
		struct dq *q = dqs->queues;

		dqs->queues = q->next;
		while (q->clients != NULL) {
			struct dq_client *dc = q->clients;

			q->clients = dc->next;
			smtp_client_abort(dc->client);
			daemon_conf_release(dc->ref);
			free(dc);
		}
		while (q->head != NULL) {
			struct dq_msg *m = q->head;

			q->head = m->next;
			dq_msg_free(m);
		}
		dest_tls_cancel(q->tlsq);
		dest_tls_unref(q->tls);
		free(q);
	}
	sts_free(dqs->sts);
	resolver_free(dqs->resolver);
	event_free(dqs->yield_ev);
	free(dqs);
}

int
dqueues_add(struct dqueues *dqs, const char *queue, const char *connector,
    const char *domain, const struct dqueue_rcpt *r)
{
	struct dq *q = dq_get(dqs, queue, connector, domain);
	struct dq_msg *m;
	struct dq_rcpt *dr;

	if (q == NULL)
		return -1;
	if (q->suspended)
		return DQUEUE_SUSPENDED;
	if (r->tls_rule != NULL && !q->tls_floor) {
		q->tls_floor = 1;
		snprintf(q->tls_rule, sizeof(q->tls_rule), "%s", r->tls_rule);
	}
	if (r->tls_optional)
		q->tls_optional = 1;
	/* Recipients of one message arrive together, in id order. */
	m = q->head != NULL ? (struct dq_msg *)((char *)q->tail -
	                                        offsetof(struct dq_msg, next))
	                    : NULL;
	if (!q->dirty) {
		q->dirty = 1;
		q->dnext = dqs->dirty;
		dqs->dirty = q;
	}
	if (m == NULL || m->message_id != r->message_id) {
		if ((m = calloc(1, sizeof(*m))) == NULL)
			return -1;
		m->q = q;
		m->message_id = r->message_id;
		snprintf(m->queue_id, sizeof(m->queue_id), "%s", r->queue_id);
		snprintf(m->sender, sizeof(m->sender), "%s", r->sender);
		m->received = r->received;
		*q->tail = m;
		q->tail = &m->next;
		q->nwaiting++;
	}
	if (m->nrcpts == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4;
		struct dq_rcpt *p = realloc(m->rcpts, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		m->rcpts = p;
		m->cap = cap;
	}
	dr = &m->rcpts[m->nrcpts];
	dr->rcpt_id = r->rcpt_id;
	dr->addr = strdup(r->addr);
	dr->orcpt = strdup(r->orcpt != NULL ? r->orcpt : "");
	dr->notify = r->notify;
	dr->attempts = r->attempts;
	dr->delay_notified = r->delay_notified;
	dr->note = r->note != NULL && r->note[0] ? strdup(r->note) : NULL;
	if (dr->addr == NULL || dr->orcpt == NULL ||
	    (r->note != NULL && r->note[0] && dr->note == NULL)) {
		free(dr->addr);
		free(dr->orcpt);
		free(dr->note);
		return -1;
	}
	m->nrcpts++;
	return 0;
}

/*
 * Hand a message's outcome (replies filled in) to outcome_settle();
 * client is the connection that tried, or NULL when none did.
 */
static void
dq_settle(struct dq *q, struct dq_msg *m, const struct smtp_client *client)
{
	char local_ip[64] = "", remote_ip[64] = "";
	struct outcome o;
	struct outcome_rcpt *rs =
	    calloc(m->nrcpts ? m->nrcpts : 1, sizeof(*rs));
	/* a failure of a transport rule's recipient names the rule */
	char(*noted)[SMTP_CLIENT_STATUS_MAX + 600] =
	    calloc(m->nrcpts ? m->nrcpts : 1, sizeof(*noted));
	struct dqueues *dqs = q->owner;

	if (rs == NULL || noted == NULL) {
		dq_release(dqs, m);
		free(rs);
		free(noted);
		return;
	}
	for (size_t i = 0; i < m->nrcpts; i++) {
		const struct smtp_client_rcpt *c = &m->crcpts[i];

		rs[i].rcpt_id = m->rcpts[i].rcpt_id;
		rs[i].addr = m->rcpts[i].addr;
		rs[i].orcpt = m->rcpts[i].orcpt;
		rs[i].notify = m->rcpts[i].notify;
		rs[i].attempts = m->rcpts[i].attempts;
		rs[i].delay_notified = m->rcpts[i].delay_notified;
		rs[i].code = c->code > 0 ? c->code : 451;
		rs[i].enh = c->code > 0 ? c->enh : "4.4.0";
		rs[i].status = c->code > 0 ? c->status : "not attempted";
		rs[i].dsn_passed = c->dsn_passed;
		if (m->rcpts[i].note != NULL && rs[i].code / 100 != 2) {
			snprintf(noted[i], sizeof(noted[i]), "%s %s",
			    rs[i].status, m->rcpts[i].note);
			rs[i].status = noted[i];
		}
	}
	memset(&o, 0, sizeof(o));
	o.message_id = m->message_id;
	o.queue_id = m->queue_id;
	o.sender = m->sender;
	o.received = m->received;
	o.connector = q->connector;
	o.queue = q->name;
	o.host = "";
	o.tls = "";
	if (client != NULL) {
		o.host = smtp_client_host(client);
		o.tls = smtp_client_tls(client);
		tracklog_ip(
		    smtp_client_local(client), local_ip, sizeof(local_ip));
		tracklog_ip(
		    smtp_client_remote(client), remote_ip, sizeof(remote_ip));
		o.local_ip = local_ip;
		o.remote_ip = remote_ip;
		o.session = smtp_client_session(client);
	}
	o.rcpts = rs;
	o.nrcpts = m->nrcpts;
	outcome_settle(dqs->daemon, &o, dqs->released, dqs->arg);
	free(rs);
	free(noted);
}

/*
 * Give every waiting message of q the same outcome (no next hop usable);
 * client is the connection that failed, or NULL (the lookup failed).
 */
static void
dq_settle_waiting(struct dq *q, int code, const char *enh, const char *why,
    const struct smtp_client *client)
{
	while (q->head != NULL) {
		struct dq_msg *m = q->head;

		q->head = m->next;
		q->nwaiting--;
		if ((m->crcpts = calloc(m->nrcpts, sizeof(*m->crcpts))) !=
		    NULL) {
			for (size_t i = 0; i < m->nrcpts; i++) {
				m->crcpts[i].code = code;
				snprintf(m->crcpts[i].enh,
				    sizeof(m->crcpts[i].enh), "%s", enh);
				snprintf(m->crcpts[i].status,
				    sizeof(m->crcpts[i].status), "%d %s %s",
				    code, enh, why);
			}
			dq_settle(q, m, client);
		} else {
			dq_release(q->owner, m);
		}
		dq_msg_free(m);
	}
	q->tail = &q->head;
}

static const struct conf_send_connector *
dq_connector(const struct conf_ref *ref, const struct dq *q)
{
	return conf_send_connector(ref->conf, q->connector);
}

/* --- the connections' callbacks --- */

/*
 * The connector's MaxMessageSize and [Transport] MaxSendSize bound what
 * goes out: a larger message is returned with 5.3.4 (as Exchange does)
 * rather than offered to the next hop.
 */
static int
dq_too_large(struct dq_client *dc, struct dq_msg *m)
{
	const struct conf_send_connector *sc = dq_connector(dc->ref, dc->q);
	uint64_t limit = dc->ref->conf->transport.max_send_size;
	const char *which = "MaxSendSize";

	if (sc != NULL && sc->max_message_size < limit) {
		limit = sc->max_message_size;
		which = "the send connector's MaxMessageSize";
	}
	if ((uint64_t)m->stored.size <= limit)
		return 0;
	for (size_t i = 0; i < m->nrcpts; i++) {
		m->crcpts[i].code = 552;
		snprintf(m->crcpts[i].enh, sizeof(m->crcpts[i].enh), "5.3.4");
		snprintf(m->crcpts[i].status, sizeof(m->crcpts[i].status),
		    "552 5.3.4 message size %llu exceeds %s",
		    (unsigned long long)m->stored.size, which);
	}
	dq_settle(dc->q, m, NULL);
	dq_msg_free(m);
	return 1;
}

/* The client's read: the next piece of the stored message. */
static int
dq_read(void *src, const char **p, size_t *n)
{
	struct dq_msg *m = src;
	int rc = spool_reader_next(m->reader, p, n);

	if (rc < 0)
		log_err("delivery of %s: %s", m->queue_id,
		    spool_reader_error(m->reader));
	return rc;
}

/* The message's envelope, and a reader for its content. */
static int
dq_load(struct dq *q, struct dq_msg *m)
{
	const char *why;

	m->reader = spool_reader_open(spool_loop_view(q->owner->daemon->spool),
	    m->message_id, &m->stored, &why);
	if (m->reader == NULL) {
		log_warn("delivery of %s: %s", m->queue_id, why);
		return -1;
	}
	return 0;
}

static struct smtp_client_msg *
dq_next(void *arg, struct smtp_client *client)
{
	struct dq_client *dc = arg;
	struct dq *q = dc->q;

	(void)client;
	dq_unpark(dc);
	if (dc->connecting) {
		dc->connecting = 0;
		q->nconnecting--;
	}
	/* Stopping: the transaction in hand was the last one. */
	while (
	    q->head != NULL && !q->suspended && !q->owner->daemon->draining) {
		struct dq_msg *m = q->head;

		q->head = m->next;
		if (q->head == NULL)
			q->tail = &q->head;
		q->nwaiting--;
		m->next = NULL;
		m->crcpts = calloc(m->nrcpts, sizeof(*m->crcpts));
		if (m->crcpts == NULL || dq_load(q, m) < 0) {
			/* Gone (removed) or unreadable: due again later. */
			dq_release(q->owner, m);
			dq_msg_free(m);
			continue;
		}
		if (dq_too_large(dc, m))
			continue;
		for (size_t i = 0; i < m->nrcpts; i++) {
			m->crcpts[i].addr = m->rcpts[i].addr;
			m->crcpts[i].orcpt = m->rcpts[i].orcpt;
			m->crcpts[i].notify = m->rcpts[i].notify;
		}
		m->cm.queue_id = m->queue_id;
		m->cm.sender = m->stored.sender;
		m->cm.envid = m->stored.envid;
		m->cm.ret = m->stored.ret;
		m->cm.body_type = m->stored.body_type;
		m->cm.smtputf8 = m->stored.smtputf8;
		m->cm.size = m->stored.size;
		m->cm.read = dq_read;
		m->cm.src = m;
		m->cm.requiretls = m->stored.requiretls;
		m->cm.tls_optional = m->stored.tls_optional;
		m->cm.rcpts = m->crcpts;
		m->cm.nrcpts = m->nrcpts;
		m->cm.owner = m;
		return &m->cm;
	}
	/* Parked (the client goes idle when told nothing). */
	if (!q->suspended && !q->owner->daemon->draining)
		dq_park(dc);
	return NULL;
}

static void
dq_done(void *arg, struct smtp_client *client, struct smtp_client_msg *cm)
{
	struct dq_client *dc = arg;
	struct dq_msg *m = cm->owner;

	dq_settle(dc->q, m, client);
	dq_msg_free(m);
}

static void
dq_closed(void *arg, struct smtp_client *client, int delivered, const char *enh,
    const char *why)
{
	struct dq_client *dc = arg;
	struct dq *q = dc->q;
	struct dqueues *dqs = q->owner;

	(void)client;
	dq_detach(dc);
	dqs->nclients--;
	if (dc->connecting)
		q->nconnecting--;
	dq_unpark(dc);
	if (dc->yielded)
		dqs->nyielding--;
	if (!delivered && why[0] != '\0') {
		/*
		 * Every next hop failed this connection: the queue waits for
		 * its retry time before it opens another.  Starting one at
		 * once, while other connections still run, tried a failing
		 * destination in a tight loop, and its waiting messages were
		 * never settled.  They are, once no connection is left;
		 * connections already parked or running may still take them.
		 */
		snprintf(q->last_error, sizeof(q->last_error), "%s", why);
		q->retry_until =
		    outcome_next_attempt(dqs->daemon, 0, time(NULL));
		if (q->nclients == 0)
			dq_settle_waiting(
			    q, 451, enh[0] ? enh : "4.4.1", why, client);
	} else if (delivered) {
		q->last_error[0] = '\0';
	}
	daemon_conf_release(dc->ref);
	free(dc);
	/* The slot goes to the queues waiting for one, then to this one. */
	dq_give_slots(dqs);
	if (q->head != NULL)
		dq_start_clients(q);
}

/*
 * One session for TLS reports (RFC 8460): the sessions to a domain's own
 * MX hosts only (a smart host is not the domain's), never those that did
 * not try TLS by our choice (IgnoreSTARTTLS) or the plaintext retry that
 * follows a failed handshake (its failure is counted once).  The policy
 * is the recipient's published one, as the client names it: DANE's
 * (reported to the host's TLSA base domain), MTA-STS's, or
 * "no-policy-found".  A session without TLS is no successful TLS session
 * (RFC 8460 4.4): starttls-not-supported, whatever our policy allowed.
 */
static void
dq_tlsrpt(struct dq_client *dc, const struct smtp_client_session *s)
{
	struct daemon *daemon = dc->q->owner->daemon;
	const struct conf_send_connector *sc = dq_connector(dc->ref, dc->q);
	char local[64], remote[64];
	struct tlsrpt_session t;

	if (daemon->tlsrpt == NULL || sc == NULL || !sc->dns_routing_enabled ||
	    s->plain_retry || strcmp(s->policy, "IgnoreSTARTTLS") == 0)
		return;
	tracklog_ip(s->local, local, sizeof(local));
	tracklog_ip(s->remote, remote, sizeof(remote));
	memset(&t, 0, sizeof(t));
	t.domain = s->policy_domain != NULL ? s->policy_domain : dc->q->domain;
	t.policy_type =
	    s->policy_type != NULL ? s->policy_type : "no-policy-found";
	t.policy_strings = s->policy_strings != NULL ? s->policy_strings : "";
	t.mx_patterns = s->mx_patterns != NULL ? s->mx_patterns : "";
	t.result = s->result;
	t.reason = s->reason;
	if (t.result == TLS_RESULT_OK && s->version[0] == '\0') {
		t.result = TLS_RESULT_STARTTLS_NOT_SUPPORTED;
		t.reason = "STARTTLS not offered or refused; plaintext";
	}
	t.sending_ip = local;
	t.mx_host = s->host;
	t.mx_helo = s->helo;
	t.receiving_ip = remote;
	tlsrpt_store_session(daemon->tlsrpt, &t);
}

/*
 * One session's TLS, for the partner's posture and the metrics: the
 * partner is the queue (the recipient domain, or the smart-host
 * connector).
 */
static void
dq_session(
    void *arg, struct smtp_client *client, const struct smtp_client_session *s)
{
	struct dq_client *dc = arg;
	struct daemon *daemon = dc->q->owner->daemon;
	struct posture_session ps;

	(void)client;
	memset(&ps, 0, sizeof(ps));
	ps.partner = dc->q->name;
	ps.connector = dc->q->connector;
	ps.policy = s->policy;
	ps.version = s->version;
	ps.verified = s->verified;
	ps.result = s->result;
	ps.dane = s->dane;
	ps.sts_mode = s->sts_mode;
	ps.sts_id = s->sts_id;
	posture_session(daemon->posture, &ps);
	dq_tlsrpt(dc, s);
	/* a connection handed over is a session of the new partner's
	 * (posture, TLS reports), not another connection */
	if (s->reused)
		return;
	metrics_add(daemon->metrics, METRIC_SESSIONS, "outbound",
	    dc->q->connector, NULL, 1);
	metrics_add(daemon->metrics, METRIC_TLS, "outbound", s->policy,
	    s->result != TLS_RESULT_OK ? tls_result_name(s->result)
	    : s->version[0] == '\0'    ? "none"
	    : s->verified              ? "verified"
	                               : "encrypted",
	    1);
}

static const struct smtp_client_ops dq_client_ops = {
    .next = dq_next,
    .done = dq_done,
    .closed = dq_closed,
    .session = dq_session,
};

/* AuthenticationCredential: one line "user:password". */
static void
dq_credentials(const struct conf_send_connector *sc, struct dq_client *dc)
{
	char line[600], *colon;
	FILE *f;

	if (sc->smart_host_auth_mechanism == SMARTHOST_AUTH_NONE ||
	    sc->authentication_credential == NULL ||
	    (f = fopen(sc->authentication_credential, "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) != NULL &&
	    (colon = strchr(line, ':')) != NULL &&
	    (size_t)(colon - line) < sizeof(dc->user)) {
		line[strcspn(line, "\r\n")] = '\0';
		memcpy(dc->user, line, (size_t)(colon - line));
		dc->user[colon - line] = '\0';
		if (strlen(colon + 1) < sizeof(dc->pass))
			memcpy(dc->pass, colon + 1, strlen(colon + 1) + 1);
		else
			dc->user[0] = '\0'; /* too long: no credentials */
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
}

static void
dq_open(struct dq *q)
{
	struct dqueues *dqs = q->owner;
	struct conf_ref *ref = daemon_conf_acquire(dqs->daemon);
	const struct conf_send_connector *sc = dq_connector(ref, q);
	struct smtp_client_params p;
	struct dq_client *dc;

	if (sc == NULL || !sc->enabled) {
		/* The connector went away in a reload: route again later. */
		daemon_conf_release(ref);
		dq_settle_waiting(q, 451, "4.4.3",
		    "the send connector is gone or disabled", NULL);
		return;
	}
	if (ref->tls_client == NULL)
		ref->tls_client = tls_client_from_conf(ref->conf, NULL);
	if ((dc = calloc(1, sizeof(*dc))) == NULL) {
		daemon_conf_release(ref);
		return;
	}
	dc->ref = ref;
	dc->connecting = 1;
	dq_credentials(sc, dc);
	memset(&p, 0, sizeof(p));
	p.base = dqs->daemon->base;
	/* The TLS policy is the client's (tls_policy_decide()) per hop. */
	p.conf = ref->conf;
	p.connector = sc;
	p.domain = q->domain;
	/* a transport rule's TLS floor, an input of the policy */
	p.tls_rule = q->tls_floor ? q->tls_rule : NULL;
	p.tls_optional = q->tls_optional;
	p.hops = q->hops.hops;
	p.nhops = q->hops.nhops;
	p.tls = ref->tls_client;
	p.certs = ref->tls;
	p.auth_user = dc->user[0] ? dc->user : NULL;
	p.auth_pass = dc->user[0] ? dc->pass : NULL;
	p.protolog = dqs->daemon->sendlog;
	p.dest_tls = q->tls;
	p.ops = &dq_client_ops;
	p.arg = dc;
	dq_attach(q, dc);
	q->nconnecting++;
	dqs->nclients++;
	if ((dc->client = smtp_client_start(&p)) == NULL) {
		dq_detach(dc);
		q->nconnecting--;
		dqs->nclients--;
		daemon_conf_release(ref);
		free(dc);
	}
}

/*
 * dc, parked by another queue, serves q from now on when the queues'
 * conditions hold and its client agrees (1), else nothing changes (0).
 */
static int
dq_take(struct dq *q, struct dq_client *dc, const struct smtp_client_target *t)
{
	struct dq *old = dc->q;
	char why[200];

	if (old == q || dc->ref != q->owner->daemon->conf ||
	    old->head != NULL || old->tls_optional != q->tls_optional ||
	    old->tls_floor != q->tls_floor ||
	    (q->tls_floor && strcmp(old->tls_rule, q->tls_rule) != 0) ||
	    !smtp_client_idle(dc->client))
		return 0;
	/* session() (called from the retarget) names dc->q: the new queue */
	dc->q = q;
	if (smtp_client_retarget(dc->client, t, why, sizeof(why)) < 0) {
		dc->q = old;
		log_debug("queue %s: the parked connection of %s is not "
		          "reused: %s",
		    q->name, old->name, why);
		return 0;
	}
	dc->q = old;
	dq_unpark(dc);
	dq_detach(dc);
	dq_attach(q, dc);
	log_debug("queue %s: takes over the parked connection of %s to %s",
	    q->name, old->name, dc->key);
	smtp_client_resume(dc->client);
	return 1;
}

/*
 * Reuse (issue 19): a connection parked by another queue, to a host and
 * address among q's most preferred next hops, under the same connector
 * and configuration and with the same TLS policy for q's domain, is
 * handed to q instead of a new one (Postfix's connection cache by server
 * address, smtp_reuse_addr).  Only for DNS-routed connectors: smart-host
 * queues are one queue per connector already.  The client decides
 * whether its policy holds for q (smtp_client_retarget); here are the
 * queue's conditions: the same live configuration (credentials, TLS
 * context), the same rule floor and TLS-Required, and an old queue with
 * nothing waiting (it would resume the connection itself).  The
 * connection keeps its slot, so MaxOutboundConnections holds; q's
 * MaxPerDomainOutboundConnections is checked by the caller as for a new
 * one.  1 when q got a connection.
 */
static int
dq_adopt(struct dq *q)
{
	struct dqueues *dqs = q->owner;
	const struct conf_send_connector *sc =
	    conf_send_connector(dqs->daemon->conf->conf, q->connector);
	struct smtp_client_target t;
	unsigned best = UINT_MAX, tries = 0;

	if (sc == NULL || !sc->dns_routing_enabled || TAILQ_EMPTY(&dqs->parked))
		return 0;
	memset(&t, 0, sizeof(t));
	t.domain = q->domain;
	t.tls_rule = q->tls_floor ? q->tls_rule : NULL;
	t.tls_optional = q->tls_optional;
	t.hops = q->hops.hops;
	t.nhops = q->hops.nhops;
	t.dest_tls = q->tls;
	for (size_t i = 0; i < q->hops.nhops; i++)
		if (q->hops.hops[i].pref < best)
			best = q->hops.hops[i].pref;
	for (t.hop = 0; t.hop < q->hops.nhops; t.hop++) {
		const struct resolver_hop *h = &q->hops.hops[t.hop];
		char endpoint[64], key[DQUEUE_KEY_MAX];

		if (h->pref != best)
			continue;
		addr_endpoint((const struct sockaddr *)&h->addr, endpoint,
		    sizeof(endpoint));
		dq_host_key(key, q->connector, h->host, endpoint);
		for (struct dq_client *dc = dqs->hosts[dq_hash(key)];
		     dc != NULL && tries < DQUEUE_ADOPT_TRIES; dc = dc->hnext) {
			if (strcasecmp(dc->key, key) != 0)
				continue; /* another key in the bucket */
			tries++;
			if (dq_take(q, dc, &t))
				return 1;
		}
	}
	return 0;
}

/* The DANE and MTA-STS facts are in: the queue may connect. */
static void
dq_tls_gathered(void *arg, struct dest_tls *dt)
{
	struct dq *q = arg;

	q->tlsq = NULL;
	q->resolving = 0;
	q->owner->resolving--;
	dest_tls_unref(q->tls);
	q->tls = dt;
	dq_start_clients(q);
}

static void
dq_resolved(void *arg, const struct resolver_result *res)
{
	struct dq *q = arg;
	struct dqueues *dqs = q->owner;
	const struct conf_send_connector *sc =
	    conf_send_connector(dqs->daemon->conf->conf, q->connector);

	/* the hops there are: all of them are 10 KB, a destination has one
	 * or two (issue 19) */
	memcpy(&q->hops, res,
	    offsetof(struct resolver_result, hops) +
	        res->nhops * sizeof(res->hops[0]));
	q->hops_at = time(NULL);
	/*
	 * TLSA records of the secure hops and the domain's MTA-STS policy,
	 * before the first connection (issue 16); the queue stays
	 * "resolving" until they are in.  The MTA-STS question went out
	 * with the MX question (dq_resolve); without hops it is cancelled.
	 */
	if (res->status == RESOLVER_OK && sc != NULL &&
	    (q->tlsq != NULL || dest_tls_needed(sc, res, dqs->sts != NULL))) {
		/* the query begun, if any, is taken over (or freed) */
		q->tlsq = dest_tls_gather_from(q->tlsq, dqs->daemon->base,
		    dqs->resolver, dqs->sts, sc, q->domain, &q->hops,
		    dq_tls_gathered, q);
		if (q->tlsq != NULL)
			return;
	}
	dest_tls_cancel(q->tlsq);
	q->tlsq = NULL;
	dest_tls_unref(q->tls);
	q->tls = NULL;
	q->resolving = 0;
	q->owner->resolving--;
	switch (res->status) {
	case RESOLVER_OK:
		dq_start_clients(q);
		return;
	case RESOLVER_TEMPFAIL:
		snprintf(q->last_error, sizeof(q->last_error), "%s", res->why);
		q->retry_until =
		    outcome_next_attempt(q->owner->daemon, 0, time(NULL));
		dq_settle_waiting(q, 451, "4.4.3", res->why, NULL);
		return;
	case RESOLVER_PERMFAIL:
		dq_settle_waiting(q, 550, "5.1.2", res->why, NULL);
		return;
	case RESOLVER_NULLMX:
		dq_settle_waiting(q, 556, "5.1.10", res->why, NULL);
		return;
	}
}

/* The resolver of the live configuration (made again when it changed). */
static struct resolver *
dq_resolver(struct dqueues *dqs)
{
	const struct conf_transport *t = &dqs->daemon->conf->conf->transport;
	const char *spec = t->resolver;
	const char *anchor = t->dnssec_trust_anchor_file;
	const char *ca = t->trusted_ca_file != NULL ? t->trusted_ca_file : "";
	const char *why = NULL;

	if (dqs->resolver != NULL && dqs->resolving == 0 &&
	    (strcmp(dqs->resolver_spec, spec) != 0 ||
	        strcmp(dqs->resolver_anchor, anchor) != 0)) {
		sts_free(dqs->sts);
		dqs->sts = NULL;
		resolver_free(dqs->resolver);
		dqs->resolver = NULL;
	}
	if (dqs->sts != NULL && dqs->resolving == 0 &&
	    strcmp(dqs->sts_ca, ca) != 0) {
		sts_free(dqs->sts);
		dqs->sts = NULL;
	}
	if (dqs->resolver == NULL) {
		dqs->resolver =
		    resolver_new_dnssec(dqs->daemon->base, spec, anchor, &why);
		if (dqs->resolver == NULL)
			log_err("Resolver %s: %s", spec, why ? why : "?");
		snprintf(
		    dqs->resolver_spec, sizeof(dqs->resolver_spec), "%s", spec);
		snprintf(dqs->resolver_anchor, sizeof(dqs->resolver_anchor),
		    "%s", anchor);
	}
	/* MTA-STS: its cache is loaded from the queue database here. */
	if (dqs->sts == NULL && dqs->resolver != NULL) {
		struct sts_params sp = {dqs->daemon->base, dqs->resolver,
		    dqs->daemon->spool, ca, sts_port_from_env()};

		if ((dqs->sts = sts_new(&sp, &why)) == NULL)
			log_err("MTA-STS: %s; no MTA-STS policies are used",
			    why ? why : "?");
		snprintf(dqs->sts_ca, sizeof(dqs->sts_ca), "%s", ca);
	}
	return dqs->resolver;
}

static void
dq_resolve(struct dq *q)
{
	struct dqueues *dqs = q->owner;
	const struct conf *conf = dqs->daemon->conf->conf;
	const struct conf_send_connector *sc =
	    conf_send_connector(conf, q->connector);
	struct resolver *res = dq_resolver(dqs);
	int rc;

	if (sc == NULL || res == NULL) {
		dq_settle_waiting(q, 451, "4.4.3",
		    sc == NULL ? "the send connector is gone"
		               : "no DNS resolver",
		    NULL);
		return;
	}
	q->resolving = 1;
	dqs->resolving++;
	dest_tls_cancel(q->tlsq); /* none: the queue was not resolving */
	q->tlsq = NULL;
	if (sc->dns_routing_enabled) {
		rc = resolver_mx(res, q->domain, sc->port, dq_resolved, q);
		/*
		 * The domain's MTA-STS question goes out with its MX question,
		 * not after the answer (issue 19): one DNS round trip less
		 * before a new destination's first connection.  It is asked
		 * even when the MX look-up then fails (and cancelled then).
		 */
		if (rc == 0)
			q->tlsq = dest_tls_begin(dqs->sts, sc, q->domain);
	} else {
		rc = resolver_smarthosts(res, sc->smart_hosts, sc->nsmart_hosts,
		    sc->port, dq_resolved, q);
	}
	if (rc < 0) {
		q->resolving = 0;
		dqs->resolving--;
	}
}

static void
dq_start_clients(struct dq *q)
{
	struct dqueues *dqs = q->owner;
	const struct conf_transport *t = &dqs->daemon->conf->conf->transport;
	size_t want;
	time_t now = time(NULL);

	if (q->suspended || q->head == NULL || dqs->daemon->draining) {
		dq_unwait(q);
		return;
	}
	/*
	 * Parked connections first: they cost nothing, and they have just
	 * worked, so they go on even while the queue waits to retry.
	 */
	for (struct dq_client *dc = q->clients; dc != NULL && q->head != NULL;
	     dc = dc->next)
		if (smtp_client_idle(dc->client))
			smtp_client_resume(dc->client);
	if (q->head == NULL || q->resolving || q->retry_until > now) {
		dq_unwait(q);
		return;
	}
	if (q->hops_at + DQUEUE_HOPS_TTL <= now ||
	    q->hops.status != RESOLVER_OK) {
		dq_unwait(q);
		dq_resolve(q);
		return;
	}
	/* Connections on their way will take a message each. */
	want = q->nwaiting > q->nconnecting ? q->nwaiting - q->nconnecting : 0;
	while (want-- > 0 &&
	       q->nclients < t->max_per_domain_outbound_connections &&
	       q->head != NULL) {
		unsigned before = q->nclients;

		/* another queue's parked connection to the same host */
		if (dq_adopt(q))
			continue;
		if (dqs->nclients >= t->max_outbound_connections) {
			/* Every slot is taken: wait in line (keeping our
			 * place), and parked connections give way. */
			dq_wait(q);
			return;
		}
		dq_open(q);
		if (q->nclients == before)
			break;
	}
	dq_unwait(q);
}

void
dqueues_kick(struct dqueues *dqs, int all)
{
	/* New mail touches few queues; the whole list waits for the tick. */
	while (dqs->dirty != NULL) {
		struct dq *q = dqs->dirty;

		dqs->dirty = q->dnext;
		q->dirty = 0;
		if (!all)
			dq_start_clients(q);
	}
	if (!all)
		return;
	for (struct dq *q = dqs->queues; q != NULL; q = q->next)
		dq_start_clients(q);
	dq_collect(dqs);
}
int
dqueues_suspend(struct dqueues *dqs, const char *queue, int suspend)
{
	struct dq *q =
	    suspend ? dq_get(dqs, queue, "", queue) : dq_find(dqs, queue);

	if (q == NULL)
		return -1;
	q->suspended = suspend;
	if (suspend) {
		for (struct dq_client *dc = q->clients; dc != NULL;
		     dc = dc->next)
			if (smtp_client_idle(dc->client)) {
				dq_unpark(dc);
				smtp_client_quit(
				    dc->client, "the queue is suspended");
			}
		/* Its waiting mail goes back to being merely due: held
		 * here it would fill the working set the queue manager
		 * shares among all queues, and starve the others. */
		while (q->head != NULL) {
			struct dq_msg *m = q->head;

			q->head = m->next;
			q->nwaiting--;
			dq_release(dqs, m);
			dq_msg_free(m);
		}
		q->tail = &q->head;
	} else {
		dq_start_clients(q);
	}
	return 0;
}

int
dqueues_suspended(struct dqueues *dqs, const char *queue)
{
	const struct dq *q = dq_find(dqs, queue);

	return q != NULL && q->suspended;
}

int
dqueues_retry(struct dqueues *dqs, const char *queue)
{
	struct dq *q = dq_find(dqs, queue);

	if (q == NULL)
		return -1;
	q->retry_until = 0;
	q->hops_at = 0; /* look the next hops up again */
	dq_start_clients(q);
	return 0;
}

void
dqueues_forget_message(
    struct dqueues *dqs, const char *queue, const char *queue_id)
{
	for (struct dq *q = dqs->queues; q != NULL; q = q->next) {
		struct dq_msg **pp = &q->head;

		if (queue != NULL && strcasecmp(q->name, queue) != 0)
			continue;

		while (*pp != NULL) {
			struct dq_msg *m = *pp;

			if (strcmp(m->queue_id, queue_id) != 0) {
				pp = &m->next;
				continue;
			}
			*pp = m->next;
			q->nwaiting--;
			dq_release(dqs, m);
			dq_msg_free(m);
		}
		for (q->tail = &q->head; *q->tail != NULL;
		     q->tail = &(*q->tail)->next)
			;
	}
}

const char *
dqueues_status(struct dqueues *dqs, const char *queue, unsigned *connections,
    char *last_error, size_t len)
{
	struct dq *q = dq_find(dqs, queue);

	if (q == NULL)
		return NULL;
	*connections = q->nclients;
	snprintf(last_error, len, "%s", q->last_error);
	if (q->suspended)
		return "Suspended";
	if (q->nclients > 0)
		return "Active";
	if (q->retry_until > time(NULL))
		return "Retry";
	return "Ready";
}

unsigned
dqueues_connections(const struct dqueues *dqs)
{
	return dqs->nclients;
}

unsigned
dqueues_drain(struct dqueues *dqs)
{
	unsigned busy = 0;

	for (struct dq *q = dqs->queues; q != NULL; q = q->next)
		for (struct dq_client *dc = q->clients; dc != NULL;
		     dc = dc->next) {
			if (smtp_client_idle(dc->client)) {
				dq_unpark(dc);
				smtp_client_quit(
				    dc->client, "the service is stopping");
			}
			busy++;
		}
	return busy;
}
