/*
 * smtp_client.c - one outbound SMTP connection (see smtp_client.h).
 *
 * The client is a state machine fed by complete replies from the bounded
 * reply parser (smtp/reply.c), so a hostile server can only make it fail
 * a next hop, never grow without bound.  Every request arms one deadline:
 * the connector's ConnectionInactivityTimeout, or less while connecting.
 *
 * Transactions: with PIPELINING, MAIL, every RCPT and the DATA (or the
 * whole BDAT LAST chunk) leave in one write and the replies are matched
 * in order (RFC 2920); without it one command waits for its reply.  A
 * transaction that did not end with the server's reply to the content is
 * closed with RSET before the next one.
 *
 * STARTTLS (CVE-2021-38371): after the 220, whatever plaintext is already
 * buffered is thrown away before the TLS filter takes the socket, and
 * everything learnt from the plaintext EHLO is forgotten; EHLO is sent
 * again inside TLS.  Credentials are only sent inside TLS when TLS was
 * possible, and never without it under BasicAuthRequireTLS.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "deliver/smtp_client.h"
#include "log/protolog.h"
#include "smtp/command.h"
#include "smtp/reply.h"
#include "tls/tls_client.h"
#include "tls/tls_peer.h"
#include "util/log.h"

/* A connection attempt gets at most this long (the server may be gone). */
#define CLIENT_CONNECT_SECONDS 30
/* A parked connection waits this long for another message, then QUITs. */
#define CLIENT_IDLE_SECONDS 5
/* Read-ahead cap: a reply line is at most 512 bytes; this is plenty. */
#define CLIENT_INPUT_MAX (64 * 1024)
/*
 * RCPTs sent ahead of their replies.  Servers read pipelined commands
 * from a socket buffer; a hundred short lines fit in any of them.
 */
#define CLIENT_PIPELINE_MAX 100
/* A recipient the server accepted, waiting for the reply to the content. */
#define RCPT_ACCEPTED (-1)

enum client_state {
	CS_CONNECT,
	CS_BANNER,
	CS_EHLO,
	CS_HELO,
	CS_STARTTLS,
	CS_HANDSHAKE,
	CS_AUTH,      /* AUTH PLAIN, or LOGIN's first step */
	CS_AUTH_USER, /* LOGIN: username sent */
	CS_AUTH_PASS, /* LOGIN: password sent */
	CS_READY,     /* between transactions */
	CS_IDLE,      /* parked, waiting for the owner */
	CS_TRANSACTION,
	CS_RSET,
	CS_QUIT,
	CS_CLOSED,
};

/* What each reply in a transaction answers, in order. */
enum expect { EX_MAIL, EX_RCPT, EX_DATA, EX_DOT, EX_BDAT };

struct smtp_client {
	struct smtp_client_params p;
	struct bufferevent *bev;
	struct event *timer;
	SSL *ssl;
	enum client_state state;
	size_t hop;      /* index into p.hops */
	int plain_retry; /* this hop again without TLS (handshake failed) */
	int in_tls;
	int delivered; /* a transaction took place on some hop */
	struct reply reply;
	/* what the server offered (forgotten at STARTTLS) */
	struct {
		int pipelining, chunking, starttls, eightbit, smtputf8, dsn,
		    auth_plain, auth_login;
		unsigned long long size;
	} ext;
	/* the transaction */
	struct smtp_client_msg *msg;
	enum expect expect[CLIENT_PIPELINE_MAX + 4]; /* a ring */
	size_t nexpect, iexpect; /* sent and answered, counting from 0 */
	size_t next_rcpt;        /* the next RCPT to send */
	size_t rcpt_replied;     /* RCPT replies seen */
	size_t accepted;         /* recipients the server took */
	int mail_ok;
	int content_sent;
	/* logs */
	char session_id[24];
	unsigned seq;
	char local[64], remote[64];
	char tls_summary[200];
	/* this connection's TLS, for the session report */
	char tls_version[32];
	int tls_verified;
	int reported;
	char fail_enh[16];
	char fail_why[512];
	int closing; /* closed() is on its way */
};

