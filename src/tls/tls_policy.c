/*
 * tls_policy.c - the send-side TLS requirement (see tls_policy.h).
 *
 * Where it sits: between the configuration and every outbound
 * connection.  The SMTP client decides the policy for each next hop it
 * tries and asks tls_policy_judge() at each step (EHLO seen, STARTTLS
 * refused, handshake over); `sluicectl route` and `test-tls` call the
 * same functions, so what they print is what the daemon does.
 *
 * Pure: no I/O, no clock, no OpenSSL state beyond reading a handshake's
 * outcome through tls_evaluate().  The table test
 * (tests/unit/test_tls_policy.c) walks every row of SPEC's TLS table.
 *
 * Invariants: a level from ENCRYPT up never yields PLAINTEXT or
 * RETRY_PLAINTEXT (forced TLS never falls back, GUIDE 4.8); NONE never
 * yields STARTTLS; MAY never yields DEFER (opportunistic TLS never stops
 * mail) unless a transport rule, DANE or MTA-STS enforce raised it.
 *
 * The order of the decision (tls_policy_decide()):
 *   1. the connector (SPEC 3's table; Domain Security);
 *   2. a transport rule's RouteMessageOutboundRequireTls (SPEC 5): at
 *      least ENCRYPT, IgnoreSTARTTLS giving way, a stricter connector
 *      level kept.  These two are the floor (floor_level): a check the
 *      floor needs that fails always defers;
 *   3. DANE and MTA-STS (issue 16, SPEC 6), per next hop:
 *      tls_dane_decide() for the host's TLSA records, then, only where
 *      DANE does not apply, the domain's MTA-STS policy.  Either may
 *      raise the level to ENCRYPT (never lower it), add its check after
 *      the floor's in tls_policy_judge(), or rule the host out (skip).
 *      Their reasons start with "DANE:" or "MTA-STS enforce:" when they
 *      raised the requirement, so a DSN says which policy stopped the
 *      mail.  The connector's IgnoreSTARTTLS turns them off, also when a
 *      rule then requires TLS (Postfix: a per-destination level other
 *      than "dane" replaces DANE); the rule gets EncryptionOnly there.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sts/sts_policy.h"
#include "tls/tls_policy.h"

static int
tls_policy_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* The connector's own requirement (SPEC 3's table). */
static void
tls_policy_connector(const struct tls_policy_input *in, struct tls_policy *p)
{
	const struct conf_send_connector *sc = in->connector;

	if (sc->domain_secure_enabled && in->conf != NULL &&
	    in->domain != NULL &&
	    conf_strlist_has(
	        &in->conf->transport.send_domain_secure, in->domain)) {
		/*
		 * Domain Security: DomainValidation against the recipient
		 * domain (never TlsDomain), partner CAs trusted, and our
		 * certificate presented: the connector's, else the first
		 * configured one (Exchange's default certificate).
		 */
		p->level = TLS_POLICY_DOMAIN_SECURE;
		p->source = TLS_SOURCE_DOMAIN_SECURE;
		p->partner_trust = 1;
		if (p->cert_name == NULL && in->conf->ncertificates > 0)
			p->cert_name = in->conf->certificates[0].name;
		return;
	}
	if (sc->ignore_starttls) {
		p->level = TLS_POLICY_NONE;
		return;
	}
	if (!sc->require_tls) {
		p->level = TLS_POLICY_MAY;
		return;
	}
	switch (sc->tls_auth_level) {
	case TLS_AUTH_NONE: /* RequireTLS alone is EncryptionOnly */
	case TLS_AUTH_ENCRYPTION_ONLY:
		p->level = TLS_POLICY_ENCRYPT;
		break;
	case TLS_AUTH_CERTIFICATE_VALIDATION:
		p->level = TLS_POLICY_VERIFY;
		break;
	case TLS_AUTH_DOMAIN_VALIDATION:
		p->level = TLS_POLICY_DOMAIN;
		if (!tls_policy_empty(sc->tls_domain))
			p->tls_domain = sc->tls_domain;
		break;
	}
}

