/*
 * session.c - the SMTP server session state machine (RFC 5321, with
 * RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 3461 DSN,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 2034 ENHANCEDSTATUSCODES).
 *
 * Data flow: conn (bytes) -> this file (lines, commands, message
 * content) -> content.c (validation, header filter) -> spool (durable) ->
 * the 250.  The session sees events from conn.c and never touches a
 * socket.
 *
 * Invariants:
 * - state changes only through session_enter(), which logs them;
 * - every command goes through the table in session_commands[], whose flags
 *   carry the sequencing and RFC 2920 pipelining rules;
 * - all input is read through the bounded line reader or, for BDAT, by
 *   exact byte counts; nothing is buffered beyond CONN_INPUT_MAX and the
 *   message size limit;
 * - "250" to the end of a message is written only from the spool's
 *   completion callback, i.e. after the message is durable;
 * - a session is never freed inside its own call chain: session_close()
 *   schedules the free for the next turn of the event loop.
 *
 * Memory: what an idle session holds is what every session needs (about
 * 1 KB here).  What only some sessions need is allocated when they
 * need it: the MAIL arguments at MAIL (freed at the transaction's end),
 * the TLS facts at the handshake, the AUTH strings at AUTH, the HELO
 * name and the reverse name to their length.  Out of memory there gets
 * a reply (452 4.3.1 at MAIL, 454 4.7.0 in AUTH, 421 4.3.2 elsewhere).
 */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "deliver/maildir.h"
#include "dns/resolver.h"
#include "log/protolog.h"
#include "log/tracklog.h"
#include "route/route.h"
#include "server/conn.h"
#include "server/auth.h"
#include "server/content.h"
#include "server/session_int.h"
#include "server/server.h"
#include "server/session.h"
#include "smtp/command.h"
#include "smtp/linereader.h"
#include "spool/spool.h"
#include "status/metrics.h"
#include "tls/tls_peer.h"
#include "tls/tls_store.h"
#include "tls/tls_verify.h"

#include <openssl/x509.h>
#include "util/addr.h"
#include "util/buf.h"
#include "util/crlf_scan.h"
#include "util/log.h"

static const char *session_state_names[] = {"greeting", "command", "data",
    "bdat", "commit", "auth", "tls", "closing", "dead"};

/* --- logging and replies --------------------------------------------- */

static int
session_protolog_on(const struct session *s)
{
	return s->srv->daemon->protolog != NULL &&
	       s->rc->protocol_logging_level == PROTOLOG_VERBOSE;
}

/*
 * One row of the protocol log, within the session's budget: once a
 * session has written SESSION_LOG_MAX bytes, one row says so and the rest
 * are counted, not written, until the disconnect row, which is always
 * written and carries the count.  Every stored message adds to the budget
 * what its rows need (session_log_credit), so the budget bounds what a
 * client makes us write without sending mail, never a busy relay.
 */
void
session_plog(struct session *s, char event, const char *data, size_t len,
    const char *context)
{
	char why[300];
	size_t row;

	if (!session_protolog_on(s))
		return;
	/* About the row's size: its data, context and fixed fields. */
	row = len + (context != NULL ? strlen(context) : 0) +
	      strlen(s->rc->name) + strlen(s->id) + strlen(s->local) +
	      strlen(s->remote) + SESSION_LOG_ROW_FIXED;
	if (event == '-' && s->log_dropped > 0) {
		snprintf(why, sizeof(why),
		    "%.*s%s%llu lines (%llu bytes) not logged: protocol log "
		    "limit",
		    (int)(len > 200 ? 200 : len), data, len > 0 ? "; " : "",
		    (unsigned long long)s->log_dropped,
		    (unsigned long long)s->log_dropped_bytes);
		data = why;
		len = strlen(why);
	} else if (event != '-' &&
	           (s->log_capped ||
	               s->log_bytes + row > SESSION_LOG_MAX + s->log_credit)) {
		if (!s->log_capped) {
			s->log_capped = 1;
			snprintf(why, sizeof(why),
			    "protocol log limit reached (%u bytes); further "
			    "lines are counted, not written",
			    (unsigned)SESSION_LOG_MAX);
			protolog_write(s->srv->daemon->protolog, s->rc->name,
			    s->id, s->seq++, s->local, s->remote, '*', why,
			    strlen(why), NULL);
		}
		s->log_dropped++;
		s->log_dropped_bytes += row;
		s->seq++;
		return;
	}
	s->log_bytes += row;
	protolog_write(s->srv->daemon->protolog, s->rc->name, s->id, s->seq++,
	    s->local, s->remote, event, data, len, context);
}

/*
 * A message was stored: its rows were mail, not junk.  The credit covers
 * a transaction's rows (MAIL, DATA, their replies, the commit) and two
 * rows of at most a full-length address per recipient; refused commands
 * inside the transaction get no credit of their own.
 */
void
session_log_credit(struct session *s)
{
	s->log_credit +=
	    SESSION_LOG_MSG_CREDIT + s->nrcpts * SESSION_LOG_RCPT_CREDIT;
}

void
session_enter(struct session *s, enum session_state next)
{
	if (s->state == next)
		return;
	/* A password check belongs to SESSION_AUTH (session_auth.c). */
	if (s->state == SESSION_AUTH)
		session_auth_abandon(s);
	log_debug("session %s: %s -> %s", s->id, session_state_names[s->state],
	    session_state_names[next]);
	s->state = next;
}

/*
 * Send one reply line ("250 2.1.0 Sender OK").  4xx and 5xx replies count
 * as errors and are delayed by TarpitInterval, which slows down address
 * harvesting and dictionary attacks without costing a process.
 */
static void
session_vreply(struct session *s, int tarpit, const char *fmt, va_list ap)
{
	char line[SESSION_REPLY_MAX];
	int n;

	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0)
		log_panic("session %s: reply format failed", s->id);
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	/*
	 * A reply is printable ASCII (RFC 5321 4.2.1).  Some echo what the
	 * client sent (an unknown verb); its control and 8-bit bytes must
	 * not travel back to the client or into the logs.
	 */
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e)
			line[i] = '?';
	session_plog(s, '>', line, (size_t)n, NULL);
	line[n++] = '\r';
	line[n++] = '\n';
	if (tarpit && (line[0] == '4' || line[0] == '5') &&
	    s->rc->tarpit_interval > 0)
		conn_write_later(
		    s->conn, line, (size_t)n, (double)s->rc->tarpit_interval);
	else
		conn_write(s->conn, line, (size_t)n);
}

void __attribute__((format(printf, 2, 3)))
session_reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, 1, fmt, ap);
	va_end(ap);
}

/* Send a final reply and close the connection once it is written. */
void __attribute__((format(printf, 2, 3)))
session_reply_close(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, 0, fmt, ap);
	va_end(ap);
	session_enter(s, SESSION_CLOSING);
	conn_close_after_flush(s->conn);
}

