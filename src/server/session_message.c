/*
 * session_message.c - a message's way from its first content byte to the
 * 250: memory accounting, our trace and organisation headers in front of
 * it (RFC 5321 4.4, RFC 3848, SPEC 3), validation at the end, the spool
 * submission, and the reply written only once the spool says the message
 * is durable (SPEC 4).
 *
 * Memory: a session in DATA or BDAT holds at most its read-ahead
 * (CONN_INPUT_MAX), the header section (our headers plus MaxHeaderSize)
 * and two body pieces of SPOOL_INLINE_MAX (one filling, one with the
 * spool's writer), whatever the message's size: a body that outgrows the
 * first piece streams to a body file as it arrives, and a session that
 * gets ahead of the disk stops reading until the writer caught up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "log/tracklog.h"
#include "server/conn.h"
#include "server/server.h"
#include "server/session_int.h"
#include "smtp/header.h"
#include "spool/spool.h"
#include "status/metrics.h"
#include "util/buf.h"
#include "util/log.h"
/*
 * Charge the content buffers' growth to the server's memory budget and to
 * the client address's share of it (server.c): the header, the stage, and
 * the piece with the spool's writer.
 */
void
session_charge(struct session *s)
{
	size_t cap = s->content.out.cap + s->content.stage.cap +
	             (s->body != NULL ? s->content.stage.max : 0);
	long long delta;

	if (!s->content_started || cap == s->charged)
		return;
	delta = (long long)cap - (long long)s->charged;
	s->charged = cap;
	if (server_memory_charge(
	        s->srv, (const struct sockaddr *)&s->peer, delta) < 0)
		content_fail(&s->content, CONTENT_NOMEM);
}

void
session_content_release(struct session *s)
{
	session_rules_free(s);
	if (!s->content_started)
		return;
	server_memory_charge(
	    s->srv, (const struct sockaddr *)&s->peer, -(long long)s->charged);
	s->charged = 0;
	content_free(&s->content);
	s->content_started = 0;
	/* Still ours: the message was refused or its client left. */
	spool_body_abort(s->body);
	s->body = NULL;
}

/* The spool's writer took the last piece: take more input. */
static void
session_body_ready(void *arg)
{
	struct session *s = arg;

	content_resume(&s->content);
	session_charge(s);
	if (content_blocked(&s->content) ||
	    (s->state != SESSION_DATA && s->state != SESSION_BDAT))
		return;
	session_process(s);
}

/* The content's sink: the first full piece starts the body file. */
static int
session_body_put(void *arg, struct buf *stage)
{
	struct session *s = arg;
	int rc;

	if (s->body == NULL && (s->body = spool_body_new(s->srv->daemon->spool,
	                            s->queue_id)) == NULL)
		return -1;
	if ((rc = spool_body_put(s->body, stage)) == 1)
		spool_body_when_ready(s->body, session_body_ready, s);
	return rc;
}

/* RFC 3848 protocol type for the Received header. */
static const char *
session_with(const struct session *s)
{
	static const char *names[2][2][2] = {
	    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};

	if (!s->esmtp && !s->tls && s->auth_user == NULL)
		return "SMTP";
	return names[s->mail->smtputf8 != 0][s->tls][s->auth_user != NULL];
}

/*
 * Start receiving content: reserve the message's memory budget and write
 * our own trace and organisation headers in front of it.
 */