/* TLS required by a rule, DANE or MTA-STS: at least ENCRYPT, never less. */
static void
tls_policy_raise(struct tls_policy *p, enum tls_policy_source source)
{
	if (p->level < TLS_POLICY_ENCRYPT) {
		p->level = TLS_POLICY_ENCRYPT;
		p->source = source;
	}
}

/*
 * DANE, then MTA-STS, for a known next hop (SPEC 6), on top of the floor.
 * The caller leaves them out under IgnoreSTARTTLS: the administrator said
 * never to try TLS there.
 */
static void
tls_policy_internet(const struct tls_policy_input *in, struct tls_policy *p)
{
	const struct conf_send_connector *sc = in->connector;
	const struct sts_state *st = in->sts;

	if (in->host == NULL)
		return;
	if (sc->smtp_dane_mode != DANE_MODE_NONE) {
		p->dane = tls_dane_decide(sc->smtp_dane_mode, in->host,
		    in->addr_secure, in->tlsa, p->dane_why,
		    sizeof(p->dane_why));
		p->tlsa = in->tlsa;
	}
	switch (p->dane) {
	case TLS_DANE_SKIP:
		p->skip = 1;
		snprintf(p->skip_why, sizeof(p->skip_why), "%s", p->dane_why);
		return;
	case TLS_DANE_VERIFY:
	case TLS_DANE_ENCRYPT:
		/* RFC 8461 2: DANE, where it applies, wins. */
		tls_policy_raise(p, TLS_SOURCE_DANE);
		return;
	case TLS_DANE_OFF:
		break;
	}
	if (st == NULL || !st->has_policy || !sc->dns_routing_enabled ||
	    sc->mta_sts_mode == MTASTS_MODE_NONE ||
	    st->policy.mode == STS_POLICY_NONE)
		return;
	p->sts_id = st->id;
	p->sts_match = sts_policy_match(&st->policy, in->host);
	if (st->policy.mode == STS_POLICY_TESTING) {
		p->sts = TLS_STS_TESTING; /* report, never stop */
		return;
	}
	p->sts = TLS_STS_ENFORCE;
	if (!p->sts_match) {
		p->skip = 1;
		snprintf(p->skip_why, sizeof(p->skip_why),
		    "MTA-STS enforce: %s does not match the policy of %s (id "
		    "%s)",
		    in->host, in->domain != NULL ? in->domain : "the domain",
		    st->id);
		return;
	}
	tls_policy_raise(p, TLS_SOURCE_MTA_STS);
}

void
tls_policy_decide(const struct tls_policy_input *in, struct tls_policy *p)
{
	const struct conf_send_connector *sc = in->connector;
	int ignore_starttls;

	memset(p, 0, sizeof(*p));
	p->connector = sc->name;
	p->domain = in->domain;
	p->host = in->host;
	p->source = TLS_SOURCE_CONNECTOR;
	if (!tls_policy_empty(sc->tls_certificate_name))
		p->cert_name = sc->tls_certificate_name;
	tls_policy_connector(in, p);
	ignore_starttls = p->level == TLS_POLICY_NONE;
	/*
	 * A transport rule's RouteMessageOutboundRequireTls is a floor
	 * above the connector's: at least EncryptionOnly, IgnoreSTARTTLS
	 * giving way; a stricter level stays as it is (SPEC 5).
	 */
	if (!tls_policy_empty(in->rule)) {
		p->rule = in->rule;
		tls_policy_raise(p, TLS_SOURCE_TRANSPORT_RULE);
	}
	p->floor_level = p->level;
	if (!ignore_starttls)
		tls_policy_internet(in, p);
}

int
tls_policy_required(const struct tls_policy *p)
{
	return p->level >= TLS_POLICY_ENCRYPT;
}

int
tls_policy_authenticates(const struct tls_policy *p)
{
	return p->level >= TLS_POLICY_VERIFY || p->dane == TLS_DANE_VERIFY ||
	       p->sts != TLS_STS_NONE;
}

