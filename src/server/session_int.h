/*
 * session_int.h - what the parts of the SMTP server session share: the
 * session itself and the functions that change its state or answer the
 * client.  Internal to src/server/session*.c.
 *
 *   session.c          the state machine, commands, input and deadlines
 *   session_message.c  message content: our headers, the commit, the 250
 *   session_auth.c     SMTP AUTH (RFC 4954)
 */
#ifndef SLUICE_SESSION_INT_H
#define SLUICE_SESSION_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/content.h"
#include "smtp/command.h"
#include "tls/tls_store.h"

struct server;
struct conf_ref;
struct conf_receive_connector;
struct conf_transport;
struct conn;

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SESSION_CMD_MAX 510
/* Longest user name or password we accept in AUTH. */
#define SESSION_AUTH_MAX 255
/* Failed AUTH attempts per client address and minute before 454. */
#define SESSION_AUTH_FAILURES_MAX 5
/* Longest reply we format; EHLO's is the largest at a few hundred bytes. */
#define SESSION_REPLY_MAX 2048

enum session_state {
	SESSION_GREETING, /* connected, banner not yet sent */
	SESSION_COMMAND,  /* reading commands */
	SESSION_DATA,     /* reading DATA content up to CRLF.CRLF */
	SESSION_BDAT,     /* reading an exact BDAT chunk */
	SESSION_COMMIT,   /* waiting for the spool to make it durable */
	SESSION_TLS,      /* STARTTLS handshake in progress */
	SESSION_CLOSING,  /* last reply queued, closing after flush */
	SESSION_DEAD,     /* connection gone, waiting to be freed */
};

struct session_rcpt {
	char addr[SMTP_PATH_MAX + 1];
	char orcpt[SMTP_ORCPT_MAX + 1];
	unsigned notify;
};

struct session {
	struct session *next, *prev; /* server's list */
	struct server *srv;
	struct conf_ref *cref;
	const struct conf_receive_connector *rc;
	const struct conf_transport *tc;
	struct conn *conn;
	enum session_state state;
	char id[20];
	char local[64];
	char remote[64];
	char remote_ip[48];
	struct sockaddr_storage peer;
	unsigned seq; /* protocol log sequence number */
	double started;

	/* SMTP state after HELO/EHLO */
	char helo[SMTP_HELO_MAX + 1];
	int esmtp;
	struct smtp_ext ext; /* what this session offered */
	int pipelining;
	unsigned errors;
	int skip_line; /* discarding the rest of an over-long command */

	/* the transaction */
	int have_mail;
	struct smtp_mail_args mail;
	struct session_rcpt *rcpts;
	size_t nrcpts;
	size_t rcpt_cap;
	int content_started;
	struct content content;
	int used_bdat;
	int used_data;
	uint64_t bdat_remaining;
	int bdat_last;
	int bdat_discard; /* consume the chunk, then reply bdat_reply */
	const char *bdat_reply;
	int data_midline; /* inside a line that had a bad ending */
	double phase_start;
	uint64_t phase_bytes;
	uint64_t phase_seen; /* phase_bytes when phase_last was taken */
	double phase_last;   /* when content last made progress */
	char queue_id[32];
	unsigned transactions;
	size_t charged; /* bytes of content.out charged to the server */

	/* TLS and who the sender is (X-Sluice-Organization-*) */
	int tls;
	struct tls_peer tlsinfo;
	const char *auth_as;   /* Anonymous | Partner | Internal */
	const char *auth_mech; /* None | Tls | DomainSecure | BasicAuth */
	char auth_domain[SMTP_DOMAIN_MAX + 1];
	char auth_user[SESSION_AUTH_MAX + 1]; /* "" until AUTH succeeded */
	int auth_step; /* AUTH exchange in progress: what comes next */
	char auth_login[SESSION_AUTH_MAX + 1]; /* AUTH LOGIN user name */
};

/* session.c */
void session_plog(struct session *, char event, const char *data, size_t len,
    const char *context);
void session_enter(struct session *, enum session_state);
void session_reply(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void session_reply_close(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void session_error(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void session_reset(struct session *);
uint64_t session_max_size(const struct session *);
void session_process(struct session *);
void session_close(struct session *, const char *why);

/* session_message.c */
void session_charge(struct session *);
void session_content_release(struct session *);
int session_content_start(struct session *);
void session_finish(struct session *);

/* session_auth.c */
int session_auth_offered(const struct session *);
void session_auth_line(struct session *, const char *line, size_t len);
void session_cmd_auth(struct session *, const struct smtp_cmd *);

#endif
