/*
 * tracklog.h - the message tracking log (SPEC, Logs), in the layout of
 * Exchange's (MSGTRKyyyymmdd-N.LOG): one CSV row per recipient and event
 * (RECEIVE, SEND, DELIVER, DEFER, FAIL, DSN, EXPIRE), Exchange's fields in
 * Exchange's order, then Sluice's own "tls" field.
 */
#ifndef SLUICE_TRACKLOG_H
#define SLUICE_TRACKLOG_H

#include <stdint.h>

struct tracklog;

/*
 * What every row says of the message itself, the same from its RECEIVE
 * to its last row (the queue keeps it: spool_info).  NULL fields are
 * written empty.
 */
struct track_msg {
	const char *internal_id; /* the queue id */
	const char *message_id;  /* the Message-ID header field */
	const char *subject;
	const char *sender;         /* the envelope sender, "" for <> */
	const char *client_ip;      /* the client that sent it to us */
	const char *directionality; /* "Incoming" or "Originating" */
	int64_t size;
	unsigned rcpt_count;
};

/*
 * One row, described whole: a writer fills in what its event knows (a
 * designated initializer; what it leaves out is NULL) and hands it to
 * tracklog_write(), which lays the fields out in Exchange's order.  NULL
 * fields are written empty.
 */
struct track_event {
	const char *event;  /* RECEIVE, SEND, DELIVER, DEFER, FAIL, DSN, ... */
	const char *source; /* SMTP, STOREDRIVER, DSN, ROUTING, ADMIN */
	const struct track_msg *msg;
	const char *recipient;
	const char *status; /* recipient-status: the reply or the reason */
	/* this hop: RECEIVE the remote client and us; SEND us and the next
	 * hop */
	const char *client_ip, *client_hostname;
	const char *server_ip, *server_hostname;
	const char *source_context; /* the protocol log's session id */
	const char *connector;      /* receive or send connector */
	const char *related;        /* related-recipient-address */
	const char *reference;      /* DSN: the queue id of its cause */
	const char *custom_data;
	const char *tls; /* Sluice's own field: "tls=..." */
};

/* The "#Fields:" line's value, in order. */
extern const char tracklog_fields[];

/* Files go to LOGDIR/MessageTracking/MSGTRKyyyymmdd-N.LOG */
struct tracklog *tracklog_open(const char *logdir);
/*
 * MessageTrackingLogSubjectLoggingEnabled: whether message-subject is
 * written (on by default, as in Exchange); set at start and on reload.
 */
void tracklog_subjects(struct tracklog *, int enabled);
void tracklog_write(struct tracklog *, const struct track_event *);
/* Rows between hold 1 and hold 0 go to the file in one write. */
void tracklog_hold(struct tracklog *, int hold);
void tracklog_reopen(struct tracklog *);
/* Retention: MessageTrackingLogMaxAge ... (see csvlog_retain). */
void tracklog_retain(struct tracklog *, unsigned max_age, uint64_t max_size);
void tracklog_close(struct tracklog *);

/*
 * Exchange's directionality of a message from how it came in: from inside
 * the organisation (AuthAs Internal) "Originating", else "Incoming".
 */
const char *tracklog_directionality(const char *auth_as);

/* "addr" of an "addr:port" or "[v6]:port" endpoint, into out. */
void tracklog_ip(const char *endpoint, char *out, size_t len);

#endif
