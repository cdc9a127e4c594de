/*
 * session.h - one SMTP server session (RFC 5321) on a receive connector.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <sys/socket.h>

struct server;
struct conf_ref;
struct conf_receive_connector;

/*
 * Take over an accepted socket.  The session greets, or, when refuse is
 * not NULL, sends that one reply (e.g. a 421 for a connection limit) and
 * closes.  It frees itself when the connection ends.
 */
void session_start(struct server *, struct conf_ref *,
    const struct conf_receive_connector *, int fd, const struct sockaddr *local,
    const struct sockaddr *remote, const char *refuse);

/*
 * SIGTERM: idle sessions get 421 and close; sessions inside a message may
 * finish it and are closed right after its reply.
 */
void session_drain_all(struct server *);

#endif
