/*
 * posture_view.c - the TLS posture for people (see posture_view.h).
 *
 * Where it sits: the control socket's `get-tlsposture` and the status
 * page call it on the event loop; it reads posture_report() (the stored
 * hours and what is still in memory) and the live configuration, which
 * says what applies now.  The counts say what happened, the policy what
 * would happen: a partner whose connector was changed yesterday shows
 * the new policy beside the old sessions (PoliciesApplied tells them
 * apart).
 *
 * Partners without traffic are listed too when the configuration names
 * them as partners (TLSSendDomainSecureList, a domain of a connector
 * that requires TLS, a smart-host connector), so that the table shows
 * every partner an administrator has set up, with zeros until mail
 * flows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "daemon/daemon.h"
#include "route/route.h"
#include "status/posture.h"
#include "status/posture_view.h"
#include "tls/tls_policy.h"
#include "util/buf.h"
#include "util/html.h"

/*
 * The policy tls_policy.c decides for this connector and domain, in the
 * tracking log's words: "opportunistic", "DomainValidation (*.x.com)",
 * "DomainSecure (mutual TLS)".
 */
static void
posture_view_level(const struct conf *conf,
    const struct conf_send_connector *sc, const char *domain, char *out,
    size_t len)
{
	struct tls_policy_input in = {
	    .conf = conf, .connector = sc, .domain = domain, .host = NULL};
	struct tls_policy p;

	tls_policy_decide(&in, &p);
	if (p.level == TLS_POLICY_DOMAIN_SECURE)
		snprintf(out, len, "DomainSecure (mutual TLS)");
	else if (p.level == TLS_POLICY_DOMAIN)
		snprintf(out, len, "%s (%s)", tls_policy_name(&p),
		    p.tls_domain != NULL ? p.tls_domain
		                         : "the recipient domain");
	else
		snprintf(out, len, "%s", tls_policy_name(&p));
}

void
posture_view_policy(const struct conf *conf, const char *partner, char *out,
    size_t len, const char **kind)
{
	const struct conf_send_connector *sc =
	    conf_send_connector(conf, partner);
	char level[200];
	struct route r;

	/* A smart-host connector's queue is named after the connector. */
	if (sc != NULL && !sc->dns_routing_enabled) {
		posture_view_level(conf, sc, NULL, level, sizeof(level));
		snprintf(out, len, "%s: %s%s", sc->name, level,
		    sc->enabled ? "" : " (connector disabled)");
		*kind = "smart hosts";
		return;
	}
	route_domain(conf, partner, &r);
	switch (r.kind) {
	case ROUTE_LOCAL:
		snprintf(out, len, "none: delivered locally");
		*kind = "local";
		return;
	case ROUTE_NONE:
	case ROUTE_WAIT:
		snprintf(out, len, "none: no enabled send connector matches");
		*kind = "unreachable";
		return;
	case ROUTE_CONNECTOR:
		break;
	}
	posture_view_level(conf, r.connector, partner, level, sizeof(level));
	snprintf(out, len, "%s: %s", r.connector->name, level);
	*kind = r.connector->dns_routing_enabled ? "domain" : "smart hosts";
}

/* The queue a domain's mail waits in (smart hosts: the connector). */
static void
posture_view_queue(
    const struct conf *conf, const char *domain, char *out, size_t len)
{
	const char *type;
	struct route r;

	route_domain(conf, domain, &r);
	route_queue_name(&r, domain, out, len, &type);
	if (r.kind != ROUTE_CONNECTOR)
		snprintf(out, len, "%s", domain);
}

/* Partners the configuration names, with or without traffic. */
static int
posture_view_known(
    const struct conf *conf, struct posture_partner **v, size_t *n, size_t *cap)
{
	const char *names[1024];
	size_t k = 0;

	for (size_t i = 0; i < conf->transport.send_domain_secure.n && k < 1024;
	     i++)
		names[k++] = conf->transport.send_domain_secure.v[i];
	for (size_t i = 0; i < conf->nsend_connectors && k < 1024; i++) {
		const struct conf_send_connector *sc =
		    &conf->send_connectors[i];

		if (!sc->dns_routing_enabled) {
			names[k++] = sc->name;
			continue;
		}
		if (!sc->require_tls)
			continue;
		for (size_t j = 0; j < sc->naddress_spaces && k < 1024; j++)
			if (strchr(sc->address_spaces[j].domain, '*') == NULL)
				names[k++] = sc->address_spaces[j].domain;
	}
	for (size_t i = 0; i < k; i++) {
		size_t j;

		for (j = 0; j < *n; j++)
			if (strcasecmp((*v)[j].name, names[i]) == 0)
				break;
		if (j < *n)
			continue;
		if (*n == *cap) {
			size_t c = *cap ? *cap * 2 : 16;
			struct posture_partner *nv =
			    realloc(*v, c * sizeof(**v));

			if (nv == NULL)
				return -1;
			*v = nv;
			*cap = c;
		}
		memset(&(*v)[*n], 0, sizeof(**v));
		snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", names[i]);
		(*n)++;
	}
	return 0;
}

