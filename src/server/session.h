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

/* Who a local submission comes from (SO_PEERCRED on the local socket). */
struct session_local {
	unsigned long uid;
	char user[33]; /* the account's name, or the uid in digits */
};

/*
 * The same for a local submission (local_submit.c): the peer is a local
 * user the kernel named, which the Received header records instead of a
 * client address.
 */
void session_start_local(struct server *, struct conf_ref *,
    const struct conf_receive_connector *, int fd, const struct session_local *,
    const char *refuse);

/*
 * SIGTERM: idle sessions get 421 and close; sessions inside a message may
 * finish it and are closed right after its reply.
 */
void session_drain_all(struct server *);

#endif
