/*
 * listener.h - listening sockets for receive connector bindings.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H

#include "conf/conf.h"

struct server;
struct listener;

/*
 * Make the set of listening sockets match the bindings of conf: keep the
 * ones that stay, open new ones, and (only when commit is set) close the
 * ones no longer bound.  Opening happens before anything is closed, so a
 * failed reload leaves the old set untouched.
 */
int listener_sync(struct server *, const struct conf *, const char **why);
void listener_commit(struct server *);
void listener_rollback(struct server *);
void listener_close_all(struct server *);
/* Accept again after a pause for want of descriptors. */
void listener_resume(struct server *);

#endif
