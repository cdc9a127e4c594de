/*
 * ctl_dane.c - DANE for the administrator: `sluicectl tlsa CERTNAME`
 * prints the TLSA record to publish for one of our certificates, and
 * ctl_dane_show() adds the DANE state of a route's next hops to
 * `sluicectl route` (DNSSEC status of the MX and address records, the
 * TLSA records, and what they require), decided by the same functions
 * the SMTP client uses (src/dns/tlsa.c, src/tls/tls_dane.c).
 *
 * Whether a server's certificate matches its records needs a handshake:
 * that is `sluicectl test-tls`.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "dns/resolver.h"
#include "dns/tlsa.h"
#include "tls/tls_dane.h"

/* As long as `route` waits for the next hops themselves. */
#define CTL_DANE_DNS_WAIT 10 /* seconds */

struct ctl_dane_host {
	const char *name;
	const char *canon;
	unsigned port;
	int secure; /* every address of the host was validated */
	struct tlsa_query *q;
	struct tlsa_result *res;
	int done;
};

struct ctl_dane_wait {
	size_t left;
	int done;
};

struct ctl_dane_cb {
	struct ctl_dane_wait *w;
	struct ctl_dane_host *h;
};

static void
ctl_dane_answer(void *arg, struct tlsa_result *res)
{
	struct ctl_dane_cb *cb = arg;

	cb->h->q = NULL;
	cb->h->res = res;
	cb->h->done = 1;
	if (--cb->w->left == 0)
		cb->w->done = 1;
}

void
ctl_dane_show(const struct conf *c, const struct resolver_result *rr,
    const struct conf_send_connector *sc)
{
	struct event_base *base = event_base_new();
	struct resolver *res = NULL;
	const char *err = NULL;
	struct ctl_dane_host hosts[RESOLVER_HOPS_MAX];
	struct ctl_dane_cb cbs[RESOLVER_HOPS_MAX];
	struct ctl_dane_wait w = {0, 0};
	size_t n = 0;

	if (base == NULL ||
	    (res = resolver_new_dnssec(base, c->transport.resolver,
	         c->transport.dnssec_trust_anchor_file, &err)) == NULL) {
		printf("Dnssec    : unknown (%s)\n",
		    err != NULL ? err : "cannot create an event loop");
		if (base != NULL)
			event_base_free(base);
		return;
	}
	if (!resolver_validates(res))
		printf("Dnssec    : not validating (DnssecTrustAnchorFile is "
		       "empty): DANE never applies\n");
	else
		printf("Dnssec    : validating with %s\n",
		    c->transport.dnssec_trust_anchor_file);
	if (sc->dns_routing_enabled)
		printf(
		    "MxDnssec  : %s\n", rr->mx_secure ? "secure" : "insecure");
	printf("DaneMode  : %s%s\n", conf_dane_mode_name(sc->smtp_dane_mode),
	    sc->ignore_starttls ? " (off: IgnoreSTARTTLS)" : "");
	/* One line per host; a host is secure when all its addresses are. */
	for (size_t i = 0; i < rr->nhops; i++) {
		const struct resolver_hop *hp = &rr->hops[i];
		size_t k;

		for (k = 0; k < n && strcmp(hosts[k].name, hp->host) != 0; k++)
			;
		if (k < n) {
			hosts[k].secure &= hp->secure;
			continue;
		}
		memset(&hosts[n], 0, sizeof(hosts[n]));
		hosts[n].name = hp->host;
		hosts[n].canon = hp->canon;
		hosts[n].secure = hp->secure;
		hosts[n].port =
		    hp->addr.ss_family == AF_INET6
		        ? ntohs(((const struct sockaddr_in6 *)&hp->addr)
		                    ->sin6_port)
		        : ntohs(((const struct sockaddr_in *)&hp->addr)
		                    ->sin_port);
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		struct ctl_dane_host *h = &hosts[i];

		if (!h->secure || sc->smtp_dane_mode == DANE_MODE_NONE ||
		    sc->ignore_starttls)
			continue;
		cbs[i] = (struct ctl_dane_cb){&w, h};
		if ((h->q = tlsa_lookup(res, h->name, h->canon, h->port,
		         ctl_dane_answer, &cbs[i])) != NULL)
			w.left++;
		else
			h->done = 1; /* reported as not known */
	}
	if (w.left > 0)
		(void)ctl_wait(base, &w.done, CTL_DANE_DNS_WAIT);
	for (size_t i = 0; i < n; i++) {
		struct ctl_dane_host *h = &hosts[i];
		char why[1024], rec[200];
		enum tls_dane_need need;

		if (h->q != NULL) {
			tlsa_cancel(h->q); /* no answer in time */
			h->q = NULL;
		}
		if (sc->ignore_starttls) {
			printf(
			    "Dane      : %s: off: IgnoreSTARTTLS\n", h->name);
			continue;
		}
		need = tls_dane_decide(sc->smtp_dane_mode, h->name, h->secure,
		    h->res, why, sizeof(why));
		printf("Dane      : %s: %s: %s\n", h->name,
		    tls_dane_need_name(need), why);
		for (size_t k = 0; h->res != NULL && k < h->res->n; k++) {
			tlsa_rr_format(&h->res->rr[k], rec, sizeof(rec));
			printf("Tlsa      : %s %s%s\n", h->res->qname, rec,
			    tlsa_rr_usable(&h->res->rr[k]) ? ""
			                                   : " (unusable)");
		}
		tlsa_result_free(h->res);
	}
	resolver_free(res);
	event_base_free(base);
}

