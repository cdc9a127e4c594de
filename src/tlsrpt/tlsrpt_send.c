/*
 * tlsrpt_send.c - sending TLS reports (see tlsrpt_send.h).
 *
 * A run goes through the domains of one day one at a time, and through
 * each domain's rua addresses one at a time: the _smtp._tls TXT record
 * (our resolver), the report made once per domain (tlsrpt_make, the
 * same bytes `sluicectl tls-report` prints) and gzip'd, then per address
 * what tlsrpt_sent says (sent already, given up, pausing) and otherwise
 * an attempt.  One step at a time keeps a run's memory to one report and
 * its load on the receivers to one connection; reports are few (one per
 * domain and day) and a POST is bounded (60 s).
 *
 * Once, across restarts:
 *   https:  the state is written after the 2xx.  A crash in between
 *           POSTs the same report again (same report-id, which is what
 *           receivers deduplicate by); never none.
 *   mailto: "queued as ID" is handed to the committer before the
 *           message itself, and "sent" after the message is durable.
 *           The committer writes in order, so after a crash a "queued"
 *           row whose message is in the queue was sent, and one whose
 *           message is not was not: neither lost nor doubled.
 *
 * The daily run starts TLSRPT_SEND_AFTER_SEC after midnight UTC (a
 * timer looks every TLSRPT_SEND_TICK_SEC) for the day before, and is
 * repeated at the next ticks while something is left for later (a
 * failed attempt's pause, a temporary DNS failure); domains with
 * nothing left are not looked at again that day.  A day is only tried
 * during the next one (RFC 8460 5.5's 24 hours).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "daemon/daemon.h"
#include "dns/resolver.h"
#include "queue/outcome.h"
#include "spool/spool.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_https.h"
#include "tlsrpt/tlsrpt_json.h"
#include "tlsrpt/tlsrpt_mail.h"
#include "tlsrpt/tlsrpt_send.h"
#include "tlsrpt/tlsrpt_store.h"
#include "tlsrpt/tlsrpt_txt.h"
#include "util/buf.h"
#include "util/curl_loop.h"
#include "util/gzip.h"
#include "util/log.h"

#define TLSRPT_RR_A 1
#define TLSRPT_RR_TXT 16
#define TLSRPT_RR_AAAA 28
/* One TXT record joined, at most (longer ones are no policy of ours). */
#define TLSRPT_TXT_MAX 4096
#define TLSRPT_TXT_RECORDS 16
/* A report, its gzip and its mail: bounded (details are at most 1000). */
#define TLSRPT_REPORT_MAX (8 * 1024 * 1024)
/* What a run tells the administrator who asked. */
#define TLSRPT_LINES_MAX (1024 * 1024)

struct tlsrpt_run {
	struct tlsrpt_run *next;
	struct tlsrpt_sender *s; /* NULL once the sender is gone */
	struct conf_ref *ref;
	int forced; /* an administrator's: no pauses */
	char day[11];
	char domain[256]; /* "" for every domain */
	tlsrpt_run_fn fn;
	void *arg;
	struct buf out;
	int incomplete;     /* something is left for a later run */
	int dom_incomplete; /* ... of the current domain */
	unsigned busy;      /* the committer's callbacks still to come */
	int finished;
	struct tlsrpt_who who;
	char **domains;
	size_t ndomains, di;
	struct tlsrpt_rua rua;
	size_t ri;
	struct tlsrpt_sent_row row; /* of rua ri */
	char report_id[300];
	struct buf gz; /* the current domain's report, gzip'd */
	/* the step under way */
	struct resolver_lookup *lookup;
	struct tlsrpt_post *post;
	char host[256];
	unsigned port;
	int asked_aaaa;
	struct sockaddr_storage addrs[TLSRPT_POST_ADDRS_MAX];
	size_t naddrs;
	char *mail; /* a mailto: report, until the queue has it */
	char queue_id[32];
	char line[700]; /* said once the state is recorded */
	int line_warn;  /* ... and logged as a warning */
};

struct tlsrpt_sender {
	struct daemon *daemon;
	tlsrpt_stored_fn stored;
	void *stored_arg;
	struct event *timer;
	struct curl_loop *curl;
	struct tlsrpt_run *current, *waiting, **waiting_tail;
	/* the daily run: its day, and its domains with nothing left */
	char day[11];
	int day_done;
	char **settled;
	size_t nsettled;
};

