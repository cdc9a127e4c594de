/*
 * outcome.c - settling recipients after an attempt (see outcome.h).
 *
 * One settle is one message's recipients from one attempt.  It decides
 * each recipient's new state, writes the notices the sender is owed (one
 * DSN per kind, listing every recipient of that kind), and only when the
 * notices are durable records the states.  If a notice cannot be stored,
 * the recipients it was for are deferred instead of failed, so a later
 * attempt writes it again: no failure is ever recorded without its DSN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "daemon/daemon.h"
#include "log/tracklog.h"
#include "queue/dsn.h"
#include "queue/outcome.h"
#include "smtp/command.h"
#include "smtp/header.h"
#include "spool/spool.h"
#include "status/deferrals.h"
#include "status/metrics.h"
#include "status/posture.h"
#include "util/log.h"

/* A stored notice that could not be written is tried again this soon. */
#define OUTCOME_DSN_RETRY_SECONDS 60

enum settle_state { ST_DELIVERED, ST_DEFERRED, ST_FAILED };

struct settle_rcpt {
	int64_t rcpt_id;
	char *addr, *orcpt, *status, *enh;
	unsigned notify;
	enum settle_state state;
	time_t next_attempt;
	int expired;
	int delay_notice; /* a delay notice goes out now */
	int dsn;          /* DSN_* action owed, or -1 */
	const char *event;
	int recorded; /* its new state is durable */
};

struct settle {
	struct daemon *daemon;
	outcome_released_fn released;
	void *arg;
	int64_t message_id;
	char *queue_id, *sender, *connector, *host, *queue, *tls;
	char *source, *local_ip, *remote_ip, *session;
	int local;
	time_t received;
	struct settle_rcpt *rcpts;
	size_t nrcpts;
	unsigned pending;    /* notices and records not yet durable */
	int notices_failed;  /* a notice could not be stored */
	char dsn_ids[4][32]; /* queue ids of the notices, by DSN action */
	char *texts[4];      /* their content, kept until it is stored */
	size_t lens[4];
	char *dsn_msgids[4]; /* their Message-ID and Subject */
	char *dsn_subjects[4];
	int dsn_stored[4]; /* durable: a DSN row follows the records */
	struct outcome_facts *facts; /* the message, for the tracking log */
};

time_t
outcome_next_attempt(const struct daemon *daemon, unsigned attempts, time_t now)
{
	const struct conf_transport *t = &daemon->conf->conf->transport;

	if (attempts < t->transient_failure_retry_attempts)
		return now + (time_t)t->transient_failure_retry_interval;
	return now + (time_t)t->outbound_connection_failure_retry_interval;
}

static char *
settle_dup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

static void
settle_free(struct settle *st)
{
	for (size_t i = 0; i < st->nrcpts; i++) {
		free(st->rcpts[i].addr);
		free(st->rcpts[i].orcpt);
		free(st->rcpts[i].status);
		free(st->rcpts[i].enh);
	}
	free(st->rcpts);
	free(st->queue_id);
	free(st->sender);
	free(st->connector);
	free(st->host);
	free(st->queue);
	free(st->tls);
	free(st->source);
	free(st->local_ip);
	free(st->remote_ip);
	free(st->session);
	for (size_t i = 0; i < 4; i++) {
		free(st->texts[i]);
		free(st->dsn_msgids[i]);
		free(st->dsn_subjects[i]);
	}
	free(st->facts);
	free(st);
}

