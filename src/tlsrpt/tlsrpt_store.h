/*
 * tlsrpt_store.h - what TLS reports are made of (RFC 8460): every
 * outbound session's result per policy domain and UTC day, and which
 * reports went where.  Kept in the queue database (tables
 * tlsrpt_sessions, tlsrpt_sent), written through the spool's committer.
 */
#ifndef SLUICE_TLSRPT_STORE_H
#define SLUICE_TLSRPT_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "spool/spool.h"
#include "tls/tls_result.h"
#include "tlsrpt/tlsrpt_json.h"

struct event_base;
struct tlsrpt_store;

/* How often the counts go to the queue database. */
#define TLSRPT_FLUSH_SECONDS 60
/* Days of sessions kept (reports are made the day after). */
#define TLSRPT_KEEP_DAYS 8
/* Aggregates held in memory between two flushes at most (then early). */
#define TLSRPT_ENTRIES_MAX 8192

/* One session, as a report counts it. */
struct tlsrpt_session {
	const char *domain;         /* the policy domain */
	const char *policy_type;    /* "no-policy-found", "sts", "tlsa" */
	const char *policy_strings; /* lines joined by \n, "" for none */
	const char *mx_patterns;    /* mx-host lines joined by \n, "" */
	enum tls_result result;
	/* failure details (ignored for a success) */
	const char *sending_ip, *mx_host, *mx_helo, *receiving_ip, *reason;
};

struct tlsrpt_store *tlsrpt_store_new(struct spool *, struct event_base *);
/* Writes what is left (before spool_close) and frees. */
void tlsrpt_store_free(struct tlsrpt_store *);
void tlsrpt_store_session(struct tlsrpt_store *, const struct tlsrpt_session *);
/*
 * Hand what is in memory to the committer; done(arg, ok, "") once it and
 * everything written before it is durable.  -1 when it cannot even be
 * queued (done is not called).
 */
int tlsrpt_store_flush(struct tlsrpt_store *, spool_done_fn done, void *arg);

/* UTC day of a time: "YYYY-MM-DD". */
void tlsrpt_day(time_t, char out[11]);

/*
 * The domains with sessions on a day (as stored: flush first), malloc'ed
 * strings in a malloc'ed array.  -1 when the database cannot be read.
 */
int tlsrpt_store_domains(
    struct tlsrpt_store *, const char *day, char ***domains, size_t *n);
void tlsrpt_store_domains_free(char **, size_t);

/*
 * The report of one domain and day (policies, counts, details; the
 * caller sets organization, contact and report_id).  -1 when it cannot
 * be read; 0 with no policies when there were no sessions.
 */
int tlsrpt_store_report(struct tlsrpt_store *, const char *day,
    const char *domain, struct tlsrpt_report *out);

/*
 * Reports sent (table tlsrpt_sent), per (day, domain, rua): has this one
 * gone out?  TLSRPT_QUEUED: a mailto: report handed to the queue as
 * message queue_id, not yet known to be stored (a crash in between: it
 * is sent when that message is not in the queue); TLSRPT_SENT: POSTed
 * (2xx), or stored in the queue; TLSRPT_FAILED: attempts so far failed,
 * the last one at updated.
 */
enum tlsrpt_state { TLSRPT_NEW, TLSRPT_SENT, TLSRPT_FAILED, TLSRPT_QUEUED };
struct tlsrpt_sent_row {
	enum tlsrpt_state state;
	unsigned attempts; /* SENT and FAILED count one each */
	time_t updated;
	char queue_id[32];
};
/* The state (row may be NULL), TLSRPT_NEW for none; -1 on error. */
int tlsrpt_store_state(struct tlsrpt_store *, const char *day,
    const char *domain, const char *rua, struct tlsrpt_sent_row *row);
/* Record an attempt's state through the committer; done as for flush. */
int tlsrpt_store_mark(struct tlsrpt_store *, const char *day,
    const char *domain, const char *rua, const char *report_id,
    enum tlsrpt_state, const char *error, const char *queue_id,
    spool_done_fn done, void *arg);
/* Is a message with this queue id in the queue?  1 yes, 0 no, -1 error. */
int tlsrpt_store_in_queue(struct tlsrpt_store *, const char *queue_id);

#endif
