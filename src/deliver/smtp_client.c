/*
 * smtp_client.c - one outbound SMTP connection (see smtp_client.h), as
 * an explicit state machine over the client I/O layer.
 *
 * Data flow: dqueue.c (a message) -> this file (commands, replies) ->
 * client_content.c (the content as it goes on the wire) -> client_conn.c
 * (socket, TLS) -> the next hop.  Replies come back complete from the
 * bounded reply parser (smtp/reply.c), so a hostile server can only make
 * the client fail a next hop, never grow without bound.
 *
 * Invariants:
 * - the state changes only through client_enter(), which logs every
 *   transition at debug level, sends the command the new state stands
 *   for and sets that state's deadline; every reply goes to the one
 *   handler of the state it arrives in (client_states[]);
 * - every wait has a deadline (GUIDE 4.6): the I/O layer's timer is armed
 *   from the connect to the close, set by client_enter() for each state
 *   and again after every reply, so a next hop that stops answering in
 *   the middle of a pipelined transaction is still timed out;
 * - the TLS decision is tls_policy.c's, asked at each step (EHLO seen,
 *   STARTTLS refused, handshake over); nothing of the envelope leaves
 *   before it says so, and forced TLS never falls back to plaintext;
 * - the protocol code never touches a socket, OpenSSL or libevent;
 * - the client is never freed inside its own call chain: client_end()
 *   fires a deferred call that reports closed() and frees it.
 *
 * Transactions: with PIPELINING, MAIL, every RCPT and the DATA (or the
 * first BDAT chunks) leave in one write and the replies are matched in
 * order (RFC 2920); without it one command waits for its reply.  A
 * transaction that did not end with the server's reply to the content is
 * closed with RSET before the next one.
 *
 * Content streams (client_pump): the stored message is read piece by
 * piece, encoded and written while what waits for the peer stays under
 * CLIENT_CONN_OUTPUT_HIGH; the I/O layer says when it drained
 * (writable).  With CHUNKING every piece becomes a BDAT chunk of its own
 * (RFC 3030), the last one BDAT LAST, at most CLIENT_BDAT_WINDOW of them
 * unanswered; a chunk refused ends the transaction (no more chunks, the
 * replies of those sent are read, then RSET).  A delivery thus holds a
 * piece, the encoder's stage, one chunk and the output bound, whatever
 * the message's size.
 * DANE and MTA-STS (issue 16): the queue hands over the destination's
 * TLSA look-ups and MTA-STS policy (dest_tls.h); the policy of each hop
 * is decided with them before connecting (a hop they rule out is
 * skipped), OpenSSL's DANE verifier gets the hop's records before the
 * handshake (tls_dane_enable), and after it the DANE verdict, or the
 * MTA-STS name check, is one more input of tls_policy_judge().  Under
 * DANE the connector's own CertificateValidation is judged on a PKIX
 * verification of its own (tls_dane_pkix), so DANE never lowers it.
 *
 * STARTTLS (CVE-2021-38371): after the 220, whatever plaintext is already
 * buffered is thrown away before the TLS filter takes the socket, and
 * everything learnt from the plaintext EHLO is forgotten; EHLO is sent
 * again inside TLS.  Credentials are only sent inside TLS when TLS was
 * possible, and never without it under BasicAuthRequireTLS.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "deliver/client_conn.h"
#include "deliver/client_content.h"
#include "deliver/dest_tls.h"
#include "deliver/smtp_client.h"
#include "log/protolog.h"
#include "smtp/command.h"
#include "smtp/reply.h"
#include "tls/tls_client.h"
#include "tls/tls_dane.h"
#include "tls/tls_peer.h"
#include "tls/tls_policy.h"
#include "util/addr.h"
#include "util/base64.h"
#include "util/log.h"

/* A connection attempt gets at most this long (the server may be gone). */
#define CLIENT_CONNECT_SECONDS 30
/* A parked connection waits this long for another message, then QUITs. */
#define CLIENT_IDLE_SECONDS 5
/* The answer to QUIT is a courtesy: it gets this long, then we close. */
#define CLIENT_QUIT_SECONDS 5
/*
 * RCPTs sent ahead of their replies.  Servers read pipelined commands
 * from a socket buffer; a hundred short lines fit in any of them.
 */
#define CLIENT_PIPELINE_MAX 100
/* A recipient the server accepted, waiting for the reply to the content. */
#define RCPT_ACCEPTED (-1)
/*
 * BDAT chunks sent ahead of their replies.  Each is one piece of the
 * stored message (SPOOL_READ_PIECE, 64 KB): enough to keep a window of
 * data in flight over any link, few enough that a refusal wastes little.
 */
#define CLIENT_BDAT_WINDOW 8
/* The largest BDAT chunk: a piece, every bare line end doubled, folds. */
#define CLIENT_CHUNK_MAX (3 * 64 * 1024 + 2 * CLIENT_CONTENT_STAGE)
/* Replies a transaction can be waiting for at once. */
#define CLIENT_EXPECT_RING (CLIENT_PIPELINE_MAX + 4 + CLIENT_BDAT_WINDOW)

enum client_state {
	CS_CONNECT,     /* TCP connect in progress */
	CS_BANNER,      /* waiting for the 220 greeting */
	CS_EHLO,        /* EHLO sent */
	CS_HELO,        /* HELO sent (EHLO was refused) */
	CS_STARTTLS,    /* STARTTLS sent */
	CS_HANDSHAKE,   /* the TLS handshake runs */
	CS_AUTH,        /* AUTH PLAIN, or LOGIN's first step, sent */
	CS_AUTH_USER,   /* LOGIN: username sent */
	CS_AUTH_PASS,   /* LOGIN: password sent */
	CS_READY,       /* between transactions: ask the owner for a message */
	CS_IDLE,        /* parked, waiting for the owner */
	CS_TRANSACTION, /* MAIL, RCPT, DATA/BDAT and the content */
	CS_RSET,        /* RSET sent after an unfinished transaction */
	CS_QUIT,        /* QUIT sent */
	CS_CLOSED,      /* the end: closed() is on its way */
	CS_COUNT
};

/* Which deadline a state waits under. */
enum client_wait {
	WAIT_NONE,    /* nothing to wait for (READY, CLOSED) */
	WAIT_CONNECT, /* CLIENT_CONNECT_SECONDS */
	WAIT_REPLY,   /* the connector's ConnectionInactivityTimeout */
	WAIT_IDLE,    /* CLIENT_IDLE_SECONDS */
	WAIT_QUIT,    /* CLIENT_QUIT_SECONDS */
};

/* What each reply in a transaction answers, in order. */
enum expect { EX_MAIL, EX_RCPT, EX_DATA, EX_DOT, EX_BDAT, EX_BDAT_LAST };

/* How a next hop that cannot be used is left. */
enum client_leave {
	LEAVE_DROP, /* the connection is broken or useless: close it */
	LEAVE_QUIT, /* it works but fails our policy: QUIT, then close */
};

struct smtp_client {
	struct smtp_client_params p;
	struct client_conn *conn;         /* NULL between next hops */
	struct client_conn_later *finish; /* closed(), then free */
	struct tls_policy policy;         /* for the next hop in use */
	enum client_state state;
	size_t hop;      /* index into p.hops */
	int plain_retry; /* this hop again without TLS (handshake failed) */
	int in_tls;
	int delivered;  /* a transaction took place on some hop */
	int next_after; /* after QUIT: the next hop, not the end */
	struct reply reply;
	/* what the server offered (forgotten at STARTTLS) */
	struct {
		int pipelining, chunking, starttls, eightbit, smtputf8, dsn,
		    auth_plain, auth_login, requiretls;
		unsigned long long size;
	} ext;
	/* the transaction */
	struct smtp_client_msg *msg;
	enum expect expect[CLIENT_EXPECT_RING]; /* a ring */
	size_t nexpect, iexpect; /* sent and answered, counting from 0 */
	size_t next_rcpt;        /* the next RCPT to send */
	size_t rcpt_replied;     /* RCPT replies seen */
	size_t accepted;         /* recipients the server took */
	int mail_ok;
	int content_sent;
	/* the content on its way (client_pump) */
	int body_started;  /* DATA sent, or the first BDAT chunk */
	int pumping;       /* more of the content to read and send */
	int bdat;          /* as BDAT chunks (else after DATA's 354) */
	int body_failed;   /* a chunk refused, or nobody to send to */
	unsigned bdat_out; /* chunks not answered yet */
	struct client_content cc;
	char *chunk; /* one BDAT chunk being made, CLIENT_CHUNK_MAX */
	size_t chunk_len;
	/* logs */
	char session_id[24];
	unsigned seq;
	char local[64], remote[64];
	/*
	 * The host connected to, as it was named when the connection was
	 * made (its TLS checks were made against this name).  The hop array
	 * is the queue's and a new look-up rewrites it while connections run:
	 * a parked connection is offered to another destination by these,
	 * never by what the array says now.
	 */
	char connected_host[256];
	int connected_secure;
	char tls_summary[240];
	/* this hop's DANE or MTA-STS would have applied, and "TLS-Required:
	 * No" kept them out of the policy (RFC 8689 3) */
	int relaxed;
	char dane_key[40]; /* tls_dane_digest() of the hop's records */
	/* this connection's TLS, for the session report (client_report) */
	char tls_version[32];
	int tls_verified;
	int reported;
	char peer_helo[256]; /* the name its EHLO reply gave (TLS-RPT) */
	/* the session report's policy (client_report_policy) */
	char rpt_strings[2048], rpt_mx[1024];
	char fail_enh[16];
	char fail_why[512];
	int closing; /* closed() is on its way */
	int reusing; /* the session report of smtp_client_retarget */
};

