/*
 * control.h - the daemon's control socket, which sluicectl's queue
 * commands talk to (Get-Queue and Get-Message in Exchange's words).
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

struct conf;
struct control;
struct daemon;
struct qmgr;
struct server;
struct spool_view;

/*
 * Listen on path (a stale socket is replaced), mode 0600, to serve
 * requests about the daemon's queue (through the queue manager, which
 * may be NULL), its receiving side and the daemon as a whole.
 */
struct control *control_start(
    struct daemon *, struct server *, struct qmgr *, const char *path);
void control_stop(struct control *);

/*
 * One queue as Get-Queue shows it, for the status page and the metrics
 * (control_queue.c): derived from the pending recipients routed with a
 * configuration, then the live delivery queue's state.
 */
struct control_queue_info {
	char identity[300];
	const char *type;   /* DeliveryType */
	const char *status; /* Active, Ready, Retry, Suspended */
	unsigned messages;
	time_t next_retry; /* 0: none */
	char last_error[200];
};
/*
 * Every queue with mail (at most 4096), counted through a view of any
 * thread and routed with conf; status is Ready or Retry.  Stops early,
 * -1, when *cancel is set.  *out is malloc'ed.  -1: the queue is
 * unreadable (*out holds what was counted).
 */
int control_queue_count(struct spool_view *, const struct conf *, time_t now,
    const atomic_int *cancel, struct control_queue_info **out, size_t *n);
/* On the loop: each queue's live state (Active, Suspended, its error). */
void control_queue_live(struct qmgr *, struct control_queue_info *, size_t n);

#endif
