/*
 * conf_validate.c - Exchange's own constraints on connector settings
 * (SPEC 2, "Validation"), plus the references between sections.
 *
 * Each rule reports at the line of the key that breaks it, so the message
 * points where the administrator has to edit.
 *
 * Beyond Exchange's own rules, a setting that can never work is refused
 * rather than accepted and ignored (issue 11): a TlsDomain that no
 * TlsAuthLevel reads, a receive connector that requires TLS without a
 * certificate to offer it with.  What Exchange accepts but that probably
 * surprises (a connector shadowed by a tie) is a warning.  Sluice's own
 * keys have rules of their own (StatusListen: loopback only).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_keys.h"

/* "*.contoso.com" or "contoso.com"; never "w*.x", "*", "a.*.b". */
static int
validate_tls_domain(const char *s)
{
	if (strncmp(s, "*.", 2) == 0)
		s += 2;
	return *s != '\0' && strchr(s, '*') == NULL;
}

static int
validate_same_ranges(const struct conf_receive_connector *a,
    const struct conf_receive_connector *b)
{
	if (a->nremote_ranges != b->nremote_ranges)
		return 0;
	for (size_t i = 0; i < a->nremote_ranges; i++) {
		size_t j;

		for (j = 0; j < b->nremote_ranges; j++)
			if (memcmp(a->remote_ranges[i].lo,
			        b->remote_ranges[j].lo, 16) == 0 &&
			    memcmp(a->remote_ranges[i].hi,
			        b->remote_ranges[j].hi, 16) == 0)
				break;
		if (j == b->nremote_ranges)
			return 0;
	}
	return 1;
}

static int
validate_common_binding(const struct conf_receive_connector *a,
    const struct conf_receive_connector *b)
{
	for (size_t i = 0; i < a->nbindings; i++)
		for (size_t j = 0; j < b->nbindings; j++)
			if (a->bindings[i].sslen == b->bindings[j].sslen &&
			    memcmp(&a->bindings[i].ss, &b->bindings[j].ss,
			        a->bindings[i].sslen) == 0)
				return 1;
	return 0;
}

static void
validate_secure_list(struct conf *c, struct conf_parse *p,
    const struct conf_strlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strchr(l->v[i], '*') != NULL)
			conf_error_at(p, CONF_SEC_TRANSPORT, 0, key,
			    "%s: %s: domains in the secure lists take no "
			    "wildcard",
			    key, l->v[i]);
	(void)c;
}

static void
validate_receive(struct conf *c, struct conf_parse *p, size_t i)
{
	const struct conf_receive_connector *rc = &c->receive_connectors[i];
	unsigned am = rc->auth_mechanism;

	if (rc->require_tls && !(am & AUTHM_TLS))
		conf_error_at(p, CONF_SEC_RECEIVE, i, "RequireTLS",
		    "RequireTLS needs Tls in AuthMechanism");
	if (rc->domain_secure_enabled && !(am & AUTHM_TLS))
		conf_error_at(p, CONF_SEC_RECEIVE, i, "DomainSecureEnabled",
		    "DomainSecureEnabled needs Tls in AuthMechanism");
	if ((am & AUTHM_BASIC_REQUIRE_TLS) &&
	    (!(am & AUTHM_BASIC) || !(am & AUTHM_TLS)))
		conf_error_at(p, CONF_SEC_RECEIVE, i, "AuthMechanism",
		    "BasicAuthRequireTLS needs BasicAuth and Tls in "
		    "AuthMechanism");
	if ((am & AUTHM_EXTERNAL_AUTHORITATIVE) && (am & AUTHM_BASIC))
		conf_error_at(p, CONF_SEC_RECEIVE, i, "AuthMechanism",
		    "ExternalAuthoritative cannot be combined with BasicAuth");
	if (rc->tls_certificate_name[0] != '\0' &&
	    conf_certificate(c, rc->tls_certificate_name) == NULL)
		conf_error_at(p, CONF_SEC_RECEIVE, i, "TlsCertificateName",
		    "TlsCertificateName %s: no [Certificate %s] section",
		    rc->tls_certificate_name, rc->tls_certificate_name);
	/*
	 * Without a certificate STARTTLS is never offered, so a connector
	 * that insists on TLS could never accept a message.
	 */
	if (rc->tls_certificate_name[0] == '\0' && (am & AUTHM_TLS)) {
		if (rc->require_tls)
			conf_error_at(p, CONF_SEC_RECEIVE, i, "RequireTLS",
			    "RequireTLS = true needs a certificate: set "
			    "TlsCertificateName (without one STARTTLS is not "
			    "offered and every MAIL would get 530)");
		if (rc->domain_secure_enabled)
			conf_error_at(p, CONF_SEC_RECEIVE, i,
			    "DomainSecureEnabled",
			    "DomainSecureEnabled = true needs a certificate: "
			    "set TlsCertificateName (without one STARTTLS is "
			    "not offered)");
		if (am & AUTHM_BASIC_REQUIRE_TLS)
			conf_error_at(p, CONF_SEC_RECEIVE, i, "AuthMechanism",
			    "BasicAuthRequireTLS needs a certificate: set "
			    "TlsCertificateName (without one STARTTLS, and so "
			    "AUTH, is never offered)");
	}
	for (size_t j = 0; j < i; j++) {
		const struct conf_receive_connector *o =
		    &c->receive_connectors[j];

		/* A disabled one may wait beside its replacement. */
		if (!rc->enabled || !o->enabled)
			continue;
		if (validate_common_binding(rc, o) &&
		    validate_same_ranges(rc, o))
			conf_error_at(p, CONF_SEC_RECEIVE, i, "Bindings",
			    "receive connectors \"%s\" and \"%s\" have the "
			    "same binding and the same RemoteIPRanges",
			    o->name, rc->name);
	}
}

