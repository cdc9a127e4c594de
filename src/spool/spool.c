/*
 * spool.c - durable message store with group commit (see spool.h).
 *
 * Threads: the event loop thread calls spool_submit() and runs the
 * completion callbacks; one committer thread owns the writing SQLite
 * connection.  They share two lists under one mutex: "pending" (submitted,
 * not yet written) and "done" (committed or failed, not yet reported).
 * The committer wakes the loop (util/wakeup.h).
 *
 * Durability: PRAGMA journal_mode=WAL with synchronous=FULL makes every
 * COMMIT fsync the WAL before returning.  Each batch is one transaction;
 * each message inside it is a SAVEPOINT so one bad message fails alone.
 * If COMMIT fails, the whole batch is rolled back and reported failed:
 * nothing of those messages is stored and no client gets a 250.
 *
 * Content: the first part of a message (our headers, the client's header
 * section and, for a message whose body fits SPOOL_INLINE_MAX, the body)
 * is a row of its own in "contents", so that walks over the messages
 * table (sluicectl queue over 200,000 messages) read only envelopes; the
 * rest of a larger message is a body file named in messages.body_file,
 * written and synced by spool_body.c before the row is committed.  A
 * medium message (SPOOL_LOG_MIN of content or more, no body file) has no
 * contents row: the committer appends its content to the content log
 * (spool_log.c) and syncs it before the batch's transaction begins, and
 * the row names the range (messages.log_seg, log_off; size).
 * Records carry the content's length and an FNV-1a checksum (by 64-bit
 * words) of the first part, so that a reader can tell a damaged row, and by its
 * length a damaged body file, from a good one.  Purging a message removes its
 * body file after the commit; a crash in between leaves a file no row
 * names, which the next start removes with those of messages never
 * acknowledged.
 *
 * Other tables of the same database (the MTA-STS cache, spool_sts.c;
 * the TLS posture and the TLS reports)
 * are written by the committer too (SPOOL_OP_WRITE items carrying their
 * own write function), so the database keeps one writer.
 *
 * Privacy (issue 18): the queue holds whole messages, kept for
 * SafetyNetHoldTime after delivery, so only the daemon's user may read
 * it.  The directory is made 0700 and queue.db 0600 whatever the umask,
 * and an existing directory or database that others could read is made
 * private at open, with a warning.  queue.db is created by us, not by
 * SQLite (which would create it 0644 and force that mode past the
 * umask); SQLite gives -wal and -shm the database's own mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "spool/spool.h"
#include "spool/spool_fault.h"
#include "spool/spool_int.h"
#include "spool/spool_sts.h"
#include "util/fnv.h"
#include "util/log.h"
#include "util/mkdirs.h"
#include "util/wakeup.h"

/*
 * Bytes of submitted messages waiting for the committer.  Past it new
 * submissions fail fast (451 4.3.0) rather than queueing without bound
 * when the disk cannot keep up.
 */
#define SPOOL_PENDING_MAX ((size_t)512 * 1024 * 1024)
/* Messages per transaction: bounds a batch's memory and its latency. */
#define SPOOL_BATCH_MAX 512
/* Body files a purge collects for removal after its commit, at most. */
#define SPOOL_PURGE_FILES_MAX 4096
/*
 * Messages one purge transaction removes at most (and so body files:
 * under SPOOL_PURGE_FILES_MAX): draining 200,000 messages in one
 * transaction held the committer for seconds and grew the WAL by the
 * size of all of them.  A full batch is followed by the next at once.
 */
#define SPOOL_PURGE_BATCH 1000
/* Nothing to write for this long after writing: a quiet moment to give
 * space back (spool_tidy.c). */
#define SPOOL_QUIET_SECONDS 1
/* After a tidy that could not finish, the wait doubles up to this. */
#define SPOOL_TIDY_WAIT_MAX 64
/*
 * The queue database's schema version (PRAGMA user_version), one
 * sequence for all its tables: 1 the first; 2 the delay notice flag;
 * 3 the Message-ID and Subject; 4 what transport rules decided per
 * recipient; 5 the MTA-STS policy cache (the mta_sts table,
 * spool_sts.c); 6 large bodies in files (messages.body_file) and every
 * message's first part in the contents table; 7 the REQUIRETLS flag and
 * "TLS-Required: No" of a message (RFC 8689); 8 medium content in the
 * content log (messages.log_seg, log_off).  spool_open_db() brings a
 * database of any earlier version up to this one (see spool_migrate()).
 */
#define SPOOL_SCHEMA_VERSION "8"

struct spool_item_rcpt {
	char *addr;
	char *orcpt;
	unsigned notify;
	char *rule_tls, *rule_connector, *rule_route, *rule_reject;
};

struct spool_item {
	struct spool_item *next;
	struct spool_item *copy; /* stored with this one (spool_msg.next) */
	char *queue_id, *sender, *envid, *connector, *client, *helo, *tls,
	    *auth_as, *message_id, *subject;
	int ret, body_type, smtputf8, requiretls, tls_optional;
	struct spool_item_rcpt *rcpts;
	size_t nrcpts;
	const char *data; /* the caller's, valid until the callback */
	size_t len;
	size_t bytes; /* len of this item and its copies: SPOOL_PENDING_MAX */
	char *body_file;              /* with a body: its file's name */
	unsigned long long body_size; /* and its length */
	/* content in the log (spool_log.c): segment (0: none), offset */
	unsigned long long log_seg, log_off;
	spool_done_fn fn;
	void *arg;
	int ok;
	/* a change of state instead of a message (queue_id names its target) */
	int is_result;
	enum { SPOOL_OP_RESULT, SPOOL_OP_RETRY, SPOOL_OP_WRITE } op;
	/* SPOOL_OP_WRITE: another table's write (spool_write) */
	int (*write_fn)(sqlite3 *, void *);
	void *write_arg;
	void (*write_free)(void *);
	struct spool_result result;
	char *result_error, *result_hop;
	int changes;   /* rows an administrator's change touched */
	char **unlink; /* purge: body files to remove once committed */
	size_t nunlink;
	unsigned long long *segs; /* purge: log segments left unnamed */
	size_t nsegs;
};

struct spool {
	sqlite3 *db;
	sqlite3_stmt *ins_msg, *ins_content, *ins_rcpt, *upd_rcpt, *del_msg,
	    *sel_file, *sel_seg;
	sqlite3 *reader; /* the event loop's read-only view */
	sqlite3_stmt *sel_new, *sel_retry, *sel_info, *sel_last;
	struct spool_view *view;     /* the event loop's message reader */
	struct spool_bodies *bodies; /* the body writer thread */
	struct spool_log *log;       /* the content log (committer's) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct spool_item *pending, **pending_tail;
	size_t pending_bytes;
	struct spool_item *done, **done_tail;
	size_t inflight;
	int stop;
	struct wakeup *wake;
	struct spool_stats stats;
	/* the safety-net purge: the last one removed a full batch (the
	 * committer sets it, the loop reads it in the purge's callback) */
	int purge_more;
	time_t purge_before;
	int untidy;    /* the committer wrote since it last tidied */
	int tidy_wait; /* seconds of quiet before it tidies */
	/*
	 * The last recipient id given (committer).  Ids only grow, even
	 * after a purge emptied the table (SQLite would start again at the
	 * highest id left, plus one): the queue manager's walk of new
	 * recipients goes on from the last id it saw and would never see
	 * ids given a second time.
	 */
	int64_t rcpt_last;
};

/* What spool_due_new() and spool_due_retry() read, in struct order. */
#define SPOOL_DUE_COLUMNS                                                      \
	"SELECT r.id, r.message_id, m.queue_id, m.sender, r.addr,"             \
	" r.attempts, m.received, r.notify, r.orcpt, r.delay_notified,"        \
	" r.last_error, r.next_attempt, r.rule_tls, r.rule_connector,"         \
	" r.rule_route, r.rule_reject, m.tls_optional FROM recipients r"       \
	" JOIN messages m ON m.id = r.message_id"