static void client_next_hop(struct smtp_client *, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void client_connect(struct smtp_client *);
static void client_start_transaction(struct smtp_client *);
static void client_expect(struct smtp_client *, enum expect);
static void client_end(struct smtp_client *);
static void client_transaction_over(struct smtp_client *, int need_rset);

static unsigned long long client_sessions;

static const struct resolver_hop *
client_hop(const struct smtp_client *c)
{
	return &c->p.hops[c->hop];
}

static int
client_tls_required(const struct smtp_client *c)
{
	return c->p.connector->require_tls || c->p.domain_secure;
}

static enum tls_auth_level
client_tls_level(const struct smtp_client *c)
{
	if (c->p.domain_secure)
		return TLS_AUTH_DOMAIN_VALIDATION;
	if (!c->p.connector->require_tls)
		return TLS_AUTH_NONE;
	return c->p.connector->tls_auth_level != TLS_AUTH_NONE
	           ? c->p.connector->tls_auth_level
	           : TLS_AUTH_ENCRYPTION_ONLY;
}

static const char *
client_policy_name(const struct smtp_client *c)
{
	enum tls_auth_level level = client_tls_level(c);

	if (c->p.connector->ignore_starttls)
		return "IgnoreSTARTTLS";
	return level == TLS_AUTH_NONE ? "opportunistic" : tls_level_name(level);
}

/* This connection's TLS is decided: tell the owner, once. */
static void
client_report(struct smtp_client *c, enum tls_result result)
{
	struct smtp_client_session s;

	if (c->reported || c->p.ops->session == NULL)
		return;
	c->reported = 1;
	memset(&s, 0, sizeof(s));
	s.host = c->hop < c->p.nhops ? client_hop(c)->host : "";
	s.policy = client_policy_name(c);
	s.version = c->tls_version;
	s.verified = c->tls_verified;
	s.result = result;
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

static void
client_arm(struct smtp_client *c, unsigned seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	evtimer_add(c->timer, &tv);
}

static void
client_send(struct smtp_client *c, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	/* Credentials never reach the log. */
	if (strncasecmp(line, "AUTH ", 5) == 0 || c->state == CS_AUTH_USER ||
	    c->state == CS_AUTH_PASS)
		client_log(c, '>', "AUTH ****", 9, NULL);
	else
		client_log(c, '>', line, strlen(line), NULL);
	evbuffer_add_printf(out, "%s\r\n", line);
	client_arm(c, c->p.connector->connection_inactivity_timeout);
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

static void
client_free(struct smtp_client *c)
{
	if (c->bev != NULL) {
		if (c->ssl != NULL && c->in_tls)
			SSL_shutdown(c->ssl); /* keeps the session resumable */
		bufferevent_free(c->bev);
	}
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

static void
client_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)fd;
	(void)what;
	c->p.ops->closed(c->p.arg, c, c->delivered, c->fail_enh, c->fail_why);
	client_free(c);
}

/* Close the connection and report, from a fresh loop turn. */
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
	if (c->bev != NULL) {
		client_log(c, '-', NULL, 0, NULL);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	}
	evtimer_del(c->timer);
	c->state = CS_CLOSED;
	event_base_once(c->p.base, -1, EV_TIMEOUT, client_finish_cb, c, NULL);
}

static void
client_drop_connection(struct smtp_client *c)
{
	if (c->bev != NULL) {
		client_log(c, '-', NULL, 0, NULL);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->ssl = NULL;
	c->in_tls = 0;
	evtimer_del(c->timer);
}

/*
 * This next hop cannot be used: note why and go on to the next one.  A
 * message in flight means the hop was already in use: its recipients are
 * deferred and the connection ends (the queue retries them).
 */
static void
client_next_hop(struct smtp_client *c, const char *enh, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* What failed, where: the DSN and Get-Queue show this line. */
	n = snprintf(c->fail_why, sizeof(c->fail_why),
	    "send connector %s, host %s (%s): ", c->p.connector->name,
	    c->hop < c->p.nhops ? client_hop(c)->host : "?", c->remote);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(c->fail_why))
		vsnprintf(
		    c->fail_why + n, sizeof(c->fail_why) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(c->fail_enh, sizeof(c->fail_enh), "%s", enh);
	log_info("delivery %s via %s: %s", c->session_id, c->p.connector->name,
	    c->fail_why);
	if (c->msg != NULL || c->delivered || c->state == CS_QUIT) {
		client_end(c);
		return;
	}
	if (c->state == CS_HANDSHAKE && !client_tls_required(c) &&
	    !c->plain_retry) {
		/* Opportunistic TLS never stops mail: same host, plaintext. */
		client_drop_connection(c);
		c->plain_retry = 1;
		client_connect(c);
		return;
	}
	client_drop_connection(c);
	c->plain_retry = 0;
	if (++c->hop >= c->p.nhops) {
		client_end(c);
		return;
	}
	client_connect(c);
}

static void
client_ehlo(struct smtp_client *c)
{
	char line[300];

	memset(&c->ext, 0, sizeof(c->ext));
	snprintf(line, sizeof(line), "EHLO %s", c->p.connector->fqdn);
	c->state = CS_EHLO;
	client_send(c, line);
}

/* Read the extensions from an EHLO reply (first line is the greeting). */
static void
client_parse_ehlo(struct smtp_client *c, const struct reply *r)
{
	const char *p = memchr(r->text, '\n', r->text_len);
	const char *end = r->text + r->text_len;

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

static void
client_auth_b64(const char *in, size_t len, char *out, size_t outlen)
{
	if (outlen < 4 * ((len + 2) / 3) + 1) {
		out[0] = '\0';
		return;
	}
	EVP_EncodeBlock(
	    (unsigned char *)out, (const unsigned char *)in, (int)len);
}

static int
client_wants_auth(const struct smtp_client *c)
{
	return c->p.connector->smart_host_auth_mechanism != SMARTHOST_AUTH_NONE;
}

/* EHLO done (in plaintext or in TLS): TLS, AUTH or the first message. */
static void
client_after_ehlo(struct smtp_client *c)
{
	const struct conf_send_connector *sc = c->p.connector;
	int tls_possible = c->ext.starttls && !sc->ignore_starttls &&
	                   c->p.tls != NULL && !c->plain_retry;

	if (!c->in_tls && tls_possible) {
		c->state = CS_STARTTLS;
		client_send(c, "STARTTLS");
		return;
	}
	if (!c->in_tls && client_tls_required(c)) {
		client_report(c, c->ext.starttls
		                     ? TLS_RESULT_VALIDATION_FAILURE
		                     : TLS_RESULT_STARTTLS_NOT_SUPPORTED);
		client_next_hop(c, "4.7.10", "%s",
		    c->ext.starttls ? "TLS is required and the handshake failed"
		                    : "TLS is required and the next hop does "
		                      "not offer STARTTLS");
		return;
	}
	/* TLS is as the policy wants it: this session goes on. */
	client_report(c, TLS_RESULT_OK);
	if (client_wants_auth(c)) {
		char line[1200], raw[700], b64[1000];
		int n;

		if (!c->in_tls && sc->smart_host_auth_mechanism ==
		                      SMARTHOST_AUTH_BASIC_REQUIRE_TLS) {
			client_next_hop(c, "4.7.10",
			    "BasicAuthRequireTLS and no TLS: credentials not "
			    "sent");
			return;
		}
		if (c->p.auth_user == NULL || c->p.auth_pass == NULL) {
			client_next_hop(c, "4.7.0",
			    "no credentials in AuthenticationCredential");
			return;
		}
		if (c->ext.auth_plain) {
			n = snprintf(raw, sizeof(raw), "%c%s%c%s", 0,
			    c->p.auth_user, 0, c->p.auth_pass);
			if (n < 0 || (size_t)n >= sizeof(raw)) {
				client_next_hop(
				    c, "4.7.0", "credentials too long");
				return;
			}
			client_auth_b64(raw, (size_t)n, b64, sizeof(b64));
			snprintf(line, sizeof(line), "AUTH PLAIN %s", b64);
			c->state = CS_AUTH;
			client_send(c, line);
			return;
		}
		if (c->ext.auth_login) {
			c->state = CS_AUTH;
			client_send(c, "AUTH LOGIN");
			return;
		}
		client_next_hop(c, "4.7.0",
		    "the next hop offers no AUTH mechanism we use (PLAIN, "
		    "LOGIN)");
		return;
	}
	c->state = CS_READY;
	client_start_transaction(c);
}

static void
client_handshake_done(struct smtp_client *c, int ok)
{
	struct tls_peer peer;
	char why[300];
	enum tls_check check;
	enum tls_auth_level level = client_tls_level(c);

	tls_client_done(c->ssl, ok);
	check = tls_client_check(c->ssl, ok, level, c->p.connector->tls_domain,
	    c->p.domain, why, sizeof(why));
	if (!ok) {
		snprintf(c->tls_summary, sizeof(c->tls_summary),
		    "tls=%s:failed;handshake",
		    level == TLS_AUTH_NONE ? "opportunistic"
		                           : tls_level_name(level));
		client_report(c, TLS_RESULT_VALIDATION_FAILURE);
		client_log(c, '*', "TLS handshake failed", 20, NULL);
		client_next_hop(c, "4.7.10", "TLS handshake failed%s",
		    client_tls_required(c) ? "" : "; retrying in plaintext");
		return;
	}
	tls_peer_describe(c->ssl, &peer);
	snprintf(c->tls_version, sizeof(c->tls_version), "%s", peer.version);
	/* Verified: what MTA-STS would ask (a trusted chain naming the
	 * host), or what DomainValidation asked and got. */
	c->tls_verified =
	    tls_client_check(c->ssl, ok, TLS_AUTH_DOMAIN_VALIDATION, NULL,
	        client_hop(c)->host, NULL, 0) == TLS_CHECK_OK ||
	    (level == TLS_AUTH_DOMAIN_VALIDATION && check == TLS_CHECK_OK);
	snprintf(c->tls_summary, sizeof(c->tls_summary), "tls=%s:%s;%s;%s%s",
	    level == TLS_AUTH_NONE ? "opportunistic" : tls_level_name(level),
	    check == TLS_CHECK_OK
	        ? (level >= TLS_AUTH_CERTIFICATE_VALIDATION ? "verified"
	                                                    : "encrypted")
	        : tls_check_name(check),
	    peer.version, peer.cipher, peer.resumed ? ";resumed" : "");
	{
		char info[800];
		int n = snprintf(info, sizeof(info),
		    "TLS %s %s; peer %s; issuer %s; expires %s; %s",
		    peer.version, peer.cipher,
		    peer.has_cert ? peer.subject : "(no certificate)",
		    peer.issuer, peer.not_after,
		    check == TLS_CHECK_OK ? "policy met" : why);
		client_log(c, '*', info,
		    n > 0 ? ((size_t)n < sizeof(info) ? (size_t)n
		                                      : sizeof(info) - 1)
		          : 0,
		    NULL);
	}
	c->in_tls = 1;
	if (check != TLS_CHECK_OK) {
		client_report(c, tls_result_from_check(check));
		client_next_hop(c, "4.7.5", "%s", why);
		return;
	}
	client_ehlo(c);
}

static void client_read_cb(struct bufferevent *, void *);
static void client_event_cb(struct bufferevent *, short, void *);

/*
 * The 220 to STARTTLS came: discard any plaintext that followed it in the
 * same read (an injection, CVE-2021-38371) and let the TLS filter take
 * the socket.
 */
static void
client_starttls(struct smtp_client *c)
{
	struct tls_client_target t;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct bufferevent *tls;
	const char *why = NULL;
	SSL *ssl;

	if (evbuffer_get_length(in) > 0) {
		client_log(
		    c, '*', "discarded plaintext after STARTTLS", 34, NULL);
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	memset(&t, 0, sizeof(t));
	t.host = client_hop(c)->host;
	t.port =
	    ntohs(((const struct sockaddr_in *)&client_hop(c)->addr)->sin_port);
	t.cert_name = c->p.cert_name;
	t.domain_secure = c->p.domain_secure;
	if ((ssl = tls_client_ssl(c->p.tls, &t, c->p.certs, &why)) == NULL) {
		client_next_hop(c, "4.7.5", "cannot start TLS: %s",
		    why != NULL ? why : "?");
		return;
	}
	tls = bufferevent_openssl_filter_new(c->p.base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		client_next_hop(c, "4.3.0", "cannot start TLS: out of memory");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->ssl = ssl;
	c->state = CS_HANDSHAKE;
	bufferevent_setwatermark(tls, EV_READ, 0, CLIENT_INPUT_MAX);
	bufferevent_setcb(tls, client_read_cb, NULL, client_event_cb, c);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	client_arm(c, c->p.connector->connection_inactivity_timeout);
}

/* MAIL FROM with the parameters the server understands. */
static void
client_mail_line(struct smtp_client *c, char *line, size_t len)
{
	const struct smtp_client_msg *m = c->msg;
	size_t n = (size_t)snprintf(line, len, "MAIL FROM:<%s>", m->sender);
	char x[320];

	if (c->ext.size && n < len)
		n += (size_t)snprintf(line + n, len - n, " SIZE=%zu", m->len);
	if (m->body_type == SMTP_BODY_8BITMIME && c->ext.eightbit && n < len)
		n += (size_t)snprintf(line + n, len - n, " BODY=8BITMIME");
	if (m->smtputf8 && c->ext.smtputf8 && n < len)
		n += (size_t)snprintf(line + n, len - n, " SMTPUTF8");
	if (c->ext.dsn && m->ret != SMTP_RET_NONE && n < len)
		n += (size_t)snprintf(line + n, len - n, " RET=%s",
		    m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	if (c->ext.dsn && m->envid[0] != '\0' && n < len &&
	    smtp_xtext_encode(m->envid, x, sizeof(x)) >= 0)
		snprintf(line + n, len - n, " ENVID=%s", x);
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

long
smtp_client_encode(
    const char *data, size_t len, int dotstuff, struct evbuffer *out)
{
	size_t start = 0, total = 0;
	int bol = 1;

	for (size_t i = 0; i < len; i++) {
		char ch = data[i];

		if (bol && dotstuff && ch == '.') {
			if (evbuffer_add(out, data + start, i - start) < 0 ||
			    evbuffer_add(out, ".", 1) < 0)
				return -1;
			total += i - start + 1;
			start = i;
		}
		bol = 0;
		if (ch == '\r' && i + 1 < len && data[i + 1] == '\n') {
			i++;
			bol = 1;
		} else if (ch == '\r' || ch == '\n') {
			/* A bare CR or LF: the line ends here, in CRLF. */
			if (evbuffer_add(out, data + start, i - start) < 0 ||
			    evbuffer_add(out, "\r\n", 2) < 0)
				return -1;
			total += i - start + 2;
			start = i + 1;
			bol = 1;
		}
	}
	if (evbuffer_add(out, data + start, len - start) < 0)
		return -1;
	total += len - start;
	if (!bol && evbuffer_add(out, "\r\n", 2) == 0)
		total += 2;
	else if (!bol)
		return -1;
	return (long)total;
}

/* Send the content: the whole BDAT LAST chunk, or DATA's dot-stuffed body. */
static int
client_send_content(struct smtp_client *c, int bdat)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char line[64];
	long n;

	c->content_sent = 1;
	if (!bdat) {
		if (smtp_client_encode(c->msg->data, c->msg->len, 1, out) < 0)
			return -1;
		evbuffer_add(out, ".\r\n", 3);
		client_log(c, '>', ".", 1, "message content");
		return 0;
	}
	{
		struct evbuffer *body = evbuffer_new();

		if (body == NULL || (n = smtp_client_encode(c->msg->data,
		                         c->msg->len, 0, body)) < 0) {
			if (body != NULL)
				evbuffer_free(body);
			return -1;
		}
		snprintf(line, sizeof(line), "BDAT %ld LAST", n);
		client_send(c, line);
		evbuffer_add_buffer(out, body);
		evbuffer_free(body);
	}
	return 0;
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
		client_next_hop(c, "4.3.0", "out of memory");
	} else {
		client_expect(c, EX_BDAT);
	}
}

static int
client_can_take(struct smtp_client *c, struct smtp_client_msg *m)
{
	if (m->smtputf8 && !c->ext.smtputf8) {
		client_fail_rest(c, 553, "5.6.7",
		    "the next hop does not support SMTPUTF8 (RFC 6531)");
		return 0;
	}
	if (c->ext.size != 0 && m->len > c->ext.size) {
		client_fail_rest(c, 552, "5.3.4",
		    "message larger than the next hop accepts (SIZE)");
		return 0;
	}
	return 1;
}

/* Ask the owner for a message and send its transaction. */
static void
client_start_transaction(struct smtp_client *c)
{
	struct smtp_client_msg *m;
	char line[2048];

	for (;;) {
		if ((m = c->p.ops->next(c->p.arg, c)) == NULL) {
			c->state = CS_IDLE;
			client_arm(c, CLIENT_IDLE_SECONDS);
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
		if (c->state == CS_CLOSED)
			return;
	}
	c->state = CS_TRANSACTION;
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

/* Without pipelining (or past the pipeline's depth): the next command. */
static void
client_send_next(struct smtp_client *c)
{
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
	if (need_rset) {
		c->state = CS_RSET;
		client_send(c, "RSET");
		return;
	}
	c->state = CS_READY;
	client_start_transaction(c);
}

static void
client_expect(struct smtp_client *c, enum expect ex)
{
	c->expect[c->nexpect++ % (CLIENT_PIPELINE_MAX + 4)] = ex;
}

static void
client_transaction_reply(struct smtp_client *c, const struct reply *r)
{
	struct smtp_client_msg *m = c->msg;
	enum expect ex;
	size_t rcpt_index;

	if (c->iexpect >= c->nexpect) {
		client_next_hop(
		    c, "4.5.0", "reply without a command: %d", r->code);
		return;
	}
	ex = c->expect[c->iexpect++ % (CLIENT_PIPELINE_MAX + 4)];
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
				evbuffer_add(
				    bufferevent_get_output(c->bev), ".\r\n", 3);
				c->content_sent = 1;
			} else if (client_send_content(c, 0) < 0) {
				client_next_hop(c, "4.3.0", "out of memory");
				return;
			}
			client_expect(c, EX_DOT);
			client_arm(
			    c, c->p.connector->connection_inactivity_timeout);
			return;
		}
		client_set_accepted(c, r);
		client_transaction_over(c, c->mail_ok);
		return;
	case EX_DOT:
	case EX_BDAT:
		client_set_accepted(c, r);
		client_transaction_over(
		    c, c->accepted == 0 && c->mail_ok && ex == EX_BDAT);
		return;
	}
	if (c->iexpect < c->nexpect)
		return; /* more pipelined replies to come */
	if (!c->mail_ok) {
		client_transaction_over(c, 0);
		return;
	}
	client_send_next(c);
}

static void
client_reply(struct smtp_client *c, const struct reply *r)
{
	char enh[16];

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
	client_enh(r, enh, sizeof(enh));
	/* 421 at any point: the server is going away. */
	if (r->code == 421 && c->state != CS_QUIT) {
		client_next_hop(c, enh, "%d %s", r->code, r->text);
		return;
	}
	switch (c->state) {
	case CS_BANNER:
		if (r->code != 220) {
			client_next_hop(c, r->code / 100 == 5 ? "5.0.0" : enh,
			    "greeting %d %.200s", r->code, r->text);
			return;
		}
		client_ehlo(c);
		return;
	case CS_EHLO:
		if (r->code / 100 == 2) {
			client_parse_ehlo(c, r);
			client_after_ehlo(c);
			return;
		}
		if (c->in_tls) {
			client_next_hop(c, enh,
			    "EHLO after STARTTLS: %d %.200s", r->code, r->text);
			return;
		}
		{
			char line[300];

			snprintf(line, sizeof(line), "HELO %s",
			    c->p.connector->fqdn);
			c->state = CS_HELO;
			client_send(c, line);
		}
		return;
	case CS_HELO:
		if (r->code / 100 != 2) {
			client_next_hop(c, enh, "HELO refused: %d %.200s",
			    r->code, r->text);
			return;
		}
		memset(&c->ext, 0, sizeof(c->ext));
		client_after_ehlo(c);
		return;
	case CS_STARTTLS:
		if (r->code != 220) {
			if (client_tls_required(c)) {
				client_report(
				    c, TLS_RESULT_STARTTLS_NOT_SUPPORTED);
				client_next_hop(c, "4.7.10",
				    "STARTTLS refused: %d %.200s", r->code,
				    r->text);
				return;
			}
			c->plain_retry = 1; /* go on in plaintext */
			snprintf(c->tls_summary, sizeof(c->tls_summary),
			    "tls=opportunistic:refused");
			client_after_ehlo(c);
			return;
		}
		client_starttls(c);
		return;
	case CS_AUTH:
		if (r->code == 334 && c->ext.auth_login && !c->ext.auth_plain) {
			char b64[400];

			client_auth_b64(c->p.auth_user, strlen(c->p.auth_user),
			    b64, sizeof(b64));
			c->state = CS_AUTH_USER;
			client_send(c, b64);
			return;
		}
		/* FALLTHROUGH: the answer to PLAIN */
		__attribute__((fallthrough));
	case CS_AUTH_PASS:
		if (r->code / 100 != 2) {
			client_next_hop(c, "4.7.0",
			    "authentication failed: %d %.200s", r->code,
			    r->text);
			return;
		}
		c->state = CS_READY;
		client_start_transaction(c);
		return;
	case CS_AUTH_USER:
		if (r->code != 334) {
			client_next_hop(c, "4.7.0",
			    "authentication failed: %d %.200s", r->code,
			    r->text);
			return;
		}
		{
			char b64[400];

			client_auth_b64(c->p.auth_pass, strlen(c->p.auth_pass),
			    b64, sizeof(b64));
			c->state = CS_AUTH_PASS;
			client_send(c, b64);
		}
		return;
	case CS_TRANSACTION:
		client_transaction_reply(c, r);
		return;
	case CS_RSET:
		if (r->code / 100 != 2) {
			c->state = CS_QUIT;
			client_send(c, "QUIT");
			return;
		}
		c->state = CS_READY;
		client_start_transaction(c);
		return;
	case CS_QUIT:
		client_end(c);
		return;
	default:
		client_next_hop(c, "4.5.0", "unexpected reply %d", r->code);
		return;
	}
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (c->state != CS_CLOSED && c->bev == bev) {
		size_t len = evbuffer_get_length(in), used = 0;
		enum reply_status st;
		const char *p;

		if (len == 0)
			return;
		if (c->state == CS_IDLE || c->state == CS_CONNECT ||
		    c->state == CS_HANDSHAKE) {
			/* Nothing was asked: a server talking out of turn. */
			client_next_hop(c, "4.5.0",
			    "unexpected data from the "
			    "server");
			return;
		}
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		st = reply_parse(&c->reply, p, len, &used);
		evbuffer_drain(in, used);
		if (st == REPLY_MORE)
			return;
		if (st == REPLY_ERROR) {
			client_next_hop(c, "4.5.0", "bad reply: %s",
			    c->reply.why != NULL ? c->reply.why : "?");
			return;
		}
		{
			struct reply r = c->reply;

			reply_init(&c->reply);
			evtimer_del(c->timer);
			client_reply(c, &r);
		}
	}
}

/* "192.0.2.1:25" or "[2001:db8::1]:25", for the protocol log. */
static void
client_format_endpoint(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

static void
client_endpoints(struct smtp_client *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		client_format_endpoint(&ss, c->local, sizeof(c->local));
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == CS_HANDSHAKE) {
			client_handshake_done(c, 1);
			return;
		}
		client_endpoints(c, bufferevent_getfd(bev));
		client_log(c, '+', NULL, 0, NULL);
		c->state = CS_BANNER;
		reply_init(&c->reply);
		client_arm(c, c->p.connector->connection_inactivity_timeout);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		if (c->state == CS_HANDSHAKE) {
			client_handshake_done(c, 0);
			return;
		}
		if (c->state == CS_QUIT || c->state == CS_IDLE) {
			client_end(c);
			return;
		}
		if (c->state == CS_CONNECT)
			client_next_hop(c, "4.4.1", "connection failed: %s",
			    strerror(EVUTIL_SOCKET_ERROR()));
		else
			client_next_hop(
			    c, "4.4.2", "connection closed by the server");
	}
}

static void
client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CS_IDLE:
		c->state = CS_QUIT;
		client_send(c, "QUIT");
		client_arm(c, 5);
		return;
	case CS_QUIT:
		client_end(c);
		return;
	case CS_CONNECT:
		client_next_hop(c, "4.4.1", "connection timed out");
		return;
	default:
		client_next_hop(c, "4.4.2", "timeout waiting for the server");
		return;
	}
}

static void
client_connect(struct smtp_client *c)
{
	const struct resolver_hop *h = client_hop(c);

	client_format_endpoint(&h->addr, c->remote, sizeof(c->remote));
	/* Unique across restarts, like the receive side's session ids. */
	if (client_sessions == 0)
		client_sessions = (unsigned long long)time(NULL) << 20;
	snprintf(
	    c->session_id, sizeof(c->session_id), "%016llX", ++client_sessions);
	c->seq = 0;
	c->state = CS_CONNECT;
	c->reported = 0;
	c->tls_version[0] = '\0';
	c->tls_verified = 0;
	if (!c->plain_retry)
		c->tls_summary[0] = '\0';
	if (c->p.connector->ignore_starttls)
		snprintf(c->tls_summary, sizeof(c->tls_summary),
		    "tls=IgnoreSTARTTLS:none");
	c->bev = bufferevent_socket_new(c->p.base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		client_next_hop(c, "4.3.0", "out of memory");
		return;
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_INPUT_MAX);
	bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	client_arm(c, CLIENT_CONNECT_SECONDS);
	if (bufferevent_socket_connect(
	        c->bev, (const struct sockaddr *)&h->addr, (int)h->addrlen) < 0)
		client_next_hop(
		    c, "4.4.1", "cannot connect: %s", strerror(errno));
}

struct smtp_client *
smtp_client_start(const struct smtp_client_params *p)
{
	struct smtp_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->p = *p;
	c->timer = evtimer_new(p->base, client_timer_cb, c);
	if (c->timer == NULL || p->nhops == 0) {
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return NULL;
	}
	client_connect(c);
	return c;
}

void
smtp_client_resume(struct smtp_client *c)
{
	if (c->state != CS_IDLE)
		return;
	evtimer_del(c->timer);
	c->state = CS_READY;
	client_start_transaction(c);
}

int
smtp_client_idle(const struct smtp_client *c)
{
	return c->state == CS_IDLE;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->state == CS_IDLE || c->state == CS_READY) {
		c->state = CS_QUIT;
		client_send(c, "QUIT");
		client_arm(c, 5);
	} else if (c->state != CS_QUIT && c->state != CS_CLOSED &&
	           c->msg == NULL) {
		client_end(c);
	}
}

void
smtp_client_abort(struct smtp_client *c)
{
	if (c->closing)
		return; /* client_finish_cb is scheduled and frees it */
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
	return client_tls_required(c) ? "tls=required:none"
	                              : "tls=opportunistic:none";
}