static void tlsrpt_next_domain(struct tlsrpt_run *);
static void tlsrpt_next_rua(struct tlsrpt_run *);
static void tlsrpt_start_next(struct tlsrpt_sender *);

long
tlsrpt_send_pause(unsigned failed)
{
	if (failed == 0)
		return 0;
	if (failed > 16)
		failed = 16;
	return (long)TLSRPT_SEND_PAUSE_SEC << (failed - 1);
}

static const char *
tlsrpt_cur_domain(const struct tlsrpt_run *r)
{
	return r->di < r->ndomains ? r->domains[r->di] : "";
}

static void
tlsrpt_run_free(struct tlsrpt_run *r)
{
	if (r->lookup != NULL)
		resolver_lookup_cancel(r->lookup);
	if (r->post != NULL)
		tlsrpt_post_cancel(r->post);
	if (r->ref != NULL)
		daemon_conf_release(r->ref);
	tlsrpt_store_domains_free(r->domains, r->ndomains);
	buf_free(&r->out);
	buf_free(&r->gz);
	free(r->mail);
	free(r);
}

/* A committer callback came: 1 when the run is over and freed. */
static int
tlsrpt_unbusy(struct tlsrpt_run *r)
{
	r->busy--;
	if ((r->s == NULL || r->finished) && r->busy == 0) {
		tlsrpt_run_free(r);
		return 1;
	}
	return r->s == NULL || r->finished;
}

static void
tlsrpt_finish(struct tlsrpt_run *r)
{
	struct tlsrpt_sender *s = r->s;

	if (!r->forced && !r->incomplete && strcmp(s->day, r->day) == 0)
		s->day_done = 1;
	if (r->fn != NULL) {
		if (r->out.len == 0)
			buf_printf(&r->out,
			    "no outbound TLS sessions to report on %s (UTC)\n",
			    r->day);
		r->fn(r->arg, &r->out);
		r->fn = NULL;
	}
	s->current = NULL;
	r->finished = 1;
	if (r->busy == 0)
		tlsrpt_run_free(r);
	tlsrpt_start_next(s);
}

/* --- the daily run's memory of settled domains ------------------------- */

static void
tlsrpt_settled_clear(struct tlsrpt_sender *s)
{
	for (size_t i = 0; i < s->nsettled; i++)
		free(s->settled[i]);
	free(s->settled);
	s->settled = NULL;
	s->nsettled = 0;
}

static int
tlsrpt_is_settled(const struct tlsrpt_sender *s, const char *domain)
{
	for (size_t i = 0; i < s->nsettled; i++)
		if (strcmp(s->settled[i], domain) == 0)
			return 1;
	return 0;
}

static void
tlsrpt_settle(struct tlsrpt_run *r)
{
	struct tlsrpt_sender *s = r->s;
	char **v;

	if (r->forced || r->dom_incomplete || strcmp(s->day, r->day) != 0 ||
	    tlsrpt_is_settled(s, tlsrpt_cur_domain(r)))
		return;
	if ((v = realloc(s->settled, (s->nsettled + 1) * sizeof(*v))) == NULL)
		return;
	s->settled = v;
	if ((v[s->nsettled] = strdup(tlsrpt_cur_domain(r))) != NULL)
		s->nsettled++;
}

/* --- one address: recording what became of it ------------------------- */

static void
tlsrpt_said(struct tlsrpt_run *r, int ok)
{
	if (!ok) {
		buf_printf(&r->out,
		    "%s %s: %s, but that could not be recorded\n",
		    tlsrpt_cur_domain(r), r->rua.uri[r->ri], r->line);
		log_warn("TLS report for %s (%s) to %s: %s, but that could "
		         "not be recorded in the queue database",
		    tlsrpt_cur_domain(r), r->day, r->rua.uri[r->ri], r->line);
		r->dom_incomplete = r->incomplete = 1;
	} else {
		buf_printf(&r->out, "%s %s: %s\n", tlsrpt_cur_domain(r),
		    r->rua.uri[r->ri], r->line);
		if (r->line_warn)
			log_warn("TLS report for %s (%s) to %s: %s",
			    tlsrpt_cur_domain(r), r->day, r->rua.uri[r->ri],
			    r->line);
		else
			log_info("TLS report for %s (%s) to %s: %s",
			    tlsrpt_cur_domain(r), r->day, r->rua.uri[r->ri],
			    r->line);
	}
	r->ri++;
	tlsrpt_next_rua(r);
}

