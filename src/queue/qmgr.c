/*
 * qmgr.c - the queue manager.
 *
 * Every QMGR_TICK_MS it reads a batch of due recipients from the spool's
 * read-only view, in recipient id order from a cursor that wraps around,
 * so every pending recipient is seen in turn however many wait.  Each is
 * routed with the live configuration (route.c): Authoritative domains go
 * to the Maildir agent, recipients of send connectors to the delivery
 * queue of their next hop (dqueue.c), and recipients without a route wait
 * in the Unreachable queue (deferred with 4.4.4 until a connector matches
 * or the message expires).
 *
 * A recipient handed out is remembered as in flight until its new state
 * is durable, so it is never handed out twice.  A suspended queue takes
 * none: its recipients are passed over (they stay due) and walked again
 * when it is resumed, so that however many it has, the working set
 * (QMGR_INFLIGHT_MAX) stays free for the other queues.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "daemon/daemon.h"
#include "deliver/maildir.h"
#include "log/tracklog.h"
#include "queue/dqueue.h"
#include "queue/outcome.h"
#include "queue/qmgr.h"
#include "route/route.h"
#include "smtp/command.h"
#include "spool/spool.h"
#include "status/deferrals.h"
#include "status/metrics.h"
#include "util/log.h"

/*
 * How often the whole queue is looked at (deferred recipients coming due),
 * and how much one read takes.  New mail does not wait for the tick: the
 * session wakes the queue manager when it is committed.
 */
#define QMGR_TICK_MS 250
#define QMGR_BATCH 64
/* Reads per walk at most, so one scan cannot hold the loop for long. */
#define QMGR_SCAN_BATCHES 32
/*
 * Recipients handed out and not yet recorded, at most: bounds the memory
 * of the delivery queues (a few hundred bytes each).  The set is an open
 * addressing table twice as large, so probes stay short.
 */
#define QMGR_INFLIGHT_MAX 8192
#define QMGR_INFLIGHT_SLOTS (2 * QMGR_INFLIGHT_MAX)

struct qmgr {
	struct daemon *daemon;
	struct maildir *maildir;
	struct dqueues *dqueues;
	struct event *timer;
	struct event *wake;               /* activated by qmgr_wake() */
	int64_t new_cursor;               /* last never-tried id seen */
	struct spool_cursor retry_cursor; /* the deferred walk */
	int rescan;                       /* new_cursor back to 0 at the tick */
	int64_t inflight[QMGR_INFLIGHT_SLOTS]; /* 0: empty slot */
	size_t ninflight;
	time_t last_purge;
};

/* The queue of recipients no enabled send connector matches. */
#define QMGR_UNREACHABLE "Unreachable"

/*
 * How often finished messages past SafetyNetHoldTime are removed: every
 * minute, or every SafetyNetHoldTime when that is shorter (at least a
 * second apart), so a short hold time is kept to.
 */
#define QMGR_PURGE_SECONDS 60

static size_t
qmgr_slot(int64_t id)
{
	/* Ids are sequential: a multiplicative hash spreads them. */
	return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 32) &
	       (QMGR_INFLIGHT_SLOTS - 1);
}

static int
qmgr_is_inflight(const struct qmgr *q, int64_t id)
{
	for (size_t i = qmgr_slot(id); q->inflight[i] != 0;
	     i = (i + 1) & (QMGR_INFLIGHT_SLOTS - 1))
		if (q->inflight[i] == id)
			return 1;
	return 0;
}

static void
qmgr_hold(struct qmgr *q, int64_t id)
{
	size_t i = qmgr_slot(id);

	while (q->inflight[i] != 0)
		i = (i + 1) & (QMGR_INFLIGHT_SLOTS - 1);
	q->inflight[i] = id;
	q->ninflight++;
}

