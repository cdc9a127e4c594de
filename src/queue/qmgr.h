/*
 * qmgr.h - the queue manager: finds recipients whose next attempt is due,
 * routes them and hands them to a delivery agent.
 */
#ifndef SLUICE_QMGR_H
#define SLUICE_QMGR_H

struct server;
struct qmgr;
struct dqueues;

/* Start scanning the queue of srv (its spool, configuration, logs). */
struct qmgr *qmgr_start(struct server *, const char *queue_db);
/* Stop handing out work and stop the agents; callbacks may still come
 * through the spool until it is closed. */
void qmgr_stop(struct qmgr *);
void qmgr_free(struct qmgr *);
/* Stopping: outbound connections still open (see dqueues_drain). */
unsigned qmgr_drain(struct qmgr *);
/* The delivery queues, for the control socket's queue commands. */
struct dqueues *qmgr_dqueues(struct qmgr *);
/* Look at the queue now (an administrator's retry). */
void qmgr_kick(struct qmgr *);
/*
 * New mail was committed: look for it once the event loop is free (many
 * wakes in one loop turn make one scan).
 */
void qmgr_wake(struct qmgr *);

#endif
