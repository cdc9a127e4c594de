/*
 * daemon.h - the daemon's context: what the receiving side (server/),
 * the queue manager (queue/) and the delivery agents (deliver/) all use,
 * made once by sluiced and handed to each of them.
 *
 *   sluiced --makes--> struct daemon <--uses-- server/, queue/, deliver/,
 *                                              control/
 *
 * It depends on none of those parts, so each can be read and tested with
 * the context alone; what belongs to one part (listeners and sessions,
 * delivery queues, the control socket) stays in that part.
 *
 * The configuration is reference counted: whoever works under it (a
 * session, a delivery connection) acquires the live one and releases it
 * when done, so a reload swaps in a new configuration for new work while
 * open work finishes under the old one, which is freed with its last
 * reference.
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

struct conf;
struct event_base;
struct protolog;
struct resolver;
struct spool;
struct tls_client;
struct tls_store;
struct tracklog;
struct metrics;
struct posture;
struct deferrals;
struct tlsrpt_store;
struct tlsrpt_sender;

struct conf_ref {
	struct conf *conf;
	struct tls_store *tls; /* certificates of this configuration */
	/* outbound TLS context (trust, ciphers, session cache), made on
	 * first use by the delivery side, freed with the configuration */
	struct tls_client *tls_client;
	/* the sessions' reverse look-ups ([Transport] Resolver of this
	 * configuration), made by the first session that needs one */
	struct resolver *resolver;
	int resolver_failed;
	unsigned refs;
};

struct daemon {
	struct event_base *base;   /* the one event loop */
	struct conf_ref *conf;     /* the live configuration */
	struct spool *spool;       /* the queue (SQLite), its committer */
	struct protolog *protolog; /* SmtpReceive protocol log */
	struct protolog *sendlog;  /* SmtpSend protocol log */
	struct tracklog *tracklog; /* message tracking log */
	int draining;              /* stopping: finish work, start none */
	/*
	 * What an administrator watches (src/status/), counted by every
	 * part: counters (NULL without StatusListen: nothing is counted),
	 * the partners' TLS posture (NULL with TlsPostureEnabled = false),
	 * the most recent deferrals; and the TLS reports (src/tlsrpt/):
	 * the sessions recorded, the daily sending.
	 */
	struct metrics *metrics;
	struct posture *posture;
	struct deferrals *deferrals;
	struct tlsrpt_store *tlsrpt;
	struct tlsrpt_sender *tlsrpt_sender;
};

/* The live configuration, kept until daemon_conf_release(). */
struct conf_ref *daemon_conf_acquire(struct daemon *);
/* Drop a reference; the last one frees the configuration and its own. */
void daemon_conf_release(struct conf_ref *);

#endif
