/*
 * tlsrpt_store.c - recording sessions for TLS reports and reading them
 * back as reports (see tlsrpt_store.h).
 *
 * Where it sits: the delivery queues call tlsrpt_store_session() for
 * every outbound session of a DNS-routed queue (at its TLS decision, as
 * for the posture); tlsrpt_send.c reads the previous day's reports after
 * a flush, `sluicectl tls-report` any day's.
 *
 * As the posture, sessions are aggregated in memory (one count per
 * distinct combination of day, policy and failure details; a success
 * keeps no details) and written every TLSRPT_FLUSH_SECONDS through the
 * spool's committer, so recording costs a hash probe on the loop and no
 * fsync of its own.  Reports are read only after a flush has completed
 * (tlsrpt_store_flush's callback): the committer writes in order, so the
 * database then holds every session counted before the flush, and a
 * report never counts one twice or misses one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "tlsrpt/tlsrpt_store.h"
#include "util/fnv.h"
#include "util/log.h"

/* About one entry per bucket at TLSRPT_ENTRIES_MAX: a miss walks its chain. */
#define TLSRPT_BUCKETS 8192
/* The fields of an aggregate's key, in the order of the table's columns. */
#define TLSRPT_FIELDS 11
#define TLSRPT_FIELD_MAX 255
/* Separates the fields of a key; never inside one (cleaned away). */
#define TLSRPT_SEP '\x1f'

static const char tlsrpt_schema[] =
    "CREATE TABLE IF NOT EXISTS tlsrpt_sessions ("
    " day TEXT NOT NULL, domain TEXT NOT NULL, policy_type TEXT NOT NULL,"
    " policy_string TEXT NOT NULL, mx_pattern TEXT NOT NULL,"
    " result TEXT NOT NULL, sending_ip TEXT NOT NULL,"
    " mx_host TEXT NOT NULL, mx_helo TEXT NOT NULL,"
    " receiving_ip TEXT NOT NULL, reason TEXT NOT NULL,"
    " sessions INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, policy_type, policy_string, mx_pattern,"
    " result, sending_ip, mx_host, mx_helo, receiving_ip, reason))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS tlsrpt_sent ("
    " day TEXT NOT NULL, domain TEXT NOT NULL, rua TEXT NOT NULL,"
    " report_id TEXT NOT NULL, state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '', updated INTEGER NOT NULL,"
    " queue_id TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (day, domain, rua)) WITHOUT ROWID;";

struct tlsrpt_entry {
	struct tlsrpt_entry *next;
	uint64_t sessions;
	char key[]; /* the fields joined by TLSRPT_SEP */
};

struct tlsrpt_batch {
	struct tlsrpt_entry *list;
	char purge_before[11]; /* "" or delete days before this one */
	/* an administrator's record instead (tlsrpt_store_mark) */
	int mark;
	char *day, *domain, *rua, *report_id, *error, *queue_id;
	enum tlsrpt_state state;
	time_t now;
	spool_done_fn done;
	void *arg;
};

struct tlsrpt_store {
	struct spool *spool;
	struct event *timer;
	struct tlsrpt_entry *buckets[TLSRPT_BUCKETS];
	size_t nentries;
	char purged[11];
	unsigned long long dropped;
};

void
tlsrpt_day(time_t t, char out[11])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Append one field, cut and cleaned (no separator, no control). */
static size_t
tlsrpt_field(char *key, size_t n, size_t len, const char *v)
{
	size_t k = 0;

	if (n > 0 && n + 1 < len)
		key[n++] = TLSRPT_SEP;
	for (; v != NULL && v[k] != '\0' && k < TLSRPT_FIELD_MAX && n + 1 < len;
	     k++) {
		unsigned char ch = (unsigned char)v[k];

		/* \n joins the lines of policy strings: kept */
		key[n++] =
		    (ch < 0x20 && ch != '\n') || ch == 0x7f ? '?' : (char)ch;
	}
	key[n] = '\0';
	return n;
}