static void
tlsrpt_marked(void *arg, int ok, const char *queue_id)
{
	struct tlsrpt_run *r = arg;

	(void)queue_id;
	if (!tlsrpt_unbusy(r))
		tlsrpt_said(r, ok);
}

/* Record state for the current address; the line follows once durable. */
static void
tlsrpt_mark(struct tlsrpt_run *r, enum tlsrpt_state state, const char *error,
    const char *queue_id)
{
	r->busy++;
	if (tlsrpt_store_mark(r->s->daemon->tlsrpt, r->day,
	        tlsrpt_cur_domain(r), r->rua.uri[r->ri], r->report_id, state,
	        error, queue_id, tlsrpt_marked, r) < 0) {
		r->busy--;
		tlsrpt_said(r, 0);
	}
}

static void
tlsrpt_failed(struct tlsrpt_run *r, const char *why)
{
	unsigned n = r->row.attempts + 1;

	snprintf(r->line, sizeof(r->line), "failed (attempt %u of %d): %.500s",
	    n, TLSRPT_SEND_ATTEMPTS, why);
	r->line_warn = 1;
	if (n < TLSRPT_SEND_ATTEMPTS)
		r->dom_incomplete = r->incomplete = 1;
	tlsrpt_mark(r, TLSRPT_FAILED, why, "");
}

static void
tlsrpt_sent(struct tlsrpt_run *r, const char *line, const char *queue_id)
{
	snprintf(r->line, sizeof(r->line), "%s", line);
	r->line_warn = 0;
	tlsrpt_mark(r, TLSRPT_SENT, "", queue_id);
}

/* --- https: ------------------------------------------------------------- */

static void
tlsrpt_posted(void *arg, int ok, const char *why)
{
	struct tlsrpt_run *r = arg;

	r->post = NULL;
	if (ok)
		tlsrpt_sent(r, "sent", "");
	else
		tlsrpt_failed(r, why);
}

static void
tlsrpt_post(struct tlsrpt_run *r)
{
	const struct conf_transport *t = &r->ref->conf->transport;

	r->post = tlsrpt_post_start(r->s->curl, r->rua.uri[r->ri], r->addrs,
	    r->naddrs, t->trusted_ca_file, r->gz.data, r->gz.len, tlsrpt_posted,
	    r);
	if (r->post == NULL)
		tlsrpt_failed(r, "the POST could not be started");
}

static void
tlsrpt_addr_add(struct tlsrpt_run *r, int family, const void *ip)
{
	struct sockaddr_storage *ss;

	if (r->naddrs >= TLSRPT_POST_ADDRS_MAX)
		return;
	ss = &r->addrs[r->naddrs++];
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)r->port);
		memcpy(&s4->sin_addr, ip, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)r->port);
		memcpy(&s6->sin6_addr, ip, 16);
	}
}

static void
tlsrpt_addr_answer(void *arg, const struct resolver_answer *a)
{
	struct tlsrpt_run *r = arg;
	int want = r->asked_aaaa ? 16 : 4;
	char why[400];

	r->lookup = NULL;
	if (a->status == RESOLVER_ANSWER_DATA)
		for (size_t i = 0; i < a->n; i++)
			if (a->len[i] == (size_t)want)
				tlsrpt_addr_add(r,
				    want == 4 ? AF_INET : AF_INET6, a->data[i]);
	if (!r->asked_aaaa) {
		r->asked_aaaa = 1;
		r->lookup = resolver_lookup(r->ref->resolver, r->host,
		    TLSRPT_RR_AAAA, tlsrpt_addr_answer, r);
		if (r->lookup != NULL)
			return;
	}
	if (r->naddrs == 0) {
		snprintf(why, sizeof(why), "no address for %s%s%s", r->host,
		    a->why != NULL ? ": " : "", a->why != NULL ? a->why : "");
		tlsrpt_failed(r, why);
		return;
	}
	tlsrpt_post(r);
}

