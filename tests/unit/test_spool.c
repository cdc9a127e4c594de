/*
 * test_spool.c - the durable queue (src/spool/): messages and recipients
 * stored byte-exact, group commit really batching, and injected write and
 * fsync failures reported as failures with nothing stored; large content
 * in body files, read back in pieces, removed when given up, purged or
 * never acknowledged; and queue databases of every earlier schema version
 * brought up to the current one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "spool/spool.h"
#include "spool/spool_fault.h"
#include "spool/spool_sts.h"
#include "util/buf.h"

#define BATCH 200

struct outcome {
	int done, ok;
};

static void
on_done(void *arg, int ok, const char *queue_id)
{
	struct outcome *o = arg;

	o->done++;
	o->ok += ok;
	if (ok)
		assert_true(queue_id[0] != '\0');
}

static char *
make_dir(void)
{
	char tmpl[] = "/tmp/sluice-spool-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static int
count_rows(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	snprintf(path, sizeof(path), "%s/queue.db", dir);
	assert_int_equal(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Submit n messages at once, then run the loop until all are reported. */
static struct outcome
submit_many(struct spool *sp, struct event_base *base, int n, const char *body)
{
	static const struct spool_rcpt rcpts[] = {
	    {.addr = "a@example.com", .orcpt = "", .notify = 0},
	    {.addr = "b@example.com",
	        .orcpt = "rfc822;b@example.com",
	        .notify = 6},
	    {.addr = "c@example.com", .orcpt = "", .notify = 0},
	};
	struct outcome o = {0, 0};
	char ids[BATCH][32];

	assert_true(n <= BATCH);
	for (int i = 0; i < n; i++) {
		struct spool_msg m;

		memset(&m, 0, sizeof(m));
		snprintf(ids[i], sizeof(ids[i]), "T%d-%d", (int)getpid(), i);
		m.queue_id = ids[i];
		m.sender = "sender@example.org";
		m.rcpts = rcpts;
		m.nrcpts = 3;
		m.data = body;
		m.len = strlen(body);
		assert_int_equal(spool_submit(sp, &m, on_done, &o), 0);
	}
	while (o.done < n)
		event_base_loop(base, EVLOOP_ONCE);
	return o;
}

static void
test_store_and_group_commit(void **state)
{
	const char *body = "Subject: x\r\n\r\nbody \x01\xff\r\n";
	struct event_base *base = event_base_new();
	char *dir = make_dir();
	const char *why = NULL;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_stats st;
	struct outcome o;

	(void)state;
	assert_non_null(sp);
	o = submit_many(sp, base, BATCH, body);
	assert_int_equal(o.ok, BATCH);
	st = spool_get_stats(sp);
	assert_int_equal(st.messages, BATCH);
	/* 200 messages submitted together share a handful of commits. */
	assert_true(st.commits < BATCH / 4);
	spool_close(sp);
	assert_int_equal(
	    count_rows(dir, "select count(*) from messages"), BATCH);
	assert_int_equal(
	    count_rows(dir, "select count(*) from recipients"), 3 * BATCH);
	assert_int_equal(
	    count_rows(dir, "select count(*) from contents where data = "
	                    "cast(x'5375626a6563743a20780d0a0d0a626f647920"
	                    "01ff0d0a' as blob)"),
	    BATCH);
	assert_int_equal(
	    count_rows(dir, "select count(*) from recipients where notify = 6 "
	                    "and orcpt = 'rfc822;b@example.com'"),
	    BATCH);
	/* Reopening keeps what was stored. */
	sp = spool_open(dir, base, &why);
	assert_non_null(sp);
	spool_close(sp);
	assert_int_equal(
	    count_rows(dir, "select count(*) from messages"), BATCH);
	event_base_free(base);
	free(dir);
}

static void
run_fault(const char *kind)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir();
	const char *why = NULL;
	struct spool *sp;
	struct outcome o;

	setenv("SLUICE_FAULT", kind, 1);
	sp = spool_open(dir, base, &why);
	unsetenv("SLUICE_FAULT");
	assert_non_null(sp);
	o = submit_many(sp, base, 10, "Subject: f\r\n\r\nx\r\n");
	assert_int_equal(o.done, 10);
	assert_int_equal(o.ok, 0);
	spool_fault_arm("none");
	spool_close(sp);
	assert_int_equal(count_rows(dir, "select count(*) from messages"), 0);
	assert_int_equal(count_rows(dir, "select count(*) from recipients"), 0);
	event_base_free(base);
	free(dir);
}

static void
test_fsync_failure(void **state)
{
	(void)state;
	run_fault("fsync");
}

static void
test_write_failure(void **state)
{
	(void)state;
	run_fault("write");
}