static const char spool_schema[] =
    "CREATE TABLE IF NOT EXISTS messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue_id TEXT NOT NULL UNIQUE,"
    " received INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " envid TEXT NOT NULL DEFAULT '',"
    " ret INTEGER NOT NULL DEFAULT 0,"
    " body_type INTEGER NOT NULL DEFAULT 0,"
    " smtputf8 INTEGER NOT NULL DEFAULT 0,"
    " connector TEXT NOT NULL DEFAULT '',"
    " client TEXT NOT NULL DEFAULT '',"
    " helo TEXT NOT NULL DEFAULT '',"
    " tls TEXT NOT NULL DEFAULT '',"
    " auth_as TEXT NOT NULL DEFAULT '',"
    " size INTEGER NOT NULL,"
    " checksum TEXT NOT NULL,"
    /* written by version 2 and older: the whole message; now x'' */
    " body BLOB NOT NULL,"
    " message_id TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '',"
    " body_file TEXT NOT NULL DEFAULT '',"
    " requiretls INTEGER NOT NULL DEFAULT 0,"
    " tls_optional INTEGER NOT NULL DEFAULT 0,"
    /* the whole content (size bytes) in the content log, or 0 */
    " log_seg INTEGER NOT NULL DEFAULT 0,"
    " log_off INTEGER NOT NULL DEFAULT 0);"
    /* the first part of the content (see the top of this file) */
    "CREATE TABLE IF NOT EXISTS contents ("
    " message_id INTEGER PRIMARY KEY"
    " REFERENCES messages(id) ON DELETE CASCADE,"
    " data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS recipients ("
    " id INTEGER PRIMARY KEY,"
    " message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
    " rcpt_index INTEGER NOT NULL,"
    " addr TEXT NOT NULL,"
    " orcpt TEXT NOT NULL DEFAULT '',"
    " notify INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " next_hop TEXT NOT NULL DEFAULT '',"
    " updated INTEGER NOT NULL DEFAULT 0,"
    " delay_notified INTEGER NOT NULL DEFAULT 0,"
    " rule_tls TEXT NOT NULL DEFAULT '',"
    " rule_connector TEXT NOT NULL DEFAULT '',"
    " rule_route TEXT NOT NULL DEFAULT '',"
    " rule_reject TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS recipients_due"
    " ON recipients(status, next_attempt);"
    "CREATE INDEX IF NOT EXISTS recipients_message"
    " ON recipients(message_id);";

/* After the migrations: body_file may be a column they just added. */
static const char spool_indexes[] =
    "CREATE INDEX IF NOT EXISTS messages_body_file"
    " ON messages(body_file) WHERE body_file != '';"
    /* is a log segment still named (purge, rotation, start)? */
    "CREATE INDEX IF NOT EXISTS messages_log_seg"
    " ON messages(log_seg) WHERE log_seg > 0;"
    /* the pending recipients in message order, for the queue views:
     * no sort, and finished recipients (the safety net) not walked */
    "CREATE INDEX IF NOT EXISTS recipients_pending"
    " ON recipients(message_id, rcpt_index) WHERE status = 0;";

static int spool_sweep_named(void *, const char *);

void
spool_crash_point(const char *name)
{
	const char *want = getenv("SLUICE_CRASH_POINT");

	if (want != NULL && strcmp(want, name) == 0) {
		fprintf(stderr, "sluiced: crash point %s reached\n", name);
		_exit(97);
	}
}

void
spool_queue_id(char *out, size_t len)
{
	static unsigned counter;
	struct timespec ts;

	/* Seconds, then 10-microsecond ticks, then a counter for the rest:
	 * sortable by arrival and unique within one process. */
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "%08llX%05lX%03X", (unsigned long long)ts.tv_sec,
	    (unsigned long)(ts.tv_nsec / 10000), counter++ & 0xfff);
}

/*
 * FNV-1a 64 over 8-byte words (the tail byte by byte): a byte-wise FNV
 * of a 128 KB first part cost the committer thread some 100 us per
 * message, a tenth of a group commit; by words it is eight times less.
 */
