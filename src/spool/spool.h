/*
 * spool.h - the durable message store (SQLite in WAL mode, large content
 * in files beside it).
 *
 * A session hands a message (envelope + content) to spool_submit().  A
 * single committer thread takes every message that is waiting, writes
 * them in one transaction and commits it (SQLite fsyncs the WAL), then
 * reports each outcome back on the event loop through the completion
 * callback.  Many concurrent sessions thus share one fsync (group commit)
 * and the session only says 250 after its callback reported success.  Any
 * failure (write, fsync, disk full) reports failure for the messages of
 * that batch and leaves nothing of them stored.
 *
 * Content up to SPOOL_INLINE_MAX after the header section is stored
 * in the same commit: inline in the database when it is small, appended
 * to the content log (segment files, synced before the commit) from
 * SPOOL_LOG_MIN on.  Beyond that the session streams the rest
 * to a body file (spool_body_*) while it arrives: the spool's writer
 * thread writes each piece, and at the end syncs the file before the
 * message's row is committed, so a row never names a file that is not
 * whole and durable.  Files that no row names (a message whose 250 never
 * came) are removed when the queue is opened.
 *
 * Delivery reads a message back in bounded pieces (spool_reader_*).
 *
 * The store keeps per-recipient state for the delivery side.
 */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;
struct event_base;
struct spool;
struct spool_body;
struct spool_view;

enum spool_rcpt_status {
	SPOOL_RCPT_PENDING = 0,
	SPOOL_RCPT_DELIVERED = 1,
	SPOOL_RCPT_FAILED = 2,
};

struct spool_rcpt {
	const char *addr;  /* forward-path, "" never */
	const char *orcpt; /* DSN ORCPT, "" when absent */
	unsigned notify;   /* SMTP_NOTIFY_* flags */
	/*
	 * What transport rules decided at acceptance (SPEC 5); NULL or ""
	 * when nothing.  The delivery side routes with them, whatever rules
	 * are configured by then.
	 */
	const char *rule_tls;       /* rule requiring TLS (RequireTls) */
	const char *rule_connector; /* RouteMessageOutboundConnector */
	const char *rule_route;     /* the rule that chose the connector */
	const char *rule_reject;    /* a rule's reply: fail with an NDR */
};

/*
 * What a session hands over.  The spool copies the envelope; the content
 * (data, len) is not copied and must stay valid until the callback.
 * Without a body, data is the whole message; with one, data is the
 * message's first part (our headers and the client's header section) and
 * the body file holds the rest: spool_submit() takes over the body and the
 * last bytes staged for it (tail, left empty), writes them, syncs the file
 * and only then commits the row.
 */
struct spool_msg {
	const char *queue_id; /* unique, chosen by the receiving session */
	const char *sender;   /* "" for the null reverse-path */
	const char *envid;    /* DSN ENVID, "" when absent */
	int ret;              /* enum smtp_ret */
	int body_type;        /* enum smtp_body */
	int smtputf8;
	int requiretls;        /* MAIL FROM ... REQUIRETLS (RFC 8689) */
	int tls_optional;      /* "TLS-Required: No" (RFC 8689 3) */
	const char *connector; /* receive connector name */
	const char *client;    /* remote endpoint "addr:port" */
	const char *helo;
	const char *tls;     /* TLS summary, "" when none */
	const char *auth_as; /* Anonymous | Partner | Internal */
	/* From the header, for the tracking log and the queue views: */
	const char *message_id; /* Message-ID, "" when none */
	const char *subject;    /* Subject, unfolded, "" when none */
	const struct spool_rcpt *rcpts;
	size_t nrcpts;
	const char *data; /* the message as stored, headers included */
	size_t len;
	struct spool_body *body; /* the rest of the content, or NULL */
	struct buf *tail;        /* with body: its last staged bytes */
	/*
	 * More messages stored in the same transaction, all or none, with
	 * one callback (the copies of a message that transport rules split):
	 * each has its own queue id, envelope and content.
	 */
	const struct spool_msg *next;
};

/*
 * ok: 1 when the message is durable, 0 on failure (reply 451 4.3.0).
 * queue_id: the message's id, valid during the call, "" on failure.
 * Messages are reported in the order they were submitted.
 */
typedef void (*spool_done_fn)(void *arg, int ok, const char *queue_id);

/* A new queue id (for a received message or a DSN), at most 31 chars. */
void spool_queue_id(char *out, size_t len);

