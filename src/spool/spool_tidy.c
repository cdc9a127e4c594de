/*
 * spool_tidy.c - giving the queue's disk space back (issue 19).
 *
 * What takes space: the rows of messages kept for SafetyNetHoldTime after
 * they are finished (purged by spool.c, a bounded batch per transaction,
 * their body files removed after the commit), the pages those rows
 * leave free inside queue.db, and the WAL, which SQLite never shrinks by
 * itself: it grows to the largest run of writes between two checkpoints
 * that could reset it, and stays that size.
 *
 * What is done, and when:
 *
 * - queue.db uses incremental vacuum (PRAGMA auto_vacuum=INCREMENTAL):
 *   free pages can be handed back to the filesystem without rewriting
 *   the database.  A new database is made so; an existing one without it
 *   is converted with one VACUUM at open when it is at most
 *   SPOOL_CONVERT_MAX (the time and the temporary space a VACUUM takes
 *   grow with it); a larger one is left as it is, with a warning saying
 *   how to convert it while sluiced is stopped.  Its free pages are still
 *   reused by new mail, so it grows no further than its largest fill.
 * - The WAL is kept at most SPOOL_WAL_KEEP when it is reset (PRAGMA
 *   journal_size_limit), which bounds it under steady load.
 * - At a quiet moment (the committer has had nothing to write for
 *   SPOOL_QUIET_SECONDS after writing something), spool_tidy() frees the
 *   free pages beyond SPOOL_FREE_KEEP (kept for the next messages, so a
 *   steady queue does not shrink and grow the file over and over), in
 *   transactions of SPOOL_VACUUM_STEP pages that stop as soon as new work
 *   is waiting, then checkpoints the WAL into queue.db and truncates it
 *   to nothing (PRAGMA wal_checkpoint(TRUNCATE)).  A reader in the middle
 *   of a query makes the checkpoint give up after SPOOL_TIDY_BUSY_MS
 *   rather than hold the committer; it is tried again a quiet period
 *   later.
 *
 * Everything here runs on the committer thread, with the writing
 * connection, between batches: it is the one writer, so nothing else
 * waits for the database meanwhile except new mail, which the vacuum
 * steps give way to.
 */
#include <stdio.h>

#include <sqlite3.h>

#include "spool/spool_int.h"
#include "util/log.h"

/* Free pages kept for the next messages (4 KB pages: 4 MB). */
#define SPOOL_FREE_KEEP 1024
/* Pages handed back per transaction: bounds what new mail waits for. */
#define SPOOL_VACUUM_STEP 2048
/* The WAL's size after a reset, at most. */
#define SPOOL_WAL_KEEP (4 * 1024 * 1024)
/* An old database is converted to incremental vacuum up to this size. */
#define SPOOL_CONVERT_MAX ((sqlite3_int64)256 * 1024 * 1024)
/* How long the quiet-time checkpoint waits for readers. */
#define SPOOL_TIDY_BUSY_MS 100
/* The committer's normal wait for a lock (spool.c sets the same). */
#define SPOOL_BUSY_MS 10000

/* A PRAGMA's integer value, or -1. */
static sqlite3_int64
spool_tidy_pragma(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	sqlite3_int64 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
spool_tidy_open(sqlite3 *db, const char *path)
{
	sqlite3_int64 mode = spool_tidy_pragma(db, "PRAGMA auto_vacuum"),
	              tables = spool_tidy_pragma(
	                  db, "SELECT count(*) FROM sqlite_master"),
	              size;
	char sql[64];

	if (mode < 0 || tables < 0)
		return -1;
	if (tables == 0) {
		/* a new database: before its first table, or never */
		if (spool_exec(db, "PRAGMA auto_vacuum=INCREMENTAL") < 0)
			return -1;
	} else if (mode != 2) {
		size = spool_tidy_pragma(db, "PRAGMA page_count") *
		       spool_tidy_pragma(db, "PRAGMA page_size");
		if (size > SPOOL_CONVERT_MAX) {
			log_warn("queue: %s (%lld MB) keeps the space of "
			         "purged messages: stop sluiced and run "
			         "sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; "
			         "VACUUM' to let it give space back",
			    path, (long long)(size >> 20), path);
		} else if (spool_exec(db, "PRAGMA auto_vacuum=INCREMENTAL") <
		               0 ||
		           spool_exec(db, "VACUUM") < 0) {
			return -1;
		} else {
			log_info("queue: %s (%lld MB) now gives the space of "
			         "purged messages back (incremental vacuum)",
			    path, (long long)(size >> 20));
		}
	}
	snprintf(
	    sql, sizeof(sql), "PRAGMA journal_size_limit=%d", SPOOL_WAL_KEEP);
	return spool_exec(db, sql);
}

int
spool_tidy(sqlite3 *db, int (*busy)(void *), void *arg)
{
	sqlite3_int64 free_pages;
	int log_frames = 0, done = 0, rc;
	char sql[64];

	if (spool_tidy_pragma(db, "PRAGMA auto_vacuum") == 2) {
		while ((free_pages = spool_tidy_pragma(
		            db, "PRAGMA freelist_count")) > SPOOL_FREE_KEEP) {
			sqlite3_int64 n = free_pages - SPOOL_FREE_KEEP;

			if (busy(arg))
				return 1; /* new mail first; later again */
			snprintf(sql, sizeof(sql),
			    "PRAGMA incremental_vacuum(%lld)",
			    (long long)(n < SPOOL_VACUUM_STEP
			                    ? n
			                    : SPOOL_VACUUM_STEP));
			if (spool_exec(db, sql) < 0)
				return -1;
		}
	}
	if (busy(arg))
		return 1;
	sqlite3_busy_timeout(db, SPOOL_TIDY_BUSY_MS);
	rc = sqlite3_wal_checkpoint_v2(
	    db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames, &done);
	sqlite3_busy_timeout(db, SPOOL_BUSY_MS);
	if (rc != SQLITE_OK) {
		if (rc != SQLITE_BUSY)
			log_warn("queue: checkpoint: %s", sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}