/* Remove with backward shift, so lookups never need tombstones. */
static void
qmgr_forget(struct qmgr *q, int64_t id)
{
	size_t mask = QMGR_INFLIGHT_SLOTS - 1, i = qmgr_slot(id), j;

	while (q->inflight[i] != id) {
		if (q->inflight[i] == 0)
			return;
		i = (i + 1) & mask;
	}
	q->inflight[i] = 0;
	q->ninflight--;
	for (j = (i + 1) & mask; q->inflight[j] != 0; j = (j + 1) & mask) {
		size_t home = qmgr_slot(q->inflight[j]);

		/* Move j back into the hole if its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			q->inflight[i] = q->inflight[j];
			q->inflight[j] = 0;
			i = j;
		}
	}
}

static void
qmgr_released(void *arg, int64_t rcpt_id, int recorded)
{
	struct qmgr *q = arg;

	qmgr_forget(q, rcpt_id);
	/* Not stored: it may be a never-tried recipient behind the new-mail
	 * cursor, so that walk starts again from the beginning. */
	if (!recorded)
		q->rescan = 1;
}

/*
 * What the Maildir agent did is durable (it records its own results).
 * Two cases still need the notices of outcome.c: a deferral past
 * MessageExpirationTimeout fails with a DSN (a mailbox that cannot be
 * written to for two days is a failure), and a delivery whose sender
 * asked NOTIFY=SUCCESS gets a "delivered" notice.
 */
static void
qmgr_local_done(void *arg, const struct maildir_job *j, int delivered,
    int recorded, const char *error)
{
	struct qmgr *q = arg;
	const struct conf_transport *t = &q->daemon->conf->conf->transport;
	int expired = !delivered && time(NULL) - j->received >=
	                                (time_t)t->message_expiration_timeout;
	struct outcome_facts *facts;

	qmgr_forget(q, j->rcpt_id);
	if (!recorded) {
		/* Still never tried in the queue: walk new mail again. */
		q->rescan = 1;
		return;
	}
	if (!delivered)
		log_warn("local delivery of %s to %s deferred: %s", j->queue_id,
		    j->addr, error);
	if (expired || (delivered && (j->notify & SMTP_NOTIFY_SUCCESS))) {
		char status[600];
		struct outcome_rcpt r = {.rcpt_id = j->rcpt_id,
		    .addr = j->addr,
		    .orcpt = j->orcpt,
		    .notify = j->notify,
		    .attempts = j->attempts,
		    .code = delivered ? 250 : 451,
		    .enh = delivered ? "2.0.0" : "4.2.0",
		    .status = status};
		struct outcome o = {.message_id = j->message_id,
		    .queue_id = j->queue_id,
		    .sender = j->sender,
		    .received = j->received,
		    .connector = "Maildir",
		    .host = "local",
		    .queue = "Local",
		    .tls = "",
		    .local = 1,
		    .rcpts = &r,
		    .nrcpts = 1};

		snprintf(status, sizeof(status), "%s",
		    delivered ? "250 2.0.0 Delivered to the mailbox" : error);
		qmgr_hold(q, j->rcpt_id);
		outcome_settle(q->daemon, &o, qmgr_released, q);
		return; /* outcome.c writes the tracking row and counts */
	}
	/* Each mailbox is written on its own: counted per recipient. */
	if (delivered) {
		metrics_add(q->daemon->metrics, METRIC_DELIVERED, "Maildir",
		    NULL, NULL, 1);
		metrics_observe(q->daemon->metrics, METRIC_DELIVERY_LATENCY,
		    "Maildir", (double)(time(NULL) - j->received));
	} else {
		metrics_add(q->daemon->metrics, METRIC_DEFERRED, "Maildir",
		    NULL, NULL, 1);
		deferrals_add(q->daemon->deferrals, time(NULL), j->queue_id,
		    j->addr, "Local", error);
	}
	if (q->daemon->tracklog == NULL ||
	    (facts = malloc(sizeof(*facts))) == NULL)
		return;
	outcome_facts(q->daemon, j->message_id, j->queue_id, facts);
	tracklog_write(q->daemon->tracklog,
	    &(struct track_event){.event = delivered ? "DELIVER" : "DEFER",
	        .source = "STOREDRIVER",
	        .msg = &facts->msg,
	        .recipient = j->addr,
	        .connector = "Maildir",
	        .server_hostname = outcome_fqdn(q->daemon),
	        .status =
	            delivered ? "250 2.0.0 Delivered to the mailbox" : error});
	free(facts);
}

/*
 * Settle a recipient without an attempt, in the Unreachable queue: it
 * waits there (a 4xx code) or fails with a non-delivery report (5xx).
 * source names who decided, for the tracking log.
 */
static void
qmgr_settle_now(struct qmgr *q, const struct spool_due *d, int code,
    const char *enh, const char *status, const char *source)
{
	struct outcome_rcpt r = {.rcpt_id = d->rcpt_id,
	    .addr = d->addr,
	    .orcpt = d->orcpt,
	    .notify = d->notify,
	    .attempts = d->attempts,
	    .delay_notified = d->delay_notified,
	    .code = code,
	    .enh = enh,
	    .status = status};
	struct outcome o = {.message_id = d->message_id,
	    .queue_id = d->queue_id,
	    .sender = d->sender,
	    .received = d->received,
	    .connector = "",
	    .host = "",
	    .queue = QMGR_UNREACHABLE,
	    .tls = "",
	    .source = source,
	    .rcpts = &r,
	    .nrcpts = 1};

	qmgr_hold(q, d->rcpt_id);
	outcome_settle(q->daemon, &o, qmgr_released, q);
}

/*
 * No enabled send connector matches (none does, or the one that would is
 * disabled): the recipient waits in the Unreachable queue, as in
 * Exchange, so that a connector disabled for maintenance does not return
 * a partner's mail.  It is deferred on the usual schedule (delay notice
 * included), routed again at each attempt and at once after a reload
 * (qmgr_reroute), and returned with a DSN when MessageExpirationTimeout
 * has passed (outcome.c: EXPIRE).
 */
static void
qmgr_unroutable(struct qmgr *q, const struct spool_due *d, const char *domain)
{
	char status[400];

	snprintf(status, sizeof(status),
	    "451 4.4.4 Unable to route: no enabled send connector matches %s; "
	    "the message waits in the Unreachable queue",
	    domain);
	qmgr_settle_now(q, d, 451, "4.4.4", status, "ROUTING");
}

/* "550 5.7.1 text" as a rule stored it: fail with it and an NDR. */
static void
qmgr_rule_refused(struct qmgr *q, const struct spool_due *d)
{
	char enh[16] = "5.7.1";
	const char *sp = strchr(d->rule_reject, ' ');

	if (sp != NULL && sscanf(sp + 1, "%15[0-9.]", enh) != 1)
		snprintf(enh, sizeof(enh), "5.7.1");
	qmgr_settle_now(q, d, 550, enh, d->rule_reject, "AGENT");
}

static void
qmgr_local(struct qmgr *q, const struct spool_due *d, const char *addr,
    const char *pattern)
{
	struct maildir_job job;

	/* Suspend-Queue Local: passed over like a suspended delivery
	 * queue's recipients, walked again at resume (qmgr_rescan). */
	if (dqueues_suspended(q->dqueues, "Local"))
		return;
	memset(&job, 0, sizeof(job));
	job.rcpt_id = d->rcpt_id;
	job.message_id = d->message_id;
	job.attempts = d->attempts;
	job.retry_interval =
	    q->daemon->conf->conf->transport.transient_failure_retry_interval;
	snprintf(job.queue_id, sizeof(job.queue_id), "%s", d->queue_id);
	snprintf(job.sender, sizeof(job.sender), "%s", d->sender);
	snprintf(job.addr, sizeof(job.addr), "%s", addr);
	snprintf(job.pattern, sizeof(job.pattern), "%s", pattern);
	job.received = d->received;
	job.notify = d->notify;
	snprintf(job.orcpt, sizeof(job.orcpt), "%s", d->orcpt);
	if (maildir_submit(q->maildir, &job) == 0)
		qmgr_hold(q, d->rcpt_id);
	else
		/* The agent's queue is full: the new-mail walk has moved past
		 * this recipient, so it starts again from the beginning. */
		q->rescan = 1;
}

/*
 * <Postmaster> (RFC 5321 4.5.1, no domain): the postmaster mailbox of the
 * first Authoritative accepted domain (route_postmaster).  The session
 * refuses it when there is none; one accepted before a reload removed the
 * last such domain fails like any unroutable recipient, never waits.
 */
static void
qmgr_postmaster(struct qmgr *q, const struct spool_due *d)
{
	const struct conf_accepted_domain *ad =
	    route_postmaster(q->daemon->conf->conf);
	char addr[300];

	if (ad == NULL) {
		qmgr_unroutable(q, d,
		    "<Postmaster> without a domain, and no Authoritative "
		    "accepted domain to deliver it to");
		return;
	}
	snprintf(addr, sizeof(addr), "postmaster@%s", ad->name);
	qmgr_local(q, d, addr, ad->mailboxes);
}

static void
qmgr_dispatch(struct qmgr *q, const struct spool_due *d)
{
	const struct conf *conf = q->daemon->conf->conf;
	const char *at = strrchr(d->addr, '@');
	struct dqueue_rcpt dr;
	struct route_rules rr;
	struct route r;
	char queue[600];
	const char *type;

	if (d->rule_reject[0] != '\0') {
		qmgr_rule_refused(q, d);
		return;
	}
	if (at == NULL) {
		qmgr_postmaster(q, d);
		return;
	}
	/* with what transport rules decided at acceptance (SPEC 5) */
	rr.tls_rule = d->rule_tls;
	rr.connector = d->rule_connector;
	rr.connector_rule = d->rule_route;
	route_recipient(conf, at + 1, &rr, &r);
	if (r.kind == ROUTE_NONE) {
		qmgr_unroutable(q, d, at + 1);
		return;
	}
	if (r.kind == ROUTE_WAIT) {
		char status[400];

		/* a rule's connector is gone: as unroutable, until a
		 * reload brings it back (qmgr_reroute) or it expires */
		snprintf(status, sizeof(status), "451 4.4.3 %s", r.why);
		qmgr_settle_now(q, d, 451, "4.4.3", status, "ROUTING");
		return;
	}
	if (r.kind == ROUTE_CONNECTOR) {
		char note[600] = "";

		if (r.tls_floor)
			snprintf(note, sizeof(note),
			    "(TLS required by transport rule \"%s\")",
			    r.tls_rule);
		else if (r.connector_rule != NULL)
			snprintf(note, sizeof(note),
			    "(routed by transport rule \"%s\" through send "
			    "connector \"%s\")",
			    r.connector_rule, r.connector->name);
		route_queue_name(&r, at + 1, queue, sizeof(queue), &type);
		/* RFC 8689 3: a queue of their own, where DANE and MTA-STS
		 * do not apply (the connector's policy and a rule's do) */
		if (d->tls_optional) {
			size_t w = strlen(queue);

			snprintf(
			    queue + w, sizeof(queue) - w, "/TlsRequiredNo");
		}
		memset(&dr, 0, sizeof(dr));
		dr.rcpt_id = d->rcpt_id;
		dr.message_id = d->message_id;
		dr.queue_id = d->queue_id;
		dr.sender = d->sender;
		dr.received = d->received;
		dr.addr = d->addr;
		dr.orcpt = d->orcpt;
		dr.notify = d->notify;
		dr.attempts = d->attempts;
		dr.delay_notified = d->delay_notified;
		dr.tls_rule = r.tls_floor ? r.tls_rule : NULL;
		dr.tls_optional = d->tls_optional;
		dr.note = note;
		switch (dqueues_add(
		    q->dqueues, queue, r.connector->name, at + 1, &dr)) {
		case 0:
			qmgr_hold(q, d->rcpt_id);
			break;
		case DQUEUE_SUSPENDED:
			/* Not held: it stays due, and a resume walks
			 * again (qmgr_rescan). */
			break;
		default:
			q->rescan = 1; /* as for a full Maildir queue */
			break;
		}
		return;
	}
	qmgr_local(q, d, d->addr, r.domain->mailboxes);
}

/*
 * The two walks (spool_due_new, spool_due_retry), each from its cursor, a
 * bounded number of batches.  New mail moves the new-mail cursor forward
 * for good; the retry walk goes back to the start when it reaches the end,
 * at the next tick.
 */
static void
qmgr_scan(struct qmgr *q, int retry)
{
	struct spool_due due[QMGR_BATCH];
	time_t now = time(NULL);
	/* before the walk: see spool_rcpt_last() */
	int64_t last = spool_rcpt_last(q->daemon->spool);

	if (q->daemon->draining)
		return;
	for (int b = 0; b < QMGR_SCAN_BATCHES; b++) {
		size_t n = 0;

		if (q->ninflight >= QMGR_INFLIGHT_MAX - QMGR_BATCH ||
		    spool_due_new(q->daemon->spool, q->new_cursor, due,
		        QMGR_BATCH, &n) < 0)
			break;
		for (size_t i = 0; i < n; i++) {
			q->new_cursor = due[i].rcpt_id;
			if (!qmgr_is_inflight(q, due[i].rcpt_id))
				qmgr_dispatch(q, &due[i]);
		}
		if (n < QMGR_BATCH) {
			/* Past the last never-tried one: the deferred ones
			 * behind it are the retry walk's, not read again. */
			if (last > q->new_cursor)
				q->new_cursor = last;
			break;
		}
	}
	for (int b = 0; retry && b < QMGR_SCAN_BATCHES; b++) {
		size_t n = 0;

		if (q->ninflight >= QMGR_INFLIGHT_MAX - QMGR_BATCH ||
		    spool_due_retry(q->daemon->spool, now, &q->retry_cursor,
		        due, QMGR_BATCH, &n) < 0)
			break;
		for (size_t i = 0; i < n; i++) {
			q->retry_cursor.next_attempt = due[i].next_attempt;
			q->retry_cursor.id = due[i].rcpt_id;
			if (!qmgr_is_inflight(q, due[i].rcpt_id))
				qmgr_dispatch(q, &due[i]);
		}
		if (n < QMGR_BATCH) {
			memset(&q->retry_cursor, 0, sizeof(q->retry_cursor));
			break;
		}
	}
	dqueues_kick(q->dqueues, retry);
}

static void
qmgr_tick(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;
	time_t hold;

	(void)fd;
	(void)what;
	hold = (time_t)q->daemon->conf->conf->transport.safety_net_hold_time;
	if (time(NULL) - q->last_purge >= (hold < QMGR_PURGE_SECONDS
	                                          ? (hold > 1 ? hold : 1)
	                                          : QMGR_PURGE_SECONDS)) {
		q->last_purge = time(NULL);
		spool_purge(q->daemon->spool, q->last_purge - hold);
	}
	if (q->rescan) {
		q->rescan = 0;
		q->new_cursor = 0;
	}
	qmgr_scan(q, 1);
}

static void
qmgr_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	qmgr_scan(arg, 0);
}