/* One row per state: its name, its deadline, its reply handler. */
struct client_state_def {
	const char *name;
	enum client_wait wait;
	/* Entering the state: send what it stands for (may be NULL). */
	void (*enter)(struct smtp_client *);
	/* A complete reply in this state; NULL: nothing was asked. */
	void (*reply)(struct smtp_client *, const struct reply *);
};

static const struct client_state_def client_states[CS_COUNT];

static void client_enter(struct smtp_client *, enum client_state);
static void client_leave_hop(struct smtp_client *, enum client_leave,
    const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void client_connect(struct smtp_client *);
static void client_end(struct smtp_client *);
static void client_quit_done(struct smtp_client *);
static void client_transaction_over(struct smtp_client *, int need_rset);
static void client_body_reset(struct smtp_client *);
static void client_expect(struct smtp_client *, enum expect);

static unsigned long long client_sessions;

static const struct resolver_hop *
client_hop(const struct smtp_client *c)
{
	return &c->p.hops[c->hop];
}

/* --- logs and sending ---------------------------------------------------- */

/*
 * The tracking log's tls= of this connection; ";TlsRequired=No" after it
 * where that header kept DANE or MTA-STS out of the policy.
 */
static void __attribute__((format(printf, 2, 3)))
client_summary(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(c->tls_summary, sizeof(c->tls_summary), fmt, ap);
	va_end(ap);
	n = strlen(c->tls_summary);
	if (c->relaxed)
		snprintf(c->tls_summary + n, sizeof(c->tls_summary) - n,
		    ";TlsRequired=No");
}

/*
 * This connection's TLS is decided (it goes on, or it is left for a TLS
 * reason): tell the owner, once per connection, for the partner's TLS
 * posture and the metrics.
 */
static size_t client_add_line(char *out, size_t n, size_t len, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* Append one line ("\n" between lines) when it fits whole. */
static size_t
client_add_line(char *out, size_t n, size_t len, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (n > 0 && n + 1 < len)
		out[n++] = '\n';
	va_start(ap, fmt);
	k = vsnprintf(out + n, len - n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= len - n) {
		out[n > 0 ? n - 1 : 0] = '\0';
		return n > 0 ? n - 1 : 0;
	}
	return n + (size_t)k;
}

/*
 * The policy a session report names (RFC 8460 4.4): DANE where it
 * applied to the host, else the domain's MTA-STS policy (also one that
 * could not be fetched), else none.  May turn a success into the STS
 * failure that kept the policy away.
 */
static void
client_report_policy(struct smtp_client *c, struct smtp_client_session *s)
{
	const struct sts_state *sts = dest_tls_sts(c->p.dest_tls);
	const struct tlsa_result *tlsa = c->policy.tlsa;
	size_t n = 0;

	c->rpt_strings[0] = c->rpt_mx[0] = '\0';
	s->policy_type = "no-policy-found";
	s->policy_domain = c->p.domain;
	s->policy_strings = s->mx_patterns = "";
	s->dane = tls_dane_need_name(c->policy.dane);
	s->sts_mode = sts != NULL && sts->has_policy
	                  ? sts_policy_mode_name(sts->policy.mode)
	                  : "";
	s->sts_id = sts != NULL && sts->has_policy ? sts->id : "";
	if (c->policy.dane != TLS_DANE_OFF) {
		s->policy_type = "tlsa";
		s->policy_domain = tlsa != NULL && tlsa->base[0] != '\0'
		                       ? tlsa->base
		                       : client_hop(c)->host;
		for (size_t i = 0; tlsa != NULL && i < tlsa->n; i++) {
			char rr[TLSA_DATA_MAX * 2 + 32];

			tlsa_rr_format(&tlsa->rr[i], rr, sizeof(rr));
			n = client_add_line(c->rpt_strings, n,
			    sizeof(c->rpt_strings), "%s", rr);
		}
		s->policy_strings = c->rpt_strings;
		return;
	}
	if (sts == NULL)
		sts = dest_tls_sts_failed(c->p.dest_tls);
	if (sts == NULL || (!sts->has_policy && sts->failed == STS_FAILED_NONE))
		return;
	s->policy_type = "sts";
	if (!sts->has_policy) {
		/* the record says there is a policy, and none could be had */
		if (s->result == TLS_RESULT_OK) {
			s->result = sts->failed == STS_FAILED_INVALID
			                ? TLS_RESULT_STS_POLICY_INVALID
			                : TLS_RESULT_STS_POLICY_FETCH_ERROR;
			s->reason = sts->why;
		}
		return;
	}
	n = client_add_line(
	    c->rpt_strings, 0, sizeof(c->rpt_strings), "version: STSv1");
	n = client_add_line(c->rpt_strings, n, sizeof(c->rpt_strings),
	    "mode: %s", sts_policy_mode_name(sts->policy.mode));
	for (size_t i = 0; i < sts->policy.nmx; i++) {
		n = client_add_line(c->rpt_strings, n, sizeof(c->rpt_strings),
		    "mx: %s", sts->policy.mx[i]);
		client_add_line(c->rpt_mx, i == 0 ? 0 : strlen(c->rpt_mx),
		    sizeof(c->rpt_mx), "%s", sts->policy.mx[i]);
	}
	client_add_line(c->rpt_strings, n, sizeof(c->rpt_strings),
	    "max_age: %lu", sts->policy.max_age);
	s->policy_strings = c->rpt_strings;
	s->mx_patterns = c->rpt_mx;
}

/*
 * A failed check as RFC 8460 names it, by the policy that asked for it:
 * a certificate MTA-STS wanted (the connector's floor did not) is
 * sts-webpki-invalid; DANE's is tlsa-invalid (tls_result_from_check).
 */
static enum tls_result
client_result(const struct smtp_client *c, enum tls_check check)
{
	int cert = check == TLS_CHECK_NO_CERT || check == TLS_CHECK_UNTRUSTED ||
	           check == TLS_CHECK_EXPIRED || check == TLS_CHECK_REVOKED ||
	           check == TLS_CHECK_NAME_MISMATCH;

	if (cert && c->policy.sts != TLS_STS_NONE &&
	    c->policy.floor_level < TLS_POLICY_VERIFY)
		return TLS_RESULT_STS_WEBPKI_INVALID;
	return tls_result_from_check(check);
}

static void
client_report(struct smtp_client *c, enum tls_result result, const char *why)
{
	struct smtp_client_session s;

	if (c->reported || c->p.ops->session == NULL)
		return;
	c->reported = 1;
	memset(&s, 0, sizeof(s));
	s.host = client_hop(c)->host;
	s.policy = tls_policy_name(&c->policy);
	s.version = c->tls_version;
	s.verified = c->tls_verified;
	s.result = result;
	s.reason = why != NULL ? why : "";
	s.plain_retry = c->plain_retry;
	s.local = c->local;
	s.remote = c->remote;
	s.helo = c->peer_helo;
	s.reused = c->reusing;
	client_report_policy(c, &s);
	c->p.ops->session(c->p.arg, c, &s);
}

static void
client_log(struct smtp_client *c, char event, const char *data, size_t len,
    const char *context)
{
	if (c->p.protolog == NULL ||
	    c->p.connector->protocol_logging_level != PROTOLOG_VERBOSE)
		return;
	protolog_write(c->p.protolog, c->p.connector->name, c->session_id,
	    c->seq++, c->local, c->remote, event, data, len, context);
}

/* A '*' row: what the client decided and why. */
static void __attribute__((format(printf, 2, 3)))
client_note(struct smtp_client *c, const char *fmt, ...)
{
	char line[700];
	va_list ap;
	int n;

	if (c->p.protolog == NULL ||
	    c->p.connector->protocol_logging_level != PROTOLOG_VERBOSE)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	client_log(c, '*', line,
	    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, NULL);
}

/*
 * How long a connection stays parked.  The test build lets a test make it
 * long (SLUICE_TEST_PARK_SECONDS), so that a connection that gives way to
 * another destination is told from one whose parking time ran out by
 * order alone, however loaded the machine is.
 */
static unsigned
client_idle_seconds(void)
{
#ifdef SLUICE_TEST_HOOKS
	static unsigned seconds;

	if (seconds == 0) {
		const char *env = getenv("SLUICE_TEST_PARK_SECONDS");
		unsigned long v = env != NULL ? strtoul(env, NULL, 10) : 0;

		seconds =
		    v >= 1 && v <= 3600 ? (unsigned)v : CLIENT_IDLE_SECONDS;
	}
	return seconds;
#else
	return CLIENT_IDLE_SECONDS;
#endif
}

/* The deadline of the current state, from now. */
static void
client_arm(struct smtp_client *c)
{
	unsigned seconds = 0;

	if (c->conn == NULL)
		return;
	switch (client_states[c->state].wait) {
	case WAIT_NONE:
		return;
	case WAIT_CONNECT:
		seconds = CLIENT_CONNECT_SECONDS;
		break;
	case WAIT_REPLY:
		seconds = c->p.connector->connection_inactivity_timeout;
		break;
	case WAIT_IDLE:
		seconds = client_idle_seconds();
		break;
	case WAIT_QUIT:
		seconds = CLIENT_QUIT_SECONDS;
		break;
	}
	client_conn_set_timeout(c->conn, seconds);
}

/*
 * The only way the state changes: log it, arm the new state's deadline
 * and do what entering it means (send EHLO in CS_EHLO, ...).
 */
static void
client_enter(struct smtp_client *c, enum client_state next)
{
	log_debug("delivery %s: %s -> %s", c->session_id,
	    client_states[c->state].name, client_states[next].name);
	c->state = next;
	client_arm(c);
	if (client_states[next].enter != NULL)
		client_states[next].enter(c);
}

static void
client_send(struct smtp_client *c, const char *line)
{
	/* Credentials never reach the log. */
	if (strncasecmp(line, "AUTH ", 5) == 0 || c->state == CS_AUTH_USER ||
	    c->state == CS_AUTH_PASS)
		client_log(c, '>', "AUTH ****", 9, NULL);
	else
		client_log(c, '>', line, strlen(line), NULL);
	if (client_conn_write(c->conn, line, strlen(line)) < 0 ||
	    client_conn_write(c->conn, "\r\n", 2) < 0)
		log_warn("delivery %s: out of memory", c->session_id);
}

/* The enhanced code of a reply, or one derived from its basic code. */
static void
client_enh(const struct reply *r, char *enh, size_t len)
{
	if (r->enh[0] != '\0')
		snprintf(enh, len, "%s", r->enh);
	else
		snprintf(enh, len, "%d.0.0", r->code / 100);
}

/*
 * A reply as one line, printable ASCII only (it goes into DSNs and the
 * tracking log): the lines of a multi-line reply joined by spaces, each
 * continuation without its repeated enhanced code, so that what a next
 * hop says after its first line (often its own queue id) is kept.
 */
static void
client_status(const struct reply *r, char *out, size_t len)
{
	int w = r->enh[0] != '\0'
	            ? snprintf(out, len, "%d %s ", r->code, r->enh)
	            : snprintf(out, len, "%d ", r->code);
	size_t n = w > 0 && (size_t)w < len ? (size_t)w : 0;
	size_t el = strlen(r->enh);

	for (size_t i = 0; i < r->text_len && n + 1 < len; i++) {
		unsigned char ch = (unsigned char)r->text[i];

		if (ch == '\n') {
			out[n++] = ' ';
			if (el > 0 && r->text_len - i - 1 > el &&
			    memcmp(r->text + i + 1, r->enh, el) == 0 &&
			    r->text[i + 1 + el] == ' ')
				i += el + 1;
			continue;
		}
		out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[n < len ? n : len - 1] = '\0';
}

/* --- recipients and messages ------------------------------------------- */

static void
client_set_rcpt(struct smtp_client_rcpt *rc, const struct reply *r)
{
	rc->code = r->code;
	client_enh(r, rc->enh, sizeof(rc->enh));
	client_status(r, rc->status, sizeof(rc->status));
}

static void
client_set_rcpt_text(
    struct smtp_client_rcpt *rc, int code, const char *enh, const char *text)
{
	rc->code = code;
	snprintf(rc->enh, sizeof(rc->enh), "%s", enh);
	snprintf(rc->status, sizeof(rc->status), "%d %s %s", code, enh, text);
}

/* The message is finished: hand the outcomes back. */
static void
client_msg_done(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;

	c->msg = NULL;
	c->nexpect = c->iexpect = 0;
	client_body_reset(c);
	if (m != NULL)
		c->p.ops->done(c->p.arg, c, m);
}

/* Every recipient without an outcome yet gets this one. */
static void
client_fail_rest(
    struct smtp_client *c, int code, const char *enh, const char *text)
{
	if (c->msg == NULL)
		return;
	for (size_t i = 0; i < c->msg->nrcpts; i++)
		if (c->msg->rcpts[i].code <= 0)
			client_set_rcpt_text(
			    &c->msg->rcpts[i], code, enh, text);
}

/* --- the end of a connection, of a next hop, of the client -------------- */

static void
client_free(struct smtp_client *c)
{
	client_conn_free(c->conn);
	client_conn_later_free(c->finish);
	dest_tls_unref(c->p.dest_tls);
	free(c);
}

static void
client_finish_cb(void *arg)
{
	struct smtp_client *c = arg;

	c->p.ops->closed(c->p.arg, c, c->delivered, c->fail_enh, c->fail_why);
	client_free(c);
}

/* Close the connection, if any. */
static void
client_drop_connection(struct smtp_client *c)
{
	if (c->conn != NULL) {
		client_log(c, '-', NULL, 0, NULL);
		client_conn_free(c->conn);
		c->conn = NULL;
	}
	c->in_tls = 0;
}

/* The end: report from a fresh loop turn. */
static void
client_end(struct smtp_client *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->msg != NULL) {
		client_fail_rest(c, 451, c->fail_enh[0] ? c->fail_enh : "4.4.2",
		    c->fail_why[0] ? c->fail_why : "connection lost");
		client_msg_done(c);
	}
	client_drop_connection(c);
	client_enter(c, CS_CLOSED);
	client_conn_later_fire(c->finish);
}

/* The connection is over: the next hop, or the end. */
static void
client_next_hop(struct smtp_client *c)
{
	client_drop_connection(c);
	c->plain_retry = 0;
	c->next_after = 0;
	if (c->msg != NULL || c->delivered || ++c->hop >= c->p.nhops) {
		client_end(c);
		return;
	}
	client_note(c, "trying the next hop");
	client_connect(c);
}

/*
 * Why this next hop failed, where: the DSN and Get-Queue show this line.
 * Returns where the reason starts in c->fail_why (after the "where").
 */
static size_t
client_vrecord(
    struct smtp_client *c, const char *enh, const char *fmt, va_list ap)
{
	int n = snprintf(c->fail_why, sizeof(c->fail_why),
	    "send connector %s, host %s (%s): ", c->p.connector->name,
	    c->hop < c->p.nhops ? client_hop(c)->host : "?", c->remote);

	if (n < 0 || (size_t)n >= sizeof(c->fail_why))
		n = 0;
	vsnprintf(c->fail_why + n, sizeof(c->fail_why) - (size_t)n, fmt, ap);
	snprintf(c->fail_enh, sizeof(c->fail_enh), "%s", enh);
	log_info("delivery %s via %s: %s", c->session_id, c->p.connector->name,
	    c->fail_why);
	return (size_t)n;
}

static void __attribute__((format(printf, 3, 4)))
client_record(struct smtp_client *c, const char *enh, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_vrecord(c, enh, fmt, ap);
	va_end(ap);
}

/*
 * This next hop cannot be used: note why and go on to the next one.  A
 * message in flight means the hop was already in use: its recipients are
 * deferred and the connection ends (the queue retries them).  LEAVE_QUIT
 * says goodbye first, as RFC 5321 4.1.1.10 asks, so that the next hop
 * logs a client that left rather than a broken one.
 */
static void
client_leave_hop(struct smtp_client *c, enum client_leave how, const char *enh,
    const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (c->state == CS_QUIT) {
		/* Leaving already; the reason is the one that sent QUIT. */
		client_quit_done(c);
		return;
	}
	va_start(ap, fmt);
	n = client_vrecord(c, enh, fmt, ap);
	va_end(ap);
	client_note(c, "leaving this next hop (%s): %s",
	    how == LEAVE_QUIT ? "QUIT" : "closing", c->fail_why + n);
	if (c->state == CS_CLOSED) {
		client_end(c);
		return;
	}
	if (how == LEAVE_QUIT && c->conn != NULL && c->msg == NULL) {
		c->next_after = !c->delivered;
		client_enter(c, CS_QUIT);
		return;
	}
	client_next_hop(c);
}

/* --- greeting, EHLO, HELO ------------------------------------------------ */

static void
client_reply_banner(struct smtp_client *c, const struct reply *r)
{
	char enh[16];

	client_enh(r, enh, sizeof(enh));
	if (r->code != 220) {
		client_leave_hop(c, LEAVE_QUIT,
		    r->code / 100 == 5 ? "5.0.0" : enh, "greeting %d %.200s",
		    r->code, r->text);
		return;
	}
	client_enter(c, CS_EHLO);
}

static void
client_enter_ehlo(struct smtp_client *c)
{
	char line[300];

	memset(&c->ext, 0, sizeof(c->ext));
	snprintf(line, sizeof(line), "EHLO %s", c->p.connector->fqdn);
	client_send(c, line);
}

static void
client_enter_helo(struct smtp_client *c)
{
	char line[300];

	memset(&c->ext, 0, sizeof(c->ext));
	snprintf(line, sizeof(line), "HELO %s", c->p.connector->fqdn);
	client_send(c, line);
}

/* Read the extensions from an EHLO reply (first line is the greeting). */
static void
client_parse_ehlo(struct smtp_client *c, const struct reply *r)
{
	const char *p = memchr(r->text, '\n', r->text_len);
	const char *end = r->text + r->text_len;
	size_t n = 0;

	/* "mx.example.com Hello ...": the name, printable ASCII only */
	while (n < r->text_len && n + 1 < sizeof(c->peer_helo) &&
	       r->text[n] > 0x20 && r->text[n] < 0x7f) {
		c->peer_helo[n] = r->text[n];
		n++;
	}
	c->peer_helo[n] = '\0';

	while (p != NULL && p < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', end - line);
		size_t len = (eol != NULL ? eol : end) - line;
		char kw[64];
		size_t k = 0;

		while (k < len && k + 1 < sizeof(kw) && line[k] != ' ' &&
		       line[k] != '=') {
			kw[k] = (char)toupper((unsigned char)line[k]);
			k++;
		}
		kw[k] = '\0';
		if (strcmp(kw, "PIPELINING") == 0)
			c->ext.pipelining = 1;
		else if (strcmp(kw, "CHUNKING") == 0)
			c->ext.chunking = 1;
		else if (strcmp(kw, "STARTTLS") == 0)
			c->ext.starttls = 1;
		else if (strcmp(kw, "8BITMIME") == 0)
			c->ext.eightbit = 1;
		else if (strcmp(kw, "SMTPUTF8") == 0)
			c->ext.smtputf8 = 1;
		else if (strcmp(kw, "DSN") == 0)
			c->ext.dsn = 1;
		else if (strcmp(kw, "REQUIRETLS") == 0)
			c->ext.requiretls = 1;
		else if (strcmp(kw, "SIZE") == 0 && k < len)
			c->ext.size = strtoull(line + k + 1, NULL, 10);
		else if (strcmp(kw, "AUTH") == 0) {
			for (size_t i = k; i < len; i++) {
				if (len - i >= 6 &&
				    strncasecmp(line + i, " PLAIN", 6) == 0)
					c->ext.auth_plain = 1;
				if (len - i >= 6 &&
				    strncasecmp(line + i, " LOGIN", 6) == 0)
					c->ext.auth_login = 1;
			}
		}
		p = eol;
	}
}

static int
client_wants_auth(const struct smtp_client *c)
{
	return c->p.connector->smart_host_auth_mechanism != SMARTHOST_AUTH_NONE;
}

/*
 * EHLO (or HELO) done, in plaintext or in TLS: TLS as the policy says,
 * then AUTH when the connector asks for it, then the first message.
 */
static void
client_after_ehlo(struct smtp_client *c)
{
	const struct conf_send_connector *sc = c->p.connector;

	if (!c->in_tls) {
		struct tls_facts f = {
		    .stage = TLS_STAGE_EHLO,
		    .offered = c->ext.starttls,
		    .unavailable = c->p.tls == NULL,
		    .plain_retry = c->plain_retry,
		};
		char why[300];

		switch (
		    tls_policy_judge(&c->policy, &f, NULL, why, sizeof(why))) {
		case TLS_ACTION_STARTTLS:
			client_note(c, "STARTTLS offered: starting TLS");
			client_enter(c, CS_STARTTLS);
			return;
		case TLS_ACTION_DEFER:
			client_report(c,
			    f.offered ? TLS_RESULT_VALIDATION_FAILURE
			              : TLS_RESULT_STARTTLS_NOT_SUPPORTED,
			    why);
			client_leave_hop(c, LEAVE_QUIT, "4.7.10", "%s", why);
			return;
		default:
			client_note(c, "going on in plaintext (%s)",
			    c->policy.level == TLS_POLICY_NONE
			        ? "IgnoreSTARTTLS"
			    : c->plain_retry  ? "retry after a failed handshake"
			    : c->ext.starttls ? "no TLS context"
			                      : "no STARTTLS offered");
			break;
		}
	}
	/* TLS is as the policy wants it: this session goes on. */
	client_report(c, TLS_RESULT_OK, NULL);
	if (client_wants_auth(c)) {
		if (!c->in_tls && sc->smart_host_auth_mechanism ==
		                      SMARTHOST_AUTH_BASIC_REQUIRE_TLS) {
			client_leave_hop(c, LEAVE_QUIT, "4.7.10",
			    "BasicAuthRequireTLS and no TLS: credentials not "
			    "sent");
			return;
		}
		if (c->p.auth_user == NULL || c->p.auth_pass == NULL) {
			client_leave_hop(c, LEAVE_QUIT, "4.7.0",
			    "no credentials in AuthenticationCredential");
			return;
		}
		if (!c->ext.auth_plain && !c->ext.auth_login) {
			client_leave_hop(c, LEAVE_QUIT, "4.7.0",
			    "the next hop offers no AUTH mechanism we use "
			    "(PLAIN, LOGIN)");
			return;
		}
		client_enter(c, CS_AUTH);
		return;
	}
	client_enter(c, CS_READY);
}

static void
client_reply_ehlo(struct smtp_client *c, const struct reply *r)
{
	char enh[16];

	client_enh(r, enh, sizeof(enh));
	if (r->code / 100 == 2) {
		client_parse_ehlo(c, r);
		client_after_ehlo(c);
		return;
	}
	if (c->in_tls) {
		client_leave_hop(c, LEAVE_QUIT, enh,
		    "EHLO after STARTTLS: %d %.200s", r->code, r->text);
		return;
	}
	client_enter(c, CS_HELO);
}

static void
client_reply_helo(struct smtp_client *c, const struct reply *r)
{
	char enh[16];

	client_enh(r, enh, sizeof(enh));
	if (r->code / 100 != 2) {
		client_leave_hop(c, LEAVE_QUIT, enh, "HELO refused: %d %.200s",
		    r->code, r->text);
		return;
	}
	memset(&c->ext, 0, sizeof(c->ext));
	client_after_ehlo(c);
}

/* --- STARTTLS --------------------------------------------------------- */

static void
client_enter_starttls(struct smtp_client *c)
{
	client_send(c, "STARTTLS");
}

/*
 * The 220 to STARTTLS came: the I/O layer discards any plaintext that
 * followed it (an injection, CVE-2021-38371) and the TLS filter takes the
 * socket.
 */
static void
client_start_tls(struct smtp_client *c)
{
	struct tls_client_target t;
	const char *why = NULL;
	SSL *ssl;
	long discarded;

	memset(&t, 0, sizeof(t));
	t.host = client_hop(c)->host;
	t.port = addr_port((const struct sockaddr *)&client_hop(c)->addr);
	t.cert_name = c->policy.cert_name;
	t.domain_secure = c->policy.partner_trust;
	if (c->policy.dane == TLS_DANE_VERIFY) {
		tls_dane_digest(
		    c->policy.tlsa, c->dane_key, sizeof(c->dane_key));
		t.dane = c->dane_key;
	}
	if ((ssl = tls_client_ssl(c->p.tls, &t, c->p.certs, &why)) == NULL) {
		client_leave_hop(c, LEAVE_DROP, "4.7.5", "cannot start TLS: %s",
		    why != NULL ? why : "?");
		return;
	}
	/* DANE: OpenSSL's verifier gets the hop's records (RFC 7672 3). */
	if (c->policy.dane == TLS_DANE_VERIFY &&
	    tls_dane_enable(ssl, c->policy.tlsa, t.host, &why) < 0) {
		SSL_free(ssl);
		client_report(c, TLS_RESULT_TLSA_INVALID,
		    why != NULL ? why : "cannot use the TLSA records");
		client_leave_hop(c, LEAVE_DROP, "4.7.5", "DANE: %s",
		    why != NULL ? why : "cannot use the TLSA records");
		return;
	}
	if ((discarded = client_conn_starttls(c->conn, ssl)) < 0) {
		client_leave_hop(
		    c, LEAVE_DROP, "4.3.0", "cannot start TLS: out of memory");
		return;
	}
	if (discarded > 0)
		client_log(
		    c, '*', "discarded plaintext after STARTTLS", 34, NULL);
	client_enter(c, CS_HANDSHAKE);
}

static void
client_reply_starttls(struct smtp_client *c, const struct reply *r)
{
	char text[260], why[300];
	struct tls_facts f = {.stage = TLS_STAGE_REFUSED, .error = text};

	if (r->code == 220) {
		client_start_tls(c);
		return;
	}
	snprintf(text, sizeof(text), "%d %.200s", r->code, r->text);
	if (tls_policy_judge(&c->policy, &f, NULL, why, sizeof(why)) ==
	    TLS_ACTION_DEFER) {
		client_report(c, TLS_RESULT_STARTTLS_NOT_SUPPORTED, why);
		client_leave_hop(c, LEAVE_QUIT, "4.7.10", "%s", why);
		return;
	}
	client_note(c, "%s: going on in plaintext (opportunistic)", why);
	c->plain_retry = 1; /* go on in plaintext */
	client_summary(c, "tls=opportunistic:refused");
	client_after_ehlo(c);
}

/* The same host again, in plaintext: opportunistic TLS never stops mail. */
static void
client_retry_plaintext(struct smtp_client *c)
{
	client_note(c, "retrying this host in plaintext");
	client_drop_connection(c);
	c->plain_retry = 1;
	client_connect(c);
}

/* The handshake is over (error: why it failed): what the policy says. */
static void
client_handshake_done(struct smtp_client *c, const char *error)
{
	SSL *ssl = client_conn_ssl(c->conn);
	int ok = error == NULL;
	struct tls_peer peer;
	struct tls_outcome o;
	struct tls_facts f = {
	    .stage = TLS_STAGE_HANDSHAKE, .outcome = &o, .error = error};
	char why[600], dane_why[400] = "", match[80] = "";
	enum tls_check check;
	enum tls_action action;

	tls_client_done(ssl, ok);
	tls_peer_outcome(ssl, ok, &o);
	if (ok && c->policy.dane == TLS_DANE_VERIFY) {
		f.dane_ok = tls_dane_verified(ssl, client_hop(c)->host, match,
		    sizeof(match), dane_why, sizeof(dane_why));
		f.dane_why = dane_why;
		/* DANE's verdict is not the floor's: PKIX for that. */
		if (c->policy.floor_level >= TLS_POLICY_VERIFY)
			o.verify = tls_dane_pkix(ssl, &o.verify_depth);
	}
	action = tls_policy_judge(&c->policy, &f, &check, why, sizeof(why));
	if (!ok) {
		client_report(c, TLS_RESULT_VALIDATION_FAILURE, why);
		client_summary(
		    c, "tls=%s:failed;handshake", tls_policy_name(&c->policy));
		client_log(c, '*', why, strlen(why), NULL);
		if (action == TLS_ACTION_RETRY_PLAINTEXT) {
			client_record(c, "4.7.10", "%s", why);
			client_retry_plaintext(c);
			return;
		}
		client_leave_hop(c, LEAVE_DROP, "4.7.10", "%s", why);
		return;
	}
	tls_peer_describe(ssl, &peer);
	snprintf(c->tls_version, sizeof(c->tls_version), "%s", peer.version);
	/* Verified: what MTA-STS asks of a next hop (a trusted chain naming
	 * the host), or what DomainValidation asked and got. */
	c->tls_verified =
	    tls_evaluate(TLS_AUTH_DOMAIN_VALIDATION, &o, NULL,
	        client_hop(c)->host, NULL, 0) == TLS_CHECK_OK ||
	    (c->policy.level >= TLS_POLICY_DOMAIN && check == TLS_CHECK_OK);
	client_summary(c, "tls=%s:%s;%s;%s%s", tls_policy_name(&c->policy),
	    check == TLS_CHECK_OK
	        ? (tls_policy_authenticates(&c->policy) ? "verified"
	                                                : "encrypted")
	        : tls_check_name(check),
	    peer.version, peer.cipher, peer.resumed ? ";resumed" : "");
	client_note(c, "TLS %s %s; peer %s; issuer %s; expires %s; %s%s%s",
	    peer.version, peer.cipher,
	    peer.has_cert ? peer.subject : "(no certificate)", peer.issuer,
	    peer.not_after, check == TLS_CHECK_OK ? "policy met" : why,
	    match[0] != '\0' ? "; DANE: matched " : "", match);
	/* MTA-STS testing: delivered as usual, the failure reported. */
	if (check != TLS_CHECK_OK && action == TLS_ACTION_SEND &&
	    c->policy.sts == TLS_STS_TESTING) {
		/* the report is what testing is for (RFC 8461 5) */
		client_report(c,
		    check == TLS_CHECK_STS_MX ? TLS_RESULT_VALIDATION_FAILURE
		                              : client_result(c, check),
		    why);
		log_info("delivery %s via %s: host %s: %s (reported, not "
		         "enforced)",
		    c->session_id, c->p.connector->name, client_hop(c)->host,
		    why);
	}
	c->in_tls = 1;
	if (action == TLS_ACTION_DEFER) {
		client_report(c, client_result(c, check), why);
		client_leave_hop(c, LEAVE_QUIT, "4.7.5", "%s", why);
		return;
	}
	client_enter(c, CS_EHLO);
}

/* --- AUTH ------------------------------------------------------------- */

static void
client_enter_auth(struct smtp_client *c)
{
	char line[1200], raw[700], b64[1000];
	int n;

	if (!c->ext.auth_plain) {
		client_send(c, "AUTH LOGIN");
		return;
	}
	n = snprintf(
	    raw, sizeof(raw), "%c%s%c%s", 0, c->p.auth_user, 0, c->p.auth_pass);
	if (n < 0 || (size_t)n >= sizeof(raw)) {
		explicit_bzero(raw, sizeof(raw));
		client_leave_hop(
		    c, LEAVE_DROP, "4.7.0", "credentials too long");
		return;
	}
	base64_encode(raw, (size_t)n, b64, sizeof(b64));
	snprintf(line, sizeof(line), "AUTH PLAIN %s", b64);
	client_send(c, line);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	explicit_bzero(line, sizeof(line));
}

static void
client_auth_failed(struct smtp_client *c, const struct reply *r)
{
	client_leave_hop(c, LEAVE_QUIT, "4.7.0",
	    "authentication failed: %d %.200s", r->code, r->text);
}

static void
client_reply_auth(struct smtp_client *c, const struct reply *r)
{
	if (r->code == 334 && c->ext.auth_login && !c->ext.auth_plain) {
		client_enter(c, CS_AUTH_USER);
		return;
	}
	/* the answer to PLAIN */
	if (r->code / 100 != 2) {
		client_auth_failed(c, r);
		return;
	}
	client_enter(c, CS_READY);
}

static void
client_enter_auth_user(struct smtp_client *c)
{
	char b64[400];

	base64_encode(c->p.auth_user, strlen(c->p.auth_user), b64, sizeof(b64));
	client_send(c, b64);
	explicit_bzero(b64, sizeof(b64));
}

static void
client_reply_auth_user(struct smtp_client *c, const struct reply *r)
{
	if (r->code != 334) {
		client_auth_failed(c, r);
		return;
	}
	client_enter(c, CS_AUTH_PASS);
}

static void
client_enter_auth_pass(struct smtp_client *c)
{
	char b64[400];

	base64_encode(c->p.auth_pass, strlen(c->p.auth_pass), b64, sizeof(b64));
	client_send(c, b64);
	explicit_bzero(b64, sizeof(b64));
}

static void
client_reply_auth_pass(struct smtp_client *c, const struct reply *r)
{
	if (r->code / 100 != 2) {
		client_auth_failed(c, r);
		return;
	}
	client_enter(c, CS_READY);
}

/* --- transactions ---------------------------------------------------- */

/* MAIL FROM with the parameters the server understands. */
static void
client_mail_line(struct smtp_client *c, char *line, size_t len)
{
	const struct smtp_client_msg *m = c->msg;
	size_t n = (size_t)snprintf(line, len, "MAIL FROM:<%s>", m->sender);
	char x[320];

	if (c->ext.size && n < len)
		n += (size_t)snprintf(line + n, len - n, " SIZE=%llu", m->size);
	if (m->body_type == SMTP_BODY_8BITMIME && c->ext.eightbit && n < len)
		n += (size_t)snprintf(line + n, len - n, " BODY=8BITMIME");
	if (m->smtputf8 && c->ext.smtputf8 && n < len)
		n += (size_t)snprintf(line + n, len - n, " SMTPUTF8");
	if (c->ext.dsn && m->ret != SMTP_RET_NONE && n < len)
		n += (size_t)snprintf(line + n, len - n, " RET=%s",
		    m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	if (c->ext.dsn && m->envid[0] != '\0' && n < len &&
	    smtp_xtext_encode(m->envid, x, sizeof(x)) >= 0)
		n += (size_t)snprintf(line + n, len - n, " ENVID=%s", x);
	/* client_can_take() let it come this far only where it may go */
	if (m->requiretls && n < len)
		snprintf(line + n, len - n, " REQUIRETLS");
}

static void
client_rcpt_line(struct smtp_client *c, const struct smtp_client_rcpt *rc,
    char *line, size_t len)
{
	size_t n = (size_t)snprintf(line, len, "RCPT TO:<%s>", rc->addr);
	char x[1600];

	if (!c->ext.dsn)
		return;
	if (rc->notify != 0 && n < len) {
		n += (size_t)snprintf(line + n, len - n, " NOTIFY=");
		if (rc->notify & SMTP_NOTIFY_NEVER)
			n += (size_t)snprintf(line + n, len - n, "NEVER");
		else
			n += (size_t)snprintf(line + n, len - n, "%s%s%s",
			    rc->notify & SMTP_NOTIFY_SUCCESS ? "SUCCESS," : "",
			    rc->notify & SMTP_NOTIFY_FAILURE ? "FAILURE," : "",
			    rc->notify & SMTP_NOTIFY_DELAY ? "DELAY," : "");
		if (n > 0 && n < len && line[n - 1] == ',')
			line[--n] = '\0';
	}
	if (rc->orcpt[0] != '\0' && n < len) {
		const char *semi = strchr(rc->orcpt, ';');

		if (semi != NULL &&
		    smtp_xtext_encode(semi + 1, x, sizeof(x)) >= 0)
			snprintf(line + n, len - n, " ORCPT=%.*s;%s",
			    (int)(semi - rc->orcpt), rc->orcpt, x);
	}
}

/* The encoder's output goes straight to the connection. */
static int
client_content_sink_conn(void *arg, const char *p, size_t n)
{
	return client_conn_write(arg, p, n);
}

/*
 * What the content encoder does for this connector: our organisation's
 * headers stay inside it (SPEC 3; Exchange strips its own at the
 * boundary) unless the next hop is of the same organisation.
 */
static unsigned
client_content_flags(const struct smtp_client *c)
{
	return c->p.connector->cloud_services_mail_enabled
	           ? 0
	           : CLIENT_CONTENT_STRIP_ORG;
}

/* The encoder's output for BDAT: the chunk being made. */
static int
client_content_sink_chunk(void *arg, const char *p, size_t n)
{
	struct smtp_client *c = arg;

	if (n > CLIENT_CHUNK_MAX - c->chunk_len)
		return -1; /* cannot happen: a piece is bounded */
	memcpy(c->chunk + c->chunk_len, p, n);
	c->chunk_len += n;
	return 0;
}

/* The content is done with, whatever the end: back to nothing held. */
static void
client_body_reset(struct smtp_client *c)
{
	c->body_started = 0;
	c->pumping = 0;
	c->bdat = 0;
	c->body_failed = 0;
	c->bdat_out = 0;
	free(c->chunk);
	c->chunk = NULL;
	c->chunk_len = 0;
}

/* Send the chunk made so far, as BDAT n [LAST]. */
static int
client_send_chunk(struct smtp_client *c, int last)
{
	char line[64];

	snprintf(line, sizeof(line), "BDAT %zu%s", c->chunk_len,
	    last ? " LAST" : "");
	client_send(c, line);
	if (c->chunk_len > 0 &&
	    client_conn_write(c->conn, c->chunk, c->chunk_len) < 0)
		return -1;
	c->chunk_len = 0;
	client_expect(c, last ? EX_BDAT_LAST : EX_BDAT);
	if (!last)
		c->bdat_out++;
	return 0;
}

static void client_pump(struct smtp_client *);

/*
 * Start sending the content: after DATA's 354, or right away as BDAT
 * chunks (with PIPELINING, behind the RCPTs).
 */
static int
client_send_content(struct smtp_client *c, int bdat)
{
	unsigned flags = client_content_flags(c);

	c->content_sent = 1;
	c->body_started = 1;
	c->pumping = 1;
	c->bdat = bdat;
	if (bdat) {
		if ((c->chunk = malloc(CLIENT_CHUNK_MAX)) == NULL)
			return -1;
		client_content_init(
		    &c->cc, flags, client_content_sink_chunk, c);
	} else {
		client_content_init(&c->cc, flags | CLIENT_CONTENT_DOTSTUFF,
		    client_content_sink_conn, c->conn);
	}
	client_pump(c);
	return 0;
}

/*
 * Read, encode and send the content while the output is below its high
 * mark (and, for BDAT, fewer than CLIENT_BDAT_WINDOW chunks wait for a
 * reply); the writable event or a chunk's reply calls it again.
 */
static void
client_pump(struct smtp_client *c)
{
	struct client_conn *conn = c->conn;
	int failed = 0;

	while (!failed && c->pumping && c->conn == conn && conn != NULL) {
		const char *p;
		size_t n;
		int rc;

		if (client_conn_output_len(conn) >= CLIENT_CONN_OUTPUT_HIGH ||
		    (c->bdat && c->bdat_out >= CLIENT_BDAT_WINDOW))
			return;
		rc = c->msg->read(c->msg->src, &p, &n);
		if (rc < 0) {
			/* Never end a message we could not read whole. */
			client_body_reset(c);
			client_leave_hop(c, LEAVE_DROP, "4.3.0",
			    "the message cannot be read from the queue");
			return;
		}
		if (rc == 0) {
			if (client_content_end(&c->cc) < 0 ||
			    (c->bdat ? client_send_chunk(c, 1)
			             : client_conn_write(conn, ".\r\n", 3)) <
			        0) {
				failed = 1;
				break;
			}
			c->pumping = 0;
			if (!c->bdat) {
				client_log(c, '>', ".", 1, "message content");
				client_expect(c, EX_DOT);
			}
			return;
		}
		if (client_content_feed(&c->cc, p, n) < 0 ||
		    (c->bdat && c->chunk_len > 0 &&
		        client_send_chunk(c, 0) < 0))
			failed = 1;
	}
	if (failed) {
		client_body_reset(c);
		client_leave_hop(c, LEAVE_DROP, "4.3.0", "out of memory");
	}
}

/* The I/O layer drained: a paused content goes on. */
static void
client_writable_cb(void *arg)
{
	struct smtp_client *c = arg;

	if (c->pumping && c->state == CS_TRANSACTION)
		client_pump(c);
}

/* Nothing more of the content will do any good: stop sending it. */
static void
client_body_stop(struct smtp_client *c)
{
	if (c->pumping) {
		c->pumping = 0;
		c->body_failed = 1;
	}
}

static void
client_expect(struct smtp_client *c, enum expect ex)
{
	c->expect[c->nexpect++ % CLIENT_EXPECT_RING] = ex;
}

static void
client_send_rcpt(struct smtp_client *c)
{
	char line[2048];

	client_rcpt_line(c, &c->msg->rcpts[c->next_rcpt++], line, sizeof(line));
	client_send(c, line);
	client_expect(c, EX_RCPT);
}

/* After the RCPTs: the whole message as BDAT LAST, or DATA. */
static void
client_send_body(struct smtp_client *c)
{
	if (!c->ext.chunking) {
		client_send(c, "DATA");
		client_expect(c, EX_DATA);
	} else if (client_send_content(c, 1) < 0) {
		client_body_reset(c);
		client_leave_hop(c, LEAVE_DROP, "4.3.0", "out of memory");
	}
}

/* Without pipelining (or past the pipeline's depth): the next command. */
static void
client_send_next(struct smtp_client *c)
{
	if (c->body_started)
		return; /* the content is on its way (client_pump) */
	if (c->next_rcpt < c->msg->nrcpts) {
		client_send_rcpt(c);
		return;
	}
	if (c->accepted == 0) {
		/* Every recipient refused: report them, then RSET. */
		client_transaction_over(c, 1);
		return;
	}
	client_send_body(c);
}

/*
 * RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS with a
 * validated policy (a chain to TrustedCAFile: CertificateValidation or
 * stricter; DANE and MTA-STS enforce once they are inputs of the policy)
 * to a next hop that offers REQUIRETLS; otherwise it is not sent at all
 * and returned with 5.7.30.  Whatever the policy, this connection has
 * met it by now (READY comes after the TLS decision).
 */
static int
client_requiretls_ok(struct smtp_client *c, char *why, size_t len)
{
	if (!c->in_tls) {
		snprintf(why, len,
		    "REQUIRETLS: the next hop %s was reached without TLS "
		    "(send connector %s, policy %s)",
		    client_hop(c)->host, c->p.connector->name,
		    tls_policy_name(&c->policy));
		return 0;
	}
	if (c->policy.level < TLS_POLICY_VERIFY) {
		snprintf(why, len,
		    "REQUIRETLS: the TLS policy of send connector %s (%s) does "
		    "not validate the next hop's certificate "
		    "(CertificateValidation or stricter is needed)",
		    c->p.connector->name, tls_policy_name(&c->policy));
		return 0;
	}
	if (!c->ext.requiretls) {
		snprintf(why, len,
		    "REQUIRETLS: the next hop %s does not offer REQUIRETLS",
		    client_hop(c)->host);
		return 0;
	}
	return 1;
}

static int
client_can_take(struct smtp_client *c, struct smtp_client_msg *m)
{
	char why[400];

	if (m->requiretls && !client_requiretls_ok(c, why, sizeof(why))) {
		client_note(c, "%s: message %s returned, nothing sent", why,
		    m->queue_id);
		client_fail_rest(c, 550, "5.7.30", why);
		return 0;
	}
	if (m->smtputf8 && !c->ext.smtputf8) {
		client_fail_rest(c, 553, "5.6.7",
		    "the next hop does not support SMTPUTF8 (RFC 6531)");
		return 0;
	}
	if (c->ext.size != 0 && m->size > c->ext.size) {
		client_fail_rest(c, 552, "5.3.4",
		    "message larger than the next hop accepts (SIZE)");
		return 0;
	}
	return 1;
}

/* READY: ask the owner for a message; a transaction, or park. */
static void
client_enter_ready(struct smtp_client *c)
{
	struct smtp_client_msg *m;

	for (;;) {
		if ((m = c->p.ops->next(c->p.arg, c)) == NULL) {
			client_enter(c, CS_IDLE);
			return;
		}
		c->msg = m;
		c->delivered = 1;
		for (size_t i = 0; i < m->nrcpts; i++) {
			m->rcpts[i].code = 0;
			m->rcpts[i].dsn_passed = c->ext.dsn;
		}
		if (client_can_take(c, m))
			break;
		client_msg_done(c);
		if (c->state != CS_READY)
			return; /* the owner ended us meanwhile */
	}
	client_enter(c, CS_TRANSACTION);
}

/* TRANSACTION: MAIL, and with PIPELINING every RCPT and the body too. */
static void
client_enter_transaction(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	char line[2048];

	c->nexpect = c->iexpect = 0;
	c->accepted = 0;
	c->mail_ok = 0;
	c->content_sent = 0;
	c->next_rcpt = 0;
	c->rcpt_replied = 0;
	client_mail_line(c, line, sizeof(line));
	client_send(c, line);
	client_expect(c, EX_MAIL);
	if (!c->ext.pipelining)
		return;
	/* RFC 2920: everything up to DATA (or the last BDAT) in one go. */
	while (c->next_rcpt < m->nrcpts && c->next_rcpt < CLIENT_PIPELINE_MAX)
		client_send_rcpt(c);
	if (c->next_rcpt < m->nrcpts)
		return; /* the rest after the replies */
	client_send_body(c);
}

/* The final reply for every recipient the server accepted. */
static void
client_set_accepted(struct smtp_client *c, const struct reply *r)
{
	for (size_t i = 0; i < c->msg->nrcpts; i++)
		if (c->msg->rcpts[i].code == RCPT_ACCEPTED)
			client_set_rcpt(&c->msg->rcpts[i], r);
}

/* The transaction is over: report and go on with the next message. */
static void
client_transaction_over(struct smtp_client *c, int need_rset)
{
	client_msg_done(c);
	if (c->state == CS_CLOSED)
		return;
	client_enter(c, need_rset ? CS_RSET : CS_READY);
}

static void
client_reply_transaction(struct smtp_client *c, const struct reply *r)
{
	struct smtp_client_msg *m = c->msg;
	enum expect ex;
	size_t rcpt_index;

	if (c->iexpect >= c->nexpect) {
		client_leave_hop(c, LEAVE_DROP, "4.5.0",
		    "reply without a command: %d", r->code);
		return;
	}
	ex = c->expect[c->iexpect++ % CLIENT_EXPECT_RING];
	switch (ex) {
	case EX_MAIL:
		c->mail_ok = r->code / 100 == 2;
		if (!c->mail_ok)
			for (size_t i = 0; i < m->nrcpts; i++)
				client_set_rcpt(&m->rcpts[i], r);
		break;
	case EX_RCPT:
		/* The RCPT replies come in the order the RCPTs left. */
		rcpt_index = c->rcpt_replied++;
		if (c->mail_ok && rcpt_index < m->nrcpts) {
			client_set_rcpt(&m->rcpts[rcpt_index], r);
			if (r->code / 100 == 2) {
				m->rcpts[rcpt_index].code = RCPT_ACCEPTED;
				c->accepted++;
			}
		}
		break;
	case EX_DATA:
		if (r->code == 354) {
			if (c->accepted == 0) {
				/* RFC 2920 3.1: nobody to send to, end it. */
				client_conn_write(c->conn, ".\r\n", 3);
				c->content_sent = 1;
				client_expect(c, EX_DOT);
			} else if (client_send_content(c, 0) < 0) {
				client_body_reset(c);
				client_leave_hop(
				    c, LEAVE_DROP, "4.3.0", "out of memory");
			}
			return; /* the pump expects the final reply */
		}
		client_set_accepted(c, r);
		client_transaction_over(c, c->mail_ok);
		return;
	case EX_DOT:
	case EX_BDAT_LAST:
		client_set_accepted(c, r);
		client_transaction_over(c,
		    c->body_failed ||
		        (c->accepted == 0 && c->mail_ok && ex == EX_BDAT_LAST));
		return;
	case EX_BDAT:
		/* A chunk before the last: a refusal ends the transaction
		 * (RFC 3030 2: no more chunks after a 4xx or 5xx). */
		c->bdat_out--;
		if (r->code / 100 != 2 && !c->body_failed) {
			if (c->mail_ok)
				client_set_accepted(c, r);
			client_body_stop(c);
			c->body_failed = 1;
		}
		break;
	}
	/* MAIL refused, or every RCPT: the rest of the content is waste. */
	if (c->body_started &&
	    (!c->mail_ok || (c->rcpt_replied == m->nrcpts && c->accepted == 0)))
		client_body_stop(c);
	if (c->pumping) {
		client_pump(c); /* a chunk answered: room in the window */
		if (c->state != CS_TRANSACTION || c->msg != m)
			return;
	}
	if (c->iexpect < c->nexpect)
		return; /* more pipelined replies to come */
	if (c->body_started) {
		if (c->pumping)
			return; /* the output drains first (writable) */
		/* Every reply is in and the content stopped before its end. */
		client_transaction_over(c, 1);
		return;
	}
	if (!c->mail_ok) {
		client_transaction_over(c, 0);
		return;
	}
	client_send_next(c);
}

static void
client_enter_rset(struct smtp_client *c)
{
	client_send(c, "RSET");
}

static void
client_reply_rset(struct smtp_client *c, const struct reply *r)
{
	client_enter(c, r->code / 100 == 2 ? CS_READY : CS_QUIT);
}

/* --- QUIT, and the end -------------------------------------------------- */

static void
client_enter_quit(struct smtp_client *c)
{
	client_send(c, "QUIT");
}

/* The QUIT is answered (or the server left): the next hop, or the end. */
static void
client_quit_done(struct smtp_client *c)
{
	if (c->next_after)
		client_next_hop(c);
	else
		client_end(c);
}

static void
client_reply_quit(struct smtp_client *c, const struct reply *r)
{
	(void)r;
	client_quit_done(c);
}

/* --- the state table ----------------------------------------------------- */

static const struct client_state_def client_states[CS_COUNT] = {
    [CS_CONNECT] = {"connect", WAIT_CONNECT, NULL, NULL},
    [CS_BANNER] = {"banner", WAIT_REPLY, NULL, client_reply_banner},
    [CS_EHLO] = {"ehlo", WAIT_REPLY, client_enter_ehlo, client_reply_ehlo},
    [CS_HELO] = {"helo", WAIT_REPLY, client_enter_helo, client_reply_helo},
    [CS_STARTTLS] = {"starttls", WAIT_REPLY, client_enter_starttls,
        client_reply_starttls},
    [CS_HANDSHAKE] = {"handshake", WAIT_REPLY, NULL, NULL},
    [CS_AUTH] = {"auth", WAIT_REPLY, client_enter_auth, client_reply_auth},
    [CS_AUTH_USER] = {"auth-user", WAIT_REPLY, client_enter_auth_user,
        client_reply_auth_user},
    [CS_AUTH_PASS] = {"auth-pass", WAIT_REPLY, client_enter_auth_pass,
        client_reply_auth_pass},
    [CS_READY] = {"ready", WAIT_NONE, client_enter_ready, NULL},
    [CS_IDLE] = {"idle", WAIT_IDLE, NULL, NULL},
    [CS_TRANSACTION] = {"transaction", WAIT_REPLY, client_enter_transaction,
        client_reply_transaction},
    [CS_RSET] = {"rset", WAIT_REPLY, client_enter_rset, client_reply_rset},
    [CS_QUIT] = {"quit", WAIT_QUIT, client_enter_quit, client_reply_quit},
    [CS_CLOSED] = {"closed", WAIT_NONE, NULL, NULL},
};

/* --- events from the I/O layer --------------------------------------- */

static void
client_reply(struct smtp_client *c, const struct reply *r)
{
	{
		/* As Exchange logs it: code, enhanced code, text. */
		char line[REPLY_TEXT_MAX + 32];
		int n = snprintf(line, sizeof(line), "%d%s%s %.*s", r->code,
		    r->enh[0] ? " " : "", r->enh, (int)r->text_len, r->text);

		client_log(c, '<', line,
		    n < 0 ? 0
		          : ((size_t)n < sizeof(line) ? (size_t)n
		                                      : sizeof(line) - 1),
		    NULL);
	}
	/* 421 at any point: the server is going away. */
	if (r->code == 421 && c->state != CS_QUIT) {
		char enh[16];

		client_enh(r, enh, sizeof(enh));
		client_leave_hop(c, LEAVE_DROP, enh, "%d %s", r->code, r->text);
		return;
	}
	client_states[c->state].reply(c, r);
}

/* Complete replies, one at a time, from what the I/O layer has read. */
static void
client_input_cb(void *arg)
{
	struct smtp_client *c = arg;
	struct client_conn *conn = c->conn;

	while (c->state != CS_CLOSED && c->conn == conn) {
		size_t len = 0, used = 0;
		const char *p = client_conn_peek(conn, &len);
		enum reply_status st;

		if (len == 0)
			return;
		if (client_states[c->state].reply == NULL) {
			/* Nothing was asked: a server talking out of turn. */
			client_leave_hop(c, LEAVE_DROP, "4.5.0",
			    "unexpected data from the server");
			return;
		}
		st = reply_parse(&c->reply, p, len, &used);
		client_conn_consume(conn, used);
		if (st == REPLY_MORE)
			return;
		if (st == REPLY_ERROR) {
			client_leave_hop(c, LEAVE_DROP, "4.5.0",
			    "bad reply: %s",
			    c->reply.why != NULL ? c->reply.why : "?");
			return;
		}
		{
			struct reply r = c->reply;

			reply_init(&c->reply);
			/* A reply is progress: the state's deadline again. */
			client_arm(c);
			client_reply(c, &r);
		}
	}
}

static void
client_connected_cb(void *arg)
{
	struct smtp_client *c = arg;
	char words[1200];

	snprintf(c->local, sizeof(c->local), "%s", client_conn_local(c->conn));
	client_log(c, '+', NULL, 0, NULL);
	tls_policy_describe(&c->policy, words, sizeof(words));
	client_note(c,
	    "next hop %zu of %zu: %s via send connector %s; TLS "
	    "policy: %s",
	    c->hop + 1, c->p.nhops, client_hop(c)->host, c->p.connector->name,
	    c->plain_retry ? "plaintext retry" : words);
	reply_init(&c->reply);
	client_enter(c, CS_BANNER);
}

static void
client_tls_done_cb(void *arg, const char *error)
{
	client_handshake_done(arg, error);
}

static void
client_closed_cb(void *arg, const char *why)
{
	struct smtp_client *c = arg;

	switch (c->state) {
	case CS_QUIT:
		client_quit_done(c);
		return;
	case CS_IDLE:
		client_end(c);
		return;
	case CS_CONNECT:
		client_leave_hop(c, LEAVE_DROP, "4.4.1", "%s", why);
		return;
	default:
		client_leave_hop(c, LEAVE_DROP, "4.4.2", "%s", why);
		return;
	}
}

static void
client_timeout_cb(void *arg)
{
	struct smtp_client *c = arg;

	switch (c->state) {
	case CS_IDLE:
		client_note(c,
		    "leaving (QUIT): parked for %u s with nothing to send",
		    client_idle_seconds());
		client_enter(c, CS_QUIT);
		return;
	case CS_QUIT:
		client_quit_done(c);
		return;
	case CS_CONNECT:
		client_leave_hop(
		    c, LEAVE_DROP, "4.4.1", "connection timed out");
		return;
	case CS_HANDSHAKE:
		/* A handshake that never ends is a failed one. */
		client_handshake_done(c, "timeout during the TLS handshake");
		return;
	default:
		client_leave_hop(c, LEAVE_DROP, "4.4.2",
		    "timeout waiting for the server (%s)",
		    client_states[c->state].name);
		return;
	}
}

static const struct client_conn_ops client_conn_ops = {
    .connected = client_connected_cb,
    .input = client_input_cb,
    .tls_done = client_tls_done_cb,
    .closed = client_closed_cb,
    .timeout = client_timeout_cb,
    .writable = client_writable_cb,
};

/* A connection to the next hop in use, with the policy for that hop. */
static void
client_connect(struct smtp_client *c)
{
	const struct resolver_hop *h = client_hop(c);
	struct tls_policy_input in = {.conf = c->p.conf,
	    .connector = c->p.connector,
	    .domain = c->p.domain,
	    .host = h->host,
	    .addr_secure = h->secure,
	    .tlsa = dest_tls_tlsa(c->p.dest_tls, c->hop),
	    .sts = dest_tls_sts(c->p.dest_tls),
	    .rule = c->p.tls_rule};
	const char *why = NULL;

	addr_endpoint(
	    (const struct sockaddr *)&h->addr, c->remote, sizeof(c->remote));
	snprintf(c->connected_host, sizeof(c->connected_host), "%s", h->host);
	c->connected_secure = h->secure;
	/* Unique across restarts, like the receive side's session ids. */
	if (client_sessions == 0)
		client_sessions = (unsigned long long)time(NULL) << 20;
	snprintf(
	    c->session_id, sizeof(c->session_id), "%016llX", ++client_sessions);
	c->seq = 0;
	c->local[0] = '\0';
	c->reported = 0;
	c->peer_helo[0] = '\0';
	c->tls_version[0] = '\0';
	c->tls_verified = 0;
	c->relaxed = 0;
	if (c->p.tls_optional) {
		/* what they would have asked, for the logs: then without */
		tls_policy_decide(&in, &c->policy);
		c->relaxed = c->policy.dane != TLS_DANE_OFF ||
		             c->policy.sts != TLS_STS_NONE || c->policy.skip;
		if (c->relaxed) {
			char was[600];

			tls_policy_describe(&c->policy, was, sizeof(was));
			client_note(c,
			    "TLS-Required: No: DANE and MTA-STS not applied to "
			    "%s (they asked: %s)",
			    h->host, was);
		}
		in.addr_secure = 0;
		in.tlsa = NULL;
		in.sts = NULL;
	}
	tls_policy_decide(&in, &c->policy);
	if (!c->plain_retry)
		c->tls_summary[0] = '\0';
	if (c->policy.level == TLS_POLICY_NONE)
		client_summary(c, "tls=IgnoreSTARTTLS:none");
	/*
	 * DANE (bogus or failed TLSA look-up, Mandatory without records)
	 * or MTA-STS enforce (not in the policy) rules this host out: it
	 * is not even connected to (RFC 7672 2.2, RFC 8461 5).
	 */
	if (c->policy.skip) {
		int dane = c->policy.dane == TLS_DANE_SKIP;

		client_summary(c, "tls=%s:%s", dane ? "dane" : "sts-enforce",
		    dane ? "skipped" : "MxNotInPolicy");
		client_note(c, "next hop %zu of %zu: %s not used: %s",
		    c->hop + 1, c->p.nhops, h->host, c->policy.skip_why);
		/* RFC 8460: a host DANE rules out had no valid records
		 * (bogus, failed) or none where they are required; one
		 * outside the MTA-STS policy has no type of its own */
		client_report(c,
		    !dane ? TLS_RESULT_VALIDATION_FAILURE
		    : c->policy.tlsa == NULL ||
		            c->policy.tlsa->status == TLSA_BOGUS ||
		            c->policy.tlsa->status == TLSA_TEMPFAIL
		        ? TLS_RESULT_DNSSEC_INVALID
		        : TLS_RESULT_DANE_REQUIRED,
		    c->policy.skip_why);
		/* out of QUIT (the last hop's) before leaving this one */
		client_enter(c, CS_CONNECT);
		client_leave_hop(
		    c, LEAVE_DROP, "4.7.5", "%s", c->policy.skip_why);
		return;
	}
	c->conn =
	    client_conn_connect(c->p.base, (const struct sockaddr *)&h->addr,
	        h->addrlen, CLIENT_CONNECT_SECONDS, &client_conn_ops, c, &why);
	client_enter(c, CS_CONNECT);
	if (c->conn == NULL)
		client_leave_hop(
		    c, LEAVE_DROP, "4.4.1", "cannot connect: %s", why);
}

/* --- the owner's side ---------------------------------------------------- */

struct smtp_client *
smtp_client_start(const struct smtp_client_params *p)
{
	struct smtp_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->p = *p;
	c->finish = client_conn_later_new(p->base, client_finish_cb, c);
	if (c->finish == NULL || p->nhops == 0) {
		client_conn_later_free(c->finish);
		free(c);
		return NULL;
	}
	dest_tls_ref(c->p.dest_tls);
	client_connect(c);
	return c;
}

void
smtp_client_resume(struct smtp_client *c)
{
	if (c->state == CS_IDLE)
		client_enter(c, CS_READY);
}

int
smtp_client_idle(const struct smtp_client *c)
{
	return c->state == CS_IDLE;
}

/*
 * A policy that would be the same whatever the recipient domain, and that
 * no published policy (DANE, MTA-STS) shapes: only
 * then is a connection made for one domain good for another.
 */
static int
client_policy_portable(const struct tls_policy *p, char *why, size_t len)
{
	if (p->skip || p->dane != TLS_DANE_OFF || p->sts != TLS_STS_NONE) {
		snprintf(why, len, "DANE or MTA-STS applies");
		return 0;
	}
	if (p->level == TLS_POLICY_DOMAIN_SECURE) {
		snprintf(why, len, "Domain Security (TLSSendDomainSecureList)");
		return 0;
	}
	if (p->level == TLS_POLICY_DOMAIN && p->tls_domain == NULL) {
		snprintf(
		    why, len, "DomainValidation against the recipient domain");
		return 0;
	}
	return 1;
}

static int
client_same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == NULL || a[0] == '\0') &&
		       (b == NULL || b[0] == '\0');
	return strcmp(a, b) == 0;
}

int
smtp_client_retarget(struct smtp_client *c, const struct smtp_client_target *t,
    char *why, size_t len)
{
	const struct resolver_hop *h = NULL;
	struct tls_policy_input in = {.conf = c->p.conf,
	    .connector = c->p.connector,
	    .domain = t->domain,
	    .rule = t->tls_rule};
	struct tls_policy np;
	unsigned best = UINT_MAX;
	size_t j;

	if (c->state != CS_IDLE || c->conn == NULL || c->closing ||
	    c->plain_retry || c->relaxed) {
		snprintf(why, len, "not an idle connection with its own TLS");
		return -1;
	}
	if (t->tls_optional != c->p.tls_optional ||
	    !client_same_string(t->tls_rule, c->p.tls_rule)) {
		snprintf(why, len, "TLS-Required or a transport rule differs");
		return -1;
	}
	if (!client_policy_portable(&c->policy, why, len))
		return -1;
	/* That hop is the connection's, and never a backup MX while the
	 * best ones are there. */
	for (j = 0; j < t->nhops; j++)
		if (t->hops[j].pref < best)
			best = t->hops[j].pref;
	if (t->hop < t->nhops) {
		char endpoint[64];

		h = &t->hops[t->hop];
		addr_endpoint((const struct sockaddr *)&h->addr, endpoint,
		    sizeof(endpoint));
		if (h->pref != best ||
		    strcasecmp(h->host, c->connected_host) != 0 ||
		    strcmp(endpoint, c->remote) != 0 ||
		    h->secure != c->connected_secure)
			h = NULL;
	}
	if (h == NULL) {
		snprintf(why, len,
		    "%s (%s) is not that most preferred next hop",
		    c->connected_host, c->remote);
		return -1;
	}
	j = t->hop;
	/* The policy a new connection to that hop would be held to. */
	in.host = h->host;
	in.addr_secure = h->secure;
	in.tlsa = dest_tls_tlsa(t->dest_tls, j);
	in.sts = dest_tls_sts(t->dest_tls);
	tls_policy_decide(&in, &np);
	if (dest_tls_sts_failed(t->dest_tls) != NULL) {
		snprintf(why, len, "an MTA-STS policy could not be had");
		return -1;
	}
	if (!client_policy_portable(&np, why, len))
		return -1;
	if (np.level != c->policy.level ||
	    np.floor_level != c->policy.floor_level ||
	    np.source != c->policy.source ||
	    np.partner_trust != c->policy.partner_trust ||
	    !client_same_string(np.tls_domain, c->policy.tls_domain) ||
	    !client_same_string(np.cert_name, c->policy.cert_name)) {
		snprintf(why, len, "the TLS policy differs");
		return -1;
	}
	dest_tls_ref(t->dest_tls);
	dest_tls_unref(c->p.dest_tls);
	c->p.dest_tls = t->dest_tls;
	c->p.domain = t->domain;
	c->p.tls_rule = t->tls_rule;
	c->p.hops = t->hops;
	c->p.nhops = t->nhops;
	c->hop = j;
	c->policy = np;
	client_note(c,
	    "reused for %s: next hop %zu of %zu, %s, same TLS policy (%s)",
	    t->domain, c->hop + 1, c->p.nhops, h->host,
	    tls_policy_name(&c->policy));
	/* A session for the new destination (posture, TLS reports). */
	c->reported = 0;
	c->reusing = 1;
	client_report(c, TLS_RESULT_OK, NULL);
	c->reusing = 0;
	return 0;
}

void
smtp_client_quit(struct smtp_client *c, const char *why)
{
	if (c->state == CS_IDLE || c->state == CS_READY) {
		if (why != NULL)
			client_note(c, "leaving (QUIT): %s", why);
		client_enter(c, CS_QUIT);
	} else if (c->state != CS_QUIT && c->state != CS_CLOSED &&
	           c->msg == NULL) {
		client_end(c);
	}
}

void
smtp_client_abort(struct smtp_client *c)
{
	if (c->closing)
		return; /* client_finish_cb is on its way and frees it */
	client_free(c);
}

const char *
smtp_client_host(const struct smtp_client *c)
{
	/* Past the last next hop: the last one tried (a DEFER row says
	 * where it failed). */
	if (c->hop < c->p.nhops)
		return c->p.hops[c->hop].host;
	return c->p.nhops > 0 ? c->p.hops[c->p.nhops - 1].host : "";
}

const char *
smtp_client_connected_host(const struct smtp_client *c)
{
	return c->conn != NULL ? c->connected_host : "";
}

const char *
smtp_client_local(const struct smtp_client *c)
{
	return c->local;
}

const char *
smtp_client_remote(const struct smtp_client *c)
{
	return c->remote;
}

const char *
smtp_client_session(const struct smtp_client *c)
{
	return c->session_id;
}

const char *
smtp_client_tls(const struct smtp_client *c)
{
	if (c->tls_summary[0] != '\0')
		return c->tls_summary;
	if (tls_policy_required(&c->policy))
		return c->relaxed ? "tls=required:none;TlsRequired=No"
		                  : "tls=required:none";
	return c->relaxed ? "tls=opportunistic:none;TlsRequired=No"
	                  : "tls=opportunistic:none";
}
