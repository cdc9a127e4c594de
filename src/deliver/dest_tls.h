/*
 * dest_tls.h - what DNSSEC, DANE and MTA-STS say about one destination's
 * next hops (issue 16): for each hop its TLSA look-up, and the recipient
 * domain's MTA-STS policy in force.
 *
 * The delivery queue gathers it when it resolves a destination (so a
 * destination's TLSA records and policy are looked up once per
 * resolution, not once per connection), and every SMTP client of that
 * destination reads it when it decides the TLS policy of a next hop
 * (tls_policy_decide's DANE and MTA-STS inputs).  Immutable once built,
 * and counted: a client keeps the facts it started with while the queue
 * gathers new ones.
 */
#ifndef SLUICE_DEST_TLS_H
#define SLUICE_DEST_TLS_H

#include <stddef.h>

#include "conf/conf.h"
#include "dns/resolver.h"
#include "dns/tlsa.h"
#include "sts/sts.h"

struct event_base;
struct dest_tls;
struct dest_tls_query;

/* A reference more; dest_tls_unref() gives one back (NULL is fine). */
struct dest_tls *dest_tls_ref(struct dest_tls *);
void dest_tls_unref(struct dest_tls *);

/* Hop i's TLSA look-up, NULL when none was made (NULL dt is fine). */
const struct tlsa_result *dest_tls_tlsa(const struct dest_tls *, size_t hop);
/* The domain's MTA-STS policy in force, NULL when none. */
const struct sts_state *dest_tls_sts(const struct dest_tls *);
/*
 * Without a policy in force: the look-up whose TXT record named one that
 * could not be fetched or was invalid (sts_state.failed), for TLS
 * reports' sts-policy-fetch-error and -invalid; NULL otherwise.
 */
const struct sts_state *dest_tls_sts_failed(const struct dest_tls *);

/*
 * Does this connector need anything looked up for these hops?  TLSA
 * records for hops with secure addresses (SmtpDaneMode not None), the
 * MTA-STS policy for DNS-routed connectors (MtaStsMode Opportunistic);
 * neither under IgnoreSTARTTLS.
 */
int dest_tls_needed(const struct conf_send_connector *,
    const struct resolver_result *, int sts_available);

/*
 * Gather them: the callback gets the facts (its reference) on the loop,
 * never inside this call.  A TLSA look-up that cannot start counts as a
 * failed one (that hop is skipped, never used without DANE); an MTA-STS
 * question that cannot start as no policy known.  sts may be NULL (no
 * MTA-STS).  NULL when out of memory.
 */
typedef void (*dest_tls_fn)(void *arg, struct dest_tls *);
struct dest_tls_query *dest_tls_gather(struct event_base *, struct resolver *,
    struct sts *, const struct conf_send_connector *, const char *domain,
    const struct resolver_result *, dest_tls_fn, void *arg);
/*
 * The same in two steps, so that the domain's MTA-STS question goes out
 * with its MX question rather than after its answer (issue 19: one DNS
 * round trip less before a new destination's first connection).
 * dest_tls_begin() asks the MTA-STS question when it applies to this
 * connector (NULL when it does not, or cannot start: no policy known);
 * nothing is handed over until dest_tls_gather_from() gives it the next
 * hops and the callback.  dest_tls_gather_from(NULL, ...) is
 * dest_tls_gather(); with a begun query it asks only the TLSA look-ups
 * and owns that query from then on, also when it returns NULL.  A begun
 * query whose hops never come (the MX look-up failed) is cancelled.
 */
struct dest_tls_query *dest_tls_begin(
    struct sts *, const struct conf_send_connector *, const char *domain);
struct dest_tls_query *dest_tls_gather_from(struct dest_tls_query *begun,
    struct event_base *, struct resolver *, struct sts *,
    const struct conf_send_connector *, const char *domain,
    const struct resolver_result *, dest_tls_fn, void *arg);
/* Before the callback only; the callback will not run (NULL is fine). */
void dest_tls_cancel(struct dest_tls_query *);

#endif
