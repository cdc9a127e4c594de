/*
 * ctl_sts.c - MTA-STS for the administrator: `sluicectl
 * get-mtastspolicy [DOMAIN]` shows the policies the daemon has cached
 * (read from the queue database, read-only, whether the daemon runs or
 * not), and ctl_sts_show() adds a domain's MTA-STS state to `sluicectl
 * route`: the TXT record's id, the policy in force (cached or fetched
 * now, with src/sts/sts.c, the daemon's own code), its mode, and which
 * next hops it allows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "ctl/ctl.h"
#include "dns/resolver.h"
#include "spool/spool_sts.h"
#include "sts/sts.h"

/* The TXT and address look-ups and a fetch (STS_FETCH_TIMEOUT_SEC). */
#define CTL_STS_WAIT 40 /* seconds */

static void
ctl_sts_time(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
ctl_sts_print_policy(const struct sts_policy *p)
{
	printf("Mode      : %s\n", sts_policy_mode_name(p->mode));
	printf("MaxAge    : %lu\n", p->max_age);
	for (size_t i = 0; i < p->nmx; i++)
		printf("Mx        : %s\n", p->mx[i]);
}

static int
ctl_sts_row(void *arg, const struct spool_sts_row *row)
{
	struct sts_policy *p = malloc(sizeof(*p));
	char fetched[40], expires[40], why[256];
	int *n = arg;

	if (p == NULL)
		return 1;
	if ((*n)++ > 0)
		printf("\n");
	ctl_sts_time(row->fetched, fetched, sizeof(fetched));
	ctl_sts_time(row->expires, expires, sizeof(expires));
	printf("Domain    : %s\n", row->domain);
	printf("Id        : %s\n", row->id);
	printf("Fetched   : %s\n", fetched);
	printf("Expires   : %s%s\n", expires,
	    row->expires <= time(NULL) ? " (expired: not used)" : "");
	if (sts_policy_parse(
	        row->policy, row->policy_len, p, why, sizeof(why)) == 0)
		ctl_sts_print_policy(p);
	else
		printf("Policy    : broken (%s): not used\n", why);
	free(p);
	return 0;
}

int
ctl_get_mtastspolicy(struct ctl *ctl, int argc, char **argv)
{
	struct conf *c;
	const char *why = NULL;
	int n = 0, rc;

	if (argc > 1) {
		fprintf(stderr, "usage: sluicectl get-mtastspolicy [DOMAIN]\n");
		return 2;
	}
	if ((c = conf_load(ctl->conf_path, stderr)) == NULL)
		return 1;
	rc = spool_sts_read_dir(c->transport.queue_directory,
	    argc == 1 ? argv[0] : NULL, ctl_sts_row, &n, &why);
	if (rc < 0) {
		fprintf(stderr, "sluicectl: %s/queue.db: %s\n",
		    c->transport.queue_directory, why);
		conf_free(c);
		return 1;
	}
	if (n == 0)
		printf("%s%s%s\n",
		    argc == 1 ? "no cached MTA-STS policy for " : "",
		    argc == 1 ? argv[0] : "no cached MTA-STS policies", "");
	conf_free(c);
	return argc == 1 && n == 0 ? 1 : 0;
}

struct ctl_sts_wait {
	int done;
	struct sts_state st;
};

static void
ctl_sts_done(void *arg, const struct sts_state *st)
{
	struct ctl_sts_wait *w = arg;

	w->st = *st;
	w->done = 1;
}

static int
ctl_sts_preload(void *arg, const struct spool_sts_row *row)
{
	sts_preload(arg, row);
	return 0;
}

/* The MTA-STS lines, with the loop and resolver given. */
static void
ctl_sts_lines(struct event_base *base, struct resolver *res,
    const struct resolver_result *rr, const struct conf *c,
    const struct conf_send_connector *sc, const char *domain)
{
	struct sts_params p = {
	    base, res, NULL, c->transport.trusted_ca_file, sts_port_from_env()};
	struct ctl_sts_wait w;
	struct sts_query *q;
	struct sts *sts;
	const char *why = NULL;
	char fetched[40], expires[40];

	if ((sts = sts_new(&p, &why)) == NULL) {
		printf("MtaSts    : unknown (%s)\n", why);
		return;
	}
	/* What the daemon has cached counts, as it does for the daemon. */
	(void)spool_sts_read_dir(
	    c->transport.queue_directory, domain, ctl_sts_preload, sts, &why);
	memset(&w, 0, sizeof(w));
	if ((q = sts_get(sts, domain, ctl_sts_done, &w)) == NULL) {
		printf("MtaSts    : unknown (the lookup could not start)\n");
		sts_free(sts);
		return;
	}
	if (ctl_wait(base, &w.done, CTL_STS_WAIT) < 0) {
		sts_cancel(q);
		printf("MtaSts    : unknown (no answer within %d seconds)\n",
		    CTL_STS_WAIT);
		sts_free(sts);
		return;
	}
	printf("MtaStsTxt : %s\n", w.st.txt_id[0] ? w.st.txt_id : "(none)");
	if (!w.st.has_policy) {
		printf("MtaSts    : no policy: %s\n", w.st.why);
		sts_free(sts);
		return;
	}
	ctl_sts_time(w.st.fetched, fetched, sizeof(fetched));
	ctl_sts_time(w.st.expires, expires, sizeof(expires));
	printf("MtaSts    : %s policy id %s, mode %s, max_age %lu (fetched "
	       "%s, expires %s): %s\n",
	    w.st.source, w.st.id, sts_policy_mode_name(w.st.policy.mode),
	    w.st.policy.max_age, fetched, expires, w.st.why);
	for (size_t i = 0; i < w.st.policy.nmx; i++)
		printf("MtaStsMx  : %s\n", w.st.policy.mx[i]);
	for (size_t i = 0; i < rr->nhops; i++) {
		const char *h = rr->hops[i].host;
		int match = sts_policy_match(&w.st.policy, h);

		if (i > 0 && strcmp(h, rr->hops[i - 1].host) == 0)
			continue;
		printf("MtaStsHop : %s: %s\n", h,
		    match ? "matches the policy"
		    : w.st.policy.mode == STS_POLICY_ENFORCE
		        ? "does not match the policy: skipped (enforce)"
		    : w.st.policy.mode == STS_POLICY_TESTING
		        ? "does not match the policy: used, and reported "
		          "(testing)"
		        : "does not match the policy (mode none: used)");
	}
	sts_free(sts);
}

void
ctl_sts_show(const struct conf *c, const struct resolver_result *rr,
    const struct conf_send_connector *sc, const char *domain)
{
	struct event_base *base;
	struct resolver *res;
	const char *why = NULL;

	if (!sc->dns_routing_enabled)
		return; /* a smart host is not the domain's MX */
	printf("MtaStsMode: %s%s\n", conf_sts_mode_name(sc->mta_sts_mode),
	    sc->ignore_starttls ? " (off: IgnoreSTARTTLS)" : "");
	if (sc->mta_sts_mode == MTASTS_MODE_NONE || sc->ignore_starttls)
		return;
	if ((base = event_base_new()) == NULL) {
		printf("MtaSts    : unknown (cannot create an event loop)\n");
		return;
	}
	if ((res = resolver_new_dnssec(base, c->transport.resolver,
	         c->transport.dnssec_trust_anchor_file, &why)) == NULL) {
		printf("MtaSts    : unknown (resolver: %s)\n", why);
		event_base_free(base);
		return;
	}
	ctl_sts_lines(base, res, rr, c, sc, domain);
	resolver_free(res);
	event_base_free(base);
}
