/*
 * control.h - the daemon's control socket, which sluicectl's queue
 * commands talk to (Get-Queue and Get-Message in Exchange's words).
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

struct server;
struct control;

/* Listen on path (a stale socket is replaced), mode 0600. */
struct control *control_start(struct server *, const char *path);
void control_stop(struct control *);

#endif