/* A protocol error: reply, count it, and hang up when there are too many. */
void __attribute__((format(printf, 2, 3)))
session_error(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s, 1, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->rc->max_protocol_errors)
		session_reply_close(s,
		    "421 4.7.0 %s Too many errors on this "
		    "connection, closing transmission channel",
		    s->rc->fqdn);
}

/* --- transaction ----------------------------------------------------- */

uint64_t
session_max_size(const struct session *s)
{
	uint64_t m = s->rc->max_message_size;

	if (s->tc->max_receive_size < m)
		m = s->tc->max_receive_size;
	return m;
}

static unsigned
session_max_rcpts(const struct session *s)
{
	unsigned m = s->rc->max_recipients_per_message;

	if (s->tc->max_recipient_envelope_limit > 0 &&
	    s->tc->max_recipient_envelope_limit < m)
		m = s->tc->max_recipient_envelope_limit;
	return m;
}

void
session_reset(struct session *s)
{
	session_content_release(s);
	s->have_mail = 0;
	free(s->mail);
	s->mail = NULL;
	s->nrcpts = 0;
	s->used_bdat = 0;
	s->used_data = 0;
	s->bdat_remaining = 0;
	s->bdat_last = 0;
	s->bdat_discard = 0;
	s->data_bol = 0;
	s->data_cr = 0;
}

/* --- commands --------------------------------------------------------- */

enum {
	CMD_ENDS_GROUP =
	    1 << 0, /* RFC 2920: must be last in a pipelined group */
	CMD_NEEDS_HELO = 1 << 1,
	CMD_TRANSACTION = 1 << 2, /* MAIL/RCPT/DATA/BDAT: RequireTLS applies */
	CMD_JUNK = 1 << 3,        /* counts against SESSION_JUNK_MAX */
};

struct session_cmd {
	enum smtp_verb verb;
	unsigned flags;
	void (*fn)(struct session *, const struct smtp_cmd *);
};

static int
session_tls_offered(const struct session *s)
{
	return (s->rc->auth_mechanism & AUTHM_TLS) && !s->tls &&
	       s->rc->tls_certificate_name[0] != '\0';
}

static void
session_hello_reset(struct session *s)
{
	session_reset(s);
	memset(&s->ext, 0, sizeof(s->ext));
	s->pipelining = 0;
}

static int
session_hello_arg(struct session *s, const struct smtp_cmd *c)
{
	const char *why = NULL;
	char name[SMTP_HELO_MAX + 1];
	char *copy;

	/* A refused name leaves the one given before as it was. */
	if (smtp_helo_parse(c->arg, c->arg_len, name, sizeof(name), &why) < 0) {
		session_error(
		    s, "501 5.5.4 %s", why ? why : "Invalid domain name");
		return -1;
	}
	if ((copy = strdup(name)) == NULL) {
		session_reply_close(s,
		    "421 4.3.2 %s Insufficient system resources", s->rc->fqdn);
		return -1;
	}
	free(s->helo);
	s->helo = copy;
	return 0;
}

static void
session_cmd_helo(struct session *s, const struct smtp_cmd *c)
{
	if (session_hello_arg(s, c) < 0)
		return;
	session_hello_reset(s);
	s->esmtp = 0;
	session_reply(s, "250 %s Hello [%s]", s->rc->fqdn, s->remote_ip);
}

static void
session_cmd_ehlo(struct session *s, const struct smtp_cmd *c)
{
	const struct conf_receive_connector *rc = s->rc;
	char lines[16][64];
	size_t n = 0;

	if (session_hello_arg(s, c) < 0)
		return;
	session_hello_reset(s);
	s->esmtp = 1;
	s->ext.size = 1;
	snprintf(lines[n++], sizeof(lines[0]), "SIZE %llu",
	    (unsigned long long)session_max_size(s));
	if (rc->pipelining_enabled) {
		s->pipelining = 1;
		snprintf(lines[n++], sizeof(lines[0]), "PIPELINING");
	}
	if (rc->dsn_enabled) {
		s->ext.dsn = 1;
		snprintf(lines[n++], sizeof(lines[0]), "DSN");
	}
	if (rc->enhanced_status_codes_enabled)
		snprintf(lines[n++], sizeof(lines[0]), "ENHANCEDSTATUSCODES");
	if (rc->eight_bit_mime_enabled) {
		s->ext.eightbitmime = 1;
		snprintf(lines[n++], sizeof(lines[0]), "8BITMIME");
	}
	if (rc->smtp_utf8_enabled) {
		s->ext.smtputf8 = 1;
		snprintf(lines[n++], sizeof(lines[0]), "SMTPUTF8");
	}
	if (rc->chunking_enabled) {
		s->ext.chunking = 1;
		snprintf(lines[n++], sizeof(lines[0]), "CHUNKING");
	}
	if (session_tls_offered(s))
		snprintf(lines[n++], sizeof(lines[0]), "STARTTLS");
	/* RFC 8689: only where the session itself is protected */
	if (s->tls) {
		s->ext.requiretls = 1;
		snprintf(lines[n++], sizeof(lines[0]), "REQUIRETLS");
	}
	if (session_auth_offered(s))
		snprintf(lines[n++], sizeof(lines[0]), "AUTH PLAIN LOGIN");
	session_reply(s, "250-%s Hello [%s]", rc->fqdn, s->remote_ip);
	for (size_t i = 0; i < n; i++)
		session_reply(s, "250%c%s", i + 1 == n ? ' ' : '-', lines[i]);
}

static int
session_require_tls(struct session *s)
{
	if (s->rc->require_tls && !s->tls) {
		session_reply(
		    s, "530 5.7.0 Must issue a STARTTLS command first");
		return -1;
	}
	return 0;
}

/* Map a parser status to the reply RFC 5321 and RFC 3463 call for. */
static void
session_parse_error(struct session *s, int st, const char *why, int is_rcpt)
{
	switch (st) {
	case SMTP_PARSE_NEEDTLS:
		session_error(s, "530 5.7.10 %s",
		    why ? why : "REQUIRETLS needs a TLS session");
		break;
	case SMTP_PARSE_UTF8:
		session_error(s, "553 5.6.7 %s",
		    why ? why : "Non-ASCII address requires SMTPUTF8");
		break;
	case SMTP_PARSE_BADPARAM:
		session_error(
		    s, "555 5.5.4 %s", why ? why : "Unsupported parameter");
		break;
	case SMTP_PARSE_BADVALUE:
		session_error(
		    s, "501 5.5.4 %s", why ? why : "Invalid parameter");
		break;
	case SMTP_PARSE_TOOLONG:
		session_error(s, "501 5.5.4 %s", why ? why : "Path too long");
		break;
	default:
		session_error(s, "501 %s %s", is_rcpt ? "5.1.3" : "5.1.7",
		    why       ? why
		    : is_rcpt ? "Bad recipient address syntax"
		              : "Bad sender address syntax");
		break;
	}
}

