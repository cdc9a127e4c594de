/*
 * spool_sts.c - the MTA-STS policy cache, a table of the queue database
 * (see spool_sts.h).
 *
 * Where it sits: src/sts/sts.c keeps the policies it uses in memory and
 * writes each one it fetches here, so that a restart neither forgets an
 * "enforce" policy (which an attacker who blocks the policy server could
 * otherwise shed by waiting for a restart) nor fetches every policy again.
 * Writes go through the spool's committer (spool_write), so the database
 * keeps one writer; reads use the loop's read-only connection, or a
 * read-only connection of their own for sluicectl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "spool/spool_sts.h"

const char spool_sts_schema[] = "CREATE TABLE IF NOT EXISTS mta_sts ("
                                " domain TEXT PRIMARY KEY,"
                                " id TEXT NOT NULL,"
                                " policy BLOB NOT NULL,"
                                " fetched INTEGER NOT NULL,"
                                " expires INTEGER NOT NULL);";

/* A row copied for the committer thread. */
struct spool_sts_item {
	char *domain, *id, *policy;
	size_t policy_len;
	time_t fetched, expires;
};

static void
spool_sts_item_free(void *arg)
{
	struct spool_sts_item *it = arg;

	free(it->domain);
	free(it->id);
	free(it->policy);
	free(it);
}

static int
spool_sts_write(sqlite3 *db, void *arg)
{
	struct spool_sts_item *it = arg;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        "INSERT OR REPLACE INTO mta_sts (domain, id, policy, fetched,"
	        " expires) VALUES (?, ?, ?, ?, ?)",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, it->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, it->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 3, it->policy, it->policy_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)it->fetched);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)it->expires);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
spool_sts_put(struct spool *sp, const struct spool_sts_row *row,
    spool_done_fn done, void *arg)
{
	struct spool_sts_item *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -1;
	it->domain = strdup(row->domain);
	it->id = strdup(row->id);
	it->policy = malloc(row->policy_len ? row->policy_len : 1);
	if (it->domain == NULL || it->id == NULL || it->policy == NULL) {
		spool_sts_item_free(it);
		return -1;
	}
	memcpy(it->policy, row->policy, row->policy_len);
	it->policy_len = row->policy_len;
	it->fetched = row->fetched;
	it->expires = row->expires;
	if (spool_write(
	        sp, spool_sts_write, it, spool_sts_item_free, done, arg) < 0) {
		spool_sts_item_free(it);
		return -1;
	}
	return 0;
}

struct spool_sts_walk {
	const char *domain; /* NULL: every row */
	int (*fn)(void *, const struct spool_sts_row *);
	void *arg;
};

static int
spool_sts_rows(sqlite3 *db, void *arg)
{
	struct spool_sts_walk *w = arg;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	        w->domain != NULL
	            ? "SELECT domain, id, policy, fetched, expires FROM"
	              " mta_sts WHERE domain = ?1"
	            : "SELECT domain, id, policy, fetched, expires FROM"
	              " mta_sts ORDER BY domain",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (w->domain != NULL)
		sqlite3_bind_text(st, 1, w->domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct spool_sts_row row;

		row.domain = (const char *)sqlite3_column_text(st, 0);
		row.id = (const char *)sqlite3_column_text(st, 1);
		row.policy = sqlite3_column_blob(st, 2);
		row.policy_len = (size_t)sqlite3_column_bytes(st, 2);
		row.fetched = (time_t)sqlite3_column_int64(st, 3);
		row.expires = (time_t)sqlite3_column_int64(st, 4);
		if (row.domain == NULL || row.id == NULL)
			continue;
		if (row.policy == NULL)
			row.policy = "";
		if (w->fn(w->arg, &row) != 0)
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
spool_sts_load(struct spool *sp,
    int (*fn)(void *, const struct spool_sts_row *), void *arg)
{
	struct spool_sts_walk w = {NULL, fn, arg};

	return spool_read(sp, spool_sts_rows, &w);
}

int
spool_sts_read_dir(const char *queue_dir, const char *domain,
    int (*fn)(void *, const struct spool_sts_row *), void *arg,
    const char **why)
{
	struct spool_sts_walk w = {domain, fn, arg};
	char path[4200];
	sqlite3 *db = NULL;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/queue.db", queue_dir) >=
	    sizeof(path)) {
		*why = "queue directory path too long";
		return -1;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		*why = "cannot open the queue database";
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	if ((rc = spool_sts_rows(db, &w)) < 0)
		*why = sqlite3_errmsg(db)[0] != '\0' &&
		               strstr(sqlite3_errmsg(db), "no such table")
		           ? "no MTA-STS cache yet (the daemon has not run "
		             "since it was added)"
		           : "cannot read the MTA-STS cache";
	sqlite3_close(db);
	return rc;
}
