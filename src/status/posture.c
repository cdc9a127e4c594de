/*
 * posture.c - recording and reading the partners' TLS posture (see
 * posture.h).
 *
 * Where it sits: the delivery queues call posture_session() once per
 * outbound session (when its TLS decision is made) and outcome.c calls
 * posture_message() when a message is deferred or returned for TLS; the
 * control socket (`get-tlsposture`) and the status page read
 * posture_report().  Everything runs on the event loop thread except the
 * writes, which the spool's committer makes inside its own transactions
 * (spool_write), so the posture never adds an fsync of its own.
 *
 * Why aggregate in memory: a relay makes thousands of sessions a minute
 * to a few hundred partners, and a row per session through the committer
 * would double its work; a minute's aggregate is a few dozen upserts.
 * The price is at most a minute of statistics after a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "spool/spool.h"
#include "status/posture.h"
#include "util/fnv.h"
#include "util/log.h"

/*
 * About one entry per bucket at the caps (POSTURE_SEEN_MAX,
 * POSTURE_ENTRIES_MAX): mail to thousands of new partners looks each one
 * up, and a miss walks the whole chain (issue 19).
 */
#define POSTURE_BUCKETS 8192
/* Flushes in flight at most; past it counts are dropped (and logged). */
#define POSTURE_INFLIGHT_MAX 4
#define POSTURE_NAME_MAX 255
/* Partners whose last DANE and MTA-STS state is kept, at most. */
#define POSTURE_SEEN_MAX 10000

static const char posture_schema[] =
    "CREATE TABLE IF NOT EXISTS tls_posture ("
    " partner TEXT NOT NULL, hour INTEGER NOT NULL,"
    " connector TEXT NOT NULL, policy TEXT NOT NULL,"
    " version TEXT NOT NULL, verified INTEGER NOT NULL,"
    " result TEXT NOT NULL, sessions INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (partner, hour, connector, policy, version, verified,"
    " result)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS tls_posture_hour ON tls_posture(hour);"
    "CREATE TABLE IF NOT EXISTS tls_posture_messages ("
    " partner TEXT NOT NULL, hour INTEGER NOT NULL,"
    " connector TEXT NOT NULL, deferred INTEGER NOT NULL DEFAULT 0,"
    " returned INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (partner, hour, connector)) WITHOUT ROWID;"
    /* the batches already written, for a report made while their
     * callback is still on its way (posture_report) */
    "CREATE TABLE IF NOT EXISTS tls_posture_flushes ("
    " id INTEGER PRIMARY KEY, at INTEGER NOT NULL);";

/* One aggregate: sessions (result >= 0) or messages (result < 0). */
struct posture_entry {
	struct posture_entry *next; /* bucket, then the flush list */
	int64_t hour;
	int result; /* enum tls_result; -1: a messages entry */
	int verified;
	uint64_t sessions, deferred, returned;
	char *partner, *connector, *policy, *version;
};

struct posture_batch {
	struct posture_batch *next, **prev; /* the owner's batches in flight */
	struct posture *owner;              /* NULL once it is gone */
	struct posture_entry *list;
	int64_t purge_before; /* delete older hours too; 0: not this time */
	int64_t id;           /* in tls_posture_flushes once committed */
	time_t at;
};

/*
 * What the last session to a partner met of DANE and MTA-STS: the state
 * of now, not a count, so it is kept in memory only (a restart forgets
 * it until the next session).
 */
struct posture_seen {
	struct posture_seen *next;
	char dane[16];
	char mta_sts[80];
	char partner[];
};

struct posture {
	struct spool *spool;
	struct posture_seen *seen[POSTURE_BUCKETS];
	size_t nseen;
	struct event *timer;
	struct posture_entry *buckets[POSTURE_BUCKETS];
	size_t nentries;
	struct posture_batch *batches; /* with the committer */
	unsigned inflight;
	int64_t purged_hour; /* the last hour old rows were deleted at */
	unsigned long long dropped;
	int stopping;
};

static void
posture_entry_free(struct posture_entry *e)
{
	free(e->partner);
	free(e->connector);
	free(e->policy);
	free(e->version);
	free(e);
}

static void
posture_list_free(struct posture_entry *e)
{
	struct posture_entry *next;

	for (; e != NULL; e = next) {
		next = e->next;
		posture_entry_free(e);
	}
}