static void
validate_send(struct conf *c, struct conf_parse *p, size_t i)
{
	const struct conf_send_connector *sc = &c->send_connectors[i];

	if (sc->tls_auth_level != TLS_AUTH_NONE &&
	    (!sc->require_tls || sc->ignore_starttls))
		conf_error_at(p, CONF_SEC_SEND, i, "TlsAuthLevel",
		    "TlsAuthLevel needs RequireTLS = true and IgnoreSTARTTLS = "
		    "false");
	if (sc->require_tls && sc->ignore_starttls)
		conf_error_at(p, CONF_SEC_SEND, i, "IgnoreSTARTTLS",
		    "RequireTLS and IgnoreSTARTTLS cannot both be true");
	if (sc->tls_auth_level == TLS_AUTH_DOMAIN_VALIDATION &&
	    !sc->dns_routing_enabled && sc->tls_domain[0] == '\0')
		conf_error_at(p, CONF_SEC_SEND, i, "TlsAuthLevel",
		    "DomainValidation through smart hosts needs TlsDomain");
	/*
	 * Exchange reads TlsDomain only under DomainValidation and ignores
	 * it silently otherwise; an administrator who set it expects it to
	 * be checked, so say that it would not be.
	 */
	if (sc->tls_domain[0] != '\0' &&
	    sc->tls_auth_level != TLS_AUTH_DOMAIN_VALIDATION)
		conf_error_at(p, CONF_SEC_SEND, i, "TlsDomain",
		    "TlsDomain is used only with TlsAuthLevel = "
		    "DomainValidation (TlsAuthLevel is %s): set that level, "
		    "or remove TlsDomain",
		    sc->tls_auth_level == TLS_AUTH_NONE
		        ? "not set"
		        : conf_tls_level_name(sc->tls_auth_level));
	if (sc->tls_domain[0] != '\0' && !validate_tls_domain(sc->tls_domain))
		conf_error_at(p, CONF_SEC_SEND, i, "TlsDomain",
		    "TlsDomain %s: a wildcard is allowed only as \"*.\" in "
		    "front of a domain",
		    sc->tls_domain);
	if (sc->domain_secure_enabled &&
	    (!sc->dns_routing_enabled || sc->ignore_starttls))
		conf_error_at(p, CONF_SEC_SEND, i, "DomainSecureEnabled",
		    "DomainSecureEnabled needs DNSRoutingEnabled = true and "
		    "IgnoreSTARTTLS = false");
	if (!sc->dns_routing_enabled && sc->nsmart_hosts == 0)
		conf_error_at(p, CONF_SEC_SEND, i, "DNSRoutingEnabled",
		    "DNSRoutingEnabled = false needs SmartHosts");
	if (sc->dns_routing_enabled && sc->nsmart_hosts > 0)
		conf_error_at(p, CONF_SEC_SEND, i, "SmartHosts",
		    "SmartHosts are used only with DNSRoutingEnabled = false");
	if (sc->smart_host_auth_mechanism != SMARTHOST_AUTH_NONE &&
	    sc->authentication_credential[0] == '\0')
		conf_error_at(p, CONF_SEC_SEND, i, "SmartHostAuthMechanism",
		    "SmartHostAuthMechanism needs AuthenticationCredential");
	/* DANE is TLS: a connector that never tries it cannot insist. */
	if (sc->smtp_dane_mode == DANE_MODE_MANDATORY && sc->ignore_starttls)
		conf_error_at(p, CONF_SEC_SEND, i, "SmtpDaneMode",
		    "SmtpDaneMode = Mandatory needs IgnoreSTARTTLS = false");
	if (sc->tls_certificate_name[0] != '\0' &&
	    conf_certificate(c, sc->tls_certificate_name) == NULL)
		conf_error_at(p, CONF_SEC_SEND, i, "TlsCertificateName",
		    "TlsCertificateName %s: no [Certificate %s] section",
		    sc->tls_certificate_name, sc->tls_certificate_name);
}