/* Open (creating if needed) DIR/queue.db.  NULL with *why on failure. */
struct spool *spool_open(
    const char *dir, struct event_base *, const char **why);
/* Waits for the committer to finish what was submitted, then closes. */
void spool_close(struct spool *);

/*
 * Queue the message for the next group commit.  The callback is always
 * called exactly once, later, from the event loop (never from inside
 * spool_submit).  Returns -1 only if the message could not even be queued
 * (out of memory); the callback is then not called.
 */
int spool_submit(
    struct spool *, const struct spool_msg *, spool_done_fn, void *arg);

/*
 * The delivery side, on the event loop thread (read-only connection).
 * Due recipients are found in two walks so that neither reads what is
 * already in flight over and over: spool_due_new() walks recipients never
 * tried (next_attempt 0) by id from a cursor that only moves forward;
 * spool_due_retry() walks deferred recipients whose next attempt has come,
 * by (next_attempt, id) through the index.  spool_record() stores a
 * delivery result through the committer, like a message, and calls back
 * once it is durable; it may be called from any thread.  Messages whose
 * recipients are all final stay in the queue (the safety net, as
 * Exchange's SafetyNetHoldTime) until spool_purge().
 */
struct spool_due {
	int64_t rcpt_id;
	int64_t message_id;
	char queue_id[32];
	char sender[257];
	char addr[257];
	unsigned attempts;
	time_t received;
	unsigned notify;    /* SMTP_NOTIFY_* flags, 0 when absent */
	char orcpt[520];    /* DSN ORCPT, "" when absent */
	int delay_notified; /* the sender has had a delay notice */
	char last_error[512];
	time_t next_attempt; /* 0: never tried */
	/* transport rule decisions (spool_rcpt), "" when none */
	char rule_tls[256];
	char rule_connector[256];
	char rule_route[256];
	char rule_reject[1024];
	/* the message said "TLS-Required: No" (RFC 8689 3) */
	int tls_optional;
};

/* Where spool_due_retry() goes on from. */
struct spool_cursor {
	time_t next_attempt;
	int64_t id;
};

/*
 * A pending recipient whose next_attempt is SPOOL_SUSPENDED is on
 * neither walk (Suspend-Message) until an administrator's change sets
 * another time; a delivery result that leaves it pending keeps it
 * suspended.
 */
#define SPOOL_SUSPENDED ((time_t)-1)

struct spool_result {
	int64_t rcpt_id;
	int64_t message_id;
	const char *queue_id;
	int status;          /* enum spool_rcpt_status */
	time_t next_attempt; /* while still pending */
	const char *error;   /* last error text, "" when none */
	const char *next_hop;
	int delay_notified; /* 1: a delay notice went out (never cleared) */
	int not_an_attempt; /* 1: attempts stays (an administrator's action) */
};

/* Never-tried recipients with id > after, in id order. */
int spool_due_new(
    struct spool *, int64_t after, struct spool_due *, size_t max, size_t *n);
/*
 * The largest recipient id committed (0 when none).  Read before a walk
 * of spool_due_new() that then comes back short, it is where that walk's
 * cursor may move on to: ids only grow, so every never-tried recipient up
 * to it was in the walk.  Without it the cursor stays at the last
 * never-tried one, and every walk reads all the deferred ones after it
 * again, to find nothing.
 */
int64_t spool_rcpt_last(struct spool *);
/* Deferred recipients due by now, after the cursor, in cursor order. */
int spool_due_retry(struct spool *, time_t now, const struct spool_cursor *,
    struct spool_due *, size_t max, size_t *n);
int spool_record(
    struct spool *, const struct spool_result *, spool_done_fn, void *arg);

/*
 * Recipients with their message, in queue order, for the administrator's
 * views and changes (sluicectl queue, messages, suspend, remove ...);
 * event loop thread.  Pending ones, or finished ones (delivered or
 * failed, kept for SafetyNetHoldTime); of every message or of one.  The
 * callback returns 0 to go on; the row is valid during the call.
 */