static void
tlsrpt_https(struct tlsrpt_run *r)
{
	unsigned char ip[16];

	r->naddrs = 0;
	r->asked_aaaa = 0;
	if (tlsrpt_https_target(
	        r->rua.uri[r->ri], r->host, sizeof(r->host), &r->port) < 0) {
		tlsrpt_failed(r, "not an https: URL reports are POSTed to");
		return;
	}
	/* an address in the URL needs no look-up */
	if (inet_pton(AF_INET, r->host, ip) == 1 ||
	    inet_pton(AF_INET6, r->host, ip) == 1) {
		tlsrpt_addr_add(
		    r, strchr(r->host, ':') != NULL ? AF_INET6 : AF_INET, ip);
		tlsrpt_post(r);
		return;
	}
	if (r->ref->resolver == NULL ||
	    (r->lookup = resolver_lookup(r->ref->resolver, r->host, TLSRPT_RR_A,
	         tlsrpt_addr_answer, r)) == NULL)
		tlsrpt_failed(r, "DNS: the look-up could not be started");
}

/* --- mailto: ----------------------------------------------------------- */

static void
tlsrpt_stored(void *arg, int ok, const char *queue_id)
{
	struct tlsrpt_run *r = arg;
	char line[100];

	(void)queue_id;
	free(r->mail);
	r->mail = NULL;
	if (tlsrpt_unbusy(r))
		return;
	if (!ok) {
		tlsrpt_failed(r, "the report could not be stored in the queue");
		return;
	}
	if (r->s->stored != NULL)
		r->s->stored(r->s->stored_arg);
	snprintf(line, sizeof(line), "sent (queued as %s)", r->queue_id);
	tlsrpt_sent(r, line, r->queue_id);
}

static void
tlsrpt_queued_marked(void *arg, int ok, const char *queue_id)
{
	struct tlsrpt_run *r = arg;

	(void)queue_id;
	if (tlsrpt_unbusy(r))
		return;
	/* the message's own outcome decides; this only guards a crash */
	if (!ok)
		log_warn("TLS report for %s (%s) to %s: queued as %s, but "
		         "that could not be recorded",
		    tlsrpt_cur_domain(r), r->day, r->rua.uri[r->ri],
		    r->queue_id);
}

static void
tlsrpt_mailto(struct tlsrpt_run *r)
{
	const char *domain = tlsrpt_cur_domain(r);
	char to[320], msgid[400], subject[900];
	struct tlsrpt_mail m;
	struct spool_rcpt rcpt;
	struct spool_msg sm;
	struct buf mail;
	int64_t start, end;

	if (tlsrpt_mailto_addr(r->rua.uri[r->ri], to, sizeof(to)) < 0) {
		tlsrpt_failed(r, "not a mailto: address reports can go to");
		return;
	}
	tlsrpt_day_range(r->day, &start, &end);
	spool_queue_id(r->queue_id, sizeof(r->queue_id));
	snprintf(msgid, sizeof(msgid), "%s.tlsrpt@%s", r->queue_id,
	    outcome_fqdn(r->s->daemon));
	memset(&m, 0, sizeof(m));
	m.from = r->who.from;
	m.to = to;
	m.domain = domain;
	m.submitter = r->who.submitter;
	m.report_id = r->report_id;
	m.message_id = msgid;
	m.start = start;
	m.end = end;
	m.now = time(NULL);
	m.gzip = r->gz.data;
	m.gzip_len = r->gz.len;
	buf_init(&mail, TLSRPT_REPORT_MAX * 2);
	if (tlsrpt_mail_compose(&m, &mail) < 0 || mail.data == NULL) {
		buf_free(&mail);
		tlsrpt_failed(r, "the report message could not be composed");
		return;
	}
	snprintf(subject, sizeof(subject),
	    "Report Domain: %s Submitter: %s Report-ID: <%s>", domain,
	    r->who.submitter, r->report_id);
	snprintf(msgid, sizeof(msgid), "<%s.tlsrpt@%s>", r->queue_id,
	    outcome_fqdn(r->s->daemon));
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.addr = to;
	rcpt.orcpt = "";
	memset(&sm, 0, sizeof(sm));
	sm.queue_id = r->queue_id;
	sm.sender = r->who.from;
	sm.envid = "";
	/* RFC 8689 3: a report about broken TLS must not be stopped by it */
	sm.tls_optional = 1;
	sm.connector = "TlsReport";
	sm.client = "";
	sm.helo = "";
	sm.tls = "";
	sm.auth_as = "Internal";
	sm.message_id = msgid;
	sm.subject = subject;
	sm.rcpts = &rcpt;
	sm.nrcpts = 1;
	sm.len = mail.len;
	sm.data = r->mail = buf_steal(&mail, NULL);
	buf_free(&mail);
	/* first "queued as": the committer writes it no later than the
	 * message, so a crash between the two is told apart after it */
	r->busy++;
	if (tlsrpt_store_mark(r->s->daemon->tlsrpt, r->day, domain,
	        r->rua.uri[r->ri], r->report_id, TLSRPT_QUEUED, "", r->queue_id,
	        tlsrpt_queued_marked, r) < 0) {
		r->busy--;
		free(r->mail);
		r->mail = NULL;
		tlsrpt_failed(r, "out of memory");
		return;
	}
	r->busy++;
	if (spool_submit(r->s->daemon->spool, &sm, tlsrpt_stored, r) < 0) {
		r->busy--;
		free(r->mail);
		r->mail = NULL;
		tlsrpt_failed(r, "the report could not be stored in the queue");
	}
}