void
qmgr_wake(struct qmgr *q)
{
	event_active(q->wake, EV_TIMEOUT, 0);
}

struct qmgr *
qmgr_start(struct daemon *daemon, const char *queue_db)
{
	struct timeval tick = {0, QMGR_TICK_MS * 1000};
	struct qmgr *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->daemon = daemon;
	q->maildir = maildir_start(daemon->spool, qmgr_local_done, q);
	q->dqueues = dqueues_new(daemon, qmgr_released, q);
	q->timer = event_new(daemon->base, -1, EV_PERSIST, qmgr_tick, q);
	q->wake = event_new(daemon->base, -1, 0, qmgr_wake_cb, q);
	if (q->maildir == NULL || q->dqueues == NULL || q->timer == NULL ||
	    q->wake == NULL || event_add(q->timer, &tick) < 0) {
		if (q->timer != NULL)
			event_free(q->timer);
		if (q->wake != NULL)
			event_free(q->wake);
		maildir_stop(q->maildir);
		maildir_free(q->maildir);
		dqueues_free(q->dqueues);
		free(q);
		return NULL;
	}
	return q;
}

void
qmgr_stop(struct qmgr *q)
{
	event_del(q->timer);
	event_del(q->wake);
	maildir_stop(q->maildir);
}

void
qmgr_free(struct qmgr *q)
{
	event_free(q->timer);
	event_free(q->wake);
	maildir_free(q->maildir);
	dqueues_free(q->dqueues);
	free(q);
}