static void
test_due_record_purge(void **state)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir();
	const char *why = NULL;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_due due[8];
	struct spool_result r;
	struct outcome o = {0, 0};
	size_t n = 0;

	(void)state;
	assert_non_null(sp);
	submit_many(sp, base, 1, "Subject: d\r\n\r\nx\r\n");
	assert_int_equal(spool_due_new(sp, 0, due, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(due[1].addr, "b@example.com");
	assert_string_equal(due[0].sender, "sender@example.org");
	assert_int_equal(due[0].next_attempt, 0);
	/* the cursor skips what was seen */
	assert_int_equal(spool_due_new(sp, due[1].rcpt_id, due, 8, &n), 0);
	assert_int_equal(n, 1);
	/* two delivered, one retried later: it is no longer due now */
	assert_int_equal(spool_due_new(sp, 0, due, 8, &n), 0);
	for (size_t i = 0; i < 3; i++) {
		memset(&r, 0, sizeof(r));
		r.rcpt_id = due[i].rcpt_id;
		r.message_id = due[i].message_id;
		r.queue_id = due[i].queue_id;
		r.status = i < 2 ? SPOOL_RCPT_DELIVERED : SPOOL_RCPT_PENDING;
		r.next_attempt = time(NULL) + 300;
		r.error = i < 2 ? "" : "451 try later";
		r.next_hop = "test";
		assert_int_equal(spool_record(sp, &r, on_done, &o), 0);
	}
	while (o.done < 3)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(o.ok, 3);
	assert_int_equal(spool_due_new(sp, 0, due, 8, &n), 0);
	assert_int_equal(n, 0);
	/* where a walk that came back short may move its cursor: the last
	 * recipient, deferred now, so never read by the new-mail walk again */
	assert_int_equal(spool_rcpt_last(sp), due[2].rcpt_id);
	{
		struct spool_cursor start = {0, 0};

		/* deferred: not due now, due in 300 s, on the retry walk */
		assert_int_equal(
		    spool_due_retry(sp, time(NULL), &start, due, 8, &n), 0);
		assert_int_equal(n, 0);
		assert_int_equal(
		    spool_due_retry(sp, time(NULL) + 301, &start, due, 8, &n),
		    0);
		assert_int_equal(n, 1);
		assert_string_equal(due[0].last_error, "451 try later");
		assert_true(due[0].next_attempt > time(NULL));
		/* the retry cursor skips what was seen */
		start.next_attempt = due[0].next_attempt;
		start.id = due[0].rcpt_id;
		assert_int_equal(
		    spool_due_retry(sp, time(NULL) + 301, &start, due, 8, &n),
		    0);
		assert_int_equal(n, 0);
	}
	/* a pending recipient keeps the message through the purge */
	o.done = 0;
	assert_int_equal(spool_purge(sp, time(NULL) + 10), 0);
	spool_close(sp);
	assert_int_equal(count_rows(dir, "select count(*) from messages"), 1);
	assert_int_equal(
	    count_rows(dir, "select count(*) from recipients where status = 1 "
	                    "and attempts = 1"),
	    2);
	assert_int_equal(
	    count_rows(dir, "select count(*) from recipients where last_error "
	                    "= '451 try later'"),
	    1);
	event_base_free(base);
	free(dir);
}

/* --- body files ------------------------------------------------------- */

#define PIECE 1000

static void
on_ready(void *arg)
{
	*(int *)arg = 1;
}

/*
 * Hand one piece to the body, waiting while the writer is busy; 0, or -1
 * once a write failed.
 */
static int
put_piece(
    struct spool_body *b, struct event_base *base, struct buf *stage, char fill)
{
	int ready = 0, rc;

	assert_int_equal(stage->len, 0);
	for (int i = 0; i < PIECE; i++)
		assert_int_equal(buf_append(stage, &fill, 1), BUF_OK);
	while ((rc = spool_body_put(b, stage)) == 1) {
		ready = 0;
		spool_body_when_ready(b, on_ready, &ready);
		while (!ready)
			event_base_loop(base, EVLOOP_ONCE);
	}
	if (rc < 0)
		return -1;
	assert_int_equal(rc, 0);
	assert_int_equal(stage->len, 0);
	assert_int_equal(stage->max, PIECE + 2);
	return 0;
}

static int
file_exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/body/%s", dir, name);
	return stat(path, &st) == 0;
}

/*
 * A message of a header and five pieces in a body file: stored with its
 * whole size, read back byte-exact in pieces, its head loadable alone.
 */