uint64_t
spool_checksum(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull, w;
	size_t i = 0;

	for (; i + sizeof(w) <= n; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		h = (h ^ w) * 1099511628211ull;
	}
	for (; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

static char *
spool_strdup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

static void
spool_item_free(struct spool_item *it)
{
	if (it->copy != NULL)
		spool_item_free(it->copy);
	for (size_t i = 0; i < it->nrcpts; i++) {
		free(it->rcpts[i].addr);
		free(it->rcpts[i].orcpt);
		free(it->rcpts[i].rule_tls);
		free(it->rcpts[i].rule_connector);
		free(it->rcpts[i].rule_route);
		free(it->rcpts[i].rule_reject);
	}
	free(it->rcpts);
	free(it->queue_id);
	free(it->sender);
	free(it->envid);
	free(it->connector);
	free(it->client);
	free(it->helo);
	free(it->tls);
	free(it->auth_as);
	free(it->message_id);
	free(it->subject);
	free(it->result_error);
	free(it->result_hop);
	if (it->write_free != NULL)
		it->write_free(it->write_arg);
	free(it->body_file);
	for (size_t i = 0; i < it->nunlink; i++)
		free(it->unlink[i]);
	free(it->unlink);
	free(it->segs);
	free(it);
}

int
spool_exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_err("queue: %s: %s", sql, err != NULL ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/* The content's first part, a row of its own; 0 on success. */
static int
spool_write_content(struct spool *sp, struct spool_item *it, sqlite3_int64 id)
{
	sqlite3_reset(sp->ins_content);
	sqlite3_bind_int64(sp->ins_content, 1, id);
	sqlite3_bind_blob64(sp->ins_content, 2,
	    it->data != NULL ? it->data : "", it->len, SQLITE_STATIC);
	if (sqlite3_step(sp->ins_content) != SQLITE_DONE) {
		log_err("queue: storing the content of %s: %s", it->queue_id,
		    sqlite3_errmsg(sp->db));
		return -1;
	}
	return 0;
}

/* Write one message inside the open transaction; 0 on success. */
static int
spool_write_item(struct spool *sp, struct spool_item *it, time_t now)
{
	sqlite3_stmt *m = sp->ins_msg, *r = sp->ins_rcpt;
	sqlite3_int64 rowid;
	char sum[17];
	int rc;

	snprintf(sum, sizeof(sum), "%016llx",
	    (unsigned long long)spool_checksum(it->data, it->len));
	sqlite3_reset(m);
	sqlite3_bind_text(m, 1, it->queue_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(m, 2, (sqlite3_int64)now);
	sqlite3_bind_text(m, 3, it->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 4, it->envid, -1, SQLITE_STATIC);
	sqlite3_bind_int(m, 5, it->ret);
	sqlite3_bind_int(m, 6, it->body_type);
	sqlite3_bind_int(m, 7, it->smtputf8);
	sqlite3_bind_text(m, 8, it->connector, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 9, it->client, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 10, it->helo, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 11, it->tls, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 12, it->auth_as, -1, SQLITE_STATIC);
	sqlite3_bind_int64(
	    m, 13, (sqlite3_int64)(it->len + (size_t)it->body_size));
	sqlite3_bind_text(m, 14, sum, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 15, it->body_file != NULL ? it->body_file : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(m, 16, it->message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(m, 17, it->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int(m, 18, it->requiretls);
	sqlite3_bind_int(m, 19, it->tls_optional);
	sqlite3_bind_int64(m, 20, (sqlite3_int64)it->log_seg);
	sqlite3_bind_int64(m, 21, (sqlite3_int64)it->log_off);
	if ((rc = sqlite3_step(m)) != SQLITE_DONE) {
		log_err("queue: storing %s: %s", it->queue_id,
		    sqlite3_errmsg(sp->db));
		return -1;
	}
	rowid = sqlite3_last_insert_rowid(sp->db);
	/* content in the log has no row of its own */
	if (it->log_seg == 0 && spool_write_content(sp, it, rowid) < 0)
		return -1;
	for (size_t i = 0; i < it->nrcpts; i++) {
		sqlite3_reset(r);
		sqlite3_bind_int64(r, 1, rowid);
		sqlite3_bind_int(r, 2, (int)i);
		sqlite3_bind_int64(r, 11, (sqlite3_int64)++sp->rcpt_last);
		sqlite3_bind_text(r, 3, it->rcpts[i].addr, -1, SQLITE_STATIC);
		sqlite3_bind_text(r, 4, it->rcpts[i].orcpt, -1, SQLITE_STATIC);
		sqlite3_bind_int(r, 5, (int)it->rcpts[i].notify);
		sqlite3_bind_int64(r, 6, (sqlite3_int64)now);
		sqlite3_bind_text(
		    r, 7, it->rcpts[i].rule_tls, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    r, 8, it->rcpts[i].rule_connector, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    r, 9, it->rcpts[i].rule_route, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    r, 10, it->rcpts[i].rule_reject, -1, SQLITE_STATIC);
		if (sqlite3_step(r) != SQLITE_DONE) {
			log_err("queue: storing recipients of %s: %s",
			    it->queue_id, sqlite3_errmsg(sp->db));
			return -1;
		}
	}
	/* the other copies of the message, in the same savepoint */
	return it->copy != NULL ? spool_write_item(sp, it->copy, now) : 0;
}

/* Is a body file still named by a row (a copy of a message)? */
static int
spool_file_named(struct spool *sp, const char *name)
{
	int rc;

	sqlite3_reset(sp->sel_file);
	sqlite3_bind_text(sp->sel_file, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(sp->sel_file);
	sqlite3_reset(sp->sel_file);
	return rc == SQLITE_ROW;
}

/* Does a row name this log segment?  (The committer's connection.) */
static int
spool_seg_named(void *arg, unsigned long long seg)
{
	struct spool *sp = arg;
	int rc;

	sqlite3_reset(sp->sel_seg);
	sqlite3_bind_int64(sp->sel_seg, 1, (sqlite3_int64)seg);
	rc = sqlite3_step(sp->sel_seg);
	sqlite3_reset(sp->sel_seg);
	/* an error: keep it (a segment too many beats content lost) */
	return rc != SQLITE_DONE;
}

/* A purge met a row of this log segment: note it once. */
static void
spool_purge_seg(struct spool_item *it, unsigned long long seg)
{
	unsigned long long *more;

	for (size_t i = 0; i < it->nsegs; i++)
		if (it->segs[i] == seg)
			return;
	/* out of memory: the segment waits for the next start */
	if ((more = realloc(it->segs, (it->nsegs + 1) * sizeof(*more))) == NULL)
		return;
	it->segs = more;
	it->segs[it->nsegs++] = seg;
}

/*
 * The safety-net purge: messages whose recipients are all final, the last
 * of them since before `before`, leave the queue, SPOOL_PURGE_BATCH at a
 * time, their contents rows with them (ON DELETE CASCADE).  Their body
 * files are collected and removed once the deletion is committed
 * (spool_commit_batch).
 */
static int
spool_write_purge(
    struct spool *sp, struct spool_item *it, sqlite3_stmt *d, time_t before)
{
	char **names = NULL;
	size_t n = 0;
	int rc;

	sqlite3_reset(d);
	sqlite3_bind_int64(d, 1, (sqlite3_int64)before);
	sqlite3_bind_int(d, 2, SPOOL_PURGE_BATCH);
	sp->purge_more = 0;
	while ((rc = sqlite3_step(d)) == SQLITE_ROW) {
		sp->purge_more++;
		const char *f = (const char *)sqlite3_column_text(d, 0);
		sqlite3_int64 seg = sqlite3_column_int64(d, 1);
		char **more;

		if (seg > 0)
			spool_purge_seg(it, (unsigned long long)seg);
		if (f == NULL || f[0] == '\0' || n == SPOOL_PURGE_FILES_MAX)
			continue; /* beyond: the next start removes them */
		if ((more = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			continue;
		names = more;
		if ((names[n] = strdup(f)) != NULL)
			n++;
	}
	sqlite3_reset(d);
	/* a full batch: more may wait (spool_purged goes on) */
	sp->purge_more = sp->purge_more >= SPOOL_PURGE_BATCH;
	it->unlink = names;
	it->nunlink = n;
	if (rc != SQLITE_DONE)
		return -1;
	/* A file another row still names (a copy) stays. */
	for (size_t i = 0; i < it->nunlink; i++)
		if (spool_file_named(sp, it->unlink[i])) {
			free(it->unlink[i]);
			it->unlink[i] = NULL;
		}
	/* Its segments are looked at once this is committed (see there). */
	return 0;
}

/* An administrator's change, one statement with the target as ?1. */
static int
spool_admin(struct spool *sp, struct spool_item *it, const char *sql)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(sp->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, it->queue_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	it->changes = sqlite3_changes(sp->db);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * A delivery result: the recipient's new state.  A result with rcpt_id 0
 * is the safety-net purge instead: messages whose recipients are all final
 * and that were received before next_attempt leave the queue.
 */
static int
spool_write_result(struct spool *sp, struct spool_item *it, time_t now)
{
	const struct spool_result *r = &it->result;
	sqlite3_stmt *u = sp->upd_rcpt, *d = sp->del_msg;

	if (it->op == SPOOL_OP_WRITE)
		return it->write_fn(sp->db, it->write_arg);
	if (it->op == SPOOL_OP_RETRY)
		return spool_admin(sp, it,
		    /* 1, not 0: a deferred recipient stays on the retry
		     * walk, due at once */
		    "UPDATE recipients SET next_attempt = 1"
		    " WHERE status = 0 AND next_attempt > 1"
		    " AND next_hop = ?1 COLLATE NOCASE");
	if (r->rcpt_id == 0)
		return spool_write_purge(sp, it, d, r->next_attempt);
	sqlite3_reset(u);
	sqlite3_bind_int(u, 1, r->status);
	sqlite3_bind_int(u, 2, r->not_an_attempt ? 0 : 1);
	sqlite3_bind_int64(u, 3, (sqlite3_int64)r->next_attempt);
	sqlite3_bind_text(u, 4, it->result_error, -1, SQLITE_STATIC);
	sqlite3_bind_text(u, 5, it->result_hop, -1, SQLITE_STATIC);
	sqlite3_bind_int64(u, 6, (sqlite3_int64)now);
	sqlite3_bind_int(u, 7, r->delay_notified);
	sqlite3_bind_int64(u, 8, (sqlite3_int64)r->rcpt_id);
	return sqlite3_step(u) == SQLITE_DONE ? 0 : -1;
}

/*
 * The batch's medium contents into the content log: reserved in order,
 * written with one pwritev and synced with one fdatasync (per segment),
 * before the transaction that names them begins.  -1: the batch is
 * refused.
 */
static int
spool_write_log(struct spool *sp, struct spool_item *batch)
{
	int any = 0;

	spool_log_begin(sp->log);
	for (struct spool_item *m = batch; m != NULL; m = m->next)
		for (struct spool_item *it = m; !m->is_result && it != NULL;
		     it = it->copy) {
			if (it->body_file != NULL || it->len < SPOOL_LOG_MIN ||
			    it->len > SPOOL_LOG_MAX)
				continue;
			if (spool_log_add(sp->log, it->data, it->len,
			        &it->log_seg, &it->log_off) < 0) {
				spool_log_abandon(sp->log);
				return -1;
			}
			any = 1;
		}
	return any ? spool_log_sync(sp->log) : 0;
}

/* Nothing of the batch is stored: every item fails. */
static void
spool_refuse_batch(struct spool_item *batch)
{
	for (struct spool_item *it = batch; it != NULL; it = it->next)
		it->ok = 0;
}

/* One batch: a transaction, a savepoint per message, one COMMIT. */
static void
spool_commit_batch(struct spool *sp, struct spool_item *batch)
{
	time_t now = time(NULL);
	int any = 0, files = 0;

	if (spool_write_log(sp, batch) < 0) {
		log_err("queue: writing the content log: %s; the batch is "
		        "refused",
		    strerror(errno));
		spool_refuse_batch(batch);
		return;
	}

	/*
	 * The names of this batch's new body files must be durable before
	 * the rows that name them: one fsync of their directory for the whole
	 * batch (each file's own data was synced by a syncer thread).
	 */
	for (struct spool_item *it = batch; it != NULL && !files; it = it->next)
		files = it->body_file != NULL && !it->is_result;
	if (files && spool_bodies_sync_dir(sp->bodies) < 0) {
		log_err("queue: syncing the body directory: %s; the batch is "
		        "refused",
		    strerror(errno));
		spool_refuse_batch(batch);
		return;
	}
	if (spool_exec(sp->db, "BEGIN IMMEDIATE") < 0) {
		spool_refuse_batch(batch);
		return;
	}
	for (struct spool_item *it = batch; it != NULL; it = it->next) {
		spool_exec(sp->db, "SAVEPOINT msg");
		it->ok = (it->is_result ? spool_write_result(sp, it, now)
		                        : spool_write_item(sp, it, now)) == 0;
		if (!it->ok)
			spool_exec(sp->db, "ROLLBACK TO msg");
		spool_exec(sp->db, "RELEASE msg");
		any |= it->ok;
	}
	spool_crash_point("after-write");
	if (sqlite3_exec(sp->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_err("queue: commit failed: %s; %s", sqlite3_errmsg(sp->db),
		    "the batch is refused with 451");
		sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
		spool_refuse_batch(batch);
		return;
	}
	if (any)
		spool_crash_point("after-fsync");
	for (struct spool_item *it = batch; it != NULL; it = it->next) {
		for (size_t i = 0; it->ok && i < it->nunlink; i++)
			if (it->unlink[i] != NULL)
				spool_bodies_unlink(sp->bodies, it->unlink[i]);
		/*
		 * A segment that no row names now, committed, goes (unless
		 * it is the current one).  Asked after the commit, not in the
		 * purge: a message of this same batch written after the purge
		 * may have its content in that segment (it was current when
		 * the batch's contents were written, then rotated).
		 */
		for (size_t i = 0; it->ok && i < it->nsegs; i++)
			if (!spool_seg_named(sp, it->segs[i]))
				spool_log_remove(sp->log, it->segs[i]);
	}
}

/* Is new work waiting for the committer (spool_tidy gives way)? */
static int
spool_busy(void *arg)
{
	struct spool *sp = arg;
	int busy;

	pthread_mutex_lock(&sp->mu);
	busy = sp->pending != NULL || sp->stop;
	pthread_mutex_unlock(&sp->mu);
	return busy;
}

static void *
spool_committer(void *arg)
{
	struct spool *sp = arg;

	for (;;) {
		struct spool_item *batch, **tail, *last = NULL;
		size_t n = 0, bytes = 0;

		pthread_mutex_lock(&sp->mu);
		while (sp->pending == NULL && !sp->stop) {
			struct timespec ts;
			int rc;

			if (!sp->untidy) {
				pthread_cond_wait(&sp->cv, &sp->mu);
				continue;
			}
			/* a quiet moment after writing: give space back */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += sp->tidy_wait;
			if (pthread_cond_timedwait(&sp->cv, &sp->mu, &ts) !=
			        ETIMEDOUT ||
			    sp->pending != NULL || sp->stop)
				continue;
			pthread_mutex_unlock(&sp->mu);
			rc = spool_tidy(sp->db, spool_busy, sp);
			sp->untidy = rc != 0;
			/* after a failure (a reader, an I/O error) wait
			 * longer, up to a minute: no log line a second */
			sp->tidy_wait =
			    rc >= 0 ? SPOOL_QUIET_SECONDS
			    : sp->tidy_wait < SPOOL_TIDY_WAIT_MAX / 2
			        ? 2 * sp->tidy_wait
			        : SPOOL_TIDY_WAIT_MAX;
			pthread_mutex_lock(&sp->mu);
		}
		if (sp->pending == NULL) {
			pthread_mutex_unlock(&sp->mu);
			break;
		}
		batch = sp->pending;
		for (struct spool_item *it = batch;
		     it != NULL && n < SPOOL_BATCH_MAX; it = it->next) {
			last = it;
			n++;
			bytes += it->bytes;
		}
		sp->pending = last->next;
		if (sp->pending == NULL)
			sp->pending_tail = &sp->pending;
		last->next = NULL;
		sp->pending_bytes -= bytes;
		pthread_mutex_unlock(&sp->mu);

		spool_commit_batch(sp, batch);
		sp->untidy = 1;

		pthread_mutex_lock(&sp->mu);
		sp->stats.commits++;
		sp->stats.messages += n;
		*sp->done_tail = batch;
		for (tail = &batch->next; *tail != NULL; tail = &(*tail)->next)
			;
		sp->done_tail = tail;
		pthread_mutex_unlock(&sp->mu);
		spool_wake(sp);
	}
	return NULL;
}

/* On the loop thread: report every finished message. */
static void
spool_deliver_done(struct spool *sp)
{
	struct spool_item *list, *next;

	pthread_mutex_lock(&sp->mu);
	list = sp->done;
	sp->done = NULL;
	sp->done_tail = &sp->done;
	pthread_mutex_unlock(&sp->mu);
	for (; list != NULL; list = next) {
		next = list->next;
		sp->inflight--;
		/* An administrator's change that touched nothing is reported
		 * as done with an empty id: nothing matched. */
		list->fn(list->arg, list->ok,
		    list->ok &&
		            !(list->op == SPOOL_OP_RETRY && list->changes == 0)
		        ? list->queue_id
		        : "");
		spool_item_free(list);
	}
}

/* One wake may stand for many hand-overs: both lists, whole. */
static void
spool_wake_cb(void *arg)
{
	struct spool *sp = arg;

	spool_bodies_returned(sp->bodies);
	spool_deliver_done(sp);
}

void
spool_wake(struct spool *sp)
{
	if (wakeup_signal(sp->wake) < 0)
		log_err(
		    "queue: cannot wake the event loop: %s", strerror(errno));
}

/*
 * CREATE TABLE IF NOT EXISTS leaves an old table as it is, so columns
 * added since are added here: the delay notice flag (version 2), the
 * Message-ID and Subject the tracking log and the queue views show
 * (version 3; older messages have them empty), what transport rules
 * decided per recipient (version 4; old rows: no rule decided anything),
 * the body file (version 6; messages stored before it keep their content
 * in messages.body, no contents row, and readers take it from there),
 * the REQUIRETLS flag and "TLS-Required: No" (RFC 8689, version 7;
 * older messages never had them), the content log's segment and offset
 * (version 8; older rows have their content in a row, log_seg 0).
 * New tables need no migration: their CREATE TABLE IF NOT EXISTS makes
 * them in a database of any version (the MTA-STS cache, version 5; the
 * contents table, version 6).
 * Every step looks at what the database holds, not at user_version, so
 * a database whose number says less than it holds (development builds
 * made the MTA-STS cache at version 3) is brought up the same way.
 */
static int
spool_add_column(
    sqlite3 *db, const char *table, const char *column, const char *decl)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s LIMIT 0", column, table);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", table,
	    column, decl);
	return spool_exec(db, sql);
}

static int
spool_migrate(sqlite3 *db)
{
	if (spool_add_column(db, "recipients", "delay_notified",
	        "INTEGER NOT NULL DEFAULT 0") < 0 ||
	    spool_add_column(
	        db, "messages", "message_id", "TEXT NOT NULL DEFAULT ''") < 0 ||
	    spool_add_column(
	        db, "messages", "subject", "TEXT NOT NULL DEFAULT ''") < 0 ||
	    spool_add_column(
	        db, "messages", "body_file", "TEXT NOT NULL DEFAULT ''") < 0 ||
	    spool_add_column(db, "messages", "requiretls",
	        "INTEGER NOT NULL DEFAULT 0") < 0 ||
	    spool_add_column(db, "messages", "tls_optional",
	        "INTEGER NOT NULL DEFAULT 0") < 0 ||
	    spool_add_column(
	        db, "messages", "log_seg", "INTEGER NOT NULL DEFAULT 0") < 0 ||
	    spool_add_column(
	        db, "messages", "log_off", "INTEGER NOT NULL DEFAULT 0") < 0)
		return -1;
	/* transport rules (SPEC 5): what they decided, per recipient */
	if (spool_add_column(
	        db, "recipients", "rule_tls", "TEXT NOT NULL DEFAULT ''") < 0 ||
	    spool_add_column(db, "recipients", "rule_connector",
	        "TEXT NOT NULL DEFAULT ''") < 0 ||
	    spool_add_column(db, "recipients", "rule_route",
	        "TEXT NOT NULL DEFAULT ''") < 0 ||
	    spool_add_column(db, "recipients", "rule_reject",
	        "TEXT NOT NULL DEFAULT ''") < 0)
		return -1;
	return 0;
}

static sqlite3 *
spool_open_db(const char *path, const char **why)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	            SQLITE_OPEN_NOMUTEX,
	        spool_fault_vfs()) != SQLITE_OK) {
		*why = db != NULL ? sqlite3_errmsg(db) : "cannot open";
		log_err("queue: %s: %s", path, *why);
		*why = "cannot open the queue database";
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	if (spool_tidy_open(db, path) < 0 ||
	    spool_exec(db, "PRAGMA journal_mode=WAL") < 0 ||
	    spool_exec(db, "PRAGMA synchronous=FULL") < 0 ||
	    spool_exec(db, "PRAGMA foreign_keys=ON") < 0 ||
	    spool_exec(db, spool_schema) < 0 ||
	    spool_exec(db, spool_sts_schema) < 0 || spool_migrate(db) < 0 ||
	    spool_exec(db, spool_indexes) < 0 ||
	    spool_exec(db, "PRAGMA user_version=" SPOOL_SCHEMA_VERSION) < 0) {
		*why = "cannot initialise the queue database";
		sqlite3_close(db);
		return NULL;
	}
	spool_fault_arm(NULL);
	return db;
}

/* Statements and connections, in the order they were made. */
static void
spool_close_db(struct spool *sp)
{
	spool_view_free(sp->view);
	sqlite3_finalize(sp->ins_msg);
	sqlite3_finalize(sp->ins_content);
	sqlite3_finalize(sp->ins_rcpt);
	sqlite3_finalize(sp->upd_rcpt);
	sqlite3_finalize(sp->del_msg);
	sqlite3_finalize(sp->sel_file);
	sqlite3_finalize(sp->sel_seg);
	sqlite3_finalize(sp->sel_new);
	sqlite3_finalize(sp->sel_retry);
	sqlite3_finalize(sp->sel_info);
	sqlite3_finalize(sp->sel_last);
	sqlite3_close(sp->reader);
	sqlite3_close(sp->db);
}

/*
 * Take group and other permissions away from path; 0 if it is gone.
 * The directory may be a symbolic link to the real one; a database file
 * may not.
 */
static int
spool_private(const char *path, mode_t mode, int follow)
{
	struct stat st;

	if ((follow ? stat(path, &st) : lstat(path, &st)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (follow ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		/* a file for the directory, a link or device for a file */
		errno = follow ? ENOTDIR : EINVAL;
		return -1;
	}
	if ((st.st_mode & 07777) == mode)
		return 0;
	if (chmod(path, mode) < 0)
		return -1;
	if (st.st_mode & 077)
		log_warn("queue: %s was mode %04o, readable by other users; "
		         "made %04o",
		    path, (unsigned)(st.st_mode & 07777), (unsigned)mode);
	return 0;
}

/*
 * The queue directory and its database files, private: made so when
 * new, made so when found open to others.
 */
static int
spool_prepare(const char *dir, const char *db, const char **why)
{
	static const char *const sides[] = {"", "-wal", "-shm"};
	char side[4200];
	int fd;

	if (mkdirs(dir, 0700) < 0 || spool_private(dir, 0700, 1) < 0) {
		*why = strerror(errno);
		return -1;
	}
	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		snprintf(side, sizeof(side), "%s%s", db, sides[i]);
		if (spool_private(side, 0600, 0) < 0) {
			*why = strerror(errno);
			log_err("queue: %s: %s", side, *why);
			return -1;
		}
	}
	/* An empty file is an empty database to SQLite. */
	if ((fd = open(db, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) <
	    0) {
		*why = strerror(errno);
		log_err("queue: %s: %s", db, *why);
		return -1;
	}
	close(fd);
	return 0;
}

/* Where recipient ids go on from: the highest one stored. */
static int
spool_max_rcpt(struct spool *sp)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(sp->db,
	        "SELECT coalesce(max(id), 0) FROM recipients", -1, &st,
	        NULL) != SQLITE_OK)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		sp->rcpt_last = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

struct spool *
spool_open(const char *dir, struct event_base *base, const char **why)
{
	struct spool *sp;
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/queue.db", dir) >=
	    sizeof(path)) {
		*why = "path too long";
		return NULL;
	}
	if (spool_prepare(dir, path, why) < 0)
		return NULL;
	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	sp->pending_tail = &sp->pending;
	sp->done_tail = &sp->done;
	sp->tidy_wait = SPOOL_QUIET_SECONDS;
	if ((sp->db = spool_open_db(path, why)) == NULL)
		goto fail;
	if (sqlite3_prepare_v2(sp->db,
	        "INSERT INTO messages (queue_id, received, sender, envid, ret,"
	        " body_type, smtputf8, connector, client, helo, tls, auth_as,"
	        " size, checksum, body, body_file, message_id, subject,"
	        " requiretls, tls_optional, log_seg, log_off)"
	        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,x'',?,?,?,?,?,?,?)",
	        -1, &sp->ins_msg, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db,
	        "INSERT INTO contents (message_id, data) VALUES (?,?)", -1,
	        &sp->ins_content, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db,
	        "INSERT INTO recipients (message_id, rcpt_index, addr, orcpt,"
	        " notify, updated, rule_tls, rule_connector, rule_route,"
	        " rule_reject, id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
	        -1, &sp->ins_rcpt, NULL) != SQLITE_OK) {
		*why = "cannot prepare statements";
		goto fail;
	}
	if (sqlite3_prepare_v2(sp->db,
	        "UPDATE recipients SET status = ?1, attempts = attempts + ?2,"
	        /* a message suspended meanwhile stays suspended, unless
	         * delivered or failed; the administrator's own changes
	         * (attempts + 0) set what they set */
	        " next_attempt = CASE WHEN ?1 = 0 AND ?2 = 1"
	        " AND next_attempt < 0 THEN next_attempt ELSE ?3 END,"
	        " last_error = ?4, next_hop = ?5, updated = ?6,"
	        " delay_notified = max(delay_notified, ?7)"
	        /* a message removed meanwhile stays removed */
	        " WHERE id = ?8 AND status = 0",
	        -1, &sp->upd_rcpt, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db,
	        /* finished before ?1: every recipient final, the last
	         * one's state older (the safety net holds a message
	         * SafetyNetHoldTime after it is finished, as Exchange's);
	         * found through the finished recipients (the status index),
	         * never by walking the pending ones; ?2 at a time */
	        "DELETE FROM messages WHERE id IN (SELECT r.message_id"
	        " FROM recipients r WHERE r.status IN (1, 2)"
	        " AND r.updated < ?1 AND NOT EXISTS (SELECT 1 FROM"
	        " recipients p WHERE p.message_id = r.message_id"
	        " AND (p.status = 0 OR p.updated >= ?1)) LIMIT ?2)"
	        " RETURNING body_file, log_seg",
	        -1, &sp->del_msg, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db,
	        "SELECT 1 FROM messages WHERE body_file = ? LIMIT 1", -1,
	        &sp->sel_file, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db,
	        /* "> 0" as the partial index says: it is used */
	        "SELECT 1 FROM messages WHERE log_seg = ?1 AND log_seg > 0"
	        " LIMIT 1",
	        -1, &sp->sel_seg, NULL) != SQLITE_OK ||
	    /* the loop's alone: no mutex around every column read */
	    sqlite3_open_v2(path, &sp->reader,
	        SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->reader,
	        SPOOL_DUE_COLUMNS
	        /* "+": walk the rowid from the cursor (LIMIT rows), not the
	         * status index, which would sort every pending recipient. */
	        " WHERE r.id > ?1 AND +r.status = 0 AND +r.next_attempt = 0"
	        " ORDER BY r.id LIMIT ?2",
	        -1, &sp->sel_new, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->reader,
	        SPOOL_DUE_COLUMNS
	        /* the (status, next_attempt) index, from the cursor on */
	        " WHERE r.status = 0 AND r.next_attempt > 0"
	        " AND r.next_attempt <= ?1"
	        " AND (r.next_attempt, r.id) > (?2, ?3)"
	        " ORDER BY r.next_attempt, r.id LIMIT ?4",
	        -1, &sp->sel_retry, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->reader,
	        "SELECT queue_id, message_id, subject, sender, client, helo,"
	        " connector, auth_as, size, received,"
	        " (SELECT count(*) FROM recipients r WHERE r.message_id = m.id)"
	        " FROM messages m WHERE id = ?",
	        -1, &sp->sel_info, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->reader, "SELECT max(id) FROM recipients", -1,
	        &sp->sel_last, NULL) != SQLITE_OK) {
		*why = "cannot prepare statements";
		goto fail;
	}
	if (spool_max_rcpt(sp) < 0) {
		*why = "cannot read the queue database";
		goto fail;
	}
	if ((sp->wake = wakeup_new(base, spool_wake_cb, sp)) == NULL) {
		*why = strerror(errno);
		goto fail;
	}
	/* The loop's view shares the reader's connection and the body
	 * directory: descriptors are counted (docs/design.md, Memory). */
	if ((sp->bodies = spool_bodies_start(sp, dir, why)) == NULL ||
	    (sp->view = spool_view_borrow(sp->reader,
	         spool_bodies_dirfd(sp->bodies), path, dir, why)) == NULL)
		goto fail;
	if ((sp->log = spool_log_open(dir, spool_seg_named, sp, why)) == NULL)
		goto fail;
	/* Content of messages that never got their 250 goes now. */
	spool_bodies_sweep(sp->bodies, spool_sweep_named, sp);
	spool_log_sweep(sp->log);
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	if (pthread_create(&sp->thread, NULL, spool_committer, sp) != 0) {
		pthread_cond_destroy(&sp->cv);
		pthread_mutex_destroy(&sp->mu);
		*why = "cannot start the committer thread";
		goto fail;
	}
	return sp;
fail:
	spool_log_close(sp->log);
	spool_bodies_free(sp->bodies);
	wakeup_free(sp->wake);
	spool_close_db(sp);
	free(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	/* Every body handed over reaches the committer before it stops. */
	spool_bodies_stop(sp->bodies);
	pthread_mutex_lock(&sp->mu);
	sp->stop = 1;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	spool_deliver_done(sp);
	/*
	 * Callbacks may have stored more (a delivery result after its DSN):
	 * write that too, here, so nothing handed over is dropped.  Each round
	 * can only follow from the previous one's callbacks; a few suffice.
	 */
	for (int round = 0; round < 4 && sp->pending != NULL; round++) {
		struct spool_item *batch = sp->pending, **tail;

		sp->pending = NULL;
		sp->pending_tail = &sp->pending;
		sp->pending_bytes = 0;
		spool_commit_batch(sp, batch);
		*sp->done_tail = batch;
		for (tail = &batch->next; *tail != NULL; tail = &(*tail)->next)
			;
		sp->done_tail = tail;
		spool_deliver_done(sp);
	}
	wakeup_free(sp->wake);
	spool_bodies_free(sp->bodies);
	spool_log_close(sp->log);
	spool_close_db(sp);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	free(sp);
}

static void
spool_enqueue(struct spool *sp, struct spool_item *it)
{
	pthread_mutex_lock(&sp->mu);
	*sp->pending_tail = it;
	sp->pending_tail = &it->next;
	sp->pending_bytes += it->bytes;
	sp->inflight++;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

/*
 * A writer or syncer thread: the body is durable, the row (and those of
 * the message's copies, which share the file) can be committed.
 */
void
spool_commit_later(
    struct spool *sp, struct spool_item *it, unsigned long long body_size)
{
	for (struct spool_item *c = it; c != NULL; c = c->copy)
		if (c->body_file != NULL)
			c->body_size = body_size;
	pthread_mutex_lock(&sp->mu);
	*sp->pending_tail = it;
	sp->pending_tail = &it->next;
	sp->pending_bytes += it->bytes;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
}

/* A writer or syncer thread: the body could not be stored; report. */
void
spool_fail_now(struct spool *sp, struct spool_item *it)
{
	it->ok = 0;
	pthread_mutex_lock(&sp->mu);
	it->next = NULL;
	*sp->done_tail = it;
	sp->done_tail = &it->next;
	pthread_mutex_unlock(&sp->mu);
	spool_wake(sp);
}

struct spool_bodies *
spool_bodies_of(struct spool *sp)
{
	return sp->bodies;
}

struct spool_view *
spool_loop_view(struct spool *sp)
{
	return sp->view;
}

/* Does a row name this body file?  (At open, before any thread.) */
static int
spool_sweep_named(void *arg, const char *name)
{
	return spool_file_named(arg, name);
}

/* One message of a submission as an item (its copies not included). */
static struct spool_item *
spool_item_new(const struct spool_msg *msg)
{
	struct spool_item *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return NULL;
	it->queue_id = spool_strdup(msg->queue_id);
	it->sender = spool_strdup(msg->sender);
	it->envid = spool_strdup(msg->envid);
	it->connector = spool_strdup(msg->connector);
	it->client = spool_strdup(msg->client);
	it->helo = spool_strdup(msg->helo);
	it->tls = spool_strdup(msg->tls);
	it->auth_as = spool_strdup(msg->auth_as);
	it->message_id = spool_strdup(msg->message_id);
	it->subject = spool_strdup(msg->subject);
	it->ret = msg->ret;
	it->body_type = msg->body_type;
	it->smtputf8 = msg->smtputf8;
	it->requiretls = msg->requiretls != 0;
	it->tls_optional = msg->tls_optional != 0;
	it->data = msg->data;
	it->len = msg->len;
	if (msg->body != NULL &&
	    (it->body_file = strdup(spool_body_name(msg->body))) == NULL) {
		spool_item_free(it);
		return NULL;
	}
	it->rcpts = calloc(msg->nrcpts ? msg->nrcpts : 1, sizeof(*it->rcpts));
	if (it->rcpts != NULL) {
		it->nrcpts = msg->nrcpts;
		for (size_t i = 0; i < msg->nrcpts; i++) {
			const struct spool_rcpt *in = &msg->rcpts[i];
			struct spool_item_rcpt *r = &it->rcpts[i];

			r->addr = spool_strdup(in->addr);
			r->orcpt = spool_strdup(in->orcpt);
			r->notify = in->notify;
			r->rule_tls = spool_strdup(in->rule_tls);
			r->rule_connector = spool_strdup(in->rule_connector);
			r->rule_route = spool_strdup(in->rule_route);
			r->rule_reject = spool_strdup(in->rule_reject);
			if (r->addr == NULL || r->orcpt == NULL ||
			    r->rule_tls == NULL || r->rule_connector == NULL ||
			    r->rule_route == NULL || r->rule_reject == NULL) {
				spool_item_free(it);
				return NULL;
			}
		}
	}
	if (it->queue_id == NULL || it->sender == NULL || it->rcpts == NULL ||
	    it->message_id == NULL || it->subject == NULL) {
		spool_item_free(it);
		return NULL;
	}
	return it;
}

int
spool_submit(
    struct spool *sp, const struct spool_msg *msg, spool_done_fn fn, void *arg)
{
	struct spool_item *it, **tail;
	size_t len = 0;
	int full;

	for (const struct spool_msg *m = msg; m != NULL; m = m->next)
		len += m->len;
	pthread_mutex_lock(&sp->mu);
	full = sp->pending_bytes + len > SPOOL_PENDING_MAX;
	pthread_mutex_unlock(&sp->mu);
	if (full || (it = spool_item_new(msg)) == NULL)
		return -1;
	tail = &it->copy;
	for (const struct spool_msg *m = msg->next; m != NULL; m = m->next) {
		if ((*tail = spool_item_new(m)) == NULL) {
			spool_item_free(it);
			return -1;
		}
		tail = &(*tail)->copy;
	}
	it->bytes = len;
	it->fn = fn;
	it->arg = arg;
	if (msg->body == NULL) {
		spool_enqueue(sp, it);
		return 0;
	}
	/*
	 * In flight from now; a writer then a syncer hand it to the
	 * committer once the body file is whole and synced (or report it
	 * failed).  The copies a transport rule split it into share the file
	 * (they differ in their headers only); it is finished once.
	 */
	pthread_mutex_lock(&sp->mu);
	sp->inflight++;
	pthread_mutex_unlock(&sp->mu);
	spool_body_finish(msg->body, msg->tail, it);
	return 0;
}

int
spool_record(
    struct spool *sp, const struct spool_result *r, spool_done_fn fn, void *arg)
{
	struct spool_item *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -1;
	it->is_result = 1;
	it->result = *r;
	it->result.error = NULL;
	it->result.next_hop = NULL;
	it->result.queue_id = NULL;
	it->queue_id = spool_strdup(r->queue_id);
	it->result_error = spool_strdup(r->error);
	it->result_hop = spool_strdup(r->next_hop);
	it->fn = fn;
	it->arg = arg;
	if (it->queue_id == NULL || it->result_error == NULL ||
	    it->result_hop == NULL) {
		spool_item_free(it);
		return -1;
	}
	spool_enqueue(sp, it);
	return 0;
}

static int
spool_admin_submit(
    struct spool *sp, int op, const char *target, spool_done_fn fn, void *arg)
{
	struct spool_item *it = calloc(1, sizeof(*it));

	if (it == NULL || (it->queue_id = spool_strdup(target)) == NULL) {
		free(it);
		return -1;
	}
	it->is_result = 1;
	it->op = op;
	it->fn = fn;
	it->arg = arg;
	spool_enqueue(sp, it);
	return 0;
}

int
spool_write(struct spool *sp, int (*fn)(sqlite3 *, void *), void *arg,
    void (*free_arg)(void *), spool_done_fn done, void *done_arg)
{
	struct spool_item *it = calloc(1, sizeof(*it));

	if (it == NULL || (it->queue_id = strdup("write")) == NULL) {
		free(it);
		return -1;
	}
	it->is_result = 1;
	it->op = SPOOL_OP_WRITE;
	it->write_fn = fn;
	it->write_arg = arg;
	it->write_free = free_arg;
	it->fn = done;
	it->arg = done_arg;
	spool_enqueue(sp, it);
	return 0;
}

int
spool_read(struct spool *sp, int (*fn)(sqlite3 *, void *), void *arg)
{
	return fn(sp->reader, arg);
}

int
spool_retry(struct spool *sp, const char *next_hop, spool_done_fn fn, void *arg)
{
	return spool_admin_submit(sp, SPOOL_OP_RETRY, next_hop, fn, arg);
}

/* Run a due query whose parameters are bound; rows into out. */
static int
spool_due_rows(sqlite3_stmt *q, struct spool_due *out, size_t max, size_t *n)
{
	int rc;

	*n = 0;
	while (*n < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct spool_due *d = &out[(*n)++];

		d->rcpt_id = sqlite3_column_int64(q, 0);
		d->message_id = sqlite3_column_int64(q, 1);
		snprintf(d->queue_id, sizeof(d->queue_id), "%s",
		    (const char *)sqlite3_column_text(q, 2));
		snprintf(d->sender, sizeof(d->sender), "%s",
		    (const char *)sqlite3_column_text(q, 3));
		snprintf(d->addr, sizeof(d->addr), "%s",
		    (const char *)sqlite3_column_text(q, 4));
		d->attempts = (unsigned)sqlite3_column_int(q, 5);
		d->received = (time_t)sqlite3_column_int64(q, 6);
		d->notify = (unsigned)sqlite3_column_int(q, 7);
		snprintf(d->orcpt, sizeof(d->orcpt), "%s",
		    (const char *)sqlite3_column_text(q, 8));
		d->delay_notified = sqlite3_column_int(q, 9);
		snprintf(d->last_error, sizeof(d->last_error), "%s",
		    (const char *)sqlite3_column_text(q, 10));
		d->next_attempt = (time_t)sqlite3_column_int64(q, 11);
		snprintf(d->rule_tls, sizeof(d->rule_tls), "%s",
		    (const char *)sqlite3_column_text(q, 12));
		snprintf(d->rule_connector, sizeof(d->rule_connector), "%s",
		    (const char *)sqlite3_column_text(q, 13));
		snprintf(d->rule_route, sizeof(d->rule_route), "%s",
		    (const char *)sqlite3_column_text(q, 14));
		snprintf(d->rule_reject, sizeof(d->rule_reject), "%s",
		    (const char *)sqlite3_column_text(q, 15));
		d->tls_optional = sqlite3_column_int(q, 16);
	}
	sqlite3_reset(q);
	return 0;
}

int
spool_due_new(struct spool *sp, int64_t after, struct spool_due *out,
    size_t max, size_t *n)
{
	sqlite3_stmt *q = sp->sel_new;

	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)after);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)max);
	return spool_due_rows(q, out, max, n);
}

int64_t
spool_rcpt_last(struct spool *sp)
{
	sqlite3_stmt *q = sp->sel_last;
	int64_t last = 0;

	sqlite3_reset(q);
	if (sqlite3_step(q) == SQLITE_ROW)
		last = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	return last;
}

int
spool_due_retry(struct spool *sp, time_t now, const struct spool_cursor *after,
    struct spool_due *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sp->sel_retry;

	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)after->next_attempt);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)after->id);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)max);
	return spool_due_rows(q, out, max, n);
}

