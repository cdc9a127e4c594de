/*
 * outcome.h - what becomes of recipients after a delivery attempt: the
 * reply is turned into a durable state (delivered, deferred until the
 * next retry, or failed), delay and non-delivery notices go to the
 * sender, and the message tracking log gets its events.
 *
 * The retry schedule (SPEC 3, Queue, retry, notifications): a deferred
 * recipient is tried again after TransientFailureRetryInterval for its
 * first TransientFailureRetryAttempts attempts, then every
 * OutboundConnectionFailureRetryInterval.  Past DelayNotificationTimeout
 * the sender gets one delay notice; past MessageExpirationTimeout the
 * recipient fails (EXPIRE).  A 5xx fails at once.  The null sender never
 * gets a notice; NOTIFY=NEVER, or a NOTIFY without the event, neither.
 *
 * Order of durability: a notice is stored as a new message before the
 * recipient's failure is, so a crash in between sends the notice twice
 * rather than not at all.
 */
#ifndef SLUICE_OUTCOME_H
#define SLUICE_OUTCOME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "log/tracklog.h"
#include "spool/spool.h"

struct daemon;

struct outcome_rcpt {
	int64_t rcpt_id;
	const char *addr;
	const char *orcpt;
	unsigned notify;
	unsigned attempts; /* before this one */
	int delay_notified;
	int code;           /* 250, 450, 550; 0: not tried (expired) */
	const char *enh;    /* "4.4.1" */
	const char *status; /* reply (lines joined) or reason, one line */
	int dsn_passed;     /* the next hop took NOTIFY itself (RFC 3461) */
};

struct outcome {
	int64_t message_id;
	const char *queue_id;
	const char *sender;
	time_t received;
	const char *connector; /* "Maildir" or the send connector */
	const char *host;      /* the next hop host that answered, or "" */
	const char *queue;     /* the queue name, kept for Retry-Queue */
	const char *tls;       /* TLS outcome for the tracking log */
	int local;             /* delivered to a mailbox (DELIVER, not SEND) */
	/* For the tracking log: who decided (NULL: SMTP, or STOREDRIVER
	 * when local; ROUTING, ADMIN), and the connection's ends. */
	const char *source;
	const char *local_ip;  /* our side of the connection */
	const char *remote_ip; /* the next hop's address */
	const char *session;   /* the SmtpSend protocol log's session id */
	struct outcome_rcpt *rcpts;
	size_t nrcpts;
};

/*
 * Called once per recipient when its new state is durable (recorded 1),
 * or when it could not be stored and stays as it was (recorded 0).
 */
typedef void (*outcome_released_fn)(void *arg, int64_t rcpt_id, int recorded);

/*
 * Settle every recipient of one message (all from one attempt).  The
 * outcome is copied; released() runs later for each recipient, also
 * when storing failed (the recipient then stays as it was, due again).
 */
void outcome_settle(
    struct daemon *, const struct outcome *, outcome_released_fn, void *arg);

/*
 * What the tracking log says of a stored message (spool_info), ready for
 * track_event.msg: facts.msg points into facts.  A message that is gone
 * still gets its queue id.
 */
struct outcome_facts {
	struct spool_info info;
	char client_ip[64];
	struct track_msg msg;
};
void outcome_facts(struct daemon *, int64_t message_id, const char *queue_id,
    struct outcome_facts *);

/*
 * Our own name, as notices and tracking rows give it: the first receive
 * connector's Fqdn, else "localhost".
 */
const char *outcome_fqdn(const struct daemon *);

/* The next attempt after a deferral, by the schedule above (pure). */
time_t outcome_next_attempt(
    const struct daemon *, unsigned attempts, time_t now);

#endif