static struct outcome
store_with_body(struct spool *sp, struct event_base *base, const char *id)
{
	static const struct spool_rcpt rcpt = {
	    .addr = "a@example.com", .orcpt = ""};
	const char *head = "Subject: big\r\n\r\n";
	struct outcome o = {0, 0};
	struct spool_body *b = spool_body_new(sp, id);
	struct buf stage;
	struct spool_msg m;

	assert_non_null(b);
	buf_init(&stage, PIECE + 2);
	for (char c = 'a'; c < 'f'; c++)
		if (put_piece(b, base, &stage, c) < 0) {
			/* as a session does: the message is refused */
			spool_body_abort(b);
			buf_free(&stage);
			o.done = 1;
			return o;
		}
	assert_int_equal(buf_append(&stage, "tail\r\n", 6), BUF_OK);
	memset(&m, 0, sizeof(m));
	m.queue_id = id;
	m.sender = "s@example.org";
	m.rcpts = &rcpt;
	m.nrcpts = 1;
	m.data = head;
	m.len = strlen(head);
	m.body = b;
	m.tail = &stage;
	assert_int_equal(spool_submit(sp, &m, on_done, &o), 0);
	while (o.done < 1)
		event_base_loop(base, EVLOOP_ONCE);
	buf_free(&stage);
	return o;
}

static void
test_body_file(void **state)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir(), *head;
	const char *why = NULL, *p;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_reader *r;
	struct spool_stored env;
	size_t n, total = 0, pieces = 0, hlen;
	static char want[5 * PIECE + 64], got[sizeof(want)];
	size_t wlen;

	(void)state;
	assert_non_null(sp);
	assert_int_equal(store_with_body(sp, base, "BODY1").ok, 1);
	assert_true(file_exists(dir, "BODY1"));
	wlen = (size_t)snprintf(want, sizeof(want), "Subject: big\r\n\r\n");
	for (char c = 'a'; c < 'f'; c++) {
		memset(want + wlen, c, PIECE);
		wlen += PIECE;
	}
	memcpy(want + wlen, "tail\r\n", 6);
	wlen += 6;
	assert_int_equal(count_rows(dir, "select size from messages"), wlen);
	assert_int_equal(
	    count_rows(dir, "select count(*) from messages where body_file = "
	                    "'BODY1'"),
	    1);
	/* read back in pieces */
	r = spool_reader_open(spool_loop_view(sp), 1, &env, &why);
	assert_non_null(r);
	assert_int_equal(env.size, wlen);
	assert_string_equal(env.queue_id, "BODY1");
	while (spool_reader_next(r, &p, &n) == 1) {
		assert_true(n <= SPOOL_READ_PIECE + 64);
		assert_true(total + n <= sizeof(got));
		memcpy(got + total, p, n);
		total += n;
		pieces++;
	}
	assert_string_equal(spool_reader_error(r), "");
	spool_reader_close(r);
	assert_int_equal(total, wlen);
	assert_memory_equal(got, want, wlen);
	assert_true(pieces >= 2);
	/* the head alone */
	assert_int_equal(spool_load_head(sp, 1, 20, &env, &head, &hlen), 0);
	assert_int_equal(hlen, 20);
	assert_memory_equal(head, want, 20);
	assert_int_equal(env.size, wlen);
	free(head);
	spool_close(sp);
	event_base_free(base);
	free(dir);
}

/* A damaged body file is an error, never a short message. */
static void
test_body_damaged(void **state)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir(), path[512];
	const char *why = NULL, *p;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_stored env;
	size_t n;

	(void)state;
	assert_non_null(sp);
	assert_int_equal(store_with_body(sp, base, "BODY2").ok, 1);
	snprintf(path, sizeof(path), "%s/body/BODY2", dir);
	assert_int_equal(truncate(path, 100), 0);
	assert_null(spool_reader_open(spool_loop_view(sp), 1, &env, &why));
	assert_string_equal(why, "its body file is damaged");
	assert_int_equal(truncate(path, 0), 0);
	assert_null(spool_reader_open(spool_loop_view(sp), 1, &env, &why));
	(void)p;
	(void)n;
	spool_close(sp);
	event_base_free(base);
	free(dir);
}

/* Given up, purged or never acknowledged: the file goes. */
static void
test_body_removed(void **state)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir(), path[512];
	const char *why = NULL;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_body *b;
	struct spool_due due[2];
	struct spool_result r;
	struct outcome o = {0, 0};
	struct buf stage;
	size_t n;
	FILE *f;

	(void)state;
	assert_non_null(sp);
	/* aborted after a piece */
	b = spool_body_new(sp, "GONE");
	buf_init(&stage, PIECE + 2);
	assert_int_equal(put_piece(b, base, &stage, 'x'), 0);
	spool_body_abort(b);
	/* stored, delivered, purged */
	assert_int_equal(store_with_body(sp, base, "KEPT").ok, 1);
	assert_int_equal(store_with_body(sp, base, "PURGED").ok, 1);
	assert_int_equal(spool_due_new(sp, 0, due, 2, &n), 0);
	assert_int_equal(n, 2);
	memset(&r, 0, sizeof(r));
	r.rcpt_id = due[1].rcpt_id;
	r.message_id = due[1].message_id;
	r.queue_id = due[1].queue_id;
	r.status = SPOOL_RCPT_DELIVERED;
	r.error = "";
	r.next_hop = "test";
	assert_int_equal(spool_record(sp, &r, on_done, &o), 0);
	while (o.done < 1)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(spool_purge(sp, time(NULL) + 10), 0);
	spool_close(sp);
	assert_false(file_exists(dir, "GONE"));
	assert_false(file_exists(dir, "PURGED"));
	assert_true(file_exists(dir, "KEPT"));
	assert_int_equal(count_rows(dir, "select count(*) from messages"), 1);
	assert_int_equal(count_rows(dir, "select count(*) from contents"), 1);
	/* a file no row names (a crash before the commit) goes at open */
	snprintf(path, sizeof(path), "%s/body/ORPHAN", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("partial content", f);
	fclose(f);
	sp = spool_open(dir, base, &why);
	assert_non_null(sp);
	spool_close(sp);
	assert_false(file_exists(dir, "ORPHAN"));
	assert_true(file_exists(dir, "KEPT"));
	buf_free(&stage);
	event_base_free(base);
	free(dir);
}