int
session_content_start(struct session *s)
{
	struct content_limits lim;
	struct content_sink sink = {session_body_put, s};
	struct buf hdr;
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	size_t budget;
	int rc;

	lim.max_size = session_max_size(s);
	lim.max_header = s->rc->max_header_size;
	lim.max_hops = s->rc->max_hop_count;
	/*
	 * The header buffer holds our headers, the client's header section
	 * and, for a message that stays inline, its body (less than one
	 * piece); larger bodies stream to the spool.  What the buffers
	 * really hold is charged to the server as they grow
	 * (session_charge), and new messages are refused while all sessions
	 * together hold SERVER_MEMORY_MAX.
	 */
	budget = 4096 + SPOOL_INLINE_MAX + 2 +
	         (lim.max_header < SERVER_MEMORY_MAX ? (size_t)lim.max_header
	                                             : SERVER_MEMORY_MAX);
	if (!server_memory_room(s->srv, (const struct sockaddr *)&s->peer))
		return -1;
	content_init(&s->content, &lim, budget);
	content_set_sink(
	    &s->content, &sink, SPOOL_INLINE_MAX, SPOOL_BODY_PIECE);
	s->content_started = 1;
	spool_queue_id(s->queue_id, sizeof(s->queue_id));

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_init(&hdr, 4096);
	if (s->is_local)
		/* Postfix's form for local mail: no client, the user's id. */
		rc = buf_printf(&hdr,
		    "Received: by %s (Sluice, from userid %lu, %s)",
		    s->rc->fqdn, s->local_uid, s->local_user);
	else
		/*
		 * RFC 5321 4.4: "from HELO (NAME [IP])" with the client's
		 * verified reverse name, or "from HELO ([IP])" without one
		 * (never the IP in the name's place); IPv6 as an address
		 * literal.  The HELO argument was made printable when it was
		 * read (smtp_helo_parse).
		 */
		rc = buf_printf(&hdr,
		    "Received: from %s (%s%s[%s%s])\r\n"
		    "\tby %s (Sluice) with %s",
		    s->helo, s->peer_name != NULL ? s->peer_name : "",
		    s->peer_name != NULL ? " " : "",
		    strchr(s->remote_ip, ':') != NULL ? "IPv6:" : "",
		    s->remote_ip, s->rc->fqdn, session_with(s));
	if (rc == BUF_OK && s->tls)
		rc = buf_printf(&hdr, "\r\n\t(version=%s cipher=%s)",
		    s->tlsx->peer.version, s->tlsx->peer.cipher);
	if (rc == BUF_OK)
		rc = buf_printf(
		    &hdr, "%sid %s", s->is_local ? "\r\n\t" : " ", s->queue_id);
	if (rc == BUF_OK && s->nrcpts == 1)
		rc = buf_printf(&hdr, "\r\n\tfor <%s>", s->rcpts[0].addr);
	if (rc == BUF_OK)
		rc = buf_printf(&hdr,
		    "; %s\r\n"
		    "X-Sluice-Organization-AuthAs: %s\r\n"
		    "X-Sluice-Organization-AuthMechanism: %s\r\n",
		    date, s->auth_as, s->auth_mech);
	if (rc == BUF_OK && session_auth_domain(s)[0] != '\0')
		rc =
		    buf_printf(&hdr, "X-Sluice-Organization-AuthDomain: %s\r\n",
		        session_auth_domain(s));
	if (rc != BUF_OK || content_prefix(&s->content, hdr.data, hdr.len) < 0)
		rc = -1;
	buf_free(&hdr);
	return rc == BUF_OK ? 0 : -1;
}

/*
 * What the tracking log and the queue views keep of the header: the
 * Message-ID (one of ours, <queue-id@Fqdn>, when the message has none, as
 * Exchange assigns one; the message itself is not changed) and the
 * Subject.
 */
void
session_header_facts(struct session *s, char *msgid, char *subject)
{
	const char *data = s->content.out.data;
	size_t len = s->content.out.len;

	if (header_msgid(data, len, msgid, SPOOL_HEADER_MAX + 1) <= 0)
		snprintf(msgid, SPOOL_HEADER_MAX + 1, "<%s@%s>", s->queue_id,
		    s->rc->fqdn);
	if (header_find(data, len, "Subject", subject, SPOOL_HEADER_MAX + 1) <
	    0)
		subject[0] = '\0';
}

/*
 * RFC 8689 3: "TLS-Required: No" asks relays to deliver even where DANE
 * or MTA-STS would refuse the next hop (never past a send connector's
 * own Force TLS).  REQUIRETLS on MAIL FROM wins over it: the header is
 * then ignored, as the RFC says.
 */
static int
session_tls_optional(const struct session *s)
{
	char v[64];

	/* header_find() unfolds and trims the value */
	return !s->mail->requiretls &&
	       header_find(s->content.out.data, s->content.out.len,
	           "TLS-Required", v, sizeof(v)) >= 0 &&
	       strcasecmp(v, "No") == 0;
}

