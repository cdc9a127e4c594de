/*
 * control_int.h - what the control socket's command files share
 * (control.c: the socket, requests and answers; control_queue.c: the
 * queue and message commands; control_tlsrpt.c: tls-report).
 */
#ifndef SLUICE_CONTROL_INT_H
#define SLUICE_CONTROL_INT_H

#include <stddef.h>
#include <time.h>

#include "util/buf.h"

/* A request line, and the largest answer (then it says "(truncated)"). */
#define CONTROL_LINE_MAX 510
#define CONTROL_OUT_MAX (16 * 1024 * 1024)
/* Arguments of one request at most. */
#define CONTROL_ARGS_MAX 16

/* The pseudo-queue of finished messages kept for SafetyNetHoldTime. */
#define CONTROL_SAFETY_NET "SafetyNet"

struct conf;
struct conn;
struct control_request;
struct control_view;
struct daemon;
struct qmgr;
struct server;
struct spool_row;

struct control {
	struct daemon *daemon; /* the queue, the configuration, the logs */
	struct server *srv;    /* the receiving side, for "status" */
	struct qmgr *qmgr;     /* the delivery side, NULL without one */
	struct evconnlistener *ev;
	char *path;
	struct control_view *views; /* running (control_view.c) */
	unsigned nviews;
};

struct control_client {
	struct control *ctl;
	struct conn *conn;
	int done;
	int waiting;               /* the answer comes later (control_answer) */
	int gone;                  /* the connection ended while waiting */
	struct control_view *view; /* a view streaming its answer */
};

/*
 * A request split into its verb and arguments: "verb ARG" (one argument,
 * which may hold spaces) or "verb\tARG\tARG..." (sluicectl's form for
 * several).
 */
struct control_request {
	char line[CONTROL_LINE_MAX + 1];
	const char *verb;
	char *args[CONTROL_ARGS_MAX];
	int nargs;
};

/*
 * The answer: the text in out (an "error: " first line makes sluicectl
 * exit 1), then the final "." line; the connection closes after it.  For
 * a client that waited and is gone, only the client is freed.
 */
void control_answer(struct control_client *, struct buf *out);
/* A raw answer: head, then len bytes of data, then the "." line. */
void control_answer_raw(
    struct control_client *, const char *head, const char *data, size_t len);

/*
 * The queue and message commands (control_queue.c).  Returns 0 when out
 * holds the answer, 1 when the answer comes later (control_answer from a
 * callback), 2 when it was given already (control_answer_raw), -1 when
 * the verb is not one of them.
 */
int control_queue_run(
    struct control_client *, const struct control_request *, struct buf *out);
/* The TLS report command (control_tlsrpt.c), returning as above. */
int control_tlsrpt_run(
    struct control_client *, const struct control_request *, struct buf *out);

/*
 * The queue a pending recipient waits in, by the configuration and what
 * transport rules decided for it (as the queue manager names it), and
 * that queue's delivery type; pure, so any thread may call it.
 */
void control_queue_of(const struct conf *, const struct spool_row *, char *id,
    size_t idlen, const char **type);
/* A time as the views print it: 2026-12-03T17:31:22Z. */
void control_stamp(time_t, char *out, size_t len);

/*
 * The views, queue and messages (control_view.c): 0 when out holds the
 * answer (an error), 2 when the view took the client over and streams
 * its answer from a worker thread (see control_view.c).
 * control_view_pump() goes on when the client has taken some output;
 * control_view_cancel() ends a view whose client went away (joins its
 * thread); control_view_stop_all() ends every view (daemon stopping).
 */
int control_view_start(
    struct control_client *, const struct control_request *, struct buf *out);
void control_view_pump(struct control_view *);
void control_view_cancel(struct control_view *);
void control_view_stop_all(struct control *);

#endif
