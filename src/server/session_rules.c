/*
 * session_rules.c - transport rules at the end of data (SPEC 5): the
 * rules of the live configuration run over the finished message before
 * anything is stored, so that a rule's reject is the SMTP reply and
 * nothing of the message is kept.
 *
 * What the rules decide (src/rules/rule_eval.c) becomes what the spool
 * stores, all in one transaction: one message per copy (the received
 * message, or a copy with the header actions applied and the execution
 * history header), each recipient with the rules' route, TLS and reject
 * decisions.  The delivery side reads those decisions from the queue, so
 * a reload after the 250 changes nothing for accepted mail.  Copies other
 * than the first get queue ids of their own; the first keeps the id the
 * client is told in the 250.
 *
 * Message tracking shows what the rules did once the outcome is known,
 * in rows whose source is AGENT (Exchange's for transport agents): one
 * AGENTINFO naming every rule that fired or (Audit) matched, REDIRECT per
 * redirected recipient, TRANSFER per recipient moved to another copy
 * (Exchange's bifurcation), FAIL per recipient deleted or refused.
 *
 * Memory: a rewritten copy is charged to the server's message budget and
 * the client address's share of it, like the content buffer, and given
 * back when the commit is over.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "log/tracklog.h"
#include "rules/rules.h"
#include "server/server.h"
#include "server/session_int.h"
#include "smtp/header.h"
#include "spool/spool.h"
#include "util/log.h"

/* Room for the header actions of one copy, per rule, besides the body. */
#define SESSION_RULES_HEADER_MAX 2048

struct session_copy {
	char queue_id[32];
	struct buf data; /* rewritten; empty: the received message */
	char subject[SPOOL_HEADER_MAX + 1]; /* of a rewritten copy */
	struct spool_msg msg;
	struct spool_rcpt *rcpts;
	size_t nrcpts;
};

struct session_rules {
	struct conf_ref *ref; /* the configuration the rules came from */
	struct rule_result res;
	struct session_copy *copies;
	size_t ncopies;
	size_t charged; /* bytes of copies charged to the server */
	/* what the tracking rows say of the message */
	struct track_msg track;
	char msgid[SPOOL_HEADER_MAX + 1], subject[SPOOL_HEADER_MAX + 1];
};

static enum rule_auth
session_rules_auth(const struct session *s)
{
	if (strcmp(s->auth_as, "Internal") == 0)
		return RULE_AUTH_INTERNAL;
	if (strcmp(s->auth_as, "Partner") == 0)
		return RULE_AUTH_PARTNER;
	return RULE_AUTH_ANONYMOUS;
}

void
session_rules_free(struct session *s)
{
	struct session_rules *sr = s->rules;

	if (sr == NULL)
		return;
	for (size_t i = 0; i < sr->ncopies; i++) {
		buf_free(&sr->copies[i].data);
		free(sr->copies[i].rcpts);
	}
	free(sr->copies);
	rule_result_free(&sr->res);
	server_memory_charge(
	    s->srv, (const struct sockaddr *)&s->peer, -(long long)sr->charged);
	daemon_conf_release(sr->ref);
	free(sr);
	s->rules = NULL;
}

/*
 * One tracking row of the rules, about the message as received (its queue
 * id is the one of the 250).  Source AGENT, the receive connector and
 * the session; no connection ends, as on every row that is not a
 * connection's own (RECEIVE, SEND).
 */