/*
 * The status page has no authentication: its listener binds loopback
 * addresses only (127.0.0.0/8, ::1).  A remote Prometheus reaches it
 * through a tunnel or a proxy the administrator secures.
 */
static void
validate_status_listen(const struct conf *c, struct conf_parse *p)
{
	for (size_t i = 0; i < c->transport.nstatus_listen; i++) {
		const struct conf_binding *b = &c->transport.status_listen[i];
		const struct sockaddr_in *s4 = (const void *)&b->ss;
		const struct sockaddr_in6 *s6 = (const void *)&b->ss;
		int loopback = b->ss.ss_family == AF_INET
		                   ? (ntohl(s4->sin_addr.s_addr) >> 24) == 127
		                   : IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);

		if (!loopback)
			conf_error_at(p, CONF_SEC_TRANSPORT, 0, "StatusListen",
			    "StatusListen %s: the status page has no "
			    "authentication, so it listens on loopback "
			    "addresses only (127.0.0.1:PORT, [::1]:PORT)",
			    b->text);
	}
}

/*
 * What goes into every TLS report (RFC 8460 4.4): printable text; the
 * contact is an address ("tlsrpt@contoso.com", "mailto:...") or a URL.
 */
static void
validate_tls_reporting(const struct conf *c, struct conf_parse *p)
{
	const char *org = c->transport.tls_reporting_organization;
	const char *contact = c->transport.tls_reporting_contact;

	for (const char *s = org; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			conf_error_at(p, CONF_SEC_TRANSPORT, 0,
			    "TlsReportingOrganization",
			    "TlsReportingOrganization must be printable text");
			break;
		}
	if (strlen(org) > 200)
		conf_error_at(p, CONF_SEC_TRANSPORT, 0,
		    "TlsReportingOrganization",
		    "TlsReportingOrganization: at most 200 characters");
	if (contact[0] == '\0')
		return;
	for (const char *s = contact; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
			conf_error_at(p, CONF_SEC_TRANSPORT, 0,
			    "TlsReportingContact",
			    "TlsReportingContact %s: an address or a URL, "
			    "without spaces",
			    contact);
			return;
		}
	if (strlen(contact) > 250 ||
	    (strchr(contact, '@') == NULL && strstr(contact, "://") == NULL))
		conf_error_at(p, CONF_SEC_TRANSPORT, 0, "TlsReportingContact",
		    "TlsReportingContact %s: an address (tlsrpt@contoso.com) "
		    "or a URL (https://...)",
		    contact);
}

int
conf_validate(struct conf *c, struct conf_parse *p)
{
	validate_secure_list(
	    c, p, &c->transport.send_domain_secure, "TLSSendDomainSecureList");
	validate_secure_list(c, p, &c->transport.receive_domain_secure,
	    "TLSReceiveDomainSecureList");
	validate_status_listen(c, p);
	validate_tls_reporting(c, p);
	if (c->transport.resolver[0] == '\0')
		conf_error_at(p, CONF_SEC_TRANSPORT, 0, "Resolver",
		    "Resolver must be \"system\" or ADDRESS@PORT");
	for (size_t i = 0; i < c->naccepted_domains; i++) {
		const struct conf_accepted_domain *d = &c->accepted_domains[i];

		if (strstr(d->mailboxes, "%u") == NULL)
			conf_error_at(p, CONF_SEC_ACCEPTED_DOMAIN, i,
			    "Mailboxes",
			    "Mailboxes must contain %%u (the local part)");
	}
	for (size_t i = 0; i < c->nreceive_connectors; i++)
		validate_receive(c, p, i);
	for (size_t i = 0; i < c->nsend_connectors; i++)
		validate_send(c, p, i);
	conf_validate_rules(c, p);
	conf_overlap_check(c, p);
	return 0;
}
