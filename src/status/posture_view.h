/*
 * posture_view.h - the TLS posture as people read it: the effective
 * policy of a partner under the live configuration, and the report as
 * Format-List text (`sluicectl get-tlsposture`) or as an HTML table
 * (the status page).
 */
#ifndef SLUICE_POSTURE_VIEW_H
#define SLUICE_POSTURE_VIEW_H

#include <stddef.h>
#include <time.h>

struct buf;
struct conf;
struct daemon;

/*
 * What applies to a partner (a queue's name) now: the send connector and
 * its TLS level ("Contoso: DomainValidation (TlsDomain *.contoso.com)",
 * "Outbound: opportunistic"), or why there is no network hop.  kind is
 * "domain", "smart hosts", "local" or "unreachable".
 */
void posture_view_policy(const struct conf *, const char *partner, char *out,
    size_t len, const char **kind);

/*
 * The report of every partner (domain NULL) or of one, as blocks of
 * "Name : value" lines.  A domain routed through smart hosts is shown
 * with its connector's row.  -1 on error (out says why).
 */
int posture_view_text(
    struct daemon *, const char *domain, time_t now, struct buf *out);
/* The same as an HTML table (id "posture"), for the status page. */
int posture_view_html(struct daemon *, time_t now, struct buf *out);

#endif
