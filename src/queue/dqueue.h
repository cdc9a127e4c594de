/*
 * dqueue.h - delivery queues: one per next hop (Exchange's queues), each
 * holding the messages waiting for that destination and the SMTP
 * connections serving it.
 *
 * A queue resolves its next hops (MX or smart hosts), opens up to
 * MaxPerDomainOutboundConnections connections (MaxOutboundConnections
 * in all) and feeds them messages one at a
 * time, reusing connections while messages wait.  When no next hop can be
 * reached, every waiting message is deferred with the reason and the
 * queue shows Retry until the next attempt.  A suspended queue opens no
 * connection and holds nothing: its messages wait in the spool.
 */
#ifndef SLUICE_DQUEUE_H
#define SLUICE_DQUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/outcome.h"

struct daemon;
struct resolver;
struct dqueues;

/* One recipient handed to a queue (copied). */
struct dqueue_rcpt {
	int64_t rcpt_id;
	int64_t message_id;
	const char *queue_id;
	const char *sender;
	time_t received;
	const char *addr;
	const char *orcpt;
	unsigned notify;
	unsigned attempts;
	int delay_notified;
	/* transport rules (SPEC 5): the rule whose TLS requirement raises
	 * the queue's policy to at least RequireTLS with EncryptionOnly (an
	 * input of tls_policy_decide()), or NULL; note goes after a
	 * failure's text (the DSN then names the rule) */
	const char *tls_rule;
	const char *note;
	/* "TLS-Required: No" (RFC 8689 3): DANE and MTA-STS do not apply;
	 * such messages have queues of their own (route_queue_name's
	 * "/TlsRequiredNo"), so a connection's policy is one message's */
	int tls_optional;
};

struct dqueues *dqueues_new(struct daemon *, outcome_released_fn, void *arg);
/* Ends every connection; recipients not yet settled stay due. */
void dqueues_free(struct dqueues *);

/*
 * Queue a recipient routed to a send connector.  The queue is named
 * after the next hop (route_queue_name).  -1 when out of memory; 1 when
 * the queue is suspended and so takes nothing (DQUEUE_SUSPENDED): the
 * recipient stays due, and the caller comes back to it after a resume.
 */
#define DQUEUE_SUSPENDED 1
int dqueues_add(struct dqueues *, const char *queue, const char *connector,
    const char *domain, const struct dqueue_rcpt *);

/*
 * Start connections where messages wait: in the queues that got new
 * recipients since the last kick, or (all) in every queue, retrying those
 * whose retry time has come and forgetting empty ones.
 */
void dqueues_kick(struct dqueues *, int all);

/*
 * Administrator's actions; -1 when no such queue.  Suspending a queue
 * releases the recipients waiting in it (not those on a connection), so
 * that a suspended queue holds no place in the queue manager's working
 * set; after a resume the queue manager must walk its queue again
 * (qmgr_rescan).
 */
int dqueues_suspend(struct dqueues *, const char *queue, int suspend);
int dqueues_retry(struct dqueues *, const char *queue);
/*
 * 1 when the administrator suspended that queue.  For "Local", whose
 * mail goes to the Maildir agent, not to a delivery queue: the queue
 * manager asks before it hands a recipient to the agent.
 */
int dqueues_suspended(struct dqueues *, const char *queue);
/*
 * A message removed or suspended by the administrator leaves the waiting
 * list of one queue, or (queue NULL) of every queue.
 */
void dqueues_forget_message(
    struct dqueues *, const char *queue, const char *queue_id);

/*
 * Stopping (SIGTERM): parked connections QUIT, busy ones finish their
 * transaction and QUIT; returns how many connections are still open.
 */
unsigned dqueues_drain(struct dqueues *);

/* Outbound connections open now, all queues together (status). */
unsigned dqueues_connections(const struct dqueues *);

/* For Get-Queue: "Active", "Ready", "Retry", "Suspended"; NULL unknown. */
const char *dqueues_status(struct dqueues *, const char *queue,
    unsigned *connections, char *last_error, size_t len);

#endif