size_t
spool_inflight(const struct spool *sp)
{
	return sp->inflight;
}

struct spool_stats
spool_get_stats(struct spool *sp)
{
	struct spool_stats st;

	pthread_mutex_lock(&sp->mu);
	st = sp->stats;
	pthread_mutex_unlock(&sp->mu);
	return st;
}

static void
spool_purged(void *arg, int ok, const char *queue_id)
{
	struct spool *sp = arg;

	(void)queue_id;
	if (!ok)
		log_warn("queue: safety-net purge failed; it is tried again");
	else if (sp->purge_more && !sp->stop)
		spool_purge(sp, sp->purge_before); /* the next batch */
}

int
spool_purge(struct spool *sp, time_t before)
{
	struct spool_result r;

	memset(&r, 0, sizeof(r));
	r.queue_id = "purge";
	r.next_attempt = before;
	sp->purge_before = before;
	return spool_record(sp, &r, spool_purged, sp);
}

/* A text column, never NULL. */
static const char *
spool_text(sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);

	return t != NULL ? (const char *)t : "";
}

int
spool_info(struct spool *sp, int64_t message_id, struct spool_info *out)
{
	sqlite3_stmt *q = sp->sel_info;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)message_id);
	if (sqlite3_step(q) == SQLITE_ROW) {
		snprintf(out->queue_id, sizeof(out->queue_id), "%s",
		    spool_text(q, 0));
		snprintf(out->message_id, sizeof(out->message_id), "%s",
		    spool_text(q, 1));
		snprintf(
		    out->subject, sizeof(out->subject), "%s", spool_text(q, 2));
		snprintf(
		    out->sender, sizeof(out->sender), "%s", spool_text(q, 3));
		snprintf(
		    out->client, sizeof(out->client), "%s", spool_text(q, 4));
		snprintf(out->helo, sizeof(out->helo), "%s", spool_text(q, 5));
		snprintf(out->connector, sizeof(out->connector), "%s",
		    spool_text(q, 6));
		snprintf(
		    out->auth_as, sizeof(out->auth_as), "%s", spool_text(q, 7));
		out->size = sqlite3_column_int64(q, 8);
		out->received = (time_t)sqlite3_column_int64(q, 9);
		out->nrcpts = (unsigned)sqlite3_column_int(q, 10);
		rc = 0;
	}
	sqlite3_reset(q);
	return rc;
}