static void
posture_view_versions(const struct posture_counts *c, char *out, size_t len)
{
	char other[40] = "";

	/* rare: a peer below TLS 1.2 cannot even finish a handshake */
	if (c->tls_other > 0)
		snprintf(other, sizeof(other), " other=%llu",
		    (unsigned long long)c->tls_other);
	snprintf(out, len, "TLSv1.3=%llu TLSv1.2=%llu%s none=%llu",
	    (unsigned long long)c->tls13, (unsigned long long)c->tls12, other,
	    (unsigned long long)c->plaintext);
}

static void
posture_view_failures(const struct posture_counts *c, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (int r = TLS_RESULT_OK + 1; r < TLS_RESULT_COUNT && n < len; r++) {
		int w;

		if (c->failures[r] == 0)
			continue;
		w = snprintf(out + n, len - n, "%s%s=%llu", n ? " " : "",
		    tls_result_name((enum tls_result)r),
		    (unsigned long long)c->failures[r]);
		n += w > 0 ? (size_t)w : 0;
	}
	if (out[0] == '\0')
		snprintf(out, len, "none");
}

static int
posture_view_block(struct buf *out, const struct conf *conf,
    const struct posture_partner *p, const char *asked)
{
	char policy[400], versions[160], failures[600];
	const char *kind;
	const struct posture_counts *w[2] = {&p->day, &p->week};
	const char *suffix[2] = {"24h", "7d"};

	posture_view_policy(conf, p->name, policy, sizeof(policy), &kind);
	if (buf_printf(out, "%-24s: %s\n", "Partner", p->name) != BUF_OK)
		return -1;
	if (asked != NULL && strcasecmp(asked, p->name) != 0)
		buf_printf(out,
		    "%-24s: %s is routed through this connector's "
		    "smart hosts; its sessions are counted here\n",
		    "Note", asked);
	buf_printf(out, "%-24s: %s\n", "Kind", kind);
	buf_printf(out, "%-24s: %s\n", "EffectivePolicy", policy);
	/* as the last session met them (the policy says what may apply) */
	buf_printf(out, "%-24s: %s\n", "Dane", p->dane[0] ? p->dane : "-");
	buf_printf(
	    out, "%-24s: %s\n", "MtaSts", p->mta_sts[0] ? p->mta_sts : "-");
	buf_printf(out, "%-24s: %s\n", "PoliciesApplied",
	    p->policies[0] ? p->policies : "-");
	for (int i = 0; i < 2; i++) {
		char key[40];

		posture_view_versions(w[i], versions, sizeof(versions));
		posture_view_failures(w[i], failures, sizeof(failures));
		snprintf(key, sizeof(key), "Sessions%s", suffix[i]);
		buf_printf(out, "%-24s: %llu\n", key,
		    (unsigned long long)w[i]->sessions);
		snprintf(key, sizeof(key), "TlsVersions%s", suffix[i]);
		buf_printf(out, "%-24s: %s\n", key, versions);
		snprintf(key, sizeof(key), "Verified%s", suffix[i]);
		buf_printf(out, "%-24s: %llu\n", key,
		    (unsigned long long)w[i]->verified);
		snprintf(key, sizeof(key), "Failures%s", suffix[i]);
		buf_printf(out, "%-24s: %s\n", key, failures);
		snprintf(key, sizeof(key), "MessagesDeferred%s", suffix[i]);
		buf_printf(out, "%-24s: %llu\n", key,
		    (unsigned long long)w[i]->deferred);
		snprintf(key, sizeof(key), "MessagesReturned%s", suffix[i]);
		if (buf_printf(out, "%-24s: %llu\n", key,
		        (unsigned long long)w[i]->returned) != BUF_OK)
			return -1;
	}
	return buf_puts(out, "\n") == BUF_OK ? 0 : -1;
}

/* The report, with the configured partners added (all: name NULL). */
static int
posture_view_gather(struct daemon *daemon, const char *name, time_t now,
    struct posture_partner **v, size_t *n)
{
	size_t cap;

	if (daemon->posture == NULL) {
		*v = NULL;
		*n = 0;
		return 0;
	}
	if (posture_report(daemon->posture, name, now, v, n) < 0)
		return -1;
	cap = *n;
	if (name != NULL) {
		if (*n == 0) {
			/* no traffic: the policy alone is still worth a row */
			if ((*v = calloc(1, sizeof(**v))) == NULL)
				return -1;
			snprintf((*v)->name, sizeof((*v)->name), "%s", name);
			*n = 1;
		}
		return 0;
	}
	return posture_view_known(daemon->conf->conf, v, n, &cap);
}

int
posture_view_text(
    struct daemon *daemon, const char *domain, time_t now, struct buf *out)
{
	const struct conf *conf = daemon->conf->conf;
	struct posture_partner *v = NULL;
	char queue[300];
	size_t n = 0;