/*
 * Who is sending this message (SPEC 3, Domain Security inbound).  A
 * sender domain in TLSReceiveDomainSecureList on a DomainSecureEnabled
 * connector must come over TLS with a client certificate that chains to
 * TrustedCAFile and names the domain; otherwise a 4.7.1 refusal says
 * which condition failed, so that the partner's administrator can act.
 * Passing mail is marked Partner / DomainSecure; other TLS mail is
 * Anonymous / Tls.
 */
static int
session_identify(struct session *s)
{
	const char *domain = s->mail->path.domain, *why = NULL;
	struct tls_outcome outcome;
	char reason[512];

	if (s->tlsx != NULL)
		s->tlsx->auth_domain[0] = '\0';
	s->auth_as = "Anonymous";
	s->auth_mech = s->tls ? "Tls" : "None";
	if ((s->rc->auth_mechanism & AUTHM_EXTERNAL_AUTHORITATIVE) &&
	    (s->rc->permission_groups & PERM_EXCHANGE_SERVERS))
		s->auth_as = "Internal";
	if (s->auth_user != NULL) {
		s->auth_as = "Internal";
		s->auth_mech = "BasicAuth";
	}
	if (!s->rc->domain_secure_enabled || s->mail->path.null ||
	    !conf_strlist_has(&s->tc->receive_domain_secure, domain))
		return 0;
	/* The checks themselves are the TLS library's (tls_verify.c). */
	tls_peer_outcome(s->tls ? conn_ssl(s->conn) : NULL, 1, &outcome);
	if (tls_domain_secure_check(&outcome, domain, reason, sizeof(reason)) !=
	    TLS_CHECK_OK)
		why = reason;
	else if (s->tlsx == NULL) /* a passed check implies TLS */
		why = "not inside TLS";
	if (why != NULL) {
		char line[1000];

		snprintf(line, sizeof(line),
		    "Domain Security refused for %s: %.600s", domain, why);
		session_plog(s, '*', line, strlen(line), "DomainSecure");
		log_warn("session %s from %s: %s", s->id, s->remote, line);
		session_reply(s, "451 4.7.1 Domain Security for %s failed: %s",
		    domain, why);
		return -1;
	}
	s->auth_as = "Partner";
	s->auth_mech = "DomainSecure";
	snprintf(
	    s->tlsx->auth_domain, sizeof(s->tlsx->auth_domain), "%s", domain);
	return 0;
}

const char *
session_auth_domain(const struct session *s)
{
	return s->tlsx != NULL ? s->tlsx->auth_domain : "";
}

/*
 * Back pressure (backpressure.h): at High nobody may start a message, at
 * Medium only our own organisation; a declared SIZE that the queue's disk
 * cannot take now is refused too (RFC 1870 6.2).  Replies 452 4.3.1 and
 * returns -1 when the message may not start.
 */
static int
session_back_pressure(struct session *s)
{
	struct backpressure *bp = &s->srv->backpressure;
	enum bp_level level =
	    backpressure_update(bp, &s->cref->conf->transport, conn_now(), 0);
	enum bp_resource r = backpressure_worst(bp);
	char why[160];

	if (level == BP_HIGH ||
	    (level == BP_MEDIUM && strcmp(s->auth_as, "Internal") != 0)) {
		snprintf(why, sizeof(why), "%s %s (%u%%)",
		    backpressure_resource_name(r),
		    backpressure_level_name(level), bp->last.used[r]);
		session_plog(s, '*', why, strlen(why), "back pressure");
		session_reply(s, "452 4.3.1 Insufficient system resources (%s)",
		    r == BP_DATABASE_USED_SPACE ? "queue disk" : "memory");
		return -1;
	}
	if (s->mail->has_size &&
	    s->cref->conf->transport.enable_resource_monitoring &&
	    s->mail->size >= bp->last.disk_avail) {
		session_reply(s, "452 4.3.1 Insufficient system storage for a "
		                 "message of that size");
		return -1;
	}
	return 0;
}

static void
session_cmd_mail(struct session *s, const struct smtp_cmd *c)
{
	const char *why = NULL;
	int st;

	if (s->have_mail) {
		session_error(s, "503 5.5.1 Sender already specified");
		return;
	}
	/* Only a transaction needs its MAIL arguments (about 1 KB). */
	if (s->mail == NULL && (s->mail = malloc(sizeof(*s->mail))) == NULL) {
		session_reply(s, "452 4.3.1 Insufficient system resources");
		return;
	}
	memset(s->mail, 0, sizeof(*s->mail));
	st = smtp_mail_parse(c->arg, c->arg_len, &s->ext, s->mail, &why);
	if (st != SMTP_PARSE_OK) {
		session_parse_error(s, st, why, 0);
		return;
	}
	if (s->mail->body == SMTP_BODY_BINARYMIME) {
		session_error(s, "555 5.5.4 BINARYMIME is not supported");
		return;
	}
	if (!server_rate_allow(s->srv, s->rc->name,
	        (const struct sockaddr *)&s->peer, s->rc->message_rate_limit)) {
		session_reply(s, "450 4.7.0 Message submission rate for this "
		                 "client has exceeded the configured limit");
		return;
	}
	if (s->mail->has_size && s->mail->size > session_max_size(s)) {
		session_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
		                 "message size");
		return;
	}
	if (session_identify(s) < 0)
		return;
	if (session_back_pressure(s) < 0) {
		server_rate_forgive(
		    s->srv, s->rc->name, (const struct sockaddr *)&s->peer);
		return;
	}
	s->have_mail = 1;
	s->nrcpts = 0;
	session_reply(s, "250 2.1.0 Sender OK");
}

/*
 * Relay control (SPEC 3): anonymous clients only reach accepted domains;
 * ExchangeServers on an ExternalAuthoritative connector and authenticated
 * ExchangeUsers may send anywhere.
 */
static int
session_may_relay(const struct session *s, const struct smtp_path *p)
{
	const struct conf_receive_connector *rc = s->rc;

	if (p->postmaster)
		return 1;
	if (conf_accepted_domain(s->cref->conf, p->domain) != NULL)
		return 1;
	if ((rc->auth_mechanism & AUTHM_EXTERNAL_AUTHORITATIVE) &&
	    (rc->permission_groups & PERM_EXCHANGE_SERVERS))
		return 1;
	if (s->auth_user != NULL &&
	    (rc->permission_groups & PERM_EXCHANGE_USERS))
		return 1;
	return 0;
}

/*
 * RecipientValidationEnabled: does the mailbox of an Authoritative
 * domain's recipient exist?  A mailbox exists when its Maildir directory
 * does; the administrator makes it.  Everything else passes here.
 */
