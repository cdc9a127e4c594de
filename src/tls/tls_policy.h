/*
 * tls_policy.h - the send-side TLS requirement, decided in one place
 * (SPEC 3, "TLS per send connector").
 *
 * Three pure functions, called by the daemon's SMTP client
 * (src/deliver/smtp_client.c), `sluicectl route` (src/route/route.c) and
 * `sluicectl test-tls` (src/ctl/ctl_testtls.c), so that the tools print
 * the policy the daemon applies, never a copy of it:
 *
 *   tls_policy_decide()    the inputs (send connector, Transport's
 *                          TLSSendDomainSecureList, recipient domain,
 *                          next hop) -> one ordered policy value;
 *   tls_policy_judge()     the policy and what a connection has seen so
 *                          far (STARTTLS offered?  handshake outcome?)
 *                          -> what the client does next;
 *   tls_policy_describe()  the policy in words, for people.
 *
 * Further inputs, in the order they apply, each only adding to what
 * comes before it:
 *   - the send connector's Force TLS settings, the floor (SPEC 3);
 *   - a transport rule's RouteMessageOutboundRequireTls (SPEC 5), which
 *     raises the floor to at least EncryptionOnly (a stricter connector
 *     level stays; IgnoreSTARTTLS gives way);
 *   - DANE's TLSA records of the next hop, then, only where DANE does not
 *     apply to the host, the domain's MTA-STS policy (issue 16, SPEC 6):
 *     they raise the level to "TLS required" and add a check of their
 *     own after the floor's (DANE: a TLSA record must match; MTA-STS
 *     enforce: a trusted certificate naming the MX host), or rule a next
 *     hop out before it is even connected to (skip).  DANE, where it
 *     applies to a host, wins over MTA-STS (RFC 8461 2).
 * struct tls_policy records which input set the level (source) and the
 * floor DANE and MTA-STS found (floor_level).
 */
#ifndef SLUICE_TLS_POLICY_H
#define SLUICE_TLS_POLICY_H

#include <stddef.h>

#include "conf/conf.h"
#include "dns/tlsa.h"
#include "sts/sts.h"
#include "tls/tls_dane.h"
#include "tls/tls_verify.h"

/*
 * Ordered, as Postfix's TLS levels: each level needs everything the ones
 * before it need, so "stricter" is a comparison.
 */
enum tls_policy_level {
	TLS_POLICY_NONE,          /* IgnoreSTARTTLS: never try TLS */
	TLS_POLICY_MAY,           /* opportunistic: TLS when offered */
	TLS_POLICY_ENCRYPT,       /* RequireTLS, EncryptionOnly */
	TLS_POLICY_VERIFY,        /* RequireTLS, CertificateValidation */
	TLS_POLICY_DOMAIN,        /* RequireTLS, DomainValidation */
	TLS_POLICY_DOMAIN_SECURE, /* Domain Security: mutual TLS */
};

/* Which input set the level. */
enum tls_policy_source {
	TLS_SOURCE_CONNECTOR,      /* the send connector's settings */
	TLS_SOURCE_DOMAIN_SECURE,  /* TLSSendDomainSecureList */
	TLS_SOURCE_TRANSPORT_RULE, /* RouteMessageOutboundRequireTls */
	TLS_SOURCE_DANE,           /* the next hop's TLSA records */
	TLS_SOURCE_MTA_STS,        /* the recipient domain's MTA-STS policy */
};

/* What the domain's MTA-STS policy asks of this next hop. */
enum tls_policy_sts {
	TLS_STS_NONE,    /* no policy, mode none, MtaStsMode None, or DANE */
	TLS_STS_TESTING, /* check and report, never stop the mail */
	TLS_STS_ENFORCE, /* a trusted certificate naming the host, or defer */
};

struct tls_policy_input {
	const struct conf *conf; /* TLSSendDomainSecureList, certificates */
	const struct conf_send_connector *connector;
	const char *domain; /* the recipient domain (lower case) */
	const char *host;   /* the next hop; NULL when not known yet */
	/* DANE: the hop's address record was DNSSEC-validated, and its
	 * TLSA look-up (NULL: not looked up) */
	int addr_secure;
	const struct tlsa_result *tlsa;
	/* the domain's MTA-STS policy in force (NULL: none known) */
	const struct sts_state *sts;
	/*
	 * The transport rule whose RouteMessageOutboundRequireTls applies
	 * to the recipients (SPEC 5), or NULL: at least ENCRYPT.
	 */
	const char *rule;
};

/*
 * The decision.  Strings are borrowed from the input and the
 * configuration and live as long as they do.
 */
