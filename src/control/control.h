/*
 * control.h - the daemon's control socket, which sluicectl's queue
 * commands talk to (Get-Queue and Get-Message in Exchange's words).
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stddef.h>
#include <time.h>

struct control;
struct daemon;
struct qmgr;
struct server;

/*
 * Listen on path (a stale socket is replaced), mode 0600, to serve
 * requests about the daemon's queue (through the queue manager, which
 * may be NULL), its receiving side and the daemon as a whole.
 */
struct control *control_start(
    struct daemon *, struct server *, struct qmgr *, const char *path);
void control_stop(struct control *);

/*
 * One queue as Get-Queue shows it (control_queue.c), also for the status
 * page and the metrics: derived from the pending recipients routed with
 * the live configuration, and the live delivery queue's state (with the
 * queue manager, which may be NULL).
 */
struct control_queue_info {
	char identity[300];
	const char *type;   /* DeliveryType */
	const char *status; /* Active, Ready, Retry, Suspended */
	unsigned messages;
	time_t next_retry; /* 0: none */
	char last_error[200];
};
/* Every queue with mail; *out is malloc'ed.  -1: the queue is unreadable. */
int control_queue_list(
    struct daemon *, struct qmgr *, struct control_queue_info **out, size_t *n);

#endif
