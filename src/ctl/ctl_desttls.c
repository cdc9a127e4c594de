/*
 * ctl_desttls.c - the DANE and MTA-STS facts of a destination for
 * sluicectl (`test-tls`): the same gathering the delivery queue does
 * (src/deliver/dest_tls.c) on a private loop, with the daemon's resolver
 * settings and the MTA-STS policies it cached (the queue database, read
 * only), within a bounded wait.
 */
#include <stdio.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "deliver/dest_tls.h"
#include "dns/resolver.h"
#include "spool/spool_sts.h"
#include "sts/sts.h"

/* The TLSA look-ups and an MTA-STS fetch (20 s) with room. */
#define CTL_DESTTLS_WAIT 40 /* seconds */

struct ctl_desttls_wait {
	int done;
	struct dest_tls *dt;
};

static void
ctl_desttls_done(void *arg, struct dest_tls *dt)
{
	struct ctl_desttls_wait *w = arg;

	w->dt = dt;
	w->done = 1;
}

static int
ctl_desttls_preload(void *arg, const struct spool_sts_row *row)
{
	sts_preload(arg, row);
	return 0;
}

struct dest_tls *
ctl_dest_tls(const struct conf *c, const struct conf_send_connector *sc,
    const char *domain, const struct resolver_result *res)
{
	struct ctl_desttls_wait w = {0, NULL};
	struct event_base *base = event_base_new();
	struct resolver *r = NULL;
	struct sts *sts = NULL;
	struct dest_tls_query *q;
	const char *why = NULL;

	if (base == NULL ||
	    (r = resolver_new_dnssec(base, c->transport.resolver,
	         c->transport.dnssec_trust_anchor_file, &why)) == NULL) {
		printf("  DANE and MTA-STS unknown: %s\n",
		    why != NULL ? why : "cannot create an event loop");
		goto out;
	}
	{
		struct sts_params p = {base, r, NULL,
		    c->transport.trusted_ca_file, sts_port_from_env()};

		if ((sts = sts_new(&p, &why)) != NULL)
			(void)spool_sts_read_dir(c->transport.queue_directory,
			    domain, ctl_desttls_preload, sts, &why);
	}
	if (!dest_tls_needed(sc, res, sts != NULL))
		goto out;
	if ((q = dest_tls_gather(
	         base, r, sts, sc, domain, res, ctl_desttls_done, &w)) == NULL)
		goto out;
	if (ctl_wait(base, &w.done, CTL_DESTTLS_WAIT) < 0) {
		dest_tls_cancel(q);
		printf("  DANE and MTA-STS unknown: no answer within %d "
		       "seconds\n",
		    CTL_DESTTLS_WAIT);
	}
out:
	sts_free(sts);
	resolver_free(r);
	if (base != NULL)
		event_base_free(base);
	return w.dt;
}