void
session_track_msg(struct session *s, struct track_msg *m, const char *msgid,
    const char *subject)
{
	memset(m, 0, sizeof(*m));
	m->internal_id = s->queue_id;
	m->message_id = msgid;
	m->subject = subject;
	m->sender = s->mail->path.addr;
	m->client_ip = s->remote_ip;
	m->directionality = tracklog_directionality(s->auth_as);
	m->size = (int64_t)s->content.out.len;
	m->rcpt_count = (unsigned)s->nrcpts;
}

/* One RECEIVE row per recipient, once the message is durable. */
void
session_track_receive(struct session *s)
{
	char tls[160] = "tls=none", local_ip[64], custom[600];
	char msgid[SPOOL_HEADER_MAX + 1], subject[SPOOL_HEADER_MAX + 1];
	struct track_msg m;

	if (s->srv->daemon->tracklog == NULL)
		return;
	/* The same shape as the SEND rows' TLS outcome. */
	if (s->tls)
		snprintf(tls, sizeof(tls), "tls=%s:encrypted;%s;%s",
		    strcmp(s->auth_mech, "DomainSecure") == 0 ? "DomainSecure"
		                                              : "inbound",
		    s->tlsx->peer.version, s->tlsx->peer.cipher);
	session_header_facts(s, msgid, subject);
	session_track_msg(s, &m, msgid, subject);
	tracklog_ip(s->local, local_ip, sizeof(local_ip));
	/* How the client was accepted, in custom-data's S:name=value form. */
	snprintf(custom, sizeof(custom),
	    "S:AuthAs=%s;S:AuthMechanism=%s%s%s%s%s%s", s->auth_as,
	    s->auth_mech, s->auth_user != NULL ? ";S:AuthUser=" : "",
	    s->auth_user != NULL ? s->auth_user : "",
	    session_auth_domain(s)[0] ? ";S:AuthDomain=" : "",
	    session_auth_domain(s),
	    s->mail->requiretls       ? ";S:RequireTLS=Yes"
	    : session_tls_optional(s) ? ";S:TlsRequired=No"
	                              : "");
	for (size_t i = 0; i < s->nrcpts; i++)
		tracklog_write(s->srv->daemon->tracklog,
		    &(struct track_event){.event = "RECEIVE",
		        .source = "SMTP",
		        .msg = &m,
		        .recipient = s->rcpts[i].addr,
		        .status = "250 2.6.0 Queued mail for delivery",
		        .client_ip = s->remote_ip,
		        .client_hostname = s->helo,
		        .server_ip = local_ip,
		        .server_hostname = s->rc->fqdn,
		        .source_context = s->id,
		        .connector = s->rc->name,
		        .custom_data = custom,
		        .tls = tls});
}

/*
 * The message could not be stored.  When the queue's disk is full (or at
 * back pressure's High) that is what the client hears, 452 4.3.1 (mail
 * system full, RFC 3463); any other failure is 451 4.3.0.  Either way
 * nothing of the message was kept.
 */
static void
session_store_failed(struct session *s)
{
	struct backpressure *bp = &s->srv->backpressure;

	backpressure_update(bp, &s->cref->conf->transport, conn_now(), 1);
	if (bp->level[BP_DATABASE_USED_SPACE] == BP_HIGH ||
	    bp->last.disk_avail == 0)
		session_reply(s, "452 4.3.1 Insufficient system storage; try "
		                 "again later");
	else
		session_reply(s, "451 4.3.0 Failed to store the message; "
		                 "try again later");
}

static void
session_committed(void *arg, int ok, const char *queue_id)
{
	struct session *s = arg;

	/* New mail: whoever delivers looks at once, not at its next tick. */
	if (ok && s->srv->stored != NULL)
		s->srv->stored(s->srv->stored_arg);
	if (ok) {
		/* stored, whether or not the client is still there */
		metrics_add(s->srv->daemon->metrics, METRIC_RECEIVED,
		    s->rc->name, NULL, NULL, 1);
		metrics_observe(s->srv->daemon->metrics, METRIC_COMMIT_LATENCY,
		    NULL, conn_now() - s->commit_start);
	}
	if (s->state == SESSION_DEAD) {
		/* The client left while we committed; nothing to answer. */
		session_close(s, NULL);
		return;
	}
	(void)queue_id; /* the spool stores ours; see session_finish */
	if (ok) {
		spool_crash_point("before-reply");
		session_log_credit(s);
		/* the message's rows leave in one write */
		tracklog_hold(s->srv->daemon->tracklog, 1);
		session_track_receive(s);
		session_rules_committed(s, ok);
		tracklog_hold(s->srv->daemon->tracklog, 0);
		s->junk = 0; /* the session does send mail */
		session_reply(
		    s, "250 2.6.0 <%s> Queued mail for delivery", s->queue_id);
	} else {
		session_store_failed(s);
	}
	session_reset(s);
	session_enter(s, SESSION_COMMAND);
	session_resume(s);
}