static int
session_mailbox_exists(const struct session *s, const struct smtp_path *p)
{
	const struct conf *conf = s->cref->conf;
	const struct conf_accepted_domain *ad;
	char path[4096];
	struct stat st;

	if (!conf->transport.recipient_validation_enabled || p->postmaster)
		return 1;
	ad = conf_accepted_domain(conf, p->domain);
	if (ad == NULL || ad->type != DOMAIN_AUTHORITATIVE)
		return 1;
	if (strncasecmp(p->addr, "postmaster@", 11) == 0)
		return 1; /* RFC 5321 4.5.1 */
	if (maildir_path(ad->mailboxes, p->addr, path, sizeof(path)) < 0)
		return 0;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
session_cmd_rcpt(struct session *s, const struct smtp_cmd *c)
{
	struct smtp_rcpt_args args;
	struct session_rcpt *r;
	const char *why = NULL;
	int st;

	if (!s->have_mail) {
		session_error(s, "503 5.5.1 Need MAIL command");
		return;
	}
	memset(&args, 0, sizeof(args));
	st = smtp_rcpt_parse(c->arg, c->arg_len, &s->ext, &args, &why);
	if (st != SMTP_PARSE_OK) {
		session_parse_error(s, st, why, 1);
		return;
	}
	if (args.path.utf8 && !s->mail->smtputf8) {
		session_error(
		    s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
		return;
	}
	if (s->nrcpts >= session_max_rcpts(s)) {
		session_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (args.path.postmaster && route_postmaster(s->cref->conf) == NULL) {
		session_reply(s, "550 5.1.1 <Postmaster> without a domain "
		                 "cannot be delivered here (no Authoritative "
		                 "accepted domain); write to postmaster@ a "
		                 "domain");
		return;
	}
	if (!session_may_relay(s, &args.path)) {
		session_reply(s, "550 5.7.54 Unable to relay recipient in "
		                 "non-accepted domain");
		return;
	}
	if (!session_mailbox_exists(s, &args.path)) {
		session_reply(s, "550 5.1.1 User unknown");
		return;
	}
	if (s->nrcpts == s->rcpt_cap) {
		size_t ncap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
		struct session_rcpt *nr =
		    reallocarray(s->rcpts, ncap, sizeof(*nr));

		if (nr == NULL) {
			session_reply(s, "452 4.3.1 Insufficient system "
			                 "resources");
			return;
		}
		s->rcpts = nr;
		s->rcpt_cap = ncap;
	}
	r = &s->rcpts[s->nrcpts++];
	memcpy(r->addr, args.path.addr, sizeof(r->addr));
	memcpy(r->orcpt, args.orcpt, sizeof(r->orcpt));
	r->notify = args.notify;
	session_reply(s, "250 2.1.5 Recipient OK");
}

/* Common checks before DATA or the first BDAT; replies on failure. */
static int
session_begin_content(struct session *s)
{
	if (!s->have_mail) {
		session_error(s, "503 5.5.1 Need MAIL command");
		return -1;
	}
	if (s->nrcpts == 0) {
		session_error(s, "554 5.5.1 No valid recipients");
		return -1;
	}
	if (!s->content_started && session_content_start(s) < 0) {
		session_content_release(s);
		session_reply(s, "452 4.3.1 Insufficient system resources");
		return -1;
	}
	return 0;
}

static void
session_cmd_data(struct session *s, const struct smtp_cmd *c)
{
	if (c->arg_len > 0) {
		session_error(s, "501 5.5.4 DATA takes no argument");
		return;
	}
	if (s->used_bdat) {
		session_error(s, "503 5.5.1 DATA cannot follow BDAT");
		return;
	}
	if (session_begin_content(s) < 0)
		return;
	s->used_data = 1;
	s->data_bol = 1;
	s->data_cr = 0;
	s->phase_start = conn_now();
	s->phase_bytes = 0;
	session_enter(s, SESSION_DATA);
	session_reply(s, "354 Start mail input; end with <CRLF>.<CRLF>");
}

static void
session_cmd_bdat(struct session *s, const struct smtp_cmd *c)
{
	uint64_t size;
	int last;

	if (!s->ext.chunking ||
	    smtp_bdat_parse(c->arg, c->arg_len, &size, &last) < 0) {
		/*
		 * Without a size we cannot tell the chunk from the next
		 * command, so the only safe answer is to hang up.
		 */
		session_reply_close(s, "501 5.5.4 Invalid BDAT size; closing "
		                       "connection");
		return;
	}
	if (size > session_max_size(s) ||
	    (s->content_started &&
	        s->content.size + size > session_max_size(s))) {
		session_reply_close(s,
		    "552 5.3.4 Message size exceeds fixed "
		    "maximum message size; closing connection");
		return;
	}
	s->bdat_remaining = size;
	s->bdat_last = last;
	s->bdat_discard = 0;
	s->phase_start = conn_now();
	s->phase_bytes = 0;
	if (s->used_data) {
		s->bdat_discard = 1;
		s->bdat_reply = "503 5.5.1 BDAT cannot follow DATA";
	} else if (!s->have_mail || s->nrcpts == 0) {
		s->bdat_discard = 1;
		s->bdat_reply = !s->have_mail ? "503 5.5.1 Need MAIL command"
		                              : "554 5.5.1 No valid recipients";
	} else if (!s->content_started && session_content_start(s) < 0) {
		session_content_release(s);
		s->bdat_discard = 1;
		s->bdat_reply = "452 4.3.1 Insufficient system resources";
	}
	s->used_bdat = 1;
	session_enter(s, SESSION_BDAT);
}

static void
session_cmd_rset(struct session *s, const struct smtp_cmd *c)
{
	session_reset(s);
	session_reply(s, "250 2.0.0 Resetting");
}

static void
session_cmd_noop(struct session *s, const struct smtp_cmd *c)
{
	session_reply(s, "250 2.0.0 OK");
}

static void
session_cmd_quit(struct session *s, const struct smtp_cmd *c)
{
	session_reply_close(s,
	    "221 2.0.0 %s Service closing transmission "
	    "channel",
	    s->rc->fqdn);
}

static void
session_cmd_vrfy(struct session *s, const struct smtp_cmd *c)
{
	session_reply(s, "252 2.1.5 Cannot VRFY user, but will accept message "
	                 "and attempt delivery");
}

static void
session_cmd_expn(struct session *s, const struct smtp_cmd *c)
{
	session_error(s, "502 5.3.3 Command not implemented");
}

static void
session_cmd_help(struct session *s, const struct smtp_cmd *c)
{
	session_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
	                 "RSET NOOP QUIT VRFY HELP");
	session_reply(s, "214 2.0.0 See RFC 5321");
}

/*
 * RFC 3207.  The 220 goes out in plaintext, then conn.c switches the
 * socket to TLS; it refuses when the client already sent more (the
 * CMD_ENDS_GROUP rule has hung up on that case before we get here).
 */
static void
session_cmd_starttls(struct session *s, const struct smtp_cmd *c)
{
	SSL *ssl;

	if (s->tls) {
		session_error(s, "503 5.5.1 TLS is already active");
		return;
	}
	if (!session_tls_offered(s)) {
		session_error(s, "502 5.5.1 STARTTLS is not offered here");
		return;
	}
	if (c->arg_len > 0) {
		session_error(s, "501 5.5.4 STARTTLS takes no argument");
		return;
	}
	ssl = tls_store_ssl(s->cref->tls, s->rc->tls_certificate_name,
	    s->rc->domain_secure_enabled);
	if (ssl == NULL) {
		session_reply(s, "454 4.7.0 TLS not available due to a local "
		                 "problem");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	session_enter(s, SESSION_TLS);
	if (conn_starttls(s->conn, ssl) < 0)
		session_close(s, "plaintext pipelined after STARTTLS");
}

/*
 * The command table.  CMD_ENDS_GROUP is RFC 2920 section 3.1's list
 * (EHLO, HELO, DATA, VRFY, EXPN, TURN, QUIT, NOOP; TURN is not
 * implemented) plus STARTTLS (RFC 3207: nothing may follow it in
 * plaintext) and AUTH (its exchange needs the 334 first).  CMD_JUNK marks
 * commands that cost a reply and change nothing, which a client may
 * repeat without end: they count against SESSION_JUNK_MAX.
 */
static const struct session_cmd session_commands[] = {
    {SMTP_VERB_HELO, CMD_ENDS_GROUP | CMD_JUNK, session_cmd_helo},
    {SMTP_VERB_EHLO, CMD_ENDS_GROUP | CMD_JUNK, session_cmd_ehlo},
    {SMTP_VERB_MAIL, CMD_NEEDS_HELO | CMD_TRANSACTION, session_cmd_mail},
    {SMTP_VERB_RCPT, CMD_NEEDS_HELO | CMD_TRANSACTION, session_cmd_rcpt},
    {SMTP_VERB_DATA, CMD_NEEDS_HELO | CMD_TRANSACTION | CMD_ENDS_GROUP,
        session_cmd_data},
    {SMTP_VERB_BDAT, CMD_NEEDS_HELO | CMD_TRANSACTION, session_cmd_bdat},
    {SMTP_VERB_RSET, CMD_JUNK, session_cmd_rset},
    {SMTP_VERB_NOOP, CMD_ENDS_GROUP | CMD_JUNK, session_cmd_noop},
    {SMTP_VERB_QUIT, CMD_ENDS_GROUP, session_cmd_quit},
    {SMTP_VERB_VRFY, CMD_ENDS_GROUP | CMD_JUNK, session_cmd_vrfy},
    {SMTP_VERB_EXPN, CMD_ENDS_GROUP | CMD_JUNK, session_cmd_expn},
    {SMTP_VERB_HELP, CMD_JUNK, session_cmd_help},
    {SMTP_VERB_STARTTLS, CMD_NEEDS_HELO | CMD_ENDS_GROUP, session_cmd_starttls},
    {SMTP_VERB_AUTH, CMD_NEEDS_HELO | CMD_ENDS_GROUP, session_cmd_auth},
};

static void
session_dispatch(struct session *s, const char *line, size_t len)
{
	const struct session_cmd *cmd = NULL;
	struct smtp_cmd c;
	int more = conn_input_len(s->conn) > 0;
	size_t shown;

	smtp_cmd_parse(line, len, &c);
	/* An AUTH line is logged without what may be a credential. */
	shown = smtp_cmd_public_len(line, len, &c);
	session_plog(s, '<', line, shown, shown < len ? "+ ***" : NULL);
	if (memchr(line, '\0', len) != NULL) {
		session_error(s, "500 5.5.2 NUL in command line");
		return;
	}
	if (c.bad_separator) {
		session_error(s, "500 5.5.2 Syntax error: a command and its "
		                 "argument are separated by a space");
		return;
	}
	for (size_t i = 0;
	     i < sizeof(session_commands) / sizeof(session_commands[0]); i++)
		if (session_commands[i].verb == c.verb)
			cmd = &session_commands[i];
	/*
	 * RFC 2920: without PIPELINING a client waits for each reply, and
	 * even with it the commands that end a group must come last.  Input
	 * that is already waiting here broke that rule; it is typical of
	 * spam engines and of attacks that count on a server reading ahead,
	 * so hang up.
	 */
	if (more && (!s->pipelining ||
	                (cmd != NULL && (cmd->flags & CMD_ENDS_GROUP)))) {
		session_reply_close(s, "554 5.5.0 Command pipelining is not "
		                       "permitted here; closing connection");
		return;
	}
	if (cmd == NULL) {
		size_t n = c.verb_len < shown ? c.verb_len : shown;

		session_error(s, "500 5.3.3 Unrecognized command '%.*s'",
		    (int)(n > 20 ? 20 : n), c.verb_text);
		return;
	}
	/*
	 * Postfix's smtpd_junk_command_limit: a session that only repeats
	 * commands which change nothing is not sending mail.  The count
	 * starts again with every message accepted (session_committed), so
	 * a long connection that sends RSET between messages is never hit.
	 */
	if ((cmd->flags & CMD_JUNK) && ++s->junk > SESSION_JUNK_MAX) {
		session_plog(s, '*', "junk command limit reached", 26, NULL);
		session_reply_close(s,
		    "421 4.7.0 %s Too many commands without mail, closing "
		    "transmission channel",
		    s->rc->fqdn);
		return;
	}
	if ((cmd->flags & CMD_NEEDS_HELO) && s->helo == NULL) {
		session_error(s, "503 5.5.1 Send hello first");
		return;
	}
	if ((cmd->flags & CMD_TRANSACTION) && session_require_tls(s) < 0)
		return;
	cmd->fn(s, &c);
}

/* --- input ------------------------------------------------------------ */

/* The first byte of a TLS handshake record (RFC 8446 5.1). */
#define SESSION_TLS_HANDSHAKE 0x16

/*
 * A TLS handshake record where a command should start: the client speaks
 * implicit TLS (port 465 style, RFC 8314) to a port that takes plaintext
 * and STARTTLS.  Waiting for a line end would hold it until the timeout,
 * and the bytes are no command: say what happened, in the logs and in a
 * reply a person at a terminal can read, and close.
 */
static void
session_implicit_tls(struct session *s)
{
	static const char what[] = "TLS handshake received where a command "
	                           "was expected (implicit TLS on a "
	                           "STARTTLS port?)";

	session_plog(s, '*', what, sizeof(what) - 1, NULL);
	log_info("session %s from %s: %s", s->id, s->remote, what);
	session_reply_close(s, "554 5.5.0 TLS handshake received: this port "
	                       "takes plaintext SMTP with STARTTLS; closing "
	                       "connection");
}

static void
session_read_commands(struct session *s)
{
	while (s->state == SESSION_COMMAND && !conn_held(s->conn)) {
		size_t len, linelen, used;
		const char *p = conn_peek(s->conn, &len);
		enum lr_status st;
		int found;

		if (len == 0)
			return;
		if (s->skip_line) {
			used = linereader_skip(p, len, &found);
			conn_consume(s->conn, used);
			if (!found)
				return;
			s->skip_line = 0;
			continue;
		}
		if ((unsigned char)p[0] == SESSION_TLS_HANDSHAKE) {
			session_implicit_tls(s);
			return;
		}
		st = linereader_next(p, len, SESSION_CMD_MAX, &linelen, &used);
		if (st == LR_MORE)
			return;
		if (st == LR_BADEOL) {
			session_reply_close(s, "521 5.5.2 Bare CR or LF in "
			                       "command; closing connection");
			return;
		}
		if (st == LR_TOOLONG) {
			s->skip_line = 1;
			session_error(s, "500 5.5.2 Line too long");
			continue;
		}
		{
			char line[SESSION_CMD_MAX + 1];

			/* Copy: dispatch may write, and input may move. */
			memcpy(line, p, linelen);
			line[linelen] = '\0';
			conn_consume(s->conn, used);
			s->phase_start = conn_now();
			if (s->auth_step != 0)
				session_auth_line(s, line, linelen);
			else
				session_dispatch(s, line, linelen);
		}
	}
}

/*
 * DATA: a line that is just "." ends the message (RFC 5321 4.1.1.4), a
 * leading dot is removed (4.5.2).  A line start is what follows CRLF, and
 * only CRLF: after a bare LF or CR the rest is not a line start, so
 * "\n.\r\n" can never end the message; only CRLF "." CRLF does.  Lines
 * are handed on in pieces as they arrive, as many as come between two
 * dots at a line start, so a line may be longer than the input buffer
 * (content.c checks it as it streams past) and a plain body costs no work
 * per line here.  While the spool's writer is behind (content_blocked),
 * input stays unread: the session resumes from session_body_ready().
 */
/*
 * The bytes up to the next line start that begins with a dot (after a
 * CRLF), or all of them: the path for text crlf_scan() did not find plain,
 * whose lines content.c then checks one by one.
 */
static size_t
session_data_to_dot(const char *p, size_t len)
{
	for (const char *lf = p;
	     (lf = memchr(lf, '\n', len - (size_t)(lf - p))) != NULL; lf++)
		if (lf > p && lf[-1] == '\r' && lf + 1 < p + len &&
		    lf[1] == '.')
			return (size_t)(lf - p) + 1;
	return len;
}

static void
session_read_data(struct session *s)
{
	while (s->state == SESSION_DATA) {
		size_t len, take, got;
		struct crlf_scan r;
		int clean = 0;
		/* three bytes decide at a line start: "." CRLF ends it */
		const char *p = conn_peek_some(s->conn, 3, &len);

		if (len == 0 || content_blocked(&s->content))
			return;
		if (s->data_bol && p[0] == '.') {
			if (len < 3 && (len == 1 || p[1] == '\r'))
				return; /* "." or ".\r": the rest decides */
			if (p[1] == '\r' && p[2] == '\n') {
				conn_consume(s->conn, 3);
				s->phase_bytes += 3;
				session_finish(s);
				return;
			}
			conn_consume(s->conn, 1);
			s->phase_bytes++;
			s->data_bol = 0;
			continue;
		}
		/*
		 * Everything up to the next line start that begins with a
		 * dot goes to the content in one piece: only there is there
		 * anything to decide (the end, or a dot to remove).
		 */
		if (s->data_cr && p[0] == '\n') {
			take = 1; /* the LF of a CRLF split between reads */
		} else {
			/*
			 * One pass finds the next CRLF followed by a dot and
			 * checks the lines before it, which content.c then
			 * need not check again.  Text it does not find plain
			 * (or that follows a CR) goes up to the next dot, to
			 * content.c's own checks.
			 */
			r.why = CRLF_BAD;
			if (!s->data_cr)
				crlf_scan(p, len, SIZE_MAX, CRLF_SCAN_DOT, &r);
			clean = r.why != CRLF_BAD;
			take = clean ? r.stop : session_data_to_dot(p, len);
		}
		got = clean ? content_clean_bytes(&s->content, p, take)
		            : content_bytes(&s->content, p, take);
		if (got == 0)
			return; /* blocked */
		/* at a line start: the last bytes taken are a CRLF */
		s->data_bol = p[got - 1] == '\n' &&
		              (got >= 2 ? p[got - 2] == '\r' : s->data_cr);
		s->data_cr = p[got - 1] == '\r';
		s->phase_bytes += got;
		conn_consume(s->conn, got);
		session_charge(s);
	}
}

static void
session_read_bdat(struct session *s)
{
	while (s->state == SESSION_BDAT) {
		size_t len, take;
		const char *p = conn_peek_some(s->conn, 1, &len);

		if (s->bdat_remaining > 0) {
			if (len == 0 ||
			    (!s->bdat_discard && content_blocked(&s->content)))
				return;
			take = len < s->bdat_remaining
			           ? len
			           : (size_t)s->bdat_remaining;
			if (!s->bdat_discard &&
			    (take = content_bytes(&s->content, p, take)) == 0)
				return; /* blocked: session_body_ready resumes
				         */
			conn_consume(s->conn, take);
			s->bdat_remaining -= take;
			s->phase_bytes += take;
			session_charge(s);
			continue;
		}
		session_enter(s, SESSION_COMMAND);
		s->phase_start = conn_now();
		if (s->bdat_discard) {
			session_error(s, "%s", s->bdat_reply);
			session_reset(s);
		} else if (s->bdat_last) {
			session_finish(s);
		} else {
			session_reply(s, "250 2.0.0 %llu octets received",
			    (unsigned long long)s->content.size);
		}
	}
}

/*
 * Per-request deadline: a command must arrive within the inactivity
 * timeout; message content must keep up MinDataRate on average, and a
 * client that stops sending content is inactive from its last byte
 * whatever it sent before (else 35 MB sent would buy 10 hours of holding
 * 35 MB of memory); and the whole connection ends after
 * ConnectionTimeout.
 */
static void
session_arm_deadline(struct session *s)
{
	const struct conf_receive_connector *rc = s->rc;
	double d = s->phase_start + rc->connection_inactivity_timeout;
	double cap = s->started + rc->connection_timeout;

	if (s->state == SESSION_DATA || s->state == SESSION_BDAT) {
		double idle;

		if (s->phase_bytes != s->phase_seen) {
			s->phase_seen = s->phase_bytes;
			s->phase_last = conn_now();
		}
		if (rc->min_data_rate > 0)
			d += (double)s->phase_bytes / (double)rc->min_data_rate;
		idle = (s->phase_last > s->phase_start ? s->phase_last
		                                       : s->phase_start) +
		       rc->connection_inactivity_timeout;
		if (idle < d)
			d = idle;
	}
	conn_set_deadline(s->conn, d < cap ? d : cap);
}

/*
 * Back to commands after a wait of the session's own (a commit, a
 * password check): a draining daemon ends the session instead, since the
 * client is between commands, where shutting down loses nothing.
 */
void
session_resume(struct session *s)
{
	if (s->srv->daemon->draining) {
		session_reply_close(
		    s, "421 4.3.2 %s Service shutting down", s->rc->fqdn);
		return;
	}
	s->phase_start = conn_now();
	session_process(s);
}

void
session_process(struct session *s)
{
	enum session_state before;

	do {
		before = s->state;
		if (s->state == SESSION_COMMAND)
			session_read_commands(s);
		else if (s->state == SESSION_DATA)
			session_read_data(s);
		else if (s->state == SESSION_BDAT)
			session_read_bdat(s);
		else
			break;
	} while (s->state != before && !conn_held(s->conn));
	if (s->state != SESSION_COMMAND && s->state != SESSION_DATA &&
	    s->state != SESSION_BDAT && s->state != SESSION_TLS)
		return;
	/*
	 * The client half-closed: what it sent is processed and answered
	 * (Exim sends "BDAT LAST", the data and QUIT, then a FIN), but a
	 * session that now waits for more input waits for nothing.
	 */
	if (conn_peer_eof(s->conn) && !conn_held(s->conn) &&
	    s->state != SESSION_TLS) {
		session_plog(s, '*', "client finished sending", 23, NULL);
		session_enter(s, SESSION_CLOSING);
		conn_close_after_flush(s->conn);
		return;
	}
	/* The handshake, too, must finish within the inactivity timeout. */
	session_arm_deadline(s);
}

/* --- connection events -------------------------------------------------- */

/*
 * RFC 5321 4.3.1: the client waits for the greeting.  One that talks first
 * is a bot hoping we do not check (GreetingDelay gives it the time to give
 * itself away); refuse it.
 */
static void
session_greet(struct session *s)
{
	const char *banner = s->rc->banner;

	if (conn_socket_has_data(s->conn)) {
		session_reply_close(s,
		    "554 5.5.0 %s Data received before the "
		    "greeting; closing connection",
		    s->rc->fqdn);
		return;
	}
	session_enter(s, SESSION_COMMAND);
	s->phase_start = conn_now();
	if (strncmp(banner, "220", 3) == 0)
		session_reply(s, "%s", banner);
	else
		session_reply(s, "220 %s", banner);
	session_arm_deadline(s);
}

static void
session_on_input(void *arg)
{
	struct session *s = arg;

	if (s->state == SESSION_GREETING) {
		session_greet(s); /* refuses: input is waiting */
		return;
	}
	session_process(s);
}

static void
session_on_closed(void *arg, const char *why)
{
	struct session *s = arg;

	session_close(s, why);
}

static void
session_on_timeout(void *arg)
{
	struct session *s = arg;
	double left;

	if (s->state == SESSION_GREETING) {
		session_greet(s);
		return;
	}
	if (s->state == SESSION_TLS) {
		/* No reply: the client is neither in plaintext nor in TLS. */
		session_plog(
		    s, '*', "timeout during the TLS handshake", 32, NULL);
		session_close(s, "timeout during the TLS handshake");
		return;
	}
	session_plog(s, '*', "timeout", 7, NULL);
	/*
	 * The 421 may wait for a client that does not read, but not keep
	 * the session past ConnectionTimeout by more than a second.
	 */
	left = s->started + s->rc->connection_timeout - conn_now();
	if (left < (double)s->rc->connection_inactivity_timeout)
		conn_set_linger(s->conn, left > 1 ? left : 1);
	session_reply_close(s,
	    "421 4.4.2 %s Timeout exceeded, closing "
	    "connection",
	    s->rc->fqdn);
}

/*
 * RFC 3207 4.2: after the handshake the session starts over: no HELO, no
 * transaction, nothing learnt in plaintext is kept.
 */
static void
session_on_tls_done(void *arg, int ok)
{
	struct session *s = arg;
	const struct tls_peer *peer;
	char info[700];
	SSL *ssl;

	if (!ok || (ssl = conn_ssl(s->conn)) == NULL) {
		s->tls_failed = 1;
		session_plog(s, '*', "TLS handshake failed", 20, NULL);
		session_close(s, "TLS handshake failed");
		return;
	}
	if (s->tlsx == NULL &&
	    (s->tlsx = calloc(1, sizeof(*s->tlsx))) == NULL) {
		session_reply_close(s,
		    "421 4.3.2 %s Insufficient system resources", s->rc->fqdn);
		return;
	}
	tls_peer_describe(ssl, &s->tlsx->peer);
	s->tls = 1;
	session_auth_forget(s);
	s->auth_step = 0;
	session_hello_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	peer = &s->tlsx->peer;
	snprintf(info, sizeof(info),
	    "TLS negotiated: %s %s; peer certificate: %s%s%s%s%s",
	    peer->version, peer->cipher,
	    peer->has_cert ? peer->subject : "none",
	    peer->has_cert ? "; issuer: " : "",
	    peer->has_cert ? peer->issuer : "",
	    peer->has_cert ? "; verification: " : "",
	    peer->has_cert ? X509_verify_cert_error_string(peer->verify) : "");
	session_plog(s, '*', info, strlen(info), "TLS");
	session_enter(s, SESSION_COMMAND);
	s->phase_start = conn_now();
	session_process(s);
}

static void
session_on_flushed(void *arg)
{
	session_close(arg, NULL);
}

/*
 * The client finished sending but may still read.  Whatever it sent is
 * processed and answered, a message being committed gets its 250 (and
 * its RECEIVE row); session_process() closes once nothing is left.
 */
static void
session_on_eof(void *arg)
{
	struct session *s = arg;

	switch (s->state) {
	case SESSION_COMMAND:
	case SESSION_DATA:
	case SESSION_BDAT:
		session_process(s);
		break;
	case SESSION_GREETING:
	case SESSION_TLS:
		session_close(s, "connection closed by peer");
		break;
	default:
		break; /* COMMIT: session_committed() goes on */
	}
}

static const struct conn_ops session_conn_ops = {
    .input = session_on_input,
    .closed = session_on_closed,
    .timeout = session_on_timeout,
    .flushed = session_on_flushed,
    .tls_done = session_on_tls_done,
    .eof = session_on_eof,
};

/*
 * The client's reverse name for our Received header (RFC 5321 4.4), looked
 * up from the connect on so that no reply ever waits for DNS; it is used
 * only if it is known, and forward-confirmed, when a message starts.
 */
static void
session_ptr_done(void *arg, const char *name)
{
	struct session *s = arg;
	char line[300];

	s->ptr_job = NULL;
	/* Without memory the header just names no host, as without DNS. */
	if (name != NULL && s->peer_name == NULL)
		s->peer_name = strdup(name);
	snprintf(line, sizeof(line), "reverse DNS: %s",
	    name != NULL ? name : "no forward-confirmed name");
	session_plog(s, '*', line, strlen(line), "DNS");
}

static void
session_ptr_start(struct session *s)
{
	struct conf_ref *cref = s->cref;
	const char *why = NULL;

	if (cref->resolver == NULL && !cref->resolver_failed &&
	    (cref->resolver = resolver_new(s->srv->daemon->base,
	         cref->conf->transport.resolver, &why)) == NULL) {
		cref->resolver_failed = 1;
		log_err("no reverse look-ups of clients: %s",
		    why != NULL ? why : "resolver failed");
	}
	if (cref->resolver != NULL)
		s->ptr_job = resolver_ptr(cref->resolver,
		    (const struct sockaddr *)&s->peer, session_ptr_done, s);
}

static void
session_ptr_abandon(struct session *s)
{
	if (s->ptr_job == NULL)
		return;
	resolver_ptr_cancel(s->cref->resolver, s->ptr_job);
	s->ptr_job = NULL;
}

/* The session's TLS for the metrics, once it is over. */
static void
session_count_tls(const struct session *s)
{
	const char *policy = s->rc->domain_secure_enabled ? "DomainSecure"
	                     : s->rc->require_tls         ? "RequireTLS"
	                                                  : "opportunistic";

	metrics_add(s->srv->daemon->metrics, METRIC_TLS, "inbound", policy,
	    s->tls          ? "encrypted"
	    : s->tls_failed ? "handshake-failed"
	                    : "none",
	    1);
}

static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	session_count_tls(s);
	session_ptr_abandon(s);
	session_content_release(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	conn_free(s->conn);
	server_account(s->srv, s->rc->name, (struct sockaddr *)&s->peer, -1);
	daemon_conf_release(s->cref);
	server_session_done(s->srv);
	free(s->rcpts);
	free(s->mail);
	free(s->tlsx);
	free(s->peer_name);
	free(s->helo);
	session_auth_forget(s);
	free(s);
}

/*
 * End the session.  While the spool holds a message of ours the session
 * must outlive the commit, so it only turns DEAD and session_committed()
 * finishes the job.
 */
void
session_close(struct session *s, const char *why)
{
	if (s->state == SESSION_DEAD && why != NULL)
		return;
	if (s->state == SESSION_COMMIT) {
		session_enter(s, SESSION_DEAD);
		return;
	}
	session_plog(s, '-', why ? why : "", why ? strlen(why) : 0, NULL);
	session_enter(s, SESSION_DEAD); /* abandons a password check too */
	session_ptr_abandon(s);
	conn_pause(s->conn);
	conn_set_deadline(s->conn, 0);
	if (event_base_once(s->srv->daemon->base, -1, EV_TIMEOUT,
	        session_free_cb, s, NULL) < 0)
		log_panic("session %s: cannot schedule free", s->id);
}

static void
session_begin(struct server *srv, struct conf_ref *cref,
    const struct conf_receive_connector *rc, int fd,
    const struct sockaddr *local, const struct sockaddr *remote,
    const struct session_local *who, const char *refuse)
{
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		daemon_conf_release(cref);
		return;
	}
	s->srv = srv;
	s->cref = cref;
	s->rc = rc;
	s->tc = &cref->conf->transport;
	s->state = SESSION_GREETING;
	s->auth_as = "Anonymous";
	s->auth_mech = "None";
	s->started = conn_now();
	s->phase_start = s->started;
	snprintf(s->id, sizeof(s->id), "%016llX",
	    (unsigned long long)srv->next_session++);
	memcpy(&s->peer, remote,
	    remote->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                  : sizeof(struct sockaddr_in));
	addr_endpoint(local, s->local, sizeof(s->local));
	addr_ip(remote, s->remote_ip, sizeof(s->remote_ip));
	addr_endpoint(remote, s->remote, sizeof(s->remote));
	if (who != NULL) {
		s->is_local = 1;
		s->local_uid = who->uid;
		snprintf(s->local_user, sizeof(s->local_user), "%s", who->user);
		snprintf(s->remote_ip, sizeof(s->remote_ip), "local");
		snprintf(s->remote, sizeof(s->remote), "local:%s(%lu)",
		    who->user, who->uid);
		snprintf(s->local, sizeof(s->local), "local");
	}
	srv->nsessions++;
	metrics_add(srv->daemon->metrics, METRIC_SESSIONS, "inbound", rc->name,
	    NULL, 1);
	s->next = srv->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	srv->sessions = s;
	server_account(srv, rc->name, remote, 1);
	if ((s->conn = conn_new(srv->daemon->base, fd, &session_conn_ops, s)) ==
	    NULL) {
		srv->sessions = s->next;
		if (s->next != NULL)
			s->next->prev = NULL;
		server_account(srv, rc->name, remote, -1);
		daemon_conf_release(cref);
		server_session_done(srv);
		free(s);
		return;
	}
	session_plog(s, '+', "", 0, NULL);
	/* A final reply the client does not read holds nothing for long. */
	conn_set_linger(s->conn, (double)rc->connection_inactivity_timeout);
	if (refuse != NULL) {
		session_reply_close(s, "%s", refuse);
		return;
	}
	session_ptr_start(s);
	if (rc->greeting_delay > 0) {
		/* session_on_timeout() greets when the delay is over. */
		conn_set_deadline(s->conn, s->started + rc->greeting_delay);
		return;
	}
	session_greet(s);
}

void
session_start(struct server *srv, struct conf_ref *cref,
    const struct conf_receive_connector *rc, int fd,
    const struct sockaddr *local, const struct sockaddr *remote,
    const char *refuse)
{
	session_begin(srv, cref, rc, fd, local, remote, NULL, refuse);
}

/*
 * Local submissions are counted under 0.0.0.0, an address no network
 * client has, so they never share a per-source count with 127.0.0.1.
 */
void
session_start_local(struct server *srv, struct conf_ref *cref,
    const struct conf_receive_connector *rc, int fd,
    const struct session_local *who, const char *refuse)
{
	struct sockaddr_in none;

	memset(&none, 0, sizeof(none));
	none.sin_family = AF_INET;
	session_begin(srv, cref, rc, fd, (struct sockaddr *)&none,
	    (struct sockaddr *)&none, who, refuse);
}

void
session_drain_all(struct server *srv)
{
	for (struct session *s = srv->sessions; s != NULL; s = s->next)
		if (s->state == SESSION_COMMAND || s->state == SESSION_GREETING)
			session_reply_close(s,
			    "421 4.3.2 %s Service shutting "
			    "down",
			    s->rc->fqdn);
}
