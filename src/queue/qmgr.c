/*
 * qmgr.c - queue manager (first part of the delivery issue).
 *
 * Every QMGR_TICK_MS it reads a batch of due recipients from the spool's
 * read-only view, in recipient id order from a cursor that wraps around,
 * so every pending recipient is seen in turn however many wait.  Each is
 * routed with the live configuration (route.c); recipients of
 * Authoritative domains go to the Maildir agent.  Recipients routed to
 * send connectors wait in the queue for the SMTP client (delivery issue,
 * not built yet); recipients without a route wait for the DSN code.
 *
 * A recipient handed to an agent is remembered as in flight until its
 * result is durable, so a slow agent never gets the same recipient twice.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "deliver/maildir.h"
#include "log/tracklog.h"
#include "queue/qmgr.h"
#include "route/route.h"
#include "server/server.h"
#include "spool/spool.h"
#include "util/log.h"

/* How often the queue is looked at, and how much is taken each time. */
#define QMGR_TICK_MS 250
#define QMGR_BATCH 64
/* Recipients handed out and not yet recorded, at most. */
#define QMGR_INFLIGHT_MAX 256

struct qmgr {
	struct server *srv;
	struct maildir *maildir;
	struct event *timer;
	int64_t cursor; /* last recipient id looked at */
	int64_t inflight[QMGR_INFLIGHT_MAX];
	size_t ninflight;
	time_t last_purge;
};

/* How often finished messages past SafetyNetHoldTime are removed. */
#define QMGR_PURGE_SECONDS 60

static int
qmgr_is_inflight(const struct qmgr *q, int64_t id)
{
	for (size_t i = 0; i < q->ninflight; i++)
		if (q->inflight[i] == id)
			return 1;
	return 0;
}

static void
qmgr_forget(struct qmgr *q, int64_t id)
{
	for (size_t i = 0; i < q->ninflight; i++) {
		if (q->inflight[i] == id) {
			q->inflight[i] = q->inflight[--q->ninflight];
			return;
		}
	}
}

/* A Maildir outcome is durable: log it and let the recipient go. */
static void
qmgr_local_done(
    void *arg, const struct maildir_job *j, int delivered, const char *error)
{
	struct qmgr *q = arg;
	struct track_event ev;

	qmgr_forget(q, j->rcpt_id);
	if (!delivered)
		log_warn("local delivery of %s to %s deferred: %s", j->queue_id,
		    j->addr, error);
	if (q->srv->tracklog == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.event = delivered ? "DELIVER" : "DEFER";
	ev.message_id = j->queue_id;
	ev.sender = j->sender;
	ev.recipient = j->addr;
	ev.connector = "Maildir";
	ev.next_hop = "local";
	ev.tls = "";
	ev.status = delivered ? "250 2.0.0 Delivered to the mailbox" : error;
	tracklog_write(q->srv->tracklog, &ev);
}

static void
qmgr_dispatch(struct qmgr *q, const struct spool_due *d)
{
	const struct conf *conf = q->srv->conf->conf;
	const char *at = strrchr(d->addr, '@');
	struct maildir_job job;
	struct route r;

	if (at == NULL)
		return; /* <Postmaster>: local routing comes with delivery */
	route_domain(conf, at + 1, &r);
	if (r.kind != ROUTE_LOCAL)
		return; /* waits for the SMTP client and DSNs */
	memset(&job, 0, sizeof(job));
	job.rcpt_id = d->rcpt_id;
	job.message_id = d->message_id;
	job.attempts = d->attempts;
	job.retry_interval = conf->transport.transient_failure_retry_interval;
	snprintf(job.queue_id, sizeof(job.queue_id), "%s", d->queue_id);
	snprintf(job.sender, sizeof(job.sender), "%s", d->sender);
	snprintf(job.addr, sizeof(job.addr), "%s", d->addr);
	snprintf(job.pattern, sizeof(job.pattern), "%s", r.domain->mailboxes);
	if (maildir_submit(q->maildir, &job) == 0)
		q->inflight[q->ninflight++] = d->rcpt_id;
}

static void
qmgr_tick(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;
	struct spool_due due[QMGR_BATCH];
	size_t n = 0;

	(void)fd;
	(void)what;
	if (q->srv->draining || q->ninflight >= QMGR_INFLIGHT_MAX - QMGR_BATCH)
		return;
	if (time(NULL) - q->last_purge >= QMGR_PURGE_SECONDS) {
		q->last_purge = time(NULL);
		spool_purge(q->srv->spool,
		    q->last_purge - (time_t)q->srv->conf->conf->transport
		                        .safety_net_hold_time);
	}
	if (spool_due(
	        q->srv->spool, time(NULL), q->cursor, due, QMGR_BATCH, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		q->cursor = due[i].rcpt_id;
		if (!qmgr_is_inflight(q, due[i].rcpt_id))
			qmgr_dispatch(q, &due[i]);
	}
	if (n < QMGR_BATCH)
		q->cursor = 0; /* wrap around next time */
}

struct qmgr *
qmgr_start(struct server *srv, const char *queue_db)
{
	struct timeval tick = {0, QMGR_TICK_MS * 1000};
	struct qmgr *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->srv = srv;
	q->maildir = maildir_start(queue_db, srv->spool, qmgr_local_done, q);
	q->timer = event_new(srv->base, -1, EV_PERSIST, qmgr_tick, q);
	if (q->maildir == NULL || q->timer == NULL ||
	    event_add(q->timer, &tick) < 0) {
		if (q->timer != NULL)
			event_free(q->timer);
		maildir_stop(q->maildir);
		maildir_free(q->maildir);
		free(q);
		return NULL;
	}
	return q;
}

void
qmgr_stop(struct qmgr *q)
{
	event_del(q->timer);
	maildir_stop(q->maildir);
}

void
qmgr_free(struct qmgr *q)
{
	event_free(q->timer);
	maildir_free(q->maildir);
	free(q);
}
