/*
 * posture.h - the TLS posture of each partner: what every outbound
 * session met at the partner's door, kept by the hour for a week
 * (Exchange Online's TLS report, `sluicectl get-tlsposture`, the status
 * page).
 *
 * A partner is what a delivery queue is named after: the recipient
 * domain for DNS-routed connectors, the connector's name for smart
 * hosts (their sessions carry mail for every domain the connector
 * serves, so they cannot be told apart by domain).
 *
 * Recording costs a hash probe and an increment on the event loop: the
 * counts are aggregated in memory by (partner, hour, connector, policy,
 * TLS version, verified, result) and written to the queue database
 * (tables tls_posture and tls_posture_messages) through the spool's
 * committer every POSTURE_FLUSH_SECONDS and when the daemon stops.  A
 * crash loses at most that much of the statistics, never mail.  Rows
 * older than POSTURE_KEEP_HOURS are deleted.
 */
#ifndef SLUICE_POSTURE_H
#define SLUICE_POSTURE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tls/tls_result.h"

struct event_base;
struct spool;
struct posture;

/* How often the counts go to the queue database. */
#define POSTURE_FLUSH_SECONDS 60
/* What is kept: a week and a day, so that "7 days" is always whole. */
#define POSTURE_KEEP_HOURS (8 * 24)
/* Aggregates held in memory between two flushes at most (then early). */
#define POSTURE_ENTRIES_MAX 8192
/* Partners in one report at most (the most active first). */
#define POSTURE_REPORT_MAX 5000

/* One outbound session that reached the next hop's greeting. */
struct posture_session {
	const char *partner;   /* the queue: recipient domain or connector */
	const char *connector; /* the send connector */
	const char *policy;    /* the tls= policy: "opportunistic", ... */
	const char *version;   /* "TLSv1.3", or "" when TLS was not used */
	int verified; /* trusted chain, and it names the next hop (or what
	                 DomainValidation asked for) */
	enum tls_result result; /* TLS_RESULT_OK: the policy was met */
	/* the recipient's policies at that session: DANE's need of the
	 * host ("verify", "encrypt", "skip", "off"), MTA-STS's mode and
	 * policy id ("" without a policy); NULL: not known */
	const char *dane, *sts_mode, *sts_id;
};

struct posture *posture_new(struct spool *, struct event_base *);
/* Writes what is left (before spool_close) and frees. */
void posture_free(struct posture *);
void posture_session(struct posture *, const struct posture_session *);
/* A message deferred (returned = 0) or returned (1) for TLS. */
void posture_message(
    struct posture *, const char *partner, const char *connector, int returned);
/* Hand what is in memory to the committer now. */
void posture_flush(struct posture *);

/* Counts over one window. */
struct posture_counts {
	uint64_t sessions;
	uint64_t tls13, tls12, tls_other; /* by TLS version */
	uint64_t plaintext; /* no TLS, and the policy did not ask for it */
	uint64_t verified;  /* TLS with a verified certificate */
	uint64_t failures[TLS_RESULT_COUNT]; /* [0] unused */
	uint64_t failed;                     /* all failures */
	uint64_t deferred, returned;         /* messages, for TLS */
};

struct posture_partner {
	char name[256];
	struct posture_counts day;  /* the last 24 hours */
	struct posture_counts week; /* the last 7 days */
	char policies[200];         /* policies seen in the week, "a, b" */
	/*
	 * DANE and MTA-STS as the partner's last session since the daemon
	 * started met them ("" when none was seen): "verify" ...; "enforce
	 * (id 20261203)", "none" for no policy.
	 */
	char dane[16];
	char mta_sts[80];
};

/*
 * The partners with their counts (stored and still in memory), the most
 * sessions in the week first; only one when name is given.  *out is
 * malloc'ed (free it); -1 when the database cannot be read.
 */
int posture_report(struct posture *, const char *name, time_t now,
    struct posture_partner **out, size_t *n);

/* Which failure types are counted: is this a TLS failure (x.7.y)? */
int posture_tls_status(const char *enhanced);

#endif