static void
session_rules_row(struct session *s, struct session_rules *sr,
    const char *event, const char *rcpt, const char *status)
{
	struct track_event ev;

	if (s->srv->daemon->tracklog == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.event = event;
	ev.source = "AGENT";
	ev.msg = &sr->track;
	ev.recipient = rcpt;
	ev.status = status;
	ev.source_context = s->id;
	ev.connector = s->rc->name;
	tracklog_write(s->srv->daemon->tracklog, &ev);
}

/* "a@x;b@y": the envelope recipients a rule applied to, by bit i. */
static int
session_rules_rcpts(
    const struct rule_result *res, size_t i, char *out, size_t len, int *all)
{
	size_t w = 0, n = 0;

	out[0] = '\0';
	for (size_t t = 0; t < res->ntracks; t++) {
		if (!rule_bit(res->tracks[t].fired, i) &&
		    !rule_bit(res->tracks[t].audited, i))
			continue;
		n++;
		w += (size_t)snprintf(out + w, w < len ? len - w : 0, "%s%s",
		    w ? ";" : "", res->tracks[t].addr);
	}
	*all = n == res->ntracks;
	return n > 0;
}

/*
 * One AGENTINFO row per message, as Exchange's transport rule agent
 * writes one: every rule that fired (Enforce) or matched (Audit,
 * AuditAndNotify) with its actions, in priority order; a rule that
 * applied to some recipients only names them.  One row, not one per
 * rule: each row is a write to the log, and rules add up.  Names are in
 * single quotes, as in Exchange's descriptions: a field without double
 * quotes or commas is written as it is, not escaped byte by byte.
 */
static void
session_rules_agentinfo(struct session *s, struct session_rules *sr)
{
	const struct rule_set *set = sr->ref->conf->rules;
	const struct rule_result *res = &sr->res;
	char rcpts[1024], status[4096], who[1024];
	size_t w = 0, rw = 0;
	int all;

	status[0] = '\0';
	for (size_t i = 0; i < rule_set_count(set); i++) {
		const struct rule *r;
		unsigned mode;
		uint64_t any = 0;

		/* most rules fired for nobody: one word test each */
		if (i % 64 == 0) {
			for (size_t t = 0; t < res->ntracks; t++)
				any |= res->tracks[t].fired[i / 64] |
				       res->tracks[t].audited[i / 64];
			if (any == 0) {
				i += 63;
				continue;
			}
		}
		if (!session_rules_rcpts(res, i, who, sizeof(who), &all))
			continue;
		r = rule_set_rule(set, i);
		mode = rule_conf(r)->mode;
		w += (size_t)snprintf(status + w,
		    w < sizeof(status) ? sizeof(status) - w : 0,
		    "%sTransportRule '%s' mode=%s%s%s %s %s", w ? " | " : "",
		    rule_name(r), rule_mode_name(mode), all ? "" : " for ",
		    all ? "" : who,
		    mode == RULE_MODE_ENFORCE ? "actions:" : "would:",
		    rule_actions_text(r));
		if (mode == RULE_MODE_AUDIT_AND_NOTIFY)
			log_info("transport rule \"%s\" (AuditAndNotify) "
			         "matched %s from <%s> to %s; it would: %s",
			    rule_name(r), s->queue_id, s->mail->path.addr, who,
			    rule_actions_text(r));
	}
	if (w == 0)
		return;
	if (w >= sizeof(status))
		memcpy(status + sizeof(status) - 4, "...", 4);
	rcpts[0] = '\0';
	for (size_t t = 0; t < res->ntracks; t++) {
		int any = 0;

		for (size_t k = 0; k < res->words; k++)
			any |= res->tracks[t].fired[k] != 0 ||
			       res->tracks[t].audited[k] != 0;
		if (any)
			rw += (size_t)snprintf(rcpts + rw,
			    rw < sizeof(rcpts) ? sizeof(rcpts) - rw : 0, "%s%s",
			    rw ? ";" : "", res->tracks[t].addr);
	}
	session_rules_row(s, sr, "AGENTINFO", rcpts, status);
}

/* FAIL rows of the recipients a rule deleted (or, rejected, refused). */
static void
session_rules_fail_rows(struct session *s, struct session_rules *sr, int all)
{
	for (size_t t = 0; t < sr->res.ntracks; t++) {
		const struct rule_track *tr = &sr->res.tracks[t];
		char status[1200];

		if (tr->fate == RULE_FATE_DELETE)
			snprintf(status, sizeof(status),
			    "deleted by transport rule '%s' (DeleteMessage)",
			    rule_name(tr->fate_rule));
		else if (tr->fate == RULE_FATE_REJECT && all)
			snprintf(status, sizeof(status),
			    "%s (transport rule '%s')",
			    rule_reject_reply(tr->fate_rule),
			    rule_name(tr->fate_rule));
		else
			continue;
		session_rules_row(s, sr, "FAIL", tr->addr, status);
	}
}

void
session_rules_committed(struct session *s, int ok)
{
	struct session_rules *sr = s->rules;
	const struct rule_result *res;

	if (sr == NULL || !ok)
		return;
	res = &sr->res;
	session_rules_agentinfo(s, sr);
	for (size_t t = 0; t < res->ntracks; t++) {
		const struct rule_track *tr = &res->tracks[t];
		char to[1024], status[1400];
		size_t w = 0;

		if (tr->redirect_rule == NULL || tr->fate != RULE_FATE_DELIVER)
			continue;
		for (size_t i = 0; i < res->nrcpts; i++)
			if (res->rcpts[i].track == t &&
			    res->rcpts[i].origin == RULE_ORIGIN_REDIRECT)
				w += (size_t)snprintf(to + w,
				    w < sizeof(to) ? sizeof(to) - w : 0, "%s%s",
				    w ? ";" : "", res->rcpts[i].addr);
		snprintf(status, sizeof(status),
		    "redirected to %s by transport rule '%s'", w ? to : "",
		    rule_name(tr->redirect_rule));
		session_rules_row(s, sr, "REDIRECT", tr->addr, status);
	}
	/* the split: recipients that travel in another copy */
	for (size_t c = 1; c < sr->ncopies; c++) {
		const struct session_copy *cp = &sr->copies[c];
		char status[200];

		snprintf(status, sizeof(status),
		    "bifurcated into %s: header actions of transport rules "
		    "apply to some recipients only",
		    cp->queue_id);
		for (size_t i = 0; i < cp->nrcpts; i++)
			session_rules_row(
			    s, sr, "TRANSFER", cp->rcpts[i].addr, status);
	}
	session_rules_fail_rows(s, sr, 0);
}

/* The spool recipient of a result recipient. */
static void
session_rules_rcpt(const struct session *s, const struct rule_result *res,
    const struct rule_recipient *rr, struct spool_rcpt *out)
{
	const struct rule_track *tr = &res->tracks[rr->track];

	memset(out, 0, sizeof(*out));
	out->addr = rr->addr;
	out->orcpt = "";
	if (rr->origin == RULE_ORIGIN_ENVELOPE) {
		out->orcpt = s->rcpts[rr->track].orcpt;
		out->notify = s->rcpts[rr->track].notify;
	} else if (rr->origin == RULE_ORIGIN_BLIND_COPY) {
		/* a bounce would tell the sender about the hidden copy */
		out->notify = SMTP_NOTIFY_NEVER;
	}
	if (tr->tls_rule != NULL)
		out->rule_tls = rule_name(tr->tls_rule);
	if (tr->connector_rule != NULL) {
		out->rule_connector =
		    rule_conf(tr->connector_rule)->route_connector;
		out->rule_route = rule_name(tr->connector_rule);
	}
	if (tr->fate == RULE_FATE_REJECT)
		out->rule_reject = rule_reject_reply(tr->fate_rule);
}

/* Build the copies to store: envelope, recipients, rewritten content. */
static int
session_rules_copies(
    struct session *s, struct session_rules *sr, const struct spool_msg *base)
{
	const struct rule_result *res = &sr->res;
	const struct rule_set *set = sr->ref->conf->rules;
	const struct sockaddr *peer = (const struct sockaddr *)&s->peer;
	size_t first = (size_t)-1;

	if ((sr->copies = calloc(res->ncopies, sizeof(*sr->copies))) == NULL)
		return -1;
	for (size_t c = 0; c < res->ncopies; c++) {
		const struct rule_copy *rc = &res->copies[c];
		struct session_copy *cp;
		size_t max;

		if (rc->nrcpts == 0)
			continue; /* every recipient of it went elsewhere */
		cp = &sr->copies[sr->ncopies++];
		if ((cp->rcpts = calloc(rc->nrcpts, sizeof(*cp->rcpts))) ==
		    NULL)
			return -1;
		for (size_t i = 0; i < res->nrcpts; i++)
			if (res->tracks[res->rcpts[i].track].copy == c)
				session_rules_rcpt(s, res, &res->rcpts[i],
				    &cp->rcpts[cp->nrcpts++]);
		if (first == (size_t)-1) {
			first = c;
			snprintf(cp->queue_id, sizeof(cp->queue_id), "%s",
			    s->queue_id);
		} else {
			spool_queue_id(cp->queue_id, sizeof(cp->queue_id));
		}
		cp->msg = *base;
		cp->msg.next = NULL;
		cp->msg.queue_id = cp->queue_id;
		cp->msg.rcpts = cp->rcpts;
		cp->msg.nrcpts = cp->nrcpts;
		if (!rc->rewrite)
			continue;
		max = base->len +
		      SESSION_RULES_HEADER_MAX * (rule_set_count(set) + 1);
		/* reserved first, so that the budget holds while it grows */
		sr->charged += max;
		if (server_memory_charge(s->srv, peer, (long long)max) < 0)
			return -1;
		buf_init(&cp->data, max);
		/* one allocation of the message's size (rounded up to a
		 * power of two) instead of doubling from 64 bytes */
		if (buf_append(&cp->data, base->data, base->len) != BUF_OK)
			return -1;
		buf_reset(&cp->data);
		if (rule_rewrite(set, rc, base->data, base->len, &cp->data) < 0)
			return -1;
		cp->msg.data = cp->data.data;
		cp->msg.len = cp->data.len;
		/* a subject action shows in the queue views of this copy */
		if (header_find(cp->data.data, cp->data.len, "Subject",
		        cp->subject, sizeof(cp->subject)) < 0)
			cp->subject[0] = '\0';
		cp->msg.subject = cp->subject;
		/* keep what the copy holds, give back the rest */
		server_memory_charge(
		    s->srv, peer, (long long)cp->data.cap - (long long)max);
		sr->charged = sr->charged - max + cp->data.cap;
	}
	for (size_t c = 0; c + 1 < sr->ncopies; c++)
		sr->copies[c].msg.next = &sr->copies[c + 1].msg;
	return 0;
}

int
session_rules_apply(struct session *s, struct spool_msg *msg)
{
	struct session_rules *sr;
	struct rule_message m;
	const char **rcpts;
	int rc;

	if (rule_set_count(s->srv->daemon->conf->conf->rules) == 0)
		return 0;
	if ((sr = calloc(1, sizeof(*sr))) == NULL ||
	    (rcpts = calloc(s->nrcpts, sizeof(*rcpts))) == NULL) {
		free(sr);
		session_reply(s, "452 4.3.1 Insufficient system resources");
		return 1;
	}
	s->rules = sr;
	sr->ref = daemon_conf_acquire(s->srv->daemon);
	/* the header facts session_finish found, kept for the rows */
	snprintf(sr->msgid, sizeof(sr->msgid), "%s", msg->message_id);
	snprintf(sr->subject, sizeof(sr->subject), "%s", msg->subject);
	session_track_msg(s, &sr->track, sr->msgid, sr->subject);
	for (size_t i = 0; i < s->nrcpts; i++)
		rcpts[i] = s->rcpts[i].addr;
	memset(&m, 0, sizeof(m));
	m.sender = s->mail->path.addr;
	m.rcpts = rcpts;
	m.nrcpts = s->nrcpts;
	m.client = (const struct sockaddr *)&s->peer;
	m.auth = session_rules_auth(s);
	m.data = msg->data;
	m.len = msg->len;
	m.size = s->content.size;
	rc = rule_eval(sr->ref->conf->rules, sr->ref->conf, &m, &sr->res);
	free(rcpts);
	if (rc < 0) {
		session_reply(s, "452 4.3.1 Insufficient system resources");
		return 1;
	}
	if (sr->res.defer_rule != NULL) {
		log_warn("session %s: transport rule \"%s\" failed (a pattern "
		         "reached its limits) and its RuleErrorAction is Defer",
		    s->id, rule_name(sr->res.defer_rule));
		session_reply(s,
		    "451 4.7.500 Transport rule processing failed; "
		    "try again later");
		return 1;
	}
	if (sr->res.reject_all) {
		tracklog_hold(s->srv->daemon->tracklog, 1);
		session_rules_agentinfo(s, sr);
		session_rules_fail_rows(s, sr, 1);
		tracklog_hold(s->srv->daemon->tracklog, 0);
		session_plog(s, '*', rule_name(sr->res.reject_rule),
		    strlen(rule_name(sr->res.reject_rule)),
		    "rejected by transport rule");
		session_reply(s, "%s", rule_reject_reply(sr->res.reject_rule));
		return 1;
	}
	if (sr->res.delete_all) {
		/* Accepted and dropped: the client cannot tell (Exchange);
		 * for the session it is a message like any other. */
		session_log_credit(s);
		tracklog_hold(s->srv->daemon->tracklog, 1);
		session_track_receive(s);
		session_rules_agentinfo(s, sr);
		session_rules_fail_rows(s, sr, 0);
		tracklog_hold(s->srv->daemon->tracklog, 0);
		s->junk = 0;
		session_reply(
		    s, "250 2.6.0 <%s> Queued mail for delivery", s->queue_id);
		return 1;
	}
	if (!sr->res.fired_any && !sr->res.audited_any) {
		session_rules_free(s); /* nothing to do, nothing to log */
		return 0;
	}
	if (session_rules_copies(s, sr, msg) < 0) {
		session_reply(s, "452 4.3.1 Insufficient system resources");
		return 1;
	}
	*msg = sr->copies[0].msg;
	return 0;
}