/* The queues' walk (spool_select.queues): seven columns of each row. */
static int
spool_walk_queues(sqlite3 *db, const struct spool_select *sel,
    int (*fn)(void *, const struct spool_row *), void *arg)
{
	struct spool_row row;
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "SELECT r.message_id, r.addr, r.last_error, r.next_attempt,"
	        " r.rule_tls, r.rule_connector, r.rule_route"
	        " FROM recipients r INDEXED BY recipients_pending"
	        " WHERE r.status = 0 AND r.message_id > ?1"
	        " ORDER BY r.message_id, r.rcpt_index",
	        -1, &q, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)sel->after);
	memset(&row, 0, sizeof(row));
	row.queue_id = row.sender = row.next_hop = row.message_id = "";
	row.subject = row.client = row.orcpt = "";
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row.message_rowid = sqlite3_column_int64(q, 0);
		row.addr = spool_text(q, 1);
		row.last_error = spool_text(q, 2);
		row.next_attempt = (time_t)sqlite3_column_int64(q, 3);
		row.rule_tls = spool_text(q, 4);
		row.rule_connector = spool_text(q, 5);
		row.rule_route = spool_text(q, 6);
		if (fn(arg, &row) != 0)
			break;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* spool_foreach() on a connection of the calling thread. */
static int
spool_walk(sqlite3 *db, const struct spool_select *sel,
    int (*fn)(void *, const struct spool_row *), void *arg)
{
	char sql[1024];
	struct spool_row row;
	sqlite3_stmt *q;
	int rc;

	if (sel->queues)
		return spool_walk_queues(db, sel, fn, arg);
	if (sel->brief && sel->queue_id == NULL)
		/* the recipients alone; pending ones through their index */
		snprintf(sql, sizeof(sql),
		    "SELECT r.id, r.message_id, '', '', r.addr, r.last_error,"
		    " r.next_attempt, 0, r.attempts, 0, r.status,"
		    " r.next_hop, r.updated, '', '', '',"
		    " r.orcpt, r.notify, r.delay_notified,"
		    " r.rule_tls, r.rule_connector, r.rule_route"
		    " FROM recipients r%s WHERE %s AND r.message_id > ?2"
		    " ORDER BY r.message_id, r.rcpt_index",
		    sel->finished ? "" : " INDEXED BY recipients_pending",
		    sel->finished ? "r.status IN (1, 2)" : "r.status = 0");
	else
		snprintf(sql, sizeof(sql),
		    "SELECT r.id, m.id, m.queue_id, m.sender, r.addr,"
		    " r.last_error, r.next_attempt, m.received, r.attempts,"
		    " m.size, r.status, r.next_hop, r.updated, m.message_id,"
		    " m.subject, m.client, r.orcpt, r.notify, r.delay_notified,"
		    " r.rule_tls, r.rule_connector, r.rule_route"
		    " FROM recipients r%s JOIN messages m ON m.id = "
		    "r.message_id"
		    " WHERE %s%s AND r.message_id > ?2"
		    " ORDER BY r.message_id, r.rcpt_index",
		    sel->finished || sel->queue_id != NULL
		        ? ""
		        : " INDEXED BY recipients_pending",
		    sel->finished ? "r.status IN (1, 2)" : "r.status = 0",
		    sel->queue_id != NULL ? " AND m.queue_id = ?1" : "");
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		return -1;
	if (sel->queue_id != NULL)
		sqlite3_bind_text(q, 1, sel->queue_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)sel->after);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row.rcpt_id = sqlite3_column_int64(q, 0);
		row.message_rowid = sqlite3_column_int64(q, 1);
		row.queue_id = spool_text(q, 2);
		row.sender = spool_text(q, 3);
		row.addr = spool_text(q, 4);
		row.last_error = spool_text(q, 5);
		row.next_attempt = (time_t)sqlite3_column_int64(q, 6);
		row.received = (time_t)sqlite3_column_int64(q, 7);
		row.attempts = (unsigned)sqlite3_column_int(q, 8);
		row.size = sqlite3_column_int64(q, 9);
		row.status = sqlite3_column_int(q, 10);
		row.next_hop = spool_text(q, 11);
		row.updated = (time_t)sqlite3_column_int64(q, 12);
		row.message_id = spool_text(q, 13);
		row.subject = spool_text(q, 14);
		row.client = spool_text(q, 15);
		row.orcpt = spool_text(q, 16);
		row.notify = (unsigned)sqlite3_column_int(q, 17);
		row.delay_notified = sqlite3_column_int(q, 18);
		row.rule_tls = spool_text(q, 19);
		row.rule_connector = spool_text(q, 20);
		row.rule_route = spool_text(q, 21);
		if (fn(arg, &row) != 0)
			break;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
spool_foreach(struct spool *sp, const struct spool_select *sel,
    int (*fn)(void *, const struct spool_row *), void *arg)
{
	return spool_walk(sp->reader, sel, fn, arg);
}

int
spool_view_foreach(struct spool_view *v, const struct spool_select *sel,
    int (*fn)(void *, const struct spool_row *), void *arg)
{
	return spool_walk(spool_view_db(v), sel, fn, arg);
}
