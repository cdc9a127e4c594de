/*
 * smtp_client.h - one outbound SMTP connection, driven by the event loop.
 *
 * A client is given the ordered next hops of one destination and works
 * through them until one greets, says EHLO (or HELO) and meets the send
 * connector's TLS policy; then it asks its owner for messages one at a
 * time (next), sends each as one transaction (MAIL, every RCPT, then BDAT
 * or DATA; pipelined when offered) and reports every recipient's reply
 * (done).  When the owner has nothing more it can park the connection for
 * a few seconds (idle) so that the next message reuses it.  closed() is
 * the last call, exactly once.
 *
 * TLS follows SPEC's table as tls_policy_decide() and tls_policy_judge()
 * (src/tls/tls_policy.c) state it, decided for every next hop: under a
 * requirement, a next hop that does not meet it is never sent a MAIL
 * FROM and the client moves on to the next one.  DANE and MTA-STS (SPEC
 * 6) are further inputs of that decision: a next hop they rule out is
 * not connected to at all.
 */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H

#include <stddef.h>

#include "conf/conf.h"
#include "dns/resolver.h"
#include "tls/tls_result.h"

struct dest_tls;
struct event_base;
struct protolog;
struct smtp_client;
struct tls_client;
struct tls_store;

/* A reply kept per recipient as one line: code, enhanced code and text
 * (the lines of a multi-line reply joined). */
#define SMTP_CLIENT_STATUS_MAX 1000

struct smtp_client_rcpt {
	const char *addr;
	const char *orcpt; /* "rfc822;user@example" or "" */
	unsigned notify;   /* SMTP_NOTIFY_* or 0 */
	/* the outcome, set by the client before done() */
	int code;     /* 250, 450, 550; 0: not tried */
	char enh[16]; /* "2.0.0"; from the code if absent */
	char status[SMTP_CLIENT_STATUS_MAX]; /* "550 5.1.1 no such user" */
	int dsn_passed; /* the next hop took our NOTIFY (it offers DSN) */
};

/*
 * The stored message, read in pieces as the client sends it: 1 with the
 * next piece in *p and *n (valid until the next call), 0 at the end, -1
 * when it cannot be read (the connection is then dropped before the
 * message could end, and its recipients are deferred).
 */
typedef int (*smtp_client_read_fn)(void *src, const char **p, size_t *n);

struct smtp_client_msg {
	const char *queue_id;
	const char *sender; /* "" for the null reverse-path */
	const char *envid;
	int ret;       /* enum smtp_ret */
	int body_type; /* enum smtp_body */
	int smtputf8;
	unsigned long long size;  /* of the stored message (SIZE=) */
	smtp_client_read_fn read; /* the stored message, CRLF lines */
	void *src;
	int requiretls;   /* RFC 8689: only over validated TLS, else 5.7.30 */
	int tls_optional; /* "TLS-Required: No" (RFC 8689 3) */
	struct smtp_client_rcpt *rcpts;
	size_t nrcpts;
	void *owner; /* the owner's own record of the message */
};

/*
 * What one connection to a next hop came to, once its TLS is decided:
 * it goes on (result OK: TLS as the policy wants, or plaintext where the
 * policy allows it), or it is left for a TLS reason (the RFC 8460 type).
 * A connection that fails before the decision (no greeting, EHLO
 * refused) is not a TLS session and is not reported.
 */
struct smtp_client_session {
	const char *host;    /* the next hop's name */
	const char *policy;  /* the tls= policy name, "opportunistic", ... */
	const char *version; /* "TLSv1.3", or "" when TLS is not used */
	int verified;        /* a trusted chain naming the host (or, under
	                        DomainValidation, what the policy named) */
	enum tls_result result;
	const char *reason; /* why it failed, "" when it did not */
	int plain_retry;    /* the plaintext retry after a failed handshake */
	/* for TLS reports: "addr:port" of both ends, the EHLO name */
	const char *local, *remote, *helo;
	/*
	 * The recipient's published policy the session was held to (RFC
	 * 8460 4.4): "tlsa" (DANE applied to the host: the policy domain is
	 * its TLSA base domain, the strings its records), "sts" (the
	 * recipient domain's MTA-STS policy: its lines and mx patterns,
	 * joined by \n; or none to be had, result sts-policy-fetch-error or
	 * -invalid), or "no-policy-found" (the recipient domain).
	 */
	const char *policy_type, *policy_domain, *policy_strings, *mx_patterns;
	/* DANE's need of the host ("verify", "encrypt", "skip", "off"),
	 * MTA-STS's mode ("enforce", "testing", "none", "" for no policy)
	 * and policy id, for the partner's posture */
	const char *dane, *sts_mode, *sts_id;
	/* the connection was handed over from another destination
	 * (smtp_client_retarget): a session for this one, not a new
	 * connection */
	int reused;
};