/* `sluicectl tlsa CERTNAME [PORT]` */
int
ctl_tlsa(struct ctl *ctl, int argc, char **argv)
{
	const struct conf_certificate *ce;
	struct conf *c;
	unsigned long port = 25;
	struct tlsa_rr rr;
	char rec[200], *end;
	X509 *x = NULL;
	FILE *fp;
	int rc = 1, named = 0;

	if (argc < 1 || argc > 2 ||
	    (argc == 2 && ((port = strtoul(argv[1], &end, 10)) < 1 ||
	                      port > 65535 || *end != '\0'))) {
		fprintf(stderr, "usage: sluicectl tlsa CERTNAME [PORT]\n");
		return 2;
	}
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return 1;
	if ((ce = conf_certificate(c, argv[0])) == NULL) {
		fprintf(stderr, "sluicectl: no [Certificate %s] in %s\n",
		    argv[0], ctl->conf_path);
		goto out;
	}
	if ((fp = fopen(ce->certificate_file, "r")) == NULL ||
	    (x = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "%s: cannot read the certificate\n",
		    ce->certificate_file);
		if (fp != NULL)
			fclose(fp);
		goto out;
	}
	fclose(fp);
	if (tls_dane_cert_rr(x, 3, 1, 1, &rr) < 0) {
		fprintf(stderr, "%s: cannot compute the TLSA record\n",
		    ce->certificate_file);
		goto out;
	}
	tlsa_rr_format(&rr, rec, sizeof(rec));
	free(rr.data);
	/*
	 * DANE-EE(3) SPKI(1) SHA2-256(1): RFC 7672 3.1.1's advice; it
	 * survives a renewal that keeps the key.
	 */
	printf("; [Certificate %s] %s: DANE-EE(3) SPKI(1) SHA2-256(1)\n",
	    ce->name, ce->certificate_file);
	printf("%s\n", rec);
	{
		GENERAL_NAMES *gens =
		    X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

		for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
			const unsigned char *s;
			int len;

			if (g->type != GEN_DNS)
				continue;
			s = ASN1_STRING_get0_data(g->d.dNSName);
			len = ASN1_STRING_length(g->d.dNSName);
			/* a wildcard is no host a client looks up */
			if (len <= 0 || len > 253 || s[0] == '*' ||
			    memchr(s, '\0', (size_t)len) != NULL)
				continue;
			printf("_%lu._tcp.%.*s. IN TLSA %s\n", port, len,
			    (const char *)s, rec);
			named++;
		}
		GENERAL_NAMES_free(gens);
	}
	if (named == 0)
		printf("; the certificate names no host (no DNS "
		       "subjectAltName): publish it at _%lu._tcp.HOST.\n",
		    port);
	rc = 0;
out:
	X509_free(x);
	conf_free(c);
	return rc;
}
