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
 * mail).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tls/tls_policy.h"

static int
tls_policy_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* The level the connector's own settings (and Domain Security) set. */
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

void
tls_policy_decide(const struct tls_policy_input *in, struct tls_policy *p)
{
	const struct conf_send_connector *sc = in->connector;

	memset(p, 0, sizeof(*p));
	p->connector = sc->name;
	p->domain = in->domain;
	p->source = TLS_SOURCE_CONNECTOR;
	if (!tls_policy_empty(sc->tls_certificate_name))
		p->cert_name = sc->tls_certificate_name;
	tls_policy_connector(in, p);
	/*
	 * A transport rule's RouteMessageOutboundRequireTls is a floor
	 * above the connector's: at least EncryptionOnly, IgnoreSTARTTLS
	 * giving way; a stricter level stays as it is (SPEC 5).
	 */
	if (!tls_policy_empty(in->rule)) {
		p->rule = in->rule;
		if (p->level < TLS_POLICY_ENCRYPT) {
			p->level = TLS_POLICY_ENCRYPT;
			p->source = TLS_SOURCE_TRANSPORT_RULE;
		}
	}
}

int
tls_policy_required(const struct tls_policy *p)
{
	return p->level >= TLS_POLICY_ENCRYPT;
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
		    "TLS is required and the next hop does not offer "
		    "STARTTLS");
	else if (f->unavailable)
		tls_policy_say(why, whylen,
		    "TLS is required and cannot be started here (no client "
		    "TLS context; see the daemon's log)");
	else
		tls_policy_say(
		    why, whylen, "TLS is required and the handshake failed");
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
		tls_policy_say(why, whylen, "STARTTLS refused%s%s",
		    tls_policy_empty(f->error) ? "" : ": ",
		    tls_policy_empty(f->error) ? "" : f->error);
		return required ? TLS_ACTION_DEFER : TLS_ACTION_PLAINTEXT;
	case TLS_STAGE_HANDSHAKE:
		break;
	}
	if (o == NULL || !o->tls || !o->handshake_ok) {
		*check = TLS_CHECK_HANDSHAKE;
		tls_policy_say(why, whylen, "TLS handshake failed%s%s%s",
		    tls_policy_empty(f->error) ? "" : ": ",
		    tls_policy_empty(f->error) ? "" : f->error,
		    required ? "" : "; retrying in plaintext");
		return required ? TLS_ACTION_DEFER : TLS_ACTION_RETRY_PLAINTEXT;
	}
	*check = tls_evaluate(
	    tls_policy_auth_level(p), o, p->tls_domain, p->domain, why, whylen);
	if (*check == TLS_CHECK_OK || !required)
		return TLS_ACTION_SEND;
	return TLS_ACTION_DEFER;
}

static void
tls_policy_words(const struct tls_policy *p, char *out, size_t len)
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

void
tls_policy_describe(const struct tls_policy *p, char *out, size_t len)
{
	size_t w;

	tls_policy_words(p, out, len);
	/* a rule's requirement the connector meets already is said too */
	if (p->rule != NULL && p->source != TLS_SOURCE_TRANSPORT_RULE &&
	    (w = strlen(out)) + 1 < len)
		snprintf(out + w, len - w,
		    " (transport rule \"%s\" requires TLS too)", p->rule);
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