struct tls_policy {
	enum tls_policy_level level;
	enum tls_policy_source source;
	const char *connector; /* the send connector's name */
	/*
	 * DOMAIN and DOMAIN_SECURE: the name the certificate must carry.
	 * tls_domain is the connector's TlsDomain (its "*.domain" rule),
	 * else NULL and the recipient domain is matched as a host name.
	 */
	const char *tls_domain;
	const char *domain;    /* the recipient domain */
	const char *cert_name; /* our certificate presented, or NULL */
	int partner_trust;     /* trust Domain Security's partner CAs too */
	const char *rule;      /* a transport rule requires TLS, or NULL */
	/*
	 * The floor: the connector's own level, raised by a transport
	 * rule's RouteMessageOutboundRequireTls, before DANE or MTA-STS
	 * raised it.  A check it needs failing always defers.
	 */
	enum tls_policy_level floor_level;
	const char *host; /* the next hop, for MTA-STS's name check */
	/* DANE for this host (RFC 7672 2.2) and its records */
	enum tls_dane_need dane;
	const struct tlsa_result *tlsa;
	char dane_why[400];
	/* MTA-STS for this host: the policy's mode and whether the host
	 * matches its mx patterns */
	enum tls_policy_sts sts;
	int sts_match;
	const char *sts_id;
	/* do not even connect to this host; skip_why says why ("DANE: ...",
	 * "MTA-STS enforce: ...") */
	int skip;
	char skip_why[600];
};

void tls_policy_decide(const struct tls_policy_input *, struct tls_policy *);

/* Where a connection to one next hop stands when the client asks. */
enum tls_stage {
	TLS_STAGE_EHLO,      /* EHLO (or HELO) answered, in plaintext */
	TLS_STAGE_REFUSED,   /* STARTTLS was answered, but not with 220 */
	TLS_STAGE_HANDSHAKE, /* the handshake ended, well or not */
};

struct tls_facts {
	enum tls_stage stage;
	int offered;       /* EHLO: the next hop offers STARTTLS */
	int unavailable;   /* EHLO: we have no TLS client context */
	int plain_retry;   /* this connection is the plaintext retry */
	const char *error; /* HANDSHAKE failed: the reason, or NULL */
	/* HANDSHAKE: what it established (tls_peer_outcome()) */
	const struct tls_outcome *outcome;
	/* HANDSHAKE, under DANE verify: did a TLSA record match
	 * (tls_dane_verified()), and if not, why */
	int dane_ok;
	const char *dane_why;
};

/* What the client does next. */
enum tls_action {
	TLS_ACTION_STARTTLS,        /* send STARTTLS now */
	TLS_ACTION_PLAINTEXT,       /* go on without TLS on this connection */
	TLS_ACTION_RETRY_PLAINTEXT, /* reconnect to this host, no TLS */
	TLS_ACTION_SEND,            /* TLS is up and meets the policy */
	TLS_ACTION_DEFER, /* this next hop fails the policy: QUIT, next hop */
};

/*
 * SPEC's TLS table as a function.  *check (may be NULL) receives the
 * failed check for DEFER (TLS_CHECK_NO_TLS, HANDSHAKE, UNTRUSTED, ...),
 * and for a handshake that went well the check an opportunistic or
 * EncryptionOnly connection would have failed (for the log; it does not
 * stop the mail); why receives one line for people and for the DSN:
 * "TLS is required and the next hop does not offer STARTTLS",
 * "TLS handshake failed: wrong version number", ...; "" when there is
 * nothing to say.
 */
enum tls_action tls_policy_judge(const struct tls_policy *,
    const struct tls_facts *, enum tls_check *check, char *why, size_t whylen);

/* Is TLS required (never plaintext)?  ENCRYPT and stricter. */
int tls_policy_required(const struct tls_policy *);

/*
 * Does a connection that meets the policy have an authenticated peer
 * (CertificateValidation and up, DANE verify, MTA-STS)?  The tracking
 * log then says "verified" rather than "encrypted".
 */
int tls_policy_authenticates(const struct tls_policy *);

/*
 * The TlsAuthLevel that tls_evaluate() applies for this policy
 * (TLS_AUTH_NONE for NONE and MAY).
 */
enum tls_auth_level tls_policy_auth_level(const struct tls_policy *);

/*
 * The policy's name in the message tracking log's tls= field:
 * "IgnoreSTARTTLS", "opportunistic", "EncryptionOnly",
 * "CertificateValidation", "DomainValidation" (Domain Security too: it
 * is DomainValidation against the recipient domain); "dane" when DANE
 * applies to the host, "sts-enforce" or "sts-testing" when the domain's
 * MTA-STS policy does (SPEC 6: dane:verified, sts-enforce:verified).
 */
const char *tls_policy_name(const struct tls_policy *);

/*
 * One line for people (`sluicectl route`, `test-tls`, the protocol log):
 * "RequireTLS, DomainValidation: TLS with a trusted certificate naming
 * *.contoso.com; otherwise defer"; a transport rule's requirement is
 * named, as what set the level or as met by the connector already; what
 * DANE or MTA-STS add to the floor follows ("; DANE: ...").
 */
void tls_policy_describe(const struct tls_policy *, char *out, size_t len);

/* "STARTTLS", "PLAINTEXT", ... for logs and tests; never NULL. */
const char *tls_action_name(enum tls_action);

#endif