/* The whole message is in: validate, then hand it to the spool. */
void
session_finish(struct session *s)
{
	enum content_error err = content_finish(&s->content);
	struct spool_rcpt *rcpts;
	struct spool_msg msg;
	char tls_summary[96] = "";
	char msgid[SPOOL_HEADER_MAX + 1], subject[SPOOL_HEADER_MAX + 1];

	s->transactions++;
	if (err != CONTENT_OK) {
		session_plog(s, '*', content_error_reply(err),
		    strlen(content_error_reply(err)), "message rejected");
		if (err == CONTENT_STORE)
			session_store_failed(s);
		else
			session_reply(s, "%s", content_error_reply(err));
		session_reset(s);
		session_enter(s, SESSION_COMMAND);
		return;
	}
	if ((rcpts = calloc(s->nrcpts, sizeof(*rcpts))) == NULL) {
		session_reply(s, "452 4.3.1 Insufficient system resources");
		session_reset(s);
		session_enter(s, SESSION_COMMAND);
		return;
	}
	for (size_t i = 0; i < s->nrcpts; i++) {
		rcpts[i].addr = s->rcpts[i].addr;
		rcpts[i].orcpt = s->rcpts[i].orcpt;
		rcpts[i].notify = s->rcpts[i].notify;
	}
	memset(&msg, 0, sizeof(msg));
	if (s->tls)
		snprintf(tls_summary, sizeof(tls_summary), "%s %s",
		    s->tlsx->peer.version, s->tlsx->peer.cipher);
	msg.queue_id = s->queue_id;
	msg.sender = s->mail->path.addr;
	msg.envid = s->mail->envid;
	msg.ret = (int)s->mail->ret;
	msg.body_type = (int)s->mail->body;
	msg.smtputf8 = s->mail->smtputf8;
	msg.requiretls = s->mail->requiretls;
	msg.tls_optional = session_tls_optional(s);
	msg.connector = s->rc->name;
	msg.client = s->remote;
	msg.helo = s->helo;
	msg.tls = tls_summary;
	msg.auth_as = s->auth_as;
	session_header_facts(s, msgid, subject);
	msg.message_id = msgid;
	msg.subject = subject;
	msg.rcpts = rcpts;
	msg.nrcpts = s->nrcpts;
	msg.data = s->content.out.data;
	msg.len = s->content.out.len;
	if (s->content.spilled) {
		/* The rest is in the body file; the spool finishes it (the
		 * copies transport rules may make share it). */
		msg.body = s->body;
		msg.tail = &s->content.stage;
	}
	/* Transport rules, before anything is stored (SPEC 5). */
	if (session_rules_apply(s, &msg) != 0) {
		free(rcpts);
		session_reset(s);
		session_enter(s, SESSION_COMMAND);
		return;
	}
	/*
	 * Reading goes on while the spool commits (bounded by
	 * CONN_INPUT_MAX): pipelined commands simply wait in the buffer, and
	 * not toggling the socket saves two system calls per message.
	 */
	session_enter(s, SESSION_COMMIT);
	conn_set_deadline(s->conn, 0);
	s->commit_start = conn_now();
	if (spool_submit(s->srv->daemon->spool, &msg, session_committed, s) <
	    0) {
		session_reply(s, "451 4.3.0 Queue is busy; try again later");
		session_reset(s);
		session_enter(s, SESSION_COMMAND);
	} else if (msg.body != NULL) {
		s->body = NULL; /* the spool's now */
	}
	free(rcpts);
}
