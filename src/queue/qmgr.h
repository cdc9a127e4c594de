/*
 * qmgr.h - the queue manager: finds recipients whose next attempt is due,
 * routes them and hands them to a delivery agent.
 */
#ifndef SLUICE_QMGR_H
#define SLUICE_QMGR_H

#include <stdint.h>

struct daemon;
struct qmgr;
struct dqueues;

/* Start scanning the daemon's queue (its spool, configuration, logs). */
struct qmgr *qmgr_start(struct daemon *, const char *queue_db);
/* Stop handing out work and stop the agents; callbacks may still come
 * through the spool until it is closed. */
void qmgr_stop(struct qmgr *);
void qmgr_free(struct qmgr *);
/* Stopping: outbound connections still open (see dqueues_drain). */
unsigned qmgr_drain(struct qmgr *);
/* The delivery queues, for the control socket's queue commands. */
struct dqueues *qmgr_dqueues(struct qmgr *);
/*
 * The administrator's changes: is a recipient handed out (Get-Message's
 * Active)?  A recipient being changed is held like one handed out, so
 * that it is not handed out before the change is durable: hold returns 1
 * when it held it (0: already in flight, or no room), and release lets
 * it go (recorded 0: the change did not happen, look again).
 */
int qmgr_inflight(struct qmgr *, int64_t rcpt_id);
int qmgr_hold_rcpt(struct qmgr *, int64_t rcpt_id);
void qmgr_release_rcpt(struct qmgr *, int64_t rcpt_id, int recorded);
/*
 * The configuration changed (a reload): route the Unreachable queue
 * again now, since a connector may have appeared or been enabled.
 */
void qmgr_reroute(struct qmgr *);
/* Look at the queue now (an administrator's retry). */
void qmgr_kick(struct qmgr *);
/*
 * Walk every due recipient again from the start (a queue was resumed:
 * its recipients were passed over while it was suspended).
 */
void qmgr_rescan(struct qmgr *);
/*
 * New mail was committed: look for it once the event loop is free (many
 * wakes in one loop turn make one scan).
 */
void qmgr_wake(struct qmgr *);

#endif