int
qmgr_inflight(struct qmgr *q, int64_t rcpt_id)
{
	return qmgr_is_inflight(q, rcpt_id);
}

int
qmgr_hold_rcpt(struct qmgr *q, int64_t rcpt_id)
{
	if (qmgr_is_inflight(q, rcpt_id) || q->ninflight >= QMGR_INFLIGHT_MAX)
		return 0;
	qmgr_hold(q, rcpt_id);
	return 1;
}

void
qmgr_release_rcpt(struct qmgr *q, int64_t rcpt_id, int recorded)
{
	qmgr_released(q, rcpt_id, recorded);
}

struct dqueues *
qmgr_dqueues(struct qmgr *q)
{
	return q->dqueues;
}

void
qmgr_kick(struct qmgr *q)
{
	qmgr_tick(-1, 0, q);
}

void
qmgr_rescan(struct qmgr *q)
{
	q->rescan = 1;
	qmgr_tick(-1, 0, q);
}

static void
qmgr_rerouted(void *arg, int ok, const char *queue_id)
{
	(void)arg;
	(void)queue_id;
	if (!ok)
		log_warn("queue: the Unreachable queue could not be routed "
		         "again after the reload; it is at its next retry");
}

void
qmgr_reroute(struct qmgr *q)
{
	spool_retry(q->daemon->spool, QMGR_UNREACHABLE, qmgr_rerouted, q);
}

unsigned
qmgr_drain(struct qmgr *q)
{
	return dqueues_drain(q->dqueues);
}
