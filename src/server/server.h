/*
 * server.h - the receiving half of sluiced: listeners, connection
 * accounting and the sessions, over the daemon's context (daemon.h: the
 * event loop, the live configuration, the queue, the logs).
 *
 * Each session keeps the configuration it started with (a conf_ref), so
 * a SIGHUP swaps in a new one for new connections while open sessions
 * finish under the old one, which is freed with its last session.
 */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "daemon/daemon.h"

struct event;
struct session;
struct tls_store;
struct auth_pool;

struct server {
	struct daemon *daemon; /* loop, configuration, queue, logs, draining */
	/*
	 * A message was stored (durable, acknowledged): the server's one
	 * event for the delivery side, which sluiced wires to the queue
	 * manager's wake-up; the server knows nothing of the queue.
	 */
	void (*stored)(void *arg);
	void *stored_arg;
	struct auth_pool *auth_pool; /* password checks; made on first AUTH */
	struct listener *listeners;
	struct session *sessions; /* every live session, for draining */
	size_t nsessions;
	struct server_counter **counters; /* hash table, SERVER_BUCKETS */
	struct server_counter **rates;    /* MessageRateLimit windows */
	size_t nrates;
	size_t memory_used; /* message bytes held by all sessions */
	size_t memory_max;  /* SERVER_MEMORY_MAX unless a test lowers it */
	uint64_t next_session;
	/* descriptors (see server_fd_limits) */
	size_t fd_limit;            /* the soft RLIMIT_NOFILE */
	size_t session_limit;       /* inbound sessions those leave room for */
	struct event *accept_timer; /* resumes accepting after EMFILE */
	int accept_paused;
};

/*
 * Message bytes all sessions together may hold in memory while receiving;
 * past it new messages get 452 4.3.1 instead of exhausting the host.
 * SLUICE_MEMORY_MAX (bytes, in the environment) sets another figure: the
 * tests use it to reach the bound without uploading a gigabyte.
 */
#define SERVER_MEMORY_MAX ((size_t)1024 * 1024 * 1024)
/*
 * One client address (an IPv6 client per /64, since one host usually has
 * a whole /64) may hold at most 1/SERVER_MEMORY_SHARES of that budget:
 * with the default 1 GB, 128 MB, three messages of 36 MB at once.  A few
 * addresses that upload and stall can then not make the server refuse
 * everyone's mail; eight would be needed, and their stalled sessions end
 * after ConnectionInactivityTimeout.
 */
#define SERVER_MEMORY_SHARES 8

/*
 * Message memory accounting.  server_memory_room(): may a new message from
 * this address start (some room left in all and in its share)?
 * server_memory_charge(): a session's content buffer grew or shrank by
 * delta bytes; returns -1 when the address or the server is now over its
 * bound, and the message must fail with 452 4.3.1.
 */
int server_memory_room(struct server *, const struct sockaddr *);
int server_memory_charge(
    struct server *, const struct sockaddr *, long long delta);

/*
 * Descriptors.  At start the soft RLIMIT_NOFILE is raised to the hard
 * limit (server_raise_nofile; a service manager's default soft limit of
 * 1024 is below the default MaxInboundConnection of 5000).  Inbound
 * sessions may use all descriptors but SERVER_FD_RESERVE (logs, the queue
 * database, DNS, the control socket) and MaxOutboundConnections; past
 * that limit a new client is answered 421 4.3.2 at once, instead of
 * waiting in the kernel's backlog.  server_fd_limits() computes it for a
 * configuration and warns (it does not refuse: the limits still hold,
 * only lower) when the configured connection limits exceed it.
 */
#define SERVER_FD_RESERVE 64
void server_raise_nofile(struct server *);
void server_fd_limits(struct server *, const struct conf *);

/* Open listeners for every binding of conf, keeping those already open. */
int server_listen(struct server *, const struct conf *, const char **why);
/* Swap in a new configuration (listeners first; the old stays on failure). */
/*
 * Swap in a new configuration and its certificates (listeners first; the
 * old configuration stays in force on failure, and then the caller still
 * owns conf and tls).
 */
int server_reload(
    struct server *, struct conf *, struct tls_store *, const char **why);
void server_close_listeners(struct server *);

/*
 * Connection accounting for MaxInboundConnection (per connector) and
 * MaxInboundConnectionPerSource (per client address).
 */
unsigned server_source_count(struct server *, const struct sockaddr *);
unsigned server_connector_count(struct server *, const char *connector);
void server_account(
    struct server *, const char *connector, const struct sockaddr *, int delta);

/*
 * MessageRateLimit: count one message from this source on this connector
 * and say whether it is within limit messages per minute (fixed one-minute
 * windows).  The table holds at most SERVER_RATE_MAX sources; when it is
 * full of current windows, new sources are not limited rather than
 * refused, so a flood of addresses cannot turn the limiter against
 * everyone.
 */
int server_rate_allow(struct server *, const char *connector,
    const struct sockaddr *, uint64_t limit);
#define SERVER_RATE_MAX 65536
/* Take back one count of server_rate_allow (a check that was no event). */
void server_rate_forgive(
    struct server *, const char *connector, const struct sockaddr *);

void server_session_done(struct server *);
void server_free_tables(struct server *);

#endif
