/*
 * sts.h - MTA-STS (RFC 8461) for the sending side: which policy is in
 * force for a recipient domain right now.
 *
 * sts_get() answers with the policy to apply (or none, and why) after
 * the steps of RFC 8461 5: the "_mta-sts" TXT record; the cached policy
 * when its id is the TXT record's and it has not expired; otherwise a
 * fresh fetch over HTTPS (src/sts/sts_fetch.c), which replaces the cache
 * only when it yields a valid policy.  A failed fetch keeps the cached
 * policy until it expires, and so does a TXT record that disappears.
 * Policies are refreshed in the background once half their max_age has
 * passed, so one in use never expires just because nobody looked.  The
 * cache lives in memory and in the queue database (spool_sts.c), and is
 * loaded from there at start.
 */
#ifndef SLUICE_STS_H
#define SLUICE_STS_H

#include <stddef.h>
#include <time.h>

#include "sts/sts_policy.h"

struct event_base;
struct resolver;
struct spool;
struct sts;
struct sts_query;

/* Policy domains kept in memory; past it the soonest to expire goes. */
#define STS_CACHE_MAX 10000

struct sts_params {
	struct event_base *base;
	struct resolver *resolver; /* the daemon's ([Transport] Resolver) */
	struct spool *spool;       /* the cache's home; NULL: memory only */
	const char *ca_file;       /* TrustedCAFile */
	unsigned port;             /* 443; tests: SLUICE_MTA_STS_PORT */
};

/* NULL with *why on failure. */
struct sts *sts_new(const struct sts_params *, const char **why);
/* Queries still running end silently. */
void sts_free(struct sts *);

/* The port policies are fetched from: 443, or SLUICE_MTA_STS_PORT. */
unsigned sts_port_from_env(void);

struct sts_state {
	int has_policy; /* policy below is in force */
	struct sts_policy policy;
	char id[STS_ID_MAX + 1];     /* the id it was fetched under */
	char txt_id[STS_ID_MAX + 1]; /* the TXT record's id now; "" none */
	time_t fetched, expires;
	/* where it came from: "fetched", "cached", or "" without policy */
	const char *source;
	/* for logs and `sluicectl route`: what happened, in words */
	char why[768];
	/*
	 * The TXT record named a policy (txt_id) and this look-up could not
	 * get it: STS_FAILED_FETCH (no answer, refused, unreachable) or
	 * STS_FAILED_INVALID (fetched, not a valid policy); TLS reports
	 * say sts-policy-fetch-error or sts-policy-invalid (RFC 8460 4.3.2.3).
	 * A cached policy may still be in force (has_policy).
	 */
	enum { STS_FAILED_NONE, STS_FAILED_FETCH, STS_FAILED_INVALID } failed;
};

/* Runs on the loop, never inside sts_get(); state valid during the call. */
typedef void (*sts_fn)(void *arg, const struct sts_state *);

/* NULL when it cannot start (bad domain, out of memory). */
struct sts_query *sts_get(struct sts *, const char *domain, sts_fn, void *arg);
/*
 * The callback will not run.  A fetch already under way goes on in the
 * background and still updates the cache.
 */
void sts_cancel(struct sts_query *);

/*
 * Seed the cache with a row read elsewhere (sluicectl reads the daemon's
 * queue database); ignored when expired or broken.
 */
struct spool_sts_row;
void sts_preload(struct sts *, const struct spool_sts_row *);

/* Policies fetched since start (successful or not): for tests' waits. */
unsigned long sts_fetch_count(const struct sts *);

#endif