/* --- one domain's addresses ------------------------------------------- */

static void
tlsrpt_next_rua(struct tlsrpt_run *r)
{
	struct tlsrpt_store *st = r->s->daemon->tlsrpt;
	const char *domain = tlsrpt_cur_domain(r);

	for (; r->ri < r->rua.n; r->ri++) {
		const char *uri = r->rua.uri[r->ri];
		int state =
		    tlsrpt_store_state(st, r->day, domain, uri, &r->row);
		time_t due;

		if (state < 0) {
			buf_printf(&r->out,
			    "%s %s: error: the queue database cannot be read\n",
			    domain, uri);
			r->dom_incomplete = r->incomplete = 1;
			continue;
		}
		if (state == TLSRPT_QUEUED &&
		    tlsrpt_store_in_queue(st, r->row.queue_id) == 1) {
			char line[100];

			/* stored before a restart, its "sent" not recorded */
			snprintf(line, sizeof(line), "sent (queued as %s)",
			    r->row.queue_id);
			tlsrpt_sent(r, line, r->row.queue_id);
			return;
		}
		if (state == TLSRPT_SENT) {
			buf_printf(
			    &r->out, "%s %s: already sent\n", domain, uri);
			continue;
		}
		if (state == TLSRPT_FAILED &&
		    r->row.attempts >= TLSRPT_SEND_ATTEMPTS) {
			buf_printf(&r->out,
			    "%s %s: given up after %u attempts\n", domain, uri,
			    r->row.attempts);
			continue;
		}
		due = r->row.updated + tlsrpt_send_pause(r->row.attempts);
		if (state == TLSRPT_FAILED && !r->forced && time(NULL) < due) {
			buf_printf(&r->out,
			    "%s %s: next attempt in %ld s or later\n", domain,
			    uri, (long)(due - time(NULL)));
			r->dom_incomplete = r->incomplete = 1;
			continue;
		}
		if (strncmp(uri, "https:", 6) == 0)
			tlsrpt_https(r);
		else
			tlsrpt_mailto(r);
		return;
	}
	tlsrpt_settle(r);
	r->di++;
	tlsrpt_next_domain(r);
}

/* --- the domains of a day --------------------------------------------- */

/* A TXT record's strings joined; -1 when too long. */
static int
tlsrpt_txt_join(const unsigned char *p, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		size_t k = p[i++];

		if (k > len - i || n + k >= outlen)
			return -1;
		memcpy(out + n, p + i, k);
		n += k;
		i += k;
	}
	out[n] = '\0';
	/* a NUL inside would cut the record short: not ours */
	return strlen(out) == n ? 0 : -1;
}