struct smtp_client_ops {
	/* The connection can take a message: the next, or NULL for none. */
	struct smtp_client_msg *(*next)(void *arg, struct smtp_client *);
	/* Every recipient of msg has its outcome. */
	void (*done)(void *arg, struct smtp_client *, struct smtp_client_msg *);
	/*
	 * The client is finished and will be freed on return.  delivered:
	 * it reached a next hop that took part in at least one transaction.
	 * why: the reason the last next hop could not be used, "" if none.
	 */
	void (*closed)(void *arg, struct smtp_client *, int delivered,
	    const char *enh, const char *why);
	/* Optional: once per connection, at its TLS decision (above). */
	void (*session)(void *arg, struct smtp_client *,
	    const struct smtp_client_session *);
};

struct smtp_client_params {
	struct event_base *base;
	/* the configuration and its connector: they outlive the client */
	const struct conf *conf;
	const struct conf_send_connector *connector;
	const char *domain; /* recipient domain */
	/* a transport rule requires TLS (RouteMessageOutboundRequireTls):
	 * the policy is at least EncryptionOnly; NULL when none does */
	const char *tls_rule;
	/*
	 * The messages said "TLS-Required: No" (RFC 8689 3): DANE and
	 * MTA-STS are not inputs of the policy (their failures do not stop
	 * the mail); the connector's Force TLS and a rule's floor still are.
	 * The tracking log's tls= says so (";TlsRequired=No") where they
	 * would have applied.
	 */
	int tls_optional;
	const struct resolver_hop *hops;
	size_t nhops;
	struct tls_client *tls;        /* client TLS context; NULL: no TLS */
	const struct tls_store *certs; /* our certificates */
	const char *auth_user;         /* SmartHostAuthMechanism credentials */
	const char *auth_pass;
	struct protolog *protolog; /* SmtpSend protocol log, may be NULL */
	/*
	 * DANE and MTA-STS facts of the hops (dest_tls.h), NULL when none
	 * were gathered; the client keeps a reference while it runs.
	 */
	struct dest_tls *dest_tls;
	const struct smtp_client_ops *ops;
	void *arg;
};

/* Start connecting; NULL when out of memory. */
struct smtp_client *smtp_client_start(const struct smtp_client_params *);
/* The owner has a message for an idle client (it then calls next()). */
void smtp_client_resume(struct smtp_client *);
/* Is the client parked, waiting for a message? */
int smtp_client_idle(const struct smtp_client *);
/*
 * End the connection soon (QUIT if possible); closed() follows.  why, when
 * not NULL, is written to the protocol log as the reason for the QUIT.
 */
void smtp_client_quit(struct smtp_client *, const char *why);

/* Free at once, without callbacks (the daemon is exiting). */
void smtp_client_abort(struct smtp_client *);

/*
 * What a parked connection is re-targeted to: another destination whose
 * most preferred next hops include the host and address it is connected
 * to (issue 19).  The strings and hops belong to the new owner and must
 * outlive the client, as smtp_client_params' do.
 */
struct smtp_client_target {
	const char *domain;
	const char *tls_rule;
	int tls_optional;
	const struct resolver_hop *hops;
	size_t nhops;
	size_t hop; /* the one of hops the connection is to */
	struct dest_tls *dest_tls;
};

/*
 * Serve target from now on, when the connection, idle, would have been
 * made under the same TLS policy for it: target's hop (t->hop) is the
 * host name and address it is connected to and one of target's most
 * preferred hops, neither destination's DANE nor
 * MTA-STS applying, the same level, floor, certificate and transport
 * rule, and nothing that names the recipient domain (Domain Security,
 * DomainValidation without TlsDomain).  On success the domain, hops, DANE
 * and MTA-STS facts and the policy are target's, the protocol log says
 * so, and session() is called again for the new destination (reused
 * set) before this returns.  -1, with nothing changed and why filled in,
 * when it cannot be reused.  The per-message checks (REQUIRETLS, SMTPUTF8,
 * SIZE) stay where they are: every message meets them.
 */
int smtp_client_retarget(struct smtp_client *,
    const struct smtp_client_target *, char *why, size_t len);

/* The host in use (or the last one tried), and the TLS outcome for logs
 * ("tls=...;..."). */
const char *smtp_client_host(const struct smtp_client *);
const char *smtp_client_tls(const struct smtp_client *);
/*
 * The host the connection in place was made to, by the name its TLS was
 * checked against ("" with no connection): what a parked connection is
 * offered to other destinations under (smtp_client_retarget).
 */
const char *smtp_client_connected_host(const struct smtp_client *);
/* For the tracking log: the connection's ends ("addr:port", "" before
 * the first connection) and the SmtpSend protocol log's session id. */
const char *smtp_client_local(const struct smtp_client *);
const char *smtp_client_remote(const struct smtp_client *);
const char *smtp_client_session(const struct smtp_client *);

#endif
