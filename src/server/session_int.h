/*
 * session_int.h - what the parts of the SMTP server session share: the
 * session itself and the functions that change its state or answer the
 * client.  Internal to src/server/session*.c.
 *
 *   session.c          the state machine, commands, input and deadlines
 *   session_message.c  message content: our headers, the commit, the 250
 *   session_rules.c    transport rules between the content and the commit
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
struct auth_job;
struct resolver_ptr;
struct spool_body;

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SESSION_CMD_MAX 510
/* Longest user name or password we accept in AUTH. */
#define SESSION_AUTH_MAX 255
/*
 * AUTH attempts per client address (IPv6: per /64) and minute before
 * 454; counted when they start, and a success is given back.
 */
#define SESSION_AUTH_FAILURES_MAX 5
/*
 * Commands that change nothing (HELO, EHLO, NOOP, RSET, VRFY, EXPN, HELP)
 * allowed between two accepted messages before the session ends with 421
 * 4.7.0: Postfix's smtpd_junk_command_limit and its default.  Exchange has
 * no such setting, so it is a constant.  HELO and EHLO count, as in
 * Postfix: a client needs them at most twice per connection (before and
 * after STARTTLS), and an EHLO reply is the largest we send.
 */
#define SESSION_JUNK_MAX 100
/*
 * Protocol log bytes one session may write, beyond the credit of the
 * messages it delivers (see session_plog).  A Verbose log row costs about
 * 150 bytes, so this is some 1700 rows of commands that sent no mail:
 * far more than any real client needs, and it stops a client that
 * pipelines junk from making the log grow many times faster than its
 * traffic (an EHLO of 12 bytes writes a dozen rows).
 */
#define SESSION_LOG_MAX (256 * 1024)
/* What a stored message adds to the budget, and per recipient. */
#define SESSION_LOG_MSG_CREDIT 4096
#define SESSION_LOG_RCPT_CREDIT 1024
/* A row's fixed fields: date-time, sequence, event, commas, CRLF. */
#define SESSION_LOG_ROW_FIXED 40
/* Longest reply we format; EHLO's is the largest at a few hundred bytes. */
#define SESSION_REPLY_MAX 2048

enum session_state {
	SESSION_GREETING, /* connected, banner not yet sent */
	SESSION_COMMAND,  /* reading commands */
	SESSION_DATA,     /* reading DATA content up to CRLF.CRLF */
	SESSION_BDAT,     /* reading an exact BDAT chunk */
	SESSION_COMMIT,   /* waiting for the spool to make it durable */
	SESSION_AUTH,     /* waiting for a worker to check a password */
	SESSION_TLS,      /* STARTTLS handshake in progress */
	SESSION_CLOSING,  /* last reply queued, closing after flush */
	SESSION_DEAD,     /* connection gone, waiting to be freed */
};

/*
 * What only a session inside TLS has, allocated when the handshake
 * succeeds (session_on_tls_done): most sessions are plaintext, and an
 * idle one should not carry a kilobyte of certificate facts.
 */
struct session_tls {
	struct tls_peer peer;
	/* the partner domain Domain Security confirmed for this message */
	char auth_domain[SMTP_DOMAIN_MAX + 1];
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
	/* the client's forward-confirmed reverse name (NULL while unknown,
	 * when there is none, or when there was no memory to keep it),
	 * looked up from the connect on; allocated to its length */
	char *peer_name;
	struct resolver_ptr *ptr_job;
	unsigned seq;      /* protocol log sequence number */
	size_t log_bytes;  /* protocol log bytes charged to the budget */
	size_t log_credit; /* added to SESSION_LOG_MAX by stored messages */
	int log_capped;    /* SESSION_LOG_MAX reached: rows only counted */
	uint64_t log_dropped, log_dropped_bytes;
	double started;

	/* SMTP state after HELO/EHLO; helo is NULL before (allocated to
	 * the argument's length: most are short) */
	char *helo;
	int esmtp;
	struct smtp_ext ext; /* what this session offered */
	int pipelining;
	unsigned errors;
	unsigned junk; /* CMD_JUNK commands since the last accepted message */
	int skip_line; /* discarding the rest of an over-long command */