static void
tlsrpt_txt_answer(void *arg, const struct resolver_answer *a)
{
	struct tlsrpt_run *r = arg;
	const char *domain = tlsrpt_cur_domain(r), *why = NULL;
	char(*texts)[TLSRPT_TXT_MAX] = NULL;
	const char *recs[TLSRPT_TXT_RECORDS];
	size_t n = 0;
	struct buf json;
	int rc;

	r->lookup = NULL;
	if (a->status == RESOLVER_ANSWER_TEMPFAIL ||
	    a->status == RESOLVER_ANSWER_BOGUS) {
		buf_printf(&r->out, "%s: DNS: %s; tried again later\n", domain,
		    a->why != NULL ? a->why : "temporary failure");
		r->incomplete = 1;
		goto next;
	}
	if (a->status == RESOLVER_ANSWER_DATA &&
	    (texts = calloc(TLSRPT_TXT_RECORDS, sizeof(*texts))) != NULL)
		for (size_t i = 0; i < a->n && n < TLSRPT_TXT_RECORDS; i++)
			if (tlsrpt_txt_join(a->data[i], a->len[i], texts[n],
			        sizeof(texts[n])) == 0) {
				recs[n] = texts[n];
				n++;
			}
	rc = n == 0 ? -1 : tlsrpt_txt_parse(recs, n, &r->rua, &why);
	free(texts);
	if (rc < 0) {
		buf_printf(&r->out, "%s: no TLS reporting policy%s%s%s\n",
		    domain, why != NULL ? " (" : "", why != NULL ? why : "",
		    why != NULL ? ")" : "");
		tlsrpt_settle(r);
		goto next;
	}
	buf_init(&json, TLSRPT_REPORT_MAX);
	rc = tlsrpt_make(
	    r->s->daemon, r->s->daemon->tlsrpt, r->day, domain, 0, &json);
	buf_reset(&r->gz);
	if (rc == 0 && (json.data == NULL ||
	                   gzip_compress(json.data, json.len, &r->gz) < 0))
		rc = -1;
	buf_free(&json);
	if (rc != 0) {
		buf_printf(&r->out, "%s: %s\n", domain,
		    rc > 0 ? "no sessions to report"
		           : "error: the report could not be made");
		if (rc < 0)
			r->incomplete = 1;
		goto next;
	}
	tlsrpt_report_id(r->day, domain, r->who.submitter, r->report_id,
	    sizeof(r->report_id));
	r->ri = 0;
	tlsrpt_next_rua(r);
	return;
next:
	r->di++;
	tlsrpt_next_domain(r);
}

static void
tlsrpt_next_domain(struct tlsrpt_run *r)
{
	char name[300];

	for (; r->di < r->ndomains; r->di++) {
		const char *domain = r->domains[r->di];

		r->dom_incomplete = 0;
		if (!r->forced && tlsrpt_is_settled(r->s, domain))
			continue;
		snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
		if (r->ref->resolver != NULL &&
		    (r->lookup = resolver_lookup(r->ref->resolver, name,
		         TLSRPT_RR_TXT, tlsrpt_txt_answer, r)) != NULL)
			return;
		buf_printf(&r->out,
		    "%s: DNS: the look-up could not be started; tried again "
		    "later\n",
		    domain);
		r->incomplete = 1;
	}
	tlsrpt_finish(r);
}

static void
tlsrpt_flushed(void *arg, int ok, const char *queue_id)
{
	struct tlsrpt_run *r = arg;
	struct tlsrpt_store *st;

	(void)queue_id;
	if (tlsrpt_unbusy(r))
		return;
	st = r->s->daemon->tlsrpt;
	if (!ok) {
		buf_puts(&r->out, "error: the sessions could not be written to "
		                  "the queue database\n");
		r->incomplete = 1;
	} else if (r->domain[0] != '\0') {
		if ((r->domains = calloc(1, sizeof(*r->domains))) != NULL &&
		    (r->domains[0] = strdup(r->domain)) != NULL)
			r->ndomains = 1;
	} else if (tlsrpt_store_domains(st, r->day, &r->domains, &r->ndomains) <
	           0) {
		buf_puts(
		    &r->out, "error: cannot read the TLS report sessions\n");
		r->incomplete = 1;
	}
	r->di = 0;
	tlsrpt_next_domain(r);
}

static void
tlsrpt_start(struct tlsrpt_run *r)
{
	struct tlsrpt_sender *s = r->s;

	s->current = r;
	r->ref = daemon_conf_acquire(s->daemon);
	tlsrpt_who(s->daemon, &r->who);
	r->busy++;
	if (tlsrpt_store_flush(s->daemon->tlsrpt, tlsrpt_flushed, r) < 0) {
		r->busy--;
		buf_puts(&r->out, "error: out of memory\n");
		r->incomplete = 1;
		tlsrpt_finish(r);
	}
}