/*
 * Who asks for TLS, as the start of a reason: "" for the floor (the
 * connector, or a transport rule, which the queue names in the DSN),
 * else the Internet policy that raised the level.
 */
static const char *
tls_policy_who(const struct tls_policy *p)
{
	if (p->floor_level >= TLS_POLICY_ENCRYPT)
		return "";
	if (p->dane == TLS_DANE_VERIFY || p->dane == TLS_DANE_ENCRYPT)
		return "DANE: ";
	if (p->sts == TLS_STS_ENFORCE)
		return "MTA-STS enforce: ";
	return "";
}

enum tls_auth_level
tls_policy_auth_level(const struct tls_policy *p)
{
	switch (p->level) {
	case TLS_POLICY_NONE:
	case TLS_POLICY_MAY:
		return TLS_AUTH_NONE;
	case TLS_POLICY_ENCRYPT:
		return TLS_AUTH_ENCRYPTION_ONLY;
	case TLS_POLICY_VERIFY:
		return TLS_AUTH_CERTIFICATE_VALIDATION;
	case TLS_POLICY_DOMAIN:
	case TLS_POLICY_DOMAIN_SECURE:
		return TLS_AUTH_DOMAIN_VALIDATION;
	}
	return TLS_AUTH_DOMAIN_VALIDATION; /* unknown: the strictest */
}

const char *
tls_policy_name(const struct tls_policy *p)
{
	if (p->dane == TLS_DANE_VERIFY || p->dane == TLS_DANE_ENCRYPT)
		return "dane";
	if (p->sts == TLS_STS_ENFORCE)
		return "sts-enforce";
	if (p->sts == TLS_STS_TESTING)
		return "sts-testing";
	switch (p->level) {
	case TLS_POLICY_NONE:
		return "IgnoreSTARTTLS";
	case TLS_POLICY_MAY:
		return "opportunistic";
	default:
		return tls_level_name(tls_policy_auth_level(p));
	}
}