	if (daemon->posture == NULL) {
		buf_puts(out, "error: TLS posture recording is off "
		              "(TlsPostureEnabled = false)\n");
		return -1;
	}
	if (domain != NULL) {
		char lower[256];
		size_t i;

		for (i = 0; domain[i] != '\0' && i + 1 < sizeof(lower); i++)
			lower[i] = (domain[i] >= 'A' && domain[i] <= 'Z')
			               ? (char)(domain[i] - 'A' + 'a')
			               : domain[i];
		lower[i] = '\0';
		posture_view_queue(conf, lower, queue, sizeof(queue));
		if (conf_send_connector(conf, domain) != NULL)
			snprintf(queue, sizeof(queue), "%s", domain);
	}
	if (posture_view_gather(
	        daemon, domain != NULL ? queue : NULL, now, &v, &n) < 0) {
		buf_puts(out, "error: cannot read the TLS posture from the "
		              "queue database\n");
		free(v);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (posture_view_block(out, conf, &v[i], domain) < 0)
			break;
	free(v);
	return 0;
}

static int
posture_view_cell(struct buf *out, const char *cls, const char *text)
{
	if (buf_printf(out, "<td%s%s%s>", cls ? " class=\"" : "",
	        cls ? cls : "", cls ? "\"" : "") != BUF_OK ||
	    html_escape(out, text) < 0 || buf_puts(out, "</td>") != BUF_OK)
		return -1;
	return 0;
}

static int
posture_view_num(struct buf *out, uint64_t v, int bad)
{
	return buf_printf(out, "<td class=\"n%s\">%llu</td>",
	           bad && v > 0 ? " bad" : "", (unsigned long long)v) == BUF_OK
	           ? 0
	           : -1;
}

int
posture_view_html(struct daemon *daemon, time_t now, struct buf *out)
{
	const struct conf *conf = daemon->conf->conf;
	struct posture_partner *v = NULL;
	size_t n = 0;

	if (daemon->posture == NULL)
		return buf_puts(out, "<p>TLS posture recording is off "
		                     "(<code>TlsPostureEnabled = false</code>)."
		                     "</p>\n") == BUF_OK
		           ? 0
		           : -1;
	if (posture_view_gather(daemon, NULL, now, &v, &n) < 0) {
		free(v);
		return buf_puts(out,
		           "<p class=\"bad\">The TLS posture cannot "
		           "be read from the queue database.</p>\n") == BUF_OK
		           ? 0
		           : -1;
	}
	buf_puts(out,
	    "<table id=\"posture\">\n<thead><tr><th rowspan=\"2\">Partner</th>"
	    "<th rowspan=\"2\">Effective policy</th>"
	    "<th colspan=\"8\">Last 24 hours</th>"
	    "<th colspan=\"4\">Last 7 days</th></tr>\n<tr>"
	    "<th>Sessions</th><th>TLS 1.3</th><th>TLS 1.2</th>"
	    "<th>Plaintext</th><th>Verified</th><th>Failures</th>"
	    "<th>Deferred</th><th>Returned</th>"
	    "<th>Sessions</th><th>Verified</th><th>Failures</th>"
	    "<th>Deferred</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++) {
		const struct posture_partner *p = &v[i];
		char policy[400], fail_day[600], fail_week[600];
		const char *kind;

		posture_view_policy(
		    conf, p->name, policy, sizeof(policy), &kind);
		/* what the last session met of the recipient's policies */
		if (p->dane[0] != '\0' && strcmp(p->dane, "off") != 0) {
			size_t w = strlen(policy);

			snprintf(policy + w, sizeof(policy) - w, "; DANE %s",
			    p->dane);
		}
		if (p->mta_sts[0] != '\0' && strcmp(p->mta_sts, "none") != 0) {
			size_t w = strlen(policy);

			snprintf(policy + w, sizeof(policy) - w, "; MTA-STS %s",
			    p->mta_sts);
		}
		posture_view_failures(&p->day, fail_day, sizeof(fail_day));
		posture_view_failures(&p->week, fail_week, sizeof(fail_week));
		buf_puts(out, "<tr>");
		posture_view_cell(out, "partner", p->name);
		posture_view_cell(out, "policy", policy);
		posture_view_num(out, p->day.sessions, 0);
		posture_view_num(out, p->day.tls13, 0);
		posture_view_num(out, p->day.tls12, 0);
		posture_view_num(out, p->day.plaintext, 1);
		posture_view_num(out, p->day.verified, 0);
		posture_view_cell(
		    out, p->day.failed ? "fail bad" : "fail", fail_day);
		posture_view_num(out, p->day.deferred, 1);
		posture_view_num(out, p->day.returned, 1);
		posture_view_num(out, p->week.sessions, 0);
		posture_view_num(out, p->week.verified, 0);
		posture_view_cell(
		    out, p->week.failed ? "fail bad" : "fail", fail_week);
		posture_view_num(out, p->week.deferred, 1);
		if (buf_puts(out, "</tr>\n") != BUF_OK)
			break;
	}
	if (n == 0)
		buf_puts(out, "<tr><td colspan=\"14\">No outbound sessions "
		              "yet.</td></tr>\n");
	free(v);
	return buf_puts(out, "</tbody></table>\n") == BUF_OK ? 0 : -1;
}
