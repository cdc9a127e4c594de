/*
 * tlsrpt.c - one TLS report, assembled (see tlsrpt.h): the stored
 * sessions of a domain and day, who we are, a stable report id, the
 * JSON.  Used by the daily sending (tlsrpt_send.c) and by `sluicectl
 * tls-report` (control_tlsrpt.c), so that what the command prints is
 * byte for byte what would be sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "queue/outcome.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_json.h"
#include "tlsrpt/tlsrpt_store.h"
#include "util/buf.h"
#include "util/fnv.h"

void
tlsrpt_who(const struct daemon *daemon, struct tlsrpt_who *w)
{
	const struct conf_transport *t = &daemon->conf->conf->transport;
	const char *fqdn = outcome_fqdn(daemon), *at;

	memset(w, 0, sizeof(*w));
	snprintf(w->organization, sizeof(w->organization), "%s",
	    t->tls_reporting_organization[0] != '\0'
	        ? t->tls_reporting_organization
	        : fqdn);
	if (t->tls_reporting_contact[0] != '\0')
		snprintf(w->contact, sizeof(w->contact), "%s",
		    t->tls_reporting_contact);
	else
		snprintf(w->contact, sizeof(w->contact), "postmaster@%s", fqdn);
	/* an address ("a@b" or "mailto:a@b"), or a URL */
	at = strchr(w->contact, '@');
	if (at != NULL && strstr(w->contact, "://") == NULL) {
		snprintf(w->submitter, sizeof(w->submitter), "%s", at + 1);
		snprintf(w->from, sizeof(w->from), "%s",
		    strncmp(w->contact, "mailto:", 7) == 0 ? w->contact + 7
		                                           : w->contact);
	} else {
		snprintf(w->submitter, sizeof(w->submitter), "%s", fqdn);
		snprintf(w->from, sizeof(w->from), "postmaster@%s", fqdn);
	}
}

void
tlsrpt_report_id(const char *day, const char *domain, const char *submitter,
    char *out, size_t len)
{
	char key[600], digits[9];
	uint64_t h;
	size_t k = 0;

	/* a longer key is cut: the hash only tells reports apart */
	snprintf(key, sizeof(key), "%s|%s|%s|", day, domain, submitter);
	h = fnv_64(key, strlen(key));

	for (const char *p = day; *p != '\0' && k < 8; p++)
		if (*p >= '0' && *p <= '9')
			digits[k++] = *p;
	digits[k] = '\0';
	snprintf(out, len, "%s.%016llx.%s@%s", digits, (unsigned long long)h,
	    domain, submitter);
}

int
tlsrpt_make(struct daemon *daemon, struct tlsrpt_store *st, const char *day,
    const char *domain, int pretty, struct buf *out)
{
	struct tlsrpt_report r;
	struct tlsrpt_who w;
	int rc;

	memset(&r, 0, sizeof(r));
	if (tlsrpt_store_report(st, day, domain, &r) < 0)
		return -1;
	if (r.npolicies == 0)
		return 1;
	tlsrpt_who(daemon, &w);
	r.organization = w.organization;
	r.contact = w.contact;
	tlsrpt_report_id(
	    day, domain, w.submitter, r.report_id, sizeof(r.report_id));
	rc = tlsrpt_json(&r, pretty, out);
	tlsrpt_report_clear(&r);
	return rc;
}