/* A body write or sync that fails fails the message, leaving nothing. */
static void
run_body_fault(const char *kind)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir();
	const char *why = NULL;
	struct spool *sp;

	setenv("SLUICE_FAULT", kind, 1);
	sp = spool_open(dir, base, &why);
	unsetenv("SLUICE_FAULT");
	assert_non_null(sp);
	assert_int_equal(store_with_body(sp, base, "FAULT").ok, 0);
	spool_fault_arm("none");
	spool_close(sp);
	assert_false(file_exists(dir, "FAULT"));
	assert_int_equal(count_rows(dir, "select count(*) from messages"), 0);
	event_base_free(base);
	free(dir);
}

/* Run the loop until o has seen n callbacks. */
static void
wait_done(struct event_base *base, struct outcome *o, int n)
{
	while (o->done < n)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
record(struct spool *sp, struct event_base *base, const struct spool_due *d,
    int status, time_t next, int admin)
{
	struct outcome o = {0, 0};
	struct spool_result r;

	memset(&r, 0, sizeof(r));
	r.rcpt_id = d->rcpt_id;
	r.message_id = d->message_id;
	r.queue_id = d->queue_id;
	r.status = status;
	r.next_attempt = next;
	r.error = "451 later";
	r.next_hop = "Out";
	r.not_an_attempt = admin;
	assert_int_equal(spool_record(sp, &r, on_done, &o), 0);
	wait_done(base, &o, 1);
	assert_int_equal(o.ok, 1);
}

struct rows {
	int n;
	int64_t ids[8];
	time_t next[8];
	char msgid[64], subject[64];
};

static int
collect(void *arg, const struct spool_row *row)
{
	struct rows *r = arg;

	if (r->n < 8) {
		r->ids[r->n] = row->rcpt_id;
		r->next[r->n] = row->next_attempt;
	}
	r->n++;
	snprintf(r->msgid, sizeof(r->msgid), "%s", row->message_id);
	snprintf(r->subject, sizeof(r->subject), "%s", row->subject);
	return 0;
}

/*
 * The Message-ID and Subject are stored and read back (spool_info,
 * spool_foreach); a suspended recipient is on neither walk, a deferral
 * recorded meanwhile keeps it suspended, and resuming makes it due.
 */
static void
test_info_foreach_suspend(void **state)
{
	static const struct spool_rcpt rcpts[] = {
	    {.addr = "a@example.com", .orcpt = "", .notify = 0},
	    {.addr = "b@example.com", .orcpt = "", .notify = 0},
	    {.addr = "c@example.com", .orcpt = "", .notify = 0},
	};
	const char *body = "Message-ID: <m@x>\r\nSubject: s\r\n\r\nbody\r\n";
	struct event_base *base = event_base_new();
	char *dir = make_dir();
	const char *why = NULL;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_cursor start = {0, 0};
	struct spool_select sel = {.finished = 0};
	struct spool_due due[8];
	struct spool_info info;
	struct outcome o = {0, 0};
	struct spool_msg m;
	struct rows rows;
	size_t n = 0;

	(void)state;
	assert_non_null(sp);
	memset(&m, 0, sizeof(m));
	m.queue_id = "QINFO";
	m.sender = "s@example.org";
	m.client = "192.0.2.1:4000";
	m.auth_as = "Internal";
	m.message_id = "<m@x>";
	m.subject = "s";
	m.rcpts = rcpts;
	m.nrcpts = 3;
	m.data = body;
	m.len = strlen(body);
	assert_int_equal(spool_submit(sp, &m, on_done, &o), 0);
	wait_done(base, &o, 1);
	assert_int_equal(spool_due_new(sp, 0, due, 8, &n), 0);
	assert_int_equal(n, 3);

	assert_int_equal(spool_info(sp, due[0].message_id, &info), 0);
	assert_string_equal(info.queue_id, "QINFO");
	assert_string_equal(info.message_id, "<m@x>");
	assert_string_equal(info.subject, "s");
	assert_string_equal(info.client, "192.0.2.1:4000");
	assert_string_equal(info.auth_as, "Internal");
	assert_int_equal(info.nrcpts, 3);
	assert_int_equal(info.size, (int64_t)strlen(body));
	assert_int_equal(spool_info(sp, due[0].message_id + 1000, &info), -1);

	/* a suspended, b delivered, then a deferral of a while suspended */
	record(sp, base, &due[0], SPOOL_RCPT_PENDING, SPOOL_SUSPENDED, 1);
	record(sp, base, &due[1], SPOOL_RCPT_DELIVERED, 0, 0);
	record(sp, base, &due[0], SPOOL_RCPT_PENDING, time(NULL) - 1, 0);
	assert_int_equal(spool_due_new(sp, 0, due + 3, 5, &n), 0);
	assert_int_equal(n, 1); /* c only */
	assert_int_equal(due[3].rcpt_id, due[2].rcpt_id);
	assert_int_equal(
	    spool_due_retry(sp, time(NULL) + 1000, &start, due + 3, 5, &n), 0);
	assert_int_equal(n, 0); /* a is suspended still */

	memset(&rows, 0, sizeof(rows));
	assert_int_equal(spool_foreach(sp, &sel, collect, &rows), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.ids[0], due[0].rcpt_id);
	assert_int_equal(rows.next[0], SPOOL_SUSPENDED);
	assert_string_equal(rows.msgid, "<m@x>");
	assert_string_equal(rows.subject, "s");
	memset(&rows, 0, sizeof(rows));
	sel.finished = 1;
	assert_int_equal(spool_foreach(sp, &sel, collect, &rows), 0);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.ids[0], due[1].rcpt_id);
	memset(&rows, 0, sizeof(rows));
	sel.finished = 0;
	sel.queue_id = "OTHER";
	assert_int_equal(spool_foreach(sp, &sel, collect, &rows), 0);
	assert_int_equal(rows.n, 0);

	/* resumed: due now on the retry walk */
	record(sp, base, &due[0], SPOOL_RCPT_PENDING, 1, 1);
	assert_int_equal(
	    spool_due_retry(sp, time(NULL), &start, due + 3, 5, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(due[3].rcpt_id, due[0].rcpt_id);
	spool_close(sp);
	event_base_free(base);
	free(dir);
}

static void
test_body_fault(void **state)
{
	(void)state;
	run_body_fault("write");
	run_body_fault("fsync");
}

/*
 * The copies a transport rule split a message into are stored together,
 * with the rules' decisions per recipient; a copy that cannot be stored
 * takes the others with it.
 */
static void
test_rule_copies(void **state)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir();
	const char *why = NULL;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_rcpt r1 = {.addr = "a@fabrikam.com",
	    .orcpt = "",
	    .rule_tls = "Force TLS",
	    .rule_connector = "Secure",
	    .rule_route = "Route legal"};
	struct spool_rcpt r2 = {.addr = "b@other.org",
	    .orcpt = "",
	    .rule_reject = "550 5.7.1 blocked"};
	struct spool_msg copy = {.queue_id = "COPY2",
	    .sender = "s@x.org",
	    .rcpts = &r2,
	    .nrcpts = 1,
	    .data = "Subject: b\r\n\r\nb\r\n",
	    .len = 17};
	struct spool_msg msg = {.queue_id = "COPY1",
	    .sender = "s@x.org",
	    .rcpts = &r1,
	    .nrcpts = 1,
	    .data = "Subject: a\r\nX-T: 1\r\n\r\na\r\n",
	    .len = 25,
	    .next = &copy};
	struct spool_due due[4];
	struct outcome o = {0, 0};
	size_t n = 0;

	(void)state;
	assert_non_null(sp);
	assert_int_equal(spool_submit(sp, &msg, on_done, &o), 0);
	while (o.done < 1)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(o.ok, 1); /* one callback for both */
	assert_int_equal(spool_due_new(sp, 0, due, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(due[0].queue_id, "COPY1");
	assert_string_equal(due[0].rule_tls, "Force TLS");
	assert_string_equal(due[0].rule_connector, "Secure");
	assert_string_equal(due[0].rule_route, "Route legal");
	assert_string_equal(due[0].rule_reject, "");
	assert_string_equal(due[1].queue_id, "COPY2");
	assert_string_equal(due[1].rule_reject, "550 5.7.1 blocked");
	assert_string_equal(due[1].rule_tls, "");
	/* a copy with an id already stored fails, and the whole group too */
	copy.queue_id = "COPY1";
	msg.queue_id = "COPY3";
	assert_int_equal(spool_submit(sp, &msg, on_done, &o), 0);
	while (o.done < 2)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(o.ok, 1);
	spool_close(sp);
	assert_int_equal(count_rows(dir, "select count(*) from messages"), 2);
	assert_int_equal(
	    count_rows(dir, "select length(c.data) from contents c join "
	                    "messages m on m.id = c.message_id where "
	                    "m.queue_id = 'COPY1'"),
	    25);
	event_base_free(base);
	free(dir);
}

/*
 * Queue databases of every earlier schema version, as they were made:
 * the first tables, then what each version added (spool.c,
 * SPOOL_SCHEMA_VERSION).  "3+sts" is a development build's: the MTA-STS
 * cache already there at version 3, before the rules' columns.
 */
#define OLD_MESSAGES                                                           \
	"CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"         \
	" queue_id TEXT NOT NULL UNIQUE, received INTEGER NOT NULL,"           \
	" sender TEXT NOT NULL, envid TEXT NOT NULL DEFAULT '',"               \
	" ret INTEGER NOT NULL DEFAULT 0, body_type INTEGER NOT NULL"          \
	" DEFAULT 0, smtputf8 INTEGER NOT NULL DEFAULT 0, connector"           \
	" TEXT NOT NULL DEFAULT '', client TEXT NOT NULL DEFAULT '',"          \
	" helo TEXT NOT NULL DEFAULT '', tls TEXT NOT NULL DEFAULT '',"        \
	" auth_as TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL,"            \
	" checksum TEXT NOT NULL, body BLOB NOT NULL);"
#define OLD_RECIPIENTS                                                         \
	"CREATE TABLE recipients (id INTEGER PRIMARY KEY, message_id"          \
	" INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"         \
	" rcpt_index INTEGER NOT NULL, addr TEXT NOT NULL, orcpt TEXT"         \
	" NOT NULL DEFAULT '', notify INTEGER NOT NULL DEFAULT 0,"             \
	" status INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL"        \
	" DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,"                 \
	" last_error TEXT NOT NULL DEFAULT '', next_hop TEXT NOT NULL"         \
	" DEFAULT '', updated INTEGER NOT NULL DEFAULT 0);"
#define OLD_ROWS                                                               \
	"INSERT INTO messages (queue_id, received, sender, size,"              \
	" checksum, body) VALUES ('OLD', 1, 's@x.org', 1, 'x', 'b');"          \
	"INSERT INTO recipients (message_id, rcpt_index, addr)"                \
	" VALUES (1, 0, 'r@y.org');"
#define ADD_V2                                                                 \
	"ALTER TABLE recipients ADD COLUMN delay_notified INTEGER NOT NULL"    \
	" DEFAULT 0;"
#define ADD_V3                                                                 \
	"ALTER TABLE messages ADD COLUMN message_id TEXT NOT NULL DEFAULT '';" \
	"ALTER TABLE messages ADD COLUMN subject TEXT NOT NULL DEFAULT '';"
#define ADD_V4                                                                 \
	"ALTER TABLE recipients ADD COLUMN rule_tls TEXT NOT NULL DEFAULT '';" \
	"ALTER TABLE recipients ADD COLUMN rule_connector TEXT NOT NULL"       \
	" DEFAULT '';"                                                         \
	"ALTER TABLE recipients ADD COLUMN rule_route TEXT NOT NULL"           \
	" DEFAULT '';"                                                         \
	"ALTER TABLE recipients ADD COLUMN rule_reject TEXT NOT NULL"          \
	" DEFAULT '';"
#define ADD_V6                                                                 \
	"ALTER TABLE messages ADD COLUMN body_file TEXT NOT NULL DEFAULT '';"  \
	"CREATE TABLE contents (message_id INTEGER PRIMARY KEY"                \
	" REFERENCES messages(id) ON DELETE CASCADE, data BLOB NOT NULL);"
#define ADD_V7                                                                 \
	"ALTER TABLE messages ADD COLUMN requiretls INTEGER NOT NULL"          \
	" DEFAULT 0;"                                                          \
	"ALTER TABLE messages ADD COLUMN tls_optional INTEGER NOT NULL"        \
	" DEFAULT 0;"
#define ADD_STS                                                                \
	"CREATE TABLE mta_sts (domain TEXT PRIMARY KEY, id TEXT NOT NULL,"     \
	" policy BLOB NOT NULL, fetched INTEGER NOT NULL,"                     \
	" expires INTEGER NOT NULL);"                                          \
	"INSERT INTO mta_sts VALUES ('y.org', 'id1', 'version: STSv1', 1,"     \
	" 2);"

static int
count_sts(void *arg, const struct spool_sts_row *row)
{
	int *n = arg;

	assert_string_equal(row->domain, "y.org");
	assert_string_equal(row->id, "id1");
	(*n)++;
	return 0;
}

/* n messages of content body in one batch, each with its own id. */
static struct outcome
submit_log(struct spool *sp, struct event_base *base, int n, const char *body)
{
	static const struct spool_rcpt rcpt = {.addr = "a@example.com"};
	static int seq;
	struct outcome o = {0, 0};
	char ids[BATCH][32];

	for (int i = 0; i < n; i++) {
		struct spool_msg m;

		memset(&m, 0, sizeof(m));
		snprintf(ids[i], sizeof(ids[i]), "L%d", seq++);
		m.queue_id = ids[i];
		m.sender = "sender@example.org";
		m.rcpts = &rcpt;
		m.nrcpts = 1;
		m.data = body;
		m.len = strlen(body);
		assert_int_equal(spool_submit(sp, &m, on_done, &o), 0);
	}
	wait_done(base, &o, n);
	return o;
}

/* A message's content read back whole through a reader; 0 or -1. */
static int
read_whole(struct spool *sp, int64_t id, char *out, size_t max, size_t *len)
{
	struct spool_stored env;
	const char *why, *p;
	struct spool_reader *r =
	    spool_reader_open(spool_loop_view(sp), id, &env, &why);
	size_t n;
	int rc;

	*len = 0;
	if (r == NULL)
		return -1;
	while ((rc = spool_reader_next(r, &p, &n)) > 0) {
		assert_true(*len + n <= max);
		memcpy(out + *len, p, n);
		*len += n;
	}
	spool_reader_close(r);
	return rc;
}

/*
 * Medium content goes to the content log (a segment, one per start, its
 * rows naming segment and offset), small content stays inline; both read
 * back whole; a truncated or overwritten range is refused; a failed log
 * write refuses the batch and stores nothing; at the next start a new
 * segment, and the old one removed once no row names it.
 */
static void
test_log_content(void **state)
{
	struct event_base *base = event_base_new();
	char *dir = make_dir(), path[512], *big = malloc(SPOOL_LOG_MIN + 1),
	     *got = malloc(SPOOL_LOG_MIN + 1);
	const char *why = NULL;
	struct spool *sp = spool_open(dir, base, &why);
	struct spool_stored env;
	size_t n;
	FILE *f;
	int cur;

	(void)state;
	assert_non_null(sp);
	for (size_t i = 0; i < SPOOL_LOG_MIN; i++)
		big[i] = (char)('a' + i % 26);
	big[SPOOL_LOG_MIN] = '\0';
	/* three at SPOOL_LOG_MIN, in one batch: one segment, in order */
	assert_int_equal(submit_log(sp, base, 3, big).ok, 3);
	assert_int_equal(submit_log(sp, base, 1, "small\r\n").ok, 1);
	assert_int_equal(count_rows(dir, "select count(*) from messages "
	                                 "where log_seg = 1"),
	    3);
	assert_int_equal(count_rows(dir, "select max(log_off) from messages"),
	    2 * SPOOL_LOG_MIN);
	assert_int_equal(count_rows(dir, "select count(*) from contents"), 1);
	assert_int_equal(read_whole(sp, 2, got, SPOOL_LOG_MIN + 1, &n), 0);
	assert_int_equal(n, SPOOL_LOG_MIN);
	assert_memory_equal(got, big, n);
	assert_int_equal(read_whole(sp, 4, got, SPOOL_LOG_MIN + 1, &n), 0);
	assert_int_equal(n, 7);
	/* overwritten: the checksum tells */
	snprintf(path, sizeof(path), "%s/log/00000001", dir);
	assert_non_null(f = fopen(path, "r+b"));
	assert_int_equal(fseek(f, SPOOL_LOG_MIN + 100, SEEK_SET), 0);
	assert_int_equal(fputc('!', f), '!');
	fclose(f);
	assert_null(spool_reader_open(spool_loop_view(sp), 2, &env, &why));
	assert_string_equal(why, "its content in the log is damaged");
	/* truncated: the length tells */
	assert_int_equal(truncate(path, 2 * SPOOL_LOG_MIN + 10), 0);
	assert_null(spool_reader_open(spool_loop_view(sp), 3, &env, &why));
	assert_string_equal(why, "its content in the log is damaged");
	assert_int_equal(read_whole(sp, 1, got, SPOOL_LOG_MIN + 1, &n), 0);
	/* a failed write of the log: the batch is refused, nothing stored */
	spool_fault_arm("write");
	assert_int_equal(submit_log(sp, base, 2, big).ok, 0);
	spool_fault_arm("none");
	assert_int_equal(count_rows(dir, "select count(*) from messages"), 4);
	/* and the next content goes to a new segment */
	assert_int_equal(submit_log(sp, base, 1, big).ok, 1);
	/* (2 or 3: the two may have failed in two batches; a segment no
	 * row names is removed at once) */
	cur = count_rows(dir, "select max(log_seg) from messages");
	assert_true(cur == 2 || cur == 3);
	spool_close(sp);
	/* a new start: a new segment; every segment a row names is kept */
	sp = spool_open(dir, base, &why);
	assert_non_null(sp);
	assert_int_equal(submit_log(sp, base, 1, big).ok, 1);
	assert_int_equal(
	    count_rows(dir, "select max(log_seg) from messages"), cur + 1);
	assert_int_equal(access(path, F_OK), 0);
	spool_close(sp);
	event_base_free(base);
	free(big);
	free(got);
	free(dir);
}

/* Each earlier version is brought up to the current one, data kept. */
static void
test_migrate_every_version(void **state)
{
	static const struct {
		const char *name, *sql;
		int sts_rows; /* MTA-STS cache rows it holds */
	} t[] = {
	    {"1", OLD_MESSAGES OLD_RECIPIENTS OLD_ROWS "PRAGMA user_version=1;",
	        0},
	    {"2",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 OLD_ROWS
	        "PRAGMA user_version=2;",
	        0},
	    {"3",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 ADD_V3 OLD_ROWS
	        "PRAGMA user_version=3;",
	        0},
	    {"3+sts",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 ADD_V3 ADD_STS OLD_ROWS
	        "PRAGMA user_version=3;",
	        1},
	    {"4",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 ADD_V3 ADD_V4 OLD_ROWS
	        "PRAGMA user_version=4;",
	        0},
	    {"5",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 ADD_V3 ADD_V4 ADD_STS
	            OLD_ROWS "PRAGMA user_version=5;",
	        1},
	    {"6",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 ADD_V3 ADD_V4 ADD_STS ADD_V6
	            OLD_ROWS "PRAGMA user_version=6;",
	        1},
	    {"7",
	        OLD_MESSAGES OLD_RECIPIENTS ADD_V2 ADD_V3 ADD_V4 ADD_STS ADD_V6
	            ADD_V7 OLD_ROWS "PRAGMA user_version=7;",
	        1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct event_base *base = event_base_new();
		char *dir = make_dir(), path[512];
		const char *why = NULL;
		struct spool *sp;
		struct spool_due due[2];
		struct spool_stored env;
		char *head;
		size_t n = 0, hlen;
		int sts = 0;
		sqlite3 *db;

		print_message("version %s\n", t[i].name);
		snprintf(path, sizeof(path), "%s/queue.db", dir);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(
		    sqlite3_exec(db, t[i].sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
		/* twice: a migrated database opens again unchanged */
		for (int round = 0; round < 2; round++) {
			sp = spool_open(dir, base, &why);
			assert_non_null(sp);
			n = 0;
			assert_int_equal(spool_due_new(sp, 0, due, 2, &n), 0);
			assert_int_equal(n, 1);
			assert_string_equal(due[0].queue_id, "OLD");
			assert_string_equal(due[0].addr, "r@y.org");
			assert_string_equal(due[0].rule_tls, "");
			assert_string_equal(due[0].rule_connector, "");
			assert_string_equal(due[0].rule_route, "");
			assert_string_equal(due[0].rule_reject, "");
			sts = 0;
			assert_int_equal(
			    spool_sts_load(sp, count_sts, &sts), 0);
			assert_int_equal(sts, t[i].sts_rows);
			/* content kept in messages.body, no body file */
			assert_int_equal(spool_load_head(sp, due[0].message_id,
			                     64, &env, &head, &hlen),
			    0);
			assert_int_equal(hlen, 1);
			assert_memory_equal(head, "b", 1);
			free(head);
			spool_close(sp);
		}
		assert_int_equal(count_rows(dir, "pragma user_version"), 8);
		/* version 8: the content log; older content is in a row */
		assert_int_equal(
		    count_rows(dir, "select count(*) from messages "
		                    "where log_seg = 0 and "
		                    "log_off = 0"),
		    1);
		/* version 7: RFC 8689's flags, off for older messages */
		assert_int_equal(
		    count_rows(dir, "select count(*) from messages "
		                    "where requiretls = 0 and "
		                    "tls_optional = 0"),
		    1);
		assert_int_equal(
		    count_rows(dir, "select count(*) from messages "
		                    "where message_id = '' and "
		                    "subject = ''"),
		    1);
		assert_int_equal(count_rows(dir, "select count(*) from "
		                                 "recipients where "
		                                 "delay_notified = 0"),
		    1);
		assert_int_equal(
		    count_rows(dir, "select count(*) from mta_sts"),
		    t[i].sts_rows);
		event_base_free(base);
		free(dir);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_and_group_commit),
	    cmocka_unit_test(test_fsync_failure),
	    cmocka_unit_test(test_write_failure),
	    cmocka_unit_test(test_due_record_purge),
	    cmocka_unit_test(test_body_file),
	    cmocka_unit_test(test_log_content),
	    cmocka_unit_test(test_body_damaged),
	    cmocka_unit_test(test_body_removed),
	    cmocka_unit_test(test_body_fault),
	    cmocka_unit_test(test_info_foreach_suspend),
	    cmocka_unit_test(test_rule_copies),
	    cmocka_unit_test(test_migrate_every_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