static char *
posture_dup(const char *s)
{
	size_t n = s != NULL ? strnlen(s, POSTURE_NAME_MAX) : 0;
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s != NULL ? s : "", n);
		d[n] = '\0';
	}
	return d;
}

/* Is the stored (cut) name a the name b, cut the same way? */
static int
posture_same(const char *a, const char *b)
{
	if (b == NULL)
		b = "";
	return strlen(a) == strnlen(b, POSTURE_NAME_MAX) &&
	       strncmp(a, b, POSTURE_NAME_MAX) == 0;
}

static unsigned
posture_hash(const char *partner, const char *connector, int64_t hour,
    int result, int verified, const char *policy, const char *version)
{
	const char *parts[4] = {partner, connector, policy, version};
	int32_t nums[3] = {(int32_t)hour, result + 1, verified};
	uint32_t h = FNV_32_INIT;

	for (int i = 0; i < 4; i++)
		if (parts[i] != NULL)
			h = fnv_32(
			    h, parts[i], strnlen(parts[i], POSTURE_NAME_MAX));
	h = fnv_32(h, nums, sizeof(nums));
	return h % POSTURE_BUCKETS;
}

/* The aggregate of these values, made if new; NULL when full or no memory. */
static struct posture_entry *
posture_entry(struct posture *ps, const char *partner, const char *connector,
    int64_t hour, int result, int verified, const char *policy,
    const char *version)
{
	unsigned b = posture_hash(
	    partner, connector, hour, result, verified, policy, version);
	struct posture_entry *e;

	for (e = ps->buckets[b]; e != NULL; e = e->next)
		if (e->hour == hour && e->result == result &&
		    e->verified == verified &&
		    posture_same(e->partner, partner) &&
		    posture_same(e->connector, connector) &&
		    posture_same(e->policy, policy) &&
		    posture_same(e->version, version))
			return e;
	if (ps->nentries >= POSTURE_ENTRIES_MAX) {
		/* Early flush; the next event finds room. */
		posture_flush(ps);
		if (ps->nentries >= POSTURE_ENTRIES_MAX)
			return NULL;
		b = posture_hash(partner, connector, hour, result, verified,
		    policy, version);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->hour = hour;
	e->result = result;
	e->verified = verified;
	e->partner = posture_dup(partner);
	e->connector = posture_dup(connector);
	e->policy = posture_dup(policy);
	e->version = posture_dup(version);
	if (e->partner == NULL || e->connector == NULL || e->policy == NULL ||
	    e->version == NULL) {
		posture_entry_free(e);
		return NULL;
	}
	e->next = ps->buckets[b];
	ps->buckets[b] = e;
	ps->nentries++;
	return e;
}

static struct posture_seen *
posture_seen_of(const struct posture *ps, const char *partner)
{
	unsigned b =
	    fnv_32(FNV_32_INIT, partner, strnlen(partner, POSTURE_NAME_MAX)) %
	    POSTURE_BUCKETS;

	for (struct posture_seen *v = ps->seen[b]; v != NULL; v = v->next)
		if (posture_same(v->partner, partner))
			return v;
	return NULL;
}

static void
posture_seen_set(struct posture *ps, const struct posture_session *s)
{
	struct posture_seen *v = posture_seen_of(ps, s->partner);

	if (v == NULL) {
		size_t n = strnlen(s->partner, POSTURE_NAME_MAX);
		unsigned b =
		    fnv_32(FNV_32_INIT, s->partner, n) % POSTURE_BUCKETS;

		if (ps->nseen >= POSTURE_SEEN_MAX ||
		    (v = calloc(1, sizeof(*v) + n + 1)) == NULL)
			return;
		memcpy(v->partner, s->partner, n);
		v->next = ps->seen[b];
		ps->seen[b] = v;
		ps->nseen++;
	}
	snprintf(v->dane, sizeof(v->dane), "%s", s->dane);
	if (s->sts_mode == NULL || s->sts_mode[0] == '\0')
		snprintf(v->mta_sts, sizeof(v->mta_sts), "none");
	else
		snprintf(v->mta_sts, sizeof(v->mta_sts), "%s (id %.40s)",
		    s->sts_mode, s->sts_id != NULL ? s->sts_id : "");
}

void
posture_session(struct posture *ps, const struct posture_session *s)
{
	struct posture_entry *e;

	if (ps == NULL || s->partner == NULL || s->partner[0] == '\0')
		return;
	if (s->dane != NULL)
		posture_seen_set(ps, s);
	e = posture_entry(ps, s->partner, s->connector, time(NULL) / 3600,
	    (int)s->result, s->verified != 0, s->policy, s->version);
	if (e == NULL) {
		ps->dropped++;
		return;
	}
	e->sessions++;
}

void
posture_message(struct posture *ps, const char *partner, const char *connector,
    int returned)
{
	struct posture_entry *e;

	if (ps == NULL || partner == NULL || partner[0] == '\0')
		return;
	e = posture_entry(
	    ps, partner, connector, time(NULL) / 3600, -1, 0, "", "");
	if (e == NULL) {
		ps->dropped++;
		return;
	}
	if (returned)
		e->returned++;
	else
		e->deferred++;
}

/*
 * One field of an enhanced status code: one to three digits, as RFC 3463
 * has them; -1 otherwise.  By hand rather than sscanf: this runs for every
 * recipient of every attempt, and sscanf cost more than all the metrics.
 */
static int
posture_code_field(const char **p)
{
	int v = 0, n = 0;

	while (**p >= '0' && **p <= '9' && n < 4) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n >= 1 && n <= 3 ? v : -1;
}

int
posture_tls_status(const char *enh)
{
	int klass, subject, detail;
	const char *p = enh;

	if (p == NULL || (klass = posture_code_field(&p)) < 0 || *p++ != '.' ||
	    (subject = posture_code_field(&p)) < 0 || *p++ != '.' ||
	    (detail = posture_code_field(&p)) < 0 || *p != '\0')
		return 0;
	/*
	 * RFC 3463 and the IANA registry: 7.4 security features not
	 * supported, 7.5 cryptographic failure, 7.10 encryption needed
	 * (STARTTLS), 7.30 REQUIRETLS support required (RFC 8689).  7.0 is
	 * every other refusal, and says nothing about TLS.
	 */
	return (klass == 4 || klass == 5) && subject == 7 &&
	       (detail == 4 || detail == 5 || detail == 10 || detail == 30);
}

/* --- writing, on the committer thread --------------------------------- */

static int
posture_write(struct sqlite3 *db, void *arg)
{
	struct posture_batch *b = arg;
	sqlite3_stmt *ses = NULL, *msg = NULL;
	int rc = -1;

	if (sqlite3_exec(db, posture_schema, NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	if (b->purge_before > 0) {
		char sql[160];

		snprintf(sql, sizeof(sql),
		    "DELETE FROM tls_posture WHERE hour < %lld;"
		    "DELETE FROM tls_posture_messages WHERE hour < %lld",
		    (long long)b->purge_before, (long long)b->purge_before);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto out;
	}
	{
		char sql[200];

		snprintf(sql, sizeof(sql),
		    "INSERT INTO tls_posture_flushes (id, at) VALUES (%lld, "
		    "%lld); DELETE FROM tls_posture_flushes WHERE at < %lld",
		    (long long)b->id, (long long)b->at,
		    (long long)b->at - 3600);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto out;
	}
	if (b->list == NULL) {
		rc = 0;
		goto out;
	}
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO tls_posture (partner, hour, connector, policy,"
	        " version, verified, result, sessions)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
	        " ON CONFLICT DO UPDATE SET sessions = sessions + ?8",
	        -1, &ses, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	        "INSERT INTO tls_posture_messages (partner, hour, connector,"
	        " deferred, returned) VALUES (?1, ?2, ?3, ?4, ?5)"
	        " ON CONFLICT DO UPDATE SET deferred = deferred + ?4,"
	        " returned = returned + ?5",
	        -1, &msg, NULL) != SQLITE_OK)
		goto out;
	for (struct posture_entry *e = b->list; e != NULL; e = e->next) {
		sqlite3_stmt *st = e->result < 0 ? msg : ses;

		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, e->partner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)e->hour);
		sqlite3_bind_text(st, 3, e->connector, -1, SQLITE_STATIC);
		if (e->result < 0) {
			sqlite3_bind_int64(st, 4, (sqlite3_int64)e->deferred);
			sqlite3_bind_int64(st, 5, (sqlite3_int64)e->returned);
		} else {
			sqlite3_bind_text(st, 4, e->policy, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 5, e->version, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 6, e->verified);
			sqlite3_bind_text(st, 7,
			    tls_result_name((enum tls_result)e->result), -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(st, 8, (sqlite3_int64)e->sessions);
		}
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(ses);
	sqlite3_finalize(msg);
	return rc;
}

/* --- flushing, on the event loop -------------------------------------- */

static void
posture_written(void *arg, int ok, const char *queue_id)
{
	struct posture_batch *b = arg;

	(void)queue_id;
	if (!ok)
		log_warn("TLS posture: a minute of statistics could not be "
		         "stored in the queue database");
	if (b->owner != NULL) {
		b->owner->inflight--;
		*b->prev = b->next;
		if (b->next != NULL)
			b->next->prev = b->prev;
	}
	posture_list_free(b->list);
	free(b);
}

void
posture_flush(struct posture *ps)
{
	struct posture_batch *b;
	int64_t hour = time(NULL) / 3600;

	if (ps == NULL)
		return;
	/*
	 * Nothing counted, nothing written: the posture never commits a
	 * batch of its own (old hours go with the next counts), so it adds
	 * nothing to an idle daemon's queue database.
	 */
	if (ps->nentries == 0)
		return;
	if (ps->inflight >= POSTURE_INFLIGHT_MAX && !ps->stopping)
		return; /* the committer is behind; keep counting here */
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return;
	b->owner = ps;
	b->at = time(NULL);
	/* random, so unique across posture instances and restarts */
	b->id = (int64_t)(((uint64_t)arc4random() << 31) ^ arc4random());
	for (size_t i = 0; i < POSTURE_BUCKETS; i++) {
		struct posture_entry *e, *next;

		for (e = ps->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = b->list;
			b->list = e;
		}
		ps->buckets[i] = NULL;
	}
	ps->nentries = 0;
	if (ps->purged_hour != hour) {
		b->purge_before = hour - POSTURE_KEEP_HOURS;
		ps->purged_hour = hour;
	}
	if (spool_write(ps->spool, posture_write, b, NULL, posture_written, b) <
	    0) {
		posture_list_free(b->list);
		free(b);
		return;
	}
	ps->inflight++;
	b->next = ps->batches;
	b->prev = &ps->batches;
	if (ps->batches != NULL)
		ps->batches->prev = &b->next;
	ps->batches = b;
}

static void
posture_tick(evutil_socket_t fd, short what, void *arg)
{
	struct posture *ps = arg;

	(void)fd;
	(void)what;
	if (ps->dropped > 0) {
		log_warn("TLS posture: %llu sessions not counted (memory or "
		         "queue database busy)",
		    ps->dropped);
		ps->dropped = 0;
	}
	posture_flush(ps);
}

struct posture *
posture_new(struct spool *sp, struct event_base *base)
{
	struct posture *ps = calloc(1, sizeof(*ps));
	struct timeval every = {POSTURE_FLUSH_SECONDS, 0};

	if (ps == NULL)
		return NULL;
	ps->spool = sp;
	ps->timer = event_new(base, -1, EV_PERSIST, posture_tick, ps);
	if (ps->timer == NULL || event_add(ps->timer, &every) < 0) {
		if (ps->timer != NULL)
			event_free(ps->timer);
		free(ps);
		return NULL;
	}
	return ps;
}

void
posture_free(struct posture *ps)
{
	if (ps == NULL)
		return;
	ps->stopping = 1;
	if (ps->nentries > 0)
		posture_flush(ps);
	event_free(ps->timer);
	/*
	 * Batches still with the committer are freed by their callback,
	 * which spool_close() runs; they must not reach back to us.
	 */
	for (struct posture_batch *b = ps->batches; b != NULL; b = b->next)
		b->owner = NULL;
	for (size_t i = 0; i < POSTURE_BUCKETS; i++) {
		struct posture_seen *v, *next;

		for (v = ps->seen[i]; v != NULL; v = next) {
			next = v->next;
			free(v);
		}
	}
	free(ps);
}

/* --- reading ------------------------------------------------------------ */

struct posture_read {
	struct posture *ps;
	const char *only; /* one partner, or NULL */
	int64_t hour_day, hour_week;
	struct posture_partner *v;
	size_t n, cap;
	size_t *slots; /* index + 1 into v, open addressing */
	size_t nslots;
	int full;
};

static struct posture_partner *
posture_partner_of(struct posture_read *r, const char *name)
{
	size_t i;

	for (i = fnv_32_str(name) % r->nslots; r->slots[i] != 0;
	     i = (i + 1) % r->nslots)
		if (strcmp(r->v[r->slots[i] - 1].name, name) == 0)
			return &r->v[r->slots[i] - 1];
	if (r->n >= POSTURE_REPORT_MAX * 2) {
		r->full = 1;
		return NULL;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct posture_partner *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		r->v = v;
		r->cap = cap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
	snprintf(r->v[r->n].name, sizeof(r->v[r->n].name), "%s", name);
	r->slots[i] = ++r->n;
	return &r->v[r->n - 1];
}

static void
posture_add_policy(struct posture_partner *p, const char *policy)
{
	size_t n = strlen(p->policies), k = strlen(policy);
	const char *at = p->policies;

	if (k == 0)
		return;
	/* already listed? (whole names between ", ") */
	while ((at = strstr(at, policy)) != NULL) {
		if ((at == p->policies || at[-1] == ' ') &&
		    (at[k] == '\0' || at[k] == ','))
			return;
		at += k;
	}
	if (n + k + 3 < sizeof(p->policies))
		snprintf(p->policies + n, sizeof(p->policies) - n, "%s%s",
		    n > 0 ? ", " : "", policy);
}

static void
posture_count_sessions(struct posture_counts *c, const char *version,
    int verified, int result, uint64_t n)
{
	c->sessions += n;
	if (strcmp(version, "TLSv1.3") == 0)
		c->tls13 += n;
	else if (strcmp(version, "TLSv1.2") == 0)
		c->tls12 += n;
	else if (version[0] != '\0')
		c->tls_other += n;
	else if (result == TLS_RESULT_OK)
		c->plaintext += n;
	if (verified && version[0] != '\0')
		c->verified += n;
	if (result > TLS_RESULT_OK && result < TLS_RESULT_COUNT) {
		c->failures[result] += n;
		c->failed += n;
	}
}

/* One aggregate (stored or in memory) into the report. */
static void
posture_fold(struct posture_read *r, const char *partner, int64_t hour,
    const char *policy, const char *version, int verified, int result,
    uint64_t sessions, uint64_t deferred, uint64_t returned)
{
	struct posture_partner *p;

	if (hour < r->hour_week ||
	    (r->only != NULL && strcasecmp(partner, r->only) != 0))
		return;
	if ((p = posture_partner_of(r, partner)) == NULL)
		return;
	for (int w = 0; w < 2; w++) {
		struct posture_counts *c = w == 0 ? &p->week : &p->day;

		if (w == 1 && hour < r->hour_day)
			break;
		if (result < 0) {
			c->deferred += deferred;
			c->returned += returned;
		} else {
			posture_count_sessions(
			    c, version, verified, result, sessions);
		}
	}
	if (result >= 0)
		posture_add_policy(p, policy);
}

static const char *
posture_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/*
 * Batches handed to the committer and not yet reported back: those it
 * has written are in the snapshot; the others are counted from memory.
 */
static int
posture_read_inflight(struct sqlite3 *db, struct posture_read *r, int tables)
{
	sqlite3_stmt *st = NULL;

	if (r->ps->batches == NULL)
		return 0;
	/* no tables yet: nothing of any batch is written */
	if (tables && sqlite3_prepare_v2(db,
	                  "SELECT 1 FROM tls_posture_flushes WHERE id = ?", -1,
	                  &st, NULL) != SQLITE_OK)
		return -1;
	for (struct posture_batch *b = r->ps->batches; b != NULL; b = b->next) {
		int written = 0;

		if (st != NULL) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, (sqlite3_int64)b->id);
			written = sqlite3_step(st) == SQLITE_ROW;
		}
		for (struct posture_entry *e = b->list; e != NULL && !written;
		     e = e->next)
			posture_fold(r, e->partner, e->hour, e->policy,
			    e->version, e->verified, e->result, e->sessions,
			    e->deferred, e->returned);
	}
	sqlite3_finalize(st);
	return 0;
}

static int posture_read_tables(struct sqlite3 *, struct posture_read *);

/* One read transaction: the tables and the written batches agree. */
/* The tables are made by the first flush: none yet is no posture yet. */
static int
posture_has_tables(struct sqlite3 *db)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db,
	        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND"
	        " name IN ('tls_posture', 'tls_posture_messages',"
	        " 'tls_posture_flushes')",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n == 3;
}