static void
tlsrpt_entries_free(struct tlsrpt_entry *e)
{
	struct tlsrpt_entry *next;

	for (; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
}

static void
tlsrpt_batch_free(struct tlsrpt_batch *b)
{
	tlsrpt_entries_free(b->list);
	free(b->day);
	free(b->domain);
	free(b->rua);
	free(b->report_id);
	free(b->error);
	free(b->queue_id);
	free(b);
}

void
tlsrpt_store_session(struct tlsrpt_store *st, const struct tlsrpt_session *s)
{
	char key[TLSRPT_FIELDS * (TLSRPT_FIELD_MAX + 1) + 1], day[11];
	int ok = s->result == TLS_RESULT_OK;
	const char *fields[TLSRPT_FIELDS];
	struct tlsrpt_entry *e;
	size_t n = 0, b;

	if (st == NULL || s->domain == NULL || s->domain[0] == '\0')
		return;
	tlsrpt_day(time(NULL), day);
	fields[0] = day;
	fields[1] = s->domain;
	fields[2] = s->policy_type;
	fields[3] = s->policy_strings;
	fields[4] = s->mx_patterns;
	fields[5] = tls_result_name(s->result);
	/* a success is only counted: its details would be a row each */
	fields[6] = ok ? "" : s->sending_ip;
	fields[7] = ok ? "" : s->mx_host;
	fields[8] = ok ? "" : s->mx_helo;
	fields[9] = ok ? "" : s->receiving_ip;
	fields[10] = ok ? "" : s->reason;
	for (int i = 0; i < TLSRPT_FIELDS; i++)
		n = tlsrpt_field(key, i == 0 ? 0 : n, sizeof(key), fields[i]);
	b = fnv_32(FNV_32_INIT, key, n) % TLSRPT_BUCKETS;
	for (e = st->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0) {
			e->sessions++;
			return;
		}
	if (st->nentries >= TLSRPT_ENTRIES_MAX) {
		tlsrpt_store_flush(st, NULL, NULL);
		if (st->nentries >= TLSRPT_ENTRIES_MAX) {
			st->dropped++;
			return;
		}
	}
	if ((e = malloc(sizeof(*e) + n + 1)) == NULL) {
		st->dropped++;
		return;
	}
	memcpy(e->key, key, n + 1);
	e->sessions = 1;
	e->next = st->buckets[b];
	st->buckets[b] = e;
	st->nentries++;
}

/* --- writing, on the committer thread ------------------------------------ */

static int
tlsrpt_write(struct sqlite3 *db, void *arg)
{
	struct tlsrpt_batch *b = arg;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_exec(db, tlsrpt_schema, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (b->mark) {
		if (sqlite3_prepare_v2(db,
		        "INSERT INTO tlsrpt_sent (day, domain, rua, report_id,"
		        " state, attempts, last_error, updated, queue_id)"
		        " VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7, ?9)"
		        " ON CONFLICT DO UPDATE SET state = ?5,"
		        " attempts = attempts + ?8, last_error = ?6,"
		        " updated = ?7, queue_id = ?9",
		        -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_text(st, 1, b->day, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, b->domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, b->rua, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, b->report_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, (int)b->state);
		sqlite3_bind_text(st, 6, b->error, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)b->now);
		/* queued is no attempt yet: its outcome is */
		sqlite3_bind_int(st, 8, b->state == TLSRPT_QUEUED ? 0 : 1);
		sqlite3_bind_text(st, 9, b->queue_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		sqlite3_finalize(st);
		return rc;
	}
	if (b->purge_before[0] != '\0') {
		char sql[200];

		snprintf(sql, sizeof(sql),
		    "DELETE FROM tlsrpt_sessions WHERE day < '%s';"
		    "DELETE FROM tlsrpt_sent WHERE day < '%s'",
		    b->purge_before, b->purge_before);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			return -1;
	}
	if (b->list == NULL)
		return 0;
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO tlsrpt_sessions (day, domain, policy_type,"
	        " policy_string, mx_pattern, result, sending_ip, mx_host,"
	        " mx_helo, receiving_ip, reason, sessions)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
	        " ON CONFLICT DO UPDATE SET sessions = sessions + ?12",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (struct tlsrpt_entry *e = b->list; e != NULL; e = e->next) {
		const char *p = e->key;

		sqlite3_reset(st);
		for (int i = 0; i < TLSRPT_FIELDS; i++) {
			const char *end = strchr(p, TLSRPT_SEP);
			size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

			sqlite3_bind_text(st, i + 1, p, (int)n, SQLITE_STATIC);
			p += n + (end != NULL);
		}
		sqlite3_bind_int64(st, 12, (sqlite3_int64)e->sessions);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* --- on the event loop -----------------------------------------------------
 */

static void
tlsrpt_written(void *arg, int ok, const char *queue_id)
{
	struct tlsrpt_batch *b = arg;

	if (!ok && !b->mark)
		log_warn("TLS reports: a minute of session counts could not "
		         "be stored in the queue database");
	if (b->done != NULL)
		b->done(b->arg, ok, queue_id);
	tlsrpt_batch_free(b);
}

int
tlsrpt_store_flush(struct tlsrpt_store *st, spool_done_fn done, void *arg)
{
	struct tlsrpt_batch *b;
	char today[11], purge[11];

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -1;
	for (size_t i = 0; i < TLSRPT_BUCKETS; i++) {
		struct tlsrpt_entry *e, *next;

		for (e = st->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b->list;
			b->list = e;
		}
		st->buckets[i] = NULL;
	}
	st->nentries = 0;
	tlsrpt_day(time(NULL), today);
	if (strcmp(st->purged, today) != 0) {
		tlsrpt_day(
		    time(NULL) - (time_t)TLSRPT_KEEP_DAYS * 86400, purge);
		memcpy(b->purge_before, purge, sizeof(purge));
		memcpy(st->purged, today, sizeof(today));
	}
	b->done = done;
	b->arg = arg;
	if (spool_write(st->spool, tlsrpt_write, b, NULL, tlsrpt_written, b) <
	    0) {
		tlsrpt_batch_free(b);
		return -1;
	}
	return 0;
}

int
tlsrpt_store_mark(struct tlsrpt_store *st, const char *day, const char *domain,
    const char *rua, const char *report_id, enum tlsrpt_state state,
    const char *error, const char *queue_id, spool_done_fn done, void *arg)
{
	struct tlsrpt_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -1;
	b->mark = 1;
	b->state = state;
	b->now = time(NULL);
	b->day = strdup(day);
	b->domain = strdup(domain);
	b->rua = strdup(rua);
	b->report_id = strdup(report_id);
	b->error = strdup(error != NULL ? error : "");
	b->queue_id = strdup(queue_id != NULL ? queue_id : "");
	b->done = done;
	b->arg = arg;
	if (b->day == NULL || b->domain == NULL || b->rua == NULL ||
	    b->report_id == NULL || b->error == NULL || b->queue_id == NULL ||
	    spool_write(st->spool, tlsrpt_write, b, NULL, tlsrpt_written, b) <
	        0) {
		tlsrpt_batch_free(b);
		return -1;
	}
	return 0;
}

static void
tlsrpt_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tlsrpt_store *st = arg;

	(void)fd;
	(void)what;
	if (st->dropped > 0) {
		log_warn("TLS reports: %llu sessions not counted (memory)",
		    st->dropped);
		st->dropped = 0;
	}
	if (st->nentries > 0)
		tlsrpt_store_flush(st, NULL, NULL);
}

struct tlsrpt_store *
tlsrpt_store_new(struct spool *sp, struct event_base *base)
{
	struct tlsrpt_store *st = calloc(1, sizeof(*st));
	struct timeval every = {TLSRPT_FLUSH_SECONDS, 0};

	if (st == NULL)
		return NULL;
	st->spool = sp;
	st->timer = event_new(base, -1, EV_PERSIST, tlsrpt_tick, st);
	if (st->timer == NULL || event_add(st->timer, &every) < 0) {
		if (st->timer != NULL)
			event_free(st->timer);
		free(st);
		return NULL;
	}
	/* nothing is written before there is something to count: an idle
	 * daemon commits nothing of ours */
	return st;
}

void
tlsrpt_store_free(struct tlsrpt_store *st)
{
	if (st == NULL)
		return;
	if (st->nentries > 0)
		tlsrpt_store_flush(st, NULL, NULL);
	event_free(st->timer);
	free(st);
}

/* --- reading -----------------------------------------------------------------
 */

static const char *
tlsrpt_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/* Made by the first flush: before it there is nothing to read. */
static int
tlsrpt_has_tables(struct sqlite3 *db)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND"
	        " name IN ('tlsrpt_sessions', 'tlsrpt_sent')",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n == 2;
}

struct tlsrpt_domains {
	const char *day;
	char **v;
	size_t n;
};

static int
tlsrpt_read_domains(struct sqlite3 *db, void *arg)
{
	struct tlsrpt_domains *d = arg;
	sqlite3_stmt *st;
	int rc;
	int has = tlsrpt_has_tables(db);

	if (has <= 0)
		return has; /* 0: nothing recorded yet */

	if (sqlite3_prepare_v2(db,
	        "SELECT DISTINCT domain FROM tlsrpt_sessions WHERE day = ?"
	        " ORDER BY domain",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, d->day, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **v = realloc(d->v, (d->n + 1) * sizeof(*v));

		if (v == NULL ||
		    (v[d->n] = strdup(tlsrpt_col(st, 0))) == NULL) {
			if (v != NULL)
				d->v = v;
			rc = SQLITE_NOMEM;
			break;
		}
		d->v = v;
		d->n++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
tlsrpt_store_domains(
    struct tlsrpt_store *st, const char *day, char ***domains, size_t *n)
{
	struct tlsrpt_domains d = {day, NULL, 0};
	int rc = spool_read(st->spool, tlsrpt_read_domains, &d);

	*domains = d.v;
	*n = d.n;
	return rc;
}

void
tlsrpt_store_domains_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct tlsrpt_read {
	const char *day, *domain;
	struct tlsrpt_report *out;
};

static struct tlsrpt_policy *
tlsrpt_policy_of(struct tlsrpt_report *r, const char *type, const char *strings,
    const char *patterns, const char *domain)
{
	struct tlsrpt_policy *v;

	for (size_t i = 0; i < r->npolicies; i++) {
		struct tlsrpt_policy *p = &r->policies[i];

		if (strcmp(p->type, type) == 0 &&
		    strcmp(p->strings != NULL ? p->strings : "", strings) ==
		        0 &&
		    strcmp(p->mx_hosts != NULL ? p->mx_hosts : "", patterns) ==
		        0)
			return p;
	}
	if ((v = realloc(r->policies, (r->npolicies + 1) * sizeof(*v))) == NULL)
		return NULL;
	r->policies = v;
	v = &r->policies[r->npolicies++];
	memset(v, 0, sizeof(*v));
	snprintf(v->type, sizeof(v->type), "%s", type);
	snprintf(v->domain, sizeof(v->domain), "%s", domain);
	v->strings = strdup(strings);
	v->mx_hosts = strdup(patterns);
	return v;
}

static int
tlsrpt_read_report(struct sqlite3 *db, void *arg)
{
	struct tlsrpt_read *r = arg;
	sqlite3_stmt *st;
	int rc;
	int has = tlsrpt_has_tables(db);

	if (has <= 0)
		return has; /* 0: nothing recorded yet */

	/* the most failed sessions first: the details kept when cut */
	if (sqlite3_prepare_v2(db,
	        "SELECT policy_type, policy_string, mx_pattern, result,"
	        " sending_ip, mx_host, mx_helo, receiving_ip, reason,"
	        " sessions FROM tlsrpt_sessions WHERE day = ?1 AND domain = ?2"
	        " ORDER BY policy_type, policy_string, mx_pattern,"
	        " result = 'ok' DESC, sessions DESC, result, mx_host",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, r->day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct tlsrpt_policy *p =
		    tlsrpt_policy_of(r->out, tlsrpt_col(st, 0),
		        tlsrpt_col(st, 1), tlsrpt_col(st, 2), r->domain);
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 9);
		struct tlsrpt_failure *f;

		if (p == NULL || p->strings == NULL || p->mx_hosts == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (strcmp(tlsrpt_col(st, 3), "ok") == 0) {
			p->ok += n;
			continue;
		}
		p->failed += n;
		if (p->ndetails >= TLSRPT_DETAILS_MAX)
			continue; /* counted in the summary all the same */
		f = realloc(p->details, (p->ndetails + 1) * sizeof(*f));
		if (f == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		p->details = f;
		f = &p->details[p->ndetails++];
		memset(f, 0, sizeof(*f));
		snprintf(f->result, sizeof(f->result), "%s", tlsrpt_col(st, 3));
		snprintf(f->sending_ip, sizeof(f->sending_ip), "%s",
		    tlsrpt_col(st, 4));
		snprintf(
		    f->mx_host, sizeof(f->mx_host), "%s", tlsrpt_col(st, 5));
		snprintf(
		    f->mx_helo, sizeof(f->mx_helo), "%s", tlsrpt_col(st, 6));
		snprintf(f->receiving_ip, sizeof(f->receiving_ip), "%s",
		    tlsrpt_col(st, 7));
		snprintf(f->reason, sizeof(f->reason), "%s", tlsrpt_col(st, 8));
		f->count = n;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
tlsrpt_store_report(struct tlsrpt_store *st, const char *day,
    const char *domain, struct tlsrpt_report *out)
{
	struct tlsrpt_read r = {day, domain, out};

	snprintf(out->day, sizeof(out->day), "%s", day);
	out->policies = NULL;
	out->npolicies = 0;
	if (spool_read(st->spool, tlsrpt_read_report, &r) < 0) {
		tlsrpt_report_clear(out);
		return -1;
	}
	return 0;
}

struct tlsrpt_state_read {
	const char *day, *domain, *rua;
	struct tlsrpt_sent_row *row;
};

static int
tlsrpt_read_state(struct sqlite3 *db, void *arg)
{
	struct tlsrpt_state_read *s = arg;
	sqlite3_stmt *st;
	int rc;
	int has = tlsrpt_has_tables(db);

	if (has <= 0)
		return has; /* 0: nothing recorded yet */

	if (sqlite3_prepare_v2(db,
	        "SELECT state, attempts, updated, queue_id FROM tlsrpt_sent"
	        " WHERE day = ?1 AND domain = ?2 AND rua = ?3",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, s->day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->rua, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s->row->state = (enum tlsrpt_state)sqlite3_column_int(st, 0);
		s->row->attempts = (unsigned)sqlite3_column_int(st, 1);
		s->row->updated = (time_t)sqlite3_column_int64(st, 2);
		snprintf(s->row->queue_id, sizeof(s->row->queue_id), "%s",
		    tlsrpt_col(st, 3));
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
tlsrpt_store_state(struct tlsrpt_store *st, const char *day, const char *domain,
    const char *rua, struct tlsrpt_sent_row *row)
{
	struct tlsrpt_sent_row mine;
	struct tlsrpt_state_read s = {
	    day, domain, rua, row != NULL ? row : &mine};

	memset(s.row, 0, sizeof(*s.row));
	s.row->state = TLSRPT_NEW;
	if (spool_read(st->spool, tlsrpt_read_state, &s) < 0)
		return -1;
	return (int)s.row->state;
}

static int
tlsrpt_read_queued(struct sqlite3 *db, void *arg)
{
	const char **qid = arg;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM messages WHERE queue_id = ?",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, *qid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
tlsrpt_store_in_queue(struct tlsrpt_store *st, const char *queue_id)
{
	return spool_read(st->spool, tlsrpt_read_queued, &queue_id);
}