static void __attribute__((format(printf, 3, 4)))
tls_policy_say(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (out == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

/* EHLO answered in plaintext: try TLS, go on without it, or give up. */
static enum tls_action
tls_policy_at_ehlo(const struct tls_policy *p, const struct tls_facts *f,
    enum tls_check *check, char *why, size_t whylen)
{
	if (p->level == TLS_POLICY_NONE) {
		*check = TLS_CHECK_NO_TLS;
		return TLS_ACTION_PLAINTEXT;
	}
	if (f->offered && !f->unavailable && !f->plain_retry)
		return TLS_ACTION_STARTTLS;
	*check = TLS_CHECK_NO_TLS;
	if (!tls_policy_required(p))
		return TLS_ACTION_PLAINTEXT;
	if (!f->offered)
		tls_policy_say(why, whylen,
		    "%sTLS is required and the next hop does not offer "
		    "STARTTLS",
		    tls_policy_who(p));
	else if (f->unavailable)
		tls_policy_say(why, whylen,
		    "%sTLS is required and cannot be started here (no client "
		    "TLS context; see the daemon's log)",
		    tls_policy_who(p));
	else
		tls_policy_say(why, whylen,
		    "%sTLS is required and the handshake failed",
		    tls_policy_who(p));
	return TLS_ACTION_DEFER;
}

enum tls_action
tls_policy_judge(const struct tls_policy *p, const struct tls_facts *f,
    enum tls_check *check, char *why, size_t whylen)
{
	enum tls_check dummy;
	const struct tls_outcome *o = f->outcome;
	int required = tls_policy_required(p);

	if (check == NULL)
		check = &dummy;
	*check = TLS_CHECK_OK;
	tls_policy_say(why, whylen, "%s", "");
	switch (f->stage) {
	case TLS_STAGE_EHLO:
		return tls_policy_at_ehlo(p, f, check, why, whylen);
	case TLS_STAGE_REFUSED:
		*check = TLS_CHECK_NO_TLS;
		tls_policy_say(why, whylen, "%sSTARTTLS refused%s%s",
		    required ? tls_policy_who(p) : "",
		    tls_policy_empty(f->error) ? "" : ": ",
		    tls_policy_empty(f->error) ? "" : f->error);
		return required ? TLS_ACTION_DEFER : TLS_ACTION_PLAINTEXT;
	case TLS_STAGE_HANDSHAKE:
		break;
	}
	if (o == NULL || !o->tls || !o->handshake_ok) {
		*check = TLS_CHECK_HANDSHAKE;
		tls_policy_say(why, whylen, "%sTLS handshake failed%s%s%s",
		    required ? tls_policy_who(p) : "",
		    tls_policy_empty(f->error) ? "" : ": ",
		    tls_policy_empty(f->error) ? "" : f->error,
		    required ? "" : "; retrying in plaintext");
		return required ? TLS_ACTION_DEFER : TLS_ACTION_RETRY_PLAINTEXT;
	}
	*check = tls_evaluate(
	    tls_policy_auth_level(p), o, p->tls_domain, p->domain, why, whylen);
	/* The connector's own requirement, or a rule's, is the floor. */
	if (*check != TLS_CHECK_OK && p->floor_level >= TLS_POLICY_ENCRYPT)
		return TLS_ACTION_DEFER;
	if (p->dane == TLS_DANE_VERIFY) {
		if (f->dane_ok) {
			*check = TLS_CHECK_OK;
			tls_policy_say(why, whylen, "%s", "");
			return TLS_ACTION_SEND;
		}
		*check = TLS_CHECK_DANE;
		tls_policy_say(why, whylen, "%s",
		    tls_policy_empty(f->dane_why)
		        ? "DANE: no TLSA record matched the certificate"
		        : f->dane_why);
		return TLS_ACTION_DEFER;
	}
	if (p->sts != TLS_STS_NONE) {
		char w[400];
		enum tls_check c =
		    p->sts_match ? TLS_CHECK_OK : TLS_CHECK_STS_MX;

		/* RFC 8461 4.2: a trusted chain naming the MX host itself */
		w[0] = '\0';
		if (c == TLS_CHECK_OK)
			c = tls_evaluate(TLS_AUTH_DOMAIN_VALIDATION, o, NULL,
			    p->host, w, sizeof(w));
		else
			snprintf(w, sizeof(w), "%s is not in the policy",
			    p->host != NULL ? p->host : "the host");
		*check = c;
		if (c == TLS_CHECK_OK) {
			tls_policy_say(why, whylen, "%s", "");
			return TLS_ACTION_SEND;
		}
		tls_policy_say(why, whylen, "MTA-STS %s: %s",
		    p->sts == TLS_STS_ENFORCE ? "enforce" : "testing", w);
		return p->sts == TLS_STS_ENFORCE ? TLS_ACTION_DEFER
		                                 : TLS_ACTION_SEND;
	}
	if (*check == TLS_CHECK_OK || !required)
		return TLS_ACTION_SEND;
	return TLS_ACTION_DEFER;
}

static void tls_policy_describe_floor(
    const struct tls_policy *, char *, size_t);

/*
 * The floor's words (the connector's, or the rule's), then what DANE and
 * MTA-STS add.
 */
void
tls_policy_describe(const struct tls_policy *p, char *out, size_t len)
{
	struct tls_policy floor = *p;
	size_t n;

	floor.level = p->floor_level;
	tls_policy_describe_floor(&floor, out, len);
	n = strlen(out);
	/* a rule's requirement the connector meets already is said too */
	if (p->rule != NULL && p->source != TLS_SOURCE_TRANSPORT_RULE &&
	    n + 1 < len) {
		snprintf(out + n, len - n,
		    " (transport rule \"%s\" requires TLS too)", p->rule);
		n = strlen(out);
	}
	if (p->skip)
		snprintf(out + n, len - n, "; this host is not used: %s",
		    p->skip_why);
	else if (p->dane == TLS_DANE_VERIFY)
		snprintf(out + n, len - n,
		    "; %s: TLS required and a TLSA record must match",
		    p->dane_why);
	else if (p->dane == TLS_DANE_ENCRYPT)
		snprintf(out + n, len - n, "; %s", p->dane_why);
	else if (p->sts == TLS_STS_ENFORCE)
		snprintf(out + n, len - n,
		    "; MTA-STS enforce (policy id %s): TLS with a trusted "
		    "certificate naming %s required",
		    p->sts_id != NULL ? p->sts_id : "?",
		    p->host != NULL ? p->host : "the host");
	else if (p->sts == TLS_STS_TESTING)
		snprintf(out + n, len - n,
		    "; MTA-STS testing (policy id %s): checked and reported, "
		    "never enforced%s",
		    p->sts_id != NULL ? p->sts_id : "?",
		    p->sts_match ? "" : " (the host is not in the policy)");
}

static void
tls_policy_describe_floor(const struct tls_policy *p, char *out, size_t len)
{
	char ours[200] = "";

	if (p->cert_name != NULL && p->level != TLS_POLICY_DOMAIN_SECURE)
		snprintf(ours, sizeof(ours),
		    "; our certificate \"%s\" is presented when asked",
		    p->cert_name);
	switch (p->level) {
	case TLS_POLICY_DOMAIN_SECURE:
		snprintf(out, len,
		    "Domain Security: TLS required, our certificate %s%s%s "
		    "presented, peer chain validated and must name the "
		    "recipient domain%s%s; otherwise defer",
		    p->cert_name != NULL ? "\"" : "",
		    p->cert_name != NULL ? p->cert_name : "(none configured)",
		    p->cert_name != NULL ? "\"" : "",
		    tls_policy_empty(p->domain) ? "" : " ",
		    tls_policy_empty(p->domain) ? "" : p->domain);
		return;
	case TLS_POLICY_NONE:
		snprintf(
		    out, len, "IgnoreSTARTTLS: plaintext, TLS never tried");
		return;
	case TLS_POLICY_MAY:
		snprintf(out, len,
		    "opportunistic: STARTTLS when offered, no certificate "
		    "checks; plaintext when TLS is not offered or fails%s",
		    ours);
		return;
	case TLS_POLICY_ENCRYPT:
		if (p->source == TLS_SOURCE_TRANSPORT_RULE) {
			snprintf(out, len,
			    "RequireTLS by transport rule \"%s\" "
			    "(RouteMessageOutboundRequireTls), EncryptionOnly: "
			    "TLS required, certificate not checked; otherwise "
			    "defer%s",
			    p->rule, ours);
			return;
		}
		snprintf(out, len,
		    "RequireTLS, EncryptionOnly: TLS required, certificate "
		    "not checked; otherwise defer%s",
		    ours);
		return;
	case TLS_POLICY_VERIFY:
		snprintf(out, len,
		    "RequireTLS, CertificateValidation: TLS with a "
		    "certificate chaining to TrustedCAFile; otherwise "
		    "defer%s",
		    ours);
		return;
	case TLS_POLICY_DOMAIN:
		snprintf(out, len,
		    "RequireTLS, DomainValidation: TLS with a trusted "
		    "certificate naming %s%s%s; otherwise defer%s",
		    p->tls_domain != NULL ? p->tls_domain
		                          : "the recipient domain",
		    p->tls_domain == NULL && !tls_policy_empty(p->domain) ? " "
		                                                          : "",
		    p->tls_domain == NULL && !tls_policy_empty(p->domain)
		        ? p->domain
		        : "",
		    ours);
		return;
	}
	snprintf(out, len, "?");
}

const char *
tls_action_name(enum tls_action a)
{
	static const char *const names[] = {
	    [TLS_ACTION_STARTTLS] = "STARTTLS",
	    [TLS_ACTION_PLAINTEXT] = "PLAINTEXT",
	    [TLS_ACTION_RETRY_PLAINTEXT] = "RETRY_PLAINTEXT",
	    [TLS_ACTION_SEND] = "SEND",
	    [TLS_ACTION_DEFER] = "DEFER",
	};

	if ((unsigned)a < sizeof(names) / sizeof(names[0]) && names[a] != NULL)
		return names[a];
	return "?";
}