static int
posture_read_db(struct sqlite3 *db, void *arg)
{
	struct posture_read *r = arg;
	int rc, tables;

	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if ((tables = posture_has_tables(db)) < 0) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		return -1;
	}
	rc = tables ? posture_read_tables(db, r) : 0;
	if (rc == 0)
		rc = posture_read_inflight(db, r, tables);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

static int
posture_read_tables(struct sqlite3 *db, struct posture_read *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* Hours of the day apart from the rest of the week. */
	if (sqlite3_prepare_v2(db,
	        "SELECT partner, CASE WHEN hour >= ?2 THEN ?2 ELSE ?1 END,"
	        " policy, version, verified, result, sum(sessions)"
	        " FROM tls_posture WHERE hour >= ?1"
	        " GROUP BY 1, 2, 3, 4, 5, 6",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->hour_week);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->hour_day);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int result = tls_result_from_name(posture_col(st, 5));

		posture_fold(r, posture_col(st, 0), sqlite3_column_int64(st, 1),
		    posture_col(st, 2), posture_col(st, 3),
		    sqlite3_column_int(st, 4),
		    result < 0 ? TLS_RESULT_VALIDATION_FAILURE : result,
		    (uint64_t)sqlite3_column_int64(st, 6), 0, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (sqlite3_prepare_v2(db,
	        "SELECT partner, CASE WHEN hour >= ?2 THEN ?2 ELSE ?1 END,"
	        " sum(deferred), sum(returned) FROM tls_posture_messages"
	        " WHERE hour >= ?1 GROUP BY 1, 2",
	        -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->hour_week);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->hour_day);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		posture_fold(r, posture_col(st, 0), sqlite3_column_int64(st, 1),
		    "", "", 0, -1, 0, (uint64_t)sqlite3_column_int64(st, 2),
		    (uint64_t)sqlite3_column_int64(st, 3));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
posture_by_sessions(const void *a, const void *b)
{
	const struct posture_partner *x = a, *y = b;

	if (x->week.sessions != y->week.sessions)
		return x->week.sessions > y->week.sessions ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
posture_report(struct posture *ps, const char *name, time_t now,
    struct posture_partner **out, size_t *n)
{
	struct posture_read r;
	int64_t hour = now / 3600;

	memset(&r, 0, sizeof(r));
	r.ps = ps;
	r.only = name;
	/* The current hour and the 23 before it; the week likewise. */
	r.hour_day = hour - 23;
	r.hour_week = hour - (7 * 24 - 1);
	r.nslots = POSTURE_REPORT_MAX * 4 + 1;
	if ((r.slots = calloc(r.nslots, sizeof(*r.slots))) == NULL)
		return -1;
	*out = NULL;
	*n = 0;
	if (spool_read(ps->spool, posture_read_db, &r) < 0) {
		free(r.slots);
		free(r.v);
		return -1;
	}
	for (size_t i = 0; i < POSTURE_BUCKETS; i++)
		for (struct posture_entry *e = ps->buckets[i]; e != NULL;
		     e = e->next)
			posture_fold(&r, e->partner, e->hour, e->policy,
			    e->version, e->verified, e->result, e->sessions,
			    e->deferred, e->returned);
	free(r.slots);
	for (size_t i = 0; i < r.n; i++) {
		const struct posture_seen *v = posture_seen_of(ps, r.v[i].name);

		if (v != NULL) {
			memcpy(r.v[i].dane, v->dane, sizeof(v->dane));
			memcpy(r.v[i].mta_sts, v->mta_sts, sizeof(v->mta_sts));
		}
	}
	if (r.n > 1)
		qsort(r.v, r.n, sizeof(*r.v), posture_by_sessions);
	if (r.n > POSTURE_REPORT_MAX)
		r.n = POSTURE_REPORT_MAX;
	*out = r.v;
	*n = r.n;
	return 0;
}