static void
tlsrpt_start_next(struct tlsrpt_sender *s)
{
	struct tlsrpt_run *r = s->waiting;

	if (s->current != NULL || r == NULL)
		return;
	if ((s->waiting = r->next) == NULL)
		s->waiting_tail = &s->waiting;
	r->next = NULL;
	tlsrpt_start(r);
}

static struct tlsrpt_run *
tlsrpt_run_new(struct tlsrpt_sender *s, const char *day, const char *domain,
    int forced, tlsrpt_run_fn fn, void *arg)
{
	struct tlsrpt_run *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->s = s;
	r->forced = forced;
	r->fn = fn;
	r->arg = arg;
	snprintf(r->day, sizeof(r->day), "%s", day);
	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	buf_init(&r->out, TLSRPT_LINES_MAX);
	buf_init(&r->gz, TLSRPT_REPORT_MAX);
	*s->waiting_tail = r;
	s->waiting_tail = &r->next;
	tlsrpt_start_next(s);
	return r;
}

int
tlsrpt_sender_run(struct tlsrpt_sender *s, const char *day, const char *domain,
    tlsrpt_run_fn fn, void *arg)
{
	return tlsrpt_run_new(s, day, domain, 1, fn, arg) != NULL ? 0 : -1;
}

/* --- the daily run ------------------------------------------------------ */

static void
tlsrpt_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tlsrpt_sender *s = arg;
	const struct conf_transport *t = &s->daemon->conf->conf->transport;
	time_t now = time(NULL);
	char yesterday[11];

	(void)fd;
	(void)what;
	/* reports go out only under a name of our own (docs/tls.md) */
	if (t->tls_reporting_organization == NULL ||
	    t->tls_reporting_organization[0] == '\0' || s->daemon->draining ||
	    s->current != NULL || now % 86400 < TLSRPT_SEND_AFTER_SEC)
		return;
	tlsrpt_day(now - 86400, yesterday);
	if (strcmp(s->day, yesterday) != 0) {
		memcpy(s->day, yesterday, sizeof(s->day));
		s->day_done = 0;
		tlsrpt_settled_clear(s);
	}
	if (!s->day_done)
		tlsrpt_run_new(s, yesterday, "", 0, NULL, NULL);
}

struct tlsrpt_sender *
tlsrpt_sender_new(
    struct daemon *daemon, tlsrpt_stored_fn stored, void *stored_arg)
{
	struct tlsrpt_sender *s = calloc(1, sizeof(*s));
	struct timeval every = {TLSRPT_SEND_TICK_SEC, 0};

	if (s == NULL)
		return NULL;
	s->daemon = daemon;
	s->stored = stored;
	s->stored_arg = stored_arg;
	s->waiting_tail = &s->waiting;
	s->curl = curl_loop_new(daemon->base);
	s->timer = event_new(daemon->base, -1, EV_PERSIST, tlsrpt_tick, s);
	if (s->curl == NULL || s->timer == NULL ||
	    event_add(s->timer, &every) < 0) {
		tlsrpt_sender_free(s);
		return NULL;
	}
	return s;
}

/* An administrator waiting for a run hears why there is none. */
static void
tlsrpt_drop(struct tlsrpt_run *r)
{
	if (r->fn != NULL) {
		buf_reset(&r->out);
		buf_puts(&r->out, "error: the daemon is stopping\n");
		r->fn(r->arg, &r->out);
		r->fn = NULL;
	}
	if (r->lookup != NULL)
		resolver_lookup_cancel(r->lookup);
	r->lookup = NULL;
	if (r->post != NULL)
		tlsrpt_post_cancel(r->post);
	r->post = NULL;
	/* the committer's callbacks may follow: they need nothing more */
	if (r->ref != NULL)
		daemon_conf_release(r->ref);
	r->ref = NULL;
	r->s = NULL;
	if (r->busy == 0)
		tlsrpt_run_free(r);
}

void
tlsrpt_sender_free(struct tlsrpt_sender *s)
{
	struct tlsrpt_run *r, *next;

	if (s == NULL)
		return;
	if (s->current != NULL)
		tlsrpt_drop(s->current);
	for (r = s->waiting; r != NULL; r = next) {
		next = r->next;
		tlsrpt_drop(r);
	}
	tlsrpt_settled_clear(s);
	if (s->timer != NULL)
		event_free(s->timer);
	curl_loop_free(s->curl);
	free(s);
}