/* Does the sender want a notice of this kind for this recipient? */
static int
settle_wants(const struct settle *st, unsigned notify, enum dsn_action a)
{
	if (st->sender[0] == '\0' || (notify & SMTP_NOTIFY_NEVER))
		return 0;
	switch (a) {
	case DSN_FAILED:
		return notify == 0 || (notify & SMTP_NOTIFY_FAILURE);
	case DSN_DELAYED:
		/* RFC 3461 4.1: without NOTIFY, delay notices are ours to
		 * choose; Exchange sends them, and so do we. */
		return notify == 0 || (notify & SMTP_NOTIFY_DELAY);
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return (notify & SMTP_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

const char *
outcome_fqdn(const struct daemon *daemon)
{
	const struct conf *conf = daemon->conf->conf;

	if (conf->nreceive_connectors > 0 &&
	    conf->receive_connectors[0].fqdn != NULL &&
	    conf->receive_connectors[0].fqdn[0] != '\0')
		return conf->receive_connectors[0].fqdn;
	return "localhost";
}

void
outcome_facts(struct daemon *daemon, int64_t message_id, const char *queue_id,
    struct outcome_facts *f)
{
	struct spool_info *in = &f->info;

	if (spool_info(daemon->spool, message_id, in) < 0)
		snprintf(in->queue_id, sizeof(in->queue_id), "%s",
		    queue_id != NULL ? queue_id : "");
	tracklog_ip(in->client, f->client_ip, sizeof(f->client_ip));
	f->msg = (struct track_msg){.internal_id = in->queue_id,
	    .message_id = in->message_id,
	    .subject = in->subject,
	    .sender = in->sender,
	    .client_ip = f->client_ip,
	    .directionality = tracklog_directionality(in->auth_as),
	    .size = in->size,
	    .rcpt_count = in->nrcpts};
}

static void
settle_track(struct settle *st, const struct settle_rcpt *r)
{
	struct track_event ev = {.event = r->event,
	    .source = st->source,
	    .msg = st->facts != NULL ? &st->facts->msg : NULL,
	    .recipient = r->addr,
	    .status = r->status,
	    .connector = st->connector,
	    .tls = st->tls};

	if (st->daemon->tracklog == NULL)
		return;
	if (st->local) {
		ev.server_hostname = outcome_fqdn(st->daemon);
	} else if (st->connector[0] != '\0') {
		/* a send connector's attempt: our end, then the next hop */
		const struct conf_send_connector *sc =
		    conf_send_connector(st->daemon->conf->conf, st->connector);

		ev.client_ip = st->local_ip;
		ev.client_hostname =
		    sc != NULL && sc->fqdn != NULL && sc->fqdn[0] != '\0'
		        ? sc->fqdn
		        : outcome_fqdn(st->daemon);
		ev.server_ip = st->remote_ip;
		ev.server_hostname = st->host;
		ev.source_context = st->session;
	}
	tracklog_write(st->daemon->tracklog, &ev);
}

/*
 * The notices, each once durable: written after the rows of the
 * recipients they are about, so the log reads in causal order (FAIL,
 * then the DSN it caused).  The row is the notice's own: its queue id,
 * Message-ID and Subject, to the original sender, about the recipients
 * listed in related-recipient-address, with the original's queue id as
 * its reference (as Exchange does).
 */
static void
settle_track_notices(struct settle *st)
{
	static const char *const kinds[4] = {
	    [DSN_FAILED] = "failed",
	    [DSN_DELAYED] = "delayed",
	    [DSN_DELIVERED] = "delivered",
	    [DSN_RELAYED] = "relayed",
	};

	if (st->daemon->tracklog == NULL)
		return;
	for (int slot = 0; slot < 4; slot++) {
		char related[2048] = "";
		struct track_msg m;
		size_t n = 0;

		if (!st->dsn_stored[slot])
			continue;
		for (size_t i = 0; i < st->nrcpts; i++) {
			int w;

			if (st->rcpts[i].dsn != slot ||
			    n + strlen(st->rcpts[i].addr) + 2 >=
			        sizeof(related))
				continue;
			w = snprintf(related + n, sizeof(related) - n, "%s%s",
			    n ? ";" : "", st->rcpts[i].addr);
			n += w > 0 ? (size_t)w : 0;
		}
		/* the notice is ours: from the null sender, Originating */
		m = (struct track_msg){.internal_id = st->dsn_ids[slot],
		    .message_id = st->dsn_msgids[slot],
		    .subject = st->dsn_subjects[slot],
		    .sender = "",
		    .directionality = "Originating",
		    .size = (int64_t)st->lens[slot],
		    .rcpt_count = 1};
		tracklog_write(st->daemon->tracklog,
		    &(struct track_event){.event = "DSN",
		        .source = "DSN",
		        .msg = &m,
		        .recipient = st->sender,
		        .status = kinds[slot],
		        .server_hostname = outcome_fqdn(st->daemon),
		        .related = related,
		        .reference = st->queue_id});
	}
}

/*
 * The metrics and the partner's TLS posture, once every record is
 * durable: the message counts once per state any of its recipients
 * reached in this attempt, and once as deferred or returned for TLS
 * when that was the reason (an x.7.y code of TLS: posture_tls_status).
 */
static void
settle_count(struct settle *st)
{
	struct daemon *daemon = st->daemon;
	const char *connector =
	    st->connector[0] != '\0' ? st->connector : st->queue;
	int seen[3] = {0, 0, 0}, tls[3] = {0, 0, 0};

	for (size_t i = 0; i < st->nrcpts; i++) {
		const struct settle_rcpt *r = &st->rcpts[i];

		if (!r->recorded)
			continue;
		seen[r->state] = 1;
		if (posture_tls_status(r->enh))
			tls[r->state] = 1;
	}
	if (seen[ST_DELIVERED]) {
		metrics_add(daemon->metrics, METRIC_DELIVERED, connector, NULL,
		    NULL, 1);
		metrics_observe(daemon->metrics, METRIC_DELIVERY_LATENCY,
		    connector, (double)(time(NULL) - st->received));
	}
	if (seen[ST_DEFERRED])
		metrics_add(
		    daemon->metrics, METRIC_DEFERRED, connector, NULL, NULL, 1);
	if (seen[ST_FAILED])
		metrics_add(
		    daemon->metrics, METRIC_RETURNED, connector, NULL, NULL, 1);
	if (st->local)
		return;
	if (tls[ST_DEFERRED])
		posture_message(daemon->posture, st->queue, st->connector, 0);
	if (tls[ST_FAILED])
		posture_message(daemon->posture, st->queue, st->connector, 1);
}

static void
settle_unref(struct settle *st)
{
	if (--st->pending == 0) {
		settle_track_notices(st);
		settle_count(st);
		settle_free(st);
	}
}

static void settle_record_all(struct settle *);

/* A notice is durable, or not: when all are in, record the states. */
static void
settle_notice_stored(void *arg, int ok, const char *queue_id)
{
	struct settle *st = arg;

	if (!ok) {
		st->notices_failed = 1;
		log_warn("queue: a delivery notice for %s could not be stored; "
		         "the recipients stay deferred",
		    st->queue_id);
	} else {
		for (int slot = 0; slot < 4; slot++)
			if (strcmp(st->dsn_ids[slot], queue_id) == 0)
				st->dsn_stored[slot] = 1;
	}
	if (--st->pending == 0)
		settle_record_all(st);
}

struct settle_record {
	struct settle *st;
	size_t i;
};

static void
settle_one_recorded(void *arg, int ok, const char *queue_id)
{
	struct settle_record *rec = arg;
	struct settle *st = rec->st;
	struct settle_rcpt *r = &st->rcpts[rec->i];

	(void)queue_id;
	r->recorded = ok;
	if (ok && r->state == ST_DEFERRED)
		deferrals_add(st->daemon->deferrals, time(NULL), st->queue_id,
		    r->addr, st->queue, r->status);
	if (ok)
		settle_track(st, r);
	else
		log_warn("queue: the result for %s of %s could not be stored; "
		         "it is tried again",
		    r->addr, st->queue_id);
	st->released(st->arg, r->rcpt_id, ok);
	free(rec);
	settle_unref(st);
}

static void
settle_record_all(struct settle *st)
{
	time_t now = time(NULL);

	st->pending = 1; /* held while the records go out */
	for (size_t i = 0; i < st->nrcpts; i++) {
		struct settle_rcpt *r = &st->rcpts[i];
		struct settle_record *rec = malloc(sizeof(*rec));
		struct spool_result res;

		if (st->notices_failed && r->dsn >= 0 &&
		    r->state == ST_FAILED) {
			/* No failure without its notice: try again later. */
			r->state = ST_DEFERRED;
			r->next_attempt = now + OUTCOME_DSN_RETRY_SECONDS;
			r->event = "DEFER";
		}
		memset(&res, 0, sizeof(res));
		res.rcpt_id = r->rcpt_id;
		res.message_id = st->message_id;
		res.queue_id = st->queue_id;
		res.status = r->state == ST_DELIVERED ? SPOOL_RCPT_DELIVERED
		             : r->state == ST_FAILED  ? SPOOL_RCPT_FAILED
		                                      : SPOOL_RCPT_PENDING;
		res.next_attempt = r->next_attempt;
		res.error = r->state == ST_DELIVERED ? "" : r->status;
		res.next_hop = st->queue;
		res.delay_notified = r->delay_notice && !st->notices_failed;
		if (rec == NULL) {
			st->released(st->arg, r->rcpt_id, 0);
			continue;
		}
		rec->st = st;
		rec->i = i;
		st->pending++;
		if (spool_record(st->daemon->spool, &res, settle_one_recorded,
		        rec) < 0) {
			st->pending--;
			free(rec);
			st->released(st->arg, r->rcpt_id, 0);
		}
	}
	settle_unref(st);
}

/* Write one notice (all recipients owed this kind) into the queue. */
static void
settle_notice(struct settle *st, const struct spool_stored *orig,
    const char *head, size_t head_len, enum dsn_action kind)
{
	int slot = (int)kind;
	const struct conf_transport *t = &st->daemon->conf->conf->transport;
	struct dsn_rcpt dr[64];
	struct dsn_msg m;
	struct spool_rcpt to;
	struct spool_msg sm;
	char msgid[300], subject[SPOOL_HEADER_MAX + 1], *text;
	size_t n = 0, len;
	time_t now = time(NULL);

	for (size_t i = 0; i < st->nrcpts && n < 64; i++) {
		struct settle_rcpt *r = &st->rcpts[i];

		if (r->dsn != (int)kind)
			continue;
		memset(&dr[n], 0, sizeof(dr[n]));
		dr[n].addr = r->addr;
		dr[n].orcpt = r->orcpt;
		dr[n].action = kind;
		dr[n].status = r->enh;
		dr[n].remote_mta = st->host;
		dr[n].diagnostic = r->status;
		dr[n].last_attempt = now;
		dr[n].retry_until =
		    st->received + (time_t)t->message_expiration_timeout;
		n++;
	}
	if (n == 0)
		return;
	spool_queue_id(st->dsn_ids[slot], sizeof(st->dsn_ids[slot]));
	snprintf(msgid, sizeof(msgid), "%s@%s", st->dsn_ids[slot],
	    outcome_fqdn(st->daemon));
	memset(&m, 0, sizeof(m));
	m.reporting_mta = outcome_fqdn(st->daemon);
	m.queue_id = st->queue_id;
	m.envid = orig->envid;
	m.sender = st->sender;
	m.arrival = orig->received;
	m.ret = orig->ret;
	m.original = head;
	m.original_len = head_len;
	m.original_size = orig->size;
	m.rcpts = dr;
	m.nrcpts = n;
	m.now = now;
	m.message_id = msgid;
	/* RFC 8689 5: nothing of a REQUIRETLS message comes back */
	m.no_original = orig->requiretls;
	if ((text = dsn_compose(&m, &len)) == NULL) {
		st->notices_failed = 1;
		return;
	}
	if (header_find(text, len, "Subject", subject, sizeof(subject)) < 0)
		subject[0] = '\0';
	st->lens[slot] = len;
	st->dsn_subjects[slot] = strdup(subject);
	if (asprintf(&st->dsn_msgids[slot], "<%s>", msgid) < 0)
		st->dsn_msgids[slot] = NULL;
	memset(&to, 0, sizeof(to));
	to.addr = st->sender;
	to.orcpt = "";
	memset(&sm, 0, sizeof(sm));
	sm.queue_id = st->dsn_ids[slot];
	sm.sender = ""; /* RFC 3464: notices come from the null sender */
	/* RFC 8689 5: a notice about a REQUIRETLS message requires TLS too */
	sm.requiretls = orig->requiretls;
	sm.envid = "";
	sm.connector = "DSN";
	sm.client = "";
	sm.helo = "";
	sm.tls = "";
	sm.auth_as = "Internal";
	sm.message_id =
	    st->dsn_msgids[slot] != NULL ? st->dsn_msgids[slot] : "";
	sm.subject = subject;
	sm.rcpts = &to;
	sm.nrcpts = 1;
	/* The spool reads the content until its callback: keep it. */
	st->texts[slot] = text;
	sm.data = text;
	sm.len = len;
	st->pending++;
	if (spool_submit(st->daemon->spool, &sm, settle_notice_stored, st) <
	    0) {
		st->pending--;
		st->notices_failed = 1;
	}
}

static void
settle_classify(struct settle *st, const struct outcome *o,
    struct settle_rcpt *r, const struct outcome_rcpt *in, time_t now)
{
	const struct conf_transport *t = &st->daemon->conf->conf->transport;
	int klass = in->code / 100;

	r->dsn = -1;
	if (klass == 2) {
		r->state = ST_DELIVERED;
		r->event = o->local ? "DELIVER" : "SEND";
		if (settle_wants(st, in->notify, DSN_DELIVERED) &&
		    (o->local || !in->dsn_passed))
			r->dsn = o->local ? DSN_DELIVERED : DSN_RELAYED;
		return;
	}
	if (klass == 5) {
		r->state = ST_FAILED;
		r->event = "FAIL";
		if (settle_wants(st, in->notify, DSN_FAILED))
			r->dsn = DSN_FAILED;
		return;
	}
	if (now - o->received >= (time_t)t->message_expiration_timeout) {
		r->state = ST_FAILED;
		r->expired = 1;
		r->event = "EXPIRE";
		if (settle_wants(st, in->notify, DSN_FAILED))
			r->dsn = DSN_FAILED;
		return;
	}
	r->state = ST_DEFERRED;
	r->event = "DEFER";
	r->next_attempt =
	    outcome_next_attempt(st->daemon, in->attempts + 1, now);
	if (!in->delay_notified &&
	    now - o->received >= (time_t)t->delay_notification_timeout &&
	    settle_wants(st, in->notify, DSN_DELAYED)) {
		r->delay_notice = 1;
		r->dsn = DSN_DELAYED;
	}
}

void
outcome_settle(struct daemon *daemon, const struct outcome *o,
    outcome_released_fn released, void *arg)
{
	struct settle *st = calloc(1, sizeof(*st));
	time_t now = time(NULL);
	int owed = 0;

	if (st == NULL || (st->rcpts = calloc(o->nrcpts ? o->nrcpts : 1,
	                       sizeof(*st->rcpts))) == NULL) {
		free(st);
		for (size_t i = 0; i < o->nrcpts; i++)
			released(arg, o->rcpts[i].rcpt_id, 0);
		return;
	}
	st->daemon = daemon;
	st->released = released;
	st->arg = arg;
	st->message_id = o->message_id;
	st->queue_id = settle_dup(o->queue_id);
	st->sender = settle_dup(o->sender);
	st->connector = settle_dup(o->connector);
	st->host = settle_dup(o->host);
	st->queue = settle_dup(o->queue);
	st->tls = settle_dup(o->tls);
	st->source = settle_dup(o->source != NULL ? o->source
	                        : o->local        ? "STOREDRIVER"
	                                          : "SMTP");
	st->local_ip = settle_dup(o->local_ip);
	st->remote_ip = settle_dup(o->remote_ip);
	st->session = settle_dup(o->session);
	st->local = o->local;
	st->received = o->received;
	if ((st->facts = calloc(1, sizeof(*st->facts))) != NULL)
		outcome_facts(daemon, o->message_id, o->queue_id, st->facts);
	st->nrcpts = o->nrcpts;
	for (size_t i = 0; i < o->nrcpts; i++) {
		struct settle_rcpt *r = &st->rcpts[i];
		const struct outcome_rcpt *in = &o->rcpts[i];

		r->rcpt_id = in->rcpt_id;
		r->addr = settle_dup(in->addr);
		r->orcpt = settle_dup(in->orcpt);
		r->status = settle_dup(in->status);
		r->enh = settle_dup(in->enh);
		r->notify = in->notify;
		settle_classify(st, o, r, in, now);
		owed |= r->dsn >= 0;
	}
	if (owed) {
		struct spool_stored orig;
		char *head;
		size_t hlen;

		st->pending = 1; /* held while the notices go out */
		/* A notice returns 1 MB of the original at most: load no more.
		 */
		if (spool_load_head(daemon->spool, o->message_id,
		        DSN_ORIGINAL_MAX, &orig, &head, &hlen) < 0) {
			st->notices_failed = 1;
		} else {
			settle_notice(st, &orig, head, hlen, DSN_FAILED);
			settle_notice(st, &orig, head, hlen, DSN_DELAYED);
			settle_notice(st, &orig, head, hlen, DSN_DELIVERED);
			settle_notice(st, &orig, head, hlen, DSN_RELAYED);
			free(head);
		}
		if (--st->pending > 0)
			return; /* settle_notice_stored records the states */
	}
	settle_record_all(st);
}
