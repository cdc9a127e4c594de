/*
 * control.h - the daemon's control socket, which sluicectl's queue
 * commands talk to (Get-Queue and Get-Message in Exchange's words).
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

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

#endif