struct spool_select {
	int finished;         /* 0: pending; 1: delivered or failed */
	const char *queue_id; /* one message, or NULL for all */
	/*
	 * Only the recipient's own columns, the message's left empty (0,
	 * ""), in message order still, read without touching the messages
	 * table (200,000 pending in a tenth of a second).
	 */
	int brief;
	/*
	 * Pending recipients of every message with only what a queue's
	 * count needs (message_rowid, addr, last_error, next_attempt and
	 * the rule_ columns; the rest "" or 0), for Get-Queue and the
	 * status page's reading: a third of brief's columns (with the
	 * count's own changes, half the instructions of a reading;
	 * bench/statusread.sh).
	 */
	int queues;
	/*
	 * Messages after this one (its rowid), 0 from the first: a walk
	 * stopped at a message's end goes on from there in a new query, so
	 * no read transaction is held between the pieces of a long view.
	 */
	int64_t after;
};
struct spool_row {
	int64_t rcpt_id;
	int64_t message_rowid;
	const char *queue_id;
	const char *sender;
	const char *addr;
	const char *last_error;
	const char *next_hop; /* the queue of the last attempt, "" never */
	const char *message_id;
	const char *subject;
	const char *client; /* "addr:port" of the sending client */
	const char *orcpt;
	unsigned notify;
	int delay_notified;
	int status;          /* enum spool_rcpt_status */
	time_t next_attempt; /* 0 never tried; SPOOL_SUSPENDED */
	time_t received;
	time_t updated; /* the last change of state */
	unsigned attempts;
	int64_t size;
	const char *rule_tls; /* transport rule decisions, "" when none */
	const char *rule_connector;
	const char *rule_route;
};
int spool_foreach(struct spool *, const struct spool_select *,
    int (*fn)(void *, const struct spool_row *), void *arg);
/* The same walk through a view of another thread (spool_view_new). */
int spool_view_foreach(struct spool_view *, const struct spool_select *,
    int (*fn)(void *, const struct spool_row *), void *arg);

/*
 * What every tracking log row says of a message (event loop thread):
 * -1 when it is gone.
 */
#define SPOOL_HEADER_MAX 998 /* a stored Message-ID or Subject, at most */
struct spool_info {
	char queue_id[32];
	char message_id[SPOOL_HEADER_MAX + 1];
	char subject[SPOOL_HEADER_MAX + 1];
	char sender[257];
	char client[64]; /* "addr:port" */
	char helo[256];
	char connector[256]; /* receive connector, or "DSN" */
	char auth_as[16];
	int64_t size;
	unsigned nrcpts;
	time_t received;
};
int spool_info(struct spool *, int64_t message_id, struct spool_info *);

/*
 * A stored message's envelope, with the size of its whole content.  The
 * content is never loaded whole: a delivery reads it in pieces
 * (spool_reader_*), a notice loads at most its first bytes
 * (spool_load_head).
 */
struct spool_stored {
	char queue_id[32];
	char sender[257];
	char envid[101];
	int ret, body_type, smtputf8;
	int requiretls;   /* RFC 8689: only over validated TLS, else 5.7.30 */
	int tls_optional; /* "TLS-Required: No": DANE, MTA-STS relaxed */
	time_t received;
	char helo[256];
	char client[64];
	uint64_t size; /* of the whole content */
};

/*
 * The envelope and at most max bytes from the start of the content, in
 * *data (malloc'ed; the caller frees it) and *len; event loop thread.
 * -1 when the message is gone or unreadable.
 */
int spool_load_head(struct spool *, int64_t message_id, size_t max,
    struct spool_stored *, char **data, size_t *len);

/*
 * Reading a message in pieces of at most SPOOL_READ_PIECE bytes (plus
 * its first part, which is at most our headers, the header section and
 * SPOOL_INLINE_MAX): what a delivery holds does not grow with the
 * message.  A view is a read-only connection for one thread: the event
 * loop has its own (spool_loop_view); another thread makes one with
 * spool_view_new() and frees it itself.
 */
#define SPOOL_READ_PIECE (64 * 1024)
struct spool_view;
struct spool_reader;
struct spool_view *spool_loop_view(struct spool *);
struct spool_view *spool_view_new(struct spool *);
void spool_view_free(struct spool_view *);
/* NULL (why says why) when the message is gone or unreadable. */
struct spool_reader *spool_reader_open(struct spool_view *, int64_t message_id,
    struct spool_stored *, const char **why);
/*
 * The next piece, valid until the next call: 1, or 0 at the end, or -1
 * when the content cannot be read or is not what was stored (a damaged
 * file: shorter or longer than recorded).
 */
int spool_reader_next(struct spool_reader *, const char **p, size_t *n);
const char *spool_reader_error(const struct spool_reader *);
void spool_reader_close(struct spool_reader *);