	/* the transaction; mail is allocated at MAIL, freed at its end */
	int have_mail;
	struct smtp_mail_args *mail;
	struct session_rcpt *rcpts;
	size_t nrcpts;
	size_t rcpt_cap;
	int content_started;
	struct content content;
	struct spool_body *body; /* the body file, once the body spilled */
	int used_bdat;
	int used_data;
	uint64_t bdat_remaining;
	int bdat_last;
	int bdat_discard; /* consume the chunk, then reply bdat_reply */
	const char *bdat_reply;
	int data_bol; /* DATA: at a line start (the last bytes were CRLF) */
	int data_cr;  /* DATA: the last byte read was a CR */
	double phase_start;
	uint64_t phase_bytes;
	uint64_t phase_seen; /* phase_bytes when phase_last was taken */
	double phase_last;   /* when content last made progress */
	char queue_id[32];
	unsigned transactions;
	size_t charged; /* bytes of content.out charged to the server */

	/* TLS and who the sender is (X-Sluice-Organization-*) */
	int tls;
	int tls_failed;      /* a STARTTLS handshake failed (for the metrics) */
	double commit_start; /* the message went to the spool (metrics) */
	struct session_tls *tlsx; /* NULL until a handshake succeeded */
	const char *auth_as;      /* Anonymous | Partner | Internal */
	const char *auth_mech;    /* None | Tls | DomainSecure | BasicAuth */
	char *auth_user; /* NULL until AUTH succeeded (allocated then) */
	int auth_step;   /* AUTH exchange in progress: what comes next */
	/* the user being checked: SESSION_AUTH_MAX + 1 bytes allocated at
	 * AUTH, freed when the exchange ends */
	char *auth_login;
	struct auth_job *auth_job; /* the check in flight (SESSION_AUTH) */

	/* a local submission: the user the kernel named (local_submit.c) */
	int is_local;
	unsigned long local_uid;
	char local_user[33];

	/* what transport rules decided for the message being stored */
	struct session_rules *rules;
};

/* session.c */
/* The partner domain Domain Security confirmed, "" when none. */
const char *session_auth_domain(const struct session *);
void session_plog(struct session *, char event, const char *data, size_t len,
    const char *context);
void session_log_credit(struct session *);
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
void session_resume(struct session *);
void session_close(struct session *, const char *why);

/* session_message.c */
void session_charge(struct session *);
void session_content_release(struct session *);
int session_content_start(struct session *);
void session_finish(struct session *);
/* RECEIVE rows of the envelope recipients (message tracking). */
void session_track_receive(struct session *);
/*
 * The Message-ID (ours when it has none) and Subject of the message being
 * received, into buffers of SPOOL_HEADER_MAX + 1 bytes.
 */
void session_header_facts(struct session *, char *msgid, char *subject);
/* What every tracking row of that message says of it (m borrows). */
struct track_msg;
void session_track_msg(struct session *, struct track_msg *, const char *msgid,
    const char *subject);

/* session_rules.c: transport rules at the end of data */
struct spool_msg;
/*
 * Run the rules over the finished message (msg as it would be stored).
 * 0: store msg, which may now be a chain of copies; 1: the rules
 * answered the client themselves (reject, delete, defer, no memory).
 */
int session_rules_apply(struct session *, struct spool_msg *);
/* Tracking rows once the commit succeeded (ok) or failed. */
void session_rules_committed(struct session *, int ok);
void session_rules_free(struct session *);

/* session_auth.c */
int session_auth_offered(const struct session *);
void session_auth_line(struct session *, const char *line, size_t len);
void session_cmd_auth(struct session *, const struct smtp_cmd *);
void session_auth_abandon(struct session *);
/* Free what AUTH allocated (the session ends, or starts over in TLS). */
void session_auth_forget(struct session *);
/* The key AUTH attempts are counted under: the address, IPv6 by /64. */
void session_auth_source(
    const struct sockaddr *peer, struct sockaddr_storage *out);

#endif