/*
 * Large content, on the event loop thread.  Content beyond the first
 * SPOOL_INLINE_MAX bytes after the header section goes to a body file of
 * its own, written by the spool's writer thread.
 *
 * spool_body_new(): a body for the message queue_id (the file is made by
 * the first piece).  spool_body_put() hands over the bytes staged in
 * piece: 0 when taken (piece is then an empty buffer of the same maximum,
 * the one last written), 1 when the previous piece is still being written
 * (nothing taken: call again once spool_body_when_ready()'s callback has
 * run), -1 when a write already failed (the message must be refused).  A
 * body thus holds at most two pieces.  spool_body_abort() gives it up (the
 * message was refused or its client left): the file is removed.  The
 * body's end goes to spool_submit() (spool_msg.body and tail).
 */
#define SPOOL_INLINE_MAX (128 * 1024)
/*
 * The pieces after the first (which is SPOOL_INLINE_MAX: up to it the
 * body may still go inline).  Larger than the first so that a large body
 * costs fewer hand-overs to the writer thread and back (each a wake-up of
 * a thread and of the loop); a session holds two (bench/README.md,
 * "Large messages": the hand-overs were about a tenth of sluiced's CPU
 * at 1 MB with 128 KB pieces).
 */
#define SPOOL_BODY_PIECE (512 * 1024)
/*
 * A message with no body file whose content is at least this long goes
 * to the content log (segment files, spool_log.c), written once, instead
 * of inline into SQLite, which writes it twice (WAL and checkpoint).
 * Chosen by measurement (bench/README.md, "The content log"): accepting
 * 10 KB messages with it cost 0.114 ms of CPU and 19 KB written per
 * message against 0.127-0.146 ms and 36 KB inline; relayed, no worse
 * (0.19-0.24 against 0.20-0.29 ms).  Below it a delivery's extra open,
 * pread and close of the segment weigh more against what is saved.
 */
#define SPOOL_LOG_MIN (8 * 1024)
struct spool_body *spool_body_new(struct spool *, const char *queue_id);
int spool_body_put(struct spool_body *, struct buf *piece);
void spool_body_when_ready(struct spool_body *, void (*)(void *), void *);
void spool_body_abort(struct spool_body *);

/*
 * The administrator's Retry-Queue, through the committer like results:
 * every pending recipient last deferred at next_hop (a queue's name) is
 * due now.  The callback's queue_id is "" when nothing matched.  Other
 * changes (Remove-Message, Suspend-Message) are spool_record() calls with
 * not_an_attempt set.
 */
int spool_retry(struct spool *, const char *next_hop, spool_done_fn, void *arg);

/*
 * Other tables of the queue database (the MTA-STS policy cache,
 * spool_sts.c; the TLS posture, status/posture.c; the TLS reports,
 * tlsrpt/tlsrpt_store.c) go through the same two doors.  spool_write():
 * fn runs on the committer thread with the writing connection, inside a batch's
 * transaction (its own savepoint), and returns 0 on success; done is
 * called on the loop once that is durable (queue_id "write"), then
 * free_arg(arg) when not NULL.  spool_read(): fn runs at once on the
 * loop thread with the read-only connection.  Both return -1 when they
 * cannot even start (arg then stays the caller's to free).
 */
struct sqlite3;
int spool_write(struct spool *, int (*fn)(struct sqlite3 *, void *), void *arg,
    void (*free_arg)(void *), spool_done_fn done, void *done_arg);
int spool_read(struct spool *, int (*fn)(struct sqlite3 *, void *), void *arg);

/*
 * Remove messages finished (every recipient delivered or failed) before
 * the given time, with their body files: a batch per transaction, the
 * next one at once while batches come back full.  The committer gives
 * the space back at its next quiet moment (spool_tidy.c).
 */
int spool_purge(struct spool *, time_t before);

/* Number of messages waiting for or inside a commit. */
size_t spool_inflight(const struct spool *);

/* Group commit at work: messages per transaction = messages / commits. */
struct spool_stats {
	unsigned long long commits;
	unsigned long long messages;
};
struct spool_stats spool_get_stats(struct spool *);

/*
 * Crash points for the durability tests: when the environment variable
 * SLUICE_CRASH_POINT equals name, the process exits at once with _exit(97)
 * as if killed.  Names: "after-write" (rows inserted, not committed),
 * "after-fsync" (committed, callback not yet run), "before-reply" (in the
 * session, right before the 250).
 */
void spool_crash_point(const char *name);

#endif
